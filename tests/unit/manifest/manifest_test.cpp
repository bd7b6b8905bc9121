#include <registryd/oci/manifest.hpp>
#include <registryd/oci/media_types.hpp>

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

namespace mt = registryd::oci::media_type;
using registryd::oci::digest;
using registryd::oci::parse_manifest;

namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(REGISTRYD_TEST_FIXTURE_DIR) + "/fixtures/" + name, std::ios::binary);
  REQUIRE(in);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

const std::string d1 = "sha256:" + std::string(64, '1');
const std::string d2 = "sha256:" + std::string(64, '2');

std::string image_with(const std::string& extra_top, const std::string& config = {},
                       const std::string& layers = {}) {
  const std::string cfg = config.empty()
      ? R"({"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + d1 + R"(","size":10})"
      : config;
  const std::string lay = layers.empty()
      ? R"([{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" + d2 + R"(","size":20}])"
      : layers;
  return R"({"schemaVersion":2,)" + extra_top + R"("config":)" + cfg + R"(,"layers":)" + lay + "}";
}

}  // namespace

TEST_CASE("an OCI manifest written by umoci without mediaType takes the Content-Type", "[manifest]") {
  const auto bytes = fixture("oci_manifest_umoci.json");
  auto m = parse_manifest(bytes, "application/vnd.oci.image.manifest.v1+json");
  REQUIRE(m);
  CHECK(m->media_type == mt::oci_manifest);
  CHECK_FALSE(m->is_index());
  REQUIRE(m->config);
  CHECK(m->config->media_type == mt::oci_config);
  CHECK(m->config->digest.str() == "sha256:eb395d189bb29e0c6c742222f830037df51ca0d4f4b6cbad78b50bb45e051fea");
  CHECK(m->config->size == 292);
  REQUIRE(m->layers.size() == 1);
  CHECK(m->layers[0].size == 101);
  const auto blobs = m->blobs();
  REQUIRE(blobs.size() == 2);
  CHECK(blobs[0].digest == m->config->digest);
  CHECK(m->children().empty());
  CHECK(m->artifact_type() == mt::oci_config);

  const auto d = registryd::oci::describe_manifest(bytes, *m);
  CHECK(d.digest.str() == "sha256:323d61f9749fafb36435f3a4ef79d762360f04e4971aba67733e31a5d849cd39");
  CHECK(d.size == 345);
}

TEST_CASE("a manifest with neither mediaType nor Content-Type is an OCI manifest or index by its shape", "[manifest]") {
  auto m = parse_manifest(fixture("oci_manifest_umoci.json"), "");
  REQUIRE(m);
  CHECK(m->media_type == mt::oci_manifest);
  auto i = parse_manifest(R"({"schemaVersion":2,"manifests":[]})", "");
  REQUIRE(i);
  CHECK(i->media_type == mt::oci_index);
  CHECK(i->is_index());
  CHECK_FALSE(parse_manifest(R"({"schemaVersion":2})", ""));
}

TEST_CASE("a Docker schema 2 manifest from skopeo parses with its own media type", "[manifest]") {
  const auto bytes = fixture("docker_schema2_skopeo.json");
  for (const char* ct : {"", "application/vnd.docker.distribution.manifest.v2+json",
                         "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"}) {
    INFO(ct);
    auto m = parse_manifest(bytes, ct);
    REQUIRE(m);
    CHECK(m->media_type == mt::docker_manifest);
    CHECK(m->config->media_type == mt::docker_config);
    REQUIRE(m->layers.size() == 1);
    CHECK(m->layers[0].media_type == mt::docker_layer);
    CHECK(m->layers[0].digest.str() == "sha256:6326fc85b67f8bfadb2846e9bc5d672b94e4b86319bd69d01ea174dc791d36a0");
  }
}

