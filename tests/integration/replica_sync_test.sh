#!/usr/bin/env bash
# Local replica sync between two registryd instances on loopback (docs/replica-sync.md): A and B
# run Local mode with their own ports, data and state dirs and the same registry CA (as the
# masters of a cluster do), each with the other as its peer, a 1 s interval and a
# mirror-puller account (token auth, as in a cluster).
#   - skopeo pushes an image to A: it appears on B with the same digest (skopeo inspect, copy
#     out); the time it took is printed; the other way round too;
#   - a multi-arch index whose images' blobs are on B already: only the manifests are copied,
#     every blob is linked; across the whole test each blob of A was read once by B's sync
#     (A's access log) and B's metrics count each blob copied once;
#   - a tag deleted on A goes from B too and does not come back; a tag pushed differently on
#     both ends on the newer push on both;
#   - B stopped: A keeps serving and pushing, warns once; B back: it catches up.
source "$(dirname "$0")/lib.sh"

for tool in skopeo umoci curl python3 htpasswd sha256sum; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

{ echo "users:"; bcrypt_user writer wpass read-write; bcrypt_user puller ppass mirror-puller; } >"$WORK/users.yaml"
printf 'username: puller\npassword: ppass\n' >"$WORK/replica-credentials.yaml"
module_config Local >"$WORK/mc.yaml"
record_mode "$WORK/a-state" Local
record_mode "$WORK/b-state" Local
PA=$(free_port)
PB=$(free_port)
host_config() { # host_config PEER_PORT
  printf 'replica_peers: ["127.0.0.1:%s"]\nreplica_credentials_file: %s\nreplica_sync_interval_seconds: 1\n' \
    "$1" "$WORK/replica-credentials.yaml"
}
host_config "$PB" >"$WORK/a-host.yaml"
host_config "$PA" >"$WORK/b-host.yaml"

start_a() {
  start_registryd a "$PA" --config "$WORK/mc.yaml" --users-file "$WORK/users.yaml" --host-config "$WORK/a-host.yaml"
  A_PID=$REGISTRYD_PID
  wait_for 20 curl -sf --cacert "$CA" -u writer:wpass "https://127.0.0.1:$PA/v2/_catalog"
}
start_b() {
  start_registryd "$1" "$PB" --config "$WORK/mc.yaml" --users-file "$WORK/users.yaml" --host-config "$WORK/b-host.yaml"
  B_PID=$REGISTRYD_PID
  wait_for 20 curl -sf --cacert "$CA" -u writer:wpass "https://127.0.0.1:$PB/v2/_catalog"
}
start_a
# The masters share the registry CA: B starts with A's.
mkdir -p "$WORK/b-state/pki" && chmod 700 "$WORK/b-state/pki"
cp -p "$WORK/a-state/pki/ca.crt" "$WORK/a-state/pki/ca.key" "$WORK/b-state/pki/"
# start_registryd names the log after its first argument; B's second run (after a stop) is
# started through a symlinked state dir so that its log is separate.
start_b b
cmp -s "$WORK/a-state/pki/ca.crt" "$WORK/b-state/pki/ca.crt" || fail "B made a CA of its own"
mkdir -p "$WORK/certs"
cp "$CA" "$WORK/certs/registry-ca.crt"

A="127.0.0.1:$PA"
B="127.0.0.1:$PB"
sk() { timeout 120 skopeo "$@"; }
push_opts=(--dest-cert-dir "$WORK/certs" --dest-creds writer:wpass)
raw_digest() { echo "sha256:$(sha256sum | cut -d' ' -f1)"; }
# digest_on HOST REPO TAG: the digest HOST serves for REPO:TAG (empty when it has none).
digest_on() {
  curl -sS --cacert "$CA" -u puller:ppass -o /dev/null -w '%{http_code} ' -D - -I --max-time 10 \
    -H "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json" \
    "https://$1/v2/$2/manifests/$3" | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}
