#!/usr/bin/env python3
"""registryd benchmarks: registryd against docker-registry (and nginx) in the same run, on
loopback. Run through bench/run.sh; docs/benchmarks.md explains every figure.

Suites:
  local   issue 3: blob GET (1 and 16 clients, plain and TLS), manifest GET/HEAD at 64
          connections, monolithic push, peak RSS. registryd Local vs docker-registry vs nginx.
  proxy   issue 4: 32 clients pulling one uncached blob (upstream fetches, wall time vs one cold
          pull), on loopback and through a bandwidth-limited link to the upstream (the WAN
          variant, bench/harness/link.py), warm pulls, peak RSS. registryd Proxy vs
          docker-registry's proxy mode, both in front of the same upstream docker-registry.
  direct  issue 4: pass-through pulls through registryd Direct vs straight from the upstream.
  packages  issue 12: warm /package against nginx, one cold request against docker-registry's
          proxy mode, 64 cold requests for one package through a slow link, peak RSS.
  frontdoor  issue 9: manifest GET at 1,000 connections, memory per idle connection (keep-alive
          and TLS), and the time a new client waits while 10,000 connections are held.
          registryd Local vs docker-registry vs nginx.
"""

import argparse
import atexit
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import load, procs, registry, results, servers  # noqa: E402

MIB = 1024 * 1024
UPSTREAM_REPO = "deckhouse/ce"        # where the upstream keeps the images
REGISTRYD_REPO = "system/deckhouse"   # registryd's fixed path that maps to imagesRepo's path
LOCAL_REPO = "bench/image"
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print(f"bench: {msg}", flush=True)


class Context:
    def __init__(self, args):
        self.args = args
        self.scratch = procs.Scratch(keep=args.keep)
        self.registryd = args.registryd
        self.plugin_dir = args.plugin_dir
        self.tls_cert = servers.make_tls_cert(self.scratch.sub("tls"))
        self.registryd_version = servers.registryd_version(self.registryd, self.plugin_dir)
        # Per-request logging is off on both sides unless asked for (docs/benchmarks.md).
        self.log_requests = args.server_logs == "info"
        self.registryd_args = (["--log-level", "info" if self.log_requests else "warn"]
                               + args.registryd_arg)

    def checked(self, run, label, rd, check):
        """Runs check(); when registryd fails it (a push refused, a wrong digest), records it
        as not measured with the error, stops it and returns None, so the reference servers
        are still measured. Otherwise returns rd."""
        try:
            check()
            return rd
        except (RuntimeError, OSError) as e:
            reason = f"{rd.mode} mode failed the harness's checks: {e}"[:400]
            log(f"{label}: {reason}; its rows are not measured")
            run.server(label, f"registryd {rd.mode}", available=False, reason=reason)
            rd.stop()
            return None

    def start_registryd(self, run, label, mode, section=None, plain_http=True, state=None,
                        data=None):
        """Starts registryd in `mode`; returns it when the mode serves, or None after recording
        why not (and stopping it)."""
        state = state or self.scratch.sub(f"{label}-state")
        data = data or self.scratch.sub(f"{label}-data")
        rd = servers.Registryd(self.scratch, label, self.registryd, self.plugin_dir, state, data,
                               mode, section=section, plain_http=plain_http,
                               extra_args=self.registryd_args)
        if rd.ready:
            run.server(label, f"registryd {mode}", version=self.registryd_version.splitlines()[0])
            return rd
        log(f"{label}: {mode} mode does not serve ({rd.unavailable}); its rows are not measured")
        run.server(label, f"registryd {mode}", available=False, reason=rd.unavailable,
                   version=self.registryd_version.splitlines()[0])
        rd.stop()
        return None


def settings_for(args, suite):
    s = {"repetitions": args.reps, "duration_s": args.duration, "warmup_s": args.warmup,
         "server_logs": args.server_logs, "nice": args.nice}
    if suite == "local":
        s.update(blob_mib=args.blob_mib, push_mib=args.push_mib, manifest_connections=64,
                 manifest_wrk_threads=2)
        s["method"] = (
            f"each figure is the median of {args.reps} repetitions after a {args.warmup} s "
            f"warm-up run per server (hey: at least one GET per connection), servers "
            f"interleaved within each repetition. Blob GET: "
            f"wrk for {args.duration} s on a {args.blob_mib} MiB blob, 1 connection (1 thread) "
            f"and 16 connections (2 threads), MiB/s of bytes received; and hey (Go's HTTP "
            f"client) making whole GETs of the blob, about {args.duration} s of them at "
            f"{HEY_PLANNED_MIB_S} MiB/s "
            f"(at least one per connection), 1 and 16 connections, MiB/s of whole blobs over "
            f"hey's total time. nginx serves the same "
            f"file docker-registry stores. Manifest GET: wrk -t2 -c64 --latency for "
            f"{args.duration} s, by tag and by digest. Manifest HEAD: ApacheBench -k -c64 for "
            f"{args.duration} s (wrk 4.1 cannot do HEAD). Push: curl POST then PUT -T of a "
            f"fresh {args.push_mib} MiB blob, MiB/s over curl's time for both requests. Peak "
            f"RSS: VmHWM of each server. Server logs: {args.server_logs} (quiet: warnings "
            f"only on both sides).")
    elif suite == "balancer":
        s.update(blob_mib=args.blob_mib)
        s["method"] = (
            f"each figure is the median of {args.reps} repetitions after a {args.warmup} s warm-up: "
            f"wrk for {args.duration} s on a {args.blob_mib} MiB blob that registryd Local (plain HTTP) "
            f"stores, with 1 connection and 16 connections, straight to registryd, through "
            f"`registryd balancer` and through nginx's stream proxy (least_conn), interleaved. MiB/s "
            f"of bytes received. Link variant: the same with registryd behind bench/harness/link.py "
            f"at {args.link_mbit:g} Mbit/s shared by all connections.")
    elif suite == "frontdoor":
        s.update(held=args.held, manifest_connections=1000)
        s["method"] = (
            f"Manifest GET at 1,000 connections: wrk -t2 -c1000 --latency for {args.duration} s "
            f"after a {args.warmup} s warm-up, median of {args.reps} repetitions. Idle "
            f"connections: {args.held} connections held by bench/../tests/integration/"
            f"hold_connections.py (keep-alive: each sent one GET and read the answer; TLS: "
            f"handshake done, nothing sent); memory per connection is the server's RSS while "
            f"they are held minus its RSS before, divided by {args.held} (nginx: all its "
            f"processes). New client: 20 fresh curl requests while the keep-alive connections "
            f"are held, median and worst time to the whole answer.")
    elif suite == "packages":
        s.update(blob_mib=args.proxy_blob_mib, clients=args.packages_clients, link_mbit=args.link_mbit)
        s["method"] = (
            f"each figure is the median of {args.reps} repetitions. Every cold request asks for a "
            f"package no one has fetched (an image whose last layer is a new {args.proxy_blob_mib} "
            f"MiB blob); docker-registry's row is one cold pull of such a layer through its proxy "
            f"mode. Every cold image is pushed to the upstream before the first cold request; "
            f"after each cold request the next waits until the server has stored its copy of "
            f"the blob (docker-registry's proxy writes it on after the client has the last byte; "
            f"the time is in the samples as stored_after_s); the machine's dirty pages are "
            f"written back (sync) before each cold request; and "
            f"the two servers alternate which goes first in each repetition. Warm: wrk for {args.duration} s on /package (1 and 16 connections) after a "
            f"{args.warmup} s warm-up, against nginx serving the same file. Link: a second "
            f"registryd reaches the upstream through bench/harness/link.py at {args.link_mbit:g} "
            f"Mbit/s shared by all connections; {args.packages_clients} curl clients ask for one "
            f"cold package at once; upstream fetches are the layer's GETs in the upstream's log.")
    else:
        s.update(blob_mib=args.proxy_blob_mib, clients=args.proxy_clients)
        s["method"] = (
            f"each figure is the median of {args.reps} repetitions. Cold pulls use a blob no "
            f"proxy has seen ({args.proxy_blob_mib} MiB, a new one for every pull); wall time "
            f"runs from starting the first curl to the last one finishing; upstream fetches "
            f"are the GET requests for that blob in the upstream docker-registry's log. Warm "
            f"and pass-through pulls: wrk for {args.duration} s with 1 connection and 16 "
            f"connections on a {args.proxy_blob_mib} MiB blob after a {args.warmup} s warm-up, "
            f"MiB/s of bytes received.")
        if suite == "proxy":
            s["method"] += (" Each cold pull starts once the proxy that served the pull before "
                            "it has stored its copy of that blob (stored_after_s in the "
                            "samples) and dirty pages are written back (sync); the two proxies "
                            "take turns going first.")
        s["link_mbit"] = args.link_mbit
        if args.link_mbit > 0:
            what = {"direct": "the same wrk pulls with a second registryd Direct, against a "
                              "straight pull through the same relay",
                    "proxy": "the cold pulls again with a second registryd Proxy; a straight "
                             "pull through the relay gives the link's floor"}[suite]
            s["method"] += (f" Link variant: {what}. The relay (bench/harness/link.py) sits "
                            f"between registryd and the upstream and passes "
                            f"{args.link_mbit:g} Mbit/s each way, shared by all its "
                            f"connections (one WAN link).")
    return s


def measure_round(run, fid, targets, fn, also=()):
    """Calls fn(target, seconds) for every server in every repetition, servers interleaved,
    after one warm-up call each of --warmup seconds that is not recorded. targets: a list of
    (label, target), target being what fn needs (a URL, a server) or None when the server is
    not available. fn returns a sample dict, recorded in fid and in each figure of `also`
    (figures that read another metric of the same runs)."""
    args = run.args
    live = [(label, t) for label, t in targets if t is not None]
    for label, t in targets:
        if t is None:
            for f in (fid, *also):
                run.not_measured(f, label, run.servers[label]["reason"] or "not available")
    for label, t in live:
        fn(t, args.warmup)
    for rep in range(args.reps):
        for label, t in live:
            sample = fn(t, args.duration)
            for f in (fid, *also):
                run.add_sample(f, label, dict(sample))
            log(f"  {fid} {label} rep {rep + 1}: " + _brief(sample))


