// Helpers for the storage tests: random content and counting files under a directory.
#pragma once

#include <registryd/oci/digest.hpp>

#include <test_support.hpp>

#include <filesystem>
#include <random>
#include <string>

namespace registryd::test {

// `size` pseudo-random bytes, different for each seed.
inline std::string random_bytes(std::size_t size, unsigned seed = 1) {
  std::mt19937 gen(seed);
  std::string s(size, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

// Regular files below `dir`, recursively.
inline std::size_t count_files(const std::filesystem::path& dir) {
  std::size_t n = 0;
  if (!std::filesystem::exists(dir)) return 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) ++n;
  }
  return n;
}

}  // namespace registryd::test
