// The disk half of the renderer: publishes a rendered tree under the output directory.
#include <registryd/containerd/render.hpp>

#include <registryd/util/atomic_file.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace registryd::containerd {
namespace {

namespace fs = std::filesystem;

struct failure {
  std::string message;
};

[[noreturn]] void fail(std::string message) { throw failure{std::move(message)}; }

std::string describe(const std::error_code& ec) { return ec.message(); }

// A name that may stand in the manifest: a single path component that is not hidden, so a
// tampered manifest cannot make a render delete anything outside registry.d.
bool plausible_host_dir(const std::string& name) {
  return !name.empty() && name.front() != '.' && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

bool is_dropin(const std::string& path) { return path == dropin_v1_path || path == dropin_v2_path; }

struct manifest {
  std::set<std::string> hosts;    // host directories registryd owns
  std::set<std::string> dropins;  // drop-ins registryd wrote (paths relative to the output dir)
  // Written before registryd recorded its drop-ins: `dropins` is then inferred, see below.
  bool without_dropins = false;
};

// A drop-in that the code before the dropIns record wrote: it wrote both on every render, each
// beginning with registryd's marker comment. The marker is checked, not assumed, so that a
// file registryd did not write is never counted as its own.
std::set<std::string> inferred_dropins(const fs::path& out) {
  std::set<std::string> found;
  for (const char* path : {dropin_v1_path, dropin_v2_path}) {
    std::error_code ec;
    const auto st = fs::symlink_status(out / path, ec);
    if (ec || st.type() != fs::file_type::regular) continue;
    const std::string text = util::read_small_file(out / path, ec);
    if (!ec && text.rfind(managed_marker, 0) == 0) found.insert(path);
  }
  return found;
}

manifest read_manifest(const fs::path& out) {
  const fs::path path = out / manifest_path;
  std::error_code ec;
  const auto st = fs::symlink_status(path, ec);
  if (ec || st.type() == fs::file_type::not_found) return {};
  const std::string shown = path.string();
  if (st.type() != fs::file_type::regular) fail(shown + " is not a regular file");
  const std::string text = util::read_small_file(path, ec);
  if (ec) fail("cannot read " + shown + ": " + describe(ec));
  manifest m;
  try {
    const auto doc = nlohmann::json::parse(text);
    const auto& list = doc.at("hosts");
    if (!list.is_array()) throw std::invalid_argument("\"hosts\" is not an array");
    for (const auto& h : list) {
      const auto name = h.get<std::string>();
      if (!plausible_host_dir(name)) throw std::invalid_argument("bad host \"" + name + "\"");
      m.hosts.insert(name);
    }
    if (const auto it = doc.find("dropIns"); it != doc.end()) {
      if (!it->is_array()) throw std::invalid_argument("\"dropIns\" is not an array");
      for (const auto& d : *it) {
        // Only the two names registryd renders: a tampered manifest cannot make a render
        // delete anything else.
        const auto name = d.get<std::string>();
        if (!is_dropin(name)) throw std::invalid_argument("bad drop-in \"" + name + "\"");
        m.dropins.insert(name);
      }
    } else {
      m.without_dropins = true;
    }
  } catch (const std::exception& e) {
    // Without the manifest there is no telling registryd's directories from hand-made ones,
    // so nothing is guessed: the operator fixes or removes the file.
    fail(shown + " is not a valid registryd manifest (" + e.what() +
         "); fix it or remove it (registryd then manages only what it renders next)");
  }
  if (m.without_dropins) m.dropins = inferred_dropins(out);
  return m;
}

std::string manifest_without_version(const std::set<std::string>& hosts,
                                     const std::set<std::string>& dropins) {
  // Written while a render is in progress: it may name directories and drop-ins not made yet,
  // and no configuration version is complete.
  nlohmann::json doc = {{"managedBy", "registryd"},
                        {"hosts", std::vector<std::string>(hosts.begin(), hosts.end())},
                        {"dropIns", std::vector<std::string>(dropins.begin(), dropins.end())}};
  return doc.dump(2) + "\n";
}

// Serializes renders of one tree (the daemon and `registryd render` on the same node): each
// reads the manifest and acts on it, so two at once could forget a directory. An flock on a
// file in registry.d, released when the descriptor closes, also after a crash.
class render_lock {
 public:
  explicit render_lock(const fs::path& registry_d) {
    std::error_code ec;
    fs::create_directories(registry_d, ec);
    if (ec) fail("cannot create " + registry_d.string() + ": " + describe(ec));
    const fs::path path = registry_d / ".registryd-render.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) fail("cannot open " + path.string() + ": " + describe({errno, std::generic_category()}));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const std::error_code lec(errno, std::generic_category());
      ::close(fd_);
      fail("cannot lock " + path.string() + ": " + describe(lec));
    }
  }
  ~render_lock() { ::close(fd_); }
  render_lock(const render_lock&) = delete;
  render_lock& operator=(const render_lock&) = delete;

 private:
  int fd_ = -1;
};

class publisher {
 public:
  publisher(const render_options& options, render_report& report)
      : out_(options.out_dir), dry_run_(options.dry_run), report_(report) {}

