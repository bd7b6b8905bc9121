#include "registry_server.hpp"

#include <registryd/mirror/engine.hpp>
#include <registryd/oci/layout.hpp>

#include <catch2/catch.hpp>

#include <fstream>

namespace fs = std::filesystem;
using nlohmann::json;
using registryd::mirror::progress_sink;
using registryd::mirror::pull_request;
using registryd::mirror::push_request;
using registryd::oci::digest;
using registryd::oci::digest_of;
using registryd::oci::client::registry_client;
using registryd::test::image_manifest;
using registryd::test::registry_server;
using registryd::test::scratch_dir;
namespace mirror = registryd::mirror;
namespace oci = registryd::oci;

namespace {

constexpr const char* oci_manifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* oci_index = "application/vnd.oci.image.index.v1+json";

// Records what the engine reports.
struct recorder final : progress_sink {
  std::vector<std::string> items, lines, phases;
  std::uint64_t bytes = 0;
  void begin(std::string_view verb, std::uint64_t, std::size_t) override { phases.emplace_back(verb); }
  void add_bytes(std::uint64_t n) override { bytes += n; }
  void item(std::string_view how, const digest& d, std::uint64_t) override {
    items.push_back(std::string(how) + " " + d.str());
  }
  void line(std::string_view text) override { lines.emplace_back(text); }
  void end() override {}
  std::size_t count(const std::string& how) const {
    std::size_t n = 0;
    for (const auto& i : items) n += i.rfind(how + " ", 0) == 0;
    return n;
  }
};

struct image {
  std::string manifest;
  digest manifest_digest = digest_of("");
  std::vector<digest> blobs;
};

// An image with a config and two layers (the first `layer_size` bytes) pushed to `repo`.
image push_image(registry_server& s, const std::string& repo, const std::string& tag, const std::string& seed,
                 std::size_t layer_size = 64 * 1024) {
  auto& f = s.local();
  const std::string config = R"({"architecture":"amd64","os":"linux","seed":")" + seed + "\"}";
  std::string layer1(layer_size, '\0');
  for (std::size_t i = 0; i < layer1.size(); ++i) layer1[i] = static_cast<char>((i * 7 + seed.size() * 13 + seed[0]) % 251);
  const std::string layer2 = "second layer of " + seed;
  image img;
  img.blobs = {f.push_blob(repo, config), f.push_blob(repo, layer1), f.push_blob(repo, layer2)};
  img.manifest = image_manifest(img.blobs[0], config.size(), {{img.blobs[1], layer1.size()}, {img.blobs[2], layer2.size()}});
  img.manifest_digest = digest_of(img.manifest);
  REQUIRE(f.push_manifest(repo, tag, img.manifest).status == 201);
  return img;
}

// A two-image index pushed to `repo` as `tag`; its digest.
digest push_index(registry_server& s, const std::string& repo, const std::string& tag, const image& a, const image& b) {
  json idx = {{"schemaVersion", 2}, {"mediaType", oci_index}, {"manifests", json::array()}};
  for (const auto* i : {&a, &b}) {
    idx["manifests"].push_back({{"mediaType", oci_manifest}, {"digest", i->manifest_digest.str()}, {"size", i->manifest.size()}});
  }
  REQUIRE(s.local().push_manifest(repo, tag, idx.dump(), oci_index).status == 201);
  return digest_of(idx.dump());
}

// The manifest bytes `tag` names in the registry.
std::string manifest_bytes(registry_server& s, const std::string& tag) {
  return s.local()("GET", "/v2/app/manifests/" + tag).body;
}

mirror::transfer_options fast_retries() {
  mirror::transfer_options t;
  t.retry = {4, std::chrono::milliseconds(1)};
  return t;
}

pull_request pull_of(const std::string& repo, std::vector<std::string> tags, fs::path bundle) {
  pull_request r;
  r.repositories.push_back({repo, {}});
  r.repositories[0].what.tags = std::move(tags);
  r.root = repo;
  r.bundle = std::move(bundle);
  r.transfer = fast_retries();
  return r;
}

