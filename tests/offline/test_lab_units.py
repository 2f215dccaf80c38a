"""Fast offline tests of the lab's pure parts (no Docker, no network)."""

from __future__ import annotations

import ipaddress
import itertools
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import paramiko
import pytest
import yaml

from kubeproof.lab import node_image
from kubeproof.lab.artifacts import (
    BINARY_ARTIFACTS,
    KUBERNETES_WRAPPER,
    Artifact,
    LockEntry,
    Measurement,
    compare_with_lock,
    go_mod_satisfies,
    render_go_mod,
)
from kubeproof.lab.cluster_file import ClusterFileInputs, render_cluster_file
from kubeproof.lab.dockercli import Docker
from kubeproof.lab.errors import LabError
from kubeproof.lab.labctl import (
    check_container_conflicts,
    check_network_conflicts,
    choose_login,
    ensure_inotify_instances,
    node_run_args,
    recorded_login,
)
from kubeproof.lab.settings import LAB_NODES, LabSettings
from kubeproof.lab.ssh_material import (
    HostKey,
    ensure_keypair,
    remote_command,
    render_known_hosts,
    render_ssh_config,
    render_sudoers,
    render_vagrant_ssh_config,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ED25519_KEY = HostKey("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIApGd4A4uhOuFXScH62wUvLk/PPyW6F6g0taT/q5q5Iz")


# ----------------------------------------------------------------------------- recipe hashing


def _files(content: bytes = b"#!/bin/sh\n", executable: bool = True) -> list[node_image.RecipeFile]:
    return [node_image.RecipeFile("/usr/local/sbin/kubeproof-entrypoint", executable, content)]


def test_recipe_hash_is_stable_and_twelve_hex_digits() -> None:
    first = node_image.recipe_hash(files=_files(), customize_script=b"x")
    assert first == node_image.recipe_hash(files=_files(), customize_script=b"x")
    assert len(first) == 12 and int(first, 16) >= 0


@pytest.mark.parametrize(
    "changed",
    [
        {"files": _files(content=b"#!/bin/sh\necho changed\n")},
        {"files": _files(executable=False)},
        {"customize_script": b"y"},
        {"packages": (*node_image.NODE_PACKAGES, "vim-tiny")},
        {"import_changes": ('CMD ["/bin/sh"]',)},
    ],
)
def test_recipe_hash_changes_with_every_part_of_the_recipe(changed: dict[str, Any]) -> None:
    base: dict[str, Any] = {"files": _files(), "customize_script": b"x"}
    assert node_image.recipe_hash(**{**base, **changed}) != node_image.recipe_hash(**base)


def test_rootfs_key_depends_only_on_what_debootstrap_gets() -> None:
    packages = node_image.NODE_PACKAGES
    assert node_image.rootfs_key(tuple(reversed(packages))) == node_image.rootfs_key(packages)
    assert node_image.rootfs_key((*packages, "vim-tiny")) != node_image.rootfs_key(packages)


def test_repository_recipe_includes_entrypoint_and_units() -> None:
    paths = {item.image_path: item for item in node_image.recipe_files()}
    assert paths["/usr/local/sbin/kubeproof-entrypoint"].executable
    assert "/etc/systemd/system/kubeproof-ssh-hostkeys.service" in paths
    assert node_image.node_image_tag().startswith("kubeproof-node:")


def test_debian_mirror_from_one_line_and_deb822_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(node_image.MIRROR_ENVIRONMENT_VARIABLE, raising=False)
    one_line = tmp_path / "sources.list"
    one_line.write_text(
        "deb http://security.example/debian-security bookworm-security main\n"
        "deb [arch=amd64] http://mirror.example/debian/ bookworm main\n"
    )
    assert node_image.debian_mirror(sources=[one_line]) == "http://mirror.example/debian"
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb\nURIs: http://other.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://other.example/debian-security\nSuites: bookworm-security\n"
    )
    assert node_image.debian_mirror(sources=[deb822]) == "http://other.example/debian"
    # the first file that names the suite wins, in apt's reading order
    assert node_image.debian_mirror(sources=[tmp_path / "missing", deb822, one_line]) == "http://other.example/debian"


