"""The lab's SSH material: a key pair per lab, known_hosts from a trusted channel, an OpenSSH config.

Host keys are read through `docker exec` (the lab's trusted channel, as a cloud console would be
for a VM) and written to known_hosts; the lab's own connections (readiness, image loading, status)
always check them. The ssh_config handed to users checks them too for the default root login; for
the vagrant login it is what `vagrant ssh-config` prints (no host-key checking), as a Vagrant user
would have it.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kubeproof.lab.errors import LabError
from kubeproof.lab.settings import LabSettings, NodeSpec

SSH_CONNECT_TIMEOUT_SECONDS = 10.0
SSH_PORT = 22

# The host key files a node generates at first boot (`ssh-keygen -A`); all go into known_hosts so
# every client (OpenSSH, paramiko) finds the key type it negotiates.
HOST_PUBLIC_KEY_FILES: tuple[str, ...] = (
    "/etc/ssh/ssh_host_ed25519_key.pub",
    "/etc/ssh/ssh_host_ecdsa_key.pub",
    "/etc/ssh/ssh_host_rsa_key.pub",
)


@dataclass(frozen=True)
class HostKey:
    """One public host key: its type (e.g. ssh-ed25519) and base64 body, without the comment."""

    key_type: str
    key_base64: str

    @classmethod
    def parse(cls, line: str) -> HostKey:
        fields = line.split()
        if len(fields) < 2 or not fields[0].startswith(("ssh-", "ecdsa-")):
            raise LabError(f"not an SSH public key line: {line[:40]!r}")
        return cls(fields[0], fields[1])


def write_private_file(path: Path, data: bytes) -> None:
    """Create path with mode 0600 from the start (never world-readable, not even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    temporary.replace(path)


def write_public_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.chmod(0o644)
    temporary.replace(path)


def ensure_keypair(settings: LabSettings) -> str:
    """The lab's ed25519 key pair (created once); returns the public key line."""
    private_path = settings.private_key_file
    public_path = settings.public_key_file
    if private_path.is_file() and public_path.is_file():
        return public_path.read_text().strip()
    private_key = Ed25519PrivateKey.generate()
    private_bytes = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.OpenSSH,
        encryption_algorithm=serialization.NoEncryption(),
    )
    public_line = (
        private_key.public_key()
        .public_bytes(encoding=serialization.Encoding.OpenSSH, format=serialization.PublicFormat.OpenSSH)
        .decode()
        + f" kubeproof-lab-{settings.name}"
    )
    write_private_file(private_path, private_bytes)
    write_public_file(public_path, public_line + "\n")
    return public_line


def render_known_hosts(entries: Iterable[tuple[Sequence[str], Sequence[HostKey]]]) -> str:
    """known_hosts text: one line per (host, key), the host listed by every name it is reached by."""
    lines: list[str] = []
    for names, keys in entries:
        host_field = ",".join(names)
        for key in keys:
            lines.append(f"{host_field} {key.key_type} {key.key_base64}")
    return "\n".join(lines) + "\n"


def render_ssh_config(nodes: Sequence[NodeSpec], *, user: str, identity_file: Path, known_hosts_file: Path) -> str:
    """An OpenSSH client config with strict host-key checking; paths absolute."""
    blocks = [
        "# Written by `kubeproof lab up`; strict host keys (known_hosts recorded via docker exec).\n"
        f"# Use: ssh -F {identity_file.parent / 'ssh_config'} master01\n"
    ]
    for node in nodes:
        blocks.append(
            f"Host {node.name} {node.address}\n"
            f"    HostName {node.address}\n"
            f"    User {user}\n"
            f"    IdentityFile {identity_file.absolute()}\n"
            f"    UserKnownHostsFile {known_hosts_file.absolute()}\n"
            "    StrictHostKeyChecking yes\n"
            "    IdentitiesOnly yes\n"
            "    PasswordAuthentication no\n"
            "    ConnectTimeout 10\n"
        )
    return "\n".join(blocks)


def _config_value(value: Path | str) -> str:
    # As vagrant writes it: a value with a space in double quotes.
    text = str(value)
    return f'"{text}"' if any(ch.isspace() for ch in text) else text


def render_vagrant_ssh_config(nodes: Sequence[NodeSpec], *, user: str, identity_file: Path) -> str:
    """An OpenSSH client config in exactly the form `vagrant ssh-config` prints, one block per host."""
    blocks = []
    for node in nodes:
        blocks.append(
            f"Host {node.name}\n"
            f"  HostName {node.address}\n"
            f"  User {user}\n"
            f"  Port {SSH_PORT}\n"
            "  UserKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking no\n"
            "  PasswordAuthentication no\n"
            f"  IdentityFile {_config_value(identity_file.absolute())}\n"
            "  IdentitiesOnly yes\n"
            "  LogLevel FATAL\n"
        )
    return "\n".join(blocks)


def render_sudoers(user: str) -> str:
    """/etc/sudoers.d/<user> of a Vagrant box: every command, no password (the file is mode 0440)."""
    return f"{user} ALL=(ALL) NOPASSWD:ALL\n"


def remote_command(argv: Sequence[str], *, sudo: bool = False) -> str:
    """argv quoted for the remote shell; under `sudo -n` (never prompting) when sudo is set."""
    return shlex.join(["sudo", "-n", "--", *argv] if sudo else list(argv))


def connect(node: NodeSpec, settings: LabSettings, timeout: float = SSH_CONNECT_TIMEOUT_SECONDS) -> paramiko.SSHClient:
    """A paramiko client to node as the lab's login, host key checked against its known_hosts (RejectPolicy)."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(settings.known_hosts_file))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            hostname=node.address,
            port=SSH_PORT,
            username=settings.ssh_user,
            key_filename=str(settings.private_key_file),
            look_for_keys=False,
            allow_agent=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
        )
    except BaseException:
        client.close()
        raise
    return client


@dataclass(frozen=True)
class RemoteResult:
    exit_status: int
    stdout: str
    stderr: str


def run_remote(
    client: paramiko.SSHClient, argv: Sequence[str], timeout: float = 120.0, *, sudo: bool = False
) -> RemoteResult:
    """Run argv (quoted for the remote shell, under `sudo -n` when sudo is set) and collect its output."""
    _stdin, stdout, stderr = client.exec_command(remote_command(argv, sudo=sudo), timeout=timeout)
    out = stdout.read().decode(errors="replace")
    err = stderr.read().decode(errors="replace")
    return RemoteResult(stdout.channel.recv_exit_status(), out, err)