TEST_CASE("a mediaType that differs from the Content-Type is refused naming both", "[manifest]") {
  auto m = parse_manifest(fixture("docker_schema2_skopeo.json"), "application/vnd.oci.image.manifest.v1+json");
  REQUIRE_FALSE(m);
  CHECK(m.error_message().find("does not match the Content-Type") != std::string::npos);
  CHECK(m.error_message().find("application/vnd.docker.distribution.manifest.v2+json") != std::string::npos);
  CHECK(m.error_message().find("application/vnd.oci.image.manifest.v1+json") != std::string::npos);
}

TEST_CASE("a Docker manifest list lists its children with platforms and no blobs", "[manifest]") {
  auto m = parse_manifest(fixture("docker_manifest_list_spec.json"), "");
  REQUIRE(m);
  CHECK(m->media_type == mt::docker_manifest_list);
  CHECK(m->is_index());
  REQUIRE(m->children().size() == 2);
  CHECK(m->children()[0].media_type == mt::docker_manifest);
  CHECK(m->children()[1].platform["architecture"] == "amd64");
  CHECK(m->children()[1].size == 7682);
  CHECK(m->blobs().empty());
  CHECK_FALSE(m->config);
}

TEST_CASE("an OCI index keeps its annotations and children", "[manifest]") {
  auto m = parse_manifest(fixture("oci_index_spec.json"), "application/vnd.oci.image.index.v1+json");
  REQUIRE(m);
  CHECK(m->media_type == mt::oci_index);
  CHECK(m->children().size() == 2);
  CHECK(m->annotation("com.example.key1") == std::optional<std::string>("value1"));
  CHECK_FALSE(m->annotation("missing"));
  CHECK(m->artifact_type().empty());
}

TEST_CASE("an artifact with the empty config has a subject and its declared artifactType", "[manifest]") {
  auto m = parse_manifest(fixture("oci_artifact_spec.json"), "application/vnd.oci.image.manifest.v1+json");
  REQUIRE(m);
  CHECK(m->artifact_type() == "application/vnd.example+type");
  REQUIRE(m->subject);
  CHECK(m->subject->digest.str() == "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270");
  REQUIRE(m->config);
  CHECK(m->config->media_type == mt::oci_empty);
  CHECK(m->config->digest.str() == mt::oci_empty_digest);
  CHECK(m->config->data == std::optional<std::string>("e30="));
  CHECK(registryd::oci::digest_of(mt::oci_empty_data).str() == mt::oci_empty_digest);
  CHECK(m->annotations.size() == 2);
}

TEST_CASE("an image manifest without artifactType reports its config media type as the artifact type", "[manifest]") {
  auto m = parse_manifest(fixture("oci_signature_config_type.json"), "");
  REQUIRE(m);
  CHECK(m->declared_artifact_type.empty());
  CHECK(m->artifact_type() == "application/vnd.example.sbom.config.v1+json");
}

TEST_CASE("the empty config without artifactType is refused", "[manifest]") {
  const std::string empty_cfg = R"({"mediaType":"application/vnd.oci.empty.v1+json","digest":")" +
                                std::string(mt::oci_empty_digest) + R"(","size":2})";
  auto m = parse_manifest(image_with("", empty_cfg), "application/vnd.oci.image.manifest.v1+json");
  REQUIRE_FALSE(m);
  CHECK(m.error_message().find("artifactType is required") != std::string::npos);
}

TEST_CASE("Docker schema 1 is refused by media type and by schemaVersion with a clear message", "[manifest]") {
  const auto bytes = fixture("docker_schema1_signed.json");
  for (const char* ct : {"", "application/vnd.docker.distribution.manifest.v1+prettyjws",
                         "application/vnd.docker.distribution.manifest.v1+json"}) {
    INFO(ct);
    auto m = parse_manifest(bytes, ct);
    REQUIRE_FALSE(m);
    CHECK(m.error_message().find("schema 1") != std::string::npos);
  }
}

