"""The evidence bundle: one JSON file per result, the session's meta and transport counters, and a
sha256 manifest sealing everything in the report directory.

Layout written under `report_dir`:

    evidence/<key>@<host>.json   one result: verdict, sources, commands, raw output, timestamps
    evidence/session.json        meta + per-host transport counters + an index of the results
    SHA256SUMS                   `sha256sum -c` format, every file but itself and MANIFEST.json
    MANIFEST.json                every file but itself (SHA256SUMS included): path, size, sha256
    MANIFEST.json.sig / .pub     the manifest's Ed25519 signature and the signer's public key
                                 (reports/signing.py; outside the manifest, which they vouch for)

The manifest covers whatever else is in the directory (junit.xml, report.html), so write those
first and the bundle last.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from kubeproof.redact import redact
from kubeproof.reports.model import ResultRow, as_rows, count_outcomes, iso_utc

EVIDENCE_DIR = "evidence"
SESSION_FILE = "session.json"
MANIFEST_FILE = "MANIFEST.json"
SHA256SUMS_FILE = "SHA256SUMS"
SIGNATURE_FILE = "MANIFEST.json.sig"
PUBLIC_KEY_FILE = "MANIFEST.json.pub"
# Not sealed by the manifest: the manifest itself and what signs it.
UNSEALED: frozenset[str] = frozenset({MANIFEST_FILE, SIGNATURE_FILE, PUBLIC_KEY_FILE})

_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_SHA256SUMS_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


def _redacted(value: Any) -> Any:
    """Every string in a JSON document through `redact` again: the plugin redacts too, but a
    secret that slips through one layer must not reach the disk."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {redact(str(key)): _redacted(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redacted(item) for item in value]
    return redact(str(value))


def _write_json(path: Path, document: Any) -> None:
    text = json.dumps(_redacted(document), ensure_ascii=False, indent=2)
    path.write_text(text + "\n", encoding="utf-8")


def _filename_part(text: str) -> str:
    return _UNSAFE_FILENAME_CHARS.sub("_", redact(text)).strip("._") or "_"


def evidence_filename(row: ResultRow) -> str:
    """`ENV-04:fstab` on master01 -> `ENV-04_fstab@master01.json`; cluster-wide rows have no host."""
    return f"{_filename_part(row.key)}@{_filename_part(row.host or 'cluster')}.json"


def _row_document(row: ResultRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "key": row.key,
        "part": row.part,
        "host": row.host,
        "section": row.section_name,
        "guide": row.guide,
        "text": row.text,
        "kind": row.kind,
        "severity": row.severity,
        "outcome": row.outcome,
        "expected": row.expected,
        "observed": row.observed,
        "remediation": row.remediation,
        "reason": row.reason,
        "caused_by": row.caused_by_key or None,
        "caused_by_text": row.caused_by or None,
        "sources": list(row.sources),
        "diagnosis": list(row.diagnosis),
        "seen": list(row.seen),
        "waiver": row.waiver.as_dict() if row.waiver is not None else None,
        "regression": row.regression,
        "nodeid": row.nodeid,
        "started": iso_utc(row.started),
        "started_unix": row.started,
        "duration_seconds": row.duration,
        "evidence": [
            {
                "host": item.host,
                "fact": item.fact,
                "command": item.command,
                "rc": item.rc,
                "stdout": item.stdout,
                "stderr": item.stderr,
                "timestamp": iso_utc(item.timestamp),
                "timestamp_unix": item.timestamp,
            }
            for item in row.evidence
        ],
    }


def bundle_files(report_dir: Path) -> list[str]:
    return sorted(path.relative_to(report_dir).as_posix() for path in report_dir.rglob("*") if path.is_file())


