#!/usr/bin/env bash
# Direct mode against a real upstream: docker-registry with htpasswd basic auth holds images at
# deckhouse/ee; registryd (Direct, its own users, HTTPS) forwards pulls of system/deckhouse to
# it with the section's credentials. Checked with skopeo and curl:
#   - skopeo copies out of registryd give the upstream's digests, for system/deckhouse and a
#     repository below it; HEAD, Range (206) and tag lists pass through, names mapped;
#   - the upstream's challenge never reaches the client, nor its path;
#   - a missing tag is MANIFEST_UNKNOWN naming system/deckhouse; other repositories are
#     NAME_UNKNOWN; push is 405 UNSUPPORTED (skopeo says so too);
#   - nothing is stored under registryd's data dir;
#   - a 256 MiB blob passes, to a slow client too, while registryd's peak RSS (VmHWM) grows
#     by far less than the blob;
#   - relays in flight past direct_max_relays_per_client and direct_max_relays get 429 and 503
#     with Retry-After, and are admitted again once the clients that held them left;
#   - the upstream stopped: a pull fails within 2 s with a clear error, and registryd goes on
#     serving once the upstream is back.
source "$(dirname "$0")/lib.sh"

for tool in docker-registry skopeo umoci htpasswd curl python3 sha256sum; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

# --- the upstream: docker-registry with basic auth ----------------------------------------------
htpasswd -Bbn upuser uppass >"$WORK/htpasswd"
up=$(free_port)
start_docker_registry "$up" "auth:
  htpasswd:
    realm: upstream-realm
    path: $WORK/htpasswd"
UP_PID=$DOCKER_REGISTRY_PID
up_url="http://127.0.0.1:$up"
assert_eq "$(http_status "$up_url/v2/")" "401" "upstream without credentials"

make_sample_image "$WORK/image"
make_sample_image "$WORK/image2"
push() { # push LAYOUT:TAG REPO:TAG
  timeout 120 skopeo copy --dest-tls-verify=false --dest-creds upuser:uppass "oci:$1" "docker://127.0.0.1:$up/$2" \
    >"$WORK/push.log" 2>&1 || { cat "$WORK/push.log" >&2; fail "skopeo push of $2 to the upstream"; }
}
push "$WORK/image:latest" deckhouse/ee:v1
push "$WORK/image2:latest" deckhouse/ee/install:v1
push "$WORK/image2:latest" deckhouse/ee:v2

# --- registryd in Direct mode ------------------------------------------------------------------
{
  echo "users:"
  bcrypt_user reader rpass read-only
  bcrypt_user writer wpass read-write
} >"$WORK/users.yaml"
module_config Direct "      direct:
        imagesRepo: 127.0.0.1:$up/deckhouse/ee
        scheme: HTTP
        username: upuser
        password: uppass" >"$WORK/mc.yaml"
port=$(free_port)
start_registryd dr "$port" --config "$WORK/mc.yaml" --users-file "$WORK/users.yaml"
RD_PID=$REGISTRYD_PID
url="https://127.0.0.1:$port"
wait_for 20 bash -c "curl -s --cacert '$CA' '$url/readyz' | grep -q 'ok: Direct'"
mkdir -p "$WORK/certs" && cp "$CA" "$WORK/certs/ca.crt"
data_dir="$WORK/dr-data"
cr=(--cacert "$CA" -u reader:rpass)

