// Header-only C++ wrapper over <registryd/plugin_abi.h>.
//
// A plugin author writes an ordinary class derived from registryd::sdk::mode_plugin and names
// it once with REGISTRYD_PLUGIN(class, "Mode", "version"). The macro emits the C entry point and
// the function table; every call that crosses the boundary is wrapped so that no exception
// escapes into the host: exceptions become status codes and messages (or, while handling a
// request, a 500 with an OCI error body).
//
// Thread-safety, as the ABI states it: the constructor, start(), stop() and the destructor are
// called one at a time; handle(), health(), metrics() and containerd_config() are called
// concurrently from many threads once start() has returned, so they must be thread-safe.
#pragma once

#include <registryd/plugin_abi.h>
#include <registryd/sdk/oci_error.hpp>
#include <registryd/sdk/text.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace registryd::sdk {

inline registryd_str to_abi(std::string_view s) noexcept { return {s.data(), s.size()}; }
inline std::string_view from_abi(registryd_str s) noexcept {
  return s.data == nullptr ? std::string_view{} : std::string_view{s.data, s.size};
}

// An error with the status the boundary should report. Throw it from a plugin to choose the
// status; any other std::invalid_argument maps to INVALID_ARGUMENT and anything else to
// INTERNAL. Thrown out of handle(), it is answered with http_status_of(status).
class plugin_error : public std::runtime_error {
 public:
  plugin_error(registryd_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  registryd_status status() const noexcept { return status_; }

 private:
  registryd_status status_;
};

// The HTTP status and OCI error code a request answered with a plugin status gets:
// INVALID_ARGUMENT 400, UNSUPPORTED 405, UNAVAILABLE 503 (the client may retry), else 500.
struct http_answer {
  int status;
  std::string_view code;
};
constexpr http_answer http_status_of(registryd_status st) noexcept {
  switch (st) {
    case REGISTRYD_ERR_INVALID_ARGUMENT:
      return {400, "UNKNOWN"};
    case REGISTRYD_ERR_UNSUPPORTED:
      return {405, "UNSUPPORTED"};
    case REGISTRYD_ERR_UNAVAILABLE:
      return {503, "UNAVAILABLE"};
    case REGISTRYD_OK:
    case REGISTRYD_ERR_INTERNAL:
      break;
  }
  return {500, "UNKNOWN"};
}

// The host's services, as handed to the plugin's constructor. Cheap to copy; valid for the
// plugin instance's whole life. Thread-safe.
class host {
 public:
  explicit host(const registryd_host_api* api) noexcept : api_(api) {}

  void log(registryd_log_level level, std::string_view message) const noexcept {
    if (api_ != nullptr && api_->log != nullptr) api_->log(api_->ctx, level, to_abi(message));
  }
  void debug(std::string_view m) const noexcept { log(REGISTRYD_LOG_DEBUG, m); }
  void info(std::string_view m) const noexcept { log(REGISTRYD_LOG_INFO, m); }
  void warn(std::string_view m) const noexcept { log(REGISTRYD_LOG_WARN, m); }
  void error(std::string_view m) const noexcept { log(REGISTRYD_LOG_ERROR, m); }

 private:
  const registryd_host_api* api_;
};

// A request as the plugin sees it. Views are valid only during handle().
class request {
 public:
  explicit request(const registryd_request* r) noexcept : r_(r) {}

  std::string_view method() const noexcept { return from_abi(r_->method); }
  std::string_view path() const noexcept { return from_abi(r_->path); }
  std::string_view query() const noexcept { return from_abi(r_->query); }
  std::string_view remote_addr() const noexcept { return from_abi(r_->remote_addr); }
  std::string_view user() const noexcept { return from_abi(r_->user); }
  std::uint32_t access() const noexcept { return r_->access; }
  bool may(std::uint32_t access_bits) const noexcept {
    return (r_->access & access_bits) == access_bits;
  }

