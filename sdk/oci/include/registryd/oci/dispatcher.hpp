// The distribution API's front half, once for every mode: from a request's method and path to
// the handler the mode registered for that endpoint, with the spec's answers as defaults.
//
//   oci::dispatcher api("MyMode serves pulls only");
//   api.read(oci::route_kind::manifest, [this](auto& req, auto& res, const oci::target& t) {...});
//   api.read(oci::route_kind::blob, ...);
//   ...
//   void handle(const sdk::request& req, sdk::response& res) override { api.dispatch(req, res); }
//
// What dispatch() answers itself, in this order, before any handler runs:
//   - a path that is no API endpoint: 404 NAME_UNKNOWN;
//   - `/v2/` with no handler of its own: 200 `{}`;
//   - a repository name that is not one (the spec's grammar, so any non-ASCII or invalid UTF-8
//     byte too): 400 NAME_INVALID;
//   - a method the mode registered no handler for on that endpoint: 405 UNSUPPORTED with an
//     Allow header, and the mode's hint in the message;
//   - a manifest reference that is neither a tag nor a digest: 400 TAG_INVALID; a reference
//     with a ':' that is no digest registryd can verify, and a blob or referrers digest that is
//     none: 400 DIGEST_INVALID; an upload id outside [A-Za-z0-9._-]{1,128}: 404
//     BLOB_UPLOAD_UNKNOWN;
//   - a user without the access the handler was registered with: 403 DENIED.
// So a handler receives a target whose name, reference and digest are valid.
//
// Thread-safety: register every handler before the first dispatch(); dispatch() is then
// const and may run on many threads at once (the handlers must be thread-safe themselves).
#pragma once

#include <registryd/oci/digest.hpp>
#include <registryd/oci/errors.hpp>
#include <registryd/oci/route.hpp>
#include <registryd/sdk/plugin.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace registryd::oci {

// An endpoint of the API, checked: `name` is a valid repository name (empty for base and
// catalog) and `reference` is a valid tag, digest or upload id as the route needs.
struct target : route {
  // The digest of a blob or referrers route, or of a manifest reference that is one.
  std::optional<oci::digest> digest;
  // A manifest reference that is a tag (not a digest).
  bool is_tag() const noexcept { return kind == route_kind::manifest && !digest; }
};

// One of the spec's errors, not sent yet.
struct api_error {
  error_code code = error_code::internal;
  std::string message;
  nlohmann::json detail = nullptr;
  void send(sdk::response& res) const { send_error(res, code, message, detail); }
};

// Checks a parsed route as dispatch() does (name, then reference): the target, or the 400/404
// that the spec gives for it. For modes that route by themselves (Direct forwards whatever it
// checked).
std::variant<target, api_error> check_route(route r);

// 403 DENIED naming the user and what they may not do; true when the user holds `access`.
bool require_access(const sdk::request& req, sdk::response& res, std::uint32_t access);

class dispatcher {
 public:
  using handler = std::function<void(const sdk::request&, sdk::response&, const target&)>;

  // `unsupported_hint` ends the message of every 405, e.g. "Proxy mode is a read-only cache".
  explicit dispatcher(std::string unsupported_hint = {});

  // `handler` answers `method` ("GET", "PUT", ...) on endpoints of `kind` for users holding
  // `access` (REGISTRYD_ACCESS_* bits; 0: anyone the host let in). A later registration of the
  // same pair replaces the earlier one.
  dispatcher& on(route_kind kind, std::string_view method, std::uint32_t access, handler h);
  // GET and HEAD with pull access; the handler tells them apart with http::is_head().
  dispatcher& read(route_kind kind, handler h);

  void dispatch(const sdk::request& req, sdk::response& res) const;

 private:
  static constexpr std::size_t kinds = 8;
  static constexpr std::size_t methods = 6;  // GET HEAD PUT POST PATCH DELETE
  struct entry {
    handler fn;
    std::uint32_t access = 0;
  };
  std::string allowed(route_kind kind) const;

  std::string hint_;
  std::array<std::array<entry, methods>, kinds> table_;
};

}  // namespace registryd::oci
