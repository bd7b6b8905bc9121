// Helpers shared by the containerd renderer's tests.
#pragma once

#include <registryd/util/atomic_file.hpp>

#include <catch2/catch.hpp>
#include <test_support.hpp>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace registryd::containerd::test {

namespace fs = std::filesystem;

inline std::string fixture(const std::string& name) {
  std::error_code ec;
  std::string text = util::read_small_file(fs::path(REGISTRYD_TEST_FIXTURE_DIR) / name, ec);
  REQUIRE_FALSE(ec);
  return text;
}

inline std::string slurp(const fs::path& p) {
  std::error_code ec;
  std::string text = util::read_small_file(p, ec);
  INFO(p.string());
  REQUIRE_FALSE(ec);
  return text;
}

// Parses TOML the way a strict reader would; fails the test with toml++'s message otherwise.
inline toml::table parse_toml(const std::string& text) {
  try {
    return toml::parse(text);
  } catch (const toml::parse_error& e) {
    FAIL("not valid TOML: " << e.description() << "\n" << text);
  }
  return {};
}

// One host with one mirror: the smallest description worth rendering.
inline nlohmann::json one_mirror(const std::string& host, const nlohmann::json& mirror) {
  return {{"hosts", nlohmann::json::array({{{"host", host}, {"mirrors", {mirror}}}})}};
}

}  // namespace registryd::containerd::test
