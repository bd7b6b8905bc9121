#include <registryd/oci/storage/blob_store.hpp>

#include "storage_test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <fcntl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using registryd::oci::digest;
using registryd::oci::digest_algorithm;
using registryd::oci::digest_of;
using registryd::oci::storage::blob_store;
using registryd::oci::storage::errc;
using registryd::test::count_files;
using registryd::test::random_bytes;
using registryd::test::scratch_dir;
using registryd::test::slurp;

namespace {

std::string read_fd(int fd, std::uint64_t size) {
  std::string s(size, '\0');
  REQUIRE(::pread(fd, s.data(), s.size(), 0) == static_cast<ssize_t>(size));
  return s;
}

}  // namespace

TEST_CASE("a committed blob is stored under blobs/<algorithm>/<2 hex>/<hex> and reads back whole", "[storage][blob]") {
  scratch_dir dir;
  blob_store store(dir.path());
  const std::string content = random_bytes(3 * 1024 * 1024 + 17);
  const digest d = digest_of(content);

  auto w = store.create_writer();
  REQUIRE(w);
  // Pieces of many sizes: below, across and above the writer's 1 MiB buffer.
  std::size_t offset = 0, piece = 1;
  while (offset < content.size()) {
    const std::size_t n = std::min(piece, content.size() - offset);
    REQUIRE(w->append(std::string_view(content).substr(offset, n)));
    offset += n;
    piece = piece * 3 + 7;
  }
  CHECK(w->size() == content.size());
  auto info = w->commit(d);
  REQUIRE(info);
  CHECK(info->digest == d);
  CHECK(info->size == content.size());

  const fs::path expected = dir.path() / "blobs" / "sha256" / std::string(d.hex().substr(0, 2)) / std::string(d.hex());
  CHECK(store.blob_path(d) == expected);
  CHECK(slurp(expected) == content);
  CHECK(store.stat(d) == content.size());
  auto file = store.open(d);
  REQUIRE(file);
  CHECK(file->size() == content.size());
  CHECK(read_fd(file->fd(), file->size()) == content);
  CHECK(count_files(store.temp_dir()) == 0);
}

TEST_CASE("bytes put into the writer's room and appended there commit like appended ones", "[storage][blob]") {
  scratch_dir dir;
  blob_store store(dir.path());
  const std::string content = random_bytes(3 * 1024 * 1024 + 17);
  const digest d = digest_of(content);

  auto w = store.create_writer();
  REQUIRE(w);
  // Alternating: a piece through room()/appended(), then one through append(), of growing
  // sizes, so the room is sometimes partly used, sometimes full and flushed first.
  std::size_t offset = 0, piece = 1;
  bool direct = true;
  while (offset < content.size()) {
    std::size_t n = std::min(piece, content.size() - offset);
    if (direct) {
      auto room = w->room();
      REQUIRE(room);
      REQUIRE_FALSE(room->empty());
      n = std::min(n, room->size());
      std::memcpy(room->data(), content.data() + offset, n);
      REQUIRE(w->appended(n));
    } else {
      REQUIRE(w->append(std::string_view(content).substr(offset, n)));
    }
    offset += n;
    piece = piece * 3 + 7;
    direct = !direct;
  }
  CHECK(w->size() == content.size());
  auto info = w->commit(d);
  REQUIRE(info);
  CHECK(info->size == content.size());
  CHECK(slurp(store.blob_path(d)) == content);
}

TEST_CASE("appending more than the room holds is refused and loses nothing", "[storage][blob]") {
  scratch_dir dir;
  blob_store store(dir.path());
  auto w = store.create_writer();
  REQUIRE(w);
  CHECK(w->appended(1).code() == errc::invalid);  // no room() was asked for yet
  REQUIRE(w->append("abc"));
  auto room = w->room();
  REQUIRE(room);
  const auto st = w->appended(room->size() + 1);
  REQUIRE_FALSE(st);
  CHECK(st.code() == errc::invalid);
  CHECK(w->size() == 3);
  std::memcpy(room->data(), "de", 2);
  REQUIRE(w->appended(2));
  // That room is used up: without a new room(), nothing more is taken.
  CHECK(w->appended(1).code() == errc::invalid);
  REQUIRE(w->append("f"));
  CHECK(w->appended(1).code() == errc::invalid);
  auto info = w->commit(digest_of("abcdef"));
  REQUIRE(info);
  CHECK(slurp(store.blob_path(digest_of("abcdef"))) == "abcdef");
}

