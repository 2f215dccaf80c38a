"""The health gate: the suites are apply's contract.

Files and unit states can all be as the installer wrote them while the cluster does not work
(etcd restarted under flanneld: its routes to the other workers are gone, and nothing on disk
says so). After its phases, apply judges the catalogue rows of the phases it ran (never SMOKE),
through the same probes, comparators, settle windows and cause rules as the suites
(`kubeproof.evaluate`). Each failing root cause with a repair in :data:`REPAIRS` is repaired (a
restart of the unit on that host, the CSR approval run again, a binding recreated), then the
rows are judged again. What cannot be repaired, or still fails, ends the run non-zero with the
failing rows in the one failure format. `plan` judges once, read-only, and lists the repairs.

A repair touches only what the installer owns: a unit whose unit file or drop-in is in the
host's ownership manifest, a binding that is absent or carries kubeproof's label, a CSR that
bootstrap/csr.py would approve. Anything else is reported and left alone.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubeproof import layout
from kubeproof.bootstrap import render
from kubeproof.bootstrap.context import RunContext
from kubeproof.bootstrap.engine import (
    STAGE_UNITS,
    Change,
    HostApplier,
    Manifest,
    apply_changes,
    manifest_fact,
    put_bytes,
    run_checked,
    unit_journal,
)
from kubeproof.bootstrap.errors import ChangeFailed, ConflictError
from kubeproof.bootstrap.phases import etcd as etcd_phase
from kubeproof.bootstrap.phases import nodes
from kubeproof.causes import UNREACHABLE_ID, CauseRule, RootCause, key_matches, load_cause_rules
from kubeproof.checks import Check, load_catalogue
from kubeproof.evaluate import evaluate_rows
from kubeproof.facts import HostFacts
from kubeproof.probes import load_probes
from kubeproof.redact import redact
from kubeproof.session import Session
from kubeproof.transport import ProbeError

GATE = "gate"
# Which catalogue groups judge which phase (SMOKE starts pods: a suite of its own, never the gate).
PHASE_GROUPS: dict[str, tuple[str, ...]] = {
    "environment": ("ENV",),
    "pki": ("PKI-E", "PKI-K"),
    "etcd": ("ETCD",),
    "docker": ("DOCKER",),
    "flannel": ("FLANNEL",),
    "master": ("MASTER",),
    "nodes": ("NODE",),
}
BAD = ("failed", "error")

# After the phases changed something, state in transit (a restarted flanneld programming its
# routes) gets this long to settle before it counts as drift; after repairs, this long to heal.
TRANSIT_SECONDS = 20.0
HEAL_SECONDS = 60.0
ROUNDS = 2
PAUSE_SECONDS = 2.0

RESTART = "restart"
APPROVE_CSRS = "approve-csrs"
BINDINGS = "bindings"
REPLACE_MEMBER = "replace-member"
MEMBER_JOIN_SECONDS = 120.0


@dataclass(frozen=True)
class Repair:
    """A failing row (key patterns as in causes.yaml) and the operation that repairs it."""

    patterns: tuple[str, ...]
    kind: str  # RESTART | APPROVE_CSRS | BINDINGS | REPLACE_MEMBER
    units: tuple[str, ...] = ()  # RESTART: restarted together, in this order, on the row's host
    why: str = ""
    # only when the row's observed value or diagnosis says one of these (a matched log signature)
    when: tuple[str, ...] = ()

    def applies(self, key: str, record: dict[str, Any]) -> bool:
        if not any(key_matches(pattern, key) for pattern in self.patterns):
            return False
        if not self.when:
            return True
        said = " ".join([str(record.get("observed", "")), *map(str, record.get("diagnosis") or [])])
        return any(marker in said for marker in self.when)

    @property
    def subject(self) -> str:
        if self.kind == RESTART:
            return self.units[0].removesuffix(".service")
        return {APPROVE_CSRS: "CSRs", REPLACE_MEMBER: "etcd"}.get(self.kind, "RBAC")

    @property
    def action(self) -> str:
        if self.kind == RESTART:
            return "restart " + " and ".join(u.removesuffix(".service") for u in self.units)
        if self.kind == APPROVE_CSRS:
            return "approve the pending CSRs of the cluster file's workers"
        if self.kind == REPLACE_MEMBER:
            return "replace the etcd member (member remove, member add, its data dir set aside, state existing)"
        return "recreate kubeproof's clusterrolebindings"


FLANNELD = "flanneld.service"
DOCKER = "docker.service"

# Runtime state the files do not show, and what brings it back. First match wins.
REPAIRS: tuple[Repair, ...] = (
    Repair(
        ("FLANNEL-06", "DOCKER-02:running"),
        RESTART,
        (FLANNELD, DOCKER),
        "flanneld rewrites /run/flannel/docker from its lease; docker re-creates docker0 from it",
    ),
    Repair(
        ("FLANNEL-02", "FLANNEL-03", "FLANNEL-04", "FLANNEL-05", "FLANNEL-07", "FLANNEL-08"),
        RESTART,
        (FLANNELD,),
        "flanneld takes its lease, writes subnet.env, sets up flannel.1 and programs a route, neighbour "
        "and fdb entry per other lease when it starts",
    ),
    Repair(("DOCKER-01:service", "DOCKER-01:api"), RESTART, (DOCKER,), "docker.service is not answering"),
    Repair(("NODE-04:cri-dockerd",), RESTART, (nodes.CRI_DOCKERD,), "the kubelet's runtime is down"),
    Repair(
        ("NODE-04", "NODE-06", "NODE-07", "NODE-08"),
        RESTART,
        (nodes.KUBELET,),
        "the running kubelet disagrees with its configuration or stopped reporting",
    ),
    Repair(("NODE-09",), RESTART, (nodes.KUBE_PROXY,), "the running kube-proxy disagrees with its configuration"),
    Repair(("NODE-03",), BINDINGS, why="the guide's 3.5 binding (and kubeproof's kubelet-api one)"),
    Repair(("NODE-05",), APPROVE_CSRS, why="the guide's 5.2: approve the workers' kubelet CSRs"),
    Repair(("MASTER-03", "MASTER-02:loaded"), RESTART, ("kube-apiserver.service",), "the running apiserver"),
    Repair(("MASTER-08",), RESTART, ("kube-scheduler.service",), "the running scheduler"),
    Repair(("MASTER-09",), RESTART, ("kube-controller-manager.service",), "the running controller-manager"),
    Repair(
        ("ETCD-06:state", "ETCD-08:state"),
        REPLACE_MEMBER,
        why="the member lost its data: its peers know it as bootstrapped, it cannot start as new",
        when=("SIG-ETCD-06", "has already been bootstrapped", "is out of range [lastIndex(", "raft log corrupted"),
    ),
    Repair(("ETCD-06:state", "ETCD-06:running", "ETCD-08:state"), RESTART, ("etcd.service",), "the member"),
)


def repair_for(key: str, record: dict[str, Any] | None = None) -> Repair | None:
    for repair in REPAIRS:
        if repair.applies(key, record or {}):
            return repair
    return None


# ----------------------------------------------------------------------------- judging


# Rows of a group whose file a later phase writes: judged with that phase, not their group's.
# kube-proxy.kubeconfig (PKI-K-04's kube-proxy rows) is written by the nodes phase; without this,
# `apply --phase environment pki` failed its gate on a file it was never asked to write.
ROW_PHASES: dict[str, str] = {
    "PKI-K-04:kube-proxy": "nodes",
    "PKI-K-04:kube-proxy-chain": "nodes",
}


def gate_groups(phase_names: Iterable[str]) -> list[str]:
    return [group for name in phase_names for group in PHASE_GROUPS.get(name, ())]


def gate_rows(catalogue: Iterable[Check], phase_names: Sequence[str]) -> list[Check]:
    """The rows the gate judges after these phases: their groups' rows, each row with its phase."""
    groups = set(gate_groups(phase_names))
    return [
        row
        for row in catalogue
        if (ROW_PHASES[row.key] in phase_names if row.key in ROW_PHASES else row.group in groups)
    ]