def _brief(sample):
    parts = []
    if sample.get("tool") in ("wrk", "ab"):
        parts.append(f"{sample['rps']:.0f} req/s, p99 {sample['p99_ms']:.2f} ms")
    if sample.get("mib_s") is not None:
        parts.append(f"{sample['mib_s']:.0f} MiB/s")
    if sample.get("server_cpu_s_per_gib") is not None:
        parts.append(f"server {sample['server_cpu_s_per_gib']:.2f} and client "
                     f"{sample['client_cpu_s_per_gib']:.2f} CPU s/GiB (client busy "
                     f"{sample.get('client_busy_cores', 0):.2f} cores)")
    if sample.get("seconds") and sample.get("tool") not in ("wrk", "ab"):
        parts.append(f"{sample['seconds']:.2f} s")
    if not sample.get("valid", True):
        parts.append(f"INVALID {sample.get('errors')}")
    return ", ".join(parts)


# ----------------------------------------------------------------------------------------------
# Local (issue 3)


def seed_image(base_url, blob_path, blob_digest, blob_size, small_layers, repo=LOCAL_REPO,
               tag="latest"):
    """Pushes the big blob, a few small layers, a config and a manifest tagged `tag` into
    `repo`. Returns the manifest digest."""
    registry.push_blob(base_url, repo, blob_path, blob_digest)
    layers = [(blob_digest, blob_size)]
    for data in small_layers:
        layers.append((registry.push_bytes(base_url, repo, data), len(data)))
    config = registry.image_config([d for d, _ in layers])
    config_digest = registry.push_bytes(base_url, repo, config)
    manifest = registry.image_manifest(config_digest, len(config), layers)
    registry.put_manifest(base_url, repo, tag, manifest)
    return "sha256:" + __import__("hashlib").sha256(manifest).hexdigest()


def check_blob(label, url, digest, size):
    status, got_size, got = registry.fetch_digest(url)
    if status != 200 or got_size != size or got != digest:
        raise RuntimeError(f"{label}: GET {url} gave {status}, {got_size} bytes, {got}; "
                           f"wanted {size} bytes {digest}")


def check_manifest(label, url, digest):
    for method in ("GET", "HEAD"):
        status, headers, _ = procs.http_get(url, method=method,
                                            headers={"Accept": registry.MANIFEST_ACCEPT})
        if status != 200 or headers.get("docker-content-digest") != digest:
            raise RuntimeError(f"{label}: {method} {url} gave {status}, digest "
                               f"{headers.get('docker-content-digest')}; wanted {digest}")


def seed_and_check_registryd(rd, blob_path, blob_digest, blob_size, small_layers,
                             manifest_digest):
    got = seed_image(rd.base_url, blob_path, blob_digest, blob_size, small_layers)
    if got != manifest_digest:
        raise RuntimeError(f"the same manifest got digest {got}, docker-registry's is "
                           f"{manifest_digest}")
    check_blob("registryd", f"{rd.base_url}/v2/{LOCAL_REPO}/blobs/{blob_digest}", blob_digest,
               blob_size)
    check_manifest("registryd", f"{rd.base_url}/v2/{LOCAL_REPO}/manifests/latest",
                   manifest_digest)


def with_cpu(server, measure):
    """Runs measure() (a load generator run returning a sample) and adds the CPU time the server
    and the load generator spent per GiB sent: on one machine both share the cores, so
    throughput alone cannot tell a cheaper server from a client that is the bottleneck
    (docs/benchmarks.md)."""
    server0 = procs.cpu_seconds(server.proc.pid, server.rss_include_children)
    client0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sample = measure()
    client1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    server1 = procs.cpu_seconds(server.proc.pid, server.rss_include_children)
    client = (client1.ru_utime + client1.ru_stime) - (client0.ru_utime + client0.ru_stime)
    gib = sample["bytes"] / (1024 * MIB)
    if gib > 0:
        sample["server_cpu_s_per_gib"] = (server1 - server0) / gib
        sample["client_cpu_s_per_gib"] = client / gib
    if sample.get("seconds"):
        # The load generator's CPU over the run's wall time: near 1.00 with one wrk thread, the
        # client, not the server, set the pace (docs/frontdoor.md, "One client measures wrk").
        sample["client_busy_cores"] = client / sample["seconds"]
    return sample


# hey's runs are a number of whole-blob GETs, not a time (a run cut at a deadline would drop
# the blobs in flight): about the run's seconds at this rate, and at least one per connection.
HEY_PLANNED_MIB_S = 1024


def hey_requests(clients, seconds, blob_mib):
    per_client = max(1, round(seconds * HEY_PLANNED_MIB_S / (clients * blob_mib)))
    return clients * per_client


