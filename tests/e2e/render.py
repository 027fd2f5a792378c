#!/usr/bin/env python3
"""Drive `crossplane render` (crank) through several reconciles, like a cluster.

`crank render` runs one reconcile: it sends the XR, the observed composed
resources and the Composition's input to the function and prints the desired
XR status and composed resources. function-ecr-packages composes in waves (IAM
and the ImageConfig first, then each package once what it needs is observed
ready), so one render shows only the first wave. This module plays
Crossplane's controllers between renders:

* every composed resource of the last render is "created" and its status is
  advanced as its controller would: managed resources (provider-aws) get
  ``Synced=True`` and ``Ready=True``; Provider/Function/Configuration packages
  get what Crossplane v2.2 writes once a revision of ``spec.package`` is
  active and healthy (``currentIdentifier`` = ``spec.package``,
  ``currentRevision``, ``Installed=True`` and ``Healthy=True`` with
  ``observedGeneration``), in one step rather than Crossplane's two (the
  revision's health is unknown for one pass first); an ImageConfig has no
  controller-set status to wait for; the activation policy lists every named
  definition it asks for as activated, and is Healthy;
* those objects are passed to the next render with ``--observed-resources``;
* the XR of the next render is the input XR (metadata, spec) carrying the
  status of the last render's XR, which is where the function keeps its memory
  (``status.packages``).

It stops when the rendered XR's ``Ready`` condition is ``True``, or after the
given number of rounds. crank (v2) prints the XR with ``status.conditions``:
``Ready`` is crank's own verdict (``Available`` when the function marks the
XR ready, or leaves that unset and marks every desired composed resource
ready; ``Creating`` otherwise), followed by the function's conditions
(here ``Resolved`` and ``PackagesHealthy``). ``--include-full-xr`` adds the
input's metadata and spec; ``--include-function-results`` adds the function's
results as ``kind: Result`` documents (both are passed);
``--include-context`` would add the pipeline context (not needed here).

As a library (tests/e2e/test_render.py)::

    r = Renderer(crank, "examples/composition.yaml", "examples/functions.yaml",
                 workdir, function_target="127.0.0.1:9443")
    rounds = r.run(load_xr("examples/xr.yaml"), max_rounds=6)

As a command (scripts/demo)::

    python tests/e2e/render.py --rounds 6 --function-target 127.0.0.1:9443 \\
        examples/xr.yaml examples/composition.yaml examples/functions.yaml

Credentials: when the Composition's pipeline names Secret credentials and no
``--function-credentials`` file is given, Secrets of those names are made up
from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (``testing`` by default, the
local ECR's), in the flat-key shape the function reads.

Only PyYAML is needed.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import yaml

RESOURCE_NAME = "crossplane.io/composition-resource-name"
PACKAGE_KINDS = frozenset({"Provider", "Function", "Configuration"})
PACKAGE_GROUP = "pkg.crossplane.io"
RENDER_GROUP = "render.crossplane.io"
# A fixed time, like crank's own, so rounds are byte-for-byte reproducible.
CONDITION_TIME = "2024-01-01T00:00:00Z"


# ------------------------------------------------------------------ YAML


def load_docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def dump_docs(docs: Iterable[dict]) -> str:
    return "".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in docs)


def load_xr(path: str | Path) -> dict:
    (xr,) = load_docs(Path(path).read_text())
    return xr


def group_of(obj: dict) -> str:
    api = obj.get("apiVersion", "")
    return api.split("/", 1)[0] if "/" in api else ""


def resource_name(obj: dict) -> str:
    return (obj.get("metadata", {}).get("annotations") or {}).get(RESOURCE_NAME, "")


def conditions(obj: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def is_package(obj: dict) -> bool:
    return group_of(obj) == PACKAGE_GROUP and obj.get("kind") in PACKAGE_KINDS


# ------------------------------------------------------------------ the "controllers"


def _condition(kind: str, reason: str, generation: int | None = None) -> dict:
    c = {"type": kind, "status": "True", "reason": reason, "lastTransitionTime": CONDITION_TIME}
    if generation is not None:
        c["observedGeneration"] = generation
    return c


def revision_name(name: str, package: str) -> str:
    """Crossplane's ``xpkg.FriendlyID(name, digest hex)`` for the revision of
    ``package``; a tag's digest is not known here, so a hash of the reference
    stands in for it."""
    digest = package.split("@sha256:", 1)[1] if "@sha256:" in package else hashlib.sha256(package.encode()).hexdigest()
    return to_dns_label(f"{name[:50]}-{digest[:12]}")


def to_dns_label(s: str) -> str:
    """Crossplane's ``xpkg.ToDNSLabel`` for ASCII input."""
    out = []
    for i, ch in enumerate(s):
        if ch.islower() and ch.isascii() or ch.isdigit() and ch.isascii():
            out.append(ch)
        if ch in "./:-" and i not in (0, 62, len(s) - 1):
            out.append("-")
        if i == 62:
            break
    return "".join(out).strip("-")