  // The first header with this name (case-insensitive), if any.
  std::optional<std::string_view> header(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < r_->header_count; ++i) {
      if (iequals(from_abi(r_->headers[i].name), name)) return from_abi(r_->headers[i].value);
    }
    return std::nullopt;
  }

  // The value of a query parameter, not percent-decoded, if present.
  std::optional<std::string_view> query_param(std::string_view key) const noexcept {
    std::string_view q = query();
    while (!q.empty()) {
      const auto amp = q.find('&');
      const std::string_view pair = q.substr(0, amp);
      const auto eq = pair.find('=');
      if (pair.substr(0, eq) == key) {
        return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
      }
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
    return std::nullopt;
  }

  // Announced body size, or -1 when unknown.
  std::int64_t content_length() const noexcept {
    return r_->body != nullptr ? r_->body->content_length : 0;
  }

  // Streams the body to `on_chunk(std::string_view) -> bool` (false stops reading).
  // Returns true when the whole body was read. Call at most once.
  template <typename OnChunk>
  bool read_body(OnChunk&& on_chunk) const {
    if (r_->body == nullptr || r_->body->read == nullptr) return true;
    struct state {
      OnChunk* fn;
      std::exception_ptr failure;
    } st{&on_chunk, nullptr};
    const int rc = r_->body->read(
        r_->body->ctx,
        [](void* ctx, registryd_str chunk) -> int {
          auto* s = static_cast<state*>(ctx);
          try {
            return (*s->fn)(from_abi(chunk)) ? 0 : 1;
          } catch (...) {
            s->failure = std::current_exception();
            return 1;
          }
        },
        &st);
    if (st.failure) std::rethrow_exception(st.failure);
    return rc == 0;
  }

  const registryd_request* raw() const noexcept { return r_; }

 private:
  const registryd_request* r_;
};

// A source of response bytes that the host pulls from after handle() returns.
class body_source {
 public:
  virtual ~body_source() = default;
  // Fills up to `capacity` bytes; returns the count, 0 at the end; throws on error.
  virtual std::size_t read(char* buffer, std::size_t capacity) = 0;
};

// Where the plugin writes its answer. Set status and headers, then send at most one body.
class response {
 public:
  explicit response(const registryd_response_writer* w) noexcept : w_(w) {}

  response& status(int code) {
    check(w_->set_status(w_->ctx, code), "status");
    return *this;
  }
  response& header(std::string_view name, std::string_view value) {
    check(w_->add_header(w_->ctx, to_abi(name), to_abi(value)), "header");
    return *this;
  }
  void send(std::string_view content_type, std::string_view body) {
    sent_ = true;
    check(w_->send_bytes(w_->ctx, to_abi(content_type), to_abi(body)), "send");
  }
  // `length` is the exact size, or -1 for chunked transfer.
  void send_stream(std::string_view content_type, std::int64_t length,
                   std::unique_ptr<body_source> source) {
    sent_ = true;
    registryd_stream s{source.release(), &stream_read, &stream_close};
    check(w_->send_stream(w_->ctx, to_abi(content_type), length, s), "send_stream");
  }
  // Takes ownership of `fd`.
  void send_file(std::string_view content_type, int fd, std::uint64_t offset,
                 std::uint64_t length) {
    sent_ = true;
    check(w_->send_file(w_->ctx, to_abi(content_type), fd, offset, length), "send_file");
  }
  // An OCI error body ({"errors":[{"code","message","detail"}]}) with `http_status`.
  void send_error(int http_status, std::string_view code, std::string_view message,
                  const nlohmann::json& detail = nullptr) {
    status(http_status);
    send("application/json", oci_error_body(code, message, detail));
  }

  bool body_sent() const noexcept { return sent_; }

