#!/usr/bin/env bash
# Token auth as real clients see it. registryd's realm (/auth/token) issues tokens that
# registryd itself and docker-registry (`auth: token` with registryd's CA, or its token signer
# certificate, as the root bundle) both accept; skopeo follows the Bearer challenge to the realm;
# the grant is what the account may do; a token for another scope, an expired one or a tampered
# one is refused by both. The Unmanaged mode answers NAME_UNKNOWN to every repository request,
# so on registryd a 404 with that code shows that authentication and the scope check passed.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
{
  echo "users:"
  bcrypt_user reader rpass read-only
  bcrypt_user writer wpass read-write
  bcrypt_user puller ppass mirror-puller
} >"$WORK/users.yaml"
start_registryd tk "$port" --users-file "$WORK/users.yaml"
url="https://127.0.0.1:$port"
pki="$WORK/tk-state/pki"
repo=system/deckhouse

# b64url_json PART: the JSON of one part of a compact JWS.
b64url_json() {
  python3 -c 'import base64,sys; p=sys.argv[1]; print(base64.urlsafe_b64decode(p+"="*(-len(p)%4)).decode())' "$1"
}
# claims TOKEN / header TOKEN
claims() { b64url_json "$(cut -d. -f2 <<<"$1")"; }
header() { b64url_json "$(cut -d. -f1 <<<"$1")"; }
# json_get JSON EXPR: a Python expression over the parsed JSON `j`.
json_get() { python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
# token USER:PASSWORD QUERY: a token from registryd's realm.
token() {
  local body
  body=$(curl -sS --fail --max-time 20 --cacert "$CA" -u "$1" "$url/auth/token?$2") || fail "no token for $1 ($2)"
  json_get "$body" 'j["token"]'
}
# forge KEY HEADER_JSON CLAIMS_JSON: an ES256 JWS signed with KEY by the openssl CLI, its DER
# signature turned into JOSE's r||s by hand: an implementation independent of registryd's.
forge() {
  python3 - "$@" <<'PY'
import base64, subprocess, sys
key, header, claims = sys.argv[1:4]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
signing_input = b64(header.encode()) + "." + b64(claims.encode())
der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(),
                     capture_output=True, check=True).stdout
def integer(b, i):
    assert b[i] == 2
    n = b[i + 1]
    return int.from_bytes(b[i + 2:i + 2 + n], "big"), i + 2 + n
i = 2 if der[1] < 0x80 else 3
r, i = integer(der, i)
s, _ = integer(der, i)
print(signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
PY
}
# with_claims TOKEN PYTHON_STATEMENT: the token's claims JSON after the statement changed `c`.
with_claims() {
  python3 -c 'import json,sys; c=json.loads(sys.argv[1]); exec(sys.argv[2]); print(json.dumps(c))' "$(claims "$1")" "$2"
}
# tamper TOKEN: the same token with one signature character changed.
tamper() { python3 -c 'import sys; t=sys.argv[1]; i=len(t)-5; print(t[:i]+("A" if t[i]!="A" else "B")+t[i+1:])' "$1"; }

echo "# the signing key: 0600, a certificate that chains to the CA, libtrust key id in tokens"
assert_eq "$(stat -c %a "$pki/token.key")" "600" "token.key mode"
openssl verify -CAfile "$CA" "$pki/token.crt" >/dev/null || fail "token.crt does not chain to ca.crt"
want_kid=$(openssl x509 -in "$pki/token.crt" -noout -pubkey | openssl pkey -pubin -outform DER |
  openssl dgst -sha256 -binary | head -c 30 | base32 -w0 | tr -d '=' | sed 's/..../&:/g; s/:$//')

echo "# the realm: anonymous 401, a read-only user gets pull only, a mirror puller the catalog"
assert_eq "$(http_status --cacert "$CA" "$url/auth/token?service=registryd&scope=repository:$repo:pull")" "401" "anonymous token request"
assert_contains "$(cat "$WORK/headers")" 'WWW-Authenticate: Basic realm="registryd"' "realm 401"
assert_eq "$(http_status --cacert "$CA" -u reader:wrong "$url/auth/token?service=registryd")" "401" "wrong password"
body=$(curl -sS --fail --cacert "$CA" -u reader:rpass "$url/auth/token?service=registryd&scope=repository:$repo:pull,push&scope=registry:catalog:*&account=reader")
assert_eq "$(json_get "$body" 'j["expires_in"]')" "900" "expires_in"
assert_eq "$(json_get "$body" 'j["token"] == j["access_token"]')" "True" "token == access_token"
reader_token=$(json_get "$body" 'j["token"]')
c=$(claims "$reader_token")
assert_eq "$(json_get "$c" 'j["access"]')" "[{'actions': ['pull'], 'name': 'system/deckhouse', 'type': 'repository'}]" "reader grant"
assert_eq "$(json_get "$c" 'j["iss"], j["sub"], j["aud"], j["exp"] - j["iat"], j["nbf"] == j["iat"]')" "('registryd', 'reader', 'registryd', 900, True)" "claims"
h=$(header "$reader_token")
assert_eq "$(json_get "$h" 'j["alg"], j["typ"], j["kid"]')" "('ES256', 'JWT', '$want_kid')" "header"
puller_token=$(token puller:ppass "service=registryd&scope=repository:$repo:pull,push,delete&scope=registry:catalog:*")
assert_eq "$(json_get "$(claims "$puller_token")" 'sorted((a["type"], a["actions"]) for a in j["access"])')" \
  "[('registry', ['*']), ('repository', ['pull'])]" "mirror-puller grant"

echo "# registryd: Bearer challenge, a valid token passes, push with a pull token is insufficient_scope or 403"
assert_eq "$(http_status --cacert "$CA" "$url/v2/$repo/manifests/latest")" "401" "anonymous manifest"
assert_contains "$(cat "$WORK/headers")" "WWW-Authenticate: Bearer realm=\"https://127.0.0.1:$port/auth/token\",service=\"registryd\",scope=\"repository:$repo:pull\"" "challenge"
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $reader_token" "$url/v2/")" "200" "version check with a token"
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $reader_token" "$url/v2/$repo/manifests/latest")" "404" "pull with the token"
assert_contains "$(cat "$WORK/body")" '"code":"NAME_UNKNOWN"' "Unmanaged answered, so auth passed"
# A writer's pull-only token: challenged, a new token would carry push.
writer_pull_token=$(token writer:wpass "service=registryd&scope=repository:$repo:pull")
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $writer_pull_token" -X PUT --data-binary '{}' "$url/v2/$repo/manifests/latest")" "401" "push with a writer's pull token"
assert_contains "$(cat "$WORK/headers")" "scope=\"repository:$repo:pull,push\",error=\"insufficient_scope\"" "insufficient scope challenge"
# A read-only user's token: no token would ever carry push, so 403 and why, not a challenge.
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $reader_token" -X PUT --data-binary '{}' "$url/v2/$repo/manifests/latest")" "403" "push with a read-only user's token"
assert_contains "$(cat "$WORK/body")" "user reader may not push" "the refusal names the user and the action"
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $reader_token" "$url/v2/other/manifests/latest")" "401" "another repository"
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $(tamper "$reader_token")" "$url/v2/$repo/manifests/latest")" "401" "tampered token"
assert_contains "$(cat "$WORK/headers")" 'error="invalid_token"' "tampered challenge"
now=$(date +%s)
expired=$(forge "$pki/token.key" "$h" "$(with_claims "$reader_token" "c['iat']=c['nbf']=$now-1200; c['exp']=$now-300")")
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $expired" "$url/v2/$repo/manifests/latest")" "401" "expired token"
grep -q "refused a token: expired" "$WORK/tk.log" || fail "expired token not logged"
# The forging itself is right: the same claims, fresh, signed the same way, pass.
fresh=$(forge "$pki/token.key" "$h" "$(with_claims "$reader_token" "c['iat']=c['nbf']=$now; c['exp']=$now+600")")
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $fresh" "$url/v2/$repo/manifests/latest")" "404" "forged fresh token"
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $puller_token" "$url/v2/_catalog")" "404" "catalog with a mirror token"
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $reader_token" "$url/v2/_catalog")" "401" "catalog with a reader token"
assert_eq "$(http_status --cacert "$CA" -u writer:wpass "$url/v2/$repo/manifests/latest")" "404" "basic auth still works"

echo "# skopeo follows registryd's Bearer challenge to the realm"
mkdir -p "$WORK/certs" && cp "$CA" "$WORK/certs/ca.crt"
make_sample_image "$WORK/image"
set +e
out=$(timeout 60 skopeo inspect --cert-dir "$WORK/certs" --creds reader:rpass "docker://127.0.0.1:$port/$repo:latest" 2>&1)
set -e
assert_contains "$out" "Unmanaged mode" "skopeo inspect through the token flow"
set +e
out=$(timeout 60 skopeo copy --dest-cert-dir "$WORK/certs" --dest-creds writer:wpass "oci:$WORK/image:latest" "docker://127.0.0.1:$port/$repo:v1" 2>&1)
set -e
case "$out" in *nauthorized*|*denied*) fail "skopeo push was not authorized: $out" ;; esac
grep -q "token for reader: granted \[repository:$repo:pull\]" "$WORK/tk.log" || fail "skopeo inspect did not fetch a token"
grep -q "token for writer: granted \[repository:$repo:pull,push\]" "$WORK/tk.log" || fail "skopeo copy did not fetch a push token"

