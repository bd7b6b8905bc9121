#include <registryd/switching/mode.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace registryd;
using switching::mode;

TEST_CASE("every mode's name parses back to the mode", "[switching][mode]") {
  for (const auto m : switching::all_modes) {
    INFO(switching::to_string(m));
    auto parsed = switching::parse_mode(switching::to_string(m));
    REQUIRE(parsed.ok());
    CHECK(*parsed == m);
    auto from_display = switching::parse_mode(switching::display_name(m));
    REQUIRE(from_display.ok());
    CHECK(*from_display == m);
  }
}

TEST_CASE("modes parse case-insensitively with the legacy spellings", "[switching][mode]") {
  const std::vector<std::pair<std::string, mode>> rows = {
      {"direct", mode::direct},
      {"DIRECT", mode::direct},
      {"Proxy", mode::proxy},
      {"pRoXy", mode::proxy},
      {"local", mode::local},
      {"unmanaged", mode::unmanaged},
      {"Unmanaged", mode::unmanaged},
      {"Unmanaged-legacy", mode::unmanaged_legacy},
      {"unmanaged_legacy", mode::unmanaged_legacy},
      {"UnmanagedLegacy", mode::unmanaged_legacy},
      {"unmanagedlegacy", mode::unmanaged_legacy},
      {"Unmanaged (legacy)", mode::unmanaged_legacy},
      {"legacy-unmanaged", mode::unmanaged_legacy},
      {"legacy", mode::unmanaged_legacy},
  };
  for (const auto& [text, expected] : rows) {
    INFO(text);
    auto parsed = switching::parse_mode(text);
    REQUIRE(parsed.ok());
    CHECK(*parsed == expected);
  }
}

TEST_CASE("an unknown mode is an error that lists the modes", "[switching][mode]") {
  for (const std::string bad : {"", "mirror", "Unmanaged2", "legacy-direct", "Prox"}) {
    INFO(bad);
    auto parsed = switching::parse_mode(bad);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error_message() == "unknown mode \"" + bad +
                                        "\": expected Direct, Proxy, Local, Unmanaged or "
                                        "UnmanagedLegacy");
  }
}

TEST_CASE("the display name of the legacy mode says legacy", "[switching][mode]") {
  CHECK(switching::display_name(mode::unmanaged_legacy) == "Unmanaged (legacy)");
  CHECK(switching::display_name(mode::unmanaged) == "Unmanaged");
  CHECK(switching::to_string(mode::unmanaged_legacy) == "UnmanagedLegacy");
  CHECK(switching::is_unmanaged(mode::unmanaged));
  CHECK(switching::is_unmanaged(mode::unmanaged_legacy));
  CHECK_FALSE(switching::is_unmanaged(mode::direct));
}

TEST_CASE("a module config's target is its mode, legacy when Unmanaged has no section",
          "[switching][mode]") {
  config::module_config c;
  CHECK(switching::target_of(c) == mode::unmanaged_legacy);
  c.section = config::registry_section{};
  CHECK(switching::target_of(c) == mode::unmanaged);
  c.mode = config::registry_mode::direct;
  CHECK(switching::target_of(c) == mode::direct);
  c.mode = config::registry_mode::proxy;
  CHECK(switching::target_of(c) == mode::proxy);
  c.mode = config::registry_mode::local;
  c.section.reset();
  CHECK(switching::target_of(c) == mode::local);
}

TEST_CASE("a target maps to its ModuleConfig mode and back", "[switching][mode]") {
  for (const auto m : switching::all_modes) {
    INFO(switching::to_string(m));
    CHECK(switching::from_registry_mode(switching::registry_mode_of(m),
                                        m == mode::unmanaged_legacy) == m);
  }
  CHECK(switching::registry_mode_of(mode::unmanaged_legacy) == config::registry_mode::unmanaged);
  // The legacy flag only means something for Unmanaged.
  CHECK(switching::from_registry_mode(config::registry_mode::direct, true) == mode::direct);
}
