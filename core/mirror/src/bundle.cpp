#include <registryd/mirror/bundle.hpp>

#include <registryd/oci/media_types.hpp>
#include <registryd/oci/reference.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <deque>
#include <fcntl.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace registryd::mirror {
// Bundles are image layouts: written with the SDK's OCI pieces throughout.
using namespace oci;

namespace {

namespace fs = std::filesystem;

constexpr std::size_t io_buffer = 256 * 1024;
// index.json of a bundle with every tag of a large repository stays far below this.
constexpr std::size_t max_index_size = 64 * max_manifest_size;

std::string errno_text(int e) { return std::strerror(e); }

// "blobs/sha256/<hex>" (with or without a leading "./") -> the digest; nullopt otherwise.
std::optional<digest> digest_of_entry(std::string_view name) {
  if (name.substr(0, 2) == "./") name.remove_prefix(2);
  if (name.substr(0, 6) != "blobs/") return std::nullopt;
  name.remove_prefix(6);
  const auto slash = name.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  return digest::parse(std::string(name.substr(0, slash)) + ":" + std::string(name.substr(slash + 1)));
}

std::string entry_name(std::string_view name) {
  if (name.substr(0, 2) == "./") name.remove_prefix(2);
  return std::string(name);
}

std::string blob_entry_name(const digest& d) {
  return "blobs/" + std::string(d.algorithm_name()) + "/" + std::string(d.hex());
}

// Walks manifests from `roots`, parents before children, with the documents `docs` knows.
// Fills `out` and returns the digests it needed but `docs` lacks.
struct walk_result {
  std::vector<descriptor> missing;
};

result<walk_result> walk(const std::vector<descriptor>& roots,
                         const std::function<std::optional<std::string>(const descriptor&)>& docs,
                         manifest_set& out) {
  out.manifests.clear();
  out.blobs.clear();
  walk_result w;
  std::set<digest> seen;
  std::set<digest> seen_blobs;
  std::deque<std::pair<descriptor, int>> queue;
  for (const auto& r : roots) queue.emplace_back(r, 0);
  while (!queue.empty()) {
    auto [d, depth] = std::move(queue.front());
    queue.pop_front();
    if (!seen.insert(d.digest).second) continue;
    if (depth > 8) return error{"manifest " + d.digest.str() + " is nested too deep"};
    auto bytes = docs(d);
    if (!bytes) {
      w.missing.push_back(d);
      continue;
    }
    if (d.size >= 0 && static_cast<std::uint64_t>(d.size) != bytes->size()) {
      return error{"manifest " + d.digest.str() + " is " + std::to_string(bytes->size()) +
                   " bytes, its descriptor says " + std::to_string(d.size)};
    }
    auto m = parse_manifest(*bytes, d.media_type);
    if (!m) return error{"manifest " + d.digest.str() + ": " + m.error_message()};
    for (const auto& child : m->children()) queue.emplace_back(child, depth + 1);
    for (const auto& b : m->blobs()) {
      if (!b.urls.empty() && is_non_distributable_media_type(b.media_type)) continue;
      if (seen_blobs.insert(b.digest).second) out.blobs.push_back(b);
    }
    out.manifests.push_back(manifest_set::entry{std::move(d), std::move(*bytes), std::move(*m)});
  }
  // A blob that is also a manifest (never in practice) is written once, as a manifest.
  std::erase_if(out.blobs, [&](const descriptor& b) { return seen.count(b.digest) != 0; });
  return w;
}

// ---- writing: a byte stream split into chunk files ----

struct chunk_sink {
  fs::path bundle;
  std::optional<std::uint64_t> chunk_size;
  std::vector<fs::path> temps;
  int fd = -1;
  std::uint64_t in_current = 0;
  std::string error;

  fs::path temp_name(std::size_t index) const {
    const fs::path final = chunk_size ? chunk_path(bundle, index) : bundle;
    return final.parent_path() / ("." + final.filename().string() + ".partial");
  }

  bool open_next() {
    if (fd >= 0 && !close_current()) return false;
    if (temps.size() >= max_bundle_chunks) {
      error = "more than " + std::to_string(max_bundle_chunks) + " chunks: choose a larger chunk size";
      return false;
    }
    const fs::path p = temp_name(temps.size());
    fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      error = "cannot create " + p.string() + ": " + errno_text(errno);
      return false;
    }
    temps.push_back(p);
    in_current = 0;
    return true;
  }

