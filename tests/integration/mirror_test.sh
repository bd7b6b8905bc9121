#!/usr/bin/env bash
# Mirror bundles end to end (docs/bundles.md): skopeo pushes sample images (OCI, Docker schema 2,
# an OCI index and a Docker manifest list) into docker-registry; `registryd mirror pull` makes a
# chunked bundle of them; skopeo reads the bundle; `registryd mirror push` copies it into another
# docker-registry and into registryd Local; skopeo copies back out with identical digests. Also:
# --releases picks by semver, a re-run pull resumes and skips, a re-run push skips what the
# destination has, and a corrupted blob in a bundle is refused naming its digest. A whole
# platform (several repositories from a list) goes into one bundle, is interrupted with Ctrl-C
# and resumed, verified, and pushed into Local with credentials from an auth.json.
source "$(dirname "$0")/lib.sh"

for tool in skopeo umoci docker-registry curl python3 sha256sum htpasswd; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

ACCEPT="application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

# digest_at [CURL ARGS...] URL: the Docker-Content-Digest of a manifest.
digest_at() {
  curl -sS -I --max-time 20 -H "Accept: $ACCEPT" "$@" | tr -d '\r' |
    awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}
sha_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# image DIR SIZE: an image layout (tag "latest") whose one layer holds SIZE random bytes.
image() {
  local dir=$1 size=$2
  umoci init --layout "$dir" >/dev/null
  umoci new --image "$dir:latest" >/dev/null
  mkdir -p "$WORK/rootfs-$$"
  head -c "$size" /dev/urandom >"$WORK/rootfs-$$/data.bin"
  umoci insert --image "$dir:latest" "$WORK/rootfs-$$/data.bin" /data.bin >/dev/null
}

SRC_PORT=$(free_port)
start_docker_registry "$SRC_PORT"
SRC="127.0.0.1:$SRC_PORT"
copy() { skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "$@"; }

echo "# sample images in the source registry"
image "$WORK/img-a" 3000000
image "$WORK/img-b" 20000
image "$WORK/img-c" 20000
copy oci:"$WORK/img-a":latest docker://$SRC/team/app:v1.0.0
copy oci:"$WORK/img-b":latest docker://$SRC/team/app:v1.1.0
copy oci:"$WORK/img-c":latest docker://$SRC/team/app:v1.2.0
copy oci:"$WORK/img-c":latest docker://$SRC/team/app:v1.2.0-rc.1
copy oci:"$WORK/img-b":latest docker://$SRC/team/app:v1.10.0-alpha
copy oci:"$WORK/img-c":latest docker://$SRC/team/app:latest
copy --format v2s2 oci:"$WORK/img-b":latest docker://$SRC/team/app:docker-v2

# An OCI index over images a and b, copied with --all as is and as a Docker manifest list.
python3 - "$WORK" <<'PY'
import hashlib, json, os, shutil, sys
work = sys.argv[1]
out = os.path.join(work, "multi")
os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
entries = []
for name, arch in (("img-a", "amd64"), ("img-b", "arm64")):
    src = os.path.join(work, name)
    for b in os.listdir(os.path.join(src, "blobs", "sha256")):
        shutil.copy(os.path.join(src, "blobs", "sha256", b), os.path.join(out, "blobs", "sha256", b))
    m = json.load(open(os.path.join(src, "index.json")))["manifests"][0]
    entries.append({"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"],
                    "platform": {"architecture": arch, "os": "linux"}})
index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": entries}).encode()
d = hashlib.sha256(index).hexdigest()
open(os.path.join(out, "blobs", "sha256", d), "wb").write(index)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
           "digest": "sha256:" + d, "size": len(index),
           "annotations": {"org.opencontainers.image.ref.name": "multi"}}]},
          open(os.path.join(out, "index.json"), "w"))
open(os.path.join(out, "oci-layout"), "w").write('{"imageLayoutVersion": "1.0.0"}')
PY
copy --all oci:"$WORK/multi":multi docker://$SRC/team/app:multi
copy --all --format v2s2 oci:"$WORK/multi":multi docker://$SRC/team/app:multi-docker

