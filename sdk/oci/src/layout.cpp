#include <registryd/oci/layout.hpp>

#include <registryd/oci/media_types.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace registryd::oci {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr std::size_t io_buffer = 256 * 1024;

std::string errno_text(int e) { return std::strerror(e); }

error io_error(std::string_view what, const fs::path& p, int e) {
  return error{std::string(what) + " " + p.string() + ": " + errno_text(e)};
}

status fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open directory", dir, errno);
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0) return io_error("cannot fsync directory", dir, e);
  return ok();
}

status write_all(int fd, std::string_view bytes, const fs::path& p) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write", p, errno);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok();
}

// A name for a temporary file that no other writer in this or another process picks.
std::string unique_suffix() {
  static std::atomic<unsigned> counter{0};
  return std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

std::string human_size(std::uint64_t n) { return std::to_string(n) + " bytes"; }

}  // namespace

status write_file_atomic(const fs::path& file, std::string_view bytes) {
  // Built by appending: `"." + string` trips GCC 12's -Wrestrict false positive at -O3.
  std::string leaf(1, '.');
  leaf.append(file.filename().string()).append(".tmp-").append(unique_suffix());
  const fs::path tmp = file.parent_path() / leaf;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot create", tmp, errno);
  auto st = write_all(fd, bytes, tmp);
  if (st && ::fsync(fd) != 0) st = io_error("cannot fsync", tmp, errno);
  ::close(fd);
  if (st && ::rename(tmp.c_str(), file.c_str()) != 0) st = io_error("cannot rename onto", file, errno);
  if (!st) {
    ::unlink(tmp.c_str());
    return st;
  }
  return fsync_dir(file.parent_path().empty() ? fs::path(".") : file.parent_path());
}

// ---- blob_file_reader ----

blob_file_reader::blob_file_reader(blob_file_reader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), size_(other.size_) {}

blob_file_reader& blob_file_reader::operator=(blob_file_reader&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
  }
  return *this;
}

blob_file_reader::~blob_file_reader() {
  if (fd_ >= 0) ::close(fd_);
}

