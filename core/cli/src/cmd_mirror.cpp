// registryd mirror pull|push: mirror bundles (docs/bundles.md), an OCI image layout as a tar,
// carried into an air-gapped network. `pull` copies tags of one repository from any registry
// into a bundle; `push` copies a bundle into any registry (registryd Local included).
//
// Both are resumable. pull downloads into an image layout directory first (`<BUNDLE>.work/`
// for a tar bundle) whose blobs are published only when verified, and whose partial blob files
// continue with a Range request; a re-run skips what is there. push asks the destination for
// every blob (HEAD) and sends only what it lacks. Nothing holds a blob in memory.
#include "commands.hpp"

#include <registryd/oci/bundle.hpp>
#include <registryd/oci/client/registry_client.hpp>
#include <registryd/oci/layout.hpp>
#include <registryd/oci/manifest.hpp>
#include <registryd/oci/media_types.hpp>
#include <registryd/oci/reference.hpp>
#include <registryd/oci/semver.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace registryd::cli {
namespace {

namespace fs = std::filesystem;
namespace client = oci::client;
using oci::descriptor;

constexpr int exit_failed = 1;
constexpr int attempts = 4;

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
class progress {
 public:
  progress(std::string verb, std::uint64_t total_bytes, std::size_t total_items)
      : verb_(std::move(verb)), total_(total_bytes), items_(total_items), tty_(::isatty(STDERR_FILENO) == 1) {}

  void add_bytes(std::uint64_t n) {
    done_ = std::min(total_, done_ + n);  // a retried piece is not counted twice past the end
    if (tty_) draw(false);
  }
  // An item (a blob) finished: `what` says how ("pulled", "already there").
  void item(const std::string& what, const oci::digest& d, std::uint64_t size) {
    ++items_done_;
    if (tty_) {
      draw(true);
      return;
    }
    std::cerr << verb_ << ": blob " << items_done_ << "/" << items_ << " " << d.str() << " (" << human(size)
              << ") " << what << "; " << human(done_) << " of " << human(total_) << " " << percent() << "%\n";
  }
  // A line that stays (a manifest, a warning), printed above the bar.
  void line(const std::string& text) {
    if (tty_) std::cerr << "\r\033[K";
    std::cerr << verb_ << ": " << text << "\n";
    if (tty_) draw(true);
  }
  void finish() {
    if (tty_ && drawn_) {
      draw(true);
      std::cerr << "\n";
    }
  }

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
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  std::size_t items_;
  std::size_t items_done_ = 0;
  bool tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

void backoff(int attempt) { std::this_thread::sleep_for(std::chrono::seconds(1 << attempt)); }

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

std::string describe(const client::upstream_error& e) { return e.str(); }

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

class puller {
 public:
  puller(const client::registry_client& c, std::string repository, oci::image_layout& layout)
      : client_(c), repository_(std::move(repository)), layout_(layout) {}

  // Fetches the manifest `reference` and every manifest under it into the layout; the
  // descriptor of the top one.
  std::optional<descriptor> fetch_tree(const std::string& reference, std::string& err) {
    auto got = with_retries([&] { return client_.get_manifest(repository_, reference); });
    if (!got) {
      err = "manifest " + reference + " of " + repository_ + ": " + describe(got.error());
      return std::nullopt;
    }
    descriptor top(got->descriptor.media_type, got->descriptor.digest, static_cast<std::int64_t>(got->body.size()));
    auto parsed = oci::parse_manifest(got->body, got->descriptor.media_type);
    if (!parsed) {
      err = "manifest " + reference + " of " + repository_ + " (" + top.digest.str() + "): " + parsed.error_message();
      return std::nullopt;
    }
    top.media_type = parsed->media_type;
    if (!store(top, got->body, err)) return std::nullopt;
    if (!walk(*parsed, 0, err)) return std::nullopt;
    return top;
  }

  // Blobs referenced by what fetch_tree saw, each once.
  const std::vector<descriptor>& blobs() const { return blobs_; }
  std::size_t manifests() const { return seen_manifests_.size(); }

