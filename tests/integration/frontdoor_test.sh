#!/usr/bin/env bash
# The front door as clients see it: TLS chain and SANs (curl --cacert, openssl s_client),
# basic auth answers as the users file says, health, readiness and metrics, certificate and
# users reloads without a restart, and the Unmanaged mode's answer on /v2/.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
{ echo "users:"; bcrypt_user reader rpass read-only; bcrypt_user writer wpass read-write; } >"$WORK/users.yaml"
start_registryd fd "$port" --users-file "$WORK/users.yaml" --extra-server-names registry.example.test \
  --extra-server-names 192.0.2.7
url="https://127.0.0.1:$port"

echo "# the listening socket queues bursts of connections (httplib alone listens with a backlog of 5)"
backlog=$(ss -Hltn "sport = :$port" | awk '{print $3}')
assert_eq "$backlog" "1024" "listen backlog (ss Send-Q)"

echo "# TLS: AES-128-GCM first for a default client; no CBC or non-ECDHE suite with TLS 1.2"
brief=$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -brief </dev/null 2>&1 || true)
assert_contains "$brief" "Ciphersuite: TLS_AES_128_GCM_SHA256" "s_client -brief"
if timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_2 -cipher AES256-SHA </dev/null >/dev/null 2>&1; then
  fail "a TLS 1.2 handshake with AES256-SHA (CBC, RSA key exchange) succeeded"
fi
timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_2 </dev/null >"$WORK/tls12.txt" 2>&1 ||
  fail "TLS 1.2 with the default client list failed: $(tail -3 "$WORK/tls12.txt")"
assert_contains "$(cat "$WORK/tls12.txt")" "ECDHE-ECDSA-AES128-GCM-SHA256" "TLS 1.2 cipher"

echo "# TLS: the chain verifies against the host CA, with the SANs FACTS.md names"
[ -f "$CA" ] || fail "no CA at $CA"
assert_eq "$(stat -c %a "$WORK/fd-state/pki/ca.key")" "600" "ca.key mode"
assert_eq "$(stat -c %a "$WORK/fd-state/pki/tls.key")" "600" "tls.key mode"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -CAfile "$CA" -verify_return_error \
  -servername localhost -showcerts </dev/null 2>&1) || fail "s_client failed: $out"
assert_contains "$out" "Verify return code: 0 (ok)" "s_client"
echo "$out" | awk '/BEGIN CERTIFICATE/{p=1} p{print} /END CERTIFICATE/{exit}' >"$WORK/served.crt"
openssl verify -CAfile "$CA" "$WORK/served.crt" >/dev/null || fail "served certificate does not verify"
sans=$(openssl x509 -in "$WORK/served.crt" -noout -ext subjectAltName)
for want in "IP Address:127.0.0.1" "DNS:localhost" "DNS:registry.d8-system.svc" \
            "DNS:registry.example.test" "IP Address:192.0.2.7"; do
  assert_contains "$sans" "$want" "served SANs"
done
# The fixed name resolves to loopback here; curl checks the name against the SANs.
code=$(http_status --cacert "$CA" --resolve "registry.d8-system.svc:$port:127.0.0.1" \
  "https://registry.d8-system.svc:$port/healthz")
assert_eq "$code" "200" "healthz by the fixed name"
# Old protocols are refused.
if timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_1 </dev/null >/dev/null 2>&1; then
  fail "TLS 1.1 was accepted"
fi

echo "# basic auth: 401 with a challenge, 200 for users, 403 for a read-only push"
code=$(http_status --cacert "$CA" "$url/v2/")
assert_eq "$code" "401" "anonymous /v2/"
# Token auth is on whenever the host serves TLS: the challenge names the token realm, and basic
# credentials sent with the request keep working (token_auth_test.sh covers the tokens).
assert_contains "$(cat "$WORK/headers")" "WWW-Authenticate: Bearer realm=\"$url/auth/token\",service=\"registryd\"" "401 headers"
assert_contains "$(cat "$WORK/body")" '"code":"UNAUTHORIZED"' "401 body"
code=$(http_status --cacert "$CA" -u reader:wrong "$url/v2/")
assert_eq "$code" "401" "wrong password"
code=$(http_status --cacert "$CA" -u reader:rpass "$url/v2/")
assert_eq "$code" "200" "reader /v2/"
assert_contains "$(cat "$WORK/headers")" "Docker-Distribution-API-Version: registry/2.0" "/v2/ headers"
code=$(http_status --cacert "$CA" -u reader:rpass -X PUT --data-binary '{}' "$url/v2/system/deckhouse/manifests/x")
assert_eq "$code" "403" "read-only push"
assert_contains "$(cat "$WORK/body")" '"code":"DENIED"' "403 body"