// The tag -> digest entries of a layout's index.json.
std::map<std::string, std::string> tags_of(const fs::path& layout_dir) {
  auto layout = oci::image_layout::open(layout_dir);
  REQUIRE(layout);
  std::map<std::string, std::string> out;
  const auto index = layout->read_index();
  REQUIRE(index);
  for (const auto& e : *index) {
    if (auto t = oci::ref_name(e)) out[*t] = e.digest.str();
  }
  return out;
}

}  // namespace

TEST_CASE("pull copies tags and what they reference into a layout, and a re-run fetches no blob again", "[mirror]") {
  registry_server src;
  const image amd = push_image(src, "app", "v1", "amd64");
  const image arm = push_image(src, "app", "arm", "arm64v8");
  const digest multi = push_index(src, "app", "multi", amd, arm);
  scratch_dir dir;
  registry_client client(src.options());
  recorder rec;
  auto pulled = mirror::pull(client, pull_of("app", {"v1", "multi"}, dir.path() / "bundle"), rec);
  REQUIRE(pulled);
  CHECK(pulled->tags == 2);
  CHECK(pulled->manifests == 3);  // v1 (also a child of multi), arm, the index
  CHECK(pulled->blobs == 6);
  CHECK(pulled->chunks == 0);
  CHECK(rec.count("pulled") == 6);
  const auto tags = tags_of(dir.path() / "bundle");
  CHECK(tags.at("v1") == amd.manifest_digest.str());
  CHECK(tags.at("multi") == multi.str());
  auto layout = oci::image_layout::open(dir.path() / "bundle");
  for (const auto* i : {&amd, &arm}) {
    for (const auto& b : i->blobs) CHECK(layout->verify_blob(b));
  }

  const auto blob_gets = src.count("GET", "/blobs/");
  recorder again;
  auto rerun = mirror::pull(client, pull_of("app", {"v1", "multi"}, dir.path() / "bundle"), again);
  REQUIRE(rerun);
  CHECK(again.count("already in the layout") == 6);
  CHECK(src.count("GET", "/blobs/") == blob_gets);
}

TEST_CASE("pull resumes a partial blob with a Range request from where the file stops", "[mirror]") {
  registry_server src;
  const image img = push_image(src, "app", "v1", "big", 300 * 1024);
  scratch_dir dir;
  {
    // An earlier run that stopped 100 KiB into the big layer.
    auto layout = oci::image_layout::open(dir.path() / "bundle", true);
    REQUIRE(layout);
    auto w = layout->write_blob(img.blobs[1], 300 * 1024);
    REQUIRE(w);
    std::string first(100 * 1024, '\0');
    for (std::size_t i = 0; i < first.size(); ++i) first[i] = static_cast<char>((i * 7 + 3 * 13 + 'b') % 251);
    REQUIRE(w->write(first));
  }  // not committed: the partial file stays
  registry_client client(src.options());
  recorder rec;
  auto pulled = mirror::pull(client, pull_of("app", {"v1"}, dir.path() / "bundle"), rec);
  INFO((pulled ? std::string() : pulled.error_message()));
  REQUIRE(pulled);
  CHECK(rec.count("pulled (resumed at byte 102400)") == 1);
  bool ranged = false;
  for (const auto& r : src.requests()) ranged = ranged || (r.find(img.blobs[1].str()) != std::string::npos && r.find("Range: bytes=102400-") != std::string::npos);
  CHECK(ranged);
  auto layout = oci::image_layout::open(dir.path() / "bundle");
  CHECK(layout->verify_blob(img.blobs[1], 300 * 1024));
}

