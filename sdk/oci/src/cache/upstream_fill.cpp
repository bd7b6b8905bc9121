#include <registryd/oci/cache/upstream_fill.hpp>

#include <stdexcept>

namespace registryd::oci::cache {

std::optional<client::upstream_error> fetch_upstream_blob(fill_sink& sink, const client::registry_client& upstream,
                                                          std::string_view repository, const digest& d) {
  client::blob_read_options options;
  options.verify = false;  // the fill verifies what it writes, once
  options.abort = sink.abort_handle();
  client::response_handler handler;
  handler.on_head = [&sink](const client::response_head& head) {
    sink.begin(client::content_length(head));
    return true;
  };
  handler.on_body = [&sink](std::string_view piece) { return sink.write(piece); };
  // A body of known length is read from the socket straight into the fill's buffer.
  handler.body_room = [&sink] { return sink.room(); };
  handler.body_filled = [&sink](std::size_t n) { return sink.filled(n); };
  auto got = upstream.get_blob(repository, d, handler, options);
  if (got) return std::nullopt;
  return got.error();
}

std::size_t fill_body::read(char* buffer, std::size_t capacity) {
  const auto n = reader_->read(buffer, capacity);
  if (n < 0) throw std::runtime_error("the fill of the blob failed");
  return static_cast<std::size_t>(n);
}

}  // namespace registryd::oci::cache