def advance(obj: dict) -> dict:
    """The object as its controller would leave it once it has done its job.

    A copy; what the function set (metadata, spec) is kept, the API server's
    uid and the controller's conditions are added.
    """
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    meta.setdefault("uid", f"uid-{resource_name(out) or meta.get('name', '')}")
    status = out.setdefault("status", {})
    if is_package(out):
        # The API server's generation; the function reads a status as
        # current only when its conditions were written for it and
        # currentIdentifier is spec.package.
        generation = meta.setdefault("generation", 1)
        status["conditions"] = [
            _condition("Installed", "ActivePackageRevision", generation),
            _condition("Healthy", "HealthyPackageRevision", generation),
        ]
        pkg = (out.get("spec") or {}).get("package", "")
        status["currentIdentifier"] = pkg
        status["currentRevision"] = revision_name(meta.get("name", ""), pkg)
        status.setdefault("resolvedPackage", pkg)
    elif out.get("kind") == "ManagedResourceActivationPolicy":
        # Crossplane's activation controller, with every named definition
        # installed (the IAM ones: as if provider-aws's IAM provider were):
        # each is activated and listed, sorted.
        named = [a for a in (out.get("spec") or {}).get("activate") or [] if "*" not in a]
        status["activated"] = sorted(named)
        status["conditions"] = [_condition("Healthy", "Running")]
    elif group_of(out) == PACKAGE_GROUP:
        # ImageConfig, DeploymentRuntimeConfig: no conditions to wait for.
        if not status:
            out.pop("status")
    else:
        status["conditions"] = [
            _condition("Synced", "ReconcileSuccess"),
            _condition("Ready", "Available"),
        ]
    return out


def iam_definitions() -> list[dict]:
    """provider-aws's IAM managed resource definitions, cluster-scoped and
    namespaced, as Crossplane reports them once active and established."""
    return [
        {"apiVersion": "apiextensions.crossplane.io/v1alpha1", "kind": "ManagedResourceDefinition",
         "metadata": {"name": f"{plural}.{group}"}, "spec": {"state": "Active"},
         "status": {"conditions": [_condition("Established", "EstablishedManagedResource")]}}
        for group in ("iam.aws.upbound.io", "iam.aws.m.upbound.io")
        for plural in ("roles", "policies", "rolepolicyattachments")
    ]


def next_xr(xr: dict, rendered_xr: dict) -> dict:
    """The XR as the API server would hold it after a reconcile: its metadata
    and spec, with the status the function just wrote."""
    out = copy.deepcopy(xr)
    if "status" in rendered_xr:
        out["status"] = copy.deepcopy(rendered_xr["status"])
    else:
        out.pop("status", None)
    return out


def credential_secrets(composition: dict, access_key: str, secret_key: str) -> list[dict]:
    """Secrets for the Composition's Secret credentials, in the flat-key shape."""
    out, seen = [], set()
    for step in (composition.get("spec") or {}).get("pipeline") or []:
        for cred in step.get("credentials") or []:
            ref = cred.get("secretRef") or {}
            key = (ref.get("namespace", ""), ref.get("name", ""))
            if cred.get("source") != "Secret" or not ref or key in seen:
                continue
            seen.add(key)
            b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": ref["name"], "namespace": ref.get("namespace", "")},
                    "type": "Opaque",
                    "data": {
                        "aws_access_key_id": b64(access_key),
                        "aws_secret_access_key": b64(secret_key),
                    },
                }
            )
    return out


# ------------------------------------------------------------------ rendering


class RenderError(RuntimeError):
    pass


