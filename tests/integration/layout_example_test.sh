#!/usr/bin/env bash
# The SDK's second example from a third party's seat: sdk/examples/layout (a read-only registry
# over an OCI image layout) built out of tree against the installed SDK, loaded by the installed
# host with --plugin, and pulled from by real clients: skopeo (a single image and a two-platform
# index, digests compared with the layout's) and containerd's ctr through a hosts.toml mirror.
# curl checks the tags list with its pages, the referrers API, Range, and the spec's refusals.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || fail "containerd needs root to run (this test starts its own containerd)"
for tool in cmake containerd ctr skopeo umoci curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

echo "# install registryd, build the example out of tree against the prefix"
prefix="$WORK/prefix"
cmake --install "$REGISTRYD_BUILD_DIR" --prefix "$prefix" >"$WORK/install.log"
cp -r "$REGISTRYD_SOURCE_DIR/sdk/examples/layout" "$WORK/layout-src"
cmake -S "$WORK/layout-src" -B "$WORK/layout-build" -DCMAKE_PREFIX_PATH="$prefix" >"$WORK/layout-cmake.log" ||
  fail "cmake of the example failed: $(tail -5 "$WORK/layout-cmake.log")"
cmake --build "$WORK/layout-build" >"$WORK/layout-build.log" 2>&1 ||
  fail "the example does not build: $(tail -20 "$WORK/layout-build.log")"
plugin="$WORK/layout-build/layout.so"
exported=$(nm -D --defined-only "$plugin" | awk '{print $3}' | grep -v '^$' || true)
assert_eq "$exported" "registryd_plugin_entry" "symbols exported by layout.so"

echo "# a layout with a single image (v1), a two-platform index (multi) and a referrer of v1"
make_sample_image "$WORK/img1"
make_sample_image "$WORK/img2"
make_multiarch_index "$WORK/multi" "$WORK/img1" "$WORK/img2"
served="$WORK/served"
timeout 120 skopeo copy --quiet "oci:$WORK/img1:latest" "oci:$served:v1"
timeout 120 skopeo copy --quiet --all "oci:$WORK/multi:latest" "oci:$served:multi"
V1=$(python3 -c 'import json,sys; print([m["digest"] for m in json.load(open(sys.argv[1]))["manifests"]
  if m.get("annotations",{}).get("org.opencontainers.image.ref.name")=="v1"][0])' "$served/index.json")
MULTI=$(index_digest "$WORK/multi")
REFERRER=$(python3 - "$served" "$V1" <<'PY'
import hashlib, json, sys
root, subject = sys.argv[1], sys.argv[2]
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{root}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d
empty = put(b"{}")
v1_size = len(open(f"{root}/blobs/sha256/{subject[7:]}", "rb").read())
doc = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "artifactType": "application/vnd.example.sbom",
                  "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
                  "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
                  "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject,
                              "size": v1_size}}).encode()
digest = put(doc)
index = json.load(open(f"{root}/index.json"))
index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                           "size": len(doc)})
json.dump(index, open(f"{root}/index.json", "w"))
print(digest)
PY
)

echo "# the installed host serves the layout through the example plugin"
port=$(free_port)
start_bg layout 240 "$prefix/bin/registryd" serve --listen-address "127.0.0.1:$port" \
  --state-dir "$WORK/state" --data-dir "$served" --plugin "$plugin"
wait_port "$port" 30 || fail "registryd did not listen: $(tail -5 "$WORK/layout.log")"
ca="$WORK/state/pki/ca.crt"
wait_for 20 test -f "$ca"
grep -q "\[Layout\] serving the image layout $served as system/deckhouse" "$WORK/layout.log" ||
  fail "the plugin did not say what it serves: $(tail -5 "$WORK/layout.log")"
mkdir -p "$WORK/certs" && cp "$ca" "$WORK/certs/ca.crt"
base="https://127.0.0.1:$port/v2/system/deckhouse"

echo "# skopeo pulls the image and the index; digests are the layout's"
timeout 120 skopeo copy --quiet --src-cert-dir "$WORK/certs" --digestfile "$WORK/v1.digest" \
  "docker://127.0.0.1:$port/system/deckhouse:v1" "oci:$WORK/pulled:v1" || fail "skopeo pull of v1 failed"
