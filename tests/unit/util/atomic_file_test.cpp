#include <registryd/util/atomic_file.hpp>

#include <catch2/catch.hpp>
#include <test_support.hpp>

#include <filesystem>

namespace fs = std::filesystem;
using registryd::util::read_small_file;
using registryd::util::write_file_atomic;

using registryd::test::scratch_dir;

TEST_CASE("an atomic write creates parents, replaces content and leaves no temporary file",
          "[util]") {
  const scratch_dir scratch;
  const fs::path& dir = scratch.path();
  const fs::path target = dir / "a" / "b" / "file.txt";
  REQUIRE_FALSE(write_file_atomic(target, "first"));
  REQUIRE_FALSE(write_file_atomic(target, "second"));
  std::error_code ec;
  CHECK(read_small_file(target, ec) == "second");
  CHECK_FALSE(ec);
  int entries = 0;
  for (const auto& e : fs::directory_iterator(target.parent_path())) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);
}

TEST_CASE("an atomic write applies the mode before the file becomes visible", "[util]") {
  const scratch_dir scratch;
  const fs::path& dir = scratch.path();
  const fs::path key = dir / "secret.key";
  REQUIRE_FALSE(write_file_atomic(key, "k", fs::perms::owner_read | fs::perms::owner_write));
  CHECK((fs::status(key).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
}

TEST_CASE("reading a missing file reports an error", "[util]") {
  std::error_code ec;
  CHECK(read_small_file("/nonexistent/registryd/file", ec).empty());
  CHECK(ec);
}
