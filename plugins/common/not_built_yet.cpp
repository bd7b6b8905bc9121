// The plugin for a mode that this release does not implement yet. It loads, so `registryd
// version` lists it and the host can name it, but it refuses to start with a message that says
// so plainly: an operator who selects the mode learns it at once, and the running mode stays.
// Built once per unbuilt mode with REGISTRYD_MODE_NAME and REGISTRYD_WHEN defined.
#include <registryd/sdk/plugin.hpp>

namespace {

class not_built_yet final : public registryd::sdk::mode_plugin {
 public:
  not_built_yet(const registryd::sdk::host&, const nlohmann::json&) {
    throw registryd::sdk::plugin_error(
        REGISTRYD_ERR_UNSUPPORTED,
        std::string(REGISTRYD_MODE_NAME) + " mode is not built yet in this release of registryd (" +
            REGISTRYD_WHEN + "); see docs/status.md");
  }
  void handle(const registryd::sdk::request&, registryd::sdk::response& res) override {
    res.send_error(503, "UNAVAILABLE", std::string(REGISTRYD_MODE_NAME) + " mode is not built yet");
  }
};

}  // namespace

REGISTRYD_PLUGIN(not_built_yet, REGISTRYD_MODE_NAME, "0.0.0-not-built-yet")
