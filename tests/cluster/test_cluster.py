"""The function under real Crossplane: its package manager and dependency
resolver, garbage collection by kube-controller-manager, ImageConfig
rewriting, XR status persistence and mTLS. The tests run in file order on one
cluster (see conftest.py); each leaves it the way the next expects.
"""

from __future__ import annotations

import copy
import datetime
import os
import time
from pathlib import Path

import grpc
import pytest
import yaml

from clusterlib import REPO_ROOT, XR_API, cluster_script

XR = "platform-packages"
XR_SKIP = "platform-packages-skip"
IAM_KINDS = {"Role", "Policy", "RolePolicyAttachment"}
PACKAGE_KINDS = set(cluster_script.PACKAGE_KINDS)
FAMILY = "upbound/provider-family-aws"
S3 = "upbound/provider-aws-s3"
OUTAGE_SECONDS = float(os.environ.get("CLUSTER_OUTAGE_SECONDS", "180"))


def load(path: str) -> dict:
    return yaml.safe_load((REPO_ROOT / path).read_text())


def conditions(obj: dict) -> dict[str, str]:
    return cluster_script.conditions_of(obj)


def transition(obj: dict, type_: str) -> str | None:
    for c in obj.get("status", {}).get("conditions", []) or []:
        if c["type"] == type_ and c["status"] == "True":
            return c["lastTransitionTime"]
    return None


def repository(obj: dict) -> str:
    return cluster_script.repository_of(obj["spec"]["package"])


def watch_install(cluster, name: str, timeout: float = 600) -> list[str]:
    """Polls until the XR converges; returns the ordering violations seen on
    the way (a package before IAM is Ready, a dependent before its
    dependencies are Installed and Healthy)."""
    violations: list[str] = []
    deadline = time.time() + timeout
    poked = time.time()
    while time.time() < deadline:
        if time.time() - poked > 20:
            # Crossplane's circuit breaker drops an XR's events for a while
            # after a burst of them (one probe per 30 s gets through), the
            # event of a new XR included; a user would edit it again.
            cluster.poke(name)
            poked = time.time()
        objects = cluster.composed(name).values()
        iam = [o for o in objects if o["kind"] in IAM_KINDS]
        pkgs = {repository(o): o for o in objects if o["kind"] in PACKAGE_KINDS}
        if pkgs and (not iam or any(conditions(o).get("Ready") != "True" for o in iam)):
            violations.append(f"packages {sorted(pkgs)} exist while IAM is not Ready")
        if S3 in pkgs:
            family = pkgs.get(FAMILY)
            if family is None or conditions(family).get("Installed") != "True" \
                    or conditions(family).get("Healthy") != "True":
                violations.append("provider-aws-s3 exists before provider-family-aws is Installed and Healthy")
        if cluster.converged(name):
            return violations
        time.sleep(0.5)
    pytest.fail(f"{name} did not converge in {timeout:.0f}s: {cluster.summary(name)}")


def assert_nothing_lost(cluster, name: str, before: dict[tuple, str], during: str) -> None:
    now = cluster.composed(name)
    missing = sorted(set(before) - set(now))
    assert not missing, f"{during}: composed objects were deleted: {missing}"
    deleting = sorted(k for k, o in now.items() if o["metadata"].get("deletionTimestamp"))
    assert not deleting, f"{during}: composed objects are being deleted: {deleting}"
    recreated = sorted(k for k in before if now[k]["metadata"]["uid"] != before[k])
    assert not recreated, f"{during}: composed objects were recreated: {recreated}"


def warnings_about(cluster, name: str, text: str, since: float = 0) -> list[str]:
    """The messages of Warning events on the XR that mention text, last seen
    after since (epoch seconds)."""
    out = []
    for e in cluster.kube.list("v1", "Event"):
        last = e.get("lastTimestamp") or e.get("eventTime") or ""
        seen = datetime.datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp() if last else 0
        if e.get("involvedObject", {}).get("name") == name and e.get("type") == "Warning" \
                and text in e.get("message", "") and seen >= int(since):
            out.append(e.get("message", ""))
    return out


# ---------------------------------------------------------------- mTLS