std::ptrdiff_t blob_file_reader::read(char* buffer, std::size_t capacity) {
  for (;;) {
    const ssize_t n = ::read(fd_, buffer, capacity);
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

bool blob_file_reader::rewind() { return ::lseek(fd_, 0, SEEK_SET) == 0; }

// ---- blob_writer ----

blob_writer::blob_writer(blob_writer&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      partial_(std::move(other.partial_)),
      final_(std::move(other.final_)),
      expected_(std::move(other.expected_)),
      size_(other.size_),
      offset_(other.offset_),
      hasher_(std::move(other.hasher_)) {}

blob_writer& blob_writer::operator=(blob_writer&& other) noexcept {
  if (this != &other) {
    close_fd();
    fd_ = std::exchange(other.fd_, -1);
    partial_ = std::move(other.partial_);
    final_ = std::move(other.final_);
    expected_ = std::move(other.expected_);
    size_ = other.size_;
    offset_ = other.offset_;
    hasher_ = std::move(other.hasher_);
  }
  return *this;
}

blob_writer::~blob_writer() { close_fd(); }

void blob_writer::close_fd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

status blob_writer::write(std::string_view piece) {
  if (fd_ < 0) return error{"blob writer is closed"};
  if (size_ && offset_ + piece.size() > *size_) {
    return error{"blob " + expected_->str() + " is longer than its " + human_size(*size_)};
  }
  auto st = write_all(fd_, piece, partial_);
  if (!st) return st;
  hasher_->update(piece);
  offset_ += piece.size();
  return ok();
}

status blob_writer::restart() {
  if (fd_ < 0) return error{"blob writer is closed"};
  if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0) {
    return io_error("cannot truncate", partial_, errno);
  }
  hasher_.emplace(expected_->algorithm());
  offset_ = 0;
  return ok();
}

status blob_writer::commit() {
  if (fd_ < 0) return error{"blob writer is closed"};
  if (size_ && offset_ != *size_) {
    return error{"blob " + expected_->str() + " is " + human_size(offset_) + ", expected " +
                 human_size(*size_)};
  }
  const digest got = hasher_->current();
  if (got != *expected_) {
    discard();
    return error{"blob " + expected_->str() + " does not match its digest: the bytes hash to " +
                 got.str()};
  }
  if (::fsync(fd_) != 0) return io_error("cannot fsync", partial_, errno);
  close_fd();
  if (::rename(partial_.c_str(), final_.c_str()) != 0) return io_error("cannot publish", final_, errno);
  return fsync_dir(final_.parent_path());
}

void blob_writer::discard() {
  close_fd();
  if (!partial_.empty()) ::unlink(partial_.c_str());
}

// ---- image_layout ----

image_layout::image_layout(image_layout&& other) noexcept
    : root_(std::move(other.root_)), lock_fd_(std::exchange(other.lock_fd_, -1)) {}

image_layout& image_layout::operator=(image_layout&& other) noexcept {
  if (this != &other) {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    root_ = std::move(other.root_);
    lock_fd_ = std::exchange(other.lock_fd_, -1);
  }
  return *this;
}

image_layout::~image_layout() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

result<image_layout> image_layout::open(const fs::path& root, bool create) {
  std::error_code ec;
  const fs::path marker = root / "oci-layout";
  const fs::path index = root / "index.json";
  if (create) {
    fs::create_directories(root / "blobs" / "sha256", ec);
    if (ec) return error{"cannot create " + (root / "blobs" / "sha256").string() + ": " + ec.message()};
    if (!fs::exists(marker, ec)) {
      auto st = write_file_atomic(marker, R"({"imageLayoutVersion": "1.0.0"})");
      if (!st) return error{st.error_message()};
    }
    if (!fs::exists(index, ec)) {
      image_layout tmp(root);
      auto st = tmp.write_index({});
      if (!st) return error{st.error_message()};
    }
  }
  if (!fs::is_directory(root, ec)) return error{root.string() + " is not a directory"};
  const int fd = ::open(marker.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return error{root.string() + " is not an OCI image layout: " + marker.string() + ": " +
                 errno_text(errno)};
  }
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 65536;) {
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const json doc = json::parse(text, nullptr, false);
  if (!doc.is_object() || !doc.contains("imageLayoutVersion") || !doc["imageLayoutVersion"].is_string()) {
    return error{marker.string() + " does not state an imageLayoutVersion"};
  }
  if (doc["imageLayoutVersion"].get<std::string>() != image_layout_version) {
    return error{marker.string() + ": imageLayoutVersion " + doc["imageLayoutVersion"].get<std::string>() +
                 " is not supported (only 1.0.0)"};
  }
  return image_layout(root);
}

status image_layout::lock() {
  if (lock_fd_ >= 0) return ok();
  const fs::path marker = root_ / "oci-layout";
  const int fd = ::open(marker.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open", marker, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) return error{root_.string() + " is in use by another registryd process"};
    return io_error("cannot lock", marker, e);
  }
  lock_fd_ = fd;
  return ok();
}

fs::path image_layout::blob_path(const digest& d) const {
  return root_ / "blobs" / std::string(d.algorithm_name()) / std::string(d.hex());
}

bool image_layout::has_blob(const digest& d, std::optional<std::uint64_t> size) const {
  struct stat st {};
  if (::stat(blob_path(d).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  return !size || static_cast<std::uint64_t>(st.st_size) == *size;
}

status image_layout::verify_blob(const digest& d, std::optional<std::uint64_t> size) const {
  const fs::path p = blob_path(d);
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return error{"blob " + d.str() + " is missing"};
  if (size && static_cast<std::uint64_t>(st.st_size) != *size) {
    return error{"blob " + d.str() + " is " + human_size(static_cast<std::uint64_t>(st.st_size)) +
                 ", expected " + human_size(*size)};
  }
  const auto got = digest_of_file(p, d.algorithm());
  if (!got) return error{"blob " + d.str() + " cannot be read"};
  if (*got != d) return error{"blob " + d.str() + " is corrupt: its bytes hash to " + got->str()};
  return ok();
}

status image_layout::put_blob(const digest& d, std::string_view bytes) {
  auto w = write_blob(d, bytes.size());
  if (!w) return error{w.error_message()};
  if (w->offset() != 0) {
    auto st = w->restart();
    if (!st) return st;
  }
  auto st = w->write(bytes);
  if (!st) return st;
  return w->commit();
}

result<std::string> image_layout::read_blob(const digest& d, std::size_t max_size) const {
  auto r = open_blob(d);
  if (!r) return error{r.error_message()};
  if (r->size() > max_size) {
    return error{"blob " + d.str() + " is " + human_size(r->size()) + ", more than the " +
                 human_size(max_size) + " a document may have"};
  }
  std::string out(static_cast<std::size_t>(r->size()), '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    const auto n = r->read(out.data() + got, out.size() - got);
    if (n <= 0) return error{"blob " + d.str() + " cannot be read"};
    got += static_cast<std::size_t>(n);
  }
  const digest actual = digest_of(out, d.algorithm());
  if (actual != d) return error{"blob " + d.str() + " is corrupt: its bytes hash to " + actual.str()};
  return out;
}

result<blob_file_reader> image_layout::open_blob(const digest& d) const {
  const fs::path p = blob_path(d);
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return error{"blob " + d.str() + " is missing"};
    return io_error("cannot open", p, errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return io_error("cannot stat", p, e);
  }
  return blob_file_reader(fd, static_cast<std::uint64_t>(st.st_size));
}

result<blob_writer> image_layout::write_blob(const digest& d, std::optional<std::uint64_t> size) {
  const fs::path dir = root_ / "blobs" / std::string(d.algorithm_name());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return error{"cannot create " + dir.string() + ": " + ec.message()};

  blob_writer w;
  w.final_ = dir / std::string(d.hex());
  w.partial_ = dir / (".partial-" + std::string(d.hex()));
  w.expected_ = d;
  w.size_ = size;
  w.hasher_.emplace(d.algorithm());
  w.fd_ = ::open(w.partial_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (w.fd_ < 0) return io_error("cannot create", w.partial_, errno);

  // Resume: hash what an earlier write left, unless it cannot be part of this blob.
  std::vector<char> buf(io_buffer);
  for (;;) {
    const ssize_t n = ::read(w.fd_, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot read", w.partial_, errno);
    if (n == 0) break;
    w.hasher_->update(buf.data(), static_cast<std::size_t>(n));
    w.offset_ += static_cast<std::uint64_t>(n);
  }
  if (size && w.offset_ > *size) {
    auto st = w.restart();
    if (!st) return error{st.error_message()};
  }
  return w;
}

result<std::vector<descriptor>> image_layout::read_index() const {
  const fs::path p = root_ / "index.json";
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open", p, errno);
  std::string text;
  std::vector<char> buf(65536);
  bool too_big = false;
  for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) > 0;) {
    text.append(buf.data(), static_cast<std::size_t>(n));
    if (text.size() > 64 * max_manifest_size) {
      too_big = true;
      break;
    }
  }
  ::close(fd);
  if (too_big) return error{p.string() + " is too large"};
  const json doc = json::parse(text, nullptr, false);
  if (!doc.is_object()) return error{p.string() + " is not a JSON object"};
  const auto it = doc.find("manifests");
  if (it == doc.end() || !it->is_array()) return error{p.string() + " has no manifests array"};
  std::vector<descriptor> out;
  for (std::size_t i = 0; i < it->size(); ++i) {
    auto d = descriptor::from_json((*it)[i], "index.json manifests[" + std::to_string(i) + "]");
    if (!d) return error{d.error_message()};
    out.push_back(std::move(*d));
  }
  return out;
}

status image_layout::write_index(const std::vector<descriptor>& entries) const {
  json doc = json::object();
  doc["schemaVersion"] = 2;
  doc["mediaType"] = media_type::oci_index;
  doc["manifests"] = json::array();
  for (const auto& e : entries) doc["manifests"].push_back(e.to_json());
  return write_file_atomic(root_ / "index.json", doc.dump());
}

std::optional<std::string> ref_name(const descriptor& entry) {
  const auto it = entry.annotations.find(std::string(media_type::annotation_ref_name));
  if (it == entry.annotations.end()) return std::nullopt;
  return it->second;
}

void set_ref_name(std::vector<descriptor>& entries, const std::string& tag, descriptor target) {
  target.annotations[std::string(media_type::annotation_ref_name)] = tag;
  bool placed = false;
  for (auto it = entries.begin(); it != entries.end();) {
    if (ref_name(*it) == tag) {
      if (!placed) {
        *it = target;
        placed = true;
        ++it;
      } else {
        it = entries.erase(it);
      }
    } else {
      ++it;
    }
  }
  if (!placed) entries.push_back(std::move(target));
}

}  // namespace registryd::oci