echo "# docker-registry with auth: token and registryd's CA as root bundle accepts registryd's tokens"
dr=$(free_port)
start_docker_registry "$dr" "auth:
  token:
    realm: $url/auth/token
    service: registryd
    issuer: registryd
    rootcertbundle: $CA"
dr_url="http://127.0.0.1:$dr"
assert_eq "$(http_status "$dr_url/v2/$repo/tags/list")" "401" "docker-registry anonymous"
assert_contains "$(cat "$WORK/headers")" "Bearer realm=\"$url/auth/token\",service=\"registryd\"" "docker-registry challenge"
# skopeo pushes with writer's credentials, fetching tokens from registryd for docker-registry.
# Plain HTTP to docker-registry means --dest-tls-verify=false, which also covers the realm.
timeout 120 skopeo copy --dest-tls-verify=false --dest-creds writer:wpass \
  "oci:$WORK/image:latest" "docker://127.0.0.1:$dr/$repo:v1" >"$WORK/push.log" 2>&1 ||
  { cat "$WORK/push.log" >&2; fail "skopeo copy into docker-registry with registryd's tokens"; }
timeout 120 skopeo copy --src-tls-verify=false --src-creds reader:rpass \
  "docker://127.0.0.1:$dr/$repo:v1" "oci:$WORK/out:v1" >"$WORK/pull.log" 2>&1 ||
  { cat "$WORK/pull.log" >&2; fail "skopeo copy out of docker-registry with registryd's tokens"; }
