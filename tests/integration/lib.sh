# Shared helpers for the integration tests. Source it first thing:
#   source "$(dirname "$0")/lib.sh"
# It makes a scratch directory ($WORK), stops every process started with `start_bg` by its own
# pid when the script exits, and offers small helpers for ports, waiting and assertions.
set -euo pipefail

: "${REGISTRYD:?REGISTRYD must name the registryd binary (ctest sets it)}"
: "${REGISTRYD_PLUGIN_DIR:?REGISTRYD_PLUGIN_DIR must name the plugin directory (ctest sets it)}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/registryd-it.XXXXXX")
_PIDS=()

_cleanup() {
  local rc=$?
  local pid
  for pid in "${_PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${_PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ]; then
    echo "--- test failed (exit $rc); logs in $WORK:" >&2
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 40 "$f" >&2; }; done
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap _cleanup EXIT

# start_bg NAME SECONDS CMD...: runs CMD in the background for at most SECONDS, output in
# $WORK/NAME.log; sets LAST_PID to its pid (which is stopped at exit).
start_bg() {
  local name=$1 secs=$2; shift 2
  timeout --signal=TERM --kill-after=5 "$secs" "$@" >"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  _PIDS+=("$LAST_PID")
}

# stop_pid PID: stops one process started with start_bg, now.
stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for SECONDS CMD...: retries CMD every 0.1 s until it succeeds or time runs out.
wait_for() {
  local secs=$1; shift
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "timed out after ${secs}s waiting for: $*" >&2; return 1; fi
    sleep 0.1
  done
}

# wait_port PORT [SECONDS]: waits until something listens on 127.0.0.1:PORT.
wait_port() { wait_for "${2:-20}" bash -c "exec 3<>/dev/tcp/127.0.0.1/$1"; }

# wait_serving STATE_DIR PID [SECONDS]: waits until the `registryd serve` that start_bg started
# as PID has finished starting: it then writes STATE_DIR/serve-status.json with its own pid, a
# child of PID (timeout). A port that answers is not proof: another test running at the same
# time may listen on the same port number, and a state dir may hold an earlier run's file.
wait_serving() {
  local dir=$1 parent=$2 secs=${3:-30} pid
  local deadline=$((SECONDS + secs))
  for (( ; ; )); do
    pid=$(sed -n 's/^ *"pid": *\([0-9]*\).*/\1/p' "$dir/serve-status.json" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null)" = "$parent" ]; then return 0; fi
    if ! kill -0 "$parent" 2>/dev/null; then echo "process $parent ended before it served" >&2; return 1; fi
    if [ "$SECONDS" -ge "$deadline" ]; then echo "timed out after ${secs}s waiting for $dir to serve" >&2; return 1; fi
    sleep 0.1
  done
}

fail() { echo "FAIL: $*" >&2; exit 1; }
# skip WHY: ends the test as skipped (exit 77, which ctest reports as "Skipped", never "Passed").
skip() { echo "SKIP: $*" >&2; exit 77; }
assert_eq() { [ "$1" = "$2" ] || fail "${3:-values differ}: expected '$2', got '$1'"; }
assert_contains() { case "$1" in *"$2"*) ;; *) fail "${3:-text} does not contain '$2': $1" ;; esac; }

# start_docker_registry PORT: runs docker-registry (the reference) on 127.0.0.1:PORT with its
# storage under $WORK; extra YAML (auth, say) may be given as $2. Sets DOCKER_REGISTRY_PID.
start_docker_registry() {
  local port=$1 extra=${2:-}
  mkdir -p "$WORK/docker-registry-$port"
  cat >"$WORK/docker-registry-$port.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/docker-registry-$port
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$extra
YML
  start_bg "docker-registry-$port" 600 docker-registry serve "$WORK/docker-registry-$port.yml"
  DOCKER_REGISTRY_PID=$LAST_PID
  wait_port "$port"
}

# make_sample_image DIR: builds a small OCI image layout in DIR (tag "latest") with umoci.
make_sample_image() {
  local dir=$1
  umoci init --layout "$dir" >/dev/null
  umoci new --image "$dir:latest" >/dev/null
  mkdir -p "$WORK/rootfs-src"
  echo "registryd sample $(date +%s%N)" >"$WORK/rootfs-src/hello.txt"
  umoci insert --image "$dir:latest" "$WORK/rootfs-src/hello.txt" /hello.txt >/dev/null
}

