#!/usr/bin/env bash
# Direct mode against an upstream with token auth: docker-registry (`auth: token`) whose realm
# is a second registryd (/auth/token, HTTPS with its own CA). registryd in Direct mode follows
# the upstream's Bearer challenge to that realm with the section's credentials, gets a token
# for repository:deckhouse/ee:pull and streams the images through: skopeo's digests are the
# upstream's. Then the section's password is changed to a wrong one (a settings change applied
# on SIGHUP): the pull fails with 502 UNAUTHORIZED naming registryd's credentials, and the
# client gets no challenge of the upstream's.
source "$(dirname "$0")/lib.sh"

for tool in docker-registry skopeo umoci curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

# --- the token realm: a registryd of its own ------------------------------------------------------
{
  echo "users:"
  bcrypt_user upwriter wpass read-write
  bcrypt_user uppuller ppass read-only
} >"$WORK/realm-users.yaml"
rport=$(free_port)
start_registryd realm "$rport" --users-file "$WORK/realm-users.yaml"
REALM_CA=$CA
realm="https://127.0.0.1:$rport/auth/token"

# --- the upstream: docker-registry trusting the realm's tokens -------------------------------------
up=$(free_port)
start_docker_registry "$up" "auth:
  token:
    realm: $realm
    service: registryd
    issuer: registryd
    rootcertbundle: $REALM_CA"
assert_eq "$(http_status "http://127.0.0.1:$up/v2/deckhouse/ee/tags/list")" "401" "upstream without a token"
assert_contains "$(cat "$WORK/headers")" "Bearer realm=\"$realm\"" "upstream challenge"

make_sample_image "$WORK/image"
timeout 120 skopeo copy --dest-tls-verify=false --dest-creds upwriter:wpass \
  "oci:$WORK/image:latest" "docker://127.0.0.1:$up/deckhouse/ee:v1" >"$WORK/push.log" 2>&1 ||
  { cat "$WORK/push.log" >&2; fail "skopeo push to the token-auth upstream"; }
want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$WORK/image/index.json")

# --- registryd in Direct mode ----------------------------------------------------------------------
{
  echo "users:"
  bcrypt_user reader rpass read-only
} >"$WORK/users.yaml"
ca_block=$(sed 's/^/          /' "$REALM_CA")
direct_config() { # PASSWORD
  module_config Direct "      direct:
        imagesRepo: 127.0.0.1:$up/deckhouse/ee
        scheme: HTTP
        username: uppuller
        password: $1
        ca: |
$ca_block"
}
direct_config ppass >"$WORK/mc.yaml"
port=$(free_port)
start_registryd dr "$port" --config "$WORK/mc.yaml" --users-file "$WORK/users.yaml"
url="https://127.0.0.1:$port"
wait_for 20 bash -c "curl -s --cacert '$CA' '$url/readyz' | grep -q 'ok: Direct'"
mkdir -p "$WORK/certs" && cp "$CA" "$WORK/certs/ca.crt"

echo "# skopeo pulls through Direct; registryd fetched an upstream token from the realm"
timeout 120 skopeo copy --src-cert-dir "$WORK/certs" --src-creds reader:rpass \
  "docker://127.0.0.1:$port/system/deckhouse:v1" "oci:$WORK/out:v1" >"$WORK/pull.log" 2>&1 ||
  { cat "$WORK/pull.log" >&2; fail "skopeo copy through Direct with a token-auth upstream"; }
got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$WORK/out/index.json")
assert_eq "$got" "$want" "manifest digest through Direct"
# Every blob pulled is one the image has, and its bytes hash to its name.
for f in "$WORK/out/blobs/sha256"/*; do
  name=$(basename "$f")
  [ -f "$WORK/image/blobs/sha256/$name" ] || fail "blob $name is not in the pushed image"
  assert_eq "$(sha256sum <"$f" | cut -d' ' -f1)" "$name" "bytes of blob $name"
done
grep -q "token for uppuller: granted \[repository:deckhouse/ee:pull\]" "$WORK/realm.log" ||
  fail "the realm issued no pull token for deckhouse/ee to registryd: $(grep -i token "$WORK/realm.log" | tail -5)"
assert_eq "$(http_status --cacert "$CA" -u reader:rpass "$url/v2/system/deckhouse/tags/list")" "200" "tag list"
assert_contains "$(cat "$WORK/body")" '"name":"system/deckhouse"' "tag list name"

echo "# wrong upstream credentials: 502 UNAUTHORIZED about registryd's credentials, no upstream challenge"
direct_config wrong >"$WORK/mc.yaml"
kill -HUP "$REGISTRYD_PID"
wait_for 20 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --cacert '$CA' -u reader:rpass '$url/v2/system/deckhouse/manifests/v1')\" = 502 ]"
assert_eq "$(http_status --cacert "$CA" -u reader:rpass "$url/v2/system/deckhouse/manifests/v1")" "502" "wrong credentials"
assert_contains "$(cat "$WORK/body")" '"code":"UNAUTHORIZED"' "wrong credentials body"
assert_contains "$(cat "$WORK/body")" "refused registryd's credentials" "wrong credentials body"
case "$(cat "$WORK/headers")" in *"$realm"*) fail "the upstream's challenge reached the client" ;; esac
grep -q "refused registryd's credentials" "$WORK/dr.log" || fail "the refusal is not logged"

echo "PASS direct_token"
