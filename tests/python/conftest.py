"""Fixtures for the Python tests (helpers live in fnharness.py).

* ``localecr``: the local ECR stand-in (moto + docker-registry). Uses the one
  ``scripts/test`` started (``LOCALECR_STATE`` in the environment); otherwise
  starts its own for the session.
* ``function_binary``: ``target/debug/function-ecr-packages`` (built by
  ``scripts/test``; ``FUNCTION_BINARY`` overrides).
* ``tls_bundle``: Crossplane-shaped TLS material (see ``scripts/certs.py``).
* ``function_server``: a factory that starts the function on free loopback
  ports, waits until its gRPC health check answers, and stops it afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fnharness  # noqa: E402
from fnharness import REPO_ROOT, SCRIPTS, LocalEcr, client_credentials, read_env_file  # noqa: E402

import certs  # noqa: E402  (scripts/certs.py, put on sys.path by fnharness)


@pytest.fixture(scope="session")
def localecr(tmp_path_factory):
    state = os.environ.get("LOCALECR_STATE")
    if state and (Path(state) / "env").exists():
        yield LocalEcr(read_env_file(Path(state) / "env"))
        return
    state_dir = tmp_path_factory.mktemp("localecr")
    script = SCRIPTS / "localecr.py"
    subprocess.run([sys.executable, str(script), "up", "--state-dir", str(state_dir)], check=True, timeout=120)
    saved: dict[str, str | None] = {}
    try:
        env = read_env_file(state_dir / "env")
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        yield LocalEcr(env)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        subprocess.run([sys.executable, str(script), "down", "--state-dir", str(state_dir)], timeout=60)


@pytest.fixture(scope="session")
def function_binary() -> Path:
    path = Path(os.environ.get("FUNCTION_BINARY", REPO_ROOT / "target" / "debug" / "function-ecr-packages"))
    if not path.exists():
        pytest.fail(f"{path} not found: run `cargo build` (scripts/test does)")
    return path


@pytest.fixture(scope="session")
def tls_bundle(tmp_path_factory) -> dict[str, Path]:
    """{'server': dir, 'client': dir, 'stranger': dir}, each with tls.crt,
    tls.key, ca.crt (stranger's cert is from another CA)."""
    return certs.write_bundle(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def function_server(function_binary, tmp_path, tls_bundle):
    """start(*args, tls=False, env=None) -> FunctionServer, serving.

    With tls=True the server gets --tls-certs-dir tls_bundle['server'] (mTLS);
    otherwise --insecure. Extra args are appended to the command line."""
    started: list[fnharness.FunctionServer] = []

    def start(*args: str, tls: bool = False, env: dict | None = None,
              ready_timeout: float = 60) -> fnharness.FunctionServer:
        try:
            server = fnharness.start_function(
                function_binary, tmp_path / f"function-{len(started)}.log", list(args),
                tls_dir=tls_bundle["server"] if tls else None,
                client_creds=client_credentials(tls_bundle["client"]) if tls else None,
                env=env, ready_timeout=ready_timeout)
        except RuntimeError as e:
            pytest.fail(str(e))
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()
