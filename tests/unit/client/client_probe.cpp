// client_probe: a small program that drives registryd's upstream client from the command line,
// so tests/integration/client_test.sh can exercise it against a real docker-registry. Not
// installed; a test tool only.
//
//   client_probe [options] REGISTRY COMMAND ARGS...
//   client_probe --section FILE COMMAND ARGS...     (the registry from a settings section)
// options: --http  --user U --password P  --ca FILE  --connect-timeout-ms N  --read-timeout-ms N
// commands:
//   ping
//   head-manifest REPO REF            prints "<media type> <digest> <size>"
//   get-manifest REPO REF OUT         writes the manifest, prints its digest
//   get-blob REPO DIGEST OUT          streams the blob to OUT, prints its size
//   push-blob REPO FILE               uploads FILE (streamed), prints its digest
//   push-manifest REPO REF TYPE FILE  prints the digest
//   mount REPO DIGEST FROM            prints "mounted" or "not mounted"
//   tags REPO [PAGE]                  one tag a line
//   catalog [PAGE]                    one repository a line
//   parallel-get-blob REPO DIGEST N   N threads fetch the blob at once; prints "N ok"
// A failure prints "error: <kind> <status> <code>: <message>" on stderr and exits 1.
#include <registryd/oci/client/registry_client.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace registryd::oci;
using namespace registryd::oci::client;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int fail(const upstream_error& e) {
  std::cerr << "error: " << to_string(e.kind) << " " << e.status << " " << e.code << ": " << e.message << "\n";
  return 1;
}

int usage() {
  std::cerr << "usage: client_probe [--http] [--user U --password P] [--ca FILE] [--section FILE] "
               "[--connect-timeout-ms N] [--read-timeout-ms N] [REGISTRY] COMMAND ARGS...\n";
  return 2;
}

int run(client_options options, const std::vector<std::string>& a) {
  const registry_client c(std::move(options));
  const auto& cmd = a.at(0);
  auto need = [&](std::size_t n) {
    if (a.size() < n + 1) throw std::invalid_argument(cmd + " needs " + std::to_string(n) + " arguments");
  };
  auto parse_digest = [](const std::string& text) {
    auto d = digest::parse(text);
    if (!d) throw std::invalid_argument(text + " is not a digest");
    return *d;
  };
  if (cmd == "ping") {
    auto r = c.ping();
    if (!r) return fail(r.error());
    std::cout << "ok\n";
  } else if (cmd == "head-manifest") {
    need(2);
    auto r = c.head_manifest(a[1], a[2]);
    if (!r) return fail(r.error());
    std::cout << r->media_type << " " << r->digest.str() << " " << r->size << "\n";
  } else if (cmd == "get-manifest") {
    need(3);
    auto r = c.get_manifest(a[1], a[2]);
    if (!r) return fail(r.error());
    std::ofstream(a[3], std::ios::binary) << r->body;
    std::cout << r->descriptor.digest.str() << "\n";
  } else if (cmd == "get-blob") {
    need(3);
    std::FILE* out = std::fopen(a[3].c_str(), "wb");
    if (out == nullptr) throw std::runtime_error("cannot write " + a[3]);
    std::uint64_t total = 0;
    auto r = c.get_blob(a[1], parse_digest(a[2]),
                        {nullptr, [&](std::string_view piece) {
                           total += piece.size();
                           return std::fwrite(piece.data(), 1, piece.size(), out) == piece.size();
                         }});
    std::fclose(out);
    if (!r) return fail(r.error());
    std::cout << total << "\n";
  } else if (cmd == "push-blob") {
    need(2);
    const auto d = digest_of_file(a[2]);
    if (!d) throw std::runtime_error("cannot read " + a[2]);
    auto in = std::make_shared<std::ifstream>(a[2], std::ios::binary);
    request_body body;
    in->seekg(0, std::ios::end);
    body.length = static_cast<std::uint64_t>(in->tellg());
    in->seekg(0);
    body.read = [in](char* buf, std::size_t cap) -> std::ptrdiff_t {
      in->read(buf, static_cast<std::streamsize>(cap));
      if (in->bad()) return -1;
      return in->gcount();
    };
    body.rewind = [in] {
      in->clear();
      in->seekg(0);
      return static_cast<bool>(*in);
    };
    auto r = c.push_blob(a[1], *d, body);
    if (!r) return fail(r.error());
    std::cout << d->str() << "\n";
  } else if (cmd == "push-manifest") {
    need(4);
    auto r = c.push_manifest(a[1], a[2], a[3], read_file(a[4]));
    if (!r) return fail(r.error());
    std::cout << r->str() << "\n";
  } else if (cmd == "mount") {
    need(3);
    auto r = c.mount_blob(a[1], parse_digest(a[2]), a[3]);
    if (!r) return fail(r.error());
    std::cout << (*r ? "mounted" : "not mounted") << "\n";
  } else if (cmd == "tags" || cmd == "catalog") {
    const bool tags = cmd == "tags";
    if (tags) need(1);
    const std::size_t page = a.size() > (tags ? 2u : 1u) ? std::stoul(a[tags ? 2 : 1]) : 0;
    auto r = tags ? c.list_tags(a[1], page) : c.catalog(page);
    if (!r) return fail(r.error());
    for (const auto& t : *r) std::cout << t << "\n";
  } else if (cmd == "parallel-get-blob") {
    need(3);
    const auto d = parse_digest(a[2]);
    const int n = std::stoi(a[3]);
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    std::mutex m;
    std::optional<upstream_error> first_error;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&] {
        auto r = c.get_blob(a[1], d, {});
        if (r) {
          ++ok;
        } else {
          std::lock_guard lock(m);
          if (!first_error) first_error = r.error();
        }
      });
    }
    for (auto& t : threads) t.join();
    if (first_error) return fail(*first_error);
    std::cout << ok << " ok\n";
  } else {
    return usage();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    client_options options;
    std::vector<std::string> rest;
    std::optional<credentials> auth;
    std::string section_file;
    bool http = false;
    std::string ca_file;
    long connect_ms = -1, read_ms = -1;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--http") {
        http = true;
      } else if (arg == "--user") {
        if (!auth) auth = credentials{};
        auth->username = value();
      } else if (arg == "--password") {
        if (!auth) auth = credentials{};
        auth->password = value();
      } else if (arg == "--ca") {
        ca_file = value();
      } else if (arg == "--section") {
        section_file = value();
      } else if (arg == "--connect-timeout-ms") {
        connect_ms = std::stol(value());
      } else if (arg == "--read-timeout-ms") {
        read_ms = std::stol(value());
      } else {
        rest.push_back(arg);
      }
    }
    if (!section_file.empty()) {
      options = upstream_from_section(nlohmann::json::parse(read_file(section_file))).options;
    } else {
      if (rest.empty()) return usage();
      options.registry = rest.front();
      rest.erase(rest.begin());
      options.url_scheme = http ? scheme::http : scheme::https;
      options.auth = auth;
      if (!ca_file.empty()) options.ca_pem = read_file(ca_file);
    }
    if (connect_ms >= 0) options.connect_timeout = std::chrono::milliseconds(connect_ms);
    if (read_ms >= 0) options.read_timeout = std::chrono::milliseconds(read_ms);
    if (rest.empty()) return usage();
    return run(std::move(options), rest);
  } catch (const std::exception& e) {
    std::cerr << "client_probe: " << e.what() << "\n";
    return 2;
  }
}