# make_test_tls NAME: a test CA ($WORK/NAME-ca.crt, .key) and a server certificate it signed
# for 127.0.0.1 and localhost ($WORK/NAME.crt, $WORK/NAME.key), EC P-256, valid one day.
make_test_tls() {
  local n=$1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=$n test CA" -keyout "$WORK/$n-ca.key" -out "$WORK/$n-ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$WORK/$n.key" -out "$WORK/$n.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$WORK/$n.ext"
  openssl x509 -req -in "$WORK/$n.csr" -CA "$WORK/$n-ca.crt" -CAkey "$WORK/$n-ca.key" -CAcreateserial \
    -days 1 -extfile "$WORK/$n.ext" -out "$WORK/$n.crt" 2>/dev/null
}

# make_etcd_tls IP...: for an etcd cluster with --client-cert-auth, in $WORK: a CA
# (etcd-ca.crt), etcd's serving certificate for the given IPs (etcd-server.crt/.key) and a
# client certificate for the masters (master-client.crt/.key), EC P-256, valid one day.
make_etcd_tls() {
  local sans="" ip
  for ip in "$@"; do sans="${sans:+$sans,}IP:$ip"; done
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=etcd-ca \
    -keyout "$WORK/etcd-ca.key" -out "$WORK/etcd-ca.crt" 2>/dev/null
  _etcd_issue() { # _etcd_issue NAME EXTENSIONS
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
      -keyout "$WORK/$1.key" -out "$WORK/$1.csr" 2>/dev/null
    printf '%b' "$2" >"$WORK/$1.ext"
    openssl x509 -req -in "$WORK/$1.csr" -CA "$WORK/etcd-ca.crt" -CAkey "$WORK/etcd-ca.key" -CAcreateserial \
      -days 1 -extfile "$WORK/$1.ext" -out "$WORK/$1.crt" 2>/dev/null
  }
  _etcd_issue etcd-server "subjectAltName=$sans\nextendedKeyUsage=serverAuth,clientAuth\n"
  _etcd_issue master-client 'extendedKeyUsage=clientAuth\n'
}

# make_sized_image DIR KIB: like make_sample_image, with a last layer of about KIB KiB of
# random (incompressible) bytes.
make_sized_image() {
  local dir=$1 kib=$2
  make_sample_image "$dir"
  mkdir -p "$WORK/rootfs-big"
  head -c "$((kib * 1024))" /dev/urandom >"$WORK/rootfs-big/payload.bin"
  umoci insert --image "$dir:latest" "$WORK/rootfs-big/payload.bin" /payload.bin >/dev/null
}

# last_layer LAYOUT: the digest of the last layer of the image an OCI layout's tag "latest"
# names (what the packages proxy serves for it).
last_layer() {
  python3 - "$1" <<'PY'
import json, sys
layout = sys.argv[1]
desc = json.load(open(layout + "/index.json"))["manifests"][0]
m = json.load(open(layout + "/blobs/" + desc["digest"].replace(":", "/")))
print(m["layers"][-1]["digest"])
PY
}

# start_registryd NAME PORT ARGS...: runs `registryd serve` on 127.0.0.1:PORT with its state in
# $WORK/NAME-state and waits until it listens. Sets REGISTRYD_PID and CA (the CA file).
start_registryd() {
  local name=$1 port=$2; shift 2
  start_bg "$name" 300 "$REGISTRYD" serve --listen-address "127.0.0.1:$port" \
    --state-dir "$WORK/$name-state" --data-dir "$WORK/$name-data" \
    --plugin-dir "$REGISTRYD_PLUGIN_DIR" --config-reload-interval-seconds 1 \
    --packages-listen-address "${PACKAGES_LISTEN:-127.0.0.1:0}" "$@"
  REGISTRYD_PID=$LAST_PID
  CA="$WORK/$name-state/pki/ca.crt"
  wait_serving "$WORK/$name-state" "$REGISTRYD_PID" 30 || { cat "$WORK/$name.log" >&2; fail "registryd did not serve on $port"; }
}

# http_status ARGS...: curl's HTTP status code for a request (body to $WORK/body, headers to
# $WORK/headers).
http_status() {
  curl -sS -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' --max-time 20 "$@"
}

# bcrypt_user NAME PASSWORD ACCESS: a users-file entry, hashed by the real htpasswd.
bcrypt_user() {
  local hash
  hash=$(htpasswd -nbBC 5 "$1" "$2" | cut -d: -f2-)
  printf '  - name: %s\n    password: "%s"\n    access: %s\n' "$1" "$hash" "$3"
}