@dataclass
class Judgement:
    """One look at the cluster: every row's record and the root causes of those that failed."""

    records: list[dict[str, Any]]
    roots: list[RootCause]
    seconds: float

    @property
    def failing(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("outcome") in BAD]

    @property
    def green(self) -> bool:
        return not self.failing

    def record(self, key: str, host: str) -> dict[str, Any] | None:
        for record in self.records:
            if record["key"] == key and record["host"] == host:
                return record
        return None

    def summary(self) -> str:
        counted = {o: sum(1 for r in self.records if r.get("outcome") == o) for o in ("passed", "failed", "error")}
        skipped = sum(1 for r in self.records if r.get("outcome") in ("skipped", "finding"))
        return (
            f"{len(self.records)} rows: {counted['passed']} passed, {counted['failed']} failed, "
            f"{counted['error']} errors, {skipped} skipped ({self.seconds:.1f}s)"
        )


class Gate:
    """The catalogue rows of the phases run, judged on the run's own connections."""

    def __init__(self, ctx: RunContext, phase_names: Sequence[str]):
        self.ctx = ctx
        catalogue = load_catalogue(known_probes=load_probes())
        self.rows: list[Check] = gate_rows(catalogue, phase_names)
        self.rules: list[CauseRule] = load_cause_rules(known_keys={row.key for row in catalogue})
        self.looks = 0

    def judge(self, *, settle: bool = True) -> Judgement:
        started = time.monotonic()
        self.looks += 1
        session = Session(self.ctx.cluster, self.ctx.transport)
        try:
            session.prefetch()
            records, roots = evaluate_rows(session, self.rows, self.rules, settle=settle)
        finally:
            session.refresh()  # its clients; the connections are the run's
        return Judgement(records, roots, time.monotonic() - started)

    def judge_until_green(self, window: float) -> Judgement:
        """Judge again until every row holds or ``window`` is over (the last look with settle windows)."""
        deadline = time.monotonic() + window
        while True:
            judgement = self.judge(settle=False)
            if judgement.green:
                return judgement
            if time.monotonic() + PAUSE_SECONDS >= deadline:
                return self.judge(settle=True)
            time.sleep(PAUSE_SECONDS)


