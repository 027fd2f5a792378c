#!/usr/bin/env python3
"""Build, package and push the function's OCI images without a Docker engine.

Subcommands (standard library only):

  runtime  Write the function's runtime image as a tarball that is both a
           `docker save` archive (manifest.json, what `crank xpkg build
           --embed-runtime-image-tarball` reads through go-containerregistry's
           tarball.ImageFromPath, and what `docker load` takes) and an OCI image
           layout (oci-layout, index.json, blobs/sha256/...).  The image mirrors
           the Dockerfile's distroless/cc runtime: the binary at
           /function-ecr-packages, the shared libraries `ldd` says it needs (libc,
           libgcc_s, the dynamic loader), CA certificates, /etc/passwd and
           /etc/group with the nonroot user, user 65532:65532, port 9443/tcp.

  build    Build a Function package (.xpkg) from a package root, the same way
           `crank xpkg build` does: a small linter (exactly one Function meta
           document, every other object a CRD), a package.yaml layer labelled
           `io.crossplane.xpkg: base`, an examples layer labelled `upbound`, both
           appended to the runtime image.  For machines without crank.

  push     Push an .xpkg to a registry over the OCI distribution API, turning
           the config labels into layer annotations like `crank xpkg push`.
           Plain HTTP for loopback registries (localhost, 127.0.0.0/8, ::1),
           HTTPS otherwise; anonymous or basic auth only (no token exchange).

Output is reproducible: fixed timestamps (SOURCE_DATE_EPOCH, default 0),
root-owned sorted entries, gzip without names or times.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

BINARY_NAME = "function-ecr-packages"
ENTRYPOINT = "/" + BINARY_NAME
NONROOT_UID = 65532
PORT = "9443/tcp"

XPKG_ANNOTATION = "io.crossplane.xpkg"
XPKG_BASE = "base"
XPKG_EXAMPLES = "upbound"
XPKG_STREAM_FILE = "package.yaml"
XPKG_EXAMPLES_FILE = ".up/examples.yaml"

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

ELF_MACHINES = {62: "amd64", 183: "arm64"}


def die(msg: str) -> None:
    print(f"runtime_image: {msg}", file=sys.stderr)
    sys.exit(1)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def epoch() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


def gz(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as f:
        f.write(data)
    return buf.getvalue()


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------
# Layers


class LayerBuilder:
    """An in-memory, reproducible tar layer."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}

    def _info(self, name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name.lstrip("/"))
        ti.type = kind
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.uname = ti.gname = ""
        ti.mtime = epoch()
        return ti

    def _parents(self, name: str) -> None:
        parts = name.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d + "/" not in self.entries:
                self.dir(d)

    def dir(self, name: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        name = name.strip("/")
        self._parents(name)
        self.entries[name + "/"] = (self._info(name, tarfile.DIRTYPE, mode, uid, gid), None)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        name = name.strip("/")
        self._parents(name)
        ti = self._info(name, tarfile.REGTYPE, mode)
        ti.size = len(data)
        self.entries[name] = (ti, data)

    def symlink(self, name: str, target: str) -> None:
        name = name.strip("/")
        self._parents(name)
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.entries[name] = (ti, None)

    def tar(self) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for key in sorted(self.entries):
                ti, data = self.entries[key]
                tf.addfile(ti, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()


@dataclass
class Layer:
    tar: bytes  # uncompressed
    blob: bytes  # gzip-compressed
    history: str = ""
    diff_id: str = field(init=False)
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        self.diff_id = sha256(self.tar)
        self.digest = sha256(self.blob)

    @classmethod
    def from_tar(cls, tar: bytes, history: str = "") -> "Layer":
        return cls(tar, gz(tar), history)


# ---------------------------------------------------------------------------
# Runtime image


def elf_arch(binary: Path) -> str:
    head = binary.read_bytes()[:20]
    if head[:4] != b"\x7fELF":
        die(f"{binary} is not an ELF binary")
    little = head[5] == 1
    machine = int.from_bytes(head[18:20], "little" if little else "big")
    if machine not in ELF_MACHINES:
        die(f"{binary}: unsupported ELF machine {machine}")
    return ELF_MACHINES[machine]


def shared_libraries(binary: Path) -> list[str]:
    """Absolute paths of the libraries (and loader) ldd resolves for binary."""
    try:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        die("ldd not found; it is needed to find the binary's shared libraries")
    text = out.stdout + out.stderr
    if "not a dynamic executable" in text or "statically linked" in text:
        return []
    if out.returncode != 0:
        die(f"ldd {binary} failed: {text.strip()}")
    libs = []
    for line in out.stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            die(f"ldd: missing library: {line}")
        m = re.match(r"^\S+\s+=>\s+(/\S+)", line) or re.match(r"^(/\S+)\s+\(", line)
        if m:
            libs.append(m.group(1))
    return libs


def add_host_path(layer: LayerBuilder, path: str, notes: list[str]) -> None:
    """Copy a host path into the layer, keeping symlink chains as symlinks."""
    seen = set()
    while path not in seen:
        seen.add(path)
        p = Path(path)
        # Resolve symlinked parent directories (e.g. /lib -> usr/lib on merged-/usr
        # hosts) to the same logical path, but keep the final component's link.
        if p.is_symlink():
            target = os.readlink(p)
            layer.symlink(path, target)
            notes.append(f"{path} -> {target}")
            path = os.path.normpath(os.path.join(os.path.dirname(path), target))
            continue
        layer.file(path, p.read_bytes(), 0o755 if os.access(p, os.X_OK) else 0o644)
        notes.append(path)
        return


def copyright_files(libs: list[str]) -> list[str]:
    """Debian copyright files of the packages that ship libs (licence notices)."""
    out = []
    try:
        res = subprocess.run(["dpkg", "-S", *libs], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return out
    for line in res.stdout.splitlines():
        pkgs = line.split(":", 1)[0]
        for pkg in pkgs.split(","):
            pkg = pkg.strip()
            c = f"/usr/share/doc/{pkg}/copyright"
            if pkg and os.path.isfile(c) and c not in out:
                out.append(c)
    return out


PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"
NSSWITCH = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"
OS_RELEASE_NOTE = 'PRETTY_NAME="function-ecr-packages runtime (distroless-style)"\nID=distroless\n'


def runtime_layers(binary: Path, ca_bundle: str | None) -> tuple[list[Layer], list[str]]:
    notes: list[str] = []
    base = LayerBuilder()
    base.dir("etc")
    base.file("etc/passwd", PASSWD.encode())
    base.file("etc/group", GROUP.encode())
    base.file("etc/nsswitch.conf", NSSWITCH.encode())
    base.file("etc/os-release", OS_RELEASE_NOTE.encode())
    base.dir("tmp", 0o1777)
    base.dir("home/nonroot", 0o700, NONROOT_UID, NONROOT_UID)
    base.dir("root", 0o700)
    if ca_bundle:
        base.file("etc/ssl/certs/ca-certificates.crt", Path(ca_bundle).read_bytes())
        notes.append(f"{ca_bundle} -> /etc/ssl/certs/ca-certificates.crt")
    libs = shared_libraries(binary)
    for lib in libs:
        add_host_path(base, lib, notes)
    for c in copyright_files(sorted({*libs, *(os.path.realpath(lib) for lib in libs)})):
        base.file(c, Path(c).read_bytes())
    app = LayerBuilder()
    app.file(ENTRYPOINT, binary.read_bytes(), 0o755)
    layers = [
        Layer.from_tar(base.tar(), "distroless-style base: passwd/group (nonroot 65532), CA bundle, libc, libgcc_s, loader"),
        Layer.from_tar(app.tar(), f"COPY {BINARY_NAME} {ENTRYPOINT}"),
    ]
    return layers, notes


def runtime_config(arch: str, layers: list[Layer], labels: dict[str, str]) -> dict:
    created = "1970-01-01T00:00:00Z" if epoch() == 0 else _rfc3339(epoch())
    return {
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {
            "User": f"{NONROOT_UID}:{NONROOT_UID}",
            "ExposedPorts": {PORT: {}},
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            ],
            "Entrypoint": [ENTRYPOINT],
            "WorkingDir": "/",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
        "history": [{"created": created, "created_by": l.history} for l in layers],
    }


def _rfc3339(ts: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


# ---------------------------------------------------------------------------
# Tarballs


def write_image_tarball(out: Path, config: dict, layers: list[Layer], ref: str | None) -> str:
    """Write a docker-archive + OCI-layout tarball.  Returns the OCI manifest digest."""
    cfg = canonical_json(config)
    cfg_digest = sha256(cfg)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": {"mediaType": MT_OCI_CONFIG, "digest": cfg_digest, "size": len(cfg)},
        "layers": [{"mediaType": MT_OCI_LAYER, "digest": l.digest, "size": len(l.blob)} for l in layers],
    }
    man = canonical_json(manifest)
    man_digest = sha256(man)
    desc = {"mediaType": MT_OCI_MANIFEST, "digest": man_digest, "size": len(man)}
    if ref:
        desc["annotations"] = {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1]}
    index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": [desc]}
    blob = lambda d: "blobs/sha256/" + d.split(":", 1)[1]  # noqa: E731
    docker_manifest = [
        {
            "Config": blob(cfg_digest),
            "RepoTags": [ref] if ref else [],
            "Layers": [blob(l.digest) for l in layers],
        }
    ]
    files: dict[str, bytes] = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": canonical_json(index),
        "manifest.json": json.dumps(docker_manifest).encode(),
        blob(cfg_digest): cfg,
        blob(man_digest): man,
    }
    for l in layers:
        files[blob(l.digest)] = l.blob
    tb = LayerBuilder()
    for name, data in files.items():
        tb.file(name, data)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(tb.tar())
    tmp.replace(out)
    return man_digest


@dataclass
class TarImage:
    config: dict
    layers: list[Layer]


def read_image_tarball(path: Path) -> TarImage:
    """Read a docker-archive tarball (ours, crank's or docker save's)."""
    with tarfile.open(path) as tf:
        def read(name: str) -> bytes:
            f = tf.extractfile(name.lstrip("/"))
            if f is None:
                die(f"{path}: {name} missing")
            return f.read()

        entries = json.loads(read("manifest.json"))
        if len(entries) != 1:
            die(f"{path}: expected exactly one image in manifest.json, found {len(entries)}")
        entry = entries[0]
        config = json.loads(read(entry["Config"]))
        layers = []
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        for i, name in enumerate(entry["Layers"]):
            data = read(name)
            if data[:2] == b"\x1f\x8b":
                layer = Layer(gzip.decompress(data), data)
            else:
                layer = Layer.from_tar(data)
            if i < len(diff_ids) and diff_ids[i] != layer.diff_id:
                die(f"{path}: layer {name} diff_id mismatch")
            layers.append(layer)
        return TarImage(config, layers)


def write_docker_archive(out: Path, config: dict, layers: list[Layer]) -> str:
    """Write an image as go-containerregistry's tarball.Write(nil, ...) would."""
    cfg = json.dumps(config, separators=(",", ":")).encode()
    cfg_digest = sha256(cfg)
    manifest = [
        {
            "Config": cfg_digest,
            "RepoTags": None,
            "Layers": [l.digest.split(":", 1)[1] + ".tar.gz" for l in layers],
        }
    ]
    tb = LayerBuilder()
    tb.file(cfg_digest, cfg)
    for l in layers:
        tb.file(l.digest.split(":", 1)[1] + ".tar.gz", l.blob)
    tb.file("manifest.json", json.dumps(manifest).encode())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(tb.tar())
    tmp.replace(out)
    return cfg_digest


# ---------------------------------------------------------------------------
# Package build (crank xpkg build equivalent)


def _yaml():
    try:
        import yaml  # type: ignore
    except ImportError:
        die("PyYAML is needed for 'build' (pip install pyyaml, or use the project's .venv)")
    return yaml


def yaml_files(root: Path, skip_contains: str | None) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            if skip_contains and skip_contains in str(p):
                continue
            if p.suffix not in (".yaml", ".yml") or p.stat().st_size == 0:
                continue
            out.append(p)
    return sorted(out, key=lambda p: str(p))


SEMVER_CONSTRAINT = re.compile(
    r"^\s*(?:(?:[<>]=?|=|!=|~|\^)?\s*v?\d+(?:\.(?:\d+|[xX*]))?(?:\.(?:\d+|[xX*]))?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
    r"(?:\s*(?:,|\|\||\s)\s*)?)+$"
)


def lint_function_package(docs: list[tuple[Path, dict]]) -> tuple[dict, list[dict]]:
    metas = [d for _, d in docs if str(d.get("apiVersion", "")).startswith("meta.pkg.crossplane.io/")]
    if len(metas) != 1:
        die(f"lint: not exactly one package meta type (found {len(metas)})")
    meta = metas[0]
    if meta.get("kind") != "Function" or meta.get("apiVersion") not in ("meta.pkg.crossplane.io/v1", "meta.pkg.crossplane.io/v1beta1"):
        die("lint: package meta type is not Function")
    if not meta.get("metadata", {}).get("name"):
        die("lint: Function meta has no metadata.name")
    constraint = (meta.get("spec") or {}).get("crossplane", {}).get("version")
    if constraint and not SEMVER_CONSTRAINT.match(constraint):
        die(f"lint: package version constraints are poorly formatted: {constraint!r}")
    objects = []
    for path, d in docs:
        if d is meta:
            continue
        if d.get("apiVersion") != "apiextensions.k8s.io/v1" or d.get("kind") != "CustomResourceDefinition":
            die(f"lint: {path}: object is not a CRD ({d.get('apiVersion')}/{d.get('kind')})")
        spec = d.get("spec") or {}
        names = spec.get("names") or {}
        expect = f"{names.get('plural')}.{spec.get('group')}"
        if d.get("metadata", {}).get("name") != expect:
            die(f"lint: {path}: CRD name must be {expect!r}")
        if not spec.get("versions"):
            die(f"lint: {path}: CRD has no versions")
        objects.append(d)
    return meta, objects


def build_package(package_root: Path, examples_root: Path | None, runtime: Path | None, out: Path) -> str:
    yaml = _yaml()
    docs: list[tuple[Path, dict]] = []
    skip = str(examples_root) if examples_root else None
    for p in yaml_files(package_root, skip):
        for d in yaml.safe_load_all(p.read_text()):
            if d:
                docs.append((p, d))
    meta, objects = lint_function_package(docs)
    stream = "---\n" + "".join(yaml.safe_dump(o, sort_keys=True) + "---\n" for o in [meta, *objects])

    if runtime:
        base = read_image_tarball(runtime)
        config, layers = base.config, list(base.layers)
    else:
        config = {"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}}
        layers = []
    cfg = dict(config.get("config") or {})
    labels = dict(cfg.get("Labels") or {})

    def xpkg_layer(name: str, data: bytes, annotation: str) -> Layer:
        lb = LayerBuilder()
        lb.file(name, data, 0o644)
        layer = Layer.from_tar(lb.tar(), f"xpkg {annotation}: {name}")
        labels[f"{XPKG_ANNOTATION}:{layer.digest}"] = annotation
        return layer

    layers.append(xpkg_layer(XPKG_STREAM_FILE, stream.encode(), XPKG_BASE))
    if examples_root and examples_root.is_dir():
        parts = []
        for p in yaml_files(examples_root, None):
            text = p.read_text()
            list(yaml.safe_load_all(text))  # parse check, like crank's examples parser
            parts.append(text + "\n...\n\n---\n")
        layers.append(xpkg_layer(XPKG_EXAMPLES_FILE, "".join(parts).encode(), XPKG_EXAMPLES))
    cfg["Labels"] = labels
    config = dict(config)
    config["config"] = cfg
    config["rootfs"] = {"type": "layers", "diff_ids": [l.diff_id for l in layers]}
    hist = list(config.get("history") or [])
    for l in layers[len(hist):]:
        hist.append({"created": "1970-01-01T00:00:00Z", "created_by": l.history})
    config["history"] = hist
    return write_docker_archive(out, config, layers)


# ---------------------------------------------------------------------------
# Push


LOOPBACK = re.compile(r"^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$")


def parse_ref(ref: str) -> tuple[str, str, str]:
    if "/" not in ref:
        die(f"reference {ref!r} must be fully qualified: REGISTRY/REPOSITORY:TAG")
    registry, rest = ref.split("/", 1)
    if "@" in rest:
        die("push needs a tag, not a digest")
    if ":" not in rest:
        die(f"reference {ref!r} has no tag")
    repo, tag = rest.rsplit(":", 1)
    if not re.match(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", repo):
        die(f"invalid repository {repo!r}")
    if not re.match(r"^[\w][\w.-]{0,127}$", tag):
        die(f"invalid tag {tag!r}")
    return registry, repo, tag


class Registry:
    def __init__(self, host: str, insecure: bool, auth: str | None) -> None:
        self.host = host
        self.plain = insecure or bool(LOOPBACK.match(host))
        self.headers = {}
        if auth:
            self.headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()

    def request(self, method: str, url: str, body: bytes | None = None, headers: dict | None = None):
        u = urllib.parse.urlsplit(url)
        host = u.netloc or self.host
        conn_cls = http.client.HTTPConnection if self.plain else http.client.HTTPSConnection
        conn = conn_cls(host.replace("[", "").replace("]", "") if host.startswith("[") else host, timeout=60)
        path = u.path + ("?" + u.query if u.query else "")
        h = dict(self.headers)
        h.update(headers or {})
        if body is not None:
            h.setdefault("Content-Length", str(len(body)))
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, dict(resp.getheaders()), data

    def push_blob(self, repo: str, digest: str, data: bytes) -> None:
        st, _, _ = self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if st == 200:
            return
        st, hdrs, body = self.request("POST", f"/v2/{repo}/blobs/uploads/", b"")
        if st != 202:
            die(f"starting upload to {repo} failed: HTTP {st} {body[:300]!r}")
        loc = next((v for k, v in hdrs.items() if k.lower() == "location"), None)
        if not loc:
            die("registry gave no upload location")
        sep = "&" if "?" in loc else "?"
        st, _, body = self.request(
            "PUT", f"{loc}{sep}digest={urllib.parse.quote(digest)}", data, {"Content-Type": "application/octet-stream"}
        )
        if st not in (201, 204):
            die(f"uploading {digest} failed: HTTP {st} {body[:300]!r}")

    def put_manifest(self, repo: str, ref: str, manifest: bytes, media_type: str) -> str:
        st, hdrs, body = self.request("PUT", f"/v2/{repo}/manifests/{ref}", manifest, {"Content-Type": media_type})
        if st not in (200, 201, 202):
            die(f"putting manifest {repo}:{ref} failed: HTTP {st} {body[:500]!r}")
        return sha256(manifest)


def xpkg_manifest(img: TarImage) -> tuple[bytes, bytes]:
    """Config and manifest bytes as `crank xpkg push` would send them."""
    cfg = json.dumps(img.config, separators=(",", ":")).encode()
    labels = (img.config.get("config") or {}).get("Labels") or {}
    layers = []
    for l in img.layers:
        d = {"mediaType": MT_DOCKER_LAYER, "size": len(l.blob), "digest": l.digest}
        ann = labels.get(f"{XPKG_ANNOTATION}:{l.digest}")
        if ann:
            d["annotations"] = {XPKG_ANNOTATION: ann}
        layers.append(d)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_DOCKER_MANIFEST,
        "config": {"mediaType": MT_DOCKER_CONFIG, "size": len(cfg), "digest": sha256(cfg)},
        "layers": layers,
    }
    return cfg, json.dumps(manifest, separators=(",", ":")).encode()


def push_package(xpkg: Path, ref: str, insecure: bool, auth: str | None) -> str:
    registry, repo, tag = parse_ref(ref)
    img = read_image_tarball(xpkg)
    cfg, manifest = xpkg_manifest(img)
    reg = Registry(registry, insecure, auth)
    for l in img.layers:
        reg.push_blob(repo, l.digest, l.blob)
    reg.push_blob(repo, sha256(cfg), cfg)
    return reg.put_manifest(repo, tag, manifest, MT_DOCKER_MANIFEST)


# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("runtime", help="write the runtime image tarball")
    r.add_argument("--binary", default=f"target/release/{BINARY_NAME}", help="the function binary (default: %(default)s)")
    r.add_argument("-o", "--output", required=True, help="tarball to write")
    r.add_argument("--tag", default=f"{BINARY_NAME}-runtime:latest", help="RepoTags entry / OCI ref name")
    r.add_argument(
        "--ca-bundle",
        default="/etc/ssl/certs/ca-certificates.crt",
        help="CA bundle to install at /etc/ssl/certs/ca-certificates.crt ('' for none)",
    )
    r.add_argument("-v", "--verbose", action="store_true")

    b = sub.add_parser("build", help="build an .xpkg (crank xpkg build equivalent)")
    b.add_argument("--package-root", default="package")
    b.add_argument("--examples-root", default="examples", help="'' to leave examples out")
    b.add_argument("--embed-runtime-image-tarball", dest="runtime")
    b.add_argument("-o", "--output", required=True)

    p = sub.add_parser("push", help="push an .xpkg (crank xpkg push equivalent)")
    p.add_argument("-f", "--package-file", required=True)
    p.add_argument("ref", help="REGISTRY/REPOSITORY:TAG")
    p.add_argument("--insecure", action="store_true", help="plain HTTP even for non-loopback registries")
    p.add_argument("--auth", default=os.environ.get("XPKG_PUSH_AUTH"), help="USER:PASSWORD for basic auth")

    a = ap.parse_args(argv)
    if a.cmd == "runtime":
        binary = Path(a.binary)
        if not binary.is_file():
            die(f"binary {binary} not found (build it first)")
        arch = elf_arch(binary)
        ca = a.ca_bundle if a.ca_bundle and os.path.isfile(a.ca_bundle) else None
        if a.ca_bundle and not ca:
            print(f"runtime_image: warning: CA bundle {a.ca_bundle} not found; image has none", file=sys.stderr)
        layers, notes = runtime_layers(binary, ca)
        labels = {
            "org.opencontainers.image.title": BINARY_NAME,
            "org.opencontainers.image.description": "Crossplane composition function runtime",
        }
        digest = write_image_tarball(Path(a.output), runtime_config(arch, layers, labels), layers, a.tag)
        if a.verbose:
            for n in notes:
                print(f"  + {n}", file=sys.stderr)
        print(f"runtime image {a.output} ({arch}, manifest {digest})")
    elif a.cmd == "build":
        ex = Path(a.examples_root).resolve() if a.examples_root else None
        cfg = build_package(Path(a.package_root), ex, Path(a.runtime) if a.runtime else None, Path(a.output))
        print(f"xpkg saved {a.output} (config {cfg})")
    elif a.cmd == "push":
        digest = push_package(Path(a.package_file), a.ref, a.insecure, a.auth)
        print(f"pushed {a.ref}@{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
