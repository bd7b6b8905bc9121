#include <registryd/oci/path_mapping.hpp>

#include <catch2/catch.hpp>

using registryd::oci::path_mapping;

TEST_CASE("the fixed repository and the repositories below it map onto imagesRepo and back", "[oci][path_mapping]") {
  const path_mapping m("system/deckhouse", "deckhouse/ee");
  CHECK(m.to_upstream("system/deckhouse") == "deckhouse/ee");
  CHECK(m.to_upstream("system/deckhouse/install") == "deckhouse/ee/install");
  CHECK_FALSE(m.to_upstream("system/deckhousex"));
  CHECK_FALSE(m.to_upstream("library/alpine"));
  CHECK_FALSE(m.to_upstream("system"));
  CHECK(m.to_client("deckhouse/ee") == "system/deckhouse");
  CHECK(m.to_client("deckhouse/ee/install") == "system/deckhouse/install");
  CHECK_FALSE(m.to_client("deckhouse/eee"));
}

TEST_CASE("an imagesRepo without a path maps only the repositories below the fixed one", "[oci][path_mapping]") {
  const path_mapping m("system/deckhouse", "");
  CHECK_FALSE(m.to_upstream("system/deckhouse"));
  CHECK(m.to_upstream("system/deckhouse/app") == "app");
  CHECK(m.to_client("app") == "system/deckhouse/app");
}

TEST_CASE("Location headers naming the upstream repository are rewritten, others kept", "[oci][path_mapping]") {
  const path_mapping m("system/deckhouse", "deckhouse/ee");
  CHECK(m.location_to_client("/v2/deckhouse/ee/blobs/uploads/abc?x=1", "r.io") ==
        "/v2/system/deckhouse/blobs/uploads/abc?x=1");
  CHECK(m.location_to_client("https://r.io/v2/deckhouse/ee/manifests/sha256:1", "r.io") ==
        "/v2/system/deckhouse/manifests/sha256:1");
  const std::string storage = "https://s3.example.com/bucket/blob?sig=1";
  CHECK(m.location_to_client(storage, "r.io") == storage);
  CHECK(m.location_to_client("https://other.io/v2/deckhouse/ee/blobs/x", "r.io") ==
        "https://other.io/v2/deckhouse/ee/blobs/x");
}

TEST_CASE("upstream names inside messages and scopes are rewritten only as whole names", "[oci][path_mapping]") {
  const path_mapping m("system/deckhouse", "deckhouse/ee");
  CHECK(m.text_to_client("repository:deckhouse/ee:pull") == "repository:system/deckhouse:pull");
  CHECK(m.text_to_client("repository name not known to registry: deckhouse/ee/install") ==
        "repository name not known to registry: system/deckhouse/install");
  CHECK(m.text_to_client("mydeckhouse/ee") == "mydeckhouse/ee");
  CHECK(m.text_to_client("deckhouse/eex") == "deckhouse/eex");
}
