#!/usr/bin/env bash
# Garbage collection, fsck and rotation (docs/gc.md) against registryd in Local mode, the
# server running throughout:
#   - skopeo pushes images; a tag and a manifest are deleted through the API;
#   - `registryd gc --dry-run` lists what would go and changes nothing; the default grace keeps
#     everything young; `--grace 0s` deletes the deleted images' blobs and links, and
#     `--delete-untagged` the untagged manifest; images still tagged pull with skopeo with the
#     same digests; blobs nothing references any more are gone from the disk;
#   - pushes while GC runs in a loop (old garbage present) all succeed and pull back intact;
#   - `registryd fsck` is clean (exit 0); a blob file corrupted on disk is reported with its path
#     (exit 1); `--repair` quarantines it and a push restores it;
#   - `registryd rotate --keep 2` keeps the 2 newest releases by semver (v1.10.0 above v1.9.0)
#     in system/deckhouse and below it, channel tags stay, and GC frees the old release's blobs.
source "$(dirname "$0")/lib.sh"

for tool in skopeo umoci curl python3 htpasswd sha256sum; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done
[ -f "$REGISTRYD_PLUGIN_DIR/local.so" ] || fail "no local.so in $REGISTRYD_PLUGIN_DIR"

# A fresh node may only bootstrap into Direct or Unmanaged (docs/switching.md): record Local.
record_mode "$WORK/lo-state" Local
{ echo "users:"; bcrypt_user writer wpass read-write; } >"$WORK/users.yaml"
module_config Local >"$WORK/mc.yaml"
PORT=$(free_port)
start_registryd lo "$PORT" --config "$WORK/mc.yaml" --users-file "$WORK/users.yaml"
URL="https://127.0.0.1:$PORT"
wait_for 20 curl -sf --cacert "$CA" -u writer:wpass "$URL/v2/"
mkdir -p "$WORK/certs" && cp "$CA" "$WORK/certs/ca.crt"
DATA="$WORK/lo-data"

ACCEPT="application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json"
gc() { "$REGISTRYD" gc --data-dir "$DATA" "$@"; }
fsck() { "$REGISTRYD" fsck --data-dir "$DATA" "$@"; }
sha_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
blob_file() { local hex=${1#sha256:}; echo "$DATA/blobs/sha256/${hex:0:2}/$hex"; }
# image NAME: a fresh, distinct OCI image layout in $WORK/NAME (tag latest).
image() { make_sample_image "$WORK/$1"; }
# push NAME REPO:TAG: skopeo pushes the image, as the platform's tools would.
push() {
  timeout 120 skopeo copy -q --dest-cert-dir "$WORK/certs" --dest-creds writer:wpass \
    "oci:$WORK/$1:latest" "docker://127.0.0.1:$PORT/$2" >"$WORK/push.log" 2>&1 ||
    { cat "$WORK/push.log" >&2; fail "skopeo push of $1 to $2"; }
}
# digest REPO REF: the manifest digest registryd answers for REF (empty when unknown).
digest() {
  curl -sfI --cacert "$CA" -u writer:wpass -H "Accept: $ACCEPT" "$URL/v2/$1/manifests/$2" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}
# layer REPO REF: the digest of the image's first layer; config REPO REF: of its config.
field() {
  curl -sf --cacert "$CA" -u writer:wpass -H "Accept: $ACCEPT" "$URL/v2/$1/manifests/$2" |
    python3 -c "import json,sys; m=json.load(sys.stdin); print($3)"
}
layer() { field "$1" "$2" 'm["layers"][0]["digest"]'; }
config() { field "$1" "$2" 'm["config"]["digest"]'; }
# pulled REPO:TAG: the digest of the manifest skopeo copies out of registryd.
pulled() {
  rm -rf "$WORK/out"
  timeout 120 skopeo copy -q --src-cert-dir "$WORK/certs" --src-creds writer:wpass \
    "docker://127.0.0.1:$PORT/$1" "dir:$WORK/out" >"$WORK/pull.log" 2>&1 ||
    { cat "$WORK/pull.log" >&2; fail "skopeo pull of $1"; }
  sha_of "$WORK/out/manifest.json"
}
# api_delete PATH: DELETE through the registry API, which must answer 202.
api_delete() {
  local st; st=$(http_status --cacert "$CA" -u writer:wpass -X DELETE "$URL/v2/$1")
  assert_eq "$st" "202" "DELETE /v2/$1"
}
count_blobs() { find "$DATA/blobs" -type f | wc -l; }

echo "# skopeo pushes three images; a tag and a manifest are deleted through the API"
image keep; image gone; image other
push keep library/app:keep
push gone library/app:gone
push other library/other:v1
KEEP=$(digest library/app keep); GONE=$(digest library/app gone); OTHER=$(digest library/other v1)
[ -n "$KEEP" ] && [ -n "$GONE" ] && [ -n "$OTHER" ] || fail "pushed manifests not found"
KEEP_LAYER=$(layer library/app keep); GONE_LAYER=$(layer library/app gone); OTHER_LAYER=$(layer library/other v1)
OTHER_CONFIG=$(config library/other v1)
api_delete library/app/manifests/gone             # a tag: the manifest stays, untagged
api_delete "library/other/manifests/$OTHER"       # a manifest
assert_eq "$(digest library/app "$GONE")" "$GONE" "the untagged manifest is still there"
assert_eq "$(digest library/other "$OTHER")" "" "the deleted manifest"

echo "# gc with the default grace: everything is younger than an hour"
out=$(gc)
assert_contains "$out" "deleted 0 blobs, 0 links, 0 manifests" "gc with the default grace"

echo "# gc --dry-run lists the deleted manifest's blobs and links and changes nothing"
before=$(count_blobs)
out=$(gc --dry-run --grace 0s)
assert_contains "$out" "would delete blob $OTHER_LAYER" "dry run"
assert_contains "$out" "would delete blob $OTHER_CONFIG" "dry run"
assert_contains "$out" "would delete blob $OTHER " "dry run"
assert_contains "$out" "would delete link library/other -> $OTHER_LAYER" "dry run"
assert_contains "$out" "would delete 3 blobs" "dry run summary"
case "$out" in *"$GONE_LAYER"*) fail "the dry run lists a blob of an untagged manifest without --delete-untagged" ;; esac
assert_eq "$(count_blobs)" "$before" "blob files after a dry run"
[ -f "$(blob_file "$OTHER_LAYER")" ] || fail "the dry run deleted a blob"
out=$(gc --dry-run --grace 0s --delete-untagged)
assert_contains "$out" "would delete manifest library/app@$GONE" "dry run with --delete-untagged"
assert_contains "$out" "would delete blob $GONE_LAYER" "dry run with --delete-untagged"
assert_contains "$out" "would delete 6 blobs" "dry run with --delete-untagged"
out=$(gc --dry-run --grace 0s --json)
assert_eq "$(printf '%s' "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["blobs"]["count"], len(r["items"]) > 0)')" "3 True" "gc --json"

