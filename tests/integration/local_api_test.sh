#!/usr/bin/env bash
# Local mode, endpoint by endpoint, with real curl over HTTPS and basic auth: the statuses,
# headers and error codes of the distribution spec v1.1 for monolithic, POST+PUT and chunked
# pushes (416 out of order), upload status, cancel and mount; blob ranges; manifests by tag
# and digest, the 4 MiB limit and digest checks; tags and catalog pages with their Link
# header; referrers with the artifactType filter; deletes; access; and an upload that
# survives `kill -9` of registryd in the middle of a streamed chunk, and a chunk sent with
# Content-Range that a kill cut short is dropped whole.
source "$(dirname "$0")/lib.sh"

for tool in curl python3 htpasswd sha256sum pgrep dd; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done

{ echo "users:"; bcrypt_user reader rpass read-only; bcrypt_user writer wpass read-write; } >"$WORK/users.yaml"
module_config Local >"$WORK/mc.yaml"
record_mode "$WORK/lo-state" Local
PORT=$(free_port)
start_local() {
  start_registryd lo "$PORT" --config "$WORK/mc.yaml" --users-file "$WORK/users.yaml"
  wait_for 20 curl -sf --cacert "$CA" -u writer:wpass "https://127.0.0.1:$PORT/v2/_catalog"
}
start_local
URL="https://127.0.0.1:$PORT"

# st ARGS...: the status of a request as the writer (body in $WORK/body, headers in $WORK/headers).
st() { http_status --cacert "$CA" -u writer:wpass "$@"; }
# hdr NAME: a header of the last response.
hdr() { tr -d '\r' <"$WORK/headers" | awk -v n="$(echo "$1" | tr 'A-Z' 'a-z')" -F': ' 'tolower($1) == n { sub(/^[^:]*: /, ""); print; exit }'; }
code() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["errors"][0]["code"])' "$WORK/body"; }
sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
# slice FILE OFFSET [COUNT]: bytes of FILE from OFFSET (all the rest without COUNT).
slice() { dd if="$1" iflag=skip_bytes,count_bytes skip="$2" ${3:+count="$3"} bs=1M status=none; }
expect() { # expect STATUS ARGS...: runs st and checks the status
  local want=$1; shift
  local got; got=$(st "$@")
  [ "$got" = "$want" ] || fail "$* -> $got, expected $want: $(head -c 300 "$WORK/body")"
}

# curl sends a bodiless POST/PUT without Content-Length, which the front door reads as a body
# that lasts until the connection closes; real clients (Go's net/http) send Content-Length: 0,
# and so do the requests below.
echo "# the version check"
expect 200 "$URL/v2/"
assert_eq "$(hdr Docker-Distribution-API-Version)" "registry/2.0" "API version header"

echo "# monolithic POST ?digest= and blob GET/HEAD with ranges"
head -c 300000 /dev/urandom >"$WORK/blob1"
D1=$(sha "$WORK/blob1")
expect 201 -X POST -H "Content-Type: application/octet-stream" --data-binary @"$WORK/blob1" "$URL/v2/test/one/blobs/uploads/?digest=$D1"
assert_eq "$(hdr Location)" "/v2/test/one/blobs/$D1" "Location of a pushed blob"
assert_eq "$(hdr Docker-Content-Digest)" "$D1" "Docker-Content-Digest of a pushed blob"
expect 200 -o "$WORK/got1" "$URL/v2/test/one/blobs/$D1"
cmp -s "$WORK/blob1" "$WORK/body" || fail "the blob read back differs"
expect 200 -I "$URL/v2/test/one/blobs/$D1"
assert_eq "$(hdr Content-Length)" "300000" "HEAD Content-Length"
assert_eq "$(hdr Docker-Content-Digest)" "$D1" "HEAD Docker-Content-Digest"
expect 206 -H "Range: bytes=1000-1999" "$URL/v2/test/one/blobs/$D1"
assert_eq "$(hdr Content-Range)" "bytes 1000-1999/300000" "Content-Range"
cmp -s <(slice "$WORK/blob1" 1000 1000) "$WORK/body" || fail "the range read back differs"
expect 416 -H "Range: bytes=300000-" "$URL/v2/test/one/blobs/$D1"
assert_eq "$(hdr Content-Range)" "bytes */300000" "416 Content-Range"
expect 404 "$URL/v2/test/other/blobs/$D1"
assert_eq "$(code)" "BLOB_UNKNOWN" "blob of another repository"
# A digest that does not match: nothing stored.
expect 400 -X POST --data-binary "not the content" "$URL/v2/test/one/blobs/uploads/?digest=sha256:$(printf x | sha256sum | cut -d' ' -f1)"
assert_eq "$(code)" "DIGEST_INVALID" "mismatching digest"
expect 404 -I "$URL/v2/test/one/blobs/sha256:$(printf x | sha256sum | cut -d' ' -f1)"
# An empty blob.
: >"$WORK/empty"
DE=$(sha "$WORK/empty")
expect 201 -X POST --data-binary @"$WORK/empty" "$URL/v2/test/one/blobs/uploads/?digest=$DE"
expect 200 -I "$URL/v2/test/one/blobs/$DE"
assert_eq "$(hdr Content-Length)" "0" "HEAD of an empty blob"