def test_debian_mirror_option_then_environment_then_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one_line = tmp_path / "sources.list"
    one_line.write_text("deb http://apt.example/debian bookworm main\n")
    monkeypatch.setenv(node_image.MIRROR_ENVIRONMENT_VARIABLE, "http://env.example/debian/")
    assert node_image.debian_mirror("http://option.example/debian", [one_line]) == "http://option.example/debian"
    assert node_image.debian_mirror(None, [one_line]) == "http://env.example/debian"
    monkeypatch.delenv(node_image.MIRROR_ENVIRONMENT_VARIABLE)
    assert node_image.debian_mirror(None, [one_line]) == "http://apt.example/debian"


def test_no_mirror_anywhere_says_how_to_give_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(node_image.MIRROR_ENVIRONMENT_VARIABLE, raising=False)
    only_security = tmp_path / "sources.list"
    only_security.write_text("deb http://security.example/debian-security bookworm-security main\n")
    with pytest.raises(LabError, match=r"no Debian mirror for bookworm .*--mirror URL.*KUBEPROOF_DEBIAN_MIRROR"):
        node_image.debian_mirror(sources=[only_security, tmp_path / "missing"])


def test_apt_source_files_in_apt_reading_order(tmp_path: Path) -> None:
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    for name in ("b.sources", "a.list", "notes.txt", "c.list"):
        (parts / name).write_text("")
    found = [path.relative_to(tmp_path).as_posix() for path in node_image.apt_source_files(tmp_path)]
    assert found == ["sources.list", "sources.list.d/a.list", "sources.list.d/b.sources", "sources.list.d/c.list"]


def test_missing_debootstrap_is_a_one_line_fixable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEPROOF_CACHE", str(tmp_path))
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(LabError, match=r"^debootstrap not found on PATH: install it \(apt-get install debootstrap\)$"):
        node_image.ensure_rootfs_tarball(progress=None)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- rendering


def test_cluster_file_matches_the_design_format(tmp_path: Path) -> None:
    text = render_cluster_file(
        ClusterFileInputs(lab_name="lab", nodes=LAB_NODES, ssh_config="ssh_config", artifacts_dir=Path("/a/b"))
    )
    document = yaml.safe_load(text)
    assert list(document) == ["name", "profile", "hosts", "network", "versions", "ssh", "artifacts", "images", "time"]
    assert document["hosts"][0] == {
        "name": "master01",
        "address": "192.168.61.17",
        "roles": ["master", "etcd"],
        "etcd_name": "etcd01",
    }
    assert [host["address"] for host in document["hosts"]] == ["192.168.61.17", "192.168.61.18", "192.168.61.22"]
    assert document["network"] == {
        "pod_cidr": "172.17.0.0/16",
        "service_cidr": "10.0.0.0/24",
        "flannel_backend": "vxlan",
        "kube_proxy_mode": "iptables",
        "load_balancer_addresses": [],
    }
    assert document["versions"] == {
        "kubernetes": "v1.34.4",
        "etcd": "3.4.23",
        "flannel": "v0.28.10",
        "cri_dockerd": "0.3.17",
    }
    assert document["ssh"] == {"user": "root", "config": "ssh_config"}
    assert document["time"] == {"max_skew_seconds": 1.0, "sync": "host-kernel"}
    assert document["images"] == {"pause": "kubeproof/pause:3.10", "test": "kubeproof/testbox:1"}
    # And the core library reads it (nothing lab-only in it).
    from kubeproof.inventory import parse_cluster_text

    cluster = parse_cluster_text(text, source="cluster.yaml", base_dir=tmp_path)
    assert cluster.ssh_config == (tmp_path / "ssh_config").resolve()
    assert [host.etcd_name for host in cluster.etcd_members] == ["etcd01", "etcd02", "etcd03"]


def test_ssh_config_is_strict_with_absolute_paths(tmp_path: Path) -> None:
    text = render_ssh_config(
        LAB_NODES, user="root", identity_file=tmp_path / "id_ed25519", known_hosts_file=tmp_path / "known_hosts"
    )
    config = paramiko.SSHConfig.from_text(text)
    for node in LAB_NODES:
        for alias in (node.name, node.address):
            entry = config.lookup(alias)
            assert entry["hostname"] == node.address
            assert entry["user"] == "root"
            identity_files: object = entry["identityfile"]
            assert identity_files == [str(tmp_path / "id_ed25519")]
            assert entry["userknownhostsfile"] == str(tmp_path / "known_hosts")
            assert entry["stricthostkeychecking"] == "yes"
            assert entry["identitiesonly"] == "yes"
    assert "StrictHostKeyChecking no" not in text


