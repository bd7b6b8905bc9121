#include <registryd/oci/storage/upload_store.hpp>

#include "storage_test_support.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;
using registryd::oci::digest;
using registryd::oci::digest_algorithm;
using registryd::oci::digest_of;
using registryd::oci::storage::blob_store;
using registryd::oci::storage::errc;
using registryd::oci::storage::upload_info;
using registryd::oci::storage::upload_store;
using registryd::test::count_files;
using registryd::test::random_bytes;
using registryd::test::scratch_dir;

namespace {

// Runs `work(uploads, lease)` on a fresh session of repository "r" in a child process that then
// dies without running a destructor or flushing anything, like kill -9; the session's id.
template <typename Work>
std::string session_of_killed_process(const fs::path& root, Work work) {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    blob_store blobs(root);
    upload_store uploads(blobs);
    auto id = uploads.create("r");
    if (!id) ::_exit(1);
    auto lease = uploads.acquire(*id, "r");
    if (!lease || !work(*lease)) ::_exit(1);
    if (::write(pipe_fds[1], id->data(), id->size()) != static_cast<ssize_t>(id->size())) ::_exit(1);
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  char buf[64] = {};
  const ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(n == 36);
  return std::string(buf, 36);
}

}  // namespace

TEST_CASE("an upload in chunks is published as a blob and the session ends", "[storage][upload]") {
  scratch_dir dir;
  blob_store blobs(dir.path());
  upload_store uploads(blobs);
  const std::string content = random_bytes(1500 * 1024, 21);
  auto id = uploads.create("library/alpine");
  REQUIRE(id);
  CHECK(upload_store::is_valid_id(*id));
  CHECK(fs::exists(dir.path() / "uploads" / *id / "info.json"));
  for (std::size_t off = 0; off < content.size(); off += 500 * 1024) {
    auto lease = uploads.acquire(*id, "library/alpine");
    REQUIRE(lease);
    CHECK(lease->size() == off);
    REQUIRE(lease->append(std::string_view(content).substr(off, 500 * 1024)));
    REQUIRE(lease->sync());
  }
  {
    auto lease = uploads.acquire(*id, "library/alpine");
    REQUIRE(lease);
    auto info = lease->commit(digest_of(content));
    REQUIRE(info);
    CHECK(info->size == content.size());
  }
  CHECK(blobs.exists(digest_of(content)));
  CHECK(uploads.acquire(*id, "library/alpine").code() == errc::not_found);
  CHECK_FALSE(fs::exists(dir.path() / "uploads" / *id));
  CHECK(uploads.open_sessions() == 0);
}

TEST_CASE("an upload resumes after the store is reopened, with its hash state rebuilt", "[storage][upload]") {
  scratch_dir dir;
  const std::string content = random_bytes(3 * 1024 * 1024, 22);
  std::string id;
  {
    blob_store blobs(dir.path());
    upload_store uploads(blobs);
    id = uploads.create("r").value();
    auto lease = uploads.acquire(id, "r");
    REQUIRE(lease);
    REQUIRE(lease->append(std::string_view(content).substr(0, 2 * 1024 * 1024 + 3)));
    REQUIRE(lease->sync());
  }
  blob_store blobs(dir.path());
  upload_store uploads(blobs);
  auto lease = uploads.acquire(id, "r");
  INFO((lease ? std::string() : lease.error_message()));
  REQUIRE(lease);
  CHECK(lease->size() == 2 * 1024 * 1024 + 3);
  REQUIRE(lease->append(std::string_view(content).substr(2 * 1024 * 1024 + 3)));
  REQUIRE(lease->commit(digest_of(content)));
  CHECK(registryd::oci::digest_of_file(blobs.blob_path(digest_of(content))) == digest_of(content));
}

