// Helpers shared by the auth tests: scratch directories, files, and running real programs.
#pragma once

#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/wait.h>

namespace auth_test {

namespace fs = std::filesystem;

class scratch_dir {
 public:
  scratch_dir() {
    std::string tmpl = (fs::temp_directory_path() / "registryd-auth-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline void spill(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  REQUIRE(out);
  out << text;
}

// Runs a shell command and returns its standard output; the test fails on a non-zero exit.
inline std::string output_of(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  std::array<char, 1024> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  INFO(command);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return out;
}

// A bcrypt hash made by Apache's htpasswd, the tool the docs tell operators to use.
// Cost 4 keeps the tests fast.
inline std::string htpasswd_hash(const std::string& user, const std::string& password) {
  std::string line = output_of("htpasswd -nbBC 4 '" + user + "' '" + password + "'");
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  const auto colon = line.find(':');
  REQUIRE(colon != std::string::npos);
  REQUIRE(line.substr(0, colon) == user);
  return line.substr(colon + 1);
}

}  // namespace auth_test
