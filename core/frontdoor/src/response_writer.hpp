// The host side of registryd_response_writer: collects what a plugin answers and turns it into
// the front door's response, streaming bodies instead of copying them.
#pragma once

#include <registryd/plugin_abi.h>
#include <registryd/plugin_host/plugin_instance.hpp>

#include "http_message.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace registryd::frontdoor {

class response_writer {
 public:
  response_writer();
  ~response_writer();
  response_writer(const response_writer&) = delete;
  response_writer& operator=(const response_writer&) = delete;

  const registryd_response_writer* abi() const noexcept { return &abi_; }

  // Moves the collected answer into `res`. `plugin` is kept alive until a stream the plugin
  // handed over has been closed. The transport sends HEAD answers without their body.
  void apply(http_response& res, std::shared_ptr<const plugin_host::plugin_instance> plugin);

 private:
  enum class body_kind { none, bytes, stream, file };

  static int set_status(void* ctx, int status);
  static int add_header(void* ctx, registryd_str name, registryd_str value);
  static int send_bytes(void* ctx, registryd_str content_type, registryd_str body);
  static int send_stream(void* ctx, registryd_str content_type, int64_t length,
                         registryd_stream stream);
  static int send_file(void* ctx, registryd_str content_type, int fd, uint64_t offset,
                       uint64_t length);
  bool may_send() const noexcept { return kind_ == body_kind::none; }

  registryd_response_writer abi_{};
  int status_ = 200;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string content_type_;
  std::optional<std::uint64_t> declared_length_;  // from a Content-Length header the plugin set
  body_kind kind_ = body_kind::none;
  std::string bytes_;
  registryd_stream stream_{};
  std::int64_t stream_length_ = -1;
  int fd_ = -1;
  std::uint64_t file_offset_ = 0;
  std::uint64_t file_length_ = 0;
};

}  // namespace registryd::frontdoor
