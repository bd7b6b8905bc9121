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

mirror::retry_policy fast_retries() { return {4, std::chrono::milliseconds(1)}; }

pull_request pull_of(const std::string& repo, std::vector<std::string> tags, fs::path bundle) {
  pull_request r;
  r.repository = repo;
  r.what.tags = std::move(tags);
  r.bundle = std::move(bundle);
  r.retry = fast_retries();
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
  r.what.releases = 2;
  auto pulled = mirror::pull(client, r, rec);
  REQUIRE(pulled);
  const auto tags = tags_of(dir.path() / "rel");
  CHECK(tags.size() == 2);
  CHECK(tags.count("v1.10.0") == 1);
  CHECK(tags.count("v1.2.3") == 1);

  pull_request none = pull_of("app", {}, dir.path() / "none");
  CHECK_FALSE(mirror::pull(client, none, rec));
  pull_request two = pull_of("app", {"v1.2.3"}, dir.path() / "two");
  two.what.all = true;
  CHECK_FALSE(mirror::pull(client, two, rec));
  pull_request both = pull_of("app", {"latest"}, dir.path() / "both");  // repo:latest@digest
  both.what.digest = digest_of(manifest_bytes(src, "v1.2.3"));
  auto pulled_both = mirror::pull(client, both, rec);
  REQUIRE(pulled_both);
  CHECK(pulled_both->manifests == 2);
  pull_request bad = pull_of("app", {"-x"}, dir.path() / "bad");
  CHECK_THAT(mirror::pull(client, bad, rec).error_message(), Catch::Contains("'-x' is not a valid tag"));
  pull_request chunks = pull_of("app", {"latest"}, dir.path() / "dir-bundle");
  chunks.chunk_size = 1024;
  CHECK_THAT(mirror::pull(client, chunks, rec).error_message(), Catch::Contains("tar"));
}
