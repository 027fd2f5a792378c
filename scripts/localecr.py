#!/usr/bin/env python3
"""Local stand-in for AWS ECR, for tests.

Two real servers on loopback play the two halves of ECR:

* moto (server mode) answers the ECR *API* (DescribeImages, BatchGetImage,
  GetAuthorizationToken, ...), account 123456789012, region us-east-1;
* Debian's ``docker-registry`` (CNCF distribution) serves the OCI
  *distribution* API (``/v2/<repo>/manifests|blobs``).

As in real ECR, the two halves are one registry: clients reach the
distribution API through a small proxy (``ECR_REGISTRY_ENDPOINT``) that
refuses pushes into repositories the ECR API does not have (``NAME_UNKNOWN``)
and registers every manifest pushed through it with moto's ``put_image``, so
an image pushed with ``docker push``-style requests is visible to
``DescribeImages``/``BatchGetImage`` at once. The registry itself is at
``LOCALECR_REGISTRY_URL``.

Two more ``docker-registry`` servers play upstream package registries for
``mirror``: a public one such as xpkg.upbound.io (``LOCALECR_UPSTREAM``,
host:port, plain HTTP on loopback, anonymous) and a private one that wants
Basic credentials (``LOCALECR_PRIVATE_UPSTREAM``; the base64 ``user:password``
a Docker config file would hold is ``LOCALECR_PRIVATE_AUTH``).

``seed`` builds real Crossplane package images (xpkg) and makes each one
visible through both halves: blobs and manifests go to the registry, and the
same manifest bytes (same digest) are registered in moto with ``put_image``.
``seed --upstream`` (``--private-upstream``) pushes to that upstream only.

``up --tls`` adds a reader for clients that want HTTPS, such as Crossplane
(``--ca-bundle-path``): one more ``docker-registry``, read-only, over the same
storage as the ECR registry, serving HTTPS at ``LOCALECR_TLS_REGISTRY``
(127.0.0.1:PORT) with a certificate for IP 127.0.0.1 and DNS localhost from
the CA in ``LOCALECR_TLS_CA`` (DIR/tls/ca.crt). What is pushed to the local
ECR is readable there at once; pushes to it are refused.

``registry stop`` / ``registry start`` take the ECR stand-in's registries (the
data plane behind the proxy, and the TLS reader) down and back up on the same
ports and storage, for outage tests; moto, the proxy and the upstreams stay up.

Commands (all take ``--state-dir DIR``):

  up       [--tls] start the servers, write DIR/env (shell KEY=VALUE lines)
  down     stop them
  seed     [--upstream] SPEC.json | -  build + push images, print {repo: {tag: digest}}
  status   exit 0 when every server answers; prints up|down, then NAME up|down URL lines
  registry stop|start   stop / start again the ECR registries (idempotent)
  watch    (internal) stop the servers once --pid has exited
  proxy    (internal) serve the ECR data-plane proxy

Seed spec (JSON)::

  {"images": [{
     "repository": "upbound/provider-family-aws",
     "tags": ["v1.0.0", "v1.1.0"],
     "package": {...package.yaml meta document...},
     "layout": "annotated" | "unannotated" | "index",   # default annotated
     "platforms": ["linux/amd64", "linux/arm64"],         # index only
     "packageFiles": ["package/crossplane.yaml", ...],   # instead of "package": these
                               # YAML files (relative to the current directory) as
                               # one stream; the first document is the meta object
     "crds": N,                # append N small valid CRDs (cluster-scoped, group
                               # <metadata.name>.example.org, kinds Widget0..N-1)
     "extraYamlBytes": N,      # append >= N bytes of CRD documents
     "corrupt": false,         # base layer bytes are not gzip
     "oversized": N,           # package.yaml padded to N bytes (streamed)
     "runtimeLayers": N,       # N non-package layers before the base layer
     "sharedLayers": N,        # N layers identical across images, after those
     "digestVariant": "x",     # mixed into the config
     "signature": false        # also push a cosign-style sha256-<hex>.sig tag
  }]}
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

XPKG_ANNOTATION = "io.crossplane.xpkg"
XPKG_BASE = "base"
PACKAGE_FILE = "package.yaml"

REGISTRY_BIN = os.environ.get("LOCALECR_REGISTRY_BIN", "/usr/bin/docker-registry")


def log(msg: str) -> None:
    print(f"localecr: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_env(state: Path) -> dict[str, str]:
    env_file = state / "env"
    if not env_file.exists():
        raise SystemExit(f"localecr: {env_file} missing; run `localecr.py up --state-dir {state}` first")
    out = {}
    for line in env_file.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def http_ok(url: str, timeout: float = 2.0, cafile: str | None = None, any_status: bool = False) -> bool:
    """Whether url answers (below 500, or at all with any_status); https URLs
    are verified against cafile."""
    ctx = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:
            return 200 <= r.status < 500 or any_status
    except urllib.error.HTTPError as e:
        return e.code < 500 or any_status
    except Exception:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


PRIVATE_USER = "mirror"
PRIVATE_PASSWORD = "localecr-not-a-secret"


def private_auth() -> str:
    import base64

    return base64.b64encode(f"{PRIVATE_USER}:{PRIVATE_PASSWORD}".encode()).decode()


def htpasswd(path: Path) -> None:
    import bcrypt  # from scripts/requirements.txt

    hashed = bcrypt.hashpw(PRIVATE_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"{PRIVATE_USER}:{hashed}\n")


def registry_config(data_dir: Path, port: int, htpasswd_file: Path | None = None,
                    tls: tuple[Path, Path] | None = None, readonly: bool = False) -> str:
    # Format of distribution 2.8 (Debian's docker-registry): version 0.1.
    # No auth section: the registry accepts any (or no) Authorization header,
    # so a client that sends ECR's Basic AWS:<token> credentials works too.
    # No storage.cache section: no blobdescriptor cache, every answer is read
    # from the filesystem, so a reader sharing another registry's storage
    # never answers from a stale cache. tls: (certificate, key) to serve HTTPS;
    # readonly: pushes and deletes are refused (storage.maintenance.readonly).
    return f"""version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data_dir}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
