// The two ends of a cache fill from an upstream registry, shared by the Proxy mode and the
// packages proxy: the fetch that streams a blob from the upstream into a fill, and the
// response body that streams a fill's bytes to one client.
//
// Thread-safety: fetch_upstream_blob runs on the fill's thread; a fill_body belongs to the
// host's stream reader.
#pragma once

#include <registryd/oci/cache/blob_fill.hpp>
#include <registryd/oci/client/registry_client.hpp>
#include <registryd/sdk/plugin.hpp>

#include <memory>
#include <optional>
#include <string_view>

namespace registryd::oci::cache {

// GETs blob `d` of `repository` from `upstream` into `sink`: begin() with the upstream's
// Content-Length, then every piece. The fill verifies the digest itself, so the client does
// not hash a second time. nullopt when every byte was written; the upstream's error otherwise
// (a write the fill refused ends the transfer as canceled).
std::optional<client::upstream_error> fetch_upstream_blob(fill_sink& sink, const client::registry_client& upstream,
                                                          std::string_view repository, const digest& d);

// A fill reader as a response body. A failed fill throws from read(), so the host closes the
// connection: a client never takes a short or unverified body for the blob.
class fill_body final : public sdk::body_source {
 public:
  explicit fill_body(std::unique_ptr<fill_reader> reader) : reader_(std::move(reader)) {}
  std::size_t read(char* buffer, std::size_t capacity) override;

 private:
  std::unique_ptr<fill_reader> reader_;
};

}  // namespace registryd::oci::cache
