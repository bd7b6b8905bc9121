// The host's log format: one line per entry in text and JSON, structured fields as key=value or
// JSON members, nothing a message carries can break a line.
#include <registryd/util/logging.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <sstream>

using namespace registryd;

namespace {

struct captured {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
  explicit captured(bool json) {
    logger = std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
    logger->set_formatter(util::make_formatter(json));
  }
};

}  // namespace

TEST_CASE("a JSON entry carries its fields as members, one line, whatever the message holds", "[util][log]") {
  captured c(true);
  const std::string user = "we\"ird\nuser";
  util::log_structured(*c.logger, spdlog::level::info, "PUT /v2/x/manifests/v1 201\nforged line",
                       {{"user", std::string_view(user)},
                        {"status", std::int64_t{201}},
                        {"duration", 0.25},
                        {"digest", std::monostate{}}});
  c.logger->warn("plain \x01 message");
  const std::string text = c.out.str();
  std::istringstream lines(text);
  std::string line;
  std::vector<nlohmann::json> entries;
  while (std::getline(lines, line)) entries.push_back(nlohmann::json::parse(line));
  REQUIRE(entries.size() == 2);
  CHECK(entries[0]["level"] == "info");
  CHECK(entries[0]["msg"] == "PUT /v2/x/manifests/v1 201\nforged line");
  CHECK(entries[0]["user"] == user);
  CHECK(entries[0]["status"] == 201);
  CHECK(entries[0]["duration"].get<double>() == Approx(0.25));
  CHECK(entries[0]["digest"].is_null());
  CHECK(entries[1]["level"] == "warning");
  CHECK(entries[1]["msg"] == "plain \x01 message");
  CHECK_FALSE(entries[1].contains("user"));  // fields belong to their own entry only
}

TEST_CASE("a text entry is one line with key=value fields", "[util][log]") {
  captured c(false);
  util::log_structured(*c.logger, spdlog::level::info, "GET /v2/ 200",
                       {{"remote", std::string_view("127.0.0.1:4000")},
                        {"user", std::monostate{}},
                        {"path", std::string_view("/v2/a b")},
                        {"bytes", std::int64_t{12}}});
  c.logger->error("two\nlines");
  const std::string text = c.out.str();
  CHECK(std::count(text.begin(), text.end(), '\n') == 2);
  CHECK(text.find("info  GET /v2/ 200 remote=127.0.0.1:4000 user=- path=\"/v2/a b\" bytes=12\n") != std::string::npos);
  CHECK(text.find("error two\\nlines\n") != std::string::npos);
}
