// The pure half of the renderer: description -> files in memory.
#include <registryd/containerd/render.hpp>

#include "sha256.hpp"
#include "toml_text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

namespace registryd::containerd {
namespace {

namespace fs = std::filesystem;

constexpr auto mode_public = fs::perms(0644);
constexpr auto mode_secret = fs::perms(0600);

constexpr std::string_view hosts_header =
    "# Managed by registryd: this directory is rewritten on every render and removed when the\n"
    "# host is no longer configured. Edits are lost; see docs/containerd.md.\n";

std::string ca_file_name(const std::string& pem) {
  // Named by content: a new CA gets a new file, written before the hosts.toml that names it,
  // while the old hosts.toml still names the old file.
  return "ca-" + sha256_hex(pem).substr(0, 12) + ".pem";
}

std::string string_array(const std::vector<std::string>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += toml_string(values[i]);
  }
  return out + "]";
}

// hosts.toml for one host; CA files it names are added to `ca_files` (name -> PEM).
std::string hosts_toml(const registry_host& h, std::map<std::string, std::string>& ca_files) {
  std::string t(hosts_header);
  if (h.server) t += "server = " + toml_string(*h.server) + "\n";
  for (const auto& m : h.mirrors) {
    const std::string key = "host." + toml_string(m.url);
    t += "\n[" + key + "]\n";
    t += "  capabilities = " + string_array(m.capabilities) + "\n";
    if (m.ca_pem) {
      const std::string name = ca_file_name(*m.ca_pem);
      ca_files.emplace(name, *m.ca_pem);
      // Relative: containerd resolves it against the host directory (remotes/docker/config,
      // makeAbsPath), which keeps the rendered tree relocatable.
      t += "  ca = " + toml_string(name) + "\n";
    }
    if (m.skip_verify) t += "  skip_verify = true\n";
    if (m.override_path) t += "  override_path = true\n";
    if (!m.headers.empty()) {
      t += "\n  [" + key + ".header]\n";
      for (const auto& [name, values] : m.headers) {
        t += "    " + toml_string(name) + " = " +
             (values.size() == 1 ? toml_string(values.front()) : string_array(values)) + "\n";
      }
    }
    // Stock containerd ignores the two tables below (its decoder drops unknown keys); the
    // platform's patched containerd reads them.
    if (m.auth) {
      t += "\n  [" + key + ".auth]\n";
      t += "    username = " + toml_string(m.auth->username) + "\n";
      t += "    password = " + toml_string(m.auth->password) + "\n";
    }
    for (const auto& r : m.rewrites) {
      t += "\n  [[" + key + ".rewrite]]\n";
      t += "    regex = " + toml_string(r.regex) + "\n";
      t += "    replace = " + toml_string(r.replace) + "\n";
    }
  }
  return t;
}

std::string dropin(std::string_view version, std::string_view plugin, const fs::path& root) {
  std::string t =
      "# Managed by registryd: points containerd's CRI image service at the per-host registry\n"
      "# configuration. See docs/containerd.md.\n";
  t += "version = " + std::string(version) + "\n\n";
  t += "[plugins." + toml_string(plugin) + ".registry]\n";
  t += "  config_path = " + toml_string((root / registry_dir).generic_string()) + "\n";
  return t;
}

}  // namespace

util::result<rendered_tree> render_files(const description& parsed, const fs::path& final_root) {
  if (!final_root.is_absolute()) {
    return util::error{"final root \"" + final_root.string() + "\" must be an absolute path"};
  }
  const std::string root_text = final_root.generic_string();
  if (root_text.find_first_of("\n\r") != std::string::npos) {
    return util::error{"final root must not contain line breaks"};
  }

  rendered_tree tree;
  for (const auto& h : parsed.hosts) {
    std::map<std::string, std::string> ca_files;
    std::string toml = hosts_toml(h, ca_files);
    const std::string dir = std::string(registry_dir) + "/" + h.host + "/";
    for (auto& [name, pem] : ca_files) {
      tree.files.push_back({dir + name, std::move(pem), mode_public});
    }
    const bool has_secret = std::any_of(h.mirrors.begin(), h.mirrors.end(),
                                        [](const mirror& m) { return m.auth.has_value(); });
    tree.files.push_back({dir + "hosts.toml", std::move(toml), has_secret ? mode_secret : mode_public});
    tree.hosts.push_back(h.host);
  }

  // The version covers registry.d only: what nodes apply, independent of where it lives.
  std::vector<const rendered_file*> hashed;
  for (const auto& f : tree.files) hashed.push_back(&f);
  std::sort(hashed.begin(), hashed.end(),
            [](const rendered_file* a, const rendered_file* b) { return a->path < b->path; });
  std::string material;
  for (const auto* f : hashed) {
    material += f->path + '\n' + std::to_string(f->content.size()) + '\n' + f->content;
  }
  tree.config_version = sha256_hex(material);

  // No host, no drop-ins: pointing containerd at an empty registry.d would replace the node's
  // own config_path (legacy Unmanaged mode promises to leave the node as installed).
  std::vector<std::string> dropins;
  if (!tree.hosts.empty()) dropins = {dropin_v1_path, dropin_v2_path};

  std::vector<std::string> sorted_hosts = tree.hosts;
  std::sort(sorted_hosts.begin(), sorted_hosts.end());
  // dropIns records which drop-ins registryd wrote, so that a later render without hosts
  // removes exactly those.
  nlohmann::json manifest = {{"managedBy", "registryd"},
                             {"configVersion", tree.config_version},
                             {"hosts", sorted_hosts},
                             {"dropIns", dropins}};
  tree.files.push_back({manifest_path, manifest.dump(2) + "\n", mode_public});
  if (!dropins.empty()) {
    tree.files.push_back({dropin_v1_path, dropin("2", "io.containerd.grpc.v1.cri", final_root),
                          mode_public});
    tree.files.push_back({dropin_v2_path, dropin("3", "io.containerd.cri.v1.images", final_root),
                          mode_public});
  }
  return tree;
}

util::result<rendered_tree> render_files(const nlohmann::json& description_json,
                                         const fs::path& final_root) {
  auto parsed = parse_description(description_json);
  if (!parsed) return util::error{parsed.error_message()};
  return render_files(parsed.value(), final_root);
}

}  // namespace registryd::containerd
