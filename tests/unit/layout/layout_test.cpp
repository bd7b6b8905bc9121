#include <registryd/oci/layout.hpp>
#include <registryd/oci/media_types.hpp>

#include <catch2/catch.hpp>
#include <test_support.hpp>

#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
namespace mt = registryd::oci::media_type;
using registryd::oci::descriptor;
using registryd::oci::digest;
using registryd::oci::digest_of;
using registryd::oci::image_layout;
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

}  // namespace

TEST_CASE("creating a layout writes oci-layout and an empty index, and opening checks the version", "[layout]") {
  scratch_dir dir;
  const auto root = dir.path() / "l";
  CHECK_FALSE(image_layout::open(root));
  auto l = image_layout::open(root, true);
  REQUIRE(l);
  CHECK(slurp(root / "oci-layout") == R"({"imageLayoutVersion": "1.0.0"})");
  auto index = l->read_index();
  REQUIRE(index);
  CHECK(index->empty());
  CHECK(fs::is_directory(root / "blobs" / "sha256"));
  CHECK(image_layout::open(root));

  spit(root / "oci-layout", R"({"imageLayoutVersion": "2.0.0"})");
  auto v2 = image_layout::open(root);
  REQUIRE_FALSE(v2);
  CHECK_THAT(v2.error_message(), Catch::Contains("not supported"));
  fs::remove(root / "oci-layout");
  auto none = image_layout::open(root);
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error_message(), Catch::Contains("is not an OCI image layout"));
}

TEST_CASE("a document is stored under its digest and read back verified", "[layout]") {
  scratch_dir dir;
  auto l = image_layout::open(dir.path(), true);
  REQUIRE(l);
  const std::string doc = R"({"hello":"world"})";
  const auto d = digest_of(doc);
  REQUIRE(l->put_blob(d, doc));
  CHECK(l->blob_path(d) == dir.path() / "blobs" / "sha256" / std::string(d.hex()));
  CHECK(l->has_blob(d, doc.size()));
  CHECK_FALSE(l->has_blob(d, doc.size() + 1));
  CHECK(l->verify_blob(d, doc.size()));
  auto back = l->read_blob(d);
  REQUIRE(back);
  CHECK(*back == doc);

  const auto wrong = digest_of("other");
  auto st = l->put_blob(wrong, doc);
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error_message(), Catch::Contains(wrong.str()) && Catch::Contains("does not match"));
  CHECK_FALSE(l->has_blob(wrong));
  CHECK_FALSE(fs::exists(dir.path() / "blobs" / "sha256" / (".partial-" + std::string(wrong.hex()))));
}

TEST_CASE("a corrupted blob is reported naming its digest", "[layout]") {
  scratch_dir dir;
  auto l = image_layout::open(dir.path(), true);
  REQUIRE(l);
  const std::string doc(1000, 'z');
  const auto d = digest_of(doc);
  REQUIRE(l->put_blob(d, doc));
  spit(l->blob_path(d), std::string(999, 'z') + "y");
  auto st = l->verify_blob(d, doc.size());
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error_message(), Catch::Contains(d.str()) && Catch::Contains("corrupt"));
  CHECK_FALSE(l->read_blob(d));
  CHECK_THAT(l->verify_blob(digest_of("absent")).error_message(), Catch::Contains("missing"));
}

TEST_CASE("an interrupted streamed write resumes where it stopped", "[layout]") {
  scratch_dir dir;
  auto l = image_layout::open(dir.path(), true);
  REQUIRE(l);
  std::string content;
  for (int i = 0; i < 100000; ++i) content += static_cast<char>('a' + i % 26);
  const auto d = digest_of(content);
  {
    auto w = l->write_blob(d, content.size());
    REQUIRE(w);
    CHECK(w->offset() == 0);
    REQUIRE(w->write(std::string_view(content).substr(0, 40000)));
  }  // dropped without commit: the partial file stays
  CHECK_FALSE(l->has_blob(d));
  auto w = l->write_blob(d, content.size());
  REQUIRE(w);
  CHECK(w->offset() == 40000);
  REQUIRE(w->write(std::string_view(content).substr(40000)));
  CHECK_FALSE(w->write("x"));  // past the expected size
  REQUIRE(w->commit());
  CHECK(l->verify_blob(d, content.size()));
  CHECK_FALSE(fs::exists(dir.path() / "blobs" / "sha256" / (".partial-" + std::string(d.hex()))));
}

TEST_CASE("a restarted write and a short write are handled", "[layout]") {
  scratch_dir dir;
  auto l = image_layout::open(dir.path(), true);
  REQUIRE(l);
  const std::string content = "0123456789";
  const auto d = digest_of(content);
  auto w = l->write_blob(d, content.size());
  REQUIRE(w);
  REQUIRE(w->write("garbage"));
  REQUIRE(w->restart());
  CHECK(w->offset() == 0);
  REQUIRE(w->write("01234"));
  auto short_commit = w->commit();
  REQUIRE_FALSE(short_commit);
  CHECK_THAT(short_commit.error_message(), Catch::Contains("5 bytes, expected 10 bytes"));
  REQUIRE(w->write("56789"));
  REQUIRE(w->commit());
  auto r = l->open_blob(d);
  REQUIRE(r);
  CHECK(r->size() == 10);
  char buf[4];
  CHECK(r->read(buf, 4) == 4);
  CHECK(r->rewind());
  CHECK(r->read(buf, 4) == 4);
  CHECK(std::string(buf, 4) == "0123");
}

