#!/usr/bin/env bash
# Local mode with real clients over HTTPS (registryd's CA, basic auth):
#   - skopeo copies a single image into registryd and back, as OCI and as Docker schema 2
#     (--format v2s2): digests identical, media types kept;
#   - a multi-arch OCI index (built by hand from two umoci images) with skopeo --all, and a
#     Docker manifest list pushed with curl: both read back byte for byte, and copied on to
#     docker-registry (the reference) with the same digests;
#   - podman pulls from registryd and reports the pushed digest.
source "$(dirname "$0")/lib.sh"

for tool in skopeo umoci podman docker-registry curl python3 htpasswd; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

{ echo "users:"; bcrypt_user reader rpass read-only; bcrypt_user writer wpass read-write; } >"$WORK/users.yaml"
module_config Local >"$WORK/mc.yaml"
record_mode "$WORK/lo-state" Local
PORT=$(free_port)
start_registryd lo "$PORT" --config "$WORK/mc.yaml" --users-file "$WORK/users.yaml"
wait_for 20 curl -sf --cacert "$CA" -u writer:wpass "https://127.0.0.1:$PORT/v2/_catalog"
REG="127.0.0.1:$PORT"
# skopeo and podman read CA files (*.crt) from a directory.
mkdir -p "$WORK/certs"
cp "$CA" "$WORK/certs/registryd-ca.crt"
UP=$(free_port)
start_docker_registry "$UP"

sk() { timeout 120 skopeo "$@"; }
push_opts=(--dest-cert-dir "$WORK/certs" --dest-creds writer:wpass)
pull_opts=(--src-cert-dir "$WORK/certs" --src-creds reader:rpass)
raw_digest() { echo "sha256:$(sha256sum | cut -d' ' -f1)"; }
content_type() {
  curl -sS --cacert "$CA" -u reader:rpass -o /dev/null -w '%{content_type}' \
    -H "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json" \
    "https://$REG/v2/$1/manifests/$2"
}

make_sample_image "$WORK/img1"
make_sample_image "$WORK/img2"

echo "# a single OCI image: into registryd and back"
sk copy --quiet "${push_opts[@]}" --digestfile "$WORK/oci.digest" "oci:$WORK/img1:latest" "docker://$REG/system/deckhouse/sample:oci"
D_OCI=$(cat "$WORK/oci.digest")
assert_eq "$D_OCI" "$(index_digest "$WORK/img1")" "digest pushed from the layout"
assert_eq "$(content_type system/deckhouse/sample oci)" "application/vnd.oci.image.manifest.v1+json" "stored media type"
sk copy --quiet "${pull_opts[@]}" "docker://$REG/system/deckhouse/sample:oci" "oci:$WORK/back-oci:latest"
assert_eq "$(index_digest "$WORK/back-oci")" "$D_OCI" "digest after the round trip"
assert_eq "$(sk inspect --cert-dir "$WORK/certs" --creds reader:rpass "docker://$REG/system/deckhouse/sample:oci" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')" \
  "$D_OCI" "skopeo inspect"

echo "# the same image as Docker schema 2: media type kept, digest identical on the way back"
sk copy --quiet --format v2s2 "${push_opts[@]}" --digestfile "$WORK/v2s2.digest" "oci:$WORK/img1:latest" "docker://$REG/system/deckhouse/sample:v2s2"
D_V2=$(cat "$WORK/v2s2.digest")
[ "$D_V2" != "$D_OCI" ] || fail "a schema 2 conversion must have another digest"
assert_eq "$(content_type system/deckhouse/sample v2s2)" "application/vnd.docker.distribution.manifest.v2+json" "stored Docker media type"
sk copy --quiet "${pull_opts[@]}" "docker://$REG/system/deckhouse/sample:v2s2" "dir:$WORK/back-v2s2"
assert_eq "$(raw_digest <"$WORK/back-v2s2/manifest.json")" "$D_V2" "schema 2 digest after the round trip"

echo "# a multi-arch OCI index built by hand, pushed with skopeo --all"
make_multiarch_index "$WORK/multi" "$WORK/img1" "$WORK/img2"
D_INDEX=$(index_digest "$WORK/multi")
sk copy --quiet --all "${push_opts[@]}" "oci:$WORK/multi:latest" "docker://$REG/system/deckhouse/multi:latest"
assert_eq "$(content_type system/deckhouse/multi latest)" "application/vnd.oci.image.index.v1+json" "index media type"
assert_eq "$(sk inspect --raw --cert-dir "$WORK/certs" --creds reader:rpass "docker://$REG/system/deckhouse/multi:latest" | raw_digest)" \
  "$D_INDEX" "index bytes read back"
sk copy --quiet --all "${pull_opts[@]}" "docker://$REG/system/deckhouse/multi:latest" "oci:$WORK/back-multi:latest"
assert_eq "$(index_digest "$WORK/back-multi")" "$D_INDEX" "index digest after the round trip"
for d in $(python3 -c 'import json,sys; [print(m["digest"]) for m in json.load(open(sys.argv[1]))["manifests"]]' "$WORK/multi/blobs/sha256/${D_INDEX#sha256:}"); do
  [ -f "$WORK/back-multi/blobs/sha256/${d#sha256:}" ] || fail "child manifest $d missing after the round trip"
done