  // Downloads `b` into the layout unless it is there and verified.
  bool fetch_blob(const descriptor& b, progress& bar, std::string& err) {
    const auto size = static_cast<std::uint64_t>(b.size);
    if (layout_.has_blob(b.digest, size)) {
      if (layout_.verify_blob(b.digest, size)) {
        bar.add_bytes(size);
        bar.item("already in the layout", b.digest, size);
        return true;
      }
      std::error_code ec;
      fs::remove(layout_.blob_path(b.digest), ec);  // corrupt on disk: fetch again
    }
    std::uint64_t accounted = 0;  // bytes of this blob the bar has seen, across attempts
    for (int attempt = 0;; ++attempt) {
      auto w = layout_.write_blob(b.digest, size);
      if (!w) {
        err = w.error_message();
        return false;
      }
      const std::uint64_t resumed = w->offset();
      if (resumed > accounted) bar.add_bytes(resumed - accounted);
      accounted = std::max(accounted, resumed);
      std::uint64_t position = resumed;
      bool ranged = false;
      std::string write_error;
      client::blob_read_options opts;
      opts.verify = false;  // the layout's writer verifies
      if (resumed > 0 && resumed < size) opts.range = client::byte_range{resumed, std::nullopt};
      const bool whole = resumed == size;
      client::response_handler h;
      h.on_head = [&](const client::response_head& head) {
        ranged = head.status == 206;
        if (head.status == 200 && w->offset() > 0) {
          // The source ignored the Range (or there was nothing left to ask for): start over.
          position = 0;
          auto st = w->restart();
          if (!st) {
            write_error = st.error_message();
            return false;
          }
        }
        return true;
      };
      h.on_body = [&](std::string_view piece) {
        auto st = w->write(piece);
        if (!st) {
          write_error = st.error_message();
          return false;
        }
        position += piece.size();
        if (position > accounted) {
          bar.add_bytes(position - accounted);
          accounted = position;
        }
        return true;
      };
      if (whole) {
        auto st = w->commit();
        if (st) {
          bar.item("pulled", b.digest, size);
          return true;
        }
        // The partial file was complete but wrong: it was removed; fetch it whole.
        continue;
      }
      auto r = client_.get_blob(repository_, b.digest, h, opts);
      if (r) {
        auto st = w->commit();
        if (st) {
          bar.item(ranged ? "pulled (resumed at byte " + std::to_string(resumed) + ")" : "pulled", b.digest, size);
          return true;
        }
        err = st.error_message() + " (from " + client_.options().registry + ")";
        if (attempt + 1 < attempts) {
          bar.line("retrying: " + err);
          continue;
        }
        return false;
      }
      if (!write_error.empty()) {
        err = write_error;
        return false;
      }
      err = "blob " + b.digest.str() + ": " + describe(r.error());
      if (!r.error().retryable() || attempt + 1 >= attempts) return false;
      bar.line("retrying in " + std::to_string(1 << attempt) + " s: " + err);
      backoff(attempt);
    }
  }

 private:
  template <typename F>
  auto with_retries(F f) -> decltype(f()) {
    for (int attempt = 0;; ++attempt) {
      auto r = f();
      if (r || !r.error().retryable() || attempt + 1 >= attempts) return r;
      backoff(attempt);
    }
  }

  bool store(const descriptor& d, const std::string& bytes, std::string& err) {
    if (layout_.has_blob(d.digest, bytes.size()) && layout_.verify_blob(d.digest, bytes.size())) return true;
    auto st = layout_.put_blob(d.digest, bytes);  // replaces a damaged copy
    if (!st) {
      err = st.error_message();
      return false;
    }
    return true;
  }

  bool walk(const oci::manifest& m, int depth, std::string& err) {
    if (depth > 8) {
      err = "manifests nested too deep in " + repository_;
      return false;
    }
    for (const auto& b : m.blobs()) {
      if (!b.urls.empty() && oci::is_non_distributable_media_type(b.media_type)) continue;
      if (seen_blobs_.insert(b.digest).second) blobs_.push_back(b);
    }
    for (const auto& child : m.children()) {
      if (!seen_manifests_.insert(child.digest).second) continue;
      std::string bytes;
      if (auto local = layout_.read_blob(child.digest); local) {
        bytes = std::move(*local);
      } else {
        auto got = with_retries([&] { return client_.get_manifest(repository_, child.digest.str()); });
        if (!got) {
          err = "manifest " + child.digest.str() + " of " + repository_ + ": " + describe(got.error());
          return false;
        }
        bytes = std::move(got->body);
        if (!store(child, bytes, err)) return false;
      }
      auto parsed = oci::parse_manifest(bytes, child.media_type);
      if (!parsed) {
        err = "manifest " + child.digest.str() + " of " + repository_ + ": " + parsed.error_message();
        return false;
      }
      if (!walk(*parsed, depth + 1, err)) return false;
    }
    return true;
  }