want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$WORK/image/index.json")
got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$WORK/out/index.json")
assert_eq "$got" "$want" "manifest digest through docker-registry"
set +e
out=$(timeout 60 skopeo copy --dest-tls-verify=false --dest-creds reader:rpass "oci:$WORK/image:latest" "docker://127.0.0.1:$dr/$repo:v2" 2>&1); rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a read-only user pushed to docker-registry"
assert_contains "$out" "nauthorized" "read-only push refused by docker-registry"

accept='Accept: application/vnd.oci.image.manifest.v1+json'
pull_token=$(token reader:rpass "service=registryd&scope=repository:$repo:pull")
assert_eq "$(http_status -H "$accept" -H "Authorization: Bearer $pull_token" "$dr_url/v2/$repo/manifests/v1")" "200" "docker-registry accepts the token"
assert_eq "$(http_status -H "Authorization: Bearer $pull_token" "$dr_url/v2/")" "200" "docker-registry version check"
other_token=$(token reader:rpass "service=registryd&scope=repository:other/repo:pull")
assert_eq "$(http_status -H "$accept" -H "Authorization: Bearer $other_token" "$dr_url/v2/$repo/manifests/v1")" "401" "token for another scope"
assert_contains "$(cat "$WORK/headers")" 'error="insufficient_scope"' "docker-registry insufficient scope"
assert_eq "$(http_status -H "$accept" -H "Authorization: Bearer $(tamper "$pull_token")" "$dr_url/v2/$repo/manifests/v1")" "401" "tampered token at docker-registry"
assert_contains "$(cat "$WORK/headers")" 'error="invalid_token"' "docker-registry invalid token"
expired=$(forge "$pki/token.key" "$(header "$pull_token")" "$(with_claims "$pull_token" "c['iat']=c['nbf']=$now-1200; c['exp']=$now-300")")
assert_eq "$(http_status -H "$accept" -H "Authorization: Bearer $expired" "$dr_url/v2/$repo/manifests/v1")" "401" "expired token at docker-registry"
fresh=$(forge "$pki/token.key" "$(header "$pull_token")" "$(with_claims "$pull_token" "c['iat']=c['nbf']=$now; c['exp']=$now+600")")
assert_eq "$(http_status -H "$accept" -H "Authorization: Bearer $fresh" "$dr_url/v2/$repo/manifests/v1")" "200" "docker-registry, forged fresh token"
stop_pid "$DOCKER_REGISTRY_PID"

