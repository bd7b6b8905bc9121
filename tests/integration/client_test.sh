#!/usr/bin/env bash
# The upstream client (sdk/oci, registryd/oci/client/) against the real docker-registry, driven
# through client_probe: plain HTTP; htpasswd basic auth (and a license as the password of
# license-token); TLS with a CA made here (verified with it, refused without it); bearer tokens
# from registryd's own realm (/auth/token) that docker-registry trusts; an upstream that is
# stopped or never answers fails fast with a clear error.
source "$(dirname "$0")/lib.sh"

PROBE="$REGISTRYD_BUILD_DIR/bin/client_probe"
[ -x "$PROBE" ] || fail "client_probe is not built: $PROBE"

# probe ARGS...: runs client_probe (bounded), stdout to $WORK/out, stderr to $WORK/err; returns
# its exit code without stopping the script.
probe() {
  local rc=0
  timeout 60 "$PROBE" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  return "$rc"
}
# probe_ok ARGS...: client_probe must succeed; prints its stdout.
probe_ok() { probe "$@" || fail "client_probe $* failed: $(cat "$WORK/err")"; cat "$WORK/out"; }
# probe_fails WHAT ARGS...: client_probe must exit 1; prints its stderr.
probe_fails() {
  local what=$1 rc=0; shift
  probe "$@" || rc=$?
  [ "$rc" -eq 1 ] || fail "$what: expected exit 1, got $rc: $(cat "$WORK/out") $(cat "$WORK/err")"
  cat "$WORK/err"
}
sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

make_sample_image "$WORK/image"
head -c $((5 * 1024 * 1024 + 123)) /dev/urandom >"$WORK/big.bin"
big=$(sha "$WORK/big.bin")

# seed PORT REPO:TAG [SKOPEO ARGS...]: skopeo pushes the sample image.
seed() {
  local port=$1 ref=$2; shift 2
  timeout 120 skopeo copy --dest-tls-verify=false "$@" "oci:$WORK/image:latest" \
    "docker://127.0.0.1:$port/$ref" >"$WORK/seed.log" 2>&1 || { cat "$WORK/seed.log" >&2; fail "skopeo copy to $port/$ref"; }
}
# The sample's manifest digest and first layer, as skopeo reads them back.
inspect() {
  local port=$1 ref=$2; shift 2
  timeout 60 skopeo inspect --raw --tls-verify=false "$@" "docker://127.0.0.1:$port/$ref" >"$WORK/raw-manifest.json"
  manifest=$(sha "$WORK/raw-manifest.json")
  layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][0]["digest"])' "$WORK/raw-manifest.json")
}

echo "# (a) plain HTTP, no auth"
p=$(free_port)
start_docker_registry "$p"
plain_pid=$DOCKER_REGISTRY_PID
seed "$p" lib/sample:v1
inspect "$p" lib/sample:v1
r="127.0.0.1:$p"
assert_eq "$(probe_ok --http "$r" ping)" "ok" "ping"
read -r mt dg size <<<"$(probe_ok --http "$r" head-manifest lib/sample v1)"
assert_eq "$dg" "$manifest" "HEAD manifest digest"
assert_eq "$mt" "application/vnd.oci.image.manifest.v1+json" "HEAD manifest media type"
assert_eq "$size" "$(stat -c %s "$WORK/raw-manifest.json")" "HEAD manifest size"
assert_eq "$(probe_ok --http "$r" get-manifest lib/sample "$manifest" "$WORK/m.json")" "$manifest" "GET manifest by digest"
assert_eq "$(sha "$WORK/m.json")" "$manifest" "manifest bytes"
probe_ok --http "$r" get-blob lib/sample "$layer" "$WORK/layer" >/dev/null
assert_eq "$(sha "$WORK/layer")" "$layer" "layer bytes"

# Uploads stream from a file: POST + monolithic PUT, then read back.
assert_eq "$(probe_ok --http "$r" push-blob lib/big "$WORK/big.bin")" "$big" "push-blob digest"
assert_eq "$(probe_ok --http "$r" get-blob lib/big "$big" "$WORK/big.back")" "$(stat -c %s "$WORK/big.bin")" "get-blob size"
cmp -s "$WORK/big.bin" "$WORK/big.back" || fail "the blob read back differs"
assert_eq "$(http_status -I "http://$r/v2/lib/big/blobs/$big")" "200" "docker-registry has the pushed blob"
assert_eq "$(probe_ok --http "$r" mount lib/other "$big" lib/big)" "mounted" "cross-repository mount"
assert_eq "$(probe_ok --http "$r" mount lib/third "$big" lib/missing)" "not mounted" "mount from a repository without it"
assert_eq "$(probe_ok --http "$r" push-manifest lib/sample v2 application/vnd.oci.image.manifest.v1+json "$WORK/m.json")" \
  "$manifest" "push-manifest digest"
