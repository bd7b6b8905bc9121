// A store in a scratch directory with images built from small blobs, and ways to make files
// look old: what the GC, fsck and rotation tests share.
#pragma once

#include <registryd/oci/digest.hpp>
#include <registryd/oci/storage/blob_store.hpp>
#include <registryd/oci/storage/repository_store.hpp>
#include <registryd/oci/storage/upload_store.hpp>

#include <test_support.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fcntl.h>
#include <filesystem>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace registryd::test {

namespace storage = oci::storage;

inline constexpr const char* oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* oci_index = "application/vnd.oci.image.index.v1+json";

// Sets the mtime (and atime) of `p` to `age` ago, without following a symlink.
inline void make_old(const fs::path& p, std::chrono::seconds age = std::chrono::hours(2)) {
  const auto t = std::chrono::system_clock::now() - age;
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  struct ::timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = static_cast<time_t>(ns / 1000000000);
  ts[0].tv_nsec = ts[1].tv_nsec = static_cast<long>(ns % 1000000000);
  REQUIRE(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
}

// Every regular file below `dir`, as it is now.
inline std::vector<fs::path> files_below(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct test_store {
  scratch_dir dir;
  storage::blob_store blobs{dir.path()};
  storage::repository_store repos{blobs, dir.path()};
  storage::upload_store uploads{blobs};

  const fs::path& root() const { return dir.path(); }

  oci::digest blob(const std::string& content) {
    const oci::digest d = oci::digest_of(content);
    REQUIRE(blobs.put(content, d));
    return d;
  }
  oci::digest layer(const std::string& repo, const std::string& content) {
    const oci::digest d = blob(content);
    REQUIRE(repos.link_blob(repo, d));
    return d;
  }

  static nlohmann::json desc(const char* media_type, const oci::digest& d, std::size_t size) {
    return {{"mediaType", media_type}, {"digest", d.str()}, {"size", size}};
  }

  // Stores `bytes` as a manifest of `repo`, tagged when `tag` is given.
  oci::digest put(const std::string& repo, const std::string& bytes, const char* media_type,
                  std::optional<std::string> tag = std::nullopt, std::optional<oci::digest> subject = std::nullopt) {
    storage::manifest_put p{.bytes = bytes,
                            .digest = oci::digest_of(bytes),
                            .media_type = media_type,
                            .subject = subject,
                            .referrer_descriptor = nullptr,
                            .tag = std::move(tag)};
    if (subject) {
      p.referrer_descriptor = {{"mediaType", media_type},
                               {"digest", p.digest.str()},
                               {"size", bytes.size()},
                               {"artifactType", "application/vnd.example.signature"}};
    }
    REQUIRE(repos.put_manifest(repo, p));
    return p.digest;
  }

  // An image: a config and one layer per entry of `layers`, linked into `repo`; its manifest
  // is tagged when `tag` is given. With `subject`, the manifest is a referrer of it.
  oci::digest image(const std::string& repo, const std::string& config, const std::vector<std::string>& layers,
                    std::optional<std::string> tag = std::nullopt, std::optional<oci::digest> subject = std::nullopt) {
    const oci::digest c = layer(repo, config);
    nlohmann::json m = {{"schemaVersion", 2},
                        {"mediaType", oci_manifest},
                        {"config", desc("application/vnd.oci.image.config.v1+json", c, config.size())},
                        {"layers", nlohmann::json::array()}};
    for (const std::string& l : layers) {
      m["layers"].push_back(desc("application/vnd.oci.image.layer.v1.tar+gzip", layer(repo, l), l.size()));
    }
    if (subject) {
      m["artifactType"] = "application/vnd.example.signature";
      m["subject"] = desc(oci_manifest, *subject, 1);
    }
    return put(repo, m.dump(), oci_manifest, std::move(tag), subject);
  }

  // An index of `children` (manifests `repo` holds), tagged when `tag` is given.
  oci::digest index(const std::string& repo, const std::vector<oci::digest>& children,
                    std::optional<std::string> tag = std::nullopt) {
    nlohmann::json m = {{"schemaVersion", 2}, {"mediaType", oci_index}, {"manifests", nlohmann::json::array()}};
    for (const oci::digest& c : children) {
      auto size = blobs.stat(c);
      REQUIRE(size);
      auto entry = desc(oci_manifest, c, static_cast<std::size_t>(*size));
      entry["platform"] = {{"architecture", "amd64"}, {"os", "linux"}};
      m["manifests"].push_back(entry);
    }
    return put(repo, m.dump(), oci_index, std::move(tag));
  }

  // Makes every file of the store (blobs, links, revisions, tags, uploads) `age` old.
  void age_everything(std::chrono::seconds age = std::chrono::hours(2)) {
    for (const fs::path& p : files_below(root())) {
      if (p.filename() != "gc.lock") make_old(p, age);
    }
  }

  bool linked(const std::string& repo, const oci::digest& d) const { return repos.stat_blob(repo, d).has_value(); }
};

}  // namespace registryd::test
