#include <registryd/oci/image_check.hpp>

#include <registryd/sdk/text.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace registryd::oci {
namespace {

// A line of an image list without its blanks (and a CRLF file's CR).
std::string_view trim(std::string_view s) { return sdk::trim(s, " \t\r"); }

bool is_registry_component(std::string_view c) {
  return c.find('.') != std::string_view::npos || c.find(':') != std::string_view::npos || c == "localhost";
}

// Splits "name[:tag][@digest]" (name may be empty); false when neither a tag nor a digest is
// named at all.
bool split_reference(std::string_view text, std::string& name, std::string& tag, std::string& dig) {
  bool named = false;
  const auto at = text.find('@');
  if (at != std::string_view::npos) {
    dig = std::string(text.substr(at + 1));
    text = text.substr(0, at);
    named = true;
  }
  const auto slash = text.rfind('/');
  const auto colon = text.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    tag = std::string(text.substr(colon + 1));
    text = text.substr(0, colon);
    named = true;
  }
  name = std::string(text);
  return named;
}

}  // namespace

image_list parse_image_list(std::string_view text, const repository_location& images_repo) {
  image_list out;
  std::size_t line_no = 0;
  for (std::size_t pos = 0; pos <= text.size();) {
    const auto nl = std::min(text.find('\n', pos), text.size());
    const auto line = trim(text.substr(pos, nl - pos));
    pos = nl + 1;
    ++line_no;
    if (line.empty() || line.front() == '#') continue;

    auto why = [&]() -> std::optional<std::string> {
      std::string name, tag, dig, repository;
      const auto slash = line.find('/');
      const bool full = slash != std::string_view::npos && is_registry_component(line.substr(0, slash));
      if (full && !sdk::iequals(line.substr(0, slash), images_repo.registry)) {
        return "names registry " + std::string(line.substr(0, slash)) + ", not the target " + images_repo.registry;
      }
      if (!split_reference(full ? line.substr(slash + 1) : line, name, tag, dig)) {
        return std::string("names no tag and no digest");
      }
      if (full) {
        repository = name;
      } else if (name.empty()) {
        repository = images_repo.path;
      } else {
        repository = images_repo.path.empty() ? name : images_repo.path + "/" + name;
      }
      if (!is_valid_repository_name(repository)) return "'" + repository + "' is not a repository name";
      if (!dig.empty() && !digest::parse(dig)) return "'" + dig + "' is not a digest";
      if ((dig.empty() || !tag.empty()) && !is_valid_tag(tag)) return "'" + tag + "' is not a tag";
      out.items.push_back({std::string(line), repository, dig.empty() ? tag : dig});
      return std::nullopt;
    }();
    if (why) out.errors.push_back({line_no, "'" + std::string(line) + "': " + *why});
  }
  return out;
}

std::string image_check_report::message() const {
  if (ok()) return registry + ": all " + std::to_string(total) + " items are checked";
  std::string out = registry + ": " + std::to_string(failed) + " of " + std::to_string(total) +
                    " items failed the check";
  if (stopped_early) {
    out += " (stopped after " + std::to_string(failed) + " failures, " + std::to_string(checked) +
           " checked)";
  }
  out += ":";
  for (const auto& f : failures) out += "\n  " + f.item + ": " + f.reason;
  return out;
}

image_check_report check_images(client::client_options options, const std::vector<image_check_item>& items,
                                 const image_check_options& check) {
  options.read_timeout = check.timeout;
  options.connect_timeout = std::min(options.connect_timeout, check.timeout);
  options.max_idle_connections = std::max<std::size_t>(options.max_idle_connections, check.parallelism);
  const client::registry_client client(std::move(options));
  return check_images(client, items, check);
}

image_check_report check_images(const client::registry_client& client, const std::vector<image_check_item>& items,
                                 const image_check_options& check) {
  image_check_report report;
  report.registry = client.options().registry;
  report.total = items.size();

  std::mutex mutex;
  std::condition_variable stop_cv;  // wakes backoff sleeps when checking stops
  bool stop = false;
  std::vector<std::pair<std::size_t, image_check_failure>> failures;
  std::atomic<std::size_t> next{0};

  auto check_one = [&](const image_check_item& item) -> std::optional<std::string> {
    auto pause = check.backoff;
    for (int attempt = 1;; ++attempt) {
      auto r = client.head_manifest(item.repository, item.reference);
      if (r) return std::nullopt;
      if (!r.error().retryable() || attempt >= std::max(check.attempts, 1)) {
        auto why = r.error().str();
        if (attempt > 1) why += " (after " + std::to_string(attempt) + " attempts)";
        return why;
      }
      std::unique_lock lock(mutex);
      if (stop_cv.wait_for(lock, pause, [&] { return stop; })) return "not finished: checking stopped";
      pause *= 2;
    }
  };

  auto worker = [&] {
    for (;;) {
      {
        std::lock_guard lock(mutex);
        if (stop) return;
      }
      const auto i = next.fetch_add(1);
      if (i >= items.size()) return;
      auto failure = check_one(items[i]);
      std::lock_guard lock(mutex);
      if (failure && *failure == "not finished: checking stopped") return;
      ++report.checked;
      if (!failure) continue;
      ++report.failed;
      failures.push_back({i, {items[i].text, std::move(*failure)}});
      if (check.report_failures > 0 && report.failed >= check.report_failures) {
        stop = true;
        stop_cv.notify_all();
      }
    }
  };

  const auto threads_wanted = std::min(std::max<std::size_t>(check.parallelism, 1), items.size());
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < threads_wanted; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();

  report.stopped_early = report.checked < report.total;
  std::sort(failures.begin(), failures.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [i, f] : failures) {
    if (check.report_failures > 0 && report.failures.size() >= check.report_failures) break;
    report.failures.push_back(std::move(f));
  }
  return report;
}

}  // namespace registryd::oci
