"""The whole guide verified on a cluster kubeproof installed: zero failures, zero errors, reports
written, no secret in them; timed with and without xdist."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kubeproof.checks import load_catalogue
from kubeproof.inventory import load_cluster_file
from kubeproof.reports import scan_for_secrets, verify_manifest
from kubeproof.transport import Transport
from tests.lab.suite_runner import REPO, run_suites

pytestmark = pytest.mark.lab

STATE = Path(os.environ.get("KUBEPROOF_STATE", REPO / ".kubeproof"))
CLUSTER_FILE = STATE / "lab" / "cluster.yaml"
INVARIANTS = REPO.parent / "shared" / "guide" / "INVARIANTS.md"
MEASUREMENTS = STATE / "measurements.json"
# The plugin's summary names a fact a probe asked for that prefetch had not gathered (a fact set
# whose catalogue groups miss a group that reads it): it cost that host a round trip of its own.
LATE = "facts gathered late"


@pytest.fixture(scope="module")
def converged(converged_cluster_file: Path) -> Path:
    return converged_cluster_file


def _record(name: str, value: object) -> None:
    data = json.loads(MEASUREMENTS.read_text()) if MEASUREMENTS.exists() else {}
    data[name] = value
    MEASUREMENTS.write_text(json.dumps(data, indent=2, sort_keys=True))


def _bootstrap_token() -> str:
    cluster = load_cluster_file(CLUSTER_FILE)
    transport = Transport(cluster)
    try:
        data = transport.connection(cluster.masters[0]).read_file("/opt/kubernetes/cfg/token.csv")
    finally:
        transport.close()
    assert data, "token.csv is missing on the master"
    return data.decode().split(",", 1)[0].strip()


def test_full_suite_on_a_healthy_cluster_with_reports(converged: Path, tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    run = run_suites(converged, ["suites"], report_dir=report_dir, junit=report_dir / "junit.xml")
    bad = run.with_outcome("failed") + run.with_outcome("error")
    assert not bad, "\n\n".join(f"{o.key}: {o.outcome}\n{o.message[:1500]}" for o in bad)
    assert run.returncode == 0, run.output[-3000:]
    assert LATE not in run.output, run.output[-3000:]
    _record("full_suite_seconds_serial", round(run.seconds, 1))
    _record("full_suite_outcomes", run.summary())

    # every invariant of the guide was checked by at least one test carrying its ID
    import re

    ids = set(re.findall(r"^- ([A-Z]+(?:-[A-Z])?-\d+)", INVARIANTS.read_text(), re.M))
    checked = {o.invariant for o in run.outcomes if o.outcome in ("passed", "failed", "finding", "skipped")}
    assert ids <= checked, f"not checked: {sorted(ids - checked)}"

    assert (report_dir / "junit.xml").is_file()
    assert (report_dir / "report.html").is_file()
    assert (report_dir / "MANIFEST.json").is_file()
    assert list((report_dir / "evidence").glob("ENV-01@master01.json"))
    assert verify_manifest(report_dir) == []
    # every passed problem-list row says what it saw, not only "observed []" (issue 11)
    problem_lists = {r.key for r in load_catalogue() if r.comparator in ("is_empty", "contains_none", "subset_of")}
    rows = [r for r in json.loads((report_dir / "results.json").read_text())["rows"] if r["key"] in problem_lists]
    assert {r["key"] for r in rows} == problem_lists
    silent = [f"{r['key']}@{r['host']}" for r in rows if r["outcome"] == "passed" and not r.get("seen")]
    assert not silent, f"passed without seen lines: {silent}"
    # secrets never appear: no private-key PEM block, no bootstrap token
    assert scan_for_secrets(report_dir, [_bootstrap_token()]) == []
    assert scan_for_secrets(tmp_path, [_bootstrap_token()]) == []


def test_suite_speed_with_and_without_xdist(converged: Path, tmp_path: Path) -> None:
    non_smoke = [str(p.relative_to(REPO)) for p in sorted((REPO / "suites").glob("test_*.py")) if "smoke" not in p.name]
    serial = run_suites(converged, non_smoke, junit=tmp_path / "serial.xml")
    parallel = run_suites(converged, non_smoke, "-n", "2", junit=tmp_path / "parallel.xml")
    smoke_paths = [str(p.relative_to(REPO)) for p in sorted((REPO / "suites").glob("test_*smoke*.py"))]
    smoke = run_suites(converged, smoke_paths, junit=tmp_path / "smoke.xml") if smoke_paths else None
    for run in (serial, parallel, smoke):
        if run is not None:
            bad = run.with_outcome("failed") + run.with_outcome("error")
            assert not bad, "\n".join(f"{o.key}: {o.message[:800]}" for o in bad)
            assert LATE not in run.output, run.output[-3000:]
    _record("non_smoke_seconds_serial", round(serial.seconds, 1))
    _record("non_smoke_seconds_xdist_2", round(parallel.seconds, 1))
    if smoke is not None:
        _record("smoke_seconds", round(smoke.seconds, 1))
    print(f"non-smoke: {serial.seconds:.1f}s serial, {parallel.seconds:.1f}s with -n 2", end="")
    print(f"; smoke: {smoke.seconds:.1f}s" if smoke else "")


def test_each_group_alone_gathers_its_facts_in_the_first_batch(converged: Path, tmp_path: Path) -> None:
    """Prefetch gathers only the fact sets of the selected groups (issue 12); every probe of a
    group run alone still finds its facts there, and a host-level run skips the node facts."""
    groups = [p for p in sorted((REPO / "suites").glob("test_*.py")) if "smoke" not in p.name]
    assert len(groups) >= 9
    for path in groups:
        run = run_suites(converged, [str(path.relative_to(REPO))], junit=tmp_path / f"{path.stem}.xml")
        assert run.returncode == 0 and run.outcomes, (path.name, run.output[-2000:])
        assert LATE not in run.output, (path.name, run.output[-2000:])
        if path.stem == "test_01_env":  # no peer facts: one batch per host, of the ENV facts alone
            summary = [line for line in run.output.splitlines() if " SSH connections, " in line]
            assert len(summary) == 3 and all(", 1 fact batches" in line for line in summary), summary
