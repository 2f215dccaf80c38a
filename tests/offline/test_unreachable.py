"""Hosts that do not answer, offline: found once, at session start, within one SSH timeout.

The unreachable hosts are local sockets: one that accepts TCP and never sends an SSH banner (what
a paused VM or container looks like: its kernel still completes the handshake), and a closed port.
A host that answers is either a paramiko SSH server in a thread (for a session that drops) or a
`Connection.run` that runs the command on this machine (for rows that need another host's data).
"""

from __future__ import annotations

import pickle
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import paramiko
import pytest
from paramiko.common import AUTH_SUCCESSFUL, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, OPEN_SUCCEEDED

from kubeproof.checks import Check
from kubeproof.facts import Fact
from kubeproof.facts import host as host_facts
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.probes import PROBES, load_probes, observe
from kubeproof.session import Session
from kubeproof.transport import (
    EOF_GRACE_SECONDS,
    CommandResult,
    ConnectFailure,
    Connection,
    ConnectionOptions,
    HostUnreachable,
    session_failure,
)
from tests.offline.facts_samples import cluster as cluster  # the guide's cluster (module-scoped fixture)

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 2  # --ssh-timeout for these tests: every bound below is a ratio of it


def detection_bound(timeout: float = TIMEOUT) -> float:
    """How long finding a silent host may take: one timeout, with slack for a loaded machine."""
    return timeout * 1.5 + 1


IMMEDIATE = 0.2  # a host already marked down errors at once


# ----------------------------------------------------------------------------- fake hosts


class SilentServer:
    """Accepts TCP connections and never writes a byte: an SSH server frozen before its banner."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, name="silent-server", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(connection)  # kept open: the client must time out, not see a close

    def close(self) -> None:
        self.listener.close()
        for connection in self._held:
            connection.close()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released): connecting is refused at once."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


class _AcceptEveryKey(paramiko.ServerInterface):
    def check_channel_request(self, kind: str, chanid: int) -> int:
        return OPEN_SUCCEEDED if kind == "session" else OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return AUTH_SUCCESSFUL

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        def answer() -> None:
            while channel.recv(1024):  # answer after the client's EOF, as a command reading stdin would
                pass
            channel.sendall(b"ok\n")
            channel.send_exit_status(0)
            channel.close()

        threading.Thread(target=answer, daemon=True).start()
        return True


class _ExitStatusFirst(_AcceptEveryKey):
    """What sshd may do: the exit status sent before the last of the command's output, then EOF."""

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        def answer() -> None:
            while channel.recv(1024):
                pass
            channel.sendall(b"first\n")
            channel.send_exit_status(0)
            time.sleep(0.3)
            channel.sendall(b"last\n")
            channel.sendall_stderr(b"late error\n")
            channel.shutdown_write()  # EOF
            channel.close()

        threading.Thread(target=answer, daemon=True).start()
        return True


class _ExitStatusWithoutEof(_AcceptEveryKey):
    """A command whose child keeps its output open: exit status, no EOF for a long while."""

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        def answer() -> None:
            while channel.recv(1024):
                pass
            channel.sendall(b"ok\n")
            channel.send_exit_status(0)
            time.sleep(30)
            channel.close()

        threading.Thread(target=answer, daemon=True).start()
        return True


