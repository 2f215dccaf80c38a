"""The lab itself: it comes up from nothing and its hosts behave like the guide's three VMs."""

from __future__ import annotations

import time
from pathlib import Path

import paramiko
import pytest

from kubeproof.lab.artifacts import check_version as check_artifact_version
from kubeproof.lab.artifacts import read_manifest, sha256_file, versioned_artifacts
from kubeproof.lab.cluster_file import PAUSE_IMAGE, TEST_IMAGE
from kubeproof.lab.dockercli import Docker
from kubeproof.lab.labctl import down, lab_objects, up
from kubeproof.lab.node_image import node_image_tag
from kubeproof.lab.progress import Progress
from kubeproof.lab.settings import LAB_NODES, LabSettings, artifacts_dir
from kubeproof.lab.ssh_material import run_remote
from tests.lab.conftest import NodeShell

pytestmark = pytest.mark.lab

# With the node image and artifacts cached, a cold `up` creates three containers and waits for
# systemd and sshd; measured at about 8 s on 2 cores. The bounds leave room for slower machines.
COLD_UP_BUDGET_SECONDS = 180.0
WARM_UP_BUDGET_SECONDS = 60.0

NODE_NAMES = [node.name for node in LAB_NODES]
# linux/capability.h
CAP_SYS_TIME_BIT = 25


def test_lab_comes_up_from_nothing(lab_settings: LabSettings, lab_docker: Docker) -> None:
    caches_warm = lab_docker.image_exists(node_image_tag()) and (artifacts_dir() / "MANIFEST.json").is_file()
    down(lab_settings, Progress())
    assert lab_objects(lab_docker, lab_settings) == {"containers": [], "networks": [], "volumes": []}
    started = time.monotonic()
    cluster_file = up(lab_settings, Progress())
    elapsed = time.monotonic() - started
    print(f"cold lab up: {elapsed:.1f} s (caches warm: {caches_warm})")
    assert cluster_file == lab_settings.cluster_file and cluster_file.is_file()
    if caches_warm:
        assert elapsed <= COLD_UP_BUDGET_SECONDS, f"cold up took {elapsed:.0f} s"


def test_warm_up_reuses_the_lab_quickly(lab_cluster_file: Path, lab_settings: LabSettings, lab_docker: Docker) -> None:
    before = lab_objects(lab_docker, lab_settings)
    started = time.monotonic()
    up(lab_settings, Progress())
    elapsed = time.monotonic() - started
    print(f"warm lab up: {elapsed:.1f} s")
    assert elapsed <= WARM_UP_BUDGET_SECONDS
    assert lab_objects(lab_docker, lab_settings) == before, "a warm up must reuse, not recreate"


def test_cluster_file_is_an_ordinary_cluster_file(lab_cluster_file: Path) -> None:
    # The core library reads it like any hand-written cluster file: nothing lab-only in it.
    from kubeproof.inventory import load_cluster_file

    cluster = load_cluster_file(lab_cluster_file)
    assert [(host.name, host.address) for host in cluster.hosts] == [(n.name, n.address) for n in LAB_NODES]
    assert cluster.time.sync == "host-kernel"
    assert cluster.ssh_config is not None and cluster.ssh_config.is_file()
    assert cluster.artifacts == artifacts_dir()
    assert (cluster.images.pause, cluster.images.test) == (PAUSE_IMAGE, TEST_IMAGE)


@pytest.mark.parametrize("node_name", NODE_NAMES)
def test_host_answers_ssh_with_its_own_hostname(node_name: str, node_shells: dict[str, NodeShell]) -> None:
    assert node_shells[node_name].check(["hostname"]).strip() == node_name


