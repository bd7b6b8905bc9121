// registryd mirror pull|push|verify: mirror bundles (docs/bundles.md), an OCI image layout as a tar,
// carried into an air-gapped network. The front end of the mirror engine
// (core/mirror, registryd/mirror/engine.hpp): flags, registry options, the terminal bar and the
// messages; the engine does the work.
#include "commands.hpp"

#include <registryd/mirror/engine.hpp>
#include <registryd/oci/client/docker_config.hpp>
#include <registryd/oci/client/registry_client.hpp>
#include <registryd/oci/image_check.hpp>
#include <registryd/oci/reference.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <unistd.h>

namespace registryd::cli {
namespace {

namespace fs = std::filesystem;
namespace client = oci::client;

constexpr int exit_failed = 1;

// ---- flags ----

struct remote_flags {
  std::string scheme = "https";
  std::string ca_file;
  std::string username;
  std::string password_file;

  void add_to(CLI::App& sub, const std::string& which) {
    sub.add_option("--scheme", scheme, "http or https, to reach the " + which + " registry")
        ->check(CLI::IsMember({"http", "https"}))
        ->capture_default_str();
    sub.add_option("--ca-file", ca_file,
                   "PEM file of the CA the " + which + " registry's certificate is verified "
                   "against (besides the system's)");
    sub.add_option("--username", username,
                   "User for the " + which + " registry (else the credentials podman or docker login "
                   "stored: $REGISTRY_AUTH_FILE, containers/auth.json, ~/.docker/config.json)");
    sub.add_option("--password-file", password_file,
                   "File holding the password (else $REGISTRYD_MIRROR_PASSWORD)");
  }

  // What to do about a failure the flags can fix, or "" when none fits: a TLS client talking to
  // a plain-HTTP registry, an untrusted certificate, missing or refused credentials.
  std::string hint(const std::string& error, const std::string& which) const {
    const auto has = [&](std::string_view part) { return error.find(part) != std::string::npos; };
    if (scheme == "https" && (has("wrong version number") || has("packet length too long") ||
                              has("http request") || has("unknown protocol"))) {
      return "the " + which + " registry answers plain HTTP: add --scheme http";
    }
    if (has("certificate verify failed") || has("self-signed certificate") || has("self signed certificate") ||
        has("unable to get local issuer")) {
      return ca_file.empty() ? "the " + which + " registry's certificate is not trusted here: pass its CA with --ca-file FILE"
                             : "the " + which + " registry's certificate does not chain to --ca-file " + ca_file;
    }
    // Status words, never bare numbers: a digest's hex holds "401" and "403" often enough.
    if (has("401 UNAUTHORIZED") || has(" 401 ")) {
      if (username.empty() && !credentials_from.empty()) {
        return "the " + which + " registry refused the credentials in " + credentials_from +
               ": log in again, or give --username and --password-file";
      }
      return username.empty() ? "the " + which + " registry wants credentials: --username and --password-file"
                              : "the " + which + " registry refused user " + username + ": check --password-file";
    }
    if (has("403 DENIED") || has(" 403 ")) {
      return (username.empty() ? std::string("this account") : "user " + username) + " may not do this on the " + which +
             " registry: use an account with read-write or mirror-pusher access";
    }
    return {};
  }

  // The client options for `registry`, or an error message.
  std::optional<client::client_options> options(const std::string& registry, std::string& err) const {
    client::client_options o;
    o.registry = registry;
    o.url_scheme = scheme == "http" ? client::scheme::http : client::scheme::https;
    o.read_timeout = std::chrono::milliseconds(120000);
    o.user_agent = "registryd-mirror";
    if (!ca_file.empty()) {
      std::ifstream in(ca_file);
      if (!in) {
        err = "cannot read --ca-file " + ca_file;
        return std::nullopt;
      }
      std::ostringstream text;
      text << in.rdbuf();
      o.ca_pem = text.str();
    }
    if (!username.empty()) {
      std::string password;
      if (!password_file.empty()) {
        std::ifstream in(password_file);
        if (!in) {
          err = "cannot read --password-file " + password_file;
          return std::nullopt;
        }
        std::getline(in, password);
      } else if (const char* env = std::getenv("REGISTRYD_MIRROR_PASSWORD")) {
        password = env;
      }
      o.auth = client::credentials{username, password};
    } else if (auto found = auth_file_credentials(registry, err)) {
      o.auth = std::move(found->first);
      credentials_from = found->second;
    } else if (!err.empty()) {
      return std::nullopt;
    }
    return o;
  }

