#!/usr/bin/env python3
"""Mirror benchmark (issue 27): `function-ecr-packages mirror` against
`crane copy`, side by side, on fresh targets each time. Run it through
`scripts/bench mirror`, which builds what it needs.

Shapes (``--shapes``):

* ``big``: ``bench/provider-big:v1.0.0``, an index of two platforms
  (linux/amd64, linux/arm64), each manifest holding three random layers of
  ``--big-layer-mib`` (176 MiB: 1 GiB in all) and the package layer; it
  depends on ``bench/provider-dep:v1.0.0`` (one 4 MiB random layer).
* ``small``: 50 packages ``bench/small-NN:v1.0.0``, each a shared 3 MiB
  base layer (the same bytes in all of them), a 2 MiB layer of its own and
  its package layer.

The upstream is a ``docker-registry`` of its own over a storage directory
seeded once per shape (``<cache>/bench-mirror-data-<key>``, random bytes
from seeded generators, so the same every time) and reused: setup is
starting that registry. Packages name it ``xpkg.bench.local``; mirror reads
it through ``--upstream-endpoint``, crane by its loopback address.

Each measurement (one tool, one shape, one run) gets a fresh local ECR
(``scripts/localecr.py up`` in a new state directory, removed afterwards),
with a byte-counting TCP relay (``bench/go/cmd/bytecount``) in front of its
data plane (the ECR proxy). Figures:

* wall: from starting the tool to its exit; for crane, the sum over its
  invocations, one per image of the closure (``crane copy SRC DST``, in
  install order, dependencies first), run one after the other as a script
  would. crane does not create ECR repositories: they are created through
  the ECR API before its clock starts. mirror creates its own, on the clock.
* uploaded: bytes the tool sent to the registry's data plane (request lines,
  headers and bodies: every byte clients wrote to the relay). The closure's
  unique bytes (every blob and manifest once) are printed beside it.
* throughput: the closure's unique bytes / wall, MiB/s.
* CPU: the tool's user plus system CPU seconds (``/usr/bin/time``), summed
  over crane's invocations.
* peak RSS: the tool's maximum resident set size as ``/usr/bin/time``
  reports it; for crane, the largest of its invocations.

Each figure is the median over ``--runs`` runs; mirror and crane alternate
within a run. mirror runs with its defaults (digest verification is always
on). A measurement tool: it asserts nothing about the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import localecr  # noqa: E402  (the local ECR's image builders and registry client)

HOST = "xpkg.bench.local"
MIB = 1024 * 1024
# Bumped when what is seeded changes, so a stale cache is not reused.
DATA_VERSION = "1"


@dataclass
class Image:
    """One image of a closure, by its upstream repository and tag."""
    repository: str
    tag: str


@dataclass
class Shape:
    name: str
    # The packages mirror is asked for (repository:tag under HOST).
    asked: list[str]
    # Every image of the closure in install order: what crane copies.
    images: list[Image]
    # Bytes of every distinct blob and manifest of the closure.
    unique_bytes: int = 0


@dataclass
class Measure:
    wall: float
    uploaded: int
    rss_kib: int
    cpu: float


@dataclass
class Rows:
    shape: Shape
    runs: dict[str, list[Measure]] = field(default_factory=lambda: {"mirror": [], "crane": []})


def log(msg: str) -> None:
    print(f"==> [bench/mirror.py] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# the upstream: seeded once, cached


def random_layer(seed: str, nbytes: int) -> localecr.Layer:
    """nbytes of random bytes that are the same for the same seed: opaque to
    both tools, which copy blobs without unpacking them."""
    blob = random.Random(seed).randbytes(nbytes)
    return localecr.Layer(blob, localecr.sha256(blob))


def package_layer(kind: str, name: str, depends_on: list[dict]) -> localecr.Layer:
    meta = {"apiVersion": "meta.pkg.crossplane.io/v1", "kind": kind, "metadata": {"name": name},
            "spec": {"dependsOn": depends_on}}
    return localecr.base_layer({"repository": name, "package": meta}, annotated=True)


class Seeder:
    """Pushes images to the upstream, counting each distinct blob and
    manifest once."""

    def __init__(self, reg: localecr.Registry):
        self.reg = reg
        self.unique: dict[str, int] = {}

    def blob(self, repo: str, blob: bytes) -> None:
        self.reg.push_blob(repo, blob)
        self.unique[localecr.sha256(blob)] = len(blob)

    def manifest(self, repo: str, layers: list[localecr.Layer], arch: str = "amd64") -> bytes:
        base = layers[-1]
        config = localecr.image_config(layers, arch, "linux", "v1.0.0", None, base)
        for layer in layers:
            self.blob(repo, layer.blob)
        self.blob(repo, config)
        manifest = localecr.image_manifest(config, layers)
        self.unique[localecr.sha256(manifest)] = len(manifest)
        return manifest

    def image(self, repo: str, layers: list[localecr.Layer]) -> None:
        manifest = self.manifest(repo, layers)
        self.reg.push_manifest(repo, "v1.0.0", manifest, localecr.MT_MANIFEST)

    def index(self, repo: str, platforms: dict[str, list[localecr.Layer]]) -> None:
        entries = []
        for arch, layers in platforms.items():
            child = self.manifest(repo, layers, arch)
            self.reg.push_manifest(repo, localecr.sha256(child), child, localecr.MT_MANIFEST)
            entries.append({"mediaType": localecr.MT_MANIFEST, "digest": localecr.sha256(child),
                            "size": len(child), "platform": {"architecture": arch, "os": "linux"}})
        index = localecr.canonical({"schemaVersion": 2, "mediaType": localecr.MT_INDEX,
                                    "manifests": entries})
        self.reg.push_manifest(repo, "v1.0.0", index, localecr.MT_INDEX)
        self.unique[localecr.sha256(index)] = len(index)


def seed_big(seeder: Seeder, layer_mib: int) -> Shape:
    dep = "bench/provider-dep"
    seeder.image(dep, [random_layer("dep-0", 4 * MIB), package_layer("Provider", "provider-dep", [])])
    meta = package_layer("Provider", "provider-big", [{"provider": f"{HOST}/{dep}", "version": ">=v1.0.0"}])
    platforms = {arch: [random_layer(f"big-{arch}-{i}", layer_mib * MIB) for i in range(3)] + [meta]
                 for arch in ("amd64", "arm64")}
    seeder.index("bench/provider-big", platforms)
    return Shape("big", [f"{HOST}/bench/provider-big:v1.0.0"],
                 [Image(dep, "v1.0.0"), Image("bench/provider-big", "v1.0.0")])


def seed_small(seeder: Seeder, count: int) -> Shape:
    shared = random_layer("small-shared", 3 * MIB)
    names = [f"bench/small-{i:02d}" for i in range(count)]
    for i, repo in enumerate(names):
        seeder.image(repo, [shared, random_layer(f"small-{i}", 2 * MIB),
                            package_layer("Provider", f"small-{i:02d}", [])])
    return Shape("small", [f"{HOST}/{r}:v1.0.0" for r in names], [Image(r, "v1.0.0") for r in names])


class Upstream:
    """The shape's upstream registry, on its cached storage."""

    def __init__(self, cache: Path, shape: str, big_layer_mib: int, small_count: int):
        key = hashlib.sha256(f"{DATA_VERSION}-{shape}-{big_layer_mib}-{small_count}".encode()).hexdigest()[:12]
        self.dir = cache / f"bench-mirror-data-{shape}-{key}"
        self.shape_name = shape
        self.big_layer_mib = big_layer_mib
        self.small_count = small_count
        self.proc: subprocess.Popen | None = None
        self.addr = ""

    def start(self) -> Shape:
        described = self.dir / "shape.json"
        fresh = not described.exists()
        if fresh:
            shutil.rmtree(self.dir, ignore_errors=True)
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        port = localecr.free_port()
        cfg = self.dir / "registry.yml"
        cfg.write_text(localecr.registry_config(self.dir / "data", port))
        self.proc = localecr.spawn([localecr.REGISTRY_BIN, "serve", str(cfg)], self.dir / "registry.log")
        self.addr = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not localecr.http_ok(f"http://{self.addr}/v2/", any_status=True):
            if time.monotonic() > deadline:
                raise SystemExit(f"bench/mirror.py: the upstream registry did not start ({self.dir})")
            time.sleep(0.1)
        if not fresh:
            return shape_from_json(json.loads(described.read_text()))
        log(f"seeding the {self.shape_name} shape into {self.dir} (once)")
        seeder = Seeder(localecr.Registry(f"http://{self.addr}"))
        if self.shape_name == "big":
            shape = seed_big(seeder, self.big_layer_mib)
        else:
            shape = seed_small(seeder, self.small_count)
        shape.unique_bytes = sum(seeder.unique.values())
        described.write_text(json.dumps(shape_to_json(shape)))
        return shape

    def stop(self) -> None:
        if self.proc is not None:
            localecr.stop_pid(self.proc.pid)
            self.proc = None


