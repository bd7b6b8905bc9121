// A client of one upstream registry (OCI distribution spec v1.1 and the docker registry token
// protocol): the building block Direct and Proxy modes, `registryd mirror pull/push`, Local
// replica sync and `registryd check --images` talk to registries with. docs/upstream-client.md
// tells the whole story; in short:
//
// - HTTPS verified against the system CAs plus client_options::ca_pem, or plain HTTP.
// - Auth as the upstream asks for it: a request goes out anonymously until the upstream's
//   first 401 names a scheme. Basic: the credentials are sent from then on. Bearer: a token is
//   fetched from the challenge's realm (GET, with the credentials as Basic auth when there are
//   any), cached per (realm, service, scopes) until shortly before it expires, and requests
//   that follow fetch theirs before they go out. A 401 is retried once with a fresh token; a
//   401 without a challenge is final (UNAUTHORIZED with the upstream's message).
// - Redirects (blob storage) are followed; the registry's Authorization never goes to
//   another scheme://host:port.
// - Keep-alive connections, a small pool per scheme://host:port: concurrent requests never
//   wait for each other.
// - Streaming both ways: answer bodies are pushed to a callback piece by piece after the
//   status and headers; request bodies are pulled from a callback. Nothing holds a blob.
// - Every operation returns a value: the result, or an upstream_error that tells an upstream
//   that answered (status, its OCI error code and message) from one that could not be reached
//   (connect, timeout, tls, io).
//
// Thread-safety: one registry_client is meant to be shared by every thread of a mode; every
// member function may be called concurrently. Callbacks run on the calling thread.
#pragma once

#include <registryd/oci/client/error.hpp>
#include <registryd/oci/client/message.hpp>
#include <registryd/oci/client/options.hpp>
#include <registryd/oci/digest.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::oci::client {

// The Accept list of manifest requests: OCI manifests and indexes, docker schema2 manifests
// and manifest lists.
inline constexpr std::string_view manifest_accept =
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

// Manifests larger than this are refused (distribution's own limit is 4 MiB).
inline constexpr std::size_t max_manifest_size = 4 * 1024 * 1024;

struct manifest_descriptor {
  std::string media_type;  // Content-Type of the answer
  // Docker-Content-Digest, or computed from the body. (Initialized to the empty blob's digest
  // only because a digest has no empty state.)
  oci::digest digest = oci::digest_of("");
  std::uint64_t size = 0;  // Content-Length, or the body's size
};

struct fetched_manifest {
  manifest_descriptor descriptor;
  std::string body;  // at most max_manifest_size bytes
};

struct blob_descriptor {
  std::uint64_t size = 0;             // Content-Length
  std::optional<oci::digest> digest;  // Docker-Content-Digest, when sent
};

// Bytes first..last of a blob, both inclusive; no `last` means to the end.
struct byte_range {
  std::uint64_t first = 0;
  std::optional<std::uint64_t> last;
};

struct blob_read_options {
  std::optional<byte_range> range;
  // Hash the bytes of a whole-blob read and fail with a protocol error (after the last piece
  // was delivered) when they do not match the digest. Ranged reads are never verified.
  bool verify = true;
  std::shared_ptr<abort_handle> abort;
};

// An upload in progress, as open_upload made it and upload_chunk moved it on.
struct upload_session {
  std::string repository;
  std::string location;      // absolute URL the registry named for the upload's next step
  std::uint64_t offset = 0;  // bytes the registry has acknowledged
};

class registry_client {
 public:
  // Throws std::invalid_argument when `options.registry` is empty or `ca_pem` holds no
  // readable certificate.
  explicit registry_client(client_options options);
  ~registry_client();
  registry_client(const registry_client&) = delete;
  registry_client& operator=(const registry_client&) = delete;

  const client_options& options() const noexcept;

  // The raw exchange, for pass-through: sends `req` (auth, redirects and retries as above) and
  // hands the final answer to `handler`. Returns the final head when its status is below 400;
  // otherwise the error (and, with req.deliver_errors, the handler got that answer as well).
  // A 3xx that is not followed is a success: the caller sees it in the head.
  result<response_head> send(const request& req, const response_handler& handler = {}) const;