  // Writes `f` unless the file already has this content and mode.
  void publish(const rendered_file& f, bool reported = true) {
    const fs::path target = out_ / f.path;
    std::error_code ec;
    const auto st = fs::symlink_status(target, ec);
    if (!ec && st.type() == fs::file_type::regular &&
        (st.permissions() & fs::perms::mask) == f.mode) {
      const std::string current = util::read_small_file(target, ec);
      if (!ec && current == f.content) {
        if (reported) report_.unchanged.push_back(f.path);
        return;
      }
    }
    if (!dry_run_) {
      if (const auto wec = util::write_file_atomic(target, f.content, f.mode)) {
        fail("cannot write " + target.string() + ": " + describe(wec));
      }
    }
    if (reported) report_.written.push_back(f.path);
  }

  void remove(const fs::path& relative, bool directory) {
    const fs::path target = out_ / relative;
    if (!dry_run_) {
      std::error_code ec;
      fs::remove_all(target, ec);
      if (ec) fail("cannot remove " + target.string() + ": " + describe(ec));
    }
    report_.removed.push_back(relative.generic_string() + (directory ? "/" : ""));
  }

  void sync(const fs::path& relative_dir) {
    if (dry_run_) return;
    if (const auto ec = util::sync_directory(out_ / relative_dir)) {
      fail("cannot sync " + (out_ / relative_dir).string() + ": " + describe(ec));
    }
  }

  void make_dir(const fs::path& relative_dir) {
    if (dry_run_) return;
    std::error_code ec;
    fs::create_directories(out_ / relative_dir, ec);
    if (ec) fail("cannot create " + (out_ / relative_dir).string() + ": " + describe(ec));
  }

 private:
  fs::path out_;
  bool dry_run_;
  render_report& report_;
};

}  // namespace

