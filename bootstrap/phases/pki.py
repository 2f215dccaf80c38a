"""Phase 2, the guide's etcd-cert.sh / k8s-cert.sh: certificates made here (the bootstrap/pki package), copied out.

The PKI is generated on this machine into <state>/pki; every host gets its files at the guide's
paths over SSH, keys 0600. A CA on a host that differs from ours is never replaced without
--replace-ca (the engine's ``File.ca``), as pki.py never replaces the local one.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from kubeproof import layout
from kubeproof.bootstrap import pki
from kubeproof.bootstrap.content import Content
from kubeproof.bootstrap.context import RunContext
from kubeproof.bootstrap.engine import Directory, File, Resource
from kubeproof.bootstrap.phases import Phase
from kubeproof.inventory import HostSpec

NAME = "pki"


def units_using(path: str, host: HostSpec) -> tuple[str, ...]:
    """Which daemons read a PKI file on this host: they restart when it changes."""
    name = path.rsplit("/", 1)[-1]
    units: list[str] = []
    if path.startswith(layout.ETCD_SSL + "/"):
        if host.has_role("etcd") and name != "ca-key.pem":
            units.append("etcd.service")
        if host.has_role("master") and name != "ca-key.pem":
            units.append("kube-apiserver.service")
        if host.has_role("node") and name != "ca-key.pem":
            units.append("flanneld.service")
    elif path.startswith(layout.K8S_SSL + "/"):
        if host.has_role("master"):
            if name in ("ca.pem", "apiserver.pem", "apiserver-key.pem", "sa.pem"):
                units.append("kube-apiserver.service")
            if name in ("ca.pem", "ca-key.pem", "sa-key.pem"):
                units.append("kube-controller-manager.service")
        if host.has_role("node") and name == "ca.pem":
            units.append("kubelet.service")
    return tuple(units)


def desired(ctx: RunContext, host: HostSpec) -> list[Resource]:
    files = pki.host_pki_files(ctx.pki_dir, ctx.cluster, host)
    resources: list[Resource] = []
    directories = [layout.ETCD_HOME, layout.ETCD_SSL]
    if any(f.path.startswith(layout.K8S_SSL + "/") for f in files):
        directories += [layout.K8S_HOME, layout.K8S_SSL]
    resources += [Directory(d) for d in directories]
    for remote in files:
        name = remote.path.rsplit("/", 1)[-1]
        resources.append(
            File(
                remote.path,
                Content(remote.data),
                remote.mode,
                secret=remote.secret,
                restarts=units_using(remote.path, host),
                ca=name in ("ca.pem", "ca-key.pem"),
            )
        )
    return resources


def pki_plan(ctx: RunContext, directory: Path) -> pki.PkiPlan:
    return pki.plan_pki(ctx.cluster, directory, replace_ca=ctx.replace_ca)


def prepare(ctx: RunContext) -> list[str]:
    """Make <state>/pki complete (apply) or say what that would do (plan): local changes, one line each."""
    plan = pki_plan(ctx, ctx.state.pki)
    lines = [item.describe() for item in plan.items if item.action is not pki.Action.REUSE]
    if not lines:
        ctx.pki_dir = ctx.state.pki
        return []
    if ctx.apply:
        done = pki.ensure_pki(ctx.cluster, ctx.state.pki, replace_ca=ctx.replace_ca)
        ctx.pki_dir = ctx.state.pki
        return [item.describe() for item in done.items if item.action is not pki.Action.REUSE] + [
            "note: " + n for n in done.notes
        ]
    return lines + ["note: " + n for n in plan.notes]


def rendering_pki(ctx: RunContext) -> Path:
    """A PKI to render from before <state>/pki is complete: a throw-away copy, completed.

    The copy keeps every existing CA and key, so what it renders for them is what the real run
    will write; only new keys differ (and those are new files anyway).
    """
    if not pki_plan(ctx, ctx.state.pki).changed:
        return ctx.state.pki
    scratch = Path(tempfile.mkdtemp(prefix="kubeproof-pki-"))
    ctx.extra.setdefault("cleanup", []).append(scratch)
    target = scratch / "pki"
    if ctx.state.pki.is_dir():
        shutil.copytree(ctx.state.pki, target)
    pki.ensure_pki(ctx.cluster, target, replace_ca=ctx.replace_ca)
    return target


PHASE = Phase(NAME, "certificates", lambda cluster: list(cluster.hosts), desired, prepare=prepare)