TEST_CASE("an upload whose process was killed mid-way resumes from the bytes that reached the disk", "[storage][upload][crash]") {
  scratch_dir dir;
  const std::string content = random_bytes(4 * 1024 * 1024, 23);
  const std::string id = session_of_killed_process(dir.path(), [&](registryd::oci::storage::upload_lease& lease) {
    if (!lease.append(std::string_view(content).substr(0, 1024 * 1024)) || !lease.sync()) return false;
    // Half a chunk more, unsynced and partly still in the writer's buffer: lost or kept, the
    // session must stay consistent.
    return lease.append(std::string_view(content).substr(1024 * 1024, 100 * 1024)).ok();
  });

  blob_store blobs(dir.path());
  upload_store uploads(blobs);
  bool listed = false;
  uploads.for_each([&](const upload_info& u) {
    listed = u.id == id && u.repository == "r";
  });
  CHECK(listed);
  auto lease = uploads.acquire(id, "r");
  REQUIRE(lease);
  const std::uint64_t have = lease->size();
  CHECK(have >= 1024 * 1024);
  CHECK(have <= 1024 * 1024 + 100 * 1024);
  REQUIRE(lease->append(std::string_view(content).substr(have)));
  auto info = lease->commit(digest_of(content));
  REQUIRE(info);
  CHECK(info->size == content.size());
}

TEST_CASE("a ranged chunk cut (or overrun) by a kill is dropped whole at the next load, an exact one kept", "[storage][upload][crash]") {
  const std::string content = random_bytes(2 * 1024 * 1024, 29);
  constexpr std::size_t acked = 1024 * 1024, chunk = 512 * 1024;
  for (const std::size_t arrived : {std::size_t{200 * 1024}, chunk, chunk + 100 * 1024}) {
    INFO("chunk bytes that reached the file before the kill: " << arrived);
    scratch_dir dir;
    const std::string id = session_of_killed_process(dir.path(), [&](registryd::oci::storage::upload_lease& lease) {
      if (!lease.append(std::string_view(content).substr(0, acked)) || !lease.sync()) return false;
      // The chunk [acked, acked + chunk) announced with Content-Range; `arrived` bytes of it
      // are on disk (synced) when the process dies with its lease held.
      return lease.begin_chunk(acked + chunk) && lease.append(std::string_view(content).substr(acked, arrived)) &&
             lease.sync();
    });
    CHECK(fs::exists(dir.path() / "uploads" / id / "chunk"));

    blob_store blobs(dir.path());
    upload_store uploads(blobs);
    auto lease = uploads.acquire(id, "r");
    REQUIRE(lease);
    const std::uint64_t have = lease->size();
    CHECK(have == (arrived == chunk ? acked + chunk : acked));
    CHECK_FALSE(fs::exists(dir.path() / "uploads" / id / "chunk"));
    REQUIRE(lease->append(std::string_view(content).substr(have)));
    auto info = lease->commit(digest_of(content));
    REQUIRE(info);
    CHECK(info->size == content.size());
  }
}

TEST_CASE("a ranged chunk's note goes durably at end_chunk, and at least not durably with its lease", "[storage][upload]") {
  scratch_dir dir;
  blob_store blobs(dir.path());
  upload_store uploads(blobs);
  auto id = uploads.create("r");
  REQUIRE(id);
  const fs::path note = dir.path() / "uploads" / *id / "chunk";
  {
    auto lease = uploads.acquire(*id, "r");
    REQUIRE(lease);
    REQUIRE(lease->begin_chunk(10));
    CHECK(fs::exists(note));
    REQUIRE(lease->append("0123"));
    REQUIRE(lease->truncate(0));  // the chunk arrived short: cut back
    REQUIRE(lease->sync());
    REQUIRE(lease->end_chunk());
    CHECK_FALSE(fs::exists(note));
    // Bytes acknowledged after the settled chunk are never cut by its note.
    REQUIRE(lease->append("abcdef"));
    REQUIRE(lease->sync());
  }
  {
    auto lease = uploads.acquire(*id, "r");
    REQUIRE(lease);
    REQUIRE(lease->begin_chunk(lease->size() + 4));
    CHECK(fs::exists(note));
  }  // a request that failed before end_chunk
  CHECK_FALSE(fs::exists(note));
  upload_store reopened(blobs);
  auto lease = reopened.acquire(*id, "r");
  REQUIRE(lease);
  CHECK(lease->size() == 6);
}

TEST_CASE("an upload that does not match its digest publishes nothing and is cancelled", "[storage][upload]") {
  scratch_dir dir;
  blob_store blobs(dir.path());
  upload_store uploads(blobs);
  const auto id = uploads.create("r").value();
  {
    auto lease = uploads.acquire(id, "r");
    REQUIRE(lease);
    REQUIRE(lease->append("some bytes"));
    auto r = lease->commit(digest_of("other bytes"));
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::digest_mismatch);
  }
  CHECK(count_files(dir.path() / "blobs") == 0);
  CHECK_FALSE(fs::exists(dir.path() / "uploads" / id));
  CHECK(uploads.acquire(id, "r").code() == errc::not_found);
}

