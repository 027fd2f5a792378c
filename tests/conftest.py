"""Fixtures shared by every pytest suite (tests/python, tests/e2e): the
local ECR stand-in, reused when scripts/test started it, otherwise started
here for the session and stopped after it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCALECR_SCRIPT = REPO_ROOT / "scripts" / "localecr.py"
if str(LOCALECR_SCRIPT.parent) not in sys.path:
    sys.path.insert(0, str(LOCALECR_SCRIPT.parent))

import localecr as localecr_script  # noqa: E402  (scripts/localecr.py; stdlib only at import)


@pytest.fixture(scope="session")
def localecr_env(tmp_path_factory) -> dict[str, str]:
    """The local ECR's environment (endpoints, AWS test credentials,
    LOCALECR_*), also exported to this process for code that reads it."""
    running = os.environ.get("LOCALECR_STATE")
    if running and (Path(running) / "env").exists():
        yield localecr_script.read_env(Path(running))
        return
    state = tmp_path_factory.mktemp("localecr")
    subprocess.run([sys.executable, str(LOCALECR_SCRIPT), "up", "--state-dir", str(state)],
                   check=True, timeout=180)
    env = localecr_script.read_env(state)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        subprocess.run([sys.executable, str(LOCALECR_SCRIPT), "down", "--state-dir", str(state)],
                       check=False, timeout=60)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
