"""results.json: every row of a run as one JSON document, for dashboards and `kubeproof diff`.

The schema ("kubeproof-results/1") is documented in docs/RESULTS_SCHEMA.md; `ROW_FIELDS` below is
its list of row fields, and `load_results` refuses a document that does not follow it, naming the
file and row. Certificates a row read are recorded by fingerprint and expiry only, taken from the
public certificate blocks in the row's evidence; no secret is ever part of a row.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubeproof.redact import redact
from kubeproof.reports.model import OUTCOMES, CertIdentity, EvidenceItem, ResultRow, as_rows, count_outcomes, iso_utc
from kubeproof.x509 import CertificateParseError, parse_certificate

SCHEMA = "kubeproof-results/1"
RESULTS_FILE = "results.json"

# Every row has exactly these fields (docs/RESULTS_SCHEMA.md).
ROW_FIELDS: tuple[str, ...] = (
    "id",
    "key",
    "part",
    "host",
    "section",
    "text",
    "kind",
    "severity",
    "outcome",
    "expected",
    "observed",
    "remediation",
    "reason",
    "sources",
    "diagnosis",
    "seen",
    "root_cause",
    "caused_by",
    "waiver",
    "regression",
    "timings",
    "probe",
    "certificates",
    "nodeid",
)

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.DOTALL)
_PROBE_ARGUMENT = re.compile(r"\w+\((.*)\)")


class ResultsError(ValueError):
    """results.json missing, unreadable or not in the schema; the message names the file."""


# ----------------------------------------------------------------------------- certificates


@functools.lru_cache(maxsize=512)
def _fingerprint_and_expiry(block: str) -> tuple[str, str] | None:
    """Every row of a directory reads the same dump: each certificate is parsed once."""
    try:
        cert = parse_certificate(block)
    except CertificateParseError:
        return None
    return cert.sha256_fingerprint, cert.not_after.isoformat().replace("+00:00", "Z")


def _cert_identities(label: str, text: str) -> list[CertIdentity]:
    found = []
    for block in _PEM_CERT.findall(text):
        identity = _fingerprint_and_expiry(block)
        if identity is not None:
            found.append(CertIdentity(path=label, sha256=identity[0], not_after=identity[1]))
    return found


def _evidence_certificates(item: EvidenceItem) -> list[CertIdentity]:
    """Certificates in one fact's raw output: a directory dump (`==> name` frames) or one PEM."""
    if "BEGIN CERTIFICATE" not in item.stdout:
        return []
    if item.fact.startswith("certs:"):
        directory = item.fact.removeprefix("certs:")
        found: list[CertIdentity] = []
        for frame in item.stdout.split("==> ")[1:]:
            name, _, body = frame.partition("\n")
            found += _cert_identities(posixpath.join(directory, name.strip()), body)
        return found
    if item.fact.startswith("kubeconfig-cert:"):
        return _cert_identities("kubeconfig:" + item.fact.removeprefix("kubeconfig-cert:"), item.stdout)
    return _cert_identities(item.fact, item.stdout)


def certificates_of(row: ResultRow) -> tuple[CertIdentity, ...]:
    """The certificates this row is about, by fingerprint and notAfter.

    A directory dump holds every certificate of the directory; the row's probe argument says which
    it read: a file (and its directory's ca.pem, its issuer in the guide's layout), a directory
    (all of them), or `kubeconfig:<path>`. A row whose probe names none of them has none.
    """
    if row.certificates:
        return row.certificates
    match = _PROBE_ARGUMENT.fullmatch(row.probe.strip())
    argument = match.group(1).strip() if match else ""
    if not argument.startswith(("/", "kubeconfig:")):
        return ()
    wanted: set[str] = set()
    if argument.endswith(".pem") or argument.startswith("kubeconfig:"):
        wanted.add(argument)
        if not argument.startswith("kubeconfig:"):
            wanted.add(posixpath.join(posixpath.dirname(argument), "ca.pem"))
    seen: dict[tuple[str, str], CertIdentity] = {}
    for item in row.evidence:
        for cert in _evidence_certificates(item):
            in_directory = posixpath.dirname(cert.path) == argument.rstrip("/")
            if cert.path in wanted or in_directory:
                seen.setdefault((cert.path, cert.sha256), cert)
    return tuple(sorted(seen.values(), key=lambda cert: (cert.path, cert.sha256)))


# ----------------------------------------------------------------------------- writing


