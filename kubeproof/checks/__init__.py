"""Checks as data: catalogue rows, a closed set of comparators, one failure format.

A row says what to observe (a named probe), how to compare (a comparator), what to expect and how
to fix it. Probes return observations; the comparator decides and writes its own "expected ..."
text; `format_failure` renders every failure the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubeproof.redact import redact

CATALOGUE_DIR = Path(__file__).with_name("catalogue")


class NotApplicable(Exception):
    """The check cannot apply here (e.g. the running version has no such feature): a skip."""


@dataclass(frozen=True)
class Observation:
    """What a probe saw, and where it came from."""

    value: Any
    sources: tuple[str, ...] = ()
    evidence: tuple[Mapping[str, Any], ...] = ()
    diagnosis: tuple[str, ...] = ()
    # What was checked and the values found, one line an item ("docker0 172.17.9.1/24 inside
    # FLANNEL_SUBNET 172.17.9.1/24"): a passed row's evidence says what was true, not "observed []".
    seen: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- comparators


@dataclass(frozen=True)
class Comparator:
    name: str
    holds: Callable[[Any, Any], bool]
    describe: Callable[[Any], str]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def _mode_at_most(observed: Any, expected: Any) -> bool:
    if observed is None:
        return False
    return (int(str(observed), 8) & ~int(str(expected), 8) & 0o7777) == 0


def _number(value: Any) -> float:
    return float(value)


def _compares(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """An observation of the wrong kind (e.g. "ca.pem is missing" where a number was due) does not hold."""

    def holds(observed: Any, expected: Any) -> bool:
        try:
            return bool(test(observed, expected))
        except (TypeError, ValueError):
            return False

    return holds


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
        return "[" + ", ".join(_fmt(v) for v in items) + "]"
    if isinstance(value, str):
        return repr(value)
    return str(value)


COMPARATORS: Mapping[str, Comparator] = {
    c.name: c
    for c in (
        Comparator("equals", lambda o, e: o == e, lambda e: f"expected {_fmt(e)}"),
        Comparator("not_equals", lambda o, e: o != e, lambda e: f"expected anything but {_fmt(e)}"),
        Comparator("one_of", lambda o, e: o in _as_list(e), lambda e: f"expected one of {_fmt(e)}"),
        Comparator(
            "contains_all",
            lambda o, e: set(map(str, _as_list(e))) <= set(map(str, _as_list(o))),
            lambda e: f"expected to include all of {_fmt(e)}",
        ),
        Comparator(
            "contains_none",
            lambda o, e: not (set(map(str, _as_list(e))) & set(map(str, _as_list(o)))),
            lambda e: f"expected to include none of {_fmt(e)}",
        ),
        Comparator(
            "subset_of",
            lambda o, e: set(map(str, _as_list(o))) <= set(map(str, _as_list(e))),
            lambda e: f"expected nothing outside {_fmt(e)}",
        ),
        Comparator(
            "same_items",
            lambda o, e: sorted(map(str, _as_list(o))) == sorted(map(str, _as_list(e))),
            lambda e: f"expected exactly {_fmt(e)}",
        ),
        Comparator(
            "matches",
            lambda o, e: o is not None and re.fullmatch(str(e), str(o)) is not None,
            lambda e: f"expected to match /{e}/",
        ),
        Comparator("at_least", _compares(lambda o, e: _number(o) >= _number(e)), lambda e: f"expected >= {e}"),
        Comparator("at_most", _compares(lambda o, e: _number(o) <= _number(e)), lambda e: f"expected <= {e}"),
        Comparator("below", _compares(lambda o, e: _number(o) < _number(e)), lambda e: f"expected < {e}"),
        Comparator(
            "mode_at_most", _compares(_mode_at_most), lambda e: f"expected file mode 0{int(str(e), 8):o} or stricter"
        ),
        Comparator("is_empty", lambda o, e: not o, lambda e: "expected none"),
        Comparator("is_true", lambda o, e: o is True, lambda e: "expected true"),
    )
}


# ----------------------------------------------------------------------------- rows


ROLE_SCOPES = frozenset({"all", "master", "node", "etcd", "cluster"})
KINDS = frozenset({"invariant", "finding"})
SEVERITIES = frozenset({"low", "medium", "high"})


@dataclass(frozen=True)
class Check:
    """One catalogue row."""

    id: str
    text: str
    section: str
    guide: str
    roles: tuple[str, ...]
    probe: str
    comparator: str
    expected: Any
    remediation: str
    part: str = ""
    kind: str = "invariant"
    severity: str = "medium"
    # Seconds a failing observation of state that legitimately moves (a leader lease, node Ready,
    # the raft term) is re-probed before the row fails; 0: judged once.
    settle: int = 0

    @property
    def key(self) -> str:
        return f"{self.id}:{self.part}" if self.part else self.id

    @property
    def group(self) -> str:
        return self.id.rsplit("-", 1)[0]

    def expected_value(self, context: Mapping[str, Any]) -> Any:
        return resolve_expected(self.expected, context)

    def expected_text(self, context: Mapping[str, Any]) -> str:
        return COMPARATORS[self.comparator].describe(self.expected_value(context))

    def holds(self, observed: Any, context: Mapping[str, Any]) -> bool:
        return COMPARATORS[self.comparator].holds(observed, self.expected_value(context))


def resolve_expected(expected: Any, context: Mapping[str, Any]) -> Any:
    """`$name` refers to a value of the inventory context; everything else is literal."""
    if isinstance(expected, str) and expected.startswith("$"):
        name = expected[1:]
        if name not in context:
            raise KeyError(f"unknown expected-value reference {expected!r}")
        return context[name]
    if isinstance(expected, list):
        return [resolve_expected(v, context) for v in expected]
    return expected


class CatalogueError(ValueError):
    pass


_ROW_KEYS = {
    "id", "text", "section", "guide", "roles", "probe", "comparator", "expected",
    "remediation", "part", "kind", "severity", "settle",
}  # fmt: skip
MAX_SETTLE_SECONDS = 120
_ID_PATTERN = re.compile(r"[A-Z]+(?:-[A-Z])?-\d{2}")


def parse_catalogue(text: str, source: str, known_probes: Iterable[str] | None = None) -> list[Check]:
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("checks"), list):
        raise CatalogueError(f"{source}: expected a mapping with a 'checks' list")
    section = str(data.get("section", ""))
    guide = str(data.get("guide", ""))
    probes = set(known_probes) if known_probes is not None else None
    rows: list[Check] = []
    for index, entry in enumerate(data["checks"]):
        where = f"{source}: checks[{index}]"
        if not isinstance(entry, dict):
            raise CatalogueError(f"{where}: not a mapping")
        unknown = set(entry) - _ROW_KEYS
        if unknown:
            raise CatalogueError(f"{where}: unknown keys {sorted(unknown)}")
        for required in ("id", "text", "roles", "probe", "comparator", "remediation"):
            if required not in entry:
                raise CatalogueError(f"{where}: missing {required!r}")
        check_id = str(entry["id"])
        if not _ID_PATTERN.fullmatch(check_id):
            raise CatalogueError(f"{where}: id {check_id!r} is not an invariant ID")
        roles = tuple(_as_list(entry["roles"]))
        if not roles or set(roles) - ROLE_SCOPES:
            raise CatalogueError(f"{where}: roles must be some of {sorted(ROLE_SCOPES)}")
        comparator = str(entry["comparator"])
        if comparator not in COMPARATORS:
            raise CatalogueError(f"{where}: comparator {comparator!r} is not one of {sorted(COMPARATORS)}")
        kind = str(entry.get("kind", "invariant"))
        if kind not in KINDS:
            raise CatalogueError(f"{where}: kind must be one of {sorted(KINDS)}")
        severity = str(entry.get("severity", "medium"))
        if severity not in SEVERITIES:
            raise CatalogueError(f"{where}: severity must be one of {sorted(SEVERITIES)}")
        settle = entry.get("settle", 0)
        if not isinstance(settle, int) or isinstance(settle, bool) or not 0 <= settle <= MAX_SETTLE_SECONDS:
            raise CatalogueError(
                f"{where}: settle must be whole seconds from 0 to {MAX_SETTLE_SECONDS}, not {settle!r}"
            )
        probe = str(entry["probe"])
        if probes is not None and probe.partition("(")[0].strip() not in probes:
            raise CatalogueError(f"{where}: no probe named {probe!r}")
        rows.append(
            Check(
                id=check_id,
                text=str(entry["text"]),
                section=str(entry.get("section", section)),
                guide=str(entry.get("guide", guide)),
                roles=roles,
                probe=probe,
                comparator=comparator,
                expected=entry.get("expected"),
                remediation=str(entry["remediation"]).strip(),
                part=str(entry.get("part", "")),
                kind=kind,
                severity=severity,
                settle=settle,
            )
        )
    keys = [r.key for r in rows]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise CatalogueError(f"{source}: duplicate check keys {sorted(duplicates)} (give each a distinct 'part')")
    return rows


def load_catalogue(directory: Path = CATALOGUE_DIR, known_probes: Iterable[str] | None = None) -> list[Check]:
    rows: list[Check] = []
    probes = list(known_probes) if known_probes is not None else None
    for path in sorted(directory.glob("*.yaml")):
        rows.extend(parse_catalogue(path.read_text(encoding="utf-8"), path.name, probes))
    return rows


# ----------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Verdict:
    check: Check
    host: str
    holds: bool
    expected: str
    observed: Any
    sources: tuple[str, ...] = ()
    diagnosis: tuple[str, ...] = ()
    evidence: tuple[Mapping[str, Any], ...] = field(default=())
    seen: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        return format_failure(self)


def judge(check: Check, host: str, observation: Observation, context: Mapping[str, Any]) -> Verdict:
    return Verdict(
        check=check,
        host=host,
        holds=check.holds(observation.value, context),
        expected=check.expected_text(context),
        observed=observation.value,
        sources=observation.sources,
        diagnosis=observation.diagnosis,
        evidence=observation.evidence,
        seen=observation.seen,
    )


def format_observed(value: Any) -> str:
    return redact(_fmt(value))


# A failure shows at most this many seen lines: the observed value names the offenders already.
FAILURE_SEEN_LINES = 12


def _seen_beyond(verdict: Verdict) -> list[str]:
    """The seen lines that add to the observed value and the diagnosis (an offender or a diagnosis
    line already shown is not repeated), capped."""
    shown = {str(item) for item in _as_list(verdict.observed)} | set(verdict.diagnosis)
    lines = [line for line in verdict.seen if line not in shown]
    if len(lines) > FAILURE_SEEN_LINES:
        lines = [*lines[: FAILURE_SEEN_LINES - 1], f"... and {len(lines) - FAILURE_SEEN_LINES + 1} more"]
    return lines


def format_failure(verdict: Verdict) -> str:
    """The one failure format: ID, host, expected, observed (and what else was seen), source, fix
    (and the diagnosis)."""
    check = verdict.check
    lines = [
        f"[{check.key}] {verdict.host}: {check.text}",
        f"  expected: {verdict.expected.removeprefix('expected ')}",
        f"  observed: {format_observed(verdict.observed)}",
    ]
    seen = _seen_beyond(verdict)
    if seen:
        lines.append("  seen:")
        lines.extend("    " + redact(line) for line in seen)
    lines += [
        f"  source:   {redact('; '.join(verdict.sources)) or '(none recorded)'}",
        f"  fix:      {check.remediation}",
    ]
    if verdict.diagnosis:
        lines.append("  diagnosis:")
        lines.extend("    " + redact(line) for line in verdict.diagnosis)
    return "\n".join(lines)


def rows_for(rows: Sequence[Check], group: str) -> list[Check]:
    return [r for r in rows if r.group == group]