TEST_CASE("a tar in chunks pulled from one registry and pushed into another keeps every digest", "[mirror]") {
  registry_server src, dst;
  const image amd = push_image(src, "app", "v1", "amd64", 200 * 1024);
  const image arm = push_image(src, "app", "arm", "arm64v8", 200 * 1024);
  const digest multi = push_index(src, "app", "multi", amd, arm);
  scratch_dir dir;
  registry_client from(src.options()), to(dst.options());
  recorder rec;
  auto req = pull_of("app", {"v1", "multi"}, dir.path() / "b.tar");
  req.chunk_size = 128 * 1024;
  auto pulled = mirror::pull(from, req, rec);
  REQUIRE(pulled);
  CHECK(pulled->chunks > 1);
  CHECK_FALSE(fs::exists(dir.path() / "b.tar.work"));  // removed once the tar is written

  recorder pushing;
  auto pushed = mirror::push(to, push_request{dir.path() / "b.tar.chunk-0000", "copied/app", fast_retries()}, pushing);
  REQUIRE(pushed);
  CHECK(pushed->tags == 2);
  CHECK(pushed->manifests == pulled->manifests);  // the same count on both sides
  CHECK(pushed->blobs == pulled->blobs);
  CHECK(pushed->blobs_skipped == 0);
  CHECK(dst.local()("HEAD", "/v2/copied/app/manifests/v1").header("Docker-Content-Digest") == amd.manifest_digest.str());
  registryd::test::call_options accept_index;
  accept_index.headers = {{"Accept", oci_index}};
  CHECK(dst.local()("GET", "/v2/copied/app/manifests/multi", accept_index).header("Docker-Content-Digest") == multi.str());
  CHECK(dst.local()("GET", "/v2/copied/app/blobs/" + arm.blobs[1].str()).status == 200);

  recorder again;
  auto repushed = mirror::push(to, push_request{dir.path() / "b.tar.chunk-0000", "copied/app", fast_retries()}, again);
  REQUIRE(repushed);
  CHECK(repushed->blobs_skipped == repushed->blobs);
  CHECK(repushed->bytes_sent == 0);
}

TEST_CASE("push stops at a corrupt blob in the bundle, naming it, and tags nothing", "[mirror]") {
  registry_server src, dst;
  const image img = push_image(src, "app", "v1", "x");
  scratch_dir dir;
  registry_client from(src.options()), to(dst.options());
  recorder rec;
  REQUIRE(mirror::pull(from, pull_of("app", {"v1"}, dir.path() / "layout"), rec));
  auto layout = oci::image_layout::open(dir.path() / "layout");
  {
    std::fstream f(layout->blob_path(img.blobs[1]), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('\x7f');
  }
  auto pushed = mirror::push(to, push_request{dir.path() / "layout", "app", fast_retries()}, rec);
  REQUIRE_FALSE(pushed);
  CHECK_THAT(pushed.error_message(), Catch::Contains(img.blobs[1].str()));
  CHECK(dst.local()("GET", "/v2/app/manifests/v1").status == 404);
}

TEST_CASE("pull retries failures that may pass, and gives up on the others at once", "[mirror]") {
  registry_server src;
  push_image(src, "app", "v1", "r");
  scratch_dir dir;
  registry_client client(src.options());
  recorder rec;
  src.fail_next(2, 503);
  CHECK(mirror::pull(client, pull_of("app", {"v1"}, dir.path() / "a"), rec));
  src.fail_next(1, 401);
  auto refused = mirror::pull(client, pull_of("app", {"v1"}, dir.path() / "b"), rec);
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error_message(), Catch::Contains("manifest v1 of app"));
  auto missing = mirror::pull(client, pull_of("app", {"nope"}, dir.path() / "c"), rec);
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error_message(), Catch::Contains("manifest nope of app"));
}

TEST_CASE("a selection names exactly one thing, and releases are the newest vX.Y.Z by semver", "[mirror]") {
  registry_server src;
  for (const char* t : {"v1.2.3", "v1.10.0", "v0.9.0", "latest"}) push_image(src, "app", t, t);
  scratch_dir dir;
  registry_client client(src.options());
  recorder rec;
  pull_request r = pull_of("app", {}, dir.path() / "rel");
  r.repositories[0].what.releases = 2;
  auto pulled = mirror::pull(client, r, rec);
  REQUIRE(pulled);
  const auto tags = tags_of(dir.path() / "rel");
  CHECK(tags.size() == 2);
  CHECK(tags.count("v1.10.0") == 1);
  CHECK(tags.count("v1.2.3") == 1);

  pull_request none = pull_of("app", {}, dir.path() / "none");
  CHECK_FALSE(mirror::pull(client, none, rec));
  pull_request two = pull_of("app", {"v1.2.3"}, dir.path() / "two");
  two.repositories[0].what.all = true;
  CHECK_FALSE(mirror::pull(client, two, rec));
  pull_request both = pull_of("app", {"latest"}, dir.path() / "both");  // repo:latest@digest
  both.repositories[0].what.digests = {digest_of(manifest_bytes(src, "v1.2.3"))};
  auto pulled_both = mirror::pull(client, both, rec);
  REQUIRE(pulled_both);
  CHECK(pulled_both->manifests == 2);
  pull_request bad = pull_of("app", {"-x"}, dir.path() / "bad");
  CHECK_THAT(mirror::pull(client, bad, rec).error_message(), Catch::Contains("'-x' is not a valid tag"));
  pull_request chunks = pull_of("app", {"latest"}, dir.path() / "dir-bundle");
  chunks.chunk_size = 1024;
  CHECK_THAT(mirror::pull(client, chunks, rec).error_message(), Catch::Contains("tar"));
}

