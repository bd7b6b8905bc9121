#include <registryd/mirror/bundle.hpp>
#include <registryd/oci/media_types.hpp>

#include <catch2/catch.hpp>
#include <test_support.hpp>

#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
namespace mt = registryd::oci::media_type;
using namespace registryd::oci;
using namespace registryd::mirror;
using registryd::test::scratch_dir;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void spit(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

bool have(const char* program) {
  return registryd::test::run(std::string("command -v ") + program).exit_code == 0;
}

// Bytes that do not compress and do not repeat, so a test can find them inside a tar.
std::string noise(std::size_t n, std::uint32_t seed) {
  std::string out(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : out) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

struct sample {
  std::string layer;
  descriptor layer_d{std::string(mt::oci_layer_gzip), digest_of(""), 0};
  std::string image_manifest;  // tagged "v1.0.0" (OCI)
  std::string docker_manifest; // child of the index
  std::string index;           // tagged "multi"
  std::string config;
};

// A layout with an OCI image (tag v1.0.0) and an OCI index (tag multi) over that image and a
// Docker schema 2 image that shares the layer.
sample make_layout(image_layout& l) {
  sample s;
  s.layer = noise(300000, 7);
  const auto layer_d = digest_of(s.layer);
  const std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  const auto config_d = digest_of(config);
  s.config = config;
  REQUIRE(l.put_blob(layer_d, s.layer));
  REQUIRE(l.put_blob(config_d, config));
  s.layer_d = descriptor(std::string(mt::oci_layer_gzip), layer_d, static_cast<std::int64_t>(s.layer.size()));

  nlohmann::json m = {{"schemaVersion", 2},
                      {"mediaType", mt::oci_manifest},
                      {"config", {{"mediaType", mt::oci_config}, {"digest", config_d.str()}, {"size", config.size()}}},
                      {"layers", {{{"mediaType", mt::oci_layer_gzip}, {"digest", layer_d.str()}, {"size", s.layer.size()}}}}};
  s.image_manifest = m.dump();
  REQUIRE(l.put_blob(digest_of(s.image_manifest), s.image_manifest));

  nlohmann::json dm = {{"schemaVersion", 2},
                       {"mediaType", mt::docker_manifest},
                       {"config", {{"mediaType", mt::docker_config}, {"digest", config_d.str()}, {"size", config.size()}}},
                       {"layers", {{{"mediaType", mt::docker_layer}, {"digest", layer_d.str()}, {"size", s.layer.size()}}}}};
  s.docker_manifest = dm.dump();
  REQUIRE(l.put_blob(digest_of(s.docker_manifest), s.docker_manifest));

  nlohmann::json idx = {{"schemaVersion", 2},
                        {"mediaType", mt::oci_index},
                        {"manifests",
                         {{{"mediaType", mt::oci_manifest}, {"digest", digest_of(s.image_manifest).str()}, {"size", s.image_manifest.size()},
                           {"platform", {{"architecture", "amd64"}, {"os", "linux"}}}},
                          {{"mediaType", mt::docker_manifest}, {"digest", digest_of(s.docker_manifest).str()}, {"size", s.docker_manifest.size()},
                           {"platform", {{"architecture", "arm64"}, {"os", "linux"}}}}}}};
  s.index = idx.dump();
  REQUIRE(l.put_blob(digest_of(s.index), s.index));

  std::vector<descriptor> entries;
  set_ref_name(entries, "v1.0.0", descriptor(std::string(mt::oci_manifest), digest_of(s.image_manifest),
                                             static_cast<std::int64_t>(s.image_manifest.size())));
  set_ref_name(entries, "multi", descriptor(std::string(mt::oci_index), digest_of(s.index),
                                            static_cast<std::int64_t>(s.index.size())));
  REQUIRE(l.write_index(entries));
  return s;
}

// Reads every blob of the bundle through for_each_blob; the digests seen.
std::vector<std::string> drain(bundle_reader& r) {
  std::vector<std::string> seen;
  auto st = r.for_each_blob(r.content().blobs, [&](const descriptor& b, blob_stream& body) -> status {
    char buf[4096];
    std::ptrdiff_t n;
    while ((n = body.read(buf, sizeof buf)) > 0) {
    }
    if (n < 0) return error{body.error()};
    seen.push_back(b.digest.str());
    return ok();
  });
  if (!st) seen.push_back("ERROR: " + st.error_message());
  return seen;
}

}  // namespace

TEST_CASE("a layout's manifests are collected parents first, with each blob once", "[bundle]") {
  scratch_dir dir;
  auto l = image_layout::open(dir.path(), true);
  REQUIRE(l);
  const auto s = make_layout(*l);
  auto index = l->read_index();
  REQUIRE(index);
  auto set = collect_manifests(*l, *index);
  REQUIRE(set);
  REQUIRE(set->manifests.size() == 3);
  CHECK(set->manifests[0].of.digest == digest_of(s.image_manifest));
  CHECK(set->manifests[1].of.digest == digest_of(s.index));
  CHECK(set->manifests[2].of.digest == digest_of(s.docker_manifest));
  CHECK(set->blobs.size() == 2);  // config and layer, shared by both images
  CHECK(set->find(digest_of(s.docker_manifest)) != nullptr);
}

TEST_CASE("a bundle tar holds the layout and reads back with every blob verified", "[bundle]") {
  scratch_dir dir;
  auto l = image_layout::open(dir.path() / "layout", true);
  REQUIRE(l);
  const auto s = make_layout(*l);
  const auto bundle = dir.path() / "b.tar";
  std::uint64_t last_done = 0, last_total = 0;
  bundle_write_options opts;
  opts.progress = [&](std::uint64_t done, std::uint64_t total) { last_done = done; last_total = total; };
  REQUIRE(write_bundle(*l, bundle, opts));
  CHECK(last_done == last_total);
  CHECK(last_total == s.layer.size() + s.config.size());

  const auto listing = registryd::test::output_of("tar -tf " + bundle.string());
  CHECK(listing.rfind("oci-layout\nindex.json\nblobs/\nblobs/sha256/\n", 0) == 0);
  CHECK_THAT(listing, Catch::Contains("blobs/sha256/" + std::string(digest_of(s.layer).hex())));

  auto r = bundle_reader::open(bundle);
  REQUIRE(r);
  CHECK(r->kind() == "tar");
  REQUIRE(r->index().size() == 2);
  CHECK(ref_name(r->index()[0]) == std::optional<std::string>("v1.0.0"));
  CHECK(r->content().manifests.size() == 3);
  const auto seen = drain(*r);
  CHECK(seen.size() == 2);
  for (const auto& d : seen) CHECK(d.rfind("sha256:", 0) == 0);

  auto from_dir = bundle_reader::open(dir.path() / "layout");
  REQUIRE(from_dir);
  CHECK(from_dir->kind() == "layout directory");
  CHECK(drain(*from_dir).size() == 2);
}

TEST_CASE("a chunked bundle is byte splits of one tar, read as a set or after cat", "[bundle]") {
  scratch_dir dir;
  auto l = image_layout::open(dir.path() / "layout", true);
  REQUIRE(l);
  make_layout(*l);
  const auto bundle = dir.path() / "b.tar";
  bundle_write_options opts;
  opts.chunk_size = 100000;
  REQUIRE(write_bundle(*l, bundle, opts));
  CHECK_FALSE(fs::exists(bundle));
  auto files = bundle_files(bundle);
  REQUIRE(files);
  REQUIRE(files->size() == 4);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < files->size(); ++i) {
    CHECK(files->at(i) == chunk_path(bundle, i));
    const auto size = fs::file_size(files->at(i));
    if (i + 1 < files->size()) CHECK(size == 100000);
    total += size;
  }
  CHECK(total % 512 == 0);
  CHECK(chunk_path(bundle, 3).filename() == "b.tar.chunk-0003");

  auto r = bundle_reader::open(bundle);
  REQUIRE(r);
  CHECK(r->kind() == "tar in 4 chunks");
  CHECK(drain(*r).size() == 2);
  auto via_chunk = bundle_reader::open(chunk_path(bundle, 2));
  REQUIRE(via_chunk);
  CHECK(via_chunk->kind() == "tar in 4 chunks");

  registryd::test::output_of("cat " + (dir.path() / "b.tar.chunk-*").string() + " > " + (dir.path() / "whole.tar").string());
  auto whole = bundle_reader::open(dir.path() / "whole.tar");
  REQUIRE(whole);
  CHECK(drain(*whole).size() == 2);

  // Written again as one file: the old chunks go.
  REQUIRE(write_bundle(*l, bundle));
  CHECK(fs::exists(bundle));
  CHECK_FALSE(fs::exists(chunk_path(bundle, 0)));
  // And as smaller chunks, then larger ones: no stale chunk survives.
  opts.chunk_size = 50000;
  REQUIRE(write_bundle(*l, bundle, opts));
  CHECK_FALSE(fs::exists(bundle));
  opts.chunk_size = 200000;
  REQUIRE(write_bundle(*l, bundle, opts));
  CHECK(bundle_files(bundle)->size() == 2);
  CHECK_FALSE(fs::exists(chunk_path(bundle, 2)));
}

