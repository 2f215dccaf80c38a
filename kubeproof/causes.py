"""Root causes: which failed or errored rows follow from another row's failure, as data.

The rules (kubeproof/checks/causes.yaml) say which rows may be consequences (`effects`) of which
others (`causes`, most upstream first) and where the cause may sit (`same` host, or `any` host).
Linking is pure: result records in, links out. A row is linked only to a row that really failed
or errored in the same run; a failed row with no failed cause is itself a root cause. Nothing is
guessed: a rule is a statement of which rows can break which, not of what happened.

A host that could not be reached is a root cause of its own ("node02 unreachable: ..."): every
row that errored because of it links to it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubeproof.graphs import find_cycle

CAUSES_FILE = Path(__file__).parent / "checks" / "causes.yaml"
BAD_OUTCOMES = frozenset({"failed", "error"})
HOST_SCOPES = frozenset({"same", "any"})
# The pseudo-ID of a host that did not answer: the cause of every row that needed it.
UNREACHABLE_ID = "UNREACHABLE"
# HostUnreachable's text: "<host> unreachable: <reason>"; the host must be one of the run's hosts
# ("kube-apiserver at https://... is unreachable: ..." is not a host going down).
_UNREACHABLE = re.compile(r"(?:^|[:\s])(?P<host>[A-Za-z0-9][A-Za-z0-9._-]*) unreachable: (?P<reason>.+)")


class CauseRulesError(ValueError):
    pass


@dataclass(frozen=True)
class CauseRule:
    """Rows matching `effects` may follow from a failure of rows matching `causes` (in that order)."""

    name: str
    effects: tuple[str, ...]
    causes: tuple[str, ...]
    hosts: str = "any"

    def is_effect(self, key: str) -> bool:
        return any(key_matches(pattern, key) for pattern in self.effects)


def key_matches(pattern: str, key: str) -> bool:
    """Does a rule's pattern name this row key?

    `ETCD-07` (an ID): every part of it; `ETCD-06:state`: that part only; `FLANNEL-02:` (an empty
    part): the ID's main row only; `PKI-E-*`: a glob over IDs.
    """
    if pattern.endswith(":"):
        return key == pattern[:-1]
    if ":" in pattern:
        return fnmatch.fnmatchcase(key, pattern)
    return fnmatch.fnmatchcase(key.split(":", 1)[0], pattern)


@dataclass(frozen=True)
class RowRef:
    """A row of one run, as a link names it."""

    id: str
    key: str
    host: str
    text: str

    @property
    def label(self) -> str:
        return f"[{self.key}] {self.host}"

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "key": self.key, "host": self.host, "text": self.text}


@dataclass(frozen=True)
class Link:
    """A consequence row's cause: the root it follows from, and the row in between when there is one."""

    root: RowRef
    via: RowRef | None = None

    @property
    def text(self) -> str:
        via = f" (via {self.via.label})" if self.via is not None and self.via != self.root else ""
        return f"caused by {self.root.label}: {self.root.text}{via}"

    def as_dict(self) -> dict[str, Any]:
        return {**self.root.as_dict(), "via": self.via.as_dict() if self.via else None, "text": self.text}


@dataclass(frozen=True)
class RootCause:
    row: RowRef
    outcome: str
    consequences: int

    @property
    def text(self) -> str:
        follow = {0: "no other row follows from it", 1: "1 row follows from it"}.get(
            self.consequences, f"{self.consequences} rows follow from it"
        )
        return f"{self.row.label}: {self.row.text} ({self.outcome}; {follow})"

    def as_dict(self) -> dict[str, Any]:
        return {**self.row.as_dict(), "outcome": self.outcome, "consequences": self.consequences}


# ----------------------------------------------------------------------------- rules


def parse_cause_rules(text: str, source: str, known_keys: Iterable[str] | None = None) -> list[CauseRule]:
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise CauseRulesError(f"{source}: expected a mapping with a 'rules' list")
    keys = sorted(set(known_keys)) if known_keys is not None else None
    rules = []
    for index, entry in enumerate(data["rules"]):
        where = f"{source}: rules[{index}]"
        if not isinstance(entry, dict) or set(entry) - {"name", "effects", "causes", "hosts"}:
            raise CauseRulesError(f"{where}: a rule has name, effects, causes and hosts only")
        effects, causes = entry.get("effects"), entry.get("causes")
        if not isinstance(effects, list) or not isinstance(causes, list) or not effects or not causes:
            raise CauseRulesError(f"{where}: effects and causes must be non-empty lists")
        hosts = str(entry.get("hosts", "any"))
        if hosts not in HOST_SCOPES:
            raise CauseRulesError(f"{where}: hosts must be one of {sorted(HOST_SCOPES)}, not {hosts!r}")
        rule = CauseRule(str(entry.get("name", where)), tuple(map(str, effects)), tuple(map(str, causes)), hosts)
        if keys is not None:
            stale = [p for p in (*rule.effects, *rule.causes) if not any(key_matches(p, k) for k in keys)]
            if stale:
                raise CauseRulesError(f"{where} ({rule.name}): {stale} match no catalogue row")
        rules.append(rule)
    if keys is not None:
        cycle = _find_cycle(rules, keys)
        if cycle:
            raise CauseRulesError(f"{source}: the rules let a row cause itself: {' -> '.join(cycle)}")
    return rules


