#!/usr/bin/env python3
"""Write the function's runtime image without a Docker engine.

Subcommand (standard library only):

  runtime  Write the function's runtime image as a tarball that is both a
           `docker save` archive (manifest.json, what `crank xpkg build
           --embed-runtime-image-tarball` reads through go-containerregistry's
           tarball.ImageFromPath, and what `docker load` takes) and an OCI image
           layout (oci-layout, index.json, blobs/sha256/...).  The image mirrors
           the Dockerfile's distroless/cc runtime: the binary at
           /function-ecr-packages, the shared libraries `ldd` says it needs (libc,
           libgcc_s, the dynamic loader), CA certificates, /etc/passwd and
           /etc/group with the nonroot user, user 65532:65532, port 9443/tcp.

Building and pushing the .xpkg is crank's job (`crank xpkg build` / `crank xpkg
push`, run by scripts/xpkg).

Output is reproducible: fixed timestamps (SOURCE_DATE_EPOCH, default 0),
root-owned sorted entries, gzip without names or times.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

BINARY_NAME = "function-ecr-packages"
ENTRYPOINT = "/" + BINARY_NAME
NONROOT_UID = 65532
PORT = "9443/tcp"

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