TEST_CASE("schemaVersion must be present and be the number 2", "[manifest]") {
  CHECK_FALSE(parse_manifest(R"({"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})"));
  CHECK_FALSE(parse_manifest(R"({"schemaVersion":"2","mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})"));
  auto three = parse_manifest(R"({"schemaVersion":3,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})");
  REQUIRE_FALSE(three);
  CHECK(three.error_message() == "schemaVersion is 3, not 2");
  CHECK(parse_manifest(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})"));
}

TEST_CASE("documents that are not JSON objects or exceed 4 MiB are refused", "[manifest]") {
  CHECK(parse_manifest("{", "").error_message() == "manifest is not valid JSON");
  CHECK(parse_manifest("[]", "").error_message() == "manifest is not a JSON object");
  CHECK(parse_manifest("", "").error_message() == "manifest is not valid JSON");
  std::string big = image_with(R"("annotations":{"x":")" + std::string(registryd::oci::max_manifest_size, 'a') + R"("},)");
  auto m = parse_manifest(big, "");
  REQUIRE_FALSE(m);
  CHECK(m.error_message().find("4 MiB") != std::string::npos);
  CHECK(registryd::oci::max_manifest_size == 4u * 1024 * 1024);
}

TEST_CASE("a Content-Type that is not a manifest type is refused", "[manifest]") {
  auto m = parse_manifest(fixture("oci_manifest_umoci.json"), "application/json");
  REQUIRE_FALSE(m);
  CHECK(m.error_message().find("not a manifest media type") != std::string::npos);
  CHECK_FALSE(parse_manifest(image_with(R"("mediaType":"application/vnd.oci.image.config.v1+json",)"), ""));
}

TEST_CASE("a Docker schema 2 document without its own mediaType is refused", "[manifest]") {
  auto m = parse_manifest(fixture("oci_manifest_umoci.json"), "application/vnd.docker.distribution.manifest.v2+json");
  REQUIRE_FALSE(m);
  CHECK(m.error_message().find("must state its mediaType") != std::string::npos);
}

TEST_CASE("a manifest carrying manifests or an index carrying config is refused", "[manifest]") {
  CHECK_FALSE(parse_manifest(image_with(R"("manifests":[],)"), "application/vnd.oci.image.manifest.v1+json"));
  auto i = parse_manifest(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"config":{}})");
  REQUIRE_FALSE(i);
  CHECK(i.error_message().find("must not have config") != std::string::npos);
  CHECK_FALSE(parse_manifest(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"})"));
  CHECK_FALSE(parse_manifest(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]})"));
}