util::result<render_report> render(const nlohmann::json& description_json,
                                   const render_options& options) {
  if (options.out_dir.empty()) return util::error{"no output directory given"};
  std::error_code ec;
  fs::path final_root = options.final_root;
  if (final_root.empty()) {
    final_root = fs::absolute(options.out_dir, ec).lexically_normal();
    if (ec) return util::error{"cannot resolve " + options.out_dir.string() + ": " + describe(ec)};
    // "out/" normalizes to "out/"; config_path reads better without the trailing slash.
    if (!final_root.has_filename()) final_root = final_root.parent_path();
  }
  auto rendered = render_files(description_json, final_root);
  if (!rendered) return util::error{rendered.error_message()};
  const rendered_tree& tree = rendered.value();

  render_report report;
  report.config_version = tree.config_version;
  report.hosts = tree.hosts;
  try {
    const fs::path reg = registry_dir;
    const fs::path out = options.out_dir;
    // Nothing described and nothing rendered before (no manifest): the node stays exactly as
    // installed, without even a registry.d. Checked before locking; a render that runs at the
    // same time has not published anything yet, so this one simply counts as the earlier.
    if (tree.hosts.empty()) {
      // (libstdc++ sets ec for a missing path too; the type tells.)
      if (fs::symlink_status(out / manifest_path, ec).type() == fs::file_type::not_found) {
        return report;
      }
    }
    std::optional<render_lock> lock;
    if (!options.dry_run) lock.emplace(out / reg);
    const manifest recorded = read_manifest(out);
    const std::set<std::string>& managed = recorded.hosts;
    const std::set<std::string> wanted(tree.hosts.begin(), tree.hosts.end());
    std::set<std::string> wanted_dropins;
    for (const auto& f : tree.files) {
      if (is_dropin(f.path)) wanted_dropins.insert(f.path);
    }

    // Refuse before changing anything: a hand-made directory in the way, or a non-directory.
    for (const auto& h : tree.hosts) {
      const fs::path dir = out / reg / h;
      const auto st = fs::symlink_status(dir, ec);
      if (ec || st.type() == fs::file_type::not_found) continue;
      if (st.type() != fs::file_type::directory) {
        fail(dir.string() + " exists and is not a directory; registryd will not replace it");
      }
      if (managed.count(h) == 0 && !options.adopt_unmanaged) {
        fail(dir.string() + " exists but registryd does not manage it (it is not listed in " +
             (out / manifest_path).string() +
             "); move it away, or render with adoption to let registryd take it over");
      }
    }

    publisher pub(options, report);
    pub.make_dir(reg);

    // Widen the manifest first: from here on every directory and drop-in this render may
    // create is listed.
    std::set<std::string> widened = managed;
    widened.insert(wanted.begin(), wanted.end());
    std::set<std::string> widened_dropins = recorded.dropins;
    widened_dropins.insert(wanted_dropins.begin(), wanted_dropins.end());
    if (widened != managed || widened_dropins != recorded.dropins) {
      pub.publish({manifest_path, manifest_without_version(widened, widened_dropins),
                   fs::perms(0644)},
                  false);
    }
    for (const auto& h : tree.hosts) pub.make_dir(reg / h);
    pub.sync(reg);

    // Drop-ins registryd wrote and no longer renders (the description names no host) go
    // before the host directories: containerd stops being pointed at the tree before it is
    // emptied, the reverse of publishing. Only recorded ones; a file in conf.d or conf2.d
    // that registryd did not write is never touched, and neither are the directories.
    for (const auto& d : recorded.dropins) {
      if (wanted_dropins.count(d) != 0) continue;
      // A regular file, as registryd writes them; whatever replaced it is not registryd's.
      if (fs::symlink_status(out / d, ec).type() != fs::file_type::regular) continue;
      pub.remove(d, false);
      pub.sync(fs::path(d).parent_path());
    }

    // CA files before the hosts.toml naming them (render_files orders them so).
    std::map<std::string, std::set<std::string>> names_per_host;
    for (const auto& f : tree.files) {
      if (f.path.rfind(std::string(registry_dir) + "/", 0) != 0 || f.path == manifest_path) {
        continue;
      }
      const fs::path p = f.path;
      names_per_host[p.parent_path().filename().string()].insert(p.filename().string());
      pub.publish(f);
    }

    // Whatever else is in a managed directory is stale: a CA that was replaced, a temporary
    // file a crash left behind, or what was there before an adoption.
    for (const auto& h : tree.hosts) {
      const fs::path dir = out / reg / h;
      std::vector<std::string> stale;
      if (fs::is_directory(dir, ec)) {
        for (const auto& entry : fs::directory_iterator(dir, ec)) {
          const std::string name = entry.path().filename().string();
          if (names_per_host[h].count(name) == 0) stale.push_back(name);
        }
        if (ec) fail("cannot list " + dir.string() + ": " + describe(ec));
      }
      std::sort(stale.begin(), stale.end());
      for (const auto& name : stale) pub.remove(reg / h / name, false);
      if (!stale.empty()) pub.sync(reg / h);
    }

    // Directories registryd made and no longer needs. Hand-made ones are not in `managed`.
    bool removed_dirs = false;
    for (const auto& h : managed) {
      if (wanted.count(h) != 0) continue;
      const fs::path dir = out / reg / h;
      const auto st = fs::symlink_status(dir, ec);
      if (!ec && st.type() != fs::file_type::not_found) {
        pub.remove(reg / h, true);
        removed_dirs = true;
      }
    }
    if (removed_dirs) pub.sync(reg);

    // Narrow the manifest to what is now managed, then the drop-ins that point at the tree.
    for (const auto& f : tree.files) {
      if (f.path == manifest_path) pub.publish(f);
    }
    for (const auto& f : tree.files) {
      if (is_dropin(f.path)) pub.publish(f);
    }
  } catch (const failure& e) {
    return util::error{e.message};
  } catch (const fs::filesystem_error& e) {
    return util::error{e.what()};
  }
  return report;
}

}  // namespace registryd::containerd
