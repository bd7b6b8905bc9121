#include "response_writer.hpp"

#include <unistd.h>

#include <charconv>
#include <string_view>

namespace registryd::frontdoor {
namespace {

std::string to_string(registryd_str s) { return s.data == nullptr ? std::string() : std::string(s.data, s.size); }

// A plugin stream as a response body: closed exactly once, and the plugin kept loaded until then.
class plugin_stream final : public body_source {
 public:
  plugin_stream(registryd_stream s, std::shared_ptr<const plugin_host::plugin_instance> p)
      : stream_(s), plugin_(std::move(p)) {}
  plugin_stream(const plugin_stream&) = delete;
  plugin_stream& operator=(const plugin_stream&) = delete;
  ~plugin_stream() override {
    if (stream_.close != nullptr) stream_.close(stream_.ctx);
  }
  std::int64_t read(char* buffer, std::size_t capacity) override {
    return stream_.read(stream_.ctx, buffer, capacity);
  }

 private:
  registryd_stream stream_;
  std::shared_ptr<const plugin_host::plugin_instance> plugin_;
};

}  // namespace

response_writer::response_writer() {
  abi_.struct_size = sizeof(abi_);
  abi_.ctx = this;
  abi_.set_status = &set_status;
  abi_.add_header = &add_header;
  abi_.send_bytes = &send_bytes;
  abi_.send_stream = &send_stream;
  abi_.send_file = &send_file;
}

response_writer::~response_writer() {
  // Whatever was handed over and not applied (an exception between handle and apply) is
  // still ours to release.
  if (kind_ == body_kind::stream && stream_.close != nullptr) stream_.close(stream_.ctx);
  if (kind_ == body_kind::file && fd_ >= 0) ::close(fd_);
}

int response_writer::set_status(void* ctx, int status) {
  auto* self = static_cast<response_writer*>(ctx);
  if (!self->may_send() || status < 100 || status > 599) return -1;
  self->status_ = status;
  return 0;
}

int response_writer::add_header(void* ctx, registryd_str name, registryd_str value) {
  auto* self = static_cast<response_writer*>(ctx);
  if (!self->may_send()) return -1;
  std::string n = to_string(name);
  std::string v = to_string(value);
  // httplib sets these itself from the body; keep the plugin's values as the body's facts.
  if (iequals(n, "Content-Type")) {
    self->content_type_ = std::move(v);
    return 0;
  }
  if (iequals(n, "Content-Length")) {
    std::uint64_t len = 0;
    const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), len);
    if (ec != std::errc{} || ptr != v.data() + v.size()) return -1;
    self->declared_length_ = len;
    return 0;
  }
  // Framing and the connection are the transport's: a plugin cannot set them.
  if (iequals(n, "Transfer-Encoding") || iequals(n, "Connection") || iequals(n, "Keep-Alive")) return 0;
  if (n.find_first_of("\r\n") != std::string::npos || v.find_first_of("\r\n") != std::string::npos) {
    return -1;  // header injection
  }
  self->headers_.emplace_back(std::move(n), std::move(v));
  return 0;
}

int response_writer::send_bytes(void* ctx, registryd_str content_type, registryd_str body) {
  auto* self = static_cast<response_writer*>(ctx);
  if (!self->may_send()) return -1;
  self->kind_ = body_kind::bytes;
  if (content_type.size > 0) self->content_type_ = to_string(content_type);
  self->bytes_ = to_string(body);
  return 0;
}

int response_writer::send_stream(void* ctx, registryd_str content_type, int64_t length,
                                 registryd_stream stream) {
  auto* self = static_cast<response_writer*>(ctx);
  if (!self->may_send() || stream.read == nullptr) {
    if (stream.close != nullptr) stream.close(stream.ctx);  // ownership was passed anyway
    return -1;
  }
  self->kind_ = body_kind::stream;
  if (content_type.size > 0) self->content_type_ = to_string(content_type);
  self->stream_ = stream;
  self->stream_length_ = length;
  return 0;
}

int response_writer::send_file(void* ctx, registryd_str content_type, int fd, uint64_t offset,
                               uint64_t length) {
  auto* self = static_cast<response_writer*>(ctx);
  if (!self->may_send() || fd < 0) {
    if (fd >= 0) ::close(fd);  // ownership was passed anyway
    return -1;
  }
  self->kind_ = body_kind::file;
  if (content_type.size > 0) self->content_type_ = to_string(content_type);
  self->fd_ = fd;
  self->file_offset_ = offset;
  self->file_length_ = length;
  return 0;
}

void response_writer::apply(http_response& res,
                            std::shared_ptr<const plugin_host::plugin_instance> plugin) {
  res.status = static_cast<unsigned>(status_);
  for (auto& [n, v] : headers_) res.set_header(std::move(n), std::move(v));
  res.content_type = content_type_.empty() && kind_ != body_kind::none ? std::string("application/octet-stream")
                                                                        : content_type_;
  switch (kind_) {
    case body_kind::none:
      // Headers only (HEAD, typically): the length the plugin stated, without a body.
      res.declared_length = declared_length_;
      break;
    case body_kind::bytes:
      res.kind = http_response::body_kind::bytes;
      res.bytes = std::move(bytes_);
      break;
    case body_kind::stream:
      // A stream that ends before its promised length closes the connection: the client sees
      // a short body, never a wrong one.
      res.kind = http_response::body_kind::stream;
      res.stream = std::make_unique<plugin_stream>(stream_, std::move(plugin));
      res.stream_length = stream_length_;
      stream_ = {};
      kind_ = body_kind::none;
      break;
    case body_kind::file:
      res.kind = http_response::body_kind::file;
      res.file = std::make_shared<owned_fd>(fd_);
      res.file_offset = file_offset_;
      res.file_length = file_length_;
      fd_ = -1;
      kind_ = body_kind::none;
      break;
  }
}

}  // namespace registryd::frontdoor
