// The packages proxy: registry content by digest, from a bounded, self-healing, coalescing
// cache (docs/packages-proxy.md, FACTS.md section 6). Not a mode: the host runs it beside the
// mode in force, on its own listener, and answers only /package through it.
//
//   GET|HEAD /package?digest=sha256:...&repository=host/path&path=sub
//
// sends the last layer of the image `repository[/path]@digest` (an image manifest, or the
// linux/amd64 child of an index), as stored. The repository defaults to the platform's own:
// the mode's upstream imagesRepo, or the cluster's own store in Local mode. Other
// repositories must be a ModuleSource's (or below one): the proxy fetches from nowhere else.
//
// Thread-safety: handle(), health() and metrics() run concurrently once start() returned.
#pragma once

#include "module_sources.hpp"
#include "package_cache.hpp"
#include "settings.hpp"

#include <registryd/oci/cache/blob_fill.hpp>
#include <registryd/oci/client/registry_client.hpp>
#include <registryd/oci/manifest.hpp>
#include <registryd/oci/storage/blob_store.hpp>
#include <registryd/oci/storage/repository_store.hpp>
#include <registryd/sdk/plugin.hpp>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>

namespace registryd::packages {

// An answer that is not the package: status and the text sent (FACTS.md's texts).
struct refusal {
  int status = 500;
  std::string text;
};

class packages_proxy final : public sdk::mode_plugin {
 public:
  packages_proxy(const sdk::host& host, const nlohmann::json& settings_doc);
  ~packages_proxy() override;

  static void validate(const nlohmann::json& settings_doc) { (void)parse_settings(settings_doc); }

  // Opens the cache (rebuilding its index), reads the ModuleSources, starts the background
  // thread (re-verification, ModuleSource polling, saving the index).
  void start() override;
  // Stops the thread, cancels fills in flight, saves the index.
  void stop() override;
  void handle(const sdk::request& req, sdk::response& res) override;
  std::string health() const override;
  void metrics(std::string& out) const override;


 private:
  // Re-reads the ModuleSources when their directory changed; true when they did.
  bool refresh_sources();
  // Where one repository's content comes from.
  struct source {
    std::string name;  // the repository: a path in the upstream registry, or a Local repository
    std::string display;  // host/path, for messages
    std::shared_ptr<const oci::client::registry_client> upstream;  // nullptr: the Local store
  };
  using sourced = std::variant<source, refusal>;

  sourced source_for(const std::optional<std::string>& repository, const std::optional<std::string>& path);
  std::shared_ptr<const oci::client::registry_client> client_for(const std::string& key,
                                                                 const oci::client::client_options& options);
  // The manifest `d` of `src` (cached, or fetched and cached), or why not.
  std::variant<std::string, refusal> manifest_bytes(const source& src, const oci::digest& d);
  // The layer the package is: the last layer of the image (of the linux/amd64 child of an index).
  std::variant<oci::descriptor, refusal> package_layer(const source& src, const oci::digest& d);
  void serve(const sdk::request& req, sdk::response& res, const source& src, const oci::digest& package,
             const oci::descriptor& layer);
  void answer_file(const sdk::request& req, sdk::response& res, const oci::digest& package,
                   oci::storage::blob_file file);
  oci::cache::fetch_fn fetch(const source& src, const oci::digest& blob);
  void background_loop();

  sdk::host host_;
  settings settings_;
  cache_counters counters_;
  module_sources sources_;

  std::unique_ptr<package_cache> cache_;
  std::unique_ptr<oci::cache::blob_fills> fills_;
  // Local mode: the cluster's own store, read only.
  std::unique_ptr<oci::storage::blob_store> local_blobs_;
  std::unique_ptr<oci::storage::repository_store> local_repos_;

  std::mutex clients_mutex_;
  std::map<std::string, std::shared_ptr<const oci::client::registry_client>> clients_;
  std::shared_ptr<const oci::client::registry_client> default_client_;

  std::mutex wake_mutex_;
  std::condition_variable wake_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace registryd::packages