TEST_CASE("a missing chunk in the middle is refused naming it", "[bundle]") {
  scratch_dir dir;
  auto l = image_layout::open(dir.path() / "layout", true);
  REQUIRE(l);
  make_layout(*l);
  const auto bundle = dir.path() / "b.tar";
  bundle_write_options opts;
  opts.chunk_size = 100000;
  REQUIRE(write_bundle(*l, bundle, opts));
  fs::remove(chunk_path(bundle, 1));
  auto files = bundle_files(bundle);
  REQUIRE_FALSE(files);
  CHECK_THAT(files.error_message(), Catch::Contains("b.tar.chunk-0001 is missing"));
  CHECK_FALSE(bundle_reader::open(bundle));
  CHECK_THAT(bundle_files(dir.path() / "nothing.tar").error_message(), Catch::Contains("no bundle at"));
}

TEST_CASE("a corrupted blob in a bundle is refused naming its digest when it is read", "[bundle]") {
  scratch_dir dir;
  auto l = image_layout::open(dir.path() / "layout", true);
  REQUIRE(l);
  const auto s = make_layout(*l);
  const auto bundle = dir.path() / "b.tar";
  REQUIRE(write_bundle(*l, bundle));
  std::string tar = slurp(bundle);
  const auto at = tar.find(s.layer.substr(1000, 64));
  REQUIRE(at != std::string::npos);
  tar[at] = static_cast<char>(tar[at] ^ 0x55);
  spit(bundle, tar);

  auto r = bundle_reader::open(bundle);
  REQUIRE(r);  // manifests are intact
  const auto seen = drain(*r);
  REQUIRE_FALSE(seen.empty());
  CHECK_THAT(seen.back(), Catch::Contains("ERROR: blob " + digest_of(s.layer).str() + " in the bundle is corrupt"));
}