  // The auth file the credentials came from, when --username was not given.
  mutable std::string credentials_from;

  // Credentials for `registry` from the first auth file that names it, as podman and docker
  // keep them (containers-auth.json(5)): $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
  // ~/.config/containers/auth.json, then $DOCKER_CONFIG/config.json or ~/.docker/config.json.
  // nullopt and `err` set when a file cannot be read as one.
  static std::optional<std::pair<client::credentials, std::string>> auth_file_credentials(const std::string& registry,
                                                                                         std::string& err) {
    const auto env = [](const char* name) -> std::string {
      const char* v = std::getenv(name);
      return v != nullptr ? v : "";
    };
    std::vector<std::string> files;
    if (!env("REGISTRY_AUTH_FILE").empty()) files.push_back(env("REGISTRY_AUTH_FILE"));
    if (!env("XDG_RUNTIME_DIR").empty()) files.push_back(env("XDG_RUNTIME_DIR") + "/containers/auth.json");
    if (!env("HOME").empty()) files.push_back(env("HOME") + "/.config/containers/auth.json");
    if (!env("DOCKER_CONFIG").empty()) {
      files.push_back(env("DOCKER_CONFIG") + "/config.json");
    } else if (!env("HOME").empty()) {
      files.push_back(env("HOME") + "/.docker/config.json");
    }
    for (const auto& f : files) {
      std::ifstream in(f);
      if (!in) continue;
      try {
        const auto doc = nlohmann::json::parse(in);
        if (auto c = client::docker_config_credentials(doc, registry)) return std::make_pair(std::move(*c), f);
      } catch (const std::exception& e) {
        err = "auth file " + f + ": " + e.what();
        return std::nullopt;
      }
    }
    return std::nullopt;
  }
};

// "2G", "500MiB", "1048576" -> bytes (binary units).
std::optional<std::uint64_t> parse_size(std::string text) {
  if (text.empty()) return std::nullopt;
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) ++digits;
  if (digits == 0 || digits > 15) return std::nullopt;
  const std::uint64_t n = std::stoull(text.substr(0, digits));
  std::string unit = text.substr(digits);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() == 3 && unit.substr(1) == "IB") unit.resize(1);
  if (unit.size() == 2 && unit[1] == 'B') unit.resize(1);
  std::uint64_t mul = 1;
  if (unit.empty() || unit == "B") {
    mul = 1;
  } else if (unit == "K") {
    mul = 1ULL << 10;
  } else if (unit == "M") {
    mul = 1ULL << 20;
  } else if (unit == "G") {
    mul = 1ULL << 30;
  } else if (unit == "T") {
    mul = 1ULL << 40;
  } else {
    return std::nullopt;
  }
  if (n == 0) return std::nullopt;
  return n * mul;
}

std::string human(std::uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}


// "1 repository, " or "4 repositories, "
std::string repositories_text(std::size_t n) {
  return std::to_string(n) + (n == 1 ? " repository, " : " repositories, ");
}

// What a failed pull, push or verify prints on stdout with --json.
void print_json_failure(const std::string& bundle, const std::string& error) {
  std::cout << nlohmann::json{{"bundle", bundle}, {"ok", false}, {"error", error}}.dump(2) << "\n";
}

// ---- progress ----

// A bar redrawn in place on a terminal; plain lines, one per finished item, otherwise (logs,
// CI). Everything goes to stderr so stdout stays clean for scripts.
class terminal_progress final : public mirror::progress_sink {
 public:
  terminal_progress() : tty_(::isatty(STDERR_FILENO) == 1) {}

