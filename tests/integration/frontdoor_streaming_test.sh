#!/usr/bin/env bash
# Bodies through the plugin boundary, both ways, with real curl: a streamed response of known
# length, a file range, HEAD with headers only, a large upload streamed to the plugin with a
# length and chunked, and an exception in the plugin turned into an OCI error. The echo test
# plugin (tests/fixtures/plugins/echo_plugin.cpp) stands behind the front door.
source "$(dirname "$0")/lib.sh"

echo_plugin="$REGISTRYD_BUILD_DIR/tests/fixtures/plugins/echo.so"
port=$(free_port)
start_registryd st "$port" --plugin "$echo_plugin" --log-format json
url="https://127.0.0.1:$port"

# pattern_sha256 N: the sha256 of the echo plugin's first N pattern bytes ('a' to 'z', repeated).
pattern_sha256() {
  python3 -c "
import hashlib
n=$1; h=hashlib.sha256(); block=bytes(ord('a')+i%26 for i in range(26*40000))
while n: c=block[:min(n,len(block))]; h.update(c); n-=len(c)
print(h.hexdigest())"
}

echo "# a 64 MiB streamed response arrives whole and in order"
size=$((64 * 1024 * 1024))
curl -sS --fail --cacert "$CA" -o "$WORK/stream.bin" "$url/v2/x/stream?size=$size"
assert_eq "$(stat -c %s "$WORK/stream.bin")" "$size" "streamed size"
want=$(pattern_sha256 "$size")
assert_eq "$(sha256sum "$WORK/stream.bin" | cut -d' ' -f1)" "$want" "streamed content"

echo "# six file answers over TLS at once: each arrives whole and in order"
# More file sends than I/O threads (at most 4 by default): each thread takes turns between
# several transfers, a whole slice per send (docs/frontdoor.md, "Writes"). This checks the bytes.
fsize=$((8 * 1024 * 1024 + 12345))
want=$(pattern_sha256 "$fsize")
pids=()
clients=6
for i in $(seq 1 "$clients"); do
  curl -sS --fail --max-time 60 --cacert "$CA" -o "$WORK/file.$i" "$url/v2/x/pattern-file?size=$fsize" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "a concurrent file GET failed"; done
for i in $(seq 1 "$clients"); do
  assert_eq "$(sha256sum "$WORK/file.$i" | cut -d' ' -f1)" "$want" "concurrent file $i"
done
rm -f "$WORK"/file.*

echo "# HEAD: the length of the stream, no body"
code=$(http_status --cacert "$CA" -I "$url/v2/x/stream?size=12345")
assert_eq "$code" "200" "HEAD status"
assert_contains "$(tr -d '\r' <"$WORK/headers")" "Content-Length: 12345" "HEAD length"
# On the wire: nothing follows the headers.
python3 - "$port" "$CA" <<'PY'
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
s = ssl.create_default_context(cafile=ca).wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
s.sendall(b"HEAD /v2/x/stream?size=12345 HTTP/1.1\r\nHost: localhost\r\n\r\n")
data = b""
while b"\r\n\r\n" not in data: data += s.recv(4096)
rest = data.split(b"\r\n\r\n", 1)[1]
s.settimeout(1.0)
try:
    rest += s.recv(4096)
except socket.timeout:
    pass
assert rest == b"", f"HEAD sent a body: {rest[:40]!r}"
PY

echo "# a file range handed over by descriptor"
code=$(http_status --cacert "$CA" "$url/v2/x/file")
assert_eq "$code" "200" "file status"
assert_eq "$(cat "$WORK/body")" "$(head -c 3 /etc/hostname)" "file range"

echo "# uploads stream to the plugin: with a length, and chunked"
head -c $((48 * 1024 * 1024)) /dev/urandom >"$WORK/upload.bin"
code=$(http_status --cacert "$CA" -X PUT --data-binary @"$WORK/upload.bin" "$url/v2/x/blobs/uploads/1")
assert_eq "$code" "201" "upload status"
assert_eq "$(cat "$WORK/body")" "$((48 * 1024 * 1024))" "bytes the plugin received"
code=$(http_status --cacert "$CA" -X PATCH -H "Transfer-Encoding: chunked" --data-binary @"$WORK/upload.bin" "$url/v2/x/blobs/uploads/2")
assert_eq "$code" "201" "chunked upload status"
assert_eq "$(cat "$WORK/body")" "$((48 * 1024 * 1024))" "chunked bytes the plugin received"

echo "# a plugin exception is a 500 with an OCI error, and the server goes on"
code=$(http_status --cacert "$CA" "$url/v2/x/throw")
assert_eq "$code" "500" "throw status"
assert_contains "$(cat "$WORK/body")" '"code":"UNKNOWN"' "throw body"
assert_eq "$(http_status --cacert "$CA" "$url/v2/x/manifests/latest")" "200" "after the exception"
assert_contains "$(cat "$WORK/body")" '"path":"/v2/x/manifests/latest"' "echo body"

echo "# the plugin's metrics are part of /metrics"
http_status --cacert "$CA" "$url/metrics" >/dev/null
assert_contains "$(cat "$WORK/body")" "registryd_echo_requests_total" "plugin metrics"
echo "# --log-format json: every log line is one JSON object"
python3 - "$WORK/st.log" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert len(lines) > 5, lines
levels = {"trace", "debug", "info", "warning", "error", "critical"}
access = []
for l in lines:
    rec = json.loads(l)
    assert {"time", "level", "msg"} <= set(rec), rec
    assert rec["level"] in levels, rec
    if "method" in rec:
        access.append(rec)
# The access log: one entry per answer with its fields as members, not inside the message.
streamed = [r for r in access if r["path"] == "/v2/x/stream"]
assert streamed, access
r = streamed[0]
assert set(r) == {"time", "level", "msg", "remote", "user", "method", "path", "query", "status", "bytes",
                  "duration"}, r
assert r["query"].startswith("size="), r
assert r["method"] == "GET" and r["status"] == 200 and r["remote"].startswith("127.0.0.1"), r
assert isinstance(r["bytes"], int) and r["bytes"] > 1000, r
assert isinstance(r["duration"], float), r
PY
echo "PASS frontdoor_streaming"
