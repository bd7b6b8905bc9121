#!/usr/bin/env bash
# The plugin SDK from a third party's seat: install registryd to a prefix, build the example
# plugin out of tree with find_package(registryd_sdk), and have the installed host load it and
# answer through it.
source "$(dirname "$0")/lib.sh"

prefix="$WORK/prefix"
cmake --install "$REGISTRYD_BUILD_DIR" --prefix "$prefix" >"$WORK/install.log"
[ -x "$prefix/bin/registryd" ] || fail "no registryd installed"
for p in unmanaged direct proxy local packages-proxy; do
  [ -f "$prefix/$REGISTRYD_PLUGIN_INSTALL_DIR/$p.so" ] || fail "plugin $p.so not installed"
done
[ -f "$prefix/include/registryd/plugin_abi.h" ] || fail "SDK headers not installed"

# Out of tree: a copy of the example outside the source tree, nothing but the prefix to go on.
cp -r "$REGISTRYD_SOURCE_DIR/sdk/examples/hello" "$WORK/hello-src"
cmake -S "$WORK/hello-src" -B "$WORK/hello-build" -DCMAKE_PREFIX_PATH="$prefix" >"$WORK/hello-cmake.log"
cmake --build "$WORK/hello-build" >"$WORK/hello-build.log"
plugin="$WORK/hello-build/hello.so"
[ -f "$plugin" ] || fail "example plugin not built"
# It exports the entry point and nothing else, not even standard-library template instances.
exported=$(nm -D --defined-only "$plugin" | awk '$2 ~ /[TtDdBbRrVvWwUuiu]/ {print $3}' | grep -v '^$' || true)
assert_eq "$exported" "registryd_plugin_entry" "exported symbols"
for p in "$prefix/$REGISTRYD_PLUGIN_INSTALL_DIR"/*.so; do
  exported=$(nm -D --defined-only "$p" | awk '{print $3}' | grep -v '^$' || true)
  assert_eq "$exported" "registryd_plugin_entry" "symbols exported by $(basename "$p")"
done

# The installed host finds its plugins by itself (no --plugin-dir) and serves through hello.so.
"$prefix/bin/registryd" version | grep -q "unmanaged.so: Unmanaged" || fail "installed host does not find its plugins"
port=$(free_port)
start_bg hello 120 "$prefix/bin/registryd" serve --listen-address "127.0.0.1:$port" \
  --state-dir "$WORK/state" --data-dir "$WORK/data" --plugin "$plugin"
wait_port "$port" 30
ca="$WORK/state/pki/ca.crt"
code=$(http_status --cacert "$ca" "https://127.0.0.1:$port/v2/some/repo/hello")
assert_eq "$code" "200" "hello through the plugin"
assert_eq "$(cat "$WORK/body")" "hello, anonymous, from the hello plugin" "hello body"
code=$(http_status --cacert "$ca" "https://127.0.0.1:$port/v2/some/repo/manifests/latest")
assert_eq "$code" "404" "other paths"
assert_contains "$(cat "$WORK/body")" '"code":"NAME_UNKNOWN"' "404 body"
grep -q "\[Hello\] hello plugin ready" "$WORK/hello.log" || fail "plugin log line missing"
echo "PASS sdk_example"
