"""The servers under test: registryd, docker-registry (the reference) and nginx (the ceiling for
serving a file). Each runs on 127.0.0.1 on a free port, with its files in the run's scratch dir,
and is stopped by pid.
"""

import json
import os
import time

from . import procs


def make_tls_cert(directory):
    """A self-signed ECDSA P-256 certificate for 127.0.0.1 (the key type registryd's own PKI
    uses), for docker-registry and nginx. Returns (cert_path, key_path)."""
    cert = os.path.join(directory, "tls.crt")
    key = os.path.join(directory, "tls.key")
    procs.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
               "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert])
    return cert, key


def negotiated_tls(port):
    """'TLSv1.3 TLS_AES_256_GCM_SHA384', say: what a default OpenSSL client gets. Recorded
    because the cipher a server picks changes bulk throughput."""
    res = procs.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief"],
                    check=False, input="", timeout=10)
    proto = cipher = "?"
    for line in (res.stdout + res.stderr).splitlines():
        if line.startswith("Protocol version:"):
            proto = line.split(":", 1)[1].strip()
        elif line.startswith("Ciphersuite:"):
            cipher = line.split(":", 1)[1].strip()
    return f"{proto} {cipher}"


class Server:
    """What every server offers the measurements."""

    name = "?"          # label in results, e.g. "registryd", "docker-registry", "nginx"
    proc = None
    port = 0
    tls = False
    rss_include_children = False

    @property
    def base_url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def peak_rss_mib(self):
        if self.proc is None or not self.proc.alive():
            return None
        return procs.peak_rss_mib(self.proc.pid, include_children=self.rss_include_children)

    def stop(self):
        """Stops the server and returns its peak RSS in MiB, read just before the stop."""
        rss = self.peak_rss_mib()
        if self.proc is not None:
            self.proc.stop()
        return rss


class DockerRegistry(Server):
    """docker-registry (distribution 2.8) with filesystem storage.

    proxy_remote makes it a pull-through cache of that URL. With log_requests it logs at its
    default level (info: a JSON line per request, which the proxy suite counts on the upstream,
    plus the access log); without, at warn with the access log off, as registryd is run
    (docs/benchmarks.md: per-request logging is left out of the comparison on both sides).
    """

    def __init__(self, scratch, label, root, tls_cert=None, proxy_remote=None, port=None,
                 log_requests=False):
        self.name = label
        self.root = root
        self.tls = tls_cert is not None
        self.port = port or procs.free_port()
        os.makedirs(root, exist_ok=True)
        lines = [
            "version: 0.1",
            "log:",
            f"  level: {'info' if log_requests else 'warn'}",
            "  formatter: json",
            "  accesslog:",
            f"    disabled: {'false' if log_requests else 'true'}",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {root}",
            "  delete:",
            "    enabled: true",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
        ]
        if tls_cert:
            lines += ["  tls:", f"    certificate: {tls_cert[0]}", f"    key: {tls_cert[1]}"]
        if proxy_remote:
            lines += ["proxy:", f"  remoteurl: {proxy_remote}"]
        self.config_path = scratch.file(f"{label}.yml")
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log_path = scratch.file("logs", f"{label}.log")
        self.proc = procs.start(label, ["docker-registry", "serve", self.config_path],
                                self.log_path)
        procs.wait_port(self.port, self.proc)

    def blob_path(self, digest):
        """The file docker-registry keeps a blob's bytes in (nginx serves the same file)."""
        algo, hexd = digest.split(":", 1)
        return os.path.join(self.root, "docker", "registry", "v2", "blobs", algo, hexd[:2], hexd,
                            "data")

    def requests_logged(self):
        """Every request line the registry logged so far: dicts with method, uri, status,
        written (bytes)."""
        found = []
        with open(self.log_path, errors="replace") as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("msg") != "response completed":
                    continue
                found.append({"method": entry.get("http.request.method"),
                              "uri": entry.get("http.request.uri"),
                              "status": entry.get("http.response.status"),
                              "written": entry.get("http.response.written"),
                              "useragent": entry.get("http.request.useragent")})
        return found


