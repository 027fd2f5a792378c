#!/usr/bin/env python3
"""A real Crossplane control plane on loopback, with no Docker, kind or nodes.

    scripts/cluster up [--state-dir DIR] [--watch-pid PID]
    scripts/cluster status [--state-dir DIR]
    scripts/cluster down [--state-dir DIR]
    scripts/cluster function stop|start [--state-dir DIR]
    scripts/cluster registry stop|start [--state-dir DIR]   (an ECR outage)
    scripts/cluster publish REPOSITORY VERSION [--unhealthy] [--state-dir DIR]

`up` starts, each as a local process with its own log under DIR/logs:

- the local ECR (scripts/localecr.py up --tls): moto for the ECR API, Debian's
  docker-registry behind the ECR proxy, and a read-only TLS registry on the
  same storage that Crossplane pulls from (its CA goes to --ca-bundle-path),
  seeded with tests/cluster/catalog.json (or $CLUSTER_CATALOG);
- etcd (Debian's etcd-server), client TLS required;
- kube-apiserver (TLS, RBAC, service-account tokens) and
  kube-controller-manager (garbage collector, namespaces, service accounts),
  built by scripts/cluster-build and cached in ~/.cache;
- Crossplane core, the version CLUSTER_CROSSPLANE_VERSION names (v2.2.0, the
  default, v2.3.4 or v2.4.0; see CROSSPLANE_VERSIONS) (`crossplane core
  init`, then `core start` with PACKAGE_RUNTIME=External), authenticated as its own service account
  crossplane-system/crossplane, with webhooks enabled as in the Helm chart,
  so Usages, ClusterUsages and legacy Usages are enforced: its webhook
  server listens on a free port with a crossplane-root-ca certificate for
  127.0.0.1, and the webhook configurations `core init` writes for the
  crossplane-webhooks Service are pointed at https://127.0.0.1:PORT instead
  (there are no Services to route here);
- the function (`function-ecr-packages serve`) serving mTLS on 127.0.0.1 with a
  server certificate signed by Crossplane's `crossplane-root-ca`, requiring
  Crossplane's client certificate;
- the stand-in (`scripts/cluster.py standin`), which does what the package
  runtime and provider-aws would do and nothing else:
  * with PACKAGE_RUNTIME=External, Crossplane leaves the runtime to someone
    else: for each active ProviderRevision and FunctionRevision the stand-in
    writes what the Deployment runtime writes: the webhook TLS Secret and
    status.tlsServerSecretName, the RuntimeHealthy condition, and for this
    function's FunctionRevision status.endpoint (dns:///127.0.0.1:PORT);
    RuntimeHealthy is True, but False (an unavailable Deployment) for the
    releases DIR/standin-unhealthy.json lists, which `publish --unhealthy`
    adds to;
  * the IAM kinds of provider-aws (the release scripts/crds fetches) are
    installed as Crossplane installs a safe-start provider's: as inactive
    ManagedResourceDefinitions, with no default activation policy (`core
    init` without --activation), so their CRDs exist only once an XR's
    activation policy activates them; provider-aws's controllers do not run,
    so the stand-in marks Roles, Policies and RolePolicyAttachments Synced
    and Ready with an ARN, as provider-aws would once AWS answered.

`publish` pushes a new release (VERSION, a tag) of a package the catalog seeds
to the local ECR, built like the catalog's, prints its digest and records it
in DIR/seeded.json; with --unhealthy its runtime never reports healthy.

DIR defaults to $CLUSTER_STATE, else .cache/cluster in the checkout. `up`
writes DIR/env (KUBECONFIG for an admin, LOCALECR_*, FUNCTION_ADDRESS,
CROSSPLANE_VERSION: what the running `crossplane --version` says, ...).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

# The local ECR's process helpers serve the cluster's processes too.
from localecr import alive, free_port, stop_pid  # noqa: E402

NAMESPACE = "crossplane-system"
SERVICE_ACCOUNT = "crossplane"
FUNCTION = "function-ecr-packages"
ACCOUNT_ID = "123456789012"

# The Crossplane versions the cluster runs, pinned exactly (the Go module
# proxy serves these three of github.com/crossplane/crossplane/v2; not
# v2.4.1 nor @latest). CLUSTER_CROSSPLANE_VERSION picks one; scripts/test
# runs the newest, scripts/cluster-test any.
CROSSPLANE_VERSIONS = ("v2.2.0", "v2.3.4", "v2.4.0")
DEFAULT_CROSSPLANE_VERSION = "v2.2.0"


def crossplane_version() -> str:
    v = os.environ.get("CLUSTER_CROSSPLANE_VERSION") or DEFAULT_CROSSPLANE_VERSION
    if v not in CROSSPLANE_VERSIONS:
        raise SystemExit(f"cluster: CLUSTER_CROSSPLANE_VERSION={v} is not one of {', '.join(CROSSPLANE_VERSIONS)}")
    return v


def version_tuple(v: str) -> tuple[int, ...]:
    """"v2.4.0" -> (2, 4, 0)."""
    return tuple(int(n) for n in v.lstrip("v").split("-", 1)[0].split("."))


# The stand-in's own field manager, so its writes are told apart in
# managedFields from Crossplane's.
STANDIN = "cluster-standin"


def log(msg: str) -> None:
    print(f"==> [scripts/cluster] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- PKI

def pki(state: Path) -> dict[str, Path]:
    """The cluster's CA and every certificate the control plane uses."""
    from certs import CA, _pem_key, _key  # scripts/certs.py
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = state / "pki"
    if (d / "done").exists():
        return {p.stem: p for p in d.iterdir()}
    d.mkdir(parents=True, exist_ok=True)
    ca = CA("function-ecr-packages test cluster CA")
    (d / "ca.crt").write_bytes(ca.pem)

    def leaf(name: str, cn: str, org: str | None = None, dns=(), ips=()):
        key = _key()
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        now = datetime.datetime.now(datetime.timezone.utc)
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name(attrs))
             .issuer_name(ca.cert.subject)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage(
                 [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        sans = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = b.sign(ca.key, hashes.SHA256())
        (d / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / f"{name}.key").write_bytes(_pem_key(key))

    leaf("etcd", "etcd", dns=["localhost"], ips=["127.0.0.1"])
    leaf("etcd-client", "kube-apiserver-etcd-client")
    leaf("apiserver", "kube-apiserver",
         dns=["kubernetes", "kubernetes.default", "kubernetes.default.svc", "localhost"],
         ips=["127.0.0.1", "10.96.0.1"])
    leaf("admin", "cluster-admin", org="system:masters")
    leaf("kcm", "system:kube-controller-manager")
    sa = _key()
    (d / "sa.key").write_bytes(_pem_key(sa))
    (d / "sa.pub").write_bytes(sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (d / "done").write_text("")
    return {p.stem: p for p in d.iterdir()}


def kubeconfig(path: Path, server: str, ca: Path, cert: Path | None = None,
               key: Path | None = None, token: str | None = None) -> None:
    user: dict = {}
    if cert:
        user = {"client-certificate": str(cert), "client-key": str(key)}
    if token:
        user = {"token": token}
    cfg = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "user"}}],
        "current-context": "local",
    }
    path.write_text(json.dumps(cfg, indent=2))
    path.chmod(0o600)


