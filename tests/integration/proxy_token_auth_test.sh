#!/usr/bin/env bash
# Proxy mode in front of an upstream that wants bearer tokens: docker-registry with
# `auth: token`, whose token server is a second registryd (its realm /auth/token, its users,
# its CA as root bundle). The Proxy registryd holds a read-only user's credentials in its
# section (and that registryd's CA as `ca`, since the realm is HTTPS); it follows the upstream's
# challenge to the realm and pulls through. skopeo copies out of the Proxy with the digests
# pushed upstream; the token server logs the grant the Proxy got; without the credentials the
# pull fails with a clear error.
source "$(dirname "$0")/lib.sh"

for tool in docker-registry skopeo umoci htpasswd curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

layout_digest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$1/index.json"; }

# ---------------------------------------------------------------------------------------------
# The token server: registryd (Unmanaged mode; only its realm matters here).
TK=$(free_port)
{
  echo "users:"
  bcrypt_user reader rpass read-only
  bcrypt_user writer wpass read-write
} >"$WORK/users.yaml"
start_registryd tk "$TK" --users-file "$WORK/users.yaml"
TK_CA=$CA
TK_URL="https://127.0.0.1:$TK"

# The upstream: docker-registry accepting that server's tokens.
UP=$(free_port)
start_docker_registry "$UP" "auth:
  token:
    realm: $TK_URL/auth/token
    service: registryd
    issuer: registryd
    rootcertbundle: $TK_CA"
assert_eq "$(http_status "http://127.0.0.1:$UP/v2/deckhouse/ee/tags/list")" "401" "anonymous upstream"
assert_contains "$(cat "$WORK/headers")" "Bearer realm=\"$TK_URL/auth/token\"" "upstream challenge"
for i in 1 2; do make_sample_image "$WORK/img$i"; done
push() {  # LAYOUT REPO:TAG -> the pushed digest; skopeo gets a token for writer from the realm
  timeout 120 skopeo copy --quiet --dest-tls-verify=false --dest-creds writer:wpass \
    --digestfile "$WORK/pushed.digest" "oci:$1:latest" "docker://127.0.0.1:$UP/$2" >&2
  cat "$WORK/pushed.digest"
}
D1=$(push "$WORK/img1" deckhouse/ee:v1)
D2=$(push "$WORK/img2" deckhouse/ee/install:v2)

# ---------------------------------------------------------------------------------------------
# The Proxy, with the read-only user's credentials and the token server's CA in its section.
PORT=$(free_port)
module_config Proxy "      proxy:
        imagesRepo: 127.0.0.1:$UP/deckhouse/ee
        scheme: HTTP
        username: reader
        password: rpass
        ca: |
$(sed 's/^/          /' "$TK_CA")" >"$WORK/mc.yaml"
record_mode "$WORK/px-state" Proxy "127.0.0.1:$UP/deckhouse/ee" HTTP
start_registryd px "$PORT" --module-config "$WORK/mc.yaml"
PX_CA=$CA
wait_for 20 bash -c "curl -sf --cacert '$PX_CA' https://127.0.0.1:$PORT/readyz | grep -q Proxy" ||
  fail "registryd is not ready in Proxy mode"
mkdir -p "$WORK/certs" && cp "$PX_CA" "$WORK/certs/ca.crt"

echo "# skopeo copy through the Proxy, which follows the upstream's bearer challenge"
timeout 120 skopeo copy --quiet --src-cert-dir "$WORK/certs" "docker://127.0.0.1:$PORT/system/deckhouse:v1" \
  "oci:$WORK/out1:x" || fail "skopeo copy system/deckhouse:v1 through the Proxy"
assert_eq "$(layout_digest "$WORK/out1")" "$D1" "system/deckhouse:v1 digest"
timeout 120 skopeo copy --quiet --src-cert-dir "$WORK/certs" "docker://127.0.0.1:$PORT/system/deckhouse/install:v2" \
  "oci:$WORK/out2:x" || fail "skopeo copy system/deckhouse/install:v2 through the Proxy"
assert_eq "$(layout_digest "$WORK/out2")" "$D2" "system/deckhouse/install:v2 digest"
grep -q "token for reader: granted \[repository:deckhouse/ee:pull\]" "$WORK/tk.log" ||
  fail "the token server granted the Proxy nothing for deckhouse/ee: $(grep 'token for' "$WORK/tk.log" | tail -3)"
grep -q "token for reader: granted \[repository:deckhouse/ee/install:pull\]" "$WORK/tk.log" ||
  fail "the token server granted the Proxy nothing for deckhouse/ee/install"
echo "ok: digests identical through the token flow"

echo "# without the credentials the Proxy cannot fetch, and says why"
stop_pid "$REGISTRYD_PID"
PORT2=$(free_port)
module_config Proxy "      proxy:
        imagesRepo: 127.0.0.1:$UP/deckhouse/ee
        scheme: HTTP
        ca: |
$(sed 's/^/          /' "$TK_CA")" >"$WORK/mc-anon.yaml"
record_mode "$WORK/anon-state" Proxy "127.0.0.1:$UP/deckhouse/ee" HTTP
start_registryd anon "$PORT2" --module-config "$WORK/mc-anon.yaml"
wait_for 20 bash -c "curl -sf --cacert '$CA' https://127.0.0.1:$PORT2/readyz | grep -q Proxy" ||
  fail "the anonymous Proxy is not ready"
status=$(http_status --cacert "$CA" "https://127.0.0.1:$PORT2/v2/system/deckhouse/manifests/v1")
assert_eq "$status" "503" "an anonymous Proxy's pull"
assert_contains "$(cat "$WORK/body")" "refused registryd's credentials" "the error"
echo "ok: 503 UNAVAILABLE: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["errors"][0]["message"])' "$WORK/body")"

echo "PASS proxy_token_auth"
