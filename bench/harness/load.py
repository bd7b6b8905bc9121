"""Load generators: wrk for GET throughput and latency, hey (Go's net/http and crypto/tls, the
stack of containerd, skopeo and podman) for whole-blob throughput, ApacheBench for HEAD (wrk 4.1
waits for a body after a HEAD answer that carries Content-Length, so it cannot measure HEAD), and
curl for single and concurrent whole-blob pulls.
"""

import json
import os
import subprocess
import time

from . import procs

MIB = 1024 * 1024
WRK_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "wrk-report.lua")


def wrk(url, connections, duration, threads=None, headers=()):
    """One wrk run. Returns a sample dict: rps, mib_s, p50/p99 latency in ms, requests, errors.
    `valid` is False when any request failed or answered outside 2xx/3xx."""
    threads = threads or min(2, connections)
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
            "--timeout", "120s", "--latency", "-s", WRK_SCRIPT]
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    res = procs.run(argv, timeout=duration + 180, check=False)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result for {url}:\n{res.stdout}\n{res.stderr}")
    raw = json.loads(line.split(" ", 1)[1])
    secs = raw["duration_us"] / 1e6
    errors = raw["errors"]
    # Timeouts only mean a request took longer than --timeout; wrk keeps reading it, so they do
    # not spoil a throughput figure. Anything else does.
    bad = errors["connect"] + errors["read"] + errors["write"] + errors["status"]
    return {
        "tool": "wrk",
        "rps": raw["requests"] / secs,
        "mib_s": raw["bytes"] / secs / MIB,
        "p50_ms": raw["latency_us"]["p50"] / 1000.0,
        "p99_ms": raw["latency_us"]["p99"] / 1000.0,
        "requests": raw["requests"],
        "bytes": raw["bytes"],
        "seconds": secs,
        "errors": errors,
        "valid": bad == 0 and raw["requests"] + raw["bytes"] > 0,
    }


# The fewest bytes a TLS 1.3 record adds to at most 16 KiB of data: a 5-byte header and a
# 16-byte AEAD tag.
TLS_RECORD_DATA, TLS_RECORD_MIN_OVERHEAD = 16384, 21
STATUS_LINE_MIN = len("HTTP/1.1 200 OK\r\n\r\n")


