#include "replica_sync.hpp"

#include "replica/peer.hpp"
#include <registryd/oci/text_file.hpp>

#include <yaml-cpp/yaml.h>

#include <mutex>
#include <stdexcept>
#include <sys/stat.h>

namespace registryd::local {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw std::invalid_argument("invalid Local settings: " + path + ": " + why);
}

// The mirror-puller's credentials, re-read when the file changes; a file that cannot be read
// is warned about once per change and leaves the last good credentials in use.
class credentials_file {
 public:
  credentials_file(const sdk::host& host, std::filesystem::path path) : host_(host), path_(std::move(path)) {}

  std::optional<oci::client::credentials> get() {
    std::lock_guard lock(mutex_);
    struct ::stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
      warn_once("the replica credentials file " + path_.string() + " cannot be read");
      return current_;
    }
    const std::int64_t stamp = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (loaded_ && stamp == stamp_ && st.st_size == size_) return current_;
    try {
      const YAML::Node doc = YAML::LoadFile(path_.string());
      const auto user = doc["username"];
      const auto password = doc["password"];
      if (!user || !user.IsScalar() || !password || !password.IsScalar()) {
        throw std::runtime_error("it needs the strings username and password");
      }
      current_ = oci::client::credentials{user.as<std::string>(), password.as<std::string>()};
      loaded_ = true;
      stamp_ = stamp;
      size_ = st.st_size;
      warned_.clear();
    } catch (const std::exception& e) {
      warn_once("the replica credentials file " + path_.string() + " is not usable: " + e.what());
    }
    return current_;
  }

 private:
  void warn_once(const std::string& message) {
    if (message == warned_) return;
    warned_ = message;
    host_.warn(message + (current_ ? "; the credentials read before stay in use" : "; asking peers anonymously"));
  }

  sdk::host host_;
  std::filesystem::path path_;
  std::mutex mutex_;
  std::optional<oci::client::credentials> current_;
  bool loaded_ = false;
  std::int64_t stamp_ = 0;
  off_t size_ = 0;
  std::string warned_;
};

// A peer whose client is made once the CA can be read (the host writes its CA when it
// starts serving, possibly after the plugin started) and again when the CA changes.
class replica_peer final : public replica::peer_source {
 public:
  replica_peer(std::string address, std::filesystem::path ca_file, std::shared_ptr<credentials_file> creds)
      : address_(std::move(address)), ca_file_(std::move(ca_file)), creds_(std::move(creds)) {}

  const std::string& name() const noexcept override { return address_; }

  oci::client::result<replica::replica_state> fetch_state() override {
    std::string ca;
    if (!ca_file_.empty()) {
      auto text = oci::read_text_file(ca_file_);
      if (!text) {
        return oci::client::make_error(oci::client::error_kind::tls,
                                       "the CA file " + ca_file_.string() + " cannot be read");
      }
      ca = std::move(*text);
    }
    if (!inner_ || ca != ca_) {
      replica::http_peer_options o;
      o.address = address_;
      o.ca_pem = ca;
      if (creds_) o.credentials = [c = creds_] { return c->get(); };
      try {
        inner_ = std::make_unique<replica::http_peer>(std::move(o));
        ca_ = std::move(ca);
      } catch (const std::exception& e) {
        inner_.reset();
        return oci::client::make_error(oci::client::error_kind::invalid_argument,
                                       "cannot reach " + address_ + ": " + e.what());
      }
    }
    return inner_->fetch_state();
  }

  oci::client::result<oci::client::fetched_manifest> fetch_manifest(std::string_view repository,
                                                                    const oci::digest& d) override {
    return inner_->fetch_manifest(repository, d);
  }

  oci::client::result<std::uint64_t> fetch_blob(std::string_view repository, const oci::digest& d,
                                                const std::function<bool(std::string_view)>& sink) override {
    return inner_->fetch_blob(repository, d, sink);
  }

 private:
  std::string address_;
  std::filesystem::path ca_file_;
  std::shared_ptr<credentials_file> creds_;
  std::string ca_;
  std::unique_ptr<replica::http_peer> inner_;  // set by fetch_state, which every round calls first
};

}  // namespace