echo "# POST + chunked PATCH with Content-Range (416 out of order and on a retry) + PUT"
head -c 3000000 /dev/urandom >"$WORK/blob2"
D2=$(sha "$WORK/blob2")
slice "$WORK/blob2" 0 1000000 >"$WORK/c1"
slice "$WORK/blob2" 1000000 1000000 >"$WORK/c2"
slice "$WORK/blob2" 2000000 >"$WORK/c3"
expect 202 -X POST -H "Content-Length: 0" "$URL/v2/test/one/blobs/uploads/"
LOC=$(hdr Location)
UUID=$(hdr Docker-Upload-UUID)
assert_eq "$LOC" "/v2/test/one/blobs/uploads/$UUID" "upload Location"
assert_eq "$(hdr Range)" "0-0" "Range of a new upload"
expect 416 -X PATCH -H "Content-Type: application/octet-stream" -H "Content-Range: 1000000-1999999" --data-binary @"$WORK/c2" "$URL$LOC"
expect 202 -X PATCH -H "Content-Type: application/octet-stream" -H "Content-Range: 0-999999" --data-binary @"$WORK/c1" "$URL$LOC"
assert_eq "$(hdr Range)" "0-999999" "Range after the first chunk"
expect 416 -X PATCH -H "Content-Range: 0-999999" --data-binary @"$WORK/c1" "$URL$LOC"
expect 204 "$URL$LOC"
assert_eq "$(hdr Range)" "0-999999" "GET status after a refused retry"
assert_eq "$(hdr Docker-Upload-UUID)" "$UUID" "GET status UUID"
expect 202 -X PATCH -H "Content-Range: 1000000-1999999" --data-binary @"$WORK/c2" "$URL$LOC"
expect 201 -X PUT -H "Content-Range: 2000000-2999999" --data-binary @"$WORK/c3" "$URL$LOC?digest=$D2"
assert_eq "$(hdr Location)" "/v2/test/one/blobs/$D2" "Location after the final chunk"
expect 200 "$URL/v2/test/one/blobs/$D2"
cmp -s "$WORK/blob2" "$WORK/body" || fail "the chunked blob read back differs"
expect 404 "$URL$LOC"
assert_eq "$(code)" "BLOB_UPLOAD_UNKNOWN" "finished session"

echo "# POST + PUT, a streamed (chunked transfer) PATCH, and DELETE of a session"
expect 202 -X POST -H "Content-Length: 0" "$URL/v2/test/two/blobs/uploads/"
expect 201 -X PUT --data-binary @"$WORK/blob1" "$URL$(hdr Location)?digest=$D1"
expect 202 -X POST -H "Content-Length: 0" "$URL/v2/test/two/blobs/uploads/"
LOC=$(hdr Location)
expect 202 -X PATCH -H "Transfer-Encoding: chunked" --data-binary @"$WORK/blob2" "$URL$LOC"
assert_eq "$(hdr Range)" "0-2999999" "Range after a streamed PATCH"
expect 201 -X PUT -H "Content-Length: 0" "$URL$LOC?digest=$D2"
expect 202 -X POST -H "Content-Length: 0" "$URL/v2/test/two/blobs/uploads/"
LOC=$(hdr Location)
expect 204 -X DELETE "$URL$LOC"
expect 404 "$URL$LOC"

