#include "unmanaged_mode.hpp"

#include <registryd/sdk/containerd.hpp>
#include <registryd/sdk/metrics_text.hpp>

namespace registryd::unmanaged {
namespace {

using sdk::metrics_text::label_value;

}  // namespace

std::optional<nlohmann::json> describe_containerd(const settings& s) {
  // The legacy variant knows only the install-time imagesRepo, not its CA or credentials:
  // writing a hosts.toml from that guess could break pulls the installation made work.
  if (s.legacy) return std::nullopt;

  auto mirror = sdk::containerd::registry_mirror(
      s.url_scheme() + "://" + s.registry_host(), s.ca,
      s.username ? std::optional<sdk::containerd::mirror_auth>({*s.username, *s.password}) : std::nullopt);
  const std::string url = mirror.url;
  return sdk::containerd::description{{{s.registry_host(), url, {std::move(mirror)}}}}.to_json();
}

unmanaged_mode::unmanaged_mode(const sdk::host& host, const nlohmann::json& settings_doc)
    : settings_(parse_settings(settings_doc)) {
  if (settings_.scheme == "HTTP" && settings_.ca) {
    host.warn("section.ca is ignored: " + settings_.images_repo + " is reached over HTTP");
  }
  host.info("Unmanaged mode: nodes pull from " + settings_.images_repo +
            (settings_.legacy ? " (legacy: node configuration left as installed)" : ""));
}

std::optional<nlohmann::json> unmanaged_mode::containerd_config() const {
  return describe_containerd(settings_);
}

void unmanaged_mode::handle(const sdk::request& /*req*/, sdk::response& res) {
  res.send_error(404, "NAME_UNKNOWN",
                 "registryd runs in Unmanaged mode: " + settings_.fixed_host +
                     " serves no images; nodes pull from " + settings_.images_repo + " directly",
                 {{"mode", "Unmanaged"}, {"imagesRepo", settings_.images_repo}});
}

void unmanaged_mode::metrics(std::string& out) const {
  out += "# HELP registryd_unmanaged_info The external registry nodes pull from in Unmanaged mode.\n";
  out += "# TYPE registryd_unmanaged_info gauge\n";
  out += "registryd_unmanaged_info{images_repo=\"" + label_value(settings_.images_repo) +
         "\",scheme=\"" + settings_.scheme + "\",legacy=\"" + (settings_.legacy ? "true" : "false") +
         "\"} 1\n";
}

}  // namespace registryd::unmanaged