echo "# a Docker manifest list of two schema 2 images, pushed with curl"
sk copy --quiet --format v2s2 "${push_opts[@]}" --digestfile "$WORK/a.digest" "oci:$WORK/img1:latest" "docker://$REG/system/deckhouse/list:amd64"
sk copy --quiet --format v2s2 "${push_opts[@]}" --digestfile "$WORK/b.digest" "oci:$WORK/img2:latest" "docker://$REG/system/deckhouse/list:arm64"
python3 - "$WORK" "$REG" "$CA" <<'PY'
import json, sys, urllib.request, ssl, base64
w, reg, ca = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca)
auth = "Basic " + base64.b64encode(b"writer:wpass").decode()
entries = []
for tag, arch in [("amd64", "amd64"), ("arm64", "arm64")]:
    d = open(f"{w}/{'a' if arch == 'amd64' else 'b'}.digest").read().strip()
    req = urllib.request.Request(f"https://{reg}/v2/system/deckhouse/list/manifests/{d}", method="HEAD",
                                 headers={"Authorization": auth,
                                          "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    size = int(urllib.request.urlopen(req, context=ctx).headers["Content-Length"])
    entries.append({"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": d,
                    "size": size, "platform": {"architecture": arch, "os": "linux"}})
body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                   "manifests": entries}, indent=3).encode()
open(w + "/list.json", "wb").write(body)
req = urllib.request.Request(f"https://{reg}/v2/system/deckhouse/list/manifests/latest", data=body, method="PUT",
                             headers={"Authorization": auth,
                                      "Content-Type": "application/vnd.docker.distribution.manifest.list.v2+json"})
r = urllib.request.urlopen(req, context=ctx)
assert r.status == 201, r.status
PY
D_LIST=$(raw_digest <"$WORK/list.json")
assert_eq "$(content_type system/deckhouse/list latest)" "application/vnd.docker.distribution.manifest.list.v2+json" "list media type"
assert_eq "$(sk inspect --raw --cert-dir "$WORK/certs" --creds reader:rpass "docker://$REG/system/deckhouse/list:latest" | raw_digest)" \
  "$D_LIST" "list bytes read back"

echo "# registryd -> docker-registry keeps every digest (index, list, images)"
for ref in multi:latest list:latest sample:oci sample:v2s2; do
  sk copy --quiet --all --src-cert-dir "$WORK/certs" --src-creds reader:rpass --dest-tls-verify=false \
    "docker://$REG/system/deckhouse/$ref" "docker://127.0.0.1:$UP/mirror/$ref"
  want=$(sk inspect --raw --cert-dir "$WORK/certs" --creds reader:rpass "docker://$REG/system/deckhouse/$ref" | raw_digest)
  got=$(sk inspect --raw --tls-verify=false "docker://127.0.0.1:$UP/mirror/$ref" | raw_digest)
  assert_eq "$got" "$want" "docker-registry copy of $ref"
done
# ... and back from docker-registry into another registryd repository.
sk copy --quiet --all --src-tls-verify=false "${push_opts[@]}" "docker://127.0.0.1:$UP/mirror/multi:latest" "docker://$REG/again/multi:latest"
assert_eq "$(sk inspect --raw --cert-dir "$WORK/certs" --creds reader:rpass "docker://$REG/again/multi:latest" | raw_digest)" \
  "$D_INDEX" "index after registryd -> docker-registry -> registryd"

echo "# podman pulls from registryd"
pm() { timeout 120 podman --root "$WORK/podman/root" --runroot "$WORK/podman/run" --storage-driver vfs "$@"; }
pm pull --quiet --cert-dir "$WORK/certs" --creds reader:rpass "$REG/system/deckhouse/sample:v2s2" >/dev/null
assert_eq "$(pm image inspect --format '{{.Digest}}' "$REG/system/deckhouse/sample:v2s2")" "$D_V2" "podman digest (schema 2)"
# Both forms share one config, so podman would file them as one image: pull the other alone.
pm rmi -a -f >/dev/null
pm pull --quiet --cert-dir "$WORK/certs" --creds reader:rpass "$REG/system/deckhouse/sample:oci" >/dev/null
assert_eq "$(pm image inspect --format '{{.Digest}}' "$REG/system/deckhouse/sample:oci")" "$D_OCI" "podman digest (OCI)"
# Without the CA, podman refuses the registry: the CA is what made the pulls above work.
pm rmi -a -f >/dev/null 2>&1 || true
if pm pull --quiet --creds reader:rpass "$REG/system/deckhouse/sample:oci" >"$WORK/podman-noca.log" 2>&1; then
  fail "podman pulled without the registry CA"
fi
assert_contains "$(cat "$WORK/podman-noca.log")" "certificate" "podman without the CA"

echo "# the access log names who pushed, tagged and deleted what (one line per entry)"
code=$(http_status --cacert "$CA" -u writer:wpass -X DELETE "https://$REG/v2/again/multi/manifests/$D_INDEX")
assert_eq "$code" "202" "delete by digest"
code=$(http_status --cacert "$CA" -u reader:rpass -X DELETE "https://$REG/v2/system/deckhouse/sample/manifests/$D_OCI")
assert_eq "$code" "403" "delete by a read-only user"
audit() { grep -E "$1" "$WORK/lo.log" | head -1; }
line=$(audit " PUT /v2/system/deckhouse/sample/manifests/oci 201 ")
assert_contains "$line" "user=writer" "the tag push names its user"
assert_contains "$line" "digest=$D_OCI" "the tag push names the digest stored"
assert_contains "$line" "remote=127.0.0.1 " "the tag push names the client"
line=$(audit " DELETE /v2/again/multi/manifests/$D_INDEX 202 ")
assert_contains "$line" "user=writer" "the delete names its user"
line=$(audit " DELETE /v2/system/deckhouse/sample/manifests/$D_OCI 403 ")
assert_contains "$line" "user=reader" "the refused delete names its user"
# Every line starts with a timestamp: no entry spans lines.
bad=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$WORK/lo.log" || true)
assert_eq "$bad" "0" "log lines without a timestamp"
echo "PASS local_clients"