TEST_CASE("a corrupted manifest in a bundle is refused when the bundle is opened", "[bundle]") {
  scratch_dir dir;
  auto l = image_layout::open(dir.path() / "layout", true);
  REQUIRE(l);
  const auto s = make_layout(*l);
  const auto bundle = dir.path() / "b.tar";
  REQUIRE(write_bundle(*l, bundle));
  std::string tar = slurp(bundle);
  const auto at = tar.find(s.docker_manifest);
  REQUIRE(at != std::string::npos);
  tar[at + 5] = 'X';
  spit(bundle, tar);
  auto r = bundle_reader::open(bundle);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error_message(), Catch::Contains("manifest " + digest_of(s.docker_manifest).str() + " in the bundle is corrupt"));
}

TEST_CASE("a layout missing a blob is refused when the bundle is written, naming the blob", "[bundle]") {
  scratch_dir dir;
  auto l = image_layout::open(dir.path() / "layout", true);
  REQUIRE(l);
  const auto s = make_layout(*l);
  fs::remove(l->blob_path(digest_of(s.layer)));
  auto st = write_bundle(*l, dir.path() / "b.tar");
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error_message(), Catch::Contains(digest_of(s.layer).str()) && Catch::Contains("missing"));
  CHECK_FALSE(fs::exists(dir.path() / "b.tar"));
  CHECK_FALSE(fs::exists(dir.path() / ".b.tar.partial"));
}

