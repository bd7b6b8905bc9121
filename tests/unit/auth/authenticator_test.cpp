#include <registryd/auth/authenticator.hpp>
#include <registryd/auth/basic_credentials.hpp>
#include <registryd/auth/password_hash.hpp>

#include "auth_test_support.hpp"

#include <openssl/evp.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace auth = registryd::auth;
using auth_test::htpasswd_hash;
using auth_test::scratch_dir;
using auth_test::spill;

namespace {

std::string basic(const std::string& user, const std::string& password) {
  const std::string raw = user + ":" + password;
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()),
                                static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  return "Basic " + out;
}

std::string users_yaml(const std::vector<std::tuple<std::string, std::string, std::string>>& users) {
  std::string yaml = "users:\n";
  for (const auto& [name, hash, access] : users) {
    yaml += "  - name: " + name + "\n    password: '" + hash + "'\n    access: " + access + "\n";
  }
  return yaml;
}

std::unique_ptr<auth::authenticator> make(const std::filesystem::path& file) {
  auto a = auth::authenticator::create({file});
  INFO((a ? std::string() : a.error_message()));
  REQUIRE(a);
  return std::move(*a);
}

// A reader and a writer with htpasswd-made hashes, computed once for all tests.
struct fixture {
  scratch_dir tmp;
  std::filesystem::path file = tmp / "users.yaml";
  fixture() {
    static const std::string reader = htpasswd_hash("reader", "read-secret");
    static const std::string writer = htpasswd_hash("writer", "write-secret");
    spill(file, users_yaml({{"reader", reader, "read-only"}, {"writer", writer, "read-write"}}));
  }
};

}  // namespace

TEST_CASE("the right password authenticates the user with the access from the file", "[auth]") {
  fixture f;
  const auto a = make(f.file);
  CHECK(a->user_count() == 2);
  CHECK(a->authenticate(basic("reader", "read-secret")) ==
        auth::principal{"reader", auth::access_read_only});
  CHECK(a->authenticate(basic("writer", "write-secret")) ==
        auth::principal{"writer", auth::access_read_write});
}

TEST_CASE("a wrong password, another user's password or an unknown user is refused", "[auth]") {
  fixture f;
  const auto a = make(f.file);
  CHECK_FALSE(a->authenticate(basic("reader", "read-secreT")));
  CHECK_FALSE(a->authenticate(basic("reader", "write-secret")));
  CHECK_FALSE(a->authenticate(basic("reader", "")));
  CHECK_FALSE(a->authenticate(basic("nobody", "read-secret")));
  CHECK_FALSE(a->authenticate(basic("Reader", "read-secret")));
  CHECK(a->cached_verifications() == 0);  // failures are never cached
}

TEST_CASE("malformed headers and bad base64 are refused", "[auth]") {
  fixture f;
  const auto a = make(f.file);
  CHECK_FALSE(a->authenticate(""));
  CHECK_FALSE(a->authenticate("Bearer abc"));
  CHECK_FALSE(a->authenticate("Basic !!!!"));
  CHECK_FALSE(a->authenticate("Basic cmVhZGVyOnJlYWQtc2VjcmV0="));  // wrong padding
  CHECK_FALSE(a->authenticate("Basic cmVhZGVy"));                    // "reader", no colon
  CHECK(a->authenticate("basic cmVhZGVyOnJlYWQtc2VjcmV0"));          // unpadded is fine
}

TEST_CASE("a read-only user may pull but not push, a read-write user may push and delete",
          "[auth]") {
  fixture f;
  const auto a = make(f.file);
  const auto reader = a->authenticate(basic("reader", "read-secret"));
  const auto writer = a->authenticate(basic("writer", "write-secret"));
  REQUIRE(reader);
  REQUIRE(writer);
  CHECK(auth::is_allowed(reader->access, "GET"));
  CHECK_FALSE(auth::is_allowed(reader->access, "PUT"));
  CHECK_FALSE(auth::is_allowed(reader->access, "POST"));
  CHECK_FALSE(auth::is_allowed(reader->access, "DELETE"));
  CHECK(auth::is_allowed(writer->access, "PATCH"));
  CHECK(auth::is_allowed(writer->access, "DELETE"));
}

