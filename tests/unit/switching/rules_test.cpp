#include <registryd/switching/rules.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <string>

using namespace registryd;
using switching::decision_kind;
using switching::mode;

namespace {

constexpr auto B = decision_kind::bootstrap;
constexpr auto U = decision_kind::unchanged;
constexpr auto S = decision_kind::switch_mode;
constexpr auto R = decision_kind::refused;

switching::persisted_state state_in(std::optional<mode> m, bool bootstrap_finished) {
  switching::persisted_state s;
  s.current = m;
  s.bootstrap_finished = bootstrap_finished;
  return s;
}

std::string kind_name(decision_kind k) {
  switch (k) {
    case decision_kind::bootstrap:
      return "bootstrap";
    case decision_kind::unchanged:
      return "unchanged";
    case decision_kind::switch_mode:
      return "switch";
    case decision_kind::refused:
      return "refused";
  }
  return "?";
}

}  // namespace

TEST_CASE("every switch between modes after bootstrap follows the rules", "[switching][rules]") {
  // Rows: from; columns: to, in all_modes order (Direct, Proxy, Local, Unmanaged, legacy).
  const std::map<mode, std::array<decision_kind, 5>> expected = {
      {mode::direct, {U, S, S, S, R}},
      {mode::proxy, {S, U, R, S, R}},
      {mode::local, {S, R, U, S, R}},
      {mode::unmanaged, {S, S, S, U, S}},
      {mode::unmanaged_legacy, {S, S, S, S, U}},
  };
  for (const auto from : switching::all_modes) {
    for (std::size_t i = 0; i < switching::all_modes.size(); ++i) {
      const mode to = switching::all_modes[i];
      const auto d = switching::check_switch(state_in(from, true), to);
      INFO(std::string(switching::to_string(from)) + " -> " +
           std::string(switching::to_string(to)) + ": " + d.reason);
      CHECK(kind_name(d.kind) == kind_name(expected.at(from)[i]));
      CHECK(d.allowed() == (d.kind != R));
      CHECK(d.from == from);
      CHECK(d.to == to);
      CHECK_FALSE(d.reason.empty());
    }
  }
}

TEST_CASE("bootstrap without a state goes into Direct or Unmanaged only", "[switching][rules]") {
  const std::map<mode, decision_kind> expected = {
      {mode::direct, B},           {mode::proxy, R}, {mode::local, R}, {mode::unmanaged, B},
      {mode::unmanaged_legacy, B},
  };
  for (const auto to : switching::all_modes) {
    INFO(switching::to_string(to));
    const auto none = switching::check_switch(std::nullopt, to);
    CHECK(kind_name(none.kind) == kind_name(expected.at(to)));
    CHECK_FALSE(none.from);
    // A state that has not picked a mode yet is still bootstrap.
    const auto no_mode = switching::check_switch(state_in(std::nullopt, false), to);
    CHECK(kind_name(no_mode.kind) == kind_name(expected.at(to)));
    CHECK(no_mode.reason == none.reason);
  }
  CHECK(switching::check_switch(std::nullopt, mode::proxy).reason ==
        "bootstrap in Proxy is not supported: bootstrap in Direct or Unmanaged only");
  CHECK(switching::check_switch(std::nullopt, mode::local).reason ==
        "bootstrap in Local is not supported: bootstrap in Direct or Unmanaged only");
  CHECK(switching::check_switch(std::nullopt, mode::direct).reason == "bootstrap in Direct");
}

TEST_CASE("while bootstrap runs only its own mode is allowed", "[switching][rules]") {
  for (const auto from : switching::all_modes) {
    for (const auto to : switching::all_modes) {
      const auto d = switching::check_switch(state_in(from, false), to);
      INFO(std::string(switching::to_string(from)) + " -> " +
           std::string(switching::to_string(to)) + ": " + d.reason);
      if (from == to) {
        CHECK(d.kind == B);
        CHECK(d.reason ==
              "bootstrap in " + std::string(switching::display_name(to)) + " continues");
      } else {
        CHECK(d.kind == R);
        CHECK(d.reason.find("bootstrap has not finished") != std::string::npos);
      }
    }
  }
  CHECK(switching::check_switch(state_in(mode::direct, false), mode::proxy).reason ==
        "mode transition from Direct to Proxy is not allowed: bootstrap has not finished (finish "
        "it in Direct first)");
}

TEST_CASE("switch from Local to Proxy is refused with the rule", "[switching][rules]") {
  const auto d = switching::check_switch(state_in(mode::local, true), mode::proxy);
  CHECK_FALSE(d.allowed());
  CHECK(d.reason ==
        "mode transition from Local to Proxy is not supported: switch through Direct or Unmanaged");
}

TEST_CASE("switch from Proxy to Local is refused with the rule", "[switching][rules]") {
  const auto d = switching::check_switch(state_in(mode::proxy, true), mode::local);
  CHECK_FALSE(d.allowed());
  CHECK(d.reason ==
        "mode transition from Proxy to Local is not supported: switch through Direct or Unmanaged");
}

TEST_CASE("the legacy Unmanaged mode is reachable only from Unmanaged", "[switching][rules]") {
  for (const auto from : {mode::direct, mode::proxy, mode::local}) {
    const auto d = switching::check_switch(state_in(from, true), mode::unmanaged_legacy);
    CHECK_FALSE(d.allowed());
    CHECK(d.reason == "mode transition from " + std::string(switching::display_name(from)) +
                          " to Unmanaged (legacy) is not supported: the legacy Unmanaged mode "
                          "is reachable only from Unmanaged");
  }
  CHECK(switching::check_switch(state_in(mode::unmanaged, true), mode::unmanaged_legacy).kind == S);
}

TEST_CASE("the same mode again is a settings change, not a switch", "[switching][rules]") {
  const auto d = switching::check_switch(state_in(mode::proxy, true), mode::proxy);
  CHECK(d.kind == U);
  CHECK(d.reason == "Proxy already runs: settings change only");
}

TEST_CASE("a switch through Direct or Unmanaged reaches Proxy from Local", "[switching][rules]") {
  for (const auto via : {mode::direct, mode::unmanaged}) {
    CHECK(switching::check_switch(state_in(mode::local, true), via).allowed());
    CHECK(switching::check_switch(state_in(via, true), mode::proxy).allowed());
  }
  CHECK(switching::check_switch(state_in(mode::local, true), mode::direct).reason ==
        "switch from Local to Direct");
}