# ---------------------------------------------------------------- Kubernetes REST

class KubeError(RuntimeError):
    def __init__(self, status: int, body: str, what: str):
        super().__init__(f"{what}: HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class Kube:
    """A small Kubernetes REST client (TLS, client certificate or token)."""

    def __init__(self, server: str, ca: Path, cert: Path | None = None, key: Path | None = None,
                 token: str | None = None):
        self.server = server.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=str(ca))
        if cert:
            self.ctx.load_cert_chain(str(cert), str(key))
        self.token = token
        self._resources: dict[str, dict[str, dict]] = {}

    @classmethod
    def from_state(cls, state: Path) -> "Kube":
        env = read_env(state)
        p = state / "pki"
        return cls(env["KUBE_SERVER"], p / "ca.crt", p / "admin.crt", p / "admin.key")

    def request(self, method: str, path: str, body=None, content_type: str = "application/json",
                timeout: float = 30.0):
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise KubeError(e.code, e.read().decode(errors="replace"), f"{method} {path}") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def get(self, path: str):
        try:
            return self.request("GET", path)
        except KubeError as e:
            if e.status == 404:
                return None
            raise

    # -- resources by apiVersion/kind, found through discovery

    def resources(self, api_version: str, refresh: bool = False) -> dict[str, dict]:
        if refresh or api_version not in self._resources:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            found = self.get(base) or {"resources": []}
            self._resources[api_version] = {
                r["kind"]: r for r in found["resources"] if "/" not in r["name"]}
        return self._resources[api_version]

    def path(self, api_version: str, kind: str, name: str | None = None,
             namespace: str | None = None, sub: str | None = None) -> str:
        res = self.resources(api_version).get(kind) or self.resources(api_version, True).get(kind)
        if res is None:
            raise KubeError(404, f"no kind {kind} in {api_version}", "discovery")
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        p = base
        if res["namespaced"] and namespace:
            p += f"/namespaces/{namespace}"
        p += f"/{res['name']}"
        if name:
            p += f"/{name}"
        if sub:
            p += f"/{sub}"
        return p

    def apply(self, obj: dict, manager: str = "cluster", sub: str | None = None) -> dict:
        meta = obj["metadata"]
        path = self.path(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"), sub)
        return self.request("PATCH", f"{path}?fieldManager={manager}&force=true", obj,
                            "application/apply-patch+yaml")

    def read(self, api_version: str, kind: str, name: str, namespace: str | None = None):
        return self.get(self.path(api_version, kind, name, namespace))

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict]:
        try:
            return self.get(self.path(api_version, kind, namespace=namespace))["items"]
        except KubeError as e:
            if e.status == 404:
                return []
            raise

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               propagation: str = "Background") -> None:
        try:
            self.request("DELETE", self.path(api_version, kind, name, namespace),
                         {"kind": "DeleteOptions", "apiVersion": "v1",
                          "propagationPolicy": propagation})
        except KubeError as e:
            if e.status != 404:
                raise

    def merge_status(self, obj: dict, status: dict) -> None:
        meta = obj["metadata"]
        path = self.path(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"), "status")
        body = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status}
        self.request("PATCH", path, body, "application/merge-patch+json")


def read_yaml_docs(path: Path) -> list[dict]:
    import yaml
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def read_env(state: Path) -> dict[str, str]:
    env = {}
    f = state / "env"
    if f.exists():
        for line in f.read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


def write_env(state: Path, env: dict[str, str]) -> None:
    (state / "env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))


# ---------------------------------------------------------------- processes

class Processes:
    def __init__(self, state: Path):
        self.state = state
        self.file = state / "pids.json"
        self.logs = state / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def load(self) -> dict[str, int]:
        return json.loads(self.file.read_text()) if self.file.exists() else {}

    def save(self, pids: dict[str, int]) -> None:
        self.file.write_text(json.dumps(pids))

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        logf = open(self.logs / f"{name}.log", "ab")
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True, cwd=self.state)
        logf.close()
        pids = self.load()
        pids[name] = p.pid
        self.save(pids)
        return p.pid

    def stop(self, name: str) -> None:
        pids = self.load()
        pid = pids.pop(name, None)
        if pid:
            stop_pid(pid)
        self.save(pids)

    def tail(self, name: str, n: int = 3000) -> str:
        f = self.logs / f"{name}.log"
        return f.read_text(errors="replace")[-n:] if f.exists() else ""


def wait_for(what: str, check, timeout: float, procs: Processes | None = None,
             name: str | None = None, interval: float = 0.25):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if procs and name:
            pid = procs.load().get(name)
            if pid and not alive(pid):
                raise SystemExit(f"cluster: {name} exited while waiting for {what}:\n{procs.tail(name)}")
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        time.sleep(interval)
    tail = procs.tail(name) if procs and name else ""
    raise SystemExit(f"cluster: timed out after {timeout:.0f}s waiting for {what} ({last})\n{tail}")


# ---------------------------------------------------------------- up

def build() -> dict[str, str]:
    version = crossplane_version()
    out = subprocess.run([str(ROOT / "scripts" / "cluster-build")], check=True,
                         env={**os.environ, "CLUSTER_CROSSPLANE_VERSION": version},
                         stdout=subprocess.PIPE, text=True).stdout
    tools = dict(line.split("=", 1) for line in out.split() if "=" in line)
    # What the binary says, not what was asked: a stale cache would show.
    said = subprocess.run([str(Path(tools["CROSSPLANE_DIR"]) / "crossplane"), "--version"], check=True,
                          stdout=subprocess.PIPE, text=True).stdout.strip()
    if said != version:
        raise SystemExit(f"cluster: {tools['CROSSPLANE_DIR']}/crossplane says {said!r}, not {version}")
    tools["CROSSPLANE_VERSION"] = said
    return tools


def function_binary() -> str:
    b = os.environ.get("FUNCTION_BINARY")
    if b and os.access(b, os.X_OK):
        return b
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    b = target / "debug" / FUNCTION
    if not b.exists():
        subprocess.run(["cargo", "build", "--quiet"], cwd=ROOT, check=True)
    return str(b)


