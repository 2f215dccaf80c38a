"""The operations engine on fake hosts: plan from facts, apply, converge, own, restart, resume.

A fake connection answers the batched fact script from an in-memory host (files, directories,
symlinks, units) and carries out the commands apply sends, so plan/apply/plan runs entirely offline.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from kubeproof.bootstrap import engine, runner
from kubeproof.bootstrap.artifacts import Artifacts
from kubeproof.bootstrap.content import Content
from kubeproof.bootstrap.context import RunContext
from kubeproof.bootstrap.engine import Change, Directory, File, Resource, Symlink, Unit
from kubeproof.bootstrap.phases import Phase
from kubeproof.bootstrap.runner import RunResult, _run_phase, plan_phase
from kubeproof.bootstrap.state import Reporter, Sha256Cache, StateDir
from kubeproof.inventory import Cluster, HostSpec, parse_cluster_text
from kubeproof.transport import CommandResult, Connection, Transport

CLUSTER_YAML = """
name: fake
hosts:
  - {name: h1, address: 10.9.0.1, roles: [master, etcd], etcd_name: etcd01}
  - {name: h2, address: 10.9.0.2, roles: [node, etcd], etcd_name: etcd02}
artifacts: /nonexistent-artifacts
"""


@dataclass
class FakeHost:
    name: str
    files: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=lambda: {"/", "/etc", "/usr", "/usr/lib/systemd/system"})
    links: dict[str, str] = field(default_factory=dict)
    units: dict[str, dict[str, str]] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    batches: int = 0
    fail_on: str | None = None  # a command substring that makes the host "die" (simulated kill)

    # -- facts

    def path_line(self, path: str) -> str:
        if path in self.links:
            return f"L\t{path}\t{self.links[path]}"
        if path in self.dirs:
            return f"D\t{path}\t755"
        if path in self.files:
            mode, data = self.files[path]
            # no stat signature: the installer hashes these files again on every run
            return f"F\t{path}\t{mode:o}\t{hashlib.sha256(data).hexdigest()}\t"
        return f"M\t{path}"

    def unit_block(self, unit: str) -> str:
        props = self.units.get(unit)
        if props is None:
            loaded = f"/usr/lib/systemd/system/{unit}" in self.files
            props = {
                "LoadState": "loaded" if loaded else "not-found",
                "ActiveState": "inactive",
                "SubState": "dead",
                "UnitFileState": "disabled" if loaded else "",
                "NeedDaemonReload": "no",
            }
        return "\n".join([f"Id={unit}", *(f"{k}={v}" for k, v in props.items())]) + "\n"

    def answer(self, fact_command: str) -> str:
        match = re.search(r"set -- (.+?); while \[", fact_command)
        if match:  # (path, known signature) pairs
            paths = shlex.split(match.group(1))[0::2]
            return "\n".join([f"N\t{int(time.time())}", *(self.path_line(p) for p in paths)]) + "\n"
        if fact_command.startswith("cat " + engine.MANIFEST_PATH):
            return self.files.get(engine.MANIFEST_PATH, (0o644, b""))[1].decode()
        if fact_command.startswith("systemctl show"):
            units = fact_command.split(" ")[5:]
            return "\n".join(self.unit_block(u) for u in units)
        raise AssertionError(f"unexpected fact command {fact_command[:80]}")

    # -- commands

    def run(self, command: str, stdin: bytes | None) -> tuple[int, str, str]:
        if command.startswith("sh -c "):
            self.batches += 1
            return 0, self.batch(shlex.split(command)[2]), ""
        self.commands.append(command)
        if self.fail_on and self.fail_on in command:
            raise KeyboardInterrupt(f"killed at {command}")
        for part in re.split(r" && |; ", command):
            argv = [word for word in shlex.split(part) if word not in (">/dev/null", "2>&1")]
            self.execute(argv, stdin)
        return 0, "", ""

    def execute(self, argv: list[str], stdin: bytes | None) -> None:
        if argv[:2] == ["mkdir", "-p"]:
            self.dirs.add(argv[2])
        elif argv[:2] == ["umask", "077"] or argv[:2] == ["rm", "-f"]:
            pass
        elif argv[0] == "cat" and argv[1] == ">":
            self.files[argv[2]] = (0o600, stdin or b"")
        elif argv[0] == "chmod":
            _mode, data = self.files.get(argv[2], (0, b""))
            if argv[2] in self.files:
                self.files[argv[2]] = (int(argv[1], 8), data)
        elif argv[:2] == ["mv", "-f"]:
            self.files[argv[3]] = self.files.pop(argv[2])
        elif argv[:2] == ["mv", "-Tf"]:
            self.links[argv[3]] = self.links.pop(argv[2])
        elif argv[:2] == ["ln", "-s"]:
            self.links[argv[3]] = argv[2]
        elif argv[0] == "systemctl":
            verb, unit = argv[1], argv[-1]
            if verb in ("daemon-reload", "reset-failed"):
                return
            props = dict(self.units.get(unit) or {})
            props.setdefault("LoadState", "loaded")
            props.setdefault("NeedDaemonReload", "no")
            if verb == "enable":
                props["UnitFileState"] = "enabled"
            if verb in ("start", "restart"):
                props["ActiveState"] = "active"
            props.setdefault("ActiveState", "inactive")
            props.setdefault("UnitFileState", "disabled")
            self.units[unit] = props
        else:
            raise AssertionError(f"unexpected command {argv}")

    def batch(self, script: str) -> str:
        nonce_match = re.search(r"@@(KP[0-9a-f]+) BEGIN", script)
        assert nonce_match
        nonce = nonce_match.group(1)
        out = []
        for line in script.splitlines():
            found = re.search(
                r"printf '\\n@@KP[0-9a-f]+ BEGIN %s u%s\\n' (\S+) "
                r".*?kp_bound \S+ sh -c (.*?) 2>\"\$kp_err\" </dev/null",
                line,
            )
            if not found:
                continue
            name = shlex.split(found.group(1))[0]
            stdout = self.answer(shlex.split(found.group(2))[0])
            out.append(f"\n@@{nonce} BEGIN {name} 1.0\n{stdout}\n@@{nonce} STDERR {name}\n\n@@{nonce} END {name} 0\n")
        return "".join(out)


class FakeConnection:
    def __init__(self, host: FakeHost):
        self.host = host
        self.name = host.name

    def run(self, command: str, *, stdin: bytes | None = None, timeout: float = 120.0) -> CommandResult:
        rc, stdout, stderr = self.host.run(command, stdin)
        return CommandResult(self.name, command, rc, stdout, stderr, time.time(), 0.0)

    def run_argv(self, argv: list[str], **kwargs: Any) -> CommandResult:
        return self.run(shlex.join(argv), **kwargs)


class FakeTransport:
    def __init__(self, hosts: dict[str, FakeHost]):
        self.hosts = hosts

    def connection(self, host: HostSpec | str) -> Connection:
        name = host if isinstance(host, str) else host.name
        return cast(Connection, FakeConnection(self.hosts[name]))


@pytest.fixture
def cluster() -> Cluster:
    return parse_cluster_text(CLUSTER_YAML)


@pytest.fixture
def hosts() -> dict[str, FakeHost]:
    return {"h1": FakeHost("h1"), "h2": FakeHost("h2")}


def make_ctx(cluster: Cluster, hosts: dict[str, FakeHost], tmp_path: Path, *, replace_ca: bool = False) -> RunContext:
    state = StateDir(tmp_path / "state")
    return RunContext(
        cluster=cluster,
        transport=cast(Transport, FakeTransport(hosts)),
        state=state,
        reporter=Reporter(None, "test", stream=io.StringIO()),
        artifacts=Artifacts(cluster),
        sha_cache=Sha256Cache(tmp_path / "sha.json"),
        apply=True,
        replace_ca=replace_ca,
        pki_dir=tmp_path / "pki",
    )


CONFIG = "/etc/demo/demo.conf"
UNIT = "demo.service"


def demo_phase(config: bytes = b"port=1\n", ca: bytes = b"CA-1\n") -> Phase:
    def desired(ctx: RunContext, host: HostSpec) -> list[Resource]:
        return [
            Directory("/etc/demo"),
            File(CONFIG, Content(config), 0o644, restarts=(UNIT,)),
            File("/etc/demo/ca.pem", Content(ca), 0o644, ca=True),
            File("/etc/demo/key.pem", Content(b"KEY\n"), 0o600, secret=True),
            File(f"/usr/lib/systemd/system/{UNIT}", Content(b"[Service]\nExecStart=/bin/demo\n"), restarts=(UNIT,)),
            Symlink("/usr/local/bin/demo", "/opt/demo/bin/demo"),
            Unit(UNIT),
        ]

    return Phase("demo", "demo", lambda cluster: list(cluster.hosts), desired)


def apply_all(changes: list[Change], stop_after_stage: int | None = None) -> list[str]:
    done: list[str] = []
    if stop_after_stage is not None:
        changes = [c for c in changes if c.stage <= stop_after_stage]
    engine.apply_changes(changes, lambda change, seconds: done.append(f"{change.host}: {change.description}"))
    return done


def descriptions(changes: list[Change], host: str = "h1") -> list[str]:
    return [c.description for c in changes if c.host == host]


def test_plan_on_a_bare_host_in_one_round_trip_per_host(
    cluster: Cluster, hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    ctx = make_ctx(cluster, hosts, tmp_path)
    plan = plan_phase(ctx, demo_phase())
    assert plan.errors == []
    assert descriptions(plan.changes) == [
        "create directory /etc/demo",
        "create /etc/demo/demo.conf",
        "create /etc/demo/ca.pem",
        "create /etc/demo/key.pem",
        "create /usr/lib/systemd/system/demo.service",
        "create symlink /usr/local/bin/demo -> /opt/demo/bin/demo",
        "systemctl daemon-reload",
        "enable demo.service",
        "start demo.service",
    ]
    assert [h.batches for h in hosts.values()] == [1, 1]
    assert all(h.commands == [] for h in hosts.values()), "planning must not touch a host"


def test_apply_then_plan_is_empty(cluster: Cluster, hosts: dict[str, FakeHost], tmp_path: Path) -> None:
    ctx = make_ctx(cluster, hosts, tmp_path)
    apply_all(plan_phase(ctx, demo_phase()).changes)
    h1 = hosts["h1"]
    assert h1.files[CONFIG] == (0o644, b"port=1\n")
    assert h1.files["/etc/demo/key.pem"][0] == 0o600
    manifest = json.loads(h1.files[engine.MANIFEST_PATH][1])
    assert manifest["files"][CONFIG] == hashlib.sha256(b"port=1\n").hexdigest()
    assert manifest["links"] == {"/usr/local/bin/demo": "/opt/demo/bin/demo"}
    assert manifest["pending_restarts"] == []
    assert h1.units[UNIT]["ActiveState"] == "active"
    again = plan_phase(ctx, demo_phase())
    assert again.changes == [] and again.errors == []


def test_an_existing_file_kubeproof_did_not_write_is_refused(
    cluster: Cluster, hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    hosts["h2"].files[CONFIG] = (0o644, b"theirs\n")
    ctx = make_ctx(cluster, hosts, tmp_path)
    plan = plan_phase(ctx, demo_phase())
    assert len(plan.errors) == 1
    assert plan.errors[0].startswith("h2: /etc/demo/demo.conf exists, differs")
    assert "Move it away" in plan.errors[0]
    assert not descriptions(plan.changes, "h2"), "the refused host gets no change at all"
    assert descriptions(plan.changes, "h1")


def test_an_identical_file_is_adopted_once(cluster: Cluster, hosts: dict[str, FakeHost], tmp_path: Path) -> None:
    hosts["h1"].files[CONFIG] = (0o644, b"port=1\n")
    ctx = make_ctx(cluster, hosts, tmp_path)
    plan = plan_phase(ctx, demo_phase())
    assert "adopt /etc/demo/demo.conf (identical content, now managed)" in descriptions(plan.changes)
    apply_all(plan.changes)
    assert plan_phase(ctx, demo_phase()).changes == []


def test_a_changed_file_restarts_its_unit_even_across_a_kill(
    cluster: Cluster, hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    ctx = make_ctx(cluster, hosts, tmp_path)
    apply_all(plan_phase(ctx, demo_phase()).changes)
    plan = plan_phase(ctx, demo_phase(config=b"port=2\n"))
    assert descriptions(plan.changes) == ["update /etc/demo/demo.conf", "restart demo.service (a file it uses changed)"]
    # the run dies after writing the file, before the restart
    apply_all(plan.changes, stop_after_stage=engine.STAGE_FILES)
    assert json.loads(hosts["h1"].files[engine.MANIFEST_PATH][1])["pending_restarts"] == [UNIT]
    resumed = plan_phase(ctx, demo_phase(config=b"port=2\n"))
    assert descriptions(resumed.changes) == ["restart demo.service (owed by an earlier run)"]
    apply_all(resumed.changes)
    assert plan_phase(ctx, demo_phase(config=b"port=2\n")).changes == []
    assert any(c.endswith("systemctl restart demo.service") for c in hosts["h1"].commands)


def test_a_kill_in_the_middle_of_writing_converges_on_the_next_run(
    cluster: Cluster, hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    hosts["h1"].fail_on = "/etc/demo/key.pem"
    ctx = make_ctx(cluster, hosts, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        apply_all(plan_phase(ctx, demo_phase()).changes)
    hosts["h1"].fail_on = None
    # what was written before the kill is ours (the intent was recorded first): no conflict
    resumed = plan_phase(ctx, demo_phase())
    assert resumed.errors == []
    assert "create /etc/demo/demo.conf" not in descriptions(resumed.changes)
    apply_all(resumed.changes)
    assert plan_phase(ctx, demo_phase()).changes == []


def test_a_different_ca_is_kept_unless_replace_ca(cluster: Cluster, hosts: dict[str, FakeHost], tmp_path: Path) -> None:
    ctx = make_ctx(cluster, hosts, tmp_path)
    apply_all(plan_phase(ctx, demo_phase()).changes)
    plan = plan_phase(ctx, demo_phase(ca=b"CA-2\n"))
    assert plan.errors and "holds a different CA" in plan.errors[0] and "--replace-ca" in plan.errors[0]
    ctx_replace = make_ctx(cluster, hosts, tmp_path, replace_ca=True)
    replaced = plan_phase(ctx_replace, demo_phase(ca=b"CA-2\n"))
    assert replaced.errors == [] and "update /etc/demo/ca.pem" in descriptions(replaced.changes)


def test_plan_output_names_phase_host_and_change(
    cluster: Cluster, hosts: dict[str, FakeHost], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(cluster, hosts, tmp_path)
    ctx.apply = False
    stream = io.StringIO()
    ctx.reporter = Reporter(None, "plan", stream=stream)
    result = RunResult()
    monkeypatch.setattr(runner, "phase_number", lambda phase: 3)
    _run_phase(ctx, demo_phase(), result)
    lines = stream.getvalue().splitlines()
    assert "[3/7 demo] h1: create /etc/demo/demo.conf" in lines
    assert "[3/7 demo] h2: start demo.service" in lines
    assert result.changes == 18
    assert all(h.commands == [] for h in hosts.values())


def test_secret_content_never_in_repr() -> None:
    assert "KEY" not in repr(Content(b"-----BEGIN PRIVATE KEY-----KEY"))


def _later_phase() -> Phase:
    """A phase after demo that wants what demo creates: it plans nothing once demo has run."""
    return Phase("later", "later", lambda cluster: list(cluster.hosts), lambda ctx, host: [Directory("/etc/demo")])


def test_a_zero_change_run_reads_each_host_once_in_preflight(
    cluster: Cluster, hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    ctx = make_ctx(cluster, hosts, tmp_path)
    phases = [demo_phase(), _later_phase()]
    for phase in phases:
        _run_phase(ctx, phase, RunResult())
    for host in hosts.values():
        host.batches = 0
    assert runner._ownership_conflicts(ctx, phases) == []
    result = RunResult()
    for phase in phases:
        _run_phase(ctx, phase, result)
    assert result.changes == 0
    # the ownership check and both phases' plans: one round trip per host, not three
    assert [h.batches for h in hosts.values()] == [1, 1]


def test_after_a_change_the_later_phases_read_their_hosts_again(
    cluster: Cluster, hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    ctx = make_ctx(cluster, hosts, tmp_path)
    phases = [demo_phase(), _later_phase()]
    assert runner._ownership_conflicts(ctx, phases) == []  # read ahead: /etc/demo is missing everywhere
    first, later = RunResult(), RunResult()
    _run_phase(ctx, phases[0], first)
    assert first.changes == 18
    _run_phase(ctx, phases[1], later)
    # what preflight read is gone with demo's changes: the later phase sees /etc/demo, made by demo
    assert later.changes == 0
    assert runner.EARLY_READS not in ctx.extra
