#!/usr/bin/env bash
# The cluster as hosts (docs/cluster.md): 3 masters and 2 nodes, each in a network namespace of
# its own on one bridge (10.88.0.0/24), as separate machines would be.
#   masters m1-m3 (10.88.0.11-13): etcd (one 3-member cluster, TLS with client certificates)
#     and `registryd serve` in Local mode on :5001;
#   nodes n1, n2 (10.88.0.21-22): `registryd node` (joined with one-time tokens; its balancer on
#     the node's own 127.0.0.1:5001) and a real containerd.
# An image pushed through m1 (replica sync copies it to m2, m3) is fetched on both nodes by
# `ctr` through registry.d8-system.svc:5001/system/deckhouse with the hosts.toml the agent
# rendered (no credentials given to ctr: the ro header comes from hosts.toml). Then m2 is
# killed (SIGKILL) while both nodes fetch in a loop: every fetch that starts after the kill
# succeeds, and each node's balancer metrics show m2 out within 2 s, and back after a restart.
# Then `registryd apply` switches the cluster to Direct: every master serves it, every node
# renders the masters as mirrors (each with the ro header), and stock containerd fetches
# through them from an upstream docker-registry. Then on to Proxy: the nodes name their
# balancers again and fetch through them; the masters fill their caches from the upstream.
# Node certificates live 30 s here (cluster_node_certificate_seconds): each agent renews its own
# at two thirds of that (once, not on every poll), with a new key, and goes on working with it.
# Figures printed: fetches, failures, time until m2 was out.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
for tool in ip etcd etcdctl containerd ctr skopeo umoci curl openssl python3 docker-registry; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
ip netns add "rdprobe$$" 2>/dev/null || skip "network namespaces are not available here"
ip netns del "rdprobe$$"

