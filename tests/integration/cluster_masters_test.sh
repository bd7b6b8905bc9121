#!/usr/bin/env bash
# Three masters of one cluster on loopback (docs/cluster.md): a real 3-member etcd cluster on
# 127.0.0.1, .2 and .3 with TLS client certificates, and on each address a registryd in Local
# mode with --cluster-store naming all three members. The masters start at the same moment.
#   - exactly one creates the cluster's CA, token signer and accounts; all three serve a
#     certificate from that one CA with their own IP in the SANs (openssl s_client verifies);
#   - the generated accounts work on every master; an image skopeo pushed with rw is pulled
#     back with ro; a token one master issued is accepted by another;
#   - a user added with `registryd cluster set-user` works on every master within seconds;
#   - `registryd cluster status` lists the masters; one killed with SIGKILL leaves the list
#     when its lease runs out (10 s), one stopped with SIGTERM at once; a restarted one is back
#     with the same CA;
#   - one etcd member killed: status, user changes and the masters' users carry on;
#   - a master that cannot reach the store, or has no client certificate, refuses to start
#     and says why.
source "$(dirname "$0")/lib.sh"

for tool in etcd etcdctl skopeo umoci curl openssl python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install etcd-server etcd-client ...)"
done

# --- etcd: a CA, a serving certificate for the three addresses, a client certificate -------
cd "$WORK"
make_etcd_tls 127.0.0.1 127.0.0.2 127.0.0.3

CP=$(free_port)   # etcd client port, the same on each address
PP=$(free_port)   # etcd peer port
RP=$(free_port)   # registryd's port, the same on each master, as 5001 is in a cluster
INITIAL="e1=http://127.0.0.1:$PP,e2=http://127.0.0.2:$PP,e3=http://127.0.0.3:$PP"
ENDPOINTS="https://127.0.0.1:$CP,https://127.0.0.2:$CP,https://127.0.0.3:$CP"
declare -A ETCD_PID
start_etcd() { # start_etcd N
  local n=$1 ip=127.0.0.$1
  start_bg "etcd$n" 600 etcd --name "e$n" --data-dir "$WORK/etcd$n" --logger=zap \
    --listen-client-urls "https://$ip:$CP" --advertise-client-urls "https://$ip:$CP" \
    --listen-peer-urls "http://$ip:$PP" --initial-advertise-peer-urls "http://$ip:$PP" \
    --initial-cluster "$INITIAL" --initial-cluster-state new --initial-cluster-token registryd-test \
    --client-cert-auth --trusted-ca-file etcd-ca.crt --cert-file etcd-server.crt --key-file etcd-server.key
  ETCD_PID[$n]=$LAST_PID
}
for n in 1 2 3; do start_etcd "$n"; done
ectl() { etcdctl --endpoints "$ENDPOINTS" --cacert etcd-ca.crt --cert master-client.crt --key master-client.key "$@"; }
wait_for 30 ectl endpoint health || fail "the etcd cluster did not become healthy"

