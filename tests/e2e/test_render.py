"""End to end with the real Crossplane CLI: `crank render`, round after round.

The function runs as a process (--insecure) against the local ECR seeded with
examples/catalog.json; crank renders the examples through it, and render.py
plays Crossplane's controllers between rounds (composed resources become
Synced/Ready or Installed/Healthy, the XR keeps the status the function
wrote). Each wave is checked on crank's rendered YAML, and every rendered
object is validated with `crank beta validate` against the CRDs of the
releases under test (every Crossplane version's and provider-aws's, fetched by
scripts/crds) and the examples' XRDs.

Also here: `function-ecr-packages bootstrap` resolving the function's own
package from "ECR" (self-hosting).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from render import Renderer, Round, advance, dump_docs, load_docs, load_xr, resource_name

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
REGISTRY = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"

FAMILY = "package-upbound-provider-family-aws"
S3 = "package-upbound-provider-aws-s3"
PAT = "package-crossplane-contrib-function-patch-and-transform"
IAM = {"iam-role", "iam-policy", "iam-attachment"}
NODE_ATTACHMENT = "iam-attachment-node-eks-node-role"
IMAGE_CONFIG = "image-config-xpkg-upbound-io"
POLICY = "activation-policy"

PULL_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
    "ecr:ListImages",
]
REPOSITORIES = [
    "crossplane-contrib/function-patch-and-transform",
    "upbound/provider-aws-s3",
    "upbound/provider-family-aws",
]
OIDC = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"

MAX_ROUNDS = 7


@pytest.fixture(scope="session")
def crank_bin(crank) -> str:
    if not crank:
        pytest.skip("crank is not installed (scripts/test installs it with go install)")
    return crank


def claim_as_xr() -> tuple[dict, dict]:
    """The XR Crossplane makes for examples/claim.yaml (crank cannot render
    claims): the XRD's composite kind, the claim's spec, and the claim
    reference and labels Crossplane adds."""
    claim = load_xr(EXAMPLES / "claim.yaml")
    xrd = load_xr(EXAMPLES / "xrd-legacy.yaml")
    assert xrd["spec"]["scope"] == "LegacyCluster"
    assert xrd["spec"]["claimNames"]["kind"] == claim["kind"]
    group, version = claim["apiVersion"].split("/")
    assert group == xrd["spec"]["group"]
    name = claim["metadata"]["name"]
    namespace = claim["metadata"]["namespace"]
    xr = {
        "apiVersion": claim["apiVersion"],
        "kind": xrd["spec"]["names"]["kind"],
        "metadata": {
            "name": f"{name}-x7k2p",
            "labels": {"crossplane.io/claim-name": name, "crossplane.io/claim-namespace": namespace},
        },
        "spec": {
            **copy.deepcopy(claim["spec"]),
            "claimRef": {"apiVersion": claim["apiVersion"], "kind": claim["kind"], "name": name, "namespace": namespace},
        },
    }
    return xr, xrd


CASES = {
    "rewrite": (EXAMPLES / "xr.yaml", EXAMPLES / "composition.yaml", None),
    "skip": (EXAMPLES / "xr-skip.yaml", EXAMPLES / "composition.yaml", None),
    "legacy": (None, EXAMPLES / "composition-legacy.yaml", EXAMPLES / "xrd-legacy.yaml"),
}


@pytest.fixture(scope="module")
def rendered(crank_bin, function_server, example_catalog, tmp_path_factory):
    """rendered(case) -> (xr, rounds): every round until Ready, and one more."""
    done: dict[str, tuple[dict, list[Round]]] = {}

    def run(case: str):
        if case not in done:
            xr_path, composition, xrd = CASES[case]
            xr = load_xr(xr_path) if xr_path else claim_as_xr()[0]
            renderer = Renderer(
                crank_bin,
                composition,
                EXAMPLES / "functions.yaml",
                tmp_path_factory.mktemp(f"render-{case}"),
                function_target=function_server.target,
                xrd=xrd,
            )
            done[case] = (xr, renderer.run(xr, MAX_ROUNDS, extra_rounds=1))
        return done[case]

    return run


# ------------------------------------------------------------------ helpers


def composed_names(r: Round) -> set[str]:
    return set(r.names)


def package_specs(r: Round) -> dict[str, dict]:
    return {resource_name(o): o["spec"] for o in r.composed if o["apiVersion"].startswith("pkg.crossplane.io/") and o["kind"] in ("Provider", "Function", "Configuration")}


def status_packages(r: Round) -> list[dict]:
    return r.xr.get("status", {}).get("packages", [])


def cond(r: Round, kind: str) -> tuple[str, str]:
    c = r.condition(kind)
    assert c is not None, f"round {r.index}: no {kind} condition on the XR: {r.xr.get('status')}"
    return c["status"], c.get("reason", "")


def xr_name(xr: dict) -> str:
    return xr["metadata"]["name"]


def check_waves(rounds: list[Round], first_wave: set[str]) -> None:
    assert len(rounds) == 6, [(r.index, r.names, r.ready) for r in rounds]
    r0, r1, r2, r3, r4, r5 = rounds
    # Wave 0: the activation policy (+ ImageConfig); IAM waits for its
    # definitions to be active.
    assert composed_names(r0) == {POLICY} | (first_wave - IAM - {NODE_ATTACHMENT})
    assert r0.get(POLICY)["spec"]["activate"] == [
        "policies.iam.aws.upbound.io", "rolepolicyattachments.iam.aws.upbound.io", "roles.iam.aws.upbound.io",
    ]
    # Wave 1: IAM, once the policy reports them activated.
    assert composed_names(r1) == first_wave | {POLICY}
    # Wave 2: the roots, once the RolePolicyAttachments are Ready (and the ImageConfig exists).
    assert r2.new_since(r1) == [PAT, FAMILY]
    # Wave 3: the S3 provider, once the family provider is Installed and Healthy.
    assert r3.new_since(r2) == [S3]
    # Wave 4: nothing new; everything observed ready: the XR is Ready.
    assert r4.new_since(r3) == []
    assert [r.ready for r in rounds] == [False, False, False, False, True, True]
    for r in (r0, r1, r2, r3):
        assert cond(r, "Ready") == ("False", "Creating")
        assert cond(r, "PackagesHealthy") == ("False", "Installing")
        assert cond(r, "Resolved") == ("True", "Resolved")
    assert cond(r4, "Ready") == ("True", "Available")
    assert cond(r4, "PackagesHealthy") == ("True", "Healthy")
    assert cond(r4, "Resolved") == ("True", "Resolved")
    # A steady state: one more reconcile composes exactly the same objects.
    assert r5.composed == r4.composed
    assert r5.xr.get("status") == r4.xr.get("status")
    # The function's results: no warnings in any round.
    for r in rounds:
        assert [x for x in r.results if x.get("severity") != "SEVERITY_NORMAL"] == [], r.results


def check_status_packages(rounds: list[Round], catalog: dict, package_of) -> None:
    expected = [
        ("crossplane-contrib-function-patch-and-transform", "Function", "crossplane-contrib/function-patch-and-transform", "v0.8.2", []),
        ("upbound-provider-family-aws", "Provider", "upbound/provider-family-aws", "v2.2.0", []),
        ("upbound-provider-aws-s3", "Provider", "upbound/provider-aws-s3", "v2.2.0", ["upbound-provider-family-aws"]),
    ]
    ready_by_round = {
        1: [False, False, False],
        2: [False, False, False],
        3: [False, False, False],
        4: [True, True, False],
        5: [True, True, True],
        6: [True, True, True],
    }
    for r in rounds:
        want = [
            {
                "name": name,
                "kind": kind,
                "repository": repo,
                "version": version,
                "digest": catalog[repo][version],
                "package": package_of(repo, version),
                "dependsOn": deps,
                "ready": ready,
            }
            for (name, kind, repo, version, deps), ready in zip(expected, ready_by_round[r.index])
        ]
        assert status_packages(r) == want, f"round {r.index}"


def check_packages(r: Round, xr: dict, package_of, skip: bool) -> None:
    specs = package_specs(r)
    assert set(specs) == {PAT, FAMILY, S3}
    objects = {resource_name(o): o for o in r.composed}
    for name, kind, repo, version in [
        (PAT, "Function", "crossplane-contrib/function-patch-and-transform", "v0.8.2"),
        (FAMILY, "Provider", "upbound/provider-family-aws", "v2.2.0"),
        (S3, "Provider", "upbound/provider-aws-s3", "v2.2.0"),
    ]:
        o = objects[name]
        assert (o["apiVersion"], o["kind"]) == ("pkg.crossplane.io/v1", kind)
        assert o["metadata"]["name"] == name.removeprefix("package-")
        want = {"package": package_of(repo, version), "revisionHistoryLimit": 1}
        if skip:
            want["skipDependencyResolution"] = True
        assert o["spec"] == want
        owner = o["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["controller"]) == (xr["kind"], xr_name(xr), True)


def default_role_name(xr: dict) -> str:
    """The function's default IAM role name: `<xr-name>-ecr-pull-<hash>`, the
    hash the first 10 hex digits of SHA-256 over the XR's UID (its name when,
    as under `crank render`, it has none) and a NUL (names::hash)."""
    uid = xr.get("metadata", {}).get("uid") or xr_name(xr)
    digest = hashlib.sha256(uid.encode() + b"\0").hexdigest()[:10]
    return f"{xr_name(xr)}-ecr-pull-{digest}"


def check_policy(r: Round, xr: dict) -> None:
    policy = r.get("iam-policy")
    assert (policy["apiVersion"], policy["kind"]) == ("iam.aws.upbound.io/v1beta1", "Policy")
    name = default_role_name(xr)
    assert policy["metadata"]["name"] == name
    assert policy["metadata"]["annotations"]["crossplane.io/external-name"] == name
    assert policy["spec"]["providerConfigRef"] == {"name": "default"}
    doc = json.loads(policy["spec"]["forProvider"]["policy"])
    assert doc == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AuthorizationToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
            {
                "Sid": "PullPackages",
                "Effect": "Allow",
                "Action": PULL_ACTIONS,
                "Resource": [f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{repo}" for repo in REPOSITORIES],
            },
        ],
    }


def check_iam(r: Round, xr: dict, trust: dict, node_roles: list[str]) -> None:
    name = default_role_name(xr)
    role = r.get("iam-role")
    assert (role["apiVersion"], role["kind"], role["metadata"]["name"]) == ("iam.aws.upbound.io/v1beta1", "Role", name)
    assert json.loads(role["spec"]["forProvider"]["assumeRolePolicy"]) == {"Version": "2012-10-17", "Statement": [trust]}
    att = r.get("iam-attachment")
    assert (att["apiVersion"], att["kind"], att["metadata"]["name"]) == ("iam.aws.upbound.io/v1beta1", "RolePolicyAttachment", name)
    assert att["spec"]["forProvider"] == {"policyArnRef": {"name": name}, "roleRef": {"name": name}}
    for node_role in node_roles:
        na = r.get(f"iam-attachment-node-{node_role}")
        assert na["kind"] == "RolePolicyAttachment"
        assert na["metadata"]["name"] == f"{name}-node-{node_role}"
        assert na["spec"]["forProvider"] == {"policyArnRef": {"name": name}, "role": node_role}
    check_policy(r, xr)


def check_image_config(r: Round) -> None:
    ic = r.get(IMAGE_CONFIG)
    assert (ic["apiVersion"], ic["kind"], ic["metadata"]["name"]) == ("pkg.crossplane.io/v1beta1", "ImageConfig", "ecr-mirror-xpkg-upbound-io")
    assert ic["spec"] == {
        "matchImages": [{"type": "Prefix", "prefix": "xpkg.upbound.io/"}],
        "rewriteImage": {"prefix": f"{REGISTRY}/"},
    }


IRSA_TRUST = {
    "Effect": "Allow",
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{OIDC}"},
    "Condition": {
        "StringEquals": {
            f"{OIDC}:aud": "sts.amazonaws.com",
            f"{OIDC}:sub": ["system:serviceaccount:crossplane-system:crossplane"],
        }
    },
}
# EKS Pod Identity, bound to the cluster's account and to the service
# account the claim names (the session tags EKS sets), never to any pod of
# any association in the account.
POD_IDENTITY_TRUST = {
    "Effect": "Allow",
    "Action": ["sts:AssumeRole", "sts:TagSession"],
    "Principal": {"Service": "pods.eks.amazonaws.com"},
    "Condition": {"StringEquals": {
        "aws:SourceAccount": ACCOUNT_ID,
        "aws:RequestTag/kubernetes-namespace": "crossplane-system",
        "aws:RequestTag/kubernetes-service-account": ["provider-aws-s3"],
    }},
}


def upstream(repo: str, version: str) -> str:
    return f"xpkg.upbound.io/{repo}:{version}"


def in_ecr(repo: str, version: str) -> str:
    return f"{REGISTRY}/{repo}:{version}"


# ------------------------------------------------------------------ the examples


def test_functions_yaml_is_a_development_runtime():
    (fn,) = load_docs((EXAMPLES / "functions.yaml").read_text())
    assert (fn["apiVersion"], fn["kind"], fn["metadata"]["name"]) == ("pkg.crossplane.io/v1", "Function", "function-ecr-packages")
    assert fn["metadata"]["annotations"]["render.crossplane.io/runtime"] == "Development"
    for comp in ("composition.yaml", "composition-legacy.yaml"):
        (step,) = load_xr(EXAMPLES / comp)["spec"]["pipeline"]
        assert step["functionRef"]["name"] == fn["metadata"]["name"]


def test_rewrite_waves(rendered, example_catalog):
    xr, rounds = rendered("rewrite")
    check_waves(rounds, IAM | {NODE_ATTACHMENT, IMAGE_CONFIG})
    check_status_packages(rounds, example_catalog, upstream)
    r4 = rounds[4]
    check_packages(r4, xr, upstream, skip=False)
    check_image_config(rounds[0])
    check_iam(rounds[1], xr, IRSA_TRUST, ["eks-node-role"])
    # The policy, IAM and ImageConfig do not change between waves.
    for r in rounds[2:]:
        for name in IAM | {NODE_ATTACHMENT, IMAGE_CONFIG, POLICY}:
            assert r.get(name) == rounds[1].get(name), (r.index, name)
    # The rendered XR carries the input's spec (--include-full-xr).
    assert r4.xr["spec"] == xr["spec"]


def test_rewrite_waiting_messages(rendered):
    """PackagesHealthy says, per package, what it still waits for."""
    _, rounds = rendered("rewrite")
    iam = "iam-attachment, iam-attachment-node-eks-node-role"
    waiting = [f"{iam}, image-config-xpkg-upbound-io", iam]
    assert [r.condition("PackagesHealthy")["message"] for r in rounds[:4]] == [
        *(
            "not ready: "
            f"crossplane-contrib-function-patch-and-transform (waiting for {gate}); "
            f"upbound-provider-family-aws (waiting for {gate}); "
            f"upbound-provider-aws-s3 (waiting for {gate}, package-upbound-provider-family-aws)"
            for gate in waiting
        ),
        "not ready: "
        "crossplane-contrib-function-patch-and-transform (not created yet); "
        "upbound-provider-family-aws (not created yet); "
        "upbound-provider-aws-s3 (waiting for package-upbound-provider-family-aws)",
        "not ready: upbound-provider-aws-s3 (not created yet)",
    ]
    assert rounds[4].condition("PackagesHealthy")["message"] == "all 3 packages are installed and healthy"
    assert rounds[0].condition("Resolved")["message"] == f"resolved 3 packages from {REGISTRY}"


def test_skip_waves(rendered, example_catalog):
    xr, rounds = rendered("skip")
    assert xr["spec"]["strategy"] == "Skip"
    check_waves(rounds, IAM | {NODE_ATTACHMENT})
    check_status_packages(rounds, example_catalog, in_ecr)
    check_packages(rounds[4], xr, in_ecr, skip=True)
    check_iam(rounds[1], xr, IRSA_TRUST, ["eks-node-role"])
    for r in rounds:
        assert r.of_kind("ImageConfig") == []


def test_legacy_claim_waves(rendered, example_catalog):
    xr, rounds = rendered("legacy")
    assert xr["kind"] == "XClaimableEcrPackages"
    # The claim lists the S3 provider and the function; the family provider
    # comes in as the S3 provider's dependency.
    check_waves(rounds, IAM | {IMAGE_CONFIG})
    check_status_packages(rounds, example_catalog, upstream)
    check_packages(rounds[4], xr, upstream, skip=False)
    check_image_config(rounds[0])
    check_iam(rounds[1], xr, POD_IDENTITY_TRUST, [])
    for r in rounds:
        for o in r.composed:
            labels = o["metadata"]["labels"]
            assert labels["crossplane.io/claim-name"] == "team-a-packages"
            assert labels["crossplane.io/claim-namespace"] == "team-a"
            assert labels["crossplane.io/composite"] == xr_name(xr)


# ------------------------------------------------------------------ schema validation


@pytest.fixture(scope="module")
def validator(crank_bin, crds, tmp_path_factory):
    """validate(path) -> [(release, CompletedProcess of `crank beta validate`)],
    one run per Crossplane version under test.

    Extensions: provider-aws's CRDs and the examples' XRDs. Crossplane's own
    CRDs (Provider, Function, ImageConfig, ...): crank v2.2.0 always adds the
    Crossplane image to what it downloads for "built-in schemas" (and a `go
    install`ed crank has no version, so the default reference is not even
    valid); its schema cache is filled here with each release's CRDs (from
    scripts/crds) under a named image, so nothing is downloaded.
    """
    base = tmp_path_factory.mktemp("validate")
    ext = base / "extensions"
    ext.mkdir()
    for _, d in crds["provider-aws"]:
        for f in sorted(d.glob("*.yaml")):
            shutil.copy(f, ext / f.name)
    for xrd in ("xrd.yaml", "xrd-legacy.yaml"):
        shutil.copy(EXAMPLES / xrd, ext / xrd)
    images = []
    for release, d in crds["crossplane"]:
        image = f"local.invalid/crossplane/crossplane-crds:{release.partition('@')[2]}"
        cached = base / "cache" / image.replace(":", "@")
        cached.mkdir(parents=True)
        crossplane_crds = sorted(d.glob("*.yaml"))
        assert crossplane_crds, d
        (cached / "package.yaml").write_text("".join(f.read_text().rstrip("\n") + "\n---\n" for f in crossplane_crds))
        images.append((release, image))

    def validate(resources: Path) -> list[tuple[str, subprocess.CompletedProcess]]:
        runs = []
        for release, image in images:
            cmd = [
                crank_bin, "beta", "validate", str(ext), str(resources),
                "--cache-dir", str(base / "cache"),
                "--crossplane-image", image,
                "--error-on-missing-schemas",
            ]
            runs.append((release, subprocess.run(cmd, capture_output=True, text=True, timeout=120)))
        return runs

    return validate


def rendered_objects(r: Round) -> list[dict]:
    """What crank rendered, without its Result documents."""
    return [r.xr, *r.composed]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rendered_resource_validates(rendered, validator, case, tmp_path):
    _, rounds = rendered(case)
    for r in rounds:
        f = tmp_path / f"round-{r.index}.yaml"
        f.write_text(dump_docs(rendered_objects(r)))
        n = len(rendered_objects(r))
        for release, res in validator(f):
            assert res.returncode == 0, f"round {r.index}, {release}:\n{res.stdout}\n{res.stderr}"
            assert f"Total {n} resources: 0 missing schemas, {n} success cases, 0 failure cases" in res.stdout, \
                f"{release}: {res.stdout}"


def test_validation_rejects_a_broken_resource(rendered, validator, tmp_path):
    """The validator is not vacuous: a wrongly typed field fails."""
    _, rounds = rendered("skip")
    objs = copy.deepcopy(rendered_objects(rounds[4]))
    provider = next(o for o in objs if o["kind"] == "Provider")
    provider["spec"]["skipDependencyResolution"] = "yes"
    f = tmp_path / "broken.yaml"
    f.write_text(dump_docs(objs))
    for release, res in validator(f):
        assert res.returncode != 0, release
        assert "1 failure cases" in res.stdout, f"{release}: {res.stdout}"


def test_advance_sets_controller_conditions():
    provider = {"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "metadata": {"name": "p"}, "spec": {"package": "x"}}
    role = {"apiVersion": "iam.aws.upbound.io/v1beta1", "kind": "Role", "metadata": {"name": "r"}, "spec": {}}
    ic = {"apiVersion": "pkg.crossplane.io/v1beta1", "kind": "ImageConfig", "metadata": {"name": "i"}, "spec": {}}
    kinds = lambda o: {c["type"]: c["status"] for c in o.get("status", {}).get("conditions", [])}  # noqa: E731
    assert kinds(advance(provider)) == {"Installed": "True", "Healthy": "True"}
    assert kinds(advance(role)) == {"Synced": "True", "Ready": "True"}
    assert "status" not in advance(ic)
    assert "status" not in provider  # a copy


# ------------------------------------------------------------------ self-hosting


@pytest.mark.parametrize("strategy", ["Skip", "Rewrite"])
def test_bootstrap_resolves_the_functions_own_package(function_binary, function_package_in_ecr, localecr_env, tmp_path, strategy):
    repository, tag, digest = function_package_in_ecr
    xr = {
        "apiVersion": "ecr.platform.example.org/v1alpha1",
        "kind": "XEcrPackages",
        "metadata": {"name": "self-hosting"},
        "spec": {
            "strategy": strategy,
            "registry": {"accountId": ACCOUNT_ID, "region": REGION},
            "packages": [{"kind": "Function", "repository": repository, "version": tag}],
        },
    }
    xr_file = tmp_path / "xr.yaml"
    xr_file.write_text(yaml.safe_dump(xr))
    out = tmp_path / "out"
    env = dict(os.environ)
    env.update(localecr_env)
    res = subprocess.run(
        [str(function_binary), "bootstrap", "--xr", str(xr_file), "--input", str(EXAMPLES / "composition.yaml"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    assert f"resolved {repository} {tag} ({digest})" in res.stderr.splitlines(), res.stderr
    docs = load_docs((out / "manifests.yaml").read_text())
    functions = [d for d in docs if (d.get("apiVersion"), d.get("kind")) == ("pkg.crossplane.io/v1", "Function")]
    assert len(functions) == 1, docs
    (fn,) = functions
    if strategy == "Skip":
        assert fn["spec"]["package"] == f"{REGISTRY}/{repository}:{tag}"
        assert fn["spec"]["skipDependencyResolution"] is True
    else:
        # Rewrite names the package upstream; the ImageConfig maps it to ECR.
        assert fn["spec"]["package"] == f"xpkg.upbound.io/{repository}:{tag}"
        ics = [d for d in docs if d.get("kind") == "ImageConfig"]
        assert [ic["spec"]["rewriteImage"]["prefix"] for ic in ics] == [f"{REGISTRY}/"]
    assert (out / "crossplane-values.yaml").is_file()