TAGS="v1.0.0 v1.1.0 v1.2.0 v1.2.0-rc.1 v1.10.0-alpha latest docker-v2 multi multi-docker"
declare -A WANT
for t in $TAGS; do
  WANT[$t]=$(digest_at "http://$SRC/v2/team/app/manifests/$t")
  [ -n "${WANT[$t]}" ] || fail "no digest for the source tag $t"
done
curl -sS -o "$WORK/ct" -w '%{content_type}' -H "Accept: $ACCEPT" "http://$SRC/v2/team/app/manifests/multi-docker" >"$WORK/ct-multi-docker"
assert_eq "$(cat "$WORK/ct-multi-docker")" "application/vnd.docker.distribution.manifest.list.v2+json" "media type of multi-docker"

echo "# mirror pull --all-tags into a chunked bundle"
"$REGISTRYD" mirror pull --scheme http "$SRC/team/app" "$WORK/bundle.tar" --all-tags --chunk-size 1M \
  >"$WORK/pull.out" 2>"$WORK/pull.err" || { cat "$WORK/pull.err" >&2; fail "mirror pull failed"; }
assert_contains "$(cat "$WORK/pull.out")" "9 tag(s)" "pull summary"
[ ! -e "$WORK/bundle.tar" ] || fail "a chunked bundle left a whole tar"
[ ! -e "$WORK/bundle.tar.work" ] || fail "the work directory was not removed"
CHUNKS=$(ls "$WORK"/bundle.tar.chunk-* | wc -l)
[ "$CHUNKS" -ge 3 ] || fail "expected at least 3 chunks of 1 MiB, got $CHUNKS"
for f in $(ls "$WORK"/bundle.tar.chunk-* | head -n -1); do
  assert_eq "$(stat -c %s "$f")" "1048576" "size of chunk $f"
done
assert_contains "$(cat "$WORK/pull.err")" "pulled" "plain progress lines when stderr is not a terminal"

echo "# skopeo reads the bundle (the chunks joined with cat)"
cat "$WORK"/bundle.tar.chunk-* >"$WORK/joined.tar"
for t in v1.0.0 v1.2.0 multi; do
  skopeo inspect --raw "oci-archive:$WORK/joined.tar:$t" >"$WORK/raw-$t"
  assert_eq "$(sha_of "$WORK/raw-$t")" "${WANT[$t]}" "manifest of $t read by skopeo from the bundle"
done
DEST_PORT=$(free_port)
start_docker_registry "$DEST_PORT"
DEST="127.0.0.1:$DEST_PORT"
copy "oci-archive:$WORK/joined.tar:v1.0.0" docker://$DEST/by-skopeo/app:v1.0.0
assert_eq "$(digest_at "http://$DEST/v2/by-skopeo/app/manifests/v1.0.0")" "${WANT[v1.0.0]}" "skopeo copy from the bundle"

echo "# mirror push into another docker-registry (the 3 MB layer in 1 MiB PATCH chunks), then skopeo copies back out"
"$REGISTRYD" mirror push --scheme http --upload-chunk-size 1M "$WORK/bundle.tar" "$DEST/mirror/app" >"$WORK/push.out" 2>"$WORK/push.err" ||
  { cat "$WORK/push.err" >&2; fail "mirror push failed"; }
for t in $TAGS; do
  assert_eq "$(digest_at "http://$DEST/v2/mirror/app/manifests/$t")" "${WANT[$t]}" "digest of $t after the push"
done
PATCHES=$(grep -c '"PATCH /v2/mirror/app/blobs/uploads/' "$WORK/docker-registry-$DEST_PORT.log" || true)
[ "$PATCHES" -ge 3 ] || fail "expected the 3 MB layer in 1 MiB PATCH chunks, docker-registry saw $PATCHES PATCH requests"
copy docker://$DEST/mirror/app:docker-v2 dir:"$WORK/out-docker-v2"
assert_eq "$(sha_of "$WORK/out-docker-v2/manifest.json")" "${WANT[docker-v2]}" "docker schema 2 copied back out"
copy --all docker://$DEST/mirror/app:multi-docker dir:"$WORK/out-multi-docker"
assert_eq "$(sha_of "$WORK/out-multi-docker/manifest.json")" "${WANT[multi-docker]}" "docker manifest list copied back out"
copy --all docker://$DEST/mirror/app:multi oci:"$WORK/out-multi":multi
assert_eq "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$WORK/out-multi/index.json")" \
  "${WANT[multi]}" "OCI index copied back out"