TEST_CASE("a cancelled upload is gone, files and all", "[storage][upload]") {
  scratch_dir dir;
  blob_store blobs(dir.path());
  upload_store uploads(blobs);
  const auto id = uploads.create("r").value();
  {
    auto lease = uploads.acquire(id, "r");
    REQUIRE(lease);
    REQUIRE(lease->append("x"));
    REQUIRE(lease->cancel());
  }
  CHECK_FALSE(fs::exists(dir.path() / "uploads" / id));
  CHECK(uploads.acquire(id, "r").code() == errc::not_found);
}

TEST_CASE("a session is found only in its own repository and only by a well-formed id", "[storage][upload]") {
  scratch_dir dir;
  blob_store blobs(dir.path());
  upload_store uploads(blobs);
  const auto id = uploads.create("a/b").value();
  CHECK(uploads.acquire(id, "a/c").code() == errc::not_found);
  CHECK(uploads.acquire("../../etc", "a/b").code() == errc::not_found);
  CHECK(uploads.acquire("00000000-0000-4000-8000-000000000000", "a/b").code() == errc::not_found);
  CHECK(uploads.acquire(id, "a/b"));
  CHECK(uploads.create("Not/Valid").code() == errc::invalid);
}

TEST_CASE("two requests for one session take turns, the second seeing what the first appended", "[storage][upload][concurrency]") {
  scratch_dir dir;
  blob_store blobs(dir.path());
  upload_store uploads(blobs);
  const auto id = uploads.create("r").value();
  auto first = uploads.acquire(id, "r");
  REQUIRE(first);
  std::uint64_t seen = 0;
  std::thread second([&] {
    auto lease = uploads.acquire(id, "r");
    if (lease) seen = lease->size();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(first->append("12345"));
  { auto done = std::move(first.value()); }  // releases the session
  second.join();
  CHECK(seen == 5);
}

TEST_CASE("a truncated session goes on from the cut and its digest covers only what stays", "[storage][upload]") {
  scratch_dir dir;
  blob_store blobs(dir.path());
  upload_store uploads(blobs);
  const auto id = uploads.create("r").value();
  auto lease = uploads.acquire(id, "r");
  REQUIRE(lease);
  REQUIRE(lease->append("abcdef"));
  REQUIRE(lease->truncate(3));
  REQUIRE(lease->append("XYZ"));
  REQUIRE(lease->commit(digest_of("abcXYZ")));
}

TEST_CASE("uploads are enumerated with their repository and size, and GC can remove one", "[storage][upload]") {
  scratch_dir dir;
  blob_store blobs(dir.path());
  upload_store uploads(blobs);
  const auto a = uploads.create("r").value();
  const auto b = uploads.create("s").value();
  {
    auto lease = uploads.acquire(a, "r");
    REQUIRE(lease);
    REQUIRE(lease->append("1234"));
    REQUIRE(lease->sync());
  }
  std::map<std::string, upload_info> seen;
  uploads.for_each([&](const upload_info& u) { seen[u.id] = u; });
  REQUIRE(seen.size() == 2);
  CHECK(seen[a].repository == "r");
  CHECK(seen[a].size == 4);
  CHECK(seen[b].size == 0);
  {
    auto lease = uploads.acquire(b, "s");
    REQUIRE(lease);
    CHECK(uploads.remove(b).code() == errc::invalid);  // in use
  }
  REQUIRE(uploads.remove(b));
  CHECK(uploads.acquire(b, "s").code() == errc::not_found);
  CHECK(uploads.acquire(a, "r"));
}

TEST_CASE("an upload can be completed under a sha512 digest", "[storage][upload]") {
  scratch_dir dir;
  blob_store blobs(dir.path());
  upload_store uploads(blobs);
  const auto id = uploads.create("r").value();
  auto lease = uploads.acquire(id, "r");
  REQUIRE(lease);
  REQUIRE(lease->append("sha512 content"));
  const digest d = digest_of("sha512 content", digest_algorithm::sha512);
  REQUIRE(lease->commit(d));
  CHECK(blobs.exists(d));
}