  const client::registry_client& client_;
  std::string repository_;
  oci::image_layout& layout_;
  std::vector<descriptor> blobs_;
  std::set<oci::digest> seen_blobs_;
  std::set<oci::digest> seen_manifests_;
};

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
  std::optional<std::uint64_t> chunk;
  if (!args.chunk_size.empty()) {
    chunk = parse_size(args.chunk_size);
    if (!chunk) {
      std::cerr << "registryd mirror pull: --chunk-size '" << args.chunk_size
                << "' is not a size (e.g. 4G, 500MiB, 1048576)\n";
      return exit_invalid;
    }
  }
  const fs::path bundle = args.bundle;
  const bool as_tar = bundle.extension() == ".tar";
  if (chunk && !as_tar) {
    std::cerr << "registryd mirror pull: --chunk-size needs a tar bundle (BUNDLE ending in .tar)\n";
    return exit_invalid;
  }
  const fs::path work = as_tar ? fs::path(bundle.string() + ".work") : bundle;

  auto opts = args.remote.options(src->registry, err);
  if (!opts) {
    std::cerr << "registryd mirror pull: " << err << "\n";
    return exit_invalid;
  }
  std::unique_ptr<client::registry_client> c;
  try {
    c = std::make_unique<client::registry_client>(std::move(*opts));
  } catch (const std::exception& e) {
    std::cerr << "registryd mirror pull: " << e.what() << "\n";
    return exit_invalid;
  }

  // What to pull.
  std::vector<std::string> tags;
  if (src->tag) tags.push_back(*src->tag);
  if (!args.tags.empty()) {
    tags = split_list(args.tags);
    for (const auto& t : tags) {
      if (!oci::is_valid_tag(t)) {
        std::cerr << "registryd mirror pull: --tags: '" << t << "' is not a valid tag\n";
        return exit_invalid;
      }
    }
  }
  if (args.all_tags || args.releases > 0) {
    auto listed = c->list_tags(src->repository);
    if (!listed) {
      std::cerr << "registryd mirror pull: cannot list the tags of " << src->registry << "/" << src->repository
                << ": " << describe(listed.error()) << "\n";
      return exit_failed;
    }
    tags = args.all_tags ? *listed : oci::newest_releases(*listed, args.releases);
    if (tags.empty()) {
      std::cerr << "registryd mirror pull: " << src->registry << "/" << src->repository << " has no "
                << (args.all_tags ? "tags" : "release tags (vX.Y.Z)") << "\n";
      return exit_failed;
    }
    if (args.releases > 0 && tags.size() < args.releases) {
      std::cerr << "registryd mirror pull: only " << tags.size() << " release tags, fewer than " << args.releases << "\n";
    }
  }

  auto layout = oci::image_layout::open(work, true);
  if (!layout) {
    std::cerr << "registryd mirror pull: " << layout.error_message() << "\n";
    return exit_failed;
  }
  if (auto st = layout->lock(); !st) {
    std::cerr << "registryd mirror pull: " << st.error_message() << "\n";
    return exit_failed;
  }
  auto index = layout->read_index();
  if (!index) {
    std::cerr << "registryd mirror pull: " << index.error_message() << "\n";
    return exit_failed;
  }

  // Manifests first (small, and they say how much there is to download), then blobs.
  puller p(*c, src->repository, *layout);
  std::vector<std::pair<std::string, descriptor>> tops;  // tag ("" for a digest) -> manifest
  if (src->digest) {
    auto d = p.fetch_tree(src->digest->str(), err);
    if (!d) {
      std::cerr << "registryd mirror pull: " << err << "\n";
      return exit_failed;
    }
    tops.emplace_back("", *d);
  }
  for (const auto& tag : tags) {
    auto d = p.fetch_tree(tag, err);
    if (!d) {
      std::cerr << "registryd mirror pull: " << err << "\n";
      return exit_failed;
    }
    std::cerr << "mirror pull: " << src->repository << ":" << tag << " is " << d->digest.str() << " ("
              << d->media_type << ")\n";
    tops.emplace_back(tag, *d);
  }

  std::uint64_t total = 0;
  for (const auto& b : p.blobs()) total += static_cast<std::uint64_t>(b.size);
  progress bar("pull", total, p.blobs().size());
  for (const auto& b : p.blobs()) {
    if (!p.fetch_blob(b, bar, err)) {
      bar.finish();
      std::cerr << "registryd mirror pull: " << err << "\n"
                << "what was pulled is kept in " << work.string() << "; run the same command again to go on\n";
      return exit_failed;
    }
  }
  bar.finish();