# The two load generators of the blob GET figures (docs/frontdoor.md, "One client measures wrk;
# hey measures the servers"): tool -> (figure id suffix, title suffix, measure(target, clients,
# seconds, blob size)).
BLOB_GET_CLIENTS = {
    "wrk": ("", "",
            lambda t, c, d, _size: with_cpu(t[1], lambda: load.wrk(t[0], c, d,
                                                                   threads=min(2, c)))),
    "hey": ("_hey", " (hey, Go's HTTP client)",
            lambda t, c, d, size: with_cpu(t[1], lambda: load.hey(
                t[0], c, hey_requests(c, d, size // MIB), size))),
}


def blob_figures(schemes=(False, True)):
    """Every blob GET figure: (tool, tls, clients, figure id, title), for the given schemes."""
    for tool, (fid_suffix, title_suffix, _) in BLOB_GET_CLIENTS.items():
        for tls in schemes:
            for clients in (1, 16):
                plural = "s" if clients > 1 else ""
                yield (tool, tls, clients,
                       f"blob_get_{'tls' if tls else 'plain'}_c{clients}{fid_suffix}",
                       f"Blob GET, {'TLS' if tls else 'plain HTTP'}, {clients} "
                       f"client{plural}{title_suffix}")


def blob_get_figures(run, tls, targets, size):
    """targets: [(label, (url, server) or None)]."""
    for tool, _, clients, fid, title in blob_figures((tls,)):
        run.figure(fid, title, "MiB/s", "mib_s")
        cpu = f"{fid}_server_cpu"
        run.figure(cpu, f"{title}: server CPU per GiB sent", "CPU s/GiB",
                   "server_cpu_s_per_gib", higher_is_better=False)
        client_cpu = f"{fid}_client_cpu"
        run.figure(client_cpu, f"{title}: {tool}'s CPU per GiB received", "CPU s/GiB",
                   "client_cpu_s_per_gib", higher_is_better=False)
        client_busy = f"{fid}_client_busy"
        run.figure(client_busy, f"{title}: {tool}'s CPU time over the run's time", "cores",
                   "client_busy_cores", higher_is_better=False)
        log(f"{fid}")
        measure = BLOB_GET_CLIENTS[tool][2]
        measure_round(run, fid, targets,
                      lambda t, d, c=clients, m=measure: m(t, c, d, size),
                      also=(cpu, client_cpu, client_busy))


def suite_local(ctx, run):
    a = ctx.args
    sc = ctx.scratch
    log(f"making a {a.blob_mib} MiB blob")
    blob_path = sc.file("content", "blob")
    blob_size = a.blob_mib * MIB
    blob_digest = registry.random_file(blob_path, blob_size)
    small_layers = [os.urandom(32 * 1024 + i) for i in range(3)]
    push_base = sc.file("content", "push-base")
    registry.random_file(push_base, a.push_mib * MIB)

    dr_root = sc.sub("docker-registry-data")
    rd_state, rd_data = sc.sub("registryd-state"), sc.sub("registryd-data")
    run.server("docker-registry", "reference")
    run.server("nginx", "static file server, the ceiling for blob GET")

    # --- plain HTTP: blob GET, manifests, push
    dr = servers.DockerRegistry(sc, "docker-registry", dr_root, log_requests=ctx.log_requests)
    rd = ctx.start_registryd(run, "registryd", "Local", state=rd_state, data=rd_data)
    log("seeding")
    manifest_digest = seed_image(dr.base_url, blob_path, blob_digest, blob_size, small_layers)
    nginx = servers.Nginx(sc, "nginx", os.path.dirname(dr.blob_path(blob_digest)))
    blob_urls = {"docker-registry": f"{dr.base_url}/v2/{LOCAL_REPO}/blobs/{blob_digest}",
                 "nginx": f"{nginx.base_url}/data"}
    for label, url in blob_urls.items():
        check_blob(label, url, blob_digest, blob_size)
    check_manifest("docker-registry", f"{dr.base_url}/v2/{LOCAL_REPO}/manifests/latest",
                   manifest_digest)
    if rd:
        rd = ctx.checked(run, "registryd", rd, lambda: seed_and_check_registryd(
            rd, blob_path, blob_digest, blob_size, small_layers, manifest_digest))
    if rd:
        blob_urls["registryd"] = f"{rd.base_url}/v2/{LOCAL_REPO}/blobs/{blob_digest}"

    order = ["registryd", "docker-registry", "nginx"]
    plain_servers = {"registryd": rd, "docker-registry": dr, "nginx": nginx}
    blob_get_figures(run, False, [(lb, (blob_urls[lb], plain_servers[lb]) if lb in blob_urls
                                   else None) for lb in order], blob_size)

    two = [("registryd", rd), ("docker-registry", dr)]
    accept = "Accept: " + registry.MANIFEST_ACCEPT
    for fid, title, ref, method in (
            ("manifest_get_tag", "Manifest GET by tag, 64 connections", "latest", "GET"),
            ("manifest_get_digest", "Manifest GET by digest, 64 connections", manifest_digest,
             "GET"),
            ("manifest_head_tag", "Manifest HEAD by tag, 64 connections", "latest", "HEAD")):
        run.figure(fid, title, "req/s", "rps")
        log(fid)
        urls = [(lb, s and f"{s.base_url}/v2/{LOCAL_REPO}/manifests/{ref}") for lb, s in two]
        if method == "GET":
            measure_round(run, fid, urls,
                          lambda url, d: load.wrk(url, 64, d, threads=2, headers=[accept]))
        else:
            measure_round(run, fid, urls, lambda url, d: load.ab_head(url, 64, d, [accept]))

    fid = "push"
    run.figure(fid, f"Monolithic push of a {a.push_mib} MiB blob (POST + PUT)", "MiB/s", "mib_s")
    log(fid)
    counter = iter(range(10_000))

    def push_once(srv, _duration):
        path = sc.file("content", "push-variant")
        digest = registry.variant_file(push_base, path, f"push {next(counter)} {srv.name}")
        secs, _ = registry.push_blob(srv.base_url, "bench/push", path, digest)
        os.unlink(path)
        return {"tool": "curl", "seconds": secs, "mib_s": a.push_mib / secs, "valid": True}
    # The storage's own ceiling for a durable write of the same size, in the same run: dd to
    # the same file system, fdatasync before it ends (registryd syncs a blob before it answers
    # 201; docker-registry does not sync).
    run.server("disk", "dd writing the push size to the scratch file system with fdatasync: "
               "the ceiling of a durable push on this storage")

    def dd_once(_t, _duration):
        path = sc.file("content", "dd-ceiling")
        start = time.monotonic()
        procs.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={a.push_mib}",
                   "conv=fdatasync", "status=none"], timeout=600)
        secs = time.monotonic() - start
        os.unlink(path)
        return {"tool": "dd", "seconds": secs, "mib_s": a.push_mib / secs, "valid": True}
    measure_round(run, fid, two + [("disk", "dd")],
                  lambda t, d: dd_once(t, d) if t == "dd" else push_once(t, d))

    rss = {"docker-registry": dr.stop(), "nginx": nginx.stop()}
    if rd:
        rss["registryd"] = rd.stop()

    # --- TLS: blob GET (same data; each server with its own certificate)
    log("TLS instances")
    dr_tls = servers.DockerRegistry(sc, "docker-registry-tls", dr_root, tls_cert=ctx.tls_cert,
                                    log_requests=ctx.log_requests)
    nginx_tls = servers.Nginx(sc, "nginx-tls", os.path.dirname(dr.blob_path(blob_digest)),
                              tls_cert=ctx.tls_cert)
    rd_tls = None
    if rd:
        rd_tls = servers.Registryd(sc, "registryd-tls", ctx.registryd, ctx.plugin_dir,
                                   rd_state, rd_data, "Local", plain_http=False,
                                   extra_args=ctx.registryd_args)
        if not rd_tls.ready:
            raise RuntimeError(f"registryd Local served plain HTTP but not TLS: "
                               f"{rd_tls.unavailable}")
    tls_urls = {"docker-registry": f"{dr_tls.base_url}/v2/{LOCAL_REPO}/blobs/{blob_digest}",
                "nginx": f"{nginx_tls.base_url}/data"}
    if rd_tls:
        tls_urls["registryd"] = f"{rd_tls.base_url}/v2/{LOCAL_REPO}/blobs/{blob_digest}"
    for label, url in tls_urls.items():
        check_blob(label + " TLS", url, blob_digest, blob_size)
    for label, srv in (("registryd", rd_tls), ("docker-registry", dr_tls), ("nginx", nginx_tls)):
        if srv:
            run.servers[label]["tls"] = servers.negotiated_tls(srv.port)
    tls_servers = {"registryd": rd_tls, "docker-registry": dr_tls, "nginx": nginx_tls}
    blob_get_figures(run, True, [(lb, (tls_urls[lb], tls_servers[lb]) if lb in tls_urls
                                  else None) for lb in order], blob_size)

    for label, srv in (("docker-registry", dr_tls), ("nginx", nginx_tls), ("registryd", rd_tls)):
        if srv:
            rss[label] = max(x for x in (rss.get(label), srv.stop()) if x is not None)
    run.peak_rss_mib.update(rss)

    local_targets(run)


PUSH_DISK_NOTE = (
    "Push: the disk column is dd writing the same size to the same file system (buffered "
    "writes, fdatasync before it ends): the storage's rate for a plain durable write, for scale. "
    "registryd syncs every blob before it answers 201 (a crash must lose nothing acknowledged) "
    "and drops the pages it wrote behind itself (docs/storage.md), which is why it can beat dd "
    "on a VM where finding new page-cache pages is expensive; docker-registry does not sync.")


CPU_PER_GIB_NOTE = (
    "CPU per GiB: the user and system CPU seconds the server (nginx: master and workers) and "
    "the load generator used during each blob GET run, divided by the GiB sent. Server and "
    "client share the machine's cores, so throughput is bounded by both: where the client's "
    "CPU per GiB is as large as the servers', a cheaper server cannot show much more MiB/s, and "
    "the server rows are the better comparison of what each server costs.")

TWO_CLIENTS_NOTE = (
    "Blob GET is measured with two load generators, wrk and hey (Go's net/http and crypto/tls), "
    "and both are judged. A 1-client wrk run uses one wrk thread, whose CPU per GiB is beside "
    "it; docs/frontdoor.md (\"One client measures wrk; hey measures the servers\") says why the "
    "two differ.")


def _set_note(run, prefix, text):
    """Puts `text` in the run's notes in place of any note starting with `prefix` (a rejudged
    run may carry an older wording of the same note)."""
    run.notes = [n for n in run.notes if not n.startswith(prefix)]
    run.notes.append(text)


def local_targets(run):
    """Issue 3 item 7 and issue 9's TLS target, judged from the medians, for each load generator
    the run used (runs recorded before hey have wrk's figures only)."""
    rss = run.peak_rss_mib
    measured = [f for f in blob_figures() if f[3] in run.figures]
    for _, tls, _, fid, title in measured:
        run.target_ratio(f"{fid}_vs_docker_registry", (fid, "registryd"),
                         (fid, "docker-registry"), ">=", 1.0,
                         f"{title}: registryd / docker-registry")
        run.target_ratio(f"{fid}_vs_nginx", (fid, "registryd"), (fid, "nginx"), ">=", 0.9,
                         f"{title}: registryd / nginx (within 10 %)")
        if tls:
            run.target_ratio(f"{fid}_vs_docker_registry_issue9", (fid, "registryd"),
                             (fid, "docker-registry"), ">=", 1.2,
                             f"{title}: registryd / docker-registry (issue 9)")
    if any(tool == "hey" for tool, *_ in measured):
        _set_note(run, "Blob GET is measured with two load generators", TWO_CLIENTS_NOTE)
    _set_note(run, "CPU per GiB:", CPU_PER_GIB_NOTE)
    for fid in ("manifest_get_tag", "manifest_get_digest"):
        run.target_ratio(f"{fid}_vs_docker_registry", (fid, "registryd"),
                         (fid, "docker-registry"), ">=", 4.0,
                         f"{run.figures[fid]['title']}: registryd / docker-registry")
    run.target_ratio("push_vs_docker_registry", ("push", "registryd"),
                     ("push", "docker-registry"), ">=", 2.5,
                     "Monolithic push: registryd / docker-registry")
    if "disk" in run.figures.get("push", {}).get("servers", {}):
        _note_once(run, PUSH_DISK_NOTE)
    run.target_ratio("rss_vs_docker_registry", rss.get("registryd"),
                     rss.get("docker-registry"), "<=", 1 / 3,
                     "Peak RSS: registryd / docker-registry (at most a third)")
    _note_once(run, "Manifest HEAD has no target in the issue; it is reported for comparison. "
               "HEAD is measured with ApacheBench and GET with wrk, so compare servers within a "
               "row, not HEAD with GET.")


# ----------------------------------------------------------------------------------------------
# Proxy and Direct (issue 4)


def start_upstream(ctx, run):
    # The upstream always logs every request: its log is how upstream fetches are counted.
    up = servers.DockerRegistry(ctx.scratch, "upstream", ctx.scratch.sub("upstream-data"),
                                log_requests=True)
    run.server("upstream", "upstream docker-registry both sides pull from")
    return up


def upstream_gets(up, digest):
    """GET requests for a blob the upstream logged, and HEADs, separately."""
    lines = [r for r in up.requests_logged() if (r["uri"] or "").split("?")[0].endswith(digest)]
    return (sum(1 for r in lines if r["method"] == "GET"),
            sum(1 for r in lines if r["method"] == "HEAD"))


def suite_proxy(ctx, run):
    a = ctx.args
    sc = ctx.scratch
    size = a.proxy_blob_mib * MIB
    up = start_upstream(ctx, run)
    base = sc.file("content", "proxy-base")
    registry.random_file(base, size)

    rdp = ctx.start_registryd(run, "registryd", "Proxy", section={"proxy": {
        "imagesRepo": f"127.0.0.1:{up.port}/{UPSTREAM_REPO}", "scheme": "HTTP"}})
    drp = servers.DockerRegistry(sc, "docker-registry", sc.sub("docker-registry-proxy-data"),
                                 proxy_remote=f"http://127.0.0.1:{up.port}",
                                 log_requests=ctx.log_requests)
    run.server("docker-registry", "docker-registry proxy mode (proxy.remoteurl)")
    proxies = [("registryd", rdp, REGISTRYD_REPO), ("docker-registry", drp, UPSTREAM_REPO)]

    # Every cold pull gets a blob of its own, so each one is truly uncached on that proxy.
    log(f"seeding the upstream with {2 * a.reps + 1} blobs of {a.proxy_blob_mib} MiB per "
        "proxy")
    blobs = {}
    for label, srv, _ in proxies:
        if srv is None:
            continue
        for kind in ["warmup"] + [f"{k}{r}" for r in range(a.reps) for k in ("one", "many")]:
            path = sc.file("content", "variant")
            digest = registry.variant_file(base, path, f"{label} {kind}")
            registry.push_blob(up.base_url, UPSTREAM_REPO, path, digest)
            os.unlink(path)
            blobs[(label, kind)] = digest

    def url(srv, repo, digest):
        return f"{srv.base_url}/v2/{repo}/blobs/{digest}"

    n = a.proxy_clients
    f_one, f_many = "cold_single", "cold_concurrent"
    run.figure(f_one, f"One client pulls an uncached {a.proxy_blob_mib} MiB blob", "s",
               "seconds", higher_is_better=False)
    run.figure(f_many, f"{n} clients pull the same uncached {a.proxy_blob_mib} MiB blob at "
               "once: wall time", "s", "seconds", higher_is_better=False)
    run.figure("cold_ratio", f"{n}-client wall time / one cold pull", "x", "ratio",
               higher_is_better=False)
    run.figure("upstream_fetches", f"Upstream GETs of the blob for the {n} clients", "GETs",
               "fetches", higher_is_better=False)

    def warm_up(label, srv, repo):  # a first pull through the proxy, not recorded
        check_blob(label, url(srv, repo, blobs[(label, "warmup")]), blobs[(label, "warmup")],
                   size)

    warm_up("docker-registry", drp, UPSTREAM_REPO)
    if rdp:
        rdp = ctx.checked(run, "registryd", rdp, lambda: warm_up("registryd", rdp,
                                                                 REGISTRYD_REPO))
    proxies[0] = ("registryd", rdp, REGISTRYD_REPO)
    for label, srv, _ in proxies:
        if srv is None:
            for fid in (f_one, f_many, "cold_ratio", "upstream_fetches"):
                run.not_measured(fid, label, run.servers[label]["reason"])
    live = [(lb, s, repo) for lb, s, repo in proxies if s is not None]

    # Each cold pull starts on a quiet machine: the proxy before has stored its copy (the wait
    # is in the samples) and dirty pages are written back; the proxies take turns going first.
    for rep in range(a.reps):
        for label, srv, repo in (live if rep % 2 == 0 else live[::-1]):
            d_one, d_many = blobs[(label, f"one{rep}")], blobs[(label, f"many{rep}")]
            os.sync()
            wall1, res1 = load.curl_parallel(url(srv, repo, d_one), 1)
            ok1 = res1[0]["status"] == 200 and res1[0]["bytes"] == size
            run.add_sample(f_one, label, {"tool": "curl", "seconds": wall1, "valid": ok1,
                                          "ttfb_s": res1[0]["ttfb_s"],
                                          "stored_after_s": wait_stored(stored_copy(srv, "proxy", d_one), size)})
            walln, resn = load.curl_parallel(url(srv, repo, d_many), n)
            okn = all(r["status"] == 200 and r["bytes"] == size for r in resn)
            wait_stored(stored_copy(srv, "proxy", d_many), size)
            time.sleep(0.5)  # the upstream logs a request just after its last byte
            gets, heads = upstream_gets(up, d_many)
            run.add_sample(f_many, label, {
                "tool": "curl", "seconds": walln, "valid": okn,
                "client_seconds_max": max(r["seconds"] for r in resn),
                "ttfb_s_max": max(r["ttfb_s"] for r in resn),
                "failed_clients": sum(1 for r in resn
                                      if r["status"] != 200 or r["bytes"] != size)})
            run.add_sample("cold_ratio", label, {"ratio": walln / wall1, "valid": ok1 and okn})
            run.add_sample("upstream_fetches", label, {"fetches": gets, "heads": heads,
                                                       "valid": okn})
            log(f"  rep {rep + 1} {label}: one {wall1:.2f} s, {n} clients {walln:.2f} s "
                f"(x{walln / wall1:.2f}), upstream GETs {gets}, HEADs {heads}"
                + ("" if ok1 and okn else " INVALID"))

    # Warm pulls: the first cold blob is cached on each proxy now.
    check_blob("docker-registry warm", url(drp, UPSTREAM_REPO, blobs[("docker-registry",
                                                                      "one0")]),
               blobs[("docker-registry", "one0")], size)
    if rdp:
        d = blobs[("registryd", "one0")]
        rdp = ctx.checked(run, "registryd", rdp, lambda: check_blob(
            "registryd warm", url(rdp, REGISTRYD_REPO, d), d, size))
        proxies[0] = ("registryd", rdp, REGISTRYD_REPO)
    warm = [(lb, s and url(s, repo, blobs[(lb, "one0")])) for lb, s, repo in proxies]
    warm.append(("upstream", url(up, UPSTREAM_REPO, blobs[("docker-registry", "one0")])))
    for clients in (1, 16):
        fid = f"warm_c{clients}"
        run.figure(fid, f"Warm (cached) pull of a {a.proxy_blob_mib} MiB blob, {clients} "
                   f"client{'s' if clients > 1 else ''}", "MiB/s", "mib_s")
        log(fid)
        measure_round(run, fid, warm,
                      lambda u, d, c=clients: load.wrk(u, c, d, threads=min(2, c)))
        run.figures[fid]["note"] = ("The upstream row is docker-registry serving the blob "
                                    "from its own disk, for scale; it has no target.")

    run.figures["cold_ratio"]["note"] = (
        f"On loopback this ratio measures delivery, not the cache: one cold pull takes about as "
        f"long as the upstream needs to send the blob once, while the {n} clients must receive "
        f"{n} x {a.proxy_blob_mib} MiB = {_size(n * size)} over loopback on the same cores. "
        "The wall-time target is judged on the link variant, where the upstream link is the "
        "bottleneck.")

    rss = {}
    for label, srv, _ in proxies:
        if srv:
            rss[label] = srv.stop()
    if a.link_mbit > 0:
        # Any blob of the upstream will do for the link's floor: a straight pull caches nothing.
        link_variant(ctx, run, up, base, blobs[("docker-registry", "warmup")],
                     registryd_ok=rdp is not None, rss=rss)
    rss["upstream"] = up.stop()
    run.peak_rss_mib.update(rss)

    proxy_targets(run)


def _size(nbytes):
    return f"{nbytes / 1024 ** 3:.1f} GiB" if nbytes >= 1024 ** 3 else f"{nbytes / MIB:.0f} MiB"


def link_variant(ctx, run, up, base, floor_digest, registryd_ok, rss):
    """The cold pulls through a bandwidth-limited link to the upstream (issue 4's situation: a
    pull-through cache sits on the near side of a slow link). A second registryd Proxy reaches
    the upstream through bench/harness/link.py; the relay's rate is shared by all connections.

    docker-registry is not measured here: its proxy fetches the blob again for every client
    that comes while its first fetch runs (every client, through a slow link), and N+1 fetches
    through one shared link take about N+1 times one cold pull (some 6 minutes for 32
    clients and 256 MiB at 200 Mbit/s), more than the whole suite is meant to take. Its single
    cold pull is skipped too: the link bounds it whatever the proxy, and alone it makes no
    ratio."""
    a = ctx.args
    sc = ctx.scratch
    size = a.proxy_blob_mib * MIB
    n = a.proxy_clients
    mbit = a.link_mbit
    floor_s = size * 8 / (mbit * 1e6)
    link = servers.Link(sc, "link", up.port, mbit)
    log(f"link variant: {mbit:g} Mbit/s relay on {link.port} to the upstream on {up.port}")

    f_one, f_many = "link_cold_single", "link_cold_concurrent"
    f_ratio, f_fetches = "link_cold_ratio", "link_upstream_fetches"
    where = f"Through a {mbit:g} Mbit/s link"
    run.figure(f_one, f"{where}: one client pulls an uncached {a.proxy_blob_mib} MiB blob", "s",
               "seconds", higher_is_better=False)
    run.figure(f_many, f"{where}: {n} clients pull the same uncached {a.proxy_blob_mib} MiB "
               "blob at once: wall time", "s", "seconds", higher_is_better=False)
    run.figure(f_ratio, f"{where}: {n}-client wall time / one cold pull", "x", "ratio",
               higher_is_better=False)
    run.figure(f_fetches, f"{where}: upstream GETs of the blob for the {n} clients", "GETs",
               "fetches", higher_is_better=False)

    rd = None
    reason = run.servers["registryd"]["reason"] or "not available"
    if registryd_ok:
        log(f"seeding the upstream with {2 * a.reps} more blobs of {a.proxy_blob_mib} MiB and a "
            "small one")
        blobs = {}
        for kind in [f"{k}{r}" for r in range(a.reps) for k in ("one", "many")]:
            path = sc.file("content", "variant")
            blobs[kind] = registry.variant_file(base, path, f"registryd link {kind}")
            registry.push_blob(up.base_url, UPSTREAM_REPO, path, blobs[kind])
            os.unlink(path)
        # The warm-up pull opens the proxy's upstream connections; its size does not matter.
        path = sc.file("content", "link-warmup")
        blobs["warmup"] = registry.random_file(path, MIB)
        registry.push_blob(up.base_url, UPSTREAM_REPO, path, blobs["warmup"])
        rd = servers.Registryd(sc, "registryd-link", ctx.registryd, ctx.plugin_dir,
                               sc.sub("registryd-link-state"), sc.sub("registryd-link-data"),
                               "Proxy", section={"proxy": {
                                   "imagesRepo": f"127.0.0.1:{link.port}/{UPSTREAM_REPO}",
                                   "scheme": "HTTP"}},
                               extra_args=ctx.registryd_args)
        if not rd.ready:
            reason = ("the second registryd Proxy (through the link) did not serve: "
                      f"{rd.unavailable}")
            rd.stop()
            rd = None
        else:
            def rd_url(digest):
                return f"{rd.base_url}/v2/{REGISTRYD_REPO}/blobs/{digest}"
            try:
                check_blob("registryd through the link", rd_url(blobs["warmup"]),
                           blobs["warmup"], MIB)
            except (RuntimeError, OSError) as e:
                reason = f"registryd Proxy through the link failed the harness's checks: {e}"
                rd.stop()
                rd = None
    if rd is None:
        log(f"link variant, registryd: not measured ({reason})")
        for fid in (f_one, f_many, f_ratio, f_fetches):
            run.not_measured(fid, "registryd", reason[:400])
    else:
        for rep in range(a.reps):
            wall1, res1 = load.curl_parallel(rd_url(blobs[f"one{rep}"]), 1)
            ok1 = res1[0]["status"] == 200 and res1[0]["bytes"] == size
            run.add_sample(f_one, "registryd", {"tool": "curl", "seconds": wall1, "valid": ok1,
                                                "ttfb_s": res1[0]["ttfb_s"]})
            d_many = blobs[f"many{rep}"]
            walln, resn = load.curl_parallel(rd_url(d_many), n)
            okn = all(r["status"] == 200 and r["bytes"] == size for r in resn)
            time.sleep(0.5)  # the upstream logs a request just after its last byte
            gets, heads = upstream_gets(up, d_many)
            run.add_sample(f_many, "registryd", {
                "tool": "curl", "seconds": walln, "valid": okn,
                "client_seconds_max": max(r["seconds"] for r in resn),
                "ttfb_s_max": max(r["ttfb_s"] for r in resn),
                "failed_clients": sum(1 for r in resn
                                      if r["status"] != 200 or r["bytes"] != size)})
            run.add_sample(f_ratio, "registryd", {"ratio": walln / wall1, "valid": ok1 and okn})
            run.add_sample(f_fetches, "registryd", {"fetches": gets, "heads": heads,
                                                    "valid": okn})
            log(f"  link rep {rep + 1} registryd: one {wall1:.2f} s, {n} clients {walln:.2f} s "
                f"(x{walln / wall1:.2f}), upstream GETs {gets}, HEADs {heads}"
                + ("" if ok1 and okn else " INVALID"))
        rss["registryd"] = max(x for x in (rss.get("registryd"), rd.stop()) if x is not None)

    skipped = (f"skipped to keep the suite short: docker-registry's proxy fetches the blob "
               f"from the upstream again for every client that comes while its first fetch "
               f"runs, which through a slow link is every client (its loopback row shows the "
               f"count), and {n + 1} copies through one shared link take about {n + 1} x "
               f"{floor_s:.1f} s = {(n + 1) * floor_s:.0f} s")
    for fid in (f_many, f_ratio, f_fetches):
        run.not_measured(fid, "docker-registry", skipped)
    run.not_measured(f_one, "docker-registry", "skipped to keep the suite short: one pull "
                     "through the link is bound by the link whatever the proxy (the upstream "
                     "row is that floor), and without the N-client row there is no ratio")

    # The link's floor, and the check that it runs at its rate: a straight pull, no proxy.
    wall, res = load.curl_parallel(f"{link.base_url}/v2/{UPSTREAM_REPO}/blobs/{floor_digest}", 1)
    ok = res[0]["status"] == 200 and res[0]["bytes"] == size
    achieved = size * 8 / wall / 1e6
    run.add_sample(f_one, "upstream", {"tool": "curl", "seconds": wall, "valid": ok,
                                       "mbit_s": achieved})
    log(f"  link floor: a straight {a.proxy_blob_mib} MiB pull through the link took {wall:.2f} "
        f"s ({achieved:.0f} Mbit/s; ideal {floor_s:.2f} s)" + ("" if ok else " INVALID"))
    run.figures[f_one]["note"] = (
        f"The upstream row is a straight pull from the upstream through the link, no proxy: the "
        f"link's floor for one pull, {floor_s:.2f} s at exactly {mbit:g} Mbit/s (it measured "
        f"{achieved:.0f} Mbit/s). It has no target.")
    run.figures[f_many]["note"] = (
        f"registryd fetches the blob once and streams it to all {n} clients while it is being "
        f"written, so with the link as the bottleneck the clients finish about when one cold "
        f"pull does. Each client then receives at the link's rate, {n} x {mbit:g} Mbit/s "
        f"together on loopback, far less than the loopback rows show the cores can deliver.")
    link.stop()


def proxy_targets(run):
    """Issue 4 item 7 (the cache), judged from the medians.

    The wall-time target ("32 clients pulling the same uncached blob: wall time at most 1.3
    times one cold pull") is judged on the link variant: it describes a cache in front of a
    slow upstream link. On loopback the ratio is dominated by delivering N copies of the blob
    on the same cores; it stays a reported figure."""
    n = run.settings["clients"]
    mbit = run.settings.get("link_mbit")
    run.target_value("fetches", run.median("upstream_fetches", "registryd"), "==", 1,
                     f"registryd Proxy: upstream fetches for {n} concurrent clients on loopback "
                     "(median)")
    worst = [v for v in (_max_of(run, "upstream_fetches", "registryd", "fetches"),
                         _max_of(run, "link_upstream_fetches", "registryd", "fetches"))
             if v is not None]
    run.target_value("fetches_max", max(worst) if worst else None, "==", 1,
                     "registryd Proxy: upstream fetches, worst repetition"
                     + (" (loopback and link)" if mbit else ""))
    if mbit:
        run.target_value("cold_ratio", run.median("link_cold_ratio", "registryd"), "<=", 1.3,
                         f"registryd Proxy through a {mbit:g} Mbit/s link: {n}-client wall "
                         "time / one cold pull")
    else:
        why = "--link-mbit 0" if mbit == 0 else "the run predates it"
        run.target_value("cold_ratio", None, "<=", 1.3,
                         f"registryd Proxy: {n}-client wall time / one cold pull, judged "
                         f"through a link to the upstream (no link variant in this run: {why})")
    for clients in (1, 16):
        fid = f"warm_c{clients}"
        run.target_ratio(fid, (fid, "registryd"), (fid, "docker-registry"), ">=", 1.0,
                         f"{run.figures[fid]['title']}: registryd / docker-registry")
    # Issue 12 item 7 asks the packages proxy's one cold request to be at least as fast as
    # docker-registry's proxy mode "for Proxy too": the same shared fill, judged here.
    run.target_ratio("cold_single", ("cold_single", "docker-registry"), ("cold_single", "registryd"),
                     ">=", 1.0, "One cold pull on loopback (issue 12): docker-registry's time / "
                     "registryd's (at least equal)")
    blob_mib = run.settings["blob_mib"]
    _note_once(run, f"docker-registry's proxy mode is measured the same way for comparison; "
                     f"the targets apply to registryd. The {n} clients are {n} curl processes "
                     f"on the same cores as the servers.")
    _note_once(run, f"The loopback wall-time ratio is reported but not judged: there one cold "
                     f"pull is bound by the upstream sending the blob once on the same cores, "
                     f"while the {n} clients must then receive {n} x {blob_mib} MiB = "
                     f"{_size(n * blob_mib * MIB)} over loopback, so the ratio measures that "
                     f"fan-out, not the cache. The target describes a cache in front of a slow "
                     f"upstream link, and is judged on the link variant"
                     + (f" ({mbit:g} Mbit/s shared by all connections, bench/harness/link.py)."
                        if mbit else ", which this run did not measure."))
    if mbit:
        _note_once(run, "docker-registry is not measured through the link: its proxy fetches "
                   "the blob from the upstream again for every client that comes while its "
                   "first fetch runs, which through a slow link is every client, so through one "
                   f"shared link its {n} clients would take about {n + 1} times one cold pull "
                   "(some 6 minutes "
                   "for 32 clients and 256 MiB at 200 Mbit/s), more than the whole suite is "
                   "meant to take. Its loopback rows show the fetch count.")


PACKAGES_TOKEN = "bench-packages-token"
PACKAGES_REPO = UPSTREAM_REPO + "/packages-bench"


def start_registryd_packages(ctx, run, label, images_repo):
    """registryd in Direct mode (plain HTTP) with its packages proxy on a port of its own,
    accepting a static token. Returns (registryd or None, the packages base URL)."""
    sc = ctx.scratch
    port = procs.free_port()
    tokens = sc.file(f"{label}-tokens")
    with open(tokens, "w") as f:
        f.write(PACKAGES_TOKEN + "\n")
    host = sc.file(f"{label}-host.yaml")
    with open(host, "w") as f:
        f.write(f"packages_listen_address: 127.0.0.1:{port}\n"
                f"packages_tokens_file: {tokens}\n"
                f"packages_max_cache_bytes: {16 * 1024 * MIB}\n")
    rd = servers.Registryd(sc, label, ctx.registryd, ctx.plugin_dir, sc.sub(f"{label}-state"),
                           sc.sub(f"{label}-data"), "Direct",
                           section={"direct": {"imagesRepo": images_repo, "scheme": "HTTP"}},
                           extra_args=ctx.registryd_args + ["--host-config", host])
    if not rd.ready:
        run.server(label, "registryd packages proxy", available=False, reason=rd.unavailable)
        rd.stop()
        return None, None
    try:
        procs.wait_port(port, rd.proc)
    except (RuntimeError, OSError) as e:
        reason = f"the packages proxy did not listen: {e}"
        run.server(label, "registryd packages proxy", available=False, reason=reason)
        rd.stop()
        return None, None
    run.server(label, "registryd packages proxy (beside Direct mode)",
               version=ctx.registryd_version.splitlines()[0])
    return rd, f"http://127.0.0.1:{port}"


def stored_copy(server, store, digest):
    """The file a caching server keeps its copy of a blob in: docker-registry's own layout, or
    a registryd cache's (`store`: "proxy" or "packages" under its data dir)."""
    if isinstance(server, servers.DockerRegistry):
        return server.blob_path(digest)
    algo, hexd = digest.split(":", 1)
    return os.path.join(server.data_dir, store, "blobs", algo, hexd[:2], hexd)


def wait_stored(path, size, timeout=60.0):
    """Waits until the file at `path` holds `size` bytes: a server has stored the blob it
    fetched. Returns the seconds waited, or None after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if os.stat(path).st_size == size:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.01)
    return None


def suite_packages(ctx, run):
    """Issue 12: the packages proxy. Warm /package against nginx serving the same file; one
    cold /package against one cold blob pull through docker-registry's proxy mode; N clients
    asking for one cold package through a bandwidth-limited link (upstream fetches, wall time
    against one cold request); peak RSS."""
    a = ctx.args
    sc = ctx.scratch
    size = a.proxy_blob_mib * MIB
    n = a.packages_clients
    auth = [f"Authorization: Bearer {PACKAGES_TOKEN}"]
    up = start_upstream(ctx, run)
    base = sc.file("content", "packages-base")
    registry.random_file(base, size)

    def image(kind):
        """A new image in the upstream whose last layer is a fresh variant of the base blob:
        (manifest digest, layer digest, layer path kept for nginx or None)."""
        path = sc.file("content", f"pkg-{kind}")
        layer = registry.variant_file(base, path, f"packages {kind}")
        # The packages live at <imagesRepo>/packages-bench in the upstream.
        manifest = seed_image(up.base_url, path, layer, size, [], repo=PACKAGES_REPO, tag=kind)
        if kind != "warm":
            os.unlink(path)
        return manifest, layer, path

    rd, pk = start_registryd_packages(ctx, run, "registryd", f"127.0.0.1:{up.port}/{UPSTREAM_REPO}")
    drp = servers.DockerRegistry(sc, "docker-registry", sc.sub("docker-registry-proxy-data"),
                                 proxy_remote=f"http://127.0.0.1:{up.port}",
                                 log_requests=ctx.log_requests)
    run.server("docker-registry", "docker-registry proxy mode (proxy.remoteurl): one cold blob pull")

    def package_url(manifest):
        return f"{pk}/package?digest={manifest}&path=packages-bench"

    log(f"seeding the upstream with {2 * a.reps + 2} images of {a.proxy_blob_mib} MiB")

    f_cold = "pkg_cold_single"
    run.figure(f_cold, f"One cold request for a {a.proxy_blob_mib} MiB package on loopback "
               "(docker-registry: one cold blob pull through its proxy mode)", "s", "seconds",
               higher_is_better=False)
    warm_manifest, warm_layer, warm_path = image("warm")
    if rd:
        rd = ctx.checked(run, "registryd", rd, lambda: _check_package(
            package_url(warm_manifest), auth, warm_layer, size))
    # Every cold image is seeded before the first cold request, so no request shares the
    # cores with a push to the upstream; each server has stored the blob it fetched before the
    # next request starts (docker-registry's proxy goes on writing its copy after the client
    # has the last byte, registryd syncs and publishes its copy after it); the machine's dirty
    # pages are written back (sync) before each request, so none is throttled by the writeback
    # of the pushes or of the copy the request before it stored; and the two servers take
    # turns going first.
    cold = {(label, rep): image(f"cold-{label}-{rep}")
            for rep in range(a.reps) for label in ("registryd", "docker-registry")}
    for rep in range(a.reps):
        order = ("registryd", "docker-registry") if rep % 2 == 0 else ("docker-registry", "registryd")
        for label in order:
            manifest, layer, _ = cold[(label, rep)]
            os.sync()
            if label == "registryd":
                if not rd:
                    continue
                wall, res = load.curl_parallel(package_url(manifest), 1, headers=auth)
            else:
                wall, res = load.curl_parallel(f"{drp.base_url}/v2/{PACKAGES_REPO}/blobs/{layer}", 1)
            ok = res[0]["status"] == 200 and res[0]["bytes"] == size
            settled = wait_stored(stored_copy(rd if label == "registryd" else drp, "packages", layer), size)
            run.add_sample(f_cold, label, {"tool": "curl", "seconds": wall, "valid": ok,
                                           "ttfb_s": res[0]["ttfb_s"], "stored_after_s": settled})
            log(f"  rep {rep + 1} {label}: one cold {wall:.2f} s, its copy stored "
                + (f"{settled:.2f} s later" if settled is not None else "NOT within 60 s")
                + ("" if ok else " INVALID"))
    if not rd:
        run.not_measured(f_cold, "registryd", run.servers["registryd"]["reason"])

    # Warm: the warm package is cached now; nginx serves the very same file.
    nginx_root = os.path.dirname(warm_path)
    ng = servers.Nginx(sc, "nginx", nginx_root)
    run.server("nginx", "nginx serving the package's file (sendfile)")
    targets = [("registryd", rd and package_url(warm_manifest)),
               ("nginx", f"{ng.base_url}/{os.path.basename(warm_path)}")]
    for clients in (1, 16):
        fid = f"pkg_warm_c{clients}"
        run.figure(fid, f"Warm /package of a {a.proxy_blob_mib} MiB package, {clients} "
                   f"client{'s' if clients > 1 else ''}", "MiB/s", "mib_s")
        log(fid)
        measure_round(run, fid, targets, lambda u, d, c=clients: load.wrk(
            u, c, d, threads=min(2, c), headers=auth if "/package" in u else ()))
    rss = {}
    if rd:
        rss["registryd"] = rd.stop()
    rss["docker-registry"] = drp.stop()
    rss["nginx"] = ng.stop()

    # N clients, one cold package, through a link to the upstream.
    f_many, f_ratio, f_fetches = "pkg_link_cold_concurrent", "pkg_link_cold_ratio", "pkg_link_upstream_fetches"
    f_one = "pkg_link_cold_single"
    mbit = a.link_mbit
    where = f"Through a {mbit:g} Mbit/s link"
    run.figure(f_one, f"{where}: one cold request for a {a.proxy_blob_mib} MiB package", "s",
               "seconds", higher_is_better=False)
    run.figure(f_many, f"{where}: {n} clients ask for the same cold package at once: wall time",
               "s", "seconds", higher_is_better=False)
    run.figure(f_ratio, f"{where}: {n}-client wall time / one cold request", "x", "ratio",
               higher_is_better=False)
    run.figure(f_fetches, f"{where}: upstream GETs of the layer for the {n} clients", "GETs",
               "fetches", higher_is_better=False)
    if mbit > 0 and rd:
        link = servers.Link(sc, "link", up.port, mbit)
        rdl, pkl = start_registryd_packages(ctx, run, "registryd-link",
                                            f"127.0.0.1:{link.port}/{UPSTREAM_REPO}")
        if rdl:
            for rep in range(a.reps):
                m1, _, _ = image(f"link-one-{rep}")
                wall1, res1 = load.curl_parallel(f"{pkl}/package?digest={m1}&path=packages-bench", 1,
                                                 headers=auth)
                ok1 = res1[0]["status"] == 200 and res1[0]["bytes"] == size
                run.add_sample(f_one, "registryd", {"tool": "curl", "seconds": wall1, "valid": ok1})
                mn, ln, _ = image(f"link-many-{rep}")
                walln, resn = load.curl_parallel(f"{pkl}/package?digest={mn}&path=packages-bench", n,
                                                 headers=auth)
                okn = all(r["status"] == 200 and r["bytes"] == size for r in resn)
                time.sleep(0.5)
                gets, _ = upstream_gets(up, ln)
                run.add_sample(f_many, "registryd", {"tool": "curl", "seconds": walln, "valid": okn,
                                                     "failed_clients": sum(1 for r in resn if r["status"] != 200 or r["bytes"] != size)})
                run.add_sample(f_ratio, "registryd", {"ratio": walln / wall1, "valid": ok1 and okn})
                run.add_sample(f_fetches, "registryd", {"fetches": gets, "valid": okn})
                log(f"  link rep {rep + 1}: one {wall1:.2f} s, {n} clients {walln:.2f} s "
                    f"(x{walln / wall1:.2f}), upstream GETs {gets}" + ("" if ok1 and okn else " INVALID"))
            rss["registryd"] = max(x for x in (rss.get("registryd"), rdl.stop()) if x is not None)
        link.stop()
    else:
        for fid in (f_one, f_many, f_ratio, f_fetches):
            run.not_measured(fid, "registryd", "--link-mbit 0" if mbit <= 0 else "registryd did not serve")
    rss["upstream"] = up.stop()
    run.peak_rss_mib.update(rss)

    packages_targets(run)


def packages_targets(run):
    """Issue 12's targets, judged from the medians (and the worst fetch count)."""
    n = run.settings["clients"]
    for clients in (1, 16):
        fid = f"pkg_warm_c{clients}"
        run.target_ratio(fid, (fid, "registryd"), (fid, "nginx"), ">=", 0.9,
                         f"{run.figures[fid]['title']}: registryd / nginx")
    run.target_ratio("pkg_cold", ("pkg_cold_single", "docker-registry"),
                     ("pkg_cold_single", "registryd"), ">=", 1.0,
                     "One cold request on loopback: docker-registry's time / registryd's "
                     "(at least equal)")
    run.target_value("pkg_fetches", _max_of(run, "pkg_link_upstream_fetches", "registryd", "fetches"),
                     "==", 1, f"{n} concurrent cold requests through the link: upstream fetches "
                     "(worst repetition)")
    run.target_value("pkg_cold_ratio", run.median("pkg_link_cold_ratio", "registryd"), "<=", 1.3,
                     f"{n} concurrent cold requests through the link: wall time / one cold "
                     "request")
    _note_once(run, "The packages proxy serves plain HTTP here (--plain-http applies to its "
                    "listener too), as nginx does, so both may use sendfile; clients send a "
                    "static bearer token (packages_tokens_file).")


def _check_package(url, headers, layer, size):
    status, got_size, got = registry.fetch_digest(url, headers=dict(h.split(": ", 1) for h in headers))
    if status != 200 or got_size != size or got != layer:
        raise RuntimeError(f"GET {url} gave {status}, {got_size} bytes, {got}; wanted {size} bytes {layer}")


def _note_once(run, text):
    if text not in run.notes:
        run.notes.append(text)


def _max_of(run, fid, label, key):
    entry = run.figures.get(fid, {}).get("servers", {}).get(label)
    if not entry or not entry["samples"]:
        return None
    return max(s[key] for s in entry["samples"])


def suite_direct(ctx, run):
    a = ctx.args
    sc = ctx.scratch
    size = a.proxy_blob_mib * MIB
    up = start_upstream(ctx, run)
    path = sc.file("content", "direct-blob")
    digest = registry.random_file(path, size)
    registry.push_blob(up.base_url, UPSTREAM_REPO, path, digest)
    rdd = ctx.start_registryd(run, "registryd", "Direct", section={"direct": {
        "imagesRepo": f"127.0.0.1:{up.port}/{UPSTREAM_REPO}", "scheme": "HTTP"}})
    up_url = f"{up.base_url}/v2/{UPSTREAM_REPO}/blobs/{digest}"
    rd_url = rdd and f"{rdd.base_url}/v2/{REGISTRYD_REPO}/blobs/{digest}"
    check_blob("upstream", up_url, digest, size)
    if rdd:
        rdd = ctx.checked(run, "registryd", rdd,
                          lambda: check_blob("registryd Direct", rd_url, digest, size))
        rd_url = rdd and rd_url
    targets = [("registryd", rd_url), ("upstream", up_url)]
    for clients in (1, 16):
        fid = f"direct_c{clients}"
        run.figure(fid, f"Pull of a {a.proxy_blob_mib} MiB blob, {clients} "
                   f"client{'s' if clients > 1 else ''}", "MiB/s", "mib_s")
        log(fid)
        measure_round(run, fid, targets,
                      lambda u, d, c=clients: load.wrk(u, c, d, threads=min(2, c)))
    rss = {}
    if a.link_mbit > 0:
        rss.update(direct_link_variant(ctx, run, up, digest, size))
    rss["upstream"] = up.stop()
    if rdd:
        rss["registryd"] = rdd.stop()
    run.peak_rss_mib.update(rss)
    direct_targets(run)


def direct_link_variant(ctx, run, up, digest, size):
    """The same pulls with the upstream behind bench/harness/link.py (a shared-bandwidth relay):
    Direct runs on the masters and its upstream is a remote registry, so pass-through is judged
    against a straight pull through the same link. Returns the link registryd's peak RSS."""
    a = ctx.args
    sc = ctx.scratch
    mbit = a.link_mbit
    run.settings["link_mbit"] = mbit
    link = servers.Link(sc, "link", up.port, mbit)
    log(f"direct link variant: {mbit:g} Mbit/s relay on {link.port} to the upstream on {up.port}")
    rd = servers.Registryd(sc, "registryd-link", ctx.registryd, ctx.plugin_dir,
                           sc.sub("registryd-link-state"), sc.sub("registryd-link-data"), "Direct",
                           section={"direct": {"imagesRepo": f"127.0.0.1:{link.port}/{UPSTREAM_REPO}",
                                               "scheme": "HTTP"}}, extra_args=ctx.registryd_args)
    rd_url = f"{rd.base_url}/v2/{REGISTRYD_REPO}/blobs/{digest}" if rd.ready else None
    straight = f"{link.base_url}/v2/{UPSTREAM_REPO}/blobs/{digest}"
    if rd_url is None:
        run.servers["registryd"]["reason"] = f"registryd Direct through the link did not serve: {rd.unavailable}"
    for clients in (1, 16):
        fid = f"direct_link_c{clients}"
        run.figure(fid, f"Through a {mbit:g} Mbit/s link: pull of a {a.proxy_blob_mib} MiB blob, "
                   f"{clients} client{'s' if clients > 1 else ''}", "MiB/s", "mib_s")
        log(fid)
        measure_round(run, fid, [("registryd", rd_url), ("upstream", straight)],
                      lambda u, d, c=clients: load.wrk(u, c, d, threads=min(2, c)))
        run.figures[fid]["note"] = ("The upstream row is a straight pull through the same link, "
                                    "no registryd: the link's rate is the ceiling of both.")
    rss = {"registryd-link": rd.stop()}
    link.stop()
    return rss


def direct_targets(run):
    """Issue 4 item 7 (pass-through), judged from the medians: on the link variant when the run
    has one (the situation in a cluster: the upstream is remote), else on loopback."""
    mbit = run.settings.get("link_mbit")
    prefix = "direct_link_c" if mbit and "direct_link_c1" in run.figures else "direct_c"
    for clients in (1, 16):
        fid = f"{prefix}{clients}"
        run.target_ratio(fid, (fid, "registryd"), (fid, "upstream"), ">=", 0.8,
                         f"{run.figures[fid]['title']}: registryd Direct / straight from the "
                         "upstream")
    _note_once(run, "On loopback, pass-through means every byte crosses loopback twice (upstream "
                     "to registryd, registryd to the client) on the same 2 cores that also run the "
                     "upstream and the clients, while the straight pull crosses once: the loopback "
                     "rows measure the relay's CPU cost, not what a node sees.")
    if prefix == "direct_link_c":
        _note_once(run, f"The pass-through target is judged on the link variant: registryd Direct "
                         f"and a straight pull both reach the upstream through one {mbit:g} Mbit/s "
                         f"link (bench/harness/link.py), as a cluster's masters reach a remote "
                         f"registry.")


# ----------------------------------------------------------------------------------------------
# The node balancer (issue 11)

def suite_balancer(ctx, run):
    """Blob pulls from registryd Local straight, through `registryd balancer` (the node balancer
    alone) and through nginx's stream proxy configured as the platform's node balancer, in the
    same run. On loopback the figures are the relays' CPU cost on 2 shared cores; the link
    variant puts the master behind bench/harness/link.py, as a node reaches a master over the
    network, and is where the target (within 10 %) is judged."""
    a = ctx.args
    sc = ctx.scratch
    size = a.blob_mib * MIB
    path = sc.file("content", "balancer-blob")
    digest = registry.random_file(path, size)
    rd = ctx.start_registryd(run, "registryd", "Local")
    if rd is None:
        return
    _, status = registry.push_blob(rd.base_url, LOCAL_REPO, path, digest)
    if status >= 300:
        raise RuntimeError(f"pushing the blob to registryd answered {status}")
    blob = f"/v2/{LOCAL_REPO}/blobs/{digest}"

    def variant(prefix, master_port, title_prefix):
        lb = servers.Balancer(sc, f"balancer{prefix}", ctx.registryd, [f"127.0.0.1:{master_port}"])
        ng = servers.NginxStream(sc, f"nginx-stream{prefix}", [f"127.0.0.1:{master_port}"])
        targets = [("registryd balancer", f"http://127.0.0.1:{lb.port}{blob}"),
                   ("nginx stream", f"http://127.0.0.1:{ng.port}{blob}"),
                   ("straight", f"http://127.0.0.1:{master_port}{blob}")]
        for label, url in targets:
            check_blob(label, url, digest, size)
        for clients in (1, 16):
            fid = f"balancer{prefix}_c{clients}"
            run.figure(fid, f"{title_prefix}pull of a {a.blob_mib} MiB blob, {clients} "
                       f"client{'s' if clients > 1 else ''}", "MiB/s", "mib_s")
            log(fid)
            measure_round(run, fid, targets, lambda u, d, c=clients: load.wrk(u, c, d, threads=min(2, c)))
        return {f"registryd balancer{prefix}": lb.stop(), f"nginx stream{prefix}": ng.stop()}

    run.server("registryd balancer", "registryd balancer in front of registryd Local",
               version=ctx.registryd_version.splitlines()[0])
    run.server("nginx stream", "nginx stream proxy, least_conn (the platform's node balancer)")
    run.server("straight", "straight to registryd Local (plain HTTP)")
    rss = variant("", rd.port, "")
    if a.link_mbit > 0:
        run.settings["link_mbit"] = a.link_mbit
        link = servers.Link(sc, "link", rd.port, a.link_mbit)
        rss.update(variant("_link", link.port, f"Master behind a {a.link_mbit:g} Mbit/s link: "))
        link.stop()
    rss["registryd"] = rd.stop()
    run.peak_rss_mib.update(rss)
    balancer_targets(run)


def balancer_targets(run):
    prefix = "balancer_link" if "balancer_link_c1" in run.figures else "balancer"
    for clients in (1, 16):
        fid = f"{prefix}_c{clients}"
        run.target_ratio(fid, (fid, "registryd balancer"), (fid, "straight"), ">=", 0.9,
                         f"{run.figures[fid]['title']}: through the balancer / straight to the master")
    _note_once(run, "On loopback every byte crosses loopback twice through a balancer (client to "
                     "balancer, balancer to registryd) on the same 2 cores that run registryd and wrk, "
                     "against once straight: those rows measure the relay's CPU cost, with nginx's "
                     "stream proxy (the platform's balancer) as the peer. The target is judged on the "
                     "link variant when the run has one: there the master is behind a shared-bandwidth "
                     "relay, as a node reaches a master over the network.")


# ----------------------------------------------------------------------------------------------
# The front door (issue 9)

HOLD_TOOL = os.path.join(os.path.dirname(BENCH_DIR), "tests", "integration", "hold_connections.py")


def rss_kib(server):
    pids = [server.proc.pid]
    if server.rss_include_children:
        pids += procs.children(server.proc.pid)
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


class Held:
    """Connections held open by hold_connections.py until stop()."""

    def __init__(self, mode, count, port, path="/"):
        self.count = count
        self.proc = subprocess.Popen([sys.executable, HOLD_TOOL, mode, str(count), str(port),
                                      "--limit", "600", "--path", path],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("opened"):
            self.stop()
            raise RuntimeError(f"holding {count} {mode} connections failed: {line}")
        self.opened = line

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def new_client_ms(url, times=20):
    samples = []
    for _ in range(times):
        out = procs.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{time_total}", "--max-time",
                         "30", url], timeout=60, check=False)
        samples.append(float(out.stdout or "30") * 1000.0)
    samples.sort()
    return samples[len(samples) // 2], samples[-1]


def suite_frontdoor(ctx, run):
    a = ctx.args
    sc = ctx.scratch
    n = a.held
    run.server("docker-registry", "reference")
    run.server("nginx", "static file server (idle-connection memory and new-client rows)")
    # registryd's head deadline must outlast opening the TLS connections (docs/frontdoor.md);
    # the other limits are the defaults, the per-client limit raised to hold them from one
    # address as the others allow.
    host_yaml = sc.file("frontdoor-host.yaml")
    with open(host_yaml, "w") as f:
        f.write(f"http_head_timeout_seconds: 600\nhttp_max_connections_per_client: {n + 2000}\n"
                f"http_max_connections: {n + 2000}\n")
    ctx.registryd_args = ctx.registryd_args + ["--host-config", host_yaml]
    dr = servers.DockerRegistry(sc, "docker-registry", sc.sub("docker-registry-data"),
                                log_requests=ctx.log_requests)
    rd = ctx.start_registryd(run, "registryd", "Local")
    nginx = servers.Nginx(sc, "nginx", sc.sub("nginx-root"), worker_connections=n + 2000)
    small = [os.urandom(32 * 1024)]
    blob_path = sc.file("content", "blob")
    digest = registry.random_file(blob_path, MIB)
    manifest_digest = seed_image(dr.base_url, blob_path, digest, MIB, small)
    if rd:
        rd = ctx.checked(run, "registryd", rd, lambda: seed_and_check_registryd(
            rd, blob_path, digest, MIB, small, manifest_digest))

    fid = "manifest_get_c1000"
    run.figure(fid, "Manifest GET by tag, 1,000 connections", "req/s", "rps")
    log(fid)
    accept = "Accept: " + registry.MANIFEST_ACCEPT
    two = [("registryd", rd), ("docker-registry", dr)]
    measure_round(run, fid, [(lb, s and f"{s.base_url}/v2/{LOCAL_REPO}/manifests/latest")
                             for lb, s in two],
                  lambda url, d: load.wrk(url, 1000, d, threads=2, headers=[accept]))

    three = [("registryd", rd, "/v2/"), ("docker-registry", dr, "/v2/"), ("nginx", nginx, "/")]
    f_mem = "idle_keepalive_kib"
    f_new = "new_client_ms_held"
    run.figure(f_mem, f"Memory per idle keep-alive connection ({n:,} held)", "KiB", "kib",
               higher_is_better=False)
    run.figure(f_new, f"A new client's wait while {n:,} keep-alive connections are held "
               "(median of 20)", "ms", "ms", higher_is_better=False)
    for label, srv, path in three:
        if srv is None:
            run.not_measured(f_mem, label, "not available")
            run.not_measured(f_new, label, "not available")
            continue
        log(f"{f_mem} {label}")
        before = rss_kib(srv)
        held = Held("keepalive", n, srv.port, path)
        time.sleep(1)
        during = rss_kib(srv)
        median, worst = new_client_ms(srv.base_url + path)
        held.stop()
        run.add_sample(f_mem, label, {"tool": "hold", "kib": (during - before) / n,
                                      "rss_before_kib": before, "rss_held_kib": during,
                                      "opened": held.opened, "valid": True})
        run.add_sample(f_new, label, {"tool": "curl", "ms": median, "worst_ms": worst,
                                      "valid": worst < 30000})
        log(f"  {label}: {(during - before) / n:.1f} KiB per connection; new client "
            f"{median:.1f} ms (worst {worst:.1f})")
    rss = {"docker-registry": dr.stop(), "nginx": nginx.stop()}
    if rd:
        rss["registryd"] = rd.stop()

    # TLS: each server with its own certificate; registryd with its own CA, on the same data.
    f_tls = "idle_tls_kib"
    run.figure(f_tls, f"Memory per idle TLS connection ({n:,} held, handshake done)", "KiB",
               "kib", higher_is_better=False)
    dr_tls = servers.DockerRegistry(sc, "docker-registry-tls", sc.sub("docker-registry-data"),
                                    tls_cert=ctx.tls_cert, log_requests=ctx.log_requests)
    nginx_tls = servers.Nginx(sc, "nginx-tls", sc.sub("nginx-root"), tls_cert=ctx.tls_cert,
                              worker_connections=n + 2000)
    rd_tls = None
    if rd:
        rd_tls = servers.Registryd(sc, "registryd-tls", ctx.registryd, ctx.plugin_dir,
                                   sc.sub("registryd-tls-state"), sc.sub("registryd-tls-data"),
                                   "Local", plain_http=False, extra_args=ctx.registryd_args)
    for label, srv in (("registryd", rd_tls), ("docker-registry", dr_tls), ("nginx", nginx_tls)):
        if srv is None:
            run.not_measured(f_tls, label, "not available")
            continue
        log(f"{f_tls} {label}")
        before = rss_kib(srv)
        held = Held("tls-idle", n, srv.port)
        time.sleep(1)
        during = rss_kib(srv)
        held.stop()
        run.add_sample(f_tls, label, {"tool": "hold", "kib": (during - before) / n,
                                      "rss_before_kib": before, "rss_held_kib": during,
                                      "opened": held.opened, "valid": True})
        log(f"  {label}: {(during - before) / n:.1f} KiB per TLS connection")
        rss[label] = max(x for x in (rss.get(label), srv.stop()) if x is not None)
    run.peak_rss_mib.update(rss)
    frontdoor_targets(run)


def frontdoor_targets(run):
    """Issue 9's figures; only the manifest rate has a stated bound (at least docker-registry)."""
    fid = "manifest_get_c1000"
    run.target_ratio(f"{fid}_vs_docker_registry", (fid, "registryd"), (fid, "docker-registry"),
                     ">=", 1.0, f"{run.figures[fid]['title']}: registryd / docker-registry")
    run.target_value("new_client_ms_held", run.median("new_client_ms_held", "registryd"), "<=",
                     100, "A new client's median wait while the connections are held, ms")
    _note_once(run, "Memory per idle connection and the new client's wait have no bound in the "
               "issue other than the 100 ms the integration test holds; they are reported next "
               "to docker-registry and nginx.")


# ----------------------------------------------------------------------------------------------

def wait_idle(seconds, threshold):
    """Waits up to `seconds` for the machine to be quiet; the run records the load anyway."""
    if seconds <= 0:
        return
    deadline = time.monotonic() + seconds
    while True:
        with open("/proc/loadavg") as f:
            load1 = float(f.read().split()[0])
        if load1 < threshold:
            return
        if time.monotonic() >= deadline:
            log(f"the load average is still {load1}; measuring anyway (recorded in the results)")
            return
        log(f"load average {load1}, waiting for it to fall below {threshold}")
        time.sleep(min(30, max(1, deadline - time.monotonic())))


SUITES = {"local": suite_local, "proxy": suite_proxy, "direct": suite_direct,
          "packages": suite_packages,
          "frontdoor": suite_frontdoor, "balancer": suite_balancer}
TARGETS = {"local": local_targets, "proxy": proxy_targets, "direct": direct_targets,
           "packages": packages_targets, "frontdoor": frontdoor_targets, "balancer": balancer_targets}


def rejudge(path):
    """Judges a recorded run's targets again from its samples and rewrites its files."""
    import json
    path = os.path.abspath(path)
    with open(path) as f:
        run = results.Run.from_json(json.load(f))
    TARGETS[run.suite](run)
    _note_once(run, "Targets judged again from the recorded samples with `bench.py --rejudge` "
               "(the run itself had judged them before computing its medians).")
    base = results.write(run, os.path.dirname(path), os.path.basename(path)[:-5])
    log(f"rewrote {base}.md and .json")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", nargs="?", default="all", choices=["all"] + list(SUITES))
    p.add_argument("--registryd", help="the registryd binary (bench/run.sh passes it)")
    p.add_argument("--plugin-dir", default="", help="registryd's plugin dir (default: its own)")
    p.add_argument("--registryd-arg", action="append", default=[],
                   help="one more argument for `registryd serve` (repeatable)")
    p.add_argument("--reps", type=int, default=3, help="repetitions per figure (3)")
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk/ab run (10)")
    p.add_argument("--warmup", type=int, default=3, help="seconds of each warm-up run (3)")
    p.add_argument("--blob-mib", type=int, default=1024, help="Local blob GET size (1024)")
    p.add_argument("--push-mib", type=int, default=1024, help="Local push size (1024)")
    p.add_argument("--proxy-blob-mib", type=int, default=256, help="Proxy/Direct blob (256)")
    p.add_argument("--proxy-clients", type=int, default=32, help="concurrent cold pulls (32)")
    p.add_argument("--packages-clients", type=int, default=64,
                   help="packages: concurrent cold requests for one package (64)")
    p.add_argument("--held", type=int, default=10000,
                   help="frontdoor: idle connections held (10000)")
    p.add_argument("--link-mbit", type=float, default=200,
                   help="the proxy suite's link variant: cold pulls through a relay to the "
                        "upstream limited to this many Mbit/s, shared by all connections (200; "
                        "0: no link variant, and the wall-time target is not judged)")
    p.add_argument("--results", default=os.path.join(BENCH_DIR, "results"),
                   help="where results go (bench/results)")
    p.add_argument("--server-logs", choices=["quiet", "info"], default="quiet",
                   help="quiet: registryd and docker-registry log warnings only (default); "
                        "info: both log every request, as they do out of the box")
    p.add_argument("--wait-idle", type=int, default=0, metavar="SECONDS",
                   help="before each suite, wait up to SECONDS for the 1-minute load average "
                        "to fall below --idle-load (default: do not wait)")
    p.add_argument("--idle-load", type=float, default=0.5,
                   help="the load average --wait-idle waits for (0.5)")
    p.add_argument("--nice", type=int, default=0,
                   help="run the harness, every server and every load generator at this nice "
                        "value; -10 (as root) gives them precedence over other work on the "
                        "machine, all alike (default 0)")
    p.add_argument("--note", action="append", default=[],
                   help="a line for the results' notes, e.g. how registryd was built "
                        "(repeatable)")
    p.add_argument("--keep", action="store_true", help="keep the scratch dir and server logs")
    p.add_argument("--rejudge", metavar="RUN.json",
                   help="judge the targets of a recorded run again from its samples, and exit")
    args = p.parse_args()
    if args.rejudge:
        rejudge(args.rejudge)
        return 0
    if not args.registryd:
        p.error("--registryd is required")
    if args.reps < 1 or args.duration < 1:
        p.error("--reps and --duration must be at least 1")
    if args.link_mbit < 0:
        p.error("--link-mbit must be 0 (off) or more")
    # Every server and load generator inherits this: thousands of connections are descriptors.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    if args.nice:
        # Inherited by every process the harness starts, so all sides run at the same priority.
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        # wrk, hey, ab and curl run in the harness's session, which it may share with a terminal:
        # its autogroup's nice value is put back at exit.
        previous = procs.autogroup_nice(os.getpid())
        procs.set_autogroup_nice(os.getpid(), args.nice)
        if previous is not None:
            atexit.register(procs.set_autogroup_nice, os.getpid(), previous)
        procs.AUTOGROUP_NICE = args.nice                  # each server has a session of its own
    ctx = Context(args)
    log(f"scratch {ctx.scratch.path}; registryd: {ctx.registryd_version.splitlines()[0]}")
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    for name in suites:
        wait_idle(args.wait_idle, args.idle_load)
        run = results.Run(name, settings_for(args, name))
        run.args = args
        run.notes += args.note
        log(f"suite {name}")
        top = ctx.scratch
        ctx.scratch = top.child(name)  # each suite's gigabytes go once it is done
        try:
            SUITES[name](ctx, run)
        finally:
            procs.stop_all()
            ctx.scratch.remove()
            ctx.scratch = top
        run.finish()
        base = results.write(run, args.results)
        log(f"wrote {base}.md and .json, and {args.results}/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
