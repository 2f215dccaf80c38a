"""Offline tests of the report writers: report.html, the evidence bundle, its manifest, secret scans."""

from __future__ import annotations

import hashlib
import html
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from kubeproof.redact import fingerprint, redact
from kubeproof.reports import (
    OUTCOMES,
    ResultRow,
    evidence_filename,
    profile_score,
    scan_for_secrets,
    summarize_by_section,
    verify_manifest,
    write_evidence_bundle,
    write_html,
)

BOOTSTRAP_TOKEN = "0fb61c46f8991b718eb38d27b605b008"
TOKEN_CSV_LINE = f'{BOOTSTRAP_TOKEN},kubelet-bootstrap,10001,"system:kubelet-bootstrap"'
# Split so that this source file does not itself look like it holds a private key.
PEM_PRIVATE_KEY = (
    "-----BEGIN " + "RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END " + "RSA PRIVATE KEY-----"
)
STARTED = 1_767_225_600.0  # 2026-01-01T00:00:00Z

META: dict[str, Any] = {
    "cluster": "lab",
    "profile": "seed",
    "kubeproof": "0.1.0",
    "args": ["--cluster", ".kubeproof/lab/cluster.yaml", "suites"],
    "started": STARTED,
    "finished": STARTED + 42.5,
    "hosts": ["master01", "node01", "node02"],
}
STATS: dict[str, dict[str, Any]] = {
    "master01": {"ssh_connections": 1, "remote_commands": 12, "remote_command_seconds": 1.25, "fact_batches": 2},
    "node01": {"ssh_connections": 1, "remote_commands": 9, "remote_command_seconds": 0.5, "fact_batches": 1},
}


def _record(key: str, host: str, outcome: str, **fields: Any) -> dict[str, Any]:
    check_id, _, part = key.partition(":")
    section = check_id.rsplit("-", 1)[0]
    record: dict[str, Any] = {
        "id": check_id,
        "key": key,
        "part": part,
        "host": host,
        "section": section,
        "guide": {"ENV": "一、环境准备", "PKI-E": "二、etcd 证书", "ETCD": "二、部署 etcd 集群"}[section],
        "text": f"invariant {key}",
        "kind": "invariant",
        "severity": "medium",
        "outcome": outcome,
        "expected": "",
        "observed": "",
        "remediation": "",
        "sources": [],
        "diagnosis": [],
        "reason": "",
        "nodeid": f"suites/test_x.py::test_{section.lower()}[{key}-{host}]",
        "started": STARTED,
        "duration": 0.25,
        "evidence": [],
    }
    record.update(fields)
    return record


RECORDS: list[dict[str, Any]] = [
    _record(
        "ENV-01",
        "master01",
        "passed",
        expected="expected one of ['inactive/disabled', 'absent']",
        observed="'inactive/disabled'",
        remediation="systemctl disable --now firewalld",
        sources=["master01$ systemctl is-active firewalld"],
        evidence=[
            {
                "host": "master01",
                "fact": "firewalld",
                "command": "systemctl is-active firewalld; systemctl is-enabled firewalld",
                "rc": 3,
                "stdout": "inactive\ndisabled\n",
                "stderr": "",
                "timestamp": STARTED + 1,
            }
        ],
    ),
    _record(
        "ENV-04:fstab",
        "node01",
        "failed",
        expected="expected none",
        observed="['/dev/mapper/centos-swap swap swap defaults 0 0']",
        remediation="sed -ri 's/.*swap.*/#&/' /etc/fstab && swapoff -a",
        sources=["node01$ cat /etc/fstab"],
        diagnosis=["fstab line 11 is active"],
    ),
    _record(
        "ENV-03",
        "node02",
        "failed",
        expected="expected 'node02'",
        observed="'<script>alert(\"x\")</script>'",
        remediation="hostnamectl set-hostname node02 & reboot",
    ),
    _record(
        "PKI-E-03",
        "master01",
        "error",
        expected="expected to include all of ['192.168.61.17']",
        remediation="re-issue server.pem with every etcd member's address",
        reason="probe could not run: ssh master01: connection refused",
    ),
    _record(
        "PKI-E-07",
        "node01",
        "passed",
        expected="expected file mode 0600 or stricter",
        observed="'0600'",
        remediation="chmod 600 /opt/etcd/ssl/*-key.pem",
        sources=["node01$ stat -c %a /opt/etcd/ssl/server-key.pem"],
        diagnosis=["/opt/kubernetes/cfg/token.csv:\n" + TOKEN_CSV_LINE, PEM_PRIVATE_KEY],
        evidence=[
            {
                "host": "node01",
                "fact": "etcd_key_files",
                "command": "cat /opt/etcd/ssl/server-key.pem /opt/kubernetes/cfg/token.csv",
                "rc": 0,
                "stdout": PEM_PRIVATE_KEY + "\n" + TOKEN_CSV_LINE + "\n",
                "stderr": "",
                "timestamp": STARTED + 2,
            }
        ],
    ),
    _record("ETCD-01", "node02", "passed", expected="expected true", observed="True", remediation="run etcd.sh"),
    _record(
        "ETCD-03",
        "master01",
        "skipped",
        expected="expected 'https://192.168.61.17:2380'",
        reason="not applicable: no etcd member on this host",
    ),
    _record(
        "ETCD-10:client-cert-auth",
        "master01",
        "finding",
        kind="finding",
        severity="high",
        expected="expected true",
        observed="False",
        remediation="add --client-cert-auth=true to /opt/etcd/cfg/etcd",
    ),
]