def cmd_up(args) -> int:
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    procs = Processes(state)
    if procs.load() and status(state, quiet=True) == 0:
        log(f"already up (env in {state / 'env'})")
        return 0
    stop_all(state)
    started = time.time()

    def stage(msg: str) -> None:
        log(f"{msg} ({time.time() - started:.0f}s)")

    tools = build()
    stage("control plane binaries ready")
    ecr = up_ecr(state)
    stage(f"local ECR up, TLS registry {ecr['LOCALECR_TLS_REGISTRY']}, catalog seeded")
    kube = up_kube(state, tools)
    stage("etcd, kube-apiserver and kube-controller-manager up")
    up_crossplane(state, tools, kube, ecr)
    stage(f"crossplane {tools['CROSSPLANE_VERSION']} started")
    install_iam_definitions(kube)
    stage("provider-aws's IAM definitions installed, inactive")
    up_function(state, kube, ecr, args.watch_pid, tools)
    stage(f"up: KUBECONFIG={state / 'admin.kubeconfig'}, function at {read_env(state)['FUNCTION_ADDRESS']}")
    return 0


def up_ecr(state: Path) -> dict[str, str]:
    """The local ECR, with the TLS registry Crossplane pulls from."""
    py = sys.executable
    ecr_state = state / "localecr"
    subprocess.run([py, str(ROOT / "scripts" / "localecr.py"), "up", "--tls",
                    "--state-dir", str(ecr_state)], check=True)
    ecr = read_env(ecr_state)
    seeded = subprocess.run([py, str(ROOT / "scripts" / "localecr.py"), "seed", "--state-dir",
                             str(ecr_state), str(catalog_path())], check=True, cwd=ROOT,
                            stdout=subprocess.PIPE, text=True).stdout
    (state / "seeded.json").write_text(seeded)
    return ecr


def catalog_path() -> Path:
    return Path(os.environ.get("CLUSTER_CATALOG", str(ROOT / "tests" / "cluster" / "catalog.json")))


def write_json(path: Path, doc) -> None:
    """Replaces path whole: the stand-in reads it every second."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)


def publish(state: Path, repository: str, version: str, unhealthy: bool = False) -> str:
    """Pushes a new release of a package the catalog seeded: the catalog's
    image for repository, tagged version (its image config carries the tag,
    so the digest is a new one), through both halves of the local ECR, as
    a release would be mirrored. With unhealthy, its runtime never turns
    healthy (the stand-in reads STATE/standin-unhealthy.json): the tag is
    listed before the push, so no revision of it is ever marked healthy,
    and the digest after. Records the tag in STATE/seeded.json; returns
    the digest."""
    images = [i for i in json.loads(catalog_path().read_text())["images"] if i.get("repository") == repository]
    if not images:
        raise SystemExit(f"cluster: {catalog_path()} seeds no {repository}")
    listed = state / UNHEALTHY_FILE
    if unhealthy:
        entries = json.loads(listed.read_text()) if listed.exists() else []
        write_json(listed, entries + [f"{repository}:{version}"])
    spec = {"images": [{**images[0], "tags": [version]}]}
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "localecr.py"), "seed", "--state-dir",
                          read_env(state).get("LOCALECR_STATE", str(state / "localecr")), "-"],
                         input=json.dumps(spec), check=True, cwd=ROOT,
                         stdout=subprocess.PIPE, text=True, timeout=300).stdout
    digest = json.loads(out)[repository][version]
    seeded = json.loads((state / "seeded.json").read_text())
    seeded.setdefault(repository, {})[version] = digest
    write_json(state / "seeded.json", seeded)
    if unhealthy:
        write_json(listed, json.loads(listed.read_text()) + [digest])
    return digest


def cmd_publish(args) -> int:
    """Prints the new release's digest."""
    print(publish(Path(args.state_dir).resolve(), args.repository, args.version, args.unhealthy))
    return 0


def up_kube(state: Path, tools: dict[str, str]) -> Kube:
    """etcd, kube-apiserver, kube-controller-manager; Crossplane's identity."""
    procs = Processes(state)
    p = pki(state)
    etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
    procs.spawn("etcd", [tools.get("ETCD", "etcd"), "--name", "test", "--data-dir", str(state / "etcd"),
                         "--listen-client-urls", f"https://127.0.0.1:{etcd_port}",
                         "--advertise-client-urls", f"https://127.0.0.1:{etcd_port}",
                         "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                         "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                         "--initial-cluster", f"test=http://127.0.0.1:{etcd_peer}",
                         "--cert-file", str(p["etcd"].with_suffix(".crt")),
                         "--key-file", str(state / "pki" / "etcd.key"),
                         "--trusted-ca-file", str(p["ca"]), "--client-cert-auth",
                         "--unsafe-no-fsync", "--log-level", "warn"])

    # -- kube-apiserver
    pk = state / "pki"
    server = f"https://127.0.0.1:{api_port}"
    kube_dir = Path(tools["KUBE_DIR"])
    procs.spawn("kube-apiserver", [
        str(kube_dir / "kube-apiserver"),
        f"--etcd-servers=https://127.0.0.1:{etcd_port}",
        f"--etcd-cafile={pk / 'ca.crt'}", f"--etcd-certfile={pk / 'etcd-client.crt'}",
        f"--etcd-keyfile={pk / 'etcd-client.key'}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={api_port}",
        f"--cert-dir={state / 'apiserver'}",
        f"--tls-cert-file={pk / 'apiserver.crt'}", f"--tls-private-key-file={pk / 'apiserver.key'}",
        f"--client-ca-file={pk / 'ca.crt'}",
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pk / 'sa.pub'}",
        f"--service-account-signing-key-file={pk / 'sa.key'}",
        "--service-cluster-ip-range=10.96.0.0/16",
        # Loopback cannot be a Service endpoint; nothing here needs the
        # kubernetes Service to have one.
        "--endpoint-reconciler-type=none",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
    ])
    write_env(state, {"KUBE_SERVER": server})
    kube = Kube(server, pk / "ca.crt", pk / "admin.crt", pk / "admin.key")
    wait_for("kube-apiserver /readyz", lambda: kube.request("GET", "/readyz", timeout=5) == "ok",
             120, procs, "kube-apiserver", interval=0.5)
    kubeconfig(state / "admin.kubeconfig", server, pk / "ca.crt", pk / "admin.crt", pk / "admin.key")

    # -- kube-controller-manager: its garbage collector deletes what an
    # XR owned when the XR goes, and finishes foreground deletions.
    kubeconfig(state / "kcm.kubeconfig", server, pk / "ca.crt", pk / "kcm.crt", pk / "kcm.key")
    procs.spawn("kube-controller-manager", [
        str(kube_dir / "kube-controller-manager"),
        f"--kubeconfig={state / 'kcm.kubeconfig'}",
        f"--authentication-kubeconfig={state / 'kcm.kubeconfig'}",
        f"--authorization-kubeconfig={state / 'kcm.kubeconfig'}",
        "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
        f"--cert-dir={state / 'kcm'}",
        "--controllers=garbagecollector,namespace,serviceaccount",
        "--use-service-account-credentials=true",
        f"--root-ca-file={pk / 'ca.crt'}",
        "--leader-elect=false",
        "--profiling=false",
    ])

    # -- Crossplane's identity: a service account bound to cluster-admin
    # (what the Helm chart's RBAC manager grants it piece by piece).
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    kube.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE}})
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "crossplane-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT,
                              "namespace": NAMESPACE}]})
    token = kube.request("POST", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{SERVICE_ACCOUNT}/token",
                         {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                          "spec": {"expirationSeconds": 7 * 24 * 3600}})["status"]["token"]
    kubeconfig(state / "crossplane.kubeconfig", server, pk / "ca.crt", token=token)
    return kube


