"""Processes, ports, scratch space and memory readings for the benchmarks.

Every process the harness starts goes through `start()`, which remembers it; `stop_all()` (run at
exit and on SIGINT/SIGTERM) stops each one by its own pid, so a failed or interrupted run leaves
nothing behind. Nothing here ever kills by name.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import ssl

_RUNNING = []  # Proc objects still alive, in start order
AUTOGROUP_NICE = None  # set by the harness for --nice


def autogroup_nice(pid):
    """The nice value of pid's autogroup ("/autogroup-20 nice 0"), or None."""
    try:
        with open(f"/proc/{pid}/autogroup") as f:
            return int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def set_autogroup_nice(pid, value):
    """With the kernel's autogroup scheduling, the CPU is shared between sessions first and a
    process's nice value counts only inside its session; a server started in a session of its
    own therefore gets the session's nice value too. Best effort: no autogroup, no change."""
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(value))
    except OSError:
        pass


class Proc:
    """One background process with its output in a log file."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")
        # A session of its own: a Ctrl-C on the terminal reaches the harness only, which then
        # stops its children in order instead of leaving them half-killed.
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                      start_new_session=True)
        self.pid = self.popen.pid
        _RUNNING.append(self)
        if AUTOGROUP_NICE is not None:
            set_autogroup_nice(self.pid, AUTOGROUP_NICE)

    def alive(self):
        return self.popen.poll() is None

    def stop(self, grace=10.0):
        """SIGTERM, then SIGKILL after `grace` seconds; returns the exit code."""
        if self.alive():
            try:
                self.popen.send_signal(signal.SIGTERM)
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        if self in _RUNNING:
            _RUNNING.remove(self)
        return self.popen.returncode

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""


def start(name, argv, log_path, env=None, cwd=None):
    return Proc(name, argv, log_path, env=env, cwd=cwd)


def stop_all():
    for proc in reversed(list(_RUNNING)):
        proc.stop(grace=5.0)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


atexit.register(stop_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


class Scratch:
    """A temporary directory for one run, removed at exit unless `keep`."""

    def __init__(self, keep=False):
        base = os.environ.get("BENCH_TMPDIR") or None
        self.path = tempfile.mkdtemp(prefix="registryd-bench.", dir=base)
        self.keep = keep
        atexit.register(self._cleanup)

    def child(self, name):
        """A scratch dir inside this one, removed by `remove()` (or with its parent)."""
        c = Scratch.__new__(Scratch)
        c.path = self.sub(name)
        c.keep = self.keep
        return c

    def remove(self):
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)

    def sub(self, *parts):
        path = os.path.join(self.path, *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def file(self, *parts):
        path = os.path.join(self.path, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def _cleanup(self):
        # atexit runs in reverse registration order, so the processes (registered at import)
        # are stopped after this; stop them first so no server holds files being removed.
        stop_all()
        if self.keep:
            print(f"bench: scratch kept in {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited before listening on {port}:\n{proc.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


INSECURE_TLS = ssl.create_default_context()
INSECURE_TLS.check_hostname = False
INSECURE_TLS.verify_mode = ssl.CERT_NONE


def http_get(url, headers=None, method="GET", timeout=10.0, data=None):
    """(status, headers dict with lower-case names, body bytes); TLS is not verified: the
    harness measures speed, the integration tests check trust."""
    req = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=INSECURE_TLS) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def children(pid):
    """Direct children of pid, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces; the parent pid is the 2nd field after ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def cpu_seconds(pid, include_children=False):
    """User plus system CPU seconds pid has used so far (every thread); with include_children
    also its direct children's (nginx's workers). A process that is gone counts nothing."""
    total = 0
    for p in [pid] + (children(pid) if include_children else []):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15
    return total / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid, include_children=False):
    """VmHWM (peak resident set) of pid in MiB; with include_children the sum over pid and its
    direct children (nginx's master and workers), an upper bound of the group's peak."""
    pids = [pid] + (children(pid) if include_children else [])
    total = 0
    for p in pids:
        try:
            total += _status_kib(p, "VmHWM")
        except OSError:
            pass
    return round(total / 1024.0, 1)


def run(argv, timeout=600, check=True, **kw):
    """Runs a short foreground command and returns its CompletedProcess (text output)."""
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return res


def run_counting_reads(argv, timeout):
    """Runs a short foreground command like run(check=False), and also returns the bytes it
    read through the kernel: (returncode, stdout, stderr, rchar). `rchar` comes from the
    process's /proc/<pid>/io, read after it exits and before it is reaped (the zombie keeps
    it). The command is killed after `timeout` seconds."""
    with tempfile.TemporaryFile("w+") as outf, tempfile.TemporaryFile("w+") as errf:
        p = subprocess.Popen(argv, stdout=outf, stderr=errf, text=True)
        deadline = threading.Timer(timeout, p.kill)
        deadline.start()
        try:
            os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
            with open(f"/proc/{p.pid}/io") as f:
                io = dict(ln.split(": ") for ln in f.read().splitlines())
        finally:
            deadline.cancel()
            if p.poll() is None:
                p.kill()
            p.wait()
        outf.seek(0)
        errf.seek(0)
        return p.returncode, outf.read(), errf.read(), int(io.get("rchar", "0"))