class SshServer:
    """A paramiko SSH server that answers every command with `ok`, and can drop its sessions."""

    def __init__(self, interface: type[paramiko.ServerInterface] = _AcceptEveryKey) -> None:
        self.interface = interface
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.host_key = paramiko.ECDSAKey.generate()
        self._transports: list[paramiko.Transport] = []
        threading.Thread(target=self._accept, name="ssh-server", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            transport = paramiko.Transport(connection)
            transport.add_server_key(self.host_key)
            transport.start_server(event=threading.Event(), server=self.interface())
            self._transports.append(transport)

    def drop_sessions(self) -> None:
        for transport in self._transports:
            transport.close()

    def close(self) -> None:
        self.listener.close()
        self.drop_sessions()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def _options(directory: Path) -> ConnectionOptions:
    """Any host key accepted (the fake hosts have none on record), and a key to log in with."""
    config = directory / "ssh_config"
    config.write_text("Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n")
    identity = directory / "id_ecdsa"
    paramiko.ECDSAKey.generate().write_private_key_file(str(identity))
    return ConnectionOptions(ssh_config=config, identity_file=identity)


@pytest.fixture
def options(tmp_path: Path) -> ConnectionOptions:
    return _options(tmp_path)


def _host(name: str, port: int, roles: frozenset[str] = frozenset({"node"})) -> HostSpec:
    return HostSpec(name, "127.0.0.1", roles, connection=f"paramiko://root@127.0.0.1:{port}")


def _cluster(*hosts: HostSpec) -> Cluster:
    return Cluster("offline", tuple(hosts))


def _elapsed(work: Any) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        work()
    except Exception as exc:  # the caller asserts on what was raised
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


# ----------------------------------------------------------------------------- the transport


def test_a_host_that_sends_no_banner_is_marked_down_once_within_one_timeout(
    silent: SilentServer, options: ConnectionOptions
) -> None:
    session = Session.open(_cluster(_host("silent01", silent.port)), timeout=TIMEOUT, options=options)
    try:
        elapsed, _ = _elapsed(session.prefetch)
        assert elapsed < detection_bound(), elapsed
        down = session.unreachable("silent01")
        assert down is not None and down.marked_down
        assert down.reason == (
            f"silent01 unreachable: no SSH banner within {TIMEOUT} s "
            f"(127.0.0.1:{silent.port} accepted the TCP connection)"
        )
        assert str(down) == down.reason and down.host == "silent01"
        assert silent.accepted == 1
        connection = session.transport.connection("silent01")
        # every later use: the same reason at once, and no new connection attempt
        for use in (
            lambda: connection.run("true"),
            lambda: connection.read_file("/etc/hostname"),
            lambda: connection.write_file("/tmp/x", b"x"),
            connection.connect,
            lambda: session.facts("silent01").get(host_facts.hostname),
            lambda: session.facts("silent01").get(Fact("not-in-any-batch", "true", lambda raw: raw.stdout)),
        ):
            elapsed, error = _elapsed(use)
            assert isinstance(error, HostUnreachable), error
            assert error.reason == down.reason and elapsed < IMMEDIATE, (error.reason, elapsed)
        assert silent.accepted == 1
        assert connection.stats.connections == 1
        assert session.stats()["silent01"]["unreachable"] == down.cause
    finally:
        session.close()


def test_a_closed_port_is_marked_down_at_once_with_the_socket_error(options: ConnectionOptions) -> None:
    port = closed_port()
    session = Session.open(_cluster(_host("closed01", port)), timeout=TIMEOUT, options=options)
    try:
        elapsed, _ = _elapsed(session.prefetch)
        assert elapsed < detection_bound()
        down = session.unreachable("closed01")
        assert down is not None
        assert down.reason == f"closed01 unreachable: cannot reach 127.0.0.1:{port}: Connection refused"
        elapsed, error = _elapsed(lambda: session.transport.connection("closed01").run("true"))
        assert isinstance(error, HostUnreachable) and error.reason == down.reason and elapsed < IMMEDIATE
    finally:
        session.close()


def test_hosts_are_tried_in_parallel_so_several_down_cost_one_timeout(options: ConnectionOptions) -> None:
    servers = [SilentServer() for _ in range(3)]
    hosts = [_host(f"silent0{i}", server.port) for i, server in enumerate(servers, start=1)]
    session = Session.open(_cluster(*hosts), timeout=TIMEOUT, options=options)
    try:
        elapsed, _ = _elapsed(session.prefetch)
        assert elapsed < detection_bound(), elapsed  # one after the other would take 3 timeouts
        assert sorted(session.transport.unreachable()) == ["silent01", "silent02", "silent03"]
        assert [server.accepted for server in servers] == [1, 1, 1]
    finally:
        session.close()
        for server in servers:
            server.close()


def test_a_session_that_drops_is_reconnected_once_then_the_host_is_down(options: ConnectionOptions) -> None:
    server = SshServer()
    connection = Connection(
        _host("fake01", server.port), f"paramiko://root@127.0.0.1:{server.port}", None, TIMEOUT, options=options
    )
    try:
        assert connection.run("true").stdout == "ok\n"

        def drop() -> None:
            client = connection.backend.__dict__["_strict_client"]
            server.drop_sessions()
            deadline = time.monotonic() + detection_bound()
            while client.get_transport().is_active() and time.monotonic() < deadline:
                time.sleep(0.01)

        drop()
        assert connection.run("true").stdout == "ok\n"  # the one reconnect
        assert server.accepted == 2
        drop()
        elapsed, error = _elapsed(lambda: connection.run("true"))
        assert isinstance(error, HostUnreachable) and error.marked_down, error
        assert error.reason == "fake01 unreachable: the SSH session had closed (lost again after one reconnect)"
        elapsed, again = _elapsed(lambda: connection.run("true"))
        assert isinstance(again, HostUnreachable) and again.reason == error.reason and elapsed < IMMEDIATE
        assert server.accepted == 2  # never a third attempt
    finally:
        connection.close()
        server.close()


def test_output_sent_after_the_exit_status_is_read_to_the_end(options: ConnectionOptions) -> None:
    server = SshServer(_ExitStatusFirst)
    connection = Connection(
        _host("fake01", server.port), f"paramiko://root@127.0.0.1:{server.port}", None, TIMEOUT, options=options
    )
    try:
        result = connection.run("sh -c batch")
        assert (result.rc, result.stdout, result.stderr) == (0, "first\nlast\n", "late error\n")
    finally:
        connection.close()
        server.close()


def test_a_command_whose_output_stays_open_returns_after_a_short_grace(options: ConnectionOptions) -> None:
    server = SshServer(_ExitStatusWithoutEof)
    connection = Connection(
        _host("fake01", server.port), f"paramiko://root@127.0.0.1:{server.port}", None, TIMEOUT, options=options
    )
    try:
        elapsed, error = _elapsed(lambda: connection.run("nohup daemon &", timeout=20))
        assert error is None, error
        assert elapsed < EOF_GRACE_SECONDS + 2, elapsed
    finally:
        connection.close()
        server.close()


def test_failure_texts_name_the_cause_never_paramikos_internals() -> None:
    failure = ConnectFailure("10.0.0.9:22", "root", 15, 15.0, banner="")
    assert failure.describe(paramiko.SSHException("No existing session")) == (
        "no SSH banner within 15 s (10.0.0.9:22 accepted the TCP connection)"
    )
    assert failure.describe(paramiko.SSHException("Error reading SSH protocol banner")).startswith(
        "no SSH banner within 15 s"
    )
    quick = ConnectFailure("10.0.0.9:22", "root", 15, 0.01, banner="")
    assert quick.describe(EOFError()) == "no SSH banner from 10.0.0.9:22: the connection closed"
    talking = ConnectFailure("10.0.0.9:22", "root", 15, 15.0, banner="SSH-2.0-OpenSSH_9.2")
    assert talking.describe(paramiko.SSHException("No existing session")) == (
        "SSH negotiation with 10.0.0.9:22 did not finish within 15 s"
    )
    assert quick.describe(paramiko.AuthenticationException("Authentication failed.")) == (
        "authentication failed as root: Authentication failed."
    )
    assert quick.describe(paramiko.SSHException("Server '10.0.0.9' not found in known_hosts")) == (
        "host key of 10.0.0.9:22 rejected: Server '10.0.0.9' not found in known_hosts"
    )
    assert quick.describe(TimeoutError("timed out")) == "cannot reach 10.0.0.9:22: no TCP answer within 15 s"
    for message in ("No existing session", "SSH session not active"):
        assert session_failure(paramiko.SSHException(message), 15) == "the SSH session closed"
    assert session_failure(paramiko.SSHException("Timeout opening channel."), 15) == (
        "the SSH session stopped answering (no channel within 15 s)"
    )


def test_the_error_survives_pickling_with_its_reason() -> None:
    error = HostUnreachable("node02", "no SSH banner within 15 s", marked_down=True)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.host, copy.reason, copy.cause, copy.marked_down) == (error.host, error.reason, error.cause, True)
    assert error.again() is not error and error.again().reason == error.reason