  bool close_current() {
    if (fd < 0) return true;
    const bool synced = ::fsync(fd) == 0;
    const int e = errno;
    ::close(fd);
    fd = -1;
    if (!synced) {
      error = "cannot fsync " + temps.back().string() + ": " + errno_text(e);
      return false;
    }
    return true;
  }

  bool write(const char* data, std::size_t n) {
    while (n > 0) {
      if (fd < 0 || (chunk_size && in_current == *chunk_size)) {
        if (!open_next()) return false;
      }
      std::size_t take = n;
      if (chunk_size) take = static_cast<std::size_t>(std::min<std::uint64_t>(n, *chunk_size - in_current));
      const ssize_t w = ::write(fd, data, take);
      if (w < 0) {
        if (errno == EINTR) continue;
        error = "cannot write " + temps.back().string() + ": " + errno_text(errno);
        return false;
      }
      data += w;
      n -= static_cast<std::size_t>(w);
      in_current += static_cast<std::uint64_t>(w);
    }
    return true;
  }

  void abandon() {
    if (fd >= 0) ::close(fd);
    fd = -1;
    for (const auto& t : temps) ::unlink(t.c_str());
  }
};

la_ssize_t sink_write(struct archive*, void* client, const void* buffer, size_t length) {
  auto* sink = static_cast<chunk_sink*>(client);
  if (!sink->write(static_cast<const char*>(buffer), length)) return -1;
  return static_cast<la_ssize_t>(length);
}

// Removes `bundle` and every `<bundle>.chunk-NNNN`.
void remove_previous_bundle(const fs::path& bundle) {
  std::error_code ec;
  fs::remove(bundle, ec);
  const std::string prefix = bundle.filename().string() + ".chunk-";
  const fs::path dir = bundle.parent_path().empty() ? fs::path(".") : bundle.parent_path();
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
        std::all_of(name.begin() + static_cast<std::ptrdiff_t>(prefix.size()), name.end(),
                    [](char c) { return c >= '0' && c <= '9'; })) {
      fs::remove(e.path(), ec);
    }
  }
}

class tar_writer {
 public:
  explicit tar_writer(chunk_sink& sink) : a_(archive_write_new()) {
    archive_write_set_format_pax_restricted(a_);
    if (archive_write_open(a_, &sink, nullptr, sink_write, nullptr) != ARCHIVE_OK) failed_ = true;
  }
  ~tar_writer() { archive_write_free(a_); }
  tar_writer(const tar_writer&) = delete;
  tar_writer& operator=(const tar_writer&) = delete;

  status directory(const std::string& name) { return header(name, AE_IFDIR, 0755, 0); }

  status file(const std::string& name, std::string_view bytes) {
    auto st = header(name, AE_IFREG, 0644, bytes.size());
    if (!st) return st;
    return data(bytes);
  }

  status header(const std::string& name, unsigned type, int perm, std::uint64_t size) {
    if (failed_) return error{message()};
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, static_cast<mode_t>(perm));
    archive_entry_set_size(e, static_cast<la_int64_t>(size));
    archive_entry_set_mtime(e, std::time(nullptr), 0);
    const int rc = archive_write_header(a_, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK) return error{"cannot write the tar entry " + name + ": " + message()};
    return ok();
  }

  status data(std::string_view bytes) {
    while (!bytes.empty()) {
      const la_ssize_t n = archive_write_data(a_, bytes.data(), bytes.size());
      if (n <= 0) return error{"cannot write to the bundle: " + message()};
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return ok();
  }

  status finish() {
    if (archive_write_close(a_) != ARCHIVE_OK) return error{"cannot finish the bundle: " + message()};
    return ok();
  }

 private:
  std::string message() const {
    const char* m = archive_error_string(a_);
    return m ? m : "unknown libarchive error";
  }
  archive* a_;
  bool failed_ = false;
};

// ---- reading: chunk files as one stream ----

struct chunk_source {
  std::vector<fs::path> files;
  std::size_t current = 0;
  int fd = -1;
  std::vector<char> buffer = std::vector<char>(io_buffer);
  std::string error;