def install_iam_definitions(kube: Kube) -> None:
    """provider-aws's IAM kinds as Crossplane's package manager installs a
    safe-start provider's: each CRD of the release scripts/crds fetches,
    converted to a ManagedResourceDefinition (its group, names, scope and
    versions; what Crossplane's converter keeps) in state Inactive. Nothing
    activates them by default (`core init` runs without --activation): the
    XR's activation policy does, and then Crossplane creates the CRDs."""
    for crd in fetched_crds("provider-aws"):
        for doc in read_yaml_docs(crd):
            spec = doc["spec"]
            kube.apply({"apiVersion": MRD_API, "kind": "ManagedResourceDefinition",
                        "metadata": {"name": doc["metadata"]["name"]},
                        "spec": {**{k: spec[k] for k in ("group", "names", "scope", "versions")},
                                 "state": "Inactive"}})


def fetched_crds(project: str) -> list[Path]:
    """The CRD files of `project`'s releases under test (scripts/crds: from
    ~/.cache/function-ecr-packages/crds, fetched through the Go module proxy
    when missing)."""
    res = subprocess.run(["bash", str(ROOT / "scripts" / "crds"), "--quiet"],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    if res.returncode != 0:
        raise SystemExit(f"cluster: scripts/crds failed (exit {res.returncode}): no {project} CRDs")
    files = []
    for line in res.stdout.splitlines():
        release, _, d = line.partition("=")
        if release.partition("@")[0] == project:
            files += sorted(Path(d).glob("*.yaml"))
    if not files:
        raise SystemExit(f"cluster: scripts/crds named no {project} CRDs:\n{res.stdout}")
    return files


def up_crossplane(state: Path, tools: dict[str, str], kube: Kube, ecr: dict[str, str]) -> None:
    """`crossplane core init`, then `core start` with the External runtime."""
    procs = Processes(state)
    xp_dir = Path(tools["CROSSPLANE_DIR"])
    xp_env = dict(os.environ)
    hooks = webhook_configurations(xp_dir)
    xp_env.update({
        "KUBECONFIG": str(state / "crossplane.kubeconfig"),
        "POD_NAMESPACE": NAMESPACE,
        "POD_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
        # Webhooks on, as the Helm chart's init container has them: init
        # writes crossplane-tls-server and the webhook configurations.
        "ENABLE_WEBHOOKS": "true",
        "WEBHOOK_SERVICE_NAME": WEBHOOK_SERVICE,
        "WEBHOOK_SERVICE_NAMESPACE": NAMESPACE,
        "WEBHOOK_SERVICE_PORT": str(WEBHOOK_SERVICE_PORT),
        "WEBHOOK_CONFIGS_PATH": str(hooks),
        "CRDS_PATH": str(xp_dir / "crds"),
        "TLS_CA_SECRET_NAME": "crossplane-root-ca",
        "TLS_SERVER_SECRET_NAME": "crossplane-tls-server",
        "TLS_CLIENT_SECRET_NAME": "crossplane-tls-client",
    })
    xp_env.pop("KUBERNETES_SERVICE_HOST", None)
    # No --activation: no default ManagedResourceActivationPolicy, so a
    # safe-start provider's definitions stay inactive until a policy
    # activates them (Helm's provider.defaultActivations={}).
    init = [str(xp_dir / "crossplane"), "core", "init"]
    for attempt in (1, 2):  # the first run can race its own CRDs
        r = subprocess.run(init, env=xp_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        (procs.logs / "crossplane-init.log").write_text(r.stdout)
        if r.returncode == 0:
            break
        if attempt == 2:
            raise SystemExit(f"cluster: crossplane core init failed:\n{r.stdout[-3000:]}")
        time.sleep(2)

    def secret(name: str) -> dict[str, bytes]:
        s = kube.read("v1", "Secret", name, NAMESPACE)
        return {k: base64.b64decode(v) for k, v in (s or {}).get("data", {}).items()}

    client_dir = state / "crossplane" / "tls-client"
    client_dir.mkdir(parents=True, exist_ok=True)
    client = wait_for("crossplane-tls-client", lambda: secret("crossplane-tls-client").get("tls.crt")
                      and secret("crossplane-tls-client"), 30)
    for k in ("tls.crt", "tls.key", "ca.crt"):
        (client_dir / k).write_bytes(client[k])

    # -- the function's server certificate, signed by crossplane-root-ca
    root = secret("crossplane-root-ca")
    fn_tls = state / "function" / "tls"
    issue_from_root(root, fn_tls, "function-ecr-packages", dns=["localhost"], ips=["127.0.0.1"])
    runtime_tls = state / "function" / "runtime-tls"
    issue_from_root(root, runtime_tls, "package-runtime", dns=["localhost"], ips=["127.0.0.1"])

    # -- Crossplane's own webhook server (the Usage webhook), on loopback
    webhook_port = free_port()
    server_dir = state / "crossplane" / "tls-server"
    route_webhooks(kube, root, hooks, server_dir, webhook_port)

    cache = state / "crossplane" / "xpkg-cache"
    cache.mkdir(parents=True, exist_ok=True)
    xp_env.update({
        "PACKAGE_RUNTIME": "External",
        "TLS_CLIENT_CERTS_DIR": str(client_dir),
        "XPKG_CACHE_DIR": str(cache),
        "XFN_CACHE_DIR": str(state / "crossplane" / "xfn-cache"),
        "CA_BUNDLE_PATH": ecr["LOCALECR_TLS_CA"],
        "METRICS_PORT": "0",
        "HEALTH_PROBE_PORT": "0",
        "WEBHOOK_PORT": str(webhook_port),
        "TLS_SERVER_CERTS_DIR": str(server_dir),
    })
    procs.spawn("crossplane", [str(xp_dir / "crossplane"), "core", "start", "--debug"], xp_env)
    wait_for(f"Crossplane's webhook server on 127.0.0.1:{webhook_port}",
             lambda: webhook_serving(webhook_port, server_dir / "ca.crt"), 120, procs, "crossplane")


# Crossplane's webhooks as the Helm chart sets them up: `core init` writes the
# ValidatingWebhookConfigurations of its cluster/webhookconfigurations (in
# v2.2 and v2.4 only crossplane-no-usages: DELETE of anything labelled
# crossplane.io/in-use=true goes to /validate-no-usages) for the Service
# crossplane-webhooks:9443, and `core start` serves them on WEBHOOK_PORT.
WEBHOOK_SERVICE = "crossplane-webhooks"
WEBHOOK_SERVICE_PORT = 9443
ADMISSION = "admissionregistration.k8s.io/v1"


def webhook_configurations(xp_dir: Path) -> Path:
    """Crossplane's cluster/webhookconfigurations (the image's
    /webhookconfigurations): next to the CRDs if scripts/cluster-build copied
    it there, else from the Go module cache the build filled."""
    import shutil
    d = xp_dir / "webhookconfigurations"
    if d.is_dir():
        return d
    version = xp_dir.name.removeprefix("crossplane-")
    go = shutil.which("go") or "/usr/local/go/bin/go"
    out = subprocess.run([go, "mod", "download", "-json", f"github.com/crossplane/crossplane/v2@{version}"],
                         check=True, stdout=subprocess.PIPE, text=True, cwd="/",
                         env={**os.environ, "GOFLAGS": ""}).stdout
    d = Path(json.loads(out)["Dir"]) / "cluster" / "webhookconfigurations"
    if not d.is_dir():
        raise SystemExit(f"cluster: no webhook configurations at {d}")
    return d


def route_webhooks(kube: Kube, root: dict[str, bytes], hooks: Path, server_dir: Path, port: int) -> None:
    """Makes Crossplane's webhooks reachable with no Service: loopback cannot
    be a Service endpoint and nothing here routes cluster IPs, so each webhook
    that `core init` pointed at crossplane-webhooks is pointed at
    https://127.0.0.1:PORT/PATH instead, trusting crossplane-root-ca, and
    Crossplane serves a certificate from that CA with IP SAN 127.0.0.1
    (also stored in crossplane-tls-server, which the chart mounts at
    TLS_SERVER_CERTS_DIR). Only `core init` writes these configurations
    (`core start` never does), so this holds until the next init."""
    service = [WEBHOOK_SERVICE, f"{WEBHOOK_SERVICE}.{NAMESPACE}", f"{WEBHOOK_SERVICE}.{NAMESPACE}.svc"]
    issue_from_root(root, server_dir, WEBHOOK_SERVICE, dns=service + ["localhost"], ips=["127.0.0.1"])
    kube.apply({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "crossplane-tls-server", "namespace": NAMESPACE},
                "data": {k: base64.b64encode((server_dir / k).read_bytes()).decode()
                         for k in ("tls.crt", "tls.key", "ca.crt")}})
    ca_bundle = base64.b64encode(root["tls.crt"]).decode()
    routed = 0
    for f in sorted(hooks.glob("*.yaml")):
        for doc in read_yaml_docs(f):
            path = kube.path(ADMISSION, doc["kind"], doc["metadata"]["name"])
            conf = kube.get(path)
            if conf is None:
                raise SystemExit(f"cluster: crossplane core init wrote no {doc['kind']} "
                                 f"{doc['metadata']['name']}")
            for hook in conf.get("webhooks", []):
                svc = hook["clientConfig"].get("service") or {}
                hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{svc.get('path', '')}",
                                        "caBundle": ca_bundle}
                routed += 1
            kube.request("PUT", path, conf)
    if not routed:
        raise SystemExit(f"cluster: no webhooks in {hooks}")
    # A core CRD with a conversion webhook (none in v2.2 nor v2.4) would need the same
    # routing, and a converter Crossplane does not serve: say so rather than
    # leave its API broken.
    for crd in kube.list("apiextensions.k8s.io/v1", "CustomResourceDefinition"):
        if crd["metadata"]["name"].endswith(".crossplane.io") and \
                (crd["spec"].get("conversion") or {}).get("strategy") == "Webhook":
            raise SystemExit(f"cluster: {crd['metadata']['name']} converts through a webhook, "
                             "which this cluster does not route")


