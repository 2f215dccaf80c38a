"""Fixtures shared by the lab self-tests (tests/lab/): the lab's settings, its cluster file, SSH."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from kubeproof.lab.dockercli import Docker
from kubeproof.lab.labctl import cluster_file_if_up, up
from kubeproof.lab.progress import Progress
from kubeproof.lab.settings import LAB_NODES, LabSettings, NodeSpec
from kubeproof.lab.ssh_material import RemoteResult, connect, run_remote
from tests.lab.stack_builds import chosen_stacks, start_background_builds, stop_background_builds
from tests.lab.suite_runner import REPO


@pytest.fixture(scope="session")
def lab_settings() -> LabSettings:
    """The default lab ($KUBEPROOF_STATE/lab), as `kubeproof lab up` without options uses it."""
    return LabSettings.create()


@pytest.fixture(scope="session")
def lab_docker() -> Docker:
    return Docker.connect()


@pytest.fixture(scope="module")
def converged_cluster_file() -> Path:
    """The default lab's cluster file once `kubeproof apply` has converged it (brought up if absent).

    Through the command line, as a user would; on a converged cluster apply changes nothing.
    """
    cluster_file = LabSettings.create().cluster_file
    if not cluster_file.exists():
        subprocess.run([sys.executable, "-m", "kubeproof", "lab", "up"], cwd=REPO, check=True)
    subprocess.run(
        [sys.executable, "-m", "kubeproof", "apply", "--cluster", str(cluster_file), "--yes"], cwd=REPO, check=True
    )
    return cluster_file


@pytest.fixture(scope="session")
def lab_cluster_file(lab_settings: LabSettings) -> Path:
    """Path of the lab's cluster.yaml; runs `lab up` first unless the lab is already up."""
    existing = cluster_file_if_up(lab_settings)
    if existing is not None:
        return existing
    return up(lab_settings, Progress())


class NodeShell:
    """A paramiko connection to one lab node (strict host keys), for running argv lists."""

    def __init__(self, node: NodeSpec, client: paramiko.SSHClient) -> None:
        self.node = node
        self.client = client

    def run(self, argv: list[str], timeout: float = 120.0) -> RemoteResult:
        return run_remote(self.client, argv, timeout=timeout)

    def check(self, argv: list[str], timeout: float = 120.0) -> str:
        result = self.run(argv, timeout=timeout)
        assert result.exit_status == 0, (
            f"{self.node.name}: {argv} exited {result.exit_status}: {result.stderr.strip() or result.stdout.strip()}"
        )
        return result.stdout

    def wait_for_system_running(self, timeout: float = 60.0) -> str:
        """`systemctl is-system-running`, waiting while it reports 'starting' or 'initializing'."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.run(["systemctl", "is-system-running"]).stdout.strip()
            if state not in ("starting", "initializing"):
                return state
            time.sleep(2.0)
        return state


@pytest.fixture(scope="session")
def node_shells(lab_cluster_file: Path, lab_settings: LabSettings) -> Iterator[dict[str, NodeShell]]:
    shells = {node.name: NodeShell(node, connect(node, lab_settings)) for node in LAB_NODES}
    yield shells
    for shell in shells.values():
        shell.client.close()


# ----------------------------------------------------------------------------- the stacks' builds

STACK_BUILDS = pytest.StashKey["subprocess.Popen[bytes]"]()
STACKS_TEST_FILE = "test_70_stacks.py"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build test_70's stacks in the background while the lab tests before it run (tests.lab.stack_builds)."""
    if session.config.option.collectonly or not any(STACKS_TEST_FILE in item.nodeid for item in session.items):
        return
    names = chosen_stacks()
    if names:
        session.config.stash[STACK_BUILDS] = start_background_builds(names)


def pytest_sessionfinish(session: pytest.Session) -> None:
    process = session.config.stash.get(STACK_BUILDS, None)
    if process is not None:
        ended = stop_background_builds(process)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"background builds of the stacks: {ended}")