# The keys `vagrant ssh-config` prints for a machine, in its order.
VAGRANT_SSH_CONFIG_KEYS = [
    "Host",
    "HostName",
    "User",
    "Port",
    "UserKnownHostsFile",
    "StrictHostKeyChecking",
    "PasswordAuthentication",
    "IdentityFile",
    "IdentitiesOnly",
    "LogLevel",
]


def test_vagrant_ssh_config_has_exactly_the_keys_and_form_vagrant_prints(tmp_path: Path) -> None:
    key = tmp_path / "with space" / "id_ed25519"
    text = render_vagrant_ssh_config(LAB_NODES, user="vagrant", identity_file=key)
    blocks = [block for block in text.split("\n\n") if block.strip()]
    assert len(blocks) == len(LAB_NODES)
    for node, block in zip(LAB_NODES, blocks, strict=True):
        lines = block.strip().splitlines()
        assert [line.split()[0] for line in lines] == VAGRANT_SSH_CONFIG_KEYS
        assert lines[0] == f"Host {node.name}"
        assert all(line.startswith("  ") for line in lines[1:]), block
        values = dict(line.strip().split(" ", 1) for line in lines[1:])
        assert values == {
            "HostName": node.address,
            "User": "vagrant",
            "Port": "22",
            "UserKnownHostsFile": "/dev/null",
            "StrictHostKeyChecking": "no",
            "PasswordAuthentication": "no",
            "IdentityFile": f'"{key}"',
            "IdentitiesOnly": "yes",
            "LogLevel": "FATAL",
        }
    # and paramiko (what testinfra reads it with) agrees
    entry = paramiko.SSHConfig.from_text(text).lookup("node01")
    assert (entry["hostname"], entry["user"], entry["stricthostkeychecking"]) == ("192.168.61.18", "vagrant", "no")


def test_sudoers_line_is_a_vagrant_boxes(tmp_path: Path) -> None:
    assert render_sudoers("vagrant") == "vagrant ALL=(ALL) NOPASSWD:ALL\n"


def test_remote_command_quotes_every_argument_and_never_prompts() -> None:
    assert remote_command(["docker", "image", "inspect", "a b"]) == "docker image inspect 'a b'"
    assert remote_command(["docker", "load"], sudo=True) == "sudo -n -- docker load"
    assert remote_command(["echo", "$(id)"], sudo=True) == "sudo -n -- echo '$(id)'"


def _labelled(login: str | None) -> dict[str, Any]:
    labels = {"io.kubeproof.lab": "lab"}
    if login is not None:
        labels["io.kubeproof.login"] = login
    return {"Labels": labels}


@pytest.mark.parametrize(
    ("objects", "requested", "expected"),
    [
        ([], None, "root"),  # a new lab: root unless asked
        ([], "vagrant", "vagrant"),
        ([_labelled("vagrant")], None, "vagrant"),  # an existing lab keeps its login
        ([_labelled(None)], None, "root"),  # made before logins existed
        ([_labelled("root")], "root", "root"),
    ],
)
def test_lab_login_is_recorded_then_kept(objects: list[dict[str, Any]], requested: str | None, expected: str) -> None:
    settings = LabSettings.create(login=requested)
    chosen = choose_login(settings, recorded_login(objects))
    assert (chosen.ssh_user, chosen.sudo) == (expected, expected != "root")


def test_switching_the_login_of_an_existing_lab_says_down_first() -> None:
    settings = LabSettings.create(login="vagrant")
    with pytest.raises(LabError, match=r"exists with login 'root', not 'vagrant'.*lab down.*up --login vagrant"):
        choose_login(settings, recorded_login([_labelled("root")]))


def test_bad_login_is_refused() -> None:
    with pytest.raises(LabError, match=r"invalid login 'admin': use one of root, vagrant"):
        LabSettings.create(login="admin")