def webhook_serving(port: int, ca: Path) -> bool:
    """Crossplane's webhook server completes a TLS handshake as 127.0.0.1."""
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1"):
            return True


def up_function(state: Path, kube: Kube, ecr: dict[str, str], watch_pid: int,
                tools: dict[str, str]) -> None:
    """The function, the stand-in, and the watcher."""
    procs = Processes(state)
    py = sys.executable
    fn_port = free_port()
    env = {
        "KUBE_SERVER": kube.server,
        "KUBECONFIG": str(state / "admin.kubeconfig"),
        "CLUSTER_STATE": str(state),
        "FUNCTION_ADDRESS": f"127.0.0.1:{fn_port}",
        "FUNCTION_ENDPOINT": f"dns:///127.0.0.1:{fn_port}",
        "REGISTRY_HOST": ecr["LOCALECR_TLS_REGISTRY"],
        "FUNCTION_BINARY": function_binary(),
        "LOCALECR_STATE": ecr["LOCALECR_STATE"],
        "CROSSPLANE_VERSION": tools["CROSSPLANE_VERSION"],
        "CROSSPLANE_DIR": tools["CROSSPLANE_DIR"],
    }
    write_env(state, env)
    start_function(state)
    procs.spawn("standin", [py, str(Path(__file__).resolve()), "standin", "--state-dir", str(state)])
    if watch_pid:
        procs.spawn("watch", [py, str(Path(__file__).resolve()), "watch", "--state-dir", str(state),
                              "--pid", str(watch_pid)])
    wait_for("Crossplane's package CRDs", lambda: kube.resources("pkg.crossplane.io/v1", True)
             .get("Provider"), 60, procs, "crossplane")


