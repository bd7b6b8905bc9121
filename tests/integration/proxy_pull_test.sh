#!/usr/bin/env bash
# Proxy mode in front of a real docker-registry with htpasswd auth:
#   (1) skopeo copies images out of registryd (system/deckhouse and below, mapped onto the
#       upstream's deckhouse/ee) with digests identical to what was pushed upstream; a second
#       copy is served from the cache (no new upstream blob GET); other repositories are
#       NAME_UNKNOWN, pushes UNSUPPORTED;
#   (3) the upstream is stopped: everything pulled before still pulls (a tag is served stale,
#       counted in registryd_proxy_stale_serves_total, and logged), anything else fails within
#       two seconds with 503 UNAVAILABLE naming the upstream;
#   (4) the upstream stalls (takes connections, says nothing): 70 concurrent pulls of a cached
#       tag are answered from the cache within seconds with one revalidation at a time,
#       /healthz answers meanwhile, and an uncached tag fails after the 2 s answer timeout.
# Tags are revalidated on every pull here (REGISTRYD_PROXY_TAG_REVALIDATE_SECONDS=0), so the
# stale path is taken at once.
source "$(dirname "$0")/lib.sh"

for tool in docker-registry skopeo umoci htpasswd curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

# metric NAME: its value on registryd's /metrics (labels included in NAME).
metric() {
  curl -sS --max-time 10 --cacert "$CA" "https://127.0.0.1:$PORT/metrics" |
    awk -v n="$1" '$1 == n { print $2 }'
}
# upstream_gets DIGEST: GETs of that blob in docker-registry's access log.
upstream_gets() { grep -c "\"GET /v2/deckhouse/ee[^ ]*/blobs/$1 " "$WORK/docker-registry-$UP.log" || true; }
layout_digest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$1/index.json"; }

# ---------------------------------------------------------------------------------------------
# The upstream: docker-registry with htpasswd (bcrypt) auth, three images pushed by skopeo.
htpasswd -Bbn upuser uppass >"$WORK/htpasswd"
UP=$(free_port)
start_docker_registry "$UP" "auth:
  htpasswd:
    realm: upstream
    path: $WORK/htpasswd"
UP_PID=$DOCKER_REGISTRY_PID
push() {  # LAYOUT REPO:TAG -> prints the pushed manifest digest
  timeout 60 skopeo copy --quiet --dest-tls-verify=false --dest-creds upuser:uppass \
    --digestfile "$WORK/pushed.digest" "oci:$1:latest" "docker://127.0.0.1:$UP/$2" >&2
  cat "$WORK/pushed.digest"
}
for i in 1 2 3; do make_sample_image "$WORK/img$i"; done
D1=$(push "$WORK/img1" deckhouse/ee:v1)
D2=$(push "$WORK/img2" deckhouse/ee/install:v2)
push "$WORK/img3" deckhouse/ee:unpulled >/dev/null
# Anonymous access to the upstream is refused: registryd must use the section's credentials.
assert_eq "$(http_status "http://127.0.0.1:$UP/v2/deckhouse/ee/tags/list")" "401" "anonymous upstream"

# ---------------------------------------------------------------------------------------------
# registryd in Proxy mode over HTTPS with its own CA.
PORT=$(free_port)
module_config Proxy "      proxy:
        imagesRepo: 127.0.0.1:$UP/deckhouse/ee
        scheme: HTTP
        username: upuser
        password: uppass
        ttl: 1h" >"$WORK/mc.yaml"
record_mode "$WORK/px-state" Proxy "127.0.0.1:$UP/deckhouse/ee" HTTP
export REGISTRYD_PROXY_TAG_REVALIDATE_SECONDS=0
start_registryd px "$PORT" --module-config "$WORK/mc.yaml"
URL="https://127.0.0.1:$PORT"
wait_for 20 bash -c "curl -sf --cacert '$CA' '$URL/readyz' | grep -q Proxy" ||
  fail "registryd is not ready in Proxy mode: $(curl -s --cacert "$CA" "$URL/readyz")"
mkdir -p "$WORK/certs" && cp "$CA" "$WORK/certs/ca.crt"

