#!/usr/bin/env bash
# Unmanaged mode with real containerd: the hosts.toml that `registryd render containerd` writes
# for the external registry lets containerd pull an image that skopeo pushed there.
#   (a) plain HTTP docker-registry: containerd reads the hosts.toml (its debug log says so and
#       reports no decode error) although it holds the patched-only auth table, and a rewrite
#       table added to it is ignored too;
#   (b) HTTPS docker-registry with a certificate from a test CA: the pull succeeds through the
#       CA file the hosts.toml names, and fails without the hosts dir or without the CA.
# ctr 1.6 speaks plain HTTP to 127.0.0.1 on its own, so for (a) a pull without hosts.toml would
# work too: what proves the file is used there is ctr's debug log (docs/containerd.md).
# containerd runs as root with root, state and socket under $WORK; CRI is disabled, since
# `ctr images pull --hosts-dir` reads hosts.toml without it.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || fail "containerd needs root to run (this test starts its own containerd)"
for tool in containerd ctr skopeo docker-registry umoci openssl python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

NS=registryd-it

# pull REF HOSTS_DIR: pulls (and unpacks) REF reading hosts.toml files from HOSTS_DIR; --debug
# makes ctr log which host directory it loads and whether the hosts.toml decoded.
pull() {
  ctr_ --debug images pull --snapshotter "$SNAPSHOTTER" --hosts-dir "$2" "$1"
}

# assert_hosts_toml_read LOG HOST_DIR: ctr loaded HOST_DIR and decoded its hosts.toml. (On a
# decode error containerd silently falls back to Docker-style *.crt files.)
assert_hosts_toml_read() {
  assert_contains "$(cat "$1")" "msg=\"loading host directory\" dir=\"$2\"" "ctr's debug log"
  if grep -q "failed to decode hosts.toml" "$1"; then
    fail "containerd could not decode $2/hosts.toml: $(grep 'failed to decode' "$1" | head -1)"
  fi
}

# digest_of REF: the manifest digest containerd stored for REF.
digest_of() {
  ctr_ images ls | awk -v ref="$1" '$1 == ref { print $3 }'
}

# unmanaged_config FILE PORT SCHEME [EXTRA_YAML]: a ModuleConfig selecting Unmanaged mode.
unmanaged_config() {
  module_config Unmanaged "      unmanaged:
        imagesRepo: 127.0.0.1:$2/deckhouse/ce
        scheme: $3
${4:-}" >"$1"
}