TEST_CASE("tags live in ref.name annotations, one index entry per tag", "[layout]") {
  const auto d1 = *digest::parse("sha256:" + std::string(64, '1'));
  const auto d2 = *digest::parse("sha256:" + std::string(64, '2'));
  std::vector<descriptor> entries;
  registryd::oci::set_ref_name(entries, "v1", descriptor(std::string(mt::oci_manifest), d1, 10));
  registryd::oci::set_ref_name(entries, "v2", descriptor(std::string(mt::oci_manifest), d1, 10));
  registryd::oci::set_ref_name(entries, "v1", descriptor(std::string(mt::docker_manifest), d2, 20));
  REQUIRE(entries.size() == 2);
  CHECK(registryd::oci::ref_name(entries[0]) == std::optional<std::string>("v1"));
  CHECK(entries[0].digest == d2);
  CHECK(registryd::oci::ref_name(entries[1]) == std::optional<std::string>("v2"));

  scratch_dir dir;
  auto l = image_layout::open(dir.path(), true);
  REQUIRE(l);
  REQUIRE(l->write_index(entries));
  auto back = l->read_index();
  REQUIRE(back);
  REQUIRE(back->size() == 2);
  CHECK(back->at(0).to_json() == entries[0].to_json());
  const auto doc = nlohmann::json::parse(slurp(dir.path() / "index.json"));
  CHECK(doc["schemaVersion"] == 2);
  CHECK(doc["mediaType"] == mt::oci_index);
}

TEST_CASE("a second writer cannot lock a layout that is locked", "[layout]") {
  scratch_dir dir;
  auto a = image_layout::open(dir.path(), true);
  auto b = image_layout::open(dir.path());
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(a->lock());
  auto st = b->lock();
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error_message(), Catch::Contains("in use"));
  { auto moved = std::move(*a); }  // the lock goes with the object
  CHECK(b->lock());
}

TEST_CASE("skopeo reads a layout registryd wrote, and registryd reads a layout skopeo wrote", "[layout]") {
  // A missing tool fails the test: it never passes without having run (scripts/install-deps.sh).
  REQUIRE(have("skopeo"));
  REQUIRE(have("umoci"));
  scratch_dir dir;
  const auto src = dir.path() / "umoci";
  registryd::test::output_of("umoci init --layout " + src.string() + " && umoci new --image " + src.string() + ":latest");
  registryd::test::output_of("skopeo copy -q oci:" + src.string() + ":latest oci:" + (dir.path() / "skopeo").string() + ":v1.2.3");

  // registryd reads skopeo's layout.
  auto theirs = image_layout::open(dir.path() / "skopeo");
  REQUIRE(theirs);
  auto index = theirs->read_index();
  REQUIRE(index);
  REQUIRE(index->size() == 1);
  CHECK(registryd::oci::ref_name(index->at(0)) == std::optional<std::string>("v1.2.3"));
  auto manifest_bytes = theirs->read_blob(index->at(0).digest);
  REQUIRE(manifest_bytes);
  auto m = registryd::oci::parse_manifest(*manifest_bytes, index->at(0).media_type);
  REQUIRE(m);

  // registryd writes a copy, streamed blob by blob; skopeo reads it by tag.
  auto ours = image_layout::open(dir.path() / "ours", true);
  REQUIRE(ours);
  for (const auto& b : m->blobs()) {
    auto r = theirs->open_blob(b.digest);
    REQUIRE(r);
    auto w = ours->write_blob(b.digest, static_cast<std::uint64_t>(b.size));
    REQUIRE(w);
    char buf[100];
    for (std::ptrdiff_t n; (n = r->read(buf, sizeof buf)) > 0;) REQUIRE(w->write(std::string_view(buf, static_cast<std::size_t>(n))));
    REQUIRE(w->commit());
  }
  REQUIRE(ours->put_blob(index->at(0).digest, *manifest_bytes));
  std::vector<descriptor> entries;
  registryd::oci::set_ref_name(entries, "v9", registryd::oci::describe_manifest(*manifest_bytes, *m));
  REQUIRE(ours->write_index(entries));
  const auto raw = registryd::test::output_of("skopeo inspect --raw oci:" + (dir.path() / "ours").string() + ":v9");
  CHECK(raw == *manifest_bytes);
  const auto inspected = nlohmann::json::parse(
      registryd::test::output_of("skopeo inspect oci:" + (dir.path() / "ours").string() + ":v9"));
  CHECK(inspected["Digest"] == index->at(0).digest.str());
}
