#include "local_test_support.hpp"

#include <catch2/catch.hpp>

using registryd::oci::digest;
using registryd::oci::digest_algorithm;
using registryd::oci::digest_of;
using registryd::test::call_options;
using registryd::test::local_fixture;
using registryd::test::reply;

namespace {

std::string content_of(std::size_t n, char seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + static_cast<char>(i * 31 % 251));
  return s;
}

call_options with_body(std::string body, std::vector<std::pair<std::string, std::string>> headers = {}) {
  call_options o;
  o.body = std::move(body);
  o.headers = std::move(headers);
  return o;
}

}  // namespace

TEST_CASE("a blob pushed with a single POST is served with its digest, length and type", "[local][blobs]") {
  local_fixture f;
  const std::string content = content_of(10000, 'a');
  const digest d = digest_of(content);
  const reply post = f("POST", "/v2/library/alpine/blobs/uploads/?digest=" + d.str(), with_body(content));
  REQUIRE(post.status == 201);
  CHECK(post.header("Location") == "/v2/library/alpine/blobs/" + d.str());
  CHECK(post.header("Docker-Content-Digest") == d.str());

  const reply get = f("GET", "/v2/library/alpine/blobs/" + d.str());
  CHECK(get.status == 200);
  CHECK(get.body == content);
  CHECK(get.content_type == "application/octet-stream");
  CHECK(get.header("Docker-Content-Digest") == d.str());
  CHECK(get.header("Accept-Ranges") == "bytes");

  const reply head = f("HEAD", "/v2/library/alpine/blobs/" + d.str());
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(head.header("Content-Length") == "10000");

  // Another repository does not serve it: blobs are shared on disk, not across repositories.
  CHECK(f("GET", "/v2/library/other/blobs/" + d.str()).status == 404);
  CHECK(f("GET", "/v2/library/other/blobs/" + d.str()).error_code() == "BLOB_UNKNOWN");
}

TEST_CASE("a percent-encoded digest in the query is understood", "[local][blobs]") {
  local_fixture f;
  const digest d = digest_of("encoded");
  std::string encoded = d.str();
  encoded.replace(encoded.find(':'), 1, "%3A");
  CHECK(f("POST", "/v2/r/blobs/uploads/?digest=" + encoded, with_body("encoded")).status == 201);
  CHECK(f("HEAD", "/v2/r/blobs/" + d.str()).status == 200);
}

TEST_CASE("POST then PUT with the whole body pushes a blob, and a sha512 digest works too", "[local][blobs]") {
  local_fixture f;
  const std::string content = content_of(5000, 'b');
  for (const auto algorithm : {digest_algorithm::sha256, digest_algorithm::sha512}) {
    const digest d = digest_of(content, algorithm);
    const reply post = f("POST", "/v2/r/blobs/uploads/");
    REQUIRE(post.status == 202);
    const std::string location = post.header("Location");
    CHECK(location.rfind("/v2/r/blobs/uploads/", 0) == 0);
    CHECK(post.header("Range") == "0-0");
    CHECK(post.header("Docker-Upload-UUID") == location.substr(location.rfind('/') + 1));
    const reply put = f("PUT", location + "?digest=" + d.str(), with_body(content));
    REQUIRE(put.status == 201);
    CHECK(put.header("Docker-Content-Digest") == d.str());
    CHECK(f("GET", "/v2/r/blobs/" + d.str()).body == content);
    // The session is over.
    CHECK(f("GET", location).status == 404);
    CHECK(f("GET", location).error_code() == "BLOB_UPLOAD_UNKNOWN");
  }
}