  ~chunk_source() {
    if (fd >= 0) ::close(fd);
  }

  bool ensure_open() {
    while (fd < 0) {
      if (current >= files.size()) return false;
      fd = ::open(files[current].c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        error = "cannot open " + files[current].string() + ": " + errno_text(errno);
        return false;
      }
    }
    return true;
  }

  void next_file() {
    ::close(fd);
    fd = -1;
    ++current;
  }
};

la_ssize_t source_read(struct archive* a, void* client, const void** out) {
  auto* s = static_cast<chunk_source*>(client);
  for (;;) {
    if (!s->ensure_open()) {
      if (!s->error.empty()) {
        archive_set_error(a, EIO, "%s", s->error.c_str());
        return -1;
      }
      return 0;
    }
    const ssize_t n = ::read(s->fd, s->buffer.data(), s->buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      s->error = "cannot read " + s->files[s->current].string() + ": " + errno_text(errno);
      archive_set_error(a, EIO, "%s", s->error.c_str());
      return -1;
    }
    if (n == 0) {
      s->next_file();
      continue;
    }
    *out = s->buffer.data();
    return n;
  }
}

la_int64_t source_skip(struct archive*, void* client, la_int64_t request) {
  auto* s = static_cast<chunk_source*>(client);
  la_int64_t skipped = 0;
  while (skipped < request) {
    if (!s->ensure_open()) break;
    const off_t pos = ::lseek(s->fd, 0, SEEK_CUR);
    const off_t end = ::lseek(s->fd, 0, SEEK_END);
    if (pos < 0 || end < 0) return skipped;
    const la_int64_t room = end - pos;
    const la_int64_t take = std::min<la_int64_t>(room, request - skipped);
    if (::lseek(s->fd, pos + take, SEEK_SET) < 0) return skipped;
    skipped += take;
    if (take == room) s->next_file();
  }
  return skipped;
}

// One pass over a tar bundle.
class tar_pass {
 public:
  explicit tar_pass(const std::vector<fs::path>& files) : a_(archive_read_new()) {
    source_.files = files;
    archive_read_support_format_tar(a_);
    archive_read_support_format_gnutar(a_);
    archive_read_support_filter_all(a_);
    archive_read_set_read_callback(a_, source_read);
    archive_read_set_skip_callback(a_, source_skip);
    archive_read_set_callback_data(a_, &source_);
    if (archive_read_open1(a_) != ARCHIVE_OK) open_error_ = message();
  }
  ~tar_pass() { archive_read_free(a_); }
  tar_pass(const tar_pass&) = delete;
  tar_pass& operator=(const tar_pass&) = delete;

  // The next entry; nullopt at the end (check error()).
  std::optional<std::pair<std::string, std::uint64_t>> next() {
    if (!open_error_.empty()) {
      error_ = open_error_;
      return std::nullopt;
    }
    archive_entry* e = nullptr;
    const int rc = archive_read_next_header(a_, &e);
    if (rc == ARCHIVE_EOF) return std::nullopt;
    if (rc < ARCHIVE_WARN) {
      error_ = "the bundle is not a readable tar: " + message();
      return std::nullopt;
    }
    const char* name = archive_entry_pathname(e);
    last_entry_ = entry_name(name ? name : "");
    return std::make_pair(last_entry_, static_cast<std::uint64_t>(std::max<la_int64_t>(0, archive_entry_size(e))));
  }

  // The current entry's data, at most `max` bytes.
  result<std::string> read_all(std::size_t max, const std::string& what) {
    std::string out;
    std::vector<char> buf(65536);
    for (;;) {
      const la_ssize_t n = archive_read_data(a_, buf.data(), buf.size());
      if (n == 0) return out;
      if (n < 0) return oci::error{"cannot read " + what + " from the bundle: " + message()};
      out.append(buf.data(), static_cast<std::size_t>(n));
      if (out.size() > max) return oci::error{what + " in the bundle is larger than " + std::to_string(max) + " bytes"};
    }
  }

  la_ssize_t read(char* buffer, std::size_t capacity) { return archive_read_data(a_, buffer, capacity); }

