#!/usr/bin/env bash
# The main job: sets up a fresh Debian 12 machine, builds registryd and runs it on
# https://127.0.0.1:5001 in Local mode, with a sample image pushed to it. Ctrl-C stops it.
#
# It goes the way an operator would: a fresh node may bootstrap only in Direct or Unmanaged
# (docs/switching.md), so the first run bootstraps in Unmanaged, then edits the ModuleConfig to
# `mode: Local` and lets the running host switch. Later runs find Local recorded in the state
# and start in it directly. State (CA, certificates, state.json) is in out/state, images in
# out/data, the ModuleConfig in out/moduleconfig.yaml. Users: examples/users.yaml.
# Arguments are passed on to `registryd serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${REGISTRYD_SKIP_INSTALL:-0}" != 1 ]; then scripts/install-deps.sh; fi
scripts/build.sh build

out=$PWD/out
mkdir -p "$out/state" "$out/data"
registryd=build/bin/registryd
ca=$out/state/pki/ca.crt
module_config() {
  printf 'apiVersion: deckhouse.io/v1alpha1\nkind: ModuleConfig\nmetadata:\n  name: deckhouse\n'
  printf 'spec:\n  version: 1\n  settings:\n    registry:\n      mode: %s\n' "$1"
}
serving() { curl -fsS --cacert "$ca" https://127.0.0.1:5001/metrics 2>/dev/null |
  grep -q "^registryd_mode_info{mode=\"$1\"} 1"; }
wait_for_mode() {
  for _ in $(seq 1 60); do serving "$1" && return 0; sleep 0.5; done
  echo "registryd did not serve $1 mode; see above" >&2; return 1
}

if grep -q '"mode": *"Local"' "$out/state/state.json" 2>/dev/null; then
  module_config Local >"$out/moduleconfig.yaml"
else
  module_config Unmanaged >"$out/moduleconfig.yaml"
fi
"$registryd" serve --listen-address 127.0.0.1:5001 --state-dir "$out/state" --data-dir "$out/data" \
  --config "$out/moduleconfig.yaml" --users-file examples/users.yaml \
  --config-reload-interval-seconds 1 "$@" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null' EXIT INT TERM

if ! grep -q 'mode: Local' "$out/moduleconfig.yaml"; then
  wait_for_mode Unmanaged
  echo "registryd: bootstrapped in Unmanaged; switching to Local by editing $out/moduleconfig.yaml"
  module_config Local >"$out/moduleconfig.yaml"
fi
wait_for_mode Local

# A sample image, made with umoci and pushed with skopeo as the read-write user.
sample=$out/sample
rm -rf "$sample" "$out/sample-rootfs"
mkdir -p "$out/sample-rootfs" "$out/certs"
cp "$ca" "$out/certs/ca.crt"
umoci init --layout "$sample" >/dev/null
umoci new --image "$sample:latest" >/dev/null
echo "registryd sample image" >"$out/sample-rootfs/hello.txt"
umoci insert --image "$sample:latest" "$out/sample-rootfs/hello.txt" /hello.txt >/dev/null
skopeo copy --quiet --dest-creds writer:writer --dest-cert-dir "$out/certs" \
  "oci:$sample:latest" docker://127.0.0.1:5001/system/deckhouse/sample:latest

cat <<MSG

registryd serves Local mode on https://127.0.0.1:5001 (CA: out/state/pki/ca.crt), with
127.0.0.1:5001/system/deckhouse/sample:latest pushed. Try:
  curl --cacert out/state/pki/ca.crt -u reader:reader https://127.0.0.1:5001/v2/system/deckhouse/sample/tags/list
  skopeo inspect --creds reader:reader --cert-dir out/certs docker://127.0.0.1:5001/system/deckhouse/sample:latest
  curl --cacert out/state/pki/ca.crt https://127.0.0.1:5001/metrics
Ctrl-C stops it.
MSG
wait "$pid"
