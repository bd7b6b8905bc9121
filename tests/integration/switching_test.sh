#!/usr/bin/env bash
# Switching rules at runtime and in `registryd check`: an allowed switch is applied without a
# restart and persisted; a forbidden one is refused with its rule while the running mode keeps
# serving; an invalid config is refused with its field paths. The mode plugins for Direct and
# Proxy are not built yet, so `serve --plugin` puts the echo test plugin behind every mode:
# what is tested here is the host's side (rules, state, reload), not a mode.
source "$(dirname "$0")/lib.sh"

echo_plugin="$REGISTRYD_BUILD_DIR/tests/fixtures/plugins/echo.so"
[ -f "$echo_plugin" ] || fail "missing $echo_plugin"

direct_section='      direct:
        imagesRepo: registry.example.com/deckhouse/ee
        license: secret-license'
proxy_section='      proxy:
        imagesRepo: registry.example.com/deckhouse/ee
        ttl: 72h'

echo "# registryd check, from the persisted mode or --from"
module_config Proxy "$proxy_section" >"$WORK/proxy.yaml"
module_config Local >"$WORK/local.yaml"
set +e
out=$("$REGISTRYD" check --config "$WORK/proxy.yaml" --from Local 2>&1); rc=$?
set -e
assert_eq "$rc" "1" "check Local -> Proxy exit code"
assert_contains "$out" "mode transition from Local to Proxy is not supported: switch through Direct or Unmanaged" "check output"
"$REGISTRYD" check --config "$WORK/proxy.yaml" --from Direct >/dev/null || fail "Direct -> Proxy should be allowed"
set +e
out=$("$REGISTRYD" check --config "$WORK/local.yaml" --state-dir "$WORK/fresh" 2>&1); rc=$?
set -e
assert_eq "$rc" "1" "bootstrap into Local exit code"
printf 'apiVersion: deckhouse.io/v1alpha1\nkind: ModuleConfig\nmetadata: {name: deckhouse}\nspec:\n  version: 1\n  settings:\n    registry:\n      mode: Proxy\n      proxy:\n        imagesRepo: "bad repo!"\n        ttl: 2m\n' >"$WORK/bad.yaml"
set +e
out=$("$REGISTRYD" check --config "$WORK/bad.yaml" --from Direct 2>&1); rc=$?
set -e
assert_eq "$rc" "2" "invalid config exit code"
assert_contains "$out" "spec.settings.registry.proxy.imagesRepo" "invalid config output"
assert_contains "$out" "spec.settings.registry.proxy.ttl" "invalid config output"

echo "# config dump: effective settings, defaults filled, secrets hidden"
module_config Direct "$direct_section" >"$WORK/dump-mc.yaml"
printf 'gc_interval_seconds: 10m\n' >"$WORK/dump-host.yaml"
dump=$("$REGISTRYD" config dump --host-config "$WORK/dump-host.yaml" --config "$WORK/dump-mc.yaml" --state-dir "$WORK/dumped")
assert_contains "$dump" "gc_interval_seconds: 600" "a duration with units, in seconds"
assert_contains "$dump" "http_idle_timeout_seconds: 60" "a default filled in"
assert_contains "$dump" "state_dir: $WORK/dumped" "a flag over the file"
assert_contains "$dump" "license: (hidden)" "the license hidden"
case "$dump" in *secret-license*) fail "config dump printed the license";; esac
[ "$("$REGISTRYD" config dump --json --config "$WORK/dump-mc.yaml" | python3 -c 'import json,sys; print(json.load(sys.stdin)["moduleConfig"]["spec.settings.registry"]["mode"])')" = Direct ] ||
  fail "config dump --json"

