#include <registryd/plugin_host/plugin_instance.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <utility>

namespace registryd::plugin_host {
namespace {

registryd_str view(std::string_view s) noexcept { return {s.data(), s.size()}; }

spdlog::level::level_enum to_spdlog(registryd_log_level level) noexcept {
  switch (level) {
    case REGISTRYD_LOG_TRACE: return spdlog::level::trace;
    case REGISTRYD_LOG_DEBUG: return spdlog::level::debug;
    case REGISTRYD_LOG_INFO: return spdlog::level::info;
    case REGISTRYD_LOG_WARN: return spdlog::level::warn;
    case REGISTRYD_LOG_ERROR: return spdlog::level::err;
  }
  return spdlog::level::err;
}

util::error plugin_failure(const plugin_library& lib, std::string_view what,
                           registryd_status status, const std::string& message) {
  return util::error{"plugin " + lib.describe() + ": " + std::string(what) + " failed (" +
                     std::string(status_text(status)) +
                     "): " + (message.empty() ? std::string("no reason given") : message)};
}

}  // namespace

std::string_view status_text(registryd_status status) noexcept {
  switch (status) {
    case REGISTRYD_OK: return "ok";
    case REGISTRYD_ERR_INVALID_ARGUMENT: return "invalid argument";
    case REGISTRYD_ERR_UNSUPPORTED: return "unsupported";
    case REGISTRYD_ERR_UNAVAILABLE: return "unavailable";
    case REGISTRYD_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

plugin_instance::plugin_instance(std::shared_ptr<const plugin_library> library,
                                 std::shared_ptr<spdlog::logger> logger)
    : library_(std::move(library)), logger_(std::move(logger)) {
  host_api_.abi_major = REGISTRYD_PLUGIN_ABI_MAJOR;
  host_api_.abi_minor = REGISTRYD_PLUGIN_ABI_MINOR;
  host_api_.struct_size = sizeof(registryd_host_api);
  host_api_.ctx = this;
  host_api_.log = &plugin_instance::log_callback;
}

void plugin_instance::log_callback(void* ctx, registryd_log_level level, registryd_str message) {
  const auto* self = static_cast<const plugin_instance*>(ctx);
  self->logger_->log(to_spdlog(level), "[{}] {}", self->library_->name(),
                     std::string_view(message.data, message.size));
}

util::result<std::shared_ptr<plugin_instance>> plugin_instance::create(
    std::shared_ptr<const plugin_library> library, std::string_view settings_json,
    std::shared_ptr<spdlog::logger> logger) {
  std::shared_ptr<plugin_instance> self(
      new plugin_instance(std::move(library), std::move(logger)));
  string_sink error;
  registryd_plugin* out = nullptr;
  const registryd_status st =
      self->library_->api().create(&self->host_api_, view(settings_json), &out, error.abi());
  if (st != REGISTRYD_OK || out == nullptr) {
    return plugin_failure(*self->library_, "create", st == REGISTRYD_OK ? REGISTRYD_ERR_INTERNAL : st,
                          st == REGISTRYD_OK ? "create returned no instance" : error.text());
  }
  self->plugin_ = out;
  return self;
}

plugin_instance::~plugin_instance() {
  stop();
  if (plugin_ != nullptr) library_->api().destroy(plugin_);
}

util::status plugin_instance::validate_settings(const plugin_library& library,
                                                std::string_view settings_json) {
  // Whatever the plugin checks, the document must be JSON; a plugin that offers no check of its
  // own (a NULL validate_settings) leaves the rest to create().
  if (!nlohmann::json::accept(settings_json)) {
    return util::error{"plugin " + std::string(library.name()) + " settings check: the settings are not valid JSON"};
  }
  if (library.api().validate_settings == nullptr) return util::ok();
  string_sink error;
  const registryd_status st = library.api().validate_settings(view(settings_json), error.abi());
  if (st != REGISTRYD_OK) return plugin_failure(library, "settings check", st, error.text());
  return util::ok();
}

util::status plugin_instance::start() {
  std::lock_guard lock(lifecycle_mutex_);
  if (started_) return util::ok();
  if (library_->api().start != nullptr) {
    string_sink error;
    const registryd_status st = library_->api().start(plugin_, error.abi());
    if (st != REGISTRYD_OK) return plugin_failure(*library_, "start", st, error.text());
  }
  started_ = true;
  return util::ok();
}

void plugin_instance::stop() {
  std::lock_guard lock(lifecycle_mutex_);
  if (!started_) return;
  if (library_->api().stop != nullptr) library_->api().stop(plugin_);
  started_ = false;
}

util::result<std::string> plugin_instance::describe_containerd() const {
  if (library_->api().describe_containerd == nullptr) return std::string(R"({"hosts":[]})");
  string_sink out;
  string_sink error;
  const registryd_status st =
      library_->api().describe_containerd(plugin_, out.abi(), error.abi());
  if (st != REGISTRYD_OK) {
    return plugin_failure(*library_, "describe_containerd", st, error.text());
  }
  return out.text();
}

util::status plugin_instance::health() const {
  if (library_->api().health == nullptr) return util::ok();
  string_sink message;
  const registryd_status st = library_->api().health(plugin_, message.abi());
  if (st != REGISTRYD_OK) {
    return util::error{std::string(library_->name()) + " is not ready: " +
                       (message.text().empty() ? std::string(status_text(st)) : message.text())};
  }
  return util::ok();
}

std::string plugin_instance::metrics() const {
  if (library_->api().metrics == nullptr) return {};
  string_sink out;
  library_->api().metrics(plugin_, out.abi());
  return out.text();
}

void plugin_instance::handle(const registryd_request& request,
                             const registryd_response_writer& writer) const {
  library_->api().handle(plugin_, &request, &writer);
}

}  // namespace registryd::plugin_host