  const std::string& error() const { return error_; }
  // libarchive's words, with where in the bundle it happened and, for a bundle that ends
  // early, what that means.
  std::string message() const {
    const char* m = archive_error_string(a_);
    std::string text = m ? m : "unknown libarchive error";
    if (!last_entry_.empty()) text += " (at the entry " + last_entry_ + ")";
    if (text.find("runcated") != std::string::npos || text.find("unexpected end") != std::string::npos ||
        text.find("Premature end") != std::string::npos) {
      text += ": the bundle ends early; a file or chunk of it is cut short or missing (compare the sizes with "
              "the copy it came from, or pull it again)";
    }
    return text;
  }

 private:
  archive* a_;
  chunk_source source_;
  std::string last_entry_;  // the entry being read, for errors
  std::string open_error_;
  std::string error_;
};

// Hashes what passes through and refuses to end a blob whose bytes do not match.
class verifying_stream : public blob_stream {
 public:
  explicit verifying_stream(const descriptor& d) : d_(d), hasher_(d.digest.algorithm()) {}

  std::ptrdiff_t read(char* buffer, std::size_t capacity) override {
    if (failed_) return -1;
    const std::ptrdiff_t n = raw_read(buffer, capacity);
    if (n < 0) {
      failed_ = true;
      if (error_.empty()) error_ = "cannot read blob " + d_.digest.str() + " from the bundle";
      return -1;
    }
    if (n == 0) {
      if (seen_ != static_cast<std::uint64_t>(d_.size)) {
        return fail("blob " + d_.digest.str() + " in the bundle is " + std::to_string(seen_) +
                    " bytes, its descriptor says " + std::to_string(d_.size));
      }
      if (seen_ == 0 && hasher_.current() != d_.digest) {  // an empty blob never reached the check below
        return fail("blob " + d_.digest.str() + " in the bundle is corrupt: it is empty");
      }
      return 0;  // verified when the last byte arrived
    }
    seen_ += static_cast<std::uint64_t>(n);
    if (seen_ > static_cast<std::uint64_t>(d_.size)) {
      return fail("blob " + d_.digest.str() + " in the bundle is longer than its descriptor's " +
                  std::to_string(d_.size) + " bytes");
    }
    hasher_.update(buffer, static_cast<std::size_t>(n));
    // A consumer that knows the length (an upload with Content-Length) stops asking after the
    // last byte, so the check happens before the last piece is handed over, not at the 0.
    if (seen_ == static_cast<std::uint64_t>(d_.size)) {
      const digest got = hasher_.current();
      if (got != d_.digest) {
        return fail("blob " + d_.digest.str() + " in the bundle is corrupt: its bytes hash to " + got.str());
      }
    }
    return n;
  }

  bool rewind() override {
    if (!raw_rewind()) return false;
    hasher_ = hasher(d_.digest.algorithm());
    seen_ = 0;
    failed_ = false;
    error_.clear();
    return true;
  }

  const std::string& error() const override { return error_; }

 protected:
  virtual std::ptrdiff_t raw_read(char* buffer, std::size_t capacity) = 0;
  virtual bool raw_rewind() = 0;
  std::string error_;

 private:
  std::ptrdiff_t fail(std::string message) {
    failed_ = true;
    error_ = std::move(message);
    return -1;
  }
  const descriptor& d_;
  hasher hasher_;
  std::uint64_t seen_ = 0;
  bool failed_ = false;
};

class tar_blob_stream final : public verifying_stream {
 public:
  tar_blob_stream(const descriptor& d, tar_pass& pass) : verifying_stream(d), pass_(pass) {}

 protected:
  std::ptrdiff_t raw_read(char* buffer, std::size_t capacity) override {
    const auto n = pass_.read(buffer, capacity);
    if (n < 0) error_ = "cannot read the bundle: " + pass_.message();
    return n;
  }
  bool raw_rewind() override { return false; }

 private:
  tar_pass& pass_;
};

class file_blob_stream final : public verifying_stream {
 public:
  file_blob_stream(const descriptor& d, blob_file_reader reader)
      : verifying_stream(d), reader_(std::move(reader)) {}

 protected:
  std::ptrdiff_t raw_read(char* buffer, std::size_t capacity) override {
    return reader_.read(buffer, capacity);
  }
  bool raw_rewind() override { return reader_.rewind(); }

