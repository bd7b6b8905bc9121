// Internal: keep-alive connections to upstream origins. cpp-httplib's Client holds one socket
// and serializes its requests, so each exchange leases a Client of its own and gives it back
// when the exchange ended cleanly; a few idle ones are kept per origin for reuse.
#pragma once

#include "url.hpp"

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace registryd::oci::client::detail {

// X509 certificates parsed once from the configured PEM; each new TLS client gets a store of
// its own (cpp-httplib takes ownership of the store it is given).
class ca_bundle {
 public:
  // Throws std::invalid_argument when `pem` is not empty and holds no certificate.
  explicit ca_bundle(std::string_view pem);
  ~ca_bundle();
  ca_bundle(const ca_bundle&) = delete;
  ca_bundle& operator=(const ca_bundle&) = delete;

  bool empty() const noexcept { return certs_.empty(); }
  // A new store holding the certificates; the caller owns it. nullptr when empty().
  X509_STORE* make_store() const;

 private:
  std::vector<X509*> certs_;
};

struct pool_settings {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds read_timeout{30000};
  std::size_t max_idle = 8;
  std::chrono::milliseconds idle_timeout{30000};
  std::string user_agent;
};

class connection_pool {
 public:
  connection_pool(pool_settings settings, std::shared_ptr<const ca_bundle> cas);

  struct lease {
    std::unique_ptr<httplib::Client> client;
    // The connection was used before and its socket is still open: a failure before the
    // first answer byte may be a connection the server closed while it sat idle.
    bool reused = false;
  };

  // A client for `u.origin()`: an idle one when there is one fresh enough, else a new one.
  lease acquire(const url& u);
  // Gives a client back after a clean exchange; kept when there is room.
  void release(const url& u, std::unique_ptr<httplib::Client> client);
  std::size_t idle() const;

 private:
  struct idle_client {
    std::unique_ptr<httplib::Client> client;
    std::chrono::steady_clock::time_point since;
  };
  std::unique_ptr<httplib::Client> make_client(const url& u) const;

  pool_settings settings_;
  std::shared_ptr<const ca_bundle> cas_;
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<idle_client>> idle_;
};

}  // namespace registryd::oci::client::detail
