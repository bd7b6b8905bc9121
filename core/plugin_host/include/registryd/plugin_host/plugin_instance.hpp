// A created plugin instance: the host's side of one plugin's lifecycle.
#pragma once

#include <registryd/plugin_abi.h>
#include <registryd/plugin_host/plugin_library.hpp>
#include <registryd/util/result.hpp>

#include <spdlog/logger.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace registryd::plugin_host {

// Collects what a plugin writes to a registryd_sink.
class string_sink {
 public:
  registryd_sink abi() noexcept { return {this, &string_sink::write}; }
  const std::string& text() const noexcept { return text_; }

 private:
  static void write(void* ctx, registryd_str s) {
    if (s.data != nullptr) static_cast<string_sink*>(ctx)->text_.append(s.data, s.size);
  }
  std::string text_;
};

// Owns one instance made by the plugin's `create`. Holds the library (first member), so the
// plugin's code outlives the instance and everything the instance handed out; whoever may call
// into the plugin later (a response stream, say) keeps a shared_ptr to this object.
//
// create/start/stop/destruction are the host's lifecycle calls and must not overlap; handle,
// health, metrics and describe_containerd are thread-safe once started.
class plugin_instance {
 public:
  // Creates an instance with the plugin settings document. A refusal names the plugin and
  // carries the plugin's own message.
  static util::result<std::shared_ptr<plugin_instance>> create(
      std::shared_ptr<const plugin_library> library, std::string_view settings_json,
      std::shared_ptr<spdlog::logger> logger);

  ~plugin_instance();
  plugin_instance(const plugin_instance&) = delete;
  plugin_instance& operator=(const plugin_instance&) = delete;

  // Asks the plugin to check settings without an instance; ok when it offers no check.
  static util::status validate_settings(const plugin_library& library,
                                        std::string_view settings_json);

  util::status start();
  void stop();

  // The containerd description JSON, or {"hosts":[]} when the mode changes nothing.
  util::result<std::string> describe_containerd() const;
  // ok when healthy; otherwise the plugin's reason.
  util::status health() const;
  // Prometheus text, possibly empty.
  std::string metrics() const;
  void handle(const registryd_request& request, const registryd_response_writer& writer) const;

  const plugin_library& library() const noexcept { return *library_; }
  std::string_view mode() const noexcept { return library_->name(); }

 private:
  plugin_instance(std::shared_ptr<const plugin_library> library,
                  std::shared_ptr<spdlog::logger> logger);
  static void log_callback(void* ctx, registryd_log_level level, registryd_str message);

  std::shared_ptr<const plugin_library> library_;  // first member: destroyed last
  std::shared_ptr<spdlog::logger> logger_;
  registryd_host_api host_api_{};
  registryd_plugin* plugin_ = nullptr;
  std::mutex lifecycle_mutex_;
  bool started_ = false;
};

// Text for a registryd_status, for messages ("invalid argument", ...).
std::string_view status_text(registryd_status status) noexcept;

}  // namespace registryd::plugin_host