 private:
  blob_file_reader reader_;
};

}  // namespace

fs::path chunk_path(const fs::path& bundle, std::size_t index) {
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".chunk-%04zu", index);
  return fs::path(bundle.string() + suffix);
}

result<std::vector<fs::path>> bundle_files(const fs::path& given) {
  std::error_code ec;
  fs::path bundle = given;
  // A path naming one chunk stands for the set.
  const std::string s = given.string();
  if (const auto at = s.rfind(".chunk-"); at != std::string::npos && !fs::is_regular_file(bundle.string() + ".chunk-0000", ec)) {
    const std::string digits = s.substr(at + 7);
    if (!digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      bundle = s.substr(0, at);
    }
  }
  if (fs::is_regular_file(bundle, ec)) return std::vector<fs::path>{bundle};
  std::vector<fs::path> files;
  while (fs::is_regular_file(chunk_path(bundle, files.size()), ec)) {
    files.push_back(chunk_path(bundle, files.size()));
    if (files.size() > max_bundle_chunks) break;
  }
  if (files.empty()) return error{"no bundle at " + bundle.string() + " (nor its chunks " + chunk_path(bundle, 0).string() + ", ...)"};
  // A gap (chunk 3 missing while 4 exists) would silently cut the tar short.
  const std::string prefix = bundle.filename().string() + ".chunk-";
  const fs::path dir = bundle.parent_path().empty() ? fs::path(".") : bundle.parent_path();
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    std::size_t n = 0;
    const auto* first = name.data() + prefix.size();
    const auto* last = name.data() + name.size();
    if (auto [p, err] = std::from_chars(first, last, n); err == std::errc() && p == last && n >= files.size()) {
      return error{"chunk " + chunk_path(bundle, files.size()).string() + " is missing, but " + e.path().string() + " exists"};
    }
  }
  return files;
}

const manifest_set::entry* manifest_set::find(const digest& d) const {
  for (const auto& e : manifests) {
    if (e.of.digest == d) return &e;
  }
  return nullptr;
}

result<manifest_set> manifest_set::subset(const std::vector<descriptor>& roots) const {
  manifest_set out;
  auto w = walk(roots, [&](const descriptor& d) -> std::optional<std::string> {
    const auto* e = find(d.digest);
    return e != nullptr ? std::optional<std::string>(e->bytes) : std::nullopt;
  }, out);
  if (!w) return error{w.error_message()};
  if (!w->missing.empty()) return error{"manifest " + w->missing.front().digest.str() + " is not in the bundle"};
  return out;
}

std::optional<std::string> ref_name_of(const bundle_name& name, const digest& d) {
  if (name.repository.empty()) return name.tag;
  return name.repository + (name.tag ? ":" + *name.tag : "@" + d.str());
}

bundle_name bundle_name_of(const descriptor& entry, std::string* note) {
  const auto ref = oci::ref_name(entry);
  if (!ref) return {};
  if (oci::is_valid_tag(*ref)) return {"", *ref};
  if (const auto at = ref->find('@'); at != std::string::npos) {
    const std::string repo = ref->substr(0, at);
    if (oci::is_valid_repository_name(repo) && digest::parse(ref->substr(at + 1)) == entry.digest) {
      return {repo, std::nullopt};
    }
  } else if (const auto colon = ref->rfind(':'); colon != std::string::npos) {
    const std::string repo = ref->substr(0, colon);
    const std::string tag = ref->substr(colon + 1);
    if (oci::is_valid_repository_name(repo) && oci::is_valid_tag(tag)) return {repo, tag};
  }
  if (note != nullptr) {
    *note = "index entry " + entry.digest.str() + " is named '" + *ref + "', neither a tag nor repository:tag: kept by digest";
  }
  return {};
}

std::optional<std::string> relative_repository(const std::string& root, const std::string& repository) {
  if (repository == root) return std::string();
  if (root.empty()) return repository;
  if (repository.size() > root.size() + 1 && repository.compare(0, root.size(), root) == 0 &&
      repository[root.size()] == '/') {
    return repository.substr(root.size() + 1);
  }
  return std::nullopt;
}