echo "# cross-repository mount: 201 when linked in from, 202 (a session) otherwise"
expect 201 -X POST -H "Content-Length: 0" "$URL/v2/test/mounted/blobs/uploads/?mount=$D1&from=test/one"
assert_eq "$(hdr Location)" "/v2/test/mounted/blobs/$D1" "mount Location"
expect 200 -I "$URL/v2/test/mounted/blobs/$D1"
expect 202 -X POST -H "Content-Length: 0" "$URL/v2/test/mounted/blobs/uploads/?mount=sha256:$(printf nope | sha256sum | cut -d' ' -f1)&from=test/one"
case "$(hdr Location)" in /v2/test/mounted/blobs/uploads/*) ;; *) fail "a failed mount must start an upload: $(hdr Location)" ;; esac

echo "# manifests: blobs must exist, digests are checked, OCI-Subject, negotiation, 4 MiB"
printf '{"architecture":"amd64","os":"linux"}' >"$WORK/config"
DC=$(sha "$WORK/config")
python3 - "$WORK" "$DC" "$(stat -c %s "$WORK/config")" "$D1" <<'PY'
import json, sys
w, dc, cs, dl = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": dc, "size": cs},
     "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dl, "size": 300000}]}
open(w + "/manifest.json", "w").write(json.dumps(m))
PY
DM=$(sha "$WORK/manifest.json")
OCI_M="application/vnd.oci.image.manifest.v1+json"
expect 400 -X PUT -H "Content-Type: $OCI_M" --data-binary @"$WORK/manifest.json" "$URL/v2/test/one/manifests/v1"
assert_eq "$(code)" "MANIFEST_BLOB_UNKNOWN" "manifest before its config"
expect 201 -X POST --data-binary @"$WORK/config" "$URL/v2/test/one/blobs/uploads/?digest=$DC"
expect 400 -X PUT -H "Content-Type: $OCI_M" --data-binary @"$WORK/manifest.json" "$URL/v2/test/one/manifests/sha256:$(printf y | sha256sum | cut -d' ' -f1)"
assert_eq "$(code)" "DIGEST_INVALID" "manifest under another digest"
expect 400 -X PUT -H "Content-Type: $OCI_M" --data-binary @"$WORK/manifest.json" "$URL/v2/test/one/manifests/sha256:baddigeststring"
assert_eq "$(code)" "DIGEST_INVALID" "a malformed digest reference"
expect 201 -X PUT -H "Content-Type: $OCI_M" --data-binary @"$WORK/manifest.json" "$URL/v2/test/one/manifests/v1"
assert_eq "$(hdr Location)" "/v2/test/one/manifests/$DM" "manifest Location"
assert_eq "$(hdr Docker-Content-Digest)" "$DM" "manifest Docker-Content-Digest"
expect 200 -H "Accept: $OCI_M" "$URL/v2/test/one/manifests/v1"
cmp -s "$WORK/manifest.json" "$WORK/body" || fail "manifest read back differs"
assert_eq "$(hdr Content-Type)" "$OCI_M" "manifest Content-Type"
assert_eq "$(hdr Docker-Content-Digest)" "$DM" "GET manifest Docker-Content-Digest"
expect 200 -I -H "Accept: $OCI_M" "$URL/v2/test/one/manifests/$DM"
assert_eq "$(hdr Content-Length)" "$(stat -c %s "$WORK/manifest.json")" "HEAD manifest length"
expect 404 -H "Accept: application/vnd.docker.distribution.manifest.v2+json" "$URL/v2/test/one/manifests/v1"
assert_eq "$(code)" "MANIFEST_UNKNOWN" "OCI manifest to a Docker-only client"
expect 404 "$URL/v2/test/one/manifests/v0"
assert_eq "$(code)" "MANIFEST_UNKNOWN" "unknown tag"

python3 - "$WORK" <<'PY'
import json, sys
big = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "annotations": {"pad": "x" * (4 * 1024 * 1024)}}
open(sys.argv[1] + "/big.json", "w").write(json.dumps(big))
PY
expect 413 -X PUT -H "Content-Type: $OCI_M" --data-binary @"$WORK/big.json" "$URL/v2/test/one/manifests/big"
expect 413 -X PUT -H "Content-Type: $OCI_M" -H "Transfer-Encoding: chunked" --data-binary @"$WORK/big.json" "$URL/v2/test/one/manifests/big"
expect 404 "$URL/v2/test/one/manifests/big"

echo "# referrers: OCI-Subject, the artifactType filter and OCI-Filters-Applied"
printf '{}' >"$WORK/empty.json"
DEJ=$(sha "$WORK/empty.json")
expect 201 -X POST --data-binary @"$WORK/empty.json" "$URL/v2/test/one/blobs/uploads/?digest=$DEJ"
for kind in signature sbom; do
  python3 - "$WORK" "$kind" "$DEJ" "$DM" "$(stat -c %s "$WORK/manifest.json")" <<'PY'
import json, sys
w, kind, dej, dm, ms = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
a = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "artifactType": "application/vnd.example." + kind,
     "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": dej, "size": 2},
     "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": dej, "size": 2}],
     "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": dm, "size": ms},
     "annotations": {"kind": kind}}
open(w + "/" + kind + ".json", "w").write(json.dumps(a))
PY
  DA=$(sha "$WORK/$kind.json")
  expect 201 -X PUT -H "Content-Type: $OCI_M" --data-binary @"$WORK/$kind.json" "$URL/v2/test/one/manifests/$DA"
  assert_eq "$(hdr OCI-Subject)" "$DM" "OCI-Subject of a $kind"
done
expect 200 "$URL/v2/test/one/referrers/$DM"
assert_eq "$(hdr Content-Type)" "application/vnd.oci.image.index.v1+json" "referrers Content-Type"
assert_eq "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["manifests"]))' "$WORK/body")" "2" "referrers"
expect 200 "$URL/v2/test/one/referrers/$DM?artifactType=application%2Fvnd.example.sbom"
assert_eq "$(hdr OCI-Filters-Applied)" "artifactType" "OCI-Filters-Applied"
assert_eq "$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["manifests"]; print(len(m), m[0]["artifactType"], m[0]["digest"])' "$WORK/body")" \
  "1 application/vnd.example.sbom $(sha "$WORK/sbom.json")" "filtered referrers"
expect 200 "$URL/v2/test/one/referrers/sha256:$(printf none | sha256sum | cut -d' ' -f1)"
assert_contains "$(cat "$WORK/body")" '"manifests":[]' "referrers of an unknown subject"

echo "# tags and catalog, page by page with a Link header"
for t in b a d c e; do
  expect 201 -X PUT -H "Content-Type: $OCI_M" --data-binary @"$WORK/manifest.json" "$URL/v2/test/one/manifests/$t"
done
expect 200 "$URL/v2/test/one/tags/list?n=2"
assert_eq "$(cat "$WORK/body")" '{"name":"test/one","tags":["a","b"]}' "first tags page"
assert_eq "$(hdr Link)" '</v2/test/one/tags/list?n=2&last=b>; rel="next"' "tags Link"
expect 200 "$URL$(hdr Link | sed 's/^<\(.*\)>.*/\1/')"
assert_eq "$(cat "$WORK/body")" '{"name":"test/one","tags":["c","d"]}' "second tags page"
expect 200 "$URL/v2/test/one/tags/list?n=10&last=d"
assert_eq "$(cat "$WORK/body")" '{"name":"test/one","tags":["e","v1"]}' "last tags page"
[ -z "$(hdr Link)" ] || fail "the last page has no Link"
expect 200 "$URL/v2/_catalog?n=2"
assert_eq "$(cat "$WORK/body")" '{"repositories":["test/mounted","test/one"]}' "first catalog page"
assert_eq "$(hdr Link)" '</v2/_catalog?n=2&last=test/one>; rel="next"' "catalog Link"
expect 200 "$URL$(hdr Link | sed 's/^<\(.*\)>.*/\1/')"
assert_eq "$(cat "$WORK/body")" '{"repositories":["test/two"]}' "second catalog page"
expect 404 "$URL/v2/test/none/tags/list"
assert_eq "$(code)" "NAME_UNKNOWN" "tags of an unknown repository"