def load_cause_rules(path: Path = CAUSES_FILE, known_keys: Iterable[str] | None = None) -> list[CauseRule]:
    return parse_cause_rules(path.read_text(encoding="utf-8"), path.name, known_keys)


def _find_cycle(rules: Sequence[CauseRule], keys: Sequence[str]) -> list[str] | None:
    # effect -> the rows it may follow from; a cycle would make "the root" undefined.
    edges: dict[str, set[str]] = {key: set() for key in keys}
    for rule in rules:
        effects = [k for k in keys if rule.is_effect(k)]
        causes = [k for k in keys if any(key_matches(p, k) for p in rule.causes)]
        for effect in effects:
            edges[effect].update(c for c in causes if c != effect)
    return find_cycle(edges)


# ----------------------------------------------------------------------------- linking


def _ref(record: Mapping[str, Any]) -> RowRef:
    return RowRef(
        str(record["id"]), str(record.get("key") or record["id"]), str(record["host"]), str(record.get("text", ""))
    )


def unreachable_host(record: Mapping[str, Any], hosts: Iterable[str]) -> RowRef | None:
    """The host whose unreachability made this row error ("node02 unreachable: ..."), if that is why."""
    if record.get("outcome") != "error":
        return None
    known = set(hosts)
    for match in _UNREACHABLE.finditer(str(record.get("reason", ""))):
        if match["host"] in known:
            return RowRef(UNREACHABLE_ID, UNREACHABLE_ID, match["host"], f"unreachable: {match['reason'].strip()}")
    return None


def _immediate_cause(
    record: Mapping[str, Any], bad: Sequence[Mapping[str, Any]], rules: Sequence[CauseRule], hosts: set[str]
) -> RowRef | None:
    host_down = unreachable_host(record, hosts)
    if host_down is not None:
        return host_down
    key, host = str(record.get("key") or record["id"]), str(record["host"])
    for rule in rules:
        if not rule.is_effect(key):
            continue
        for pattern in rule.causes:
            # never the same row on another host: SMOKE-01@node01 and @node02 are two symptoms, not a chain
            found = [
                c
                for c in bad
                if str(c.get("key") or c["id"]) != key and key_matches(pattern, str(c.get("key") or c["id"]))
            ]
            same_host = [c for c in found if str(c["host"]) == host]
            chosen = same_host or ([] if rule.hosts == "same" else found)
            if chosen:
                return _ref(chosen[0])
    return None


def link_causes(records: Sequence[Mapping[str, Any]], rules: Sequence[CauseRule]) -> dict[tuple[str, str], Link]:
    """(key, host) of every consequence row -> its Link; rows absent from the result are root causes."""
    bad = [r for r in records if r.get("outcome") in BAD_OUTCOMES]
    hosts = {str(r["host"]) for r in records}
    by_ref = {_ref(r): r for r in bad}
    immediate = {ref: _immediate_cause(record, bad, rules, hosts) for ref, record in by_ref.items()}
    links: dict[tuple[str, str], Link] = {}
    for ref, cause in immediate.items():
        if cause is None:
            continue
        root, seen = cause, {ref}
        while root in immediate and immediate[root] is not None and root not in seen:
            seen.add(root)
            root = immediate[root]  # type: ignore[assignment]  # not None, checked above
        links[(ref.key, ref.host)] = Link(root=root, via=cause if cause != root else None)
    return links


def root_causes(records: Sequence[Mapping[str, Any]], links: Mapping[tuple[str, str], Link]) -> list[RootCause]:
    """Every failed or errored row that follows from none, and every unreachable host; most consequences first."""
    counts: dict[RowRef, int] = {}
    outcomes: dict[RowRef, str] = {}
    for link in links.values():
        counts[link.root] = counts.get(link.root, 0) + 1
        outcomes.setdefault(link.root, "error" if link.root.id == UNREACHABLE_ID else "failed")
    for record in records:
        if (
            record.get("outcome") in BAD_OUTCOMES
            and (str(record.get("key") or record["id"]), str(record["host"])) not in links
        ):
            ref = _ref(record)
            counts.setdefault(ref, 0)
            outcomes[ref] = str(record["outcome"])
    order = {(str(r.get("key") or r["id"]), str(r["host"])): i for i, r in enumerate(records)}
    found = [RootCause(ref, outcomes[ref], count) for ref, count in counts.items()]
    return sorted(found, key=lambda c: (-c.consequences, order.get((c.row.key, c.row.host), -1), c.row.host))


def annotate(records: Sequence[dict[str, Any]], rules: Sequence[CauseRule]) -> list[RootCause]:
    """Set each consequence record's "caused_by" (and clear it on the others); return the root causes."""
    links = link_causes(records, rules)
    for record in records:
        link = links.get((str(record.get("key") or record["id"]), str(record["host"])))
        record["caused_by"] = link.as_dict() if link else None
    return root_causes(records, links)
