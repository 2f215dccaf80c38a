"""`kubeproof bench` keeps working: a scale lab of 3 light hosts, laid out by the installer, verified
serially, with `-n auto`, with `-n 2` and the naive way (issue 12). Counts are asserted, never speeds: every
mode judges the same rows the same way, the workers of an xdist run gather nothing themselves, and
the naive baseline sends more remote commands than the batched run. The figures are printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kubeproof.lab.dockercli import Docker
from kubeproof.lab.labctl import lab_objects
from kubeproof.lab.settings import LabSettings
from tests.lab.suite_runner import REPO

pytestmark = pytest.mark.lab

NAME = "bench-ci"


def test_the_benchmark_runs_every_mode_on_a_scale_lab_and_leaves_nothing(tmp_path: Path) -> None:
    figures = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "kubeproof", "bench", "--name", NAME, "--sizes", "3", "--json", str(figures)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    print(done.stdout[-3000:])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = {run["mode"]: run for run in json.loads(figures.read_text())}
    assert set(runs) == {"serial", "auto", "n2", "naive"}, runs
    serial, auto, two, naive = runs["serial"], runs["auto"], runs["n2"], runs["naive"]
    # the installer laid out what the host-level groups check: every row passes, in every mode
    assert serial["outcomes"].get("passed", 0) > 90 and set(serial["outcomes"]) == {"passed"}, serial["tail"]
    assert auto["outcomes"] == two["outcomes"] == naive["outcomes"] == serial["outcomes"]
    assert set(serial["per_host"]) == {"scale001", "scale002", "scale003"}
    for host, counts in serial["per_host"].items():
        # one gathering per host per run, however it is split: the controller's, none by a worker
        assert two["per_host"][host]["batches"] == counts["batches"], (host, two["per_host"][host], counts)
        # -n auto on 3 hosts starts no worker (gathering.auto_workers): the serial run's counts
        assert auto["per_host"][host]["connections"] == counts["connections"] == 1, (host, auto["per_host"][host])
        assert naive["per_host"][host]["commands"] > 3 * counts["commands"], (host, naive["per_host"][host], counts)
    assert "x naive" in done.stdout
    # taken down afterwards (no --keep), with the installer's state for it
    settings = LabSettings.create(NAME)
    assert lab_objects(Docker.connect(), settings) == {"containers": [], "networks": [], "volumes": []}
    assert not settings.state_dir.exists() and not (settings.state_dir.parent / f"installer-{NAME}").exists()