# metric HOST NAME: the value of a metric line (name with labels as printed), 0 when absent.
metric() {
  curl -sS --cacert "$CA" --max-time 10 "https://$1/metrics" | awk -v n="$2" '$1 == n { print $2; found=1 } END { if (!found) print 0 }'
}
# converge HOST REPO TAG DIGEST LABEL: waits until HOST serves DIGEST for REPO:TAG, prints the time.
converge() {
  local start=$(date +%s%N) got=""
  for _ in $(seq 150); do
    got=$(digest_on "$1" "$2" "$3")
    [ "$got" = "$4" ] && break
    sleep 0.1
  done
  assert_eq "$got" "$4" "$5: digest on $1"
  echo "  $5: converged in $(( ($(date +%s%N) - start) / 1000000 )) ms"
}
blobs_of() { # blobs_of LAYOUT: the config and layer digests of its image
  python3 - "$1" <<'PY'
import json, sys
lay = sys.argv[1]
d = json.load(open(lay + "/index.json"))["manifests"][0]["digest"].split(":")[1]
m = json.load(open(lay + "/blobs/sha256/" + d))
print(m["config"]["digest"])
for l in m["layers"]:
    print(l["digest"])
PY
}

make_sample_image "$WORK/img1"
make_sample_image "$WORK/img2"
make_sample_image "$WORK/img3"
make_sample_image "$WORK/img4"
make_sample_image "$WORK/img5"
BLOBS_A=() # blobs pushed to A only: B's sync must read each exactly once

echo "# an image pushed to A appears on B with the same digest"
sk copy --quiet "${push_opts[@]}" --digestfile "$WORK/d1" "oci:$WORK/img1:latest" "docker://$A/system/deckhouse/app:v1"
D1=$(cat "$WORK/d1")
converge "$B" system/deckhouse/app v1 "$D1" "push to A, seen on B"
assert_eq "$(sk inspect --cert-dir "$WORK/certs" --creds puller:ppass "docker://$B/system/deckhouse/app:v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')" \
  "$D1" "skopeo inspect on B"
