"""Shared fixtures for the end-to-end tests.

The tests run against the local ECR stand-in (scripts/localecr.py): moto for the
ECR API and docker-registry for the OCI distribution API.  scripts/test starts it
and exports its env (AWS_ENDPOINT_URL_ECR, ECR_REGISTRY_ENDPOINT, AWS_*); run
alone, ``localecr_env`` starts a private one for the session and stops it after.

Fixtures:
  repo_root                 the checkout
  localecr_env              dict of the stand-in's env (AWS_ENDPOINT_URL_ECR, ...)
  ecr_client                boto3 ECR client on the stand-in (account 123456789012)
  registry_url              http://127.0.0.1:PORT of the registry
  registry_host             localhost:PORT, the name crank / ggcr treat as plain HTTP
  function_binary           the function binary (FUNCTION_BINARY, else target/debug or
                            target/release, else a debug cargo build)
  crank                     path of the crank CLI, or None
  function_xpkg             the function's .xpkg built by scripts/xpkg
  pushed_function_package   the .xpkg pushed to the registry (PushedPackage)
  function_package_in_ecr   EcrImage(repository, tag, digest): the pushed package,
                            also registered in moto with the exact manifest bytes,
                            so the function's own resolver can read its metadata
                            from "ECR" (self-hosting case)
  crds                      {project: [(release, dir)]}: the CRDs of the releases
                            under test (every Crossplane version, provider-aws),
                            from scripts/crds
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import NamedTuple

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

FUNCTION_REPOSITORY = "function-ecr-packages"

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


class PushedPackage(NamedTuple):
    registry_host: str  # localhost:PORT
    repository: str
    tag: str
    digest: str  # sha256:... of manifest_bytes
    media_type: str
    manifest_bytes: bytes
    xpkg: Path

    @property
    def ref(self) -> str:
        return f"{self.registry_host}/{self.repository}:{self.tag}"


class EcrImage(NamedTuple):
    """An image visible through both the ECR API (moto) and the registry."""

    repository: str
    tag: str
    digest: str


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def crate_version() -> str:
    text = (REPO_ROOT / "Cargo.toml").read_text()
    m = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    return m.group(1) if m else "0.0.0"


def registry_get(url: str, accept: str | None = None) -> tuple[bytes, dict[str, str]]:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.read(), {k.lower(): v for k, v in resp.headers.items()}


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def ecr_client(localecr_env):
    boto3 = pytest.importorskip("boto3")
    return boto3.client(
        "ecr",
        endpoint_url=localecr_env["AWS_ENDPOINT_URL_ECR"],
        region_name=localecr_env.get("AWS_REGION", REGION),
        aws_access_key_id=localecr_env.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=localecr_env.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )


@pytest.fixture(scope="session")
def registry_url(localecr_env) -> str:
    return localecr_env["ECR_REGISTRY_ENDPOINT"].rstrip("/")


@pytest.fixture(scope="session")
def registry_host(registry_url) -> str:
    # go-containerregistry (crank) speaks plain HTTP to localhost:PORT and to
    # loopback addresses; use the name.
    port = registry_url.rsplit(":", 1)[1]
    return f"localhost:{port}"


@pytest.fixture(scope="session")
def function_binary() -> Path:
    explicit = os.environ.get("FUNCTION_BINARY")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    found = [target / p / "function-ecr-packages" for p in ("debug", "release")]
    found = [p for p in found if p.is_file()]
    if found:
        return max(found, key=lambda p: p.stat().st_mtime)
    subprocess.run(["cargo", "build", "--bin", "function-ecr-packages"], cwd=REPO_ROOT, check=True)
    return target / "debug" / "function-ecr-packages"


def find_crank() -> str | None:
    if os.environ.get("CRANK"):
        return os.environ["CRANK"]
    path = shutil.which("crank")
    if path:
        return path
    go = shutil.which("go")
    if go:
        gopath = subprocess.run([go, "env", "GOPATH"], capture_output=True, text=True).stdout.strip()
        cand = Path(gopath) / "bin" / "crank"
        if gopath and cand.is_file():
            return str(cand)
    return None


@pytest.fixture(scope="session")
def crank() -> str | None:
    return find_crank()


@pytest.fixture(scope="session")
def function_xpkg(tmp_path_factory, function_binary) -> Path:
    out = tmp_path_factory.mktemp("xpkg") / "function-ecr-packages.xpkg"
    res = subprocess.run(
        [str(REPO_ROOT / "scripts" / "xpkg"), "--binary", str(function_binary), "--output", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, f"scripts/xpkg failed:\n{res.stdout}\n{res.stderr}"
    assert res.stdout.strip().splitlines()[-1] == str(out)
    return out


@pytest.fixture(scope="session")
def pushed_function_package(function_xpkg, registry_host, registry_url, ecr_client) -> PushedPackage:
    tag = "v" + crate_version()
    # As with real ECR, the repository must exist before anything is pushed.
    try:
        ecr_client.create_repository(repositoryName=FUNCTION_REPOSITORY)
    except ecr_client.exceptions.RepositoryAlreadyExistsException:
        pass
    ref = f"{registry_host}/{FUNCTION_REPOSITORY}:{tag}"
    crank_bin = find_crank()
    assert crank_bin, "crank not found (scripts/setup installs it; CRANK=/path/to/crank picks one)"
    cmd = [crank_bin, "xpkg", "push", "-f", str(function_xpkg), ref]
    res = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"push failed: {cmd}\n{res.stdout}\n{res.stderr}"
    body, headers = registry_get(f"{registry_url}/v2/{FUNCTION_REPOSITORY}/manifests/{tag}", MANIFEST_ACCEPT)
    digest = sha256_digest(body)
    if "docker-content-digest" in headers:
        assert headers["docker-content-digest"] == digest
    media_type = json.loads(body).get("mediaType") or headers.get("content-type", "").split(";")[0]
    return PushedPackage(registry_host, FUNCTION_REPOSITORY, tag, digest, media_type, body, function_xpkg)


@pytest.fixture(scope="session")
def function_package_in_ecr(pushed_function_package, ecr_client) -> EcrImage:
    """The function's own package, in the registry AND in moto's ECR API.

    Registered with the exact manifest bytes, their media type and
    imageDigest = sha256(bytes), like a real ECR push.  Returns
    EcrImage(repository, tag, digest) (a NamedTuple, so it also unpacks as a
    3-tuple) for tests that resolve the function's own metadata through ECR.
    """
    p = pushed_function_package
    try:
        ecr_client.create_repository(repositoryName=p.repository)
    except ecr_client.exceptions.RepositoryAlreadyExistsException:
        pass
    try:
        ecr_client.put_image(
            repositoryName=p.repository,
            imageManifest=p.manifest_bytes.decode(),
            imageManifestMediaType=p.media_type,
            imageTag=p.tag,
            imageDigest=p.digest,
        )
    except ecr_client.exceptions.ImageAlreadyExistsException:
        pass
    got = ecr_client.batch_get_image(
        repositoryName=p.repository,
        imageIds=[{"imageTag": p.tag}],
        acceptedMediaTypes=[p.media_type],
    )
    assert not got.get("failures"), got.get("failures")
    (image,) = got["images"]
    assert image["imageId"]["imageDigest"] == p.digest
    return EcrImage(p.repository, p.tag, p.digest)


# ------------------------------------------------------------------ render fixtures
#
#   example_catalog   examples/catalog.json seeded into the local ECR;
#                     {repository: {tag: digest}}
#   function_server   the function binary serving plain gRPC (--insecure) on free
#                     loopback ports, reading the local ECR (FunctionServer)

EXAMPLES = REPO_ROOT / "examples"


class FunctionServer(NamedTuple):
    target: str  # 127.0.0.1:PORT, for render.crossplane.io/runtime-development-target
    metrics: str  # 127.0.0.1:PORT of /metrics
    log: Path  # the process's stdout+stderr
    process: subprocess.Popen


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"function exited {proc.returncode} before listening:\n{log.read_text()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"function not listening on 127.0.0.1:{port} after {timeout}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def example_catalog(localecr_env) -> dict[str, dict[str, str]]:
    state = localecr_env.get("LOCALECR_STATE") or os.environ.get("LOCALECR_STATE")
    if not state:
        pytest.skip("the local ECR's state dir is unknown (LOCALECR_STATE); cannot seed examples/catalog.json")
    py = localecr_env.get("LOCALECR_PYTHON") or os.environ.get("LOCALECR_PYTHON") or sys.executable
    res = subprocess.run(
        [py, str(REPO_ROOT / "scripts" / "localecr.py"), "seed", "--state-dir", state, str(EXAMPLES / "catalog.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, f"seeding examples/catalog.json failed:\n{res.stdout}\n{res.stderr}"
    digests = json.loads(res.stdout.strip().splitlines()[-1])
    catalog = json.loads((EXAMPLES / "catalog.json").read_text())
    assert set(digests) == {i["repository"] for i in catalog["images"]}
    return digests


@pytest.fixture(scope="session")
def function_server(function_binary, localecr_env, tmp_path_factory) -> FunctionServer:
    port, metrics_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("function") / "function.log"
    env = dict(os.environ)
    env.update(localecr_env)
    env.pop("AWS_PROFILE", None)
    cmd = [
        str(function_binary),
        "--insecure",
        "--address", f"127.0.0.1:{port}",
        "--metrics-address", f"127.0.0.1:{metrics_port}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
    try:
        _wait_listening(port, proc, log)
        yield FunctionServer(f"127.0.0.1:{port}", f"127.0.0.1:{metrics_port}", log, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ------------------------------------------------------------------ CRD schemas


@pytest.fixture(scope="session")
def crds() -> dict[str, list[tuple[str, Path]]]:
    """{project: [(release, dir)]}, e.g. {"crossplane": [("crossplane@v2.2.0",
    Path(...)), ...], "provider-aws": [...]}: the CRDs the rendered objects and
    the examples are validated against, one directory per release under test.

    scripts/crds answers from ~/.cache/function-ecr-packages/crds and fetches
    what is missing through the Go module proxy. Without them (no `go` on
    PATH, no network) the tests that need them skip, naming scripts/crds,
    unless CRDS_REQUIRED=1 (scripts/test sets it), when they fail.
    """
    res = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "crds"), "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
    if res.returncode != 0:
        why = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
        msg = f"no CRD schemas: scripts/crds failed ({why}); run scripts/crds where Go is"
        if os.environ.get("CRDS_REQUIRED", "0") != "0":
            pytest.fail(f"the CRD schemas are required (CRDS_REQUIRED) but {msg}")
        pytest.skip(msg)
    out: dict[str, list[tuple[str, Path]]] = {}
    for line in res.stdout.splitlines():
        release, _, d = line.partition("=")
        out.setdefault(release.split("@")[0], []).append((release, Path(d)))
    assert out.get("crossplane") and out.get("provider-aws"), res.stdout
    return out