echo "# an interrupted push, re-run, sends only what the destination lacks"
LAYER=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(max(m["layers"], key=lambda l: l["size"])["digest"])' "$WORK/raw-v1.0.0")
st=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "http://$DEST/v2/mirror/app/blobs/$LAYER")
assert_eq "$st" "202" "deleting a blob from the destination"
"$REGISTRYD" mirror push --scheme http "$WORK/bundle.tar.chunk-0000" "$DEST/mirror/app" >"$WORK/push2.out" 2>"$WORK/push2.err" ||
  { cat "$WORK/push2.err" >&2; fail "the re-run push failed"; }
PUSHED=$(grep -c ') pushed;' "$WORK/push2.err" || true)
THERE=$(grep -c ') already there;' "$WORK/push2.err" || true)
assert_eq "$PUSHED" "1" "blobs pushed again by the re-run"
[ "$THERE" -ge 5 ] || fail "expected the other blobs to be skipped, got $THERE: $(cat "$WORK/push2.err")"
assert_contains "$(grep ') pushed;' "$WORK/push2.err")" "$LAYER" "the blob pushed again"
st=$(curl -sS -o /dev/null -w '%{http_code}' -I "http://$DEST/v2/mirror/app/blobs/$LAYER")
assert_eq "$st" "200" "the deleted blob is back"

echo "# --releases 2 picks the two newest vX.Y.Z by semver; a re-run pull resumes a partial blob"
"$REGISTRYD" mirror pull --scheme http "$SRC/team/app" "$WORK/rel" --releases 2 >"$WORK/rel.out" 2>"$WORK/rel.err" ||
  { cat "$WORK/rel.err" >&2; fail "mirror pull --releases failed"; }
assert_eq "$(python3 -c 'import json,sys; print(" ".join(m["annotations"]["org.opencontainers.image.ref.name"] for m in json.load(open(sys.argv[1]))["manifests"]))' "$WORK/rel/index.json")" \
  "v1.2.0 v1.1.0" "tags of --releases 2"
"$REGISTRYD" mirror pull --scheme http "$SRC/team/app:v1.0.0" "$WORK/rel" >"$WORK/rel2.out" 2>"$WORK/rel2.err" ||
  { cat "$WORK/rel2.err" >&2; fail "pull of v1.0.0 into the layout failed"; }
BIG="$WORK/rel/blobs/sha256/${LAYER#sha256:}"
[ -f "$BIG" ] || fail "the layer of v1.0.0 is not in the layout"
head -c 1000000 "$BIG" >"$WORK/rel/blobs/sha256/.partial-${LAYER#sha256:}"
rm "$BIG"
"$REGISTRYD" mirror pull --scheme http "$SRC/team/app:v1.0.0" "$WORK/rel" >"$WORK/rel3.out" 2>"$WORK/rel3.err" ||
  { cat "$WORK/rel3.err" >&2; fail "the resumed pull failed"; }
assert_eq "$(sha_of "$BIG")" "$LAYER" "the resumed layer"
assert_contains "$(grep "$LAYER" "$WORK/rel3.err")" "pulled (resumed at byte 1000000)" "the layer was resumed with a Range request"
[ "$(grep -c 'already in the layout' "$WORK/rel3.err")" -ge 1 ] || fail "the re-run pull fetched everything again"
[ ! -e "$WORK/rel/blobs/sha256/.partial-${LAYER#sha256:}" ] || fail "the partial file stayed"
assert_eq "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["manifests"]))' "$WORK/rel/index.json")" "3" "index entries after adding v1.0.0"