TEST_CASE("each descriptor is validated and the error names which one", "[manifest]") {
  const std::string ct = "application/vnd.oci.image.manifest.v1+json";
  struct row { std::string layers; std::string expect; };
  const row rows[] = {
      {R"([{"digest":")" + d2 + R"(","size":1}])", "layers[0].mediaType is missing"},
      {R"([{"mediaType":"nonsense","digest":")" + d2 + R"(","size":1}])", "layers[0].mediaType \"nonsense\" is not a media type"},
      {R"([{"mediaType":"a/b","size":1}])", "layers[0].digest is missing"},
      {R"([{"mediaType":"a/b","digest":"sha256:abc","size":1}])", "layers[0].digest \"sha256:abc\" is not a sha256 or sha512 digest"},
      {R"([{"mediaType":"a/b","digest":"md5:d41d8cd98f00b204e9800998ecf8427e","size":1}])", "not a sha256 or sha512 digest"},
      {R"([{"mediaType":"a/b","digest":")" + d2 + R"("}])", "layers[0].size is missing"},
      {R"([{"mediaType":"a/b","digest":")" + d2 + R"(","size":-1}])", "layers[0].size is negative"},
      {R"([{"mediaType":"a/b","digest":")" + d2 + R"(","size":1.5}])", "layers[0].size is not an integer"},
      {R"([{"mediaType":"a/b","digest":")" + d2 + R"(","size":"1"}])", "layers[0].size is not an integer"},
      {R"([{"mediaType":"a/b","digest":")" + d2 + R"(","size":18446744073709551615}])", "layers[0].size is too large"},
      {R"([{"mediaType":"a/b","digest":")" + d2 + R"(","size":1,"annotations":{"k":1}}])", "layers[0].annotations.k is not a string"},
      {R"([{"mediaType":"a/b","digest":")" + d2 + R"(","size":1,"urls":"x"}])", "layers[0].urls is not an array"},
      {R"([{"mediaType":"a/b","digest":")" + d2 + R"(","size":1,"platform":{"os":"linux"}}])", "layers[0].platform.architecture is missing"},
      {R"({})", "layers is not an array"},
      {R"([1])", "layers[0] is not an object"},
  };
  for (const auto& r : rows) {
    INFO(r.layers);
    auto m = parse_manifest(image_with("", {}, r.layers), ct);
    REQUIRE_FALSE(m);
    CHECK_THAT(m.error_message(), Catch::Contains(r.expect));
  }
  auto cfg = parse_manifest(image_with("", R"({"mediaType":"a/b","digest":"x","size":1})"), ct);
  REQUIRE_FALSE(cfg);
  CHECK_THAT(cfg.error_message(), Catch::Contains("config.digest"));
  auto top = parse_manifest(image_with(R"("annotations":[],)"), ct);
  REQUIRE_FALSE(top);
  CHECK(top.error_message() == "annotations is not an object");
  CHECK_FALSE(parse_manifest(image_with(R"("artifactType":"bad",)"), ct));
  CHECK_FALSE(parse_manifest(image_with(R"("subject":{"mediaType":"a/b"},)"), ct));
}

TEST_CASE("a foreign layer keeps its urls and is reported non-distributable", "[manifest]") {
  const std::string layers = R"([{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":")" +
                             d2 + R"(","size":5,"urls":["https://example.invalid/l"]}])";
  auto m = parse_manifest(image_with(R"("mediaType":"application/vnd.docker.distribution.manifest.v2+json",)",
                                     R"({"mediaType":"application/vnd.docker.container.image.v1+json","digest":")" + d1 + R"(","size":1})",
                                     layers), "");
  REQUIRE(m);
  CHECK(m->layers[0].urls == std::vector<std::string>{"https://example.invalid/l"});
  CHECK(registryd::oci::is_non_distributable_media_type(m->layers[0].media_type));
}

TEST_CASE("a descriptor serialises to JSON and parses back equal", "[manifest]") {
  auto m = parse_manifest(fixture("oci_artifact_spec.json"), "");
  REQUIRE(m);
  const auto j = m->config->to_json();
  CHECK(j["mediaType"] == mt::oci_empty);
  CHECK(j["size"] == 2);
  CHECK(j["data"] == "e30=");
  CHECK_FALSE(j.contains("annotations"));
  auto back = registryd::oci::descriptor::from_json(j, "x");
  REQUIRE(back);
  CHECK(back->to_json() == j);
}

TEST_CASE("media type predicates know manifests, indexes and schema 1", "[manifest]") {
  using namespace registryd::oci;
  CHECK(is_manifest_media_type(mt::oci_manifest));
  CHECK(is_manifest_media_type(mt::docker_manifest));
  CHECK_FALSE(is_manifest_media_type(mt::oci_index));
  CHECK(is_index_media_type(mt::oci_index));
  CHECK(is_index_media_type(mt::docker_manifest_list));
  CHECK_FALSE(is_index_media_type(mt::docker_manifest));
  CHECK(is_schema1_media_type(mt::docker_schema1_signed_manifest));
  CHECK_FALSE(is_any_manifest_media_type(mt::docker_schema1_manifest));
  CHECK(is_well_formed_media_type("application/vnd.oci.image.layer.v1.tar+gzip"));
  CHECK_FALSE(is_well_formed_media_type("application/"));
  CHECK_FALSE(is_well_formed_media_type("application/json; charset=utf-8"));
  CHECK(essence_of(" Application/JSON ; charset=utf-8") == "application/json");
}