# --- three masters, started together ----------------------------------------------------------
module_config Local >"$WORK/mc.yaml"
cat >"$WORK/host.yaml" <<YML
masters: [127.0.0.1, 127.0.0.2, 127.0.0.3]
replica_peers: []
cluster_store: [https://127.0.0.1:$CP, https://127.0.0.2:$CP, https://127.0.0.3:$CP]
cluster_store_ca_file: $WORK/etcd-ca.crt
cluster_store_cert_file: $WORK/master-client.crt
cluster_store_key_file: $WORK/master-client.key
config_reload_interval_seconds: 1
YML
declare -A M_PID
start_master() { # start_master N [LOGNAME]
  local n=$1
  [ -f "$WORK/m$n-state/state.json" ] || record_mode "$WORK/m$n-state" Local
  start_bg "${2:-m$n}" 600 "$REGISTRYD" serve --host-config "$WORK/host.yaml" --config "$WORK/mc.yaml" \
    --listen-address "127.0.0.$n:$RP" --node-ip "127.0.0.$n" --state-dir "$WORK/m$n-state" \
    --data-dir "$WORK/m$n-data" --plugin-dir "$REGISTRYD_PLUGIN_DIR" --packages-listen-address "127.0.0.$n:0"
  M_PID[$n]=$LAST_PID
}
for n in 1 2 3; do start_master "$n"; done
for n in 1 2 3; do
  wait_serving "$WORK/m$n-state" "${M_PID[$n]}" 30 || fail "master $n did not start"
done

created=$(grep -l "created the cluster's CA" "$WORK"/m[123].log | wc -l)
assert_eq "$created" "1" "masters that created the cluster's secrets"
CA="$WORK/m1-state/pki/ca.crt"
for n in 2 3; do cmp -s "$CA" "$WORK/m$n-state/pki/ca.crt" || fail "master $n has a CA of its own"; done
for n in 1 2 3; do
  out=$(echo | openssl s_client -connect "127.0.0.$n:$RP" -CAfile "$CA" -verify_return_error \
    -verify_ip "127.0.0.$n" 2>&1) || fail "master $n: TLS with the cluster CA and its IP failed: $out"
  assert_contains "$out" "Verify return code: 0 (ok)" "master $n TLS"
done
echo "ok: 3 masters started together, one cluster CA, each serves its own IP"

rcluster() { "$REGISTRYD" cluster "$@" --host-config "$WORK/host.yaml"; }
RO=$(rcluster password ro)
RW=$(rcluster password rw)
assert_eq "${#RO}" "16" "ro's password length"
for n in 1 2 3; do
  assert_eq "$(http_status --cacert "$CA" -u "ro:$RO" "https://127.0.0.$n:$RP/v2/")" "200" "ro on master $n"
  assert_eq "$(http_status --cacert "$CA" -u "ro:wrong-password" "https://127.0.0.$n:$RP/v2/")" "401" "a wrong password on master $n"
done
make_sample_image "$WORK/image"
mkdir -p "$WORK/certs" && cp "$CA" "$WORK/certs/ca.crt"
timeout 120 skopeo copy --quiet --dest-creds "rw:$RW" --dest-cert-dir "$WORK/certs" \
  "oci:$WORK/image:latest" "docker://127.0.0.1:$RP/system/deckhouse/sample:v1" || fail "push with rw"
timeout 60 skopeo inspect --creds "ro:$RO" --cert-dir "$WORK/certs" \
  "docker://127.0.0.1:$RP/system/deckhouse/sample:v1" >/dev/null || fail "pull with ro"
assert_eq "$(http_status --cacert "$CA" -u "ro:$RO" -X DELETE "https://127.0.0.1:$RP/v2/system/deckhouse/sample/manifests/v1")" \
  "403" "ro deleting"
token=$(curl -sS --fail --cacert "$CA" -u "ro:$RO" \
  "https://127.0.0.1:$RP/auth/token?service=registryd&scope=repository:system/deckhouse/sample:pull" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') || fail "no token from master 1"
assert_eq "$(http_status --cacert "$CA" -H "Authorization: Bearer $token" "https://127.0.0.3:$RP/v2/")" "200" \
  "master 1's token on master 3"
echo "ok: generated accounts work on every master; push, pull, and a token across masters"

# --- a user changed anywhere works everywhere within seconds ----------------------------------
echo "alice-password-1" | rcluster set-user alice --access read-write >/dev/null || fail "set-user"
start=$(date +%s%N)
for n in 1 2 3; do
  wait_for 15 curl -sf --cacert "$CA" -u alice:alice-password-1 "https://127.0.0.$n:$RP/v2/" ||
    fail "alice does not work on master $n"
done
echo "ok: a new user works on all 3 masters after $(( ($(date +%s%N) - start) / 1000000 )) ms"

masters_listed() { rcluster status --json | python3 -c 'import json,sys; print(" ".join(sorted(m["nodeIP"]+"/"+m["mode"] for m in json.load(sys.stdin)["masters"])))'; }
# wait_masters SECONDS EXPECTED: until `cluster status` lists exactly EXPECTED.
wait_masters() {
  local deadline=$((SECONDS + $1))
  until [ "$(masters_listed)" = "$2" ]; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
wait_masters 10 '127.0.0.1/Local 127.0.0.2/Local 127.0.0.3/Local' ||
  fail "status does not list 3 Local masters: $(masters_listed)"
rcluster status | grep -q "127.0.0.2:$RP" || fail "the status table lacks master 2"

# --- registryd apply: checked against every master's state, then taken by all -----------------
apply_rc() { # apply_rc FILE: runs `registryd apply`, output in $WORK/apply.out; prints the exit code
  set +e
  "$REGISTRYD" apply --config "$1" --host-config "$WORK/host.yaml" >"$WORK/apply.out" 2>&1
  echo $?
  set -e
}
module_config Proxy "      proxy:
        imagesRepo: 127.0.0.1:1/deckhouse/ee
        scheme: HTTP" >"$WORK/proxy.yaml"
assert_eq "$(apply_rc "$WORK/proxy.yaml")" "1" "apply Local -> Proxy"
assert_contains "$(cat "$WORK/apply.out")" "switch through Direct or Unmanaged" "the refusal"
assert_contains "$(cat "$WORK/apply.out")" "nothing was stored" "the refusal"
[ -z "$(ectl get /registryd/v1/config --print-value-only)" ] || fail "a refused config was stored"
module_config Direct "      direct:
        imagesRepo: 127.0.0.1:1/deckhouse/ee
        scheme: HTTQ" >"$WORK/bad.yaml"
assert_eq "$(apply_rc "$WORK/bad.yaml")" "2" "apply an invalid config"
assert_contains "$(cat "$WORK/apply.out")" "registry.direct.scheme" "the invalid field's path"
UP=$(free_port)
start_docker_registry "$UP"
module_config Direct "      direct:
        imagesRepo: 127.0.0.1:$UP/deckhouse/ee
        scheme: HTTP" >"$WORK/direct.yaml"
assert_eq "$(apply_rc "$WORK/direct.yaml")" "0" "apply Local -> Direct: $(cat "$WORK/apply.out")"
start=$(date +%s%N)
wait_masters 20 '127.0.0.1/Direct 127.0.0.2/Direct 127.0.0.3/Direct' ||
  fail "the masters did not all switch to Direct: $(masters_listed)"
echo "ok: apply refused Local -> Proxy (exit 1) and a bad field (exit 2); Direct reached all 3 masters in $(( ($(date +%s%N) - start) / 1000000 )) ms"
timeout 120 skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/image:latest" "docker://127.0.0.1:$UP/deckhouse/ee/sample:v2" ||
  fail "push to the upstream"
for n in 1 2 3; do
  timeout 60 skopeo inspect --creds "ro:$RO" --cert-dir "$WORK/certs" \
    "docker://127.0.0.$n:$RP/system/deckhouse/sample:v2" >/dev/null || fail "pull through master $n in Direct"
done
echo "ok: every master serves the upstream's image in Direct mode"
states_published() { [ "$(ectl get --prefix /registryd/v1/state/ --keys-only | grep -c state/)" = 3 ]; }
wait_for 10 states_published ||
  fail "not every master published its state"

# --- masters going away and coming back -------------------------------------------------------
# start_bg runs each program under timeout(1): SIGKILL goes to the program itself.
kill -KILL "$(pgrep -P "${M_PID[2]}")"
start=$SECONDS
wait_masters 20 '127.0.0.1/Direct 127.0.0.3/Direct' ||
  fail "a killed master stays listed: $(masters_listed)"
echo "ok: a master killed with SIGKILL left the list after $((SECONDS - start)) s (lease 10 s)"
start_master 2 m2-again
wait_serving "$WORK/m2-state" "${M_PID[2]}" 30 || fail "master 2 did not come back"
cmp -s "$CA" "$WORK/m2-state/pki/ca.crt" || fail "master 2 came back with another CA"
wait_masters 10 '127.0.0.1/Direct 127.0.0.2/Direct 127.0.0.3/Direct' ||
  fail "the restarted master is not listed: $(masters_listed)"
stop_pid "${M_PID[3]}"
[ "$(masters_listed)" = "127.0.0.1/Direct 127.0.0.2/Direct" ] || fail "a stopped master stays listed: $(masters_listed)"
echo "ok: restarted master back with the same CA; a stopped master left at once"

# --- one etcd member lost ---------------------------------------------------------------------
kill -KILL "$(pgrep -P "${ETCD_PID[1]}")"
out=$(echo "bob-password-1" | rcluster set-user bob --access read-only 2>&1) || fail "set-user with an etcd member down: $out"
for n in 1 2; do
  wait_for 20 curl -sf --cacert "$CA" -u bob:bob-password-1 "https://127.0.0.$n:$RP/v2/" ||
    fail "bob does not reach master $n with etcd member 1 down"
done
echo "ok: with one etcd member killed, users still change and reach the masters"

# --- refusals ---------------------------------------------------------------------------------
record_mode "$WORK/bad-state" Local
set +e
out=$(timeout 60 "$REGISTRYD" serve --config "$WORK/mc.yaml" --listen-address "127.0.0.1:$(free_port)" \
  --state-dir "$WORK/bad-state" --data-dir "$WORK/bad-data" --plugin-dir "$REGISTRYD_PLUGIN_DIR" \
  --packages-listen-address 127.0.0.1:0 --cluster-store "https://127.0.0.1:$(free_port)" \
  --cluster-store-ca-file "$WORK/etcd-ca.crt" 2>&1)
rc=$?
set -e
assert_eq "$rc" "1" "serve with an unreachable store"
assert_contains "$out" "no etcd endpoint answered" "an unreachable store"
set +e
out=$(timeout 60 "$REGISTRYD" serve --config "$WORK/mc.yaml" --listen-address "127.0.0.1:$(free_port)" \
  --state-dir "$WORK/bad-state" --data-dir "$WORK/bad-data" --plugin-dir "$REGISTRYD_PLUGIN_DIR" \
  --packages-listen-address 127.0.0.1:0 --cluster-store "https://127.0.0.2:$CP" --cluster-store-ca-file "$WORK/etcd-ca.crt" 2>&1)
rc=$?
set -e
assert_eq "$rc" "1" "serve without a client certificate"
assert_contains "$out" "cannot join" "no client certificate"
echo "ok: a master that cannot use the store refuses to start and says why"