""" + ("""    readonly:
      enabled: true
""" if readonly else "") + f"""http:
  addr: 127.0.0.1:{port}
  secret: localecr-not-a-secret
""" + (f"""  tls:
    certificate: {tls[0]}
    key: {tls[1]}
""" if tls else "") + (f"""auth:
  htpasswd:
    realm: localecr-private
    path: {htpasswd_file}
""" if htpasswd_file else "")


def spawn(argv: list[str], logfile: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    out = open(logfile, "ab")
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # own process group, so `down` can stop it whole
    )


def stop_pid(pid: int, timeout: float = 5.0) -> None:
    if not alive(pid):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                # Reap it if it is our child; ignore otherwise.
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                pass
            if not alive(pid):
                return
            time.sleep(0.05)


# The ECR stand-in's own docker-registry processes, which `registry stop` and
# `registry start` take down and bring back (moto, the proxy and the upstream
# registries stay up): name in pids.json -> config file in the state dir. The
# port and the storage are in the config, so a restart serves the same data
# at the same address.
ECR_REGISTRIES = {"registry": "registry.yml", "tls": "tls.yml"}


@contextlib.contextmanager
def state_lock(state: Path):
    """Serializes up, down and registry stop/start on one state dir, so a
    watcher's `down` never misses a process a concurrent `registry start`
    is recording."""
    import fcntl

    with open(state / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def read_pids(state: Path) -> dict[str, int]:
    pid_file = state / "pids.json"
    return {k: int(v) for k, v in json.loads(pid_file.read_text()).items()} if pid_file.exists() else {}


def write_pids(state: Path, pids: dict[str, int]) -> None:
    tmp = state / "pids.json.tmp"
    tmp.write_text(json.dumps(pids))
    os.replace(tmp, state / "pids.json")


def write_env(state: Path, env: dict[str, str]) -> None:
    tmp = state / "env.tmp"
    tmp.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    os.replace(tmp, state / "env")


class Probe(NamedTuple):
    url: str
    cafile: str | None = None  # for https
    any_status: bool = False   # up when it answers at all (the proxy answers 503 while the registry is down)

    def ok(self) -> bool:
        return http_ok(self.url, cafile=self.cafile, any_status=self.any_status)


def server_probes(env: dict[str, str]) -> dict[str, Probe]:
    """name -> how to tell that server is up."""
    probes = {"moto": Probe(env["AWS_ENDPOINT_URL_ECR"] + "/moto-api/"),
              "proxy": Probe(env["ECR_REGISTRY_ENDPOINT"] + "/v2/", any_status=True)}
    if "LOCALECR_REGISTRY_URL" in env:
        probes["registry"] = Probe(env["LOCALECR_REGISTRY_URL"] + "/v2/")
    if "LOCALECR_TLS_REGISTRY" in env:
        probes["tls"] = Probe(f"https://{env['LOCALECR_TLS_REGISTRY']}/v2/", env.get("LOCALECR_TLS_CA"))
    if "LOCALECR_UPSTREAM_URL" in env:
        probes["upstream"] = Probe(env["LOCALECR_UPSTREAM_URL"] + "/v2/")
    if "LOCALECR_PRIVATE_UPSTREAM" in env:
        probes["private"] = Probe(f"http://{env['LOCALECR_PRIVATE_UPSTREAM']}/v2/")
    return probes


def wait_ready(state: Path, procs: dict[str, subprocess.Popen], probes: dict[str, Probe],
               timeout: float = 60) -> None:
    """Waits until every probe answers; stops procs and exits if one of them
    dies or the time runs out."""
    deadline = time.time() + timeout
    ready = {name: False for name in probes}
    while time.time() < deadline and not all(ready.values()):
        for name in probes:
            proc = procs.get(name)
            if proc is not None and proc.poll() is not None:
                tail = (state / f"{name}.log").read_text(errors="replace")[-2000:]
                for p in procs.values():
                    stop_pid(p.pid)
                raise SystemExit(f"localecr: {name} exited with {proc.returncode}:\n{tail}")
            ready[name] = ready[name] or probes[name].ok()
        if not all(ready.values()):
            time.sleep(0.1)
    if not all(ready.values()):
        for p in procs.values():
            stop_pid(p.pid)
        raise SystemExit(f"localecr: servers not ready after {timeout:.0f}s: {ready}; logs in {state}")


def spawn_registry(state: Path, name: str) -> subprocess.Popen:
    return spawn([REGISTRY_BIN, "serve", str(state / ECR_REGISTRIES[name])], state / f"{name}.log")


def tls_setup(state: Path, data_dir: Path, port: int) -> dict[str, str]:
    """The TLS reader: a CA and a server certificate (IP 127.0.0.1, DNS
    localhost) in DIR/tls (kept when already there, so a CA handed out
    stays valid), and DIR/tls.yml, a read-only registry over data_dir.
    Returns its env lines."""
    tls_dir = state / "tls"
    ca, crt, key = tls_dir / "ca.crt", tls_dir / "tls.crt", tls_dir / "tls.key"
    if not (ca.exists() and crt.exists() and key.exists()):
        here = str(Path(__file__).resolve().parent)
        if here not in sys.path:
            sys.path.insert(0, here)
        import certs  # scripts/certs.py (cryptography, from scripts/requirements.txt)

        authority = certs.CA("localecr CA")
        crt_pem, key_pem = authority.issue("localecr registry", dns=["localhost"], ips=["127.0.0.1"])
        tls_dir.mkdir(exist_ok=True)
        key.write_bytes(key_pem)
        key.chmod(0o600)
        crt.write_bytes(crt_pem)
        ca.write_bytes(authority.pem)
    (state / ECR_REGISTRIES["tls"]).write_text(registry_config(data_dir, port, tls=(crt, key), readonly=True))
    return {"LOCALECR_TLS_REGISTRY": f"127.0.0.1:{port}", "LOCALECR_TLS_CA": str(ca)}


def add_tls(state: Path) -> None:
    """`up --tls` on servers that are up without the TLS reader: starts it
    alongside them."""
    env = read_env(state)
    extra = tls_setup(state, state / "registry-data", free_port())
    proc = spawn_registry(state, "tls")
    pids = read_pids(state)
    pids["tls"] = proc.pid
    write_pids(state, pids)
    env.update(extra)
    try:
        wait_ready(state, {"tls": proc}, {"tls": server_probes(env)["tls"]})
    except SystemExit:
        pids.pop("tls")
        write_pids(state, pids)
        raise
    write_env(state, env)
    log(f"up: TLS registry https://{extra['LOCALECR_TLS_REGISTRY']} added (CA {extra['LOCALECR_TLS_CA']})")


def cmd_up(args) -> int:
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    with state_lock(state):
        return up(args, state)


def up(args, state: Path) -> int:
    pid_file = state / "pids.json"
    if pid_file.exists():
        pids = read_pids(state)
        if all(alive(p) for p in pids.values()) and cmd_status(args, quiet=True) == 0:
            if args.tls and "tls" not in pids:
                add_tls(state)
            log(f"already up ({state / 'env'})")
            return 0
        for p in pids.values():
            stop_pid(p)
        pid_file.unlink()

    if not os.path.exists(REGISTRY_BIN):
        raise SystemExit(f"localecr: {REGISTRY_BIN} not found; install Debian's docker-registry package")

    ports: set[int] = set()
    while len(ports) < 6:
        ports.add(free_port())
    moto_port, reg_port, up_port, proxy_port, private_port, tls_port = sorted(ports)

    data_dir = state / "registry-data"
    data_dir.mkdir(exist_ok=True)
    cfg = state / ECR_REGISTRIES["registry"]
    cfg.write_text(registry_config(data_dir, reg_port))
    up_dir = state / "upstream-data"
    up_dir.mkdir(exist_ok=True)
    up_cfg = state / "upstream.yml"
    up_cfg.write_text(registry_config(up_dir, up_port))
    private_dir = state / "private-data"
    private_dir.mkdir(exist_ok=True)
    htpasswd(state / "htpasswd")
    private_cfg = state / "private.yml"
    private_cfg.write_text(registry_config(private_dir, private_port, state / "htpasswd"))
    tls_env = tls_setup(state, data_dir, tls_port) if args.tls else {}

    moto_env = dict(os.environ)
    moto_env.update({
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "MOTO_ACCOUNT_ID": ACCOUNT_ID,
    })
    moto_url = f"http://127.0.0.1:{moto_port}"
    reg_url = f"http://127.0.0.1:{reg_port}"
    up_url = f"http://127.0.0.1:{up_port}"
    proxy_url = f"http://127.0.0.1:{proxy_port}"
    procs = {
        "moto": spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                      state / "moto.log", moto_env),
        "registry": spawn_registry(state, "registry"),
        "upstream": spawn([REGISTRY_BIN, "serve", str(up_cfg)], state / "upstream.log"),
        "private": spawn([REGISTRY_BIN, "serve", str(private_cfg)], state / "private.log"),
        "proxy": spawn([sys.executable, str(Path(__file__).resolve()), "proxy", "--state-dir", str(state),
                        "--port", str(proxy_port), "--registry", reg_url, "--moto", moto_url],
                       state / "proxy.log", moto_env),
    }
    if args.tls:
        procs["tls"] = spawn_registry(state, "tls")
    write_pids(state, {name: p.pid for name, p in procs.items()})

    env = {
        "AWS_ENDPOINT_URL_ECR": moto_url,
        "ECR_REGISTRY_ENDPOINT": proxy_url,
        "LOCALECR_REGISTRY_URL": reg_url,
        **tls_env,
        "LOCALECR_UPSTREAM": f"127.0.0.1:{up_port}",
        "LOCALECR_UPSTREAM_URL": up_url,
        "LOCALECR_PRIVATE_UPSTREAM": f"127.0.0.1:{private_port}",
        "LOCALECR_PRIVATE_AUTH": private_auth(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "LOCALECR_ACCOUNT_ID": ACCOUNT_ID,
        "LOCALECR_STATE": str(state),
        "LOCALECR_PYTHON": str(Path(sys.executable).absolute()),
        "LOCALECR_SCRIPT": str(Path(__file__).resolve()),
    }
    try:
        wait_ready(state, procs, server_probes(env))
    except SystemExit:
        (state / "pids.json").unlink(missing_ok=True)
        raise
    write_env(state, env)
    if args.watch_pid:
        spawn([sys.executable, str(Path(__file__).resolve()), "watch", "--state-dir", str(state),
               "--pid", str(args.watch_pid)], state / "watch.log")
    tls_note = (f", TLS registry https://{tls_env['LOCALECR_TLS_REGISTRY']} (read-only, CA "
                f"{tls_env['LOCALECR_TLS_CA']})" if tls_env else "")
    log(f"up: ECR API {moto_url}, ECR registry {proxy_url} (over {reg_url}){tls_note}, upstream {up_url}, "
        f"env in {state / 'env'}")
    return 0


def cmd_down(args) -> int:
    state = Path(args.state_dir).resolve()
    if not (state / "pids.json").exists():
        return 0
    with state_lock(state):
        for pid in read_pids(state).values():
            stop_pid(pid)
        (state / "pids.json").unlink(missing_ok=True)
    return 0


def cmd_watch(args) -> int:
    """Stops the servers (and removes the state dir) once the process that
    asked for them is gone, however it ended."""
    while alive(int(args.pid)):
        time.sleep(0.5)
    cmd_down(args)
    shutil.rmtree(Path(args.state_dir), ignore_errors=True)
    return 0


def cmd_registry(args) -> int:
    """`registry stop`: stops the ECR stand-in's docker-registry processes
    (the data plane behind the proxy, and the TLS reader); `registry start`:
    starts the stopped ones again with the same config (port, storage).
    Both idempotent."""
    state = Path(args.state_dir).resolve()
    env = read_env(state)
    names = ["registry"] + (["tls"] if "LOCALECR_TLS_REGISTRY" in env else [])
    with state_lock(state):
        if not (state / "pids.json").exists():
            if args.action == "stop":
                return 0
            raise SystemExit(f"localecr: not up; run `localecr.py up --state-dir {state}` first")
        pids = read_pids(state)
        if args.action == "stop":
            for name in names:
                pid = pids.pop(name, None)
                if pid is not None:
                    stop_pid(pid)
            write_pids(state, pids)
            log(f"registry stop: {', '.join(names)} stopped")
            return 0
        procs = {name: spawn_registry(state, name) for name in names
                 if not (name in pids and alive(pids[name]))}
        # Recorded before they answer: a `down` (or the watcher) after a
        # failed or interrupted start still stops them.
        pids.update({name: p.pid for name, p in procs.items()})
        write_pids(state, pids)
        probes = server_probes(env)
        try:
            wait_ready(state, procs, {name: probes[name] for name in names})
        except SystemExit:
            for name in procs:
                pids.pop(name, None)
            write_pids(state, pids)
            raise
        log(f"registry start: {', '.join(names)} up" + (f" (started {', '.join(procs)})" if procs else ""))
    return 0


def cmd_status(args, quiet: bool = False) -> int:
    """Prints `up` or `down`, then one `NAME up|down URL` line per server."""
    state = Path(args.state_dir).resolve()
    env = read_env(state)
    probes = server_probes(env)
    results = {name: probe.ok() for name, probe in probes.items()}
    ok = all(results.values())
    if not quiet:
        print("up" if ok else "down")
        for name, up_ in results.items():
            print(f"{name} {'up' if up_ else 'down'} {probes[name].url}")
    return 0 if ok else 1


# --------------------------------------------------------------------------
# the ECR data-plane proxy

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade"}
NAME_RE = r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags|referrers)/(?P<rest>.*)$"


def serve_proxy(port: int, registry: str, moto: str) -> None:
    """ECR's data plane over the registry: writes need the repository to exist
    in the ECR API; a stored manifest is registered there before the push is
    answered, as real ECR makes it visible to the API at once."""
    import http.client
    import re
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    ecr = Ecr({"AWS_ENDPOINT_URL_ECR": moto})
    ecr_lock = threading.Lock()  # one API call at a time: boto3 clients are shared
    backend = urllib.parse.urlsplit(registry)

    def repository_exists(name: str) -> bool:
        with ecr_lock:
            try:
                ecr.client.describe_repositories(repositoryNames=[name])
                return True
            except ecr.client.exceptions.RepositoryNotFoundException:
                return False

    # Write requests (POST, PUT, PATCH, DELETE) by repository, answered or
    # refused: what GET /_localecr/writes?prefix=P reports, with the
    # repositories under P in the ECR API, so a test can assert that a run
    # wrote nothing at all.
    write_counts: dict[str, int] = {}
    writes_lock = threading.Lock()

    def written(prefix: str) -> dict:
        with writes_lock:
            count = sum(n for name, n in write_counts.items() if name.startswith(prefix))
        with ecr_lock:
            pages = ecr.client.get_paginator("describe_repositories").paginate()
            names = [r["repositoryName"] for page in pages for r in page["repositories"]
                     if r["repositoryName"].startswith(prefix)]
        return {"writes": count, "repositories": sorted(names)}

    def register(name: str, reference: str, manifest: bytes, media_type: str) -> None:
        tag = None if reference.startswith("sha256:") else reference
        with ecr_lock:
            ecr.put(name, manifest, media_type, tag)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # the access log would drown the test logs
            pass

        def body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = io.BytesIO()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return out.getvalue()
                    out.write(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def answer(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def forward(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            path = url.path
            if path == "/_localecr/writes" and self.command == "GET":
                prefix = urllib.parse.parse_qs(url.query).get("prefix", [""])[0]
                body = json.dumps(written(prefix)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            match = re.match(NAME_RE, path)
            body = self.body()
            writes = self.command in ("POST", "PUT", "PATCH", "DELETE")
            if match and writes:
                with writes_lock:
                    write_counts[match["name"]] = write_counts.get(match["name"], 0) + 1
            if match and writes and not repository_exists(match["name"]):
                self.answer(404, "NAME_UNKNOWN",
                            f"The repository with name '{match['name']}' does not exist in the registry "
                            f"with id '{ACCOUNT_ID}'")
                return
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"}
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            conn = http.client.HTTPConnection(backend.hostname, backend.port, timeout=300)
            try:
                try:
                    conn.connect()
                except OSError as e:
                    # The registry is down (`registry stop`): ECR's front end
                    # still answers, with a 5xx, rather than hanging up.
                    self.answer(503, "UNAVAILABLE", f"the registry behind this endpoint is unavailable: {e}")
                    return
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                if (match and match["kind"] == "manifests" and self.command == "PUT"
                        and resp.status == 201):
                    media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                    try:
                        register(match["name"], match["rest"], body, media_type or MT_MANIFEST)
                    except Exception as e:  # the registry has it, the API does not: say so
                        resp.read()
                        self.answer(500, "UNKNOWN", f"registering the manifest with the ECR API: {e}")
                        return
                length = resp.getheader("Content-Length")
                data = None
                if self.command != "HEAD" and length is None:
                    data = resp.read()
                    length = str(len(data))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", length or "0")
                self.end_headers()
                if self.command == "HEAD":
                    return
                if data is not None:
                    self.wfile.write(data)
                    return
                while chunk := resp.read(65536):  # blobs stream through
                    self.wfile.write(chunk)
            finally:
                conn.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    log(f"proxy: 127.0.0.1:{port} -> {registry}, manifests registered with {moto}")
    server.serve_forever()


def cmd_proxy(args) -> int:
    serve_proxy(int(args.port), args.registry, args.moto)
    return 0


# --------------------------------------------------------------------------
# building xpkg images


def canonical(obj) -> bytes:
    """Stable JSON encoding: the bytes that get pushed and digested."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def to_yaml(obj) -> str:
    import yaml  # PyYAML, from scripts/requirements.txt

    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def filler(seed: str, n: int) -> str:
    """n deterministic hex characters: compresses only about 2:1."""
    out = []
    h = hashlib.sha256(seed.encode()).digest()
    while sum(map(len, out)) < n:
        h = hashlib.sha256(h).digest()
        out.append(h.hex())
    return "".join(out)[:n]


