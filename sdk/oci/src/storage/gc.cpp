#include <registryd/oci/storage/gc.hpp>

#include "fs_util.hpp"
#include "maintenance.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <dirent.h>
#include <map>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

namespace registryd::oci::storage {
namespace {

namespace fs = std::filesystem;

// Untagged manifests of one repository that no root reaches, in the order they are deleted:
// parents (an index, a subject) before what they reach, so that a parent found in use during
// the sweep can still save its children and referrers.
struct doomed_set {
  detail::repository_graph graph;
  std::vector<digest> order;
};

class collector {
 public:
  collector(const repository_store& repos, upload_store& uploads, const gc_options& options, gc_report& report)
      : repos_(repos), blobs_(repos.blobs()), uploads_(uploads), options_(options), report_(report) {}

  void run(time_point fs_now) {
    cutoff_ = fs_now - options_.grace;
    upload_cutoff_ = fs_now - options_.upload_grace;
    for (const std::string& name : repos_.repositories()) {
      if (stop()) return;
      mark(name);
      ++report_.repositories;
    }
    if (options_.after_mark) options_.after_mark();
    sweep_manifests();
    if (stop()) return;
    sweep_links();
    if (stop()) return;
    sweep_blobs();
    if (stop()) return;
    sweep_uploads();
    if (stop()) return;
    sweep_temporaries();
    if (stop()) return;
    sweep_hidden(blobs_.root() / "repositories");
  }

 private:
  bool stop() {
    if (!report_.stopped && options_.should_stop && options_.should_stop()) report_.stopped = true;
    return report_.stopped;
  }

  bool young(time_point t) const { return t >= cutoff_; }

  void emit(gc_item_kind kind, std::string repository, std::string name, std::uint64_t bytes) {
    gc_count* c = nullptr;
    switch (kind) {
      case gc_item_kind::blob: c = &report_.blobs; break;
      case gc_item_kind::link: c = &report_.links; break;
      case gc_item_kind::manifest: c = &report_.manifests; break;
      case gc_item_kind::upload: c = &report_.uploads; break;
      case gc_item_kind::temporary: c = &report_.temporaries; break;
    }
    ++c->count;
    c->bytes += bytes;
    if (options_.on_item) options_.on_item(gc_item{kind, std::move(repository), std::move(name), bytes});
  }

  void mark_manifest(const detail::repository_graph& g, const digest& d, std::unordered_set<digest>* referenced) {
    marked_.insert(d);
    const auto it = g.manifests.find(d);
    if (it == g.manifests.end()) return;
    for (const digest& b : it->second.blobs) {
      marked_.insert(b);
      if (referenced != nullptr) referenced->insert(b);
    }
    for (const digest& c : it->second.children) marked_.insert(c);
  }

  void mark(const std::string& name) {
    detail::repository_graph g = detail::load_graph(repos_, name);
    if (!g.complete) {
      std::string why = "a revision file is damaged";
      for (const auto& [d, node] : g.manifests) {
        if (!node.readable) {
          why = d.str() + ": " + node.problem;
          break;
        }
      }
      report_.errors.push_back("repository " + name + ": not every manifest can be read (" + why +
                               "); its blob links are all kept (run registryd fsck)");
    }

    std::vector<digest> roots;
    repos_.for_each_tag(name, [&](const tag_record& t) { roots.push_back(t.digest); });
    for (const auto& [d, node] : g.manifests) {
      // With a manifest that cannot be read, what lists what is unknown: all are roots then.
      if (!options_.delete_untagged || !g.complete || young(node.record.mtime) || young(node.content_mtime)) {
        roots.push_back(d);
      }
    }
    const std::unordered_set<digest> kept = g.closure(roots);
    std::unordered_set<digest> referenced;
    for (const digest& d : kept) mark_manifest(g, d, &referenced);
    report_.manifests_kept += kept.size();

    repos_.for_each_blob_link(name, [&](const link_record& l) {
      if (referenced.count(l.digest) != 0 || !g.complete || young(l.mtime)) {
        marked_.insert(l.digest);
        return;
      }
      // link_blob touches the blob before it links: a young blob means someone is linking it.
      if (const auto m = detail::mtime_of(blobs_.blob_path(l.digest)); m && young(*m)) {
        marked_.insert(l.digest);
        return;
      }
      link_candidates_.push_back({name, l.digest});
    });

    // An unreadable manifest may list any untagged one as a child: none is deleted then.
    if (g.complete && kept.size() < g.manifests.size()) {
      std::unordered_set<digest> doomed;
      for (const auto& [d, node] : g.manifests) {
        if (kept.count(d) == 0) doomed.insert(d);
      }
      std::vector<digest> order = detail::top_down(g, doomed);
      doomed_.push_back(doomed_set{std::move(g), std::move(order)});
    }
  }