TEST_CASE("a tar that is not an image layout is refused", "[bundle]") {
  scratch_dir dir;
  spit(dir.path() / "x", "hello");
  registryd::test::output_of("tar -C " + dir.path().string() + " -cf " + (dir.path() / "x.tar").string() + " x");
  auto r = bundle_reader::open(dir.path() / "x.tar");
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error_message(), Catch::Contains("no oci-layout"));
  spit(dir.path() / "junk.tar", "this is not a tar archive at all, not even close");
  CHECK_FALSE(bundle_reader::open(dir.path() / "junk.tar"));
}

TEST_CASE("a tar whose manifests come after their blobs, in any order, is read too", "[bundle]") {
  if (!have("tar")) return;
  scratch_dir dir;
  auto l = image_layout::open(dir.path() / "layout", true);
  REQUIRE(l);
  make_layout(*l);
  // GNU tar writes the directory in its own order: blobs first, index.json last.
  registryd::test::output_of("cd " + (dir.path() / "layout").string() + " && tar -cf ../gnu.tar blobs/sha256 index.json oci-layout");
  auto r = bundle_reader::open(dir.path() / "gnu.tar");
  REQUIRE(r);
  CHECK(r->content().manifests.size() == 3);
  CHECK(drain(*r).size() == 2);
}

TEST_CASE("skopeo reads a bundle registryd wrote, whole and after cat of its chunks", "[bundle]") {
  // A missing tool fails the test: it never passes without having run (scripts/install-deps.sh).
  REQUIRE(have("skopeo"));
  scratch_dir dir;
  auto l = image_layout::open(dir.path() / "layout", true);
  REQUIRE(l);
  const auto s = make_layout(*l);
  REQUIRE(write_bundle(*l, dir.path() / "b.tar"));
  CHECK(registryd::test::output_of("skopeo inspect --raw oci-archive:" + (dir.path() / "b.tar").string() + ":v1.0.0") == s.image_manifest);
  CHECK(registryd::test::output_of("skopeo inspect --raw oci-archive:" + (dir.path() / "b.tar").string() + ":multi") == s.index);

  bundle_write_options opts;
  opts.chunk_size = 65536;
  REQUIRE(write_bundle(*l, dir.path() / "c.tar", opts));
  registryd::test::output_of("cat " + (dir.path() / "c.tar.chunk-*").string() + " > " + (dir.path() / "joined.tar").string());
  CHECK(registryd::test::output_of("skopeo inspect --raw oci-archive:" + (dir.path() / "joined.tar").string() + ":v1.0.0") == s.image_manifest);
}

TEST_CASE("a consumer that stops at the blob's length never receives the last piece of a corrupt blob", "[bundle]") {
  scratch_dir dir;
  auto l = image_layout::open(dir.path() / "layout", true);
  REQUIRE(l);
  const auto s = make_layout(*l);
  const auto bundle = dir.path() / "b.tar";
  REQUIRE(write_bundle(*l, bundle));
  std::string tar = slurp(bundle);
  const auto at = tar.find(s.layer.substr(s.layer.size() - 64));
  REQUIRE(at != std::string::npos);
  tar[at] = static_cast<char>(tar[at] ^ 0x55);
  spit(bundle, tar);
  auto r = bundle_reader::open(bundle);
  REQUIRE(r);
  std::uint64_t received = 0;
  std::string reported;
  const std::vector<descriptor> wanted{s.layer_d};
  auto st = r->for_each_blob(wanted, [&](const descriptor& b, blob_stream& body) -> status {
    char buf[65536];
    while (received < static_cast<std::uint64_t>(b.size)) {  // like an upload with Content-Length
      const auto n = body.read(buf, sizeof buf);
      if (n <= 0) {
        reported = body.error();
        return error{reported};
      }
      received += static_cast<std::uint64_t>(n);
    }
    return ok();
  });
  REQUIRE_FALSE(st);
  CHECK(received < s.layer.size());
  CHECK_THAT(reported, Catch::Contains("blob " + digest_of(s.layer).str() + " in the bundle is corrupt"));
}
