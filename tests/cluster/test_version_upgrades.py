"""Upgrades with automatic rollback (issue 24) on the real control plane.

A release of provider-family-aws whose runtime never reports healthy (the
stand-in writes RuntimeHealthy=False for it, see `publish` in
scripts/cluster.py) satisfies provider-aws-s3's dependency, so the function
rolls the family Provider out to it; when its health grace runs out the
function sets spec.package back, Crossplane v2.2 reactivates the revision it
kept (revisionHistoryLimit) while v2.4 makes a new revision of the old
release (see REVISION_PER_GENERATION), the release is quarantined on the XR,
and the next good release is rolled out. Meanwhile provider-aws-s3 is sampled every
second: it may not stay anything but Healthy for longer than the progress
deadline, and nothing the XR composed may be deleted or recreated.

The Composition's upgrade policy (and tag cache TTL) is shortened for this
file only and restored after. The file sorts after the others (pytest runs
files in name order): the releases it publishes stay in the registry for the
rest of the session, so no other file sees them.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import time

import pytest

from clusterlib import XR_API, cluster_script
from test_cluster import assert_nothing_lost, warnings_about

XR = "upgrades"
FAMILY = "upbound/provider-family-aws"
S3 = "upbound/provider-aws-s3"
PKG = "pkg.crossplane.io/v1"
# Short enough for a test, long enough for Crossplane on a loaded machine: a
# revision of a good release turns healthy within seconds here.
DEADLINE = 90.0
GRACE = 20.0
# Crossplane v2.2 and v2.4 differ here (v2.2 -> v2.4 difference: revision
# naming): v2.2 names a package's revision by the package digest alone
# (xpkg.FriendlyID(name, digest)), so setting spec.package back to the old
# release reactivates the revision it kept. v2.4 names it by the digest AND
# the package's metadata.generation (sha256(digest|generation), Crossplane
# PR "packageRevisionID", internal/controller/pkg/manager), so the rollback,
# a spec change, makes a new revision of the old release, and the kept one
# stays Inactive. On v2.4 the test checks that the family is back on the old
# release's digest on a new Active revision instead.
POLICY = {"maxInFlight": 1, "progressDeadline": f"{DEADLINE:.0f}s", "healthyGrace": f"{GRACE:.0f}s",
          "quarantine": "1h", "allowPause": True, "windows": []}


def xr() -> dict:
    """An XR asking for provider-aws-s3 by range: the family comes as its
    dependency (">= 0.0.0"), which every new family release satisfies."""
    return {
        "apiVersion": XR_API, "kind": "XEcrPackages", "metadata": {"name": XR},
        "spec": {
            "registry": {"accountId": "123456789012", "region": "us-east-1"},
            "packages": [{"kind": "Provider", "repository": S3, "version": ">=v2.0.0"}],
            "iam": {"enabled": True, "identity": "IRSA",
                    "oidcProvider": "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"},
        },
    }


def condition(obj: dict | None, kind: str) -> dict:
    for c in (obj or {}).get("status", {}).get("conditions", []) or []:
        if c["type"] == kind:
            return c
    return {}


def on_its_reference(pkg: dict | None) -> bool:
    """What the function calls a package on its spec.package: Crossplane's
    current identifier is it, and Installed and Healthy are True for this
    generation."""
    if not pkg:
        return False
    generation = pkg["metadata"].get("generation")
    return pkg.get("status", {}).get("currentIdentifier") == pkg["spec"]["package"] and all(
        condition(pkg, kind).get("status") == "True" and condition(pkg, kind).get("observedGeneration") == generation
        for kind in ("Installed", "Healthy"))


def names(reference: str, version: str, digest: str | None = None) -> bool:
    """Whether a package reference names the release (by tag or digest)."""
    _, tag, at = cluster_script.parse_reference(reference or "")
    return tag == version or (digest is not None and at == digest)


def revision_per_generation(cluster) -> bool:
    """Whether this Crossplane names revisions by digest and generation
    (v2.4 and later) rather than by digest alone (v2.2)."""
    return cluster_script.version_tuple(cluster.env.get("CROSSPLANE_VERSION", "v2.2.0")) >= (2, 4)


def revision_of_release(rev: dict | None, reference: str) -> bool:
    """Whether a revision is of the release reference names: its image or
    its resolved package names the same digest (or the same tag when the
    reference has no digest)."""
    if not rev:
        return False
    _, tag, digest = cluster_script.parse_reference(reference)
    for ref in (rev.get("spec", {}).get("image"), rev.get("status", {}).get("resolvedPackage")):
        _, rtag, rdigest = cluster_script.parse_reference(ref or "")
        if (digest and rdigest == digest) or (not digest and tag and rtag == tag):
            return True
    return False


def next_versions(cluster) -> tuple[str, str]:
    """Two new patch releases of the family after every release seeded so far
    (a reused cluster may hold an earlier run's)."""
    seeded = json.loads((cluster.state / "seeded.json").read_text())
    releases = [tuple(int(n) for n in m.groups()) for tag in seeded.get(FAMILY, {})
                if (m := re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", tag))]
    major, minor, patch = max(releases)
    return f"v{major}.{minor}.{patch + 1}", f"v{major}.{minor}.{patch + 2}"


def package(kube, repository: str) -> dict | None:
    for obj in cluster_script.packages(kube):
        if cluster_script.repository_of(obj["spec"]["package"]) == repository:
            return obj
    return None


def quarantined(xr_obj: dict | None, version: str) -> dict:
    for entry in (xr_obj or {}).get("status", {}).get("quarantined", []) or []:
        if str(entry.get("version", "")).lstrip("v") == version.lstrip("v"):
            return entry
    return {}


def family_entry(xr_obj: dict | None) -> dict:
    for entry in (xr_obj or {}).get("status", {}).get("packages", []) or []:
        if entry.get("repository") == FAMILY:
            return entry
    return {}


class Sampler:
    """Reads provider-aws-s3, the family Provider and the XR once a second,
    on a thread of its own (its own API client), and keeps what changed."""

    def __init__(self, cluster):
        self.kube = cluster_script.Kube.from_state(cluster.state)
        self.samples: list[tuple[float, dict]] = []
        self.errors: list[str] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self) -> dict:
        s3 = package(self.kube, S3)
        family = package(self.kube, FAMILY)
        xr_obj = self.kube.read(XR_API, "XEcrPackages", XR)
        upgraded = condition(xr_obj, "Upgraded")
        return {
            "s3": condition(s3, "Healthy").get("status", "missing") if s3 else "missing",
            "family": (family or {}).get("spec", {}).get("package", "missing").rsplit("/", 1)[-1],
            "familyCurrent": (family or {}).get("status", {}).get("currentIdentifier", "").rsplit("/", 1)[-1],
            "familyRevision": (family or {}).get("status", {}).get("currentRevision"),
            "familyHealthy": condition(family, "Healthy").get("status"),
            "rollout": family_entry(xr_obj).get("rollout"),
            "upgraded": f"{upgraded.get('status')}/{upgraded.get('reason')}" if upgraded else None,
            "quarantined": [e.get("version") for e in (xr_obj or {}).get("status", {}).get("quarantined", [])
                            or []],
        }

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.samples.append((time.time(), self.sample()))
            except Exception as e:  # noqa: BLE001 - a missed sample is reported, not fatal
                self.errors.append(f"{time.time():.0f}: {e}")
            self.stopped.wait(1.0)

    def __enter__(self) -> "Sampler":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(10)

    def longest(self, key: str, value: str) -> tuple[float, float]:
        """The longest stretch (seconds, and when it began) during which
        samples[key] was anything but value; a stretch still open at the
        last sample counts up to it."""
        longest, began_at, began = 0.0, 0.0, None
        for t, s in self.samples:
            if s[key] != value and began is None:
                began = t
            elif s[key] == value and began is not None:
                if t - began > longest:
                    longest, began_at = t - began, began
                began = None
        if began is not None and self.samples and self.samples[-1][0] - began > longest:
            longest, began_at = self.samples[-1][0] - began, began
        return longest, began_at

    def timeline(self, since: float) -> str:
        """The samples at which something changed, relative to since."""
        lines, last = [], None
        for t, s in self.samples:
            if s != last:
                lines.append(f"  t={t - since:+6.0f}s {json.dumps(s)}")
                last = s
        return "\n".join(lines[-60:] + [f"  sampler errors: {self.errors[-5:]}"] * bool(self.errors))


def describe(cluster, sampler: Sampler | None = None, since: float = 0) -> str:
    """What a failure message needs: the XR's conditions and status, the
    package objects and revisions, the function's log lines about this XR or
    rollouts, and the sampled timeline."""
    xr_obj = cluster.xr(XR) or {}
    out = ["XR conditions:"]
    out += [f"  {c['type']}={c['status']} {c.get('reason', '')}: {c.get('message', '')}"
            for c in xr_obj.get("status", {}).get("conditions", []) or []]
    status = {k: v for k, v in xr_obj.get("status", {}).items() if k != "conditions"}
    out.append(f"XR status: {json.dumps(status)}")
    for repo in (FAMILY, S3):
        obj = package(cluster.kube, repo) or {}
        out.append(f"{repo}: generation {obj.get('metadata', {}).get('generation')} spec.package "
                   f"{obj.get('spec', {}).get('package')} status "
                   f"{json.dumps({k: v for k, v in obj.get('status', {}).items() if k != 'appliedImageConfigRefs'})}")
    for rev in cluster.kube.list(PKG, "ProviderRevision"):
        conds = {c["type"]: f"{c['status']} {c.get('message', '')[:80]}" for c in rev.get("status", {}).get(
            "conditions", []) or []}
        out.append(f"revision {rev['metadata']['name']} {rev['spec'].get('desiredState')} "
                   f"{rev['spec'].get('image')} {conds}")
    log = cluster.state / "logs" / "function.log"
    if log.exists():
        lines = [line for line in log.read_text(errors="replace").splitlines()
                 if re.search(rf"rollout|roll(ed|ing)? ?back|quarantin|upgrade|\b{XR}\b|\"(WARN|ERROR)\"", line,
                              re.I)]
        # A line repeated on every call is shown once, with its count.
        runs: list[list] = []
        for line in lines:
            text = re.sub(r'"timestamp":"[^"]*",?', "", line)
            if runs and runs[-1][0] == text:
                runs[-1][1] += 1
            else:
                runs.append([text, 1, line])
        out.append("function log (warnings, and lines about rollouts or this XR; last 30):")
        out += [f"  {last[:400]}" + (f" (and {n - 1} times before)" if n > 1 else "") for _, n, last in runs[-30:]]
    if sampler is not None:
        out.append("samples (changes):")
        out.append(sampler.timeline(since))
    return "\n".join(out)


def until(cluster, what: str, check, timeout: float, sampler: Sampler | None = None, since: float = 0):
    """Polls check() until truthy, editing the XR every 20 s (Crossplane's
    circuit breaker, as cluster.wait); fails with describe(), at once when
    the function refuses its input (nothing will change until it is
    edited)."""
    deadline = time.time() + timeout
    poked = time.time()
    while time.time() < deadline:
        if time.time() - poked > 20 and cluster.xr(XR):
            cluster.poke(XR)
            poked = time.time()
        synced = condition(cluster.xr(XR), "Synced")
        if synced.get("status") == "False" and "invalid function input" in synced.get("message", ""):
            pytest.fail(f"the function refuses the input while waiting for {what}\n"
                        f"{describe(cluster, sampler, since)}")
        result = check()
        if result:
            return result
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{describe(cluster, sampler, since)}")


def leftovers(cluster) -> list[str]:
    return [f"{p['kind']}/{p['metadata']['name']}" for p in cluster.packages()]


@pytest.fixture
def policy(cluster):
    """The Composition with this file's upgrade policy and a 5 s tag cache
    (new tags are seen at once), and no XR but the one the test creates;
    afterwards the XR and its packages are gone and the Composition is the
    one the other files use, pass or fail."""
    for obj in cluster.kube.list(XR_API, "XEcrPackages"):
        cluster.kube.delete(XR_API, "XEcrPackages", obj["metadata"]["name"])
    cluster.wait("the XRs an earlier test left to go",
                 lambda: not cluster.kube.list(XR_API, "XEcrPackages") and not leftovers(cluster), 600)
    cluster.kube.apply(cluster_script.composition(cluster.state,
                                                  overrides={"upgrades": POLICY, "tagCacheTTL": "5s"}))
    try:
        yield POLICY
    finally:
        try:
            if cluster.xr(XR):
                cluster.kube.delete(XR_API, "XEcrPackages", XR)
            cluster.wait("the upgrades XR and its packages to go",
                         lambda: cluster.xr(XR) is None and not leftovers(cluster), 600)
        finally:
            cluster.kube.apply(cluster_script.composition(cluster.state))


def test_a_release_that_never_turns_healthy_is_rolled_back_and_quarantined(cluster, policy):
    kube = cluster.kube
    bad, good = next_versions(cluster)
    cluster.kube.apply(xr())
    until(cluster, "the XR to be Ready with provider-family-aws and provider-aws-s3 on their references",
          lambda: condition(cluster.xr(XR), "Ready").get("status") == "True"
          and on_its_reference(package(kube, FAMILY)) and on_its_reference(package(kube, S3)), 600)
    family = package(kube, FAMILY)
    name, old_reference = family["metadata"]["name"], family["spec"]["package"]
    old_revision = family["status"]["currentRevision"]
    before = cluster.uids(XR)
    assert not names(old_reference, bad) and not names(old_reference, good), old_reference

    with Sampler(cluster) as sampler:
        started = time.time()
        bad_digest = cluster.publish(FAMILY, bad, unhealthy=True)

        # Rolled out: the function moves the family to the new release.
        until(cluster, f"the function to roll {name} out to {bad}",
              lambda: names((kube.read(PKG, "Provider", name) or {}).get("spec", {}).get("package"), bad,
                            bad_digest), 180, sampler, started)
        rolled_out = time.time()

        # Rolled back: spec.package is the old reference again, Crossplane
        # has reactivated the revision it kept (v2.2) or made a new one of
        # the old release (v2.4, REVISION_PER_GENERATION above) and the
        # family is on it, and the XR names the release as quarantined.
        per_generation = revision_per_generation(cluster)

        def rolled_back():
            now = kube.read(PKG, "Provider", name) or {}
            current = now.get("status", {}).get("currentRevision")
            if per_generation:
                rev = kube.read(PKG, "ProviderRevision", current) if current else None
                on_old = current != old_revision and revision_of_release(rev, old_reference)
            else:
                rev = kube.read(PKG, "ProviderRevision", old_revision)
                on_old = current == old_revision
            return now.get("spec", {}).get("package") == old_reference and on_its_reference(now) \
                and on_old and (rev or {}).get("spec", {}).get("desiredState") == "Active" \
                and quarantined(cluster.xr(XR), bad)
        until(cluster, f"{name} to be rolled back from {bad} to {old_reference} (revision "
              f"{'a new revision of it' if per_generation else old_revision} active) and the XR to quarantine it",
              rolled_back, GRACE + DEADLINE + 120, sampler, started)
        rolled_back_at = time.time()

        xr_obj = cluster.xr(XR)
        entry = quarantined(xr_obj, bad)

        def context() -> str:
            return f"\n{describe(cluster, sampler, started)}"
        assert entry.get("digest") == bad_digest, f"quarantined {entry}, published {bad_digest}{context()}"
        assert entry.get("name") == name or cluster_script.repository_of(str(entry.get("name"))) == FAMILY, \
            f"quarantined {entry}, the package is {name}{context()}"
        assert entry.get("reason"), f"quarantined {entry}{context()}"
        expires = datetime.datetime.fromisoformat(str(entry.get("until")).replace("Z", "+00:00"))
        left = expires.timestamp() - time.time()
        assert 30 * 60 < left <= 3600 + 60, f"quarantined until {entry.get('until')} ({left:.0f}s){context()}"
        upgraded = condition(xr_obj, "Upgraded")
        assert (upgraded.get("status"), upgraded.get("reason")) == ("False", "RolledBack"), \
            f"Upgraded is {upgraded}{context()}"
        assert warnings_about(cluster, XR, bad, started), f"no Warning event on the XR names {bad}{context()}"
        bad_revisions = [r for r in kube.list(PKG, "ProviderRevision")
                         if r["metadata"].get("labels", {}).get("pkg.crossplane.io/package") == name
                         and names(r["spec"].get("image"), bad, bad_digest)]
        assert bad_revisions and all(r["spec"]["desiredState"] == "Inactive" for r in bad_revisions), \
            f"{bad}'s revision is not Inactive{context()}"
        assert_nothing_lost(cluster, XR, before, f"rolling {name} back from {bad}")
        if per_generation:
            # v2.4: the revision kept from before the rollout is not reused.
            kept = kube.read(PKG, "ProviderRevision", old_revision)
            assert kept is None or kept["spec"]["desiredState"] == "Inactive", \
                f"{old_revision} is {kept['spec']['desiredState']} after the rollback on v2.4{context()}"

        # Quarantined: the release still satisfies the dependency, the tag
        # cache is 5 s, and the function still leaves the family where it is.
        cluster.poke(XR)
        held = time.time() + 30
        while time.time() < held:
            now = kube.read(PKG, "Provider", name) or {}
            assert now.get("spec", {}).get("package") == old_reference, \
                f"{name} left {old_reference} while {bad} is quarantined{context()}"
            time.sleep(1)

        # The next good release is rolled out.
        good_digest = cluster.publish(FAMILY, good)
        good_published = time.time()

        def upgraded_to_good():
            now = kube.read(PKG, "Provider", name) or {}
            return names(now.get("spec", {}).get("package"), good, good_digest) and on_its_reference(now) \
                and condition(cluster.xr(XR), "Upgraded").get("status") == "True"
        until(cluster, f"{name} to be on {good} and Upgraded True", upgraded_to_good, DEADLINE + 180, sampler,
              started)
        upgraded_at = time.time()
        assert quarantined(cluster.xr(XR), bad), f"{bad} left quarantine{context()}"
        assert_nothing_lost(cluster, XR, before, f"rolling {name} out to {good}")
        time.sleep(2)  # a last sample or two after the episode

    timeline = sampler.timeline(started)
    # Back on the old release within the deadline of leaving it (the grace
    # runs out first: the new revision is Installed and unhealthy at once).
    assert rolled_back_at - rolled_out <= DEADLINE, \
        f"{name} was back on {old_reference} {rolled_back_at - rolled_out:.0f}s after the rollout\n{timeline}"
    s3_longest, s3_began = sampler.longest("s3", "True")
    assert s3_longest <= DEADLINE, (f"provider-aws-s3 was not Healthy for {s3_longest:.0f}s from "
                                    f"t={s3_began - started:+.0f}s, longer than the {DEADLINE:.0f}s deadline\n"
                                    f"{timeline}")
    # The XR showed the family in motion towards the bad release.
    assert any(s["rollout"] and bad in json.dumps(s["rollout"]) for _, s in sampler.samples), \
        f"status.packages[] never showed {name}'s rollout to {bad}\n{timeline}"
    family_longest, _ = sampler.longest("familyHealthy", "True")
    print(f"\nupgrades: rolled out {rolled_out - started:.0f}s after publishing {bad}, rolled back "
          f"{rolled_back_at - rolled_out:.0f}s later; {good} rolled out {upgraded_at - good_published:.0f}s after "
          f"publishing; provider-aws-s3 at most {s3_longest:.0f}s not Healthy, the family "
          f"{family_longest:.0f}s\n{timeline}")