assert_eq "$(http_status -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$r/v2/lib/sample/manifests/v2")" "200" "pushed tag"
# Pages of one follow the Link header to the end.
assert_eq "$(probe_ok --http "$r" tags lib/sample 1 | tr '\n' ' ')" "v1 v2 " "tags, one a page"
assert_eq "$(probe_ok --http "$r" catalog 1 | tr '\n' ' ')" "lib/big lib/other lib/sample " "catalog, one a page"
# Concurrent reads on one client object: all verified.
assert_eq "$(probe_ok --http "$r" parallel-get-blob lib/big "$big" 8)" "8 ok" "8 concurrent blob reads"
# The upstream's errors come through with its codes.
err=$(probe_fails "unknown tag" --http "$r" head-manifest lib/sample nope)
assert_contains "$err" "error: http 404 MANIFEST_UNKNOWN" "unknown tag"
err=$(probe_fails "unknown manifest GET" --http "$r" get-manifest lib/sample nope "$WORK/x")
assert_contains "$err" "http 404 MANIFEST_UNKNOWN: manifest unknown" "docker-registry's own message"
err=$(probe_fails "unknown blob" --http "$r" get-blob lib/sample "sha256:$(printf '%064d' 0)" "$WORK/x")
assert_contains "$err" "http 404 BLOB_UNKNOWN" "unknown blob"
# The settings section a plugin gets builds the same client.
printf '{"imagesRepo": "%s/lib", "scheme": "HTTP"}' "$r" >"$WORK/section.json"
assert_eq "$(probe_ok --section "$WORK/section.json" ping)" "ok" "ping from a settings section"

echo "# (b) htpasswd basic auth, and a license"
{ htpasswd -Bbn user secret; htpasswd -Bbn license-token LICENSE-KEY; } >"$WORK/htpasswd"
pb=$(free_port)
start_docker_registry "$pb" "auth:
  htpasswd:
    realm: basic-realm
    path: $WORK/htpasswd"
seed "$pb" lib/sample:v1 --dest-creds user:secret
rb="127.0.0.1:$pb"
assert_eq "$(probe_ok --http --user user --password secret "$rb" head-manifest lib/sample v1 | cut -d' ' -f2)" "$manifest" "HEAD with basic auth"
probe_ok --http --user user --password secret "$rb" get-blob lib/sample "$layer" "$WORK/layer-b" >/dev/null
assert_eq "$(sha "$WORK/layer-b")" "$layer" "layer over basic auth"
err=$(probe_fails "anonymous" --http "$rb" head-manifest lib/sample v1)
assert_contains "$err" "http 401 UNAUTHORIZED" "anonymous refused"
assert_contains "$err" "no credentials are configured" "anonymous message"
err=$(probe_fails "wrong password" --http --user user --password wrong "$rb" ping)
assert_contains "$err" "http 401 UNAUTHORIZED" "wrong password refused"
printf '{"imagesRepo": "%s/lib", "scheme": "HTTP", "license": "LICENSE-KEY"}' "$rb" >"$WORK/section-license.json"
assert_eq "$(probe_ok --section "$WORK/section-license.json" head-manifest lib/sample v1 | cut -d' ' -f2)" "$manifest" "license as license-token"

echo "# (c) TLS with a CA made here"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=client test CA" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$WORK/tls.key" -out "$WORK/tls.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$WORK/san.ext"
openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial -days 2 \
  -extfile "$WORK/san.ext" -out "$WORK/tls.crt" 2>/dev/null
pt=$(free_port)
start_docker_registry "$pt" "  tls:
    certificate: $WORK/tls.crt
    key: $WORK/tls.key"
seed "$pt" lib/sample:v1
rt="127.0.0.1:$pt"
assert_eq "$(probe_ok --ca "$WORK/ca.crt" "$rt" head-manifest lib/sample v1 | cut -d' ' -f2)" "$manifest" "HEAD over TLS with the CA"
probe_ok --ca "$WORK/ca.crt" "$rt" get-blob lib/sample "$layer" "$WORK/layer-t" >/dev/null
assert_eq "$(sha "$WORK/layer-t")" "$layer" "layer over TLS"
err=$(probe_fails "TLS without the CA" "$rt" ping)
assert_contains "$err" "error: tls" "TLS without the CA"
assert_contains "$err" "did not verify" "TLS failure message"
# By name: the certificate names localhost too.
assert_eq "$(probe_ok --ca "$WORK/ca.crt" "localhost:$pt" ping)" "ok" "TLS by host name"
# HTTP to a TLS port is not mistaken for an answer.
probe_fails "HTTP to a TLS port" --http "$rt" ping >/dev/null
# The CA as the ModuleConfig gives it: PEM text in the section.
python3 -c 'import json,sys; print(json.dumps({"imagesRepo": sys.argv[1] + "/lib", "ca": open(sys.argv[2]).read()}))' \
  "$rt" "$WORK/ca.crt" >"$WORK/section-tls.json"
