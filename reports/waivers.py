"""Waivers: failures an approver has accepted for a while, read from a YAML file.

The file is a list of waivers, each with exactly these keys:

    - id: ENV-04:fstab        # a row key ("ETCD-06:state") or an invariant ID ("PKI-E-03": all its parts)
      host: node01            # a host name, or "*" for every host
      reason: swap kept for the batch node until the migration, ticket OPS-1234
      approver: J. Doe
      expires: 2026-12-31     # YYYY-MM-DD; the waiver holds through that day (UTC)

A failed or errored row (or a finding) that a live waiver matches is "waived": it shows the reason
everywhere and does not fail the run. A waiver past its date waives nothing, leaves its rows
failed and fails the run itself; a waiver that matches no row, or only rows that passed, is
reported. Errors name the file and line, as the cluster file's do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import yaml

from kubeproof.reports.model import ResultRow, Waiver

KEYS: tuple[str, ...] = ("id", "host", "reason", "approver", "expires")
WAIVABLE: frozenset[str] = frozenset({"failed", "error", "finding"})
ANY_HOST = "*"
_ID = re.compile(r"[A-Z]+(?:-[A-Z])?-\d{2}(?::[A-Za-z0-9_.-]+)?")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class WaiverError(ValueError):
    """A problem in the waiver file; the message starts with "FILE:LINE: "."""


@dataclass(frozen=True)
class WaiverRule:
    """One waiver as written, with the line it came from."""

    id: str
    host: str
    reason: str
    approver: str
    expires: date
    source: str  # "waivers.yaml:3"

    @property
    def label(self) -> str:
        return f"{self.id}@{self.host}"

    def is_expired(self, today: date) -> bool:
        return today > self.expires

    def matches(self, row_id: str, key: str, host: str) -> bool:
        names = (key,) if ":" in self.id else (key, row_id)
        return self.id in names and self.host in (ANY_HOST, host)

    def specificity(self) -> int:
        """A key beats a bare ID, a named host beats "*": the most specific waiver is the one shown."""
        return (2 if ":" in self.id else 0) + (1 if self.host != ANY_HOST else 0)

    def for_row(self, today: date) -> Waiver:
        return Waiver(
            id=self.id,
            host=self.host,
            reason=self.reason,
            approver=self.approver,
            expires=self.expires.isoformat(),
            expired=self.is_expired(today),
            source=self.source,
        )


def today_utc() -> date:
    return datetime.now(UTC).date()


# ----------------------------------------------------------------------------- parsing


def _scalar(node: yaml.Node, where: str, name: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise WaiverError(f"{where}:{node.start_mark.line + 1}: {name} must be a single value")
    text = str(node.value).strip()
    if not text:
        raise WaiverError(f"{where}:{node.start_mark.line + 1}: {name} is empty")
    return text


def _rule(node: yaml.Node, source: str, known_keys: frozenset[str] | None) -> WaiverRule:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        raise WaiverError(f"{source}:{line}: a waiver must be a mapping with keys {', '.join(KEYS)}")
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = _scalar(key_node, source, "a key")
        key_line = key_node.start_mark.line + 1
        if key not in KEYS:
            raise WaiverError(f"{source}:{key_line}: unknown key {key!r} (a waiver has {', '.join(KEYS)})")
        if key in values:
            raise WaiverError(f"{source}:{key_line}: {key!r} given twice")
        values[key] = _scalar(value_node, source, key)
        lines[key] = value_node.start_mark.line + 1
    missing = [key for key in KEYS if key not in values]
    if missing:
        raise WaiverError(f"{source}:{line}: waiver without {', '.join(missing)}")
    waiver_id, host, expires = values["id"], values["host"], values["expires"]
    if not _ID.fullmatch(waiver_id):
        raise WaiverError(
            f"{source}:{lines['id']}: id {waiver_id!r} is not an invariant ID or row key (PKI-E-03, ETCD-06:state)"
        )
    if known_keys is not None and not ({waiver_id} & known_keys or waiver_id in {k.split(":")[0] for k in known_keys}):
        raise WaiverError(f"{source}:{lines['id']}: id {waiver_id!r} is not in the catalogue")
    if host != ANY_HOST and not _HOST.fullmatch(host):
        raise WaiverError(f"{source}:{lines['host']}: host {host!r} is not a host name or '*'")
    if not _DATE.fullmatch(expires):
        raise WaiverError(f"{source}:{lines['expires']}: expires {expires!r} is not a date YYYY-MM-DD")
    try:
        expiry = date.fromisoformat(expires)
    except ValueError as exc:
        raise WaiverError(f"{source}:{lines['expires']}: expires {expires!r}: {exc}") from None
    return WaiverRule(waiver_id, host, values["reason"], values["approver"], expiry, f"{source}:{line}")


def parse_waivers(text: str, source: str, *, known_keys: Iterable[str] | None = None) -> tuple[WaiverRule, ...]:
    """The waivers in `text` (a YAML list), or a WaiverError naming `source` and the line."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise WaiverError(f"{source}{line}: YAML syntax: {getattr(exc, 'problem', exc)}") from None
    if root is None:
        return ()
    if not isinstance(root, yaml.SequenceNode):
        raise WaiverError(f"{source}:{root.start_mark.line + 1}: the waiver file must be a list of waivers")
    keys = frozenset(known_keys) if known_keys is not None else None
    rules: list[WaiverRule] = []
    first: dict[tuple[str, str], str] = {}
    for node in root.value:
        rule = _rule(node, source, keys)
        if (rule.id, rule.host) in first:
            raise WaiverError(f"{rule.source}: {rule.label} is waived twice (first at {first[rule.id, rule.host]})")
        first[rule.id, rule.host] = rule.source
        rules.append(rule)
    return tuple(rules)


