#include <registryd/oci/manifest.hpp>

#include <registryd/oci/media_types.hpp>

#include <limits>

namespace registryd::oci {
namespace {

using json = nlohmann::json;

error invalid(std::string message) { return error{std::move(message)}; }

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Reads an optional string member; error when present and not a string.
result<std::string> optional_string(const json& j, const char* key, std::string_view where) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return invalid(std::string(where) + "." + key + " is not a string");
  return it->get<std::string>();
}

result<annotations_map> read_annotations(const json& j, std::string_view where) {
  annotations_map out;
  const auto it = j.find("annotations");
  if (it == j.end() || it->is_null()) return out;
  const std::string name = where.empty() ? "annotations" : std::string(where) + ".annotations";
  if (!it->is_object()) return invalid(name + " is not an object");
  for (const auto& [key, value] : it->items()) {
    if (!value.is_string()) return invalid(name + "." + key + " is not a string");
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

result<std::vector<descriptor>> read_descriptor_array(const json& doc, const char* key,
                                                      bool required) {
  std::vector<descriptor> out;
  const auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) {
    if (required) return invalid(std::string(key) + " is missing");
    return out;
  }
  if (!it->is_array()) return invalid(std::string(key) + " is not an array");
  out.reserve(it->size());
  for (std::size_t i = 0; i < it->size(); ++i) {
    auto d = descriptor::from_json((*it)[i], std::string(key) + "[" + std::to_string(i) + "]");
    if (!d) return error{d.error_message()};
    out.push_back(std::move(*d));
  }
  return out;
}

// What the shape of a document without any stated media type says it is.
std::string infer_media_type(const json& doc) {
  if (doc.contains("manifests")) return std::string(media_type::oci_index);
  if (doc.contains("config")) return std::string(media_type::oci_manifest);
  return {};
}

}  // namespace

json descriptor::to_json() const {
  json j = json::object();
  j["mediaType"] = media_type;
  j["digest"] = digest.str();
  j["size"] = size;
  if (!urls.empty()) j["urls"] = urls;
  if (!annotations.empty()) j["annotations"] = annotations;
  if (data) j["data"] = *data;
  if (!platform.is_null()) j["platform"] = platform;
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  return j;
}

result<descriptor> descriptor::from_json(const json& j, std::string_view where) {
  const std::string w(where);
  if (!j.is_object()) return invalid(w + " is not an object");

  const auto mt = j.find("mediaType");
  if (mt == j.end() || !mt->is_string()) return invalid(w + ".mediaType is missing");
  const auto media = mt->get<std::string>();
  if (!is_well_formed_media_type(media)) {
    return invalid(w + ".mediaType " + in_quotes(media) + " is not a media type");
  }

  const auto dg = j.find("digest");
  if (dg == j.end() || !dg->is_string()) return invalid(w + ".digest is missing");
  auto parsed = digest::parse(dg->get<std::string>());
  if (!parsed) {
    return invalid(w + ".digest " + in_quotes(dg->get<std::string>()) +
                   " is not a sha256 or sha512 digest");
  }

  const auto sz = j.find("size");
  if (sz == j.end()) return invalid(w + ".size is missing");
  std::int64_t size = -1;
  if (sz->is_number_unsigned()) {
    const auto u = sz->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return invalid(w + ".size is too large");
    }
    size = static_cast<std::int64_t>(u);
  } else if (sz->is_number_integer()) {
    size = sz->get<std::int64_t>();
  } else {
    return invalid(w + ".size is not an integer");
  }
  if (size < 0) return invalid(w + ".size is negative");

  descriptor d(media, std::move(*parsed), size);

  auto artifact = optional_string(j, "artifactType", w);
  if (!artifact) return error{artifact.error_message()};
  if (!artifact->empty() && !is_well_formed_media_type(*artifact)) {
    return invalid(w + ".artifactType " + in_quotes(*artifact) + " is not a media type");
  }
  d.artifact_type = std::move(*artifact);

  auto annotations = read_annotations(j, w);
  if (!annotations) return error{annotations.error_message()};
  d.annotations = std::move(*annotations);

  if (const auto u = j.find("urls"); u != j.end() && !u->is_null()) {
    if (!u->is_array()) return invalid(w + ".urls is not an array");
    for (const auto& url : *u) {
      if (!url.is_string()) return invalid(w + ".urls holds a non-string");
      d.urls.push_back(url.get<std::string>());
    }
  }

  if (const auto p = j.find("platform"); p != j.end() && !p->is_null()) {
    if (!p->is_object()) return invalid(w + ".platform is not an object");
    for (const char* key : {"architecture", "os"}) {
      const auto f = p->find(key);
      if (f == p->end() || !f->is_string()) {
        return invalid(w + ".platform." + key + " is missing");
      }
    }
    d.platform = *p;
  }

  if (const auto data = j.find("data"); data != j.end() && !data->is_null()) {
    if (!data->is_string()) return invalid(w + ".data is not a string");
    d.data = data->get<std::string>();
  }
  return d;
}