assert_eq "$(probe_ok --section "$WORK/section-tls.json" ping)" "ok" "CA from a settings section"

echo "# (d) bearer tokens from registryd's realm, which docker-registry trusts"
rp=$(free_port)
{
  echo "users:"
  bcrypt_user writer wpass read-write
  bcrypt_user reader rpass read-only
} >"$WORK/users.yaml"
start_registryd realm "$rp" --users-file "$WORK/users.yaml"
realm="https://127.0.0.1:$rp/auth/token"
pk=$(free_port)
start_docker_registry "$pk" "auth:
  token:
    realm: $realm
    service: registryd
    issuer: registryd
    rootcertbundle: $CA"
seed "$pk" system/deckhouse:v1 --dest-creds writer:wpass
rk="127.0.0.1:$pk"
# The realm is HTTPS with registryd's CA: the configured CA applies to the realm too.
assert_eq "$(probe_ok --http --ca "$CA" --user reader --password rpass "$rk" head-manifest system/deckhouse v1 | cut -d' ' -f2)" \
  "$manifest" "HEAD with a bearer token"
probe_ok --http --ca "$CA" --user reader --password rpass "$rk" get-blob system/deckhouse "$layer" "$WORK/layer-k" >/dev/null
assert_eq "$(sha "$WORK/layer-k")" "$layer" "layer with a bearer token"
assert_eq "$(probe_ok --http --ca "$CA" --user writer --password wpass "$rk" push-blob system/deckhouse "$WORK/big.bin")" \
  "$big" "push with a read-write token"
assert_eq "$(probe_ok --http --ca "$CA" --user writer --password wpass "$rk" tags system/deckhouse | tr '\n' ' ')" "v1 " "tags with a token"
# A read-only account gets a pull-only grant: docker-registry refuses the push.
err=$(probe_fails "push with a read-only token" --http --ca "$CA" --user reader --password rpass "$rk" push-blob system/deckhouse "$WORK/layer-k")
assert_contains "$err" "http 401 UNAUTHORIZED" "read-only push"
err=$(probe_fails "wrong password at the realm" --http --ca "$CA" --user reader --password nope "$rk" ping)
assert_contains "$err" "http 401 UNAUTHORIZED: the token realm 127.0.0.1:$rp/auth/token refused user reader" "realm refusal"
err=$(probe_fails "anonymous at the realm" --http --ca "$CA" "$rk" head-manifest system/deckhouse v1)
assert_contains "$err" "refused anonymous access" "anonymous realm refusal"
# The realm's TLS is verified: without registryd's CA no token can be had.
err=$(probe_fails "realm without its CA" --http --user reader --password rpass "$rk" ping)
assert_contains "$err" "error: tls" "realm TLS"
assert_contains "$err" "token realm" "realm TLS message"

echo "# (e) an upstream that is stopped or never answers fails fast and says why"
stop_pid "$plain_pid"
start=$(date +%s%N)
err=$(probe_fails "stopped upstream" --http "$r" head-manifest lib/sample v1)
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
assert_contains "$err" "error: connect 0 UNAVAILABLE: cannot connect to $r" "stopped upstream"
[ "$elapsed_ms" -lt 1000 ] || fail "a stopped upstream took ${elapsed_ms} ms to fail"
# A listener that accepts and then says nothing: the read timeout ends the wait.
silent=$(free_port)
start_bg silent 60 python3 -c 'import socket,time,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
conns=[]
while True:
    c,_=s.accept(); conns.append(c)' "$silent"
wait_port "$silent"
start=$(date +%s%N)
err=$(probe_fails "silent upstream" --http --read-timeout-ms 700 "127.0.0.1:$silent" ping)
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
assert_contains "$err" "error: timeout 0 UNAVAILABLE: 127.0.0.1:$silent sent nothing for 0.700 s" "silent upstream"
[ "$elapsed_ms" -lt 2000 ] || fail "a silent upstream took ${elapsed_ms} ms to fail"

echo "PASS"