assert_eq "$(cat "$WORK/v1.digest")" "$V1" "digest skopeo pulled for v1"
timeout 120 skopeo copy --quiet --all --src-cert-dir "$WORK/certs" --digestfile "$WORK/multi.digest" \
  "docker://127.0.0.1:$port/system/deckhouse:multi" "oci:$WORK/pulled:multi" || fail "skopeo pull of multi failed"
assert_eq "$(cat "$WORK/multi.digest")" "$MULTI" "digest skopeo pulled for multi"
tags=$(timeout 60 skopeo list-tags --cert-dir "$WORK/certs" "docker://127.0.0.1:$port/system/deckhouse")
assert_contains "$tags" '"multi"' "skopeo list-tags"
assert_contains "$tags" '"v1"' "skopeo list-tags"

echo "# tags list pages, referrers, Range, the spec's refusals"
code=$(http_status --cacert "$ca" "$base/tags/list?n=1")
assert_eq "$code" "200" "tags page"
assert_eq "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tags"])' "$WORK/body")" "['multi']" "first page"
assert_contains "$(cat "$WORK/headers")" '</v2/system/deckhouse/tags/list?n=1&last=multi>; rel="next"' "Link"
code=$(http_status --cacert "$ca" "$base/tags/list?n=1&last=multi")
assert_eq "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tags"])' "$WORK/body")" "['v1']" "second page"
code=$(http_status --cacert "$ca" "$base/referrers/$V1")
assert_eq "$code" "200" "referrers"
assert_contains "$(cat "$WORK/body")" "\"digest\":\"$REFERRER\"" "referrers list the referrer"
assert_contains "$(cat "$WORK/body")" '"artifactType":"application/vnd.example.sbom"' "referrers artifactType"
code=$(http_status --cacert "$ca" "$base/referrers/$V1?artifactType=application/other")
assert_eq "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["manifests"]))' "$WORK/body")" "0" "filtered referrers"
assert_contains "$(cat "$WORK/headers")" "OCI-Filters-Applied: artifactType" "filter header"
layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][0]["digest"])' \
  "$served/blobs/sha256/${V1#sha256:}")
code=$(http_status --cacert "$ca" -H "Range: bytes=0-9" "$base/blobs/$layer")
assert_eq "$code" "206" "ranged blob"
assert_eq "$(stat -c %s "$WORK/body")" "10" "ranged length"
code=$(http_status --cacert "$ca" -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
  --data '{}' "$base/manifests/v2")
assert_eq "$code" "405" "push to a read-only mode"
assert_contains "$(cat "$WORK/body")" '"code":"UNSUPPORTED"' "405 body"
code=$(http_status --cacert "$ca" "https://127.0.0.1:$port/v2/other/repo/manifests/v1")
assert_eq "$code" "404" "another repository"
assert_contains "$(cat "$WORK/body")" '"code":"NAME_UNKNOWN"' "404 body"
code=$(http_status --cacert "$ca" "$base/manifests/-v1")
assert_contains "$(cat "$WORK/body")" '"code":"TAG_INVALID"' "invalid tag"
code=$(http_status --cacert "$ca" "$base/manifests/nope")
assert_eq "$code" "404" "unknown tag"
assert_contains "$(cat "$WORK/body")" '"code":"MANIFEST_UNKNOWN"' "unknown tag body"

echo "# containerd pulls the fixed address through a hosts.toml mirror to the plugin"
FIXED=registry.d8-system.svc:5001
mkdir -p "$WORK/hosts/$FIXED"
cat >"$WORK/hosts/$FIXED/hosts.toml" <<TOML
server = "https://$FIXED"

[host."https://127.0.0.1:$port"]
  capabilities = ["pull", "resolve"]
  ca = "$ca"
TOML
NS=registryd-layout-it
start_containerd
for ref in "$FIXED/system/deckhouse:v1" "$FIXED/system/deckhouse:multi"; do
  ctr_ images pull --snapshotter "$SNAPSHOTTER" --hosts-dir "$WORK/hosts" "$ref" >"$WORK/ctr.log" 2>&1 ||
    fail "ctr pull of $ref failed: $(tail -5 "$WORK/ctr.log")"
done
got=$(ctr_ images ls | awk -v ref="$FIXED/system/deckhouse:v1" '$1 == ref { print $3 }')
assert_eq "$got" "$V1" "digest ctr pulled for v1"
got=$(ctr_ images ls | awk -v ref="$FIXED/system/deckhouse:multi" '$1 == ref { print $3 }')
assert_eq "$got" "$MULTI" "digest ctr pulled for multi"
echo "PASS layout_example"