echo "# gc --grace 0s --delete-untagged deletes them; the tagged image still pulls, same digest"
out=$(gc --grace 0s --delete-untagged)
assert_contains "$out" "deleted blob $OTHER_LAYER" "gc"
assert_contains "$out" "deleted manifest library/app@$GONE" "gc"
assert_contains "$out" "deleted 6 blobs" "gc summary"
for d in "$OTHER_LAYER" "$OTHER_CONFIG" "$OTHER" "$GONE_LAYER" "$GONE"; do
  [ ! -e "$(blob_file "$d")" ] || fail "blob $d is still on disk after gc"
done
[ ! -e "$DATA/repositories/library/other/_layers/sha256/${OTHER_LAYER#sha256:}" ] || fail "a link of the deleted manifest is left"
[ -f "$(blob_file "$KEEP_LAYER")" ] || fail "gc deleted a blob of a tagged image"
assert_eq "$(pulled library/app:keep)" "$KEEP" "skopeo pulls library/app:keep after gc"
assert_eq "$(digest library/app "$GONE")" "" "the untagged manifest after --delete-untagged"
out=$(gc --grace 0s)
assert_contains "$out" "deleted 0 blobs, 0 links" "a second gc finds nothing"

echo "# pushes while gc runs in a loop (old garbage about) all land intact"
image g1; push g1 garbage/old:v1
G1_LAYER=$(layer garbage/old v1)
api_delete "garbage/old/manifests/$(digest garbage/old v1)"
find "$DATA/blobs" "$DATA/repositories" -type f -exec touch -h -d '2 hours ago' {} +
start_bg gc-loop 120 bash -c 'while [ ! -f "$1/stop-loop" ]; do "$2" gc --data-dir "$3" --grace 30s -q || true; done' \
  _ "$WORK" "$REGISTRYD" "$DATA"
LOOP=$LAST_PID
for n in 1 2 3; do image "c$n"; push "c$n" "concurrent/app:v$n"; done
touch "$WORK/stop-loop"
wait "$LOOP" || true
grep -q "deleted [1-9][0-9]* blobs" "$WORK/gc-loop.log" || { cat "$WORK/gc-loop.log" >&2; fail "the gc loop deleted no old garbage"; }
[ ! -e "$(blob_file "$G1_LAYER")" ] || fail "the old garbage survived the gc loop"
for n in 1 2 3; do
  assert_eq "$(pulled "concurrent/app:v$n")" "$(digest concurrent/app "v$n")" "image pushed during gc"
  [ -f "$(blob_file "$(layer concurrent/app "v$n")")" ] || fail "a layer pushed during gc is gone"
done

