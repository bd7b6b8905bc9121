// registryd rotate: image rotation for a Local registry filled release after release. Keeps
// the --keep newest release tags (vMAJOR.MINOR.PATCH, semver order) in system/deckhouse and the
// repositories below it (or --repository), deletes the older release tags and the manifests
// only they reached; other tags stay. GC then reclaims the blobs (--gc runs it at once).
// Exit 0 done, 1 errors, 2 bad flags. docs/gc.md.
#include "commands.hpp"
#include "store_cli.hpp"

#include <registryd/oci/storage/gc.hpp>
#include <registryd/oci/storage/retention.hpp>

#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

namespace registryd::cli {
namespace {

namespace storage = oci::storage;

struct rotate_args {
  host_flags host;
  std::size_t keep = 0;
  std::vector<std::string> repositories;
  bool no_recursive = false;
  bool dry_run = false;
  bool gc = false;
  bool json = false;
};

std::string joined(const std::vector<std::string>& v) {
  if (v.empty()) return "none";
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

int rotate(const rotate_args& args) {
  auto store = open_store(args.host, "rotate");
  if (!store) return exit_invalid;
  storage::rotation_options options;
  options.keep = args.keep;
  if (!args.repositories.empty()) options.repositories = args.repositories;
  options.recursive = !args.no_recursive;
  options.dry_run = args.dry_run;
  const auto report = storage::rotate_releases(*store->repos, options);
  for (const auto& e : report.errors) std::cerr << "registryd rotate: " << e << "\n";

  std::optional<storage::gc_report> gc;
  if (args.gc && !args.dry_run && !report.skipped) {
    storage::gc_options gc_options;  // the default grace: a push under way keeps its blobs
    gc = storage::run_gc(*store->repos, *store->uploads, gc_options);
    for (const auto& e : gc->errors) std::cerr << "registryd rotate: gc: " << e << "\n";
  }

  if (args.json) {
    nlohmann::json repos = nlohmann::json::array();
    for (const auto& r : report.repositories) {
      repos.push_back({{"name", r.name},
                       {"keptReleases", r.kept_releases},
                       {"deletedReleases", r.deleted_releases},
                       {"otherTags", r.other_tags},
                       {"deletedManifests", r.deleted_manifests}});
    }
    nlohmann::json out{{"dryRun", report.dry_run},
                       {"skipped", report.skipped},
                       {"tagsDeleted", report.tags_deleted},
                       {"manifestsDeleted", report.manifests_deleted},
                       {"repositories", repos},
                       {"errors", report.errors}};
    if (gc) out["gc"] = {{"blobs", gc->blobs.count}, {"bytes", gc->blobs.bytes}, {"errors", gc->errors}};
    std::cout << out.dump(2) << "\n";
  } else {
    const std::string verb = args.dry_run ? "would delete" : "deleted";
    for (const auto& r : report.repositories) {
      std::cout << r.name << ": keep " << joined(r.kept_releases) << "; " << verb << " "
                << joined(r.deleted_releases) << "; other tags kept: " << joined(r.other_tags) << "\n";
      for (const auto& m : r.deleted_manifests) std::cout << "  " << verb << " manifest " << r.name << "@" << m << "\n";
    }
    std::cout << report.summary() << "\n";
    if (gc) {
      std::cout << "gc: " << gc->summary() << "\n";
    } else if (!args.dry_run && report.manifests_deleted > 0) {
      std::cout << "run registryd gc to reclaim their blobs\n";
    }
  }
  const bool ok = report.errors.empty() && !report.skipped && (!gc || gc->errors.empty());
  return ok ? exit_ok : exit_refused;
}

}  // namespace

command add_rotate(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "rotate",
      "Image rotation: keep the images of the --keep newest platform releases (release tags "
      "vMAJOR.MINOR.PATCH in semver order) in system/deckhouse and the repositories below it, "
      "and delete older release tags and the manifests only they reach. Other tags (channels, "
      "latest, pre-releases) stay. Then run registryd gc (or pass --gc). See docs/gc.md.");
  auto args = std::make_shared<rotate_args>();
  args->host.add_to(*sub, storage_flags);
  sub->add_option("--keep", args->keep, "How many of the newest releases each repository keeps")
      ->required()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  sub->add_option("--repository", args->repositories,
                  "A repository to rotate, with those below it (repeat the flag; default "
                  "system/deckhouse)");
  sub->add_flag("--no-recursive", args->no_recursive, "Only the named repositories, not those below");
  sub->add_flag("--dry-run,-n", args->dry_run, "Print what would be deleted; delete nothing");
  sub->add_flag("--gc", args->gc, "Run garbage collection (default grace) right after");
  sub->add_flag("--json", args->json, "Print the report as JSON");
  return [args] { return rotate(*args); };
}

}  // namespace registryd::cli
