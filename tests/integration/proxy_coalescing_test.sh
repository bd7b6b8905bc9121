#!/usr/bin/env bash
# Proxy mode, many clients and one uncached blob: 16 curl processes ask registryd for the same
# 64 MiB blob at once. docker-registry's access log must show exactly ONE GET of it, every
# client must get the right sha256, and the clients must have shared that fetch (they joined
# it while it ran: registryd_proxy_coalesced_requests_total) rather than waited for it to end.
# The upstream is reached through a small throttling relay (about 48 MiB/s) so that the fill
# lasts long enough for every client to arrive while it runs, whatever the machine's load.
source "$(dirname "$0")/lib.sh"

for tool in docker-registry curl python3 sha256sum; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
CLIENTS=16
SIZE_MIB=64

UP=$(free_port)
start_docker_registry "$UP"

# The blob, pushed with a plain POST + PUT upload.
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/blob"
DIGEST="sha256:$(sha256sum "$WORK/blob" | cut -d' ' -f1)"
location=$(curl -sS --fail -X POST -D - -o /dev/null "http://127.0.0.1:$UP/v2/deckhouse/ee/blobs/uploads/" |
  tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
[ -n "$location" ] || fail "docker-registry gave no upload location"
case "$location" in http*) ;; *) location="http://127.0.0.1:$UP$location" ;; esac
sep='?'; case "$location" in *\?*) sep='&' ;; esac
curl -sS --fail -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$WORK/blob" \
  "$location${sep}digest=$DIGEST" >/dev/null || fail "blob upload to docker-registry"

# A relay that passes bytes both ways, the answers at a bounded rate.
RELAY=$(free_port)
cat >"$WORK/relay.py" <<'PY'
import socket, sys, threading, time
listen_port, target_port, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def pipe(src, dst, limited):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if limited:
                time.sleep(len(data) / rate)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", listen_port))
srv.listen(64)
while True:
    client, _ = srv.accept()
    upstream = socket.create_connection(("127.0.0.1", target_port))
    threading.Thread(target=pipe, args=(client, upstream, False), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, client, True), daemon=True).start()
PY
start_bg relay 300 python3 "$WORK/relay.py" "$RELAY" "$UP" $((48 * 1024 * 1024))
wait_port "$RELAY"

PORT=$(free_port)
module_config Proxy "      proxy:
        imagesRepo: 127.0.0.1:$RELAY/deckhouse/ee
        scheme: HTTP" >"$WORK/mc.yaml"
record_mode "$WORK/px-state" Proxy "127.0.0.1:$RELAY/deckhouse/ee" HTTP
start_registryd px "$PORT" --module-config "$WORK/mc.yaml" --plain-http
URL="http://127.0.0.1:$PORT"
wait_for 20 bash -c "curl -sf '$URL/readyz' | grep -q Proxy" || fail "registryd is not ready in Proxy mode"

echo "# $CLIENTS clients pull one uncached ${SIZE_MIB} MiB blob at once"
# Each body is hashed as it arrives (no copies on disk); curl writes its figures to stderr.
pids=()
for i in $(seq "$CLIENTS"); do
  (curl -sS --max-time 120 -o - -w '%{stderr}%{http_code} %{time_starttransfer} %{time_total}\n' \
    "$URL/v2/system/deckhouse/blobs/$DIGEST" | sha256sum | cut -d' ' -f1 >"$WORK/client-$i.sum") \
    2>"$WORK/client-$i.status" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
sleep 0.5  # docker-registry logs a request after its last byte

want=${DIGEST#sha256:}
early=0
for i in $(seq "$CLIENTS"); do
  read -r code ttfb total <"$WORK/client-$i.status" || fail "client $i: no status"
  assert_eq "$code" "200" "client $i status ($(cat "$WORK/client-$i.status"))"
  assert_eq "$(cat "$WORK/client-$i.sum")" "$want" "client $i sha256"
  echo "  client $i: first byte after ${ttfb}s, done after ${total}s"
  awk -v t="$ttfb" 'BEGIN { exit !(t < 1.0) }' && early=$((early + 1))
done
# The fill takes over 1.3 s behind the relay; a client that waited for the whole blob before its
# first byte would show a time to first byte above that.
[ "$early" -ge $((CLIENTS / 2)) ] || fail "only $early of $CLIENTS clients had their first byte within 1 s"
gets=$(grep -c "\"GET /v2/deckhouse/ee/blobs/$DIGEST " "$WORK/docker-registry-$UP.log" || true)
assert_eq "$gets" "1" "upstream GETs of the blob (docker-registry's access log)"

metrics=$(curl -sS "$URL/metrics")
fetches=$(awk '$1 == "registryd_proxy_upstream_blob_fetches_total" { print $2 }' <<<"$metrics")
coalesced=$(awk '$1 == "registryd_proxy_coalesced_requests_total" { print $2 }' <<<"$metrics")
assert_eq "$fetches" "1" "registryd_proxy_upstream_blob_fetches_total"
# The fill lasts over a second behind the relay: the clients joined it while it ran.
[ "$coalesced" -ge $((CLIENTS / 2)) ] || fail "only $coalesced of $CLIENTS clients joined the fill in flight"
echo "ok: $CLIENTS clients, 1 upstream GET, $coalesced joined the fetch in flight"

# Cached now: another round makes no upstream request at all.
curl -sS --fail -o "$WORK/again.out" "$URL/v2/system/deckhouse/blobs/$DIGEST"
assert_eq "$(sha256sum "$WORK/again.out" | cut -d' ' -f1)" "$want" "cached copy"
sleep 0.3
assert_eq "$(grep -c "\"GET /v2/deckhouse/ee/blobs/$DIGEST " "$WORK/docker-registry-$UP.log" || true)" "1" \
  "upstream GETs after a cached pull"

echo "PASS proxy_coalescing"