echo "# names, digests and access"
expect 400 "$URL/v2/Test/One/tags/list"
assert_eq "$(code)" "NAME_INVALID" "upper-case name"
expect 400 "$URL/v2/test/one/blobs/sha256:1234"
assert_eq "$(code)" "DIGEST_INVALID" "short digest"
[ "$(http_status --cacert "$CA" -u reader:rpass -X POST -H "Content-Length: 0" "$URL/v2/test/one/blobs/uploads/")" = 403 ] || fail "read-only push"
assert_eq "$(code)" "DENIED" "read-only push"
[ "$(http_status --cacert "$CA" -u reader:rpass "$URL/v2/test/one/manifests/v1")" = 200 ] || fail "read-only pull"
[ "$(http_status --cacert "$CA" "$URL/v2/test/one/manifests/v1")" = 401 ] || fail "anonymous pull"
expect 200 "$URL/v2/test/one/tags/list?ns=registry.d8-system.svc:5001"

echo "# deletes: a tag, a manifest by digest (its tags go), a blob"
expect 202 -X DELETE "$URL/v2/test/one/manifests/a"
expect 404 -I "$URL/v2/test/one/manifests/a"
expect 202 -X DELETE "$URL/v2/test/one/manifests/$DM"
expect 404 -I "$URL/v2/test/one/manifests/$DM"
expect 404 -I "$URL/v2/test/one/manifests/b"
expect 202 -X DELETE "$URL/v2/test/one/blobs/$D2"
expect 404 -I "$URL/v2/test/one/blobs/$D2"
expect 200 -I "$URL/v2/test/two/blobs/$D2"

