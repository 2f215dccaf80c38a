"""Drift between two runs: which rows changed outcome or observed value, and which got worse.

Rows are matched by (key, host). A row changes when its outcome changes, when its observed value
changes, or when a certificate it read changes fingerprint or notAfter. Certificates are compared
by those two only: a `days_left` that shrank because a day passed is not drift, a renewed
certificate is. A number that moved with the outcome unchanged (a clock offset, days left, a raft
index spread) is a measurement and is listed only on request. Secrets are never compared: the
reports hold them only as "<redacted ...>" markers, and those compare equal whatever they mask.

A regression is a row that is failed, errored or a finding now and was not before (or is new):
what --baseline marks and counts against the exit code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kubeproof.redact import redact
from kubeproof.reports.model import CertIdentity, ResultRow
from kubeproof.reports.results_json import certificates_of

BAD_OUTCOMES: frozenset[str] = frozenset({"failed", "error", "finding"})
_REDACTED = re.compile(r"<redacted[^>]*>")
_SHOWN_CHARS = 240


def comparable(text: str) -> str:
    """Observed text as drift compares and prints it: redacted, every redaction marker alike."""
    return _REDACTED.sub("<redacted>", redact(text))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _shown(text: str) -> str:
    text = comparable(text)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def regression(old_outcome: str | None, new_outcome: str | None) -> str:
    """ "" unless the row got worse: "passed -> failed", "new row: error"."""
    if new_outcome not in BAD_OUTCOMES or old_outcome in BAD_OUTCOMES:
        return ""
    return f"new row: {new_outcome}" if old_outcome is None else f"{old_outcome} -> {new_outcome}"


@dataclass(frozen=True)
class Change:
    """One row that differs between two runs."""

    key: str
    host: str
    old_outcome: str | None  # None: the row was not in the old run
    new_outcome: str | None  # None: the row is not in the new run
    details: tuple[str, ...]
    measurement_only: bool = False

    @property
    def label(self) -> str:
        return f"{self.key}@{self.host}"

    @property
    def regression(self) -> str:
        return regression(self.old_outcome, self.new_outcome)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "host": self.host,
            "old_outcome": self.old_outcome,
            "new_outcome": self.new_outcome,
            "regression": self.regression,
            "details": list(self.details),
            "measurement_only": self.measurement_only,
        }


def _certificate_changes(old: Sequence[CertIdentity], new: Sequence[CertIdentity]) -> list[str]:
    def by_path(certs: Sequence[CertIdentity]) -> dict[str, set[tuple[str, str]]]:
        paths: dict[str, set[tuple[str, str]]] = {}
        for cert in certs:
            paths.setdefault(cert.path, set()).add((cert.sha256, cert.not_after))
        return paths

    before, after = by_path(old), by_path(new)
    lines = []
    for path in sorted(set(before) | set(after)):
        was, now = before.get(path, set()), after.get(path, set())
        if was == now:
            continue
        if not was:
            lines.append(f"certificate {path}: now " + "; ".join(_identity(i) for i in sorted(now)))
        elif not now:
            lines.append(f"certificate {path}: gone (was " + "; ".join(_identity(i) for i in sorted(was)) + ")")
        else:
            lines.append(
                f"certificate {path}: "
                + "; ".join(_identity(i) for i in sorted(was))
                + " -> "
                + "; ".join(_identity(i) for i in sorted(now))
            )
    return lines


def _identity(identity: tuple[str, str]) -> str:
    sha256, not_after = identity
    return f"sha256 {sha256[:16]}… notAfter {not_after}"


def compare_rows(old: ResultRow | None, new: ResultRow | None) -> Change | None:
    """The change between two runs of one row, or None when nothing the diff looks at differs."""
    if old is None and new is None:
        return None
    reference = new if new is not None else old
    assert reference is not None
    if old is None or new is None:
        present = new if new is not None else old
        assert present is not None
        state = "new row" if old is None else "row no longer in the run"
        return Change(
            reference.key,
            reference.host,
            None if old is None else old.outcome,
            None if new is None else new.outcome,
            (f"{state} ({present.outcome}), observed {_shown(present.observed)}",),
        )
    details: list[str] = []
    measurement_only = False
    if old.outcome != new.outcome:
        details.append(f"outcome {old.outcome} -> {new.outcome}")
    was, now = comparable(old.observed), comparable(new.observed)
    if was != now:
        numbers = (_number(was), _number(now))
        if old.outcome == new.outcome and None not in numbers:
            measurement_only = True
        details.append(f"observed {_shown(old.observed)} -> {_shown(new.observed)}")
    certificates = _certificate_changes(certificates_of(old), certificates_of(new))
    if certificates:
        measurement_only = False
    details += certificates
    if not details:
        return None
    return Change(new.key, new.host, old.outcome, new.outcome, tuple(details), measurement_only)


def diff_results(old: Iterable[ResultRow], new: Iterable[ResultRow], *, measurements: bool = False) -> list[Change]:
    """Every row that changed, in the new run's order (rows only in the old run last)."""
    before = {(row.key, row.host): row for row in old}
    after = {(row.key, row.host): row for row in new}
    order = list(after) + [key for key in before if key not in after]
    changes = []
    for key in order:
        change = compare_rows(before.get(key), after.get(key))
        if change is not None and (measurements or not change.measurement_only):
            changes.append(change)
    return changes


def regressions(baseline: Iterable[ResultRow], rows: Iterable[ResultRow]) -> dict[tuple[str, str], str]:
    """(key, host) -> how the row got worse against the baseline, for the rows that did."""
    before = {(row.key, row.host): row.outcome for row in baseline}
    found = {}
    for row in rows:
        text = regression(before.get((row.key, row.host)), row.outcome)
        if text:
            found[row.key, row.host] = text
    return found


def format_changes(changes: Sequence[Change], *, old: str, new: str, compared: int) -> str:
    """The text `kubeproof diff` prints: one block per changed row, then the count."""
    lines = [f"kubeproof diff: {old} -> {new}"]
    for change in changes:
        flag = f"  [regression: {change.regression}]" if change.regression else ""
        lines.append(f"{change.label}: {change.old_outcome or '-'} -> {change.new_outcome or '-'}{flag}")
        lines += [f"    {detail}" for detail in change.details]
    worse = sum(1 for change in changes if change.regression)
    if changes:
        lines.append(f"{len(changes)} row(s) changed ({worse} regression(s)) of {compared} compared")
    else:
        lines.append(f"no change in {compared} row(s)")
    return "\n".join(lines) + "\n"
