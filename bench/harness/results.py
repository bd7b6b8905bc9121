"""Collecting samples, judging targets and writing results: a dated JSON and markdown file per
suite run in bench/results/, and bench/results/README.md with the latest run of each suite.
"""

import datetime
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess

from . import procs

SUITE_TITLES = {
    "local": "Local mode (issue 3): registryd Local vs docker-registry vs nginx",
    "proxy": "Proxy mode (issue 4): registryd Proxy vs docker-registry proxy mode",
    "direct": "Direct mode (issue 4): registryd Direct vs pulling straight from the upstream",
    "packages": "The packages proxy (issue 12): registryd's /package vs nginx and docker-registry's "
                "proxy mode",
    "frontdoor": "The front door (issue 9): registryd Local vs docker-registry vs nginx under "
                 "many connections",
    "balancer": "The node balancer (issue 11): blob pulls through `registryd balancer` vs straight "
                "to the master",
}


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


class Run:
    """Everything one suite run measured. Figures hold per-server samples; targets are judged
    from the medians at the end."""

    def __init__(self, suite, settings):
        self.suite = suite
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.settings = settings
        self.environment = environment()
        self.environment["loadavg_start"] = _loadavg()
        self._cpu_start = _cpu_seconds()
        self.figures = {}      # id -> {"title", "unit", "metric", "order", "servers": {...}}
        self.servers = {}      # label -> {"role", "available", "reason", ...}
        self.peak_rss_mib = {}  # label -> MiB
        self.targets = []
        self.notes = []

    def server(self, label, role, available=True, reason=None, **extra):
        entry = self.servers.setdefault(label, {"role": role})
        entry.update({"available": available, "reason": reason}, **extra)

    def figure(self, fid, title, unit, metric, higher_is_better=True):
        return self.figures.setdefault(fid, {"title": title, "unit": unit, "metric": metric,
                                             "higher_is_better": higher_is_better,
                                             "servers": {}})

    def add_sample(self, fid, label, sample):
        # The machine's load when the sample was taken: other work competes for the same cores.
        sample.setdefault("loadavg_1m", float(_loadavg().split()[0]))
        fig = self.figures[fid]
        fig["servers"].setdefault(label, {"samples": []})["samples"].append(sample)

    def not_measured(self, fid, label, reason):
        fig = self.figures[fid]
        fig["servers"].setdefault(label, {"samples": []})["not_measured"] = reason

    def summarize(self):
        for fig in self.figures.values():
            for entry in fig["servers"].values():
                good = [s for s in entry["samples"] if s.get("valid", True)]
                entry["invalid_samples"] = len(entry["samples"]) - len(good)
                vals = [s[fig["metric"]] for s in good if s.get(fig["metric"]) is not None]
                entry["median"] = _median(vals)
                entry["min"] = min(vals) if vals else None
                entry["max"] = max(vals) if vals else None
                entry["p99_ms"] = _median([s.get("p99_ms") for s in good])

    @classmethod
    def from_json(cls, data):
        """A Run rebuilt from its JSON, to judge its targets again from the samples."""
        run = cls.__new__(cls)
        run.suite = data["suite"]
        run.started = datetime.datetime.fromisoformat(data["started"])
        run.finished = datetime.datetime.fromisoformat(data["finished"])
        for key in ("settings", "environment", "figures", "servers", "peak_rss_mib", "notes"):
            setattr(run, key, data[key])
        run.targets = []
        return run

    def median(self, fid, label):
        self.summarize()  # targets are judged before finish()
        entry = self.figures.get(fid, {}).get("servers", {}).get(label)
        return None if entry is None else entry.get("median")

    def target_ratio(self, name, num, den, op, bound, describe):
        """A target on num/den (either a (figure, server) pair or a number)."""
        def value(x):
            return self.median(*x) if isinstance(x, tuple) else x
        a, b = value(num), value(den)
        ratio = None if a is None or b in (None, 0) else a / b
        self.targets.append(_judge(name, ratio, op, bound, describe, kind="ratio"))

    def target_value(self, name, val, op, bound, describe):
        self.targets.append(_judge(name, val, op, bound, describe, kind="value"))

    def finish(self):
        self.summarize()
        self.finished = datetime.datetime.now(datetime.timezone.utc)
        self.environment["loadavg_end"] = _loadavg()
        # What other work took: the machine's busy CPU time minus the harness's own and its
        # children's (every server and load generator has been waited for by now).
        machine0, own0 = self._cpu_start
        machine1, own1 = _cpu_seconds()
        wall = (self.finished - self.started).total_seconds()
        other = max(0.0, (machine1 - machine0) - (own1 - own0))
        self.environment["other_cpu_share"] = round(other / (wall * os.cpu_count()), 3)

    def to_json(self):
        return {
            "suite": self.suite,
            "title": SUITE_TITLES[self.suite],
            "started": self.started.isoformat(timespec="seconds"),
            "finished": self.finished.isoformat(timespec="seconds"),
            "settings": self.settings,
            "environment": self.environment,
            "servers": self.servers,
            "figures": self.figures,
            "peak_rss_mib": self.peak_rss_mib,
            "targets": self.targets,
            "notes": self.notes,
        }