def issue_from_root(root: dict[str, bytes], out: Path, cn: str, dns=(), ips=()) -> None:
    """A serving certificate signed by Crossplane's root CA (its Secret)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from certs import _key, _pem_key

    import warnings

    with warnings.catch_warnings():
        # Crossplane's root CA has a 5-letter country ("Crossplane"), which
        # cryptography warns about and Go accepts.
        warnings.simplefilter("ignore", UserWarning)
        ca_cert = x509.load_pem_x509_certificate(root["tls.crt"])
        subject = ca_cert.subject
    ca_key = serialization.load_pem_private_key(root["tls.key"], None)
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    out.mkdir(parents=True, exist_ok=True)
    (out / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out / "tls.key").write_bytes(_pem_key(key))
    (out / "ca.crt").write_bytes(root["tls.crt"])


def start_function(state: Path) -> None:
    env = read_env(state)
    ecr = read_env(Path(env["LOCALECR_STATE"]))
    fn_env = dict(os.environ)
    fn_env.update({k: v for k, v in ecr.items() if k.startswith("AWS_") or k == "ECR_REGISTRY_ENDPOINT"})
    if (state / "ecr-down").exists():
        # moto keeps the ECR API's state in memory and cannot be stopped and
        # started again; while the registry is "down" the function is
        # pointed at a port nothing listens on instead.
        fn_env["AWS_ENDPOINT_URL_ECR"] = f"http://127.0.0.1:{free_port()}"
    procs = Processes(state)
    procs.spawn("function", [env["FUNCTION_BINARY"], "serve", "--address", env["FUNCTION_ADDRESS"],
                             "--tls-certs-dir", str(state / "function" / "tls"),
                             "--metrics-address", "127.0.0.1:0"], fn_env)
    host, port = env["FUNCTION_ADDRESS"].rsplit(":", 1)

    def listening():
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    wait_for("the function to listen", listening, 60, procs, "function")


def stop_all(state: Path) -> None:
    procs = Processes(state)
    order = ["watch", "standin", "function", "crossplane", "kube-controller-manager",
             "kube-apiserver", "etcd"]
    pids = procs.load()
    for name in order + [n for n in pids if n not in order]:
        if name in pids and pids[name] != os.getpid():
            stop_pid(pids[name])
    procs.save({})
    ecr_state = state / "localecr"
    if (ecr_state / "pids.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "localecr.py"), "down", "--state-dir",
                        str(ecr_state)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def status(state: Path, quiet: bool = False) -> int:
    procs = Processes(state)
    pids = procs.load()
    bad = 0
    for name in ["etcd", "kube-apiserver", "kube-controller-manager", "crossplane", "function", "standin"]:
        ok = name in pids and alive(pids[name])
        bad += not ok
        if not quiet:
            print(f"{name:26} {'up' if ok else 'down'}{f' (pid {pids[name]})' if name in pids else ''}")
    return 1 if bad else 0


def cmd_down(args) -> int:
    state = Path(args.state_dir).resolve()
    stop_all(state)
    log(f"down (state kept in {state})")
    return 0


def cmd_status(args) -> int:
    return status(Path(args.state_dir).resolve())


def cmd_function(args) -> int:
    state = Path(args.state_dir).resolve()
    if args.action == "stop":
        Processes(state).stop("function")
    else:
        pid = Processes(state).load().get("function")
        if not (pid and alive(pid)):
            start_function(state)
    return 0


def cmd_registry(args) -> int:
    """Stops or starts the registry: the data plane Crossplane and the
    function pull from, and the ECR API as the function sees it (the
    function is restarted either way, with its caches empty)."""
    state = Path(args.state_dir).resolve()
    rc = subprocess.run([sys.executable, str(ROOT / "scripts" / "localecr.py"), "registry", args.action,
                         "--state-dir", str(state / "localecr")]).returncode
    if rc != 0:
        return rc
    marker = state / "ecr-down"
    if args.action == "stop":
        marker.write_text("")
    else:
        marker.unlink(missing_ok=True)
    Processes(state).stop("function")
    start_function(state)
    return 0


def cmd_watch(args) -> int:
    """Stops the cluster when the process that started it is gone."""
    state = Path(args.state_dir).resolve()
    while alive(args.pid):
        time.sleep(1)
    stop_all(state)
    return 0


# ---------------------------------------------------------------- the stand-in

IAM_GROUPS = ("iam.aws.upbound.io", "iam.aws.m.upbound.io")
MRD_API = "apiextensions.crossplane.io/v1alpha1"


def condition(type_: str, status_: str, reason: str, generation: int | None = None,
              message: str | None = None) -> dict:
    c = {"type": type_, "status": status_, "reason": reason,
         "lastTransitionTime": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if message:
        c["message"] = message
    if generation is not None:
        c["observedGeneration"] = generation
    return c


def with_condition(conditions: list[dict], new: dict) -> tuple[list[dict], bool]:
    out, changed, found = [], False, False
    for c in conditions or []:
        if c.get("type") == new["type"]:
            found = True
            if c.get("status") != new["status"] or c.get("reason") != new["reason"]:
                changed = True
                out.append(new)
            else:
                out.append(c)
        else:
            out.append(c)
    if not found:
        out.append(new)
        changed = True
    return out, changed


# Releases whose runtime never turns healthy: a JSON list of digests
# (sha256:...) and references (host/org/name:tag, org/name:tag, ...@sha256:...)
# in STATE/standin-unhealthy.json, written by publish(unhealthy=True).
UNHEALTHY_FILE = "standin-unhealthy.json"

# What the Deployment runtime of Crossplane v2.2 (and v2.4, word for word) writes on a revision whose
# Deployment never becomes Available (internal/controller/pkg/runtime: the
# post-establish hook's error, wrapped).
UNAVAILABLE = {
    "ProviderRevision": "provider package deployment is unavailable with message: "
                        "Deployment does not have minimum availability.",
    "FunctionRevision": "function package deployment is unavailable with message: "
                        "Deployment does not have minimum availability.",
}


def parse_reference(reference: str) -> tuple[str, str | None, str | None]:
    """`host/org/name:tag@sha256:...` -> (org/name, tag, digest), either of
    the last two None when the reference has none."""
    path, _, digest = reference.partition("@")
    tag = None
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
    return repository_of(path), tag, digest or None


class Unhealthy:
    """The releases STATE/standin-unhealthy.json lists, matched against a
    revision by digest. A revision's spec.image is its package's
    spec.package as written (Crossplane v2.2 and v2.4 copy the source, a tag or a
    digest, and keeps the ImageConfig-rewritten one in
    status.resolvedPackage), so a tag is looked up, in STATE/seeded.json
    (which publish() updates) or else the local registry, to the digest it
    names; an entry that is a tag matches that tag too, so a release is
    unhealthy from the moment publish() names it, before its push."""

    def __init__(self, state: Path):
        self.state = state
        f = state / UNHEALTHY_FILE
        try:
            entries = json.loads(f.read_text()) if f.exists() else []
        except ValueError:  # being replaced: the next pass reads it whole
            entries = []
        self.seeded: dict[str, dict[str, str]] = {}
        if entries:
            try:
                self.seeded = json.loads((state / "seeded.json").read_text())
            except (OSError, ValueError):
                pass
        self.asked: dict[tuple[str, str], str | None] = {}
        self.keys: set[str] = set()
        for entry in entries:
            self.keys |= self.keys_of(entry)

    def digest_of(self, repository: str, tag: str) -> str | None:
        """The digest the tag names: seeded.json, else a HEAD on the local
        registry (plain HTTP, the ECR stand-in's data plane)."""
        known = self.seeded.get(repository, {}).get(tag)
        if known:
            return known
        if (repository, tag) not in self.asked:
            self.asked[(repository, tag)] = None
            ecr = read_env(Path(read_env(self.state).get("LOCALECR_STATE", self.state / "localecr")))
            url = ecr.get("LOCALECR_REGISTRY_URL")
            if not url:
                return None
            req = urllib.request.Request(f"{url}/v2/{repository}/manifests/{tag}", method="HEAD", headers={
                "Accept": "application/vnd.oci.image.manifest.v1+json, "
                          "application/vnd.oci.image.index.v1+json, "
                          "application/vnd.docker.distribution.manifest.v2+json"})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    self.asked[(repository, tag)] = r.headers.get("Docker-Content-Digest")
            except (OSError, urllib.error.URLError):
                pass  # not there (yet), or the registry is down: the tag still matches by name
        return self.asked[(repository, tag)]

    def keys_of(self, reference: str) -> set[str]:
        """What a reference or digest is known by: the digest alone, and
        org/name@digest and org/name:tag (no registry host: a Rewrite
        package names the upstream, a Skip one the mirror)."""
        if reference.startswith("sha256:"):
            return {reference}
        repository, tag, digest = parse_reference(reference)
        keys = set()
        if tag:
            keys.add(f"{repository}:{tag}")
            digest = digest or self.digest_of(repository, tag)
        if digest:
            keys |= {digest, f"{repository}@{digest}"}
        return keys

    def matches(self, revision: dict) -> bool:
        if not self.keys:
            return False
        refs = [revision.get("spec", {}).get("image"), revision.get("status", {}).get("resolvedPackage")]
        found: set[str] = set()
        for ref in refs:
            if ref:
                found |= self.keys_of(ref)
        return bool(found & self.keys)


def standin_revisions(kube: Kube, env: dict[str, str], state: Path) -> None:
    tls = state / "function" / "runtime-tls"
    unhealthy = Unhealthy(state)
    for kind in ("ProviderRevision", "FunctionRevision"):
        for rev in kube.list("pkg.crossplane.io/v1", kind):
            meta, spec, st = rev["metadata"], rev.get("spec", {}), rev.get("status", {})
            if spec.get("desiredState") != "Active" or meta.get("deletionTimestamp"):
                continue
            secret_name = f"{meta['name']}-tls-server"
            if st.get("tlsServerSecretName") != secret_name:
                kube.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                            "metadata": {"name": secret_name, "namespace": NAMESPACE},
                            "data": {k: base64.b64encode((tls / k).read_bytes()).decode()
                                     for k in ("tls.crt", "tls.key", "ca.crt")}}, STANDIN)
            patch: dict = {"tlsServerSecretName": secret_name}
            # A release listed unhealthy: its runtime (a Deployment) never
            # becomes Available, as long as the revision is active, again
            # after a rollback reactivates it. Crossplane's External runtime
            # writes no RuntimeHealthy, so nothing flips it back.
            runtime = condition("RuntimeHealthy", "True", "HealthyPackageRevision")
            if unhealthy.matches(rev):
                runtime = condition("RuntimeHealthy", "False", "UnhealthyPackageRevision",
                                    message=f"post establish runtime hook failed for package: {UNAVAILABLE[kind]}")
            conditions, changed = with_condition(st.get("conditions"), runtime)
            if changed:
                patch["conditions"] = conditions
            if kind == "FunctionRevision" and meta.get("labels", {}).get(
                    "pkg.crossplane.io/package") == FUNCTION:
                patch["endpoint"] = env["FUNCTION_ENDPOINT"]
            if any(st.get(k) != v for k, v in patch.items()):
                kube.merge_status(rev, patch)