  void begin(std::string_view verb, std::uint64_t total_bytes, std::size_t total_items) override {
    verb_ = std::string(verb);
    total_ = total_bytes;
    items_ = total_items;
    done_ = 0;
    items_done_ = 0;
    skipped_ = 0;
    skipped_bytes_ = 0;
    started_ = std::chrono::steady_clock::now();
    drawn_ = false;
  }
  void add_bytes(std::uint64_t n) override {
    done_ = std::min(total_, done_ + n);  // a retried piece is not counted twice past the end
    if (tty_) draw(false);
  }
  void item(std::string_view how, const oci::digest& d, std::uint64_t size) override {
    ++items_done_;
    if (how.rfind("already", 0) == 0) {
      ++skipped_;
      skipped_bytes_ += size;
    }
    if (tty_) {
      draw(true);
      return;
    }
    std::cerr << verb_ << ": blob " << items_done_ << "/" << items_ << " " << d.str() << " (" << human(size)
              << ") " << how << "; " << human(done_) << " of " << human(total_) << " " << percent() << "%"
              << rate() << "\n";
  }
  void line(std::string_view text) override {
    if (tty_ && drawn_) std::cerr << "\r\033[K";
    std::cerr << "mirror " << verb_ << ": " << text << "\n";
    if (tty_ && drawn_) draw(true);
  }
  void end() override {
    if (tty_ && drawn_) {
      draw(true);
      std::cerr << "\n";
    }
    drawn_ = false;
  }

  void set_verb(std::string verb) { verb_ = std::move(verb); }

 private:
  int percent() const {
    return total_ == 0 ? 100 : static_cast<int>(static_cast<double>(done_) * 100.0 / static_cast<double>(total_));
  }
  void draw(bool force) {
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    drawn_ = true;
    constexpr int width = 30;
    const int filled = std::min(width, percent() * width / 100);
    std::cerr << "\r\033[K" << verb_ << " [" << std::string(static_cast<std::size_t>(filled), '#')
              << std::string(static_cast<std::size_t>(width - filled), '.') << "] " << percent() << "% "
              << human(done_) << "/" << human(total_);
    std::cerr << rate();
    if (items_ > 0) std::cerr << "  blobs " << items_done_ << "/" << items_;
    if (skipped_ > 0) std::cerr << " (" << skipped_ << " already there)";
    std::cerr << std::flush;
  }

  // ", 85.2 MiB/s, 0:18 left": the speed of the bytes moved (not those found already there)
  // since the phase began, and the time the rest takes at that speed.
  std::string rate() const {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    const std::uint64_t moved = done_ > skipped_bytes_ ? done_ - skipped_bytes_ : 0;
    if (seconds < 0.5 || moved == 0) return {};
    const double speed = static_cast<double>(moved) / seconds;
    const auto left = static_cast<long>(static_cast<double>(total_ - done_) / speed);
    char buf[64];
    std::snprintf(buf, sizeof buf, ", %s/s, %ld:%02ld left", human(static_cast<std::uint64_t>(speed)).c_str(), left / 60,
                  left % 60);
    return buf;
  }

  std::string verb_;
  std::uint64_t total_ = 0;
  std::uint64_t done_ = 0;
  std::size_t items_ = 0;
  std::size_t items_done_ = 0;
  std::size_t skipped_ = 0;
  std::uint64_t skipped_bytes_ = 0;
  std::chrono::steady_clock::time_point started_{};
  bool tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

// ---- source and destination names ----

struct repository_ref {
  std::string registry;
  std::string repository;
  std::optional<std::string> tag;
  std::optional<oci::digest> digest;
};

// `host[:port]/repository[:tag|@digest]`; with `allow_reference` false, no tag nor digest.
std::optional<repository_ref> parse_repository(const std::string& text, bool allow_reference, std::string& err) {
  const auto slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == text.size()) {
    err = "'" + text + "' is not host[:port]/repository";
    return std::nullopt;
  }
  repository_ref r;
  r.registry = text.substr(0, slash);
  std::string path = text.substr(slash + 1);
  if (const auto at = path.find('@'); at != std::string::npos) {
    r.digest = oci::digest::parse(path.substr(at + 1));
    if (!r.digest) {
      err = "'" + path.substr(at + 1) + "' is not a sha256 or sha512 digest";
      return std::nullopt;
    }
    path.resize(at);
  }
  const auto last_slash = path.rfind('/');
  if (const auto colon = path.rfind(':'); colon != std::string::npos &&
                                          (last_slash == std::string::npos || colon > last_slash)) {
    r.tag = path.substr(colon + 1);
    path.resize(colon);
    if (!oci::is_valid_tag(*r.tag)) {
      err = "'" + *r.tag + "' is not a valid tag";
      return std::nullopt;
    }
  }
  if (!oci::is_valid_repository_name(path)) {
    err = "'" + path + "' is not a valid repository name";
    return std::nullopt;
  }
  r.repository = path;
  if (!allow_reference && (r.tag || r.digest)) {
    err = "name the destination repository without a tag or digest: the bundle's tags are used";
    return std::nullopt;
  }
  return r;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// ---- pull ----

// What pull and push share on the command line.
struct transfer_flags {
  std::size_t parallel = 4;
  bool dry_run = false;
  bool json = false;

