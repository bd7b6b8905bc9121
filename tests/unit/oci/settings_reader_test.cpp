#include <registryd/sdk/settings_reader.hpp>

#include <catch2/catch.hpp>

using nlohmann::json;
using registryd::sdk::settings_reader;

TEST_CASE("settings_reader names the field path and the reason in every refusal", "[sdk][settings]") {
  const json doc = {{"mode", "Demo"},
                    {"section", {{"ttlSeconds", 5}, {"name", "x"}, {"neg", -1}, {"text", "3"}, {"flag", true}, {"none", nullptr}}},
                    {"host", {{"dataDir", "/var/lib/x"}, {"empty", ""}}}};
  const settings_reader in("Demo", doc);
  CHECK(in.count("section.ttlSeconds") == 5u);
  CHECK(in.seconds("section.ttlSeconds") == std::chrono::seconds(5));
  CHECK(in.string("section.name") == "x");
  CHECK(in.boolean("section.flag") == true);
  CHECK_FALSE(in.string("section.missing"));
  CHECK_FALSE(in.string("section.none"));
  CHECK_FALSE(in.string("nothing.at.all"));
  CHECK(in.required_string("host.dataDir") == "/var/lib/x");
  CHECK(in.one_of("section.name", {"x", "y"}) == "x");

  CHECK_THROWS_WITH(in.count("section.neg"), "invalid Demo settings: section.neg: must not be negative");
  CHECK_THROWS_WITH(in.count("section.text"), "invalid Demo settings: section.text: must be a whole number, not string");
  CHECK_THROWS_WITH(in.string("section.ttlSeconds"), "invalid Demo settings: section.ttlSeconds: must be a string, not number");
  CHECK_THROWS_WITH(in.required_string("host.empty"), "invalid Demo settings: host.empty: must not be empty");
  CHECK_THROWS_WITH(in.required_string("host.other"), "invalid Demo settings: host.other: is required");
  CHECK_THROWS_WITH(in.one_of("section.name", {"a", "b"}), "invalid Demo settings: section.name: \"x\" is not one of a, b");
  CHECK_THROWS_WITH(in.object("missing", "is required (for the test)"), "invalid Demo settings: missing: is required (for the test)");
  CHECK_THROWS_WITH(in.string("section.name.deeper"), "invalid Demo settings: section.name: must be an object");
  CHECK_NOTHROW(in.positive("section.absent"));
  CHECK_THROWS_WITH(settings_reader("Demo", json{{"mode", "Demo"}, {"n", 0}}).positive("n", "leave it out"),
                    "invalid Demo settings: n: must be positive (leave it out)");
}

TEST_CASE("settings_reader checks the document and its mode first", "[sdk][settings]") {
  CHECK_THROWS_WITH(settings_reader("Demo", json::array()), "invalid Demo settings: $: must be a JSON object, not array");
  CHECK_THROWS_WITH(settings_reader("Demo", json::object()), "invalid Demo settings: mode: is required");
  CHECK_THROWS_WITH(settings_reader("Demo", json{{"mode", "Other"}}),
                    "invalid Demo settings: mode: \"Other\" given to the Demo plugin");
  CHECK_THROWS_WITH(settings_reader("Demo", json{{"mode", 1}}), "invalid Demo settings: mode: must be a string, not number");
}

TEST_CASE("settings_reader for a plugin behind any mode checks only that a mode is named", "[sdk][settings]") {
  const json doc{{"mode", "Local"}, {"host", {{"dataDir", "/srv"}}}};
  const settings_reader in("Layout", doc, settings_reader::any_mode);
  CHECK(in.required_string("host.dataDir") == "/srv");
  CHECK_THROWS_WITH(in.required_string("host.stateDir"), "invalid Layout settings: host.stateDir: is required");
  CHECK_THROWS_WITH(settings_reader("Layout", json::object(), settings_reader::any_mode),
                    "invalid Layout settings: mode: is required");
  CHECK_THROWS_WITH(settings_reader("Layout", json(3), settings_reader::any_mode),
                    "invalid Layout settings: $: must be a JSON object, not number");
}
