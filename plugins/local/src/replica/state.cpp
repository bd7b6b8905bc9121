#include "replica/state.hpp"

#include <registryd/oci/reference.hpp>

#include <string_view>

namespace registryd::local::replica {
namespace {

using nlohmann::json;

std::optional<std::string> check_time(const json& v, const std::string& where, unix_ns& out) {
  if (!v.is_number_integer()) return where + " must be an integer (nanoseconds since the epoch)";
  out = v.get<unix_ns>();
  return std::nullopt;
}

std::optional<std::string> check_digest(const json& v, const std::string& where, std::optional<oci::digest>& out) {
  if (v.is_string()) out = oci::digest::parse(v.get<std::string>());
  if (!out) return where + " must be a sha256 or sha512 digest";
  return std::nullopt;
}

const json* member(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::optional<std::string> read_repository(const std::string& name, const json& j, repository_state& out) {
  const std::string at = "repositories[\"" + name + "\"]";
  if (!j.is_object()) return at + " must be an object";
  if (const json* tags = member(j, "tags")) {
    if (!tags->is_object()) return at + ".tags must be an object";
    for (const auto& [tag, v] : tags->items()) {
      const std::string where = at + ".tags[\"" + tag + "\"]";
      if (!oci::is_valid_tag(tag)) return where + " is not a valid tag";
      if (!v.is_object()) return where + " must be an object";
      std::optional<oci::digest> d;
      unix_ns t = 0;
      if (auto e = check_digest(v.value("digest", json()), where + ".digest", d)) return e;
      if (auto e = check_time(v.value("updated", json()), where + ".updated", t)) return e;
      out.tags.insert_or_assign(tag, tag_entry{*d, t});
    }
  }
  if (const json* tags = member(j, "deletedTags")) {
    if (!tags->is_object()) return at + ".deletedTags must be an object";
    for (const auto& [tag, v] : tags->items()) {
      const std::string where = at + ".deletedTags[\"" + tag + "\"]";
      if (!oci::is_valid_tag(tag)) return where + " is not a valid tag";
      if (!v.is_object()) return where + " must be an object";
      std::optional<oci::digest> d;
      unix_ns t = 0;
      if (auto e = check_digest(v.value("digest", json()), where + ".digest", d)) return e;
      if (auto e = check_time(v.value("deleted", json()), where + ".deleted", t)) return e;
      out.deleted_tags.insert_or_assign(tag, tag_tombstone{*d, t});
    }
  }
  for (const char* key : {"manifests", "deletedManifests"}) {
    const json* m = member(j, key);
    if (m == nullptr) continue;
    if (!m->is_object()) return at + "." + key + " must be an object";
    auto& target = std::string_view(key) == "manifests" ? out.manifests : out.deleted_manifests;
    for (const auto& [text, v] : m->items()) {
      const std::string where = at + "." + key + "[\"" + text + "\"]";
      std::optional<oci::digest> d;
      unix_ns t = 0;
      if (auto e = check_digest(json(text), where, d)) return e;
      if (auto e = check_time(v, where, t)) return e;
      target.insert_or_assign(*d, t);
    }
  }
  return std::nullopt;
}

}  // namespace

json to_json(const replica_state& state) {
  json repos = json::object();
  for (const auto& [name, r] : state.repositories) {
    json tags = json::object();
    for (const auto& [tag, e] : r.tags) tags[tag] = {{"digest", e.digest.str()}, {"updated", e.updated}};
    json manifests = json::object();
    for (const auto& [d, t] : r.manifests) manifests[d.str()] = t;
    json deleted_tags = json::object();
    for (const auto& [tag, e] : r.deleted_tags) {
      deleted_tags[tag] = {{"digest", e.digest.str()}, {"deleted", e.deleted}};
    }
    json deleted_manifests = json::object();
    for (const auto& [d, t] : r.deleted_manifests) deleted_manifests[d.str()] = t;
    repos[name] = {{"tags", std::move(tags)},
                   {"manifests", std::move(manifests)},
                   {"deletedTags", std::move(deleted_tags)},
                   {"deletedManifests", std::move(deleted_manifests)}};
  }
  return {{"version", state_format_version}, {"repositories", std::move(repos)}};
}

result<replica_state> state_from_json(const json& doc) {
  if (!doc.is_object()) return fail("the replica state must be a JSON object");
  const json* version = member(doc, "version");
  if (version == nullptr || !version->is_number_integer() || version->get<int>() != state_format_version) {
    return fail("the replica state has version " + (version ? version->dump() : std::string("(none)")) +
                "; this registryd reads version " + std::to_string(state_format_version));
  }
  replica_state out;
  const json* repos = member(doc, "repositories");
  if (repos == nullptr) return out;
  if (!repos->is_object()) return fail("repositories must be an object");
  for (const auto& [name, r] : repos->items()) {
    if (!oci::is_valid_repository_name(name)) return fail("repositories[\"" + name + "\"] is not a repository name");
    repository_state rs;
    if (auto e = read_repository(name, r, rs)) return fail(*e);
    out.repositories.insert_or_assign(name, std::move(rs));
  }
  return out;
}

}  // namespace registryd::local::replica
