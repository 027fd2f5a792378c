"""Helpers for the Python tests (imported by conftest.py and the tests).

A uniquely named module rather than ``from conftest import``: several test
folders may each have a conftest.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

# Variables the function reads that must not leak from the caller's shell
# into the servers the tests start.
FUNCTION_ENV_VARS = ("ADDRESS", "INSECURE", "TLS_SERVER_CERTS_DIR", "DEBUG",
                     "MAX_RECV_MESSAGE_SIZE", "METRICS_ADDRESS")

# The tests' TLS clients name the server by its in-cluster Service name, as
# Crossplane does, while connecting to loopback.
TLS_SERVER_NAME = "function-ecr-packages.crossplane-system.svc"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- local ECR


@dataclass
class LocalEcr:
    """The running local ECR: ``env`` holds what ``localecr.py up`` wrote
    (AWS_ENDPOINT_URL_ECR, ECR_REGISTRY_ENDPOINT, AWS_*, LOCALECR_*)."""

    env: dict[str, str]

    @property
    def state(self) -> str:
        return self.env["LOCALECR_STATE"]

    @property
    def ecr_endpoint(self) -> str:
        return self.env["AWS_ENDPOINT_URL_ECR"]

    @property
    def registry_endpoint(self) -> str:
        return self.env["ECR_REGISTRY_ENDPOINT"]

    def seed(self, spec: dict) -> dict:
        """Build + push images (spec format: scripts/localecr.py); returns
        {repository: {tag: digest}}."""
        out = subprocess.run(
            [self.env["LOCALECR_PYTHON"], self.env["LOCALECR_SCRIPT"], "seed", "--state-dir", self.state, "-"],
            input=json.dumps(spec).encode(), capture_output=True, timeout=600)
        if out.returncode != 0:
            raise AssertionError(f"localecr seed failed: {out.stderr.decode(errors='replace')}")
        return json.loads(out.stdout)


_unique_counter = 0


def unique(prefix: str) -> str:
    """A repository name no other test or run uses."""
    global _unique_counter
    _unique_counter += 1
    return f"{prefix.lower()}-{os.getpid()}-{time.time_ns() & 0xffffffff:x}-{_unique_counter}"


# ---------------------------------------------------------------- function


def client_credentials(bundle_dir: Path, with_cert: bool = True) -> grpc.ChannelCredentials:
    """TLS client credentials trusting bundle_dir/ca.crt, presenting
    bundle_dir/tls.crt when with_cert."""
    ca = (bundle_dir / "ca.crt").read_bytes()
    if not with_cert:
        return grpc.ssl_channel_credentials(root_certificates=ca)
    return grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=(bundle_dir / "tls.key").read_bytes(),
        certificate_chain=(bundle_dir / "tls.crt").read_bytes())


def health_check(channel: grpc.Channel, service: str = "", timeout: float = 2.0) -> int:
    """grpc.health.v1.Health/Check without generated stubs: returns the
    status enum (1 = SERVING)."""
    svc = service.encode()
    request = (b"\x0a" + bytes([len(svc)]) + svc) if svc else b""
    call = channel.unary_unary("/grpc.health.v1.Health/Check",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
    raw = call(request, timeout=timeout)
    # HealthCheckResponse{status}: field 1, varint; absent means UNKNOWN (0).
    return raw[1] if len(raw) >= 2 and raw[0] == 0x08 else 0


def function_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FUNCTION_ENV_VARS}
    env.setdefault("RUST_BACKTRACE", "1")
    env.update(extra or {})
    return env


@dataclass
class FunctionServer:
    proc: subprocess.Popen
    address: str
    metrics_address: str
    log_path: Path
    tls_dir: Path | None = None
    channels: list = field(default_factory=list)

    def channel(self, credentials: grpc.ChannelCredentials | None = None, server_name: str | None = None,
                options: list | None = None) -> grpc.Channel:
        """A channel to this server: plaintext when credentials is None;
        otherwise TLS, expecting the certificate to name server_name."""
        opts = list(options or [])
        if credentials is None:
            ch = grpc.insecure_channel(self.address, options=opts)
        else:
            opts.append(("grpc.ssl_target_name_override", server_name or TLS_SERVER_NAME))
            ch = grpc.secure_channel(self.address, credentials, options=opts)
        self.channels.append(ch)
        return ch

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        for ch in self.channels:
            ch.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_function(binary: Path, log_path: Path, args: list[str] = (), tls_dir: Path | None = None,
                   client_creds: grpc.ChannelCredentials | None = None, env: dict | None = None,
                   ready_timeout: float = 60) -> FunctionServer:
    """Starts the function on free loopback ports (--insecure unless tls_dir)
    and returns once its health check answers SERVING. Raises RuntimeError,
    with the function's log, when it does not."""
    address = f"127.0.0.1:{free_port()}"
    metrics = f"127.0.0.1:{free_port()}"
    argv = [str(binary), "--address", address, "--metrics-address", metrics]
    argv += ["--tls-certs-dir", str(tls_dir)] if tls_dir else ["--insecure"]
    argv += list(args)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=function_env(env))
    server = FunctionServer(proc, address, metrics, log_path, tls_dir)
    probe = server.channel(client_creds if tls_dir else None)
    deadline = time.monotonic() + ready_timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"function exited with {proc.returncode} before serving:\n{server.log()}")
        try:
            if health_check(probe, timeout=1) == 1:
                return server
        except grpc.RpcError as e:
            last = e
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"function not serving on {address} after {ready_timeout}s ({last}):\n{server.log()}")
