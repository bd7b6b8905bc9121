// Drives a plugin's request handling in-process: a request and a response writer made of the
// plugin ABI's own structures (as the host fills them), so every handler runs exactly as
// behind the front door, minus HTTP. Bodies are delivered in small pieces to exercise
// streaming. Files are read back; streams are refused.
#pragma once

#include <registryd/plugin_abi.h>
#include <registryd/sdk/plugin.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

namespace registryd::test {

struct reply {
  int status = 200;
  std::multimap<std::string, std::string> headers;  // names lowercased
  std::string content_type;
  std::string body;

  std::string header(const std::string& name) const {
    std::string lower;
    for (char c : name) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    const auto it = headers.find(lower);
    return it == headers.end() ? std::string() : it->second;
  }
  bool has_header(const std::string& name) const {
    std::string lower;
    for (char c : name) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return headers.count(lower) > 0;
  }
  nlohmann::json json() const { return nlohmann::json::parse(body); }
  std::string error_code() const {
    try {
      return json()["errors"][0]["code"].get<std::string>();
    } catch (...) {
      return "<no OCI error: " + body + ">";
    }
  }
};

struct call_options {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::uint32_t access = REGISTRYD_ACCESS_PULL | REGISTRYD_ACCESS_PUSH | REGISTRYD_ACCESS_DELETE;
  std::size_t piece = 1000;       // body delivered in pieces of this size
  std::optional<std::size_t> cut; // deliver only this many bytes and report a short body
  bool announce_length = true;    // content_length = body size (else -1: chunked)
};

// Runs one request (`target` may hold a query) through `handle(const sdk::request&,
// sdk::response&)`, as the host would.
template <typename Handle>
reply call_handler(Handle&& handle, const std::string& method, const std::string& target,
                   const call_options& o = {}) {
  const auto q = target.find('?');
  const std::string path = target.substr(0, q);
  const std::string query = q == std::string::npos ? std::string() : target.substr(q + 1);
  const std::string user = "tester";
  const std::string addr = "127.0.0.1";
  std::vector<registryd_header> hdrs;
  for (const auto& [n, v] : o.headers) hdrs.push_back({{n.data(), n.size()}, {v.data(), v.size()}});

  struct body_state {
    const call_options* o;
    bool consumed = false;
  } bs{&o};
  registryd_body_reader body{};
  body.ctx = &bs;
  body.content_length = o.announce_length ? static_cast<std::int64_t>(o.body.size()) : -1;
  body.read = [](void* ctx, registryd_body_chunk_fn fn, void* fn_ctx) -> int {
    auto* s = static_cast<body_state*>(ctx);
    if (s->consumed) return -1;
    s->consumed = true;
    const std::string& b = s->o->body;
    const std::size_t end = s->o->cut ? std::min(*s->o->cut, b.size()) : b.size();
    for (std::size_t off = 0; off < end; off += s->o->piece) {
      const std::size_t n = std::min(s->o->piece, end - off);
      if (fn(fn_ctx, {b.data() + off, n}) != 0) return -1;
    }
    return s->o->cut ? -1 : 0;
  };

  registryd_request r{};
  r.struct_size = sizeof r;
  r.method = {method.data(), method.size()};
  r.path = {path.data(), path.size()};
  r.query = {query.data(), query.size()};
  r.headers = hdrs.data();
  r.header_count = hdrs.size();
  r.remote_addr = {addr.data(), addr.size()};
  r.user = {user.data(), user.size()};
  r.access = o.access;
  r.body = &body;

  reply out;
  registryd_response_writer w{};
  w.struct_size = sizeof w;
  w.ctx = &out;
  w.set_status = [](void* c, int s) {
    static_cast<reply*>(c)->status = s;
    return 0;
  };
  w.add_header = [](void* c, registryd_str n, registryd_str v) {
    std::string name(n.data, n.size);
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto* self = static_cast<reply*>(c);
    if (name == "content-type") self->content_type.assign(v.data, v.size);
    self->headers.emplace(name, std::string(v.data, v.size));
    return 0;
  };
  w.send_bytes = [](void* c, registryd_str ct, registryd_str b) {
    auto* self = static_cast<reply*>(c);
    self->content_type.assign(ct.data, ct.size);
    self->body.assign(b.data, b.size);
    return 0;
  };
  w.send_stream = [](void*, registryd_str, int64_t, registryd_stream s) {
    s.close(s.ctx);
    return -1;
  };
  w.send_file = [](void* c, registryd_str ct, int fd, uint64_t offset, uint64_t length) {
    auto* self = static_cast<reply*>(c);
    self->content_type.assign(ct.data, ct.size);
    self->body.assign(length, '\0');
    const ssize_t n = ::pread(fd, self->body.data(), length, static_cast<off_t>(offset));
    ::close(fd);
    return n == static_cast<ssize_t>(length) ? 0 : -1;
  };
  sdk::response response(&w);
  handle(sdk::request(&r), response);
  return out;
}

}  // namespace registryd::test
