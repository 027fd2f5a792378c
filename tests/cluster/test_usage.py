"""Crossplane's deletion protection on this control plane: a ClusterUsage (or
a legacy apiextensions.crossplane.io Usage) of a Provider makes Crossplane
label the Provider crossplane.io/in-use=true, and its webhook
(nousages.protection.crossplane.io, served by `core start` and reached by
the kube-apiserver over loopback, see scripts/cluster.py) refuses the
Provider's DELETE until the Usage is gone. The Providers here name a package
nobody publishes: protection needs the object, not an installed provider.
Each test deletes what it made.
"""

from __future__ import annotations

import json
import time

import pytest

from clusterlib import cluster_script

PKG = "pkg.crossplane.io/v1"
IN_USE = "crossplane.io/in-use"
DELETION_ATTEMPT = "usage.crossplane.io/deletion-attempt-with-policy"
WEBHOOK = "nousages.protection.crossplane.io"


@pytest.fixture
def made(cluster):
    """Objects to delete after the test, usages first (their finalizer goes
    once Crossplane has taken the in-use label off what they protect)."""
    objs: list[tuple[str, str, str]] = []
    yield objs
    kube = cluster.kube
    for api_version, kind, name in sorted(objs, key=lambda o: o[1] == "Provider"):
        kube.delete(api_version, kind, name)
        cluster.wait(f"{kind} {name} to go", lambda: kube.read(api_version, kind, name) is None, 120)


def provider(cluster, made, name: str) -> dict:
    obj = cluster.kube.apply({
        "apiVersion": PKG, "kind": "Provider", "metadata": {"name": name},
        "spec": {"package": f"{cluster.env['REGISTRY_HOST']}/test/{name}:v0.1.0"}})
    made.append((PKG, "Provider", name))
    return obj


def usage(cluster, made, api_version: str, kind: str, name: str, spec: dict) -> None:
    cluster.kube.apply({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec})
    made.append((api_version, kind, name))


def of(name: str) -> dict:
    return {"apiVersion": PKG, "kind": "Provider", "resourceRef": {"name": name}}


def in_use(cluster, name: str) -> bool:
    obj = cluster.kube.read(PKG, "Provider", name) or {}
    return (obj.get("metadata", {}).get("labels") or {}).get(IN_USE) == "true"


def refused(cluster, name: str) -> str:
    """Deletes the Provider, expecting the webhook to refuse; its message."""
    with pytest.raises(cluster_script.KubeError) as e:
        cluster.kube.request("DELETE", cluster.kube.path(PKG, "Provider", name))
    assert e.value.status == 409, e.value.body
    message = json.loads(e.value.body)["message"]
    assert message.startswith(f'admission webhook "{WEBHOOK}" denied the request: '
                              "This resource is in-use by 1 usage(s)"), message
    obj = cluster.kube.read(PKG, "Provider", name)
    assert obj and not obj["metadata"].get("deletionTimestamp"), obj
    # The webhook records the refused attempt, for replayDeletion.
    assert obj["metadata"].get("annotations", {}).get(DELETION_ATTEMPT) == "Background", obj["metadata"]
    return message


@pytest.mark.parametrize("api_version,kind", [
    ("protection.crossplane.io/v1beta1", "ClusterUsage"),
    ("apiextensions.crossplane.io/v1beta1", "Usage"),  # the legacy, deprecated one
])
def test_a_usage_protects_a_provider_until_it_is_deleted(cluster, made, api_version, kind):
    kube = cluster.kube
    name = f"usage-protected-{kind.lower()}"
    provider(cluster, made, name)
    usage(cluster, made, api_version, kind, f"protect-{name}",
          {"of": of(name), "reason": "tests/cluster/test_usage.py protects it"})
    cluster.wait(f"{kind} to label the Provider in use", lambda: in_use(cluster, name), 60)
    cluster.wait(f"the {kind} to be Ready", lambda: cluster_script.conditions_of(
        kube.read(api_version, kind, f"protect-{name}") or {}).get("Ready") == "True", 60)

    message = refused(cluster, name)
    assert f'"protect-{name}" with reason: "tests/cluster/test_usage.py protects it"' in message, message
    # Again, with a foreground deletion: still refused, and recorded.
    with pytest.raises(cluster_script.KubeError) as again:
        kube.delete(PKG, "Provider", name, propagation="Foreground")
    assert again.value.status == 409
    assert kube.read(PKG, "Provider", name)["metadata"]["annotations"][DELETION_ATTEMPT] == "Foreground"

    # The Usage goes once Crossplane has taken the label off; then the
    # Provider can be deleted (and, without replayDeletion, is not deleted
    # for us).
    kube.delete(api_version, kind, f"protect-{name}")
    cluster.wait(f"the {kind} to go", lambda: kube.read(api_version, kind, f"protect-{name}") is None, 60)
    assert not in_use(cluster, name)
    time.sleep(3)
    assert kube.read(PKG, "Provider", name) is not None
    kube.delete(PKG, "Provider", name)
    cluster.wait("the Provider to go", lambda: kube.read(PKG, "Provider", name) is None, 60)


def test_deleting_the_user_replays_the_refused_deletion(cluster, made):
    """spec.by: the ClusterUsage is owned by the using Provider, so the
    garbage collector deletes it with its user; with replayDeletion Crossplane
    then deletes the used Provider with the policy of the refused attempt."""
    kube = cluster.kube
    used, user, name = "usage-used", "usage-user", "usage-user-uses-used"
    provider(cluster, made, used)
    user_uid = provider(cluster, made, user)["metadata"]["uid"]
    usage(cluster, made, "protection.crossplane.io/v1beta1", "ClusterUsage", name,
          {"of": of(used), "by": of(user), "replayDeletion": True})

    def owned():
        u = kube.read("protection.crossplane.io/v1beta1", "ClusterUsage", name) or {}
        return in_use(cluster, used) and any(
            o["uid"] == user_uid for o in u.get("metadata", {}).get("ownerReferences", []) or [])
    cluster.wait("the ClusterUsage to be owned by its user and the used Provider labelled", owned, 60)

    message = refused(cluster, used)
    assert message.endswith(f'ClusterUsage "{name}" by resource Provider/{user}.'), message

    kube.delete(PKG, "Provider", user)
    cluster.wait("the garbage collector to delete the ClusterUsage with its user", lambda: kube.read(
        "protection.crossplane.io/v1beta1", "ClusterUsage", name) is None, 120)
    cluster.wait("Crossplane to replay the used Provider's deletion",
                 lambda: kube.read(PKG, "Provider", used) is None, 60)