upstream_digest() { # REPO:TAG -> the manifest digest the upstream reports
  curl -sS -I -u upuser:uppass -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$up_url/v2/${1%%:*}/manifests/${1#*:}" | tr -d '\r' | sed -n 's/^Docker-Content-Digest: //Ip'
}
layout_digest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$1/index.json"; }
layout_blobs() { (cd "$1/blobs/sha256" && ls | sort | tr '\n' ' '); }
# The data dir is not even created in Direct mode; if something made it, it must hold no file.
assert_nothing_stored() {
  if [ -d "$data_dir" ]; then
    local stored
    # <dataDir>/packages is the packages proxy's cache, a service beside the mode
    # (docs/packages-proxy.md): the mode itself stores nothing.
    stored=$(find "$data_dir" -path "$data_dir/packages" -prune -o -type f -print | head -5)
    [ -z "$stored" ] || fail "registryd stored files in Direct mode: $stored"
  fi
}

echo "# skopeo pulls system/deckhouse through registryd: the upstream's digests"
for pair in "system/deckhouse:v1=deckhouse/ee:v1" "system/deckhouse/install:v1=deckhouse/ee/install:v1"; do
  client_ref=${pair%%=*} upstream_ref=${pair#*=}
  out="$WORK/out-$(echo "$client_ref" | tr '/:' '__')"
  timeout 120 skopeo copy --src-cert-dir "$WORK/certs" --src-creds reader:rpass \
    "docker://127.0.0.1:$port/$client_ref" "oci:$out:x" >"$WORK/pull.log" 2>&1 ||
    { cat "$WORK/pull.log" >&2; fail "skopeo copy of $client_ref through registryd"; }
  want=$(upstream_digest "$upstream_ref")
  [ -n "$want" ] || fail "no digest from the upstream for $upstream_ref"
  assert_eq "$(layout_digest "$out")" "$want" "manifest digest of $client_ref"
  timeout 60 skopeo copy --src-tls-verify=false --src-creds upuser:uppass \
    "docker://127.0.0.1:$up/$upstream_ref" "oci:$WORK/straight:x" >/dev/null 2>&1 || fail "straight pull of $upstream_ref"
  assert_eq "$(layout_blobs "$out")" "$(layout_blobs "$WORK/straight")" "blobs of $client_ref"
  rm -rf "$WORK/straight"
done
timeout 60 skopeo inspect --raw --cert-dir "$WORK/certs" --creds reader:rpass "docker://127.0.0.1:$port/system/deckhouse:v2" >"$WORK/raw-v2"
assert_eq "sha256:$(sha256sum <"$WORK/raw-v2" | cut -d' ' -f1)" "$(upstream_digest deckhouse/ee:v2)" "skopeo inspect --raw v2"

echo "# HEAD, ETag, Range and tag lists pass through with names mapped; no upstream challenge"
accept='Accept: application/vnd.oci.image.manifest.v1+json'
digest=$(upstream_digest deckhouse/ee:v1)
assert_eq "$(http_status "${cr[@]}" -I -H "$accept" "$url/v2/system/deckhouse/manifests/v1")" "200" "HEAD manifest"
headers=$(tr -d '\r' <"$WORK/headers")
assert_contains "$headers" "Docker-Content-Digest: $digest" "HEAD headers"
assert_contains "$headers" "Content-Type: application/vnd.oci.image.manifest.v1+json" "HEAD headers"
grep -qi "^etag: \"$digest\"" <<<"$headers" || fail "no ETag in the HEAD headers: $headers"
case "$headers" in *upstream-realm*|*WWW-Authenticate*) fail "an upstream challenge reached the client: $headers" ;; esac
layer=$(curl -sS -u upuser:uppass -H "$accept" "$up_url/v2/deckhouse/ee/manifests/v1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
curl -sS -u upuser:uppass -o "$WORK/layer.straight" "$up_url/v2/deckhouse/ee/blobs/$layer"
size=$(stat -c %s "$WORK/layer.straight")
assert_eq "$(http_status "${cr[@]}" -H "Range: bytes=10-19" "$url/v2/system/deckhouse/blobs/$layer")" "206" "ranged GET"
assert_eq "$(cmp -s "$WORK/body" <(tail -c +11 "$WORK/layer.straight" | head -c 10) && echo same)" "same" "ranged bytes"
assert_contains "$(tr -d '\r' <"$WORK/headers")" "Content-Range: bytes 10-19/$size" "Content-Range"
assert_eq "$(http_status "${cr[@]}" -H "Range: bytes=20-" "$url/v2/system/deckhouse/blobs/$layer")" "206" "open-ended range"
assert_eq "$(cmp -s "$WORK/body" <(tail -c +21 "$WORK/layer.straight") && echo same)" "same" "open-ended range bytes"
assert_contains "$(tr -d '\r' <"$WORK/headers")" "Content-Length: $((size - 20))" "open-ended range length"
assert_eq "$(http_status "${cr[@]}" "$url/v2/system/deckhouse/blobs/$layer")" "200" "whole blob"
assert_eq "$(cmp -s "$WORK/body" "$WORK/layer.straight" && echo same)" "same" "whole blob bytes"
assert_eq "$(http_status "${cr[@]}" "$url/v2/system/deckhouse/tags/list")" "200" "tag list"
assert_eq "$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["name"], sorted(j["tags"]))' "$WORK/body")" \
  "system/deckhouse ['v1', 'v2']" "tag list body"
# docker-registry 2.8 does not page tag lists, so the Link mapping is left to the unit tests.

echo "# errors: MANIFEST_UNKNOWN naming system/deckhouse, NAME_UNKNOWN, push refused"
assert_eq "$(http_status "${cr[@]}" -H "$accept" "$url/v2/system/deckhouse/manifests/nope")" "404" "missing tag"
body=$(cat "$WORK/body")
assert_contains "$body" '"code":"MANIFEST_UNKNOWN"' "missing tag body"
assert_contains "$body" "system/deckhouse:nope" "missing tag body"
case "$body" in *deckhouse/ee*) fail "the upstream path reached the client: $body" ;; esac
assert_eq "$(http_status "${cr[@]}" "$url/v2/system/deckhouse/blobs/sha256:$(printf x | sha256sum | cut -d' ' -f1)")" "404" "missing blob"
assert_contains "$(cat "$WORK/body")" '"code":"BLOB_UNKNOWN"' "missing blob body"
assert_eq "$(http_status "${cr[@]}" "$url/v2/library/alpine/manifests/latest")" "404" "another repository"
assert_contains "$(cat "$WORK/body")" '"code":"NAME_UNKNOWN"' "another repository body"
assert_eq "$(http_status --cacert "$CA" -u writer:wpass -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary '{}' "$url/v2/system/deckhouse/manifests/v9")" "405" "manifest PUT"
assert_contains "$(cat "$WORK/body")" '"code":"UNSUPPORTED"' "PUT body"
assert_eq "$(http_status --cacert "$CA" -u writer:wpass -X POST --data-binary "" "$url/v2/system/deckhouse/blobs/uploads/")" "405" "upload POST"
set +e
out=$(timeout 60 skopeo copy --dest-cert-dir "$WORK/certs" --dest-creds writer:wpass "oci:$WORK/image:latest" \
  "docker://127.0.0.1:$port/system/deckhouse:pushed" 2>&1); rc=$?
set -e
[ "$rc" -ne 0 ] || fail "skopeo pushed through Direct mode"
assert_contains "$out" "pulls only" "skopeo's push error"
assert_eq "$(http_status -u upuser:uppass "$up_url/v2/deckhouse/ee/manifests/pushed")" "404" "nothing reached the upstream"

echo "# nothing is stored under registryd's data dir"
assert_nothing_stored

echo "# a 256 MiB blob passes with bounded memory, to a fast and to a slow client"
head -c $((256 * 1024 * 1024)) /dev/urandom >"$WORK/big"
big=sha256:$(sha256sum "$WORK/big" | cut -d' ' -f1)
loc=$(curl -sS -u upuser:uppass -X POST -D - -o /dev/null "$up_url/v2/deckhouse/ee/blobs/uploads/" |
  tr -d '\r' | sed -n 's/^Location: //Ip')
case "$loc" in http*) ;; *) loc="$up_url$loc" ;; esac
sep='?'; case "$loc" in *\?*) sep='&' ;; esac
assert_eq "$(curl -sS -o /dev/null -w '%{http_code}' -u upuser:uppass -X PUT -H 'Content-Type: application/octet-stream' \
  --data-binary @"$WORK/big" "$loc${sep}digest=$big")" "201" "big blob upload to the upstream"
