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
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fnharness  # noqa: E402
from fnharness import REPO_ROOT, LocalEcr, client_credentials  # noqa: E402

import certs  # noqa: E402  (scripts/certs.py, put on sys.path by fnharness)


@pytest.fixture(scope="session")
def localecr(localecr_env):
    return LocalEcr(localecr_env)


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