echo "# Unmanaged mode says plainly that it serves nothing"
code=$(http_status --cacert "$CA" -u writer:wpass "$url/v2/system/deckhouse/manifests/latest")
assert_eq "$code" "404" "Unmanaged manifest GET"
body=$(cat "$WORK/body")
assert_contains "$body" '"code":"NAME_UNKNOWN"' "Unmanaged body"
assert_contains "$body" "Unmanaged mode" "Unmanaged body"

echo "# health, readiness, metrics"
assert_eq "$(http_status --cacert "$CA" "$url/healthz")" "200" "healthz"
assert_eq "$(http_status --cacert "$CA" "$url/readyz")" "200" "readyz"
assert_contains "$(cat "$WORK/body")" "Unmanaged" "readyz body"
http_status --cacert "$CA" "$url/metrics" >/dev/null
metrics=$(cat "$WORK/body")
assert_contains "$metrics" 'registryd_http_requests_total{code="401",method="GET"}' "metrics"
assert_contains "$metrics" 'registryd_mode_info{mode="Unmanaged"} 1' "metrics"
assert_contains "$metrics" "registryd_serving_certificate_expiry_timestamp_seconds" "metrics"

echo "# a new certificate is taken without a restart and without dropping an open connection"
python3 - "$port" "$CA" "$WORK/fd-state/pki/tls.crt" "$REGISTRYD_PID" <<'PY'
import hashlib, http.client, os, signal, ssl, sys, time
port, ca, tls_crt, pid = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
def fingerprint(conn):
    return hashlib.sha256(conn.sock.getpeercert(binary_form=True)).hexdigest()
kept = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
kept.request("GET", "/healthz"); r = kept.getresponse(); r.read(); assert r.status == 200
before = fingerprint(kept)
# Damage the serving certificate: the host must notice, re-issue and swap on its next pass.
with open(tls_crt, "w") as f: f.write("garbage\n")
os.kill(pid, signal.SIGHUP)
deadline = time.time() + 15
while True:
    fresh = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    fresh.request("GET", "/healthz"); r = fresh.getresponse(); r.read()
    after = fingerprint(fresh); fresh.close()
    if after != before: break
    if time.time() > deadline: sys.exit("certificate was not re-issued")
    time.sleep(0.2)
# The connection opened before the swap still works, with the old certificate.
kept.request("GET", "/healthz"); r = kept.getresponse(); r.read(); assert r.status == 200
assert fingerprint(kept) == before
print("certificate swapped", before[:12], "->", after[:12])
PY
kill -0 "$REGISTRYD_PID" || fail "registryd died"

echo "# the users file is reloaded; a broken one keeps the users loaded before"
{ echo "users:"; bcrypt_user reader rpass read-only; bcrypt_user writer wpass read-write; bcrypt_user late lpass read-only; } >"$WORK/users.yaml"
kill -HUP "$REGISTRYD_PID"
wait_for 10 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --cacert '$CA' -u late:lpass '$url/v2/')\" = 200 ]"
printf 'users:\n  - name: broken\n    password: plaintext\n    access: read-only\n' >"$WORK/users.yaml"
kill -HUP "$REGISTRYD_PID"
sleep 2
assert_eq "$(http_status --cacert "$CA" -u late:lpass "$url/v2/")" "200" "user kept after a bad users file"
grep -q "keeping the users loaded before" "$WORK/fd.log" || fail "bad users file not reported"

echo "PASS frontdoor"
