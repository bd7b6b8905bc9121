#include "store_cli.hpp"

#include <registryd/config/module_config.hpp>

#include <iostream>
#include <stdexcept>
#include <sys/stat.h>

namespace registryd::cli {

std::optional<opened_store> open_store(const host_flags& host, const std::string& command) {
  const auto settings = host.load_or_report();
  if (!settings) return std::nullopt;
  const auto root = settings->data_dir;
  struct ::stat st {};
  if (::stat((root / "blobs").c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    std::cerr << "registryd " << command << ": there is no image store under " << root.string()
              << " (no blobs/ directory); --data-dir names the Local mode's storage root\n";
    return std::nullopt;
  }
  try {
    opened_store s;
    s.blobs = std::make_unique<oci::storage::blob_store>(root);
    s.repos = std::make_unique<oci::storage::repository_store>(*s.blobs, root);
    s.uploads = std::make_unique<oci::storage::upload_store>(*s.blobs);
    return s;
  } catch (const std::runtime_error& e) {
    std::cerr << "registryd " << command << ": " << e.what() << "\n";
    return std::nullopt;
  }
}

std::optional<std::chrono::seconds> parse_duration(const std::string& text) {
  auto d = config::parse_duration(text);
  if (!d) return std::nullopt;
  return *d;
}

CLI::Validator duration_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (parse_duration(value)) return {};
        return "\"" + value + "\" is not a duration like 1h, 30m, 90s, 1h30m or 0s";
      },
      "DURATION");
}

}  // namespace registryd::cli
