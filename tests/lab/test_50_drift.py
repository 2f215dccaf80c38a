"""Audit evidence on the lab: a green baseline, one real fault, and exactly that change in the diff;
the signed bundle verified, then one evidence file tampered and named.

The fault: node01's etcd server key made world-readable (PKI-E-07). It changes one row and nothing
else; the rest of the ENV and PKI-E rows read the same state in all three runs, so any other row in
the diff would be noise the diff must not produce.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeproof.inventory import Cluster, load_cluster_file
from kubeproof.reports.html_text import row_anchor
from kubeproof.reports.signing import SigningKey, ensure_signing_key
from kubeproof.transport import Connection, Transport
from tests.lab.suite_runner import REPO, SuiteRun, run_suites
from tests.offline.report_html_samples import ReportDom, dom_problems
from tests.offline.test_report_html_chromium import CHROMIUM
from tests.offline.test_report_html_chromium import _chromium as chromium

pytestmark = pytest.mark.lab

SUITES = ["suites/test_01_env.py", "suites/test_02_pki_etcd.py"]
FAULT_HOST = "node01"
KEY_FILE = "/opt/etcd/ssl/server-key.pem"
CHANGED = [f"PKI-E-07@{FAULT_HOST}"]


@pytest.fixture(scope="module")
def cluster_file(converged_cluster_file: Path) -> Path:
    return converged_cluster_file


@pytest.fixture(scope="module")
def transport(cluster_file: Path) -> Iterator[Transport]:
    cluster: Cluster = load_cluster_file(cluster_file)
    transport = Transport(cluster)
    yield transport
    transport.close()


def sh(connection: Connection, command: str) -> str:
    result = connection.run(command)
    assert result.rc == 0, f"{connection.name}$ {command}: rc={result.rc} {result.stderr}"
    return result.stdout


def kubeproof(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubeproof", *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def _run(cluster_file: Path, report_dir: Path, key: SigningKey, *extra: str) -> SuiteRun:
    return run_suites(
        cluster_file,
        SUITES,
        "--signing-key",
        str(key.path),
        *extra,
        report_dir=report_dir,
        junit=report_dir / "junit.xml",
    )


def _bad(run: SuiteRun) -> list[str]:
    return [f"{o.key}: {o.outcome}\n{o.message[:800]}" for o in run.with_outcome("failed") + run.with_outcome("error")]


def _assert_report_reads_right(report_dir: Path, rows: list[dict[str, Any]], tmp_path: Path) -> None:
    """The matrix covers every ID x host with one link per row, the verdict's counts are the rows',
    the fault's row is the one failure and the one root cause, and a screenshot has content."""
    if CHROMIUM is None:
        pytest.fail("chromium is not installed (./kp setup installs the Debian package `chromium`)")
    page = (report_dir / "report.html").as_uri()
    dumped = chromium(tmp_path / "profile", "--dump-dom", page)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = ReportDom(dumped.stdout)
    assert dom_problems(dom, rows) == []
    assert dom.texts["count:failed"].strip() == "1"
    failed = [row for row in dom.results_rows() if row["data-outcome"] == "failed"]
    assert [row["id"] for row in failed] == [row_anchor("PKI-E-07", FAULT_HOST)], failed
    shot = tmp_path / "broken.png"
    taken = chromium(tmp_path / "profile", f"--screenshot={shot}", page)
    assert taken.returncode == 0 and shot.stat().st_size > 50_000, taken.stderr[-2000:]


def test_one_fault_against_a_green_baseline_is_exactly_that_change(
    cluster_file: Path, transport: Transport, tmp_path: Path
) -> None:
    key = ensure_signing_key(tmp_path / "keys" / "evidence-ed25519")
    baseline, broken_dir, healed_dir = tmp_path / "baseline", tmp_path / "broken", tmp_path / "healed"

    green = _run(cluster_file, baseline, key)
    assert not _bad(green), "\n".join(_bad(green))
    assert green.returncode == 0, green.output[-3000:]
    verified = kubeproof("evidence", "verify", str(baseline), "--pubkey", str(key.public_path))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"signed by {key.fingerprint}" in verified.stdout

    node = transport.connection(FAULT_HOST)
    mode = sh(node, "stat -c %a " + shlex.quote(KEY_FILE)).strip()
    try:
        sh(node, "chmod 0644 " + shlex.quote(KEY_FILE))
        broken = _run(cluster_file, broken_dir, key, "--baseline", str(baseline))
    finally:
        sh(node, f"chmod {shlex.quote(mode)} {shlex.quote(KEY_FILE)}")

    # the run: that row failed, marked as the one regression, exit code non-zero
    assert broken.returncode == 1, broken.output[-3000:]
    assert sorted(f"{o.key}" for o in broken.with_outcome("failed")) == CHANGED, "\n".join(_bad(broken))
    assert f"[PKI-E-07] {FAULT_HOST}: passed -> failed" in broken.output
    document = json.loads((broken_dir / "results.json").read_text())
    assert document["meta"]["regressions"] == 1
    assert [f"{r['key']}@{r['host']}" for r in document["rows"] if r["regression"]] == CHANGED

    # the diff: exactly that row
    diff = kubeproof("diff", str(baseline), str(broken_dir))
    print(diff.stdout)
    assert diff.returncode == 1, diff.stdout + diff.stderr
    as_json = json.loads(kubeproof("diff", str(baseline), str(broken_dir), "--json").stdout)
    assert [f"{c['key']}@{c['host']}" for c in as_json["changes"]] == CHANGED, diff.stdout
    (change,) = as_json["changes"]
    assert change["regression"] == "passed -> failed"
    assert any("server-key.pem" in detail for detail in change["details"]), change

    # the broken run's report.html in headless Chromium: its DOM after the page's script matches the rows
    _assert_report_reads_right(broken_dir, document["rows"], tmp_path)

    # the signed bundle of the broken run verifies, then one evidence file is tampered with
    assert kubeproof("evidence", "verify", str(broken_dir), "--pubkey", str(key.public_path)).returncode == 0
    evidence = broken_dir / "evidence" / f"PKI-E-07@{FAULT_HOST}.json"
    record = json.loads(evidence.read_text())
    record["outcome"] = "passed"
    evidence.write_text(json.dumps(record, indent=2) + "\n")
    tampered = kubeproof("evidence", "verify", str(broken_dir), "--pubkey", str(key.public_path))
    print(tampered.stdout)
    assert tampered.returncode == 1
    assert f"TAMPERED evidence/PKI-E-07@{FAULT_HOST}.json: changed" in tampered.stdout

    # healed: green again, no regression, and no drift from the baseline
    healed = _run(cluster_file, healed_dir, key, "--baseline", str(baseline))
    assert not _bad(healed), "\n".join(_bad(healed))
    assert healed.returncode == 0, healed.output[-3000:]
    assert f"no regression against --baseline {baseline}" in healed.output
    same = kubeproof("diff", str(baseline), str(healed_dir))
    print(same.stdout)
    assert same.returncode == 0, same.stdout
