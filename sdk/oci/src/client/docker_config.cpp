#include <registryd/oci/base64.hpp>
#include <registryd/oci/client/docker_config.hpp>

#include <openssl/crypto.h>

#include <stdexcept>
#include <string>

namespace registryd::oci::client {
namespace {

// "https://host:port/v1/" -> "host:port"
std::string_view host_of_key(std::string_view key) {
  if (const auto scheme = key.find("://"); scheme != std::string_view::npos) key.remove_prefix(scheme + 3);
  return key.substr(0, key.find('/'));
}

std::string string_field(const nlohmann::json& entry, const char* name, const std::string& where) {
  const auto it = entry.find(name);
  if (it == entry.end() || it->is_null()) return {};
  if (!it->is_string()) throw std::invalid_argument(where + "." + name + " must be a string");
  return it->get<std::string>();
}

}  // namespace

std::optional<credentials> docker_config_credentials(const nlohmann::json& config, std::string_view registry) {
  if (!config.is_object()) throw std::invalid_argument("the docker config must be a JSON object");
  const auto auths = config.find("auths");
  if (auths == config.end() || auths->is_null()) return std::nullopt;
  if (!auths->is_object()) throw std::invalid_argument("auths must be an object");
  for (const auto& [key, entry] : auths->items()) {
    if (host_of_key(key) != registry) continue;
    const std::string where = "auths[\"" + key + "\"]";
    if (!entry.is_object()) throw std::invalid_argument(where + " must be an object");
    const std::string auth = string_field(entry, "auth", where);
    if (!auth.empty()) {
      auto decoded = base64_decode(auth);
      const auto colon = decoded ? decoded->find(':') : std::string::npos;
      if (!decoded || colon == std::string::npos || colon == 0) {
        if (decoded) OPENSSL_cleanse(decoded->data(), decoded->size());
        throw std::invalid_argument(where + ".auth must be base64 of \"user:password\"");
      }
      credentials c{decoded->substr(0, colon), decoded->substr(colon + 1)};
      OPENSSL_cleanse(decoded->data(), decoded->size());
      return c;
    }
    credentials c{string_field(entry, "username", where), string_field(entry, "password", where)};
    // `{}` (docker login with a credsStore keeps the secret elsewhere): nothing here.
    if (c.username.empty() && c.password.empty()) continue;
    if (c.username.empty()) throw std::invalid_argument(where + " has a password but no username");
    return c;
  }
  return std::nullopt;
}

}  // namespace registryd::oci::client