  void sweep_manifests() {
    for (doomed_set& set : doomed_) {
      const detail::repository_graph& g = set.graph;
      std::unordered_set<digest> saved;
      for (const digest& d : set.order) {
        if (stop()) return;
        if (saved.count(d) != 0) continue;  // a parent found in use keeps it
        if (options_.dry_run) {
          emit(gc_item_kind::manifest, g.name, d.str(), 0);
          continue;
        }
        if (options_.before_delete) options_.before_delete(gc_item{gc_item_kind::manifest, g.name, d.str(), 0});
        // As it is once its revision is aside: a tag may have been pointed at it, or a push
        // stored it again, since the mark. A push after the move writes a revision of its own.
        auto retired = repos_.retire_manifest(g.name, d, [&](time_point revision_mtime) {
          if (options_.after_aside) options_.after_aside(gc_item{gc_item_kind::manifest, g.name, d.str(), 0});
          const auto content = detail::mtime_of(blobs_.blob_path(d));
          return young(revision_mtime) || (content && young(*content)) || is_tagged(g.name, d);
        });
        if (!retired && retired.code() == errc::not_found) continue;  // deleted meanwhile
        if (retired && *retired == repository_store::retired::deleted) {
          emit(gc_item_kind::manifest, g.name, d.str(), 0);
          continue;
        }
        if (retired) {
          ++report_.rescued;  // in use after all
        } else {
          report_.errors.push_back("cannot delete manifest " + g.name + "@" + d.str() + ": " + retired.error_message());
        }
        // Not deleted: it keeps what it reaches, in this repository and its links.
        for (const digest& r : g.closure({d})) {
          saved.insert(r);
          mark_manifest(g, r, &saved_blobs_[g.name]);
        }
      }
    }
    doomed_.clear();
  }

  bool is_tagged(const std::string& name, const digest& d) const {
    bool found = false;
    repos_.for_each_tag(name, [&](const tag_record& t) { found = found || t.digest == d; });
    return found;
  }

  void sweep_links() {
    for (const auto& c : link_candidates_) {
      if (stop()) return;
      if (const auto it = saved_blobs_.find(c.repository); it != saved_blobs_.end() && it->second.count(c.d) != 0) {
        continue;
      }
      if (options_.dry_run) {
        emit(gc_item_kind::link, c.repository, c.d.str(), 0);
        continue;
      }
      const fs::path link = repos_.repository_path(c.repository) / "_layers" / std::string(c.d.algorithm_name()) /
                            std::string(c.d.hex());
      const fs::path dir = link.parent_path();
      if (options_.before_delete) options_.before_delete(gc_item{gc_item_kind::link, c.repository, c.d.str(), 0});
      const auto aside = fsx::move_aside(link);
      if (!aside) {
        if (errno != ENOENT) report_.errors.push_back(fsx::from_errno("cannot remove link", link, errno).message);
        continue;
      }
      // Renamed aside, the link is invisible; a touch that came before the rename shows in the
      // blob's mtime, and one after it is followed by a fresh link of the toucher's own.
      if (const auto m = detail::mtime_of(blobs_.blob_path(c.d)); m && young(*m)) {
        if (auto st = fsx::put_back(*aside, link); !st) report_.errors.push_back(st.error_message());
        ++report_.rescued;
        marked_.insert(c.d);
        continue;
      }
      ::unlink(aside->c_str());
      (void)fsx::fsync_dir(dir);
      emit(gc_item_kind::link, c.repository, c.d.str(), 0);
    }
  }

  void sweep_blobs() {
    blobs_.for_each_blob([&](const blob_info& b) {
      if (stop()) return;
      if (marked_.count(b.digest) != 0 || young(b.mtime)) {
        ++report_.blobs_kept.count;
        report_.blobs_kept.bytes += b.size;
        return;
      }
      if (options_.dry_run) {
        emit(gc_item_kind::blob, "", b.digest.str(), b.size);
        return;
      }
      const fs::path path = blobs_.blob_path(b.digest);
      if (options_.before_delete) options_.before_delete(gc_item{gc_item_kind::blob, "", b.digest.str(), b.size});
      const fs::path aside = blobs_.temp_dir() / ("gc-" + fsx::random_hex(8) + ".trash");
      if (::rename(path.c_str(), aside.c_str()) != 0) {
        if (errno != ENOENT) report_.errors.push_back(fsx::from_errno("cannot delete blob", path, errno).message);
        return;
      }
      struct ::stat st {};
      const bool have = ::stat(aside.c_str(), &st) == 0;
      if (!have || young(fsx::mtime_of(st.st_mtim))) {
        // Touched before the rename: someone is linking it right now. Put it back.
        if (::rename(aside.c_str(), path.c_str()) != 0) {
          report_.errors.push_back(fsx::from_errno("cannot restore blob", path, errno).message);
        }
        (void)fsx::fsync_dir(path.parent_path());
        ++report_.rescued;
        ++report_.blobs_kept.count;
        report_.blobs_kept.bytes += b.size;
        return;
      }
      if (::unlink(aside.c_str()) != 0) {
        report_.errors.push_back(fsx::from_errno("cannot delete", aside, errno).message);
        return;
      }
      (void)fsx::fsync_dir(path.parent_path());
      emit(gc_item_kind::blob, "", b.digest.str(), static_cast<std::uint64_t>(st.st_size));
    });
  }

