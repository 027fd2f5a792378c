"""The real control plane for tests/cluster: etcd, kube-apiserver,
kube-controller-manager and Crossplane core, with the function serving mTLS
and the local ECR as the registry (scripts/cluster.py). One cluster for the
session; the tests run in file order and hand it on to each other.

Without Go (which builds the control plane) the suite skips with a message,
unless CLUSTER_REQUIRED=1 (scripts/test sets it), when it fails instead.
CLUSTER_STATE=DIR reuses a cluster that `scripts/cluster up` started;
CLUSTER_KEEP=1 leaves the cluster running after the session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clusterlib import REPO_ROOT, Cluster, cluster_script  # noqa: E402


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Cluster:
    reuse = os.environ.get("CLUSTER_STATE")
    if reuse and cluster_script.status(Path(reuse), quiet=True) == 0:
        c = Cluster(Path(reuse))
        cluster_script.install_platform(c.kube, c.state)
        yield c
        return
    if shutil.which("go") is None and not Path("/usr/local/go/bin/go").exists():
        if os.environ.get("CLUSTER_REQUIRED") == "1":
            pytest.fail("Go is needed to build the control plane (scripts/cluster-build)")
        pytest.skip("Go is not installed: the control plane cannot be built (scripts/cluster-build)")
    state = tmp_path_factory.mktemp("cluster")
    started = time.time()
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "cluster.py"), "up",
                    "--state-dir", str(state), "--watch-pid", str(os.getpid())],
                   check=True, timeout=3600)
    c = Cluster(state)
    cluster_script.install_platform(c.kube, c.state)
    print(f"\ncluster up and platform installed in {time.time() - started:.0f}s ({state})")
    try:
        yield c
    finally:
        if os.environ.get("CLUSTER_KEEP") != "1":
            subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "cluster.py"), "down",
                            "--state-dir", str(state)], check=False, timeout=120)
