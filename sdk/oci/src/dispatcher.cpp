#include <registryd/oci/dispatcher.hpp>

#include <registryd/oci/reference.hpp>

namespace registryd::oci {
namespace {

constexpr std::array<std::string_view, 6> method_names = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"};

std::optional<std::size_t> method_index(std::string_view method) {
  for (std::size_t i = 0; i < method_names.size(); ++i) {
    if (method_names[i] == method) return i;
  }
  return std::nullopt;
}

std::size_t kind_index(route_kind kind) { return static_cast<std::size_t>(kind); }

bool is_upload_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

api_error digest_invalid(const std::string& text) {
  return {error_code::digest_invalid, "\"" + text + "\" is not a digest registryd can verify (sha256, sha512)",
          {{"digest", text}}};
}

}  // namespace

std::variant<target, api_error> check_route(route r) {
  target t;
  static_cast<route&>(t) = std::move(r);
  if (t.kind == route_kind::base || t.kind == route_kind::catalog) return t;
  if (!is_valid_repository_name(t.name)) {
    return api_error{error_code::name_invalid, "invalid repository name \"" + t.name + "\"", {{"name", t.name}}};
  }
  switch (t.kind) {
    case route_kind::manifest:
      if (t.reference.find(':') != std::string::npos) {
        t.digest = digest::parse(t.reference);
        if (!t.digest) return digest_invalid(t.reference);
      } else if (!is_valid_tag(t.reference)) {
        return api_error{error_code::tag_invalid, "\"" + t.reference + "\" is not a valid tag", {{"tag", t.reference}}};
      }
      break;
    case route_kind::blob:
    case route_kind::referrers:
      t.digest = digest::parse(t.reference);
      if (!t.digest) return digest_invalid(t.reference);
      break;
    case route_kind::upload_session:
      if (!is_upload_id(t.reference)) {
        return api_error{error_code::blob_upload_unknown, "no upload session \"" + t.reference + "\"",
                         {{"uuid", t.reference}}};
      }
      break;
    default: break;
  }
  return t;
}

bool require_access(const sdk::request& req, sdk::response& res, std::uint32_t access) {
  if (req.may(access)) return true;
  const char* what = (access & REGISTRYD_ACCESS_DELETE) != 0 ? "delete"
                     : (access & REGISTRYD_ACCESS_PUSH) != 0 ? "push"
                                                             : "pull";
  send_error(res, error_code::denied, "user " + std::string(req.user()) + " may not " + what + " (access denied)");
  return false;
}

dispatcher::dispatcher(std::string unsupported_hint) : hint_(std::move(unsupported_hint)) {}

dispatcher& dispatcher::on(route_kind kind, std::string_view method, std::uint32_t access, handler h) {
  const auto m = method_index(method);
  if (!m) throw std::invalid_argument("the registry API has no method \"" + std::string(method) + "\"");
  table_[kind_index(kind)][*m] = entry{std::move(h), access};
  return *this;
}

dispatcher& dispatcher::read(route_kind kind, handler h) {
  on(kind, "GET", REGISTRYD_ACCESS_PULL, h);
  return on(kind, "HEAD", REGISTRYD_ACCESS_PULL, std::move(h));
}

std::string dispatcher::allowed(route_kind kind) const {
  std::string list;
  const auto& row = table_[kind_index(kind)];
  for (std::size_t i = 0; i < methods; ++i) {
    if (row[i].fn) list += (list.empty() ? "" : ", ") + std::string(method_names[i]);
  }
  return list;
}

void dispatcher::dispatch(const sdk::request& req, sdk::response& res) const {
  auto parsed = parse_route(req.path());
  if (!parsed) {
    send_error(res, error_code::name_unknown, "no such endpoint of the registry API: " + std::string(req.path()));
    return;
  }
  const route_kind kind = parsed->kind;
  const auto m = method_index(req.method());
  const entry* e = m ? &table_[kind_index(kind)][*m] : nullptr;
  if (kind == route_kind::base && (e == nullptr || !e->fn)) {
    res.status(200);
    res.send("application/json", "{}");
    return;
  }
  // The name is checked before the method, so that a bad name is a 400 whatever is asked.
  auto checked = check_route(std::move(*parsed));
  if (auto* err = std::get_if<api_error>(&checked)) {
    if (err->code == error_code::name_invalid || (e != nullptr && e->fn)) return err->send(res);
  }
  if (e == nullptr || !e->fn) {
    const std::string allow = allowed(kind);
    if (!allow.empty()) res.header("Allow", allow);
    send_error(res, error_code::unsupported,
               std::string(req.method()) + " is not supported on this endpoint" + (hint_.empty() ? "" : ": " + hint_),
               allow.empty() ? nlohmann::json(nullptr) : nlohmann::json{{"allowed", allow}});
    return;
  }
  if (e->access != 0 && !require_access(req, res, e->access)) return;
  e->fn(req, res, std::get<target>(checked));
}

}  // namespace registryd::oci