  void add_to(CLI::App& sub, const std::string& verb) {
    sub.add_option("--parallel", parallel, "Blobs to " + verb + " at once")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    sub.add_flag("--dry-run", dry_run,
                 "Say what would be " + verb + "ed (tags, manifests, blobs, bytes) and change nothing");
    sub.add_flag("--json", json, "Print the summary as JSON on stdout");
  }
  mirror::transfer_options options(const std::atomic<bool>& cancel) const {
    mirror::transfer_options t;
    t.parallel = parallel;
    t.dry_run = dry_run;
    t.cancel = &cancel;
    return t;
  }
};

struct pull_args {
  std::vector<std::string> sources;  // SOURCE... then BUNDLE, last
  std::string tags;
  bool all_tags = false;
  std::size_t releases = 0;
  std::string list_file;
  std::string chunk_size;
  bool keep_work_dir = false;
  bool keep_going = false;
  transfer_flags transfer;
  remote_flags remote;
};

// The registry client for `registry`, or a message.
std::unique_ptr<client::registry_client> make_client(const remote_flags& remote, const std::string& registry,
                                                     std::string& err) {
  auto opts = remote.options(registry, err);
  if (!opts) return nullptr;
  try {
    return std::make_unique<client::registry_client>(std::move(*opts));
  } catch (const std::exception& e) {
    err = e.what();
    return nullptr;
  }
}

// The longest leading path (whole components) the repositories share: the bundle's root.
std::string common_root(const std::vector<std::string>& repositories) {
  std::string root = repositories.front();
  for (const auto& r : repositories) {
    while (!root.empty() && !mirror::relative_repository(root, r)) {
      const auto slash = root.rfind('/');
      root = slash == std::string::npos ? std::string() : root.substr(0, slash);
    }
  }
  return root;
}

// The selection for `repository` in `request`, added when it is not there yet.
mirror::tag_selection& selection_of(mirror::pull_request& request, const std::string& repository) {
  for (auto& r : request.repositories) {
    if (r.repository == repository) return r.what;
  }
  request.repositories.push_back({repository, {}});
  return request.repositories.back().what;
}

// Fills `request.repositories` and `root` from SOURCEs or the list file; the source registry,
// or nullopt after saying what is wrong.
std::optional<std::string> read_sources(const pull_args& args, mirror::pull_request& request) {
  const auto fail = [](const std::string& why) -> std::optional<std::string> {
    std::cerr << "registryd mirror pull: " << why << "\n";
    return std::nullopt;
  };
  const std::vector<std::string> sources(args.sources.begin(), args.sources.end() - 1);
  const int global = (!args.tags.empty() ? 1 : 0) + (args.all_tags ? 1 : 0) + (args.releases > 0 ? 1 : 0) +
                     (!args.list_file.empty() ? 1 : 0);
  if (global > 1) return fail("choose one of --tags, --all-tags, --releases N and --list FILE");
  std::string err;
  if (!args.list_file.empty()) {
    if (sources.size() != 1) return fail("--list FILE takes one SOURCE, the repository its lines are relative to");
    const auto root = oci::repository_location::parse(sources.front());
    if (!root) return fail("SOURCE: '" + sources.front() + "' is not host[:port]/repository");
    std::ifstream in(args.list_file);
    if (!in) return fail("cannot read --list " + args.list_file);
    std::ostringstream text;
    text << in.rdbuf();
    const auto list = oci::parse_image_list(text.str(), *root);
    if (!list.errors.empty()) {
      for (const auto& e : list.errors) std::cerr << args.list_file << ":" << e.line << ": " << e.message << "\n";
      return fail("--list " + args.list_file + " has " + std::to_string(list.errors.size()) + " bad line(s)");
    }
    if (list.items.empty()) return fail("--list " + args.list_file + " names no image");
    for (const auto& item : list.items) {
      if (!mirror::relative_repository(root->path, item.repository)) {
        return fail(args.list_file + ": " + item.text + " is not in " + root->str() + " nor below it");
      }
      auto& what = selection_of(request, item.repository);
      if (auto d = oci::digest::parse(item.reference)) {
        what.digests.push_back(*d);
      } else {
        what.tags.push_back(item.reference);
      }
    }
    request.root = root->path;
    return root->registry;
  }
  std::string registry;
  bool unreferenced = false;
  std::vector<std::string> names;
  for (const auto& text : sources) {
    auto src = parse_repository(text, true, err);
    if (!src) return fail("SOURCE: " + err);
    if (!registry.empty() && src->registry != registry) {
      return fail("every SOURCE must be in one registry: " + registry + " and " + src->registry);
    }
    registry = src->registry;
    auto& what = selection_of(request, src->repository);
    if (src->tag) what.tags.push_back(*src->tag);
    if (src->digest) what.digests.push_back(*src->digest);
    if (!src->tag && !src->digest) unreferenced = true;
    names.push_back(src->repository);
  }
  if (unreferenced && global == 0) {
    return fail("choose one of --tags, --all-tags, --releases N or --list FILE, or name a tag or digest in each SOURCE");
  }
  if (!unreferenced && global > 0) return fail("every SOURCE names its tag or digest: drop --tags, --all-tags or --releases");
  for (auto& r : request.repositories) {
    if (!r.what.tags.empty() || !r.what.digests.empty()) continue;
    r.what.all = args.all_tags;
    r.what.releases = args.releases;
    r.what.tags = split_list(args.tags);
    for (const auto& t : r.what.tags) {
      if (!oci::is_valid_tag(t)) return fail("--tags: '" + t + "' is not a valid tag");
    }
  }
  request.root = common_root(names);
  return registry;
}

// The message for a failed transfer, and how to go on.
void report_failure(const std::string& verb, const std::string& error, const remote_flags& remote,
                    const std::string& which, const std::string& kept) {
  if (error == mirror::interrupted_error) {
    std::cerr << "registryd mirror " << verb << ": interrupted; run the same command again to resume";
    if (!kept.empty()) std::cerr << " (what was " << verb << "ed is kept in " << kept << ")";
    std::cerr << "\n";
    return;
  }
  std::cerr << "registryd mirror " << verb << ": " << error << "\n";
  if (const auto h = remote.hint(error, which); !h.empty()) std::cerr << "hint: " << h << "\n";
  if (!kept.empty()) std::cerr << "what was " << verb << "ed is kept in " << kept << "; run the same command again to go on\n";
}

int pull(const pull_args& args) {
  if (args.sources.size() < 2) {
    std::cerr << "registryd mirror pull: name at least one SOURCE and the BUNDLE\n";
    return exit_invalid;
  }
  mirror::pull_request request;
  request.bundle = args.sources.back();
  const std::string bundle = args.sources.back();
  request.keep_work_dir = args.keep_work_dir;
  request.keep_going = args.keep_going;
  if (!args.chunk_size.empty()) {
    request.chunk_size = parse_size(args.chunk_size);
    if (!request.chunk_size) {
      std::cerr << "registryd mirror pull: --chunk-size '" << args.chunk_size
                << "' is not a size (e.g. 4G, 500MiB, 1048576)\n";
      return exit_invalid;
    }
    if (request.bundle.extension() != ".tar") {
      std::cerr << "registryd mirror pull: --chunk-size needs a tar bundle (BUNDLE ending in .tar)\n";
      return exit_invalid;
    }
  }
  const auto registry = read_sources(args, request);
  if (!registry) return exit_invalid;
  std::string err;
  auto c = make_client(args.remote, *registry, err);
  if (!c) {
    std::cerr << "registryd mirror pull: " << err << "\n";
    return exit_invalid;
  }
  if (!args.remote.credentials_from.empty()) {
    std::cerr << "mirror pull: credentials for " << *registry << " from " << args.remote.credentials_from << "\n";
  }

  request.transfer = args.transfer.options(watch_interrupts());
  terminal_progress bar;
  bar.set_verb("pull");
  auto pulled = mirror::pull(*c, request, bar);
  const std::string kept = request.bundle.extension() == ".tar" ? bundle + ".work" : bundle;
  if (!pulled) {
    if (args.transfer.json) {
      print_json_failure(bundle, pulled.error_message());
    }
    report_failure("pull", pulled.error_message(), args.remote, "source", args.transfer.dry_run ? "" : kept);
    return exit_failed;
  }
  const auto& s = *pulled;
  if (args.transfer.json) {
    std::cout << nlohmann::json{{"bundle", bundle},
                                {"ok", true},
                                {"dry_run", args.transfer.dry_run},
                                {"repositories", s.repositories},
                                {"tags", s.tags},
                                {"manifests", s.manifests},
                                {"blobs", s.blobs},
                                {"bytes", s.bytes},
                                {"blobs_already_pulled", s.blobs_present},
                                {"bytes_fetched", s.bytes_to_fetch},
                                {"chunks", s.chunks},
                                {"missing", s.missing}}
                     .dump(2)
              << "\n";
    return exit_ok;
  }
  if (args.transfer.dry_run) {
    std::cout << "would pull into " << bundle << ": " << repositories_text(s.repositories) << s.tags << " tag(s), " << s.manifests << " manifest(s), "
              << s.blobs << " blob(s) of " << human(s.bytes) << "; " << (s.blobs - s.blobs_present)
              << " blob(s), " << human(s.bytes_to_fetch) << ", to download (" << s.blobs_present
              << " already in " << kept << ")\n";
  } else {
    std::cout << "bundle " << bundle << ": " << repositories_text(s.repositories)
              << s.tags << " tag(s), " << s.manifests << " manifest(s), " << s.blobs << " blob(s), " << human(s.bytes);
    if (s.chunks > 1) std::cout << ", " << s.chunks << " chunks";
    if (s.chunks == 0) std::cout << " (an image layout directory)";
    std::cout << "\n";
  }
  for (const auto& m : s.missing) std::cout << "skipped, not in the source: " << m << "\n";
  return exit_ok;
}

// ---- push ----

struct push_args {
  std::string bundle;
  std::string destination;
  std::string chunk = "16M";
  transfer_flags transfer;
  remote_flags remote;
};

// Where a push remembers the chunked uploads it left half sent: $XDG_STATE_HOME/registryd/, else
// ~/.local/state/registryd/ (nowhere when neither is known).
fs::path upload_journal_file() {
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && *state != '\0') {
    return fs::path(state) / "registryd" / "mirror-uploads.json";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return fs::path(home) / ".local" / "state" / "registryd" / "mirror-uploads.json";
  }
  return {};
}

