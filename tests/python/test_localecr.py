"""The local ECR stand-in: what `localecr.py seed` pushes is a real xpkg,
served identically by the ECR API (moto) and the OCI registry."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import urllib.request
import zlib

import boto3
import pytest
import yaml

from fnharness import unique

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
