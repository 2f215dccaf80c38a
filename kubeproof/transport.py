"""Transport: SSH to the cluster's hosts through testinfra's paramiko backend.

testinfra's ParamikoBackend accepts any unknown host key (paramiko.WarningPolicy) and never reads
a known_hosts file, so the backend here keeps its connection logic but rejects unknown keys and
loads UserKnownHostsFile from the SSH config. Every connection and remote command is counted per
host so the evidence can show what the run cost, and how each host's key was treated.
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


SSH_CONNECTIONS = frozenset({"paramiko", "ssh", "safe-ssh"})
"""testinfra connection names that mean "SSH"; kubeproof serves them all with its paramiko backend."""


@dataclass(frozen=True)
class ConnectionOptions:
    """How to log in, from testinfra's command-line options; a host spec's own ?params win."""

    ssh_config: Path | None = None
    identity_file: Path | None = None
    sudo: bool = False
    sudo_user: str | None = None


@dataclass
class HostStats:
    connections: int = 0
    commands: int = 0
    command_seconds: float = 0.0
    bytes_sent: int = 0
    login: str = ""
    sudo: bool = False  # every command ran under `sudo -n` (the report shows "vagrant via sudo")
    host_key: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ssh_connections": self.connections,
            "remote_commands": self.commands,
            "remote_command_seconds": round(self.command_seconds, 3),
            "bytes_sent": self.bytes_sent,
            "login": f"{self.login} via sudo" if self.login and self.sudo else self.login,
            "host_key": self.host_key,
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


# ----------------------------------------------------------------------------- host keys

HOST_KEY_VERIFIED = "verified"
HOST_KEY_RECORDED = "recorded"  # accept-new: unknown key recorded, as OpenSSH does
HOST_KEY_UNVERIFIED = "unverified"  # StrictHostKeyChecking no

_NULL_KNOWN_HOSTS = frozenset({"/dev/null", "none"})


@dataclass(frozen=True)
class HostKeyPolicy:
    """StrictHostKeyChecking and UserKnownHostsFile as ``ssh -F`` reads them for one host.

    yes (and OpenSSH's default "ask", which without a terminal refuses): an unknown key is rejected.
    accept-new: an unknown key is recorded in the first UserKnownHostsFile; a changed one is rejected.
    no / off: any key is accepted, and the run says that host identity was not verified.
    """

    mode: str
    known_hosts: tuple[Path, ...]

    @classmethod
    def from_ssh_config(cls, options: dict[str, Any], extra: Path | None = None) -> HostKeyPolicy:
        value = str(options.get("stricthostkeychecking", "yes")).lower()
        if value in ("no", "off"):
            mode = HOST_KEY_UNVERIFIED
        elif value == "accept-new":
            mode = HOST_KEY_RECORDED
        else:
            mode = HOST_KEY_VERIFIED
        files: list[Path] = [extra] if extra else []
        configured = str(options.get("userknownhostsfile", "")).split()
        files.extend(Path(os.path.expanduser(v)) for v in configured)
        if not configured and not extra:
            files.append(Path.home() / ".ssh" / "known_hosts")
        return cls(mode, tuple(files))

    @property
    def readable_files(self) -> list[Path]:
        return [p for p in self.known_hosts if str(p) not in _NULL_KNOWN_HOSTS and p.is_file()]

    @property
    def record_file(self) -> Path | None:
        for path in self.known_hosts:
            if str(path) not in _NULL_KNOWN_HOSTS:
                return path
        return None


class _RecordNewHostKey(paramiko.MissingHostKeyPolicy):
    """accept-new: keep the unknown key, append it to the known_hosts file (as ssh does)."""

    def __init__(self, path: Path | None, stats: HostStats):
        self.path = path
        self.stats = stats

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as handle:
                handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        self.stats.host_key = HOST_KEY_RECORDED


class _AcceptUnverified(paramiko.MissingHostKeyPolicy):
    def __init__(self, stats: HostStats):
        self.stats = stats

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.stats.host_key = HOST_KEY_UNVERIFIED


class StrictParamikoBackend(ParamikoBackend):  # type: ignore[misc]
    """testinfra's paramiko backend, with host keys checked the way OpenSSH checks them.

    testinfra's own backend accepts every unknown key (WarningPolicy) and never reads known_hosts;
    this one follows StrictHostKeyChecking from the ssh_config and is strict without one.
    """

    def __init__(self, hostspec: str, *, stats: HostStats, known_hosts: Path | None = None, **kwargs: Any):
        super().__init__(hostspec, **kwargs)
        self.stats = stats
        self.known_hosts = known_hosts

    def _ssh_options(self) -> dict[str, Any]:
        if not self.ssh_config:
            return {}
        return dict(paramiko.SSHConfig.from_path(self.ssh_config).lookup(self.host.name))

    def host_key_policy(self) -> HostKeyPolicy:
        return HostKeyPolicy.from_ssh_config(self._ssh_options(), self.known_hosts)

    def _prepare_client(self, policy: HostKeyPolicy) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if policy.mode == HOST_KEY_UNVERIFIED:
            client.set_missing_host_key_policy(_AcceptUnverified(self.stats))
            return client
        for path in policy.readable_files:
            client.load_host_keys(str(path))
        if policy.mode == HOST_KEY_RECORDED:
            client.set_missing_host_key_policy(_RecordNewHostKey(policy.record_file, self.stats))
            return client
        if not policy.readable_files:
            files = ", ".join(str(p) for p in policy.known_hosts)
            raise HostUnreachable(
                self.host.name,
                f"host key cannot be verified: no known_hosts file ({files}); record the host keys first, "
                "or set StrictHostKeyChecking accept-new in the ssh_config",
            )
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        return client

    @property
    def client(self) -> paramiko.SSHClient:  # type: ignore[override]
        cached = self.__dict__.get("_strict_client")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        policy = self.host_key_policy()
        client = self._prepare_client(policy)
        cfg: dict[str, Any] = {
            "hostname": self.host.name,
            "port": int(self.host.port) if self.host.port else 22,
            "username": self.host.user,
            "timeout": self.timeout,
            "banner_timeout": self.timeout,
            "auth_timeout": self.timeout,
            "allow_agent": False,
        }
        for key, value in self._ssh_options().items():
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
            elif key == "identitiesonly" and str(value).lower() == "yes":
                cfg["look_for_keys"] = False
        if self.ssh_identity_file:
            cfg["key_filename"] = self.ssh_identity_file
        self.stats.connections += 1
        self.stats.host_key = policy.mode
        try:
            client.connect(**cfg)
        except paramiko.BadHostKeyException as exc:
            raise HostUnreachable(
                self.host.name, f"host key for {cfg['hostname']} does not match known_hosts ({exc})"
            ) from None
        except paramiko.SSHException as exc:
            raise HostUnreachable(self.host.name, f"SSH to {cfg['hostname']}:{cfg['port']} failed: {exc}") from None
        except (TimeoutError, OSError) as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise HostUnreachable(self.host.name, f"cannot reach {cfg['hostname']}:{cfg['port']}: {reason}") from None
        self.stats.login = str(cfg.get("username") or "")
        self.__dict__["_strict_client"] = client
        return client

    @client.deleter
    def client(self) -> None:
        self.__dict__.pop("_strict_client", None)


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


class Connection:
    """One host: the testinfra Host facade plus counted exec, stdin streaming and file transfer.

    With sudo (a host spec's ?sudo=true, testinfra's --sudo, or the cluster file's ssh.sudo) every
    command runs as ``sudo -n /bin/sh -c <command>`` and files move through sudo'd shell commands
    instead of SFTP, so a login such as vagrant's reaches what root owns, with identical results.
    """

    def __init__(
        self,
        spec: HostSpec,
        connection_spec: str,
        ssh_config: Path | None,
        timeout: int = 15,
        *,
        options: ConnectionOptions | None = None,
        sudo: bool = False,
    ):
        options = options or ConnectionOptions()
        parsed = parse_host_spec(connection_spec)
        self.spec = spec
        self.name = spec.name
        self.stats = HostStats()
        self._lock = threading.Lock()
        config = parsed.params.get("ssh_config") or (
            str(options.ssh_config) if options.ssh_config else (str(ssh_config) if ssh_config else None)
        )
        identity = parsed.params.get("ssh_identity_file") or (
            str(options.identity_file) if options.identity_file else None
        )
        self.sudo = _truthy(parsed.params.get("sudo")) or options.sudo or sudo
        self.sudo_user = parsed.params.get("sudo_user") or options.sudo_user
        self.stats.sudo = self.sudo
        netloc = (parsed.user + "@" if parsed.user else "") + parsed.host + (f":{parsed.port}" if parsed.port else "")
        self.backend = StrictParamikoBackend(
            netloc,
            stats=self.stats,
            ssh_config=config,
            ssh_identity_file=identity,
            timeout=int(parsed.params.get("timeout", timeout)),
        )
        self.testinfra = testinfra.host.Host(self.backend)
        self.backend.set_host(self.testinfra)

    def wrap(self, command: str) -> str:
        """The command as the remote shell receives it: under ``sudo -n`` where sudo is on."""
        if not self.sudo:
            return command
        user = ["-u", self.sudo_user] if self.sudo_user else []
        return shlex.join(["sudo", "-n", *user, "--", "/bin/sh", "-c", command])

    # -- exec

    def _exec(self, command: str, stdin: bytes | Path | None, timeout: float) -> tuple[int, bytes, bytes, float]:
        started = time.time()
        wire = self.wrap(command)
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
                channel.exec_command(wire)
                if stdin is not None:
                    self.stats.bytes_sent += _send(channel, stdin)
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
        return rc, b"".join(stdout_chunks), b"".join(stderr_chunks), started

    def run(self, command: str, *, stdin: bytes | None = None, timeout: float = 120.0) -> CommandResult:
        """Run a shell command (already quoted by the caller) and return its result.

        Raises HostUnreachable when the host cannot be reached; a non-zero exit is a result.
        """
        rc, stdout, stderr, started = self._exec(command, stdin, timeout)
        if self.sudo and rc == 1 and stderr.startswith(b"sudo: "):
            raise ProbeError(self.name, f"sudo refused: {stderr.decode('utf-8', 'replace').strip()}")
        return CommandResult(
            host=self.name,
            command=command,
            rc=rc,
            stdout=stdout.decode("utf-8", "replace"),
            stderr=stderr.decode("utf-8", "replace"),
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
        if self.sudo:
            script = f"if [ -e {shlex.quote(path)} ]; then exec cat -- {shlex.quote(path)}; else exit 3; fi"
            rc, stdout, stderr, _ = self._exec(script, None, 120.0)
            if rc == 3:
                return None
            if rc != 0:
                raise ProbeError(self.name, f"cannot read {path}: {stderr.decode('utf-8', 'replace').strip()}")
            return stdout
        with self.sftp() as sftp:
            try:
                with sftp.open(path, "rb") as handle:
                    return handle.read()
            except FileNotFoundError:
                return None

    def _sudo_install(self, path: str, data: bytes | Path, mode: int) -> None:
        temporary = f"{path}.kubeproof-tmp"
        script = (
            f"umask 077 && cat > {shlex.quote(temporary)} && chmod {stat.S_IMODE(mode):o} {shlex.quote(temporary)}"
            f" && mv -f -- {shlex.quote(temporary)} {shlex.quote(path)}"
        )
        rc, _, stderr, _ = self._exec(script, data, 600.0)
        if rc != 0:
            raise ProbeError(self.name, f"cannot write {path}: {stderr.decode('utf-8', 'replace').strip()}")

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file atomically: a temporary file in the same directory, chmod, then rename."""
        if self.sudo:
            self._sudo_install(path, data, mode)
            return
        temporary = f"{path}.kubeproof-tmp"
        with self.sftp() as sftp:
            with sftp.open(temporary, "wb") as handle:
                handle.set_pipelined(True)
                handle.write(data)
            sftp.chmod(temporary, stat.S_IMODE(mode))
            sftp.posix_rename(temporary, path)
        self.stats.bytes_sent += len(data)

    def put_file(self, local: Path, path: str, mode: int = 0o755) -> None:
        if self.sudo:
            self._sudo_install(path, local, mode)
            return
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


def _send(channel: paramiko.Channel, data: bytes | Path) -> int:
    """Stream bytes, or a local file, into a channel's stdin; returns the byte count."""
    chunk = 1 << 16
    if isinstance(data, Path):
        sent = 0
        with data.open("rb") as handle:
            while block := handle.read(chunk):
                channel.sendall(block)
                sent += len(block)
        return sent
    for offset in range(0, len(data), chunk):
        channel.sendall(data[offset : offset + chunk])
    return len(data)


@dataclass
class Transport:
    """Connections to every host of a cluster, opened lazily, one per host (per process)."""

    cluster: Cluster
    timeout: int = 15
    options: ConnectionOptions = field(default_factory=ConnectionOptions)
    _connections: dict[str, Connection] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def connection(self, host: HostSpec | str) -> Connection:
        spec = self.cluster.host(host) if isinstance(host, str) else host
        with self._lock:
            conn = self._connections.get(spec.name)
            if conn is None:
                conn = Connection(
                    spec,
                    self.cluster.connection_spec(spec),
                    self.cluster.ssh_config,
                    self.timeout,
                    options=self.options,
                    sudo=self.cluster.ssh_sudo,
                )
                self._connections[spec.name] = conn
            return conn

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: conn.stats.as_dict() for name, conn in sorted(self._connections.items())}

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()
