#include <registryd/oci/storage/repository_store.hpp>

#include "fs_util.hpp"

#include <registryd/oci/reference.hpp>

#include <algorithm>
#include <cerrno>
#include <sys/stat.h>
#include <unistd.h>

namespace registryd::oci::storage {
namespace {

namespace fs = std::filesystem;

store_error invalid_name(std::string_view name) {
  return make_error(errc::invalid, "invalid repository name \"" + std::string(name) + "\"");
}

store_error invalid_tag(std::string_view tag) {
  return make_error(errc::invalid, "invalid tag \"" + std::string(tag) + "\"");
}

std::optional<time_point> mtime_if_file(const fs::path& p) {
  struct ::stat st {};
  if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return fsx::mtime_of(st.st_mtim);
}

bool is_dir(const fs::path& p) {
  struct ::stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A revision file's JSON; nullopt when it is damaged (treated as absent, and reported as such).
std::optional<manifest_record> parse_revision(const digest& d, const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    manifest_record r{d, j.at("mediaType").get<std::string>(), j.at("size").get<std::uint64_t>(), {}, {}};
    if (const auto it = j.find("subject"); it != j.end() && it->is_string()) {
      r.subject = digest::parse(it->get<std::string>());
    }
    return r;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::string revision_text(const manifest_record& r) {
  nlohmann::json j = {{"mediaType", r.media_type}, {"size", r.size}};
  if (r.subject) j["subject"] = r.subject->str();
  return j.dump();
}

// Walks <dir>/<alg>/<hex> entries, calling fn(digest, path).
void for_each_digest_file(const fs::path& dir, const std::function<void(const digest&, const fs::path&)>& fn) {
  for (const std::string& algorithm : fsx::list_dir(dir)) {
    for (const std::string& hex : fsx::list_dir(dir / algorithm)) {
      if (auto d = digest::parse(algorithm + ":" + hex)) fn(*d, dir / algorithm / hex);
    }
  }
}

// "<alg>-<hex>" <-> digest: a referrer entry's file name.
std::string entry_name(const digest& d) {
  return std::string(d.algorithm_name()) + "-" + std::string(d.hex());
}
std::optional<digest> parse_entry_name(std::string_view name) {
  const auto dash = name.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  return digest::parse(std::string(name.substr(0, dash)) + ":" + std::string(name.substr(dash + 1)));
}

}  // namespace

repository_store::repository_store(const blob_store& blobs, std::filesystem::path root)
    : blobs_(blobs), root_(std::move(root)) {}

fs::path repository_store::repository_path(std::string_view name) const {
  return root_ / "repositories" / std::string(name);
}

fs::path repository_store::layer_link(std::string_view name, const digest& d) const {
  return repository_path(name) / "_layers" / std::string(d.algorithm_name()) / std::string(d.hex());
}

fs::path repository_store::revision_path(std::string_view name, const digest& d) const {
  return repository_path(name) / "_manifests" / "revisions" / std::string(d.algorithm_name()) /
         std::string(d.hex());
}

fs::path repository_store::tag_path(std::string_view name, std::string_view tag) const {
  return repository_path(name) / "_manifests" / "tags" / std::string(tag);
}

fs::path repository_store::referrer_path(std::string_view name, const digest& subject, const digest& d) const {
  return repository_path(name) / "_referrers" / std::string(subject.algorithm_name()) /
         std::string(subject.hex()) / entry_name(d);
}

bool repository_store::exists(std::string_view name) const {
  if (!is_valid_repository_name(name)) return false;
  const fs::path dir = repository_path(name);
  return is_dir(dir / "_layers") || is_dir(dir / "_manifests");
}

// ---- blob links ------------------------------------------------------------------------------

store_status repository_store::link_blob(std::string_view name, const digest& d) const {
  if (!is_valid_repository_name(name)) return invalid_name(name);
  // Touch before linking: the blob is then younger than any GC grace period at the moment the
  // link appears (blob_store.hpp, the GC rule).
  if (!blobs_.touch(d)) return make_error(errc::not_found, "blob " + d.str() + " is not stored");
  return fsx::create_empty(layer_link(name, d));
}

std::optional<std::uint64_t> repository_store::stat_blob(std::string_view name, const digest& d) const {
  if (!is_valid_repository_name(name) || !mtime_if_file(layer_link(name, d))) return std::nullopt;
  return blobs_.stat(d);
}

store_result<blob_file> repository_store::open_blob(std::string_view name, const digest& d) const {
  if (!is_valid_repository_name(name)) return invalid_name(name);
  if (!mtime_if_file(layer_link(name, d))) {
    return make_error(errc::not_found, "blob " + d.str() + " is not in " + std::string(name));
  }
  return blobs_.open(d);
}

store_status repository_store::unlink_blob(std::string_view name, const digest& d) const {
  if (!is_valid_repository_name(name)) return invalid_name(name);
  auto st = fsx::remove_file(layer_link(name, d));
  if (!st && st.code() == errc::not_found) {
    return make_error(errc::not_found, "blob " + d.str() + " is not in " + std::string(name));
  }
  return st;
}

// ---- manifests -------------------------------------------------------------------------------

store_result<manifest_record> repository_store::put_manifest(std::string_view name,
                                                             const manifest_put& put) const {
  if (!is_valid_repository_name(name)) return invalid_name(name);
  if (put.tag && !is_valid_tag(*put.tag)) return invalid_tag(*put.tag);
  // The bytes first (verified, durable, and younger than any GC grace period), then what
  // makes them reachable.
  auto stored = blobs_.put(put.bytes, put.digest);
  if (!stored) return stored.error();
  manifest_record record{put.digest, put.media_type, put.bytes.size(), put.subject, stored->mtime};
  if (auto st = fsx::write_file_atomic(revision_path(name, put.digest), revision_text(record)); !st) {
    return st.error();
  }
  if (put.subject) {
    if (auto st = fsx::write_file_atomic(referrer_path(name, *put.subject, put.digest),
                                         put.referrer_descriptor.dump());
        !st) {
      return st.error();
    }
  }
  if (put.tag) {
    if (auto st = fsx::write_file_atomic(tag_path(name, *put.tag), put.digest.str()); !st) return st.error();
  }
  return record;
}

store_result<manifest_record> repository_store::stat_manifest(std::string_view name, const digest& d) const {
  if (!is_valid_repository_name(name)) return invalid_name(name);
  const fs::path p = revision_path(name, d);
  auto text = fsx::read_file(p, 64 * 1024);
  if (!text) {
    if (text.code() == errc::not_found) {
      return make_error(errc::not_found, "manifest " + d.str() + " is not in " + std::string(name));
    }
    return text.error();
  }
  auto record = parse_revision(d, *text);
  if (!record) return make_error(errc::io, "the revision file " + p.string() + " is damaged");
  if (!blobs_.exists(d)) {
    return make_error(errc::not_found, "manifest " + d.str() + " of " + std::string(name) +
                                           " has no content in the blob store");
  }
  record->mtime = mtime_if_file(p).value_or(time_point{});
  return std::move(*record);
}

store_result<manifest_file> repository_store::open_manifest(std::string_view name, const digest& d) const {
  if (!is_valid_repository_name(name)) return invalid_name(name);
  const fs::path p = revision_path(name, d);
  auto text = fsx::read_file(p, 64 * 1024);
  if (!text) {
    if (text.code() == errc::not_found) {
      return make_error(errc::not_found, "manifest " + d.str() + " is not in " + std::string(name));
    }
    return text.error();
  }
  auto parsed = parse_revision(d, *text);
  if (!parsed) return make_error(errc::io, "the revision file " + p.string() + " is damaged");
  auto file = blobs_.open(d);
  if (!file) return file.error();
  return manifest_file{std::move(file.value()), std::move(*parsed)};
}

store_result<std::vector<std::string>> repository_store::delete_manifest(std::string_view name,
                                                                        const digest& d) const {
  if (!is_valid_repository_name(name)) return invalid_name(name);
  const fs::path rev = revision_path(name, d);
  auto text = fsx::read_file(rev, 64 * 1024);
  if (!text) {
    if (text.code() == errc::not_found) {
      return make_error(errc::not_found, "manifest " + d.str() + " is not in " + std::string(name));
    }
    return text.error();
  }
  const auto record = parse_revision(d, *text);
  // Tags first, so that no tag ever names a manifest the repository no longer holds.
  std::vector<std::string> removed;
  std::optional<store_error> failure;
  for_each_tag(name, [&](const tag_record& t) {
    if (t.digest != d || failure) return;
    if (auto st = fsx::remove_file(tag_path(name, t.tag)); st) {
      removed.push_back(t.tag);
    } else if (st.code() != errc::not_found) {
      failure = st.error();
    }
  });
  if (failure) return *failure;
  if (record && record->subject) {
    auto st = fsx::remove_file(referrer_path(name, *record->subject, d));
    if (!st && st.code() != errc::not_found) return st.error();
  }
  if (auto st = fsx::remove_file(rev); !st && st.code() != errc::not_found) return st.error();
  std::sort(removed.begin(), removed.end());
  return removed;
}

store_result<repository_store::retired> repository_store::retire_manifest(
    std::string_view name, const digest& d, const std::function<bool(time_point)>& in_use) const {
  if (!is_valid_repository_name(name)) return invalid_name(name);
  const fs::path rev = revision_path(name, d);
  const auto aside = fsx::move_aside(rev);
  if (!aside) {
    if (errno == ENOENT) return make_error(errc::not_found, "manifest " + d.str() + " is not in " + std::string(name));
    return fsx::from_errno("cannot move aside", rev, errno);
  }
  if (in_use(mtime_if_file(*aside).value_or(time_point{}))) {
    if (auto st = fsx::put_back(*aside, rev); !st) return st.error();
    return retired::kept;
  }
  const auto text = fsx::read_file(*aside, 64 * 1024);  // its subject, for the referrer entry
  if (::unlink(aside->c_str()) != 0) return fsx::from_errno("cannot delete", *aside, errno);
  if (auto st = fsx::fsync_dir(rev.parent_path()); !st) return st.error();
  // The referrer entry, moved aside the same way: a push writes the revision before the entry,
  // so a revision there now means the entry (old or new) belongs to a stored manifest.
  const auto record = text ? parse_revision(d, *text) : std::nullopt;
  if (record && record->subject) {
    const fs::path entry = referrer_path(name, *record->subject, d);
    if (const auto entry_aside = fsx::move_aside(entry)) {
      if (mtime_if_file(rev)) {
        if (auto st = fsx::put_back(*entry_aside, entry); !st) return st.error();
      } else {
        ::unlink(entry_aside->c_str());
        (void)fsx::fsync_dir(entry.parent_path());
      }
    }
  }
  return retired::deleted;
}

// ---- tags ------------------------------------------------------------------------------------

store_result<digest> repository_store::resolve_tag(std::string_view name, std::string_view tag) const {
  if (!is_valid_repository_name(name)) return invalid_name(name);
  if (!is_valid_tag(tag)) return invalid_tag(tag);
  auto text = fsx::read_file(tag_path(name, tag), 1024);
  if (!text) {
    if (text.code() == errc::not_found) {
      return make_error(errc::not_found, "tag " + std::string(tag) + " is not in " + std::string(name));
    }
    return text.error();
  }
  auto d = digest::parse(*text);
  if (!d) return make_error(errc::io, "the tag file " + tag_path(name, tag).string() + " is damaged");
  return std::move(*d);
}

store_status repository_store::set_tag(std::string_view name, std::string_view tag, const digest& d) const {
  if (!is_valid_repository_name(name)) return invalid_name(name);
  if (!is_valid_tag(tag)) return invalid_tag(tag);
  if (auto m = stat_manifest(name, d); !m) return m.error();
  return fsx::write_file_atomic(tag_path(name, tag), d.str());
}

store_status repository_store::delete_tag(std::string_view name, std::string_view tag) const {
  if (!is_valid_repository_name(name)) return invalid_name(name);
  if (!is_valid_tag(tag)) return invalid_tag(tag);
  auto st = fsx::remove_file(tag_path(name, tag));
  if (!st && st.code() == errc::not_found) {
    return make_error(errc::not_found, "tag " + std::string(tag) + " is not in " + std::string(name));
  }
  return st;
}

store_result<std::vector<std::string>> repository_store::tags(std::string_view name) const {
  if (!is_valid_repository_name(name)) return invalid_name(name);
  if (!exists(name)) return make_error(errc::not_found, "repository " + std::string(name) + " is not known");
  std::vector<std::string> out;
  for (std::string& t : fsx::list_dir(repository_path(name) / "_manifests" / "tags")) {
    if (is_valid_tag(t)) out.push_back(std::move(t));
  }
  std::sort(out.begin(), out.end());
  return out;
}

void repository_store::for_each_tag(std::string_view name, const std::function<void(const tag_record&)>& fn) const {
  if (!is_valid_repository_name(name)) return;
  const fs::path dir = repository_path(name) / "_manifests" / "tags";
  for (const std::string& t : fsx::list_dir(dir)) {
    if (!is_valid_tag(t)) continue;
    auto text = fsx::read_file(dir / t, 1024);
    if (!text) continue;
    auto d = digest::parse(*text);
    if (!d) continue;
    fn(tag_record{t, *d, mtime_if_file(dir / t).value_or(time_point{})});
  }
}

// ---- referrers -------------------------------------------------------------------------------

std::vector<nlohmann::json> repository_store::referrers(std::string_view name, const digest& subject) const {
  std::vector<nlohmann::json> out;
  if (!is_valid_repository_name(name)) return out;
  const fs::path dir = repository_path(name) / "_referrers" / std::string(subject.algorithm_name()) /
                       std::string(subject.hex());
  std::vector<std::string> entries = fsx::list_dir(dir);
  std::sort(entries.begin(), entries.end());
  for (const std::string& entry : entries) {
    const auto d = parse_entry_name(entry);
    if (!d) continue;
    if (!mtime_if_file(revision_path(name, *d))) {
      // The referrer was deleted between its revision and its entry (a crash, or a race with
      // a delete): the entry is stale, and nobody may see it.
      (void)fsx::remove_file(dir / entry);
      continue;
    }
    auto text = fsx::read_file(dir / entry, 4 * 1024 * 1024);
    if (!text) continue;
    try {
      out.push_back(nlohmann::json::parse(*text));
    } catch (const nlohmann::json::exception&) {
    }
  }
  return out;
}

void repository_store::for_each_referrer(
    std::string_view name,
    const std::function<void(const digest& subject, const nlohmann::json& descriptor)>& fn) const {
  if (!is_valid_repository_name(name)) return;
  const fs::path dir = repository_path(name) / "_referrers";
  for (const std::string& algorithm : fsx::list_dir(dir)) {
    for (const std::string& hex : fsx::list_dir(dir / algorithm)) {
      const auto subject = digest::parse(algorithm + ":" + hex);
      if (!subject) continue;
      for (const std::string& entry : fsx::list_dir(dir / algorithm / hex)) {
        if (!parse_entry_name(entry)) continue;
        auto text = fsx::read_file(dir / algorithm / hex / entry, 4 * 1024 * 1024);
        if (!text) continue;
        try {
          fn(*subject, nlohmann::json::parse(*text));
        } catch (const nlohmann::json::exception&) {
        }
      }
    }
  }
}

// ---- enumeration -----------------------------------------------------------------------------

std::vector<std::string> repository_store::repositories() const {
  std::vector<std::string> out;
  // Depth-first over name components; a directory is a repository when it holds a marker.
  std::function<void(const fs::path&, const std::string&)> walk = [&](const fs::path& dir,
                                                                      const std::string& prefix) {
    for (const std::string& child : fsx::list_dir(dir)) {
      if (child.front() == '_' || !is_dir(dir / child)) continue;
      const std::string name = prefix.empty() ? child : prefix + "/" + child;
      if (!is_valid_repository_name(name)) continue;
      if (is_dir(dir / child / "_layers") || is_dir(dir / child / "_manifests")) out.push_back(name);
      walk(dir / child, name);
    }
  };
  walk(root_ / "repositories", "");
  std::sort(out.begin(), out.end());
  return out;
}

void repository_store::for_each_manifest(std::string_view name,
                                         const std::function<void(const manifest_record&)>& fn) const {
  if (!is_valid_repository_name(name)) return;
  for_each_digest_file(repository_path(name) / "_manifests" / "revisions",
                       [&](const digest& d, const fs::path& p) {
                         auto text = fsx::read_file(p, 64 * 1024);
                         if (!text) return;
                         auto r = parse_revision(d, *text);
                         if (!r) return;
                         r->mtime = mtime_if_file(p).value_or(time_point{});
                         fn(*r);
                       });
}

void repository_store::for_each_blob_link(std::string_view name,
                                          const std::function<void(const link_record&)>& fn) const {
  if (!is_valid_repository_name(name)) return;
  for_each_digest_file(repository_path(name) / "_layers", [&](const digest& d, const fs::path& p) {
    if (auto m = mtime_if_file(p)) fn(link_record{d, *m});
  });
}

}  // namespace registryd::oci::storage
