#include "body_relay.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace registryd::direct {

body_relay::body_relay(pull_fn pull, why_fn why, std::optional<oci::digest> verify, std::size_t min_fill)
    : pull_(std::move(pull)), why_(std::move(why)), verify_(std::move(verify)), min_fill_(std::max<std::size_t>(min_fill, 1)) {
  if (verify_) hash_.emplace(verify_->algorithm());
}

std::ptrdiff_t body_relay::fill(char* buffer, std::size_t capacity) {
  if (source_failed_) return -1;
  const std::size_t want = std::min(capacity, min_fill_);
  std::size_t got = 0;
  while (got < want) {
    const auto n = pull_(buffer + got, capacity - got);
    if (n < 0) {
      if (got == 0) return -1;
      source_failed_ = true;
      break;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  return static_cast<std::ptrdiff_t>(got);
}

std::size_t body_relay::read(char* buffer, std::size_t capacity) {
  if (capacity == 0) return 0;
  if (!verify_) {
    const auto n = fill(buffer, capacity);
    if (n < 0) throw std::runtime_error(why_());
    if (n == 0) complete_ = true;
    delivered_ += static_cast<std::size_t>(n);
    return static_cast<std::size_t>(n);
  }
  for (;;) {
    const std::size_t deliverable = held_.size() - offset_ - (ended_ ? 0 : last_chunk_);
    if (deliverable > 0) {
      const std::size_t n = std::min(capacity, deliverable);
      std::memcpy(buffer, held_.data() + offset_, n);
      offset_ += n;
      delivered_ += n;
      return n;
    }
    if (ended_) {
      complete_ = true;
      return 0;
    }
    held_.erase(0, offset_);
    offset_ = 0;
    scratch_.resize(capacity);
    const auto n = fill(scratch_.data(), scratch_.size());
    if (n < 0) throw std::runtime_error(why_());
    if (n == 0) {
      const auto got = hash_->current();
      if (got != *verify_) {
        throw std::runtime_error("the upstream sent bytes that hash to " + got.str() + ", not " + verify_->str());
      }
      ended_ = true;
      continue;
    }
    const std::string_view piece(scratch_.data(), static_cast<std::size_t>(n));
    hash_->update(piece);
    held_.append(piece);
    last_chunk_ = static_cast<std::size_t>(n);
  }
}

}  // namespace registryd::direct
