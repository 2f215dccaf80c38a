"""Known signatures as data: a journal line that names why a unit failed, and the invariant it breaks.

The catalogue is `kubeproof/checks/signatures.yaml` (beside the check catalogue, not in it:
`load_catalogue` reads every YAML file of `checks/catalogue/`). Each signature is

    id          SIG-<UNIT>-<nn>, unique
    unit        the unit whose journal it is read in (`KNOWN_UNITS`)
    pattern     a Python regex, searched in each line's message
    points_to   the invariant ID (../shared/guide/INVARIANTS.md) whose check catches the condition
    explanation one line: what the line means
    fix         one line: what to do
    source      optional: `unit` (default, the program's own lines) or `systemd` (systemd's
                lines about the unit that are not bookkeeping, such as "Failed to load
                environment files")
    cleared_by  optional regex: a later line of the same run that matches it means the condition
                passed (a bootstrapping kubelet always waits for its certificate, then gets it)
    scope       optional: `last-lines` (default: the lines of the run that were read, the last
                JOURNAL_LINES) or `whole-run`, for a line logged once when the unit starts that its
                later lines push out of those: it is searched in every line of the unit's current
                run, on the host, with grep -F, so its pattern must be literal text

A signature is reported only for a line it matched; a pattern that matches the empty string is
refused, since it would match every line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubeproof.diagnosis.journal import JournalLine

SIGNATURES_FILE = Path(__file__).resolve().parents[1] / "checks" / "signatures.yaml"
KNOWN_UNITS = (
    "etcd",
    "flanneld",
    "docker",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "cri-dockerd",
)
SOURCES = ("unit", "systemd")
SCOPES = ("last-lines", "whole-run")
_FIELDS = ("id", "unit", "pattern", "points_to", "explanation", "fix")
_OPTIONAL = ("source", "cleared_by", "scope")
_REGEX_SPECIALS = ".^$*+?{}[]\\|()"
_ID = re.compile(r"^SIG-[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*-\d{2}$")
_INVARIANT_ID = re.compile(r"^[A-Z]+(?:-[A-Z])?-\d{2}$")


class SignatureError(ValueError):
    """The signature catalogue is malformed; the message names the entry."""


@dataclass(frozen=True)
class Signature:
    id: str
    unit: str
    pattern: re.Pattern[str]
    points_to: str
    explanation: str
    fix: str
    source: str = "unit"
    cleared_by: re.Pattern[str] | None = None
    scope: str = "last-lines"

    @property
    def whole_run(self) -> bool:
        return self.scope == "whole-run"

    def summary(self) -> str:
        return f"matched {self.id} → points to {self.points_to}: {self.explanation}; fix: {self.fix}"


@dataclass(frozen=True)
class SignatureMatch:
    signature: Signature
    line: JournalLine


def _entry(raw: Any, where: str) -> Signature:
    if not isinstance(raw, Mapping):
        raise SignatureError(f"{where}: a signature is a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {*_FIELDS, *_OPTIONAL})
    missing = [name for name in _FIELDS if name not in raw]
    if unknown or missing:
        raise SignatureError(f"{where}: unknown fields {unknown}, missing fields {missing}")
    values = {name: raw[name] for name in (*_FIELDS, *_OPTIONAL) if name in raw}
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip() or "\n" in value:
            raise SignatureError(f"{where}: {name} must be one non-empty line of text, got {value!r}")
    where = f"{where} ({values['id']})"
    if not _ID.match(values["id"]):
        raise SignatureError(f"{where}: id must look like SIG-ETCD-01")
    if values["unit"] not in KNOWN_UNITS:
        raise SignatureError(f"{where}: unknown unit {values['unit']!r} (known: {', '.join(KNOWN_UNITS)})")
    if not _INVARIANT_ID.match(values["points_to"]):
        raise SignatureError(f"{where}: points_to must be an invariant ID such as ETCD-02")
    source = values.get("source", "unit")
    if source not in SOURCES:
        raise SignatureError(f"{where}: source must be one of {SOURCES}")
    pattern = _regex(values["pattern"], f"{where}: pattern")
    scope = values.get("scope", "last-lines")
    if scope not in SCOPES:
        raise SignatureError(f"{where}: scope must be one of {SCOPES}")
    if scope == "whole-run" and set(values["pattern"]) & set(_REGEX_SPECIALS):
        raise SignatureError(f"{where}: a whole-run pattern is searched with grep -F: it must be literal text")
    cleared_by = _regex(values["cleared_by"], f"{where}: cleared_by") if "cleared_by" in values else None
    return Signature(
        values["id"],
        values["unit"],
        pattern,
        values["points_to"],
        values["explanation"],
        values["fix"],
        source,
        cleared_by,
        scope,
    )


def _regex(text: str, what: str) -> re.Pattern[str]:
    try:
        compiled = re.compile(text)
    except re.error as exc:
        raise SignatureError(f"{what} is not a valid regex: {exc}") from exc
    if compiled.search(""):
        raise SignatureError(f"{what} matches the empty string (it would match every line)")
    return compiled


def parse_signatures(text: str, source: str = "signatures.yaml") -> tuple[Signature, ...]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SignatureError(f"{source}: not YAML: {exc}") from exc
    if not isinstance(document, Mapping) or not isinstance(document.get("signatures"), list):
        raise SignatureError(f"{source}: expected a mapping with a `signatures:` list")
    signatures = tuple(
        _entry(raw, f"{source}: signature {index + 1}") for index, raw in enumerate(document["signatures"])
    )
    seen: set[str] = set()
    for signature in signatures:
        if signature.id in seen:
            raise SignatureError(f"{source}: {signature.id} appears twice")
        seen.add(signature.id)
    return signatures


def load_signatures(path: Path = SIGNATURES_FILE) -> tuple[Signature, ...]:
    return parse_signatures(path.read_text(encoding="utf-8"), str(path))


@functools.cache
def default_signatures() -> tuple[Signature, ...]:
    """The shipped catalogue, read once per process."""
    return load_signatures()


def match_signatures(
    unit: str,
    own: Sequence[JournalLine],
    signatures: Sequence[Signature],
    notes: Sequence[JournalLine] = (),
) -> list[SignatureMatch]:
    """Every signature of ``unit`` that matches one of its lines, with the last line it matched.

    ``own`` are the program's lines, ``notes`` systemd's non-bookkeeping lines about the unit; a
    signature reads the ones its `source` names. Catalogue order: the catalogue lists the specific
    signatures of a unit before the general ones.
    """
    matches = []
    for signature in signatures:
        if signature.unit != unit:
            continue
        lines = notes if signature.source == "systemd" else own
        index = next((i for i in reversed(range(len(lines))) if signature.pattern.search(lines[i].message)), None)
        if index is None:
            continue
        cleared = signature.cleared_by
        if cleared is not None and any(cleared.search(line.message) for line in lines[index + 1 :]):
            continue  # the condition passed later in the same run
        matches.append(SignatureMatch(signature, lines[index]))
    return matches