  // GET /v2/: reachable, and the credentials (if any) are accepted.
  outcome ping() const;

  // HEAD /v2/<repository>/manifests/<reference>. `reference` is a tag or a digest. When the
  // upstream sends no Docker-Content-Digest for a tag, the manifest is fetched to compute it.
  result<manifest_descriptor> head_manifest(std::string_view repository,
                                            std::string_view reference,
                                            std::string_view accept = manifest_accept) const;
  // GET /v2/<repository>/manifests/<reference>. A digest reference is verified against the
  // body. 404 is MANIFEST_UNKNOWN unless the upstream says otherwise.
  result<fetched_manifest> get_manifest(std::string_view repository, std::string_view reference,
                                        std::string_view accept = manifest_accept) const;

  // HEAD /v2/<repository>/blobs/<digest>. 404 is BLOB_UNKNOWN.
  result<blob_descriptor> head_blob(std::string_view repository, const oci::digest& digest) const;
  // head_blob, with 404 as false.
  result<bool> blob_exists(std::string_view repository, const oci::digest& digest) const;
  // GET /v2/<repository>/blobs/<digest> streamed to `handler` (status 200, or 206 for a
  // range). Redirects to blob storage are followed.
  result<response_head> get_blob(std::string_view repository, const oci::digest& digest,
                                 const response_handler& handler,
                                 const blob_read_options& options = {}) const;

  // POST /v2/<repository>/blobs/uploads/?mount=<digest>&from=<from>: true when the upstream
  // mounted the blob, false when it did not (the upload it opened instead is cancelled).
  result<bool> mount_blob(std::string_view repository, const oci::digest& digest,
                          std::string_view from_repository) const;
  // Uploads a blob: POST to open an upload, then one PUT with the whole body streamed from
  // `body` (monolithic upload; give body.length). The upstream verifies the digest.
  outcome push_blob(std::string_view repository, const oci::digest& digest,
                   request_body body) const;

  // The steps of an upload, for callers that send a large blob in chunks and must resume a
  // chunk a broken connection cut short, or cancel an upload they abandon (OCI distribution
  // "pushing a blob in chunks"): open, then chunks, then finish; or cancel.
  // POST /v2/<repository>/blobs/uploads/.
  result<upload_session> open_upload(std::string_view repository) const;
  // PATCH the next `bytes` (Content-Range from session.offset). On success the session's
  // location and offset move on; on failure they stay, and refresh_upload says what arrived.
  outcome upload_chunk(upload_session& session, std::string_view bytes) const;
  // GET the upload's status: session.offset becomes what the registry holds (its Range header).
  outcome refresh_upload(upload_session& session) const;
  // PUT ?digest=: ends the upload, with `rest` as its last bytes (none when not given). The
  // upstream verifies the digest.
  outcome finish_upload(const upload_session& session, const oci::digest& digest,
                        std::optional<request_body> rest = std::nullopt) const;
  // DELETE the upload: the registry drops what it received.
  outcome cancel_upload(const upload_session& session) const;
  // PUT /v2/<repository>/manifests/<reference> with `media_type` as Content-Type. Returns
  // the digest the upstream reports (or the body's).
  result<oci::digest> push_manifest(std::string_view repository, std::string_view reference,
                                    std::string_view media_type, std::string_view body) const;

  // GET /v2/<repository>/tags/list, every page (following Link), in the upstream's order.
  // `page_size` > 0 asks for pages of that size (`n`). At most `max_entries` names.
  result<std::vector<std::string>> list_tags(std::string_view repository,
                                             std::size_t page_size = 0,
                                             std::size_t max_entries = 1000000) const;
  // GET /v2/_catalog, every page (following Link).
  result<std::vector<std::string>> catalog(std::size_t page_size = 0,
                                           std::size_t max_entries = 1000000) const;
  // GET /v2/<repository>/referrers/<digest>[?artifactType=...]: the image index as sent.
  // An upstream without the referrers API answers 404 (NAME_UNKNOWN or similar).
  result<fetched_manifest> referrers(std::string_view repository, const oci::digest& digest,
                                     std::string_view artifact_type = {}) const;

  // Connections kept for reuse, over every host (for tests and metrics).
  std::size_t idle_connections() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace registryd::oci::client