TEST_CASE("a chunked upload refuses out-of-order and repeated chunks with 416 and stays usable", "[local][blobs][chunked]") {
  local_fixture f;
  const std::string content = content_of(3000, 'c');
  const digest d = digest_of(content);
  const std::string loc = f("POST", "/v2/r/blobs/uploads/").header("Location");

  // The second chunk first: 416, and the session still stands at 0.
  reply r = f("PATCH", loc, with_body(content.substr(1000, 1000), {{"Content-Range", "1000-1999"}}));
  CHECK(r.status == 416);
  CHECK(r.header("Range") == "0-0");
  CHECK(f("GET", loc).status == 204);

  r = f("PATCH", loc, with_body(content.substr(0, 1000), {{"Content-Range", "0-999"}}));
  REQUIRE(r.status == 202);
  CHECK(r.header("Range") == "0-999");
  CHECK(r.header("Location") == loc);
  // The same chunk again: 416, nothing appended twice.
  r = f("PATCH", loc, with_body(content.substr(0, 1000), {{"Content-Range", "0-999"}}));
  CHECK(r.status == 416);
  const reply status = f("GET", loc);
  CHECK(status.status == 204);
  CHECK(status.header("Range") == "0-999");
  CHECK(status.header("Docker-Upload-UUID").size() == 36);

  // A range whose length is not the body's: 416.
  CHECK(f("PATCH", loc, with_body(content.substr(1000, 1000), {{"Content-Range", "1000-1998"}})).status == 416);

  r = f("PATCH", loc, with_body(content.substr(1000, 1000), {{"Content-Range", "1000-1999"}}));
  REQUIRE(r.status == 202);
  // The final chunk with the PUT.
  r = f("PUT", loc + "?digest=" + d.str(), with_body(content.substr(2000), {{"Content-Range", "2000-2999"}}));
  REQUIRE(r.status == 201);
  CHECK(f("GET", "/v2/r/blobs/" + d.str()).body == content);
}

TEST_CASE("a streamed PATCH without Content-Range appends, and a PUT with no body completes", "[local][blobs][chunked]") {
  local_fixture f;
  const std::string content = content_of(70000, 'd');
  const digest d = digest_of(content);
  const std::string loc = f("POST", "/v2/r/blobs/uploads/").header("Location");
  call_options o = with_body(content);
  o.announce_length = false;
  o.piece = 4096;
  reply r = f("PATCH", loc, o);
  REQUIRE(r.status == 202);
  CHECK(r.header("Range") == "0-69999");
  r = f("PUT", loc + "?digest=" + d.str());
  REQUIRE(r.status == 201);
  CHECK(f("HEAD", "/v2/r/blobs/" + d.str()).header("Content-Length") == "70000");
}

TEST_CASE("a chunk cut short is dropped whole when it announced its range", "[local][blobs][chunked]") {
  local_fixture f;
  const std::string content = content_of(2000, 'e');
  const std::string loc = f("POST", "/v2/r/blobs/uploads/").header("Location");
  call_options o = with_body(content.substr(0, 1000), {{"Content-Range", "0-999"}});
  o.cut = 600;
  CHECK(f("PATCH", loc, o).status == 400);
  CHECK(f("GET", loc).header("Range") == "0-0");
  // Without a range the bytes that arrived are kept: the client resumes from GET status.
  call_options streamed = with_body(content);
  streamed.cut = 1500;
  CHECK(f("PATCH", loc, streamed).status == 400);
  CHECK(f("GET", loc).header("Range") == "0-1499");
  REQUIRE(f("PATCH", loc, with_body(content.substr(1500), {{"Content-Range", "1500-1999"}})).status == 202);
  CHECK(f("PUT", loc + "?digest=" + digest_of(content).str()).status == 201);
}

TEST_CASE("a digest that does not match the content is refused and nothing is stored", "[local][blobs]") {
  local_fixture f;
  const digest wrong = digest_of("something else");
  reply r = f("POST", "/v2/r/blobs/uploads/?digest=" + wrong.str(), with_body("the content"));
  CHECK(r.status == 400);
  CHECK(r.error_code() == "DIGEST_INVALID");
  CHECK(f("HEAD", "/v2/r/blobs/" + wrong.str()).status == 404);
  CHECK(f("HEAD", "/v2/r/blobs/" + digest_of("the content").str()).status == 404);

  const std::string loc = f("POST", "/v2/r/blobs/uploads/").header("Location");
  r = f("PUT", loc + "?digest=" + wrong.str(), with_body("the content"));
  CHECK(r.status == 400);
  CHECK(r.error_code() == "DIGEST_INVALID");
  CHECK(f("HEAD", "/v2/r/blobs/" + wrong.str()).status == 404);
  CHECK(f("GET", loc).status == 404);

  // Malformed or missing digests.
  CHECK(f("POST", "/v2/r/blobs/uploads/?digest=sha256:xyz", with_body("x")).error_code() == "DIGEST_INVALID");
  const std::string loc2 = f("POST", "/v2/r/blobs/uploads/").header("Location");
  CHECK(f("PUT", loc2, with_body("x")).error_code() == "DIGEST_INVALID");
  CHECK(f("GET", loc2).status == 204);  // a missing digest leaves the session for a retry
  CHECK(f("GET", "/v2/r/blobs/md5:abc").error_code() == "DIGEST_INVALID");
}