echo "# the CLI: --version, an unknown command named with the one meant"
assert_contains "$("$REGISTRYD" --version)" "registryd " "--version"
set +e
out=$("$REGISTRYD" stauts 2>&1); rc=$?
set -e
assert_eq "$rc" "2" "unknown command exit code"
assert_contains "$out" "unknown command 'stauts'; did you mean 'status'?" "unknown command"
assert_contains "$("$REGISTRYD" gc --help)" "Exit codes:" "every --help states the exit codes"
gc_help=$("$REGISTRYD" gc --help)
assert_contains "$gc_help" "--data-dir" "gc shows the flags it uses"
case "$gc_help" in *--listen-address*|*--cluster-store*) fail "gc --help shows flags gc does not use";; esac
case "$("$REGISTRYD" status --help)" in *--data-dir*|*--users-file*) fail "status --help shows flags status does not use";; esac
echo "# shell completion and the man page come from the command definitions"
"$REGISTRYD" completion bash >"$WORK/completion.bash"
words=$(bash -c 'source "$1"; COMP_WORDS=(registryd mirror ""); COMP_CWORD=2; _registryd; echo "${COMPREPLY[*]}"' _ "$WORK/completion.bash")
for w in pull push verify; do assert_contains "$words" "$w" "completion of registryd mirror"; done
words=$(bash -c 'source "$1"; COMP_WORDS=(registryd mirror pull SRC B --ta); COMP_CWORD=5; _registryd; echo "${COMPREPLY[*]}"' _ "$WORK/completion.bash")
assert_eq "$words" "--tags" "completion of a flag after positionals"
man_page=$("$REGISTRYD" man)
assert_contains "$man_page" ".TH REGISTRYD 1" "man page header"
assert_contains "$man_page" ".SS registryd mirror verify" "man page lists mirror verify"
assert_contains "$man_page" "\fB\-\-releases\fR" "man page lists a flag"
if command -v groff >/dev/null; then
  groff -man -Tutf8 -ww <<<"$man_page" >/dev/null 2>"$WORK/groff.err" || fail "groff refused the man page"
  [ ! -s "$WORK/groff.err" ] || fail "groff warned: $(head -3 "$WORK/groff.err")"
fi

echo "# serve: bootstrap in Direct"
module_config Direct "$direct_section" >"$WORK/mc.yaml"
port=$(free_port)
start_registryd sw "$port" --config "$WORK/mc.yaml" --plugin "$echo_plugin"
url="https://127.0.0.1:$port"
mode_metric() { curl -s --cacert "$CA" "$url/metrics" | grep '^registryd_mode_info{mode=.*} 1' ; }
assert_contains "$(mode_metric)" 'mode="Direct"' "mode after bootstrap"
assert_contains "$("$REGISTRYD" status --state-dir "$WORK/sw-state")" "mode: Direct" "status"

echo "# a forbidden switch (Direct -> legacy Unmanaged) is refused; Direct keeps serving"
module_config Unmanaged >"$WORK/mc.yaml"
kill -HUP "$REGISTRYD_PID"
wait_for 10 grep -q "switch refused: mode transition from Direct to Unmanaged (legacy)" "$WORK/sw.log"
assert_contains "$(mode_metric)" 'mode="Direct"' "mode after refusal"
assert_eq "$(http_status --cacert "$CA" "$url/v2/system/deckhouse/manifests/latest")" "200" "serving after refusal"
assert_contains "$("$REGISTRYD" status --state-dir "$WORK/sw-state")" "mode: Direct" "state after refusal"
# The status tells the truth: what is wanted, what serves, and the rule that keeps them apart.
wait_for 10 bash -c "'$REGISTRYD' status --state-dir '$WORK/sw-state' | grep -q '^applied: no'"
st=$("$REGISTRYD" status --state-dir "$WORK/sw-state")
SERVER_PID=$(pgrep -P "$REGISTRYD_PID")  # start_bg runs registryd under timeout(1)
assert_contains "$st" "server: running, pid $SERVER_PID," "status names the running server"
assert_contains "$st" "wanted: Unmanaged" "status: the wanted mode"
assert_contains "$st" "serving: Direct" "status: the mode serving"
assert_contains "$st" "applied: no: switch refused: mode transition from Direct to Unmanaged (legacy)" "status: why"
assert_eq "$("$REGISTRYD" status --json --state-dir "$WORK/sw-state" | python3 -c 'import json,sys; s=json.load(sys.stdin)["server"]; print(s["running"], s["applied"], s["wantedMode"], s["servingMode"])')" \
  "True False Unmanaged Direct" "status --json"