class Nginx(Server):
    """nginx serving one directory as static files, with the settings a file server is run with
    (sendfile, tcp_nopush, one worker per core, no access log)."""

    rss_include_children = True

    def __init__(self, scratch, label, root, tls_cert=None, worker_connections=1024):
        self.name = label
        self.tls = tls_cert is not None
        self.port = procs.free_port()
        prefix = scratch.sub(f"{label}-prefix")
        for d in ("logs", "tmp"):
            os.makedirs(os.path.join(prefix, d), exist_ok=True)
        listen = f"127.0.0.1:{self.port}" + (" ssl" if tls_cert else "")
        tls_lines = ""
        if tls_cert:
            tls_lines = ("    ssl_protocols TLSv1.2 TLSv1.3;\n"
                         f"    ssl_certificate {tls_cert[0]};\n"
                         f"    ssl_certificate_key {tls_cert[1]};\n")
        conf = f"""
user root;
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
worker_rlimit_nofile {2 * worker_connections + 64};
events {{ worker_connections {worker_connections}; }}
http {{
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  access_log off;
  client_body_temp_path {prefix}/tmp;
  proxy_temp_path {prefix}/tmp;
  fastcgi_temp_path {prefix}/tmp;
  uwsgi_temp_path {prefix}/tmp;
  scgi_temp_path {prefix}/tmp;
  server {{
    listen {listen};
{tls_lines}    root {root};
  }}
}}
"""
        self.config_path = scratch.file(f"{label}.conf")
        with open(self.config_path, "w") as f:
            f.write(conf)
        self.proc = procs.start(label, ["nginx", "-p", prefix, "-c", self.config_path,
                                        "-g", "daemon off;"],
                                scratch.file("logs", f"{label}.log"))
        procs.wait_port(self.port, self.proc)


class NginxStream(Server):
    """nginx's stream proxy as the platform's node balancer runs it (FACTS.md): least_conn over
    the masters, proxy_connect_timeout 1s, proxy_timeout 1h, one worker per core. Needs
    libnginx-mod-stream."""

    rss_include_children = True
    MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"

    def __init__(self, scratch, label, masters):
        self.name = label
        self.port = procs.free_port()
        prefix = scratch.sub(f"{label}-prefix")
        for d in ("logs", "tmp"):
            os.makedirs(os.path.join(prefix, d), exist_ok=True)
        servers = "".join(f"    server {m};\n" for m in masters)
        conf = f"""
load_module {self.MODULE};
user root;
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
stream {{
  upstream masters {{
    least_conn;
{servers}  }}
  server {{
    listen 127.0.0.1:{self.port};
    proxy_pass masters;
    proxy_connect_timeout 1s;
    proxy_timeout 1h;
  }}
}}
"""
        self.config_path = scratch.file(f"{label}.conf")
        with open(self.config_path, "w") as f:
            f.write(conf)
        self.proc = procs.start(label, ["nginx", "-p", prefix, "-c", self.config_path, "-g", "daemon off;"],
                                scratch.file("logs", f"{label}.log"))
        procs.wait_port(self.port, self.proc)


def module_config(mode, section=None):
    """The operator's ModuleConfig selecting `mode`, with an optional section dict
    (e.g. {"proxy": {"imagesRepo": ..., "scheme": "HTTP"}})."""
    registry = {"mode": mode}
    if section:
        registry.update(section)
    doc = {"apiVersion": "deckhouse.io/v1alpha1", "kind": "ModuleConfig",
           "metadata": {"name": "deckhouse"},
           "spec": {"version": 1, "settings": {"registry": registry}}}
    return json.dumps(doc, indent=2) + "\n"  # registryd accepts JSON as well as YAML


