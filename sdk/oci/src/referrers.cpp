#include <registryd/oci/referrers.hpp>

#include <registryd/oci/media_types.hpp>

namespace registryd::oci {

referrers_response build_referrers(const digest& subject, const std::vector<referrer_entry>& entries,
                                   std::optional<std::string_view> artifact_type_filter) {
  referrers_response out;
  out.filter_applied = artifact_type_filter.has_value() && !artifact_type_filter->empty();
  nlohmann::json list = nlohmann::json::array();
  for (const auto& e : entries) {
    if (e.of == nullptr || e.parsed == nullptr) continue;
    if (!e.parsed->subject || e.parsed->subject->digest != subject) continue;
    const std::string artifact = e.parsed->artifact_type();
    if (out.filter_applied && artifact != *artifact_type_filter) continue;
    descriptor d(e.of->media_type, e.of->digest, e.of->size);
    d.artifact_type = artifact;
    d.annotations = e.parsed->annotations;
    list.push_back(d.to_json());
  }
  out.index = nlohmann::json::object();
  out.index["schemaVersion"] = 2;
  out.index["mediaType"] = media_type::oci_index;
  out.index["manifests"] = std::move(list);
  return out;
}

}  // namespace registryd::oci
