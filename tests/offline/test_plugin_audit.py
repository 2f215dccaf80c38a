"""The plugin's audit options with pytester: --waivers, --baseline, --signing-key, results.json."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kubeproof.audit_cli import diff_main, evidence_main
from kubeproof.reports.results_json import write_results
from kubeproof.reports.signing import ensure_signing_key
from tests.offline.audit_samples import record
from tests.offline.test_plugin import CLUSTER, LOCAL_TRANSPORT, REPO

pytest_plugins = ["pytester"]

HOST = "not-this-host"  # the inventory's name for this machine: ENV-03 (hostname) fails for real
TEST = f"test_01_env.py::test_environment[ENV-03@{HOST}]"
PASSING = f"test_01_env.py::test_environment[ENV-01@{HOST}]"  # firewalld absent or off here


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makefile(".yaml", cluster=CLUSTER.format(hostname=HOST))
    pytester.makeconftest(LOCAL_TRANSPORT)
    shutil.copy(REPO / "suites" / "test_01_env.py", pytester.path / "test_01_env.py")
    monkeypatch.setenv("KUBEPROOF_STATE", str(pytester.path / "state"))
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--cluster", "cluster.yaml", "-rx", *args)


def _waivers(pytester: pytest.Pytester, expires: str, key: str = "ENV-03", host: str = HOST) -> Path:
    path = pytester.path / "waivers.yaml"
    path.write_text(
        f"- id: {key}\n  host: {host}\n  reason: hostname kept until the rename window\n"
        f"  approver: J. Doe\n  expires: {expires}\n"
    )
    return path


def _junit_properties(path: Path) -> dict[str, str]:
    case = next(ET.parse(path).getroot().iter("testcase"))
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def test_a_waived_failure_shows_as_waived_everywhere_and_passes_the_run(suite: pytest.Pytester) -> None:
    waivers = _waivers(suite, "2999-12-31")
    out_dir = suite.path / "out"
    result = _run(suite, TEST, "--waivers", str(waivers), "--report-dir", str(out_dir))
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(xfailed=1)
    text = result.stdout.str()
    reason = "waived until 2999-12-31 by J. Doe: hostname kept until the rename window (*waivers.yaml:1)"
    result.stdout.fnmatch_lines(
        ["waived (1):", f"*[[]ENV-03[]] {HOST}: {reason}", f"XFAIL*[[]ENV-03[]] {HOST}: {reason}"]
    )
    assert "[ENV-03] not-this-host: the hostname equals the inventory name" in text  # the failure itself is kept
    properties = _junit_properties(out_dir / "junit.xml")
    assert properties["outcome"] == "waived"
    assert properties["waiver"].startswith("waived until 2999-12-31 by J. Doe: hostname kept")
    (row,) = json.loads((out_dir / "results.json").read_text())["rows"]
    assert row["outcome"] == "waived" and row["waiver"]["approver"] == "J. Doe"
    assert row["observed"] and row["expected"] == f"expected '{HOST}'"
    evidence = json.loads((out_dir / "evidence" / f"ENV-03@{HOST}.json").read_text())
    assert evidence["outcome"] == "waived" and evidence["waiver"]["reason"] == "hostname kept until the rename window"
    assert "hostname kept until the rename window" in (out_dir / "report.html").read_text()


def test_an_expired_waiver_fails_the_run_and_leaves_the_row_failed(suite: pytest.Pytester) -> None:
    waivers = _waivers(suite, "2020-01-31")
    result = _run(suite, TEST, "--waivers", str(waivers))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*[[]ENV-03[]] {HOST}: waiver expired on 2020-01-31 by J. Doe: *: it no longer applies",
            f"ERROR: waiver ENV-03@{HOST} (*waivers.yaml:1) expired on 2020-01-31: renew it or fix the failure",
        ]
    )
    # an expired waiver fails the run even when its row passes
    passing = _run(suite, PASSING, "--waivers", str(_waivers(suite, "2020-01-31", key="ENV-01")))
    passing.assert_outcomes(passed=1)
    assert passing.ret == pytest.ExitCode.TESTS_FAILED


def test_an_unmatched_waiver_is_reported_not_fatal(suite: pytest.Pytester) -> None:
    waivers = _waivers(suite, "2999-12-31", key="ENV-04:fstab", host="node09")
    out_dir = suite.path / "out"
    result = _run(suite, PASSING, "--waivers", str(waivers), "--report-dir", str(out_dir))
    assert result.ret == pytest.ExitCode.OK
    message = f"waiver ENV-04:fstab@node09 ({waivers}:1) matches nothing: node09 is not in the inventory"
    assert f"WARNING: {message}" in result.stdout.str()
    meta = json.loads((out_dir / "results.json").read_text())["meta"]
    assert meta["waiver_problems"] == [message] and meta["waivers"] == str(waivers)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--waivers", "nope.yaml"], "--waivers: nope.yaml: no such file"),
        (["--baseline", "nope"], "--baseline: nope: no such directory"),
        (["--baseline", "."], "--baseline: .: no results.json in it"),
        (["--signing-key", "nope.pem"], "--signing-key: nope.pem: no such file"),
        (["--baseline", "base", "--report-dir", "base"], "is the --report-dir: the run would overwrite it"),
        (["--report-dir", "out", "--signing-key", "out/key"], "must live outside the report directory"),
    ],
)
def test_bad_audit_options_are_usage_errors(suite: pytest.Pytester, args: list[str], words: str) -> None:
    (suite.path / "base").mkdir()
    write_results([record("ENV-01", HOST, "passed")], suite.path / "base", meta={})
    (suite.path / "out").mkdir()
    ensure_signing_key(suite.path / "out" / "key")  # a key inside the report directory
    result = _run(suite, PASSING, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert words in result.stderr.str()


def test_a_waiver_file_error_names_its_line(suite: pytest.Pytester) -> None:
    path = suite.path / "waivers.yaml"
    path.write_text("- id: ENV-03\n  host: x\n  reason: r\n  approver: p\n  expires: soon\n")
    result = _run(suite, PASSING, "--waivers", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--waivers {path}:5: expires 'soon' is not a date YYYY-MM-DD" in result.stderr.str()


def test_baseline_marks_the_regression_and_the_bundle_is_signed(
    suite: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = suite.path / "baseline"
    baseline.mkdir()
    write_results(
        [record("ENV-03", HOST, "passed", observed=f"'{HOST}'"), record("ENV-01", HOST, "passed", observed="'absent'")],
        baseline,
        meta={},
    )
    out_dir = suite.path / "out"
    result = _run(suite, TEST, PASSING, "--baseline", str(baseline), "--report-dir", str(out_dir))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"regressions against --baseline {baseline} (1):",
            f"*[[]ENV-03[]] {HOST}: passed -> failed",
            "generated an evidence signing key: */state/keys/evidence-ed25519 (0600; *",
            f"evidence manifest signed (ed25519:sha256:*); check it with: kubeproof evidence verify {out_dir}*",
        ]
    )
    document = json.loads((out_dir / "results.json").read_text())
    assert document["meta"]["regressions"] == 1 and document["meta"]["baseline"] == str(baseline)
    assert [(r["key"], r["regression"]) for r in document["rows"]] == [("ENV-03", "passed -> failed"), ("ENV-01", "")]
    assert _junit_properties(out_dir / "junit.xml")["regression"] == "passed -> failed"

    assert diff_main([str(baseline), str(out_dir)]) == 1
    out = capsys.readouterr().out
    assert f"ENV-03@{HOST}: passed -> failed  [regression: passed -> failed]" in out
    assert "(1 regression(s)) of 2 compared" in out

    pubkey = suite.path / "state" / "keys" / "evidence-ed25519.pub"
    assert document["meta"]["signature"].startswith("ed25519:sha256:")
    assert evidence_main(["verify", str(out_dir), "--pubkey", str(pubkey)]) == 0
    (out_dir / "evidence" / f"ENV-01@{HOST}.json").write_text("{}\n")
    assert evidence_main(["verify", str(out_dir), "--pubkey", str(pubkey)]) == 1
    assert f"TAMPERED evidence/ENV-01@{HOST}.json: changed" in capsys.readouterr().out

    # no regression against itself: the same failure is not a new one
    again = _run(suite, TEST, PASSING, "--baseline", str(out_dir))
    assert f"no regression against --baseline {out_dir}" in again.stdout.str()
