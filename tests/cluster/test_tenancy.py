"""Many XRs in one cluster, on the real control plane: package objects and
ImageConfigs are cluster singletons, so an XR shares what another XR (or a
person) holds, protects it with a Usage while it uses it, and never takes
it over. Each test starts from a cluster with no XR and leaves it so.
"""

from __future__ import annotations

import time

import pytest

from clusterlib import XR_API, cluster_script

FAMILY = "upbound/provider-family-aws"
S3 = "upbound/provider-aws-s3"
STORAGE = "acme/configuration-storage"
PKG = "pkg.crossplane.io/v1"


def xr(name: str, packages: list[dict]) -> dict:
    """An XR like examples/xr.yaml, asking for packages."""
    return {
        "apiVersion": XR_API, "kind": "XEcrPackages", "metadata": {"name": name},
        "spec": {
            "registry": {"accountId": "123456789012", "region": "us-east-1"},
            "packages": packages,
            "iam": {"enabled": True, "identity": "IRSA",
                    "oidcProvider": "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"},
        },
    }


def provider(repository: str, version: str, **extra) -> dict:
    return {"kind": "Provider", "repository": repository, "version": version, **extra}


def conditions(obj: dict | None) -> dict[str, str]:
    return cluster_script.conditions_of(obj or {})


def condition(obj: dict | None, kind: str) -> dict:
    for c in (obj or {}).get("status", {}).get("conditions", []) or []:
        if c["type"] == kind:
            return c
    return {}


def by_repository(cluster) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for p in cluster.packages():
        out.setdefault(cluster_script.repository_of(p["spec"]["package"]), []).append(p)
    return out


def controller(obj: dict) -> tuple[str, str] | None:
    for ref in obj["metadata"].get("ownerReferences", []) or []:
        if ref.get("controller"):
            return ref["kind"], ref["name"]
    return None


def status_entry(cluster, name: str, repository: str) -> dict:
    for entry in (cluster.xr(name) or {}).get("status", {}).get("packages", []) or []:
        if entry["repository"] == repository:
            return entry
    return {}


def ready(cluster, name: str) -> bool:
    return conditions(cluster.xr(name)).get("Ready") == "True"


def leftovers(cluster) -> list[str]:
    """Package objects, ImageConfigs and Usages still in the cluster (but the
    platform's own Function)."""
    out = [f"{p['kind']}/{p['metadata']['name']}" for p in cluster.packages()]
    for api_version, kind in (("pkg.crossplane.io/v1beta1", "ImageConfig"),
                              ("protection.crossplane.io/v1beta1", "ClusterUsage")):
        out += [f"{kind}/{o['metadata']['name']}" for o in cluster.kube.list(api_version, kind)]
    return out


def settled_lock(cluster) -> bool:
    """Crossplane's Lock lists no package but the platform's Function: its
    resolver has nothing left to reinstall."""
    return all(s.endswith("/" + cluster_script.FUNCTION) for s in cluster.lock_sources())


def clear_orphans(cluster) -> list[str]:
    """Deletes the package objects nobody controls once every XR is gone and
    the Lock is settled: what Crossplane's resolver reinstalled for a
    dependent still in its Lock while the garbage collector deleted an
    earlier test's XR's packages all at once (see README, Many XRs in one
    cluster). Returns what it deleted."""
    deleted = []
    for p in cluster.packages():
        if controller(p) is None and not p["metadata"].get("deletionTimestamp"):
            cluster.kube.delete(PKG, p["kind"], p["metadata"]["name"])
            deleted.append(f"{p['kind']}/{p['metadata']['name']}")
    return deleted


@pytest.fixture
def tenants(cluster):
    """XR names a test creates; deleted (with their packages) afterwards.
    An XR a failed test elsewhere left behind is deleted first, so one
    failure is reported once instead of as every test after it; and the
    test starts only once Crossplane's Lock has settled, with no package
    left that nobody controls."""
    stale = [o["metadata"]["name"] for o in cluster.kube.list(XR_API, "XEcrPackages")]
    for name in stale:
        cluster.kube.delete(XR_API, "XEcrPackages", name)
    cluster.wait("the XRs an earlier test left to go and Crossplane's Lock to settle",
                 lambda: not cluster.kube.list(XR_API, "XEcrPackages") and settled_lock(cluster), 600)
    orphans = clear_orphans(cluster)
    if orphans:
        print(f"tenants: deleted {orphans}, reinstalled by Crossplane's resolver after an XR was deleted")
    cluster.wait("the XRs an earlier test left to go",
                 lambda: not cluster.kube.list(XR_API, "XEcrPackages") and not leftovers(cluster)
                 and settled_lock(cluster), 600)
    names: list[str] = []
    yield names
    for name in names:
        if cluster.xr(name):
            cluster.kube.delete(XR_API, "XEcrPackages", name)
    cluster.wait("the tenants' XRs to go and Crossplane's Lock to settle",
                 lambda: all(cluster.xr(n) is None for n in names) and settled_lock(cluster), 600)
    orphans = clear_orphans(cluster)
    if orphans:
        print(f"tenants: deleted {orphans}, reinstalled by Crossplane's resolver after the tenants' XRs were deleted")
    cluster.wait("the tenants' XRs, packages, ImageConfigs and Usages to go",
                 lambda: all(cluster.xr(n) is None for n in names) and not leftovers(cluster), 600)


