// Coalesced cache fills (registryd/oci/cache/blob_fill.hpp): one fetch for many clients, bytes
// streamed while they are written, clients that leave, and fills that fail.
#include <registryd/oci/cache/blob_fill.hpp>

#include <registryd/oci/digest.hpp>
#include <registryd/oci/storage/blob_store.hpp>

#include <test_support.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

using namespace registryd::oci;
using namespace std::chrono_literals;
using registryd::test::scratch_dir;

namespace {

std::string random_bytes(std::size_t size, unsigned seed = 1) {
  std::mt19937 gen(seed);
  std::string s(size, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

// A one-shot gate threads wait at until it opens.
class gate {
 public:
  void open() {
    std::lock_guard lock(m_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait_for(std::chrono::milliseconds t) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, t, [&] { return open_; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Writes `content` in `piece` pieces, announcing its size first.
std::optional<cache::fill_failure> write_all(cache::fill_sink& sink, const std::string& content,
                                             std::size_t piece = 64 * 1024) {
  sink.begin(content.size());
  for (std::size_t off = 0; off < content.size(); off += piece) {
    if (!sink.write(std::string_view(content).substr(off, piece))) return cache::fill_failure{500, "UNKNOWN", "refused"};
  }
  return std::nullopt;
}

struct read_outcome {
  std::string bytes;
  bool failed = false;
};

// Reads a reader to its end (or failure), with a bound on every wait.
read_outcome drain(cache::fill_reader& r) {
  read_outcome out;
  char buf[32 * 1024];
  for (;;) {
    const auto n = r.read_for(buf, sizeof buf, 20s);
    REQUIRE(n != -2);  // never a hang
    if (n < 0) {
      out.failed = true;
      return out;
    }
    if (n == 0) return out;
    out.bytes.append(buf, static_cast<std::size_t>(n));
  }
}

std::size_t temp_count(const storage::blob_store& store) {
  std::size_t n = 0;
  store.for_each_temp([&](const std::filesystem::path&, std::uint64_t, storage::time_point) { ++n; });
  return n;
}

// The share of the first `length` bytes' pages of `path` that are in the page cache.
double resident_share(const std::filesystem::path& path, std::size_t length) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  void* map = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  REQUIRE(map != MAP_FAILED);
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in_core((length + page - 1) / page);
  const int rc = ::mincore(map, length, in_core.data());
  ::munmap(map, length);
  REQUIRE(rc == 0);
  std::size_t resident = 0;
  for (const unsigned char c : in_core) resident += c & 1;
  return static_cast<double>(resident) / static_cast<double>(in_core.size());
}

// A fill of 40 MiB whose source writes each 8 MiB writeback step to the disk (fdatasync) before
// the next, so that the pages behind the writer are clean and could be dropped; it holds the
// last byte back until the test has looked at the temporary. Returns the share of the first
// 8 MiB of the temporary in the page cache at that moment.
double first_pages_resident_while_filling(bool reader_stays) {
  scratch_dir dir;
  storage::blob_store store(dir.path());
  const std::string content = random_bytes(40 * 1024 * 1024, 11);
  gate written, checked;
  std::filesystem::path temp;
  const cache::fetch_fn fetch = [&](cache::fill_sink& sink) -> std::optional<cache::fill_failure> {
    sink.begin(content.size());
    store.for_each_temp([&](const std::filesystem::path& p, std::uint64_t, storage::time_point) { temp = p; });
    const int fd = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cache::fill_failure{500, "UNKNOWN", "no temporary"};
    const std::size_t step = 1024 * 1024;
    bool refused = false;
    for (std::size_t off = 0; off + 1 < content.size() && !refused; off += step) {
      refused = !sink.write(std::string_view(content).substr(off, std::min(step, content.size() - 1 - off)));
      if (!refused && (off + step) % (8 * step) == 0) ::fdatasync(fd);
    }
    ::close(fd);
    if (refused) return cache::fill_failure{};
    written.open();
    if (!checked.wait_for(20s)) return cache::fill_failure{500, "UNKNOWN", "never checked"};
    if (!sink.write(std::string_view(content).substr(content.size() - 1))) return cache::fill_failure{};
    return std::nullopt;
  };
  cache::blob_fills fills(store);
  auto j = fills.join(digest_of(content), fetch);
  REQUIRE(j.reader);
  if (!reader_stays) j.reader.reset();
  REQUIRE(written.wait_for(20s));
  const double share = resident_share(temp, 8 * 1024 * 1024);
  checked.open();
  if (j.reader) {
    auto out = drain(*j.reader);
    REQUIRE_FALSE(out.failed);
    CHECK(out.bytes == content);
  }
  return share;
}

}  // namespace

TEST_CASE("concurrent misses of one blob run exactly one fetch and every client gets identical bytes",
          "[cache][fill]") {
  scratch_dir dir;
  storage::blob_store store(dir.path());
  const std::string content = random_bytes(4 * 1024 * 1024 + 123, 7);
  const digest d = digest_of(content);
  constexpr int clients = 24;

  std::atomic<int> fetches{0};
  std::atomic<int> joined{0};
  gate all_joined;
  const cache::fetch_fn fetch = [&](cache::fill_sink& sink) -> std::optional<cache::fill_failure> {
    ++fetches;
    sink.begin(content.size());
    // Every client joins before a byte arrives: they all wait on this one fetch.
    if (!all_joined.wait_for(20s)) return cache::fill_failure{500, "UNKNOWN", "clients did not join"};
    for (std::size_t off = 0; off < content.size(); off += 64 * 1024) {
      if (!sink.write(std::string_view(content).substr(off, 64 * 1024))) return cache::fill_failure{};
      if (off % (1024 * 1024) == 0) std::this_thread::sleep_for(2ms);
    }
    return std::nullopt;
  };

  cache::blob_fills fills(store);
  std::vector<std::string> got(clients);
  std::vector<int> started(clients, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto j = fills.join(d, fetch);
      started[i] = j.started ? 1 : 0;
      if (++joined == clients) all_joined.open();
      if (!j.reader) return;
      auto out = drain(*j.reader);
      if (!out.failed) got[i] = std::move(out.bytes);
    });
  }
  for (auto& t : threads) t.join();

  CHECK(fetches.load() == 1);
  int starters = 0;
  for (int s : started) starters += s;
  CHECK(starters == 1);
  CHECK(fills.joins_coalesced() == clients - 1);
  for (int i = 0; i < clients; ++i) {
    INFO("client " << i);
    CHECK(got[i].size() == content.size());
    CHECK(digest_of(got[i]) == d);
  }
  // Published once, verified, and the temporary gone.
  for (int i = 0; i < 200 && fills.in_flight() != 0; ++i) std::this_thread::sleep_for(5ms);
  CHECK(fills.in_flight() == 0);
  REQUIRE(store.exists(d));
  CHECK(*store.stat(d) == content.size());
  CHECK(temp_count(store) == 0);

  // Later clients find it in the store and fetch nothing.
  auto again = fills.join(d, fetch);
  CHECK(again.published);
  CHECK(fetches.load() == 1);
}

TEST_CASE("a client gets its first bytes while the fill is still running", "[cache][fill]") {
  scratch_dir dir;
  storage::blob_store store(dir.path());
  const std::string content = random_bytes(2 * 1024 * 1024, 3);
  gate rest;
  const cache::fetch_fn fetch = [&](cache::fill_sink& sink) -> std::optional<cache::fill_failure> {
    sink.begin(content.size());
    if (!sink.write(std::string_view(content).substr(0, 1024 * 1024))) return cache::fill_failure{};
    if (!rest.wait_for(20s)) return cache::fill_failure{500, "UNKNOWN", "never released"};
    if (!sink.write(std::string_view(content).substr(1024 * 1024))) return cache::fill_failure{};
    return std::nullopt;
  };
  cache::blob_fills fills(store);
  auto j = fills.join(digest_of(content), fetch);
  REQUIRE(j.reader);
  REQUIRE(j.reader->size() == content.size());
  std::string first;
  char buf[64 * 1024];
  while (first.size() < 512 * 1024) {
    const auto n = j.reader->read_for(buf, sizeof buf, 5s);
    REQUIRE(n > 0);  // bytes while the source is still held back
    first.append(buf, static_cast<std::size_t>(n));
  }
  CHECK(first == content.substr(0, first.size()));
  // Nothing more than what is on disk (less its last byte, held back until verification).
  std::uint64_t seen = first.size();
  for (;;) {
    const auto n = j.reader->read_for(buf, sizeof buf, 100ms);
    if (n == -2) break;
    REQUIRE(n > 0);
    first.append(buf, static_cast<std::size_t>(n));
    seen += static_cast<std::uint64_t>(n);
  }
  CHECK(seen == 1024 * 1024 - 1);
  rest.open();
  auto out = drain(*j.reader);
  REQUIRE_FALSE(out.failed);
  CHECK(first + out.bytes == content);
}

TEST_CASE("a client that leaves does not stop the fill for the others", "[cache][fill]") {
  scratch_dir dir;
  storage::blob_store store(dir.path());
  const std::string content = random_bytes(3 * 1024 * 1024, 11);
  const digest d = digest_of(content);
  gate go;
  std::atomic<int> fetches{0};
  const cache::fetch_fn fetch = [&](cache::fill_sink& sink) -> std::optional<cache::fill_failure> {
    ++fetches;
    sink.begin(content.size());
    if (!go.wait_for(20s)) return cache::fill_failure{};
    for (std::size_t off = 0; off < content.size(); off += 64 * 1024) {
      if (!sink.write(std::string_view(content).substr(off, 64 * 1024))) return cache::fill_failure{};
      std::this_thread::sleep_for(200us);
    }
    return std::nullopt;
  };
  cache::blob_fills fills(store);
  auto leaver = fills.join(d, fetch);
  auto stayer = fills.join(d, fetch);
  REQUIRE(leaver.reader);
  REQUIRE(stayer.reader);
  go.open();
  char buf[4096];
  REQUIRE(leaver.reader->read_for(buf, sizeof buf, 5s) > 0);
  leaver.reader.reset();  // the client went away mid-blob

  auto out = drain(*stayer.reader);
  REQUIRE_FALSE(out.failed);
  CHECK(out.bytes == content);
  CHECK(fetches.load() == 1);
  for (int i = 0; i < 200 && fills.in_flight() != 0; ++i) std::this_thread::sleep_for(5ms);
  CHECK(store.exists(d));
}

TEST_CASE("every client leaving still leaves the blob cached", "[cache][fill]") {
  scratch_dir dir;
  storage::blob_store store(dir.path());
  const std::string content = random_bytes(1024 * 1024, 12);
  const digest d = digest_of(content);
  gate go;
  const cache::fetch_fn fetch = [&](cache::fill_sink& sink) -> std::optional<cache::fill_failure> {
    sink.begin(content.size());
    if (!go.wait_for(20s)) return cache::fill_failure{};
    return write_all(sink, content);
  };
  cache::blob_fills fills(store);
  {
    auto j = fills.join(d, fetch);
    REQUIRE(j.reader);
  }
  go.open();
  for (int i = 0; i < 400 && !store.exists(d); ++i) std::this_thread::sleep_for(5ms);
  CHECK(store.exists(d));
}

TEST_CASE("a fill that breaks off cuts every client short and publishes nothing", "[cache][fill]") {
  scratch_dir dir;
  storage::blob_store store(dir.path());
  std::vector<std::string> failures;
  std::mutex failures_mutex;
  cache::fill_options options;
  options.on_failed = [&](const digest&, const cache::fill_failure& f) {
    std::lock_guard lock(failures_mutex);
    failures.push_back(f.message);
  };
  const std::string content = random_bytes(1024 * 1024, 5);
  const digest d = digest_of(content);
  gate go;
  const cache::fetch_fn fetch = [&](cache::fill_sink& sink) -> std::optional<cache::fill_failure> {
    sink.begin(content.size());
    if (!go.wait_for(20s)) return cache::fill_failure{};
    if (!sink.write(std::string_view(content).substr(0, 300 * 1024))) return cache::fill_failure{};
    return cache::fill_failure{503, "UNAVAILABLE", "the connection to the upstream broke"};
  };
  cache::blob_fills fills(store, options);
  auto a = fills.join(d, fetch);
  auto b = fills.join(d, fetch);
  REQUIRE(a.reader);
  REQUIRE(b.reader);
  go.open();
  for (auto* r : {a.reader.get(), b.reader.get()}) {
    auto out = drain(*r);
    CHECK(out.failed);
    CHECK(out.bytes.size() < content.size());
    CHECK(out.bytes == content.substr(0, out.bytes.size()));
    REQUIRE(r->failure());
    CHECK(r->failure()->message == "the connection to the upstream broke");
  }
  for (int i = 0; i < 200 && fills.in_flight() != 0; ++i) std::this_thread::sleep_for(5ms);
  CHECK_FALSE(store.exists(d));
  CHECK(temp_count(store) == 0);
  std::lock_guard lock(failures_mutex);
  CHECK(failures.size() == 1);
}

TEST_CASE("content with another digest never reaches a client whole and is not published", "[cache][fill]") {
  scratch_dir dir;
  storage::blob_store store(dir.path());
  const std::string wanted = random_bytes(512 * 1024, 1);
  std::string sent = wanted;
  sent[sent.size() / 2] ^= 0x55;  // same size, one byte off
  const digest d = digest_of(wanted);
  gate go;
  const cache::fetch_fn fetch = [&](cache::fill_sink& sink) -> std::optional<cache::fill_failure> {
    sink.begin(sent.size());
    if (!go.wait_for(20s)) return cache::fill_failure{};
    return write_all(sink, sent);
  };
  cache::blob_fills fills(store);
  auto j = fills.join(d, fetch);
  REQUIRE(j.reader);
  go.open();
  auto out = drain(*j.reader);
  CHECK(out.failed);
  // At most everything but the withheld last byte: the failure may also come first.
  CHECK(out.bytes.size() < sent.size());
  CHECK(out.bytes == sent.substr(0, out.bytes.size()));
  REQUIRE(j.reader->failure());
  CHECK(j.reader->failure()->code == "BLOB_UNKNOWN");
  CHECK_THAT(j.reader->failure()->message, Catch::Contains(digest_of(sent).str()));
  for (int i = 0; i < 200 && fills.in_flight() != 0; ++i) std::this_thread::sleep_for(5ms);
  CHECK_FALSE(store.exists(d));
  CHECK(temp_count(store) == 0);
}

TEST_CASE("a source that sends more or fewer bytes than it announced fails the fill", "[cache][fill]") {
  scratch_dir dir;
  storage::blob_store store(dir.path());
  const std::string content = random_bytes(100 * 1024, 2);
  const digest d = digest_of(content);

  cache::blob_fills fills(store);
  SECTION("more") {
    auto j = fills.join(d, [&](cache::fill_sink& sink) -> std::optional<cache::fill_failure> {
      sink.begin(content.size() - 10);
      return write_all(sink, content, 1000);  // begin() again is ignored
    });
    if (j.reader) {
      auto out = drain(*j.reader);
      CHECK(out.failed);
      REQUIRE(j.reader->failure());
      CHECK_THAT(j.reader->failure()->message, Catch::Contains("more than"));
    } else {
      REQUIRE(j.failure);
      CHECK_THAT(j.failure->message, Catch::Contains("more than"));
    }
  }
  SECTION("fewer") {
    auto j = fills.join(d, [&](cache::fill_sink& sink) -> std::optional<cache::fill_failure> {
      sink.begin(content.size() + 10);
      for (std::size_t off = 0; off < content.size(); off += 1000) {
        if (!sink.write(std::string_view(content).substr(off, 1000))) return cache::fill_failure{};
      }
      return std::nullopt;
    });
    if (j.reader) {
      auto out = drain(*j.reader);
      CHECK(out.failed);
      REQUIRE(j.reader->failure());
      CHECK_THAT(j.reader->failure()->message, Catch::Contains("of the"));
    } else {
      REQUIRE(j.failure);
    }
  }
  for (int i = 0; i < 200 && fills.in_flight() != 0; ++i) std::this_thread::sleep_for(5ms);
  CHECK_FALSE(store.exists(d));
}

TEST_CASE("a fill that fails before its first byte gives every waiting client the reason", "[cache][fill]") {
  scratch_dir dir;
  storage::blob_store store(dir.path());
  const digest d = digest_of("not upstream");
  std::atomic<int> fetches{0};
  gate go;
  const cache::fetch_fn fetch = [&](cache::fill_sink&) -> std::optional<cache::fill_failure> {
    ++fetches;
    (void)go.wait_for(2s);
    return cache::fill_failure{404, "BLOB_UNKNOWN", "blob unknown to registry"};
  };
  cache::blob_fills fills(store);
  std::vector<std::optional<cache::fill_failure>> seen(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto j = fills.join(d, fetch);
      CHECK_FALSE(j.reader);
      seen[i] = j.failure;
    });
  }
  std::this_thread::sleep_for(100ms);
  go.open();
  for (auto& t : threads) t.join();
  // The four may or may not share the fetch (a late one starts anew), but each got the reason.
  CHECK(fetches.load() >= 1);
  for (const auto& f : seen) {
    REQUIRE(f);
    CHECK(f->status == 404);
    CHECK(f->code == "BLOB_UNKNOWN");
  }
  CHECK(temp_count(store) == 0);
}

TEST_CASE("a reader limited to a range gets exactly those bytes while the fill runs", "[cache][fill]") {
  scratch_dir dir;
  storage::blob_store store(dir.path());
  const std::string content = random_bytes(700 * 1024, 9);
  gate go;
  cache::blob_fills fills(store);
  auto j = fills.join(digest_of(content), [&](cache::fill_sink& sink) -> std::optional<cache::fill_failure> {
    sink.begin(content.size());
    if (!go.wait_for(20s)) return cache::fill_failure{};
    return write_all(sink, content, 10000);
  });
  REQUIRE(j.reader);
  j.reader->set_range(100000, 250000);
  go.open();
  auto out = drain(*j.reader);
  REQUIRE_FALSE(out.failed);
  CHECK(out.bytes == content.substr(100000, 250000));
}

TEST_CASE("shutdown cancels a fill blocked on its source and refuses new joins", "[cache][fill]") {
  scratch_dir dir;
  storage::blob_store store(dir.path());
  const digest d = digest_of("slow");
  std::atomic<bool> aborted{false};
  auto fills = std::make_unique<cache::blob_fills>(store);
  auto j = fills->join(d, [&](cache::fill_sink& sink) -> std::optional<cache::fill_failure> {
    sink.begin(4);
    // A transfer blocked on the network: it ends when the abort handle is tripped.
    while (!sink.abort_handle()->aborted()) std::this_thread::sleep_for(1ms);
    aborted = true;
    return cache::fill_failure{503, "UNAVAILABLE", "canceled"};
  });
  REQUIRE(j.reader);
  const auto t0 = std::chrono::steady_clock::now();
  fills->shutdown();
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(aborted.load());
  auto out = drain(*j.reader);
  CHECK(out.failed);
  auto late = fills->join(d, [](cache::fill_sink&) -> std::optional<cache::fill_failure> { return std::nullopt; });
  REQUIRE(late.failure);
  CHECK(late.failure->status == 503);
  fills.reset();
  CHECK(temp_count(store) == 0);
}

TEST_CASE("sweeping temporaries removes only abandoned old ones", "[cache][fill]") {
  scratch_dir dir;
  storage::blob_store store(dir.path());
  const auto old_temp = store.temp_dir() / "crashed.tmp";
  registryd::test::spill(old_temp, "partial");
  const auto young_temp = store.temp_dir() / "young.tmp";
  registryd::test::spill(young_temp, "partial");
  const auto now = std::chrono::system_clock::now();
  std::filesystem::last_write_time(old_temp, std::filesystem::file_time_type::clock::now() - std::chrono::hours(2));

  gate go;
  const std::string content = random_bytes(1000, 4);
  cache::blob_fills fills(store);
  auto j = fills.join(digest_of(content), [&](cache::fill_sink& sink) -> std::optional<cache::fill_failure> {
    sink.begin(content.size());
    if (!go.wait_for(20s)) return cache::fill_failure{};
    return write_all(sink, content);
  });
  REQUIRE(j.reader);
  CHECK(fills.sweep_temps(now) == 1);
  CHECK_FALSE(std::filesystem::exists(old_temp));
  CHECK(std::filesystem::exists(young_temp));
  // Two hours later, as far as the sweep knows: the running fill's temporary is still kept.
  CHECK(fills.sweep_temps(now + std::chrono::hours(2)) == 1);
  CHECK_FALSE(std::filesystem::exists(young_temp));
  CHECK(temp_count(store) == 1);
  go.open();
  auto out = drain(*j.reader);
  CHECK(out.bytes == content);
}

TEST_CASE("a fill keeps the pages its slowest reader has still to read in the page cache", "[cache][fill]") {
  // Without a reader the fill drops the pages two writeback steps behind it once they are on
  // the disk. (A temporary directory on a filesystem that keeps dropped pages, such as tmpfs,
  // cannot show the difference: the test fails there rather than pass on nothing.)
  const double without_reader = first_pages_resident_while_filling(false);
  INFO("share of the first 8 MiB still cached with no reader: " << without_reader);
  REQUIRE(without_reader < 0.5);
  // A client that has not read yet still finds every page it is about to read in memory.
  CHECK(first_pages_resident_while_filling(true) == 1.0);
}