def crd_documents(name: str, nbytes: int) -> str:
    """CRD-like YAML documents adding up to at least nbytes."""
    docs = []
    total = 0
    i = 0
    while total < nbytes:
        doc = (
            "---\n"
            "apiVersion: apiextensions.k8s.io/v1\n"
            "kind: CustomResourceDefinition\n"
            "metadata:\n"
            f"  name: things{i}.{name}.example.org\n"
            "spec:\n"
            f"  group: {name}.example.org\n"
            "  names:\n"
            f"    kind: Thing{i}\n"
            f"    listKind: Thing{i}List\n"
            f"    plural: things{i}\n"
            f"    singular: thing{i}\n"
            "  scope: Cluster\n"
            "  versions:\n"
            "  - name: v1alpha1\n"
            "    served: true\n"
            "    storage: true\n"
            "    schema:\n"
            "      openAPIV3Schema:\n"
            "        type: object\n"
            f"        description: \"{filler(f'{name}/{i}', 2048)}\"\n"
        )
        docs.append(doc)
        total += len(doc)
        i += 1
    return "".join(docs)


def tar_header(name: str, size: int) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = 0o644
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.type = tarfile.REGTYPE
    return ti.tobuf(format=tarfile.USTAR_FORMAT)


class Layer:
    def __init__(self, blob: bytes, diff_id: str, annotations: dict | None = None):
        self.blob = blob
        self.digest = sha256(blob)
        self.diff_id = diff_id
        self.annotations = annotations or {}

    def descriptor(self) -> dict:
        d = {"mediaType": MT_LAYER, "digest": self.digest, "size": len(self.blob)}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d


