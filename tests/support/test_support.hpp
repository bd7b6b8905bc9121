// Helpers every unit test may use: scratch directories, small files, and running the real
// programs (openssl, htpasswd) that tests compare our output with.
#pragma once

#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <sys/wait.h>

namespace registryd::test {

namespace fs = std::filesystem;

// A temporary directory, removed with everything in it when the object goes.
class scratch_dir {
 public:
  scratch_dir() {
    std::string tmpl = (fs::temp_directory_path() / "registryd-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

struct command_result {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command; its exit code and output.
inline command_result run(const std::string& command) {
  command_result r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Runs a shell command that must succeed; its output.
inline std::string output_of(const std::string& command) {
  const auto r = run(command);
  INFO(command << "\n" << r.output);
  REQUIRE(r.exit_code == 0);
  return r.output;
}

// A path quoted for the shell (test paths hold no single quotes).
inline std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

// A whole file, or "" when it cannot be read.
inline std::string slurp(const fs::path& p) {
  std::string text;
  if (FILE* f = std::fopen(p.c_str(), "rb")) {
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) text.append(buf.data(), n);
    std::fclose(f);
  }
  return text;
}

// Writes a file, replacing it (not atomically: tests only).
inline void spill(const fs::path& p, const std::string& text) {
  FILE* f = std::fopen(p.c_str(), "wb");
  REQUIRE(f != nullptr);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}

}  // namespace registryd::test
