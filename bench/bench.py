#!/usr/bin/env python3
"""The Performance benchmark (issue 12); scripts/bench builds everything and
runs this. Standard library only.

For each catalog size N it generates a catalog of N packages (the XR
lists at most 500, src/spec/limits.rs MAX_PACKAGES; the rest are reached as
dependencies), seeds it into
the local ECR (scripts/localecr.py), drives function-ecr-packages wave by
wave until the XR is Ready (bench/go/cmd/benchdrv gen), and then measures,
with each server pinned to core 1 (taskset -c 1) and the load generator
(benchdrv, a Go driver replaying pre-encoded requests over one connection)
on core 0, the median of --runs runs of --seconds each:

* ours: the release binary, fresh (empty caches): one cold late-reconcile
  call (AWS calls counted from its Prometheus counter
  function_ecr_registry_calls_total), then p50 latency at concurrency 1 and
  req/s at concurrency 16, then one run at concurrency 64 (AWS calls over
  all of these: "warm"), VmRSS after the cold call (idle) and VmHWM at the
  end (high-water, so at 64 calls in flight);
* ours with --memo-mib 0 (every call composed, registry caches warm after
  one call): server CPU time (utime + stime) per call at concurrency 1,
  the median over --runs runs like every other figure;
* the Rust no-op floor (examples/noop.rs) and the Go no-op
  (bench/go/cmd/noop, function-sdk-go) on the same request: req/s at 16;
* the Go pipeline: function-patch-and-transform -> function-auto-ready ->
  function-sequencer, each request going through them in order as
  Crossplane runs a pipeline (benchdrv pipeline), req/s at 16.

Prints a markdown table and, per N, ratios. Exits non-zero only on errors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from localecr import free_port  # noqa: E402  (one helper for every script)


def say(msg: str) -> None:
    print(f"==> [scripts/bench] {msg}", file=sys.stderr, flush=True)


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}) before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (/proc/PID/stat utime, stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """A server process pinned to the server core."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict, logdir: Path, core: str):
        self.name, self.port = name, port
        self.log = logdir / f"{name}-{port}.log"
        self.proc = subprocess.Popen(
            ["taskset", "-c", core, *argv],
            env=env, stdin=subprocess.DEVNULL, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_port(port, self.proc, name)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def metrics_address(self, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if str(entry.get("message", "")).startswith("serving metrics"):
                    return entry["address"]
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} logged no metrics address ({self.log})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def registry_calls(metrics: str) -> dict[str, int]:
    text = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10).read().decode()
    calls: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("function_ecr_registry_calls_total{"):
            labels, value = line.rsplit(" ", 1)
            op = labels.split('operation="', 1)[1].split('"', 1)[0]
            calls[op] = int(float(value))
    return calls


def aws_calls(before: dict[str, int], after: dict[str, int]) -> tuple[int, dict[str, int]]:
    """API operations plus blob GETs (redirect hops not counted), as
    CallCounts::total counts them."""
    diff = {op: after.get(op, 0) - before.get(op, 0) for op in set(before) | set(after)}
    diff = {op: n for op, n in diff.items() if n}
    return sum(n for op, n in diff.items() if op != "BlobRedirect"), diff