  for (const auto& [tag, d] : tops) {
    if (tag.empty()) {
      const bool present = std::any_of(index->begin(), index->end(),
                                       [&](const descriptor& e) { return e.digest == d.digest && !oci::ref_name(e); });
      if (!present) index->push_back(d);
    } else {
      oci::set_ref_name(*index, tag, d);
    }
  }
  if (auto st = layout->write_index(*index); !st) {
    std::cerr << "registryd mirror pull: " << st.error_message() << "\n";
    return exit_failed;
  }

  if (as_tar) {
    oci::bundle_write_options w;
    w.chunk_size = chunk;
    auto content = oci::collect_manifests(*layout, *index);
    std::uint64_t bundle_total = 0;
    if (content) {
      for (const auto& b : content->blobs) bundle_total += static_cast<std::uint64_t>(b.size);
    }
    std::cerr << "mirror pull: writing " << bundle.string()
              << (chunk ? " in chunks of " + human(*chunk) : std::string()) << "\n";
    progress tar_bar("write", bundle_total, 0);  // bytes only: the tar is one stream
    std::uint64_t last = 0;
    w.progress = [&](std::uint64_t done, std::uint64_t) {
      tar_bar.add_bytes(done - last);
      last = done;
    };
    auto st = oci::write_bundle(*layout, bundle, w);
    tar_bar.finish();
    if (!st) {
      std::cerr << "registryd mirror pull: writing " << bundle.string() << ": " << st.error_message() << "\n";
      return exit_failed;
    }
    if (!args.keep_work_dir) {
      std::error_code ec;
      fs::remove_all(work, ec);
    }
  }
  auto files = as_tar ? oci::bundle_files(bundle) : oci::result<std::vector<fs::path>>(std::vector<fs::path>{});
  std::cout << "bundle " << bundle.string() << ": " << tops.size() << " tag(s), " << p.manifests() + tops.size()
            << " manifest(s), " << p.blobs().size() << " blob(s), " << human(total);
  if (as_tar && files && files->size() > 1) std::cout << ", " << files->size() << " chunks";
  if (!as_tar) std::cout << " (an image layout directory)";
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
  auto reader = oci::bundle_reader::open(args.bundle);
  if (!reader) {
    std::cerr << "registryd mirror push: " << reader.error_message() << "\n";
    return exit_failed;
  }
  auto opts = args.remote.options(dest->registry, err);
  if (!opts) {
    std::cerr << "registryd mirror push: " << err << "\n";
    return exit_invalid;
  }
  std::unique_ptr<client::registry_client> c;
  try {
    c = std::make_unique<client::registry_client>(std::move(*opts));
  } catch (const std::exception& e) {
    std::cerr << "registryd mirror push: " << e.what() << "\n";
    return exit_invalid;
  }
  const auto& content = reader->content();
  std::cerr << "mirror push: " << args.bundle << " (" << reader->kind() << "): " << reader->index().size()
            << " index entries, " << content.manifests.size() << " manifests, " << content.blobs.size() << " blobs\n";

  // Which blobs the destination lacks.
  std::uint64_t total = 0;
  for (const auto& b : content.blobs) total += static_cast<std::uint64_t>(b.size);
  progress bar("push", total, content.blobs.size());
  std::vector<descriptor> missing;
  for (const auto& b : content.blobs) {
    client::result<bool> exists = false;
    for (int attempt = 0;; ++attempt) {
      exists = c->blob_exists(dest->repository, b.digest);
      if (exists || !exists.error().retryable() || attempt + 1 >= attempts) break;
      backoff(attempt);
    }
    if (!exists) {
      bar.finish();
      std::cerr << "registryd mirror push: asking " << dest->registry << " for blob " << b.digest.str() << ": "
                << describe(exists.error()) << "\n";
      return exit_failed;
    }
    if (*exists) {
      bar.add_bytes(static_cast<std::uint64_t>(b.size));
      bar.item("already there", b.digest, static_cast<std::uint64_t>(b.size));
    } else {
      missing.push_back(b);
    }
  }

