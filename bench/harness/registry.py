"""Registry client operations the benchmarks need: test content, pushes with curl (the way a
person checks a registry by hand, and the client whose timing is measured) and verified pulls.
"""

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request

from . import procs

MIB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MANIFEST_ACCEPT = ("application/vnd.oci.image.manifest.v1+json, "
                   "application/vnd.oci.image.index.v1+json, "
                   "application/vnd.docker.distribution.manifest.v2+json, "
                   "application/vnd.docker.distribution.manifest.list.v2+json")


def random_file(path, size, chunk=4 * MIB):
    """Writes `size` random bytes to path; returns the sha256 digest."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left > 0:
            data = os.urandom(min(chunk, left))
            h.update(data)
            f.write(data)
            left -= len(data)
    return "sha256:" + h.hexdigest()


def variant_file(base_path, path, tag):
    """A copy of base_path whose first bytes are replaced by `tag`, so every variant has its own
    digest without generating new random data. Returns the sha256 digest."""
    h = hashlib.sha256()
    head = tag.encode().ljust(64, b"\0")[:64]
    with open(base_path, "rb") as src, open(path, "wb") as dst:
        first = True
        while True:
            data = src.read(4 * MIB)
            if not data:
                break
            if first:
                data = head + data[len(head):]
                first = False
            h.update(data)
            dst.write(data)
    return "sha256:" + h.hexdigest()


def _curl_tls_args(url):
    return ["-k"] if url.startswith("https:") else []


def push_blob(base_url, repo, path, digest):
    """A monolithic push: POST /v2/<repo>/blobs/uploads/ then PUT <location>?digest= with the
    whole file streamed by curl. Returns (seconds, status); seconds is curl's own time for the
    two requests, without process start-up."""
    url = f"{base_url}/v2/{repo}/blobs/uploads/"
    # Content-Length: 0 as docker, containerd and skopeo send it: registryd (cpp-httplib)
    # waits for a body on a POST without one, and the benchmark measures speed, not that.
    res = procs.run(["curl", "-sS", "-X", "POST", "-H", "Content-Length: 0", "-D", "-",
                     "-o", "/dev/null",
                     "-w", "\n%{http_code} %{time_total}", "--max-time", "60"]
                    + _curl_tls_args(url) + [url])
    lines = res.stdout.replace("\r", "").splitlines()
    code, post_time = lines[-1].split()
    if code != "202":
        raise RuntimeError(f"POST {url} answered {code}")
    location = next((ln.split(":", 1)[1].strip() for ln in lines
                     if ln.lower().startswith("location:")), None)
    if not location:
        raise RuntimeError(f"POST {url} gave no Location")
    location = urllib.parse.urljoin(base_url + "/", location)
    put_url = location + ("&" if "?" in location else "?") + "digest=" + digest
    # -T streams the file (--data-binary @file would first read all of it into curl's memory);
    # an empty Expect header skips the 100-continue round trip for every server alike.
    res = procs.run(["curl", "-sS", "-T", path, "-H", "Expect:",
                     "-H", "Content-Type: application/octet-stream", "-o", "/dev/null",
                     "-w", "%{http_code} %{time_total}", "--max-time", "600"]
                    + _curl_tls_args(put_url) + [put_url], timeout=700)
    code, put_time = res.stdout.split()
    if code != "201":
        raise RuntimeError(f"PUT {put_url} answered {code}")
    return float(post_time) + float(put_time), int(code)


def push_bytes(base_url, repo, data):
    """Pushes a small blob held in memory (a config); returns its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, headers, _ = procs.http_get(f"{base_url}/v2/{repo}/blobs/uploads/", method="POST",
                                        data=b"")
    if status != 202:
        raise RuntimeError(f"POST upload on {base_url} answered {status}")
    location = urllib.parse.urljoin(base_url + "/", headers["location"])
    put_url = location + ("&" if "?" in location else "?") + "digest=" + digest
    status, _, body = procs.http_get(put_url, method="PUT", data=data,
                                     headers={"Content-Type": "application/octet-stream"})
    if status != 201:
        raise RuntimeError(f"PUT blob on {base_url} answered {status}: {body[:200]!r}")
    return digest


def image_manifest(config_digest, config_size, layers):
    """An OCI image manifest; layers is a list of (digest, size)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": s} for d, s in layers],
    }
    return json.dumps(doc, indent=3).encode()


def image_config(layer_digests):
    return json.dumps({"architecture": "amd64", "os": "linux",
                       "rootfs": {"type": "layers", "diff_ids": layer_digests},
                       "config": {"Cmd": ["/bin/sh"]}}).encode()


def put_manifest(base_url, repo, reference, body):
    status, headers, text = procs.http_get(f"{base_url}/v2/{repo}/manifests/{reference}",
                                           method="PUT", data=body,
                                           headers={"Content-Type": OCI_MANIFEST})
    if status != 201:
        raise RuntimeError(f"PUT manifest on {base_url} answered {status}: {text[:300]!r}")
    return headers.get("docker-content-digest")


def fetch_digest(url, headers=None):
    """GETs url streaming and returns (status, size, 'sha256:...')."""
    req = urllib.request.Request(url, headers=headers or {})
    h = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(req, timeout=120, context=procs.INSECURE_TLS) as resp:
            status = resp.status
            while True:
                data = resp.read(4 * MIB)
                if not data:
                    break
                size += len(data)
                h.update(data)
    except urllib.error.HTTPError as e:
        return e.code, 0, None
    return status, size, "sha256:" + h.hexdigest()
