"""The transport's SSH rules without a network: host-key policies as `ssh -F` reads them, the
sudo wrapping of every command, and the warnings a run prints about its own connections.
(The same rules against a real sshd: tests/lab/test_16_host_keys.py and test_90_vagrant_lab.py.)"""

from __future__ import annotations

import shlex
from pathlib import Path

import paramiko
import pytest

from kubeproof.fixtures.plugin import transport_warnings
from kubeproof.inventory import HostSpec
from kubeproof.transport import (
    HOST_KEY_RECORDED,
    HOST_KEY_UNVERIFIED,
    HOST_KEY_VERIFIED,
    Connection,
    ConnectionOptions,
    HostKeyPolicy,
    HostStats,
)

NODE = HostSpec("node01", "192.168.61.18", frozenset({"node"}))


def _options(tmp_path: Path, text: str) -> dict[str, object]:
    path = tmp_path / "ssh_config"
    path.write_text(text)
    return dict(paramiko.SSHConfig.from_path(str(path)).lookup("node01"))


@pytest.mark.parametrize(
    ("line", "mode"),
    [
        ("StrictHostKeyChecking yes", HOST_KEY_VERIFIED),
        ("StrictHostKeyChecking ask", HOST_KEY_VERIFIED),  # no terminal to ask on: refused, as ssh does
        ("", HOST_KEY_VERIFIED),  # the default stays strict
        ("StrictHostKeyChecking accept-new", HOST_KEY_RECORDED),
        ("StrictHostKeyChecking no", HOST_KEY_UNVERIFIED),
        ("StrictHostKeyChecking off", HOST_KEY_UNVERIFIED),
    ],
)
def test_strict_host_key_checking_as_openssh_reads_it(tmp_path: Path, line: str, mode: str) -> None:
    options = _options(tmp_path, f"Host node01\n  HostName 192.168.61.18\n  {line}\n")
    assert HostKeyPolicy.from_ssh_config(options).mode == mode


def test_known_hosts_files_from_the_config_and_the_record_target(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    second.write_text("")
    options = _options(tmp_path, f"Host node01\n  UserKnownHostsFile {first} {second}\n")
    policy = HostKeyPolicy.from_ssh_config(options)
    assert policy.known_hosts == (first, second)
    assert policy.readable_files == [second]  # a missing file is no error, as for ssh
    assert policy.record_file == first  # accept-new writes to the first, as ssh does


def test_vagrant_known_hosts_dev_null_is_read_as_nothing_and_never_written(tmp_path: Path) -> None:
    options = _options(tmp_path, "Host node01\n  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n")
    policy = HostKeyPolicy.from_ssh_config(options)
    assert (policy.mode, policy.readable_files, policy.record_file) == (HOST_KEY_UNVERIFIED, [], None)


def test_no_ssh_config_reads_the_users_known_hosts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    policy = HostKeyPolicy.from_ssh_config({})
    assert (policy.mode, policy.known_hosts) == (HOST_KEY_VERIFIED, (tmp_path / ".ssh" / "known_hosts",))


TRICKY_COMMAND = "printf '%s\\n' \"$HOME\" 'it''s' | grep -c x; echo $(id -u) > /tmp/a b"


@pytest.mark.parametrize(
    ("spec", "options", "prefix"),
    [
        ("paramiko://vagrant@node01?sudo=true", ConnectionOptions(), ["sudo", "-n", "--"]),
        ("paramiko://vagrant@node01", ConnectionOptions(sudo=True), ["sudo", "-n", "--"]),
        (
            "paramiko://vagrant@node01",
            ConnectionOptions(sudo=True, sudo_user="etcd"),
            ["sudo", "-n", "-u", "etcd", "--"],
        ),
        ("paramiko://vagrant@node01?sudo=true&sudo_user=etcd", ConnectionOptions(), ["sudo", "-n", "-u", "etcd", "--"]),
    ],
)
def test_sudo_wraps_the_whole_command_quoted_and_never_prompts(
    spec: str, options: ConnectionOptions, prefix: list[str]
) -> None:
    connection = Connection(NODE, spec, None, options=options)
    wire = connection.wrap(TRICKY_COMMAND)
    # the remote shell splits it back into exactly sudo's argv, the command one word for sh -c
    assert shlex.split(wire) == [*prefix, "/bin/sh", "-c", TRICKY_COMMAND]
    assert connection.stats.as_dict()["login"] == ""  # not connected yet
    connection.stats.login = "vagrant"
    assert connection.stats.as_dict()["login"] == "vagrant via sudo"


def test_without_sudo_the_command_goes_as_it_is() -> None:
    connection = Connection(NODE, "paramiko://root@node01", None)
    assert connection.wrap(TRICKY_COMMAND) == TRICKY_COMMAND
    connection.stats.login = "root"
    assert connection.stats.as_dict()["login"] == "root"


def test_the_cluster_files_sudo_applies_to_every_host() -> None:
    assert Connection(NODE, "paramiko://vagrant@node01", None, sudo=True).wrap("id").startswith("sudo -n -- ")


def _stats(host_key: str) -> dict[str, object]:
    stats = HostStats(login="vagrant", host_key=host_key)
    return stats.as_dict()


def test_unverified_host_keys_are_named_in_one_warning() -> None:
    warnings = transport_warnings(
        {"node02": _stats(HOST_KEY_UNVERIFIED), "master01": _stats(HOST_KEY_UNVERIFIED), "node01": _stats("verified")}
    )
    assert warnings == [
        "host identity was not verified for master01, node02: the ssh_config says StrictHostKeyChecking no"
        " (as `vagrant ssh-config` prints), so any host key was accepted"
    ]


def test_recorded_host_keys_are_said_and_verified_ones_are_silent() -> None:
    assert transport_warnings({"node01": _stats(HOST_KEY_RECORDED)}) == [
        "new host keys were recorded for node01 (StrictHostKeyChecking accept-new)"
    ]
    assert transport_warnings({"node01": _stats(HOST_KEY_VERIFIED), "node02": _stats(HOST_KEY_VERIFIED)}) == []