echo "# (1) skopeo copy through the Proxy: digests identical"
pull() {  # REPO:TAG OUT_LAYOUT
  timeout 90 skopeo copy --quiet --src-cert-dir "$WORK/certs" "docker://127.0.0.1:$PORT/$1" "oci:$2:x"
}
pull system/deckhouse:v1 "$WORK/out1" || fail "skopeo copy system/deckhouse:v1 through the Proxy"
assert_eq "$(layout_digest "$WORK/out1")" "$D1" "system/deckhouse:v1 digest"
pull system/deckhouse/install:v2 "$WORK/out2" || fail "skopeo copy system/deckhouse/install:v2 through the Proxy"
assert_eq "$(layout_digest "$WORK/out2")" "$D2" "system/deckhouse/install:v2 digest"
# The upstream saw its own path, never the client's.
grep -q '"GET /v2/deckhouse/ee/manifests/v1 ' "$WORK/docker-registry-$UP.log" || fail "no upstream GET of deckhouse/ee:v1"
grep -q '/v2/system/deckhouse' "$WORK/docker-registry-$UP.log" && fail "the upstream was asked for the client-side path"

LAYER=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["layers"][-1]["digest"])' \
  "$WORK/out1/blobs/sha256/${D1#sha256:}")
assert_eq "$(upstream_gets "$LAYER")" "1" "upstream GETs of the layer after the first copy"
rm -rf "$WORK/out1"
pull system/deckhouse:v1 "$WORK/out1" || fail "second skopeo copy"
assert_eq "$(layout_digest "$WORK/out1")" "$D1" "digest of the second copy"
assert_eq "$(upstream_gets "$LAYER")" "1" "upstream GETs of the layer after a second copy (cached)"
[ "$(metric 'registryd_proxy_cache_hits_total{kind="blob"}')" -ge 1 ] || fail "no blob cache hit counted"

echo "# other repositories are NAME_UNKNOWN, pushes UNSUPPORTED"
assert_eq "$(http_status --cacert "$CA" "$URL/v2/library/alpine/manifests/latest")" "404" "other repository"
assert_contains "$(cat "$WORK/body")" '"NAME_UNKNOWN"' "other repository"
assert_eq "$(http_status --cacert "$CA" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary '{}' "$URL/v2/system/deckhouse/manifests/v9")" "405" "manifest push"
assert_contains "$(cat "$WORK/body")" '"UNSUPPORTED"' "manifest push"
assert_eq "$(http_status --cacert "$CA" -X POST --data-binary '' "$URL/v2/system/deckhouse/blobs/uploads/")" "405" "blob upload"
set +e
out=$(timeout 60 skopeo copy --dest-cert-dir "$WORK/certs" "oci:$WORK/img3:latest" \
  "docker://127.0.0.1:$PORT/system/deckhouse:pushed" 2>&1)
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "skopeo pushed into the Proxy"
echo "ok: pulls through the Proxy, push refused"

echo "# (3) the upstream stops: what was pulled still pulls, the rest fails fast"
# A blob that was never pulled, and an uncached tag, for the failures below.
UNPULLED_LAYER=$(python3 -c 'import json,sys
idx=json.load(open(sys.argv[1]+"/index.json")); d=idx["manifests"][0]["digest"].split(":")[1]
m=json.load(open(sys.argv[1]+"/blobs/sha256/"+d)); print(m["layers"][-1]["digest"])' "$WORK/img3")
stale_before=$(metric registryd_proxy_stale_serves_total)
stop_pid "$UP_PID"
wait_for 10 bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$UP) 2>/dev/null" || fail "docker-registry still listens"

rm -rf "$WORK/out1" "$WORK/out2"
pull system/deckhouse:v1 "$WORK/out1" || fail "skopeo copy of a cached image with the upstream down"
assert_eq "$(layout_digest "$WORK/out1")" "$D1" "digest with the upstream down"
pull system/deckhouse/install:v2 "$WORK/out2" || fail "skopeo copy of the second cached image with the upstream down"
assert_eq "$(layout_digest "$WORK/out2")" "$D2" "second digest with the upstream down"
stale_after=$(metric registryd_proxy_stale_serves_total)
[ "$stale_after" -gt "$stale_before" ] || fail "no stale answer counted ($stale_before -> $stale_after)"
assert_eq "$(metric registryd_proxy_upstream_up)" "0" "registryd_proxy_upstream_up"
grep -q "without revalidation" "$WORK/px.log" || fail "no warning about stale answers in the log"
grep -q "is unavailable" "$WORK/px.log" || fail "no warning about the upstream in the log"