replica_settings parse_replica_settings(const json& doc) {
  replica_settings s;
  const auto host_it = doc.find("host");
  if (host_it == doc.end() || !host_it->is_object()) return s;
  const json& host = *host_it;
  auto string_at = [&](const char* key) -> std::optional<std::string> {
    const auto it = host.find(key);
    if (it == host.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) fail(std::string("host.") + key, "must be a string");
    return it->get<std::string>();
  };
  if (const auto it = host.find("replicaPeers"); it != host.end() && !it->is_null()) {
    if (!it->is_array()) fail("host.replicaPeers", "must be a list of host:port");
    for (const auto& p : *it) {
      if (!p.is_string() || p.get<std::string>().empty()) fail("host.replicaPeers", "must be a list of host:port");
      s.peers.push_back(p.get<std::string>());
    }
  }
  if (auto ca = string_at("replicaCaFile")) {
    s.ca_file = *ca;
  } else if (auto host_ca = string_at("caFile")) {
    s.ca_file = *host_ca;
  }
  if (auto creds = string_at("replicaCredentialsFile")) s.credentials_file = *creds;
  if (const auto it = host.find("replicaSyncIntervalSeconds"); it != host.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<long long>() < 1) {
      fail("host.replicaSyncIntervalSeconds", "must be a positive integer");
    }
    s.interval = std::chrono::seconds(it->get<long long>());
  }
  return s;
}

replica_sync::replica_sync(const sdk::host& host, replica_settings settings)
    : host_(host), settings_(std::move(settings)) {}

replica_sync::~replica_sync() { stop(); }

void replica_sync::start(const oci::storage::repository_store& repos) {
  stop();
  local_ = std::make_unique<replica::local_replica>(repos);
  if (settings_.peers.empty()) {
    host_.info("replica sync: no peers (a single master); serving the replica state only");
    return;
  }
  std::shared_ptr<credentials_file> creds;
  if (settings_.credentials_file) creds = std::make_shared<credentials_file>(host_, *settings_.credentials_file);
  std::vector<std::unique_ptr<replica::peer_source>> peers;
  std::string names;
  for (const auto& address : settings_.peers) {
    peers.push_back(std::make_unique<replica_peer>(address, settings_.ca_file, creds));
    names += (names.empty() ? "" : ", ") + address;
  }
  replica::engine_options o;
  o.interval = settings_.interval;
  o.log = [h = host_](replica::log_level level, const std::string& m) {
    if (level == replica::log_level::warn) {
      h.warn(m);
    } else {
      h.info(m);
    }
  };
  engine_ = std::make_unique<replica::sync_engine>(*local_, std::move(peers), std::move(o));
  engine_->start();
  host_.info("replica sync: copying from " + names + " every " + std::to_string(settings_.interval.count()) +
             " s" + (settings_.credentials_file ? " as the account in " + settings_.credentials_file->string() : ""));
}

void replica_sync::stop() {
  if (engine_) engine_->stop();
  engine_.reset();
  local_.reset();
}

bool replica_sync::handle(const sdk::request& req, sdk::response& res) {
  if (req.path() != "/v2/_catalog" || !req.query_param(replica::state_query_parameter)) return false;
  if (req.method() != "GET" && req.method() != "HEAD") {
    res.send_error(405, "UNSUPPORTED", "the replica state answers GET and HEAD only");
    return true;
  }
  if (!req.may(REGISTRYD_ACCESS_PULL)) {
    res.send_error(403, "DENIED", "the replica state needs pull access");
    return true;
  }
  if (!local_) {
    res.send_error(503, "UNAVAILABLE", "Local mode storage is not open");
    return true;
  }
  const std::string body = replica::to_json(local_->observe()).dump();
  const std::string etag = "\"" + oci::digest_of(body).str() + "\"";
  res.header("ETag", etag);
  if (req.header("If-None-Match") == etag) {
    res.status(304);
    return true;
  }
  res.status(200);
  if (req.method() == "HEAD") {
    res.header("Content-Type", std::string(replica::state_media_type));
    res.header("Content-Length", std::to_string(body.size()));
    return true;
  }
  res.send(std::string(replica::state_media_type), body);
  return true;
}

void replica_sync::metrics(std::string& out) const {
  if (engine_) engine_->metrics(out);
}

}  // namespace registryd::local