def sha256_of(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def write_manifest(report_dir: Path) -> Path:
    """Seal `report_dir`: SHA256SUMS first, then MANIFEST.json over every file including it."""
    report_dir = Path(report_dir)
    for stale in (SIGNATURE_FILE, PUBLIC_KEY_FILE):  # an earlier run's signature vouches for nothing here
        (report_dir / stale).unlink(missing_ok=True)
    sealed = [path for path in bundle_files(report_dir) if path not in (*UNSEALED, SHA256SUMS_FILE)]
    sums = "".join(f"{sha256_of(report_dir / path)}  {path}\n" for path in sealed)
    (report_dir / SHA256SUMS_FILE).write_text(sums, encoding="utf-8")
    entries = [
        {"path": path, "size": (report_dir / path).stat().st_size, "sha256": sha256_of(report_dir / path)}
        for path in bundle_files(report_dir)
        if path not in UNSEALED
    ]
    manifest = report_dir / MANIFEST_FILE
    _write_json(manifest, {"algorithm": "sha256", "files": entries})
    return manifest


def write_evidence_bundle(
    rows: Iterable[ResultRow | Mapping[str, Any]],
    report_dir: Path,
    *,
    meta: Mapping[str, Any],
    stats: Mapping[str, Mapping[str, Any]],
) -> Path:
    """Write evidence/ under `report_dir`, then seal the whole directory; return MANIFEST.json's path.

    `rows` are `ResultRow`s or the plugin's plain records. JSON files left in evidence/ by an
    earlier run into the same directory are removed first, so the manifest never vouches for
    stale results.
    """
    report_dir = Path(report_dir)
    results = as_rows(rows)
    evidence_dir = report_dir / EVIDENCE_DIR
    evidence_dir.mkdir(parents=True, exist_ok=True)
    for stale in evidence_dir.glob("*.json"):
        stale.unlink()

    index: list[dict[str, str]] = []
    taken: set[str] = {SESSION_FILE}
    for row in results:
        name = evidence_filename(row)
        # The same key on the same host twice (e.g. a check parametrised twice) must not overwrite.
        stem, serial = name.removesuffix(".json"), 2
        while name in taken:
            name, serial = f"{stem}-{serial}.json", serial + 1
        taken.add(name)
        _write_json(evidence_dir / name, _row_document(row))
        entry = {"key": row.key, "host": row.host, "outcome": row.outcome, "file": f"{EVIDENCE_DIR}/{name}"}
        if row.caused_by_key:
            entry["caused_by"] = row.caused_by_key
        if row.waiver is not None:
            entry["waiver"] = row.waiver.describe()
        if row.regression:
            entry["regression"] = row.regression
        index.append(entry)

    _write_json(
        evidence_dir / SESSION_FILE,
        {"meta": meta, "stats": stats, "outcomes": count_outcomes(results), "results": index},
    )
    return write_manifest(report_dir)


def inside(path: str) -> bool:
    pure = PurePosixPath(path)
    return bool(path) and not pure.is_absolute() and ".." not in pure.parts


def check_sha256sums(report_dir: Path, listed: Mapping[str, Mapping[str, Any]]) -> list[str]:
    sums_path = report_dir / SHA256SUMS_FILE
    if not sums_path.is_file():
        return [f"{SHA256SUMS_FILE}: missing"]
    problems: list[str] = []
    summed: set[str] = set()
    for number, line in enumerate(sums_path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _SHA256SUMS_LINE.fullmatch(line)
        if not match:
            problems.append(f"{SHA256SUMS_FILE}:{number}: not a sha256sum line")
            continue
        digest, path = match.groups()
        summed.add(path)
        if path not in listed:
            problems.append(f"{SHA256SUMS_FILE}:{number}: {path} is not in {MANIFEST_FILE}")
        elif listed[path].get("sha256") != digest:
            problems.append(f"{SHA256SUMS_FILE}:{number}: {path} disagrees with {MANIFEST_FILE}")
    for path in sorted(set(listed) - summed - {SHA256SUMS_FILE}):
        problems.append(f"{path}: missing from {SHA256SUMS_FILE}")
    return problems


def verify_manifest(report_dir: Path) -> list[str]:
    """Everything wrong with a sealed report directory; an empty list means it verifies.

    Checks that every listed file exists with its recorded size and sha256, that no file is
    unlisted, and that SHA256SUMS agrees with the manifest.
    """
    report_dir = Path(report_dir)
    try:
        manifest = json.loads((report_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"{MANIFEST_FILE}: missing"]
    except (OSError, ValueError) as error:
        return [f"{MANIFEST_FILE}: unreadable ({error})"]
    entries = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(entries, list):
        return [f"{MANIFEST_FILE}: no 'files' list"]

    problems: list[str] = []
    listed: dict[str, Mapping[str, Any]] = {}
    for entry in entries:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or not inside(path):
            problems.append(f"{MANIFEST_FILE}: bad entry {entry!r}")
            continue
        if path in listed:
            problems.append(f"{path}: listed twice in {MANIFEST_FILE}")
        listed[path] = entry
        file = report_dir / path
        if not file.is_file():
            problems.append(f"{path}: listed in {MANIFEST_FILE} but missing")
            continue
        size = file.stat().st_size
        if size != entry.get("size"):
            problems.append(f"{path}: size {size}, {MANIFEST_FILE} says {entry.get('size')}")
        if sha256_of(file) != entry.get("sha256"):
            problems.append(f"{path}: sha256 differs from {MANIFEST_FILE}")
    unlisted = [path for path in bundle_files(report_dir) if path not in listed and path not in UNSEALED]
    problems += [f"{path}: not listed in {MANIFEST_FILE}" for path in unlisted]
    return problems + check_sha256sums(report_dir, listed)