# ----------------------------------------------------------------------------- repairs


@dataclass
class PlannedRepair:
    repair: Repair
    host: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    refused: str = ""
    changes: list[Change] = field(default_factory=list)

    @property
    def ident(self) -> tuple[str, str]:
        return (self.repair.action, self.host)

    def line(self) -> str:
        """`flanneld node01: [FLANNEL-07] no route to 172.17.9.0/24 (node02); ... -> restart flanneld`"""
        observed = "; ".join(f"[{r['key']}] {_short(r)}" for r in self.rows)
        if self.refused:
            return f"{self.repair.subject} {self.host}: {observed} -> NOT repaired: {self.refused}"
        return f"{self.repair.subject} {self.host}: {observed} -> {self.repair.action}"


def _short(record: dict[str, Any], limit: int = 200) -> str:
    text = record.get("observed") or record.get("reason") or record.get("text") or ""
    text = str(text).replace("\n", " ")
    return redact(text if len(text) <= limit else text[: limit - 3] + "...")


def unit_owned(manifest: Manifest, unit: str) -> bool:
    """Did kubeproof install this unit: its unit file, or a drop-in of it, in the ownership manifest?"""
    for path in manifest.files:
        name = path.rsplit("/", 1)[-1]
        parent = path.rsplit("/", 2)[-2] if path.count("/") >= 2 else ""
        if name == unit or parent == unit + ".d":
            return True
    return False


def _restart(ctx: RunContext, host: str, units: tuple[str, ...]) -> Any:
    def apply() -> None:
        conn = ctx.transport.connection(host)
        command = shlex.join(["systemctl", "reset-failed", *units]) + " >/dev/null 2>&1; "
        command += shlex.join(["systemctl", "restart", *units])
        try:
            run_checked(conn, command, "restart " + " ".join(units), timeout=180)
        except ChangeFailed as exc:
            journal = unit_journal(conn, units[-1], 12)
            raise ChangeFailed(f"{exc}; journal of {units[-1]}:\n{journal}") from None

    return apply