# ----------------------------------------------------------------------------- rows that need the down host


@pytest.fixture(scope="module")
def local_and_silent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """local01 runs its commands on this machine; silent01 never sends a banner (one session for
    the tests below: finding silent01 down costs one timeout)."""
    original = Connection.run

    def run(self: Connection, command: str, *, stdin: bytes | None = None, timeout: float = 120.0) -> CommandResult:
        if self.name != "local01":
            return original(self, command, stdin=stdin, timeout=timeout)
        self.stats.commands += 1
        started = time.time()
        done = subprocess.run(["sh", "-c", command], input=stdin, capture_output=True, timeout=timeout, check=False)
        return CommandResult(
            self.name,
            command,
            done.returncode,
            done.stdout.decode(),
            done.stderr.decode(),
            started,
            time.time() - started,
        )

    server = SilentServer()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Connection, "run", run)
        cluster = _cluster(_host("local01", closed_port()), _host("silent01", server.port))
        session = Session.open(cluster, timeout=TIMEOUT, options=_options(tmp_path_factory.mktemp("ssh")))
        session.prefetch()
        yield session
        session.close()
    server.close()


def _row(probe: str) -> Check:
    """Just enough of a catalogue row for observe(): its probe reference."""
    return cast(Check, SimpleNamespace(probe=probe))