# Uncached: a clear error within two seconds, for a manifest, a blob and a HEAD.
for what in "manifests/unpulled" "blobs/$UNPULLED_LAYER"; do
  t0=$(date +%s%N)
  status=$(http_status --cacert "$CA" "$URL/v2/system/deckhouse/$what")
  ms=$((($(date +%s%N) - t0) / 1000000))
  assert_eq "$status" "503" "uncached $what with the upstream down"
  assert_contains "$(cat "$WORK/body")" '"UNAVAILABLE"' "uncached $what"
  assert_contains "$(cat "$WORK/body")" "127.0.0.1:$UP" "the error names the upstream"
  assert_contains "$(cat "$WORK/body")" "cannot connect to 127.0.0.1:$UP" "the error names the cause"
  [ "$ms" -lt 2000 ] || fail "uncached $what took $ms ms to fail"
  echo "  $what: 503 in $ms ms"
done
assert_eq "$(http_status --cacert "$CA" -I "$URL/v2/system/deckhouse/blobs/$UNPULLED_LAYER")" "503" "HEAD of an uncached blob"
t0=$(date +%s)
set +e
out=$(timeout 60 skopeo copy --src-cert-dir "$WORK/certs" "docker://127.0.0.1:$PORT/system/deckhouse:unpulled" \
  "oci:$WORK/out3:x" 2>&1)
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "an uncached image was copied with the upstream down"
assert_contains "$out" "503 Service Unavailable" "skopeo's error"
[ $(($(date +%s) - t0)) -le 10 ] || fail "skopeo took $(($(date +%s) - t0)) s to fail"
echo "ok: stale serving with the upstream down ($stale_before -> $stale_after stale answers)"

echo "# (4) the upstream stalls: cached tags answered at once, /healthz too, the rest fails in 2 s"
# A listener on the upstream's port that takes every connection and never answers.
start_bg stall 120 python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(512)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' "$UP"
wait_port "$UP" 10 || fail "the stalling listener did not start"
sleep 3.5  # past the 3 s in which a known-down upstream is not asked again
accept='application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json'
heads_before=$(metric 'registryd_proxy_upstream_heads_total{kind="manifest"}')
stale_after=$(metric registryd_proxy_stale_serves_total)
t0=$(date +%s%N)
pulls=()
for i in $(seq 70); do
  curl -sS -o /dev/null -w '%{http_code}\n' --max-time 30 --cacert "$CA" -H "Accept: $accept" \
    "$URL/v2/system/deckhouse/manifests/v1" >"$WORK/stalled-$i.status" &
  pulls+=($!)
done
sleep 0.2
h0=$(date +%s%N)
assert_eq "$(http_status --cacert "$CA" "$URL/healthz")" "200" "/healthz while 70 pulls wait on a stalled upstream"
healthz_ms=$((($(date +%s%N) - h0) / 1000000))
wait "${pulls[@]}"
pulls_ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq "$(cat "$WORK"/stalled-*.status | sort | uniq -c | awk '{print $1 " " $2}')" "70 200" "the 70 pulls"
heads=$(($(metric 'registryd_proxy_upstream_heads_total{kind="manifest"}') - heads_before))
echo "  70 pulls of a cached tag in $pulls_ms ms, /healthz in $healthz_ms ms, $heads manifest HEADs upstream"
[ "$pulls_ms" -lt 5000 ] || fail "70 pulls of a cached tag took $pulls_ms ms behind a stalled upstream"
[ "$healthz_ms" -lt 1000 ] || fail "/healthz took $healthz_ms ms behind a stalled upstream"
[ "$heads" -le 2 ] || fail "$heads revalidations for one tag (one at a time wanted)"
stale_now=$(metric registryd_proxy_stale_serves_total)
[ "$((stale_now - stale_after))" -ge 70 ] || fail "$((stale_now - stale_after)) stale answers counted for 70 pulls"

sleep 3.5
t0=$(date +%s%N)
status=$(http_status --cacert "$CA" -H "Accept: $accept" "$URL/v2/system/deckhouse/manifests/never-pulled")
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq "$status" "503" "an uncached tag behind a stalled upstream"
assert_contains "$(cat "$WORK/body")" "sent nothing for 2 s" "the error names the cause"
echo "  uncached tag: 503 in $ms ms"
[ "$ms" -ge 1500 ] && [ "$ms" -lt 4000 ] || fail "an uncached tag failed after $ms ms (the 2 s answer timeout wanted)"
echo "ok: a stalled upstream holds nothing"

echo "PASS proxy_pull"