def _judge(name, val, op, bound, describe, kind):
    ok = None
    if val is not None:
        ok = val >= bound if op == ">=" else val <= bound if op == "<=" else val == bound
    return {"name": name, "kind": kind, "value": val, "op": op, "bound": bound,
            "pass": ok, "describe": describe}


def _cpu_seconds():
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its children)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    return busy / os.sysconf("SC_CLK_TCK"), own


def _loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _first_line(argv):
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (res.stdout or res.stderr).strip()
        return text.splitlines()[0] if text else "?"
    except OSError:
        return "not installed"
    except subprocess.SubprocessError:
        return "?"


def _package_version(tool):
    """The Debian package's version of `tool`, for tools that print none of their own (hey), or
    where the `tool` on PATH is when it is not the package's."""
    path = shutil.which(tool)
    if path is None:
        return "not installed"
    line = _first_line(["dpkg-query", "-W", "-f", "${Package} ${Version}", tool])
    if os.path.realpath(path) == f"/usr/bin/{tool}" and line.startswith(tool + " "):
        return line
    return f"{path} (version unknown)"


def environment():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    distro = "?"
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    commit = _first_line(["git", "-C", repo, "rev-parse", "--short", "HEAD"])
    # A run on a tree with uncommitted changes to tracked files did not measure that commit:
    # say so (bench/results itself is left out, since a run writes there).
    try:
        changed = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no",
                                  "--", ".", ":(exclude)bench/results"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        changed = ""
    if changed:
        commit += " with uncommitted changes"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": distro,
        "commit": commit,
        "tools": {
            "docker-registry": _first_line(["docker-registry", "--version"]),
            "nginx": _first_line(["nginx", "-v"]),
            "wrk": _first_line(["wrk", "--version"]).split(" Copyright")[0],
            "hey": _package_version("hey"),
            "ab": _first_line(["ab", "-V"]),
            "curl": " ".join(_first_line(["curl", "--version"]).split()[:2]),
            "openssl": _first_line(["openssl", "version"]),
        },
        "shared_cores": ("servers and load generators run on the same machine and share its "
                         f"{os.cpu_count()} cores; nothing is pinned"),
    }


# ----------------------------------------------------------------------------------------------
# Writing


def _fmt(v, unit=None):
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 100:
            s = f"{v:,.0f}"
        elif abs(v) >= 10:
            s = f"{v:.1f}"
        else:
            s = f"{v:.2f}"
    else:
        s = str(v)
    return f"{s} {unit}" if unit else s


def _target_cells(t):
    bound = _fmt(float(t["bound"])) if t["kind"] == "ratio" else _fmt(t["bound"])
    want = f"{t['op']} {bound}" + ("x" if t["kind"] == "ratio" else "")
    got = "not measured" if t["value"] is None else (
        _fmt(t["value"]) + ("x" if t["kind"] == "ratio" else ""))
    verdict = {True: "**met**", False: "**missed**", None: "not measured"}[t["pass"]]
    return want, got, verdict