# slow_patch LOCATION FILE [CONTENT_RANGE]: in the background, a client that PATCHes FILE at
# 4 MB/s, so that it is still streaming when registryd is killed. Sets CLIENT_PID.
slow_patch() {
  python3 - "$PORT" "$CA" "$1" "$2" "${3:-}" >"$WORK/slow-patch.log" 2>&1 <<'PY' &
import base64, socket, ssl, sys, time
port, ca, loc, path, content_range = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
data = open(path, "rb").read()
s = ssl.create_default_context(cafile=ca).wrap_socket(socket.create_connection(("127.0.0.1", port)),
                                                      server_hostname="localhost")
auth = base64.b64encode(b"writer:wpass").decode()
extra = f"Content-Range: {content_range}\r\n" if content_range else ""
s.sendall((f"PATCH {loc} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {auth}\r\n{extra}"
           f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n").encode())
try:
    for off in range(0, len(data), 256 * 1024):
        s.sendall(data[off:off + 256 * 1024])
        time.sleep(1 / 16)
    print("sent everything: the test was too slow to kill registryd in time")
except OSError as e:
    print("cut:", e)
PY
  CLIENT_PID=$!
}
# kill_and_restart: kill -9 of registryd 3 s into a slow_patch, then a fresh start.
kill_and_restart() {
  sleep 3
  # REGISTRYD_PID is `timeout` wrapping registryd (lib.sh's start_bg): kill the server itself.
  SERVER_PID=$(pgrep -P "$REGISTRYD_PID" || true)
  [ -n "$SERVER_PID" ] || fail "cannot find registryd under pid $REGISTRYD_PID"
  kill -KILL "$SERVER_PID"
  wait "$CLIENT_PID" 2>/dev/null || true
  wait "$REGISTRYD_PID" 2>/dev/null || true
  start_local
}

echo "# an upload survives kill -9 of registryd in the middle of a streamed chunk"
head -c 24000000 /dev/urandom >"$WORK/blob3"
D3=$(sha "$WORK/blob3")
expect 202 -X POST -H "Content-Length: 0" "$URL/v2/test/resume/blobs/uploads/"
LOC=$(hdr Location)
slow_patch "$LOC" "$WORK/blob3"
kill_and_restart
expect 204 "$URL$LOC"
RANGE=$(hdr Range)
HAVE=$(( ${RANGE#0-} + 1 ))
echo "registryd kept $HAVE of 24000000 bytes"
[ "$HAVE" -gt 1000000 ] && [ "$HAVE" -lt 24000000 ] || fail "unexpected offset after the restart: $RANGE"
slice "$WORK/blob3" "$HAVE" >"$WORK/rest"
expect 202 -X PATCH -H "Content-Range: $HAVE-23999999" --data-binary @"$WORK/rest" "$URL$LOC"
expect 201 -X PUT -H "Content-Length: 0" "$URL$LOC?digest=$D3"
expect 200 "$URL/v2/test/resume/blobs/$D3"
assert_eq "$(sha "$WORK/body")" "$D3" "resumed blob"

echo "# a chunk sent with Content-Range and cut by kill -9 is dropped whole; the acknowledged one stays"
head -c 1000000 "$WORK/blob3" >"$WORK/first"
slice "$WORK/blob3" 1000000 >"$WORK/rest"
expect 202 -X POST -H "Content-Length: 0" "$URL/v2/test/ranged/blobs/uploads/"
LOC=$(hdr Location)
expect 202 -X PATCH -H "Content-Range: 0-999999" --data-binary @"$WORK/first" "$URL$LOC"
slow_patch "$LOC" "$WORK/rest" "1000000-23999999"
kill_and_restart
expect 204 "$URL$LOC"
assert_eq "$(hdr Range)" "0-999999" "the session after a ranged chunk was cut by a kill"
expect 202 -X PATCH -H "Content-Range: 1000000-23999999" --data-binary @"$WORK/rest" "$URL$LOC"
expect 201 -X PUT -H "Content-Length: 0" "$URL$LOC?digest=$D3"
expect 200 "$URL/v2/test/ranged/blobs/$D3"
assert_eq "$(sha "$WORK/body")" "$D3" "blob pushed again after the dropped chunk"

echo "# metrics"
http_status --cacert "$CA" "$URL/metrics" >/dev/null
assert_contains "$(cat "$WORK/body")" "registryd_local_blobs " "Local metrics"
assert_contains "$(cat "$WORK/body")" "registryd_local_uploads_in_progress " "Local metrics"
echo "PASS local_api"
