// registryd gc: garbage collection of the image store under the data dir, online (the registry
// may keep serving while it runs). Prints each thing it deletes (or, with --dry-run, would
// delete) and a summary with counts and bytes. Exit 0 done, 1 errors (or another run holds
// the lock), 2 bad flags. docs/gc.md.
#include "commands.hpp"
#include "store_cli.hpp"

#include <registryd/oci/storage/gc.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <iostream>
#include <memory>

namespace registryd::cli {
namespace {

namespace storage = oci::storage;

struct gc_args {
  host_flags host;
  bool dry_run = false;
  std::string grace = "1h";
  std::string upload_grace = "24h";
  bool delete_untagged = false;
  bool quiet = false;
  bool json = false;
};

std::string describe(const storage::gc_item& i) {
  using k = storage::gc_item_kind;
  switch (i.kind) {
    case k::blob: return "blob " + i.name + " (" + storage::format_bytes(i.bytes) + ")";
    case k::link: return "link " + i.repository + " -> " + i.name;
    case k::manifest: return "manifest " + i.repository + "@" + i.name;
    case k::upload:
      return "upload " + i.name + " (" + (i.repository.empty() ? std::string("torn") : i.repository) + ", " +
             storage::format_bytes(i.bytes) + ")";
    case k::temporary: return "temporary " + i.name + " (" + storage::format_bytes(i.bytes) + ")";
  }
  return i.name;
}

nlohmann::json count_json(const storage::gc_count& c) { return {{"count", c.count}, {"bytes", c.bytes}}; }

int gc(const gc_args& args) {
  auto store = open_store(args.host, "gc");
  if (!store) return exit_invalid;
  storage::gc_options options;
  options.dry_run = args.dry_run;
  options.grace = *parse_duration(args.grace);
  options.upload_grace = *parse_duration(args.upload_grace);
  options.delete_untagged = args.delete_untagged;
  nlohmann::json items = nlohmann::json::array();
  options.on_item = [&](const storage::gc_item& i) {
    if (args.json) {
      items.push_back({{"kind", storage::to_string(i.kind)}, {"repository", i.repository}, {"name", i.name},
                       {"bytes", i.bytes}});
    } else if (!args.quiet) {
      std::cout << (args.dry_run ? "would delete " : "deleted ") << describe(i) << "\n";
    }
  };
  const auto& interrupted = watch_interrupts();
  options.should_stop = [&interrupted] { return interrupted.load(); };

  const auto report = storage::run_gc(*store->repos, *store->uploads, options);
  for (const auto& e : report.errors) std::cerr << "registryd gc: " << e << "\n";
  if (args.json) {
    std::cout << nlohmann::json{{"dryRun", report.dry_run},
                                {"skipped", report.skipped},
                                {"stopped", report.stopped},
                                {"blobs", count_json(report.blobs)},
                                {"links", count_json(report.links)},
                                {"manifests", count_json(report.manifests)},
                                {"uploads", count_json(report.uploads)},
                                {"temporaries", count_json(report.temporaries)},
                                {"blobsKept", count_json(report.blobs_kept)},
                                {"manifestsKept", report.manifests_kept},
                                {"repositories", report.repositories},
                                {"rescued", report.rescued},
                                {"durationMs", report.duration.count()},
                                {"items", items},
                                {"errors", report.errors}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << report.summary() << "\n";
  }
  return report.errors.empty() && !report.stopped ? exit_ok : exit_refused;
}

}  // namespace

command add_gc(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "gc",
      "Garbage-collect the image store under --data-dir while the registry keeps serving: blobs "
      "no manifest or link keeps, links no manifest references, abandoned uploads and stale "
      "temporaries, each only once older than its grace period. Prints every deletion and a "
      "summary. Exit 0 done, 1 errors or another run in progress. See docs/gc.md.");
  auto args = std::make_shared<gc_args>();
  args->host.add_to(*sub, storage_flags);
  sub->add_flag("--dry-run,-n", args->dry_run, "Print what would be deleted; delete nothing");
  sub->add_option("--grace", args->grace,
                  "Keep blobs, links and untagged manifests younger than this (a push in progress "
                  "is younger); 0s is allowed, what is touched after the run starts is kept anyway")
      ->check(duration_validator())
      ->capture_default_str();
  sub->add_option("--upload-grace", args->upload_grace,
                  "Remove upload sessions and temporaries idle for longer than this")
      ->check(duration_validator())
      ->capture_default_str();
  sub->add_flag("--delete-untagged", args->delete_untagged,
                "Also delete manifests no tag reaches (index children and referrers of a kept "
                "manifest stay). Careful: images pulled only by digest are untagged");
  sub->add_flag("--quiet,-q", args->quiet, "Print the summary only");
  sub->add_flag("--json", args->json, "Print the report as JSON");
  return [args] { return gc(*args); };
}

}  // namespace registryd::cli