def create(cluster, tenants: list[str], obj: dict) -> str:
    name = obj["metadata"]["name"]
    tenants.append(name)
    cluster.kube.apply(obj)
    return name


def test_two_xrs_share_one_provider(cluster, tenants):
    """One XR lists provider-aws-s3, the other gets it as a Configuration's
    dependency: one Provider, controlled by the first; both Ready; the
    second says it shares it, and protects it with a ClusterUsage."""
    a = create(cluster, tenants, xr("team-a", [provider(S3, ">=v2.0.0")]))
    cluster.wait("team-a to be Ready", lambda: ready(cluster, a), 420, poke=a)
    b = create(cluster, tenants, xr("team-b", [{"kind": "Configuration", "repository": STORAGE,
                                                "version": "v1.0.0"}]))
    cluster.wait("team-b to be Ready", lambda: ready(cluster, b), 420, poke=b)

    repos = by_repository(cluster)
    for repo in (S3, FAMILY, STORAGE):
        assert len(repos.get(repo, [])) == 1, {r: [p["metadata"]["name"] for p in ps] for r, ps in repos.items()}
    (s3,) = repos[S3]
    assert controller(s3) == ("XEcrPackages", a), s3["metadata"].get("ownerReferences")
    (storage,) = repos[STORAGE]
    assert controller(storage) == ("XEcrPackages", b)
    assert status_entry(cluster, b, S3).get("sharedWith") == f"XEcrPackages/{a}"
    assert status_entry(cluster, b, S3).get("ready") is True
    usages = cluster.kube.list("protection.crossplane.io/v1beta1", "ClusterUsage")
    used = {u["spec"]["of"]["resourceRef"]["name"] for u in usages if controller(u) == ("XEcrPackages", b)}
    assert s3["metadata"]["name"] in used, used
    # One ImageConfig for the mirror, though both XRs are on Rewrite.
    assert len(cluster.kube.list("pkg.crossplane.io/v1beta1", "ImageConfig")) == 1


def test_deleting_the_owner_keeps_what_another_xr_uses(cluster, tenants):
    a = create(cluster, tenants, xr("owner", [provider(S3, ">=v2.0.0")]))
    cluster.wait("owner to be Ready", lambda: ready(cluster, a), 420, poke=a)
    b = create(cluster, tenants, xr("user", [{"kind": "Configuration", "repository": STORAGE,
                                              "version": "v1.0.0"}]))
    cluster.wait("user to be Ready", lambda: ready(cluster, b), 420, poke=b)
    (s3,) = by_repository(cluster)[S3]
    uid = s3["metadata"]["uid"]

    cluster.kube.delete(XR_API, "XEcrPackages", a)
    cluster.wait("the owner XR to go", lambda: cluster.xr(a) is None, 300)
    # The garbage collector tries to delete the owner's packages; the Usage
    # refuses it while the other XR uses them.
    deadline = time.time() + 45
    while time.time() < deadline:
        now = cluster.kube.read(PKG, "Provider", s3["metadata"]["name"])
        assert now and now["metadata"]["uid"] == uid and not now["metadata"].get("deletionTimestamp"), \
            "provider-aws-s3 went while another XR still uses it"
        time.sleep(3)
    assert conditions(cluster.kube.read(PKG, "Provider", s3["metadata"]["name"])).get("Healthy") == "True"

    # Once no XR uses it, it goes.
    cluster.kube.delete(XR_API, "XEcrPackages", b)
    cluster.wait("provider-aws-s3 to go once nothing uses it",
                 lambda: cluster.kube.read(PKG, "Provider", s3["metadata"]["name"]) is None, 420)


