// What `registryd gc`, `fsck` and `rotate` share: the store under the data dir (the root the
// Local plugin serves, host.dataDir) opened for maintenance, and the --grace style durations.
#pragma once

#include "host_flags.hpp"

#include <registryd/oci/storage/blob_store.hpp>
#include <registryd/oci/storage/repository_store.hpp>
#include <registryd/oci/storage/upload_store.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace registryd::cli {

// The three storage classes over one root. Built only over an existing store: maintenance
// must not create an empty store where a mistyped --data-dir points.
struct opened_store {
  std::unique_ptr<oci::storage::blob_store> blobs;
  std::unique_ptr<oci::storage::repository_store> repos;
  std::unique_ptr<oci::storage::upload_store> uploads;
};

// The store under the data dir the host flags name, or nullopt after printing why to stderr
// (prefixed with `command`).
std::optional<opened_store> open_store(const host_flags& host, const std::string& command);

// "1h", "30m", "90s", "1h30m", "0s": the ttl syntax of the ModuleConfig; nullopt when invalid.
std::optional<std::chrono::seconds> parse_duration(const std::string& text);

// A CLI11 validator for parse_duration.
CLI::Validator duration_validator();

}  // namespace registryd::cli