def test_vagrant_cluster_file_logs_in_as_vagrant_with_sudo(tmp_path: Path) -> None:
    text = render_cluster_file(
        ClusterFileInputs(
            lab_name="lab",
            nodes=LAB_NODES,
            ssh_config="ssh_config",
            artifacts_dir=Path("/a/b"),
            ssh_user="vagrant",
            ssh_sudo=True,
        )
    )
    from kubeproof.inventory import parse_cluster_text

    cluster = parse_cluster_text(text, source="cluster.yaml", base_dir=tmp_path)
    assert yaml.safe_load(text)["ssh"] == {"user": "vagrant", "sudo": True, "config": "ssh_config"}
    assert (cluster.ssh_user, cluster.ssh_sudo) == ("vagrant", True)


def test_known_hosts_has_entries_by_name_and_address(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(render_known_hosts([(("master01", "192.168.61.17"), [ED25519_KEY])]))
    keys = paramiko.HostKeys(str(path))
    for alias in ("master01", "192.168.61.17"):
        assert keys.lookup(alias) is not None
        assert keys.lookup(alias)["ssh-ed25519"].get_base64() == ED25519_KEY.key_base64  # type: ignore[index]
    assert keys.lookup("node01") is None


def test_host_key_parse_rejects_garbage() -> None:
    assert HostKey.parse("ssh-ed25519 AAAA root@master01") == HostKey("ssh-ed25519", "AAAA")
    with pytest.raises(LabError):
        HostKey.parse("not a key")


def test_keypair_private_file_is_0600_and_loadable(tmp_path: Path) -> None:
    settings = LabSettings.create("lab", tmp_path / "state")
    public_line = ensure_keypair(settings)
    assert public_line.startswith("ssh-ed25519 ") and public_line.endswith(" kubeproof-lab-lab")
    assert settings.private_key_file.stat().st_mode & 0o777 == 0o600
    key = paramiko.Ed25519Key.from_private_key_file(str(settings.private_key_file))
    assert public_line.split()[1] == key.get_base64()
    # Idempotent: the second call keeps the key.
    assert ensure_keypair(settings) == public_line


# ----------------------------------------------------------------------------- docker arguments and conflicts


def test_node_run_args_never_privileged_and_never_sys_time() -> None:
    settings = LabSettings.create("lab", Path("/tmp/state"))
    args = node_run_args(settings, LAB_NODES[0], "kubeproof-node:0123456789ab")
    assert "--privileged" not in args
    assert ("--cap-drop", "SYS_TIME") in itertools.pairwise(args)
    assert ("--cgroupns", "private") in itertools.pairwise(args)
    assert ("--label", "io.kubeproof.lab=lab") in itertools.pairwise(args)
    assert ("--ip", "192.168.61.17") in itertools.pairwise(args)
    assert ("--volume", "kubeproof-lab-master01-docker:/var/lib/docker") in itertools.pairwise(args)


def test_more_workers_follow_the_guides_table_without_etcd() -> None:
    settings = LabSettings.create("lab", Path("/tmp/state"), workers=4)
    assert settings.nodes[:3] == LAB_NODES
    assert [(n.name, n.address, n.roles, n.etcd_name) for n in settings.nodes[3:]] == [
        ("node03", "192.168.61.23", ("node",), None),
        ("node04", "192.168.61.24", ("node",), None),
    ]
    assert settings.node("node04").address == "192.168.61.24"
    with pytest.raises(LabError, match="no lab node named 'node05': the lab has master01, node01, node02, node03"):
        settings.node("node05")


def test_a_scale_lab_has_light_hosts_on_a_network_of_its_own() -> None:
    settings = LabSettings.create("scale", Path("/tmp/state"), scale=50)
    nodes = settings.nodes
    assert len(nodes) == 50 and len({n.address for n in nodes}) == 50
    assert all(ipaddress.ip_address(n.address) in settings.subnet for n in nodes)
    assert not settings.subnet.overlaps(LabSettings.create("lab", Path("/tmp/state")).subnet)
    assert [n.roles for n in nodes[:4]] == [("master", "etcd"), ("node", "etcd"), ("node", "etcd"), ("node",)]
    assert [n.etcd_name for n in nodes[:4]] == ["etcd01", "etcd02", "etcd03", None]
    args = node_run_args(settings, nodes[7], "kubeproof-node:0123456789ab")
    assert not any(arg.endswith(":/var/lib/docker") for arg in args), args
    for unit in ("docker.service", "docker.socket", "containerd.service"):
        mount = f"type=bind,source=/dev/null,target=/etc/systemd/system/{unit},readonly"
        assert ("--mount", mount) in itertools.pairwise(args)
    assert ("--hostname", "scale008") in itertools.pairwise(args)


def test_the_inotify_limit_is_raised_only_when_too_low_for_the_nodes(tmp_path: Path) -> None:
    limit = tmp_path / "max_user_instances"
    said: list[str] = []
    progress = SimpleNamespace(say=said.append)
    limit.write_text("8192\n")
    ensure_inotify_instances(50, progress, limit)  # type: ignore[arg-type]
    assert limit.read_text() == "8192\n" and not said
    limit.write_text("128\n")
    ensure_inotify_instances(50, progress, limit)  # type: ignore[arg-type]
    assert limit.read_text() == f"{128 + 32 * 50}\n"
    assert said == [
        f"  raised fs.inotify.max_user_instances from 128 to {128 + 32 * 50} (every node's systemd takes some)"
    ]
    limit.write_text("128\n")

    def refused(self: Path, text: str) -> int:
        raise PermissionError(13, "Permission denied")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "write_text", refused)
        with pytest.raises(LabError, match=r"sysctl -w fs\.inotify\.max_user_instances=1728"):
            ensure_inotify_instances(50, progress, limit)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("workers", "scale", "message"),
    [
        (1, 0, "--workers 1: the lab has from 2"),
        (9, 0, "--workers 9: the lab has from 2"),
        (2, 201, "--scale 201: a scale lab has from 1 to 200"),
        (3, 10, "--scale and --workers do not go together"),
    ],
)
def test_bad_host_counts_are_refused_by_name(workers: int, scale: int, message: str) -> None:
    with pytest.raises(LabError, match=message):
        LabSettings.create("lab", Path("/tmp/state"), workers=workers, scale=scale)


