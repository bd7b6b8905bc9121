#include <registryd/oci/client/message.hpp>

#include <algorithm>
#include <charconv>

namespace registryd::oci::client {

void header_list::add(std::string name, std::string value) {
  fields_.push_back({std::move(name), std::move(value)});
}

void header_list::set(std::string name, std::string value) {
  remove(name);
  add(std::move(name), std::move(value));
}

void header_list::remove(std::string_view name) {
  std::erase_if(fields_, [&](const field& f) { return iequals(f.name, name); });
}

std::optional<std::string_view> header_list::get(std::string_view name) const {
  for (const auto& f : fields_) {
    if (iequals(f.name, name)) return std::string_view(f.value);
  }
  return std::nullopt;
}

std::vector<std::string_view> header_list::get_all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& f : fields_) {
    if (iequals(f.name, name)) out.emplace_back(f.value);
  }
  return out;
}

void abort_handle::abort() {
  std::lock_guard lock(mutex_);
  aborted_ = true;
  if (shut_) {
    auto shut = std::move(shut_);
    shut_ = nullptr;
    shut();
  }
}

bool abort_handle::aborted() const {
  std::lock_guard lock(mutex_);
  return aborted_;
}

void abort_handle::attach(std::function<void()> shut) {
  std::lock_guard lock(mutex_);
  if (aborted_) {
    shut();
    return;
  }
  shut_ = std::move(shut);
}

void abort_handle::detach() {
  std::lock_guard lock(mutex_);
  shut_ = nullptr;
}

std::optional<std::uint64_t> content_length(const response_head& head) {
  const auto v = head.headers.get("Content-Length");
  if (!v) return std::nullopt;
  std::uint64_t n = 0;
  const auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size()) return std::nullopt;
  return n;
}

}  // namespace registryd::oci::client
