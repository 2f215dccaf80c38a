"""What a PKI run did or would do: one :class:`PlanItem` per CA, leaf, key pair and JSON input."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Action", "PkiPlan", "PlanItem"]


class Action(enum.StrEnum):
    CREATE = "create"  # nothing was there
    REUSE = "reuse"  # left byte-identical
    REISSUE = "reissue"  # certificate signed again (with the existing key where there is one)
    REPLACE = "replace"  # a CA replaced because replace_ca asked for it
    WRITE = "write"  # a cfssl JSON input (re)written


@dataclass(frozen=True)
class PlanItem:
    authority: str  # "etcd" | "kubernetes"
    name: str  # "ca", "server", "apiserver", "admin", "kube-proxy", "sa", or a JSON file name
    action: Action
    reasons: tuple[str, ...] = ()  # why the action (empty for reuse)
    notes: tuple[str, ...] = ()  # remarks that did not change the action (a clamp, a kept key)
    paths: tuple[Path, ...] = ()

    def describe(self) -> str:
        text = f"{self.authority}/{self.name}: {self.action.value}"
        if self.reasons:
            text += " (" + "; ".join(self.reasons) + ")"
        for note in self.notes:
            text += f"\n    note: {note}"
        return text


@dataclass
class PkiPlan:
    """What the PKI step did (``applied``) or would do: one item per CA, leaf, key pair and JSON input."""

    pki_dir: Path
    applied: bool
    items: list[PlanItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changed_paths: list[Path] = field(default_factory=list)  # files and directories written or chmod-ed

    @property
    def changed(self) -> bool:
        return bool(self.changed_paths) or any(item.action is not Action.REUSE for item in self.items)

    def item(self, authority: str, name: str) -> PlanItem:
        for item in self.items:
            if item.authority == authority and item.name == name:
                return item
        raise KeyError(f"{authority}/{name}")

    def lines(self) -> list[str]:
        verb = "applied" if self.applied else "plan"
        out = [f"PKI {verb} in {self.pki_dir}:"]
        out += ["  " + item.describe() for item in self.items]
        out += [f"  note: {note}" for note in self.notes]
        return out
