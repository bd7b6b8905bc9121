// registryd fsck: checks the image store under the data dir (every blob re-hashed, every link,
// tag, manifest and referrer entry) and, with --repair, repairs what can be. Each problem is
// printed with its path and reason. Exit 0 clean, 1 problems found (repaired or not; a second
// run says whether any are left), 2 bad flags. docs/gc.md.
#include "commands.hpp"
#include "store_cli.hpp"

#include <registryd/oci/storage/fsck.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <iostream>
#include <memory>

namespace registryd::cli {
namespace {

namespace storage = oci::storage;

struct fsck_args {
  host_flags host;
  bool repair = false;
  bool no_verify = false;
  bool json = false;
};

int fsck(const fsck_args& args) {
  auto store = open_store(args.host, "fsck");
  if (!store) return exit_invalid;
  storage::fsck_options options;
  options.repair = args.repair;
  options.verify_blobs = !args.no_verify;
  options.on_problem = [&](const storage::fsck_problem& p) {
    if (args.json) return;
    std::cout << storage::to_string(p.kind) << ": " << p.path.string() << ": " << p.reason;
    if (!p.repair.empty()) std::cout << " [" << (p.repaired ? "repaired: " : "") << p.repair << "]";
    std::cout << "\n";
  };
  const auto& interrupted = watch_interrupts();
  options.should_stop = [&interrupted] { return interrupted.load(); };

  const auto report = storage::run_fsck(*store->repos, options);
  if (report.skipped) {
    std::cerr << "registryd fsck: another garbage collection, repair or rotation is running; try again\n";
    return exit_refused;
  }
  if (args.json) {
    nlohmann::json problems = nlohmann::json::array();
    for (const auto& p : report.problems) {
      problems.push_back({{"kind", storage::to_string(p.kind)},
                          {"repository", p.repository},
                          {"path", p.path.string()},
                          {"reason", p.reason},
                          {"repaired", p.repaired},
                          {"repair", p.repair}});
    }
    std::cout << nlohmann::json{{"repair", report.repair},
                                {"stopped", report.stopped},
                                {"blobs", report.blobs},
                                {"blobBytes", report.blob_bytes},
                                {"repositories", report.repositories},
                                {"manifests", report.manifests},
                                {"tags", report.tags},
                                {"links", report.links},
                                {"referrers", report.referrers},
                                {"repaired", report.repaired},
                                {"problems", problems}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << report.summary() << "\n";
  }
  return report.clean() && !report.stopped ? exit_ok : exit_refused;
}

}  // namespace

command add_fsck(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "fsck",
      "Check the image store under --data-dir: every blob against its digest, every link, tag, "
      "manifest and referrer entry. Prints each problem with its path and reason. --repair "
      "moves corrupt blobs to <data-dir>/quarantine and removes dangling links and tags. Exit 0 "
      "clean, 1 problems found. See docs/gc.md.");
  auto args = std::make_shared<fsck_args>();
  args->host.add_to(*sub, storage_flags);
  sub->add_flag("--repair", args->repair, "Repair what can be repaired (docs/gc.md lists how)");
  sub->add_flag("--no-verify", args->no_verify, "Do not re-hash blobs: check the structure only");
  sub->add_flag("--json", args->json, "Print the report as JSON");
  return [args] { return fsck(*args); };
}

}  // namespace registryd::cli
