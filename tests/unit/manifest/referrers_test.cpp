#include <registryd/oci/media_types.hpp>
#include <registryd/oci/referrers.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace mt = registryd::oci::media_type;
using namespace registryd::oci;

namespace {

const std::string subject_digest = "sha256:" + std::string(64, 'a');

std::string artifact(const std::string& artifact_type, const std::string& subject,
                     const std::string& annotation) {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)" +
         (artifact_type.empty() ? std::string() : R"("artifactType":")" + artifact_type + R"(",)") +
         R"("config":{"mediaType":")" + (artifact_type.empty() ? "application/vnd.example.config.v1+json" : std::string(mt::oci_empty)) +
         R"(","digest":")" + std::string(mt::oci_empty_digest) + R"(","size":2},"layers":[],)" +
         R"("subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + subject +
         R"(","size":100},"annotations":{"note":")" + annotation + R"("}})";
}

struct parsed_doc {
  std::string bytes;
  manifest m;
  descriptor d;
};

parsed_doc load(const std::string& bytes) {
  auto m = parse_manifest(bytes, "");
  REQUIRE(m);
  auto d = describe_manifest(bytes, *m);
  return parsed_doc{bytes, std::move(*m), std::move(d)};
}

}  // namespace

TEST_CASE("the referrers response is an OCI index of descriptors with artifactType and annotations", "[referrers]") {
  const auto sig = load(artifact("application/vnd.example.signature", subject_digest, "one"));
  const auto sbom = load(artifact("", subject_digest, "two"));
  const auto other = load(artifact("application/vnd.example.signature", "sha256:" + std::string(64, 'b'), "three"));
  const auto subject = *digest::parse(subject_digest);
  const std::vector<referrer_entry> entries{{&sig.d, &sig.m}, {&sbom.d, &sbom.m}, {&other.d, &other.m}};

  const auto r = build_referrers(subject, entries);
  CHECK_FALSE(r.filter_applied);
  CHECK(r.index["schemaVersion"] == 2);
  CHECK(r.index["mediaType"] == mt::oci_index);
  const auto& list = r.index["manifests"];
  REQUIRE(list.size() == 2);
  CHECK(list[0]["mediaType"] == mt::oci_manifest);
  CHECK(list[0]["digest"] == sig.d.digest.str());
  CHECK(list[0]["size"] == sig.bytes.size());
  CHECK(list[0]["artifactType"] == "application/vnd.example.signature");
  CHECK(list[0]["annotations"]["note"] == "one");
  CHECK(list[1]["artifactType"] == "application/vnd.example.config.v1+json");

  auto again = parse_manifest(r.body(), "application/vnd.oci.image.index.v1+json");
  REQUIRE(again);
  CHECK(again->children().size() == 2);
}

TEST_CASE("an artifactType filter lists only matching referrers and says it was applied", "[referrers]") {
  const auto sig = load(artifact("application/vnd.example.signature", subject_digest, "one"));
  const auto sbom = load(artifact("application/vnd.example.sbom", subject_digest, "two"));
  const auto subject = *digest::parse(subject_digest);
  const std::vector<referrer_entry> entries{{&sig.d, &sig.m}, {&sbom.d, &sbom.m}};

  const auto r = build_referrers(subject, entries, std::string_view("application/vnd.example.sbom"));
  CHECK(r.filter_applied);
  REQUIRE(r.index["manifests"].size() == 1);
  CHECK(r.index["manifests"][0]["digest"] == sbom.d.digest.str());

  const auto none = build_referrers(subject, entries, std::string_view("application/none"));
  CHECK(none.filter_applied);
  CHECK(none.index["manifests"].empty());
  CHECK(none.body().find(R"("manifests":[])") != std::string::npos);

  CHECK_FALSE(build_referrers(subject, entries, std::string_view("")).filter_applied);
}