int push(const push_args& args) {
  std::string err;
  auto dest = parse_repository(args.destination, false, err);
  if (!dest) {
    std::cerr << "registryd mirror push: DEST: " << err << "\n";
    return exit_invalid;
  }
  mirror::push_request request{args.bundle, dest->repository, args.transfer.options(watch_interrupts())};
  const auto chunk = parse_size(args.chunk);
  if (!chunk || *chunk > (256ULL << 20)) {
    std::cerr << "registryd mirror push: --upload-chunk-size '" << args.chunk
              << "' is not a size from 1 byte to 256M (e.g. 16M): each of the --parallel uploads holds one chunk "
                 "in memory\n";
    return exit_invalid;
  }
  request.chunk_bytes = *chunk;
  request.upload_journal = upload_journal_file();
  auto c = make_client(args.remote, dest->registry, err);
  if (!c) {
    std::cerr << "registryd mirror push: " << err << "\n";
    return exit_invalid;
  }
  if (!args.remote.credentials_from.empty()) {
    std::cerr << "mirror push: credentials for " << dest->registry << " from " << args.remote.credentials_from << "\n";
  }
  terminal_progress bar;
  bar.set_verb("push");
  auto pushed = mirror::push(*c, request, bar);
  if (!pushed) {
    if (args.transfer.json) {
      print_json_failure(args.bundle, pushed.error_message());
    }
    report_failure("push", pushed.error_message(), args.remote, "destination", "");
    if (pushed.error_message() != mirror::interrupted_error) {
      std::cerr << "run the same command again to go on: blobs that arrived are skipped, a blob sent in "
                   "chunks goes on from where the destination has it\n";
    }
    return exit_failed;
  }
  const auto& s = *pushed;
  if (args.transfer.json) {
    std::cout << nlohmann::json{{"bundle", args.bundle},
                                {"ok", true},
                                {"dry_run", args.transfer.dry_run},
                                {"destination", dest->registry + "/" + dest->repository},
                                {"repositories", s.repositories},
                                {"tags", s.tags},
                                {"manifests", s.manifests},
                                {"blobs", s.blobs},
                                {"blobs_already_there", s.blobs_skipped},
                                {"blobs_mounted", s.blobs_mounted},
                                {"bytes_sent", s.bytes_sent},
                                {"chunks_resumed", s.resumed},
                                {"uploads_continued", s.uploads_continued}}
                     .dump(2)
              << "\n";
    return exit_ok;
  }
  std::cout << (args.transfer.dry_run ? "would push " : "pushed ") << args.bundle << " to " << dest->registry << "/"
            << dest->repository << ": " << repositories_text(s.repositories)
            << s.tags << " tag(s), " << s.manifests << " manifest(s), " << s.blobs << " blob(s) (" << s.blobs_skipped
            << " already there";
  if (s.blobs_mounted > 0) std::cout << ", " << s.blobs_mounted << " mounted from another repository";
  std::cout << "), " << human(s.bytes_sent) << (args.transfer.dry_run ? " to send" : " sent");
  if (s.resumed > 0) std::cout << ", " << s.resumed << " chunk(s) resumed";
  if (s.uploads_continued > 0) std::cout << ", " << s.uploads_continued << " half-sent blob(s) gone on with";
  std::cout << "\n";
  return exit_ok;
}

