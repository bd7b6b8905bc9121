#!/usr/bin/env bash
# The packages proxy beside Direct mode (then Local mode), against real docker-registries:
#   upstream A: HTTP with htpasswd auth (the platform's registry: the mode's credentials apply;
#               and a ModuleSource with dockerCfg credentials for its modules/ path);
#   upstream B: HTTPS with its own CA, anonymous (a ModuleSource with `ca`).
# Checked: packages (the last layer of repository@digest, an index's linux/amd64 child too) are
# the bytes skopeo pushed, with FACTS.md's headers, Range and 304; errors 400/404/405; the
# authorizing front (no credential 401, a host token with registry:packages:pull, a static
# token, a client certificate of the host CA; /healthz open; other paths 404); concurrent cold
# requests share one upstream fetch; a corrupted
# cache file is never served; the cap holds while different packages pass; a restart keeps
# the cache (no new upstream GET); Local mode serves from its own store.
source "$(dirname "$0")/lib.sh"

for tool in docker-registry skopeo umoci htpasswd curl python3 openssl sha256sum; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

layer_gets() { grep -c "\"GET /v2/[^ ]*/blobs/$2 " "$WORK/docker-registry-$1.log" || true; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- upstream A: HTTP + htpasswd ------------------------------------------------------------
htpasswd -Bbn upuser uppass >"$WORK/htpasswd"
UPA=$(free_port)
start_docker_registry "$UPA" "auth:
  htpasswd:
    realm: upstream
    path: $WORK/htpasswd"
# --- upstream B: HTTPS with its own CA -----------------------------------------------------
make_test_tls up
UPB=$(free_port)
start_docker_registry "$UPB" "  tls:
    certificate: $WORK/up.crt
    key: $WORK/up.key"

push() {  # LAYOUT DEST [skopeo args] -> prints the pushed manifest digest
  local layout=$1 dest=$2; shift 2
  timeout 60 skopeo copy --quiet "$@" --digestfile "$WORK/pushed.digest" "oci:$layout:latest" "docker://$dest" >&2
  cat "$WORK/pushed.digest"
}
make_sized_image "$WORK/p1" 300
make_sized_image "$WORK/arm" 10
make_sized_image "$WORK/amd" 200
make_multiarch_index "$WORK/multi" "$WORK/amd" "$WORK/arm"
make_sized_image "$WORK/mod" 100
make_sized_image "$WORK/ext" 100
D1=$(push "$WORK/p1" "127.0.0.1:$UPA/deckhouse/ee/packages/p1:v1" --dest-tls-verify=false --dest-creds upuser:uppass)
DM=$(push "$WORK/multi" "127.0.0.1:$UPA/deckhouse/ee/packages/multi:v1" --all --dest-tls-verify=false --dest-creds upuser:uppass)
DMOD=$(push "$WORK/mod" "127.0.0.1:$UPA/modules/m1:v1" --dest-tls-verify=false --dest-creds upuser:uppass)
DEXT=$(push "$WORK/ext" "127.0.0.1:$UPB/mods/e1:v1" --dest-tls-verify=false)
L1=$(last_layer "$WORK/p1"); LAMD=$(last_layer "$WORK/amd"); LMOD=$(last_layer "$WORK/mod"); LEXT=$(last_layer "$WORK/ext")

# --- registryd in Direct mode with the packages proxy ---------------------------------------
PORT=$(free_port); PP=$(free_port)
mkdir -p "$WORK/sources"
cfg=$(printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}' "$UPA" "$(printf upuser:uppass | base64 -w0)" | base64 -w0)
cat >"$WORK/sources/a.yaml" <<YML
apiVersion: deckhouse.io/v1alpha1
kind: ModuleSource
metadata: {name: modules-a}
spec:
  registry:
    repo: 127.0.0.1:$UPA/modules
    scheme: HTTP
    dockerCfg: $cfg
YML
echo "static-token-$RANDOM$RANDOM" >"$WORK/tokens"
STATIC=$(cat "$WORK/tokens")
cat >"$WORK/host.yaml" <<YML
packages_max_cache_bytes: 1048576
packages_evict_percent: 80
packages_module_sources_dir: $WORK/sources
packages_tokens_file: $WORK/tokens
YML
printf '%s\n' "users:" "$(bcrypt_user reader readpw read-only)" >"$WORK/users.yaml"
module_config Direct "      direct:
        imagesRepo: 127.0.0.1:$UPA/deckhouse/ee
        scheme: HTTP
        username: upuser
        password: uppass" >"$WORK/mc.yaml"
PACKAGES_LISTEN="127.0.0.1:$PP" start_registryd pk "$PORT" --module-config "$WORK/mc.yaml" \
  --host-config "$WORK/host.yaml" --users-file "$WORK/users.yaml"
wait_port "$PP" 30 || fail "the packages proxy did not listen on $PP"
P="https://127.0.0.1:$PP"
C=(--cacert "$CA")
TOKEN=$(curl -sS "${C[@]}" -u reader:readpw "https://127.0.0.1:$PORT/auth/token?service=registryd&scope=registry:packages:pull" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
A=(--cacert "$CA" -H "Authorization: Bearer $TOKEN")

# The authorizing front.
assert_eq "$(http_status "${C[@]}" "$P/healthz")" "200" "/healthz is open"
assert_eq "$(http_status "${C[@]}" "$P/package?digest=$D1&path=packages/p1")" "401" "no credential"
assert_contains "$(cat "$WORK/headers")" 'scope="registry:packages:pull"' "the challenge"
assert_eq "$(http_status "${C[@]}" -H "Authorization: Bearer nonsense" "$P/package?digest=$D1")" "401" "a bad token"
assert_eq "$(http_status "${C[@]}" "$P/metrics")" "401" "/metrics needs a credential"
assert_eq "$(http_status "${A[@]}" "$P/v2/")" "404" "nothing else is served"
REPO_TOKEN=$(curl -sS "${C[@]}" -u reader:readpw "https://127.0.0.1:$PORT/auth/token?service=registryd&scope=repository:system/deckhouse:pull" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
assert_eq "$(http_status "${C[@]}" -H "Authorization: Bearer $REPO_TOKEN" "$P/package?digest=$D1")" "403" "a token without the packages scope"

# A package: the last layer, FACTS.md's headers.
assert_eq "$(curl -sS "${A[@]}" -o "$WORK/p1.tgz" -D "$WORK/h1" -w '%{http_code}' "$P/package?digest=$D1&path=packages/p1")" "200" "package p1"
assert_eq "sha256:$(sha "$WORK/p1.tgz")" "$L1" "package p1 is its last layer"
h=$(tr -d '\r' <"$WORK/h1" | tr 'A-Z' 'a-z')
assert_contains "$h" "content-type: application/x-gzip" "headers"
assert_contains "$h" "content-disposition: attachment; filename=$D1.tar.gz" "headers"
assert_contains "$h" "cache-control: public, max-age=31536000" "headers"
assert_contains "$h" "etag: \"$D1\"" "headers"
assert_contains "$h" "content-length: $(stat -c %s "$WORK/p1.tgz")" "headers"
# Served again from the cache: no second upstream GET of the layer.
curl -sS "${A[@]}" -o "$WORK/p1b.tgz" "$P/package?digest=$D1&path=packages/p1"
cmp -s "$WORK/p1.tgz" "$WORK/p1b.tgz" || fail "the cached package differs"
assert_eq "$(layer_gets "$UPA" "$L1")" "1" "upstream GETs of the layer"
# Range, 304, HEAD.
assert_eq "$(http_status "${A[@]}" -r 10-19 "$P/package?digest=$D1&path=packages/p1")" "206" "a range"
assert_eq "$(cat "$WORK/body")" "$(dd if="$WORK/p1.tgz" bs=1 skip=10 count=10 2>/dev/null)" "the range's bytes"
assert_eq "$(http_status "${A[@]}" -H "If-None-Match: \"$D1\"" "$P/package?digest=$D1&path=packages/p1")" "304" "If-None-Match"
assert_eq "$(http_status "${A[@]}" -I "$P/package?digest=$D1&path=packages/p1")" "200" "HEAD"
# An index: its linux/amd64 child's last layer.
curl -sS "${A[@]}" -o "$WORK/multi.tgz" "$P/package?digest=$DM&path=packages/multi"
assert_eq "sha256:$(sha "$WORK/multi.tgz")" "$LAMD" "an index's package is the amd64 image's last layer"
# Errors, as FACTS.md words them.
assert_eq "$(http_status "${A[@]}" "$P/package?path=packages/p1")" "400" "no digest"
assert_eq "$(cat "$WORK/body")" 'missing required query parameter "digest"' "the no-digest text"
assert_eq "$(http_status "${A[@]}" "$P/package?digest=sha256:$(printf x | sha256sum | cut -d' ' -f1)&path=packages/p1")" "404" "unknown package"
assert_eq "$(http_status "${A[@]}" -X POST "$P/package?digest=$D1")" "405" "POST"
assert_eq "$(http_status "${A[@]}" "$P/package?digest=$D1&repository=10.0.0.1:1/x")" "403" "a repository that is no source"
assert_eq "$(http_status "${A[@]}" "$P/package?digest=$D1&path=packages/../x")" "400" "a path that makes no repository name"
# A HEAD of a package nobody fetched: its headers from the manifest, no layer fetched.
make_sized_image "$WORK/hd" 50
DHD=$(push "$WORK/hd" "127.0.0.1:$UPA/deckhouse/ee/packages/hd:v1" --dest-tls-verify=false --dest-creds upuser:uppass)
LHD=$(last_layer "$WORK/hd")
assert_eq "$(http_status "${A[@]}" -I "$P/package?digest=$DHD&path=packages/hd")" "200" "HEAD of a cold package"
assert_contains "$(tr -d '\r' <"$WORK/headers" | tr 'A-Z' 'a-z')" "content-length: $(stat -c %s "$WORK/hd/blobs/sha256/${LHD#sha256:}")" "its length"
assert_eq "$(layer_gets "$UPA" "$LHD")" "0" "upstream GETs for a HEAD"
echo "ok: packages from the platform's registry (HTTP, auth), headers, ranges, errors"

# ModuleSources: credentials from dockerCfg; a second one (HTTPS, its CA) added while running.
curl -sS "${A[@]}" -o "$WORK/mod.tgz" "$P/package?digest=$DMOD&repository=127.0.0.1:$UPA/modules&path=m1"
assert_eq "sha256:$(sha "$WORK/mod.tgz")" "$LMOD" "a ModuleSource's package (dockerCfg credentials)"
assert_eq "$(http_status "${A[@]}" "$P/package?digest=$DEXT&repository=127.0.0.1:$UPB/mods&path=e1")" "403" "before its ModuleSource"
cat >"$WORK/sources/b.yaml" <<YML
apiVersion: deckhouse.io/v1alpha1
kind: ModuleSource
metadata: {name: ext-b}
spec:
  registry:
    repo: 127.0.0.1:$UPB/mods
    scheme: HTTPS
    ca: |
$(sed 's/^/      /' "$WORK/up-ca.crt")
YML
wait_for 20 bash -c "[ \"\$(curl -s -o '$WORK/ext.tgz' -w '%{http_code}' --cacert '$CA' -H 'Authorization: Bearer $TOKEN' \
  '$P/package?digest=$DEXT&repository=127.0.0.1:$UPB/mods&path=e1')\" = 200 ]" || fail "the new ModuleSource was not applied"
assert_eq "sha256:$(sha "$WORK/ext.tgz")" "$LEXT" "a ModuleSource's package (HTTPS with its CA)"
echo "ok: ModuleSources (dockerCfg, HTTPS with a CA, added without a restart)"

# A static token and a client certificate of the host CA.
assert_eq "$(http_status "${C[@]}" -H "Authorization: Bearer $STATIC" -o /dev/null "$P/package?digest=$D1&path=packages/p1")" "200" "a static token"
KEY="$WORK/pk-state/pki/ca.key"
[ -f "$KEY" ] || fail "no host CA key at $KEY"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=node-1" \
  -keyout "$WORK/client.key" -out "$WORK/client.csr" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' >"$WORK/client.ext"
openssl x509 -req -in "$WORK/client.csr" -CA "$CA" -CAkey "$KEY" -CAcreateserial -days 1 \
  -extfile "$WORK/client.ext" -out "$WORK/client.crt" 2>/dev/null
assert_eq "$(http_status "${C[@]}" --cert "$WORK/client.crt" --key "$WORK/client.key" "$P/metrics")" "200" "a client certificate"
assert_contains "$(cat "$WORK/body")" "registry_packages_proxy_cache_size" "metrics"
# A certificate of another CA is no credential.
openssl x509 -req -in "$WORK/client.csr" -CA "$WORK/up-ca.crt" -CAkey "$WORK/up-ca.key" -CAcreateserial -days 1 \
  -extfile "$WORK/client.ext" -out "$WORK/other.crt" 2>/dev/null
assert_eq "$(http_status "${C[@]}" --cert "$WORK/other.crt" --key "$WORK/client.key" "$P/metrics")" "401" "a foreign client certificate"
# A client chain far longer than a node's (60 certificates, about 22 KB) is refused before it is
# parsed or verified, and costs the listener nothing a next client notices.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=c0" -days 1 \
  -keyout "$WORK/c0.key" -out "$WORK/c0.crt" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE\n' >"$WORK/ca.ext"
: >"$WORK/chain.pem"
for i in $(seq 1 60); do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=c$i" \
    -keyout "$WORK/c$i.key" -out "$WORK/c$i.csr" 2>/dev/null
  openssl x509 -req -in "$WORK/c$i.csr" -CA "$WORK/c$((i - 1)).crt" -CAkey "$WORK/c$((i - 1)).key" -CAcreateserial \
    -days 1 -extfile "$WORK/ca.ext" -out "$WORK/c$i.crt" 2>/dev/null
  cat "$WORK/c$i.crt" "$WORK/chain.pem" >"$WORK/chain.next" && mv "$WORK/chain.next" "$WORK/chain.pem"
done
[ "$(grep -c 'BEGIN CERTIFICATE' "$WORK/chain.pem")" = 60 ] || fail "the long chain was not made"
set +e
curl -sS --cacert "$CA" --cert "$WORK/chain.pem" --key "$WORK/c60.key" -o /dev/null "$P/metrics" 2>"$WORK/chain.err"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a 60-certificate client chain was taken"
echo "  a 60-certificate client chain: curl exit $rc, $(head -c 120 "$WORK/chain.err")"
assert_eq "$(http_status "${C[@]}" --cert "$WORK/client.crt" --key "$WORK/client.key" "$P/metrics")" "200" \
  "a client certificate after a long chain was refused"
echo "ok: static token, client certificates"

# A corrupted cache file is never served: it is dropped and fetched again.
blob="$WORK/pk-data/packages/blobs/sha256/${L1:7:2}/${L1:7}"
[ -f "$blob" ] || fail "the cached layer is not at $blob"
printf 'XXXX' | dd of="$blob" bs=1 seek=100 conv=notrunc 2>/dev/null
curl -sS "${A[@]}" -o "$WORK/p1c.tgz" "$P/package?digest=$D1&path=packages/p1"
assert_eq "sha256:$(sha "$WORK/p1c.tgz")" "$L1" "after corruption, the package is still right"
assert_eq "$(layer_gets "$UPA" "$L1")" "2" "the corrupted entry was fetched again"
metric() { curl -sS "${A[@]}" "$P/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
assert_eq "$(metric registry_packages_proxy_corrupted_total)" "1" "corrupted entries counted"
echo "ok: a corrupted cache file is dropped and fetched again"

# Concurrent cold requests for one package: one upstream GET, every client the right bytes.
make_sized_image "$WORK/co" 600
DCO=$(push "$WORK/co" "127.0.0.1:$UPA/deckhouse/ee/packages/co:v1" --dest-tls-verify=false --dest-creds upuser:uppass)
LCO=$(last_layer "$WORK/co")
seq 16 | xargs -P 16 -I{} curl -sS --max-time 30 "${A[@]}" -o "$WORK/co-{}.tgz" "$P/package?digest=$DCO&path=packages/co"
for i in $(seq 16); do assert_eq "sha256:$(sha "$WORK/co-$i.tgz")" "$LCO" "concurrent client $i"; done
assert_eq "$(layer_gets "$UPA" "$LCO")" "1" "upstream GETs for 16 concurrent cold requests"
echo "ok: 16 concurrent cold requests, one upstream fetch"

# The cap: 1 MiB, eviction past 80 %, while different packages pass through.
for i in 1 2 3 4 5; do
  make_sized_image "$WORK/s$i" 250
  DS=$(push "$WORK/s$i" "127.0.0.1:$UPA/deckhouse/ee/packages/s$i:v1" --dest-tls-verify=false --dest-creds upuser:uppass)
  curl -sS "${A[@]}" -o "$WORK/s$i.tgz" "$P/package?digest=$DS&path=packages/s$i"
  assert_eq "sha256:$(sha "$WORK/s$i.tgz")" "$(last_layer "$WORK/s$i")" "package s$i"
  used=$(du -sb --exclude=tmp "$WORK/pk-data/packages/blobs" | cut -f1)
  size=$(metric registry_packages_proxy_cache_size)
  [ "${size%.*}" -le 1048576 ] || fail "the cache holds $size bytes, past the cap of 1 MiB"
  [ "$used" -le 1048576 ] || fail "the cache directory holds $used bytes, past the cap"
  # The client may finish before the fill is published (fsync, rename); the eviction that
  # publication starts brings the cache back under 80 % right after.
  for _ in $(seq 50); do size=$(metric registry_packages_proxy_cache_size); [ "${size%.*}" -le 838861 ] && break; sleep 0.1; done
  if [ "${size%.*}" -gt 838861 ]; then
    find "$WORK/pk-data/packages/blobs" -type f -printf '%s %p\n' >&2
    curl -sS "${A[@]}" "$P/metrics" | grep '^registry_packages_proxy' >&2
    fail "the cache holds $size bytes 5 s after a fill of s$i, past 80 % of 1 MiB"
  fi
done
[ "$(metric registry_packages_proxy_evictions_total)" -ge 3 ] || fail "nothing was evicted"
echo "ok: the cap holds ($(metric registry_packages_proxy_evictions_total) evictions)"

# A restart keeps the cache: the newest package is served without an upstream GET.
L5=$(last_layer "$WORK/s5"); before=$(layer_gets "$UPA" "$L5")
stop_pid "$REGISTRYD_PID"
PACKAGES_LISTEN="127.0.0.1:$PP" start_registryd pk "$PORT" --module-config "$WORK/mc.yaml" \
  --host-config "$WORK/host.yaml" --users-file "$WORK/users.yaml"
wait_port "$PP" 30 || fail "the packages proxy did not listen again"
curl -sS "${A[@]}" -o "$WORK/s5b.tgz" "$P/package?digest=$(cat "$WORK/pushed.digest")&path=packages/s5"
assert_eq "sha256:$(sha "$WORK/s5b.tgz")" "$L5" "package s5 after a restart"
assert_eq "$(layer_gets "$UPA" "$L5")" "$before" "upstream GETs after a restart"
echo "ok: a restart keeps the cache"

# Its settings change at runtime: the packages proxy alone restarts, with the new cap.
sed -i 's/^packages_max_cache_bytes: .*/packages_max_cache_bytes: 2097152/' "$WORK/host.yaml"
wait_for 20 bash -c "curl -sS --cacert '$CA' -H 'Authorization: Bearer $TOKEN' '$P/metrics' |
  grep -qx 'registry_packages_proxy_cache_max_bytes 2097152'" || fail "the new cap was not applied"
grep -q "restarting it alone" "$WORK/pk.log" || fail "no restart of the packages proxy was logged"
assert_eq "$(http_status "${C[@]}" -u reader:readpw "https://127.0.0.1:$PORT/v2/")" "200" "the registry serves on"
curl -sS "${A[@]}" -o "$WORK/s5c.tgz" "$P/package?digest=$(cat "$WORK/pushed.digest")&path=packages/s5"
assert_eq "sha256:$(sha "$WORK/s5c.tgz")" "$L5" "package s5 after the packages proxy restarted"
echo "ok: a settings change restarts the packages proxy alone"
stop_pid "$REGISTRYD_PID"

# --- Local mode: packages from the cluster's own store --------------------------------------
LPORT=$(free_port); LPP=$(free_port)
module_config Local >"$WORK/mc-local.yaml"
record_mode "$WORK/lc-state" Local
PACKAGES_LISTEN="127.0.0.1:$LPP" start_registryd lc "$LPORT" --module-config "$WORK/mc-local.yaml"
wait_port "$LPP" 30 || fail "the packages proxy did not listen in Local mode"
DL=$(push "$WORK/p1" "127.0.0.1:$LPORT/system/deckhouse/packages/p1:v1" \
  --dest-tls-verify=false)
# No users file: authentication is off on the registry, but the packages front still wants a
# credential; a client certificate of the host CA is one.
openssl x509 -req -in "$WORK/client.csr" -CA "$CA" -CAkey "$WORK/lc-state/pki/ca.key" -CAcreateserial -days 1 \
  -extfile "$WORK/client.ext" -out "$WORK/lclient.crt" 2>/dev/null
curl -sS --cacert "$CA" --cert "$WORK/lclient.crt" --key "$WORK/client.key" -o "$WORK/local.tgz" \
  "https://127.0.0.1:$LPP/package?digest=$DL&path=packages/p1"
assert_eq "sha256:$(sha "$WORK/local.tgz")" "$L1" "a package from the Local store"
echo "ok: Local mode serves packages from its own store"