result<manifest_set> collect_manifests(const image_layout& layout, const std::vector<descriptor>& roots) {
  manifest_set out;
  std::string read_error;
  auto w = walk(roots, [&](const descriptor& d) -> std::optional<std::string> {
    auto bytes = layout.read_blob(d.digest);
    if (!bytes) {
      if (read_error.empty()) read_error = bytes.error_message();
      return std::nullopt;
    }
    return std::move(*bytes);
  }, out);
  if (!w) return error{w.error_message()};
  if (!w->missing.empty()) return error{"manifest " + w->missing.front().digest.str() + ": " + read_error};
  return out;
}

status write_bundle(const image_layout& layout, const fs::path& bundle, const bundle_write_options& options) {
  if (options.chunk_size && *options.chunk_size == 0) return error{"the chunk size must be positive"};
  auto index = layout.read_index();
  if (!index) return error{index.error_message()};
  auto content = collect_manifests(layout, *index);
  if (!content) return error{content.error_message()};

  std::uint64_t total = 0;
  for (const auto& b : content->blobs) total += static_cast<std::uint64_t>(b.size);
  std::uint64_t done = 0;

  chunk_sink sink;
  sink.bundle = bundle;
  sink.chunk_size = options.chunk_size;
  auto run = [&]() -> status {
    tar_writer tar(sink);
    auto read_small = [&](const char* name) -> result<std::string> {
      const fs::path p = layout.root() / name;
      const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return error{"cannot open " + p.string() + ": " + errno_text(errno)};
      std::string text;
      char buf[65536];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
      ::close(fd);
      if (text.size() > max_index_size) return error{p.string() + " is too large"};
      return text;
    };
    for (const char* name : {"oci-layout", "index.json"}) {
      auto text = read_small(name);
      if (!text) return error{text.error_message()};
      auto st = tar.file(name, *text);
      if (!st) return st;
    }
    auto st = tar.directory("blobs/");
    if (!st) return st;
    std::set<std::string> algorithms;
    for (const auto& m : content->manifests) algorithms.insert(std::string(m.of.digest.algorithm_name()));
    for (const auto& b : content->blobs) algorithms.insert(std::string(b.digest.algorithm_name()));
    for (const auto& alg : algorithms) {
      st = tar.directory("blobs/" + alg + "/");
      if (!st) return st;
    }
    for (const auto& m : content->manifests) {
      st = tar.file(blob_entry_name(m.of.digest), m.bytes);
      if (!st) return st;
    }
    std::vector<char> buf(io_buffer);
    for (const auto& b : content->blobs) {
      auto r = layout.open_blob(b.digest);
      if (!r) return error{r.error_message()};
      if (r->size() != static_cast<std::uint64_t>(b.size)) {
        return error{"blob " + b.digest.str() + " in " + layout.root().string() + " is " +
                     std::to_string(r->size()) + " bytes, its descriptor says " + std::to_string(b.size)};
      }
      file_blob_stream in(b, std::move(*r));
      st = tar.header(blob_entry_name(b.digest), AE_IFREG, 0644, static_cast<std::uint64_t>(b.size));
      if (!st) return st;
      for (;;) {
        const auto n = in.read(buf.data(), buf.size());
        if (n < 0) return error{in.error()};
        if (n == 0) break;
        st = tar.data(std::string_view(buf.data(), static_cast<std::size_t>(n)));
        if (!st) return st;
        done += static_cast<std::uint64_t>(n);
        if (options.progress) options.progress(done, total);
      }
    }
    return tar.finish();
  };
  auto st = run();
  if (st && !sink.close_current()) st = error{sink.error};
  if (!st) {
    std::string message = sink.error.empty() ? st.error_message() : sink.error;
    sink.abandon();
    return error{std::move(message)};
  }
  if (sink.temps.empty()) {  // cannot happen: a tar is never empty; keep the invariant anyway
    return error{"the bundle came out empty"};
  }
  remove_previous_bundle(bundle);
  for (std::size_t i = 0; i < sink.temps.size(); ++i) {
    const fs::path final = options.chunk_size ? chunk_path(bundle, i) : bundle;
    if (::rename(sink.temps[i].c_str(), final.c_str()) != 0) {
      const int e = errno;
      sink.abandon();
      return error{"cannot rename " + sink.temps[i].string() + " to " + final.string() + ": " + errno_text(e)};
    }
  }
  const fs::path dir = bundle.parent_path().empty() ? fs::path(".") : bundle.parent_path();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return ok();
}

