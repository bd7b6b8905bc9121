// "Did you mean": the known word closest to a misspelt one, for unknown config keys, enum
// values and subcommands.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace registryd::config {

// The candidate nearest to `word` by edit distance (insertions, deletions, substitutions and
// swaps of neighbours; case ignored), when it is near enough to be a slip: at most 1 edit for
// words of up to 4 letters, 2 up to 8, 3 beyond. nullopt when none is, or `word` is one.
std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace registryd::config