def test_unknown_host_key_is_rejected(lab_cluster_file: Path, lab_settings: LabSettings) -> None:
    # Strictness is real: without the lab's known_hosts the same connection must fail.
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.SSHException):
        client.connect(
            LAB_NODES[0].address,
            username="root",
            key_filename=str(lab_settings.private_key_file),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
    client.close()


@pytest.mark.parametrize("node_name", NODE_NAMES)
def test_systemd_is_running(node_name: str, node_shells: dict[str, NodeShell]) -> None:
    shell = node_shells[node_name]
    state = shell.wait_for_system_running(timeout=60.0)
    failed = shell.run(["systemctl", "list-units", "--failed", "--no-legend", "--plain"]).stdout.strip()
    assert state == "running", f"{node_name}: systemd is {state!r}; failed units: {failed or 'none listed'}"


@pytest.mark.parametrize("node_name", NODE_NAMES)
def test_docker_inside_runs_the_test_image(node_name: str, node_shells: dict[str, NodeShell]) -> None:
    shell = node_shells[node_name]
    node = shell.node
    # busybox ping as root in a container (raw ICMP), to the node's own address.
    output = shell.check(["docker", "run", "--rm", TEST_IMAGE, "ping", "-c1", "-W2", node.address])
    assert "1 packets received" in output
    # The image's default command serves a page naming the container's hostname on :8080.
    container = "kubeproof-lab-test-web"
    shell.run(["docker", "rm", "-f", container])
    try:
        shell.check(["docker", "run", "-d", "--name", container, "--hostname", "web-" + node.name, TEST_IMAGE])
        address = shell.check(["docker", "inspect", "--format", "{{.NetworkSettings.IPAddress}}", container]).strip()
        page = ""
        for _ in range(20):
            result = shell.run(["curl", "-s", "--max-time", "2", f"http://{address}:8080/"])
            page = result.stdout.strip()
            if page:
                break
            time.sleep(0.5)
        assert page == "web-" + node.name
    finally:
        shell.run(["docker", "rm", "-f", container])


@pytest.mark.parametrize("node_name", NODE_NAMES)
def test_pause_image_is_present(node_name: str, node_shells: dict[str, NodeShell]) -> None:
    shell = node_shells[node_name]
    entrypoint = shell.check(["docker", "image", "inspect", "--format", "{{json .Config.Entrypoint}}", PAUSE_IMAGE])
    assert entrypoint.strip() == '["/pause"]'


@pytest.mark.parametrize("node_name", NODE_NAMES)
def test_vxlan_device_can_be_created(node_name: str, node_shells: dict[str, NodeShell]) -> None:
    shell = node_shells[node_name]
    shell.run(["ip", "link", "del", "vxlan-test"])  # leftovers of an interrupted run
    shell.check(["ip", "link", "add", "vxlan-test", "type", "vxlan", "id", "42", "dstport", "4789", "dev", "eth0"])
    try:
        details = shell.check(["ip", "-d", "link", "show", "vxlan-test"])
        assert "vxlan id 42" in details
    finally:
        shell.check(["ip", "link", "del", "vxlan-test"])


@pytest.mark.parametrize("node_name", NODE_NAMES)
def test_hosts_reach_each_other_by_address_and_name(node_name: str, node_shells: dict[str, NodeShell]) -> None:
    shell = node_shells[node_name]
    for peer in LAB_NODES:
        shell.check(["ping", "-c1", "-W2", peer.address])
        # By name: the node's /etc/hosts lists only itself until the installer's ENV step (ENV-05)
        # adds its peers, so peer names resolve through Docker's embedded DNS on the lab network
        # (127.0.0.11 in the node's resolv.conf answers with container names). Checked with getent
        # first, so a failure says whether resolution or reachability is missing.
        resolved = shell.check(["getent", "hosts", peer.name]).split()
        assert resolved[:1] == [peer.address], f"{node_name}: {peer.name} resolves to {resolved}"
        shell.check(["ping", "-c1", "-W2", peer.name])


@pytest.mark.parametrize("artifact", versioned_artifacts(), ids=lambda artifact: artifact.name)
def test_artifact_reports_its_pinned_version(artifact: object, lab_cluster_file: Path) -> None:
    from kubeproof.lab.artifacts import Artifact

    assert isinstance(artifact, Artifact)
    check_artifact_version(artifacts_dir() / artifact.path, artifact)


def test_manifest_lists_every_artifact_with_its_sha256(lab_cluster_file: Path) -> None:
    manifest = read_manifest()
    assert manifest["toolchain"].startswith("go")
    for entry in manifest["artifacts"]:
        assert set(entry) == {"name", "version", "path", "sha256"}
        assert sha256_file(artifacts_dir() / entry["path"]) == entry["sha256"], entry["name"]


@pytest.mark.parametrize("node_name", NODE_NAMES)
def test_nodes_cannot_set_the_clock(node_name: str, node_shells: dict[str, NodeShell]) -> None:
    # Nodes share the machine's kernel clock, so CAP_SYS_TIME is withheld from them. Checked in the
    # capability bounding set of the node's PID 1, never by trying to set the clock (that would move
    # the machine's clock if the capability were there by mistake).
    status = node_shells[node_name].check(["cat", "/proc/1/status"])
    bounding = next(line.split()[1] for line in status.splitlines() if line.startswith("CapBnd:"))
    assert not int(bounding, 16) & (1 << CAP_SYS_TIME_BIT), f"{node_name}: PID 1 may set the clock"


def test_ssh_config_works_for_openssh(lab_cluster_file: Path, lab_settings: LabSettings) -> None:
    import shutil
    import subprocess

    ssh = shutil.which("ssh")
    if ssh is None:
        pytest.skip("no OpenSSH client on this machine (paramiko paths are tested above)")
    result = subprocess.run(
        [ssh, "-F", str(lab_settings.ssh_config_file), "-o", "BatchMode=yes", "node01", "hostname"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "node01"


def test_run_remote_quotes_arguments(node_shells: dict[str, NodeShell]) -> None:
    # One argument with spaces and shell metacharacters arrives as one argument.
    tricky = "a b; echo injected $(id)"
    output = run_remote(node_shells["node02"].client, ["printf", "%s", tricky]).stdout
    assert output == tricky