 private:
  static void check(int rc, const char* what) {
    if (rc != 0) throw std::logic_error(std::string("response.") + what + " called out of order");
  }
  static std::int64_t stream_read(void* ctx, char* buffer, std::size_t capacity) noexcept {
    try {
      return static_cast<std::int64_t>(static_cast<body_source*>(ctx)->read(buffer, capacity));
    } catch (...) {
      return -1;
    }
  }
  static void stream_close(void* ctx) noexcept { delete static_cast<body_source*>(ctx); }

  const registryd_response_writer* w_;
  bool sent_ = false;
};

// The base of every mode plugin. Derive, give the class a constructor
//   explicit my_mode(const registryd::sdk::host& host, const nlohmann::json& settings);
// that throws std::invalid_argument for bad settings, override what the mode offers, and name
// it with REGISTRYD_PLUGIN. A static `void validate(const nlohmann::json&)` member, if present,
// is exported as validate_settings.
class mode_plugin {
 public:
  virtual ~mode_plugin() = default;

  // Starts storage and background work. Called once, before any request.
  virtual void start() {}
  // Stops background work. No request is in flight.
  virtual void stop() {}
  // The containerd configuration the mode needs (schema: docs/plugin-authors.md), or nullopt
  // when the mode changes nothing on the nodes.
  virtual std::optional<nlohmann::json> containerd_config() const { return std::nullopt; }
  // Handles one registry API request.
  virtual void handle(const request& req, response& res) = 0;
  // Empty when healthy; otherwise why not.
  virtual std::string health() const { return {}; }
  // Appends Prometheus text exposition lines.
  virtual void metrics(std::string& out) const { (void)out; }
};

namespace detail {

inline void write(registryd_sink sink, std::string_view text) noexcept {
  if (sink.write != nullptr) sink.write(sink.ctx, to_abi(text));
}

// What an exception says; valid while `e` lives.
inline const char* what_of(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception";
  }
}

// The status an exception maps to at the boundary: a plugin_error's own, INVALID_ARGUMENT for
// std::invalid_argument, INTERNAL for anything else.
inline registryd_status status_of(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const plugin_error& x) {
    return x.status();
  } catch (const std::invalid_argument&) {
    return REGISTRYD_ERR_INVALID_ARGUMENT;
  } catch (...) {
    return REGISTRYD_ERR_INTERNAL;
  }
}

// Runs `fn`, turning any exception into a status and a message written to `error`.
template <typename Fn>
registryd_status guarded(registryd_sink error, Fn&& fn) noexcept {
  try {
    fn();
    return REGISTRYD_OK;
  } catch (...) {
    const auto e = std::current_exception();
    write(error, what_of(e));
    return status_of(e);
  }
}

inline nlohmann::json parse_settings(registryd_str settings_json) {
  try {
    return nlohmann::json::parse(from_abi(settings_json));
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("settings are not valid JSON: ") + e.what());
  }
}

// Instances are held in this holder so the table's functions can reach the C++ object.
struct instance {
  registryd_host_api host_api;
  std::unique_ptr<mode_plugin> impl;
};

template <typename T>
concept has_static_validate = requires(const nlohmann::json& j) { T::validate(j); };

template <typename Plugin>
struct table {
  static registryd_status create(const registryd_host_api* host_api, registryd_str settings,
                                 registryd_plugin** out, registryd_sink error) noexcept {
    return guarded(error, [&] {
      auto inst = std::make_unique<instance>();
      inst->host_api = *host_api;
      const nlohmann::json parsed = parse_settings(settings);
      inst->impl = std::make_unique<Plugin>(host(&inst->host_api), parsed);
      *out = reinterpret_cast<registryd_plugin*>(inst.release());
    });
  }
  static void destroy(registryd_plugin* p) noexcept {
    delete reinterpret_cast<instance*>(p);
  }
  static registryd_status validate_settings(registryd_str settings,
                                            registryd_sink error) noexcept {
    return guarded(error, [&] {
      if constexpr (has_static_validate<Plugin>) Plugin::validate(parse_settings(settings));
    });
  }
  // NULL in the table when the plugin has no static validate: the host then checks that the
  // settings are JSON and relies on create() for the rest.
  static constexpr auto validate_slot = has_static_validate<Plugin> ? &table::validate_settings : nullptr;

