// Two real replicas in one process: a store each (blob store, repositories, journal), images
// pushed straight into the store as the API would, and a peer_source that serves one
// replica's store to the other's engine, counting and optionally failing or delaying fetches.
#pragma once

#include "replica/local_replica.hpp"
#include "replica/peer.hpp"
#include <registryd/oci/storage/blob_store.hpp>
#include <registryd/oci/storage/repository_store.hpp>

#include <test_support.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace registryd::test {

using oci::digest;
using oci::digest_of;
namespace replica = local::replica;
namespace storage = oci::storage;

inline constexpr const char* oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* oci_index = "application/vnd.oci.image.index.v1+json";

struct replica_fixture {
  scratch_dir dir;
  storage::blob_store blobs{dir.path()};
  storage::repository_store repos{blobs, dir.path()};
  replica::local_replica local{repos};

  digest blob(const std::string& repo, const std::string& content) {
    const digest d = digest_of(content);
    REQUIRE(blobs.put(content, d));
    REQUIRE(repos.link_blob(repo, d));
    return d;
  }

  digest put_manifest(const std::string& repo, const std::string& bytes, const char* media_type,
                      std::optional<std::string> tag) {
    storage::manifest_put put{.bytes = bytes,
                              .digest = digest_of(bytes),
                              .media_type = media_type,
                              .subject = std::nullopt,
                              .referrer_descriptor = nullptr,
                              .tag = std::move(tag)};
    REQUIRE(repos.put_manifest(repo, put));
    return put.digest;
  }

  // An image manifest over a config and the given layers; returns its digest. Its bytes go
  // to *bytes_out when asked.
  digest image(const std::string& repo, std::optional<std::string> tag, const std::vector<std::string>& layers,
               const std::string& config = "{\"architecture\":\"amd64\",\"os\":\"linux\"}",
               std::string* bytes_out = nullptr) {
    const digest c = blob(repo, config);
    nlohmann::json ls = nlohmann::json::array();
    for (const auto& l : layers) {
      const digest d = blob(repo, l);
      ls.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", d.str()}, {"size", l.size()}});
    }
    const nlohmann::json m = {
        {"schemaVersion", 2},
        {"mediaType", oci_manifest},
        {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", c.str()}, {"size", config.size()}}},
        {"layers", ls}};
    const std::string bytes = m.dump();
    if (bytes_out) *bytes_out = bytes;
    return put_manifest(repo, bytes, oci_manifest, std::move(tag));
  }

  digest index(const std::string& repo, std::optional<std::string> tag,
               const std::vector<std::pair<digest, std::string>>& children_with_bytes) {
    nlohmann::json ms = nlohmann::json::array();
    for (const auto& [d, bytes] : children_with_bytes) {
      ms.push_back({{"mediaType", oci_manifest},
                    {"digest", d.str()},
                    {"size", bytes.size()},
                    {"platform", {{"architecture", "arch" + std::to_string(ms.size())}, {"os", "linux"}}}});
    }
    const nlohmann::json idx = {{"schemaVersion", 2}, {"mediaType", oci_index}, {"manifests", ms}};
    return put_manifest(repo, idx.dump(), oci_index, std::move(tag));
  }

  std::optional<digest> tag_of(const std::string& repo, const std::string& tag) const {
    auto r = repos.resolve_tag(repo, tag);
    if (!r) return std::nullopt;
    return *r;
  }

  // Every manifest held has all its blobs and children: what sync must never break.
  bool complete() const {
    for (const std::string& repo : repos.repositories()) {
      bool ok = true;
      repos.for_each_manifest(repo, [&](const storage::manifest_record& r) {
        auto opened = repos.open_manifest(repo, r.digest);
        if (!opened) {
          ok = false;
          return;
        }
        auto bytes = opened->file.read_all();
        const auto j = nlohmann::json::parse(*bytes);
        if (j.contains("config") && !repos.stat_blob(repo, *digest::parse(j["config"]["digest"].get<std::string>()))) ok = false;
        for (const auto& l : j.value("layers", nlohmann::json::array())) {
          if (!repos.stat_blob(repo, *digest::parse(l["digest"].get<std::string>()))) ok = false;
        }
        for (const auto& c : j.value("manifests", nlohmann::json::array())) {
          if (!repos.has_manifest(repo, *digest::parse(c["digest"].get<std::string>()))) ok = false;
        }
      });
      if (!ok) return false;
    }
    return true;
  }
};

// Serves `source`'s store as a peer.
class store_peer final : public replica::peer_source {
 public:
  store_peer(replica_fixture& source, std::string name) : source_(source), name_(std::move(name)) {}

  const std::string& name() const noexcept override { return name_; }

  oci::client::result<replica::replica_state> fetch_state() override {
    if (down) return oci::client::make_error(oci::client::error_kind::connect, "connection refused");
    return source_.local.observe();
  }

  oci::client::result<oci::client::fetched_manifest> fetch_manifest(std::string_view repository,
                                                                    const digest& d) override {
    if (before_fetch) before_fetch("manifest", d);
    auto opened = source_.repos.open_manifest(repository, d);
    if (!opened) return oci::client::make_error(oci::client::error_kind::http, "MANIFEST_UNKNOWN", 404);
    auto bytes = opened->file.read_all();
    oci::client::fetched_manifest m;
    m.descriptor.media_type = opened->record.media_type;
    m.descriptor.digest = d;
    m.descriptor.size = bytes->size();
    m.body = *bytes;
    std::lock_guard lock(mutex_);
    ++manifest_fetches[d.str()];
    return m;
  }

  oci::client::result<std::uint64_t> fetch_blob(std::string_view repository, const digest& d,
                                                const std::function<bool(std::string_view)>& sink) override {
    if (before_fetch) before_fetch("blob", d);
    {
      std::lock_guard lock(mutex_);
      ++blob_fetches[d.str()];
      if (fail_blob && *fail_blob == d) {
        fail_blob.reset();
        return oci::client::make_error(oci::client::error_kind::io, "connection reset in the middle");
      }
    }
    if (blob_delay.count() > 0) std::this_thread::sleep_for(blob_delay);
    auto opened = source_.repos.open_blob(repository, d);
    if (!opened) return oci::client::make_error(oci::client::error_kind::http, "BLOB_UNKNOWN", 404);
    auto bytes = opened->read_all();
    std::string_view rest = *bytes;
    while (!rest.empty()) {
      const auto piece = rest.substr(0, 65536);
      if (!sink(piece)) return oci::client::make_error(oci::client::error_kind::canceled, "sink stopped");
      rest.remove_prefix(piece.size());
    }
    return static_cast<std::uint64_t>(bytes->size());
  }

  int blob_count(const digest& d) {
    std::lock_guard lock(mutex_);
    return blob_fetches[d.str()];
  }
  int total_blob_fetches() {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& [k, v] : blob_fetches) n += v;
    return n;
  }

  bool down = false;
  std::optional<digest> fail_blob;
  std::chrono::milliseconds blob_delay{0};
  std::function<void(const char* what, const digest& d)> before_fetch;
  std::map<std::string, int> blob_fetches;
  std::map<std::string, int> manifest_fetches;

 private:
  replica_fixture& source_;
  std::string name_;
  std::mutex mutex_;
};

}  // namespace registryd::test
