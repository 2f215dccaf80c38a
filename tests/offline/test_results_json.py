"""results.json: the documented schema, written and read back, certificates by fingerprint only."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from kubeproof.reports.results_json import ROW_FIELDS, SCHEMA, ResultsError, load_results, write_results
from kubeproof.x509 import parse_certificate
from tests.offline.audit_samples import STARTED, certificate_pem, directory_dump, record

REPO = Path(__file__).resolve().parents[2]
NOT_AFTER = dt.datetime(2036, 1, 1, tzinfo=dt.UTC)


def test_every_row_field_is_documented() -> None:
    documented = (REPO / "docs" / "RESULTS_SCHEMA.md").read_text(encoding="utf-8")
    assert SCHEMA in documented
    table = set(re.findall(r"^\| `(\w+)` \|", documented, flags=re.MULTILINE))
    assert set(ROW_FIELDS) <= table, sorted(set(ROW_FIELDS) - table)


def test_written_rows_follow_the_schema_and_read_back(tmp_path: Path) -> None:
    waiver = {"id": "ENV-04:fstab", "host": "node01", "reason": "r", "approver": "p", "expires": "2026-12-31"}
    records = [
        record("ENV-01", "master01", "passed", seen=["firewalld inactive/disabled"]),
        record(
            "ENV-04:fstab",
            "node01",
            "waived",
            waiver=waiver,
            caused_by={"key": "ENV-03", "host": "node01", "text": "caused by [ENV-03] node01: x"},
            settle={"window_seconds": 30, "reprobes": 2},
        ),
    ]
    path = write_results(records, tmp_path, meta={"cluster": "lab", "regressions": 0})
    assert path == tmp_path / "results.json"
    document = json.loads(path.read_text())
    assert document["schema"] == SCHEMA
    assert document["meta"] == {"cluster": "lab", "regressions": 0}
    assert document["outcomes"]["waived"] == 1 and document["outcomes"]["passed"] == 1
    for row in document["rows"]:
        assert list(row) == list(ROW_FIELDS)
    first, second = document["rows"]
    assert first["seen"] == ["firewalld inactive/disabled"]
    assert first["timings"] == {
        "started": "2026-01-01T00:00:00.000Z",
        "started_unix": STARTED,
        "duration_seconds": 0.25,
    }
    assert second["waiver"]["reason"] == "r" and second["waiver"]["expired"] is False
    assert second["root_cause"] == "ENV-03@node01"
    assert second["timings"]["settle"] == {"window_seconds": 30, "reprobes": 2}

    loaded = load_results(tmp_path)
    assert [(row.key, row.host, row.outcome) for row in loaded.rows] == [
        ("ENV-01", "master01", "passed"),
        ("ENV-04:fstab", "node01", "waived"),
    ]
    assert loaded.rows[1].waiver is not None and loaded.rows[1].waiver.approver == "p"
    assert loaded.rows[1].caused_by_key == "ENV-03@node01"
    assert loaded.rows[0].started == STARTED


def test_certificates_are_the_ones_the_probe_names_by_fingerprint_and_expiry(tmp_path: Path) -> None:
    server, ca, peer = (certificate_pem(cn, NOT_AFTER) for cn in ("etcd", "etcd-ca", "peer"))
    dump = directory_dump("/opt/etcd/ssl", {"ca.pem": ca, "peer.pem": peer, "server.pem": server})
    records = [
        record("PKI-E-05", "master01", "passed", probe="days_left(/opt/etcd/ssl/server.pem)", evidence=[dump]),
        record("PKI-E-07", "master01", "passed", probe="certs_below_budget(/opt/etcd/ssl)", evidence=[dump]),
        record("ENV-01", "master01", "passed", probe="firewalld_state", evidence=[dump]),
    ]
    document = json.loads(write_results(records, tmp_path, meta={}).read_text())
    named, directory, none = (row["certificates"] for row in document["rows"])
    server_sha = parse_certificate(server).sha256_fingerprint
    # the named file and its directory's CA (its issuer in the guide's layout), not the peer cert
    assert [(c["path"], c["not_after"]) for c in named] == [
        ("/opt/etcd/ssl/ca.pem", "2036-01-01T00:00:00Z"),
        ("/opt/etcd/ssl/server.pem", "2036-01-01T00:00:00Z"),
    ]
    assert named[1]["sha256"] == server_sha
    assert [c["path"] for c in directory] == [
        "/opt/etcd/ssl/ca.pem",
        "/opt/etcd/ssl/peer.pem",
        "/opt/etcd/ssl/server.pem",
    ]
    assert none == []
    text = (tmp_path / "results.json").read_text()
    assert "BEGIN CERTIFICATE" not in text  # identities only; the evidence bundle keeps the PEM


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no results.json in this directory"),
        ("{", "not JSON"),
        ('{"schema": "other/2", "meta": {}, "rows": []}', "schema 'other/2', expected 'kubeproof-results/1'"),
        ('{"schema": "kubeproof-results/1", "meta": {}, "rows": [{"key": "ENV-01", "host": "a"}]}', "missing id"),
    ],
)
def test_bad_results_are_refused_naming_the_file(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "results.json").write_text(content)
    with pytest.raises(ResultsError, match=re.escape(message)):
        load_results(tmp_path)


def test_an_unknown_outcome_is_refused(tmp_path: Path) -> None:
    write_results([record("ENV-01", "a", "passed")], tmp_path, meta={})
    document = json.loads((tmp_path / "results.json").read_text())
    document["rows"][0]["outcome"] = "fine"
    (tmp_path / "results.json").write_text(json.dumps(document))
    with pytest.raises(ResultsError, match=r"rows\[0\] \(ENV-01@a\): outcome 'fine'"):
        load_results(tmp_path)
    with pytest.raises(ResultsError, match="no such file or directory"):
        load_results(tmp_path / "absent")