TEST_CASE("a cancelled upload is gone", "[local][blobs]") {
  local_fixture f;
  const std::string loc = f("POST", "/v2/r/blobs/uploads/").header("Location");
  CHECK(f("PATCH", loc, with_body("abc")).status == 202);
  CHECK(f("DELETE", loc).status == 204);
  CHECK(f("GET", loc).status == 404);
  CHECK(f("DELETE", loc).error_code() == "BLOB_UPLOAD_UNKNOWN");
  // A session of another repository is not reachable through this one.
  const std::string other = f("POST", "/v2/s/blobs/uploads/").header("Location");
  const std::string id = other.substr(other.rfind('/') + 1);
  CHECK(f("GET", "/v2/r/blobs/uploads/" + id).status == 404);
  CHECK(f("GET", "/v2/r/blobs/uploads/not-a-uuid").status == 404);
}

TEST_CASE("a blob is mounted from another repository, or an upload starts when it cannot be", "[local][blobs][mount]") {
  local_fixture f;
  const digest d = f.push_blob("source/repo", "shared layer");
  reply r = f("POST", "/v2/target/repo/blobs/uploads/?mount=" + d.str() + "&from=source/repo");
  REQUIRE(r.status == 201);
  CHECK(r.header("Location") == "/v2/target/repo/blobs/" + d.str());
  CHECK(f("GET", "/v2/target/repo/blobs/" + d.str()).body == "shared layer");

  // A blob `from` does not hold: a session instead.
  const digest missing = digest_of("never pushed");
  r = f("POST", "/v2/target/repo/blobs/uploads/?mount=" + missing.str() + "&from=source/repo");
  CHECK(r.status == 202);
  CHECK(r.header("Location").rfind("/v2/target/repo/blobs/uploads/", 0) == 0);
  // The blob exists but `from` does not link it: no mount.
  const digest elsewhere = f.push_blob("third", "only in third");
  CHECK(f("POST", "/v2/target/repo/blobs/uploads/?mount=" + elsewhere.str() + "&from=source/repo").status == 202);
  // Without `from`: the shared store finds it (automatic content discovery).
  CHECK(f("POST", "/v2/fourth/blobs/uploads/?mount=" + elsewhere.str()).status == 201);
  CHECK(f("POST", "/v2/fourth/blobs/uploads/?mount=" + missing.str()).status == 202);
  // Percent-encoded parameters, as Go clients send them.
  std::string enc = d.str();
  enc.replace(enc.find(':'), 1, "%3A");
  CHECK(f("POST", "/v2/fifth/blobs/uploads/?mount=" + enc + "&from=source%2Frepo").status == 201);
}

TEST_CASE("blob ranges are served with 206, and ranges outside the blob are 416", "[local][blobs][range]") {
  local_fixture f;
  const std::string content = content_of(1000, 'f');
  const digest d = f.push_blob("r", content);
  const std::string url = "/v2/r/blobs/" + d.str();
  reply r = f("GET", url, with_body("", {{"Range", "bytes=100-199"}}));
  CHECK(r.status == 206);
  CHECK(r.body == content.substr(100, 100));
  CHECK(r.header("Content-Range") == "bytes 100-199/1000");
  r = f("GET", url, with_body("", {{"Range", "bytes=900-"}}));
  CHECK(r.status == 206);
  CHECK(r.body == content.substr(900));
  r = f("GET", url, with_body("", {{"Range", "bytes=-10"}}));
  CHECK(r.body == content.substr(990));
  r = f("GET", url, with_body("", {{"Range", "bytes=990-5000"}}));
  CHECK(r.body == content.substr(990));
  CHECK(r.header("Content-Range") == "bytes 990-999/1000");
  r = f("GET", url, with_body("", {{"Range", "bytes=1000-"}}));
  CHECK(r.status == 416);
  CHECK(r.header("Content-Range") == "bytes */1000");
  // Several ranges: served whole.
  r = f("GET", url, with_body("", {{"Range", "bytes=0-1,5-6"}}));
  CHECK(r.status == 200);
  CHECK(r.body == content);
}

