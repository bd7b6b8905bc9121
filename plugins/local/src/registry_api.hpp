// The OCI distribution API v1.1 over registryd's storage: every endpoint, with the statuses,
// headers and error codes the spec names (and, where it is silent, what distribution does).
// See docs/local-mode.md for the endpoint table.
//
// Thread-safety: handle() runs concurrently on many threads; all state is in the stores
// (themselves thread-safe) and in atomic counters.
#pragma once

#include <registryd/oci/dispatcher.hpp>
#include <registryd/oci/storage/blob_store.hpp>
#include <registryd/oci/storage/repository_store.hpp>
#include <registryd/oci/storage/upload_store.hpp>
#include <registryd/sdk/plugin.hpp>

#include <atomic>
#include <cstdint>
#include <string>

namespace registryd::local {

struct api_counters {
  std::atomic<std::uint64_t> blobs_pushed{0};
  std::atomic<std::uint64_t> blob_bytes_pushed{0};
  std::atomic<std::uint64_t> blobs_mounted{0};
  std::atomic<std::uint64_t> manifests_pushed{0};
  std::atomic<std::uint64_t> digest_mismatches{0};
  std::atomic<std::uint64_t> blob_reads{0};
  std::atomic<std::uint64_t> manifest_reads{0};
};

class registry_api {
 public:
  // The stores must outlive the API.
  registry_api(const oci::storage::blob_store& blobs, const oci::storage::repository_store& repos,
               oci::storage::upload_store& uploads);

  // Its dispatcher's handlers hold `this`: neither copied nor moved.
  registry_api(const registry_api&) = delete;
  registry_api& operator=(const registry_api&) = delete;

  void handle(const sdk::request& req, sdk::response& res);

  const api_counters& counters() const noexcept { return counters_; }

  // The default and largest page of _catalog (a client may ask for fewer with ?n=).
  static constexpr std::uint64_t catalog_page = 1000;

 private:
  // catalog, tags list, referrers
  void get_catalog(const sdk::request& req, sdk::response& res);
  void get_tags(const sdk::request& req, sdk::response& res, const oci::target& r);
  void get_referrers(const sdk::request& req, sdk::response& res, const oci::target& r);
  // manifests
  void get_manifest(const sdk::request& req, sdk::response& res, const oci::target& r);
  void put_manifest(const sdk::request& req, sdk::response& res, const oci::target& r);
  void delete_manifest(const sdk::request& req, sdk::response& res, const oci::target& r);
  // blobs
  void get_blob(const sdk::request& req, sdk::response& res, const oci::target& r);
  void delete_blob(const sdk::request& req, sdk::response& res, const oci::target& r);
  // uploads
  void start_upload(const sdk::request& req, sdk::response& res, const oci::target& r);
  void upload_status(const sdk::request& req, sdk::response& res, const oci::target& r);
  void patch_upload(const sdk::request& req, sdk::response& res, const oci::target& r);
  void put_upload(const sdk::request& req, sdk::response& res, const oci::target& r);
  void cancel_upload(const sdk::request& req, sdk::response& res, const oci::target& r);

  // Streams the request body into a fresh blob, verifies it against `d`, links it into `name`
  // and answers 201 (monolithic POST with ?digest=).
  void monolithic_upload(const sdk::request& req, sdk::response& res, const std::string& name,
                         const oci::digest& d);
  // 201 Created for a blob now linked in `name`.
  void blob_created(sdk::response& res, const std::string& name, const oci::digest& d);
  // The headers every upload-session answer carries (Location, Range, Docker-Upload-UUID).
  void session_headers(sdk::response& res, const std::string& name, const std::string& id,
                       std::uint64_t size);

  const oci::storage::blob_store& blobs_;
  const oci::storage::repository_store& repos_;
  oci::storage::upload_store& uploads_;
  api_counters counters_;
  oci::dispatcher api_;
};

}  // namespace registryd::local