TEST_CASE("several repositories go into one bundle and come back below the destination, shared blobs mounted",
          "[mirror]") {
  registry_server src, dst;
  const image platform = push_image(src, "deckhouse/ee", "v1.60.1", "platform");
  const image install = push_image(src, "deckhouse/ee/install", "v1.60.1", "install");
  // The same image as the platform's, in another repository.
  const image ingress = push_image(src, "deckhouse/ee/modules/ingress", "v2", "platform");
  scratch_dir dir;
  registry_client from(src.options()), to(dst.options());
  pull_request req;
  req.root = "deckhouse/ee";
  req.repositories = {{"deckhouse/ee", {}}, {"deckhouse/ee/install", {}}, {"deckhouse/ee/modules/ingress", {}}};
  req.repositories[0].what.tags = {"v1.60.1"};
  req.repositories[1].what.tags = {"v1.60.1"};
  req.repositories[2].what.digests = {ingress.manifest_digest};
  req.bundle = dir.path() / "platform.tar";
  req.transfer = fast_retries();
  req.keep_work_dir = true;
  recorder rec;
  auto pulled = mirror::pull(from, req, rec);
  INFO((pulled ? std::string() : pulled.error_message()));
  REQUIRE(pulled);
  CHECK(pulled->repositories == 3);
  CHECK(pulled->tags == 2);
  CHECK(pulled->manifests == 2);  // ingress's is the platform's
  CHECK(pulled->blobs == 6);
  const auto tags = tags_of(dir.path() / "platform.tar.work");
  CHECK(tags.at("v1.60.1") == platform.manifest_digest.str());
  CHECK(tags.at("install:v1.60.1") == install.manifest_digest.str());
  CHECK(tags.at("modules/ingress@" + ingress.manifest_digest.str()) == ingress.manifest_digest.str());

  auto verified = mirror::verify_bundle(dir.path() / "platform.tar");
  REQUIRE(verified);
  CHECK(verified->repositories == 3);
  CHECK(verified->tags == 2);

  recorder pushing;
  push_request to_dst{dir.path() / "platform.tar", "system/deckhouse", fast_retries()};
  auto pushed = mirror::push(to, to_dst, pushing);
  INFO((pushed ? std::string() : pushed.error_message()));
  REQUIRE(pushed);
  CHECK(pushed->repositories == 3);
  CHECK(pushed->tags == pulled->tags);  // the same counts on both sides
  CHECK(pushed->manifests == pulled->manifests);
  CHECK(pushed->blobs == pulled->blobs);
  CHECK(pushed->blobs_mounted == 3);  // ingress's blobs, sent once for the platform
  CHECK(dst.local()("HEAD", "/v2/system/deckhouse/manifests/v1.60.1").header("Docker-Content-Digest") ==
        platform.manifest_digest.str());
  CHECK(dst.local()("HEAD", "/v2/system/deckhouse/install/manifests/v1.60.1").header("Docker-Content-Digest") ==
        install.manifest_digest.str());
  CHECK(dst.local()("HEAD", "/v2/system/deckhouse/modules/ingress/manifests/" + ingress.manifest_digest.str()).status ==
        200);
  CHECK(dst.local()("GET", "/v2/system/deckhouse/modules/ingress/blobs/" + ingress.blobs[1].str()).status == 200);
}