def shape_to_json(shape: Shape) -> dict:
    return {"name": shape.name, "asked": shape.asked, "unique_bytes": shape.unique_bytes,
            "images": [[i.repository, i.tag] for i in shape.images]}


def shape_from_json(doc: dict) -> Shape:
    return Shape(doc["name"], doc["asked"], [Image(r, t) for r, t in doc["images"]], doc["unique_bytes"])


# --------------------------------------------------------------------------
# a fresh target per measurement


class Target:
    """A fresh local ECR and the byte-counting relay in front of its data
    plane; removed on exit."""

    def __init__(self, relay_bin: str):
        self.relay_bin = relay_bin
        self.state = Path(tempfile.mkdtemp(prefix="bench-mirror-ecr-"))
        self.env: dict[str, str] = {}
        self.relay: subprocess.Popen | None = None
        self.endpoint = ""

    def __enter__(self) -> "Target":
        subprocess.run([sys.executable, str(ROOT / "scripts/localecr.py"), "up", "--state-dir",
                        str(self.state)], check=True, stdout=subprocess.DEVNULL)
        self.env = localecr.read_env(self.state)
        proxy = self.env["ECR_REGISTRY_ENDPOINT"].removeprefix("http://").rstrip("/")
        addr_file = self.state / "relay.addr"
        self.relay = subprocess.Popen([self.relay_bin, "-to", proxy, "-addr-file", str(addr_file)],
                                      stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while not addr_file.exists():
            if time.monotonic() > deadline:
                raise SystemExit("bench/mirror.py: the byte-counting relay did not start")
            time.sleep(0.05)
        self.endpoint = addr_file.read_text().strip()
        self.warm()
        return self

    def warm(self) -> None:
        """The stand-in's first answers are slow (moto sets up its ECR
        backend on the first request, about 85 ms, and its repository
        lookups on the first of those, about 15 ms); ECR's are not. crane's
        repositories are created through the same API before its clock
        starts, so both tools start against an API that has answered once."""
        ecr = localecr.Ecr(self.env)
        ecr.client.get_authorization_token()
        try:
            ecr.client.describe_repositories(repositoryNames=["bench-warm-up"])
        except ecr.client.exceptions.RepositoryNotFoundException:
            pass

    def uploaded(self) -> int:
        """Stops the relay; the bytes clients sent through it."""
        assert self.relay is not None
        self.relay.send_signal(signal.SIGTERM)
        out, _ = self.relay.communicate(timeout=10)
        self.relay = None
        return int(json.loads(out)["sent"])

    def create_repositories(self, names: list[str]) -> None:
        ecr = localecr.Ecr(self.env)
        for name in names:
            ecr.ensure_repo(name)

    def __exit__(self, *exc) -> None:
        if self.relay is not None:
            self.relay.kill()
            self.relay.wait()
        subprocess.run([sys.executable, str(ROOT / "scripts/localecr.py"), "down", "--state-dir",
                        str(self.state)], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.state, ignore_errors=True)


# --------------------------------------------------------------------------
# running the tools


@dataclass
class Exited:
    wall: float
    rss_kib: int
    # User plus system CPU seconds.
    cpu: float


def timed(argv: list[str], env: dict[str, str], what: str) -> Exited:
    """Runs argv to its end under /usr/bin/time: its wall time and peak RSS;
    output kept for an error only. Not wait4's ru_maxrss: a child forked
    from this process starts with this process's resident set (the seeding
    holds hundreds of MiB) as its high-water mark, and exec keeps it."""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss:
        start = time.monotonic()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", rss.name, *argv], env=env,
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            out.seek(0)
            tail = out.read().decode(errors="replace")[-3000:]
            raise SystemExit(f"bench/mirror.py: {what} failed (exit {proc.returncode}):\n{tail}")
        rss_kib, user, system = rss.read().split()[-3:]
    return Exited(wall, int(rss_kib), float(user) + float(system))


def run_mirror(args, shape: Shape, upstream: Upstream, target: Target, scratch: Path) -> Measure:
    env = dict(os.environ)
    env.update(target.env)
    env["ECR_REGISTRY_ENDPOINT"] = f"http://{target.endpoint}"
    env["DOCKER_CONFIG"] = str(scratch)  # no credentials: upstream is read anonymously
    env.setdefault("RUST_LOG", "warn")
    argv = [*shlex.split(args.mirror_wrap), args.function, "mirror", "--account-id", target.env["LOCALECR_ACCOUNT_ID"],
            "--region", target.env["AWS_REGION"], "--mirror", f"{HOST}/=m/",
            "--upstream-endpoint", f"{HOST}=http://{upstream.addr}", *args.mirror_arg, *shape.asked]
    exited = timed(argv, env, "mirror")
    return Measure(exited.wall, target.uploaded(), exited.rss_kib, exited.cpu)


def run_crane(args, shape: Shape, upstream: Upstream, target: Target, scratch: Path) -> Measure:
    target.create_repositories([f"m/{i.repository}" for i in shape.images])
    env = dict(os.environ)
    env["DOCKER_CONFIG"] = str(scratch)
    wall = 0.0
    cpu = 0.0
    rss = 0
    for image in shape.images:
        src = f"{upstream.addr}/{image.repository}:{image.tag}"
        dst = f"{target.endpoint}/m/{image.repository}:{image.tag}"
        exited = timed([args.crane, "copy", "--insecure", src, dst], env, f"crane copy {src}")
        wall += exited.wall
        cpu += exited.cpu
        rss = max(rss, exited.rss_kib)
    return Measure(wall, target.uploaded(), rss, cpu)


# --------------------------------------------------------------------------
# the table


def mib(n: float) -> str:
    return f"{n / MIB:.1f}"


def table(rows: list[Rows], runs: int) -> str:
    out = [f"| shape | tool | wall (s) | uploaded (MiB) | closure, unique (MiB) | throughput (MiB/s) | "
           f"CPU (s) | peak RSS (MiB) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    ratios = []
    for row in rows:
        medians = {}
        for tool in ("mirror", "crane"):
            ms = row.runs[tool]
            if not ms:
                continue
            wall = statistics.median(m.wall for m in ms)
            uploaded = statistics.median(m.uploaded for m in ms)
            rss = statistics.median(m.rss_kib for m in ms) * 1024
            cpu = statistics.median(m.cpu for m in ms)
            throughput = row.shape.unique_bytes / wall
            medians[tool] = throughput
            walls = ", ".join(f"{m.wall:.2f}" for m in ms)
            out.append(f"| {row.shape.name} | {tool} | {wall:.2f} ({walls}) | {mib(uploaded)} | "
                       f"{mib(row.shape.unique_bytes)} | {throughput / MIB:.0f} | {cpu:.2f} | {mib(rss)} |")
        if len(medians) == 2:
            ratios.append(f"{row.shape.name}: mirror/crane throughput {medians['mirror'] / medians['crane']:.2f}x")
    return "\n".join(out + ["", f"median of {runs} run(s); " + "; ".join(ratios)])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--function", required=True)
    p.add_argument("--crane", required=True)
    p.add_argument("--relay", required=True)
    p.add_argument("--cache", required=True, type=Path)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--shapes", default="big,small")
    p.add_argument("--tools", default="mirror,crane")
    p.add_argument("--big-layer-mib", type=int, default=176)
    p.add_argument("--small-count", type=int, default=50)
    p.add_argument("--mirror-arg", action="append", default=[],
                   help="extra argument for mirror (repeatable), e.g. --mirror-arg=--concurrency=8")
    p.add_argument("--mirror-wrap", default="",
                   help="a command mirror runs under, for profiling: e.g. 'perf record -g -o mirror.perf --'"
                        " (its figures then include the wrapper's)")
    p.add_argument("--json", type=Path, help="also write every measurement here")
    args = p.parse_args()

    tools = args.tools.split(",")
    rows = []
    for name in args.shapes.split(","):
        upstream = Upstream(args.cache, name, args.big_layer_mib, args.small_count)
        try:
            shape = upstream.start()
            row = Rows(shape)
            for run in range(args.runs):
                # Each tool goes first in every other run, so neither always
                # meets the upstream's page cache, or the machine, first.
                for tool in (tools if run % 2 == 0 else tools[::-1]):
                    with tempfile.TemporaryDirectory() as scratch, Target(args.relay) as target:
                        measure = (run_mirror if tool == "mirror" else run_crane)(
                            args, shape, upstream, target, Path(scratch))
                    log(f"{name} run {run + 1}/{args.runs} {tool}: {measure.wall:.2f} s, CPU {measure.cpu:.2f} s, "
                        f"{mib(measure.uploaded)} MiB uploaded, peak RSS {mib(measure.rss_kib * 1024)} MiB")
                    row.runs[tool].append(measure)
            rows.append(row)
        finally:
            upstream.stop()
    print(table(rows, args.runs))
    if args.json:
        args.json.write_text(json.dumps([
            {"shape": shape_to_json(r.shape),
             "runs": {t: [m.__dict__ for m in ms] for t, ms in r.runs.items()}} for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
