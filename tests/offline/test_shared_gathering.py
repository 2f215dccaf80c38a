"""One fact gathering per host per run under pytest-xdist (fixtures/gathering.py).

The hosts are this machine (its commands run locally) and a socket that never sends an SSH
banner: the controller gathers both once, and the workers neither run a batch again nor try the
silent host again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kubeproof.facts import FactRecord, HostFacts
from kubeproof.fixtures.gathering import auto_workers
from kubeproof.transport import HostUnreachable, ProbeError
from tests.offline.test_unreachable import SilentServer, make_suite_project

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]

# Patched at import, not in a fixture: the controller gathers in a hook, before any fixture runs.
# Every run of a batch script is counted in a file, per process, so the test sees who gathered.
COUNTING_CONFTEST = """
import os, subprocess, time
from kubeproof.transport import CommandResult, Connection

_original = Connection.run

def _run(self, command, *, stdin=None, timeout=120.0):
    if self.name == "silent01":
        return _original(self, command, stdin=stdin, timeout=timeout)
    self.stats.commands += 1
    if "@@KP" in command:
        with open(os.environ["KP_BATCH_LOG"], "a") as log:
            log.write(os.environ.get("PYTEST_XDIST_WORKER", "controller") + "\\n")
    started = time.time()
    done = subprocess.run(["sh", "-c", command], input=stdin, capture_output=True, timeout=timeout)
    return CommandResult(self.name, command, done.returncode, done.stdout.decode(), done.stderr.decode(),
                         started, time.time() - started)

Connection.run = _run
"""


class _Connection:
    name = "node01"


def test_a_hosts_gathering_travels_with_its_errors_and_is_not_run_again() -> None:
    source = HostFacts(_Connection(), lambda: ())  # type: ignore[arg-type]
    source._records["hostname"] = FactRecord("node01", "hostname", "hostname", 0, "node01\n", "", 1.5)
    source._errors["ipvs"] = ProbeError("node01", "fact 'ipvs': its command did not finish within 30 s")
    source._errors["docker"] = HostUnreachable("node01", "no SSH banner within 5 s", marked_down=True)
    document = json.loads(json.dumps(source.export()))

    copy = HostFacts(_Connection(), lambda: ())  # type: ignore[arg-type]
    copy.preload(document)
    assert copy.record("hostname") == source.record("hostname")
    assert copy.batches == 0
    assert copy._errors["ipvs"].reason == source._errors["ipvs"].reason
    down = copy._errors["docker"]
    assert isinstance(down, HostUnreachable) and down.marked_down and down.reason.startswith("node01 unreachable")


def test_facts_of_another_host_are_refused() -> None:
    source = HostFacts(_Connection(), lambda: ())  # type: ignore[arg-type]
    source._records["hostname"] = FactRecord("node02", "hostname", "hostname", 0, "node02\n", "", 1.5)
    with pytest.raises(ValueError, match="node02"):
        HostFacts(_Connection(), lambda: ()).preload(source.export())  # type: ignore[arg-type]


def _suite_run(pytester: pytest.Pytester, *args: str) -> tuple[Any, list[str], int]:
    server = SilentServer()
    log = pytester.path / "batches.log"
    try:
        make_suite_project(pytester, server, COUNTING_CONFTEST)
        log.write_text("")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("KP_BATCH_LOG", str(log))
            result = pytester.runpytest_subprocess(
                "-p", "no:cacheprovider", "--cluster", "cluster.yaml", "--ssh-timeout", "2", "-rA", *args
            )
    finally:
        server.close()
    return result, log.read_text().split(), server.accepted


def _outcomes(text: str) -> dict[str, str]:
    found = re.findall(
        r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL)\S* test_01_env\.py::test_environment\[(\S+)\]", text, re.M
    )
    return {row: outcome for outcome, row in found}


def test_workers_share_the_controllers_gathering_and_judge_as_a_serial_run(pytester: pytest.Pytester) -> None:
    serial, serial_batches, serial_attempts = _suite_run(pytester, "-p", "no:xdist")
    shared, shared_batches, shared_attempts = _suite_run(pytester, "-n", "2")

    serial_rows, shared_rows = _outcomes(serial.stdout.str()), _outcomes(shared.stdout.str())
    assert serial_rows and shared_rows == serial_rows, (serial.stdout.str()[-3000:], shared.stdout.str()[-3000:])
    # the local host's facts: one gathering each way (two rounds at most: peer probes come second),
    # all of it by the controller under xdist, none by a worker
    assert serial_batches and set(serial_batches) == {"controller"}
    assert shared_batches == serial_batches, shared_batches
    # the silent host: one connection attempt in the whole run, not one per worker
    assert serial_attempts == 1 and shared_attempts == 1, (serial_attempts, shared_attempts)
    assert "silent01 unreachable: no SSH banner within 2 s" in shared.stdout.str()


@pytest.mark.parametrize(
    ("hosts", "cpus", "workers"),
    [(3, 2, 0), (50, 2, 0), (3, 16, 0), (24, 16, 0), (25, 4, 0), (50, 4, 2), (50, 16, 2), (200, 16, 8), (400, 8, 6)],
)
def test_auto_starts_workers_only_where_they_pay(hosts: int, cpus: int, workers: int) -> None:
    assert auto_workers(hosts, cpus) == workers


def test_auto_on_a_small_cluster_runs_serially(pytester: pytest.Pytester) -> None:
    result, batches, attempts = _suite_run(pytester, "-n", "auto")
    out = result.stdout.str()
    assert "created:" not in out and "[gw0]" not in out, out[:2000]  # xdist started no worker
    assert set(batches) == {"controller"} and attempts == 1