def test_the_function_accepts_only_crossplanes_client_certificate(cluster, tmp_path):
    from crossplane.function.proto.v1 import run_function_pb2 as pb
    from crossplane.function.proto.v1 import run_function_pb2_grpc as pb_grpc

    import certs

    state = cluster.state
    address = cluster.env["FUNCTION_ADDRESS"]
    root_ca = (state / "function" / "tls" / "ca.crt").read_bytes()
    client = state / "crossplane" / "tls-client"
    stranger = certs.write_bundle(tmp_path / "stranger-bundle")["stranger"]
    request = pb.RunFunctionRequest(meta=pb.RequestMeta(tag="mtls-probe"))

    def call(key: bytes | None, crt: bytes | None):
        creds = grpc.ssl_channel_credentials(root_certificates=root_ca, private_key=key,
                                             certificate_chain=crt)
        with grpc.secure_channel(address, creds) as channel:
            return pb_grpc.FunctionRunnerServiceStub(channel).RunFunction(request, timeout=10)

    # Crossplane's own client certificate (from crossplane-tls-client): answered.
    answer = call((client / "tls.key").read_bytes(), (client / "tls.crt").read_bytes())
    assert answer.meta.tag == "mtls-probe"

    # No client certificate, or one from another CA: refused in the handshake.
    for key, crt, who in [(None, None, "no certificate"),
                          ((stranger / "tls.key").read_bytes(), (stranger / "tls.crt").read_bytes(),
                           "another CA's certificate")]:
        with pytest.raises(grpc.RpcError) as refused:
            call(key, crt)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, who


# ---------------------------------------------------------------- install (Rewrite)

IAM_PLURALS = {"Role": "roles", "Policy": "policies", "RolePolicyAttachment": "rolepolicyattachments"}
IAM_DEFINITIONS = sorted(f"{plural}.iam.aws.upbound.io" for plural in IAM_PLURALS.values())
NAMESPACED_IAM_DEFINITIONS = [d.replace(".iam.aws.", ".iam.aws.m.") for d in IAM_DEFINITIONS]
MRD_API = cluster_script.MRD_API


def definition(cluster, name: str) -> dict:
    return cluster.kube.read(MRD_API, "ManagedResourceDefinition", name) or {}