TEST_CASE("a missing tag fails the pull naming it, or with keep_going is named and skipped", "[mirror]") {
  registry_server src;
  push_image(src, "app", "v1", "k");
  scratch_dir dir;
  registry_client client(src.options());
  recorder rec;
  auto failed = mirror::pull(client, pull_of("app", {"v1", "gone"}, dir.path() / "a"), rec);
  REQUIRE_FALSE(failed);
  CHECK_THAT(failed.error_message(), Catch::Contains("manifest gone of app") && Catch::Contains("--keep-going"));
  auto req = pull_of("app", {"v1", "gone"}, dir.path() / "b");
  req.keep_going = true;
  auto pulled = mirror::pull(client, req, rec);
  REQUIRE(pulled);
  CHECK(pulled->tags == 1);
  CHECK(pulled->missing == std::vector<std::string>{"app:gone"});
  CHECK(tags_of(dir.path() / "b").size() == 1);
}

TEST_CASE("a dry run reports what would move and writes nothing on either side", "[mirror]") {
  registry_server src, dst;
  const image img = push_image(src, "app", "v1", "dry", 128 * 1024);
  scratch_dir dir;
  registry_client from(src.options()), to(dst.options());
  recorder rec;
  auto req = pull_of("app", {"v1"}, dir.path() / "d.tar");
  req.transfer.dry_run = true;
  auto would = mirror::pull(from, req, rec);
  REQUIRE(would);
  CHECK(would->blobs == 3);
  CHECK(would->bytes_to_fetch == would->bytes);
  CHECK_FALSE(fs::exists(dir.path() / "d.tar.work"));
  CHECK_FALSE(fs::exists(dir.path() / "d.tar"));
  CHECK(src.count("GET", "/blobs/") == 0);

  req.transfer.dry_run = false;
  req.keep_work_dir = true;
  REQUIRE(mirror::pull(from, req, rec));
  req.transfer.dry_run = true;
  auto again = mirror::pull(from, req, rec);
  REQUIRE(again);
  CHECK(again->blobs_present == 3);
  CHECK(again->bytes_to_fetch == 0);

  push_request p{dir.path() / "d.tar", "app", fast_retries()};
  p.transfer.dry_run = true;
  auto push_would = mirror::push(to, p, rec);
  REQUIRE(push_would);
  CHECK(push_would->bytes_sent == would->bytes);
  CHECK(push_would->tags == 1);
  CHECK(dst.count("POST", "/blobs/uploads/") == 0);
  CHECK(dst.local()("GET", "/v2/app/blobs/" + img.blobs[1].str()).status == 404);
}

TEST_CASE("push sends a large blob in chunks and resumes a chunk that failed from the destination's offset",
          "[mirror]") {
  registry_server src, dst;
  const image img = push_image(src, "app", "v1", "chunky", 300 * 1024);
  scratch_dir dir;
  registry_client from(src.options()), to(dst.options());
  recorder rec;
  REQUIRE(mirror::pull(from, pull_of("app", {"v1"}, dir.path() / "c.tar"), rec));
  push_request p{dir.path() / "c.tar", "app", fast_retries()};
  p.chunk_bytes = 64 * 1024;
  p.transfer.parallel = 1;
  dst.fail_next(1, 503, "PATCH");
  auto pushed = mirror::push(to, p, rec);
  INFO((pushed ? std::string() : pushed.error_message()));
  REQUIRE(pushed);
  CHECK(pushed->resumed == 1);
  CHECK(dst.count("PATCH", "/blobs/uploads/") == 300 / 64 + 1 + 1);  // five chunks, one sent twice
  CHECK(dst.local()("GET", "/v2/app/blobs/" + img.blobs[1].str()).body.size() == 300 * 1024);
  CHECK(dst.local()("HEAD", "/v2/app/manifests/v1").status == 200);
}

