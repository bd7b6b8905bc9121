#include "connection_pool.hpp"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <stdexcept>

namespace registryd::oci::client::detail {

ca_bundle::ca_bundle(std::string_view pem) {
  if (pem.empty()) return;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) throw std::invalid_argument("ca: out of memory");
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) certs_.push_back(cert);
  BIO_free(bio);
  if (certs_.empty()) throw std::invalid_argument("ca: no PEM certificate could be read");
}

ca_bundle::~ca_bundle() {
  for (X509* c : certs_) X509_free(c);
}

X509_STORE* ca_bundle::make_store() const {
  if (certs_.empty()) return nullptr;
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr) return nullptr;
  for (X509* c : certs_) X509_STORE_add_cert(store, c);  // takes its own reference
  return store;
}

connection_pool::connection_pool(pool_settings settings, std::shared_ptr<const ca_bundle> cas)
    : settings_(std::move(settings)), cas_(std::move(cas)) {}

std::unique_ptr<httplib::Client> connection_pool::make_client(const url& u) const {
  auto client = std::make_unique<httplib::Client>(u.scheme + "://" + u.host + ":" + std::to_string(u.port));
  client->set_keep_alive(true);
  client->set_follow_location(false);  // redirects are followed by the registry client
  client->set_url_encode(false);       // targets are sent exactly as the upstream gave them
  client->set_decompress(false);       // blob bytes must arrive as stored, or digests break
  client->set_connection_timeout(settings_.connect_timeout);
  client->set_read_timeout(settings_.read_timeout);
  client->set_write_timeout(settings_.read_timeout);
  if (u.scheme == "https") {
    client->enable_server_certificate_verification(true);
    // cpp-httplib adds the system's default CA paths to this store as it loads certificates.
    if (cas_ && !cas_->empty()) client->set_ca_cert_store(cas_->make_store());
  }
  return client;
}

connection_pool::lease connection_pool::acquire(const url& u) {
  const auto key = u.origin();
  const auto now = std::chrono::steady_clock::now();
  std::vector<idle_client> stale;
  {
    std::lock_guard lock(mutex_);
    auto it = idle_.find(key);
    if (it != idle_.end() && !it->second.empty()) {
      if (now - it->second.back().since < settings_.idle_timeout) {
        auto client = std::move(it->second.back().client);
        it->second.pop_back();
        const bool reused = client->is_socket_open() > 0;
        return lease{std::move(client), reused};
      }
      // The newest is too old, so all are: close them outside the lock.
      stale.swap(it->second);
    }
  }
  stale.clear();
  return lease{make_client(u), false};
}

void connection_pool::release(const url& u, std::unique_ptr<httplib::Client> client) {
  if (!client) return;
  const auto key = u.origin();
  std::lock_guard lock(mutex_);
  auto& list = idle_[key];
  if (list.size() >= settings_.max_idle) {
    // Drop the oldest; the newest is likeliest still open at the server.
    list.erase(list.begin());
  }
  list.push_back(idle_client{std::move(client), std::chrono::steady_clock::now()});
}

std::size_t connection_pool::idle() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [k, v] : idle_) n += v.size();
  return n;
}

}  // namespace registryd::oci::client::detail
