"""Drift between two result sets: outcome, observed value and certificates; secrets never compared."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from kubeproof.audit_cli import diff_main
from kubeproof.reports.drift import diff_results, regressions
from kubeproof.reports.model import ResultRow
from kubeproof.reports.results_json import write_results
from tests.offline.audit_samples import certificate_pem, directory_dump, record

NOT_AFTER = dt.datetime(2036, 1, 1, tzinfo=dt.UTC)
SERVER = certificate_pem("etcd", NOT_AFTER)
RENEWED = certificate_pem("etcd", NOT_AFTER + dt.timedelta(days=365))
CA = certificate_pem("etcd-ca", NOT_AFTER)


def _pki_row(days: str, server: str, outcome: str = "passed") -> dict[str, Any]:
    dump = directory_dump("/opt/etcd/ssl", {"ca.pem": CA, "server.pem": server})
    return record(
        "PKI-E-05", "master01", outcome, probe="days_left(/opt/etcd/ssl/server.pem)", observed=days, evidence=[dump]
    )


def _baseline() -> list[dict[str, Any]]:
    return [
        record("ENV-01", "master01", "passed", observed="'inactive/disabled'"),
        record("ENV-06", "node02", "passed", observed="'1'"),
        record("ENV-07", "master01", "passed", observed="0.004"),
        record("ETCD-10:client-cert-auth", "master01", "finding", observed="False"),
        record("SEC-01", "master01", "passed", observed="'token <redacted sha256:1111111111111111>'"),
        _pki_row("3650.0", SERVER),
    ]


def _rows(records: list[dict[str, Any]]) -> list[ResultRow]:
    return [ResultRow.from_record(r) for r in records]


def test_identical_runs_have_no_drift_and_time_passing_is_not_drift() -> None:
    later = _baseline()
    later[2] = record("ENV-07", "master01", "passed", observed="0.011")  # the clock measured again
    later[5] = _pki_row("3649.6", SERVER)  # a certificate a few hours older: same fingerprint and notAfter
    assert diff_results(_rows(_baseline()), _rows(_baseline())) == []
    assert diff_results(_rows(_baseline()), _rows(later)) == []
    measured = diff_results(_rows(_baseline()), _rows(later), measurements=True)
    assert [(c.label, c.measurement_only) for c in measured] == [("ENV-07@master01", True), ("PKI-E-05@master01", True)]


def test_outcome_and_observed_changes_are_listed_with_the_regression() -> None:
    later = _baseline()
    later[1] = record("ENV-06", "node02", "failed", observed="'0'")
    later[3] = record("ETCD-10:client-cert-auth", "master01", "passed", observed="True")
    later[0] = record("ENV-01", "master01", "passed", observed="'absent'")
    changes = diff_results(_rows(_baseline()), _rows(later))
    assert [(c.label, c.old_outcome, c.new_outcome, c.regression) for c in changes] == [
        ("ENV-01@master01", "passed", "passed", ""),
        ("ENV-06@node02", "passed", "failed", "passed -> failed"),
        ("ETCD-10:client-cert-auth@master01", "finding", "passed", ""),
    ]
    assert changes[1].details == ("outcome passed -> failed", "observed '1' -> '0'")
    assert changes[0].details == ("observed 'inactive/disabled' -> 'absent'",)


def test_a_renewed_certificate_is_drift_by_fingerprint_and_expiry() -> None:
    later = _baseline()
    later[5] = _pki_row("4015.0", RENEWED)
    (change,) = diff_results(_rows(_baseline()), _rows(later))
    assert change.label == "PKI-E-05@master01" and not change.regression
    (detail,) = (d for d in change.details if d.startswith("certificate"))
    assert detail.startswith("certificate /opt/etcd/ssl/server.pem: sha256 ")
    assert "notAfter 2036-01-01T00:00:00Z -> sha256 " in detail
    assert detail.endswith("notAfter 2036-12-31T00:00:00Z")  # 2036 is a leap year
    assert "BEGIN CERTIFICATE" not in "".join(change.details)


def test_secrets_are_never_compared_nor_printed() -> None:
    later = _baseline()
    later[4] = record("SEC-01", "master01", "passed", observed="'token <redacted sha256:2222222222222222>'")
    assert diff_results(_rows(_baseline()), _rows(later)) == []
    later[4] = record(
        "SEC-01", "master01", "failed", observed="'token 0fb61c46f8991b718eb38d27b605b008,kubelet-bootstrap,10001'"
    )
    (change,) = diff_results(_rows(_baseline()), _rows(later))
    text = " ".join(change.details)
    assert "0fb61c46f8991b718eb38d27b605b008" not in text and "sha256:1111" not in text
    assert "<redacted>" in text


def test_added_and_removed_rows_and_regressions() -> None:
    later = [*_baseline()[1:], record("ENV-08", "node01", "error", reason="probe could not run")]
    changes = diff_results(_rows(_baseline()), _rows(later))
    assert [(c.label, c.old_outcome, c.new_outcome, c.regression) for c in changes] == [
        ("ENV-08@node01", None, "error", "new row: error"),
        ("ENV-01@master01", "passed", None, ""),
    ]
    assert regressions(_rows(_baseline()), _rows(later)) == {("ENV-08", "node01"): "new row: error"}
    # a waived failure is no regression; a finding that appears is one
    waived = [record("ENV-06", "node02", "waived"), record("ENV-07", "master01", "finding")]
    assert regressions(_rows(_baseline()), _rows(waived)) == {("ENV-07", "master01"): "passed -> finding"}


def test_the_diff_command_exit_codes_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new, same = tmp_path / "old", tmp_path / "new", tmp_path / "same"
    old.mkdir()
    write_results(_baseline(), old, meta={})
    same.mkdir()
    write_results(_baseline(), same, meta={})
    later = _baseline()
    later[1] = record("ENV-06", "node02", "failed", observed="'0'")
    new.mkdir()
    write_results(later, new, meta={})

    assert diff_main([str(old), str(same)]) == 0
    assert "no change in 6 row(s)" in capsys.readouterr().out
    assert diff_main([str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "ENV-06@node02: passed -> failed  [regression: passed -> failed]\n    outcome passed -> failed\n" in out
    assert out.rstrip().endswith("1 row(s) changed (1 regression(s)) of 6 compared")
    assert diff_main([str(old), str(new / "results.json"), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert [c["key"] for c in document["changes"]] == ["ENV-06"]

    assert diff_main([str(old), str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such file or directory" in capsys.readouterr().err
    assert diff_main([str(old), str(tmp_path)]) == 2
    assert "no results.json in this directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        diff_main([str(old)])
    assert exited.value.code == 2
