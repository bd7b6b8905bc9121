// The fixed repository `system/deckhouse` that clusters pull from, mapped onto the path of the
// upstream `imagesRepo` and back (FACTS.md sections 3 and 4). Stock containerd cannot rewrite a
// repository path, so the in-cluster proxy (Direct) and the pull-through cache (Proxy) do it:
//
//   client side                         upstream side (imagesRepo registry.example.com/deckhouse/ee)
//   system/deckhouse                <-> deckhouse/ee
//   system/deckhouse/install        <-> deckhouse/ee/install
//   anything else                    -> not mapped (the plugin answers NAME_UNKNOWN)
//
// Everything the upstream says that names its own repository (Location headers, token scopes,
// error messages) is rewritten back to the client-side name, so a client never sees the
// upstream path.
//
// Thread-safety: immutable after construction; use from any number of threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace registryd::oci {

class path_mapping {
 public:
  // `fixed_repository` is the client-facing name ("system/deckhouse"); `upstream_path` is the
  // path part of imagesRepo ("deckhouse/ee"), possibly empty when imagesRepo is a bare host.
  path_mapping(std::string fixed_repository, std::string upstream_path);

  const std::string& fixed_repository() const noexcept { return fixed_; }
  const std::string& upstream_path() const noexcept { return upstream_; }

  // The upstream name for a client-side repository; nullopt when the name is not the fixed
  // repository or below it, or when it would map to an empty name.
  std::optional<std::string> to_upstream(std::string_view client_name) const;
  // The client-side name for an upstream repository; nullopt when it is not under imagesRepo.
  std::optional<std::string> to_client(std::string_view upstream_name) const;

  // A Location header from the upstream: a relative `/v2/<upstream name>/...` or an absolute
  // URL on `upstream_host` becomes the relative client-side path; any other location (blob
  // storage redirects to another host) is returned unchanged.
  std::string location_to_client(std::string_view location, std::string_view upstream_host) const;

  // Free text from the upstream (error messages, `repository:<name>:pull` scopes): every
  // occurrence of the upstream repository name as a whole path (delimited by start/end, '/',
  // ':', '"', whitespace or ',') is replaced with the client-side name.
  std::string text_to_client(std::string_view text) const;

 private:
  std::string fixed_;
  std::string upstream_;
};

}  // namespace registryd::oci