def record_mode(state_dir, mode, section):
    """Makes a fresh state dir look like a node that already runs `mode`.

    A fresh node may only bootstrap into Direct or Unmanaged (docs/switching.md), and a switch
    into Local or Proxy is a staged operation with steps of its own. The benchmark wants the
    mode serving, not a switch, so it writes the state file (its documented format) that a node
    in that mode has; starting with the same mode is then a settings change only. An existing
    state file is left alone (the TLS instance reuses the plain one's state).
    """
    path = os.path.join(state_dir, "state.json")
    if mode in ("Direct", "Unmanaged") or os.path.exists(path):
        return
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    config = {"mode": mode}
    config.update(section or {})
    state = {"version": 1, "mode": mode, "legacy": False, "bootstrapFinished": True,
             "config": config, "appliedAt": "2025-01-01T00:00:00Z", "conditions": []}
    with open(path, "w") as f:
        json.dump(state, f)
    os.chmod(path, 0o600)


class Registryd(Server):
    """`registryd serve` with a ModuleConfig, plain HTTP or its own TLS, without users (plain
    HTTP refuses a users file, and both variants are measured the same way).

    After start, `ready` tells whether the mode's plugin serves (readyz says "ok: <Mode>");
    `unavailable` holds the reason when it does not (a mode that is not built yet, say).
    """

    def __init__(self, scratch, label, binary, plugin_dir, state_dir, data_dir, mode,
                 section=None, plain_http=True, extra_args=()):
        self.name = label
        self.mode = mode
        self.tls = not plain_http
        self.data_dir = data_dir
        self.port = procs.free_port()
        self.config_path = scratch.file(f"{label}-moduleconfig.json")
        with open(self.config_path, "w") as f:
            f.write(module_config(mode, section))
        record_mode(state_dir, mode, section)
        argv = [binary, "serve", "--listen-address", f"127.0.0.1:{self.port}",
                "--state-dir", state_dir, "--data-dir", data_dir,
                "--module-config", self.config_path]
        if plugin_dir:
            argv += ["--plugin-dir", plugin_dir]
        if plain_http:
            argv.append("--plain-http")
        argv += list(extra_args)
        self.proc = procs.start(label, argv, scratch.file("logs", f"{label}.log"))
        procs.wait_port(self.port, self.proc)
        self.ready, self.unavailable = self._wait_ready()

    def _wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        reason = "no answer from /readyz"
        while time.monotonic() < deadline:
            try:
                status, _, body = procs.http_get(self.base_url + "/readyz", timeout=2)
                text = body.decode(errors="replace").strip()
                if status == 200 and text.endswith(self.mode):
                    return True, None
                reason = f"/readyz {status}: {text}"
                # A plugin that refused to start does not become ready by waiting.
                if "not built yet" in text:
                    return False, (f"{self.mode} mode is not built yet in this registryd "
                                   f"(/readyz {status})")
            except OSError as e:
                reason = f"/readyz: {e}"
            time.sleep(0.2)
        return False, reason[:400]


def registryd_version(binary, plugin_dir):
    argv = [binary, "version"] + (["--plugin-dir", plugin_dir] if plugin_dir else [])
    res = procs.run(argv, check=False, timeout=30)
    return (res.stdout + res.stderr).strip()


class Link(Server):
    """bench/harness/link.py: a relay on 127.0.0.1 to target_port that passes at most `mbit`
    Mbit/s each way, shared by all its connections, like one WAN link in front of an upstream.
    A separate process, stopped by pid like the servers."""

    SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "link.py")

    def __init__(self, scratch, label, target_port, mbit):
        self.name = label
        self.mbit = mbit
        self.port = procs.free_port()
        self.log_path = scratch.file("logs", f"{label}.log")
        self.proc = procs.start(label, ["python3", self.SCRIPT, "--listen-port", str(self.port),
                                        "--target-port", str(target_port), "--mbit", str(mbit)],
                                self.log_path)
        procs.wait_port(self.port, self.proc)


class Balancer(Server):
    """`registryd balancer`: the node balancer alone in front of fixed masters (IP:port),
    health checks over plain HTTP (the masters here serve --plain-http)."""

    def __init__(self, scratch, label, binary, masters):
        self.name = label
        self.port = procs.free_port()
        self.log_path = scratch.file("logs", f"{label}.log")
        args = [binary, "balancer", "--listen-address", f"127.0.0.1:{self.port}", "--log-level", "warn"]
        for m in masters:
            args += ["--master", m]
        self.proc = procs.start(label, args, self.log_path)
        procs.wait_port(self.port, self.proc)
