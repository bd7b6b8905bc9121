#!/usr/bin/env bash
# Proxy mode with real containerd: `registryd render containerd` writes the hosts.toml the Proxy
# plugin describes (registry.d8-system.svc:5001 mirrored by https://127.0.0.1:5001, the node
# balancer, with the registry CA beside it), and `ctr images pull` of
# registry.d8-system.svc:5001/system/deckhouse:v1 through it gets the image registryd pulls
# through from the upstream, with the digest skopeo pushed there.
#
# The mirror address is fixed (127.0.0.1:5001), so the test runs in a network namespace of its
# own (unshare --net): registryd listens on 127.0.0.1:5001 there without colliding with anything
# on the machine or with tests running in parallel, and the file under test is exactly what
# the plugin described, with no rewriting.
if [ -z "${REGISTRYD_PROXY_NETNS:-}" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "FAIL: this test needs root (network namespace, containerd)" >&2; exit 1; }
  exec unshare --net env REGISTRYD_PROXY_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
source "$(dirname "$0")/lib.sh"

for tool in containerd ctr skopeo docker-registry umoci python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

NS=registryd-it

# ---------------------------------------------------------------------------------------------
UP=$(free_port)
start_docker_registry "$UP"
make_sample_image "$WORK/img"
timeout 60 skopeo copy --quiet --dest-tls-verify=false --digestfile "$WORK/pushed.digest" \
  "oci:$WORK/img:latest" "docker://127.0.0.1:$UP/deckhouse/ee:v1"
PUSHED=$(cat "$WORK/pushed.digest")

module_config Proxy "      proxy:
        imagesRepo: 127.0.0.1:$UP/deckhouse/ee
        scheme: HTTP" >"$WORK/mc.yaml"
record_mode "$WORK/px-state" Proxy "127.0.0.1:$UP/deckhouse/ee" HTTP
start_registryd px 5001 --module-config "$WORK/mc.yaml"
wait_for 20 bash -c "curl -sf --cacert '$CA' https://127.0.0.1:5001/readyz | grep -q Proxy" ||
  fail "registryd is not ready in Proxy mode"

echo "# the hosts.toml the Proxy plugin describes"
timeout 30 "$REGISTRYD" render containerd --module-config "$WORK/mc.yaml" --state-dir "$WORK/px-state" \
  --data-dir "$WORK/px-data" --plugin-dir "$REGISTRYD_PLUGIN_DIR" --out "$WORK/etc" >"$WORK/render.log" 2>&1 ||
  fail "render failed: $(cat "$WORK/render.log")"
HOST_DIR="$WORK/etc/registry.d/registry.d8-system.svc:5001"
HOSTS="$HOST_DIR/hosts.toml"
[ -f "$HOSTS" ] || fail "no hosts.toml for the fixed host: $(find "$WORK/etc" -type f)"
assert_eq "$(ls "$WORK/etc/registry.d")" "registry.d8-system.svc:5001" "host directories"
assert_contains "$(cat "$HOSTS")" '[host."https://127.0.0.1:5001"]' "hosts.toml"
CA_NAME=$(sed -n 's/^ *ca = "\(.*\)"$/\1/p' "$HOSTS")
[ -n "$CA_NAME" ] || fail "hosts.toml names no ca: $(cat "$HOSTS")"
cmp -s "$HOST_DIR/$CA_NAME" "$CA" || fail "the ca beside hosts.toml is not registryd's CA"
echo "ok: $(grep -c . "$HOSTS") lines, mirror https://127.0.0.1:5001 with the registry CA"

echo "# ctr pulls the fixed address through the mirror"
start_containerd
REF="registry.d8-system.svc:5001/system/deckhouse:v1"
ctr_ --debug images pull --snapshotter "$SNAPSHOTTER" --hosts-dir "$WORK/etc/registry.d" "$REF" \
  >"$WORK/pull.log" 2>&1 || fail "ctr pull through the Proxy's hosts.toml failed: $(tail -5 "$WORK/pull.log")"
grep -q "failed to decode hosts.toml" "$WORK/pull.log" && fail "containerd could not decode the hosts.toml"
assert_contains "$(cat "$WORK/pull.log")" "url=\"https://127.0.0.1:5001/v2/system/deckhouse/" "ctr's debug log"
GOT=$(ctr_ images ls | awk -v ref="$REF" '$1 == ref { print $3 }')
assert_eq "$GOT" "$PUSHED" "digest containerd pulled"
fetches=$(curl -sS --cacert "$CA" https://127.0.0.1:5001/metrics |
  awk '$1 == "registryd_proxy_upstream_blob_fetches_total" { print $2 }')
[ "${fetches:-0}" -ge 2 ] || fail "registryd fetched $fetches blobs upstream; the pull did not go through it"
# Without the CA the mirror's certificate is not trusted: the CA file is what makes it work.
mkdir -p "$WORK/noca/registry.d/registry.d8-system.svc:5001"
grep -v '^ *ca = ' "$HOSTS" >"$WORK/noca/registry.d/registry.d8-system.svc:5001/hosts.toml"
ctr_ images rm --sync "$REF" >/dev/null
if ctr_ images pull --snapshotter "$SNAPSHOTTER" --hosts-dir "$WORK/noca/registry.d" "$REF" >"$WORK/pull-noca.log" 2>&1; then
  fail "the pull succeeded without the registry CA: the test proves nothing"
fi
echo "ok: containerd pulled $REF ($GOT) through registryd"

echo "PASS proxy_containerd"
