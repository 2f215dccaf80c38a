"""The Vagrant-shaped lab: root cannot log in over SSH, `vagrant` has passwordless sudo, the
ssh_config is the one `vagrant ssh-config` prints. On it, `kubeproof apply` then the whole suite
run green logged in as vagrant, and the verify wall is set beside the same run as root (test_30).

The lab keeps its name (and so its addresses): it replaces the root lab rather than running beside
it, and test_99 takes it down like any lab. Local installer state (PKI, token) is kept, as in
test_20's bare lab, so apply installs onto hosts that have never seen it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from kubeproof.lab.labctl import down, up
from kubeproof.lab.progress import Progress
from kubeproof.lab.settings import LAB_NODES, VAGRANT_LOGIN, LabSettings
from kubeproof.lab.ssh_material import connect, run_remote
from tests.lab.suite_runner import REPO, run_suites
from tests.lab.test_20_bootstrap import bootstrap, record

pytestmark = pytest.mark.lab

STATE = Path(os.environ.get("KUBEPROOF_STATE", REPO / ".kubeproof"))
MEASUREMENTS = STATE / "measurements.json"


@pytest.fixture(scope="module")
def vagrant_settings() -> Iterator[LabSettings]:
    """The lab, rebuilt with the vagrant login; taken down afterwards whatever happened."""
    root_lab = LabSettings.create()
    down(root_lab, Progress())
    settings = LabSettings.create(login=VAGRANT_LOGIN)
    up(settings, Progress())
    yield settings
    down(settings, Progress())


def test_root_cannot_log_in_and_vagrant_has_passwordless_sudo(vagrant_settings: LabSettings) -> None:
    as_root = LabSettings.create(vagrant_settings.name, vagrant_settings.state_dir, login="root")
    for node in LAB_NODES:
        # the lab's own key, the lab's known_hosts: only the user differs
        with pytest.raises(paramiko.AuthenticationException):
            connect(node, as_root).close()
        client = connect(node, vagrant_settings)
        try:
            assert run_remote(client, ["id", "-un"]).stdout.strip() == "vagrant"
            assert run_remote(client, ["sudo", "-n", "true"]).exit_status == 0
            mode = run_remote(client, ["stat", "-c", "%a %U", "/etc/sudoers.d/vagrant"], sudo=True).stdout.split()
            assert mode == ["440", "root"], mode
            sshd = run_remote(client, ["sshd", "-T"], sudo=True).stdout
            assert "permitrootlogin no" in sshd.splitlines(), node.name
        finally:
            client.close()


def test_the_ssh_config_is_vagrant_ssh_configs_form(vagrant_settings: LabSettings) -> None:
    config = paramiko.SSHConfig.from_path(str(vagrant_settings.ssh_config_file))
    for node in LAB_NODES:
        entry = config.lookup(node.name)
        assert entry["user"] == "vagrant"
        assert entry["stricthostkeychecking"] == "no"
        assert entry["userknownhostsfile"] == "/dev/null"
        assert entry["loglevel"] == "FATAL"


def test_apply_then_verify_green_logged_in_as_vagrant(vagrant_settings: LabSettings, tmp_path: Path) -> None:
    cluster_file = vagrant_settings.cluster_file
    applied = bootstrap("apply", cluster_file, "--yes")
    print(applied.output[-3000:])
    assert applied.returncode == 0, applied.output[-4000:]
    record("vagrant_bootstrap_bare_to_ready_seconds", round(applied.seconds, 1))

    # the README's CI-gate command: testinfra's --ssh-config (vagrant ssh-config's form) and --sudo
    report_dir = tmp_path / "report"
    run = run_suites(
        cluster_file,
        ["--pyargs", "kubeproof.suites"],
        "--ssh-config",
        str(vagrant_settings.ssh_config_file),
        "--sudo",
        "--hosts",
        ",".join(node.name for node in LAB_NODES),
        report_dir=report_dir,
        junit=report_dir / "junit.xml",
    )
    bad = run.with_outcome("failed") + run.with_outcome("error")
    assert not bad, "\n\n".join(f"{o.key}: {o.outcome}\n{o.message[:1500]}" for o in bad)
    assert run.returncode == 0, run.output[-3000:]
    session = json.loads((report_dir / "evidence" / "session.json").read_text())
    assert {values["login"] for values in session["stats"].values()} == {"vagrant via sudo"}
    # what `vagrant ssh-config` prints accepts any host key: the run says so
    assert "WARNING: host identity was not verified for master01, node01, node02" in run.output
    assert any("not verified" in warning for warning in session["meta"]["warnings"])

    record("vagrant_full_suite_seconds_serial", round(run.seconds, 1))
    record("vagrant_full_suite_outcomes", run.summary())
    measured = json.loads(MEASUREMENTS.read_text()) if MEASUREMENTS.exists() else {}
    root_seconds = measured.get("full_suite_seconds_serial")
    if root_seconds:
        ratio = run.seconds / float(root_seconds)
        record("vagrant_to_root_verify_ratio", round(ratio, 2))
        print(f"verify wall: vagrant {run.seconds:.1f}s, root {float(root_seconds):.1f}s (x{ratio:.2f})")
    # the same rows as root's run, outcome for outcome
    root_outcomes = measured.get("full_suite_outcomes")
    if root_outcomes:
        assert run.summary() == root_outcomes, f"vagrant: {run.summary()}; root: {root_outcomes}"
