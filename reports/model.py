"""The report model: one typed row per check result, section summaries and the profile score.

The pytest plugin hands over plain JSON-able records; `ResultRow.from_record` is the one place
that turns them into typed rows, so every writer sees the same shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# In the order the reports list them. "waived": a failed/error row (or a finding) that a live waiver
# accepts; counted apart, never as failed (reports/waivers.py).
OUTCOMES: tuple[str, ...] = ("passed", "failed", "error", "skipped", "finding", "waived")
KINDS: tuple[str, ...] = ("invariant", "finding")
PROFILES: tuple[str, ...] = ("seed", "hardened")
SEVERITY_WEIGHTS: Mapping[str, int] = {"high": 5, "medium": 3, "low": 1}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _texts(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(_text(item) for item in value)


def iso_utc(timestamp: float | None) -> str | None:
    """Unix time -> ISO 8601 UTC with a Z suffix (None stays None)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


@dataclass(frozen=True)
class EvidenceItem:
    """One fact's command and raw output on one host, as the plugin recorded it."""

    host: str
    fact: str
    command: str
    rc: int | None
    stdout: str
    stderr: str
    timestamp: float | None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> EvidenceItem:
        rc = record.get("rc")
        return cls(
            host=_text(record.get("host")),
            fact=_text(record.get("fact")),
            command=_text(record.get("command")),
            rc=None if rc is None else int(rc),
            stdout=_text(record.get("stdout")),
            stderr=_text(record.get("stderr")),
            timestamp=_number(record.get("timestamp")),
        )


@dataclass(frozen=True)
class Waiver(Mapping[str, str]):
    """The waiver a row matched: who accepted which failure, why, and until when.

    A Mapping as well as a dataclass, so writers may read `waiver.reason` or `waiver["reason"]`.
    `expired` rows stay failed; `source` is where the waiver was written ("waivers.yaml:3").
    """

    id: str
    host: str
    reason: str
    approver: str
    expires: str  # YYYY-MM-DD, valid through that day (UTC)
    expired: bool = False
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "reason": self.reason,
            "approver": self.approver,
            "expires": self.expires,
            "expired": self.expired,
            "source": self.source,
        }

    def __getitem__(self, name: str) -> str:
        value = self.as_dict()[name]
        return str(value).lower() if isinstance(value, bool) else str(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())

    def describe(self) -> str:
        """One line for every output: "waived until 2026-12-31 by J. Doe: reason (waivers.yaml:3)"."""
        state = f"waiver expired on {self.expires}" if self.expired else f"waived until {self.expires}"
        where = f" ({self.source})" if self.source else ""
        return f"{state} by {self.approver}: {self.reason}{where}"

    @classmethod
    def from_record(cls, record: Any) -> Waiver | None:
        if record is None or isinstance(record, Waiver):
            return record
        if not isinstance(record, Mapping):
            raise ValueError(f"waiver must be a mapping, not {type(record).__name__}")
        return cls(
            id=_text(record.get("id")),
            host=_text(record.get("host")),
            reason=_text(record.get("reason")),
            approver=_text(record.get("approver")),
            expires=_text(record.get("expires")),
            expired=bool(record.get("expired")),
            source=_text(record.get("source")),
        )


@dataclass(frozen=True)
class CertIdentity:
    """A certificate a row read, as drift compares it: by fingerprint and expiry, never by content."""

    path: str
    sha256: str  # SHA-256 of the DER, lowercase hex
    not_after: str  # ISO 8601 UTC

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "sha256": self.sha256, "not_after": self.not_after}

    @classmethod
    def from_record(cls, record: Any) -> CertIdentity:
        if isinstance(record, CertIdentity):
            return record
        if not isinstance(record, Mapping):
            raise ValueError(f"certificate must be a mapping, not {type(record).__name__}")
        return cls(
            path=_text(record.get("path")), sha256=_text(record.get("sha256")), not_after=_text(record.get("not_after"))
        )


