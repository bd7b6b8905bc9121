#!/usr/bin/env bash
# Local mode with real containerd: `registryd render containerd` for a Local ModuleConfig
# writes a hosts.toml for the fixed address registry.d8-system.svc:5001 that mirrors it to the
# node balancer (https://127.0.0.1:5001) with the registry CA beside it; with the balancer's
# port pointed at this test's registryd, `ctr images pull` of
# registry.d8-system.svc:5001/system/deckhouse/... goes through the mirror (containerd adds
# ?ns=registry.d8-system.svc:5001) and gets the digests skopeo pushed: a single image and a
# multi-arch index. Without the CA file, or with a wrong password, the pull fails.
# containerd runs as root with root, state and socket under $WORK; CRI is disabled, since
# `ctr images pull --hosts-dir` reads hosts.toml without it.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || fail "containerd needs root to run (this test starts its own containerd)"
for tool in containerd ctr skopeo umoci curl python3 htpasswd openssl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

NS=registryd-local-it
FIXED=registry.d8-system.svc:5001

digest_of() { ctr_ images ls | awk -v ref="$1" '$1 == ref { print $3 }'; }

# ---------------------------------------------------------------------------------------------
{ echo "users:"; bcrypt_user reader rpass read-only; bcrypt_user writer wpass read-write; } >"$WORK/users.yaml"
module_config Local >"$WORK/mc.yaml"
record_mode "$WORK/lo-state" Local
PORT=$(free_port)
start_registryd lo "$PORT" --config "$WORK/mc.yaml" --users-file "$WORK/users.yaml"
wait_for 20 curl -sf --cacert "$CA" -u writer:wpass "https://127.0.0.1:$PORT/v2/_catalog"
mkdir -p "$WORK/certs" && cp "$CA" "$WORK/certs/registryd-ca.crt"

echo "# push a single image and a two-platform index with skopeo"
make_sample_image "$WORK/img1"
make_sample_image "$WORK/img2"
timeout 120 skopeo copy --quiet --dest-cert-dir "$WORK/certs" --dest-creds writer:wpass \
  --digestfile "$WORK/single.digest" "oci:$WORK/img1:latest" "docker://127.0.0.1:$PORT/system/deckhouse/sample:v1"
make_multiarch_index "$WORK/multi" "$WORK/img1" "$WORK/img2"
timeout 120 skopeo copy --quiet --all --dest-cert-dir "$WORK/certs" --dest-creds writer:wpass \
  "oci:$WORK/multi:latest" "docker://127.0.0.1:$PORT/system/deckhouse/multi:v1"
SINGLE=$(cat "$WORK/single.digest")
MULTI=$(index_digest "$WORK/multi")

echo "# registryd render containerd: the fixed address mirrored to the node balancer with the CA"
timeout 30 "$REGISTRYD" render containerd --config "$WORK/mc.yaml" --out "$WORK/etc" \
  --state-dir "$WORK/lo-state" --data-dir "$WORK/lo-data" --plugin-dir "$REGISTRYD_PLUGIN_DIR" \
  >"$WORK/render.log" 2>&1 || fail "render failed: $(cat "$WORK/render.log")"
HOST_DIR="$WORK/etc/registry.d/$FIXED"
HOSTS="$HOST_DIR/hosts.toml"
[ -f "$HOSTS" ] || fail "no hosts.toml at $HOSTS: $(find "$WORK/etc" -type f)"
assert_contains "$(cat "$HOSTS")" '[host."https://127.0.0.1:5001"]' "hosts.toml mirror"
assert_contains "$(cat "$HOSTS")" 'capabilities = ["pull", "resolve"]' "hosts.toml capabilities"
CA_NAME=$(sed -n 's/^ *ca = "\(.*\)"$/\1/p' "$HOSTS")
[ -n "$CA_NAME" ] && [ -f "$HOST_DIR/$CA_NAME" ] || fail "hosts.toml names no CA file beside it: $(cat "$HOSTS")"
assert_eq "$(openssl x509 -in "$HOST_DIR/$CA_NAME" -noout -fingerprint -sha256)" \
  "$(openssl x509 -in "$CA" -noout -fingerprint -sha256)" "the CA beside hosts.toml is registryd's"