// ---- bundle_reader ----

struct bundle_reader::impl {
  std::optional<image_layout> layout;  // a layout directory
  std::vector<fs::path> files;         // a tar or its chunks
  std::vector<descriptor> index;
  manifest_set content;

  status open_tar() {
    std::map<digest, std::string> docs;
    std::optional<std::string> index_text;
    bool saw_layout_marker = false;
    std::set<digest> wanted;  // manifests the last walk missed
    for (int pass = 0; pass < 10; ++pass) {
      const bool index_known = index_text.has_value();
      const std::size_t docs_before = docs.size();
      tar_pass tar(files);
      while (auto e = tar.next()) {
        const auto& [name, size] = *e;
        if (name == "oci-layout" && !saw_layout_marker) {
          auto text = tar.read_all(65536, "oci-layout");
          if (!text) return error{text.error_message()};
          const auto doc = nlohmann::json::parse(*text, nullptr, false);
          if (!doc.is_object() || doc.value("imageLayoutVersion", "") != image_layout_version) {
            return error{"the bundle's oci-layout does not state imageLayoutVersion 1.0.0"};
          }
          saw_layout_marker = true;
        } else if (name == "index.json" && !index_text) {
          auto text = tar.read_all(max_index_size, "index.json");
          if (!text) return error{text.error_message()};
          index_text = std::move(*text);
          auto st = parse_index(*index_text);
          if (!st) return st;
          auto w = rewalk(docs);
          if (!w) return error{w.error_message()};
          wanted.clear();
          for (const auto& m : w->missing) wanted.insert(m.digest);
        } else if (auto d = digest_of_entry(name); d && wanted.count(*d) != 0 && docs.count(*d) == 0) {
          if (size > max_manifest_size) return error{"manifest " + d->str() + " in the bundle is larger than 4 MiB"};
          auto bytes = tar.read_all(max_manifest_size, "manifest " + d->str());
          if (!bytes) return error{bytes.error_message()};
          const digest got = digest_of(*bytes, d->algorithm());
          if (got != *d) return error{"manifest " + d->str() + " in the bundle is corrupt: its bytes hash to " + got.str()};
          docs.emplace(*d, std::move(*bytes));
          // Children usually follow their parent in the same pass.
          auto w = rewalk(docs);
          if (!w) return error{w.error_message()};
          wanted.clear();
          for (const auto& m : w->missing) wanted.insert(m.digest);
        }
      }
      if (!tar.error().empty()) return error{tar.error()};
      if (!saw_layout_marker) return error{"the bundle holds no oci-layout: it is not an OCI image layout tar"};
      if (!index_text) return error{"the bundle holds no index.json"};
      auto w = rewalk(docs);
      if (!w) return error{w.error_message()};
      if (w->missing.empty()) return ok();
      // A whole pass that knew what to look for found nothing new: it is not in the bundle.
      if (index_known && docs.size() == docs_before) break;
      wanted.clear();
      for (const auto& m : w->missing) wanted.insert(m.digest);
    }
    auto w = rewalk(docs);
    if (!w) return error{w.error_message()};
    if (w->missing.empty()) return ok();
    return error{"manifest " + w->missing.front().digest.str() + " is missing from the bundle"};
  }

  status parse_index(const std::string& text) {
    const auto doc = nlohmann::json::parse(text, nullptr, false);
    if (!doc.is_object()) return error{"the bundle's index.json is not a JSON object"};
    const auto it = doc.find("manifests");
    if (it == doc.end() || !it->is_array()) return error{"the bundle's index.json has no manifests array"};
    index.clear();
    for (std::size_t i = 0; i < it->size(); ++i) {
      auto d = descriptor::from_json((*it)[i], "index.json manifests[" + std::to_string(i) + "]");
      if (!d) return error{d.error_message()};
      index.push_back(std::move(*d));
    }
    return ok();
  }

  result<walk_result> rewalk(const std::map<digest, std::string>& docs) {
    return walk(index, [&](const descriptor& d) -> std::optional<std::string> {
      const auto it = docs.find(d.digest);
      if (it == docs.end()) return std::nullopt;
      return it->second;
    }, content);
  }
};