@dataclass(frozen=True)
class ResultRow:
    """One check result on one host."""

    id: str
    key: str
    host: str
    outcome: str
    part: str = ""
    section: str = ""
    guide: str = ""
    text: str = ""
    kind: str = "invariant"
    severity: str = "medium"
    expected: str = ""
    observed: str = ""
    remediation: str = ""
    sources: tuple[str, ...] = ()
    diagnosis: tuple[str, ...] = ()
    reason: str = ""
    nodeid: str = ""
    started: float | None = None
    duration: float | None = None
    evidence: tuple[EvidenceItem, ...] = ()
    # The root cause this row follows from ("caused by [PKI-E-03] master01: ..."); "" for a root.
    caused_by: str = ""
    caused_by_key: str = ""  # "PKI-E-03@master01": the row it names
    # What was checked and the values found, one line an item (passes as well as failures).
    seen: tuple[str, ...] = ()
    # The waiver this row matched (outcome "waived"; an expired one leaves the row failed).
    waiver: Waiver | None = None
    # Against --baseline: "" or how the row got worse ("passed -> failed", "new row: failed").
    regression: str = ""
    probe: str = ""  # the catalogue's probe call, e.g. "days_left(/opt/etcd/ssl/server.pem)"
    # Certificates the row read (results.json derives them from the evidence when empty).
    certificates: tuple[CertIdentity, ...] = ()

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ResultRow:
        """Build a row from a plugin record; only `id`, `host` and `outcome` are required.

        Unknown outcomes, kinds and severities are refused rather than guessed: they mean the
        plugin and the catalogue disagree, and a report that silently miscounts is worse.
        """
        for required in ("id", "host", "outcome"):
            if required not in record:
                raise ValueError(f"result record without {required!r}: {sorted(record)}")
        row_id = _text(record["id"])
        part = _text(record.get("part"))
        outcome = _text(record["outcome"])
        kind = _text(record.get("kind")) or "invariant"
        severity = _text(record.get("severity")) or "medium"
        where = f"result {row_id}@{record['host']}"
        if outcome not in OUTCOMES:
            raise ValueError(f"{where}: outcome {outcome!r} is not one of {list(OUTCOMES)}")
        if kind not in KINDS:
            raise ValueError(f"{where}: kind {kind!r} is not one of {list(KINDS)}")
        if severity not in SEVERITY_WEIGHTS:
            raise ValueError(f"{where}: severity {severity!r} is not one of {list(SEVERITY_WEIGHTS)}")
        return cls(
            id=row_id,
            key=_text(record.get("key")) or (f"{row_id}:{part}" if part else row_id),
            host=_text(record["host"]),
            outcome=outcome,
            part=part,
            section=_text(record.get("section")),
            guide=_text(record.get("guide")),
            text=_text(record.get("text")),
            kind=kind,
            severity=severity,
            expected=_text(record.get("expected")),
            observed=_text(record.get("observed")),
            remediation=_text(record.get("remediation")),
            sources=_texts(record.get("sources")),
            diagnosis=_texts(record.get("diagnosis")),
            reason=_text(record.get("reason")),
            nodeid=_text(record.get("nodeid")),
            started=_number(record.get("started")),
            duration=_number(record.get("duration")),
            evidence=tuple(EvidenceItem.from_record(item) for item in record.get("evidence") or ()),
            caused_by=_text((record.get("caused_by") or {}).get("text")),
            caused_by_key=_cause_key(record.get("caused_by")),
            seen=_texts(record.get("seen")),
            waiver=Waiver.from_record(record.get("waiver")),
            regression=_text(record.get("regression")),
            probe=_text(record.get("probe")),
            certificates=tuple(CertIdentity.from_record(item) for item in record.get("certificates") or ()),
        )

    @property
    def section_name(self) -> str:
        """The section, or the ID's prefix when the record carries none (e.g. "PKI-E" for "PKI-E-03")."""
        return self.section or self.id.rsplit("-", 1)[0]


def _cause_key(link: Any) -> str:
    if not isinstance(link, Mapping) or not link.get("key"):
        return ""
    return f"{link['key']}@{link.get('host', '')}"


def as_rows(rows: Iterable[ResultRow | Mapping[str, Any]]) -> list[ResultRow]:
    """Rows as given, plugin records converted: writers accept either."""
    return [row if isinstance(row, ResultRow) else ResultRow.from_record(row) for row in rows]


def summarize_by_section(rows: Iterable[ResultRow]) -> dict[str, dict[str, int]]:
    """Section -> outcome -> count, every outcome present; sections in first-seen (guide) order."""
    summary: dict[str, dict[str, int]] = {}
    for row in rows:
        counts = summary.setdefault(row.section_name, dict.fromkeys(OUTCOMES, 0))
        counts[row.outcome] += 1
    return summary


def count_outcomes(rows: Iterable[ResultRow]) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for row in rows:
        counts[row.outcome] += 1
    return counts


@dataclass(frozen=True)
class ProfileScore:
    """How the findings weigh under a profile: seed reports them, hardened fails on them."""

    profile: str
    findings: tuple[ResultRow, ...]
    score: int

    @property
    def counted_as_failures(self) -> int:
        return len(self.findings) if self.profile == "hardened" else 0

    @property
    def verdict(self) -> str:
        if not self.findings:
            return "no findings"
        if self.profile == "hardened":
            return f"{len(self.findings)} finding(s) counted as failures"
        return f"{len(self.findings)} finding(s) reported, not failing"


def profile_score(rows: Sequence[ResultRow], profile: str) -> ProfileScore:
    """Score the findings (kind "finding" rows that did not pass): high=5, medium=3, low=1.

    Under seed the plugin records them as outcome "finding"; under hardened as "failed". Both count
    here, so the score means the same under either profile; only the verdict differs.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not one of {list(PROFILES)}")
    findings = tuple(
        row for row in rows if row.outcome == "finding" or (row.kind == "finding" and row.outcome == "failed")
    )
    return ProfileScore(
        profile=profile,
        findings=findings,
        score=sum(SEVERITY_WEIGHTS[row.severity] for row in findings),
    )