TEST_CASE("a cancelled push stops, cancels the upload it had open, and a re-run completes", "[mirror]") {
  registry_server src, dst;
  push_image(src, "app", "v1", "cancel", 256 * 1024);
  scratch_dir dir;
  registry_client from(src.options()), to(dst.options());
  recorder rec;
  REQUIRE(mirror::pull(from, pull_of("app", {"v1"}, dir.path() / "x.tar"), rec));

  // Cancelled as soon as the first bytes of a blob are read.
  struct cancelling final : progress_sink {
    std::atomic<bool>& flag;
    explicit cancelling(std::atomic<bool>& f) : flag(f) {}
    void begin(std::string_view, std::uint64_t, std::size_t) override {}
    void add_bytes(std::uint64_t) override { flag = true; }
    void item(std::string_view, const digest&, std::uint64_t) override {}
    void line(std::string_view) override {}
    void end() override {}
  };
  std::atomic<bool> cancel{false};
  cancelling sink(cancel);
  push_request p{dir.path() / "x.tar", "app", fast_retries()};
  p.transfer.cancel = &cancel;
  p.transfer.parallel = 1;
  auto stopped = mirror::push(to, p, sink);
  REQUIRE_FALSE(stopped);
  CHECK(stopped.error_message() == mirror::interrupted_error);
  CHECK(dst.count("DELETE", "/blobs/uploads/") >= 1);
  CHECK(dst.local()("HEAD", "/v2/app/manifests/v1").status == 404);

  cancel = false;
  p.transfer.cancel = nullptr;
  auto resumed = mirror::push(to, p, rec);
  REQUIRE(resumed);
  CHECK(dst.local()("HEAD", "/v2/app/manifests/v1").status == 200);
}

TEST_CASE("pull fetches blobs several at a time and each lands once", "[mirror]") {
  registry_server src;
  std::vector<image> images;
  for (int i = 0; i < 6; ++i) images.push_back(push_image(src, "app", "t" + std::to_string(i), "p" + std::to_string(i)));
  scratch_dir dir;
  registry_client client(src.options());
  recorder rec;
  auto req = pull_of("app", {"t0", "t1", "t2", "t3", "t4", "t5"}, dir.path() / "par");
  req.transfer.parallel = 4;
  auto pulled = mirror::pull(client, req, rec);
  REQUIRE(pulled);
  CHECK(pulled->blobs == rec.count("pulled"));
  CHECK(src.count("GET", "/blobs/") == pulled->blobs);
  auto layout = oci::image_layout::open(dir.path() / "par");
  for (const auto& i : images) {
    for (const auto& b : i.blobs) CHECK(layout->verify_blob(b));
  }
}

TEST_CASE("a push that fails halfway through a chunked blob leaves the upload open, and the next push goes on from "
          "the destination's offset",
          "[mirror]") {
  registry_server src, dst;
  const image img = push_image(src, "app", "v1", "journal", 300 * 1024);
  scratch_dir dir;
  registry_client from(src.options()), to(dst.options());
  recorder rec;
  REQUIRE(mirror::pull(from, pull_of("app", {"v1"}, dir.path() / "j.tar"), rec));
  push_request p{dir.path() / "j.tar", "app", fast_retries()};
  p.chunk_bytes = 64 * 1024;
  p.transfer.parallel = 1;
  p.transfer.retry.attempts = 2;
  p.upload_journal = dir.path() / "state" / "uploads.json";
  dst.fail_next(100, 503, "PATCH", 2);  // two chunks arrive, then the destination fails
  auto failed = mirror::push(to, p, rec);
  REQUIRE_FALSE(failed);
  CHECK(dst.count("DELETE", "/blobs/uploads/") == 0);  // kept open for the next run
  REQUIRE(fs::exists(p.upload_journal));
  CHECK_THAT(registryd::test::slurp(p.upload_journal), Catch::Contains(img.blobs[1].str()));

  dst.fail_next(0);
  const auto patches_before = dst.count("PATCH", "/blobs/uploads/");
  recorder again;
  auto pushed = mirror::push(to, p, again);
  INFO((pushed ? std::string() : pushed.error_message()));
  REQUIRE(pushed);
  CHECK(pushed->uploads_continued == 1);
  CHECK(dst.count("PATCH", "/blobs/uploads/") - patches_before == 3);  // chunks 3 to 5 only
  bool said = false;
  for (const auto& l : again.lines) said = said || l.find("at byte 131072, where an earlier push left it") != std::string::npos;
  CHECK(said);
  CHECK(dst.local()("GET", "/v2/app/blobs/" + img.blobs[1].str()).body.size() == 300 * 1024);
  CHECK_THAT(registryd::test::slurp(p.upload_journal), !Catch::Contains(img.blobs[1].str()));
}