std::string manifest::artifact_type() const {
  if (!declared_artifact_type.empty()) return declared_artifact_type;
  if (kind == manifest_kind::image && config) return config->media_type;
  return {};
}

std::vector<descriptor> manifest::blobs() const {
  std::vector<descriptor> out;
  if (config) out.push_back(*config);
  out.insert(out.end(), layers.begin(), layers.end());
  return out;
}

std::optional<std::string> manifest::annotation(std::string_view key) const {
  const auto it = annotations.find(std::string(key));
  if (it == annotations.end()) return std::nullopt;
  return it->second;
}

result<manifest> parse_manifest(std::string_view bytes, std::string_view content_type) {
  if (bytes.size() > max_manifest_size) {
    return invalid("manifest is " + std::to_string(bytes.size()) +
                   " bytes, larger than the 4 MiB limit");
  }
  const std::string header_type = essence_of(content_type);
  if (is_schema1_media_type(header_type)) {
    return invalid("Docker schema 1 manifests (" + header_type +
                   ") are not supported; push schema 2 or OCI (skopeo copy --format v2s2)");
  }

  const json doc = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return invalid("manifest is not valid JSON");
  if (!doc.is_object()) return invalid("manifest is not a JSON object");

  const auto version = doc.find("schemaVersion");
  if (version == doc.end()) return invalid("schemaVersion is missing");
  if (!version->is_number_integer()) return invalid("schemaVersion is not an integer");
  if (version->get<std::int64_t>() == 1) {
    return invalid("Docker schema 1 manifests are not supported; push schema 2 or OCI "
                   "(skopeo copy --format v2s2)");
  }
  if (version->get<std::int64_t>() != 2) {
    return invalid("schemaVersion is " + version->dump() + ", not 2");
  }

  auto doc_type = optional_string(doc, "mediaType", "manifest");
  if (!doc_type) return error{doc_type.error_message()};

  std::string type;
  if (!doc_type->empty() && !header_type.empty() && *doc_type != header_type) {
    return invalid("mediaType " + in_quotes(*doc_type) + " does not match the Content-Type " +
                   in_quotes(header_type));
  }
  if (!doc_type->empty()) {
    type = *doc_type;
  } else if (!header_type.empty()) {
    type = header_type;
  } else {
    type = infer_media_type(doc);
  }
  if (type.empty()) return invalid("manifest has no mediaType and no Content-Type");
  if (is_schema1_media_type(type)) {
    return invalid("Docker schema 1 manifests are not supported; push schema 2 or OCI "
                   "(skopeo copy --format v2s2)");
  }
  if (!is_any_manifest_media_type(type)) {
    return invalid("media type " + in_quotes(type) + " is not a manifest media type");
  }
  // Docker's formats have no optional mediaType: a document without one is not schema 2.
  if (doc_type->empty() &&
      (type == media_type::docker_manifest || type == media_type::docker_manifest_list)) {
    return invalid("a Docker schema 2 document must state its mediaType");
  }

  manifest m;
  m.media_type = type;
  m.schema_version = 2;

  auto annotations = read_annotations(doc, "");
  if (!annotations) return error{annotations.error_message()};
  m.annotations = std::move(*annotations);

  auto artifact = optional_string(doc, "artifactType", "manifest");
  if (!artifact) return error{artifact.error_message()};
  if (!artifact->empty() && !is_well_formed_media_type(*artifact)) {
    return invalid("artifactType " + in_quotes(*artifact) + " is not a media type");
  }
  m.declared_artifact_type = std::move(*artifact);

  if (const auto s = doc.find("subject"); s != doc.end() && !s->is_null()) {
    auto subject = descriptor::from_json(*s, "subject");
    if (!subject) return error{subject.error_message()};
    m.subject = std::move(*subject);
  }

  if (is_index_media_type(type)) {
    m.kind = manifest_kind::index;
    if (doc.contains("config") || doc.contains("layers")) {
      return invalid("an index (" + type + ") must not have config or layers");
    }
    auto children = read_descriptor_array(doc, "manifests", /*required=*/true);
    if (!children) return error{children.error_message()};
    m.manifests = std::move(*children);
    return m;
  }

  m.kind = manifest_kind::image;
  if (doc.contains("manifests")) {
    return invalid("an image manifest (" + type + ") must not have manifests");
  }
  const auto config = doc.find("config");
  if (config == doc.end() || config->is_null()) return invalid("config is missing");
  auto cfg = descriptor::from_json(*config, "config");
  if (!cfg) return error{cfg.error_message()};
  m.config = std::move(*cfg);
  auto layers = read_descriptor_array(doc, "layers", /*required=*/true);
  if (!layers) return error{layers.error_message()};
  m.layers = std::move(*layers);

  if (m.config->media_type == media_type::oci_empty && m.declared_artifact_type.empty()) {
    return invalid("artifactType is required when config is the empty descriptor (" +
                   std::string(media_type::oci_empty) + ")");
  }
  return m;
}

descriptor describe_manifest(std::string_view bytes, const manifest& m) {
  return descriptor(m.media_type, digest_of(bytes), static_cast<std::int64_t>(bytes.size()));
}

}  // namespace registryd::oci