def _replace_member(ctx: RunContext, name: str) -> Any:
    """Remove the member and add it again, then start it with an empty data dir as `existing`.

    Refused unless every other member is healthy (the cluster keeps its quorum throughout). The
    old data dir is set aside (renamed), never deleted; the other members are not touched.
    """
    cluster = ctx.cluster
    member = cluster.host(name)
    others = [h for h in cluster.etcd_members if h.name != name]
    healthy_rest = cluster.restricted_to(h.name for h in others)
    peer_url = f"https://{member.address}:2380"
    etcd = ctx.version("etcd")  # etcdctl < 3.4 is told ETCDCTL_API=3

    def etcdctl(*args: str) -> str:
        argv = render.etcdctl_argv(healthy_rest, *args, "--command-timeout=10s", etcd=etcd)
        return run_checked(ctx.transport.connection(others[0]), shlex.join(argv), "etcdctl " + " ".join(args[:2]))

    def apply() -> None:
        conn = ctx.transport.connection(member)
        try:
            etcdctl("endpoint", "health")
        except ChangeFailed as exc:
            raise ChangeFailed(
                f"not replacing etcd member {member.etcd_name}: the others are not healthy: {exc}"
            ) from None
        run_checked(conn, "systemctl stop etcd", "stop etcd")
        listed = json.loads(etcdctl("member", "list", "-w", "json")).get("members") or []
        for entry in listed:
            if entry.get("name") == member.etcd_name or peer_url in (entry.get("peerURLs") or []):
                etcdctl("member", "remove", format(int(entry["ID"]), "x"))
        etcdctl("member", "add", str(member.etcd_name), "--peer-urls=" + peer_url)
        enable_v2 = render.etcd_enable_v2(etcd, ctx.version("flanneld"))
        env = render.etcd_env(cluster, member, "existing", enable_v2=enable_v2).encode()
        put_bytes(conn, layout.ETCD_ENV_FILE, env, 0o644)
        HostApplier(conn, _read_manifest(conn)).own(layout.ETCD_ENV_FILE, hashlib.sha256(env).hexdigest())
        data = layout.ETCD_DATA_DIR
        aside = f"{data}.kubeproof-replaced-{time.strftime('%Y%m%dT%H%M%S')}"
        run_checked(
            conn,
            f"if [ -e {shlex.quote(data)} ]; then mv {shlex.quote(data)} {shlex.quote(aside)}; fi; "
            "systemctl reset-failed etcd >/dev/null 2>&1; systemctl start --no-block etcd",
            f"set {data} aside and start etcd",
        )
        deadline = time.monotonic() + MEMBER_JOIN_SECONDS
        check = shlex.join(render.etcdctl_argv(cluster.restricted_to([name]), "endpoint", "health", etcd=etcd))
        while conn.run(check, timeout=30).rc != 0:
            if time.monotonic() > deadline:
                raise ChangeFailed(
                    f"{name}: etcd member {member.etcd_name} did not join within {MEMBER_JOIN_SECONDS:.0f}s; "
                    f"journal:\n{unit_journal(conn, etcd_phase.UNIT, 12)}"
                )
            time.sleep(2)

    return apply


def _read_manifest(conn: Any) -> Manifest:
    facts = HostFacts(conn, lambda: [])
    facts.gather([manifest_fact])
    return facts.get(manifest_fact)


def plan_repairs(ctx: RunContext, judgement: Judgement) -> tuple[list[PlannedRepair], list[dict[str, Any]]]:
    """The repairs for the failing root causes, and the root rows no repair covers."""
    planned: dict[tuple[str, str], PlannedRepair] = {}
    unrepaired: list[dict[str, Any]] = []
    for root in judgement.roots:
        record = judgement.record(root.row.key, root.row.host)
        if record is None or root.row.id == UNREACHABLE_ID:
            unrepaired.append(record or {"key": root.row.key, "host": root.row.host, "text": root.text})
            continue
        repair = repair_for(root.row.key, record)
        if repair is None:
            unrepaired.append(record)
            continue
        host = root.row.host if repair.kind in (RESTART, REPLACE_MEMBER) else "api"
        item = planned.setdefault((repair.action, host), PlannedRepair(repair, host))
        item.rows.append(record)
    manifests: dict[str, Manifest] = {}
    for item in planned.values():
        _prepare(ctx, item, manifests)
    return list(planned.values()), unrepaired


