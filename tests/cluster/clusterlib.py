"""What tests/cluster uses to drive the real control plane
(scripts/cluster.py): the running cluster and the operations on it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import cluster as cluster_script  # noqa: E402  (scripts/cluster.py)

XR_API = cluster_script.XR_API


class Cluster:
    """The running cluster, with the operations the tests need."""

    def __init__(self, state: Path):
        self.state = state
        self.env = cluster_script.read_env(state)
        self.kube = cluster_script.Kube.from_state(state)

    def run(self, *args: str) -> None:
        subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "cluster.py"), *args,
                        "--state-dir", str(self.state)], check=True, timeout=300)

    def xr(self, name: str) -> dict | None:
        return self.kube.read(XR_API, "XEcrPackages", name)

    def wait(self, what: str, check, timeout: float = 300, interval: float = 1.0,
             poke: str | None = None):
        """Polls check() until it returns something truthy; fails naming what.
        With poke, edits that XR every 20 s: Crossplane's circuit breaker
        drops an XR's events for a while after a burst of them."""
        deadline = time.time() + timeout
        poked = time.time()
        while time.time() < deadline:
            if poke and time.time() - poked > 20 and self.xr(poke):
                self.poke(poke)
                poked = time.time()
            result = check()
            if result:
                return result
            time.sleep(interval)
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")

    def composed(self, name: str) -> dict[tuple, dict]:
        """Every object the XR's resourceRefs name, and every package object
        but the platform's own Function, by (kind, namespace, name)."""
        out = {}
        xr = self.xr(name) or {}
        for ref in xr.get("spec", {}).get("crossplane", {}).get("resourceRefs", []) or []:
            obj = self.kube.read(ref["apiVersion"], ref["kind"], ref["name"], ref.get("namespace"))
            if obj:
                out[(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj
        for obj in self.packages():
            out[(obj["kind"], None, obj["metadata"]["name"])] = obj
        return out

    def packages(self) -> list[dict]:
        """Package objects, but the function's own (the platform installed it)."""
        return [p for p in cluster_script.packages(self.kube)
                if p["metadata"]["name"] != cluster_script.FUNCTION]

    def uids(self, name: str) -> dict[tuple, str]:
        return {k: o["metadata"]["uid"] for k, o in self.composed(name).items()}

    def poke(self, name: str) -> None:
        """An annotation change: Crossplane reconciles the XR again."""
        cluster_script.poke(self.kube, name)

    def converged(self, name: str) -> bool:
        return cluster_script.converged(self.kube, name)

    def summary(self, name: str) -> dict:
        return cluster_script.summary(self.kube, name)

    def publish(self, repository: str, version: str, unhealthy: bool = False) -> str:
        """A new release of a package the catalog seeded, pushed to the local
        ECR; with unhealthy, its runtime never reports healthy (the
        stand-in's RuntimeHealthy=False). Returns its digest."""
        return cluster_script.publish(self.state, repository, version, unhealthy)

    def lock_sources(self) -> list[str]:
        lock = self.kube.read("pkg.crossplane.io/v1beta1", "Lock", "lock") or {}
        return [p["source"] for p in lock.get("packages", []) or []]


