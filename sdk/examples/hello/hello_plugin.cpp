// The smallest useful registryd plugin: it answers GET /v2/<name>/hello with a greeting from
// its settings and says NAME_UNKNOWN to everything else, the way a registry would.
#include <registryd/sdk/plugin.hpp>

#include <string>

namespace {

class hello_mode final : public registryd::sdk::mode_plugin {
 public:
  // `settings` is the host's settings document (docs/plugin-authors.md). Throwing
  // std::invalid_argument here refuses bad settings with that message.
  hello_mode(const registryd::sdk::host& host, const nlohmann::json& settings)
      : host_(host), mode_(settings.value("mode", std::string("unknown"))) {
    host_.info("hello plugin ready, standing in for mode " + mode_);
  }

  // Called concurrently: keep it free of shared mutable state.
  void handle(const registryd::sdk::request& req, registryd::sdk::response& res) override {
    const std::string_view path = req.path();
    if (req.method() == "GET" && path.ends_with("/hello")) {
      const std::string user = req.user().empty() ? "anonymous" : std::string(req.user());
      res.status(200).send("text/plain", "hello, " + user + ", from the hello plugin\n");
      return;
    }
    res.send_error(404, "NAME_UNKNOWN", "the hello plugin serves only GET /v2/<name>/hello");
  }

 private:
  registryd::sdk::host host_;
  std::string mode_;
};

}  // namespace

REGISTRYD_PLUGIN(hello_mode, "Hello", "1.0.0")