def row_document(row: ResultRow, settle: Mapping[str, Any] | None = None) -> dict[str, Any]:
    root = row.caused_by_key or None
    return {
        "id": row.id,
        "key": row.key,
        "part": row.part,
        "host": row.host,
        "section": row.section_name,
        "text": row.text,
        "kind": row.kind,
        "severity": row.severity,
        "outcome": row.outcome,
        "expected": row.expected,
        "observed": row.observed,
        "remediation": row.remediation,
        "reason": row.reason,
        "sources": list(row.sources),
        "diagnosis": list(row.diagnosis),
        "seen": list(row.seen),
        "root_cause": root,
        "caused_by": row.caused_by or None,
        "waiver": row.waiver.as_dict() if row.waiver is not None else None,
        "regression": row.regression,
        "timings": {
            "started": iso_utc(row.started),
            "started_unix": row.started,
            "duration_seconds": row.duration,
            **({"settle": dict(settle)} if settle else {}),
        },
        "probe": row.probe,
        "certificates": [cert.as_dict() for cert in certificates_of(row)],
        "nodeid": row.nodeid,
    }


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(key): _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def results_document(rows: Iterable[ResultRow | Mapping[str, Any]], *, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The whole document; plugin records keep their settle window in the row's timings."""
    records = list(rows)
    typed = as_rows(records)
    settles = [record.get("settle") if isinstance(record, Mapping) else None for record in records]
    document: dict[str, Any] = _redacted(
        {
            "schema": SCHEMA,
            "meta": dict(meta),
            "outcomes": count_outcomes(typed),
            "rows": [row_document(row, settle) for row, settle in zip(typed, settles, strict=True)],
        }
    )
    return document


def write_results(rows: Iterable[ResultRow | Mapping[str, Any]], path: Path, *, meta: Mapping[str, Any]) -> Path:
    """Write results.json to `path` (a file, or a directory to hold one); return the file's path."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    document = results_document(rows, meta=meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Results:
    """A results.json read back: where it came from, its meta, and its rows."""

    path: Path
    meta: Mapping[str, Any]
    rows: tuple[ResultRow, ...]

    def by_key(self) -> dict[tuple[str, str], ResultRow]:
        return {(row.key, row.host): row for row in self.rows}


def _check_row(position: int, row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise ResultsError(f"{where}: rows[{position}] is not an object")
    label = f"{where}: rows[{position}] ({row.get('key')}@{row.get('host')})"
    missing = [name for name in ROW_FIELDS if name not in row]
    if missing:
        raise ResultsError(f"{label}: missing {', '.join(missing)}")
    if row["outcome"] not in OUTCOMES:
        raise ResultsError(f"{label}: outcome {row['outcome']!r} is not one of {list(OUTCOMES)}")
    for name in ("sources", "diagnosis", "seen", "certificates"):
        if not isinstance(row[name], list):
            raise ResultsError(f"{label}: {name} must be a list")
    if not isinstance(row["timings"], dict):
        raise ResultsError(f"{label}: timings must be an object")
    timings = row["timings"]
    root = row["root_cause"]
    record = {
        **row,
        "caused_by": {"key": root.rpartition("@")[0], "host": root.rpartition("@")[2], "text": row["caused_by"] or ""}
        if root
        else None,
        "started": timings.get("started_unix"),
        "duration": timings.get("duration_seconds"),
    }
    return record


def load_results(path: Path) -> Results:
    """results.json from a report directory (or the file itself), checked against the schema."""
    path = Path(path)
    file = path / RESULTS_FILE if path.is_dir() else path
    if not path.exists():
        raise ResultsError(f"{path}: no such file or directory")
    if not file.is_file():
        raise ResultsError(f"{path}: no {RESULTS_FILE} in this directory (a report dir written with --report-dir)")
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"{file}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ResultsError(f"{file}: not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        found = document.get("schema") if isinstance(document, dict) else type(document).__name__
        raise ResultsError(f"{file}: schema {found!r}, expected {SCHEMA!r}")
    rows = document.get("rows")
    meta = document.get("meta")
    if not isinstance(rows, list) or not isinstance(meta, dict):
        raise ResultsError(f"{file}: expected 'meta' (object) and 'rows' (list)")
    typed = []
    for position, row in enumerate(rows):
        record = _check_row(position, row, str(file))
        try:
            typed.append(ResultRow.from_record(record))
        except ValueError as exc:
            raise ResultsError(f"{file}: rows[{position}]: {exc}") from None
    return Results(path=file, meta=meta, rows=tuple(typed))