@dataclass
class Round:
    """One `crank render`: its inputs' files and its parsed output."""

    index: int  # 1-based
    command: list[str]
    dir: Path
    output: str  # crank's stdout, the rendered YAML
    xr: dict  # the rendered XR (status; metadata and spec too with -x)
    composed: list[dict]  # composed resources, in crank's order (by resource name)
    results: list[dict] = field(default_factory=list)  # kind: Result
    observed: list[dict] = field(default_factory=list)  # what this render was given

    @property
    def names(self) -> list[str]:
        """Composition resource names of the composed resources."""
        return [resource_name(o) for o in self.composed]

    def get(self, name: str) -> dict:
        for o in self.composed:
            if resource_name(o) == name:
                return o
        raise KeyError(f"round {self.index} composed no {name!r}; it composed {self.names}")

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.composed if o.get("kind") == kind]

    def condition(self, kind: str) -> dict | None:
        return conditions(self.xr).get(kind)

    @property
    def ready(self) -> bool:
        c = self.condition("Ready")
        return bool(c) and c.get("status") == "True"

    def new_since(self, before: "Round | None") -> list[str]:
        old = set(before.names) if before else set()
        return [n for n in self.names if n not in old]


class Renderer:
    """Runs `crank render` for one XR, round after round."""

    def __init__(
        self,
        crank: str,
        composition: str | Path,
        functions: str | Path,
        workdir: str | Path,
        *,
        function_target: str | None = None,
        function_credentials: str | Path | None = None,
        xrd: str | Path | None = None,
        include_full_xr: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ):
        self.crank = crank
        self.composition = Path(composition)
        self.functions = Path(functions)
        self.workdir = Path(workdir)
        self.function_target = function_target
        self.xrd = Path(xrd) if xrd else None
        self.include_full_xr = include_full_xr
        self.env = env
        self.timeout = timeout
        self.workdir.mkdir(parents=True, exist_ok=True)
        if function_credentials:
            self.function_credentials: Path | None = Path(function_credentials)
        else:
            comp = load_xr(self.composition)
            secrets = credential_secrets(
                comp,
                os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            )
            self.function_credentials = None
            if secrets:
                self.function_credentials = self.workdir / "function-credentials.yaml"
                self.function_credentials.write_text(dump_docs(secrets))

    def command(self, xr_file: Path, observed_file: Path | None) -> list[str]:
        cmd = [self.crank, "render", str(xr_file), str(self.composition), str(self.functions)]
        cmd.append("--include-function-results")
        # What the function asks Crossplane for by name before it first
        # composes IAM: provider-aws's IAM definitions, active and
        # established (as the activation policy advance() reports them).
        required = self.workdir / "required-resources.yaml"
        if not required.exists():
            required.write_text(dump_docs(iam_definitions()))
        cmd += ["--required-resources", str(required)]
        if self.include_full_xr:
            cmd.append("--include-full-xr")
        if observed_file is not None:
            cmd += ["--observed-resources", str(observed_file)]
        if self.function_credentials is not None:
            cmd += ["--function-credentials", str(self.function_credentials)]
        if self.xrd is not None:
            cmd += ["--xrd", str(self.xrd)]
        if self.function_target:
            cmd += [
                "--function-annotations", "render.crossplane.io/runtime=Development",
                "--function-annotations",
                f"render.crossplane.io/runtime-development-target={self.function_target}",
            ]
        return cmd

    def render(self, index: int, xr: dict, observed: list[dict]) -> Round:
        d = self.workdir / f"round-{index}"
        d.mkdir(parents=True, exist_ok=True)
        xr_file = d / "xr.yaml"
        xr_file.write_text(dump_docs([xr]))
        observed_file = None
        if observed:
            observed_file = d / "observed.yaml"
            observed_file.write_text(dump_docs(observed))
        cmd = self.command(xr_file, observed_file)
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout, env=self.env)
        (d / "output.yaml").write_text(res.stdout)
        (d / "stderr.txt").write_text(res.stderr)
        if res.returncode != 0:
            raise RenderError(
                f"round {index}: crank render exited {res.returncode}\n$ {' '.join(cmd)}\n{res.stderr}{res.stdout}"
            )
        docs = load_docs(res.stdout)
        results = [o for o in docs if group_of(o) == RENDER_GROUP]
        rest = [o for o in docs if group_of(o) != RENDER_GROUP]
        xr_out = [o for o in rest if o.get("kind") == xr.get("kind") and o.get("apiVersion") == xr.get("apiVersion")]
        if len(xr_out) != 1:
            raise RenderError(f"round {index}: expected one {xr.get('kind')} in crank's output, got {len(xr_out)}")
        composed = [o for o in rest if o is not xr_out[0]]
        return Round(index, cmd, d, res.stdout, xr_out[0], composed, results, observed)

    def run(self, xr: dict, max_rounds: int, *, until_ready: bool = True, extra_rounds: int = 0) -> list[Round]:
        """Renders until the XR is Ready (then `extra_rounds` more) or `max_rounds`."""
        rounds: list[Round] = []
        observed: list[dict] = []
        current = copy.deepcopy(xr)
        extra = None
        for i in range(1, max_rounds + 1):
            r = self.render(i, current, observed)
            rounds.append(r)
            if until_ready:
                if extra is None and r.ready:
                    extra = extra_rounds
                if extra is not None:
                    if extra == 0:
                        break
                    extra -= 1
            observed = [advance(o) for o in r.composed]
            current = next_xr(xr, r.xr)
        return rounds


