#include <registryd/switching/steps.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

using namespace registryd;
using switching::mode;

namespace {

std::vector<std::string> steps_of(mode m) {
  std::vector<std::string> out;
  for (const auto s : switching::switch_steps(m)) out.emplace_back(s);
  return out;
}

}  // namespace

TEST_CASE("a switch into Direct takes the documented steps in order", "[switching][steps]") {
  CHECK(steps_of(mode::direct) ==
        std::vector<std::string>{"RegistryContainsRequiredImages", "ContainerdConfigPreflightReady",
                                 "TransitionContainerdConfigReady", "InClusterProxyReady",
                                 "DeckhouseRegistrySwitchReady", "FinalContainerdConfigReady",
                                 "CleanupNodeServices", "Ready"});
}

TEST_CASE("a switch into Proxy or Local brings up node services and removes the proxy",
          "[switching][steps]") {
  const std::vector<std::string> expected = {
      "RegistryContainsRequiredImages",  "ContainerdConfigPreflightReady",
      "TransitionContainerdConfigReady", "NodeServicesReady",
      "DeckhouseRegistrySwitchReady",    "FinalContainerdConfigReady",
      "CleanupInClusterProxy",           "Ready"};
  CHECK(steps_of(mode::proxy) == expected);
  CHECK(steps_of(mode::local) == expected);
}

TEST_CASE("a switch into either Unmanaged brings nothing up and cleans both services up",
          "[switching][steps]") {
  const std::vector<std::string> expected = {"RegistryContainsRequiredImages",
                                             "ContainerdConfigPreflightReady",
                                             "TransitionContainerdConfigReady",
                                             "DeckhouseRegistrySwitchReady",
                                             "FinalContainerdConfigReady",
                                             "CleanupInClusterProxy",
                                             "CleanupNodeServices",
                                             "Ready"};
  CHECK(steps_of(mode::unmanaged) == expected);
  CHECK(steps_of(mode::unmanaged_legacy) == expected);
}

TEST_CASE("every mode's steps end in Ready, are distinct and known", "[switching][steps]") {
  for (const auto m : switching::all_modes) {
    INFO(switching::to_string(m));
    const auto steps = steps_of(m);
    REQUIRE_FALSE(steps.empty());
    CHECK(steps.back() == "Ready");
    CHECK(std::set<std::string>(steps.begin(), steps.end()).size() == steps.size());
    for (const auto& s : steps) CHECK(switching::is_known_step(s));
  }
  CHECK_FALSE(switching::is_known_step("Bogus"));
  CHECK_FALSE(switching::is_known_step(""));
}
