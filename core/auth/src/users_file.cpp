#include <registryd/auth/users_file.hpp>

#include <registryd/util/atomic_file.hpp>

#include <yaml-cpp/yaml.h>

#include <cctype>

namespace registryd::auth {
namespace {

constexpr std::string_view account_kinds =
    "read-only, read-write, mirror-puller or mirror-pusher";

util::error at(const std::string& path, const std::string& reason) {
  return util::error{path + ": " + reason};
}

std::string name_problem(const std::string& name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > 128) return "must be at most 128 characters";
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ':') return "must not contain ':' (basic auth separates user and password with it)";
    if (std::iscntrl(u) || std::isspace(u)) return "must not contain spaces or control characters";
  }
  return {};
}

std::string password_problem(const std::string& value) {
  if (is_bcrypt_hash(value)) return {};
  if (const auto colon = value.find(':');
      colon != std::string::npos && is_bcrypt_hash(std::string_view(value).substr(colon + 1))) {
    return "must be only the hash: this looks like a whole htpasswd line, drop the \"user:\" part";
  }
  if (value.starts_with("$2")) {
    return "is not a well-formed bcrypt hash ($2a$, $2b$ or $2y$, cost 04-31, 53 characters "
           "after the cost)";
  }
  return "must be a bcrypt hash ($2a$, $2b$ or $2y$), e.g. from `htpasswd -nbB user password`; "
         "plain-text passwords are not accepted";
}

util::result<user> parse_user(const YAML::Node& node, const std::string& path) {
  if (!node.IsMap()) return at(path, "must be a mapping with name, password and access");
  user u;
  bool has_name = false;
  bool has_password = false;
  bool has_access = false;
  for (const auto& kv : node) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
    const std::string field = path + "." + key;
    const YAML::Node& value = kv.second;
    if (key != "name" && key != "password" && key != "access") {
      return at(field, "unknown field (expected name, password, access)");
    }
    if (!value.IsScalar()) return at(field, "must be a string");
    if (key == "name") {
      u.name = value.Scalar();
      if (auto problem = name_problem(u.name); !problem.empty()) return at(field, problem);
      has_name = true;
    } else if (key == "password") {
      u.password_hash = value.Scalar();
      if (auto problem = password_problem(u.password_hash); !problem.empty()) {
        return at(field, problem);
      }
      has_password = true;
    } else {
      const auto kind = parse_account_kind(value.Scalar());
      if (!kind) return at(field, "must be " + std::string(account_kinds));
      u.access = *kind;
      has_access = true;
    }
  }
  if (!has_name) return at(path + ".name", "required");
  if (!has_password) return at(path + ".password", "required");
  if (!has_access) return at(path + ".access", "required (" + std::string(account_kinds) + ")");
  return u;
}

}  // namespace

const user* user_table::find(std::string_view name) const {
  const auto it = users_.find(name);
  return it == users_.end() ? nullptr : &it->second;
}

bool is_bcrypt_hash(std::string_view text) noexcept {
  // $2y$10$ + 22 salt + 31 hash = 60 characters.
  if (text.size() != 60 || text[0] != '$' || text[1] != '2' || text[3] != '$' || text[6] != '$') {
    return false;
  }
  if (text[2] != 'a' && text[2] != 'b' && text[2] != 'y') return false;
  if (!std::isdigit(static_cast<unsigned char>(text[4])) ||
      !std::isdigit(static_cast<unsigned char>(text[5]))) {
    return false;
  }
  const int cost = (text[4] - '0') * 10 + (text[5] - '0');
  if (cost < 4 || cost > 31) return false;
  for (const char c : text.substr(7)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '/') return false;
  }
  return true;
}

util::result<user_table> parse_users(std::string_view yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return util::error{"line " + std::to_string(e.mark.line + 1) + ", column " +
                       std::to_string(e.mark.column + 1) + ": " + e.msg};
  }
  if (!root.IsMap()) return util::error{"the file must be a mapping with a users list"};
  for (const auto& kv : root) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
    if (key != "users") return at(key, "unknown field (expected users)");
  }
  const YAML::Node list = root["users"];
  if (!list) return at("users", "required");
  if (!list.IsSequence() && !list.IsNull()) return at("users", "must be a list");

  user_table table;
  std::map<std::string, std::size_t, std::less<>> first_index;
  for (std::size_t i = 0; list.IsSequence() && i < list.size(); ++i) {
    const std::string path = "users[" + std::to_string(i) + "]";
    auto u = parse_user(list[i], path);
    if (!u) return util::error{u.error_message()};
    if (auto [it, fresh] = first_index.emplace(u->name, i); !fresh) {
      return at(path + ".name", "duplicate user \"" + u->name + "\" (first defined at users[" +
                                    std::to_string(it->second) + "])");
    }
    std::string name = u->name;
    table.users_.emplace(std::move(name), std::move(*u));
  }
  return table;
}

util::result<user_table> load_users_file(const std::filesystem::path& path) {
  std::error_code ec;
  const std::string text = util::read_small_file(path, ec);
  if (ec) return util::error{path.string() + ": " + ec.message()};
  auto table = parse_users(text);
  if (!table) return util::error{path.string() + ": " + table.error_message()};
  return table;
}

}  // namespace registryd::auth