# ------------------------------------------------------------------ command line


def describe(r: Round, before: Round | None) -> str:
    lines = []
    new = set(r.new_since(before))
    conds = ", ".join(
        f"{t}={c.get('status')}" + (f" ({c.get('reason')})" if c.get("reason") else "")
        for t, c in conditions(r.xr).items()
    )
    lines.append(f"# wave {r.index}: {r.xr.get('kind')}/{r.xr.get('metadata', {}).get('name')}: {conds}")
    for o in r.composed:
        mark = "+" if resource_name(o) in new else " "
        spec = o.get("spec") or {}
        extra = f"  {spec['package']}" if "package" in spec else ""
        lines.append(
            f"  {mark} {o.get('apiVersion')} {o.get('kind')} {o.get('metadata', {}).get('name')}"
            f"  [{resource_name(o)}]{extra}"
        )
    for p in (r.xr.get("status") or {}).get("packages") or []:
        lines.append(
            f"    package {p.get('name')} {p.get('version')} ready={p.get('ready')}"
            f" dependsOn={p.get('dependsOn') or []}"
        )
    for res in r.results:
        lines.append(f"    result {res.get('severity')}: {res.get('message')}")
    return "\n".join(lines)


def find_crank() -> str | None:
    if os.environ.get("CRANK"):
        return os.environ["CRANK"]
    found = shutil.which("crank") or shutil.which("crossplane")
    if found:
        return found
    gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True).stdout.strip() if shutil.which("go") else ""
    cand = Path(gopath) / "bin" / "crank" if gopath else None
    return str(cand) if cand and cand.is_file() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Render an XR with crank through every wave, advancing composed resources' statuses between rounds.",
    )
    ap.add_argument("xr")
    ap.add_argument("composition")
    ap.add_argument("functions")
    ap.add_argument("--rounds", type=int, default=6, help="at most this many renders (default 6)")
    ap.add_argument("--crank", default=None, help="crank binary (default: $CRANK, PATH, $GOPATH/bin/crank)")
    ap.add_argument("--function-target", default=None, help="host:port of the function, served with --insecure")
    ap.add_argument("--function-credentials", default=None, help="Secrets for the pipeline's credentials")
    ap.add_argument("--xrd", default=None, help="the XRD, for crank to default the XR")
    ap.add_argument("--workdir", default=None, help="keep each round's files here (default: a temp dir)")
    ap.add_argument("--quiet", action="store_true", help="only the final YAML")
    args = ap.parse_args(argv)

    crank = args.crank or find_crank()
    if not crank:
        print("render.py: no crank found (set CRANK or put crank on PATH)", file=sys.stderr)
        return 2
    import tempfile

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="render-"))
    renderer = Renderer(
        crank,
        args.composition,
        args.functions,
        workdir,
        function_target=args.function_target,
        function_credentials=args.function_credentials,
        xrd=args.xrd,
    )
    try:
        rounds = renderer.run(load_xr(args.xr), args.rounds)
    except RenderError as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        before = None
        for r in rounds:
            print(describe(r, before))
            before = r
        print(f"# final render (wave {rounds[-1].index}), files in {workdir}")
    sys.stdout.write(rounds[-1].output)
    if not rounds[-1].ready:
        print(f"render.py: XR not Ready after {len(rounds)} rounds", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