# registryd runs under timeout(1): its pid is the child's.
rd_pid=$(pgrep -P "$RD_PID" -x registryd) || fail "no registryd process under $RD_PID"
hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$rd_pid/status"; }
before=$(hwm)
[ -n "$before" ] || fail "no VmHWM for registryd ($rd_pid)"
code=$(curl -sS "${cr[@]}" -o "$WORK/big.out" -w '%{http_code}' --max-time 120 "$url/v2/system/deckhouse/blobs/$big")
assert_eq "$code" "200" "big blob through registryd"
assert_eq "sha256:$(sha256sum "$WORK/big.out" | cut -d' ' -f1)" "$big" "big blob digest"
rm -f "$WORK/big.out"
code=$(curl -sS "${cr[@]}" -o "$WORK/big.out" -w '%{http_code}' --limit-rate 48M --max-time 120 "$url/v2/system/deckhouse/blobs/$big")
assert_eq "$code" "200" "big blob to a slow client"
assert_eq "sha256:$(sha256sum "$WORK/big.out" | cut -d' ' -f1)" "$big" "big blob digest, slow client"
rm -f "$WORK/big.out" "$WORK/big"
after=$(hwm)
grown=$(( (after - before) / 1024 ))
echo "  VmHWM ${before} kB -> ${after} kB (+${grown} MiB) for a 256 MiB blob"
[ "$grown" -lt 48 ] || fail "registryd's peak RSS grew by $grown MiB passing a 256 MiB blob"
curl -s --cacert "$CA" "$url/metrics" >"$WORK/metrics"
grep -q '^registryd_direct_bytes_total [1-9]' "$WORK/metrics" || fail "no bytes counted: $(grep direct_bytes "$WORK/metrics")"
grep -q '^registryd_direct_requests_total{route="blob",method="GET"} [1-9]' "$WORK/metrics" || fail "no blob requests counted"
assert_nothing_stored

