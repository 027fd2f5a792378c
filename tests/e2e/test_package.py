"""The function's package: runtime image, xpkg, push, ECR registration, examples.

Builds the .xpkg with scripts/xpkg (`crank xpkg build`), pushes it to the local
registry with `crank xpkg push`, reads it back over the registry HTTP API and
registers it in moto's ECR API.  The
examples are checked against the Crossplane CRDs of every version under test
(fetched by scripts/crds) and their own XRDs, the way `crank beta validate`
would, including unknown fields.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import urllib.request

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNTIME_IMAGE = REPO_ROOT / "scripts" / "runtime_image.py"
EXAMPLES = REPO_ROOT / "examples"
ENTRYPOINT = "/function-ecr-packages"
XPKG = "io.crossplane.xpkg"


# --------------------------------------------------------------------------
# helpers (kept here rather than imported from conftest: several conftest.py
# files may share the module name)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def registry_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.read()


def tar_members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf.getmembers()}


def tar_read(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        f = tf.extractfile(name)
        assert f is not None, f"{name} not in layer"
        return f.read()


def maybe_gunzip(blob: bytes) -> bytes:
    return gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob


def read_docker_archive(path: Path) -> tuple[dict, list[bytes], dict]:
    """(config, [layer blobs], manifest.json entry) of a docker-archive tarball."""
    with tarfile.open(path) as tf:
        def read(n: str) -> bytes:
            f = tf.extractfile(n)
            assert f is not None, n
            return f.read()

        (entry,) = json.loads(read("manifest.json"))
        return json.loads(read(entry["Config"])), [read(n) for n in entry["Layers"]], entry


def ldd_libs(binary: Path) -> list[str]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.match(r"^\s*\S+\s+=>\s+(/\S+)", line) or re.match(r"^\s*(/\S+)\s+\(", line)
        if m:
            libs.append(m.group(1).lstrip("/"))
    return libs


def dockerfile_runtime() -> dict | None:
    """ENTRYPOINT / EXPOSE / USER of the Dockerfile's final stage, if there is one."""
    df = REPO_ROOT / "Dockerfile"
    if not df.exists():
        return None
    stage = df.read_text().split("\nFROM ")[-1]
    out: dict = {}
    for line in stage.splitlines():
        line = line.strip()
        if line.startswith("ENTRYPOINT"):
            out["entrypoint"] = json.loads(line.split(None, 1)[1])
        elif line.startswith("EXPOSE"):
            out.setdefault("expose", []).extend(line.split()[1:])
        elif line.startswith("USER"):
            out["user"] = line.split(None, 1)[1]
        elif line.startswith("COPY") and ENTRYPOINT in line:
            out["copies_binary"] = True
    return out


# --------------------------------------------------------------------------
# runtime image


@pytest.fixture(scope="module")
def runtime_tarball(tmp_path_factory, function_binary) -> Path:
    out = tmp_path_factory.mktemp("runtime") / "runtime.tar"
    subprocess.run(
        [sys.executable, str(RUNTIME_IMAGE), "runtime", "--binary", str(function_binary), "-o", str(out)],
        check=True,
        timeout=300,
    )
    return out


def test_runtime_image_config_matches_distroless_contract(runtime_tarball):
    config, layers, entry = read_docker_archive(runtime_tarball)
    c = config["config"]
    assert c["User"] == "65532:65532"
    assert c["ExposedPorts"] == {"9443/tcp": {}}
    assert c["Entrypoint"] == [ENTRYPOINT]
    assert config["os"] == "linux" and config["architecture"] in ("amd64", "arm64")
    assert len(config["rootfs"]["diff_ids"]) == len(layers) == len(entry["Layers"])
    for blob, diff_id in zip(layers, config["rootfs"]["diff_ids"]):
        assert sha256_digest(maybe_gunzip(blob)) == diff_id


