"""ssh_config and known_hosts are parsed once per version of the file, and a client gets the keys
known for the host it dials, under the name paramiko looks up (kubeproof/ssh_files.py)."""

from __future__ import annotations

import os
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kubeproof import ssh_files


def _public_line() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def test_a_client_gets_only_the_dialled_hosts_keys_by_the_name_paramiko_looks_up(tmp_path: Path) -> None:
    mine, other, on_2222 = _public_line(), _public_line(), _public_line()
    known = tmp_path / "known_hosts"
    known.write_text(f"10.0.0.1 {mine}\n10.0.0.2 {other}\n[10.0.0.1]:2222 {on_2222}\n")
    client = paramiko.SSHClient()
    ssh_files.add_known_keys(client, [known], "10.0.0.1", 22)
    keys = client.get_host_keys()
    assert keys.lookup("10.0.0.1") is not None
    assert keys.lookup("10.0.0.1")["ssh-ed25519"].get_base64() == mine.split()[1]  # type: ignore[index]
    assert keys.lookup("10.0.0.2") is None
    other_port = paramiko.SSHClient()
    ssh_files.add_known_keys(other_port, [known], "10.0.0.1", 2222)
    found = other_port.get_host_keys().lookup("[10.0.0.1]:2222")
    assert found is not None and found["ssh-ed25519"].get_base64() == on_2222.split()[1]


def test_an_unknown_host_gets_no_key_so_the_policy_decides(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"10.0.0.2 {_public_line()}\n")
    client = paramiko.SSHClient()
    ssh_files.add_known_keys(client, [known], "10.0.0.9", 22)
    assert len(client.get_host_keys()) == 0


def test_of_two_files_the_first_ones_key_counts_as_with_load_host_keys(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    old, new = _public_line(), _public_line()
    first.write_text(f"node01 {old}\n")
    second.write_text(f"node01 {new}\n")
    client = paramiko.SSHClient()
    ssh_files.add_known_keys(client, [first, second], "node01", 22)
    reference = paramiko.SSHClient()
    for path in (first, second):
        reference.load_host_keys(str(path))
    ours, theirs = client.get_host_keys().lookup("node01"), reference.get_host_keys().lookup("node01")
    assert ours is not None and theirs is not None
    assert ours["ssh-ed25519"].get_base64() == theirs["ssh-ed25519"].get_base64() == old.split()[1]


def test_files_are_parsed_once_and_again_when_they_change(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"node01 {_public_line()}\n")
    assert ssh_files.known_host_keys(known) is ssh_files.known_host_keys(known)
    with known.open("a") as handle:  # accept-new appends a key
        handle.write(f"node02 {_public_line()}\n")
    reread = ssh_files.known_host_keys(known)
    assert reread.lookup("node02") is not None

    config = tmp_path / "ssh_config"
    config.write_text("Host node01\n    HostName 10.0.0.1\n")
    assert ssh_files.ssh_config(config) is ssh_files.ssh_config(config)
    assert ssh_files.ssh_options(config, "node01")["hostname"] == "10.0.0.1"
    config.write_text("Host node01\n    HostName 10.0.0.77\n")
    stat = config.stat()
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a change within one mtime tick
    assert ssh_files.ssh_options(config, "node01")["hostname"] == "10.0.0.77"