echo "# relays in flight: 2 per client address, 3 in all; past them 429 and 503, and back once the clients go"
printf 'direct_max_relays: 3\ndirect_max_relays_per_client: 2\n' >"$WORK/bounds.yaml"
port2=$(free_port)
main_ca=$CA
start_registryd dr2 "$port2" --config "$WORK/mc.yaml" --users-file "$WORK/users.yaml" --host-config "$WORK/bounds.yaml"
RD2_PID=$REGISTRYD_PID
ca2=$CA
CA=$main_ca
url2="https://127.0.0.1:$port2"
wait_for 20 bash -c "curl -s --cacert '$ca2' '$url2/readyz' | grep -q 'ok: Direct'"
relays() { curl -s --cacert "$ca2" "$url2/metrics" | sed -n 's/^registryd_direct_relays_in_flight //p'; }
relays_are() { [ "$(relays)" = "$1" ]; }
slow=()
hold() {  # a client at $1 reading the 256 MiB blob at 64 KiB/s: its relay stays in flight
  start_bg "slow-${#slow[@]}" 120 curl -sS --interface "$1" --cacert "$ca2" -u reader:rpass \
    --limit-rate 64k -o /dev/null "$url2/v2/system/deckhouse/blobs/$big"
  slow+=("$LAST_PID")
  wait_for 10 relays_are "${#slow[@]}" || fail "relay ${#slow[@]} not in flight: $(relays)"
}
hold 127.0.0.1
hold 127.0.0.1
assert_eq "$(http_status --cacert "$ca2" -u reader:rpass --interface 127.0.0.1 "$url2/v2/system/deckhouse/blobs/$big")" \
  "429" "a third relay from one address"