def gz_tar_single(name: str, chunks, size: int) -> tuple[bytes, str]:
    """Gzip'd tar holding one file, streamed from chunks (whose lengths add up
    to size). Returns (gzip bytes, diff_id of the uncompressed tar)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip wrapper, mtime 0
    raw = hashlib.sha256()
    out = io.BytesIO()

    def feed(b: bytes):
        raw.update(b)
        out.write(comp.compress(b))

    feed(tar_header(name, size))
    written = 0
    for c in chunks:
        written += len(c)
        feed(c)
    if written != size:
        raise AssertionError(f"tar member {name}: wrote {written}, header says {size}")
    if size % 512:
        feed(b"\0" * (512 - size % 512))
    feed(b"\0" * 1024)  # end-of-archive
    out.write(comp.flush())
    return out.getvalue(), "sha256:" + raw.hexdigest()


def valid_crds(name: str, n: int) -> str:
    """n small CustomResourceDefinitions a kube-apiserver establishes (unlike
    crd_documents' filler, made for size): cluster-scoped, in group
    <name>.example.org (so each package has its own names), kinds Widget0,
    Widget1, ..., a structural schema with spec and status objects."""
    import re

    group = f"{name}.example.org"
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", group) \
            or len(group) > 240:
        raise SystemExit(f"localecr: crds: {group!r} (from the package's metadata.name) is not a valid API group")
    docs = []
    for i in range(n):
        crd = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widget{i}s.{group}"},
            "spec": {
                "group": group,
                "names": {"kind": f"Widget{i}", "listKind": f"Widget{i}List", "plural": f"widget{i}s",
                          "singular": f"widget{i}"},
                "scope": "Cluster",
                "versions": [{
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "description": f"Widget{i} of {name}, seeded by localecr.",
                        "properties": {
                            "spec": {"type": "object", "properties": {
                                "forProvider": {"type": "object", "properties": {
                                    "region": {"type": "string"}, "size": {"type": "integer"}}}}},
                            "status": {"type": "object", "properties": {
                                "ready": {"type": "boolean"}, "id": {"type": "string"}}},
                        },
                    }},
                }],
            },
        }
        docs.append("---\n" + to_yaml(crd))
    return "".join(docs)


def starts_document(text: str) -> bool:
    """Whether a YAML stream opens with an explicit `---` (after comments)."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("%"):
            continue
        return stripped == "---" or stripped.startswith("--- ")
    return False


def package_files(repo, files) -> tuple[str, dict]:
    """The concatenation of files (paths relative to the current directory)
    as one multi-document YAML stream, and its first document, which must
    be the package's only meta.pkg.crossplane.io object (as Crossplane
    wants it)."""
    import yaml  # PyYAML, from scripts/requirements.txt

    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
        raise SystemExit(f"localecr: image {repo!r}: packageFiles must be a non-empty list of paths")
    parts = []
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise SystemExit(f"localecr: image {repo!r}: package file {f!r} not found "
                             f"(looked at {path.absolute()}; relative paths are from the current directory)")
        text = path.read_text()
        if parts and not starts_document(text):
            parts.append("---\n")
        parts.append(text if text.endswith("\n") else text + "\n")
    stream = "".join(parts)
    try:
        docs = [d for d in yaml.safe_load_all(stream) if d is not None]
    except yaml.YAMLError as e:
        raise SystemExit(f"localecr: image {repo!r}: packageFiles {files} are not valid YAML: {e}")

    def is_meta(d) -> bool:
        return isinstance(d, dict) and str(d.get("apiVersion", "")).startswith("meta.pkg.crossplane.io/")

    if not docs or not is_meta(docs[0]):
        raise SystemExit(f"localecr: image {repo!r}: the first document of packageFiles {files} must be the "
                         "package's meta.pkg.crossplane.io object")
    if any(is_meta(d) for d in docs[1:]):
        raise SystemExit(f"localecr: image {repo!r}: packageFiles {files} hold more than one "
                         "meta.pkg.crossplane.io object")
    return stream, docs[0]


def package_yaml(image: dict) -> bytes:
    repo = image.get("repository")
    if image.get("packageFiles") is not None:
        if image.get("package") is not None:
            raise SystemExit(f"localecr: image {repo!r}: give either 'package' or 'packageFiles', not both")
        text, meta = package_files(repo, image["packageFiles"])
    else:
        meta = image.get("package")
        if not isinstance(meta, dict):
            raise SystemExit(f"localecr: image {repo!r} needs a 'package' object (or 'packageFiles')")
        text = to_yaml(meta)
    name = (meta.get("metadata") or {}).get("name", "pkg")
    crds = int(image.get("crds") or 0)
    if crds > 0:
        text += valid_crds(name, crds)
    extra = int(image.get("extraYamlBytes") or 0)
    if extra > 0:
        text += crd_documents(name, extra)
    return text.encode()


def base_layer(image: dict, annotated: bool) -> Layer:
    body = package_yaml(image)
    oversized = int(image.get("oversized") or 0)
    annotations = {XPKG_ANNOTATION: XPKG_BASE} if annotated else {}

    if image.get("corrupt"):
        # A tar (not gzip) under a tar+gzip media type: any gunzip fails.
        raw = io.BytesIO()
        raw.write(tar_header(PACKAGE_FILE, len(body)))
        raw.write(body)
        raw.write(b"\0" * ((512 - len(body) % 512) % 512) + b"\0" * 1024)
        blob = raw.getvalue()
        return Layer(blob, sha256(blob), annotations)

    if oversized > len(body):
        pad_total = oversized - len(body)
        # Padding is a YAML comment: the document stays valid, just huge.
        def chunks():
            yield body
            left = pad_total
            if left > 0:
                yield b"#"
                left -= 1
            line = b"#" * 4095 + b"\n"
            while left >= len(line):
                yield line
                left -= len(line)
            if left:
                yield b"#" * left
        blob, diff_id = gz_tar_single(PACKAGE_FILE, chunks(), oversized)
        return Layer(blob, diff_id, annotations)

    blob, diff_id = gz_tar_single(PACKAGE_FILE, [body], len(body))
    return Layer(blob, diff_id, annotations)


def runtime_layer(repo: str, i: int) -> Layer:
    content = f"runtime layer {i} of {repo}\n{filler(repo + str(i), 256)}\n".encode()
    blob, diff_id = gz_tar_single(f"runtime/{i}.txt", [content], len(content))
    return Layer(blob, diff_id)


def shared_layer(i: int) -> Layer:
    """The same bytes in every image that has it: what registries mount."""
    content = f"shared layer {i}\n{filler('shared' + str(i), 4096)}\n".encode()
    blob, diff_id = gz_tar_single(f"shared/{i}.txt", [content], len(content))
    return Layer(blob, diff_id)


def image_config(layers: list[Layer], arch: str, os_: str, tag: str, variant: str | None,
                 label_base: Layer | None) -> bytes:
    labels = {"org.opencontainers.image.version": tag}
    if variant:
        labels["io.crossplane.localecr.variant"] = str(variant)
    if label_base is not None:
        # What `crossplane xpkg build` records: io.crossplane.xpkg:<layer digest> = base
        labels[f"{XPKG_ANNOTATION}:{label_base.digest}"] = XPKG_BASE
    cfg = {
        "architecture": arch,
        "os": os_,
        "created": "1970-01-01T00:00:00Z",
        "config": {"Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "localecr seed"} for _ in layers],
    }
    return canonical(cfg)


def image_manifest(config: bytes, layers: list[Layer]) -> bytes:
    return canonical({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [l.descriptor() for l in layers],
    })


# --------------------------------------------------------------------------
# pushing


class Registry:
    def __init__(self, base: str, auth: str | None = None):
        self.base = base.rstrip("/")
        self.auth = auth

    def _req(self, method: str, url: str, data: bytes | None = None, headers: dict | None = None):
        headers = dict(headers or {})
        if self.auth:
            headers["Authorization"] = f"Basic {self.auth}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def has_blob(self, repo: str, digest: str) -> bool:
        status, _, _ = self._req("HEAD", f"{self.base}/v2/{repo}/blobs/{digest}")
        return status == 200

    def push_blob(self, repo: str, blob: bytes) -> str:
        digest = sha256(blob)
        # No HEAD probe first: the registry logs every miss as an error, and
        # uploading a blob it already holds is harmless.
        status, headers, body = self._req("POST", f"{self.base}/v2/{repo}/blobs/uploads/", b"")
        if status != 202:
            raise SystemExit(f"localecr: blob upload start for {repo}: HTTP {status}: {body[:300]!r}")
        loc = urllib.parse.urljoin(self.base + "/", headers.get("Location", ""))
        sep = "&" if "?" in loc else "?"
        status, _, body = self._req(
            "PUT", f"{loc}{sep}digest={urllib.parse.quote(digest)}", blob,
            {"Content-Type": "application/octet-stream", "Content-Length": str(len(blob))})
        if status != 201:
            raise SystemExit(f"localecr: blob upload for {repo} {digest}: HTTP {status}: {body[:300]!r}")
        return digest

    def push_manifest(self, repo: str, ref: str, manifest: bytes, media_type: str) -> None:
        status, headers, body = self._req(
            "PUT", f"{self.base}/v2/{repo}/manifests/{ref}", manifest, {"Content-Type": media_type})
        if status != 201:
            raise SystemExit(f"localecr: manifest {repo}:{ref}: HTTP {status}: {body[:500]!r}")
        got = headers.get("Docker-Content-Digest")
        if got and got != sha256(manifest):
            raise SystemExit(f"localecr: registry computed {got} for {repo}:{ref}, expected {sha256(manifest)}")


class Ecr:
    def __init__(self, env: dict[str, str]):
        import boto3  # from scripts/requirements.txt

        self.client = boto3.client(
            "ecr",
            endpoint_url=env["AWS_ENDPOINT_URL_ECR"],
            region_name=env.get("AWS_REGION", REGION),
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "testing"),
        )
        self.known: set[str] = set()

    def ensure_repo(self, repo: str) -> None:
        if repo in self.known:
            return
        try:
            self.client.create_repository(repositoryName=repo)
        except self.client.exceptions.RepositoryAlreadyExistsException:
            pass
        self.known.add(repo)

    def put(self, repo: str, manifest: bytes, media_type: str, tag: str | None) -> None:
        kwargs = dict(
            repositoryName=repo,
            imageManifest=manifest.decode(),
            imageManifestMediaType=media_type,
            # moto derives a digest of its own that is not the manifest's: pass the real one.
            imageDigest=sha256(manifest),
        )
        if tag is not None:
            kwargs["imageTag"] = tag
        try:
            self.client.put_image(**kwargs)
        except self.client.exceptions.ImageAlreadyExistsException:
            pass  # re-seeding (or re-pushing) the same image is fine


def push_image(reg: Registry, ecr: Ecr | None, repo: str, config: bytes, layers: list[Layer],
               ref: str | None) -> bytes:
    for l in layers:
        reg.push_blob(repo, l.blob)
    reg.push_blob(repo, config)
    manifest = image_manifest(config, layers)
    reg.push_manifest(repo, ref or sha256(manifest), manifest, MT_MANIFEST)
    if ecr is not None:
        ecr.put(repo, manifest, MT_MANIFEST, ref)
    return manifest


MT_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"


def push_signature(reg: Registry, ecr: Ecr | None, repo: str, digest: str) -> str:
    """A cosign-style signature of the image at digest, tagged
    sha256-<hex>.sig: a simple-signing payload layer with the signature in
    its annotations (not a valid signature: nothing here verifies it)."""
    payload = canonical({
        "critical": {"identity": {"docker-reference": repo}, "image": {"docker-manifest-digest": digest},
                     "type": "cosign container image signature"},
        "optional": None,
    })
    layer = {"mediaType": MT_SIMPLESIGNING, "digest": sha256(payload), "size": len(payload),
             "annotations": {"dev.cosignproject.cosign/signature": hashlib.sha256(payload).hexdigest()}}
    config = canonical({"architecture": "", "os": "", "config": {},
                        "rootfs": {"type": "layers", "diff_ids": [sha256(payload)]}})
    reg.push_blob(repo, payload)
    reg.push_blob(repo, config)
    manifest = canonical({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [layer],
    })
    tag = digest.replace(":", "-") + ".sig"
    reg.push_manifest(repo, tag, manifest, MT_MANIFEST)
    if ecr is not None:
        ecr.put(repo, manifest, MT_MANIFEST, tag)
    return tag


def seed_image(reg: Registry, ecr: Ecr | None, image: dict) -> dict[str, str]:
    repo = image.get("repository")
    if not repo or repo != repo.lower():
        raise SystemExit(f"localecr: bad repository name {repo!r} (lowercase required)")
    tags = image.get("tags") or ["latest"]
    layout = image.get("layout", "annotated")
    if layout not in ("annotated", "unannotated", "index"):
        raise SystemExit(f"localecr: unknown layout {layout!r}")
    variant = image.get("digestVariant")
    annotated = layout != "unannotated"

    base = base_layer(image, annotated)
    layers = [runtime_layer(repo, i) for i in range(int(image.get("runtimeLayers") or 0))]
    layers += [shared_layer(i) for i in range(int(image.get("sharedLayers") or 0))]
    layers.append(base)
    label_base = base if annotated else None

    if ecr is not None:
        ecr.ensure_repo(repo)
    out = {}
    for tag in tags:
        if layout != "index":
            cfg = image_config(layers, "amd64", "linux", tag, variant, label_base)
            manifest = push_image(reg, ecr, repo, cfg, layers, tag)
            out[tag] = sha256(manifest)
            if image.get("signature"):
                out[push_signature(reg, ecr, repo, out[tag])] = ""
            continue
        entries = []
        for plat in image.get("platforms") or ["linux/amd64"]:
            os_, _, arch = plat.partition("/")
            cfg = image_config(layers, arch, os_, tag, variant, label_base)
            child = push_image(reg, ecr, repo, cfg, layers, None)
            entries.append({
                "mediaType": MT_MANIFEST,
                "digest": sha256(child),
                "size": len(child),
                "platform": {"architecture": arch, "os": os_},
            })
        index = canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries})
        reg.push_manifest(repo, tag, index, MT_INDEX)
        if ecr is not None:
            ecr.put(repo, index, MT_INDEX, tag)
        out[tag] = sha256(index)
        if image.get("signature"):
            out[push_signature(reg, ecr, repo, out[tag])] = ""
    return out