echo "# a whole platform: several repositories from a list into one bundle"
copy oci:"$WORK/img-a":latest docker://$SRC/deckhouse/ee:v1.60.1
copy oci:"$WORK/img-b":latest docker://$SRC/deckhouse/ee/install:v1.60.1
copy oci:"$WORK/img-c":latest docker://$SRC/deckhouse/ee/release-channel:stable
copy oci:"$WORK/img-a":latest docker://$SRC/deckhouse/ee/modules/ingress:v2
declare -A PLATFORM=([v1.60.1]=deckhouse/ee:v1.60.1 [install:v1.60.1]=deckhouse/ee/install:v1.60.1
  [release-channel:stable]=deckhouse/ee/release-channel:stable [modules/ingress:v2]=deckhouse/ee/modules/ingress:v2)
declare -A PWANT
for name in "${!PLATFORM[@]}"; do
  ref=${PLATFORM[$name]}
  PWANT[$name]=$(digest_at "http://$SRC/v2/${ref%:*}/manifests/${ref##*:}")
  [ -n "${PWANT[$name]}" ] || fail "no digest for $ref"
done
cat >"$WORK/platform.list" <<'LIST'
# the platform, its installer, a release channel and two modules (one the source lacks)
:v1.60.1
install:v1.60.1
release-channel:stable
modules/ingress:v2
modules/gone:v1
LIST
"$REGISTRYD" mirror pull --scheme http --list "$WORK/platform.list" "$SRC/deckhouse/ee" "$WORK/platform.tar" \
  --keep-going --dry-run --json >"$WORK/dry.json" 2>"$WORK/dry.err" || { cat "$WORK/dry.err" >&2; fail "dry run failed"; }
python3 - "$WORK/dry.json" <<'PY' || fail "dry run summary: $(cat "$WORK/dry.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["dry_run"], d
assert (d["repositories"], d["tags"], d["manifests"], d["blobs"]) == (4, 4, 3, 6), d
assert d["bytes_fetched"] == d["bytes"] > 3000000, d
assert d["missing"] == ["deckhouse/ee/modules/gone:v1"], d
PY
[ ! -e "$WORK/platform.tar.work" ] && [ ! -e "$WORK/platform.tar" ] || fail "the dry run wrote something"

set +e
"$REGISTRYD" mirror pull --scheme http --list "$WORK/platform.list" "$SRC/deckhouse/ee" "$WORK/platform.tar" \
  >/dev/null 2>"$WORK/gone.err"; rc=$?
set -e
assert_eq "$rc" "1" "a pull of a list naming a missing tag"
assert_contains "$(cat "$WORK/gone.err")" "manifest v1 of deckhouse/ee/modules/gone" "the missing tag is named"
assert_contains "$(cat "$WORK/gone.err")" "--keep-going" "the missing tag's error names --keep-going"

echo "# interrupted with Ctrl-C halfway (through bench/harness/link.py at 8 Mbit/s), then the same command resumes"
RELAY_PORT=$(free_port)
start_bg relay 300 python3 "$(dirname "$0")/../../bench/harness/link.py" --listen-port "$RELAY_PORT" \
  --target-port "$SRC_PORT" --mbit 8
wait_for 10 grep -q "^link: 127.0.0.1:$RELAY_PORT" "$WORK/relay.log"
PULL_PLATFORM=("$REGISTRYD" mirror pull --scheme http --parallel 2 --keep-going --list "$WORK/platform.list"
  "127.0.0.1:$RELAY_PORT/deckhouse/ee" "$WORK/platform.tar")