assert_contains "$(curl -s --cacert "$CA" "$url/metrics")" "registryd_config_applied 0" "the applied gauge after a refusal"

echo "# an invalid config is refused with its field path; Direct keeps serving"
cp "$WORK/bad.yaml" "$WORK/mc.yaml"
kill -HUP "$REGISTRYD_PID"
wait_for 10 grep -q "spec.settings.registry.proxy.ttl" "$WORK/sw.log"
assert_contains "$(mode_metric)" 'mode="Direct"' "mode after an invalid config"

echo "# an allowed switch (Direct -> Proxy) is applied without a restart and persisted"
module_config Proxy "$proxy_section" >"$WORK/mc.yaml"
kill -HUP "$REGISTRYD_PID"
wait_for 10 bash -c "curl -s --cacert '$CA' '$url/metrics' | grep -q '^registryd_mode_info{mode=\"Proxy\"} 1'"
assert_contains "$("$REGISTRYD" status --state-dir "$WORK/sw-state")" "mode: Proxy" "state after switch"
wait_for 10 bash -c "curl -s --cacert '$CA' '$url/metrics' | grep -q '^registryd_config_applied 1'" ||
  fail "the applied gauge is not 1 after an allowed switch"
assert_contains "$("$REGISTRYD" status --state-dir "$WORK/sw-state")" "applied: yes" "status after the switch"
metrics=$(curl -s --cacert "$CA" "$url/metrics")
for m in 'registryd_build_info{version="' process_resident_memory_bytes process_cpu_seconds_total process_open_fds process_start_time_seconds; do
  assert_contains "$metrics" "$m" "metric $m"
done

echo "# Proxy -> Local is refused; after a restart the recorded Proxy mode still serves"
module_config Local >"$WORK/mc.yaml"
kill -HUP "$REGISTRYD_PID"
wait_for 10 grep -q "mode transition from Proxy to Local is not supported" "$WORK/sw.log"
stop_pid "$REGISTRYD_PID"
assert_contains "$("$REGISTRYD" status --state-dir "$WORK/sw-state")" "server: not running (pid $SERVER_PID " "status after the stop"
set +e
out=$("$REGISTRYD" status --state-dir "$WORK/no-such-state" 2>&1); rc=$?
set -e
assert_eq "$rc" "2" "status of a missing state dir"
assert_contains "$out" "does not exist" "status of a missing state dir"
start_registryd sw2 "$port" --config "$WORK/mc.yaml" --plugin "$echo_plugin"
# A second instance on a fresh state dir is a fresh node: bootstrap into Local is refused and
# it answers 503 with the rule, instead of crash-looping.
code=$(http_status --cacert "$CA" "$url/v2/system/deckhouse/manifests/latest")
assert_eq "$code" "503" "fresh node with a Local config"
assert_contains "$(cat "$WORK/body")" "bootstrap" "503 body"
stop_pid "$REGISTRYD_PID"
start_bg sw3 300 "$REGISTRYD" serve --listen-address "127.0.0.1:$port" --state-dir "$WORK/sw-state" \
  --data-dir "$WORK/sw-data" --plugin-dir "$REGISTRYD_PLUGIN_DIR" --config "$WORK/mc.yaml" --plugin "$echo_plugin"
wait_port "$port" 30
CA="$WORK/sw-state/pki/ca.crt"
assert_contains "$(mode_metric)" 'mode="Proxy"' "recorded mode after restart"
assert_eq "$(http_status --cacert "$CA" "$url/v2/system/deckhouse/manifests/latest")" "200" "serving after restart"

echo "# a restart with a config whose plugin cannot start serves the recorded mode instead"
unmanaged_section='      unmanaged:
        imagesRepo: registry.example.com/deckhouse/ee'