bundle_reader::bundle_reader(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
bundle_reader::bundle_reader(bundle_reader&&) noexcept = default;
bundle_reader& bundle_reader::operator=(bundle_reader&&) noexcept = default;
bundle_reader::~bundle_reader() = default;

result<bundle_reader> bundle_reader::open(const fs::path& bundle) {
  auto p = std::make_unique<impl>();
  std::error_code ec;
  if (fs::is_directory(bundle, ec)) {
    auto layout = image_layout::open(bundle);
    if (!layout) return error{layout.error_message()};
    auto index = layout->read_index();
    if (!index) return error{index.error_message()};
    auto content = collect_manifests(*layout, *index);
    if (!content) return error{content.error_message()};
    p->index = std::move(*index);
    p->content = std::move(*content);
    p->layout.emplace(std::move(*layout));
    return bundle_reader(std::move(p));
  }
  auto files = bundle_files(bundle);
  if (!files) return error{files.error_message()};
  p->files = std::move(*files);
  auto st = p->open_tar();
  if (!st) return error{st.error_message()};
  return bundle_reader(std::move(p));
}

std::string bundle_reader::kind() const {
  if (impl_->layout) return "layout directory";
  if (impl_->files.size() == 1 && impl_->files[0].string().find(".chunk-") == std::string::npos) return "tar";
  return "tar in " + std::to_string(impl_->files.size()) + " chunks";
}

const std::vector<descriptor>& bundle_reader::index() const noexcept { return impl_->index; }
const manifest_set& bundle_reader::content() const noexcept { return impl_->content; }

status bundle_reader::for_each_blob(const std::vector<descriptor>& wanted, const blob_fn& fn) {
  if (impl_->layout) {
    for (const auto& b : wanted) {
      auto r = impl_->layout->open_blob(b.digest);
      if (!r) return error{r.error_message() + " (in the bundle " + impl_->layout->root().string() + ")"};
      file_blob_stream body(b, std::move(*r));
      auto st = fn(b, body);
      if (!st) return st;
    }
    return ok();
  }
  std::map<digest, const descriptor*> pending;
  for (const auto& b : wanted) pending.emplace(b.digest, &b);
  if (pending.empty()) return ok();
  tar_pass tar(impl_->files);
  while (auto e = tar.next()) {
    const auto d = digest_of_entry(e->first);
    if (!d) continue;
    const auto it = pending.find(*d);
    if (it == pending.end()) continue;
    const descriptor& b = *it->second;
    tar_blob_stream body(b, tar);
    auto st = fn(b, body);
    if (!st) return st;
    pending.erase(it);
    if (pending.empty()) return ok();
  }
  if (!tar.error().empty()) return error{tar.error()};
  return error{"blob " + pending.begin()->first.str() + " is missing from the bundle"};
}

result<bundle_summary> verify_bundle(const std::filesystem::path& bundle,
                                     const std::function<void(std::uint64_t done, std::uint64_t total)>& progress) {
  auto reader = bundle_reader::open(bundle);  // index.json and every manifest, hashed
  if (!reader) return error{reader.error_message()};
  bundle_summary s;
  s.kind = reader->kind();
  std::set<std::string> repositories;
  for (const auto& e : reader->index()) {
    const auto name = bundle_name_of(e);
    if (name.tag) ++s.tags;
    repositories.insert(name.repository);
  }
  s.repositories = repositories.size();
  s.manifests = reader->content().manifests.size();
  std::uint64_t total = 0;
  for (const auto& b : reader->content().blobs) total += static_cast<std::uint64_t>(b.size);
  std::vector<char> buf(io_buffer);
  auto st = reader->for_each_blob(reader->content().blobs, [&](const descriptor& b, blob_stream& body) -> status {
    for (;;) {
      const auto n = body.read(buf.data(), buf.size());
      if (n < 0) return error{body.error().empty() ? "blob " + b.digest.str() + " cannot be read" : body.error()};
      if (n == 0) break;
      s.bytes += static_cast<std::uint64_t>(n);
      if (progress) progress(s.bytes, total);
    }
    ++s.blobs;
    return ok();
  });
  if (!st) return error{st.error_message()};
  return s;
}

}  // namespace registryd::mirror