# --foreground: timeout passes the SIGINT on once (else to its whole group as well, a second
# signal, which ends the command at once as a second Ctrl-C does).
timeout --foreground 60 "${PULL_PLATFORM[@]}" >"$WORK/int.out" 2>"$WORK/int.err" &
PULLER=$!
wait_for 20 sh -c "ls -A '$WORK/platform.tar.work/blobs/sha256' | grep -q '^.partial-'"
sleep 0.5
kill -INT "$PULLER"
set +e
wait "$PULLER"; rc=$?
set -e
assert_eq "$rc" "1" "exit code of an interrupted pull"
assert_contains "$(cat "$WORK/int.err")" "interrupted; run the same command again to resume" "an interrupted pull says how to go on"
ls -A "$WORK/platform.tar.work/blobs/sha256" | grep -q '^.partial-' || fail "the interrupted pull kept no partial blob"
[ ! -e "$WORK/platform.tar" ] || fail "an interrupted pull wrote the bundle"
timeout 120 "${PULL_PLATFORM[@]}" >"$WORK/res.out" 2>"$WORK/res.err" || { cat "$WORK/res.err" >&2; fail "the resumed pull failed"; }
assert_contains "$(cat "$WORK/res.err")" "resumed at byte" "the re-run resumed a partial blob"
assert_contains "$(cat "$WORK/res.out")" "4 repositories, 4 tag(s), 3 manifest(s), 6 blob(s)" "the platform bundle's counts"
assert_contains "$(cat "$WORK/res.out")" "skipped, not in the source: deckhouse/ee/modules/gone:v1" "the skipped tag is named"
"$REGISTRYD" mirror verify "$WORK/platform.tar" >"$WORK/pverify.out" || fail "verify of the platform bundle"
assert_contains "$(cat "$WORK/pverify.out")" "4 repositories, 4 tag(s), 3 manifest(s), 6 blob(s)" "verify counts the same"
skopeo inspect --raw "oci-archive:$WORK/platform.tar:install:v1.60.1" >"$WORK/raw-install"
assert_eq "$(sha_of "$WORK/raw-install")" "${PWANT[install:v1.60.1]}" "skopeo reads a repository below the root from the bundle"

echo "# a corrupted blob in a bundle is refused, naming its digest, and never lands"
python3 - "$WORK/joined.tar" "$WORK/corrupt.tar" "$BIG" <<'PY'
import sys
tar = bytearray(open(sys.argv[1], "rb").read())
layer = open(sys.argv[3], "rb").read()
at = tar.find(layer[100000:100064])
assert at > 0, "layer bytes not found in the tar"
tar[at] ^= 0x55
open(sys.argv[2], "wb").write(tar)
PY
echo "# mirror verify: offline, whole bundles pass, a corrupted blob and a cut chunk are named"
"$REGISTRYD" mirror verify "$WORK/joined.tar" >"$WORK/verify-ok.out" || fail "verify refused a whole bundle"
assert_contains "$(cat "$WORK/verify-ok.out")" "is whole:" "verify of a whole bundle"
"$REGISTRYD" mirror verify --json "$WORK/bundle.tar" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["ok"] and d["blobs"] > 0 and d["manifests"] > 0, d' ||
  fail "verify --json of the chunked bundle"
set +e
"$REGISTRYD" mirror verify "$WORK/corrupt.tar" >/dev/null 2>"$WORK/verify-corrupt.err"; rc=$?
set -e
assert_eq "$rc" "1" "verify of a corrupted bundle"
assert_contains "$(cat "$WORK/verify-corrupt.err")" "blob $LAYER in the bundle is corrupt" "verify names the corrupt blob"
mkdir -p "$WORK/cut" && cp "$WORK"/bundle.tar.chunk-* "$WORK/cut/"
truncate -s 600000 "$WORK/cut/bundle.tar.chunk-0000"  # a chunk cut short in transfer
set +e
"$REGISTRYD" mirror verify "$WORK/cut/bundle.tar" >/dev/null 2>"$WORK/verify-cut.err"; rc=$?
set -e
assert_eq "$rc" "1" "verify of a cut chunk"
assert_contains "$(cat "$WORK/verify-cut.err")" "is damaged:" "verify of a cut chunk"
grep -qE "ends early|missing|corrupt|is [0-9]+ bytes|not a readable tar" "$WORK/verify-cut.err" || fail "verify of a cut chunk says: $(cat "$WORK/verify-cut.err")"
set +e
"$REGISTRYD" mirror verify "$WORK/no-such.tar" >/dev/null 2>&1; rc=$?
set -e
assert_eq "$rc" "2" "verify of a missing bundle"

if "$REGISTRYD" mirror push --scheme http "$WORK/corrupt.tar" "$DEST/corrupt/app" >"$WORK/corrupt.out" 2>"$WORK/corrupt.err"; then
  fail "a corrupted bundle was pushed"
