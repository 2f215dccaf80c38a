"""Transport: SSH to the cluster's hosts through testinfra's paramiko backend.

testinfra's ParamikoBackend accepts any unknown host key (paramiko.WarningPolicy) and never reads
a known_hosts file, so the backend here keeps its connection logic but rejects unknown keys and
loads UserKnownHostsFile from the SSH config. Every connection and remote command is counted per
host so the evidence can show what the run cost.
"""

from __future__ import annotations

import os
import shlex
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
import testinfra.host
from testinfra.backend.paramiko import ParamikoBackend

from kubeproof.inventory import Cluster, HostSpec, parse_host_spec


class ProbeError(Exception):
    """A probe could not run: the outcome is an error with this reason, never a pass or a fail."""

    def __init__(self, host: str, reason: str):
        self.host = host
        self.reason = reason
        super().__init__(f"{host}: {reason}")


class HostUnreachable(ProbeError):
    pass


@dataclass
class HostStats:
    connections: int = 0
    commands: int = 0
    command_seconds: float = 0.0
    bytes_sent: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ssh_connections": self.connections,
            "remote_commands": self.commands,
            "remote_command_seconds": round(self.command_seconds, 3),
            "bytes_sent": self.bytes_sent,
        }


@dataclass(frozen=True)
class CommandResult:
    host: str
    command: str
    rc: int
    stdout: str
    stderr: str
    started: float
    seconds: float

    @property
    def ok(self) -> bool:
        return self.rc == 0


class StrictParamikoBackend(ParamikoBackend):  # type: ignore[misc]
    """testinfra's paramiko backend with host-key checking that cannot be turned off."""

    def __init__(self, hostspec: str, *, stats: HostStats, known_hosts: Path | None = None, **kwargs: Any):
        super().__init__(hostspec, **kwargs)
        self.stats = stats
        self.known_hosts = known_hosts

    def _known_hosts_files(self) -> list[Path]:
        files: list[Path] = []
        if self.known_hosts:
            files.append(self.known_hosts)
        if self.ssh_config:
            config = paramiko.SSHConfig.from_path(self.ssh_config)
            for value in config.lookup(self.host.name).get("userknownhostsfile", "").split():
                files.append(Path(os.path.expanduser(value)))
        if not files:
            files.append(Path.home() / ".ssh" / "known_hosts")
        return files

    @property
    def client(self) -> paramiko.SSHClient:  # type: ignore[override]
        cached = self.__dict__.get("_strict_client")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        client = paramiko.SSHClient()
        loaded = False
        for path in self._known_hosts_files():
            if path.is_file():
                client.load_host_keys(str(path))
                loaded = True
        if not loaded:
            raise HostUnreachable(self.host.name, "no known_hosts file found; record the host keys first")
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        cfg: dict[str, Any] = {
            "hostname": self.host.name,
            "port": int(self.host.port) if self.host.port else 22,
            "username": self.host.user,
            "timeout": self.timeout,
            "banner_timeout": self.timeout,
            "auth_timeout": self.timeout,
            "allow_agent": False,
        }
        if self.ssh_config:
            ssh_config = paramiko.SSHConfig.from_path(self.ssh_config)
            for key, value in ssh_config.lookup(self.host.name).items():
                if key == "hostname":
                    cfg["hostname"] = value
                elif key == "user" and not self.host.user:
                    cfg["username"] = value
                elif key == "port" and not self.host.port:
                    cfg["port"] = int(value)
                elif key == "identityfile":
                    cfg["key_filename"] = [os.path.expanduser(v) for v in value]
                elif key == "proxycommand":
                    cfg["sock"] = paramiko.ProxyCommand(value)
        if self.ssh_identity_file:
            cfg["key_filename"] = self.ssh_identity_file
        self.stats.connections += 1
        try:
            client.connect(**cfg)
        except paramiko.SSHException as exc:
            raise HostUnreachable(self.host.name, f"SSH to {cfg['hostname']}:{cfg['port']} failed: {exc}") from None
        except (TimeoutError, OSError) as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise HostUnreachable(self.host.name, f"cannot reach {cfg['hostname']}:{cfg['port']}: {reason}") from None
        self.__dict__["_strict_client"] = client
        return client

    @client.deleter
    def client(self) -> None:
        self.__dict__.pop("_strict_client", None)