def markdown(run_json, results_name):
    r = run_json
    env = r["environment"]
    out = [f"# {r['title']}", ""]
    out.append(f"Run {r['started']} to {r['finished']} (UTC) at commit `{env['commit']}`; "
               f"`{results_name}.json` holds every sample.")
    out.append("")
    missing = [f"{k} ({v['reason']})" for k, v in r["servers"].items() if not v["available"]]
    if missing:
        out.append("**Not measured in this run:** " + "; ".join(missing) + ". Rows for it say "
                   "`not measured`; no figure in this file is estimated.")
    else:
        out.append("Every server of the suite ran; all figures below were measured.")
    out.append("")
    out.append(f"Machine: {env['cpu']}, {env['cores']} cores, {env['memory_gib']} GiB, "
               f"{env['os']}, kernel {env['kernel']}. **{env['shared_cores'].capitalize()}**, "
               f"and other work on the machine is not excluded (load average "
               f"{env['loadavg_start']} at the start, {env['loadavg_end']} at the end"
               + (f"; other work took {env['other_cpu_share']:.0%} of the CPU time"
                  if "other_cpu_share" in env else "") + ").")
    out.append("")
    busy = _busy_warning(env)
    if busy:
        out += [busy, ""]
    s = r["settings"]
    out.append("Method: " + s["method"])
    if s.get("nice"):
        out.append(f"Every server and load generator ran at nice {s['nice']}.")
    out.append("")
    out.append("## Targets")
    out.append("")
    out.append("| target | wanted | measured | verdict |")
    out.append("|---|---|---|---|")
    for t in r["targets"]:
        want, got, verdict = _target_cells(t)
        out.append(f"| {t['describe']} | {want} | {got} | {verdict} |")
    out.append("")
    out.append("## Figures")
    out.append("")
    out.append("Median of the repetitions; the range is the lowest and highest repetition.")
    out.append("")
    for fid, fig in r["figures"].items():
        out.append(f"### {fig['title']}")
        out.append("")
        has_p99 = any(e.get("p99_ms") is not None for e in fig["servers"].values()) and \
            fig["unit"] == "req/s"
        head = f"| server | median {fig['unit']} | range |"
        line = "|---|---|---|"
        if has_p99:
            head += " p99 latency (ms) |"
            line += "---|"
        head += " samples |"
        line += "---|"
        out += [head, line]
        for label, e in fig["servers"].items():
            if e.get("not_measured"):
                row = f"| {label} | not measured | - |" + (" - |" if has_p99 else "")
                row += f" {e['not_measured']} |"
            else:
                rng = f"{_fmt(e['min'])} - {_fmt(e['max'])}"
                row = f"| {label} | {_fmt(e['median'])} | {rng} |"
                if has_p99:
                    row += f" {_fmt(e['p99_ms'])} |"
                extra = f", {e['invalid_samples']} invalid" if e["invalid_samples"] else ""
                row += f" {len(e['samples'])}{extra} |"
            out.append(row)
        if fig.get("note"):
            out += ["", fig["note"]]
        out.append("")
    out.append("## Peak RSS")
    out.append("")
    out.append("VmHWM from /proc/<pid>/status just before each server stopped; the highest of "
               "the server's instances in this run (nginx: master plus workers).")
    out.append("")
    out.append("| server | peak RSS (MiB) |")
    out.append("|---|---|")
    for label, entry in r["servers"].items():
        rss = r["peak_rss_mib"].get(label)
        out.append(f"| {label} | {_fmt(rss) if rss is not None else 'not measured'} |")
    out.append("")
    info = [(k, v) for k, v in r["servers"].items() if v.get("tls")]
    if info:
        out.append("TLS negotiated with a default OpenSSL client: " +
                   "; ".join(f"{k}: {v['tls']}" for k, v in info) + ".")
        out.append("")
    if r["notes"]:
        out.append("## Notes")
        out.append("")
        out += [f"- {n}" for n in r["notes"]]
        out.append("")
    out.append("## Tools")
    out.append("")
    for k, v in env["tools"].items():
        out.append(f"- {k}: {v}")
    for k, v in r["servers"].items():
        if v.get("version"):
            out.append(f"- {k}: {v['version']}")
    out.append("")
    return "\n".join(out)


