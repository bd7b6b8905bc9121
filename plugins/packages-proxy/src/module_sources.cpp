#include "module_sources.hpp"

#include <registryd/oci/base64.hpp>
#include <registryd/oci/client/docker_config.hpp>
#include <registryd/oci/text_file.hpp>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <stdexcept>

namespace registryd::packages {
namespace {

std::string scalar(const YAML::Node& n, const std::string& where) {
  if (!n || n.IsNull()) return {};
  if (!n.IsScalar()) throw std::invalid_argument(where + " must be a string");
  return n.as<std::string>();
}

// n[key], or a null node when n is not a map (yaml-cpp throws on a key of a missing node).
YAML::Node child(const YAML::Node& n, const char* key) {
  if (!n || !n.IsMap()) return YAML::Node();
  return n[key];
}

module_source parse_one(const YAML::Node& doc, const std::string& where) {
  module_source s;
  s.name = scalar(child(child(doc, "metadata"), "name"), where + ": metadata.name");
  const std::string at = where + (s.name.empty() ? std::string() : " (" + s.name + ")") + ": spec.registry";
  const YAML::Node registry = child(child(doc, "spec"), "registry");
  if (!registry || !registry.IsMap()) throw std::invalid_argument(at + " is required");
  const std::string repo = scalar(registry["repo"], at + ".repo");
  const auto location = oci::repository_location::parse(repo);
  if (repo.empty() || !location || location->registry.empty() || location->path.empty()) {
    throw std::invalid_argument(at + ".repo: \"" + repo + "\" is not host[:port]/path");
  }
  s.repo = *location;
  s.client.registry = location->registry;
  const std::string scheme = scalar(registry["scheme"], at + ".scheme");
  if (scheme.empty() || scheme == "HTTPS" || scheme == "https") {
    s.client.url_scheme = oci::client::scheme::https;
  } else if (scheme == "HTTP" || scheme == "http") {
    s.client.url_scheme = oci::client::scheme::http;
  } else {
    throw std::invalid_argument(at + ".scheme must be HTTP or HTTPS, not \"" + scheme + "\"");
  }
  s.client.ca_pem = scalar(registry["ca"], at + ".ca");
  const std::string cfg = scalar(registry["dockerCfg"], at + ".dockerCfg");
  if (!cfg.empty()) {
    const auto json_text = oci::base64_decode(cfg);
    if (!json_text) throw std::invalid_argument(at + ".dockerCfg is not base64");
    const auto config = nlohmann::json::parse(*json_text, nullptr, false);
    if (config.is_discarded()) throw std::invalid_argument(at + ".dockerCfg is not base64 of a JSON document");
    try {
      if (auto c = oci::client::docker_config_credentials(config, location->registry)) s.client.auth = std::move(*c);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(at + ".dockerCfg: " + e.what());
    }
  }
  s.client.user_agent = "registryd-packages-proxy";
  return s;
}

}  // namespace

std::vector<module_source> parse_module_sources(std::string_view text, const std::string& file) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument(file + ": not YAML: " + e.what());
  }
  std::vector<module_source> out;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    const auto& doc = docs[i];
    if (!doc.IsMap()) continue;
    const std::string where = file + (docs.size() > 1 ? " document " + std::to_string(i + 1) : std::string());
    if (scalar(child(doc, "kind"), where + ": kind") != "ModuleSource") continue;
    out.push_back(parse_one(doc, where));
  }
  return out;
}

bool module_sources::refresh() {
  if (!dir_) return false;
  std::vector<std::filesystem::path> files;
  std::string signature;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(*dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const auto ext = it->path().extension();
    if (ext != ".yaml" && ext != ".yml" && ext != ".json") continue;
    if (!it->is_regular_file(ec)) continue;
    files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::error_code e1, e2;
    const auto size = std::filesystem::file_size(f, e1);
    const auto mtime = std::filesystem::last_write_time(f, e2);
    signature += f.filename().string() + ":" + std::to_string(e1 ? 0 : size) + ":" +
                 std::to_string(e2 ? 0 : mtime.time_since_epoch().count()) + "\n";
  }
  {
    std::lock_guard lock(mutex_);
    if (signature == signature_) return false;
  }

  std::map<std::string, module_source> fresh;
  std::vector<std::string> errors;
  for (const auto& f : files) {
    const auto text = oci::read_text_file(f);
    if (!text) {
      errors.push_back(f.string() + ": cannot be read");
      continue;
    }
    try {
      for (auto& s : parse_module_sources(*text, f.string())) fresh[s.repo.str()] = std::move(s);
    } catch (const std::exception& e) {
      errors.push_back(e.what());
    }
  }
  std::lock_guard lock(mutex_);
  signature_ = std::move(signature);
  // A source whose file broke keeps its last good version (its error is reported).
  if (!errors.empty()) {
    for (auto& [key, s] : by_repo_) fresh.try_emplace(key, s);
  }
  by_repo_ = std::move(fresh);
  errors_ = std::move(errors);
  return true;
}

std::optional<module_source> module_sources::match(const oci::repository_location& repository) const {
  std::lock_guard lock(mutex_);
  const module_source* best = nullptr;
  for (const auto& [key, s] : by_repo_) {
    if (s.repo.registry != repository.registry) continue;
    const auto& p = s.repo.path;
    const bool prefix = p.empty() || repository.path == p ||
                        (repository.path.size() > p.size() && repository.path.compare(0, p.size(), p) == 0 &&
                         repository.path[p.size()] == '/');
    if (prefix && (best == nullptr || p.size() > best->repo.path.size())) best = &s;
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

std::vector<std::string> module_sources::errors() const {
  std::lock_guard lock(mutex_);
  return errors_;
}

std::size_t module_sources::size() const {
  std::lock_guard lock(mutex_);
  return by_repo_.size();
}

}  // namespace registryd::packages