class Connection:
    """One host: the testinfra Host facade plus counted exec, stdin streaming and SFTP."""

    def __init__(self, spec: HostSpec, connection_spec: str, ssh_config: Path | None, timeout: int = 15):
        parsed = parse_host_spec(connection_spec)
        self.spec = spec
        self.name = spec.name
        self.stats = HostStats()
        self._lock = threading.Lock()
        config = parsed.params.get("ssh_config") or (str(ssh_config) if ssh_config else None)
        netloc = (parsed.user + "@" if parsed.user else "") + parsed.host + (f":{parsed.port}" if parsed.port else "")
        self.backend = StrictParamikoBackend(
            netloc,
            stats=self.stats,
            ssh_config=config,
            ssh_identity_file=parsed.params.get("ssh_identity_file"),
            timeout=int(parsed.params.get("timeout", timeout)),
        )
        self.testinfra = testinfra.host.Host(self.backend)
        self.backend.set_host(self.testinfra)

    # -- exec

    def run(self, command: str, *, stdin: bytes | None = None, timeout: float = 120.0) -> CommandResult:
        """Run a shell command (already quoted by the caller) and return its result.

        Raises HostUnreachable when the host cannot be reached; a non-zero exit is a result.
        """
        started = time.time()
        with self._lock:
            client = self.backend.client
            transport = client.get_transport()
            if transport is None or not transport.is_active():
                del self.backend.client
                client = self.backend.client
                transport = client.get_transport()
            assert transport is not None
            try:
                channel = transport.open_session(timeout=self.backend.timeout)
                channel.settimeout(timeout)
                channel.exec_command(command)
                if stdin is not None:
                    for offset in range(0, len(stdin), 1 << 16):
                        channel.sendall(stdin[offset : offset + (1 << 16)])
                    self.stats.bytes_sent += len(stdin)
                channel.shutdown_write()
                stdout_chunks: list[bytes] = []
                stderr_chunks: list[bytes] = []
                deadline = started + timeout
                while True:
                    if channel.recv_ready():
                        stdout_chunks.append(channel.recv(1 << 16))
                        continue
                    if channel.recv_stderr_ready():
                        stderr_chunks.append(channel.recv_stderr(1 << 16))
                        continue
                    if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                        break
                    if time.time() > deadline:
                        channel.close()
                        raise ProbeError(self.name, f"command timed out after {timeout:.0f}s: {command[:120]}")
                    time.sleep(0.002)
                rc = channel.recv_exit_status()
                channel.close()
            except (paramiko.SSHException, OSError, EOFError) as exc:
                del self.backend.client
                raise HostUnreachable(self.name, f"SSH session failed: {exc}") from None
            finally:
                self.stats.commands += 1
                self.stats.command_seconds += time.time() - started
        return CommandResult(
            host=self.name,
            command=command,
            rc=rc,
            stdout=b"".join(stdout_chunks).decode("utf-8", "replace"),
            stderr=b"".join(stderr_chunks).decode("utf-8", "replace"),
            started=started,
            seconds=time.time() - started,
        )

    def run_argv(self, argv: list[str], **kwargs: Any) -> CommandResult:
        return self.run(shlex.join(argv), **kwargs)

    # -- files

    @contextmanager
    def sftp(self) -> Iterator[paramiko.SFTPClient]:
        with self._lock:
            client = self.backend.client
            self.stats.commands += 1
            sftp = client.open_sftp()
        try:
            yield sftp
        finally:
            sftp.close()

    def read_file(self, path: str) -> bytes | None:
        """The bytes of a remote file, or None when it does not exist."""
        with self.sftp() as sftp:
            try:
                with sftp.open(path, "rb") as handle:
                    return handle.read()
            except FileNotFoundError:
                return None

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file atomically: a temporary file in the same directory, chmod, then rename."""
        temporary = f"{path}.kubeproof-tmp"
        with self.sftp() as sftp:
            with sftp.open(temporary, "wb") as handle:
                handle.set_pipelined(True)
                handle.write(data)
            sftp.chmod(temporary, stat.S_IMODE(mode))
            sftp.posix_rename(temporary, path)
        self.stats.bytes_sent += len(data)

    def put_file(self, local: Path, path: str, mode: int = 0o755) -> None:
        temporary = f"{path}.kubeproof-tmp"
        with self.sftp() as sftp:
            sftp.put(str(local), temporary)
            sftp.chmod(temporary, stat.S_IMODE(mode))
            sftp.posix_rename(temporary, path)
        self.stats.bytes_sent += local.stat().st_size

    def close(self) -> None:
        client = self.backend.__dict__.get("_strict_client")
        if client is not None:
            client.close()
            del self.backend.client


@dataclass
class Transport:
    """Connections to every host of a cluster, opened lazily, one per host (per process)."""

    cluster: Cluster
    timeout: int = 15
    _connections: dict[str, Connection] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def connection(self, host: HostSpec | str) -> Connection:
        spec = self.cluster.host(host) if isinstance(host, str) else host
        with self._lock:
            conn = self._connections.get(spec.name)
            if conn is None:
                conn = Connection(spec, self.cluster.connection_spec(spec), self.cluster.ssh_config, self.timeout)
                self._connections[spec.name] = conn
            return conn

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: conn.stats.as_dict() for name, conn in sorted(self._connections.items())}

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()