def hey(url, connections, requests, size):
    """`requests` GETs of a `size`-byte body by hey over `connections` keep-alive connections
    (HTTP/1.1; hey turns HTTP/2 off unless asked; redirects are not followed). Returns a sample
    like wrk()'s: mib_s is requests x size over hey's total time, from the first connection to
    the last byte.

    hey counts each answer's Content-Length and ignores an error while reading its body, so
    what it read is checked from the kernel's side: the bytes hey read (procs.run_counting_reads)
    must be at least every body plus the least each answer adds (its status line; on TLS every
    record's header and tag). `valid` is False when hey failed, any request failed or answered
    other than 200, the answers' mean size is not `size`, or fewer bytes arrived than that."""
    argv = ["hey", "-n", str(requests), "-c", str(connections), "-disable-compression",
            "-disable-redirects", "-t", "600", url]
    timeout = 300 + requests * size / (10 * MIB)   # a bound for a stuck run, not a pace
    code, out, err, received = procs.run_counting_reads(argv, timeout)
    fields, codes, errors = {}, {}, 0
    section = None
    for ln in out.splitlines():
        st = ln.strip()
        if st.endswith("distribution:"):
            section = st
        elif section == "Status code distribution:" and st.startswith("["):
            status, n = st[1:].split("]", 1)
            codes[int(status)] = int(n.split()[0])
        elif section == "Error distribution:" and st.startswith("["):
            errors += int(st[1:].split("]", 1)[0])
        elif ":" in st:
            k, v = st.split(":", 1)
            fields[k] = v.split()[0] if v.split() else ""
    try:
        secs = float(fields["Total"])
    except (KeyError, ValueError):
        raise RuntimeError(f"hey gave no result for {url} (exit {code}):\n{out}\n{err}")
    ok = codes.get(200, 0)
    per_answer = size + STATUS_LINE_MIN
    if url.startswith("https:"):
        per_answer += -(-size // TLS_RECORD_DATA) * TLS_RECORD_MIN_OVERHEAD
    return {
        "tool": "hey",
        "rps": ok / secs,
        "mib_s": ok * size / secs / MIB,
        "requests": ok,
        "bytes": ok * size,
        "read_bytes": received,
        "seconds": secs,
        "errors": {"failed": errors, "exit": code,
                   "status": {str(c): n for c, n in codes.items() if c != 200}},
        "valid": (code == 0 and ok == requests and errors == 0
                  and fields.get("Size/request") == str(size)
                  and received >= requests * per_answer),
    }


def ab_head(url, connections, duration, headers=()):
    """HEAD requests with ApacheBench (keep-alive, `connections` at once, for `duration`
    seconds). Returns the same kind of sample as wrk()."""
    csv_path = f"/tmp/registryd-bench-ab.{os.getpid()}.csv"
    argv = ["ab", "-k", "-i", "-r", "-q", "-c", str(connections), "-t", str(duration),
            "-n", "10000000", "-e", csv_path]
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    try:
        res = procs.run(argv, timeout=duration + 120, check=False)
        fields = {}
        for ln in res.stdout.splitlines():
            if ":" in ln:
                k, v = ln.split(":", 1)
                fields[k.strip()] = v.strip()
        pct = {}
        with open(csv_path) as f:
            next(f)
            for ln in f:
                p, ms = ln.strip().split(",")
                pct[int(p)] = float(ms)
    except (OSError, StopIteration, ValueError) as e:
        raise RuntimeError(f"ab gave no result for {url}: {e}\n{res.stdout}\n{res.stderr}")
    finally:
        if os.path.exists(csv_path):
            os.unlink(csv_path)
    complete = int(fields.get("Complete requests", "0"))
    failed = int(fields.get("Failed requests", "0"))
    non2xx = int(fields.get("Non-2xx responses", "0"))
    secs = float(fields.get("Time taken for tests", "0 s").split()[0])
    return {
        "tool": "ab",
        "rps": complete / secs if secs else 0.0,
        "mib_s": None,
        "p50_ms": pct.get(50),
        "p99_ms": pct.get(99),
        "requests": complete,
        "bytes": None,
        "seconds": secs,
        "errors": {"failed": failed, "non_2xx": non2xx},
        "valid": complete > 0 and failed == 0 and non2xx == 0,
    }


_CURL_FORMAT = "%{http_code} %{size_download} %{time_total} %{time_starttransfer}"


def _curl_argv(url, headers=()):
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", _CURL_FORMAT, "--max-time", "600"]
    for h in headers:
        argv += ["-H", h]
    return argv + (["-k"] if url.startswith("https:") else []) + [url]


def _curl_result(out):
    code, size, total, ttfb = out.split()
    return {"status": int(code), "bytes": int(size), "seconds": float(total),
            "ttfb_s": float(ttfb)}


def curl_pull(url):
    """One whole GET with curl; status, bytes, seconds (curl's total) and time to first byte."""
    res = procs.run(_curl_argv(url), timeout=700, check=False)
    return _curl_result(res.stdout)


def curl_parallel(url, clients, headers=()):
    """`clients` curl processes GET url at the same moment (with extra `headers`). Returns (wall
    seconds from the first start to the last finish, list of per-client results)."""
    started = time.monotonic()
    running = [subprocess.Popen(_curl_argv(url, headers), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(clients)]
    results = []
    try:
        for p in running:
            out, _ = p.communicate(timeout=700)
            try:
                results.append(_curl_result(out))
            except ValueError:
                results.append({"status": 0, "bytes": 0, "seconds": 0.0, "ttfb_s": 0.0})
    finally:
        for p in running:
            if p.poll() is None:
                p.kill()
                p.wait()
    return time.monotonic() - started, results