def write(run, results_dir, name=None):
    """Writes <stamp>-<suite>.json and .md and refreshes README.md; returns the base path."""
    os.makedirs(results_dir, exist_ok=True)
    data = run.to_json()
    name = name or run.started.strftime("%Y-%m-%dT%H%M%SZ") + "-" + run.suite
    base = os.path.join(results_dir, name)
    with open(base + ".json", "w") as f:
        json.dump(data, f, indent=1, sort_keys=False)
        f.write("\n")
    with open(base + ".md", "w") as f:
        f.write(markdown(data, name))
    write_readme(results_dir)
    return base


def write_readme(results_dir):
    latest = {}
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        latest[data.get("suite")] = (os.path.basename(path)[:-5], data)
    out = ["# Benchmark results", "",
           "Written by `bench/run.sh` after every run: the latest run of each suite, its targets "
           "and headline figures. Each run's full figures are in its dated `.md` file, every "
           "sample in its `.json`. How the figures are made and what they do not show: "
           "docs/benchmarks.md.", ""]
    if not latest:
        out.append("No run yet.")
    for suite in SUITE_TITLES:
        if suite not in latest:
            out += [f"## {SUITE_TITLES[suite]}", "", "Not run yet.", ""]
            continue
        name, r = latest[suite]
        env = r["environment"]
        out += [f"## {r['title']}", ""]
        out.append(f"Latest run: [{name}]({name}.md), {r['started']} UTC, commit "
                   f"`{env['commit']}`, {env['cores']} cores shared by servers and load "
                   f"generators (load average {env['loadavg_start']} at the start).")
        busy = _busy_warning(env)
        if busy:
            out += ["", busy]
        missing = [f"{k}: {v['reason']}" for k, v in r["servers"].items() if not v["available"]]
        if missing:
            out.append("")
            out.append("**Not measured:** " + "; ".join(missing) + ".")
        out += ["", "| target | wanted | measured | verdict |", "|---|---|---|---|"]
        for t in r["targets"]:
            want, got, verdict = _target_cells(t)
            out.append(f"| {t['describe']} | {want} | {got} | {verdict} |")
        out += ["", "| figure | " + " | ".join(_labels(r)) + " |",
                "|---|" + "---|" * len(_labels(r))]
        for fig in r["figures"].values():
            cells = []
            for label in _labels(r):
                e = fig["servers"].get(label)
                if e is None:
                    cells.append("")
                elif e.get("not_measured"):
                    cells.append("not measured")
                else:
                    cell = _fmt(e["median"])
                    if fig["unit"] == "req/s" and e.get("p99_ms") is not None:
                        cell += f" (p99 {_fmt(e['p99_ms'])} ms)"
                    cells.append(cell)
            out.append(f"| {fig['title']} ({fig['unit']}) | " + " | ".join(cells) + " |")
        rss = ["-" if r["peak_rss_mib"].get(lb) is None else _fmt(r["peak_rss_mib"][lb])
               for lb in _labels(r)]
        out.append("| peak RSS (MiB) | " + " | ".join(rss) + " |")
        out.append("")
    with open(os.path.join(results_dir, "README.md"), "w") as f:
        f.write("\n".join(out))


def _busy_warning(env):
    """A warning when other work took more than a tenth of the machine during the run."""
    share = env.get("other_cpu_share")
    start = float(env["loadavg_start"].split()[0])
    if share is None:  # runs recorded before the share was measured
        if start <= env["cores"] / 2:
            return None
        took = "other work loaded it"
    elif share <= 0.10:
        return None
    else:
        took = f"work other than the benchmark took {share:.0%} of its CPU time"
    return (f"**The machine was busy during this run**: {took} (load average "
            f"{env['loadavg_start']} at the start). "
            "The servers got only part of the cores, and the scheduler's per-thread fairness "
            "favours servers that run more threads, so these figures understate capacity and "
            "can misstate ratios. Each sample's load average is in the JSON.")


def _labels(r):
    return list(r["servers"].keys())