class Bench:
    def __init__(self, args, tmp: Path):
        self.args, self.tmp = args, tmp
        self.env = dict(os.environ)
        self.driver = args.driver

    def drive(self, *argv: str, timeout: float = 600) -> dict:
        out = subprocess.run(
            ["taskset", "-c", self.args.client_core, self.driver, *argv],
            capture_output=True, text=True, env=self.env, timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(f"benchdrv {' '.join(argv)}: {out.stderr.strip() or out.stdout.strip()}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def runs(self, what: str, argv: list[str], times: int | None = None) -> list[dict]:
        results = []
        for _ in range(times or self.args.runs):
            r = self.drive(*argv, "-seconds", str(self.args.seconds))
            if r["errors"]:
                raise RuntimeError(f"{what}: {r['errors']} calls failed: {r['first_error']}")
            results.append(r)
        return results

    def start(self, name: str, argv: list[str], port: int) -> Server:
        return Server(name, argv, port, self.env, self.tmp, self.args.server_core)

    def ours(self, port: int, *extra: str) -> Server:
        return self.start("ours", [
            self.args.function, "serve", "--insecure", "--address", f"127.0.0.1:{port}",
            "--metrics-address", "127.0.0.1:0", *extra], port)

    def size(self, n: int, folder: Path) -> dict:
        a = self.args
        row: dict = {"n": n}
        # The requests: the real function, wave by wave, until Ready.
        port = free_port()
        gen = self.ours(port)
        try:
            started = time.monotonic()
            row["gen"] = self.drive("gen", "-address", f"127.0.0.1:{port}", "-dir", str(folder), timeout=1200)
            row["gen"]["seconds"] = round(time.monotonic() - started, 1)
        finally:
            gen.stop()
        say(f"N={n}: {row['gen']['composed']} objects composed in {row['gen']['waves']} waves; "
            f"late-reconcile request {row['gen']['request_bytes']} bytes")
        ours_req, pt_req = str(folder / "ours.bin"), str(folder / "pt.bin")

        # Ours, fresh: the cold call, then the measured runs.
        port = free_port()
        server = self.ours(port)
        try:
            metrics = server.metrics_address()
            row["rss_fresh_kib"] = status_kib(server.pid, "VmRSS")
            m0 = registry_calls(metrics)
            self.drive("load", "-address", f"127.0.0.1:{port}", "-request", ours_req,
                       "-warm", "1", "-seconds", "0")
            m1 = registry_calls(metrics)
            row["aws_cold"], row["aws_cold_ops"] = aws_calls(m0, m1)
            time.sleep(0.5)
            row["rss_idle_kib"] = status_kib(server.pid, "VmRSS")
            c1 = self.runs("ours c=1", ["load", "-address", f"127.0.0.1:{port}", "-request", ours_req, "-c", "1"])
            c16 = self.runs("ours c=16", ["load", "-address", f"127.0.0.1:{port}", "-request", ours_req, "-c", "16"])
            row["rss_hwm16_kib"] = status_kib(server.pid, "VmHWM")
            [c64] = self.runs("ours c=64", ["load", "-address", f"127.0.0.1:{port}", "-request", ours_req,
                                            "-c", "64"], times=1)
            m2 = registry_calls(metrics)
            row["aws_warm"], row["aws_warm_ops"] = aws_calls(m1, m2)
            row["warm_requests"] = sum(r["calls"] + 3 for r in c1 + c16 + [c64])
            row["rss_hwm_kib"] = status_kib(server.pid, "VmHWM")
            row["rss_after_kib"] = status_kib(server.pid, "VmRSS")
        finally:
            server.stop()
        row["ours_p50_ms"] = statistics.median(r["p50_ms"] for r in c1)
        row["ours_rps"] = statistics.median(r["rps"] for r in c16)
        row["ours_p50_ms_c16"] = statistics.median(r["p50_ms"] for r in c16)
        row["ours_rps_c64"] = c64["rps"]

        # Ours composing every call (no memo), registry caches warm: the
        # server CPU one warm reconcile costs when something did change.
        port = free_port()
        server = self.ours(port, "--memo-mib", "0")
        try:
            self.drive("load", "-address", f"127.0.0.1:{port}", "-request", ours_req,
                       "-warm", "1", "-seconds", "0")
            windows = []
            for _ in range(a.runs):
                cpu0 = cpu_seconds(server.pid)
                # -warm 0: the driver's checked warm-up calls would count in
                # the CPU time but not in the calls.
                composed = self.drive("load", "-address", f"127.0.0.1:{port}", "-request", ours_req,
                                      "-warm", "0", "-c", "1", "-seconds", str(a.seconds))
                cpu1 = cpu_seconds(server.pid)
                windows.append(((cpu1 - cpu0) * 1000 / max(composed["calls"], 1), composed["p50_ms"]))
        finally:
            server.stop()
        row["compose_cpu_ms"] = statistics.median(cpu for cpu, _ in windows)
        row["compose_p50_ms"] = statistics.median(p50 for _, p50 in windows)

        # The Rust no-op floor and the Go no-op, on the same request.
        for key, argv in (("rust_noop", [a.noop]), ("go_noop", [a.go_noop, "-metrics-address", "127.0.0.1:0"])):
            port = free_port()
            server = self.start(key, [*argv, "--address", f"127.0.0.1:{port}"], port)
            try:
                rs = self.runs(key, ["load", "-address", f"127.0.0.1:{port}", "-request", ours_req, "-c", "16"])
            finally:
                server.stop()
            row[f"{key}_rps"] = statistics.median(r["rps"] for r in rs)

        # The Go pipeline.
        stages = [("patch-and-transform", a.pt), ("auto-ready", a.auto_ready)]
        if a.sequencer:
            stages.append(("sequencer", a.sequencer))
        servers, addresses = [], []
        try:
            for name, binary in stages:
                port = free_port()
                servers.append(self.start(name, [binary, "--insecure", "--address", f"127.0.0.1:{port}",
                                                 "--max-recv-message-size", "64"], port))
                addresses.append(f"127.0.0.1:{port}")
            argv = ["pipeline", "-address", ",".join(addresses), "-request", pt_req, "-c", "16"]
            if a.sequencer:
                argv += ["-input3", str(folder / "sequencer-input.json")]
            rs = self.runs("Go pipeline", argv)
            row["pipeline_rps"] = statistics.median(r["rps"] for r in rs)
            row["pipeline_p50_ms_c16"] = statistics.median(r["p50_ms"] for r in rs)
        finally:
            for s in servers:
                s.stop()
        row["pipeline_stages"] = [name for name, _ in stages]
        say(f"N={n}: ours p50 {row['ours_p50_ms']:.2f} ms, {row['ours_rps']:.0f} req/s; Rust no-op "
            f"{row['rust_noop_rps']:.0f}; Go no-op {row['go_noop_rps']:.0f}; Go pipeline {row['pipeline_rps']:.0f}")
        return row


# function_ecr_registry_calls_total operations that are reads of the
# registry's data plane (HTTP GETs of blobs with the ECR token), not AWS API
# calls; BlobRedirect hops are never counted.
BLOB_OPS = {"GetBlob", "BlobRedirect"}


def api_calls(ops: dict[str, int]) -> int:
    return sum(n for op, n in ops.items() if op not in BLOB_OPS)


def blob_gets(ops: dict[str, int]) -> int:
    return ops.get("GetBlob", 0)


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def report(rows: list[dict], args) -> str:
    pipeline = " → ".join(rows[0]["pipeline_stages"]) if rows else ""
    lines = [
        f"runs: median of {args.runs} x {args.seconds}s; servers on core {args.server_core}, "
        f"load generator (bench/go/cmd/benchdrv, pre-encoded requests, one connection) on core {args.client_core}",
        f"Go pipeline: {pipeline}, each request through the functions in order (benchdrv pipeline, "
        "concurrency 16; Crossplane's role played by the driver)",
        "Every run repeats one unchanged late-reconcile request, as Crossplane does for a settled XR: "
        "function-ecr-packages may answer it from its per-XR memo (--memo-mib), the Go functions compute afresh",
        "",
        "| packages | ours p50 c=1 | ours req/s c=16 | no-op floor (Rust, tonic) req/s | Go no-op req/s "
        "| Go pipeline req/s | ours RSS idle / high-water (c=64) | AWS API calls cold / warm "
        "| blob GETs cold | server CPU per compose, memo off |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['ours_p50_ms']:.2f} ms | {r['ours_rps']:.0f} | {r['rust_noop_rps']:.0f} "
            f"| {r['go_noop_rps']:.0f} | {r['pipeline_rps']:.0f} "
            f"| {mib(r['rss_idle_kib'])} / {mib(r['rss_hwm_kib'])} MiB "
            f"| {api_calls(r['aws_cold_ops'])} / {api_calls(r['aws_warm_ops'])} "
            f"| {blob_gets(r['aws_cold_ops'])} | {r['compose_cpu_ms']:.1f} ms |"
        )
    lines += ["", "Ratios (req/s at c=16) and cold AWS API calls per package (the token once, then "
              "ListImages and BatchGetImage per repository; package.yaml's layer read over the registry "
              "API with the token, a blob GET, not an API call):", ""]
    for r in rows:
        n = r["n"]
        lines.append(
            f"- N={n}: ours/Go-pipeline {r['ours_rps'] / r['pipeline_rps']:.1f}x, "
            f"ours/Go-no-op {r['ours_rps'] / r['go_noop_rps']:.2f}x, "
            f"ours/Rust-floor {r['ours_rps'] / r['rust_noop_rps']:.2f}x; "
            f"cold AWS API calls per package {(api_calls(r['aws_cold_ops']) - 1) / n:.2f} + 1 token, "
            f"blob GETs per package {blob_gets(r['aws_cold_ops']) / n:.2f} ({r['aws_cold_ops']}); "
            f"warm: {r['aws_warm']} over {r['warm_requests']} requests"
        )
    lines += ["", "Details:", ""]
    for r in rows:
        g = r["gen"]
        c = r.get("catalog", {})
        lines.append(
            f"- N={r['n']}: {c.get('listed', '?')} packages listed in spec.packages (at most 500), the rest "
            f"resolved as dependencies; {g['composed']} composed objects, ready after {g['waves']} waves "
            f"({g['seconds']}s from cold); request {g['request_bytes'] / 1024:.0f} KiB "
            f"(P&T's {g['pt_request_bytes'] / 1024:.0f} KiB); ours p50 at c=16 {r['ours_p50_ms_c16']:.2f} ms; "
            f"pipeline p50 at c=16 {r['pipeline_p50_ms_c16']:.2f} ms; ours RSS fresh {mib(r['rss_fresh_kib'])} MiB, "
            f"after the runs {mib(r['rss_after_kib'])} MiB, high-water after c=16 {mib(r['rss_hwm16_kib'])} MiB "
            f"and after c=64 ({r['ours_rps_c64']:.0f} req/s) {mib(r['rss_hwm_kib'])} MiB; memo off: p50 "
            f"{r['compose_p50_ms']:.2f} ms, {r['compose_cpu_ms']:.2f} ms server CPU per call"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="3,50,200,1000")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--server-core", default="1")
    p.add_argument("--client-core", default="0")
    p.add_argument("--function", default="", help="the release function-ecr-packages")
    p.add_argument("--noop", default="", help="examples/noop built")
    p.add_argument("--go-noop", default="")
    p.add_argument("--driver", default="", help="benchdrv")
    p.add_argument("--pt", default="", help="function-patch-and-transform")
    p.add_argument("--auto-ready", default="", help="function-auto-ready")
    p.add_argument("--sequencer", default="", help="function-sequencer (the pipeline goes without it if empty)")
    p.add_argument("--json", default="", help="also write the rows here")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (requests, logs)")
    p.add_argument("--report", default="", metavar="ROWS.json",
                   help="print the table of rows an earlier run wrote with --json (give its --runs and "
                        "--seconds), and measure nothing")
    args = p.parse_args(argv)
    if args.report:
        print(report(json.loads(Path(args.report).read_text()), args))
        return 0
    missing = [f"--{k.replace('_', '-')}" for k in ("function", "noop", "go_noop", "driver", "pt", "auto_ready")
               if not getattr(args, k)]
    if missing:
        p.error(f"required: {', '.join(missing)}")
    sizes = [int(s) for s in args.sizes.split(",") if s]

    tmp = Path(tempfile.mkdtemp(prefix="bench."))
    ecr_state = None
    try:
        env = os.environ
        if not env.get("AWS_ENDPOINT_URL_ECR") or not env.get("LOCALECR_STATE"):
            ecr_state = tmp / "ecr"
            say(f"starting the local ECR in {ecr_state}")
            subprocess.run([sys.executable, str(ROOT / "scripts/localecr.py"), "up", "--state-dir", str(ecr_state)],
                           check=True, stdout=subprocess.DEVNULL)
            for line in (ecr_state / "env").read_text().splitlines():
                if "=" in line:
                    k, v = line.split("=", 1)
                    os.environ[k] = v
        bench = Bench(args, tmp)
        account = os.environ.get("LOCALECR_ACCOUNT_ID", "123456789012")
        region = os.environ["AWS_REGION"]
        namespace = f"bench-{os.getpid()}-{int(time.time()) & 0xffffff:x}"
        images: dict[str, dict] = {}
        folders, catalogs = {}, {}
        for n in sizes:
            folders[n] = tmp / f"n{n}"
            catalogs[n] = bench.drive("catalog", "-n", str(n), "-namespace", namespace, "-account", account,
                        "-region", region, "-out", str(folders[n]))
            for image in json.loads((folders[n] / "seed.json").read_text())["images"]:
                images[image["repository"]] = image
        # The catalogs nest (same names, same contents), so the union is
        # seeded once.
        spec = tmp / "seed.json"
        spec.write_text(json.dumps({"images": list(images.values())}))
        say(f"seeding {len(images)} repositories under {namespace}/ into the local ECR")
        started = time.monotonic()
        subprocess.run([os.environ.get("LOCALECR_PYTHON", sys.executable), str(ROOT / "scripts/localecr.py"),
                        "seed", "--state-dir", os.environ["LOCALECR_STATE"], str(spec)],
                       check=True, stdout=subprocess.DEVNULL)
        say(f"seeded in {time.monotonic() - started:.0f}s")
        rows = []
        for n in sizes:
            rows.append({**bench.size(n, folders[n]), "catalog": catalogs[n]})
        text = report(rows, args)
        print(text)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
        return 0
    except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    finally:
        if ecr_state is not None:
            subprocess.run([sys.executable, str(ROOT / "scripts/localecr.py"), "down", "--state-dir", str(ecr_state)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