def cmd_seed(args) -> int:
    state = Path(args.state_dir).resolve()
    env = read_env(state)
    raw = sys.stdin.read() if args.spec == "-" else Path(args.spec).read_text()
    spec = json.loads(raw)
    images = spec.get("images") if isinstance(spec, dict) else None
    if not isinstance(images, list):
        raise SystemExit('localecr: spec must be {"images": [...]}')
    if args.upstream:
        reg, ecr = Registry(env["LOCALECR_UPSTREAM_URL"]), None
    elif args.private_upstream:
        reg = Registry("http://" + env["LOCALECR_PRIVATE_UPSTREAM"], env["LOCALECR_PRIVATE_AUTH"])
        ecr = None
    else:
        # Straight to the registry: the images are registered with the API here.
        reg, ecr = Registry(env.get("LOCALECR_REGISTRY_URL", env["ECR_REGISTRY_ENDPOINT"])), Ecr(env)
    result: dict[str, dict[str, str]] = {}
    for image in images:
        result.setdefault(image.get("repository"), {}).update(seed_image(reg, ecr, image))
    json.dump(result, sys.stdout, indent=None)
    sys.stdout.write("\n")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("up", "down", "status", "seed", "registry", "proxy", "watch"):
        sp = sub.add_parser(name)
        if name == "registry":
            sp.add_argument("action", choices=("stop", "start"),
                            help="stop (start again) the ECR stand-in's registries: data plane and TLS reader")
        sp.add_argument("--state-dir", required=True)
        if name == "up":
            sp.add_argument("--watch-pid", type=int, help="stop the servers once this process exits")
            sp.add_argument("--tls", action="store_true",
                            help="also serve the ECR registry's storage read-only over HTTPS "
                                 "(LOCALECR_TLS_REGISTRY, CA in LOCALECR_TLS_CA)")
        if name == "watch":
            sp.add_argument("--pid", required=True)
        if name == "seed":
            sp.add_argument("--upstream", action="store_true",
                            help="push to the upstream registry only (not to ECR)")
            sp.add_argument("--private-upstream", action="store_true",
                            help="push to the private upstream registry only")
            sp.add_argument("spec", help="seed spec JSON file, or - for stdin")
        if name == "proxy":
            sp.add_argument("--port", required=True)
            sp.add_argument("--registry", required=True)
            sp.add_argument("--moto", required=True)
    args = p.parse_args(argv)
    commands = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "seed": cmd_seed,
                "registry": cmd_registry, "proxy": cmd_proxy, "watch": cmd_watch}
    return commands[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