  void sweep_uploads() {
    uploads_.for_each([&](const upload_info& u) {
      if (stop()) return;
      time_point last = u.mtime;
      // A session without data yet (being created, or torn by a crash): its directory's age.
      if (last == time_point{}) last = detail::mtime_of(uploads_.directory() / u.id).value_or(time_point{});
      if (last >= upload_cutoff_) return;
      if (options_.dry_run) {
        emit(gc_item_kind::upload, u.repository, u.id, u.size);
        return;
      }
      auto st = uploads_.remove(u.id);
      if (st) {
        emit(gc_item_kind::upload, u.repository, u.id, u.size);
      } else if (st.code() != errc::invalid && st.code() != errc::not_found) {
        report_.errors.push_back("cannot remove upload " + u.id + ": " + st.error_message());
      }
    });
  }

  void sweep_temporaries() {
    blobs_.for_each_temp([&](const fs::path& p, std::uint64_t size, time_point mtime) {
      if (stop() || mtime >= upload_cutoff_) return;
      if (!options_.dry_run && ::unlink(p.c_str()) != 0) {
        if (errno != ENOENT) report_.errors.push_back(fsx::from_errno("cannot remove", p, errno).message);
        return;
      }
      emit(gc_item_kind::temporary, "", p.string(), size);
    });
  }

  // Hidden files under repositories/: temporaries of atomic writes (and links GC set aside)
  // that a crash left behind. Live ones are renamed within milliseconds of their creation.
  void sweep_hidden(const fs::path& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return;
    std::vector<std::string> subdirs;
    std::vector<fs::path> stale;
    while (const dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      const fs::path p = dir / std::string(name);
      struct ::stat st {};
      if (::lstat(p.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        subdirs.emplace_back(name);
      } else if (S_ISREG(st.st_mode) && fsx::is_hidden(name) && fsx::mtime_of(st.st_mtim) < upload_cutoff_) {
        stale.push_back(p);
      }
    }
    ::closedir(d);
    for (const fs::path& p : stale) {
      if (stop()) return;
      struct ::stat st {};
      const std::uint64_t size = ::lstat(p.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
      if (!options_.dry_run && ::unlink(p.c_str()) != 0) continue;
      emit(gc_item_kind::temporary, "", p.string(), size);
    }
    for (const std::string& s : subdirs) {
      if (stop()) return;
      sweep_hidden(dir / s);
    }
  }

  struct link_candidate {
    std::string repository;
    digest d;
  };

  const repository_store& repos_;
  const blob_store& blobs_;
  upload_store& uploads_;
  const gc_options& options_;
  gc_report& report_;
  time_point cutoff_{};
  time_point upload_cutoff_{};
  std::unordered_set<digest> marked_;
  std::vector<link_candidate> link_candidates_;
  std::vector<doomed_set> doomed_;
  // Per repository, blobs of manifests saved during the sweep: their links stay.
  std::map<std::string, std::unordered_set<digest>> saved_blobs_;
};

std::string plural(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

const char* to_string(gc_item_kind kind) noexcept {
  switch (kind) {
    case gc_item_kind::blob: return "blob";
    case gc_item_kind::link: return "link";
    case gc_item_kind::manifest: return "manifest";
    case gc_item_kind::upload: return "upload";
    case gc_item_kind::temporary: return "temporary";
  }
  return "?";
}

std::string format_bytes(std::uint64_t bytes) {
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  std::size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string gc_report::summary() const {
  if (skipped) return "skipped: another garbage collection, repair or rotation is running";
  auto with_bytes = [](const gc_count& c, const char* one, const char* many) {
    std::string s = plural(c.count, one, many);
    if (c.count > 0) s += " (" + format_bytes(c.bytes) + ")";
    return s;
  };
  std::string s = dry_run ? "would delete " : "deleted ";
  s += with_bytes(blobs, "blob", "blobs") + ", " + plural(links.count, "link", "links") + ", " +
       plural(manifests.count, "manifest", "manifests") + ", " + with_bytes(uploads, "upload", "uploads") +
       ", " + with_bytes(temporaries, "temporary", "temporaries") + "; kept " +
       with_bytes(blobs_kept, "blob", "blobs") + " and " + plural(manifests_kept, "manifest", "manifests") +
       " in " + plural(repositories, "repository", "repositories");
  if (rescued > 0) s += "; " + std::to_string(rescued) + " reached during the run and kept";
  if (stopped) s += "; stopped early";
  if (!errors.empty()) s += "; " + plural(errors.size(), "error", "errors");
  return s;
}

gc_report run_gc(const repository_store& repos, upload_store& uploads, const gc_options& options) {
  const auto started = std::chrono::steady_clock::now();
  gc_report report;
  report.dry_run = options.dry_run;
  detail::maintenance_lock lock(repos.blobs().root(), !options.dry_run);
  if (!options.dry_run && !lock.held()) {
    report.skipped = true;
    report.errors.push_back("another garbage collection, repair or rotation holds " + lock.path().string());
    return report;
  }
  collector(repos, uploads, options, report).run(lock.now());
  report.duration =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  return report;
}

}  // namespace registryd::oci::storage