def test_a_row_on_another_host_that_needs_the_down_hosts_data_names_it(local_and_silent: Session) -> None:
    session = local_and_silent
    load_probes()
    local = session.context(session.cluster.host("local01"))
    assert session.unreachable("local01") is None
    elapsed, error = _elapsed(lambda: PROBES["hostname_unique"](local, ""))
    assert isinstance(error, HostUnreachable) and elapsed < IMMEDIATE
    assert error.host == "silent01" and error.reason.startswith("silent01 unreachable: no SSH banner within")
    # this host's own rows still run
    assert PROBES["hostname"](local, "") == subprocess.check_output(["hostname"], text=True).strip()


def test_a_row_that_needs_any_host_skips_the_down_one_with_a_note(local_and_silent: Session) -> None:
    session = local_and_silent
    load_probes()
    local = session.context(session.cluster.host("local01"))
    observation = PROBES["clock_deviation"](local, "")
    assert observation.value == 0.0  # the median of the hosts that answer: this one alone
    assert any(
        line.startswith("silent01 skipped: silent01 unreachable: no SSH banner") for line in observation.diagnosis
    )


def test_every_row_on_the_down_host_errors_at_once_whatever_its_probe(local_and_silent: Session) -> None:
    session = local_and_silent
    load_probes()
    silent_context = session.context(session.cluster.host("silent01"))
    for probe in ("hostname", "registered_nodes", "etc_hosts_resolution"):
        elapsed, error = _elapsed(lambda probe=probe: observe(_row(probe), silent_context))
        assert isinstance(error, HostUnreachable) and elapsed < IMMEDIATE, (probe, error)
        assert error.reason.startswith("silent01 unreachable: no SSH banner within")


# ----------------------------------------------------------------------------- peer probes


class _RecordingConnection:
    """A host that answers every batch with nothing, recording the scripts; or one that is down."""

    def __init__(self, name: str, down: bool) -> None:
        self.name = name
        self.down = down
        self.scripts: list[str] = []

    def run(self, command: str, **kwargs: Any) -> CommandResult:
        if self.down:
            raise HostUnreachable(self.name, "no SSH banner within 5 s", marked_down=True)
        self.scripts.append(command)
        return CommandResult(self.name, command, 0, "", "", time.time(), 0.0)

    def connect(self) -> None:
        if self.down:
            raise HostUnreachable(self.name, "no SSH banner within 5 s", marked_down=True)


class _RecordingTransport:
    def __init__(self, down: set[str]) -> None:
        self.down = down
        self.connections: dict[str, _RecordingConnection] = {}

    def connection(self, host: HostSpec | str) -> _RecordingConnection:
        name = host if isinstance(host, str) else host.name
        return self.connections.setdefault(name, _RecordingConnection(name, name in self.down))

    def stats(self) -> dict[str, dict[str, Any]]:
        return {}

    def close(self) -> None:
        return None


def test_peer_probes_are_gathered_only_among_hosts_that_answer(cluster: Cluster) -> None:
    """node02 down: nobody curls its ports in a batch, and node01's ports get another prober."""
    transport = _RecordingTransport({"node02"})
    session = Session(cluster, transport)  # type: ignore[arg-type]
    session.prefetch()
    node02_urls = "https://192.168.61.22:2379/version"
    scripts = {name: "\n".join(conn.scripts) for name, conn in transport.connections.items()}
    assert all(node02_urls not in script for script in scripts.values())
    assert "https://192.168.61.18:2379/version" in scripts["master01"]  # node01's, probed from master01 now
    assert session.peer_cluster.hosts == tuple(h for h in cluster.hosts if h.name != "node02")
    down = session.unreachable("node02")
    assert down is not None and down.reason == "node02 unreachable: no SSH banner within 5 s"