def test_runtime_image_is_also_an_oci_layout(runtime_tarball):
    with tarfile.open(runtime_tarball) as tf:
        index = json.load(tf.extractfile("index.json"))
        assert json.load(tf.extractfile("oci-layout"))["imageLayoutVersion"] == "1.0.0"
        (desc,) = index["manifests"]
        man_bytes = tf.extractfile("blobs/sha256/" + desc["digest"].split(":")[1]).read()
        assert sha256_digest(man_bytes) == desc["digest"]
        manifest = json.loads(man_bytes)
        for d in [manifest["config"], *manifest["layers"]]:
            blob = tf.extractfile("blobs/sha256/" + d["digest"].split(":")[1]).read()
            assert sha256_digest(blob) == d["digest"] and len(blob) == d["size"]


def test_runtime_image_has_binary_libraries_and_nonroot_user(runtime_tarball, function_binary):
    _, layers, _ = read_docker_archive(runtime_tarball)
    files: dict[str, tarfile.TarInfo] = {}
    contents: dict[str, bytes] = {}
    for blob in layers:
        tar = maybe_gunzip(blob)
        for name, m in tar_members(tar).items():
            files[name] = m
            if name in ("etc/passwd", "function-ecr-packages"):
                contents[name] = tar_read(tar, name)
    binary = files["function-ecr-packages"]
    assert binary.mode & 0o111 and binary.uid == 0
    assert contents["function-ecr-packages"] == function_binary.read_bytes()
    for lib in ldd_libs(function_binary):
        assert lib in files, f"{lib} (needed by the binary) missing from the runtime image"
    assert "nonroot:x:65532:65532:" in contents["etc/passwd"].decode()
    assert "etc/ssl/certs/ca-certificates.crt" in files
    assert files["tmp"].mode & 0o1777 == 0o1777


def test_runtime_image_keeps_in_step_with_dockerfile(runtime_tarball):
    df = dockerfile_runtime()
    if df is None:
        pytest.skip("no Dockerfile yet")
    config, _, _ = read_docker_archive(runtime_tarball)
    c = config["config"]
    if "entrypoint" in df:
        assert df["entrypoint"][:1] == c["Entrypoint"], "Dockerfile ENTRYPOINT differs from the runtime image"
    if "expose" in df:
        assert "9443" in [p.split("/")[0] for p in df["expose"]]
    if "user" in df:
        assert df["user"] in ("65532", "65532:65532", "nonroot", "nonroot:nonroot")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("chroot"), reason="needs root and chroot")