# push PORT: copies the sample image to the registry on PORT; prints the pushed digest.
push_sample() {
  local port=$1
  timeout 60 skopeo copy --quiet --dest-tls-verify=false --digestfile "$WORK/pushed-$port.digest" \
    "oci:$WORK/layout:latest" "docker://127.0.0.1:$port/deckhouse/ce/sample:latest" >&2
  local inspected
  inspected=$(timeout 30 skopeo inspect --tls-verify=false "docker://127.0.0.1:$port/deckhouse/ce/sample:latest" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')
  assert_eq "$inspected" "$(cat "$WORK/pushed-$port.digest")" "skopeo inspect vs pushed digest"
  echo "$inspected"
}

make_sample_image "$WORK/layout"
start_containerd
echo "containerd up; unpacking with the $SNAPSHOTTER snapshotter"

# ---------------------------------------------------------------------------------------------
# (a) HTTP
HTTP_PORT=$(free_port)
start_docker_registry "$HTTP_PORT"
HTTP_DIGEST=$(push_sample "$HTTP_PORT")
HTTP_REF="127.0.0.1:$HTTP_PORT/deckhouse/ce/sample:latest"

# Credentials make the renderer write the patched-only [host."...".auth] table; this registry
# has no auth, so containerd never needs them, but stock containerd must still read the file.
unmanaged_config "$WORK/mc-http.yaml" "$HTTP_PORT" HTTP "        username: reader
        password: \"p\\\\a\\\"ss\""
timeout 30 "$REGISTRYD" render containerd --config "$WORK/mc-http.yaml" --out "$WORK/etc-http" \
  >"$WORK/render-http.log" 2>&1 || fail "render (HTTP) failed: $(cat "$WORK/render-http.log")"
HOSTS_HTTP="$WORK/etc-http/registry.d/127.0.0.1:$HTTP_PORT/hosts.toml"
[ -f "$HOSTS_HTTP" ] || fail "no hosts.toml at $HOSTS_HTTP"
assert_contains "$(cat "$HOSTS_HTTP")" "server = \"http://127.0.0.1:$HTTP_PORT\"" "hosts.toml (HTTP)"
assert_contains "$(cat "$HOSTS_HTTP")" "skip_verify = true" "hosts.toml (HTTP)"
assert_contains "$(cat "$HOSTS_HTTP")" "[host.\"http://127.0.0.1:$HTTP_PORT\".auth]" "hosts.toml (HTTP)"
[ "$(stat -c %a "$HOSTS_HTTP")" = 600 ] || fail "a hosts.toml with credentials must be 0600"
# Only the upstream host: Unmanaged writes nothing for the fixed address.
assert_eq "$(ls "$WORK/etc-http/registry.d")" "127.0.0.1:$HTTP_PORT" "host directories (HTTP)"

pull "$HTTP_REF" "$WORK/etc-http/registry.d" >"$WORK/pull-http.log" 2>&1 ||
  fail "ctr pull over HTTP through hosts.toml failed: $(tail -5 "$WORK/pull-http.log")"
assert_hosts_toml_read "$WORK/pull-http.log" "$WORK/etc-http/registry.d/127.0.0.1:$HTTP_PORT"
assert_contains "$(cat "$WORK/pull-http.log")" "url=\"http://127.0.0.1:$HTTP_PORT/v2/" "ctr's debug log"
assert_eq "$(digest_of "$HTTP_REF")" "$HTTP_DIGEST" "digest pulled over HTTP"
ctr_ images rm --sync "$HTTP_REF" >/dev/null

# Stock containerd ignores the patched-only rewrite table too: if it applied this one, the
# pull would ask for a repository that does not exist.
mkdir -p "$WORK/rewrite/registry.d"
cp -r "$WORK/etc-http/registry.d/127.0.0.1:$HTTP_PORT" "$WORK/rewrite/registry.d/"
cat >>"$WORK/rewrite/registry.d/127.0.0.1:$HTTP_PORT/hosts.toml" <<TOML

  [[host."http://127.0.0.1:$HTTP_PORT".rewrite]]
    regex = "^deckhouse/ce"
    replace = "does/not/exist"
TOML
pull "$HTTP_REF" "$WORK/rewrite/registry.d" >"$WORK/pull-http-rewrite.log" 2>&1 ||
  fail "stock containerd refused a hosts.toml with a rewrite table: $(tail -5 "$WORK/pull-http-rewrite.log")"
assert_hosts_toml_read "$WORK/pull-http-rewrite.log" "$WORK/rewrite/registry.d/127.0.0.1:$HTTP_PORT"
assert_eq "$(digest_of "$HTTP_REF")" "$HTTP_DIGEST" "digest pulled with a rewrite table present"
ctr_ images rm --sync "$HTTP_REF" >/dev/null
echo "ok: HTTP pull through hosts.toml ($HTTP_DIGEST)"

# ---------------------------------------------------------------------------------------------
# (b) HTTPS with a test CA
make_test_tls server

HTTPS_PORT=$(free_port)
start_docker_registry "$HTTPS_PORT" "  tls:
    certificate: $WORK/server.crt
    key: $WORK/server.key"
HTTPS_DIGEST=$(push_sample "$HTTPS_PORT")
HTTPS_REF="127.0.0.1:$HTTPS_PORT/deckhouse/ce/sample:latest"

unmanaged_config "$WORK/mc-https.yaml" "$HTTPS_PORT" HTTPS "        ca: |
$(sed 's/^/          /' "$WORK/server-ca.crt")"
timeout 30 "$REGISTRYD" render containerd --config "$WORK/mc-https.yaml" --out "$WORK/etc-https" \
  >"$WORK/render-https.log" 2>&1 || fail "render (HTTPS) failed: $(cat "$WORK/render-https.log")"
HOST_DIR_HTTPS="$WORK/etc-https/registry.d/127.0.0.1:$HTTPS_PORT"
HOSTS_HTTPS="$HOST_DIR_HTTPS/hosts.toml"
[ -f "$HOSTS_HTTPS" ] || fail "no hosts.toml at $HOSTS_HTTPS"
assert_contains "$(cat "$HOSTS_HTTPS")" "server = \"https://127.0.0.1:$HTTPS_PORT\"" "hosts.toml (HTTPS)"
case "$(cat "$HOSTS_HTTPS")" in *skip_verify*) fail "skip_verify in an HTTPS hosts.toml" ;; esac
CA_NAME=$(sed -n 's/^ *ca = "\(.*\)"$/\1/p' "$HOSTS_HTTPS")
[ -n "$CA_NAME" ] || fail "hosts.toml names no ca: $(cat "$HOSTS_HTTPS")"
[ -f "$HOST_DIR_HTTPS/$CA_NAME" ] || fail "the ca file $CA_NAME is not beside hosts.toml"
openssl x509 -in "$HOST_DIR_HTTPS/$CA_NAME" -noout -subject | grep -q "server test CA" ||
  fail "the ca file does not hold the test CA"

