#include <registryd/oci/content_negotiation.hpp>
#include <registryd/oci/media_types.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace mt = registryd::oci::media_type;
using registryd::oci::accepts;
using registryd::oci::negotiate_manifest;
using registryd::oci::negotiation;

namespace {
const std::string oci_m(mt::oci_manifest);
const std::string oci_i(mt::oci_index);
const std::string d_m(mt::docker_manifest);
const std::string d_l(mt::docker_manifest_list);
// What containerd 1.6 sends.
const std::string containerd_accept = d_m + ", " + d_l + ", " + oci_m + ", " + oci_i + ", */*";
}  // namespace

TEST_CASE("a missing or blank Accept accepts every manifest type", "[negotiation]") {
  for (const auto& t : {oci_m, oci_i, d_m, d_l}) {
    CHECK(accepts("", t));
    CHECK(accepts("  ", t));
    CHECK(negotiate_manifest("", t, true) == negotiation::serve);
  }
}

TEST_CASE("wildcards accept every type and q=0 refuses even under a wildcard", "[negotiation]") {
  CHECK(accepts("*/*", oci_m));
  CHECK(accepts("application/*", oci_i));
  CHECK_FALSE(accepts("text/*", oci_i));
  CHECK_FALSE(accepts(oci_m + ";q=0, */*", oci_m));
  CHECK(accepts(oci_m + ";q=0, */*", oci_i));
  CHECK_FALSE(accepts("*/*;q=0", oci_m));
  CHECK(accepts("*/*;q=0, " + oci_m + ";q=0.5", oci_m));
}

TEST_CASE("an Accept list from repeated headers joined with commas is read entry by entry", "[negotiation]") {
  const std::string joined = d_m + "," + d_l + "," + oci_m;
  CHECK(accepts(joined, oci_m));
  CHECK_FALSE(accepts(joined, oci_i));
  CHECK(accepts("  " + oci_i + " ; q=0.9 ; foo=bar ,text/plain", oci_i));
  CHECK(accepts("APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON", oci_i));
  const auto entries = registryd::oci::parse_accept("a/b;q=0.5, garbage, c/d;q=2, e/f ;q=1.000, ,/x");
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].media_type == "a/b");
  CHECK(entries[0].quality == Approx(0.5));
  CHECK(entries[1].media_type == "e/f");
}

TEST_CASE("OCI content is refused with MANIFEST_UNKNOWN's message when the Accept excludes it", "[negotiation]") {
  const std::string docker_only = d_m + ", " + d_l;
  CHECK(negotiate_manifest(docker_only, oci_m, true) == negotiation::refuse);
  CHECK(negotiate_manifest(docker_only, oci_i, false) == negotiation::refuse);
  CHECK(registryd::oci::negotiation_message(oci_m) ==
        "OCI manifest found, but accept header does not support OCI manifests");
  CHECK(registryd::oci::negotiation_message(oci_i) ==
        "OCI index found, but accept header does not support OCI indexes");
  CHECK(negotiate_manifest(containerd_accept, oci_m, true) == negotiation::serve);
  CHECK(negotiate_manifest(oci_m, oci_m, true) == negotiation::serve);
}

TEST_CASE("a Docker schema 2 manifest is served whatever the Accept, as distribution does", "[negotiation]") {
  CHECK(negotiate_manifest(oci_m, d_m, true) == negotiation::serve);
  CHECK(negotiate_manifest("text/plain", d_m, false) == negotiation::serve);
}

TEST_CASE("a Docker manifest list by tag to a client that does not accept lists falls back to the platform child", "[negotiation]") {
  CHECK(negotiate_manifest(d_m, d_l, true) == negotiation::serve_platform_child);
  CHECK(negotiate_manifest(d_m, d_l, false) == negotiation::serve);
  CHECK(negotiate_manifest(containerd_accept, d_l, true) == negotiation::serve);
}