struct verify_args {
  std::string bundle;
  bool json = false;
};

// Offline: every manifest and blob of the bundle hashed, every reference there.
int verify(const verify_args& args) {
  std::error_code ec;
  if (!fs::exists(args.bundle, ec) && !fs::exists(mirror::chunk_path(args.bundle, 0), ec) &&
      args.bundle.find(".chunk-") == std::string::npos) {
    std::cerr << "registryd mirror verify: " << args.bundle << " does not exist (nor " << args.bundle
              << ".chunk-0000)\n";
    return exit_invalid;
  }
  const bool bar = !args.json && ::isatty(STDERR_FILENO) != 0;
  auto summary = mirror::verify_bundle(args.bundle, [&](std::uint64_t done, std::uint64_t total) {
    if (bar) std::cerr << "\rverifying: " << (total ? done * 100 / total : 100) << " % of blob bytes" << std::flush;
  });
  if (bar) std::cerr << "\n";
  if (!summary) {
    if (args.json) {
      print_json_failure(args.bundle, summary.error_message());
    }
    std::cerr << "registryd mirror verify: " << args.bundle << " is damaged: " << summary.error_message() << "\n";
    return exit_failed;
  }
  if (args.json) {
    std::cout << nlohmann::json{{"bundle", args.bundle},       {"ok", true},
                                {"kind", summary->kind},       {"repositories", summary->repositories},
                                {"tags", summary->tags},       {"manifests", summary->manifests},
                                {"blobs", summary->blobs},     {"bytes", summary->bytes}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << args.bundle << " (" << summary->kind << ") is whole: " << repositories_text(summary->repositories)
              << summary->tags << " tag(s), "
              << summary->manifests << " manifest(s), " << summary->blobs << " blob(s) of " << summary->bytes
              << " bytes, every one hashed\n";
  }
  return exit_ok;
}

}  // namespace