assert_contains "$(cat "$WORK/body")" '"code":"TOOMANYREQUESTS"' "429 body"
grep -qi '^Retry-After: 1' "$WORK/headers" || fail "no Retry-After on the 429: $(cat "$WORK/headers")"
hold 127.0.0.2
assert_eq "$(http_status --cacert "$ca2" -u reader:rpass --interface 127.0.0.3 -H "$accept" \
  "$url2/v2/system/deckhouse/manifests/v1")" "503" "a fourth relay in all"
assert_contains "$(cat "$WORK/body")" '"code":"UNAVAILABLE"' "503 body"
assert_contains "$(cat "$WORK/body")" "direct_max_relays" "503 body names the setting"
grep -qi '^Retry-After: 1' "$WORK/headers" || fail "no Retry-After on the 503: $(cat "$WORK/headers")"
curl -s --cacert "$ca2" "$url2/metrics" >"$WORK/metrics2"
grep -q '^registryd_direct_relays_refused_total{limit="per_client"} 1$' "$WORK/metrics2" || fail "per-client refusal not counted"
grep -q '^registryd_direct_relays_refused_total{limit="total"} 1$' "$WORK/metrics2" || fail "total refusal not counted"
for pid in "${slow[@]}"; do stop_pid "$pid"; done
wait_for 10 relays_are 0 || fail "relays still in flight after their clients left: $(relays)"
assert_eq "$(http_status --cacert "$ca2" -u reader:rpass --interface 127.0.0.1 -H "$accept" \
  "$url2/v2/system/deckhouse/manifests/v1")" "200" "a relay once the clients left"
stop_pid "$RD2_PID"

echo "# the upstream stopped: a clear error within 2 s; back: pulls work again"
stop_pid "$UP_PID"
start=$(date +%s%N)
code=$(http_status "${cr[@]}" -H "$accept" "$url/v2/system/deckhouse/manifests/v1")
ms=$(( ($(date +%s%N) - start) / 1000000 ))
assert_eq "$code" "503" "manifest with the upstream down"
assert_contains "$(cat "$WORK/body")" '"code":"UNAVAILABLE"' "upstream down body"
assert_contains "$(cat "$WORK/body")" "127.0.0.1:$up is unreachable" "upstream down body"
[ "$ms" -lt 2000 ] || fail "the answer with the upstream down took $ms ms"
start=$(date +%s%N)
set +e
out=$(timeout 60 skopeo copy --retry-times 0 --src-cert-dir "$WORK/certs" --src-creds reader:rpass \
  "docker://127.0.0.1:$port/system/deckhouse:v1" "oci:$WORK/down:x" 2>&1); rc=$?
set -e
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" -ne 0 ] || fail "skopeo pulled with the upstream down"
# skopeo shows only the status of a 5xx, not its body; the body and the log say why.
assert_contains "$out" "503 Service Unavailable" "skopeo's error with the upstream down"
grep -q "upstream 127.0.0.1:$up for /v2/deckhouse/ee/manifests/v1: connect: cannot connect to 127.0.0.1:$up" "$WORK/dr.log" ||
  fail "the unreachable upstream is not logged: $(tail -3 "$WORK/dr.log")"
echo "  skopeo failed after $ms ms: $(echo "$out" | tail -1)"
[ "$ms" -lt 5000 ] || fail "skopeo took $ms ms to fail with the upstream down"
grep -q '^registryd_direct_upstream_errors_total{kind="connect"} [1-9]' <(curl -s --cacert "$CA" "$url/metrics") ||
  fail "the connect failure is not counted"
start_bg "docker-registry-$up-again" 600 docker-registry serve "$WORK/docker-registry-$up.yml"
wait_port "$up"
assert_eq "$(http_status "${cr[@]}" -H "$accept" "$url/v2/system/deckhouse/manifests/v1")" "200" "pull after the upstream is back"

echo "PASS direct_pull"