echo "# docker-registry with token.crt alone as root bundle: the x5c chain and the libtrust kid both work"
dr2=$(free_port)
start_docker_registry "$dr2" "auth:
  token:
    realm: $url/auth/token
    service: registryd
    issuer: registryd
    rootcertbundle: $pki/token.crt"
dr2_url="http://127.0.0.1:$dr2"
timeout 120 skopeo copy --dest-tls-verify=false --dest-creds writer:wpass \
  "oci:$WORK/image:latest" "docker://127.0.0.1:$dr2/$repo:v1" >"$WORK/push2.log" 2>&1 ||
  { cat "$WORK/push2.log" >&2; fail "skopeo copy with token.crt as root bundle"; }
assert_eq "$(http_status -H "$accept" -H "Authorization: Bearer $pull_token" "$dr2_url/v2/$repo/manifests/v1")" "200" "x5c token, token.crt bundle"
kid_only=$(forge "$pki/token.key" "{\"typ\":\"JWT\",\"alg\":\"ES256\",\"kid\":\"$want_kid\"}" "$(with_claims "$pull_token" "pass")")
assert_eq "$(http_status -H "$accept" -H "Authorization: Bearer $kid_only" "$dr2_url/v2/$repo/manifests/v1")" "200" "kid-only token at docker-registry"
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $kid_only" "$url/v2/$repo/manifests/latest")" "404" "kid-only token at registryd"
bad_kid=$(forge "$pki/token.key" '{"typ":"JWT","alg":"ES256","kid":"AAAA:BBBB:CCCC:DDDD:EEEE:FFFF:GGGG:HHHH:IIII:JJJJ:KKKK:LLLL"}' "$(with_claims "$pull_token" "pass")")
assert_eq "$(http_status -H "$accept" -H "Authorization: Bearer $bad_kid" "$dr2_url/v2/$repo/manifests/v1")" "401" "unknown kid at docker-registry"
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $bad_kid" "$url/v2/$repo/manifests/latest")" "401" "unknown kid at registryd"

echo "# the signing key survives a restart: tokens issued before still verify"
stop_pid "$REGISTRYD_PID"
key_before=$(sha256sum <"$pki/token.key")
start_registryd tk "$port" --users-file "$WORK/users.yaml"
assert_eq "$(sha256sum <"$pki/token.key")" "$key_before" "token.key kept"
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $pull_token" "$url/v2/$repo/manifests/latest")" "404" "old token after restart"

echo "PASS token_auth"
