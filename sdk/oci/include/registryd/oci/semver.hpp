// Semantic versions (semver.org 2.0.0) as platform release tags use them (`v1.56.3`), and the
// choice of the newest releases. `registryd mirror pull --releases N` and image rotation pick
// releases with the same functions, so both agree on what "the N newest" means.
//
// Thread-safety: values and pure functions only.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::oci {

struct semver {
  std::uint64_t major = 0;
  std::uint64_t minor = 0;
  std::uint64_t patch = 0;
  // Dot-separated pre-release identifiers ("rc", "1" for -rc.1); empty for a release.
  std::vector<std::string> prerelease;
  // Build metadata after '+': kept, ignored by the ordering (semver 2.0.0, item 10).
  std::string build;

  // Parses `[v]MAJOR.MINOR.PATCH[-PRE][+BUILD]` with the grammar's rules: no leading zeros in
  // numbers or numeric identifiers, identifiers of [0-9A-Za-z-], none empty. nullopt
  // otherwise ("1.2", "v01.2.3", "latest").
  static std::optional<semver> parse(std::string_view text);

  bool is_release() const noexcept { return prerelease.empty(); }
  // "1.2.3-rc.1+build" (no "v").
  std::string str() const;

  // Precedence per semver 2.0.0 item 11; build metadata is ignored, so two versions that
  // differ only in it compare equivalent.
  friend std::weak_ordering operator<=>(const semver& a, const semver& b);
  friend bool operator==(const semver& a, const semver& b) { return (a <=> b) == 0; }
};

// A platform release tag: `v` followed by MAJOR.MINOR.PATCH, nothing else ("v1.56.3", not
// "1.56.3", "v1.56", "v1.56.3-rc.1" or "v1.56.3+x").
bool is_release_tag(std::string_view tag);

// The `n` newest release tags among `tags`, newest first. Tags that are not release tags are
// ignored; duplicates appear once.
std::vector<std::string> newest_releases(const std::vector<std::string>& tags, std::size_t n);

}  // namespace registryd::oci