command add_mirror(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "mirror",
      "Mirror bundles for air-gapped installs: copy images of a repository into a bundle (an OCI "
      "image layout as a tar, optionally in chunks) and from a bundle into a registry. "
      "Docs: docs/bundles.md.");
  sub->require_subcommand(1, 1);

  auto pa = std::make_shared<pull_args>();
  auto* pull_cmd = sub->add_subcommand(
      "pull",
      "Copy tags of one or several SOURCEs (host[:port]/repository[:tag|@digest], all in one "
      "registry) into BUNDLE: a tar when it ends in .tar, else an image layout directory. "
      "Several repositories go into one bundle, named below the path they share; `mirror push` "
      "restores each below its DEST. Re-running goes on where it stopped; Ctrl-C stops and says "
      "so. Exit codes: 0 pulled (or would pull), 1 failed or interrupted, 2 bad flags.");
  pull_cmd->add_option("SOURCE... BUNDLE", pa->sources,
                       "The repositories to pull (host[:port]/repository[:tag|@digest]), then the bundle "
                       "to write: NAME.tar, or a directory")
      ->required()
      ->expected(2, -1)
      ->type_name("");
  pull_cmd->add_option("--tags", pa->tags, "Comma separated tags to pull from each SOURCE that names none");
  pull_cmd->add_flag("--all-tags", pa->all_tags, "Pull every tag of each SOURCE that names none");
  pull_cmd->add_option("--releases", pa->releases,
                       "Pull the N newest release tags (vX.Y.Z, by semver) of each SOURCE that names none")
      ->check(CLI::PositiveNumber);
  pull_cmd->add_option("--list", pa->list_file,
                       "Pull the images FILE lists, one a line, relative to the one SOURCE (`:v1.60.1`, "
                       "`install:v1.60.1`, `modules/ingress@sha256:...`) or full references in its "
                       "registry; the list format of `registryd check --images`")
      ->type_name("FILE");
  pull_cmd->add_flag("--keep-going", pa->keep_going,
                     "Name and skip a tag or digest the source does not have (else the pull fails on it)");
  pull_cmd->add_option("--chunk-size", pa->chunk_size,
                       "Split the tar into chunks of this size (e.g. 4G, 500M): BUNDLE.chunk-0000, ...");
  pull_cmd->add_flag("--keep-work-dir", pa->keep_work_dir, "Keep BUNDLE.work/ (the layout) after writing the tar");
  pa->transfer.add_to(*pull_cmd, "pull");
  pa->remote.add_to(*pull_cmd, "source");

  auto ua = std::make_shared<push_args>();
  auto* push_cmd = sub->add_subcommand(
      "push",
      "Copy BUNDLE (a tar, its chunks, or an image layout directory) into DEST "
      "(host[:port]/repository) with its tags: the bundle's root repository to DEST, the others "
      "below it (DEST/install, DEST/modules/...). Blobs DEST has are skipped, a blob another "
      "repository has is mounted, large blobs go in chunks resumed after a broken connection "
      "(and by the next run, when this one fails: $XDG_STATE_HOME/registryd/mirror-uploads.json). "
      "Ctrl-C cancels the open uploads; running the same command again goes on. Exit codes: 0 "
      "pushed (or would push), 1 failed or interrupted, 2 bad flags.");
  push_cmd->add_option("BUNDLE", ua->bundle, "The bundle: NAME.tar, NAME.tar.chunk-0000 or a directory")->required();
  push_cmd->add_option("DEST", ua->destination, "host[:port]/repository")->required();
  push_cmd->add_option("--upload-chunk-size", ua->chunk,
                       "Blobs larger than this go up in chunks of this size (at most 256M; each of "
                       "the --parallel uploads holds one in memory), each resumed where a broken "
                       "connection left it")
      ->capture_default_str();
  ua->transfer.add_to(*push_cmd, "push");
  ua->remote.add_to(*push_cmd, "destination");

  auto va = std::make_shared<verify_args>();
  auto* verify_cmd = sub->add_subcommand(
      "verify",
      "Check BUNDLE offline before carrying or pushing it: index.json, every manifest it reaches "
      "and every blob those reference are there, in every chunk, and hash to their digests. "
      "Exit codes: 0 whole, 1 damaged (the missing, corrupt or cut entry is named), 2 no such "
      "bundle.");
  verify_cmd->add_option("BUNDLE", va->bundle, "NAME.tar, NAME.tar.chunk-0000 or a layout directory")->required();
  verify_cmd->add_flag("--json", va->json, "Print the result as JSON");

  return [sub, pull_cmd, verify_cmd, pa, ua, va]() -> int {
    if (pull_cmd->parsed()) return pull(*pa);
    if (verify_cmd->parsed()) return verify(*va);
    (void)sub;
    return push(*ua);
  };
}

}  // namespace registryd::cli