# Without the hosts dir the pull fails (ctr tries plain HTTP on loopback, then nothing else).
if pull "$HTTPS_REF" "$WORK/empty-hosts-dir" >"$WORK/pull-https-nohosts.log" 2>&1; then
  fail "the HTTPS pull succeeded without hosts.toml: the test proves nothing"
fi
# With a hosts.toml for HTTPS but no CA, the registry's certificate is not trusted: the CA file
# is what makes the next pull work.
unmanaged_config "$WORK/mc-https-noca.yaml" "$HTTPS_PORT" HTTPS
timeout 30 "$REGISTRYD" render containerd --config "$WORK/mc-https-noca.yaml" --out "$WORK/etc-https-noca" \
  >"$WORK/render-https-noca.log" 2>&1 || fail "render (HTTPS, no CA) failed: $(cat "$WORK/render-https-noca.log")"
if pull "$HTTPS_REF" "$WORK/etc-https-noca/registry.d" >"$WORK/pull-https-noca.log" 2>&1; then
  fail "the HTTPS pull succeeded without the CA: the test proves nothing"
fi
assert_contains "$(cat "$WORK/pull-https-noca.log")" "certificate signed by unknown authority" \
  "the pull without the CA"

pull "$HTTPS_REF" "$WORK/etc-https/registry.d" >"$WORK/pull-https.log" 2>&1 ||
  fail "ctr pull over HTTPS through hosts.toml failed: $(tail -5 "$WORK/pull-https.log")"
assert_hosts_toml_read "$WORK/pull-https.log" "$HOST_DIR_HTTPS"
assert_contains "$(cat "$WORK/pull-https.log")" "url=\"https://127.0.0.1:$HTTPS_PORT/v2/" "ctr's debug log"
assert_eq "$(digest_of "$HTTPS_REF")" "$HTTPS_DIGEST" "digest pulled over HTTPS"
ctr_ images rm --sync "$HTTPS_REF" >/dev/null

# Rendering the same config again changes nothing on disk (same inodes, same times).
before=$(find "$WORK/etc-https" -type f -printf '%P %i %T@\n' | sort)
timeout 30 "$REGISTRYD" render containerd --config "$WORK/mc-https.yaml" --out "$WORK/etc-https" \
  >"$WORK/render-again.log" 2>&1 || fail "second render failed: $(cat "$WORK/render-again.log")"
after=$(find "$WORK/etc-https" -type f -printf '%P %i %T@\n' | sort)
assert_eq "$after" "$before" "files after an identical render"

# The relative ca path resolves against the host directory, so the tree may be moved as a whole.
mv "$WORK/etc-https" "$WORK/etc-https-moved"
pull "$HTTPS_REF" "$WORK/etc-https-moved/registry.d" >"$WORK/pull-https-moved.log" 2>&1 ||
  fail "pull from a moved tree failed: $(tail -5 "$WORK/pull-https-moved.log")"
assert_eq "$(digest_of "$HTTPS_REF")" "$HTTPS_DIGEST" "digest pulled from the moved tree"
echo "ok: HTTPS pull through hosts.toml and its CA file ($HTTPS_DIGEST)"

echo "PASS"