# module_config MODE [SECTION_YAML]: prints the operator's ModuleConfig selecting MODE, with
# SECTION_YAML (indented as under `registry:`, e.g. "      proxy:\n        imagesRepo: ...").
module_config() {
  cat <<YML
apiVersion: deckhouse.io/v1alpha1
kind: ModuleConfig
metadata:
  name: deckhouse
spec:
  version: 1
  settings:
    registry:
      mode: $1
${2:-}
YML
}

# --- containerd, alone in $WORK ---------------------------------------------------------------
# start_containerd: starts a containerd (as root) with its root, state and socket under $WORK
# and sets SNAPSHOTTER to what pulls unpack into: overlayfs where the kernel lets us mount it
# here, else native (some sandboxes refuse overlay mounts inside overlay file systems). CRI is
# off: `ctr images pull --hosts-dir` reads hosts.toml without it; "opt" would write to
# /opt/containerd, tracing wants a collector. ctr_ talks to it in namespace $NS.
start_containerd() {
  mkdir -p "$WORK/containerd-root" "$WORK/containerd-state"
  cat >"$WORK/containerd.toml" <<TOML
version = 2
root = "$WORK/containerd-root"
state = "$WORK/containerd-state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$WORK/containerd.sock"

[ttrpc]
  address = "$WORK/containerd.sock.ttrpc"

[debug]
  level = "info"

[metrics]
  address = ""
TOML
  start_bg containerd 240 containerd --config "$WORK/containerd.toml"
  wait_for 30 ctr --address "$WORK/containerd.sock" version
  SNAPSHOTTER=native
  if ctr_ plugins ls 2>/dev/null | grep -E 'io.containerd.snapshotter.v1 +overlayfs .* ok' >/dev/null; then
    SNAPSHOTTER=overlayfs
  fi
}
ctr_() { timeout 90 ctr --address "$WORK/containerd.sock" --namespace "${NS:-registryd-it}" "$@"; }

# record_mode STATE_DIR MODE [IMAGES_REPO SCHEME]: makes a fresh state dir look like a node that
# already runs MODE (state.json in its documented format, docs/switching.md). A fresh node may
# only bootstrap into Direct or Unmanaged, and these tests want Local or Proxy serving, not a
# staged switch. IMAGES_REPO and SCHEME fill the mode's section (Proxy).
record_mode() {
  mkdir -p "$1" && chmod 700 "$1"
  python3 - "$@" <<'PY'
import json, os, sys
d, mode = sys.argv[1:3]
config = {"mode": mode}
if len(sys.argv) > 3:
    config[mode.lower()] = {"imagesRepo": sys.argv[3], "scheme": sys.argv[4]}
state = {"version": 1, "mode": mode, "legacy": False, "bootstrapFinished": True,
         "config": config, "appliedAt": "2025-01-01T00:00:00Z", "conditions": []}
path = os.path.join(d, "state.json")
with open(path, "w") as f:
    json.dump(state, f)
os.chmod(path, 0o600)
PY
}

# index_digest LAYOUT: the digest of the first manifest an OCI image layout's index.json names.
index_digest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$1/index.json"; }

# make_multiarch_index OUT AMD64_LAYOUT ARM64_LAYOUT: an OCI image layout at OUT whose tag
# "latest" is an image index over the first image of each layout (amd64, arm64), their blobs
# copied in. skopeo pushes it with --all.
make_multiarch_index() {
  python3 - "$@" <<'PY'
import hashlib, json, os, shutil, sys
out, layouts = sys.argv[1], sys.argv[2:]
os.makedirs(out + "/blobs/sha256", exist_ok=True)
open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
entries = []
for layout, arch in zip(layouts, ["amd64", "arm64"]):
    for name in os.listdir(layout + "/blobs/sha256"):
        shutil.copy(layout + "/blobs/sha256/" + name, out + "/blobs/sha256/" + name)
    desc = json.load(open(layout + "/index.json"))["manifests"][0]
    entries.append({"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"],
                    "platform": {"architecture": arch, "os": "linux"}})
index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": entries}).encode()
digest = hashlib.sha256(index).hexdigest()
open(out + "/blobs/sha256/" + digest, "wb").write(index)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
           "digest": "sha256:" + digest, "size": len(index),
           "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, open(out + "/index.json", "w"))
PY
}