module_config Unmanaged "$unmanaged_section" >"$WORK/real.yaml"
stop_pid "$LAST_PID"
start_registryd real "$port" --config "$WORK/real.yaml"
assert_eq "$(http_status --cacert "$CA" "$url/v2/system/deckhouse/manifests/latest")" "404" "Unmanaged serving"
stop_pid "$REGISTRYD_PID"
module_config Direct "$direct_section" >"$WORK/real.yaml"   # allowed, but its plugin fails to start
# A plugin dir whose direct.so refuses to start; unmanaged.so is the real one.
mkdir -p "$WORK/plugins"
ln -s "$REGISTRYD_PLUGIN_DIR/unmanaged.so" "$WORK/plugins/unmanaged.so"
ln -s "$REGISTRYD_BUILD_DIR/tests/fixtures/plugins/failing_create.so" "$WORK/plugins/direct.so"
start_bg real2 300 "$REGISTRYD" serve --listen-address "127.0.0.1:$port" --state-dir "$WORK/real-state" \
  --data-dir "$WORK/real-data" --plugin-dir "$WORK/plugins" --config "$WORK/real.yaml"
wait_port "$port" 30
code=$(http_status --cacert "$CA" "$url/v2/system/deckhouse/manifests/latest")
assert_eq "$code" "404" "recorded Unmanaged mode after the restart"
assert_contains "$(cat "$WORK/body")" "Unmanaged mode" "recorded mode answers"
grep -q "fixture refuses to start" "$WORK/real2.log" || fail "the plugin failure is not logged"
grep -q "serving the recorded mode Unmanaged instead" "$WORK/real2.log" || fail "no fallback logged"
assert_contains "$("$REGISTRYD" status --state-dir "$WORK/real-state")" "mode: Unmanaged" "state after the failed switch"

echo "# a switch whose state cannot be saved is not applied: the running mode keeps serving"
stop_pid "$LAST_PID"
# registryd alone sees its state dir read-only, through a bind mount in a mount namespace of its
# own (root writes anywhere else).
mkdir -p "$WORK/ro-probe"
unshare -m bash -c 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && ! touch "$1/x"' _ "$WORK/ro-probe" \
  2>/dev/null || skip "no read-only bind mount in a mount namespace here (unshare -m): cannot make the state read-only"
module_config Direct "$direct_section" >"$WORK/ro.yaml"
start_registryd ro "$port" --config "$WORK/ro.yaml" --plugin "$echo_plugin"
assert_contains "$(mode_metric)" 'mode="Direct"' "mode before the state is read-only"
stop_pid "$REGISTRYD_PID"
start_bg ro2 300 unshare -m bash -c 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"' \
  _ "$WORK/ro-state" "$REGISTRYD" serve --listen-address "127.0.0.1:$port" --state-dir "$WORK/ro-state" \
  --data-dir "$WORK/ro-data" --plugin-dir "$REGISTRYD_PLUGIN_DIR" --config-reload-interval-seconds 1 \
  --config "$WORK/ro.yaml" --plugin "$echo_plugin"
wait_port "$port" 30 || { cat "$WORK/ro2.log" >&2; fail "registryd did not listen on $port"; }
assert_contains "$(mode_metric)" 'mode="Direct"' "mode with a read-only state"
module_config Proxy "$proxy_section" >"$WORK/ro.yaml"
wait_for 10 grep -q "mode Proxy not switched to: cannot save the state" "$WORK/ro2.log" ||
  { cat "$WORK/ro2.log" >&2; fail "the failed save is not reported"; }
assert_contains "$(mode_metric)" 'mode="Direct"' "mode after a switch whose state could not be saved"
assert_eq "$(http_status --cacert "$CA" "$url/v2/system/deckhouse/manifests/latest")" "200" "Direct still serving"
assert_contains "$("$REGISTRYD" status --state-dir "$WORK/ro-state")" "mode: Direct" "state after the failed save"
stop_pid "$LAST_PID"

echo "PASS switching"