def crd(cluster, name: str) -> dict | None:
    return cluster.kube.read("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)


def test_rewrite_installs_in_waves_without_duplicates(cluster):
    # Safe-start with no default activation: provider-aws's IAM definitions
    # are installed inactive, so their kinds do not exist yet.
    for name in IAM_DEFINITIONS:
        assert definition(cluster, name).get("spec", {}).get("state") == "Inactive", definition(cluster, name)
        assert crd(cluster, name) is None, name
    cluster.kube.apply(load("examples/xr.yaml"))
    violations = watch_install(cluster, XR)
    assert not violations, violations[:5]

    # The XR's activation policy activated exactly the IAM definitions its
    # objects need (Crossplane made their CRDs), and the IAM objects came
    # after their CRDs; the namespaced ones it does not use stay inactive.
    policy = cluster.kube.read(MRD_API, "ManagedResourceActivationPolicy", f"ecr-packages-{XR}")
    assert policy and policy["spec"]["activate"] == IAM_DEFINITIONS, policy
    assert conditions(policy).get("Healthy") == "True", policy
    assert sorted(policy["status"].get("activated", [])) == IAM_DEFINITIONS, policy["status"]
    for name in IAM_DEFINITIONS:
        assert definition(cluster, name)["spec"]["state"] == "Active"
        assert conditions(definition(cluster, name)).get("Established") == "True", definition(cluster, name)
    for name in NAMESPACED_IAM_DEFINITIONS:
        assert definition(cluster, name)["spec"]["state"] == "Inactive", name
    for obj in cluster.composed(XR).values():
        if obj["kind"] in IAM_KINDS:
            kind_crd = crd(cluster, f"{IAM_PLURALS[obj['kind']]}.iam.aws.upbound.io")
            assert kind_crd and obj["metadata"]["creationTimestamp"] >= kind_crd["metadata"]["creationTimestamp"]

    summary = cluster.summary(XR)
    assert summary["xr"]["conditions"].get("Ready") == "True", summary["xr"]
    # The order Crossplane created things in: IAM first, then packages, the
    # family before the provider that depends on it.
    kinds = [o["kind"] for o in summary["objects"]]
    assert IAM_KINDS <= set(kinds), kinds
    by_repo = {cluster_script.repository_of(o["package"]): o for o in summary["objects"]
               if o["package"] and o["name"] != cluster_script.FUNCTION}
    iam_ready = max(transition(o, "Ready") for o in cluster.composed(XR).values() if o["kind"] in IAM_KINDS)
    assert min(o["created"] for o in by_repo.values()) >= iam_ready
    family = cluster.composed(XR)[("Provider", None, by_repo[FAMILY]["name"])]
    assert by_repo[S3]["created"] >= transition(family, "Healthy")

    # Exactly one package object per repository, though Crossplane's own
    # dependency resolution is on; the Lock lists each source once.
    assert set(summary["packageCounts"].values()) == {1}, summary["packageCounts"]
    sources = cluster.lock_sources()
    assert len(sources) == len(set(sources)), sources
    for repo in (FAMILY, S3, "crossplane-contrib/function-patch-and-transform"):
        assert any(s.endswith("/" + repo) for s in sources), (repo, sources)

    # Pulled from the local registry through the ImageConfig the function composed.
    provider = cluster.kube.read("pkg.crossplane.io/v1", "Provider", by_repo[S3]["name"])
    assert provider["status"]["resolvedPackage"].startswith(cluster.env["REGISTRY_HOST"] + "/"), provider["status"]
    assert any(r.get("reason") == "RewriteImage" for r in provider["status"].get("appliedImageConfigRefs", []))


# ---------------------------------------------------------------- crossplane beta trace

def crank() -> str | None:
    """The Crossplane CLI: $CRANK (scripts/test exports it), crank on PATH,
    else $GOPATH/bin/crank. It is built from github.com/crossplane/crossplane/v2's
    cmd/crank, which v2.2.0 has; from v2.3 the CLI moved to its own module,
    github.com/crossplane/cli, which the Go proxy here refuses, so crank
    v2.2.0 (scripts/setup) traces every Crossplane version under test."""
    import shutil

    import subprocess

    for candidate in (os.environ.get("CRANK"), shutil.which("crank"),
                      str(Path(os.environ.get("GOPATH", Path.home() / "go")) / "bin" / "crank")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    # scripts/test builds crank beside this suite: CRANK_PENDING names where
    # it will be; wait for a binary that runs.
    pending = os.environ.get("CRANK_PENDING")
    deadline = time.time() + 900
    while pending and time.time() < deadline:
        if os.access(pending, os.X_OK) and subprocess.run(
                [pending, "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
            return pending
        time.sleep(5)
    return None


def trace(cluster, *args: str) -> dict:
    import json
    import subprocess

    binary = crank()
    if binary is None:
        if os.environ.get("CLUSTER_REQUIRED") == "1":
            pytest.fail("no crank to run `crossplane beta trace` with (scripts/setup installs it)")
        pytest.skip("no crank: `crossplane beta trace` cannot run (scripts/setup installs it)")
    env = {**os.environ, "KUBECONFIG": str(cluster.state / "admin.kubeconfig")}
    out = subprocess.run([binary, "beta", "trace", *args, "-o", "json"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=120)
    assert out.returncode == 0, f"crossplane beta trace {' '.join(args)}: {out.stderr[-2000:]}"
    return json.loads(out.stdout)


def traced(node: dict) -> tuple[str, str]:
    return node["object"]["kind"], node["object"]["metadata"]["name"]


def test_crossplane_beta_trace_shows_the_xrs_packages_and_their_revisions(cluster):
    """`crossplane beta trace xecrpackages NAME -o json` lists what the XR
    composed, its package objects among them; the trace of each package
    (the XR's tree stops at the package: revisions are traced from a
    package) lists its active revision, the one status.currentRevision
    names, healthy."""
    assert cluster.converged(XR), cluster.summary(XR)
    root = trace(cluster, "xecrpackages", XR)
    assert traced(root) == ("XEcrPackages", XR), traced(root)
    children = {traced(c): c for c in root.get("children", [])}
    errors = {k: c["error"] for k, c in children.items() if c.get("error")}
    assert not errors, errors
    composed = cluster.composed(XR)
    pkgs = {(o["kind"], o["metadata"]["name"]): o for o in composed.values() if o["kind"] in PACKAGE_KINDS
            and o["metadata"]["name"] != cluster_script.FUNCTION}
    assert pkgs, composed.keys()
    assert set(pkgs) <= set(children), f"trace lists {sorted(children)}, the XR's packages are {sorted(pkgs)}"
    iam = {(o["kind"], o["metadata"]["name"]) for o in composed.values() if o["kind"] in IAM_KINDS}
    assert iam <= set(children), f"trace lists {sorted(children)}, the XR's IAM objects are {sorted(iam)}"

    for (kind, name), obj in sorted(pkgs.items()):
        tree = trace(cluster, f"{kind.lower()}s.pkg.crossplane.io", name, "--show-package-revisions", "all")
        assert traced(tree) == (kind, name)
        revisions = {c["object"]["metadata"]["name"]: c["object"] for c in tree.get("children", [])
                     if c["object"]["kind"] == f"{kind}Revision"}
        current = obj["status"]["currentRevision"]
        assert current in revisions, f"trace of {kind} {name} lists revisions {sorted(revisions)}, " \
                                     f"not its current {current}"
        rev = revisions[current]
        assert rev["spec"]["desiredState"] == "Active", rev["spec"]
        # A revision's health is two conditions: RevisionHealthy and RuntimeHealthy.
        assert conditions(rev).get("RevisionHealthy") == "True", rev.get("status")
        assert conditions(rev).get("RuntimeHealthy") == "True", rev.get("status")
        assert all(r["metadata"]["labels"].get("pkg.crossplane.io/package") == name for r in revisions.values())


# ---------------------------------------------------------------- outages

def outage(cluster, component: str, seconds: float, reported) -> None:
    """Stops component ("function" or "registry") for seconds, editing the
    XR every 15 s so Crossplane keeps calling; nothing composed may be
    deleted, be deleting or be recreated, then or after the restart, when
    everything converges again. reported(since) tells whether the outage
    was reported on the XR."""
    before = cluster.uids(XR)
    since = time.time()
    cluster.run(component, "stop")
    try:
        deadline = since + seconds
        while time.time() < deadline:
            cluster.poke(XR)
            time.sleep(min(15, max(0, deadline - time.time())))
            assert_nothing_lost(cluster, XR, before, f"{component} stopped")
        # Crossplane's next call may be held back (its circuit breaker, a
        # pending 2-minute wait on an unreachable function): give it time,
        # still checking that nothing is lost.
        cluster.wait(f"the {component} outage to be reported on the XR",
                     lambda: reported(since) and not assert_nothing_lost(cluster, XR, before,
                                                                         f"{component} stopped"),
                     240, interval=5, poke=XR)
    finally:
        cluster.run(component, "start")
    cluster.poke(XR)
    cluster.wait(f"convergence after the {component} came back", lambda: cluster.converged(XR), 420,
                 poke=XR)
    assert_nothing_lost(cluster, XR, before, f"after the {component} came back")


def test_an_activation_outside_the_allowlist_is_refused_naming_the_field(cluster):
    """examples/composition.yaml lists no allowedActivations: an XR that asks
    for any definition is refused, saying which field and which allowlist,
    and nothing is composed for it."""
    name = "asks-for-activation"
    xr = load("examples/xr.yaml")
    xr["metadata"] = {"name": name}
    xr["spec"]["iam"] = {"enabled": False}
    xr["spec"]["packages"] = [{"kind": "Provider", "repository": S3, "version": ">=v2.0.0",
                               "activate": ["buckets.s3.aws.upbound.io", "*.s3.aws.upbound.io"]}]
    cluster.kube.apply(xr)
    try:
        def refusal():
            synced = (cluster.xr(name) or {}).get("status", {}).get("conditions", []) or []
            found = [c for c in synced if c["type"] == "Synced" and c["status"] == "False"]
            return found and "spec.packages[0].activate[0]" in found[0].get("message", "") and found[0]
        refused = cluster.wait("the XR to be refused", refusal, timeout=120, poke=name)
        assert "allowedActivations" in refused["message"], refused
        assert not (cluster.xr(name) or {}).get("spec", {}).get("crossplane", {}).get("resourceRefs"), cluster.xr(name)
        assert cluster.kube.read(MRD_API, "ManagedResourceActivationPolicy", f"ecr-packages-{name}") is None
    finally:
        cluster.kube.delete(XR_API, "XEcrPackages", name)


S3_GROUP = "provider-aws-s3.example.org"  # the stand-in's CRDs (catalog.json "crds": 2)


def s3_activating(cluster, activate: list[str]) -> None:
    """platform-packages as examples/xr.yaml has it, provider-aws-s3 asking
    for activate."""
    xr = load("examples/xr.yaml")
    for package in xr["spec"]["packages"]:
        if package["repository"] == S3:
            package["activate"] = activate
    cluster.kube.apply(xr)


def test_a_package_is_ready_once_what_it_activates_is_active(cluster):
    """provider-aws-s3 is a safe-start provider whose package brings two
    CRDs: Crossplane installed them as inactive definitions. Once the
    Composition allows it and the XR asks, the XR's policy activates them and
    Crossplane makes their CRDs; an entry that matches no definition keeps
    the package, and so the XR, not ready, saying why."""
    widgets = [f"widget{i}s.{S3_GROUP}" for i in (0, 1)]
    for name in widgets:
        assert definition(cluster, name).get("spec", {}).get("state") == "Inactive", definition(cluster, name)
    cluster.kube.apply(cluster_script.composition(cluster.state,
                                                  overrides={"allowedActivations": [f"*.{S3_GROUP}"]}))
    try:
        missing = f"widget9s.{S3_GROUP}"
        s3_activating(cluster, [f"*.{S3_GROUP}", missing])

        def waiting():
            healthy = conditions_with_messages(cluster.xr(XR)).get("PackagesHealthy", {})
            return "waiting for definitions to be activated: " + missing in healthy.get("message", "") and healthy
        said = cluster.wait("PackagesHealthy to name the definition no package installs", waiting,
                            timeout=180, poke=XR)
        assert said["status"] == "False", said
        assert conditions(cluster.xr(XR)).get("Ready") != "True"
        policy = cluster.kube.read(MRD_API, "ManagedResourceActivationPolicy", f"ecr-packages-{XR}")
        assert sorted(policy["spec"]["activate"]) == sorted(IAM_DEFINITIONS + [f"*.{S3_GROUP}", missing])
        cluster.wait("both widget definitions to be active and established", lambda: all(
            definition(cluster, n)["spec"]["state"] == "Active"
            and conditions(definition(cluster, n)).get("Established") == "True" for n in widgets), timeout=120)
        assert all(crd(cluster, n) for n in widgets)

        s3_activating(cluster, [f"*.{S3_GROUP}"])
        cluster.wait("the XR to be Ready again", lambda: cluster.converged(XR), timeout=300, poke=XR)
        s3 = [p for p in cluster.xr(XR)["status"]["packages"] if p["repository"] == S3]
        assert s3 and s3[0]["ready"] is True, s3
        assert sorted(cluster.kube.read(MRD_API, "ManagedResourceActivationPolicy", f"ecr-packages-{XR}")
                      ["status"]["activated"]) == sorted(IAM_DEFINITIONS + widgets)
    finally:
        cluster.kube.apply(load("examples/xr.yaml"))
        cluster.kube.apply(cluster_script.composition(cluster.state))
    cluster.wait("the XR to settle as examples/xr.yaml has it", lambda: cluster.converged(XR), timeout=300, poke=XR)


def conditions_with_messages(obj: dict | None) -> dict[str, dict]:
    return {c["type"]: c for c in (obj or {}).get("status", {}).get("conditions", []) or []}


def test_nothing_is_deleted_while_the_function_is_down(cluster):
    # Crossplane waits for an unreachable function until its 2-minute
    # reconcile timeout, then reports it on the XR.
    outage(cluster, "function", OUTAGE_SECONDS,
           lambda since: OUTAGE_SECONDS < 150 or warnings_about(cluster, XR, "function-ecr-packages", since))


def test_nothing_is_deleted_while_the_registry_is_down(cluster):
    # The data plane stops and the ECR API is unreachable; the function
    # restarts with nothing cached, so every answer it needs fails, and it
    # says so in a warning.
    outage(cluster, "registry", 60,
           lambda since: [m for m in warnings_about(cluster, XR, "", since) if "cannot run Function" not in m])


# ---------------------------------------------------------------- removal

def test_dropping_packages_deletes_dependents_first(cluster):
    xr = load("examples/xr.yaml")
    kept = [p for p in xr["spec"]["packages"] if p["repository"] not in (FAMILY, S3)]
    assert kept and len(kept) < len(xr["spec"]["packages"])
    names = {repository(o): o["metadata"]["name"]
             for o in cluster.composed(XR).values() if o["kind"] == "Provider"}
    edited = copy.deepcopy(xr)
    edited["spec"]["packages"] = kept
    cluster.kube.apply(edited)

    # The poll at which each provider was first seen deleted or deleting.
    first_gone: dict[str, int] = {}
    deadline = time.time() + 240
    polls = 0
    while time.time() < deadline:
        polls += 1
        for repo in (S3, FAMILY):
            obj = cluster.kube.read("pkg.crossplane.io/v1", "Provider", names[repo])
            if obj is None or obj["metadata"].get("deletionTimestamp"):
                first_gone.setdefault(repo, polls)
        gone = all(cluster.kube.read("pkg.crossplane.io/v1", "Provider", names[r]) is None
                   for r in (S3, FAMILY))
        if gone and cluster.converged(XR):
            break
        time.sleep(0.25)
    else:
        summary = cluster.summary(XR)
        # Leave the cluster as the next tests expect it.
        for repo in (S3, FAMILY):
            cluster.kube.delete("pkg.crossplane.io/v1", "Provider", names[repo])
        cluster.wait("the leftover providers to go", lambda: all(
            cluster.kube.read("pkg.crossplane.io/v1", "Provider", names[r]) is None for r in (S3, FAMILY)), 180)
        pytest.fail(f"the dropped providers did not go: {summary}")
    assert first_gone[S3] < first_gone[FAMILY], \
        f"provider-family-aws went at poll {first_gone[FAMILY]}, its dependent at poll {first_gone[S3]}"
    # Crossplane takes the dropped packages out of its Lock once their
    # revisions are gone.
    cluster.wait("the Lock to drop the removed providers",
                 lambda: not any(s.endswith("/" + FAMILY) or s.endswith("/" + S3)
                                 for s in cluster.lock_sources()), 180)
    # Nothing brings them back: Crossplane's resolver reinstalls, unowned,
    # a dependency deleted while its Lock still lists a dependent's revision,
    # which is why the function keeps the family until the Lock lets it go.
    time.sleep(20)
    back = [p["metadata"]["name"] for p in cluster.packages() if repository(p) in (S3, FAMILY)]
    assert not back, f"reinstalled after removal: {back}"


def test_deleting_the_xr_removes_everything_it_composed(cluster):
    composed = cluster.composed(XR)
    assert composed
    cluster.kube.delete(XR_API, "XEcrPackages", XR)

    def all_gone():
        return all(cluster.kube.read(o["apiVersion"], o["kind"], o["metadata"]["name"],
                                     o["metadata"].get("namespace")) is None
                   for o in composed.values()) and cluster.xr(XR) is None
    cluster.wait("everything the XR composed to be deleted", all_gone, 300)
    assert not cluster.packages()


# ---------------------------------------------------------------- Skip

def test_skip_installs_without_duplicates_and_cleans_up(cluster):
    cluster.kube.apply(load("examples/xr-skip.yaml"))
    violations = watch_install(cluster, XR_SKIP)
    assert not violations, violations[:5]
    summary = cluster.summary(XR_SKIP)
    assert set(summary["packageCounts"].values()) == {1}, summary["packageCounts"]
    assert FAMILY in summary["packageCounts"] and S3 in summary["packageCounts"]
    for obj in cluster.composed(XR_SKIP).values():
        if obj["kind"] in PACKAGE_KINDS:
            assert obj["spec"]["package"].startswith(cluster.env["REGISTRY_HOST"] + "/"), obj["spec"]
            assert obj["spec"].get("skipDependencyResolution") is True, obj["spec"]
    sources = cluster.lock_sources()
    assert len(sources) == len(set(sources)), sources

    cluster.kube.delete(XR_API, "XEcrPackages", XR_SKIP)
    cluster.wait("the Skip XR's packages to be deleted",
                 lambda: cluster.xr(XR_SKIP) is None and not cluster.packages(), 300)


def test_cluster_e2e_prints_the_summary(cluster):
    """scripts/cluster-e2e on the running cluster: one JSON document."""
    import json
    import subprocess
    import sys

    try:
        out = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "cluster.py"), "e2e",
                              str(REPO_ROOT / "examples" / "xr.yaml"), "--state-dir", str(cluster.state)],
                             check=True, stdout=subprocess.PIPE, text=True, timeout=900).stdout
        doc = json.loads(out)
        assert doc["xr"]["conditions"]["Ready"] == "True", doc
        assert set(doc["packageCounts"].values()) == {1}
        assert {o["kind"] for o in doc["objects"]} >= IAM_KINDS | {"Provider", "Function", "ImageConfig"}
        created = [o["created"] for o in doc["objects"]]
        assert created == sorted(created)
    finally:
        # The next file's tests start from a cluster with no XR, pass or fail.
        if cluster.xr(XR):
            cluster.kube.delete(XR_API, "XEcrPackages", XR)
        cluster.wait("the XR to go", lambda: cluster.xr(XR) is None
                     and not cluster.packages(), 300)


assert Path(__file__).parent.name == "cluster"
