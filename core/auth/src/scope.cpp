#include <registryd/auth/scope.hpp>

#include <registryd/oci/reference.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <utility>

namespace registryd::auth {
namespace {

constexpr std::string_view action_all = "*";

bool has_forbidden_character(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f || c == '"' || c == '\\';
  });
}

void normalise(std::vector<std::string>& actions) {
  std::erase(actions, std::string());
  std::sort(actions.begin(), actions.end());
  actions.erase(std::unique(actions.begin(), actions.end()), actions.end());
}


// One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*

}  // namespace

std::optional<resource_actions> parse_scope(std::string_view text) {
  if (text.empty() || text.size() > 1024 || has_forbidden_character(text)) return std::nullopt;
  const auto first = text.find(':');
  const auto last = text.rfind(':');
  if (first == std::string_view::npos || first == last) return std::nullopt;
  resource_actions r;
  r.type = std::string(text.substr(0, first));
  r.name = std::string(text.substr(first + 1, last - first - 1));
  const std::string_view actions = text.substr(last + 1);
  if (r.type.empty() || r.name.empty() || actions.empty()) return std::nullopt;
  std::size_t start = 0;
  while (start <= actions.size()) {
    const auto comma = std::min(actions.find(',', start), actions.size());
    r.actions.emplace_back(actions.substr(start, comma - start));
    start = comma + 1;
  }
  normalise(r.actions);
  if (r.actions.empty()) return std::nullopt;
  return r;
}

std::vector<resource_actions> parse_scopes(const std::vector<std::string>& params) {
  std::map<std::pair<std::string, std::string>, std::set<std::string>> merged;
  for (const auto& param : params) {
    std::string_view rest = param;
    while (!rest.empty()) {
      const auto space = std::min(rest.find(' '), rest.size());
      if (auto scope = parse_scope(rest.substr(0, space))) {
        auto& actions = merged[{scope->type, scope->name}];
        actions.insert(scope->actions.begin(), scope->actions.end());
      }
      rest.remove_prefix(std::min(space + 1, rest.size()));
    }
  }
  std::vector<resource_actions> out;
  for (auto& [key, actions] : merged) {
    out.push_back({key.first, key.second, {actions.begin(), actions.end()}});
  }
  return out;
}

std::string to_string(const resource_actions& r) {
  std::string out = r.type + ":" + r.name + ":";
  for (std::size_t i = 0; i < r.actions.size(); ++i) {
    if (i > 0) out += ',';
    out += r.actions[i];
  }
  return out;
}

std::string to_string(const std::vector<resource_actions>& list) {
  std::string out;
  for (const auto& r : list) {
    if (!out.empty()) out += ' ';
    out += to_string(r);
  }
  return out;
}

bool is_repository_name(std::string_view name) noexcept {
  // One grammar for names: the one the plugins serve on.
  return oci::is_valid_repository_name(name);
}

std::vector<resource_actions> grant(access_bits account,
                                    const std::vector<resource_actions>& requested) {
  std::vector<resource_actions> out;
  const bool holds_all = (account & (access_pull | access_push | access_delete)) ==
                         (access_pull | access_push | access_delete);
  for (const auto& r : requested) {
    resource_actions given{r.type, r.name, {}};
    if (r.type == "repository" && is_repository_name(r.name)) {
      for (const auto& a : r.actions) {
        if (a == action_all) {
          if (holds_all) {
            given.actions.emplace_back(action_all);
          } else {
            if (account & access_pull) given.actions.emplace_back("pull");
            if (account & access_push) given.actions.emplace_back("push");
            if (account & access_delete) given.actions.emplace_back("delete");
          }
        } else if ((a == "pull" && (account & access_pull)) ||
                   (a == "push" && (account & access_push)) ||
                   (a == "delete" && (account & access_delete))) {
          given.actions.push_back(a);
        }
      }
    } else if (r.type == "registry" && r.name == "catalog" && (account & access_catalog)) {
      if (std::find(r.actions.begin(), r.actions.end(), action_all) != r.actions.end()) {
        given.actions.emplace_back(action_all);
      }
    } else if (r.type == "registry" && r.name == packages_resource.name && (account & access_pull)) {
      // The packages proxy (docs/packages-proxy.md): anyone who may pull may fetch packages.
      // Its only action is pull, so `*` is granted as pull, as on a repository.
      if (std::any_of(r.actions.begin(), r.actions.end(), [](const std::string& a) { return a == "pull" || a == action_all; })) {
        given.actions.emplace_back("pull");
      }
    }
    normalise(given.actions);
    if (!given.actions.empty()) out.push_back(std::move(given));
  }
  return out;
}

bool covers(const std::vector<resource_actions>& granted,
            const std::vector<resource_actions>& needed) {
  auto has = [&](const std::string& type, const std::string& name, const std::string& action) {
    return std::any_of(granted.begin(), granted.end(), [&](const resource_actions& g) {
      return g.type == type && g.name == name &&
             std::any_of(g.actions.begin(), g.actions.end(),
                         [&](const std::string& a) { return a == action || a == action_all; });
    });
  };
  return std::all_of(needed.begin(), needed.end(), [&](const resource_actions& n) {
    return std::all_of(n.actions.begin(), n.actions.end(),
                       [&](const std::string& a) { return has(n.type, n.name, a); });
  });
}

access_bits repository_access(const std::vector<resource_actions>& granted,
                              std::string_view repository) {
  access_bits bits = 0;
  for (const auto& g : granted) {
    if (g.type != "repository" || g.name != repository) continue;
    for (const auto& a : g.actions) {
      if (a == action_all) bits |= access_pull | access_push | access_delete;
      if (a == "pull") bits |= access_pull;
      if (a == "push") bits |= access_push;
      if (a == "delete") bits |= access_delete;
    }
  }
  return bits;
}

}  // namespace registryd::auth
