#!/usr/bin/env bash
# Direct mode with STOCK containerd (1.6): `registryd render containerd` writes the Direct
# description (the fixed host registry.d8-system.svc:5001 mirrored by the master's registryd,
# with the registry CA), and `ctr images pull registry.d8-system.svc:5001/system/deckhouse:v1`
# goes through it: containerd asks registryd for system/deckhouse, registryd maps the path to
# deckhouse/ee and authenticates to the upstream docker-registry (htpasswd) itself. The pulled
# digest is the upstream's. Without credentials for registryd the pull fails: nodes
# authenticate to registryd, never to the upstream.
#
# The "master" is registryd on 127.0.0.<n>:5001 (the fixed address's port, as on a master),
# its certificate naming that address; containerd runs as root with everything under $WORK.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || fail "containerd needs root to run (this test starts its own containerd)"
for tool in containerd ctr skopeo docker-registry umoci htpasswd python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

NS=registryd-it


# --- the upstream: docker-registry with basic auth, the image at deckhouse/ee:v1 ---------------
htpasswd -Bbn upuser uppass >"$WORK/htpasswd"
up=$(free_port)
start_docker_registry "$up" "auth:
  htpasswd:
    realm: upstream-realm
    path: $WORK/htpasswd"
make_sample_image "$WORK/image"
timeout 120 skopeo copy --quiet --dest-tls-verify=false --dest-creds upuser:uppass --digestfile "$WORK/pushed.digest" \
  "oci:$WORK/image:latest" "docker://127.0.0.1:$up/deckhouse/ee:v1" || fail "skopeo push to the upstream"
want=$(cat "$WORK/pushed.digest")

# --- the master: registryd in Direct mode on <ip>:5001 ------------------------------------------
ip=""
for n in $(shuf -i 2-250 -n 20); do
  if ! (exec 3<>"/dev/tcp/127.0.0.$n/5001") 2>/dev/null; then ip="127.0.0.$n"; break; fi
done
[ -n "$ip" ] || fail "no free 127.0.0.<n>:5001"
{
  echo "users:"
  bcrypt_user reader rpass read-only
} >"$WORK/users.yaml"
module_config Direct "      direct:
        imagesRepo: 127.0.0.1:$up/deckhouse/ee
        scheme: HTTP
        username: upuser
        password: uppass" >"$WORK/mc.yaml"
host_flags=(--state-dir "$WORK/rd-state" --data-dir "$WORK/rd-data" --plugin-dir "$REGISTRYD_PLUGIN_DIR"
  --config "$WORK/mc.yaml" --node-ip "$ip" --masters "$ip")
start_bg rd 300 "$REGISTRYD" serve --listen-address "$ip:5001" --users-file "$WORK/users.yaml" \
  --config-reload-interval-seconds 1 "${host_flags[@]}"
wait_for 30 bash -c "exec 3<>/dev/tcp/$ip/5001" || fail "registryd did not listen on $ip:5001"
wait_for 20 bash -c "curl -s --cacert '$WORK/rd-state/pki/ca.crt' 'https://$ip:5001/readyz' | grep -q 'ok: Direct'"

echo "# the Direct description: the fixed host mirrored by the master, with the registry CA"
timeout 30 "$REGISTRYD" render containerd "${host_flags[@]}" --out "$WORK/etc" >"$WORK/render.log" 2>&1 ||
  fail "render failed: $(cat "$WORK/render.log")"
host_dir="$WORK/etc/registry.d/registry.d8-system.svc:5001"
hosts="$host_dir/hosts.toml"
[ -f "$hosts" ] || fail "no hosts.toml for the fixed host: $(ls -R "$WORK/etc")"
assert_contains "$(cat "$hosts")" "[host.\"https://$ip:5001\"]" "hosts.toml"
case "$(cat "$hosts")" in *rewrite*|*auth*|*127.0.0.1:$up*) fail "hosts.toml points past registryd: $(cat "$hosts")" ;; esac
ca_name=$(sed -n 's/^ *ca = "\(.*\)"$/\1/p' "$hosts")
cmp -s "$host_dir/$ca_name" "$WORK/rd-state/pki/ca.crt" || fail "the CA beside hosts.toml is not registryd's CA"
assert_eq "$(ls "$WORK/etc/registry.d")" "registry.d8-system.svc:5001" "host directories"