class FakeDocker(Docker):
    """Answers `network ls` / `inspect` from canned data."""

    def __init__(self, networks: list[dict[str, Any]], containers: list[dict[str, Any]] | None = None) -> None:
        super().__init__("/nonexistent/docker")
        self.networks = networks
        self.containers = containers or []

    def lines(self, args: Any) -> list[str]:
        return [str(network["Id"]) for network in self.networks]

    def inspect(self, kind: str, names: Any) -> list[dict[str, Any]]:
        return self.networks if kind == "network" else self.containers


def _network(name: str, subnet: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"Id": name + "-id", "Name": name, "Labels": labels or {}, "IPAM": {"Config": [{"Subnet": subnet}]}}


def test_overlapping_network_is_named_with_what_to_do() -> None:
    docker = FakeDocker([_network("bridge", "172.17.0.0/16"), _network("office", "192.168.0.0/16")])
    with pytest.raises(LabError) as caught:
        check_network_conflicts(docker, LabSettings.create("lab", Path("/tmp/s")))
    assert str(caught.value) == (
        "Docker network office uses 192.168.0.0/16, which overlaps the lab's 192.168.61.0/24:"
        " remove it (docker network rm office) and retry"
    )


def test_foreign_network_with_the_lab_name_is_refused() -> None:
    docker = FakeDocker([_network("kubeproof-lab", "192.168.61.0/24")])
    with pytest.raises(LabError, match="exists that lab 'lab' did not create"):
        check_network_conflicts(docker, LabSettings.create("lab", Path("/tmp/s")))


def test_own_network_is_reused() -> None:
    ours = _network("kubeproof-lab", "192.168.61.0/24", {"io.kubeproof.lab": "lab"})
    docker = FakeDocker([ours])
    assert check_network_conflicts(docker, LabSettings.create("lab", Path("/tmp/s"))) == ours


def test_foreign_container_named_master01_is_refused() -> None:
    docker = FakeDocker([], containers=[{"Name": "/master01", "Config": {"Labels": {}}}])
    with pytest.raises(LabError) as caught:
        check_container_conflicts(docker, LabSettings.create("lab", Path("/tmp/s")))
    assert "remove or rename it (docker rm -f master01)" in str(caught.value)


# ----------------------------------------------------------------------------- artifacts and the lock


def _measurement(sha: str, toolchain: str) -> Measurement:
    artifact = next(item for item in BINARY_ARTIFACTS if item.name == "kubelet")
    return Measurement(artifact, toolchain, sha, "k8s.io/kubernetes@v1.34.4")


