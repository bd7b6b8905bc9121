#include <registryd/oci/client/scope.hpp>

#include <algorithm>
#include <map>
#include <set>

namespace registryd::oci::client {

std::string pull_scope(std::string_view repository) {
  return "repository:" + std::string(repository) + ":pull";
}

std::string push_scope(std::string_view repository) {
  return "repository:" + std::string(repository) + ":pull,push";
}

std::string catalog_scope() { return "registry:catalog:*"; }

std::vector<std::string> normalize_scopes(const std::vector<std::string>& scopes) {
  // resource ("type:name") -> actions
  std::map<std::string, std::set<std::string>> merged;
  for (const auto& s : scopes) {
    const auto first = s.find(':');
    const auto last = s.rfind(':');
    if (first == std::string::npos || first == last || first == 0 || last == first + 1) continue;
    auto& actions = merged[s.substr(0, last)];
    std::string_view list = std::string_view(s).substr(last + 1);
    while (!list.empty()) {
      const auto comma = list.find(',');
      const auto action = list.substr(0, comma);
      if (!action.empty()) actions.emplace(action);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  std::vector<std::string> out;
  for (const auto& [resource, actions] : merged) {
    if (actions.empty()) continue;
    std::string joined;
    for (const auto& a : actions) joined += (joined.empty() ? "" : ",") + a;
    out.push_back(resource + ":" + joined);
  }
  return out;
}

std::string scope_key(const std::vector<std::string>& scopes) {
  std::string key;
  for (const auto& s : normalize_scopes(scopes)) key += (key.empty() ? "" : " ") + s;
  return key;
}

std::vector<std::string> split_scope_param(std::string_view scope) {
  std::vector<std::string> out;
  while (!scope.empty()) {
    const auto space = scope.find(' ');
    if (space != 0) out.emplace_back(scope.substr(0, space));
    if (space == std::string_view::npos) break;
    scope.remove_prefix(space + 1);
  }
  return out;
}

}  // namespace registryd::oci::client