echo "# fsck: clean; a corrupted blob file is reported (exit 1); --repair quarantines it"
out=$(fsck) || fail "fsck of a healthy store exits $?: $out"
assert_contains "$out" "no problems" "fsck"
python3 - "$(blob_file "$KEEP_LAYER")" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x01
open(p, "wb").write(bytes(b))
PY
set +e; out=$(fsck); rc=$?; set -e
assert_eq "$rc" "1" "fsck exit code with a corrupt blob"
assert_contains "$out" "corrupt blob: $(blob_file "$KEEP_LAYER"): the content" "fsck report"
assert_contains "$out" "1 problem" "fsck summary"
set +e; out=$(fsck --repair); rc=$?; set -e
assert_eq "$rc" "1" "fsck --repair exit code"
assert_contains "$out" "repaired: moved to $DATA/quarantine/sha256-${KEEP_LAYER#sha256:}" "fsck --repair"
assert_contains "$out" "dangling link" "fsck --repair"
[ -f "$DATA/quarantine/sha256-${KEEP_LAYER#sha256:}" ] || fail "the corrupt blob is not in quarantine"
assert_eq "$(http_status --cacert "$CA" -u writer:wpass -I "$URL/v2/library/app/blobs/$KEEP_LAYER")" "404" "the quarantined blob"
push keep library/app:keep
out=$(fsck) || fail "fsck after the image was pushed again exits $?: $out"
assert_eq "$(pulled library/app:keep)" "$KEEP" "library/app:keep after repair and re-push"

echo "# rotate --keep 2: the two newest releases by semver stay, channel tags stay, gc frees the rest"
image r8; image r9; image r10
push r8 system/deckhouse:v1.8.0
push r9 system/deckhouse:v1.9.0
push r10 system/deckhouse:v1.10.0
push r8 system/deckhouse:alpha           # a channel still naming an old release
push r9 system/deckhouse/install:v1.9.0
push r8 system/deckhouse/install:v1.8.0
push r10 system/deckhouse/install:v1.10.0
push r8 library/app:v1.0.0             # not below system/deckhouse: untouched
push r9 library/app:v1.1.0
V8=$(digest system/deckhouse v1.8.0); V10=$(digest system/deckhouse v1.10.0)
V8_LAYER=$(layer system/deckhouse v1.8.0)
out=$("$REGISTRYD" rotate --data-dir "$DATA" --keep 2 --dry-run)
assert_contains "$out" "system/deckhouse: keep v1.10.0 v1.9.0; would delete v1.8.0; other tags kept: alpha" "rotate --dry-run"
assert_contains "$out" "system/deckhouse/install: keep v1.10.0 v1.9.0; would delete v1.8.0" "rotate --dry-run"
assert_eq "$(digest system/deckhouse v1.8.0)" "$V8" "v1.8.0 after a dry run"
set +e; "$REGISTRYD" rotate --data-dir "$DATA" --keep 0 >/dev/null 2>&1; rc=$?; set -e
assert_eq "$rc" "2" "rotate --keep 0"
out=$("$REGISTRYD" rotate --data-dir "$DATA" --keep 2)
# v1.8.0's image stays in system/deckhouse (alpha names it) and goes from install.
assert_contains "$out" "deleted 2 release tags and 1 manifest in 2 repositories" "rotate"
tags() { curl -sf --cacert "$CA" -u writer:wpass "$URL/v2/$1/tags/list" | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["tags"])))'; }
assert_eq "$(tags system/deckhouse)" "alpha v1.10.0 v1.9.0" "system/deckhouse tags after rotation"
assert_eq "$(tags system/deckhouse/install)" "v1.10.0 v1.9.0" "install tags after rotation"
assert_eq "$(tags library/app)" "keep v1.0.0 v1.1.0" "a repository outside the rotation"
# The channel tag kept v1.8.0's image in system/deckhouse; without it, rotation deletes it.
api_delete system/deckhouse/manifests/alpha
push r9 system/deckhouse:v1.8.0            # v1.8.0 is back, now the same image as v1.9.0
push r8 system/deckhouse:v1.7.0
out=$("$REGISTRYD" rotate --data-dir "$DATA" --keep 2 --gc)
# v1.8.0 (now v1.9.0's image, which stays) and v1.7.0 (v1.8.0's old image, which goes).
assert_contains "$out" "deleted 2 release tags and 1 manifest in 2 repositories" "rotate --gc"
assert_eq "$(tags system/deckhouse)" "v1.10.0 v1.9.0" "system/deckhouse tags after the second rotation"
assert_eq "$(digest system/deckhouse "$V8")" "" "the old release's manifest"
assert_contains "$out" "gc: deleted" "rotate --gc"
# Its layer is still used by library/app:v1.0.0 (the same image): kept. GC with grace 0 frees
# what only the rotated releases held.
[ -f "$(blob_file "$V8_LAYER")" ] || fail "a blob library/app still uses was deleted"
api_delete "library/app/manifests/$(digest library/app v1.0.0)"
out=$(gc --grace 0s)
[ ! -e "$(blob_file "$V8_LAYER")" ] || fail "the rotated release's layer is still on disk"
assert_eq "$(pulled system/deckhouse:v1.10.0)" "$V10" "the newest release after rotation and gc"
assert_eq "$(pulled system/deckhouse/install:v1.9.0)" "$(digest system/deckhouse/install v1.9.0)" "install v1.9.0 after rotation and gc"
out=$(fsck) || fail "fsck after rotation and gc exits $?: $out"

echo "PASS"