def standin_iam(kube: Kube) -> None:
    for group in IAM_GROUPS:
        disc = kube.get(f"/apis/{group}")
        if not disc:
            continue
        api_version = disc["preferredVersion"]["groupVersion"]
        for kind in ("Role", "Policy", "RolePolicyAttachment"):
            for mr in kube.list(api_version, kind):
                meta, st = mr["metadata"], mr.get("status", {})
                if meta.get("deletionTimestamp"):
                    continue
                conditions = st.get("conditions") or []
                conditions, c1 = with_condition(conditions, condition("Synced", "True", "ReconcileSuccess"))
                conditions, c2 = with_condition(conditions, condition("Ready", "True", "Available"))
                if not (c1 or c2):
                    continue
                arn_kind = {"Role": "role", "Policy": "policy"}.get(kind)
                at = {"id": meta["name"]}
                if arn_kind:
                    at["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:{arn_kind}/{meta['name']}"
                kube.merge_status(mr, {"conditions": conditions, "atProvider": at})


def cmd_standin(args) -> int:
    state = Path(args.state_dir).resolve()
    env = read_env(state)
    kube = Kube.from_state(state)
    while True:
        try:
            standin_revisions(kube, env, state)
            standin_iam(kube)
        except Exception as e:  # noqa: BLE001 - keep going; conflicts resolve on the next pass
            log(f"stand-in: {e}")
        time.sleep(1)


# ---------------------------------------------------------------- installing an XR

PACKAGE_KINDS = ("Provider", "Function", "Configuration")
XR_API = "ecr.platform.example.org/v1alpha1"


def conditions_of(obj: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions", []) or []}


def composition(state: Path, strategy: str | None = None, overrides: dict | None = None) -> dict:
    """examples/composition.yaml for this cluster: packages pulled from the
    local TLS registry (registryHost), a short ttl so Crossplane calls again
    soon, and the step credentials the example names. overrides replaces
    input fields (tests/cluster/test_version_upgrades.py shortens the
    upgrade policy's deadlines and the tag cache's TTL)."""
    env = read_env(state)
    (comp,) = read_yaml_docs(ROOT / "examples" / "composition.yaml")
    step = comp["spec"]["pipeline"][0]
    step["input"]["registryHost"] = env["REGISTRY_HOST"]
    step["input"]["ttl"] = "5s"
    if strategy:
        step["input"]["strategy"] = strategy
    step["input"].update(overrides or {})
    return comp


def install_platform(kube: Kube, state: Path) -> None:
    """The XRD, the Composition, the function's credentials and the Function."""
    env = read_env(state)
    for doc in read_yaml_docs(ROOT / "examples" / "xrd.yaml"):
        kube.apply(doc)
    ecr = read_env(Path(env["LOCALECR_STATE"]))
    kube.apply({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "function-ecr-packages-aws", "namespace": NAMESPACE},
                "stringData": {"aws_access_key_id": ecr["AWS_ACCESS_KEY_ID"],
                               "aws_secret_access_key": ecr["AWS_SECRET_ACCESS_KEY"]}})
    seeded = json.loads((state / "seeded.json").read_text())
    (digest,) = [d for d in seeded[FUNCTION].values() if d]
    kube.apply({"apiVersion": "pkg.crossplane.io/v1", "kind": "Function",
                "metadata": {"name": FUNCTION},
                "spec": {"package": f"{env['REGISTRY_HOST']}/{FUNCTION}@{digest}"}})
    wait_for("the XRD to be established", lambda: conditions_of(
        kube.read("apiextensions.crossplane.io/v1", "CompositeResourceDefinition",
                  "xecrpackages.ecr.platform.example.org") or {}).get("Established") == "True", 120)
    kube.apply(composition(state))
    wait_for("the function to be healthy", lambda: conditions_of(
        kube.read("pkg.crossplane.io/v1", "Function", FUNCTION) or {}).get("Healthy") == "True", 180)


def packages(kube: Kube) -> list[dict]:
    out = []
    for kind in PACKAGE_KINDS:
        out += kube.list("pkg.crossplane.io/v1", kind)
    return out


def repository_of(reference: str) -> str:
    """`host/org/name:tag` or `@digest` -> `org/name` (no registry, no version)."""
    path = reference.split("@", 1)[0]
    last = path.rsplit("/", 1)
    if ":" in last[-1]:
        path = path.rsplit(":", 1)[0]
    first, _, rest = path.partition("/")
    return rest if ("." in first or ":" in first or first == "localhost") and rest else path


def summary(kube: Kube, xr_name: str) -> dict:
    """What scripts/cluster-e2e prints: every object the XR composed and every
    package in the cluster (by creation time), the XR's conditions and status,
    and package objects per repository (duplicates show as counts over 1)."""
    xr = kube.read(XR_API, "XEcrPackages", xr_name) or {}
    seen: dict[tuple, dict] = {}
    refs = xr.get("spec", {}).get("crossplane", {}).get("resourceRefs", []) or []
    for ref in refs:
        obj = kube.read(ref["apiVersion"], ref["kind"], ref["name"], ref.get("namespace"))
        if obj:
            seen[(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj
    pkgs = packages(kube)
    for obj in pkgs:
        seen[(obj["kind"], None, obj["metadata"]["name"])] = obj
    objects = []
    for obj in sorted(seen.values(), key=lambda o: (o["metadata"]["creationTimestamp"], o["kind"],
                                                    o["metadata"]["name"])):
        entry = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
                 "created": obj["metadata"]["creationTimestamp"],
                 "package": obj.get("spec", {}).get("package"),
                 "conditions": conditions_of(obj)}
        if obj["metadata"].get("namespace"):
            entry["namespace"] = obj["metadata"]["namespace"]
        objects.append(entry)
    counts: dict[str, int] = {}
    for obj in pkgs:
        repo = repository_of(obj["spec"]["package"])
        counts[repo] = counts.get(repo, 0) + 1
    return {"objects": objects,
            "xr": {"conditions": conditions_of(xr), "status": {k: v for k, v in xr.get("status", {}).items()
                                                              if k != "conditions"}},
            "packageCounts": dict(sorted(counts.items()))}


def poke(kube: Kube, xr_name: str) -> None:
    """An annotation change, so Crossplane reconciles the XR again."""
    kube.request("PATCH", kube.path(XR_API, "XEcrPackages", xr_name),
                 {"metadata": {"annotations": {"e2e.example.org/poked": str(time.time())}}},
                 "application/merge-patch+json")


def converged(kube: Kube, xr_name: str) -> bool:
    """The XR is Ready and Synced and every package is Installed and Healthy."""
    xr = kube.read(XR_API, "XEcrPackages", xr_name)
    if not xr or conditions_of(xr).get("Ready") != "True" or conditions_of(xr).get("Synced") != "True":
        return False
    return all(conditions_of(p).get("Installed") == "True" and conditions_of(p).get("Healthy") == "True"
               for p in packages(kube))


def settled(doc: dict) -> bool:
    """converged(), read from one summary(): what e2e prints is the state it
    judged, not a second read that a package's health may have moved in
    between (the stand-in and Crossplane take turns on a revision's
    RuntimeHealthy)."""
    xr = doc["xr"]["conditions"]
    if xr.get("Ready") != "True" or xr.get("Synced") != "True":
        return False
    return all(o["conditions"].get("Installed") == "True" and o["conditions"].get("Healthy") == "True"
               for o in doc["objects"] if o["kind"] in PACKAGE_KINDS)


def cmd_e2e(args) -> int:
    state = Path(args.state_dir).resolve()
    if status(state, quiet=True) != 0:
        log("the cluster is not up; starting it (scripts/cluster down stops it)")
        cmd_up(argparse.Namespace(state_dir=str(state), watch_pid=0))
    kube = Kube.from_state(state)
    install_platform(kube, state)
    (xr,) = read_yaml_docs(Path(args.xr))
    kube.apply(xr)
    name = xr["metadata"]["name"]
    deadline = time.time() + args.timeout
    poked = time.time()
    doc = summary(kube, name)
    while time.time() < deadline and not settled(doc):
        if time.time() - poked > 20:
            # Crossplane's circuit breaker drops an XR's events for a while
            # after a burst of them, a new XR's included: edit it again.
            poke(kube, name)
            poked = time.time()
        time.sleep(2)
        doc = summary(kube, name)
    ok = settled(doc)
    log(f"{name} {'converged' if ok else f'did not converge in {args.timeout:.0f}s'}")
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if ok else 1


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_state = os.environ.get("CLUSTER_STATE", str(ROOT / ".cache" / "cluster"))
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("up", "down", "status", "standin"):
        sp = sub.add_parser(name)
        sp.add_argument("--state-dir", default=default_state)
        if name == "up":
            sp.add_argument("--watch-pid", type=int, default=0)
    for name in ("function", "registry"):
        sp = sub.add_parser(name)
        sp.add_argument("action", choices=["stop", "start"])
        sp.add_argument("--state-dir", default=default_state)
    sp = sub.add_parser("publish")
    sp.add_argument("repository")
    sp.add_argument("version")
    sp.add_argument("--unhealthy", action="store_true")
    sp.add_argument("--state-dir", default=default_state)
    sp = sub.add_parser("e2e")
    sp.add_argument("xr", nargs="?", default=str(ROOT / "examples" / "xr.yaml"))
    sp.add_argument("--state-dir", default=default_state)
    sp.add_argument("--timeout", type=float, default=600)
    sp = sub.add_parser("watch")
    sp.add_argument("--state-dir", default=default_state)
    sp.add_argument("--pid", type=int, required=True)
    args = p.parse_args(argv)
    return {
        "up": cmd_up, "down": cmd_down, "status": cmd_status, "standin": cmd_standin,
        "function": cmd_function, "registry": cmd_registry, "watch": cmd_watch, "e2e": cmd_e2e,
        "publish": cmd_publish,
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