def test_with_every_host_up_peer_probes_follow_the_designated_peers(cluster: Cluster) -> None:
    transport = _RecordingTransport(set())
    session = Session(cluster, transport)  # type: ignore[arg-type]
    session.prefetch()
    scripts = {name: "\n".join(conn.scripts) for name, conn in transport.connections.items()}
    # node02's ports are probed from master01 (the next host), node01's from node02, as always
    assert "https://192.168.61.22:2379/version" in scripts["master01"]
    assert "https://192.168.61.18:2379/version" in scripts["node02"]
    assert session.peer_cluster.hosts == cluster.hosts


# ----------------------------------------------------------------------------- the plugin, end to end

SUITE_CLUSTER = """\
name: offline
hosts:
  - name: {local}
    address: 127.0.0.1
    roles: [node]
  - name: silent01
    address: 127.0.0.3
    roles: [node]
time:
  sync: host-kernel
ssh:
  config: ssh_config
"""

SUITE_SSH_CONFIG = """\
Host silent01
  HostName {address}
  Port {port}
Host *
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
"""

# the local host runs its commands on this machine; every other host goes through real SSH
SUITE_CONFTEST = """
import subprocess, time
import pytest
from kubeproof.transport import CommandResult, Connection

@pytest.fixture(autouse=True, scope="session")
def _local_host():
    original = Connection.run
    def run(self, command, *, stdin=None, timeout=120.0):
        if self.name == "silent01":
            return original(self, command, stdin=stdin, timeout=timeout)
        self.stats.commands += 1
        started = time.time()
        done = subprocess.run(["sh", "-c", command], input=stdin, capture_output=True, timeout=timeout)
        return CommandResult(self.name, command, done.returncode, done.stdout.decode(), done.stderr.decode(),
                             started, time.time() - started)
    Connection.run = run
    yield
    Connection.run = original
"""


def make_suite_project(pytester: pytest.Pytester, server: SilentServer, conftest: str) -> str:
    """The ENV suite over this machine (its commands run locally) and the silent server; the local
    host's name (its hostname, so the ENV rows about it hold)."""
    local = subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip()
    pytester.makefile(".yaml", cluster=SUITE_CLUSTER.format(local=local))
    (pytester.path / "ssh_config").write_text(SUITE_SSH_CONFIG.format(address="127.0.0.1", port=server.port))
    pytester.makeconftest(conftest)
    (pytester.path / "test_01_env.py").write_text((REPO / "suites" / "test_01_env.py").read_text())
    return local


def test_the_suite_finds_a_silent_host_once_and_every_row_names_it(pytester: pytest.Pytester) -> None:
    server = SilentServer()
    try:
        local = make_suite_project(pytester, server, SUITE_CONFTEST)
        started = time.monotonic()
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--cluster", "cluster.yaml", "--ssh-timeout", str(TIMEOUT), "-rA"
        )
        elapsed = time.monotonic() - started
    finally:
        server.close()
    out = result.stdout.str()
    # one attempt, within one timeout (the local host's own rows take a second or two)
    assert server.accepted == 1
    assert "silent01: 1 SSH connections" in out, out
    assert elapsed < detection_bound() + 8, elapsed
    reason = "silent01 unreachable: no SSH banner within 2 s"
    silent_rows = [
        line for line in out.splitlines() if line.startswith(("PASSED", "FAILED", "ERROR")) and "@silent01]" in line
    ]
    assert silent_rows and all(line.startswith("ERROR") for line in silent_rows), silent_rows
    # each row's own report names the host and the reason once; the short summary's copy of the
    # message depends on pytest's CI detection (full on CI, cut to the width elsewhere), so it is not counted
    reports = re.findall(r"_ ERROR at setup of test_environment\[(\S+)@silent01\] _", out)
    assert len(reports) == len(silent_rows), out
    for row in reports:
        assert f"[{row}] silent01: probe could not run: {reason}" in out, row
    # on the host that answers: uniqueness needs silent01's hostname and says so; the clock does not
    assert f"[ENV-03:unique] {local}: probe could not run: {reason}" in out, out
    assert f"PASSED test_01_env.py::test_environment[ENV-07@{local}]" in out, out
    for words in ("No existing session", "SSH session not active"):
        assert words not in out