def _manifest(ctx: RunContext, host: str, cache: dict[str, Manifest]) -> Manifest:
    if host not in cache:
        facts = HostFacts(ctx.transport.connection(host), lambda: [])
        facts.gather([manifest_fact])
        cache[host] = facts.get(manifest_fact)
    return cache[host]


def _prepare(ctx: RunContext, item: PlannedRepair, manifests: dict[str, Manifest]) -> None:
    """Fill in the repair's changes, or why it is refused (not ours, or nothing kubeproof may do)."""
    repair = item.repair
    if repair.kind == RESTART:
        try:
            manifest = _manifest(ctx, item.host, manifests)
        except ProbeError as exc:
            item.refused = f"cannot read {item.host}'s ownership manifest: {exc.reason}"
            return
        foreign = [u for u in repair.units if not unit_owned(manifest, u)]
        if foreign:
            item.refused = (
                f"kubeproof did not install {', '.join(foreign)} on {item.host} (not in its ownership manifest): "
                "left alone"
            )
            return
        item.changes = [Change(item.host, GATE, item.line(), _restart(ctx, item.host, repair.units), STAGE_UNITS)]
        return
    if repair.kind == REPLACE_MEMBER:
        try:
            manifest = _manifest(ctx, item.host, manifests)
        except ProbeError as exc:
            item.refused = f"cannot read {item.host}'s ownership manifest: {exc.reason}"
            return
        if not unit_owned(manifest, etcd_phase.UNIT) or layout.ETCD_ENV_FILE not in manifest.files:
            item.refused = f"kubeproof did not install etcd on {item.host} (not in its ownership manifest): left alone"
            return
        if len(ctx.cluster.etcd_members) < 3:
            item.refused = "a cluster of fewer than 3 members has no quorum without this one: restore its data dir"
            return
        item.changes = [Change(item.host, GATE, item.line(), _replace_member(ctx, item.host), STAGE_UNITS)]
        return
    try:
        found = nodes.binding_changes(ctx, True) if repair.kind == BINDINGS else nodes.csr_changes(ctx, True)
    except ConflictError as exc:
        item.refused = str(exc)
        return
    changes = [c for c in found if isinstance(c, Change)]
    if not changes:
        item.refused = (
            "no binding of kubeproof's is missing"
            if repair.kind == BINDINGS
            else "no pending CSR is one kubeproof approves (a worker's own kubelet request)"
        )
        return
    item.changes = changes


# ----------------------------------------------------------------------------- plan and apply


@dataclass
class GateOutcome:
    repairs: int = 0
    planned: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    looks: int = 0
    green: bool = False


def _diagnosed(judgement: Judgement, root: RootCause) -> bool:
    """A root whose unit journal matched a known log signature is a fault, not state in transit."""
    record = judgement.record(root.row.key, root.row.host) or {}
    return any("matched SIG-" in str(line) for line in record.get("diagnosis") or [])


def _say_failing(ctx: RunContext, judgement: Judgement, unrepaired: Sequence[dict[str, Any]]) -> list[str]:
    """Every failing root cause in the one failure format (with its diagnosis); one error line each."""
    reporter = ctx.reporter
    errors: list[str] = []
    consequences = {(r.row.key, r.row.host): r.consequences for r in judgement.roots}
    for record in unrepaired:
        message = record.get("message") or f"[{record['key']}] {record['host']}: {_short(record)}"
        follow = consequences.get((record["key"], record["host"]), 0)
        reporter.line(f"[{GATE}] " + message.replace("\n", f"\n[{GATE}] "), always=True)
        if follow:
            reporter.line(f"[{GATE}]   ({follow} more failing rows follow from it)", always=True)
        errors.append(f"gate: [{record['key']}] {record['host']}: {_short(record, 300)}")
    caused = [r for r in judgement.failing if r.get("caused_by")]
    if caused:
        listed = ", ".join(f"{r['key']}@{r['host']}" for r in caused[:30])
        more = f" and {len(caused) - 30} more" if len(caused) > 30 else ""
        reporter.line(f"[{GATE}] following from the above: {listed}{more}", always=True)
    return errors


def covered(item: PlannedRepair, pending: Sequence[Change]) -> bool:
    """Does a change the phases already plan repair this (a start of the unit, the binding, the CSRs)?"""
    words = {
        RESTART: list(item.repair.units),
        BINDINGS: ["clusterrolebinding"],
        APPROVE_CSRS: ["CSR"],
        REPLACE_MEMBER: [],
    }[item.repair.kind]
    return any(c.host == item.host and any(w in c.description for w in words) for c in pending)