def test_runtime_image_runs_as_nonroot(runtime_tarball, tmp_path):
    """Unpack the image and run its entrypoint in a chroot as 65532: the libraries suffice."""
    _, layers, _ = read_docker_archive(runtime_tarball)
    root = tmp_path / "rootfs"
    root.mkdir()
    for blob in layers:
        with tarfile.open(fileobj=io.BytesIO(maybe_gunzip(blob))) as tf:
            tf.extractall(root, filter="fully_trusted") if sys.version_info >= (3, 12) else tf.extractall(root)
    res = subprocess.run(
        ["chroot", "--userspec=65532:65532", str(root), ENTRYPOINT, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr


# --------------------------------------------------------------------------
# xpkg


def package_docs(package_yaml: bytes) -> list[dict]:
    return [d for d in yaml.safe_load_all(package_yaml) if d]


def test_xpkg_file_has_annotated_package_layer_on_top_of_runtime(function_xpkg):
    config, layers, _ = read_docker_archive(function_xpkg)
    labels = config["config"]["Labels"]
    base = [d for d in (sha256_digest(b) for b in layers) if labels.get(f"{XPKG}:{d}") == "base"]
    assert len(base) == 1, labels
    digests = [sha256_digest(b) for b in layers]
    idx = digests.index(base[0])
    assert idx >= 2, "runtime layers must come before the package layer"
    assert config["config"]["Entrypoint"] == [ENTRYPOINT]
    assert config["config"]["User"] == "65532:65532"
    docs = package_docs(tar_read(maybe_gunzip(layers[idx]), "package.yaml"))
    assert docs[0]["kind"] == "Function" and docs[0]["metadata"]["name"] == "function-ecr-packages"


def test_pushed_package_base_layer_carries_function_meta(pushed_function_package, registry_url):
    p = pushed_function_package
    manifest = json.loads(p.manifest_bytes)
    base = [l for l in manifest["layers"] if (l.get("annotations") or {}).get(XPKG) == "base"]
    assert len(base) == 1, manifest["layers"]
    blob = registry_get(f"{registry_url}/v2/{p.repository}/blobs/{base[0]['digest']}")
    assert sha256_digest(blob) == base[0]["digest"]
    docs = package_docs(tar_read(maybe_gunzip(blob), "package.yaml"))
    meta = docs[0]
    assert meta["apiVersion"] == "meta.pkg.crossplane.io/v1"
    assert meta["kind"] == "Function"
    assert meta["metadata"]["name"] == "function-ecr-packages"
    ann = meta["metadata"]["annotations"]
    for key in ("maintainer", "source", "description", "readme", "license"):
        assert ann.get(f"meta.crossplane.io/{key}"), key
    crds = [d for d in docs[1:] if d.get("kind") == "CustomResourceDefinition"]
    assert [c["spec"]["group"] for c in crds] == ["ecr.fn.crossplane.io"]
    assert crds[0]["spec"]["names"]["kind"] == "Input"
    assert "v1beta1" in [v["name"] for v in crds[0]["spec"]["versions"]]


def test_pushed_package_contains_runtime_layers(pushed_function_package, registry_url, function_binary):
    p = pushed_function_package
    manifest = json.loads(p.manifest_bytes)
    cfg = registry_get(f"{registry_url}/v2/{p.repository}/blobs/{manifest['config']['digest']}")
    config = json.loads(cfg)
    assert config["config"]["Entrypoint"] == [ENTRYPOINT]
    assert config["config"]["ExposedPorts"] == {"9443/tcp": {}}
    runtime = [l for l in manifest["layers"] if XPKG not in (l.get("annotations") or {})]
    assert len(runtime) >= 2
    names = set()
    for l in runtime:
        blob = registry_get(f"{registry_url}/v2/{p.repository}/blobs/{l['digest']}")
        assert sha256_digest(blob) == l["digest"]
        names |= set(tar_members(maybe_gunzip(blob)))
    assert "function-ecr-packages" in names
    for lib in ldd_libs(function_binary):
        assert lib in names, lib


def test_function_package_registered_in_ecr(function_package_in_ecr, pushed_function_package, ecr_client):
    repository, tag, digest = function_package_in_ecr
    assert digest == sha256_digest(pushed_function_package.manifest_bytes)
    images = ecr_client.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    assert images and images[0]["imageDigest"] == digest
    got = ecr_client.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": digest}])
    (image,) = got["images"]
    assert image["imageManifest"].encode() == pushed_function_package.manifest_bytes


# --------------------------------------------------------------------------
# examples


@functools.cache
def load_crds(d: Path) -> dict[tuple[str, str, str], dict]:
    """(group, version, kind) -> openAPIV3Schema of the CRDs in `d`."""
    out = {}
    for f in sorted(d.glob("*.yaml")):
        for crd in yaml.safe_load_all(f.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            for v in crd["spec"]["versions"]:
                out[(crd["spec"]["group"], v["name"], crd["spec"]["names"]["kind"])] = v["schema"]["openAPIV3Schema"]
    return out


def unknown_fields(obj, schema: dict, path: str = "") -> list[str]:
    """Fields a structural schema would prune (what `crank beta validate` reports)."""
    errs = []
    if not isinstance(schema, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return errs
    if isinstance(obj, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        for k, v in obj.items():
            if props is not None and k in props:
                errs += unknown_fields(v, props[k], f"{path}.{k}")
            elif isinstance(addl, dict):
                errs += unknown_fields(v, addl, f"{path}.{k}")
            elif props is not None and not addl and path != ".metadata":
                errs.append(f"{path}.{k}")
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(obj):
            errs += unknown_fields(v, schema["items"], f"{path}[{i}]")
    return errs


CEL_SIMPLE = re.compile(r"^[\s!()|&]*(?:(?:has\(self\.\w+\)|self\.\w+\s*==\s*'[^']*')[\s!()|&]*)+$")


def cel_rules(obj, schema: dict, path: str = "") -> list[str]:
    """Evaluate the simple CEL rules (has(), ==, !, ||, &&) a CRD puts on objects."""
    errs = []
    if not isinstance(schema, dict) or not isinstance(obj, dict):
        return errs
    props = schema.get("properties") or {}
    for rule in schema.get("x-kubernetes-validations") or []:
        expr = rule["rule"]
        if not CEL_SIMPLE.match(expr):
            continue
        def value(name: str):
            if name in obj:
                return obj[name]
            return (props.get(name) or {}).get("default")
        py = re.sub(r"has\(self\.(\w+)\)", lambda m: repr(m.group(1) in obj), expr)
        py = re.sub(r"self\.(\w+)", lambda m: repr(value(m.group(1))), py)
        py = py.replace("||", " or ").replace("&&", " and ")
        py = re.sub(r"!(?!=)", " not ", py)
        if not eval(py, {"__builtins__": {}}, {}):  # noqa: S307 - built from a whitelisted grammar
            errs.append(f"{path}: {rule.get('message', expr)}")
    for k, v in obj.items():
        if k in props:
            errs += cel_rules(v, props[k], f"{path}.{k}")
    return errs


def validate(obj: dict, schema: dict) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema")
    v = jsonschema.Draft4Validator(schema)
    errs = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(obj)]
    errs += [f"unknown field {f}" for f in unknown_fields(obj, schema)]
    errs += cel_rules(obj, schema)
    return errs


def example_docs() -> list[tuple[str, dict]]:
    docs = []
    for f in sorted(EXAMPLES.glob("*.yaml")):
        for d in yaml.safe_load_all(f.read_text()):
            if d:
                docs.append((f.name, d))
    return docs


def xrd_schemas() -> dict[tuple[str, str, str], dict]:
    """(group, version, kind) -> schema for the examples' XRs and claims."""
    out = {}
    for _, d in example_docs():
        if d["kind"] != "CompositeResourceDefinition":
            continue
        spec = d["spec"]
        for v in spec["versions"]:
            schema = dict(v["schema"]["openAPIV3Schema"])
            # Crossplane adds these (and spec.crossplane etc.) to every XR/claim.
            schema["properties"] = {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                **schema["properties"],
            }
            out[(spec["group"], v["name"], spec["names"]["kind"])] = schema
            if spec.get("claimNames"):
                out[(spec["group"], v["name"], spec["claimNames"]["kind"])] = schema
    return out


def gvk(d: dict) -> tuple[str, str, str]:
    group, _, version = d["apiVersion"].rpartition("/")
    return group, version, d["kind"]


def test_examples_are_complete_and_parse():
    names = {p.name for p in EXAMPLES.iterdir()}
    for required in ("xrd.yaml", "xrd-legacy.yaml", "claim.yaml", "composition.yaml", "composition-legacy.yaml",
                     "functions.yaml", "xr.yaml", "xr-skip.yaml", "catalog.json"):
        assert required in names
    assert example_docs()
    json.loads((EXAMPLES / "catalog.json").read_text())


@pytest.mark.parametrize("name, doc", example_docs(), ids=lambda x: x if isinstance(x, str) else x.get("kind"))
def test_example_validates(name, doc, request):
    """Against each Crossplane version's CRDs (XRs and claims: the XRDs)."""
    key = gvk(doc)
    if key[0].endswith(".crossplane.io") and key[0] != "ecr.fn.crossplane.io":
        crds = request.getfixturevalue("crds")
        schemas = [(release, load_crds(d).get(key)) for release, d in crds["crossplane"]]
    else:
        schemas = [("examples", xrd_schemas().get(key))]
    for release, schema in schemas:
        assert schema is not None, f"{name}: no schema for {key} in {release}"
        errs = validate(doc, schema)
        assert not errs, f"{name} ({release}): {errs}"
    if doc["kind"] == "Composition":
        inputs = load_crds(REPO_ROOT / "package" / "input")
        for step in doc["spec"]["pipeline"]:
            inp = step["input"]
            errs = validate(inp, inputs[gvk(inp)])
            assert not errs, f"{name} step {step['step']} input: {errs}"


def test_examples_xr_contract():
    docs = {n: d for n, d in example_docs()}
    xrd = docs["xrd.yaml"]
    assert xrd["apiVersion"] == "apiextensions.crossplane.io/v2" and xrd["spec"]["scope"] == "Cluster"
    assert xrd["metadata"]["name"] == "xecrpackages.ecr.platform.example.org"
    legacy = docs["xrd-legacy.yaml"]
    assert legacy["spec"]["scope"] == "LegacyCluster" and legacy["spec"]["claimNames"]["kind"] == "EcrPackages"
    xr, skip = docs["xr.yaml"], docs["xr-skip.yaml"]
    assert xr["spec"]["registry"] == {"accountId": "123456789012", "region": "us-east-1"}
    assert skip["spec"]["strategy"] == "Skip"
    assert {k: v for k, v in skip["spec"].items() if k != "strategy"} == xr["spec"]
    fn = docs["functions.yaml"]["metadata"]["annotations"]
    assert fn["render.crossplane.io/runtime"] == "Development"
    assert fn["render.crossplane.io/runtime-development-target"] == "localhost:9443"


def test_catalog_covers_the_blog_case():
    spec = json.loads((EXAMPLES / "catalog.json").read_text())
    by_repo = {i["repository"]: i for i in spec["images"]}
    xr = yaml.safe_load((EXAMPLES / "xr.yaml").read_text())
    for p in xr["spec"]["packages"]:
        img = by_repo[p["repository"]]
        assert img["package"]["kind"] == p["kind"]
        assert img["package"]["apiVersion"].startswith("meta.pkg.crossplane.io/")
        if p["version"].startswith("v"):
            assert p["version"] in img["tags"]
    s3 = by_repo["upbound/provider-aws-s3"]["package"]
    assert s3["spec"]["dependsOn"] == [{"provider": "xpkg.upbound.io/upbound/provider-family-aws", "version": ">= 0.0.0"}]
    assert any("-" in t for t in by_repo["upbound/provider-family-aws"]["tags"]), "a prerelease family tag"


def test_catalog_seeds_into_local_ecr(localecr_env, ecr_client, repo_root):
    """The catalog is a valid localecr seed spec: every tag lands in moto and the registry."""
    py = localecr_env.get("LOCALECR_PYTHON", sys.executable)
    script = localecr_env.get("LOCALECR_SCRIPT", str(repo_root / "scripts" / "localecr.py"))
    state = localecr_env.get("LOCALECR_STATE")
    if not state:
        pytest.skip("LOCALECR_STATE not set")
    res = subprocess.run([py, script, "seed", "--state-dir", state, str(EXAMPLES / "catalog.json")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    seeded = json.loads(res.stdout)
    for repo, tags in seeded.items():
        ids = ecr_client.describe_images(repositoryName=repo)["imageDetails"]
        known = {t: i["imageDigest"] for i in ids for t in i.get("imageTags", [])}
        for tag, digest in tags.items():
            assert known[tag] == digest
