"""Transport: SSH to the cluster's hosts through testinfra's paramiko backend.

testinfra's ParamikoBackend accepts any unknown host key (paramiko.WarningPolicy) and never reads
a known_hosts file, so the backend here keeps its connection logic but rejects unknown keys and
loads UserKnownHostsFile from the SSH config. Every connection and remote command is counted per
host so the evidence can show what the run cost, and how each host's key was treated.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import socket
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
from paramiko.ssh_exception import NoValidConnectionsError
from testinfra.backend.paramiko import ParamikoBackend

from kubeproof.inventory import Cluster, HostSpec, parse_host_spec
from kubeproof.ssh_files import add_known_keys, ssh_options


class ProbeError(Exception):
    """A probe could not run: the outcome is an error with this reason, never a pass or a fail."""

    def __init__(self, host: str, reason: str):
        self.host = host
        self.reason = reason
        super().__init__(f"{host}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        # the default would call __init__ with the one formatted message
        return type(self), (self.host, self.reason)


class HostUnreachable(ProbeError):
    """The host does not answer over SSH: the reason reads ``<host> unreachable: <cause>``.

    The host is named in the reason itself because rows on OTHER hosts that need this one's data
    error with it too, and their report names only their own host. ``marked_down``: the transport
    will not try the host again in this session; every later use raises the same reason at once.
    """

    def __init__(self, host: str, cause: str, marked_down: bool = False):
        self.cause = cause
        self.marked_down = marked_down
        super().__init__(host, f"{host} unreachable: {cause}")

    def __str__(self) -> str:
        return self.reason

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.host, self.cause, self.marked_down)

    def again(self) -> HostUnreachable:
        """The same error as a new exception object (one raised from many threads at once
        would share, and keep rewriting, one traceback)."""
        return HostUnreachable(self.host, self.cause, self.marked_down)


# How long output may still arrive after a command's exit status, when no EOF comes (a child of
# the command holds its output open): then what arrived is the command's output.
EOF_GRACE_SECONDS = 2.0
# How long a command's read loop sleeps between looks at a quiet channel. It wakes at once when
# output, EOF or the exit status arrives (select on the channel, paramiko's status event). Polling
# every 2 ms woke each host's thread 500 times a second for as long as its command ran: 50 hosts'
# threads competed for the GIL and the client's two cores with the batches they waited on.
CHANNEL_WAIT_SECONDS = 0.05

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
    unreachable: str = ""  # why the host was marked down for the session ("" while it answers)

    def as_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "ssh_connections": self.connections,
            "remote_commands": self.commands,
            "remote_command_seconds": round(self.command_seconds, 3),
            "bytes_sent": self.bytes_sent,
            "login": f"{self.login} via sudo" if self.login and self.sudo else self.login,
            "host_key": self.host_key,
        }
        if self.unreachable:
            values["unreachable"] = self.unreachable
        return values


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

    It also keeps the session's verdict on the host: a connection attempt that fails (no TCP
    answer, no SSH banner, a rejected host key, a refused login) marks the host down, and every
    later use raises the same HostUnreachable at once, with no new attempt. An open session that
    breaks is reconnected once per session; the second loss marks the host down too.
    """

    def __init__(
        self,
        hostspec: str,
        *,
        stats: HostStats,
        known_hosts: Path | None = None,
        inventory_name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(hostspec, **kwargs)
        self.stats = stats
        self.known_hosts = known_hosts
        # the inventory name errors carry: the spec may dial an address (paramiko://root@192.168.61.22)
        self.inventory_name: str = inventory_name or self.host.name
        self.down: HostUnreachable | None = None
        self._sessions_lost = 0
        # one connection attempt at a time: threads that wait behind a failing attempt get its verdict
        self._connect_lock = threading.Lock()

    def _ssh_options(self) -> dict[str, Any]:
        if not self.ssh_config:
            return {}
        return ssh_options(self.ssh_config, self.host.name)

    def host_key_policy(self) -> HostKeyPolicy:
        return HostKeyPolicy.from_ssh_config(self._ssh_options(), self.known_hosts)

    def _prepare_client(self, policy: HostKeyPolicy) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if policy.mode == HOST_KEY_UNVERIFIED:
            client.set_missing_host_key_policy(_AcceptUnverified(self.stats))
            return client
        # the known keys themselves are added in _connect, once the name dialled is known
        if policy.mode == HOST_KEY_RECORDED:
            client.set_missing_host_key_policy(_RecordNewHostKey(policy.record_file, self.stats))
            return client
        if not policy.readable_files:
            files = ", ".join(str(p) for p in policy.known_hosts)
            raise HostUnreachable(
                self.inventory_name,
                f"host key cannot be verified: no known_hosts file ({files}); record the host keys first, "
                "or set StrictHostKeyChecking accept-new in the ssh_config",
            )
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        return client

    @property
    def client(self) -> paramiko.SSHClient:  # type: ignore[override]
        """The open SSH client, connected on first use; a host marked down raises at once."""
        with self._connect_lock:
            if self.down is not None:
                raise self.down.again()
            cached = self.__dict__.get("_strict_client")
            if cached is not None:
                return cached  # type: ignore[no-any-return]
            try:
                client = self._connect()
            except HostUnreachable as exc:
                raise self.mark_down(exc.cause) from None
            self.__dict__["_strict_client"] = client
            return client

    @client.deleter
    def client(self) -> None:
        self._forget_client()

    def _connect(self) -> paramiko.SSHClient:
        policy = self.host_key_policy()
        client = self._prepare_client(policy)
        cfg: dict[str, Any] = {
            "hostname": self.host.name,
            "port": int(self.host.port) if self.host.port else 22,
            "username": self.host.user,
            # TCP connect, banner, key exchange and login each get the --ssh-timeout; a host whose
            # kernel accepts TCP but whose sshd is frozen (a paused VM or container) fails at the banner
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
        if policy.mode != HOST_KEY_UNVERIFIED:
            add_known_keys(client, policy.readable_files, cfg["hostname"], cfg["port"])
        self.stats.connections += 1
        self.stats.host_key = policy.mode
        started = time.monotonic()
        try:
            client.connect(**cfg)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            transport = client.get_transport()
            banner = transport.remote_version if transport is not None else ""
            # the half-open transport's thread would otherwise keep reading the silent socket
            client.close()
            failure = ConnectFailure(
                f"{cfg['hostname']}:{cfg['port']}",
                str(cfg.get("username") or ""),
                self.timeout,
                time.monotonic() - started,
                banner,
            )
            raise HostUnreachable(self.inventory_name, failure.describe(exc)) from None
        self.stats.login = str(cfg.get("username") or "")
        return client

    def mark_down(self, cause: str) -> HostUnreachable:
        """No further attempt in this session: every later use raises this at once."""
        if self.down is None:
            self.down = HostUnreachable(self.inventory_name, cause, marked_down=True)
            self.stats.unreachable = cause
        self._forget_client()
        return self.down.again()

    def session_lost(self, cause: str, broken: paramiko.Transport | None = None) -> HostUnreachable:
        """An open session broke: forget it. The next use reconnects, once per session; a second
        loss marks the host down (a host that comes and goes must not cost a timeout per row).

        ``broken``: the transport that failed. Threads that saw the same session break count once:
        when it is no longer the current one, its loss was counted already.
        """
        with self._connect_lock:
            if self.down is not None:
                return self.down.again()
            current = self.__dict__.get("_strict_client")
            if broken is not None and (current is None or current.get_transport() is not broken):
                return HostUnreachable(self.inventory_name, cause)
            self._forget_client()
            self._sessions_lost += 1
            if self._sessions_lost > 1:
                return self.mark_down(f"{cause} (lost again after one reconnect)")
            return HostUnreachable(self.inventory_name, cause)

    def _forget_client(self) -> None:
        client = self.__dict__.pop("_strict_client", None)
        if client is not None:
            with contextlib.suppress(Exception):  # closing what already broke may raise anything
                client.close()


@dataclass(frozen=True)
class ConnectFailure:
    """What a failed connection attempt tells about the host, in the words of the report."""

    address: str  # host:port as dialled
    user: str
    timeout: float
    elapsed: float
    banner: str  # the server's SSH banner, "" when none arrived

    def describe(self, exc: BaseException) -> str:
        if isinstance(exc, paramiko.BadHostKeyException):
            return f"host key of {self.address} rejected: it does not match known_hosts ({exc})"
        if isinstance(exc, paramiko.AuthenticationException):
            return f"authentication failed as {self.user or '(no user)'}: {exc}"
        if isinstance(exc, paramiko.SSHException) and "known_hosts" in str(exc):
            return f"host key of {self.address} rejected: {exc}"  # RejectPolicy: an unknown key
        timed_out = self.elapsed >= self.timeout * 0.9
        if isinstance(exc, (paramiko.SSHException, EOFError)):
            if not self.banner:
                if timed_out:
                    return f"no SSH banner within {self.timeout:g} s ({self.address} accepted the TCP connection)"
                return f"no SSH banner from {self.address}: " + (str(exc) or "the connection closed")
            if timed_out:
                return f"SSH negotiation with {self.address} did not finish within {self.timeout:g} s"
            return f"SSH to {self.address} failed: {exc}"
        if isinstance(exc, socket.gaierror):
            return f"cannot reach {self.address}: cannot resolve the name ({exc.strerror})"
        if isinstance(exc, TimeoutError):
            return f"cannot reach {self.address}: no TCP answer within {self.timeout:g} s"
        if isinstance(exc, NoValidConnectionsError):
            # address -> the socket error of that attempt (ECONNREFUSED, EHOSTUNREACH)
            reasons = sorted({getattr(error, "strerror", None) or str(error) for error in exc.errors.values()})
            return f"cannot reach {self.address}: {'; '.join(reasons) or exc}"
        assert isinstance(exc, OSError)
        return f"cannot reach {self.address}: {exc.strerror or exc or type(exc).__name__}"


def session_failure(exc: BaseException, timeout: float) -> str:
    """Why an open session broke, without paramiko's internal wording ("No existing session")."""
    text = str(exc)
    if isinstance(exc, EOFError) or text in ("SSH session not active", "No existing session"):
        return "the SSH session closed"
    if "Timeout opening channel" in text:
        return f"the SSH session stopped answering (no channel within {timeout:g} s)"
    if isinstance(exc, OSError):
        return f"the SSH session broke: {exc.strerror or text or type(exc).__name__}"
    return f"the SSH session failed: {text or type(exc).__name__}"


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
            inventory_name=spec.name,
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

    @property
    def unreachable(self) -> HostUnreachable | None:
        """Why this host was marked down for the session; None while it answers (or was never tried)."""
        return self.backend.down

    def connect(self) -> None:
        """Open the SSH session now; a HostUnreachable says why it cannot be (then and ever after)."""
        with self._lock:
            self._open_transport()

    def _open_transport(self) -> paramiko.Transport:
        """The live transport of the session (call with the lock held): reconnected once when it ended."""
        transport = self.backend.client.get_transport()
        if transport is None or not transport.is_active():
            lost = self.backend.session_lost("the SSH session had closed", transport)
            if lost.marked_down:
                raise lost
            transport = self.backend.client.get_transport()
            if transport is None:
                raise self.backend.session_lost("the SSH session closed as it opened")
        return transport

    def _exec(self, command: str, stdin: bytes | Path | None, timeout: float) -> tuple[int, bytes, bytes, float]:
        started = time.time()
        wire = self.wrap(command)
        with self._lock:
            transport = self._open_transport()
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
                exited: float | None = None
                while True:
                    if channel.recv_ready():
                        stdout_chunks.append(channel.recv(1 << 16))
                        continue
                    if channel.recv_stderr_ready():
                        stderr_chunks.append(channel.recv_stderr(1 << 16))
                        continue
                    if channel.exit_status_ready():
                        # sshd may send the exit status before the last of the output: the output
                        # is whole at EOF (seen on the lab as a fact batch cut short, "exit 0");
                        # a command that left a child holding its output open gets a short grace
                        exited = exited or time.time()
                        if channel.eof_received or time.time() - exited > EOF_GRACE_SECONDS:
                            break
                    if time.time() > deadline:
                        channel.close()
                        raise ProbeError(self.name, f"command timed out after {timeout:.0f}s: {command[:120]}")
                    _wait_for_channel(channel)
                rc = channel.recv_exit_status()
                channel.close()
            except (paramiko.SSHException, OSError, EOFError) as exc:
                if isinstance(exc, OSError) and exc.filename is not None:
                    raise  # a local file to stream could not be read: not the host's doing
                raise self.backend.session_lost(session_failure(exc, self.backend.timeout), transport) from None
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
        """An SFTP session; a broken SSH session is a HostUnreachable, as for commands."""
        with self._lock:
            transport = self._open_transport()
            self.stats.commands += 1
            try:
                sftp = paramiko.SFTPClient.from_transport(transport)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise self.backend.session_lost(session_failure(exc, self.backend.timeout), transport) from None
            if sftp is None:  # the session is fine; the server has no SFTP subsystem
                raise ProbeError(self.name, "the SSH server refused an SFTP channel (no sftp subsystem?)")
        try:
            yield sftp
        except (paramiko.SSHException, EOFError, ConnectionError, TimeoutError) as exc:
            # a remote file's own errors (missing, permission) are IOErrors with an errno: not these
            raise self.backend.session_lost(session_failure(exc, self.backend.timeout), transport) from None
        finally:
            with contextlib.suppress(Exception):  # closing what already broke may raise anything
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
            except PermissionError as exc:
                raise ProbeError(self.name, f"cannot read {path}: {exc.strerror or exc}") from None

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

    def mark_down(self, host: HostSpec | str, cause: str) -> HostUnreachable:
        """A host another process found down (the controller's gathering): never tried in this one."""
        return self.connection(host).backend.mark_down(cause)

    def unreachable(self) -> dict[str, HostUnreachable]:
        """Hosts marked down in this session, with why (no further attempt is made to reach them)."""
        with self._lock:
            connections = list(self._connections.values())
        return {conn.name: down for conn in connections if (down := conn.unreachable) is not None}

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: conn.stats.as_dict() for name, conn in sorted(self._connections.items())}

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()


def _wait_for_channel(channel: paramiko.Channel) -> None:
    """Until the channel has output, EOF or its exit status, for at most CHANNEL_WAIT_SECONDS."""
    if channel.eof_received:  # the output is whole; what is left is the exit status
        channel.status_event.wait(CHANNEL_WAIT_SECONDS)
        return
    # the channel's fileno is readable when stdout or stderr has data, and forever after EOF
    select.select([channel], [], [], CHANNEL_WAIT_SECONDS)