fi
assert_contains "$(cat "$WORK/corrupt.err")" "blob $LAYER in the bundle is corrupt" "error for a corrupted blob"
st=$(curl -sS -o /dev/null -w '%{http_code}' -I "http://$DEST/v2/corrupt/app/blobs/$LAYER")
assert_eq "$st" "404" "the corrupted blob at the destination"
st=$(curl -sS -o /dev/null -w '%{http_code}' -H "Accept: $ACCEPT" "http://$DEST/v2/corrupt/app/manifests/v1.0.0")
assert_eq "$st" "404" "no manifest pushed from a corrupted bundle"

echo "# mirror push into registryd Local over HTTPS with basic auth; skopeo copies back out"
[ -f "$REGISTRYD_PLUGIN_DIR/local.so" ] || fail "no local.so in $REGISTRYD_PLUGIN_DIR: the Local part cannot run"
# A fresh node may only bootstrap into Direct or Unmanaged (docs/switching.md): record Local.
record_mode "$WORK/lo-state" Local
{ echo "users:"; bcrypt_user writer wpass read-write; bcrypt_user reader rpass read-only; } >"$WORK/users.yaml"
module_config Local >"$WORK/mc.yaml"
LO_PORT=$(free_port)
start_registryd lo "$LO_PORT" --config "$WORK/mc.yaml" --users-file "$WORK/users.yaml"
wait_for 20 curl -sf --cacert "$CA" -u writer:wpass "https://127.0.0.1:$LO_PORT/v2/"
printf 'wpass\n' >"$WORK/wpass"
printf 'rpass\n' >"$WORK/rpass"
echo "# errors that name the fix: no --ca-file, a read-only account, a plain-HTTP registry without --scheme http"
hint_of() { # hint_of ERRFILE CMD...: runs a mirror command expected to fail; prints its hint line
  local err=$1; shift
  if "$REGISTRYD" mirror "$@" >/dev/null 2>"$err"; then fail "mirror $* succeeded"; fi
  grep '^hint: ' "$err" || echo "no hint in: $(cat "$err")"
}
assert_contains "$(hint_of "$WORK/h1.err" push --username writer --password-file "$WORK/wpass" "$WORK/bundle.tar" "127.0.0.1:$LO_PORT/system/deckhouse")" \
  "pass its CA with --ca-file" "push without the CA"
assert_contains "$(hint_of "$WORK/h2.err" push --ca-file "$CA" --username reader --password-file "$WORK/rpass" "$WORK/bundle.tar" "127.0.0.1:$LO_PORT/system/deckhouse")" \
  "user reader may not do this" "push as a read-only user"
assert_contains "$(cat "$WORK/h2.err")" "403 DENIED: user reader may not push" "a read-only push is a 403, not a 401"
assert_contains "$(hint_of "$WORK/h3.err" pull "$SRC/team/app" "$WORK/h3.tar" --all-tags)" "add --scheme http" "pull from plain HTTP without --scheme http"
"$REGISTRYD" mirror push --ca-file "$CA" --username writer --password-file "$WORK/wpass" \
  "$WORK/bundle.tar" "127.0.0.1:$LO_PORT/system/deckhouse" >"$WORK/lo.out" 2>"$WORK/lo.err" ||
  { cat "$WORK/lo.err" >&2; fail "mirror push into Local failed"; }
for t in $TAGS; do
  assert_eq "$(digest_at --cacert "$CA" -u writer:wpass "https://127.0.0.1:$LO_PORT/v2/system/deckhouse/manifests/$t")" \
    "${WANT[$t]}" "digest of $t in Local"
done
mkdir -p "$WORK/lo-certs" && cp "$CA" "$WORK/lo-certs/ca.crt"
skopeo copy -q --src-cert-dir "$WORK/lo-certs" --src-creds writer:wpass \
  docker://127.0.0.1:$LO_PORT/system/deckhouse:docker-v2 dir:"$WORK/out-lo"