P="rd$$"          # namespace prefix, unique per run
SW="${P}sw"
NAMES=(m1 m2 m3 n1 n2)
declare -A IP=([m1]=10.88.0.11 [m2]=10.88.0.12 [m3]=10.88.0.13 [n1]=10.88.0.21 [n2]=10.88.0.22)
cleanup_netns() {
  local pid
  for pid in "${_PIDS[@]:-}"; do [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${_PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  for n in "${NAMES[@]}" sw; do ip netns del "$P$n" 2>/dev/null || true; done
  return 0
}
trap 'rc=$?; cleanup_netns; (exit $rc); _cleanup' EXIT

ip netns add "$SW"
ip -n "$SW" link set lo up
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
for n in "${NAMES[@]}"; do
  ip netns add "$P$n"
  ip -n "$P$n" link set lo up
  ip link add "$P$n" netns "$SW" type veth peer name eth0 netns "$P$n"
  ip -n "$SW" link set "$P$n" master br0 up
  ip -n "$P$n" addr add "${IP[$n]}/24" dev eth0
  ip -n "$P$n" link set eth0 up
done
in_ns() { local n=$1; shift; ip netns exec "$P$n" "$@"; }

# --- etcd on the masters ------------------------------------------------------------------------
cd "$WORK"
make_etcd_tls 10.88.0.11 10.88.0.12 10.88.0.13
INITIAL="m1=http://10.88.0.11:2380,m2=http://10.88.0.12:2380,m3=http://10.88.0.13:2380"
for n in m1 m2 m3; do
  ip=${IP[$n]}
  start_bg "etcd-$n" 900 ip netns exec "$P$n" etcd --name "$n" --data-dir "$WORK/etcd-$n" --logger=zap \
    --listen-client-urls "https://$ip:2379" --advertise-client-urls "https://$ip:2379" \
    --listen-peer-urls "http://$ip:2380" --initial-advertise-peer-urls "http://$ip:2380" \
    --initial-cluster "$INITIAL" --initial-cluster-state new --client-cert-auth \
    --trusted-ca-file etcd-ca.crt --cert-file etcd-server.crt --key-file etcd-server.key
done
ENDPOINTS="https://10.88.0.11:2379,https://10.88.0.12:2379,https://10.88.0.13:2379"
wait_for 40 in_ns m1 etcdctl --endpoints "$ENDPOINTS" --cacert etcd-ca.crt --cert master-client.crt \
  --key master-client.key endpoint health || fail "etcd did not become healthy"

# --- the masters --------------------------------------------------------------------------------
module_config Local >"$WORK/mc.yaml"
# No masters or replica_peers: replica sync finds its peers among the masters in the store.
cat >"$WORK/host.yaml" <<YML
replica_sync_interval_seconds: 1
config_reload_interval_seconds: 1
cluster_node_certificate_seconds: 30
cluster_store: [https://10.88.0.11:2379, https://10.88.0.12:2379, https://10.88.0.13:2379]
cluster_store_ca_file: $WORK/etcd-ca.crt
cluster_store_cert_file: $WORK/master-client.crt
cluster_store_key_file: $WORK/master-client.key
YML
declare -A M_PID
start_master() { # start_master NAME [LOGNAME]
  local n=$1
  [ -f "$WORK/$n-state/state.json" ] || record_mode "$WORK/$n-state" Local
  start_bg "${2:-$n}" 900 ip netns exec "$P$n" "$REGISTRYD" serve --host-config "$WORK/host.yaml" \
    --config "$WORK/mc.yaml" --listen-address "${IP[$n]}:5001" --node-ip "${IP[$n]}" \
    --state-dir "$WORK/$n-state" --data-dir "$WORK/$n-data" --plugin-dir "$REGISTRYD_PLUGIN_DIR" \
    --packages-listen-address "${IP[$n]}:4219"
  M_PID[$n]=$LAST_PID
}
for n in m1 m2 m3; do start_master "$n"; done
for n in m1 m2 m3; do
  wait_for 30 in_ns "$n" bash -c "exec 3<>/dev/tcp/${IP[$n]}/5001" || fail "master $n did not listen"
done
CA="$WORK/m1-state/pki/ca.crt"
rcluster() { in_ns m1 "$REGISTRYD" cluster "$@" --host-config "$WORK/host.yaml"; }
RW=$(rcluster password rw)

# --- push through m1; replica sync brings it to m2 and m3 -------------------------------------
make_sample_image "$WORK/image"
mkdir -p "$WORK/certs" && cp "$CA" "$WORK/certs/ca.crt"
in_ns m1 timeout 120 skopeo copy --quiet --dest-creds "rw:$RW" --dest-cert-dir "$WORK/certs" \
  "oci:$WORK/image:latest" "docker://10.88.0.11:5001/system/deckhouse/sample:v1" || fail "push through m1"
RO=$(rcluster password ro)
replicated() {
  local n
  for n in m2 m3; do
    in_ns m1 curl -sf --max-time 5 --cacert "$CA" -u "ro:$RO" -o /dev/null \
      "https://${IP[$n]}:5001/v2/system/deckhouse/sample/manifests/v1" -H 'Accept: application/vnd.oci.image.manifest.v1+json' || return 1
  done
}
wait_for 30 replicated || fail "replica sync did not bring the image to m2 and m3"
grep -q 'replica sync: copying from 10.88.0.11:5001, 10.88.0.13:5001 ' "$WORK/m2.log" ||
  fail "m2 did not take both other masters from the store as replica peers"
echo "ok: pushed through m1, on all 3 masters"

# --- the nodes: agent and containerd each ---------------------------------------------------------
start_node() { # start_node NAME TOKEN [LOGNAME]
  local n=$1
  start_bg "${3:-agent-$n}" 900 ip netns exec "$P$n" "$REGISTRYD" node --node-name "$n" --token "$2" \
    --master https://10.88.0.11:5001 --master https://10.88.0.12:5001 --master https://10.88.0.13:5001 \
    --ca-file "$CA" --state-dir "$WORK/$n-agent" --containerd-dir "$WORK/$n-containerd" \
    --balancer-listen-address 127.0.0.1:5001 --metrics-listen-address 127.0.0.1:5003 --poll-interval-ms 1000
}
start_node_containerd() { # start_node_containerd NAME
  local n=$1 d="$WORK/$n-ctrd"
  mkdir -p "$d/root" "$d/state"
  cat >"$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[metrics]
  address = ""
# Isolated, not the default "shared": with sharing on, a fetch after "content rm" that finds the
# blob still on disk (the garbage collector has not run yet) takes it as downloaded and never
# asks the network, so a fetch through the masters would prove nothing about them.
[plugins."io.containerd.metadata.v1.bolt"]
  content_sharing_policy = "isolated"
TOML
  start_bg "containerd-$n" 900 ip netns exec "$P$n" containerd --config "$d/config.toml"
  wait_for 30 ctr --address "$d/containerd.sock" version || fail "containerd on $n did not start"
}
for n in n1 n2; do
  start_node "$n" "$(rcluster join-token)"
  start_node_containerd "$n"
done
for n in n1 n2; do
  wait_for 20 test -f "$WORK/$n-containerd/registry.d/registry.d8-system.svc:5001/hosts.toml" ||
    fail "node $n rendered no hosts.toml"
  openssl x509 -noout -serial -in "$WORK/$n-agent/node.crt" >"$WORK/$n-first-serial"
  cp "$WORK/$n-agent/node.crt" "$WORK/$n-first.crt" && cp "$WORK/$n-agent/node.key" "$WORK/$n-first.key"
  wait_for 10 in_ns "$n" bash -c "exec 3<>/dev/tcp/127.0.0.1/5001" || fail "node $n's balancer does not listen"
done
# The certificate n1 joined with, once replaced, must not buy another one. That can only be asked
# between n1's renewal (at 20 s of the certificate's 30) and the old certificate's end (after it,
# the handshake no longer names n1 and the answer is 401): a window of 10 s that the steps below
# may outlast on a busy machine. So a watcher asks as soon as n1 logs its renewal and records
# whether the old certificate was still valid when it asked; the answer is checked further down.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/stale.key" -subj /CN=n1 \
  -out "$WORK/stale.csr" 2>/dev/null
python3 -c 'import json,sys; print(json.dumps({"csr": open(sys.argv[1]).read()}))' "$WORK/stale.csr" >"$WORK/stale.json"
stale_renewal() {
  local deadline=$((SECONDS + 120)) valid=valid code
  until grep -q "renewed the node certificate" "$WORK/agent-n1.log"; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "no-renewal -" >"$WORK/stale-renewal.txt"; return; }
    sleep 0.1
  done
  code=$(in_ns n1 curl -s --max-time 5 -o /dev/null -w '%{http_code}' --cacert "$CA" --cert "$WORK/n1-first.crt" \
    --key "$WORK/n1-first.key" -X POST --data-binary @"$WORK/stale.json" https://10.88.0.11:5001/cluster/v1/node/certificate)
  # Still valid 1 s after the answer came back, so it was valid when the master read it.
  openssl x509 -noout -checkend 1 -in "$WORK/n1-first.crt" >/dev/null || valid=expired
  echo "$valid $code" >"$WORK/stale-renewal.txt"
}
stale_renewal &
_PIDS+=("$!")
grep -q 'Authorization' "$WORK/n1-containerd/registry.d/registry.d8-system.svc:5001/hosts.toml" ||
  fail "the hosts.toml has no read-only credentials header"

REF=registry.d8-system.svc:5001/system/deckhouse/sample:v1
fetch() { # fetch NODE: ctr fetches the image's content through the rendered hosts.toml
  in_ns "$1" timeout 60 ctr --address "$WORK/$1-ctrd/containerd.sock" --namespace rd content fetch \
    --hosts-dir "$WORK/$1-containerd/registry.d" "$REF" >/dev/null 2>&1
}
for n in n1 n2; do fetch "$n" || fail "node $n cannot fetch $REF through its balancer"; done
echo "ok: both nodes fetch $REF through registry.d8-system.svc:5001 with the rendered hosts.toml"

status_json() { rcluster status --json; }
nodes_ok() { status_json | python3 -c '
import json,sys
d=json.load(sys.stdin)
ok=[n for n in d["nodes"] if n.get("version") and n.get("mode")=="Local" and n["balancer"]["listening"]]
sys.exit(0 if len(ok)==2 else 1)'; }
wait_for 10 nodes_ok || fail "cluster status does not show both nodes applied: $(status_json)"

# --- kill m2 while the nodes fetch in a loop ------------------------------------------------------
up_of() { # up_of NODE MASTER_IP: the balancer's up gauge for the master
  in_ns "$1" curl -s --max-time 2 http://127.0.0.1:5003/metrics |
    awk -v b="backend=\"$2:5001\"" 'index($0, "registryd_balancer_backend_up{") == 1 && index($0, b) { print $2 }'
}
for n in n1 n2; do assert_eq "$(up_of "$n" 10.88.0.12)" "1" "m2 up on $n before the kill"; done
loop() { # loop NODE: fetches until $WORK/stop exists; one line per fetch: start-ns rc
  local n=$1
  while [ ! -f "$WORK/stop" ]; do
    local t; t=$(date +%s%N)
    if fetch "$n"; then echo "$t 0"; else echo "$t 1"; fi
    in_ns "$n" ctr --address "$WORK/$n-ctrd/containerd.sock" --namespace rd content ls -q 2>/dev/null |
      xargs -r ctr --address "$WORK/$n-ctrd/containerd.sock" --namespace rd content rm >/dev/null 2>&1 || true
  done >"$WORK/loop-$n.txt"
}
loop n1 & L1=$!
loop n2 & L2=$!
sleep 2
victim=$(pgrep -P "${M_PID[m2]}")
kill -KILL "$victim"
# "After the kill" starts when m2 is gone: a connection it accepted in its last milliseconds
# dies with it, and a fetch that started then started before the master was dead.
while kill -0 "$victim" 2>/dev/null; do sleep 0.01; done
kill_ns=$(date +%s%N)
out_ms=()
for n in n1 n2; do
  until [ "$(up_of "$n" 10.88.0.12)" = "0" ]; do
    [ $(( ($(date +%s%N) - kill_ns) / 1000000 )) -lt 5000 ] || fail "node $n still has m2 in rotation 5 s after the kill"
    sleep 0.05
  done
  out_ms+=("$n:$(( ($(date +%s%N) - kill_ns) / 1000000 ))ms")
done
sleep 5
start_master m2 m2-again
wait_for 30 in_ns m2 bash -c "exec 3<>/dev/tcp/10.88.0.12/5001" || fail "m2 did not come back"
for n in n1 n2; do
  wait_for 10 bash -c "[ \"\$(ip netns exec $P$n curl -s http://127.0.0.1:5003/metrics | grep '^registryd_balancer_backend_up{backend=\"10.88.0.12:5001\"}' | awk '{print \$2}')\" = 1 ]" ||
    fail "m2 is not back in rotation on $n"
done
sleep 2
touch "$WORK/stop"
wait "$L1" "$L2"
total=0; failed_after=0
for n in n1 n2; do
  while read -r t rc; do
    total=$((total + 1))
    if [ "$rc" != 0 ] && [ "$t" -gt "$kill_ns" ]; then failed_after=$((failed_after + 1)); fi
  done <"$WORK/loop-$n.txt"
done
echo "fetches: $total, failed after the kill: $failed_after; m2 out of rotation after: ${out_ms[*]}; back after a restart"
[ "$total" -ge 10 ] || fail "too few fetches ($total) to judge"
assert_eq "$failed_after" "0" "fetches that started after the kill and failed"

# A node's certificate opens nothing else: not the CA, not another node's assignment, not a config.
NC="$WORK/n1-agent/node.crt"; NK="$WORK/n1-agent/node.key"
assert_eq "$(in_ns n1 curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" --cert "$NC" --key "$NK" https://10.88.0.11:5001/cluster/v1/ca)" "404" "a node asking for the CA"
assert_eq "$(in_ns n1 curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" --cert "$NC" --key "$NK" -X PUT -d '{}' https://10.88.0.11:5001/cluster/v1/config)" "404" "a node writing a config"
assert_eq "$(in_ns n1 curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" --cert "$NC" --key "$NK" https://10.88.0.11:5001/v2/_catalog)" "401" "a node listing the registry"
echo "ok: a node certificate reaches only the node endpoints"

# --- Direct mode across the cluster: applied once, every master and node follows -----------------
# The upstream is a docker-registry on m1's address (port 5000), reached by every master over the
# bridge. Stock containerd on the nodes pulls registry.d8-system.svc:5001/system/deckhouse/...
# through the masters (each a mirror, with the ro header), which map the path to the upstream's.
cat >"$WORK/upstream.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/upstream
http:
  addr: 10.88.0.11:5000
YML
start_bg upstream 600 ip netns exec "${P}m1" docker-registry serve "$WORK/upstream.yml"
wait_for 20 in_ns m1 bash -c "exec 3<>/dev/tcp/10.88.0.11/5000" || fail "the upstream did not listen"
in_ns m1 timeout 120 skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/image:latest" \
  "docker://10.88.0.11:5000/deckhouse/ee/sample:v1" || fail "push to the upstream"
module_config Direct "      direct:
        imagesRepo: 10.88.0.11:5000/deckhouse/ee
        scheme: HTTP" >"$WORK/direct.yaml"
in_ns m1 "$REGISTRYD" apply --config "$WORK/direct.yaml" --host-config "$WORK/host.yaml" >"$WORK/apply-direct.out" 2>&1 ||
  fail "apply Local -> Direct: $(cat "$WORK/apply-direct.out")"
everywhere() { status_json | python3 -c '
import json,sys
mode=sys.argv[1]
d=json.load(sys.stdin)
masters=[m for m in d["masters"] if m.get("mode")==mode]
nodes=[n for n in d["nodes"] if n.get("mode")==mode and n.get("version")]
sys.exit(0 if len(masters)==3 and len(nodes)==2 else 1)' "$1"; }
wait_for 30 everywhere Direct || fail "the cluster did not all go to Direct: $(status_json)"
HOSTS_N1="$WORK/n1-containerd/registry.d/registry.d8-system.svc:5001/hosts.toml"
for ip in 10.88.0.11 10.88.0.12 10.88.0.13; do
  assert_contains "$(cat "$HOSTS_N1")" "https://$ip:5001" "the Direct hosts.toml names master $ip"
done
[ "$(grep -c 'Authorization' "$HOSTS_N1")" = 3 ] || fail "each master mirror carries the ro header: $(cat "$HOSTS_N1")"
for n in n1 n2; do
  in_ns "$n" ctr --address "$WORK/$n-ctrd/containerd.sock" --namespace rd content ls -q 2>/dev/null |
    xargs -r ctr --address "$WORK/$n-ctrd/containerd.sock" --namespace rd content rm >/dev/null 2>&1 || true
  fetch "$n" || fail "node $n cannot fetch $REF in Direct mode"
done
grep -q '"HEAD /v2/deckhouse/ee/sample/manifests/v1 .*"registryd"$' "$WORK/upstream.log" &&
  grep -q '"GET /v2/deckhouse/ee/sample/blobs/sha256:[0-9a-f]* .*"registryd"$' "$WORK/upstream.log" ||
  fail "the fetches did not reach the upstream at its own path through registryd"
echo "ok: Direct applied once; both nodes fetch $REF through the masters from the upstream"

# --- Proxy mode across the cluster: nodes pull through their balancers from the masters' caches ----
# Direct -> Proxy is a switch the rules allow. Each master becomes a pull-through cache of the
# same upstream; each node's hosts.toml names its balancer again, which spreads the fetches over
# the masters; whichever master a blob reaches first fetches it from the upstream and keeps it.
module_config Proxy "      proxy:
        imagesRepo: 10.88.0.11:5000/deckhouse/ee
        scheme: HTTP" >"$WORK/proxy.yaml"
# The nodes watch their assignment with long polls the masters hold (no worker each): both are
# parked on some master now, and they follow the switch within seconds, not at a poll's pace.
parked_polls() {
  local n
  for n in m1 m2 m3; do
    in_ns m1 curl -s --max-time 3 --cacert "$CA" "https://${IP[$n]}:5001/metrics" || true
  done | awk '$1 == "registryd_http_requests_parked" { s += $2 } END { print s + 0 }'
}
for _ in $(seq 100); do [ "$(parked_polls)" -ge 2 ] && break; sleep 0.1; done
[ "$(parked_polls)" -ge 2 ] || fail "the nodes' long polls are not parked on the masters: $(parked_polls)"
applied_at=$(date +%s%N)
in_ns m1 "$REGISTRYD" apply --config "$WORK/proxy.yaml" --host-config "$WORK/host.yaml" >"$WORK/apply-proxy.out" 2>&1 ||
  fail "apply Direct -> Proxy: $(cat "$WORK/apply-proxy.out")"
wait_for 30 everywhere Proxy || fail "the cluster did not all go to Proxy: $(status_json)"
echo "the masters and both nodes served Proxy $(( ($(date +%s%N) - applied_at) / 1000000 )) ms after apply"
for n in n1 n2; do
  hosts="$WORK/$n-containerd/registry.d/registry.d8-system.svc:5001/hosts.toml"
  assert_contains "$(cat "$hosts")" "https://127.0.0.1:5001" "node $n's Proxy hosts.toml names its balancer"
  ! grep -q "10.88.0.1[123]:5001" "$hosts" || fail "node $n's Proxy hosts.toml names masters: $(cat "$hosts")"
  wait_for 10 in_ns "$n" bash -c "exec 3<>/dev/tcp/127.0.0.1/5001" || fail "node $n's balancer does not listen in Proxy mode"
done
before=$(wc -l <"$WORK/upstream.log")
for n in n1 n2; do
  in_ns "$n" ctr --address "$WORK/$n-ctrd/containerd.sock" --namespace rd content ls -q 2>/dev/null |
    xargs -r ctr --address "$WORK/$n-ctrd/containerd.sock" --namespace rd content rm >/dev/null 2>&1 || true
  fetch "$n" || fail "node $n cannot fetch $REF in Proxy mode"
done
tail -n +"$((before + 1))" "$WORK/upstream.log" | grep -q '"GET /v2/deckhouse/ee/sample/blobs/sha256:[0-9a-f]* .*"registryd-proxy"$' ||
  fail "no master fetched a blob from the upstream in Proxy mode; the upstream's log since the switch:
$(tail -n +"$((before + 1))" "$WORK/upstream.log")
the masters' Proxy counters:
$(for n in m1 m2 m3; do in_ns m1 curl -s --max-time 3 --cacert "$CA" "https://${IP[$n]}:5001/metrics" | grep "^registryd_proxy_cache_\(hits\|misses\)_total" | sed "s/^/$n /" || true; done)"
# Every blob of the image (config and layers) is now in some master's cache.
for hex in $(python3 -c '
import json,sys
root=sys.argv[1]
index=json.load(open(root+"/index.json"))
m=json.load(open(root+"/blobs/sha256/"+index["manifests"][0]["digest"].split(":")[1]))
for d in [m["config"]]+m["layers"]: print(d["digest"].split(":")[1])' "$WORK/image"); do
  find "$WORK"/m[123]-data/proxy -type f -name "$hex" | grep -q . || fail "no master's Proxy cache holds blob $hex"
done
echo "ok: Proxy applied once; both nodes fetch $REF through their balancers, the masters cache it from the upstream"

# --- Node certificates renewed: at 20 s of their 30, with a new key; the new one works -----------
for n in n1 n2; do
  wait_for 40 grep -q "renewed the node certificate" "$WORK/agent-$n.log" ||
    fail "node $n did not renew its certificate: $(tail -5 "$WORK/agent-$n.log")"
  [ "$(openssl x509 -noout -serial -in "$WORK/$n-agent/node.crt")" != "$(cat "$WORK/$n-first-serial")" ] ||
    fail "node $n's certificate is the one it joined with"
  [ ! -e "$WORK/$n-agent/node.crt.new" ] && [ ! -e "$WORK/$n-agent/node.key.new" ] || fail "node $n left a .new file"
  openssl x509 -noout -checkend 5 -in "$WORK/$n-agent/node.crt" >/dev/null || fail "node $n's new certificate ends within 5 s"
  # Renewed once per two thirds of a life, not on every poll (each renewal is logged).
  renewals=$(grep -c "renewed the node certificate" "$WORK/agent-$n.log")
  joined_for=$(( $(date +%s) - $(stat -c %Y "$WORK/$n-first-serial") ))
  [ "$renewals" -le $(( joined_for / 20 + 1 )) ] || fail "node $n renewed $renewals times in $joined_for s"
  cmp -s "$WORK/$n-agent/cluster-ca.crt" "$CA" || fail "node $n does not keep the cluster CA the masters sent"
  assert_eq "$(in_ns "$n" curl -s -o /dev/null -w '%{http_code}' --cacert "$CA" --cert "$WORK/$n-agent/node.crt" \
    --key "$WORK/$n-agent/node.key" https://10.88.0.11:5001/cluster/v1/node)" "200" "node $n's renewed certificate on a master"
done
grep -q "cluster: node n1 renewed its certificate from 10.88.0.21" "$WORK"/m*.log ||
  fail "no master logged n1's renewal"
# The certificate n1 joined with was replaced: it cannot buy another one (asked by the watcher).
wait_for 20 test -s "$WORK/stale-renewal.txt" || fail "the watcher never asked for a renewal with n1's first certificate"
read -r stale_valid stale_code <"$WORK/stale-renewal.txt"
[ "$stale_valid" = valid ] ||
  fail "n1's first certificate was $stale_valid when the watcher asked (answer $stale_code): the replaced-certificate case went unchecked"
assert_eq "$stale_code" "403" "a renewal with a certificate the node replaced"
echo "ok: both nodes renewed their certificates with new keys and use them; a replaced certificate renews nothing"
