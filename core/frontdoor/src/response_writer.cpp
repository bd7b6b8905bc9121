#include "response_writer.hpp"

#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <string_view>

namespace registryd::frontdoor {
namespace {

// Bytes moved per read from a plugin stream or a file.
constexpr std::size_t chunk_size = 256 * 1024;

std::string to_string(registryd_str s) { return s.data == nullptr ? std::string() : std::string(s.data, s.size); }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Closes a plugin stream exactly once, and keeps the plugin loaded until then.
struct stream_holder {
  stream_holder(registryd_stream s, std::shared_ptr<const plugin_host::plugin_instance> p)
      : stream(s), plugin(std::move(p)) {}
  stream_holder(const stream_holder&) = delete;
  stream_holder& operator=(const stream_holder&) = delete;
  registryd_stream stream;
  std::shared_ptr<const plugin_host::plugin_instance> plugin;
  std::vector<char> buffer = std::vector<char>(chunk_size);
  ~stream_holder() {
    if (stream.close != nullptr) stream.close(stream.ctx);
  }
};

struct file_holder {
  file_holder(int f, std::uint64_t o) : fd(f), offset(o) {}
  file_holder(const file_holder&) = delete;
  file_holder& operator=(const file_holder&) = delete;
  int fd;
  std::uint64_t offset;
  std::vector<char> buffer = std::vector<char>(chunk_size);
  ~file_holder() { ::close(fd); }
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

void response_writer::apply(httplib::Response& res, bool head,
                            std::shared_ptr<const plugin_host::plugin_instance> plugin) {
  res.status = status_;
  for (auto& [n, v] : headers_) res.set_header(n, v);
  const std::string content_type =
      content_type_.empty() ? std::string("application/octet-stream") : content_type_;

  switch (kind_) {
    case body_kind::none:
      if (declared_length_ && *declared_length_ > 0) {
        // Headers only (HEAD, typically): state the length without a body to send. httplib
        // does not call the provider for HEAD.
        res.set_content_provider(static_cast<std::size_t>(*declared_length_), content_type,
                                 [](std::size_t, std::size_t, httplib::DataSink&) { return false; });
      } else if (!content_type_.empty()) {
        res.set_header("Content-Type", content_type_);
      }
      break;
    case body_kind::bytes:
      res.set_content(std::move(bytes_), content_type);
      break;
    case body_kind::stream: {
      auto holder = std::make_shared<stream_holder>(stream_, std::move(plugin));
      stream_ = {};
      kind_ = body_kind::none;
      if (head) {
        if (stream_length_ >= 0) {
          res.set_content_provider(static_cast<std::size_t>(stream_length_), content_type,
                                   [holder](std::size_t, std::size_t, httplib::DataSink&) { return false; });
        }
        break;
      }
      if (stream_length_ >= 0) {
        // Fixed length: httplib calls until the promised length is sent. A stream that ends
        // early is an error (the connection is closed, the client sees a short body), never
        // a done() call, which httplib does not allow for a fixed-length body.
        res.set_content_provider(
            static_cast<std::size_t>(stream_length_), content_type,
            [holder](std::size_t, std::size_t length, httplib::DataSink& sink) {
              const std::int64_t n = holder->stream.read(
                  holder->stream.ctx, holder->buffer.data(), std::min(length, holder->buffer.size()));
              if (n <= 0) return false;
              return sink.write(holder->buffer.data(), static_cast<std::size_t>(n));
            });
      } else {
        res.set_chunked_content_provider(
            content_type, [holder](std::size_t, httplib::DataSink& sink) {
              const std::int64_t n = holder->stream.read(holder->stream.ctx, holder->buffer.data(),
                                                         holder->buffer.size());
              if (n < 0) return false;
              if (n == 0) {
                sink.done();
                return true;
              }
              return sink.write(holder->buffer.data(), static_cast<std::size_t>(n));
            });
      }
      break;
    }
    case body_kind::file: {
      auto holder = std::make_shared<file_holder>(fd_, file_offset_);
      fd_ = -1;
      kind_ = body_kind::none;
      res.set_content_provider(
          static_cast<std::size_t>(file_length_), content_type,
          [holder](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
            const std::size_t want = std::min(length, holder->buffer.size());
            ssize_t n;
            do {
              n = ::pread(holder->fd, holder->buffer.data(), want,
                          static_cast<off_t>(holder->offset + offset));
            } while (n < 0 && errno == EINTR);
            if (n <= 0) return false;  // error, or the file is shorter than promised
            return sink.write(holder->buffer.data(), static_cast<std::size_t>(n));
          });
      break;
    }
  }
}

}  // namespace registryd::frontdoor