TEST_CASE("a malformed Range is ignored (200, RFC 9110), a huge end is clamped, If-Range and If-None-Match are honoured",
          "[local][blobs][range]") {
  local_fixture f;
  const std::string content = content_of(1000, 'g');
  const digest d = f.push_blob("r", content);
  const std::string url = "/v2/r/blobs/" + d.str();
  for (const char* ignored : {"bytes=10-5", "bytes=abc", "items=0-1", "bytes=", "bytes=-", "bytes=1-2-3", "bytes=+1-2"}) {
    INFO(ignored);
    const reply r = f("GET", url, with_body("", {{"Range", ignored}}));
    CHECK(r.status == 200);
    CHECK(r.body == content);
    CHECK_FALSE(r.has_header("Content-Range"));
  }
  reply r = f("GET", url, with_body("", {{"Range", "bytes=0-99999999999999999999999999"}}));
  CHECK(r.status == 206);
  CHECK(r.header("Content-Range") == "bytes 0-999/1000");
  CHECK(r.body == content);
  r = f("GET", url, with_body("", {{"Range", "bytes=99999999999999999999999999-"}}));
  CHECK(r.status == 416);
  CHECK(r.error_code() == "RANGE_NOT_SATISFIABLE");
  // If-Range with our ETag: the range applies; with another validator: the whole blob.
  r = f("GET", url, with_body("", {{"Range", "bytes=0-9"}, {"If-Range", "\"" + d.str() + "\""}}));
  CHECK(r.status == 206);
  r = f("GET", url, with_body("", {{"Range", "bytes=0-9"}, {"If-Range", "\"sha256:other\""}}));
  CHECK(r.status == 200);
  CHECK(r.body == content);
  // If-None-Match naming the blob: 304 and no body.
  r = f("GET", url, with_body("", {{"If-None-Match", "\"" + d.str() + "\""}}));
  CHECK(r.status == 304);
  CHECK(r.body.empty());
  CHECK(r.header("ETag") == "\"" + d.str() + "\"");
  CHECK(f("GET", url, with_body("", {{"If-None-Match", "\"sha256:other\""}})).status == 200);
  // HEAD with a range: the headers of the 206.
  r = f("HEAD", url, with_body("", {{"Range", "bytes=10-19"}}));
  CHECK(r.status == 206);
  CHECK(r.header("Content-Length") == "10");
  CHECK(r.body.empty());
}

TEST_CASE("an empty blob is pushed and served", "[local][blobs]") {
  local_fixture f;
  const digest d = f.push_blob("r", "");
  const reply r = f("GET", "/v2/r/blobs/" + d.str());
  CHECK(r.status == 200);
  CHECK(r.body.empty());
  CHECK(f("HEAD", "/v2/r/blobs/" + d.str()).status == 200);
}

TEST_CASE("deleting a blob unlinks it from the repository only", "[local][blobs]") {
  local_fixture f;
  const digest d = f.push_blob("a", "to delete");
  CHECK(f("POST", "/v2/b/blobs/uploads/?mount=" + d.str() + "&from=a").status == 201);
  CHECK(f("DELETE", "/v2/a/blobs/" + d.str()).status == 202);
  CHECK(f("HEAD", "/v2/a/blobs/" + d.str()).status == 404);
  CHECK(f("DELETE", "/v2/a/blobs/" + d.str()).error_code() == "BLOB_UNKNOWN");
  CHECK(f("GET", "/v2/b/blobs/" + d.str()).body == "to delete");
}

TEST_CASE("writes need push or delete access, and names are validated", "[local][access]") {
  local_fixture f;
  const digest d = f.push_blob("r", "x");
  call_options read_only;
  read_only.access = REGISTRYD_ACCESS_PULL;
  reply r = f("POST", "/v2/r/blobs/uploads/", read_only);
  CHECK(r.status == 403);
  CHECK(r.error_code() == "DENIED");
  CHECK(f("DELETE", "/v2/r/blobs/" + d.str(), read_only).status == 403);
  call_options pusher;
  pusher.access = REGISTRYD_ACCESS_PULL | REGISTRYD_ACCESS_PUSH;
  CHECK(f("DELETE", "/v2/r/blobs/" + d.str(), pusher).status == 403);
  CHECK(f("GET", "/v2/r/blobs/" + d.str(), read_only).status == 200);

  CHECK(f("GET", "/v2/UPPER/blobs/" + d.str()).error_code() == "NAME_INVALID");
  CHECK(f("GET", "/v2/a..b/tags/list").status == 400);
  CHECK(f("PUT", "/v2/r/blobs/" + d.str()).status == 405);
  CHECK(f("GET", "/v2/r/nothing").status == 404);
  // containerd's ?ns= is accepted and ignored.
  CHECK(f("GET", "/v2/r/blobs/" + d.str() + "?ns=registry.d8-system.svc:5001").status == 200);
}
