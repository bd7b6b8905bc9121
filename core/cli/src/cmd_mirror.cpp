// registryd mirror pull|push|verify: mirror bundles (docs/bundles.md), an OCI image layout as a tar,
// carried into an air-gapped network. The front end of the mirror engine
// (core/mirror, registryd/mirror/engine.hpp): flags, registry options, the terminal bar and the
// messages; the engine does the work.
#include "commands.hpp"

#include <registryd/mirror/engine.hpp>
#include <registryd/oci/client/registry_client.hpp>
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
    sub.add_option("--username", username, "User for the " + which + " registry");
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
      return username.empty() ? "the " + which + " registry wants credentials: --username and --password-file"
                              : "the " + which + " registry refused user " + username + ": check --password-file";
    }
    if (has("403 DENIED") || has(" 403 ")) {
      return "user " + username + " may not do this on the " + which +
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
    }
    return o;
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
    drawn_ = false;
  }
  void add_bytes(std::uint64_t n) override {
    done_ = std::min(total_, done_ + n);  // a retried piece is not counted twice past the end
    if (tty_) draw(false);
  }
  void item(std::string_view how, const oci::digest& d, std::uint64_t size) override {
    ++items_done_;
    if (tty_) {
      draw(true);
      return;
    }
    std::cerr << verb_ << ": blob " << items_done_ << "/" << items_ << " " << d.str() << " (" << human(size)
              << ") " << how << "; " << human(done_) << " of " << human(total_) << " " << percent() << "%\n";
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
    if (items_ > 0) std::cerr << "  blobs " << items_done_ << "/" << items_;
    std::cerr << std::flush;
  }

  std::string verb_;
  std::uint64_t total_ = 0;
  std::uint64_t done_ = 0;
  std::size_t items_ = 0;
  std::size_t items_done_ = 0;
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

