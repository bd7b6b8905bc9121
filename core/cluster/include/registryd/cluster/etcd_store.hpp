// The cluster store on etcd 3.4 (Debian 12's etcd-server), through its v3 HTTP/JSON gateway:
// POST /v3/kv/range, /v3/kv/txn, /v3/kv/deleterange, /v3/watch (a stream of one JSON object per
// line), /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke. Keys and values are base64,
// 64-bit numbers are JSON strings. docs/cluster.md explains the choices.
//
// Every call tries the endpoints in turn, starting with the last one that answered, so a dead
// etcd member costs one connect timeout and then nothing. TLS uses the given CA and, when set,
// a client certificate (etcd's --client-cert-auth).
#pragma once

#include <registryd/cluster/store.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace registryd::cluster {

struct etcd_options {
  // Client URLs, "https://10.0.0.1:2379" or "http://127.0.0.1:2379"; at least one.
  std::vector<std::string> endpoints;
  std::optional<std::filesystem::path> ca_file;    // verifies etcd's certificates
  std::optional<std::filesystem::path> cert_file;  // our client certificate
  std::optional<std::filesystem::path> key_file;   // and its key
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds request_timeout{5000};
  // A watch with no event for this long is re-opened from its last revision (and a stop that
  // interrupt_watches() did not hurry takes at most this long).
  std::chrono::milliseconds watch_idle_timeout{60000};
};

// Checks the options (endpoint URLs, files readable) and returns the store. Nothing is
// contacted yet.
util::result<std::unique_ptr<store>> open_etcd(etcd_options options);

}  // namespace registryd::cluster