  // Send them, streamed from the bundle; retry the ones an upstream failure interrupted.
  for (int round = 0; !missing.empty(); ++round) {
    std::vector<descriptor> failed;
    std::string last_error;
    auto st = reader->for_each_blob(missing, [&](const descriptor& b, oci::blob_stream& body) -> oci::status {
      client::request_body rb;
      rb.length = static_cast<std::uint64_t>(b.size);
      rb.read = [&](char* buf, std::size_t cap) -> std::ptrdiff_t {
        const auto n = body.read(buf, cap);
        if (n > 0) bar.add_bytes(static_cast<std::uint64_t>(n));
        return n;
      };
      rb.rewind = [&]() -> bool { return body.rewind(); };
      auto r = c->push_blob(dest->repository, b.digest, std::move(rb));
      if (r) {
        bar.item("pushed", b.digest, static_cast<std::uint64_t>(b.size));
        return oci::ok();
      }
      if (!body.error().empty()) return oci::error{body.error()};  // the bundle is at fault
      last_error = "blob " + b.digest.str() + ": " + describe(r.error());
      if (!r.error().retryable()) return oci::error{last_error};
      bar.line("will retry: " + last_error);
      failed.push_back(b);
      return oci::ok();
    });
    if (!st) {
      bar.finish();
      std::cerr << "registryd mirror push: " << st.error_message() << "\n";
      return exit_failed;
    }
    if (!failed.empty() && round + 1 >= attempts) {
      bar.finish();
      std::cerr << "registryd mirror push: " << last_error << "\n";
      return exit_failed;
    }
    if (!failed.empty()) backoff(round);
    missing = std::move(failed);
  }
  bar.finish();

  // Manifests that are children of others go first, by digest, each after its own children (a
  // depth-first post-order: an image can be both a tag and a child of a tagged index); then
  // the tags, whose children are all there by then.
  const auto& ms = content.manifests;
  std::set<oci::digest> children;
  for (const auto& m : ms) {
    for (const auto& ch : m.parsed.children()) children.insert(ch.digest);
  }
  std::set<oci::digest> placed;
  std::string manifest_error;
  std::function<bool(const oci::manifest_set::entry&)> place = [&](const oci::manifest_set::entry& m) -> bool {
    if (!placed.insert(m.of.digest).second) return true;
    for (const auto& ch : m.parsed.children()) {
      const auto* child = content.find(ch.digest);
      if (child != nullptr && !place(*child)) return false;
    }
    if (children.count(m.of.digest) == 0) return true;  // a top-level manifest: pushed by its tag
    if (c->head_manifest(dest->repository, m.of.digest.str())) return true;
    auto r = c->push_manifest(dest->repository, m.of.digest.str(), m.parsed.media_type, m.bytes);
    if (!r) {
      manifest_error = "manifest " + m.of.digest.str() + ": " + describe(r.error());
      return false;
    }
    return true;
  };
  for (const auto& m : ms) {
    if (!place(m)) {
      std::cerr << "registryd mirror push: " << manifest_error << "\n";
      return exit_failed;
    }
  }
  std::size_t tags = 0;
  for (const auto& e : reader->index()) {
    const auto* m = content.find(e.digest);
    if (m == nullptr) continue;  // cannot happen: the reader resolved every entry
    const auto tag = oci::ref_name(e);
    const std::string reference = tag && oci::is_valid_tag(*tag) ? *tag : e.digest.str();
    if (tag && !oci::is_valid_tag(*tag)) {
      std::cerr << "mirror push: index entry " << e.digest.str() << " is named '" << *tag
                << "', not a tag: pushed by digest\n";
    }
    auto r = c->push_manifest(dest->repository, reference, m->parsed.media_type, m->bytes);
    if (!r) {
      std::cerr << "registryd mirror push: manifest " << reference << " (" << e.digest.str()
                << "): " << describe(r.error()) << "\n";
      return exit_failed;
    }
    if (*r != e.digest) {
      std::cerr << "registryd mirror push: " << dest->registry << " stored " << reference << " as " << r->str()
                << ", not " << e.digest.str() << "\n";
      return exit_failed;
    }
    std::cerr << "mirror push: " << dest->repository << ":" << reference << " -> " << e.digest.str() << "\n";
    if (tag) ++tags;
  }
  std::cout << "pushed " << args.bundle << " to " << dest->registry << "/" << dest->repository << ": " << tags
            << " tag(s), " << ms.size() << " manifest(s), " << content.blobs.size() << " blob(s)\n";
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

  return [sub, pull_cmd, pa, ua]() -> int {
    if (pull_cmd->parsed()) return pull(*pa);
    (void)sub;
    return push(*ua);
  };
}

}  // namespace registryd::cli