sk copy --quiet --src-cert-dir "$WORK/certs" --src-creds puller:ppass "docker://$B/system/deckhouse/app:v1" "oci:$WORK/back1:latest"
assert_eq "$(index_digest "$WORK/back1")" "$D1" "digest copied out of B"
mapfile -t IMG1_BLOBS < <(blobs_of "$WORK/img1")
BLOBS_A+=("${IMG1_BLOBS[@]}")
assert_eq "$(metric "$B" "registryd_replica_blobs_copied_total{peer=\"$A\"}")" "${#IMG1_BLOBS[@]}" "blobs B copied from A"
assert_eq "$(metric "$B" "registryd_replica_manifests_copied_total{peer=\"$A\"}")" "1" "manifests B copied from A"

echo "# an image pushed to B appears on A"
sk copy --quiet "${push_opts[@]}" --digestfile "$WORK/d2" "oci:$WORK/img2:latest" "docker://$B/system/deckhouse/other:v1"
D2=$(cat "$WORK/d2")
converge "$A" system/deckhouse/other v1 "$D2" "push to B, seen on A"
mapfile -t IMG2_BLOBS < <(blobs_of "$WORK/img2")
assert_eq "$(metric "$A" "registryd_replica_blobs_copied_total{peer=\"$B\"}")" "${#IMG2_BLOBS[@]}" "blobs A copied from B"

echo "# a multi-arch index over images whose blobs B holds already: manifests copied, blobs only linked"
make_multiarch_index "$WORK/multi" "$WORK/img1" "$WORK/img2"
D_INDEX=$(index_digest "$WORK/multi")
COPIED_BEFORE=$(metric "$B" "registryd_replica_blobs_copied_total{peer=\"$A\"}")
MANIFESTS_BEFORE=$(metric "$B" "registryd_replica_manifests_copied_total{peer=\"$A\"}")
sk copy --quiet --all "${push_opts[@]}" "oci:$WORK/multi:latest" "docker://$A/system/deckhouse/multi:latest"
converge "$B" system/deckhouse/multi latest "$D_INDEX" "index pushed to A, seen on B"
assert_eq "$(sk inspect --raw --cert-dir "$WORK/certs" --creds puller:ppass "docker://$B/system/deckhouse/multi:latest" | raw_digest)" \
  "$D_INDEX" "index bytes on B"
sk copy --quiet --all --src-cert-dir "$WORK/certs" --src-creds puller:ppass "docker://$B/system/deckhouse/multi:latest" "oci:$WORK/back-multi:latest"
assert_eq "$(index_digest "$WORK/back-multi")" "$D_INDEX" "index copied out of B"
assert_eq "$(metric "$B" "registryd_replica_blobs_copied_total{peer=\"$A\"}")" "$COPIED_BEFORE" "blobs B copied for the index (all present)"
assert_eq "$(metric "$B" "registryd_replica_manifests_copied_total{peer=\"$A\"}")" "$((MANIFESTS_BEFORE + 3))" "manifests B copied for the index"
[ "$(metric "$B" "registryd_replica_blobs_linked_total{peer=\"$A\"}")" -ge 4 ] || fail "B did not link the index's blobs"

echo "# a tag pushed differently on both: the newer push wins on both"
sk copy --quiet "${push_opts[@]}" --digestfile "$WORK/d3" "oci:$WORK/img3:latest" "docker://$B/system/deckhouse/race:t"
sleep 0.05
sk copy --quiet "${push_opts[@]}" --digestfile "$WORK/d4" "oci:$WORK/img4:latest" "docker://$A/system/deckhouse/race:t"
D4=$(cat "$WORK/d4")
mapfile -t IMG4_BLOBS < <(blobs_of "$WORK/img4")
BLOBS_A+=("${IMG4_BLOBS[@]}")
converge "$B" system/deckhouse/race t "$D4" "conflicting pushes, newer from A, on B"
converge "$A" system/deckhouse/race t "$D4" "conflicting pushes, newer from A, on A"
sleep 3
assert_eq "$(digest_on "$B" system/deckhouse/race t)" "$D4" "race:t stays on the newer push on B"
assert_eq "$(digest_on "$A" system/deckhouse/race t)" "$D4" "race:t stays on the newer push on A"

echo "# a tag deleted on A goes from B and does not come back"
st=$(http_status --cacert "$CA" -u writer:wpass -X DELETE "https://$A/v2/system/deckhouse/app/manifests/v1")
assert_eq "$st" "202" "DELETE tag on A"
for _ in $(seq 100); do [ -z "$(digest_on "$B" system/deckhouse/app v1)" ] && break; sleep 0.1; done
assert_eq "$(digest_on "$B" system/deckhouse/app v1)" "" "app:v1 on B after the delete on A"
sleep 3
assert_eq "$(digest_on "$A" system/deckhouse/app v1)" "" "app:v1 brought back to A"
assert_eq "$(digest_on "$B" system/deckhouse/app v1)" "" "app:v1 brought back to B"
[ "$(metric "$B" "registryd_replica_tags_deleted_total{peer=\"$A\"}")" -ge 1 ] || fail "B counted no tag deletion"

echo "# B stopped: A keeps serving and warns once; B back: it catches up"
A_LINES=$(wc -l <"$WORK/a.log")
stop_pid "$B_PID"
sk copy --quiet "${push_opts[@]}" --digestfile "$WORK/d5" "oci:$WORK/img5:latest" "docker://$A/system/deckhouse/app:v2"
D5=$(cat "$WORK/d5")
mapfile -t IMG5_BLOBS < <(blobs_of "$WORK/img5")
BLOBS_A+=("${IMG5_BLOBS[@]}")
assert_eq "$(digest_on "$A" system/deckhouse/app v2)" "$D5" "A serves while B is down"
sleep 4
assert_eq "$(metric "$A" "registryd_replica_peer_up{peer=\"$B\"}")" "0" "A sees B down"
a_log_since_stop() { tail -n "+$((A_LINES + 1))" "$WORK/a.log"; }
assert_eq "$(a_log_since_stop | grep -c "replica peer $B cannot be reached")" "1" "warnings on A about B being down"
ln -s "$WORK/b-state" "$WORK/b2-state"
ln -s "$WORK/b-data" "$WORK/b2-data"
start_b b2
converge "$B" system/deckhouse/app v2 "$D5" "pushed to A while B was down, seen on B after its restart"
for _ in $(seq 50); do a_log_since_stop | grep -q "replica sync from $B works again" && break; sleep 0.1; done
a_log_since_stop | grep -q "replica sync from $B works again" || fail "A did not log that B is back"

echo "# each blob pushed to A was read from A once by B's sync, and nothing else was"
for d in "${BLOBS_A[@]}"; do
  n=$(grep -c "GET /v2/system/deckhouse/[a-z]*/blobs/$d 200" "$WORK/a.log" || true)
  assert_eq "$n" "1" "reads of $d from A"
done
total=$(grep -c "GET /v2/system/deckhouse/[a-z]*/blobs/sha256:[0-9a-f]* 200" "$WORK/a.log" || true)
assert_eq "$total" "${#BLOBS_A[@]}" "blob reads from A in all"
echo "  B copied $(metric "$B" "registryd_replica_blobs_copied_total{peer=\"$A\"}") blobs from A after its restart, $COPIED_BEFORE before the index"
