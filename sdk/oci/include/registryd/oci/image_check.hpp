// The upstream check (checkMode, FACTS.md section 2, step RegistryContainsRequiredImages): does
// the target registry hold every image the platform needs? Each image's manifest is asked for
// with HEAD, a few at a time, each attempt bounded in time and retried when the failure may
// pass (transport errors, 5xx, 429). `registryd check --images FILE` and the switching steps
// use it; docs/upstream-client.md describes the list format and the report.
//
// Thread-safety: check_images runs its own worker threads and returns when they are done;
// parse_image_list is pure.
#pragma once

#include <registryd/oci/client/options.hpp>
#include <registryd/oci/client/registry_client.hpp>
#include <registryd/oci/reference.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::oci {

struct image_check_item {
  std::string text;        // as written in the list, for messages
  std::string repository;  // the repository in the target registry
  std::string reference;   // what is checked: the digest when one is given, else the tag
};

struct image_list_error {
  std::size_t line = 0;  // 1-based
  std::string message;
};

struct image_list {
  std::vector<image_check_item> items;
  std::vector<image_list_error> errors;
};

// Reads a list of image references, one a line; blank lines and lines starting with '#' are
// skipped. Each line names a tag or a digest (never an implied "latest"), in one of the forms
//   @sha256:<hex>  or  :<tag>               the imagesRepo repository itself
//   <name>@sha256:<hex>  or  <name>:<tag>   <imagesRepo path>/<name>
//   <host[:port]>/<path>(:<tag>|@<digest>)  a full reference; its host must be imagesRepo's
// A line is a full reference when it holds a '/' and the part before the first '/' holds a
// '.' or a ':' or is "localhost" (the docker rule). `name:tag@digest` is checked by digest.
image_list parse_image_list(std::string_view text, const repository_location& images_repo);

struct image_check_options {
  std::size_t parallelism = 3;
  // Per attempt: the connect timeout is at most this, the read timeout is this.
  std::chrono::milliseconds timeout{30000};
  int attempts = 3;
  // Pause before the second attempt, doubled before each further one.
  std::chrono::milliseconds backoff{1000};
  // Failures named in the report; checking stops once this many have failed (0: check all,
  // name all).
  std::size_t report_failures = 5;
};

struct image_check_failure {
  std::string item;    // the list's text
  std::string reason;  // e.g. "404 MANIFEST_UNKNOWN: manifest unknown"
};

struct image_check_report {
  std::string registry;      // host[:port]
  std::size_t total = 0;     // items in the list
  std::size_t checked = 0;   // items whose check finished (passed or failed)
  std::size_t failed = 0;
  bool stopped_early = false;
  // The first failures in list order, at most report_failures.
  std::vector<image_check_failure> failures;

  bool ok() const noexcept { return failed == 0 && checked == total; }
  // "<registry>: all N items are checked", or "<registry>: K of N items failed the check"
  // (with how far it got when it stopped early) and one indented line per failure named.
  std::string message() const;
};

// Checks `items` against the registry `options` name; the options' timeouts are replaced by
// `check.timeout`.
image_check_report check_images(client::client_options options,
                                 const std::vector<image_check_item>& items,
                                 const image_check_options& check = {});

// The same with a client made by the caller (its own timeouts apply).
image_check_report check_images(const client::registry_client& client,
                                const std::vector<image_check_item>& items,
                                const image_check_options& check = {});

}  // namespace registryd::oci