  static mode_plugin& self(registryd_plugin* p) noexcept {
    return *reinterpret_cast<instance*>(p)->impl;
  }
  // Logs, through the host (which names the plugin), an exception that has nobody else to
  // tell.
  static void log_failure(registryd_plugin* p, std::string_view where, const std::exception_ptr& e) noexcept {
    try {
      host(&reinterpret_cast<instance*>(p)->host_api).error(std::string(where) + " failed: " + what_of(e));
    } catch (...) {
    }
  }
  static registryd_status describe_containerd(registryd_plugin* p, registryd_sink out,
                                              registryd_sink error) noexcept {
    return guarded(error, [&] {
      const auto cfg = self(p).containerd_config();
      write(out, cfg ? cfg->dump() : std::string("{\"hosts\":[]}"));
    });
  }
  static registryd_status start(registryd_plugin* p, registryd_sink error) noexcept {
    return guarded(error, [&] { self(p).start(); });
  }
  static void stop(registryd_plugin* p) noexcept {
    try {
      self(p).stop();
    } catch (...) {
      log_failure(p, "stop", std::current_exception());  // stop() has no status to return
    }
  }
  static void handle(registryd_plugin* p, const registryd_request* req,
                     const registryd_response_writer* res) noexcept {
    response r(res);
    try {
      self(p).handle(request(req), r);
    } catch (...) {
      const auto e = std::current_exception();
      const char* what = what_of(e);
      const http_answer answer = http_status_of(status_of(e));
      if (answer.status >= 500) {
        log_failure(p, std::string(from_abi(req->method)) + " " + std::string(from_abi(req->path)), e);
      }
      if (!r.body_sent()) {
        try {
          r.send_error(answer.status, answer.code, what);
        } catch (...) {
        }
      }
    }
  }
  static registryd_status health(registryd_plugin* p, registryd_sink message) noexcept {
    std::string why;
    const registryd_status st = guarded(message, [&] { why = self(p).health(); });
    if (st != REGISTRYD_OK) return st;
    if (why.empty()) return REGISTRYD_OK;
    write(message, why);
    return REGISTRYD_ERR_UNAVAILABLE;
  }
  static void metrics(registryd_plugin* p, registryd_sink out) noexcept {
    try {
      std::string text;
      self(p).metrics(text);
      write(out, text);
    } catch (...) {
      log_failure(p, "metrics", std::current_exception());
    }
  }
};

}  // namespace detail
}  // namespace registryd::sdk

// Emits the plugin's entry point. Use once per plugin library, at namespace scope.
#define REGISTRYD_PLUGIN(PluginClass, ModeName, VersionText)                                 \
  extern "C" REGISTRYD_PLUGIN_EXPORT const registryd_plugin_api* registryd_plugin_entry(    \
      void) {                                                                               \
    using registryd_table_ = ::registryd::sdk::detail::table<PluginClass>;                  \
    static const registryd_plugin_api api = {                                               \
        REGISTRYD_PLUGIN_ABI_MAJOR,                                                         \
        REGISTRYD_PLUGIN_ABI_MINOR,                                                         \
        static_cast<uint32_t>(sizeof(registryd_plugin_api)),                                \
        {ModeName, sizeof(ModeName) - 1},                                                   \
        {VersionText, sizeof(VersionText) - 1},                                             \
        &registryd_table_::create,                                                          \
        &registryd_table_::destroy,                                                         \
        registryd_table_::validate_slot,                                                    \
        &registryd_table_::describe_containerd,                                             \
        &registryd_table_::start,                                                           \
        &registryd_table_::stop,                                                            \
        &registryd_table_::handle,                                                          \
        &registryd_table_::health,                                                          \
        &registryd_table_::metrics,                                                         \
    };                                                                                      \
    return &api;                                                                            \
  }