def load_waivers(path: Path, *, known_keys: Iterable[str] | None = None) -> tuple[WaiverRule, ...]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WaiverError(f"{path}: cannot read the waiver file: {exc.strerror or exc}") from None
    return parse_waivers(text, str(path), known_keys=known_keys)


# ----------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class WaiverBook:
    """The waivers of one run, and the day they are judged on."""

    rules: tuple[WaiverRule, ...]
    today: date

    def find(self, row_id: str, key: str, host: str) -> WaiverRule | None:
        """The most specific waiver for this row, expired or not (an expired one is shown, not applied)."""
        matching = [rule for rule in self.rules if rule.matches(row_id, key, host)]
        if not matching:
            return None
        # Prefer a live waiver over an expired one, then the most specific.
        return max(matching, key=lambda rule: (not rule.is_expired(self.today), rule.specificity()))

    def expired(self) -> list[WaiverRule]:
        return [rule for rule in self.rules if rule.is_expired(self.today)]

    def problems(self, rows: Sequence[ResultRow], hosts: Iterable[str] = ()) -> list[str]:
        """Expired waivers (they fail the run) and waivers that matched nothing (reported)."""
        known_hosts = set(hosts)
        problems = [
            f"waiver {rule.label} ({rule.source}) expired on {rule.expires.isoformat()}: renew it or fix the failure"
            for rule in self.expired()
        ]
        for rule in self.rules:
            if rule.is_expired(self.today):
                continue
            matched = [row for row in rows if rule.matches(row.id, row.key, row.host)]
            if rule.host != ANY_HOST and known_hosts and rule.host not in known_hosts:
                problems.append(
                    f"waiver {rule.label} ({rule.source}) matches nothing: {rule.host} is not in the inventory"
                )
            elif not matched:
                problems.append(f"waiver {rule.label} ({rule.source}) matches nothing: no such row ran")
            elif not any(row.outcome == "waived" for row in matched):
                outcomes = sorted({row.outcome for row in matched})
                problems.append(
                    f"waiver {rule.label} ({rule.source}) matches nothing that failed "
                    f"(its rows: {', '.join(outcomes)}): remove it if the failure is fixed"
                )
        return problems