def test_an_xr_never_takes_over_what_it_did_not_create(cluster, tenants):
    """Package names that are another object's: this function's own Function
    (installed by the platform) and a Provider installed by hand. Neither
    object's controller, owner references or spec.package changes; the XR
    reports the conflict."""
    host = cluster.env["REGISTRY_HOST"]
    by_hand = {"apiVersion": PKG, "kind": "Provider", "metadata": {"name": "hand-installed-family"},
               "spec": {"package": f"{host}/{FAMILY}:v2.1.0"}}
    cluster.kube.apply(by_hand)
    try:
        function = cluster.kube.read(PKG, "Function", cluster_script.FUNCTION)
        before = {
            "function": (function["metadata"].get("ownerReferences"), function["spec"]["package"]),
            "provider": (None, by_hand["spec"]["package"]),
        }
        name = create(cluster, tenants, xr("intruder", [
            {"kind": "Function", "repository": "crossplane-contrib/function-patch-and-transform",
             "version": "v0.8.2", "name": cluster_script.FUNCTION},
            provider(FAMILY, "v2.2.0", name="hand-installed-family"),
        ]))

        def reported():
            resolved = condition(cluster.xr(name), "Resolved")
            return resolved.get("reason") == "Conflict" and cluster_script.FUNCTION in resolved.get("message", "") \
                and "hand-installed-family" in resolved.get("message", "") and resolved
        resolved = cluster.wait("the XR to report the conflicts", reported, 300, poke=name)
        assert "no controller" in resolved["message"], resolved
        time.sleep(10)  # a few more reconciles
        function = cluster.kube.read(PKG, "Function", cluster_script.FUNCTION)
        provider_now = cluster.kube.read(PKG, "Provider", "hand-installed-family")
        assert (function["metadata"].get("ownerReferences"), function["spec"]["package"]) == before["function"]
        assert (provider_now["metadata"].get("ownerReferences"), provider_now["spec"]["package"]) \
            == before["provider"]
        assert conditions(cluster.kube.read(PKG, "Function", cluster_script.FUNCTION)).get("Healthy") == "True"
        cluster.kube.delete(XR_API, "XEcrPackages", name)
        cluster.wait("the intruder to go", lambda: cluster.xr(name) is None, 300)
        # Deleting the XR deletes neither.
        assert cluster.kube.read(PKG, "Function", cluster_script.FUNCTION)
        assert cluster.kube.read(PKG, "Provider", "hand-installed-family")
    finally:
        cluster.kube.delete(PKG, "Provider", "hand-installed-family")


def test_incompatible_versions_leave_the_installed_one_alone(cluster, tenants):
    a = create(cluster, tenants, xr("pinned-old", [provider(S3, "v2.1.0")]))
    cluster.wait("pinned-old to be Ready", lambda: ready(cluster, a), 420, poke=a)
    (s3,) = by_repository(cluster)[S3]
    b = create(cluster, tenants, xr("wants-new", [provider(S3, "v2.2.0")]))

    def reported():
        resolved = condition(cluster.xr(b), "Resolved")
        return resolved.get("reason") == "Conflict" and resolved
    resolved = cluster.wait("wants-new to report the conflict", reported, 300, poke=b)
    for needle in (f"XEcrPackages/{a}", "provider-aws-s3:v2.1.0", "provider-aws-s3:v2.2.0"):
        assert needle in resolved["message"], (needle, resolved["message"])
    time.sleep(10)
    (now,) = by_repository(cluster)[S3]
    assert now["metadata"]["uid"] == s3["metadata"]["uid"]
    assert now["spec"]["package"] == s3["spec"]["package"]
    assert controller(now) == ("XEcrPackages", a)
    assert not ready(cluster, b)


def test_two_rewrite_xrs_share_one_image_config(cluster, tenants):
    a = create(cluster, tenants, xr("mirror-a", [
        {"kind": "Function", "repository": "crossplane-contrib/function-patch-and-transform",
         "version": "v0.8.2"}]))
    b = create(cluster, tenants, xr("mirror-b", [provider(FAMILY, "v2.2.0")]))
    cluster.wait("both XRs to be Ready", lambda: ready(cluster, a) and ready(cluster, b), 420, poke=b)
    configs = cluster.kube.list("pkg.crossplane.io/v1beta1", "ImageConfig")
    assert len(configs) == 1, [c["metadata"]["name"] for c in configs]
    assert controller(configs[0]) in {("XEcrPackages", a), ("XEcrPackages", b)}