render() { timeout 30 "$REGISTRYD" render containerd --config "$WORK/mc.yaml" --state-dir "$WORK/lo-state" \
  --data-dir "$WORK/lo-data" --plugin-dir "$REGISTRYD_PLUGIN_DIR" "$@"; }
echo "# --dry-run says what it would write and writes nothing"
render --out "$WORK/etc-dry" --dry-run >"$WORK/render-dry.log" 2>&1 || fail "dry run failed: $(cat "$WORK/render-dry.log")"
grep -q "would write .*registry.d/$FIXED/hosts.toml" "$WORK/render-dry.log" || fail "dry run: $(cat "$WORK/render-dry.log")"
[ ! -e "$WORK/etc-dry/registry.d" ] || fail "a dry run wrote files"
# The node balancer listens on 127.0.0.1:5001 in a cluster; here registryd listens on $PORT, so
# the mirrors are pointed at it with --mirror-address.
render --out "$WORK/etc-here" --mirror-address "127.0.0.1:$PORT" >"$WORK/render-here.log" 2>&1 ||
  fail "render --mirror-address failed: $(cat "$WORK/render-here.log")"
assert_contains "$(cat "$WORK/etc-here/registry.d/$FIXED/hosts.toml")" "[host.\"https://127.0.0.1:$PORT\"]" "--mirror-address"
mkdir -p "$WORK/hosts"
cp -r "$WORK/etc-here/registry.d/$FIXED" "$WORK/hosts/"
mkdir -p "$WORK/hosts-noca"
cp -r "$WORK/hosts/$FIXED" "$WORK/hosts-noca/"
sed -i '/^ *ca = /d' "$WORK/hosts-noca/$FIXED/hosts.toml"

start_containerd

echo "# ctr pulls the fixed address through the mirror"
pull() { ctr_ --debug images pull --snapshotter "$SNAPSHOTTER" --hosts-dir "$2" --user "$3" "$1"; }
REF="$FIXED/system/deckhouse/sample:v1"
pull "$REF" "$WORK/hosts" reader:rpass >"$WORK/pull-single.log" 2>&1 ||
  fail "ctr pull through the Local mirror failed: $(tail -5 "$WORK/pull-single.log")"
assert_eq "$(digest_of "$REF")" "$SINGLE" "digest of the single image"
assert_contains "$(cat "$WORK/pull-single.log")" "127.0.0.1:$PORT" "ctr's debug log (the mirror)"
grep -q "ns=registry.d8-system.svc%3A5001" "$WORK/lo.log" || fail "containerd's ?ns= query did not reach registryd"
MREF="$FIXED/system/deckhouse/multi:v1"
pull "$MREF" "$WORK/hosts" reader:rpass >"$WORK/pull-multi.log" 2>&1 ||
  fail "ctr pull of the index failed: $(tail -5 "$WORK/pull-multi.log")"
assert_eq "$(digest_of "$MREF")" "$MULTI" "digest of the index"
ctr_ images rm --sync "$REF" "$MREF" >/dev/null

echo "# without the CA, or with a wrong password, the pull fails"
if pull "$REF" "$WORK/hosts-noca" reader:rpass >"$WORK/pull-noca.log" 2>&1; then
  fail "ctr pulled without the registry CA: the test proves nothing"
fi
assert_contains "$(cat "$WORK/pull-noca.log")" "certificate signed by unknown authority" "pull without the CA"
if pull "$REF" "$WORK/hosts" reader:wrong >"$WORK/pull-badpass.log" 2>&1; then
  fail "ctr pulled with a wrong password"
fi
echo "PASS local_containerd"