def _lock(sha: str, toolchain: str) -> dict[str, LockEntry]:
    return {"kubelet": LockEntry("kubelet", "v1.34.4", "k8s.io/kubernetes@v1.34.4", toolchain, sha)}


def test_lock_match_same_toolchain_mismatch_error_other_toolchain_warning() -> None:
    assert compare_with_lock(_measurement("a" * 64, "go1.26.8"), _lock("a" * 64, "go1.26.8")) is None
    with pytest.raises(LabError, match="same toolchain"):
        compare_with_lock(_measurement("b" * 64, "go1.26.8"), _lock("a" * 64, "go1.26.8"))
    warning = compare_with_lock(_measurement("b" * 64, "go1.27.0"), _lock("a" * 64, "go1.26.8"))
    assert warning is not None and "toolchain differs" in warning
    assert "not pinned" in (compare_with_lock(_measurement("b" * 64, "go1.26.8"), {}) or "")


def test_repository_lock_pins_every_binary_with_its_version() -> None:
    from kubeproof.lab.artifacts import load_lock

    lock = load_lock()
    for artifact in BINARY_ARTIFACTS:
        assert artifact.name in lock, artifact.name
        assert lock[artifact.name].version == artifact.version
        assert len(lock[artifact.name].sha256) == 64


def test_every_binary_has_a_version_command_or_a_reason() -> None:
    for artifact in BINARY_ARTIFACTS:
        assert isinstance(artifact, Artifact)
        assert (artifact.version_argv is not None and artifact.version_text) or artifact.no_version_reason


def test_kubernetes_wrapper_go_mod_replaces_every_staging_module() -> None:
    text = render_go_mod(KUBERNETES_WRAPPER, KUBERNETES_WRAPPER.replaces)
    assert "require k8s.io/kubernetes v1.34.4" in text
    assert "\tk8s.io/client-go => k8s.io/client-go v0.34.4" in text
    tidied: dict[str, Any] = {
        "Module": {"Path": "kubeproof.local/build/kubernetes"},
        "Require": [{"Path": "k8s.io/kubernetes", "Version": "v1.34.4"}, {"Path": "x", "Version": "v1"}],
        "Replace": [
            {"Old": {"Path": old}, "New": {"Path": new.split("@")[0], "Version": new.split("@")[1]}}
            for old, new in KUBERNETES_WRAPPER.replaces.items()
        ],
    }
    assert go_mod_satisfies(tidied, KUBERNETES_WRAPPER, KUBERNETES_WRAPPER.replaces)
    tidied["Require"][0]["Version"] = "v1.34.3"
    assert not go_mod_satisfies(tidied, KUBERNETES_WRAPPER, KUBERNETES_WRAPPER.replaces)


# ----------------------------------------------------------------------------- CLI errors


def _run_cli(args: list[str], path: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": path,
        "HOME": str(tmp_path),
        "KUBEPROOF_STATE": str(tmp_path / "state"),
        "KUBEPROOF_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "kubeproof", "lab", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", [["up"], ["down"], ["status"], ["images"]])
def test_cli_without_docker_says_what_to_do_in_one_line(command: list[str], tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = _run_cli(command, str(empty_bin), tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr
        == "lab: error: docker not found on PATH: install it (apt-get install docker.io) and start dockerd\n"
    )
    assert "Traceback" not in result.stdout


def test_cli_with_docker_daemon_down_says_how_to_start_it(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake_docker = fake_bin / "docker"
    fake_docker.write_text(
        "#!/bin/sh\n"
        "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2\n"
        "exit 1\n"
    )
    fake_docker.chmod(0o755)
    result = _run_cli(["up"], str(fake_bin), tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("lab: error: cannot reach the Docker daemon (Cannot connect to the Docker daemon")
    assert "start it" in lines[0]


def test_cli_rejects_a_bad_lab_name_in_one_line(tmp_path: Path) -> None:
    result = _run_cli(["--name", "Bad_Name", "status"], os.environ.get("PATH", ""), tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("lab: error: invalid lab name 'Bad_Name'")
    assert len(result.stderr.splitlines()) == 1


def test_cli_ssh_to_unknown_node_is_one_line(tmp_path: Path) -> None:
    result = _run_cli(["ssh", "node09"], "/usr/bin:/bin", tmp_path)
    assert result.returncode == 2
    assert result.stderr == "lab: error: no lab node named 'node09': the lab has master01, node01, node02\n"