TEST_CASE("both drop-behind modes publish exactly the bytes written, across many writeback steps", "[storage][blob]") {
  scratch_dir dir;
  blob_store store(dir.path());
  // 40 MiB: five 8 MiB writeback steps, so the no_wait mode drops pages two steps back.
  const std::string content = random_bytes(40 * 1024 * 1024 + 5);
  const digest d = digest_of(content);
  for (const auto mode : {registryd::oci::storage::blob_writer::drop_behind::wait,
                          registryd::oci::storage::blob_writer::drop_behind::no_wait}) {
    auto w = store.create_writer();
    REQUIRE(w);
    w->set_drop_behind(mode);
    for (std::size_t offset = 0; offset < content.size(); offset += 300 * 1024) {
      REQUIRE(w->append(std::string_view(content).substr(offset, 300 * 1024)));
    }
    // Read back through the temporary while it is not published: what readers of a fill see.
    REQUIRE(w->flush());
    CHECK(slurp(w->path()) == content);
    REQUIRE(w->commit(d));
    CHECK(slurp(store.blob_path(d)) == content);
    REQUIRE(store.remove(d));
  }
}

TEST_CASE("a digest mismatch publishes nothing and removes the temporary", "[storage][blob]") {
  scratch_dir dir;
  blob_store store(dir.path());
  auto w = store.create_writer();
  REQUIRE(w);
  REQUIRE(w->append("the real content"));
  const digest claimed = digest_of("something else");
  auto info = w->commit(claimed);
  REQUIRE_FALSE(info);
  CHECK(info.code() == errc::digest_mismatch);
  CHECK(info.error_message().find(digest_of("the real content").str()) != std::string::npos);
  CHECK_FALSE(store.exists(claimed));
  CHECK_FALSE(store.exists(digest_of("the real content")));
  CHECK(count_files(dir.path() / "blobs") == 0);
  CHECK(count_files(store.temp_dir()) == 0);
  // The writer is finished: it cannot be committed again.
  CHECK(w->commit(digest_of("the real content")).code() == errc::invalid);
}

TEST_CASE("an in-progress write is never visible as a blob, and its temporary can be read by path while it grows", "[storage][blob]") {
  scratch_dir dir;
  blob_store store(dir.path());
  const std::string content = random_bytes(2 * 1024 * 1024, 7);
  const digest d = digest_of(content);
  auto w = store.create_writer();
  REQUIRE(w);
  REQUIRE(w->append(std::string_view(content).substr(0, 1000)));
  REQUIRE(w->flush());
  CHECK(w->flushed_size() == 1000);
  CHECK(w->path().parent_path() == store.temp_dir());
  CHECK(slurp(w->path()) == content.substr(0, 1000));
  CHECK_FALSE(store.exists(d));
  CHECK_FALSE(store.open(d));

  REQUIRE(w->append(std::string_view(content).substr(1000)));
  REQUIRE(w->flush());
  CHECK(slurp(w->path()).size() == content.size());
  CHECK_FALSE(store.exists(d));
  int seen = 0;
  store.for_each_blob([&](const auto&) { ++seen; });
  CHECK(seen == 0);
  REQUIRE(w->commit(d));
  CHECK(store.exists(d));
}

TEST_CASE("a process killed in the middle of a write leaves no blob, only a temporary for GC", "[storage][blob][crash]") {
  scratch_dir dir;
  const std::string content = random_bytes(5 * 1024 * 1024, 3);
  const digest d = digest_of(content);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    blob_store store(dir.path());
    auto w = store.create_writer();
    if (!w || !w->append(content) || !w->flush()) ::_exit(1);
    ::_exit(0);  // as abrupt as kill -9: no destructor runs, no commit
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);

  blob_store store(dir.path());
  CHECK_FALSE(store.exists(d));
  int blobs = 0;
  store.for_each_blob([&](const auto&) { ++blobs; });
  CHECK(blobs == 0);
  int temps = 0;
  store.for_each_temp([&](const fs::path&, std::uint64_t size, auto) {
    ++temps;
    CHECK(size == content.size());
  });
  CHECK(temps == 1);
}

TEST_CASE("a blob committed by a process that then dies at once is there whole", "[storage][blob][crash]") {
  scratch_dir dir;
  const std::string content = random_bytes(3 * 1024 * 1024, 4);
  const digest d = digest_of(content);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    blob_store store(dir.path());
    auto w = store.create_writer();
    if (!w || !w->append(content) || !w->commit(d)) ::_exit(1);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WEXITSTATUS(status) == 0);
  blob_store store(dir.path());
  REQUIRE(store.exists(d));
  CHECK(registryd::oci::digest_of_file(store.blob_path(d)) == d);
  CHECK(count_files(store.temp_dir()) == 0);
}

