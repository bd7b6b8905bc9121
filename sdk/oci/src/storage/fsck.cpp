#include <registryd/oci/storage/fsck.hpp>
#include <registryd/oci/storage/gc.hpp>

#include "fs_util.hpp"
#include "maintenance.hpp"

#include <registryd/oci/manifest.hpp>
#include <registryd/oci/reference.hpp>

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace registryd::oci::storage {
namespace {

namespace fs = std::filesystem;
using kind = fsck_problem_kind;

bool is_hex(std::string_view s) {
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return !s.empty();
}

bool is_dir(const fs::path& p) {
  struct ::stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const fs::path& p) {
  struct ::stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

struct revision {
  std::string media_type;
  std::uint64_t size = 0;
  std::optional<digest> subject;
};

// The revision file format of repository_store (mediaType, size, subject); nullopt when damaged.
std::optional<revision> parse_revision(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    revision r{j.at("mediaType").get<std::string>(), j.at("size").get<std::uint64_t>(), {}};
    if (const auto it = j.find("subject"); it != j.end()) {
      if (!it->is_string()) return std::nullopt;
      r.subject = digest::parse(it->get<std::string>());
      if (!r.subject) return std::nullopt;
    }
    return r;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::string revision_text(const revision& r) {
  nlohmann::json j = {{"mediaType", r.media_type}, {"size", r.size}};
  if (r.subject) j["subject"] = r.subject->str();
  return j.dump();
}

std::string entry_name(const digest& d) { return std::string(d.algorithm_name()) + "-" + std::string(d.hex()); }

std::optional<digest> parse_entry_name(std::string_view name) {
  const auto dash = name.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  return digest::parse(std::string(name.substr(0, dash)) + ":" + std::string(name.substr(dash + 1)));
}

// The referrers API descriptor of a manifest, as the Local plugin stores it.
nlohmann::json referrer_descriptor(const manifest& m, const digest& d, std::uint64_t size) {
  descriptor self(m.media_type, d, static_cast<std::int64_t>(size));
  self.artifact_type = m.artifact_type();
  self.annotations = m.annotations;
  return self.to_json();
}

// A manifest's content, read and parsed.
struct content {
  std::string bytes;
  std::optional<manifest> parsed;
  std::string problem;
};

content read_manifest(const blob_store& blobs, const digest& d, std::string_view media_type) {
  content c;
  auto file = blobs.open(d);
  if (!file) {
    c.problem = file.error_message();
    return c;
  }
  if (file->size() > max_manifest_size) {
    c.problem = "the content is larger than " + std::to_string(max_manifest_size) + " bytes";
    return c;
  }
  auto bytes = file->read_all();
  if (!bytes) {
    c.problem = bytes.error_message();
    return c;
  }
  c.bytes = std::move(*bytes);
  auto m = parse_manifest(c.bytes, media_type);
  if (!m) {
    c.problem = m.error_message();
  } else {
    c.parsed = std::move(*m);
  }
  return c;
}

class checker {
 public:
  checker(const repository_store& repos, const fsck_options& options, fsck_report& report)
      : repos_(repos), blobs_(repos.blobs()), options_(options), report_(report) {}

  void run() {
    check_blobs();
    for (const std::string& name : repos_.repositories()) {
      if (stop()) return;
      ++report_.repositories;
      check_revisions(name);
      check_tags(name);
      check_links(name);
      check_referrers(name);
    }
  }

 private:
  bool stop() {
    if (!report_.stopped && options_.should_stop && options_.should_stop()) report_.stopped = true;
    return report_.stopped;
  }

  // Records a problem; `fix` runs when repairing and returns what it did ("" = it could not;
  // `why_not` is then the repair text).
  void problem(kind k, std::string repository, fs::path path, std::string reason,
               const std::function<std::string()>& fix = {}, std::string why_not = {}) {
    fsck_problem p{k, std::move(repository), std::move(path), std::move(reason), false, {}};
    if (options_.repair) {
      if (fix) {
        p.repair = fix();
        p.repaired = !p.repair.empty() && p.repair.rfind("failed", 0) != 0;
        if (p.repair.empty()) p.repair = "not repaired";
      } else {
        p.repair = why_not.empty() ? "cannot be repaired here" : std::move(why_not);
      }
    }
    if (p.repaired) ++report_.repaired;
    if (options_.on_problem) options_.on_problem(p);
    report_.problems.push_back(std::move(p));
  }

  // ---- blobs ------------------------------------------------------------------------------

  // Moves `path` to <root>/quarantine/<name>[.n]; the new path, or nullopt with errno set.
  std::optional<fs::path> quarantine(const fs::path& path, const std::string& name, std::string& error) {
    const fs::path dir = blobs_.root() / "quarantine";
    if (auto st = fsx::ensure_dir(dir); !st) {
      error = st.error_message();
      return std::nullopt;
    }
    fs::path target = dir / name;
    for (int n = 1; ::access(target.c_str(), F_OK) == 0; ++n) target = dir / (name + "." + std::to_string(n));
    if (::rename(path.c_str(), target.c_str()) != 0) {
      error = fsx::from_errno("cannot move", path, errno).message;
      return std::nullopt;
    }
    (void)fsx::fsync_dir(dir);
    (void)fsx::fsync_dir(path.parent_path());
    return target;
  }

  void stray(const fs::path& path) {
    const std::string rel = path.lexically_relative(blobs_.root()).string();
    std::string flat = "stray-" + rel;
    for (char& c : flat) {
      if (c == '/') c = '_';
    }
    problem(kind::stray_file, "", path, "not a blob (its name is not a digest under blobs/<algorithm>/<2 hex>/)",
            [&]() -> std::string {
              std::string error;
              if (auto to = quarantine(path, flat, error)) return "moved to " + to->string();
              return "failed: " + error;
            });
  }

  void check_blob(const fs::path& path, const digest& d) {
    fsx::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      if (errno != ENOENT) problem(kind::corrupt_blob, "", path, fsx::from_errno("cannot open", path, errno).message);
      return;
    }
    struct ::stat st {};
    if (::fstat(fd.get(), &st) != 0) return;
    ++report_.blobs;
    report_.blob_bytes += static_cast<std::uint64_t>(st.st_size);
    if (!options_.verify_blobs) return;
    hasher h(d.algorithm());
    std::vector<char> buf(256 * 1024);
    std::uint64_t offset = 0;
    std::string failure;
    for (;;) {
      const ssize_t n = ::pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        failure = "cannot be read: " + fsx::errno_text(errno);
        break;
      }
      if (n == 0) break;
      h.update(buf.data(), static_cast<std::size_t>(n));
      offset += static_cast<std::uint64_t>(n);
    }
    std::string reason = failure;
    if (failure.empty()) {
      const digest actual = h.current();
      if (actual == d) return;
      reason = "the content (" + std::to_string(offset) + " bytes) hashes to " + actual.str();
    }
    const ino_t inode = st.st_ino;
    problem(kind::corrupt_blob, "", path, reason, [&]() -> std::string {
      std::string error;
      const std::string name = std::string(d.algorithm_name()) + "-" + std::string(d.hex());
      auto to = quarantine(path, name, error);
      if (!to) return "failed: " + error;
      struct ::stat moved {};
      if (::stat(to->c_str(), &moved) == 0 && moved.st_ino != inode) {
        // A push published a good copy between the check and the move (publication verifies
        // the digest): that copy goes back.
        if (::rename(to->c_str(), path.c_str()) != 0) return "failed: cannot put back a fresh copy";
        return "a verified copy was published meanwhile; kept it";
      }
      return "moved to " + to->string();
    });
  }

  void check_blobs() {
    const fs::path blobs = blobs_.root() / "blobs";
    for (const std::string& algorithm : fsx::list_dir(blobs)) {
      const fs::path adir = blobs / algorithm;
      if (algorithm != "sha256" && algorithm != "sha512") {
        stray(adir);
        continue;
      }
      for (const std::string& prefix : fsx::list_dir(adir)) {
        const fs::path pdir = adir / prefix;
        if (prefix.size() != 2 || !is_hex(prefix) || !is_dir(pdir)) {
          stray(pdir);
          continue;
        }
        for (const std::string& name : fsx::list_dir(pdir)) {
          if (stop()) return;
          const fs::path p = pdir / name;
          const auto d = digest::parse(algorithm + ":" + name);
          if (!d || name.compare(0, 2, prefix) != 0 || !is_file(p)) {
            stray(p);
            continue;
          }
          check_blob(p, *d);
        }
      }
    }
  }

  // ---- repositories -------------------------------------------------------------------------

  fs::path revision_path(const std::string& name, const digest& d) const {
    return repos_.repository_path(name) / "_manifests" / "revisions" / std::string(d.algorithm_name()) /
           std::string(d.hex());
  }
  fs::path referrer_path(const std::string& name, const digest& subject, const digest& d) const {
    return repos_.repository_path(name) / "_referrers" / std::string(subject.algorithm_name()) /
           std::string(subject.hex()) / entry_name(d);
  }

  void check_revisions(const std::string& name) {
    const fs::path dir = repos_.repository_path(name) / "_manifests" / "revisions";
    for (const std::string& algorithm : fsx::list_dir(dir)) {
      for (const std::string& hex : fsx::list_dir(dir / algorithm)) {
        if (stop()) return;
        const auto d = digest::parse(algorithm + ":" + hex);
        if (!d) continue;
        check_revision(name, *d);
      }
    }
  }

  void check_revision(const std::string& name, const digest& d) {
    const fs::path path = revision_path(name, d);
    auto text = fsx::read_file(path, 64 * 1024);
    if (!text && text.code() == errc::not_found) return;  // deleted meanwhile
    std::optional<revision> rev;
    if (text) rev = parse_revision(*text);
    ++report_.manifests;

    if (!rev) {
      content c = read_manifest(blobs_, d, "");
      problem(kind::damaged_revision, name, path,
              text ? "the revision file is not {mediaType, size[, subject]} JSON" : text.error_message(),
              [&]() -> std::string {
                if (c.parsed) {
                  revision fixed{c.parsed->media_type, c.bytes.size(),
                                 c.parsed->subject ? std::optional<digest>(c.parsed->subject->digest) : std::nullopt};
                  if (auto st = fsx::write_file_atomic(path, revision_text(fixed)); !st) return "failed: " + st.error_message();
                  rev = fixed;
                  return "rewritten from the manifest's content";
                }
                auto removed = repos_.delete_manifest(name, d);
                if (!removed && removed.code() != errc::not_found) {
                  if (auto st = fsx::remove_file(path); !st && st.code() != errc::not_found) return "failed: " + st.error_message();
                }
                return "removed (the manifest's content is not readable: " + c.problem + ")";
              });
      if (!rev) return;
    }

    if (!blobs_.exists(d)) {
      problem(kind::missing_manifest_content, name, path, "the manifest's content " + d.str() + " is not in the blob store",
              [&]() -> std::string {
                if (blobs_.exists(d)) return "the content is back; nothing to do";
                auto removed = repos_.delete_manifest(name, d);
                if (!removed && removed.code() != errc::not_found) return "failed: " + removed.error_message();
                std::string what = "revision removed";
                if (removed && !removed->empty()) {
                  what += ", with its tags";
                  for (const auto& t : *removed) what += " " + t;
                }
                return what;
              });
      return;
    }

    content c = read_manifest(blobs_, d, rev->media_type);
    if (!c.parsed) {
      problem(kind::invalid_manifest, name, path, "the manifest " + d.str() + " does not parse: " + c.problem, {},
              "not repaired: the content matches its digest; delete the manifest if it is not wanted");
      return;
    }
    const manifest& m = *c.parsed;
    if (rev->size != c.bytes.size()) {
      problem(kind::damaged_revision, name, path,
              "the revision records " + std::to_string(rev->size) + " bytes, the content has " +
                  std::to_string(c.bytes.size()),
              [&]() -> std::string {
                revision fixed = *rev;
                fixed.size = c.bytes.size();
                if (auto st = fsx::write_file_atomic(path, revision_text(fixed)); !st) return "failed: " + st.error_message();
                return "size corrected";
              });
    }
    for (const descriptor& b : m.blobs()) {
      if (blobs_.exists(b.digest)) {
        if (!repos_.stat_blob(name, b.digest)) {
          problem(kind::unlinked_blob, name, path,
                  "references " + b.digest.str() + ", which " + name + " does not link",
                  [&]() -> std::string {
                    if (auto st = repos_.link_blob(name, b.digest); !st) return "failed: " + st.error_message();
                    return "linked";
                  });
        }
      } else if (b.urls.empty()) {
        problem(kind::missing_blob, name, path, "references " + b.digest.str() + ", which is not in the blob store",
                {}, "not repaired: push the image again");
      }
    }
    for (const descriptor& child : m.children()) {
      if (!repos_.has_manifest(name, child.digest)) {
        problem(kind::missing_child, name, path, "lists manifest " + child.digest.str() + ", which " + name + " does not hold",
                {}, "not repaired: push the image again");
      }
    }
    if (m.subject) {
      const fs::path entry = referrer_path(name, m.subject->digest, d);
      if (!is_file(entry)) {
        problem(kind::missing_referrer, name, entry,
                "the referrers of " + m.subject->digest.str() + " do not list " + d.str(), [&]() -> std::string {
                  const auto j = referrer_descriptor(m, d, c.bytes.size());
                  if (auto st = fsx::write_file_atomic(entry, j.dump()); !st) return "failed: " + st.error_message();
                  return "entry written";
                });
      }
    }
  }

  void check_tags(const std::string& name) {
    const fs::path dir = repos_.repository_path(name) / "_manifests" / "tags";
    for (const std::string& tag : fsx::list_dir(dir)) {
      if (stop()) return;
      if (!is_valid_tag(tag)) continue;
      const fs::path path = dir / tag;
      auto text = fsx::read_file(path, 1024);
      if (!text && text.code() == errc::not_found) continue;
      ++report_.tags;
      const auto d = text ? digest::parse(*text) : std::nullopt;
      if (!d) {
        problem(kind::damaged_tag, name, path, "the tag file does not hold a digest", [&]() -> std::string {
          if (auto st = fsx::remove_file(path); !st && st.code() != errc::not_found) return "failed: " + st.error_message();
          return "tag removed";
        });
        continue;
      }
      if (!is_file(revision_path(name, *d))) {
        problem(kind::dangling_tag, name, path, "points at " + d->str() + ", which " + name + " does not hold",
                [&]() -> std::string {
                  // Re-checked: a push may have stored the manifest since.
                  auto now = repos_.resolve_tag(name, tag);
                  if (!now || *now != *d || is_file(revision_path(name, *d))) return "it resolves now; nothing to do";
                  if (auto st = repos_.delete_tag(name, tag); !st && st.code() != errc::not_found) {
                    return "failed: " + st.error_message();
                  }
                  return "tag removed";
                });
      }
    }
  }

  void check_links(const std::string& name) {
    repos_.for_each_blob_link(name, [&](const link_record& l) {
      if (stop()) return;
      ++report_.links;
      if (blobs_.exists(l.digest)) return;
      const fs::path path = repos_.repository_path(name) / "_layers" / std::string(l.digest.algorithm_name()) /
                            std::string(l.digest.hex());
      problem(kind::dangling_link, name, path, "links " + l.digest.str() + ", which is not in the blob store",
              [&]() -> std::string {
                if (blobs_.exists(l.digest)) return "the blob is back; nothing to do";
                if (auto st = repos_.unlink_blob(name, l.digest); !st && st.code() != errc::not_found) {
                  return "failed: " + st.error_message();
                }
                return "link removed";
              });
    });
  }

  void check_referrers(const std::string& name) {
    const fs::path dir = repos_.repository_path(name) / "_referrers";
    for (const std::string& algorithm : fsx::list_dir(dir)) {
      for (const std::string& hex : fsx::list_dir(dir / algorithm)) {
        const auto subject = digest::parse(algorithm + ":" + hex);
        if (!subject) continue;
        for (const std::string& entry : fsx::list_dir(dir / algorithm / hex)) {
          if (stop()) return;
          const auto d = parse_entry_name(entry);
          if (!d) continue;
          ++report_.referrers;
          check_referrer(name, *subject, *d, dir / algorithm / hex / entry);
        }
      }
    }
  }

  void check_referrer(const std::string& name, const digest& subject, const digest& d, const fs::path& path) {
    auto remove = [&]() -> std::string {
      if (auto st = fsx::remove_file(path); !st && st.code() != errc::not_found) return "failed: " + st.error_message();
      return "entry removed";
    };
    auto rev_text = fsx::read_file(revision_path(name, d), 64 * 1024);
    const auto rev = rev_text ? parse_revision(*rev_text) : std::nullopt;
    if (!rev_text) {
      problem(kind::stale_referrer, name, path, "lists " + d.str() + ", which " + name + " does not hold", remove);
      return;
    }
    if (rev && rev->subject != subject) {
      problem(kind::stale_referrer, name, path,
              "lists " + d.str() + ", whose subject is " + (rev->subject ? rev->subject->str() : std::string("none")),
              remove);
      return;
    }
    auto text = fsx::read_file(path, 4 * 1024 * 1024);
    bool good = false;
    if (text) {
      try {
        const auto j = nlohmann::json::parse(*text);
        good = j.is_object() && j.value("digest", std::string()) == d.str() && j.contains("mediaType");
      } catch (const nlohmann::json::exception&) {
      }
    }
    if (good) return;
    problem(kind::damaged_referrer, name, path, "the entry is not the descriptor of " + d.str(), [&]() -> std::string {
      content c = read_manifest(blobs_, d, rev ? rev->media_type : std::string());
      if (!c.parsed) return remove();
      const auto j = referrer_descriptor(*c.parsed, d, c.bytes.size());
      if (auto st = fsx::write_file_atomic(path, j.dump()); !st) return "failed: " + st.error_message();
      return "entry rewritten";
    });
  }

  const repository_store& repos_;
  const blob_store& blobs_;
  const fsck_options& options_;
  fsck_report& report_;
};

}  // namespace

const char* to_string(fsck_problem_kind k) noexcept {
  switch (k) {
    case kind::corrupt_blob: return "corrupt blob";
    case kind::stray_file: return "stray file";
    case kind::damaged_revision: return "damaged revision";
    case kind::missing_manifest_content: return "missing manifest content";
    case kind::invalid_manifest: return "invalid manifest";
    case kind::missing_blob: return "missing blob";
    case kind::unlinked_blob: return "unlinked blob";
    case kind::missing_child: return "missing child manifest";
    case kind::missing_referrer: return "missing referrer entry";
    case kind::damaged_tag: return "damaged tag";
    case kind::dangling_tag: return "dangling tag";
    case kind::dangling_link: return "dangling link";
    case kind::stale_referrer: return "stale referrer entry";
    case kind::damaged_referrer: return "damaged referrer entry";
  }
  return "?";
}

std::string fsck_report::summary() const {
  if (skipped) return "skipped: another garbage collection, repair or rotation is running";
  std::string s = "checked " + std::to_string(blobs) + " blobs (" + format_bytes(blob_bytes) + "), " +
                  std::to_string(repositories) + " repositories, " + std::to_string(manifests) + " manifests, " +
                  std::to_string(tags) + " tags, " + std::to_string(links) + " links, " +
                  std::to_string(referrers) + " referrer entries: ";
  s += problems.empty() ? "no problems" : std::to_string(problems.size()) + (problems.size() == 1 ? " problem" : " problems");
  if (repair && !problems.empty()) s += ", " + std::to_string(repaired) + " repaired";
  if (stopped) s += " (stopped early)";
  return s;
}

fsck_report run_fsck(const repository_store& repos, const fsck_options& options) {
  fsck_report report;
  report.repair = options.repair;
  std::optional<detail::maintenance_lock> lock;
  if (options.repair) {
    lock.emplace(repos.blobs().root(), true);
    if (!lock->held()) {
      report.skipped = true;
      return report;
    }
  }
  checker(repos, options, report).run();
  return report;
}

}  // namespace registryd::oci::storage
