// Admission by count: at most `total` holders at once, and at most `per_key` of them under one
// key (a client address, say). enter() takes a place or says which bound refused it; the place
// is given back when its ticket goes. The front door bounds its connections with it, Direct
// mode its relays in flight (docs/frontdoor.md, docs/direct-mode.md). Header-only.
//
// Thread-safety: every member may be called from any thread. Tickets share the counts with
// their admission, so a ticket may outlive the admission it came from.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace registryd::sdk {

class admission {
  struct counts {
    counts(std::size_t total, std::size_t per_key) : total_limit(total), per_key_limit(per_key) {}
    std::mutex mutex;
    std::size_t total_limit;
    std::size_t per_key_limit;
    std::size_t held = 0;
    std::unordered_map<std::string, std::size_t> by_key;  // keys holding at least one place
  };

 public:
  // Which bound refused a place.
  enum class refusal { none, total, per_key };

  // A place held under a key, given back on destruction. An empty ticket (refused, or moved
  // from) holds nothing.
  class ticket {
   public:
    ticket() = default;
    ticket(ticket&& o) noexcept : counts_(std::move(o.counts_)), key_(std::move(o.key_)) {}
    ticket& operator=(ticket&& o) noexcept {
      if (this != &o) {
        leave();
        counts_ = std::move(o.counts_);
        key_ = std::move(o.key_);
      }
      return *this;
    }
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket() { leave(); }

    explicit operator bool() const noexcept { return counts_ != nullptr; }

   private:
    friend class admission;
    ticket(std::shared_ptr<counts> c, std::string key) : counts_(std::move(c)), key_(std::move(key)) {}
    void leave() noexcept {
      if (!counts_) return;
      {
        std::lock_guard lock(counts_->mutex);
        --counts_->held;
        if (const auto it = counts_->by_key.find(key_); it != counts_->by_key.end() && --it->second == 0) {
          counts_->by_key.erase(it);
        }
      }
      counts_.reset();
    }
    std::shared_ptr<counts> counts_;
    std::string key_;
  };

  admission(std::size_t total, std::size_t per_key)
      : counts_(std::make_shared<counts>(total, per_key)) {}

  // A place under `key`, or an empty ticket when `total` places are held, or `per_key` under
  // this key; `why` (when given) says which.
  ticket enter(std::string_view key, refusal* why = nullptr) {
    std::lock_guard lock(counts_->mutex);
    refusal r = refusal::none;
    if (counts_->held >= counts_->total_limit) {
      r = refusal::total;
    } else {
      auto& n = counts_->by_key[std::string(key)];
      if (n >= counts_->per_key_limit) {
        if (n == 0) counts_->by_key.erase(std::string(key));  // a limit of 0 leaves no entry
        r = refusal::per_key;
      } else {
        ++n;
        ++counts_->held;
      }
    }
    if (why) *why = r;
    if (r != refusal::none) return {};
    return ticket(counts_, std::string(key));
  }

  // Places held now, in all and under `key`.
  std::size_t held() const {
    std::lock_guard lock(counts_->mutex);
    return counts_->held;
  }
  std::size_t held(std::string_view key) const {
    std::lock_guard lock(counts_->mutex);
    const auto it = counts_->by_key.find(std::string(key));
    return it == counts_->by_key.end() ? 0 : it->second;
  }

 private:
  std::shared_ptr<counts> counts_;
};

}  // namespace registryd::sdk