struct pull_args {
  std::string source;
  std::string bundle;
  std::string tags;
  bool all_tags = false;
  std::size_t releases = 0;
  std::string chunk_size;
  bool keep_work_dir = false;
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

int pull(const pull_args& args) {
  std::string err;
  auto src = parse_repository(args.source, true, err);
  if (!src) {
    std::cerr << "registryd mirror pull: SOURCE: " << err << "\n";
    return exit_invalid;
  }
  const int choices = (!args.tags.empty() ? 1 : 0) + (args.all_tags ? 1 : 0) + (args.releases > 0 ? 1 : 0) +
                      ((src->tag || src->digest) ? 1 : 0);
  if (choices != 1) {
    std::cerr << "registryd mirror pull: choose exactly one of --tags, --all-tags, --releases N, "
                 "or a tag or digest in SOURCE\n";
    return exit_invalid;
  }
  mirror::pull_request request;
  request.repository = src->repository;
  request.bundle = args.bundle;
  request.keep_work_dir = args.keep_work_dir;
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
  if (src->tag) request.what.tags.push_back(*src->tag);
  request.what.digest = src->digest;
  request.what.all = args.all_tags;
  request.what.releases = args.releases;
  if (!args.tags.empty()) {
    request.what.tags = split_list(args.tags);
    for (const auto& t : request.what.tags) {
      if (!oci::is_valid_tag(t)) {
        std::cerr << "registryd mirror pull: --tags: '" << t << "' is not a valid tag\n";
        return exit_invalid;
      }
    }
  }
  auto c = make_client(args.remote, src->registry, err);
  if (!c) {
    std::cerr << "registryd mirror pull: " << err << "\n";
    return exit_invalid;
  }

  terminal_progress bar;
  bar.set_verb("pull");
  auto pulled = mirror::pull(*c, request, bar);
  if (!pulled) {
    std::cerr << "registryd mirror pull: " << pulled.error_message() << "\n";
    if (const auto h = args.remote.hint(pulled.error_message(), "source"); !h.empty()) std::cerr << "hint: " << h << "\n";
    std::cerr << "what was pulled is kept in " << (request.bundle.extension() == ".tar" ? args.bundle + ".work" : args.bundle)
              << "; run the same command again to go on\n";
    return exit_failed;
  }
  const auto& s = *pulled;
  std::cout << "bundle " << args.bundle << ": " << s.tags << " tag(s), " << s.manifests << " manifest(s), " << s.blobs
            << " blob(s), " << human(s.bytes);
  if (s.chunks > 1) std::cout << ", " << s.chunks << " chunks";
  if (s.chunks == 0) std::cout << " (an image layout directory)";
  std::cout << "\n";
  return exit_ok;
}

// ---- push ----

struct push_args {
  std::string bundle;
  std::string destination;
  remote_flags remote;
};

int push(const push_args& args) {
  std::string err;
  auto dest = parse_repository(args.destination, false, err);
  if (!dest) {
    std::cerr << "registryd mirror push: DEST: " << err << "\n";
    return exit_invalid;
  }
  auto c = make_client(args.remote, dest->registry, err);
  if (!c) {
    std::cerr << "registryd mirror push: " << err << "\n";
    return exit_invalid;
  }
  terminal_progress bar;
  bar.set_verb("push");
  auto pushed = mirror::push(*c, mirror::push_request{args.bundle, dest->repository, {}}, bar);
  if (!pushed) {
    std::cerr << "registryd mirror push: " << pushed.error_message() << "\n";
    if (const auto h = args.remote.hint(pushed.error_message(), "destination"); !h.empty()) {
      std::cerr << "hint: " << h << "\n";
    }
    return exit_failed;
  }
  const auto& s = *pushed;
  std::cout << "pushed " << args.bundle << " to " << dest->registry << "/" << dest->repository << ": " << s.tags
            << " tag(s), " << s.manifests << " manifest(s), " << s.blobs << " blob(s) (" << s.blobs_skipped
            << " already there)\n";
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
      std::cout << nlohmann::json{{"bundle", args.bundle}, {"ok", false}, {"error", summary.error_message()}}.dump(2)
                << "\n";
    }
    std::cerr << "registryd mirror verify: " << args.bundle << " is damaged: " << summary.error_message() << "\n";
    return exit_failed;
  }
  if (args.json) {
    std::cout << nlohmann::json{{"bundle", args.bundle}, {"ok", true},        {"kind", summary->kind},
                                {"tags", summary->tags},   {"manifests", summary->manifests},
                                {"blobs", summary->blobs}, {"bytes", summary->bytes}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << args.bundle << " (" << summary->kind << ") is whole: " << summary->tags << " tag(s), "
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
      "Copy tags of SOURCE (host[:port]/repository[:tag|@digest]) into BUNDLE: a tar when it ends "
      "in .tar, else an image layout directory. Re-running goes on where it stopped.");
  pull_cmd->add_option("SOURCE", pa->source, "host[:port]/repository[:tag|@digest]")->required();
  pull_cmd->add_option("BUNDLE", pa->bundle, "Bundle to write: NAME.tar, or a directory")->required();
  pull_cmd->add_option("--tags", pa->tags, "Comma separated tags to pull");
  pull_cmd->add_flag("--all-tags", pa->all_tags, "Pull every tag of the repository");
  pull_cmd->add_option("--releases", pa->releases,
                       "Pull the N newest release tags (vX.Y.Z, by semver) of the repository")
      ->check(CLI::PositiveNumber);
  pull_cmd->add_option("--chunk-size", pa->chunk_size,
                       "Split the tar into chunks of this size (e.g. 4G, 500M): BUNDLE.chunk-0000, ...");
  pull_cmd->add_flag("--keep-work-dir", pa->keep_work_dir, "Keep BUNDLE.work/ (the layout) after writing the tar");
  pa->remote.add_to(*pull_cmd, "source");

  auto ua = std::make_shared<push_args>();
  auto* push_cmd = sub->add_subcommand(
      "push",
      "Copy BUNDLE (a tar, its chunks, or an image layout directory) into DEST "
      "(host[:port]/repository) with its tags. Blobs DEST has are skipped.");
  push_cmd->add_option("BUNDLE", ua->bundle, "The bundle: NAME.tar, NAME.tar.chunk-0000 or a directory")->required();
  push_cmd->add_option("DEST", ua->destination, "host[:port]/repository")->required();
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