TEST_CASE("creating an authenticator from a bad file fails with the reason", "[auth]") {
  scratch_dir tmp;
  const auto file = tmp / "users.yaml";
  spill(file, "users:\n  - {name: a, password: plain, access: read-only}\n");
  auto a = auth::authenticator::create({file});
  REQUIRE_FALSE(a);
  CHECK_THAT(a.error_message(), Catch::Contains("users[0].password: must be a bcrypt hash"));
}

TEST_CASE("a reload with a bad file keeps the good users and says why", "[auth]") {
  fixture f;
  const auto a = make(f.file);
  spill(f.file, "users:\n  - {name: reader, password: read-secret, access: read-only}\n");
  const auto st = a->reload();
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error_message(), Catch::StartsWith(f.file.string() + ": users[0].password:"));
  CHECK(a->user_count() == 2);
  CHECK(a->authenticate(basic("writer", "write-secret")));

  std::filesystem::remove(f.file);
  CHECK_FALSE(a->reload());
  CHECK(a->authenticate(basic("writer", "write-secret")));
}

TEST_CASE("a reload applies new passwords, removed users and changed access at once, cache or "
          "not",
          "[auth]") {
  fixture f;
  const auto a = make(f.file);
  REQUIRE(a->authenticate(basic("reader", "read-secret")));  // now cached
  REQUIRE(a->authenticate(basic("writer", "write-secret")));
  REQUIRE(a->cached_verifications() == 2);

  spill(f.file, users_yaml({{"reader", htpasswd_hash("reader", "new-secret"), "read-write"}}));
  REQUIRE(a->reload());
  CHECK(a->user_count() == 1);
  CHECK_FALSE(a->authenticate(basic("reader", "read-secret")));
  CHECK_FALSE(a->authenticate(basic("writer", "write-secret")));
  CHECK(a->authenticate(basic("reader", "new-secret")) ==
        auth::principal{"reader", auth::access_read_write});
}

TEST_CASE("the cache makes a repeated verification much faster than bcrypt", "[auth]") {
  scratch_dir tmp;
  const auto file = tmp / "users.yaml";
  auto hash = auth::make_bcrypt_hash("slow-secret", 10);  // the production cost
  REQUIRE(hash);
  spill(file, users_yaml({{"puller", *hash, "read-only"}}));
  const auto a = make(file);
  const auto header = basic("puller", "slow-secret");

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  REQUIRE(a->authenticate(header));
  const auto first = clock::now() - t0;
  const auto t1 = clock::now();
  for (int i = 0; i < 10; ++i) REQUIRE(a->authenticate(header));
  const auto ten_cached = clock::now() - t1;
  using ms = std::chrono::duration<double, std::milli>;
  INFO("first " << ms(first).count() << " ms, ten cached " << ms(ten_cached).count() << " ms");
  CHECK(first > std::chrono::milliseconds(10));
  CHECK(ten_cached < first / 4);
  CHECK(a->cached_verifications() == 1);
}

TEST_CASE("without the cache every request pays for bcrypt", "[auth]") {
  fixture f;
  const auto a = auth::authenticator::create({f.file, std::chrono::seconds{300}, 0});
  REQUIRE(a);
  CHECK((*a)->authenticate(basic("reader", "read-secret")));
  CHECK((*a)->authenticate(basic("reader", "read-secret")));
  CHECK((*a)->cached_verifications() == 0);
}

TEST_CASE("authentication keeps working on many threads while the file is reloaded", "[auth]") {
  fixture f;
  const auto a = make(f.file);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&] {
      while (!stop) {
        if (!a->authenticate(basic("reader", "read-secret"))) ++failures;
        if (a->authenticate(basic("reader", "wrong"))) ++failures;
      }
    });
  }
  for (int i = 0; i < 10; ++i) REQUIRE(a->reload());
  stop = true;
  for (auto& w : workers) w.join();
  CHECK(failures == 0);
}
