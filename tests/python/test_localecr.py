"""The local ECR stand-in: what `localecr.py seed` pushes is a real xpkg,
served identically by the ECR API (moto) and the OCI registry, and by the
read-only TLS reader of `up --tls`; `registry stop|start` takes the
registries down and back; packageFiles and crds make real package streams."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import ssl
import subprocess
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import boto3
import pytest
import yaml

import localecr as localecr_script  # scripts/localecr.py (on sys.path through fnharness)
from fnharness import REPO_ROOT, LocalEcr, unique

ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"


def meta(kind="Provider", name="provider-example", deps=None):
    doc = {"apiVersion": "meta.pkg.crossplane.io/v1", "kind": kind, "metadata": {"name": name}}
    if deps is not None:
        doc["spec"] = {"dependsOn": deps}
    return doc


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def get(localecr, path: str, accept: str | None = ACCEPT):
    req = urllib.request.Request(localecr.registry_endpoint + path, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read(), r.headers


@pytest.fixture(scope="module")
def ecr(localecr):
    return boto3.client("ecr", endpoint_url=localecr.ecr_endpoint, region_name=localecr.env["AWS_REGION"],
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def ecr_manifest(ecr, repo, tag):
    out = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": tag}],
                              acceptedMediaTypes=ACCEPT.split(", "))
    assert not out["failures"], out["failures"]
    return out["images"][0]


def package_of(localecr, repo, manifest: dict) -> tuple[dict, bytes]:
    base = [l for l in manifest["layers"] if l.get("annotations", {}).get("io.crossplane.xpkg") == "base"]
    layer = base[0] if base else manifest["layers"][-1]
    blob, _ = get(localecr, f"/v2/{repo}/blobs/{layer['digest']}", None)
    assert sha(blob) == layer["digest"] and len(blob) == layer["size"]
    tar = tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob)))
    return layer, tar.extractfile("package.yaml").read()


def test_annotated_tags_digests_and_both_servers(localecr, ecr):
    repo = unique("upbound/provider-family-aws")
    doc = meta(deps=[{"provider": "xpkg.upbound.io/upbound/provider-aws-s3", "version": ">=v1.0.0"}])
    out = localecr.seed({"images": [{"repository": repo, "tags": ["v1.0.0", "v1.1.0"], "package": doc}]})
    digests = out[repo]
    assert set(digests) == {"v1.0.0", "v1.1.0"} and len(set(digests.values())) == 2

    for tag, digest in digests.items():
        body, headers = get(localecr, f"/v2/{repo}/manifests/{tag}")
        assert sha(body) == digest == headers["Docker-Content-Digest"]
        img = ecr_manifest(ecr, repo, tag)
        assert img["imageId"]["imageDigest"] == digest
        assert img["imageManifest"].encode() == body, "ECR API and registry serve the same bytes"
        assert img["imageManifestMediaType"] == "application/vnd.oci.image.manifest.v1+json"

        manifest = json.loads(body)
        layer, pkg = package_of(localecr, repo, manifest)
        assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
        assert yaml.safe_load(pkg) == doc
        cfg_blob, _ = get(localecr, f"/v2/{repo}/blobs/{manifest['config']['digest']}", None)
        cfg = json.loads(cfg_blob)
        assert cfg["config"]["Labels"][f"io.crossplane.xpkg:{layer['digest']}"] == "base"
        assert cfg["rootfs"]["diff_ids"] == [sha(gzip.decompress(package_of_blob(localecr, repo, layer)))]

    described = ecr.describe_images(repositoryName=repo)["imageDetails"]
    assert sorted(t for d in described for t in d.get("imageTags", [])) == ["v1.0.0", "v1.1.0"]
    # Re-seeding the same spec is harmless and gives the same digests.
    again = localecr.seed({"images": [{"repository": repo, "tags": ["v1.0.0", "v1.1.0"], "package": doc}]})
    assert again[repo] == digests


def package_of_blob(localecr, repo, layer) -> bytes:
    return get(localecr, f"/v2/{repo}/blobs/{layer['digest']}", None)[0]


def test_unannotated(localecr):
    repo = unique("crossplane-contrib/function-unannotated")
    out = localecr.seed({"images": [{"repository": repo, "tags": ["v0.1.0"], "layout": "unannotated",
                                     "package": meta("Function", "function-unannotated")}]})
    manifest = json.loads(get(localecr, f"/v2/{repo}/manifests/v0.1.0")[0])
    assert sha(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()) == out[repo]["v0.1.0"]
    assert all("annotations" not in l for l in manifest["layers"])
    _, pkg = package_of(localecr, repo, manifest)
    assert yaml.safe_load(pkg)["kind"] == "Function"


def test_index(localecr, ecr):
    repo = unique("upbound/configuration-index")
    out = localecr.seed({"images": [{"repository": repo, "tags": ["v2.0.0"], "layout": "index",
                                     "platforms": ["linux/amd64", "linux/arm64"],
                                     "package": meta("Configuration", "configuration-index")}]})
    body, headers = get(localecr, f"/v2/{repo}/manifests/v2.0.0")
    assert headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    assert sha(body) == out[repo]["v2.0.0"]
    assert ecr_manifest(ecr, repo, "v2.0.0")["imageManifest"].encode() == body
    index = json.loads(body)
    plats = [m["platform"]["architecture"] for m in index["manifests"]]
    assert plats == ["amd64", "arm64"]
    for m in index["manifests"]:
        child, _ = get(localecr, f"/v2/{repo}/manifests/{m['digest']}")
        assert sha(child) == m["digest"]
        _, pkg = package_of(localecr, repo, json.loads(child))
        assert yaml.safe_load(pkg)["kind"] == "Configuration"


def test_large_corrupt_oversized_variant(localecr):
    big, bad, bomb, var = (unique(f"test/{n}") for n in ("big", "bad", "bomb", "var"))
    out = localecr.seed({"images": [
        {"repository": big, "tags": ["v1"], "package": meta(name="big"), "extraYamlBytes": 2_000_000},
        {"repository": bad, "tags": ["v1"], "package": meta(name="bad"), "corrupt": True},
        {"repository": bomb, "tags": ["v1"], "package": meta(name="bomb"), "oversized": 64 * 1024 * 1024},
        {"repository": var, "tags": ["v1"], "package": meta(name="big"), "extraYamlBytes": 2_000_000,
         "digestVariant": "other"},
    ]})
    assert out[big]["v1"] != out[var]["v1"]

    layer, pkg = package_of(localecr, big, json.loads(get(localecr, f"/v2/{big}/manifests/v1")[0]))
    docs = list(yaml.safe_load_all(pkg))
    assert docs[0]["metadata"]["name"] == "big" and len(pkg) >= 2_000_000
    assert all(d["kind"] == "CustomResourceDefinition" for d in docs[1:])
    assert layer["size"] > 500_000, "filler does not compress away"

    manifest = json.loads(get(localecr, f"/v2/{bad}/manifests/v1")[0])
    blob = package_of_blob(localecr, bad, manifest["layers"][-1])
    with pytest.raises((OSError, EOFError, zlib.error)):
        gzip.decompress(blob)

    manifest = json.loads(get(localecr, f"/v2/{bomb}/manifests/v1")[0])
    layer = manifest["layers"][-1]
    assert layer["annotations"]["io.crossplane.xpkg"] == "base"
    assert layer["size"] < 1024 * 1024, "small on the wire"
    d = zlib.decompressobj(31)
    raw = d.decompress(package_of_blob(localecr, bomb, layer), 1024)
    info = tarfile.TarInfo.frombuf(raw[:512], "utf-8", "surrogateescape")
    assert info.name == "package.yaml" and info.size == 64 * 1024 * 1024


# ------------------------------------------------------------ TLS reader, outages


def script(localecr, *args: str, cwd=None, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([localecr.env["LOCALECR_PYTHON"], localecr.env["LOCALECR_SCRIPT"], *args,
                          "--state-dir", localecr.state], capture_output=True, text=True, timeout=180, cwd=cwd)
    if check and out.returncode != 0:
        raise AssertionError(f"localecr.py {' '.join(args)} failed ({out.returncode}): {out.stderr}")
    return out


@pytest.fixture(scope="module")
def tls_localecr(localecr):
    """The session's local ECR with its TLS reader: `up --tls` on servers
    already up starts the reader alongside them (and is a no-op after)."""
    script(localecr, "up", "--tls")
    script(localecr, "up", "--tls")
    return LocalEcr(localecr_script.read_env(Path(localecr.state)))


def tls_url(env, path: str, host: str = "127.0.0.1") -> str:
    return f"https://{host}:{env['LOCALECR_TLS_REGISTRY'].rsplit(':', 1)[1]}{path}"


def tls_get(env, path: str, accept: str | None = ACCEPT, host: str = "127.0.0.1", method: str = "GET",
            cafile: str | None = "env"):
    ctx = ssl.create_default_context(cafile=env["LOCALECR_TLS_CA"] if cafile == "env" else cafile)
    req = urllib.request.Request(tls_url(env, path, host), method=method,
                                 data=b"" if method in ("POST", "PUT") else None,
                                 headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def test_tls_reader_serves_what_ecr_holds_read_only(tls_localecr, ecr):
    env = tls_localecr.env
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["LOCALECR_TLS_REGISTRY"])
    assert Path(env["LOCALECR_TLS_CA"]).is_absolute() and Path(env["LOCALECR_TLS_CA"]).is_file()
    repo = unique("upbound/provider-tls")
    doc = meta(name="provider-tls")
    out = tls_localecr.seed({"images": [{"repository": repo, "tags": ["v1.0.0"], "package": doc}]})
    digest = out[repo]["v1.0.0"]

    status, body, headers = tls_get(env, f"/v2/{repo}/manifests/v1.0.0")
    assert status == 200 and sha(body) == digest == headers["Docker-Content-Digest"]
    assert body == get(tls_localecr, f"/v2/{repo}/manifests/v1.0.0")[0], "same bytes as the ECR endpoint"
    manifest = json.loads(body)
    layer = manifest["layers"][-1]
    status, blob, _ = tls_get(env, f"/v2/{repo}/blobs/{layer['digest']}", None)
    assert status == 200 and sha(blob) == layer["digest"] and len(blob) == layer["size"]
    pkg = tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))).extractfile("package.yaml").read()
    assert yaml.safe_load(pkg) == doc
    status, body, _ = tls_get(env, "/v2/_catalog?n=1", None)
    assert status == 200 and len(json.loads(body)["repositories"]) == 1
    status, body, _ = tls_get(env, f"/v2/{repo}/tags/list", None)
    assert status == 200 and json.loads(body)["tags"] == ["v1.0.0"]

    # The certificate names localhost too, and is only trusted through the CA.
    assert tls_get(env, f"/v2/{repo}/manifests/v1.0.0", host="localhost")[0] == 200
    with pytest.raises(urllib.error.URLError) as err:
        tls_get(env, "/v2/", cafile=None)
    assert isinstance(err.value.reason, ssl.SSLCertVerificationError)

    # Read-only: pushes and deletes are refused, and nothing changes.
    assert tls_get(env, f"/v2/{repo}/blobs/uploads/", None, method="POST")[0] == 405
    assert tls_get(env, f"/v2/{repo}/manifests/v1.0.0", None, method="PUT")[0] == 405
    assert tls_get(env, f"/v2/{repo}/manifests/{digest}", None, method="DELETE")[0] == 405
    assert sha(tls_get(env, f"/v2/{repo}/manifests/v1.0.0")[1]) == digest

    # Never stale: a tag moved in ECR reads moved at once.
    again = tls_localecr.seed({"images": [{"repository": repo, "tags": ["v1.0.0"], "package": doc,
                                           "digestVariant": "moved"}]})
    assert again[repo]["v1.0.0"] != digest
    assert sha(tls_get(env, f"/v2/{repo}/manifests/v1.0.0")[1]) == again[repo]["v1.0.0"]

    status_out = script(tls_localecr, "status").stdout.splitlines()
    assert status_out[0] == "up" and f"tls up https://{env['LOCALECR_TLS_REGISTRY']}/v2/" in status_out


def refused(url: str, cafile: str | None = None) -> bool:
    ctx = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
    try:
        urllib.request.urlopen(url, timeout=10, context=ctx).close()
    except urllib.error.URLError as e:
        return isinstance(e.reason, ConnectionRefusedError)
    return False


def test_registry_stop_and_start(tls_localecr, ecr):
    env = tls_localecr.env
    repo = unique("upbound/provider-outage")
    digest = tls_localecr.seed({"images": [{"repository": repo, "tags": ["v1.0.0"],
                                            "package": meta(name="provider-outage")}]})[repo]["v1.0.0"]
    pids_file = Path(tls_localecr.state) / "pids.json"
    before = json.loads(pids_file.read_text())
    try:
        script(tls_localecr, "registry", "stop")
        script(tls_localecr, "registry", "stop")  # idempotent
        assert refused(env["LOCALECR_REGISTRY_URL"] + "/v2/")
        assert refused(tls_url(env, "/v2/"), env["LOCALECR_TLS_CA"])
        # moto answers; the ECR endpoint (the proxy) answers, with a 503.
        images = ecr.describe_images(repositoryName=repo)["imageDetails"]
        assert [d["imageDigest"] for d in images] == [digest]
        with pytest.raises(urllib.error.HTTPError) as err:
            get(tls_localecr, f"/v2/{repo}/manifests/v1.0.0")
        assert err.value.code == 503 and json.loads(err.value.read())["errors"][0]["code"] == "UNAVAILABLE"

        status = script(tls_localecr, "status", check=False)
        assert status.returncode == 1
        lines = dict(line.split(" ", 1) for line in status.stdout.splitlines()[1:])
        assert status.stdout.splitlines()[0] == "down"
        assert {k for k, v in lines.items() if v.startswith("down")} == {"registry", "tls"}
        stopped = json.loads(pids_file.read_text())
        assert "registry" not in stopped and "tls" not in stopped
        assert {k: before[k] for k in stopped} == stopped, "moto, proxy and upstreams untouched"
    finally:
        script(tls_localecr, "registry", "start")
    after = json.loads(pids_file.read_text())
    script(tls_localecr, "registry", "start")  # idempotent: nothing restarted
    assert json.loads(pids_file.read_text()) == after
    assert after["registry"] != before["registry"] and after["tls"] != before["tls"]
    assert script(tls_localecr, "status").stdout.splitlines()[0] == "up"

    body, _ = get(tls_localecr, f"/v2/{repo}/manifests/v1.0.0")
    assert sha(body) == digest
    status, body, _ = tls_get(env, f"/v2/{repo}/manifests/v1.0.0")
    assert status == 200 and sha(body) == digest
    layer = json.loads(body)["layers"][-1]
    assert sha(tls_get(env, f"/v2/{repo}/blobs/{layer['digest']}", None)[1]) == layer["digest"]
    # Writable again through the ECR endpoint.
    more = tls_localecr.seed({"images": [{"repository": repo, "tags": ["v1.1.0"],
                                          "package": meta(name="provider-outage")}]})
    assert sha(tls_get(env, f"/v2/{repo}/manifests/v1.1.0")[1]) == more[repo]["v1.1.0"]


# ------------------------------------------------------------ packageFiles, crds


def assert_valid_crd(doc: dict, group: str | None = None, scope: str | None = None) -> None:
    """What a kube-apiserver checks first of an apiextensions.k8s.io/v1 CRD,
    and a structural schema: every property has a type."""
    assert doc["apiVersion"] == "apiextensions.k8s.io/v1" and doc["kind"] == "CustomResourceDefinition"
    spec = doc["spec"]
    names = spec["names"]
    assert doc["metadata"]["name"] == f"{names['plural']}.{spec['group']}"
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", names["plural"]) and names["kind"][0].isupper()
    assert names["singular"] and names["listKind"] == names["kind"] + "List"
    if group is not None:
        assert spec["group"] == group
    assert spec["scope"] in ("Cluster", "Namespaced") and (scope is None or spec["scope"] == scope)
    versions = spec["versions"]
    assert versions and sum(v["storage"] is True for v in versions) == 1
    for v in versions:
        assert v["name"] and isinstance(v["served"], bool) and isinstance(v["storage"], bool)
        schema = v["schema"]["openAPIV3Schema"]
        assert schema["type"] == "object"

        def structural(node, at):
            assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields") \
                or node.get("x-kubernetes-int-or-string"), f"{doc['metadata']['name']}: {at} has no type"
            for key, child in (node.get("properties") or {}).items():
                structural(child, f"{at}.{key}")
            if isinstance(node.get("items"), dict):
                structural(node["items"], f"{at}[]")
        structural(schema, "")


def package_docs(localecr, repo: str, tag: str) -> list:
    manifest = json.loads(get(localecr, f"/v2/{repo}/manifests/{tag}")[0])
    _, pkg = package_of(localecr, repo, manifest)
    return list(yaml.safe_load_all(pkg))


def test_package_files_and_crds(localecr, tmp_path, monkeypatch):
    repo, other = unique("acme/function-from-files"), unique("acme/provider-crds")
    name = "function-from-files"
    (tmp_path / "meta.yaml").write_text(
        "# the meta object\n"
        f"apiVersion: meta.pkg.crossplane.io/v1\nkind: Function\nmetadata:\n  name: {name}\n"
        "spec:\n  crossplane:\n    version: '>=v2.0.0-0'\n")
    (tmp_path / "input.yaml").write_text(  # opens with its own ---, after comments
        "# an input\n---\n" + yaml.safe_dump(
            {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
             "metadata": {"name": "inputs.ff.example.org"},
             "spec": {"group": "ff.example.org", "scope": "Namespaced",
                      "names": {"kind": "Input", "listKind": "InputList", "plural": "inputs", "singular": "input"},
                      "versions": [{"name": "v1beta1", "served": True, "storage": True,
                                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                        "strategy": {"type": "string"}}}}}]}}))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "last.yaml").write_text(  # no ---, no final newline
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata:\n  name: others.ff.example.org\nspec:\n  group: ff.example.org\n  scope: Cluster\n"
        "  names: {kind: Other, listKind: OtherList, plural: others, singular: other}\n"
        "  versions:\n  - {name: v1, served: true, storage: true, "
        "schema: {openAPIV3Schema: {type: object}}}")
    monkeypatch.chdir(tmp_path)  # the seeder reads relative paths from its current directory
    out = localecr.seed({"images": [
        {"repository": repo, "tags": ["v0.1.0"], "crds": 3,
         "packageFiles": ["meta.yaml", str(tmp_path / "input.yaml"), "sub/last.yaml"]},
        {"repository": other, "tags": ["v1.0.0"], "crds": 2, "extraYamlBytes": 5000,
         "package": meta(name="provider-crds")},
    ]})
    assert set(out) == {repo, other}

    docs = package_docs(localecr, repo, "v0.1.0")
    assert [d["kind"] for d in docs] == ["Function"] + ["CustomResourceDefinition"] * 5
    assert docs[0]["metadata"]["name"] == name and docs[0]["spec"]["crossplane"]["version"] == ">=v2.0.0-0"
    assert [d["metadata"]["name"] for d in docs[1:3]] == ["inputs.ff.example.org", "others.ff.example.org"]
    widgets = docs[3:]
    assert [d["metadata"]["name"] for d in widgets] == [f"widget{i}s.{name}.example.org" for i in range(3)]
    for d in docs[1:]:
        assert_valid_crd(d)
    for d in widgets:
        assert_valid_crd(d, group=f"{name}.example.org", scope="Cluster")
        props = d["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
        assert props["spec"]["type"] == props["status"]["type"] == "object"
    # The files' own bytes (comments too) open the stream, unchanged.
    raw = package_of(localecr, repo, json.loads(get(localecr, f"/v2/{repo}/manifests/v0.1.0")[0]))[1].decode()
    assert raw.startswith((tmp_path / "meta.yaml").read_text() + "# an input\n---\n")

    docs = package_docs(localecr, other, "v1.0.0")
    assert docs[0] == meta(name="provider-crds")
    valid = [d for d in docs[1:] if d["metadata"]["name"].startswith("widget")]
    assert [d["metadata"]["name"] for d in valid] == ["widget0s.provider-crds.example.org",
                                                      "widget1s.provider-crds.example.org"]
    for d in valid:
        assert_valid_crd(d, group="provider-crds.example.org", scope="Cluster")
    filler = [d for d in docs[1:] if d not in valid]
    assert filler and all(d["metadata"]["name"].startswith("things") for d in filler), "extraYamlBytes as before"


def test_package_files_errors(localecr, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    repo = unique("acme/broken")
    with pytest.raises(AssertionError, match=r"package file 'missing\.yaml' not found"):
        localecr.seed({"images": [{"repository": repo, "packageFiles": ["missing.yaml"]}]})
    (tmp_path / "crd.yaml").write_text("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n")
    (tmp_path / "meta.yaml").write_text(yaml.safe_dump(meta("Function", "fn")))
    with pytest.raises(AssertionError, match="first document .* must be the package's meta"):
        localecr.seed({"images": [{"repository": repo, "packageFiles": ["crd.yaml", "meta.yaml"]}]})
    with pytest.raises(AssertionError, match="more than one"):
        localecr.seed({"images": [{"repository": repo, "packageFiles": ["meta.yaml", "meta.yaml"]}]})
    with pytest.raises(AssertionError, match="either 'package' or 'packageFiles'"):
        localecr.seed({"images": [{"repository": repo, "packageFiles": ["meta.yaml"], "package": meta()}]})


def satisfied_by(constraint: str, version: tuple[int, int, int]) -> bool:
    """The `>=vX.Y.Z[-pre]` constraints the catalogs use."""
    m = re.fullmatch(r">=\s*v?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?", constraint.strip())
    assert m, f"unexpected constraint {constraint!r}"
    return tuple(map(int, m.groups()[:3])) <= version


def test_cluster_catalog(monkeypatch):
    """tests/cluster/catalog.json: what a real Crossplane v2.2.0 accepts. The
    streams are built here, not pushed: the shared local ECR keeps
    examples/catalog.json's digests for those repositories."""
    monkeypatch.chdir(REPO_ROOT)
    catalog = json.loads((REPO_ROOT / "tests" / "cluster" / "catalog.json").read_text())["images"]
    examples = {i["repository"]: i for i in json.loads((REPO_ROOT / "examples" / "catalog.json").read_text())["images"]}
    wanted = {p["repository"] for f in ("xr.yaml", "xr-skip.yaml")
              for p in yaml.safe_load((REPO_ROOT / "examples" / f).read_text())["spec"]["packages"]}
    by_repo = {i["repository"]: i for i in catalog}
    # The examples' packages, this function's own, and the Configuration the
    # many-XRs tests (tests/cluster/test_tenancy.py) install.
    tenancy = {"acme/configuration-storage"}
    assert set(by_repo) == wanted | {"function-ecr-packages"} | tenancy and len(by_repo) == len(catalog)
    failure_knobs = {"corrupt", "oversized", "extraYamlBytes", "digestVariant", "runtimeLayers", "sharedLayers"}
    for image in catalog:
        repo = image["repository"]
        assert not failure_knobs & set(image) and image.get("layout") == "annotated"
        docs = list(yaml.safe_load_all(localecr_script.package_yaml(image)))
        first, rest = docs[0], docs[1:]
        assert first["apiVersion"].startswith("meta.pkg.crossplane.io/")
        assert not any(d["apiVersion"].startswith("meta.pkg.crossplane.io/") for d in rest), "one meta object"
        assert satisfied_by(first.get("spec", {}).get("crossplane", {}).get("version", ">=v0.0.0"), (2, 2, 0))
        if repo in examples:
            assert image["tags"] == examples[repo]["tags"] and first == examples[repo]["package"]
        for d in rest:
            assert_valid_crd(d)
        if first["kind"] == "Provider":
            assert image["crds"] == 2 and len(rest) == 2
            for d in rest:
                assert_valid_crd(d, group=f"{first['metadata']['name']}.example.org", scope="Cluster")
    storage = by_repo["acme/configuration-storage"]["package"]
    assert storage["kind"] == "Configuration"
    assert storage["spec"]["dependsOn"] == [{"provider": "xpkg.upbound.io/upbound/provider-aws-s3",
                                             "version": ">=v2.0.0"}]
    s3 = by_repo["upbound/provider-aws-s3"]["package"]["spec"]["dependsOn"]
    assert s3 == [{"provider": "xpkg.upbound.io/upbound/provider-family-aws", "version": ">= 0.0.0"}]
    fn = by_repo["function-ecr-packages"]
    assert fn["tags"] == ["v0.1.0"]
    assert fn["packageFiles"] == ["package/crossplane.yaml", "package/input/ecr.fn.crossplane.io_inputs.yaml"]
    docs = list(yaml.safe_load_all(localecr_script.package_yaml(fn)))
    assert docs == [yaml.safe_load((REPO_ROOT / f).read_text()) for f in fn["packageFiles"]]
    crd_names = [d["metadata"]["name"] for i in catalog
                 for d in list(yaml.safe_load_all(localecr_script.package_yaml(i)))[1:]]
    assert len(crd_names) == len(set(crd_names)), "no two packages define the same CRD"