assert_eq "$(sha_of "$WORK/out-lo/manifest.json")" "${WANT[docker-v2]}" "docker schema 2 copied out of Local"
# And a bundle pulled back out of Local is the same bundle.
"$REGISTRYD" mirror pull --ca-file "$CA" --username writer --password-file "$WORK/wpass" \
  "127.0.0.1:$LO_PORT/system/deckhouse" "$WORK/back.tar" --tags multi,docker-v2 >"$WORK/back.out" 2>"$WORK/back.err" ||
  { cat "$WORK/back.err" >&2; fail "mirror pull from Local failed"; }
skopeo inspect --raw "oci-archive:$WORK/back.tar:multi" >"$WORK/raw-back"
assert_eq "$(sha_of "$WORK/raw-back")" "${WANT[multi]}" "the index pulled back from Local"

echo "# the platform bundle into Local with credentials from an auth.json; skopeo copies each repository out"
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$LO_PORT" "$(printf writer:wpass | base64)" >"$WORK/auth.json"
REGISTRY_AUTH_FILE="$WORK/auth.json" "$REGISTRYD" mirror push --json --ca-file "$CA" \
  "$WORK/platform.tar" "127.0.0.1:$LO_PORT/system/deckhouse" >"$WORK/ppush.json" 2>"$WORK/ppush.err" ||
  { cat "$WORK/ppush.err" >&2; fail "the platform push into Local failed"; }
assert_contains "$(cat "$WORK/ppush.err")" "credentials for 127.0.0.1:$LO_PORT from $WORK/auth.json" "credentials from auth.json"
python3 - "$WORK/ppush.json" <<'PY' || fail "platform push summary: $(cat "$WORK/ppush.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and not d["dry_run"], d
assert (d["repositories"], d["tags"], d["manifests"], d["blobs"]) == (4, 4, 3, 6), d  # what pull said
# system/deckhouse holds image a (v1.0.0 of the first push), which modules/ingress gets by a
# mount: its 3 MB layer is not sent again; images b and c go to install and release-channel
assert d["blobs_mounted"] == 2 and 0 < d["bytes_sent"] < 100000, d
PY
for name in "${!PLATFORM[@]}"; do
  case $name in v*) repo="" ;; *) repo=/${name%:*} ;; esac
  tag=${name##*:}
  assert_eq "$(digest_at --cacert "$CA" -u writer:wpass "https://127.0.0.1:$LO_PORT/v2/system/deckhouse$repo/manifests/$tag")" \
    "${PWANT[$name]}" "digest of $name in Local"
done
skopeo copy -q --src-cert-dir "$WORK/lo-certs" --src-creds writer:wpass \
  docker://127.0.0.1:$LO_PORT/system/deckhouse/modules/ingress:v2 dir:"$WORK/out-ingress"
assert_eq "$(sha_of "$WORK/out-ingress/manifest.json")" "${PWANT[modules/ingress:v2]}" "a module image copied out of Local"

echo "# bad input is refused with exit code 2"
set +e
"$REGISTRYD" mirror pull "$SRC/team/app" "$WORK/x.tar" >/dev/null 2>"$WORK/bad1.err"; rc1=$?
"$REGISTRYD" mirror pull "$SRC/team/app" "$WORK/x" --all-tags --chunk-size 1M >/dev/null 2>"$WORK/bad2.err"; rc2=$?
"$REGISTRYD" mirror push "$WORK/bundle.tar" "$DEST/mirror/app:v1" >/dev/null 2>"$WORK/bad3.err"; rc3=$?
"$REGISTRYD" mirror push "$WORK/missing.tar" "$DEST/mirror/app" >/dev/null 2>"$WORK/bad4.err"; rc4=$?
set -e
assert_eq "$rc1" "2" "pull without a choice of tags"
assert_contains "$(cat "$WORK/bad1.err")" "choose one of --tags" "pull without a choice of tags"
assert_eq "$rc2" "2" "--chunk-size for a directory"
assert_eq "$rc3" "2" "push to a tag"
assert_eq "$rc4" "1" "push of a missing bundle"
assert_contains "$(cat "$WORK/bad4.err")" "no bundle at $WORK/missing.tar" "push of a missing bundle"

echo "PASS: mirror"
