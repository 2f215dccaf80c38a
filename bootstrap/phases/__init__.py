"""The installer's phases, in the guide's order, and helpers they share."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubeproof.bootstrap.context import RunContext
from kubeproof.bootstrap.engine import (
    STAGE_FILES,
    STAGE_PACKAGES,
    Change,
    Custom,
    DiffResult,
    HostView,
    Resource,
    put_bytes,
    run_checked,
)
from kubeproof.bootstrap.errors import ChangeFailed
from kubeproof.facts import Fact, Raw
from kubeproof.inventory import Cluster, HostSpec


@dataclass(frozen=True)
class Phase:
    name: str
    title: str
    hosts: Callable[[Cluster], list[HostSpec]]
    desired: Callable[[RunContext, HostSpec], list[Resource]]
    # API-level differences (host "api"), evaluated from this machine
    cluster_diff: Callable[[RunContext], DiffResult] | None = None
    # after apply: wait until what the phase started is healthy
    verify: Callable[[RunContext], None] | None = None
    # local work before the diff (the PKI): returns one line per local change made (apply) or due (plan)
    prepare: Callable[[RunContext], list[str]] | None = None
    artifacts: tuple[str, ...] = ()
    # artifacts that depend on the release of the ones above (cri-dockerd only beside a kubelet
    # without dockershim): asked once those are present
    more_artifacts: Callable[[RunContext], tuple[str, ...]] | None = None


def unique_hosts(*groups: list[HostSpec]) -> list[HostSpec]:
    seen: dict[str, HostSpec] = {}
    for group in groups:
        for host in group:
            seen.setdefault(host.name, host)
    return list(seen.values())


# ----------------------------------------------------------------------------- surgical edits


@dataclass(frozen=True)
class EditedFile:
    mode: int | None  # None: the file does not exist
    text: str


def _parse_edit(raw: Raw) -> EditedFile:
    head, _, body = raw.stdout.partition("\n")
    if head.strip() == "MISSING":
        return EditedFile(None, "")
    return EditedFile(int(head.strip(), 8), body)


def edit_fact(path: str) -> Fact[EditedFile]:
    """Mode and text of a system file the guide edits (never a secret: /etc/hosts, /etc/fstab, sysctl.d)."""
    quoted = shlex.quote(path)
    return Fact(
        "kp-edit:" + path,
        f"if [ -f {quoted} ]; then stat -c %a {quoted}; cat {quoted}; else echo MISSING; fi",
        _parse_edit,
    )


def write_edit(view: HostView, path: str, text: str, mode: int) -> Callable[[], None]:
    def apply() -> None:
        put_bytes(view.conn, path, text.encode(), mode)

    return apply


# ----------------------------------------------------------------------------- packages

PACKAGE_FACT_SCRIPT = (
    "if command -v dpkg-query >/dev/null 2>&1; then dpkg-query -W -f='${Package} ${Status}\\n' {pkgs} 2>/dev/null; "
    "elif command -v rpm >/dev/null 2>&1; then for p in {pkgs}; do rpm -q $p >/dev/null 2>&1 && "
    'echo "$p install ok installed"; done; fi; true'
)


def installed_packages_fact(packages: tuple[str, ...]) -> Fact[set[str]]:
    quoted = " ".join(shlex.quote(p) for p in packages)

    def parse(raw: Raw) -> set[str]:
        return {line.split()[0] for line in raw.stdout.splitlines() if line.endswith("install ok installed")}

    return Fact("kp-packages:" + ",".join(packages), PACKAGE_FACT_SCRIPT.replace("{pkgs}", quoted), parse)


def install_command(family: str, packages: list[str]) -> str:
    if family == "apt":
        install = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q " + " ".join(shlex.quote(p) for p in packages)
        # the package lists may be missing (a fresh image): refresh them once, then retry
        return f"{install} || {{ apt-get update -q && {install}; }}"
    if family == "yum":
        return "yum install -y " + " ".join(shlex.quote(p) for p in packages)
    raise ValueError(f"no package manager for family {family!r}")


def package_op(
    name: str,
    packages_by_family: dict[str, list[str]],
    present: Callable[[HostView], bool],
    facts: tuple[Fact[Any], ...],
    why: str = "",
) -> Custom:
    """Install packages unless ``present`` says they are there (then no package manager call at all)."""

    def diff(view: HostView) -> DiffResult:
        if present(view):
            return []
        family = view.ctx.profile(view.host).family
        packages = packages_by_family.get(family)
        if not packages:
            return [
                Change(
                    view.host.name,
                    view.phase,
                    f"install {name}: unsupported OS family {family!r}",
                    _fail(f"{view.host.name}: cannot install {name} on OS family {family!r}: install it by hand"),
                    STAGE_PACKAGES,
                )
            ]
        command = install_command(family, packages)

        def apply() -> None:
            run_checked(view.conn, command, f"install {' '.join(packages)}", timeout=900)

        return [Change(view.host.name, view.phase, f"install {' '.join(packages)}{why}", apply, STAGE_PACKAGES)]

    return Custom("package:" + name, facts, diff)


def _fail(message: str) -> Callable[[], None]:
    def apply() -> None:
        raise ChangeFailed(message)

    return apply


def command_change(view: HostView, description: str, command: str, stage: int = STAGE_FILES) -> Change:
    def apply() -> None:
        run_checked(view.conn, command, description)

    return Change(view.host.name, view.phase, description, apply, stage)