@pytest.fixture
def rows() -> list[ResultRow]:
    return [ResultRow.from_record(record) for record in RECORDS]


@pytest.fixture
def report_dir(tmp_path: Path, rows: list[ResultRow]) -> Path:
    directory = tmp_path / "report"
    directory.mkdir()
    (directory / "junit.xml").write_text('<?xml version="1.0"?><testsuites/>\n', encoding="utf-8")
    write_html(rows, directory / "report.html", meta=META, stats=STATS)
    write_evidence_bundle(rows, directory, meta=META, stats=STATS)
    return directory


def _files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


class _TagBalance(HTMLParser):
    VOID = frozenset({"meta", "input", "br", "hr", "img", "link", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.open_tags: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open_tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.open_tags and self.open_tags[-1] == tag:
            self.open_tags.pop()
        else:
            self.problems.append(f"</{tag}> closes {self.open_tags[-1:]} at {self.getpos()}")


class _TableRows(HTMLParser):
    """Cell texts of the body rows of the table with a given id."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.in_table = self.in_body = self.in_cell = False
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("id", self.table_id) in attrs:
            self.in_table = True
        elif self.in_table and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.rows.append([])
        elif self.in_body and tag == "td":
            self.rows[-1].append("")
            self.in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.in_table = self.in_body = False
        elif tag == "td":
            self.in_cell = False

    def handle_data(self, data: str) -> None:
        if self.in_body and self.in_cell:
            self.rows[-1][-1] += data


def _table_rows(document: str, table_id: str) -> list[list[str]]:
    parser = _TableRows(table_id)
    parser.feed(document)
    return parser.rows


# ----------------------------------------------------------------------------- model


def test_from_record_tolerates_missing_optional_keys() -> None:
    row = ResultRow.from_record({"id": "PKI-E-02", "host": "node01", "outcome": "skipped", "part": "chain"})
    assert (row.key, row.section_name, row.sources, row.evidence, row.started) == (
        "PKI-E-02:chain",
        "PKI-E",
        (),
        (),
        None,
    )
    with pytest.raises(ValueError, match="outcome 'xpassed'"):
        ResultRow.from_record({"id": "ENV-01", "host": "master01", "outcome": "xpassed"})


def test_summary_counts_by_section_in_guide_order(rows: list[ResultRow]) -> None:
    summary = summarize_by_section(rows)
    assert list(summary) == ["ENV", "PKI-E", "ETCD"]
    assert summary["ENV"] == {"passed": 1, "failed": 2, "error": 0, "skipped": 0, "finding": 0, "waived": 0}
    assert summary["PKI-E"] == {"passed": 1, "failed": 0, "error": 1, "skipped": 0, "finding": 0, "waived": 0}
    assert summary["ETCD"] == {"passed": 1, "failed": 0, "error": 0, "skipped": 1, "finding": 1, "waived": 0}


def test_profile_score_weights_findings(rows: list[ResultRow]) -> None:
    seed = profile_score(rows, "seed")
    assert ([r.key for r in seed.findings], seed.score, seed.counted_as_failures) == (
        ["ETCD-10:client-cert-auth"],
        5,
        0,
    )
    # Under hardened the plugin records the same findings as failures; they still score, and count.
    hardened_records = [
        {**record, "outcome": "failed"} if record.get("kind") == "finding" else record for record in RECORDS
    ]
    low = _record("ETCD-10:plain-http", "node01", "failed", kind="finding", severity="low")
    hardened = profile_score([ResultRow.from_record(r) for r in [*hardened_records, low]], "hardened")
    assert (hardened.score, hardened.counted_as_failures) == (6, 2)
    with pytest.raises(ValueError):
        profile_score(rows, "relaxed")


# ----------------------------------------------------------------------------- html


def test_html_shows_every_row_escaped(report_dir: Path) -> None:
    document = (report_dir / "report.html").read_text(encoding="utf-8")
    for record in RECORDS:
        for field in ("key", "host", "outcome", "expected", "observed", "remediation"):
            if record[field]:
                assert html.escape(record[field], quote=True) in document, (record["key"], field)
    assert "<script>alert" not in document  # the page's own script is its only one
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in document
    assert "一、环境准备" in document
    assert len(_table_rows(document, "results-table")) == len(RECORDS)


def test_html_is_well_formed(report_dir: Path) -> None:
    document = (report_dir / "report.html").read_text(encoding="utf-8")
    parser = _TagBalance()
    parser.feed(document)
    parser.close()
    assert parser.problems == []
    assert parser.open_tags == []
    for tag in ("table", "thead", "tbody", "tr", "td", "details"):
        assert document.count(f"<{tag}>") + document.count(f"<{tag} ") == document.count(f"</{tag}>"), tag


def test_html_summary_and_transport_tables(report_dir: Path) -> None:
    document = (report_dir / "report.html").read_text(encoding="utf-8")
    summary = {cells[0]: [int(n) for n in cells[2:]] for cells in _table_rows(document, "summary")}
    assert list(summary) == ["ENV", "PKI-E", "ETCD"]
    assert summary["ENV"] == [1, 2, 0, 0, 0, 0, 3]  # OUTCOMES order, then the total
    assert summary["ETCD"] == [1, 0, 0, 1, 1, 0, 3]
    assert len(OUTCOMES) == 6
    assert _table_rows(document, "transport") == [
        ["master01", "1", "12", "1.250", "2"],
        ["node01", "1", "9", "0.500", "1"],
    ]
    findings = _table_rows(document, "findings")
    assert [cells[:3] for cells in findings] == [["ETCD-10:client-cert-auth", "master01", "high"]]


# ----------------------------------------------------------------------------- bundle and manifest


def test_evidence_file_per_result(report_dir: Path) -> None:
    assert evidence_filename(ResultRow.from_record(RECORDS[1])) == "ENV-04_fstab@node01.json"
    evidence = sorted(p.name for p in (report_dir / "evidence").iterdir())
    assert len(evidence) == len(RECORDS) + 1  # + session.json
    document = json.loads((report_dir / "evidence" / "ENV-01@master01.json").read_text(encoding="utf-8"))
    assert (document["id"], document["host"], document["outcome"]) == ("ENV-01", "master01", "passed")
    assert document["observed"] == "'inactive/disabled'"
    assert document["sources"] == ["master01$ systemctl is-active firewalld"]
    assert document["started"] == "2026-01-01T00:00:00.000Z"
    assert document["started_unix"] == STARTED
    [item] = document["evidence"]
    assert item["command"].startswith("systemctl is-active firewalld")
    assert (item["stdout"], item["rc"], item["timestamp"]) == ("inactive\ndisabled\n", 3, "2026-01-01T00:00:01.000Z")
    session = json.loads((report_dir / "evidence" / "session.json").read_text(encoding="utf-8"))
    assert session["meta"]["cluster"] == "lab"
    assert session["stats"]["master01"]["ssh_connections"] == 1
    assert session["outcomes"]["failed"] == 2


def test_manifest_covers_every_file_and_verifies(report_dir: Path) -> None:
    manifest = json.loads((report_dir / "MANIFEST.json").read_text(encoding="utf-8"))
    listed = [entry["path"] for entry in manifest["files"]]
    assert listed == sorted(listed)
    assert listed == [path for path in _files(report_dir) if path != "MANIFEST.json"]
    assert {"junit.xml", "report.html", "SHA256SUMS", "evidence/session.json"} <= set(listed)
    for entry in manifest["files"]:
        data = (report_dir / entry["path"]).read_bytes()
        assert (entry["size"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert verify_manifest(report_dir) == []
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS"], cwd=report_dir, check=True)


def test_tampering_is_reported(report_dir: Path) -> None:
    tampered = report_dir / "evidence" / "ENV-03@node02.json"
    tampered.write_text(tampered.read_text(encoding="utf-8").replace('"failed"', '"passed"'), encoding="utf-8")
    (report_dir / "junit.xml").unlink()
    (report_dir / "extra.txt").write_text("added later\n", encoding="utf-8")
    problems = verify_manifest(report_dir)
    assert "evidence/ENV-03@node02.json: sha256 differs from MANIFEST.json" in problems
    assert "junit.xml: listed in MANIFEST.json but missing" in problems
    assert "extra.txt: not listed in MANIFEST.json" in problems
    (report_dir / "MANIFEST.json").unlink()
    assert verify_manifest(report_dir) == ["MANIFEST.json: missing"]


# ----------------------------------------------------------------------------- secrets


def test_secrets_are_redacted_in_every_file(report_dir: Path) -> None:
    for path in _files(report_dir):
        text = (report_dir / path).read_text(encoding="utf-8")
        assert BOOTSTRAP_TOKEN not in text, path
        assert "PRIVATE KEY-----" not in text, path
    assert scan_for_secrets(report_dir, [BOOTSTRAP_TOKEN]) == []
    # Redacted, not dropped: the reader still sees that something was there.
    document = json.loads((report_dir / "evidence" / "PKI-E-07@node01.json").read_text(encoding="utf-8"))
    assert document["evidence"][0]["stdout"] == redact(PEM_PRIVATE_KEY + "\n" + TOKEN_CSV_LINE + "\n")
    assert "<redacted RSA PRIVATE KEY>" in document["evidence"][0]["stdout"]
    assert f"<redacted {fingerprint(BOOTSTRAP_TOKEN)}>,kubelet-bootstrap" in document["evidence"][0]["stdout"]


def test_scan_finds_planted_secrets(report_dir: Path) -> None:
    (report_dir / "evidence" / "planted.json").write_text(
        json.dumps({"stdout": PEM_PRIVATE_KEY + "\n" + TOKEN_CSV_LINE}), encoding="utf-8"
    )
    findings = scan_for_secrets(report_dir, [BOOTSTRAP_TOKEN])
    assert findings == [
        "evidence/planted.json: PEM private key block",
        f"evidence/planted.json: secret {fingerprint(BOOTSTRAP_TOKEN)}",
    ]
    assert not any(BOOTSTRAP_TOKEN in finding for finding in findings)


def test_run_warnings_come_first_escaped_and_empty_meta_is_left_out(tmp_path: Path, rows: list[ResultRow]) -> None:
    warning = "host identity was not verified for master01 <&>: StrictHostKeyChecking no"
    meta = {**META, "warnings": [warning], "source": ""}
    write_html(rows, tmp_path / "report.html", meta=meta, stats=STATS)
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    shown = f'<p class="warning" role="alert">WARNING: {html.escape(warning)}</p>'
    assert shown in text
    assert text.index(shown) < text.index('<dl class="meta">')
    assert "<dt>warnings</dt>" not in text and "<dt>source</dt>" not in text
    write_html(rows, tmp_path / "quiet.html", meta=META, stats=STATS)
    assert 'class="warning"' not in (tmp_path / "quiet.html").read_text(encoding="utf-8")