start_containerd
ref=registry.d8-system.svc:5001/system/deckhouse:v1

echo "# without credentials for registryd, containerd cannot pull"
if ctr_ images pull --snapshotter "$SNAPSHOTTER" --hosts-dir "$WORK/etc/registry.d" "$ref" >"$WORK/pull-anon.log" 2>&1; then
  fail "an anonymous pull through registryd succeeded: the test proves nothing"
fi
assert_contains "$(cat "$WORK/pull-anon.log")" "401" "anonymous pull"

echo "# with registryd's read-only user, stock containerd pulls the upstream's image"
ctr_ --debug images pull --snapshotter "$SNAPSHOTTER" --hosts-dir "$WORK/etc/registry.d" --user reader:rpass "$ref" \
  >"$WORK/pull.log" 2>&1 || fail "ctr pull through Direct failed: $(tail -5 "$WORK/pull.log")"
assert_contains "$(cat "$WORK/pull.log")" "msg=\"loading host directory\" dir=\"$host_dir\"" "ctr's debug log"
grep -q "failed to decode hosts.toml" "$WORK/pull.log" && fail "containerd could not decode the hosts.toml"
assert_contains "$(cat "$WORK/pull.log")" "url=\"https://$ip:5001/v2/system/deckhouse/manifests/v1" "ctr asked registryd"
got=$(ctr_ images ls | awk -v ref="$ref" '$1 == ref { print $3 }')
assert_eq "$got" "$want" "digest pulled by containerd"
grep -q "GET /v2/system/deckhouse/blobs/" "$WORK/rd.log" || fail "registryd served no blob"
grep -q "GET /v2/deckhouse/ee/blobs/" "$WORK/docker-registry-$up.log" || fail "the upstream served no blob"

echo "# containerd_build: patched: the upstream first (rewrite, auth), then the master; stock"
echo "# containerd reads neither, is refused by the upstream for system/deckhouse and goes on"
printf 'containerd_build: patched\n' >"$WORK/patched.yaml"
timeout 30 "$REGISTRYD" render containerd --host-config "$WORK/patched.yaml" "${host_flags[@]}" --out "$WORK/etc-p" \
  >"$WORK/render-p.log" 2>&1 || fail "render (patched) failed: $(cat "$WORK/render-p.log")"
hosts_p="$WORK/etc-p/registry.d/registry.d8-system.svc:5001/hosts.toml"
first_host=$(grep -m1 '^\[host\.' "$hosts_p")
assert_eq "$first_host" "[host.\"http://127.0.0.1:$up\"]" "the first mirror with the patched build"
assert_contains "$(cat "$hosts_p")" "regex = \"^system/deckhouse\"" "the rewrite"
assert_contains "$(cat "$hosts_p")" "replace = \"deckhouse/ee\"" "the rewrite"
assert_contains "$(cat "$hosts_p")" "username = \"upuser\"" "the upstream credentials"
assert_contains "$(cat "$hosts_p")" "[host.\"https://$ip:5001\"]" "the master after it"
ctr_ images rm "$ref" >/dev/null 2>&1 || true
up_before=$(wc -l <"$WORK/docker-registry-$up.log"); rd_before=$(wc -l <"$WORK/rd.log")
ctr_ images pull --snapshotter "$SNAPSHOTTER" --hosts-dir "$WORK/etc-p/registry.d" --user reader:rpass "$ref" \
  >"$WORK/pull-p.log" 2>&1 || fail "stock containerd cannot pull with the patched render: $(tail -5 "$WORK/pull-p.log")"
assert_eq "$(ctr_ images ls | awk -v ref="$ref" '$1 == ref { print $3 }')" "$want" "digest pulled with the patched render"
tail -n +"$((up_before + 1))" "$WORK/docker-registry-$up.log" | grep -q '/v2/system/deckhouse/manifests/v1' ||
  fail "containerd did not try the upstream first"
tail -n +"$((rd_before + 1))" "$WORK/rd.log" | grep -q '/v2/system/deckhouse/manifests/v1' ||
  fail "containerd did not go on to registryd"

echo "PASS direct_containerd"