TEST_CASE("a writer hashing sha256 can commit under a sha512 digest", "[storage][blob]") {
  scratch_dir dir;
  blob_store store(dir.path());
  const std::string content = random_bytes(300 * 1024, 5);
  const digest d512 = digest_of(content, digest_algorithm::sha512);
  auto w = store.create_writer();
  REQUIRE(w);
  REQUIRE(w->append(content));
  auto info = w->commit(d512);
  REQUIRE(info);
  CHECK(store.blob_path(d512).string().find("/blobs/sha512/") != std::string::npos);
  CHECK(slurp(store.blob_path(d512)) == content);
  // A sha512 writer, and a wrong sha512 digest.
  auto w2 = store.create_writer(digest_algorithm::sha512);
  REQUIRE(w2);
  REQUIRE(w2->append("abc"));
  CHECK(w2->commit(digest_of("abd", digest_algorithm::sha512)).code() == errc::digest_mismatch);
}

TEST_CASE("many writers of the same blob at once all succeed and one file remains", "[storage][blob][concurrency]") {
  scratch_dir dir;
  blob_store store(dir.path());
  const std::string content = random_bytes(2 * 1024 * 1024 + 5, 11);
  const digest d = digest_of(content);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto w = store.create_writer();
      if (!w) return;
      for (std::size_t off = 0; off < content.size(); off += 65536) {
        if (!w->append(std::string_view(content).substr(off, 65536))) return;
      }
      if (w->commit(d)) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 8);
  CHECK(count_files(dir.path() / "blobs") == 1);
  CHECK(count_files(store.temp_dir()) == 0);
  CHECK(registryd::oci::digest_of_file(store.blob_path(d)) == d);
}

TEST_CASE("a blob removed while a reader has it open is still read whole by that reader", "[storage][blob][concurrency]") {
  scratch_dir dir;
  blob_store store(dir.path());
  const std::string content = random_bytes(1024 * 1024, 12);
  const digest d = digest_of(content);
  REQUIRE(store.put(content, d));
  auto file = store.open(d);
  REQUIRE(file);
  REQUIRE(store.remove(d));
  CHECK_FALSE(store.exists(d));
  CHECK(read_fd(file->fd(), file->size()) == content);
  CHECK(store.remove(d).code() == errc::not_found);
  CHECK(store.open(d).code() == errc::not_found);
}

TEST_CASE("a truncated writer commits the content it was cut back to", "[storage][blob]") {
  scratch_dir dir;
  blob_store store(dir.path());
  auto w = store.create_writer();
  REQUIRE(w);
  REQUIRE(w->append("hello, "));
  REQUIRE(w->append("world"));
  REQUIRE(w->truncate(5));
  CHECK(w->size() == 5);
  REQUIRE(w->append("!"));
  REQUIRE(w->current_digest().value() == digest_of("hello!"));
  REQUIRE(w->commit(digest_of("hello!")));
  CHECK(slurp(store.blob_path(digest_of("hello!"))) == "hello!");
}

TEST_CASE("an empty blob is stored and opened like any other", "[storage][blob]") {
  scratch_dir dir;
  blob_store store(dir.path());
  const digest d = digest_of("");
  REQUIRE(store.put("", d));
  CHECK(store.stat(d) == 0u);
  auto file = store.open(d);
  REQUIRE(file);
  CHECK(file->size() == 0);
}

TEST_CASE("touch refreshes a blob's mtime and reports a missing blob", "[storage][blob]") {
  scratch_dir dir;
  blob_store store(dir.path());
  const digest d = digest_of("x");
  CHECK_FALSE(store.touch(d));
  REQUIRE(store.put("x", d));
  const auto old = std::filesystem::file_time_type::clock::now() - std::chrono::hours(2);
  std::filesystem::last_write_time(store.blob_path(d), old);
  REQUIRE(store.touch(d));
  CHECK(std::filesystem::last_write_time(store.blob_path(d)) > old + std::chrono::hours(1));
  int seen = 0;
  store.for_each_blob([&](const registryd::oci::storage::blob_info& b) {
    ++seen;
    CHECK(b.digest == d);
    CHECK(b.size == 1);
  });
  CHECK(seen == 1);
}

TEST_CASE("a blob whose write sat idle longer than any grace is published with a fresh mtime", "[storage][blob][gc]") {
  // GC sweeps unreferenced blobs older than its grace by mtime; a blob published from an upload
  // that was last written hours ago must not look hours old, or GC could take it before the
  // manifest that references it is pushed.
  scratch_dir dir;
  blob_store store(dir.path());
  const std::string content = random_bytes(4096, 3);
  const digest d = digest_of(content);
  auto w = store.create_writer();
  REQUIRE(w);
  REQUIRE(w->append(content));
  REQUIRE(w->flush());
  const auto old = std::filesystem::file_time_type::clock::now() - std::chrono::hours(5);
  std::filesystem::last_write_time(w->path(), old);
  REQUIRE(w->commit(d));
  CHECK(std::filesystem::last_write_time(store.blob_path(d)) > old + std::chrono::hours(4));
}