def plan_gate(
    ctx: RunContext, phase_names: Sequence[str], *, pending: Sequence[Change] = (), files_pending: bool = False
) -> GateOutcome:
    """Judge once, read-only: runtime drift as lines of plan, with the repairs apply would make.

    A repair that a change of the phases above already makes (a unit they start, a binding they
    create) is shown as covered and not counted twice.
    """
    outcome = GateOutcome()
    started = time.monotonic()
    gate = Gate(ctx, phase_names)
    judgement = gate.judge(settle=not files_pending)
    ctx.reporter.line(f"[{GATE}] {judgement.summary()}")
    if judgement.green:
        outcome.green = True
    else:
        planned, unrepaired = plan_repairs(ctx, judgement)
        for item in planned:
            line = item.line()
            if not item.refused and covered(item, pending):
                ctx.reporter.line(f"[{GATE}] {line} (made by the change above)")
                continue
            ctx.reporter.line(f"[{GATE}] {line}")
            outcome.planned.append(line)
            if not item.refused:
                outcome.repairs += 1
        if unrepaired and files_pending:
            ctx.reporter.line(f"[{GATE}] failing with no repair (the file changes above may repair them):")
            for record in unrepaired:
                ctx.reporter.line(f"[{GATE}]   [{record['key']}] {record['host']}: {_short(record)}")
        elif unrepaired:
            ctx.reporter.line(f"[{GATE}] failing with no repair (apply would stop here):")
            outcome.errors = _say_failing(ctx, judgement, unrepaired)
    outcome.seconds = time.monotonic() - started
    outcome.looks = gate.looks
    return outcome


def apply_gate(ctx: RunContext, phase_names: Sequence[str], *, phases_changed: bool) -> GateOutcome:
    """Judge; repair the failing root causes that have a repair; judge again; fail with what is left."""
    outcome = GateOutcome()
    reporter = ctx.reporter
    started = time.monotonic()
    gate = Gate(ctx, phase_names)
    judgement = gate.judge(settle=not phases_changed)
    if phases_changed and not judgement.green and not all(_diagnosed(judgement, root) for root in judgement.roots):
        judgement = gate.judge_until_green(TRANSIT_SECONDS)
    reporter.line(f"[{GATE}] {judgement.summary()}")
    attempted: set[tuple[str, str]] = set()
    for _round in range(ROUNDS):
        if judgement.green:
            break
        planned, _ = plan_repairs(ctx, judgement)
        todo = [p for p in planned if not p.refused and p.ident not in attempted]
        for item in planned:
            if item.refused:
                reporter.line(f"[{GATE}] {item.line()}", always=True)
        if not todo:
            break
        changes = [change for item in todo for change in item.changes]

        def done(change: Change, seconds: float) -> None:
            reporter.line(f"[{GATE}] {change.host}: {change.description} ({seconds:.2f}s)")

        apply_changes(changes, done)
        attempted |= {item.ident for item in todo}
        outcome.repairs += len(changes)
        judgement = gate.judge_until_green(HEAL_SECONDS)
        reporter.line(f"[{GATE}] after repairs: {judgement.summary()}")
    if not judgement.green:
        roots = [judgement.record(r.row.key, r.row.host) for r in judgement.roots]
        reporter.line(
            f"[{GATE}] the cluster is NOT healthy: {len(judgement.failing)} rows fail, "
            f"{len(judgement.roots)} root causes",
            always=True,
        )
        outcome.errors = _say_failing(ctx, judgement, [r for r in roots if r is not None])
    outcome.green = judgement.green
    outcome.seconds = time.monotonic() - started
    outcome.looks = gate.looks
    return outcome


__all__ = [
    "PHASE_GROUPS",
    "REPAIRS",
    "Gate",
    "GateOutcome",
    "Judgement",
    "PlannedRepair",
    "Repair",
    "apply_gate",
    "gate_groups",
    "gate_rows",
    "plan_gate",
    "plan_repairs",
    "repair_for",
    "unit_owned",
]
