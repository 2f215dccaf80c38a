"""Preflight, then the phases in the guide's order: plan (diff only) or apply (diff, change, verify)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from kubeproof import layout
from kubeproof.bootstrap import render
from kubeproof.bootstrap.context import RunContext
from kubeproof.bootstrap.engine import (
    TRANSFERS,
    Change,
    Custom,
    DiffResult,
    Directory,
    File,
    HostView,
    Note,
    PathState,
    PhasePlan,
    Resource,
    Symlink,
    Unit,
    apply_changes,
    diff_host,
    in_parallel,
    manifest_fact,
    paths_fact,
    split_results,
    units_fact,
)
from kubeproof.bootstrap.errors import BootstrapError, ConflictError
from kubeproof.bootstrap.health import GateOutcome, apply_gate, plan_gate
from kubeproof.bootstrap.host_profile import (
    PROFILE_FACTS,
    REQUIRED_COMMANDS,
    WORKER_COMMANDS,
    HostProfile,
    host_profile,
)
from kubeproof.bootstrap.phases import Phase, environment, etcd, flannel, master, nodes
from kubeproof.bootstrap.phases import docker as docker_phase
from kubeproof.bootstrap.phases import pki as pki_phase
from kubeproof.bootstrap.state import new_token
from kubeproof.facts import Fact, FactRecord, HostFacts
from kubeproof.inventory import HostSpec
from kubeproof.redact import register_secret
from kubeproof.transport import HostUnreachable, ProbeError

PHASES: tuple[Phase, ...] = (
    environment.PHASE,
    pki_phase.PHASE,
    etcd.PHASE,
    docker_phase.PHASE,
    flannel.PHASE,
    master.PHASE,
    nodes.PHASE,
)
PHASE_NAMES = tuple(p.name for p in PHASES)


@dataclass
class RunResult:
    changes: int = 0
    notes: int = 0
    errors: list[str] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    preflight_seconds: float = 0.0
    total_seconds: float = 0.0
    planned: list[Change] = field(default_factory=list)
    # the health gate after the phases (None: not reached, a phase failed)
    gate: GateOutcome | None = None


def select_phases(names: Sequence[str] | None) -> list[Phase]:
    if not names:
        return list(PHASES)
    unknown = [n for n in names if n not in PHASE_NAMES]
    if unknown:
        raise BootstrapError(f"unknown phase {', '.join(unknown)} (phases: {', '.join(PHASE_NAMES)})")
    return [p for p in PHASES if p.name in names]


def phase_number(phase: Phase) -> int:
    return PHASE_NAMES.index(phase.name) + 1 if phase.name in PHASE_NAMES else 0


def tag(phase: Phase) -> str:
    return f"[{phase_number(phase)}/{len(PHASES)} {phase.name}]"


# ----------------------------------------------------------------------------- facts for a host's resources


def facts_for(resources: Sequence[Resource], known: Mapping[str, tuple[str, str]]) -> list[Fact[Any]]:
    """``known``: the host's digests by stat signature (remote_digests), sent with its paths."""
    paths = [r.path for r in resources if isinstance(r, (File, Directory, Symlink))]
    units = [r.name for r in resources if isinstance(r, Unit)]
    units += [u for r in resources if isinstance(r, File) for u in r.restarts]
    facts: list[Fact[Any]] = [paths_fact(paths or ["/"], known=known), manifest_fact]
    if units:
        facts.append(units_fact(units))
    for resource in resources:
        if isinstance(resource, Custom):
            facts.extend(resource.facts)
    return facts


def plan_phase(ctx: RunContext, phase: Phase) -> PhasePlan:
    plan = PhasePlan(phase.name, phase_number(phase))
    hosts = phase.hosts(ctx.cluster)

    def host_plan(host: HostSpec) -> tuple[DiffResult, str | None]:
        resources = phase.desired(ctx, host)
        conn = ctx.transport.connection(host)
        facts = HostFacts(conn, lambda: [])
        known = ctx.remote_digests.known(host.name)
        wanted = facts_for(resources, known)
        _take_early_reads(ctx, facts, wanted)
        facts.gather(wanted)  # only what preflight did not read, or read before a change
        view = HostView(ctx, host, conn, facts, phase.name, known=known)
        try:
            return diff_host(view, resources), None
        except ConflictError as exc:
            return [], str(exc)

    for results, error in in_parallel(hosts, host_plan):
        split_results(results, plan)
        if error:
            plan.errors.append(error)
    if phase.cluster_diff is not None:
        try:
            split_results(phase.cluster_diff(ctx), plan)
        except ConflictError as exc:
            plan.errors.append(str(exc))
    return plan


# ----------------------------------------------------------------------------- reads ahead

# ctx.extra key: host -> what preflight read, in the same batch as its ownership check, for every
# phase's plan on that host, keyed by the command that read it (one command shared by several
# phases, such as the manifest's, runs once). Valid while no change has been applied: the first
# phase that changes something drops it, and the phases after it read their hosts again.
# A zero-change run so reads each host once, not once per phase (7 round trips per host before).
EARLY_READS = "early-reads"


def early_facts(
    by_phase: Sequence[tuple[Phase, Sequence[Resource]]],
    known: Mapping[str, tuple[str, str]],
    have: Sequence[Fact[Any]],
) -> list[Fact[Any]]:
    """Every phase's plan facts whose command is not already among ``have``, each command once,
    under names of their own so they travel in one batch."""
    commands = {fact.command for fact in have}
    ahead: list[Fact[Any]] = []
    for phase, resources in by_phase:
        for fact in facts_for(resources, known):
            if fact.command not in commands:
                commands.add(fact.command)
                ahead.append(replace(fact, name=f"{phase.name}:{fact.name}"))
    return ahead


def _take_early_reads(ctx: RunContext, facts: HostFacts, wanted: Sequence[Fact[Any]]) -> None:
    """Give the phase's host facts what preflight read with the same commands."""
    early: dict[str, FactRecord] = ctx.extra.get(EARLY_READS, {}).get(facts.host, {})
    records = [{**asdict(early[fact.command]), "fact": fact.name} for fact in wanted if fact.command in early]
    if records:
        facts.preload({"records": records})


def _drop_early_reads(ctx: RunContext) -> None:
    ctx.extra.pop(EARLY_READS, None)


# ----------------------------------------------------------------------------- preflight


def _profile_hosts(ctx: RunContext) -> None:
    def profile(host: HostSpec) -> HostProfile:
        facts = HostFacts(ctx.transport.connection(host), lambda: [])
        try:
            facts.gather(PROFILE_FACTS)
            return host_profile(host.name, facts.get)
        except HostUnreachable as exc:
            raise BootstrapError(f"preflight: {exc.reason}; nothing was changed") from None
        except ProbeError as exc:
            raise BootstrapError(f"preflight: {host.name}: {exc.reason}; nothing was changed") from None

    for host_result in in_parallel(list(ctx.cluster.hosts), profile):
        ctx.profiles[host_result.host] = host_result


def _check_hosts(ctx: RunContext, phases: Sequence[Phase]) -> list[str]:
    problems: list[str] = []
    names = {p.name for p in phases}
    for host in ctx.cluster.hosts:
        profile = ctx.profile(host)
        if profile.uid != "0":
            problems.append(f"{host.name}: the SSH user is not root (uid {profile.uid}); kubeproof needs root")
        missing = [c for c in REQUIRED_COMMANDS if not profile.commands.get(c)]
        if host.has_role("node"):
            missing += [c for c in WORKER_COMMANDS if not profile.commands.get(c)]
        if missing:
            problems.append(f"{host.name}: required commands missing: {', '.join(missing)}")
        if profile.family == "unknown":
            problems.append(f"{host.name}: unknown OS family ({profile.os.get('ID', '?')}): need apt or yum")
        if host.has_role("node") and profile.iface_for(host) is None and names & {"flannel", "nodes"}:
            problems.append(f"{host.name}: no network interface carries its inventory address {host.address}")
        if host.has_role("node") and not profile.docker_installed and profile.family == "unknown":
            problems.append(f"{host.name}: docker is not installed and no package manager is known")
    return problems


def _resolve_token(ctx: RunContext) -> None:
    token = ctx.state.read_token()
    if token:
        ctx.token, ctx.token_source = token, "state"
        return
    for master_host in ctx.cluster.masters:
        data = ctx.transport.connection(master_host).read_file(layout.TOKEN_CSV)
        if data:
            existing = render.parse_token_csv(data.decode("utf-8", "replace"))
            if existing:
                register_secret(existing)
                ctx.token, ctx.token_source = existing, f"adopted from {master_host.name}:{layout.TOKEN_CSV}"
                if ctx.apply:
                    ctx.state.save_token(existing)
                return
    ctx.token, ctx.token_source = new_token(), "new"
    if ctx.apply:
        ctx.state.save_token(ctx.token)


def _ownership_conflicts(ctx: RunContext, phases: Sequence[Phase]) -> list[str]:
    """Every target path of every phase against each host's manifest, before anything changes."""
    wanted: dict[str, list[Resource]] = {}
    by_phase: dict[str, list[tuple[Phase, list[Resource]]]] = {}
    for phase in phases:
        for host in phase.hosts(ctx.cluster):
            resources = phase.desired(ctx, host)
            wanted.setdefault(host.name, []).extend(resources)
            by_phase.setdefault(host.name, []).append((phase, resources))
    early_reads: dict[str, dict[str, FactRecord]] = {}
    ctx.extra[EARLY_READS] = early_reads

    def check(host_name: str) -> list[str]:
        resources = wanted[host_name]
        files = [r for r in resources if isinstance(r, File)]
        links = [r for r in resources if isinstance(r, Symlink)]
        facts = HostFacts(ctx.transport.connection(host_name), lambda: [])
        known = ctx.remote_digests.known(host_name)
        fact = paths_fact(
            [r.path for r in files + links] or ["/"], "kp-owned-paths", skip_owned_binaries=True, known=known
        )
        facts.gather([fact, manifest_fact, *early_facts(by_phase[host_name], known, [fact, manifest_fact])])
        early_reads[host_name] = {record.command: record for record in facts.records()}
        states: dict[str, PathState] = facts.get(fact)
        manifest = facts.get(manifest_fact)
        problems: list[str] = []
        for item in files:
            state = states[item.path]
            if state.kind == "missing" or item.path in manifest.files:
                if item.ca and state.kind == "file" and state.sha256 != item.content.sha256 and not ctx.replace_ca:
                    problems.append(f"{host_name}: {item.path} holds a different CA than {ctx.pki_dir}")
                continue
            if state.kind != "file":
                problems.append(f"{host_name}: {item.path} exists as a {state.kind}")
            elif state.sha256 != item.content.sha256:
                if item.ca and ctx.replace_ca:
                    continue
                problems.append(f"{host_name}: {item.path} exists, differs, and was not created by kubeproof")
        for link in links:
            state = states[link.path]
            if state.kind in ("missing",) or link.path in manifest.links:
                continue
            if not (state.kind == "link" and state.target == link.target):
                problems.append(f"{host_name}: {link.path} exists and was not created by kubeproof")
        return problems

    results = in_parallel(sorted(wanted), check)
    return [problem for host_problems in results for problem in host_problems]


def preflight(ctx: RunContext, phases: Sequence[Phase]) -> None:
    reporter = ctx.reporter
    started = time.monotonic()
    keys = sorted({key for phase in phases for key in phase.artifacts})
    missing = ctx.artifacts.missing(keys)
    if missing:
        raise BootstrapError("preflight: artifacts missing, nothing was changed:\n  " + "\n  ".join(missing))
    _profile_hosts(ctx)
    # artifacts that depend on the releases of those above (read by running them here)
    more = {key for phase in phases if phase.more_artifacts for key in phase.more_artifacts(ctx)}
    missing = ctx.artifacts.missing(sorted(more - set(keys)))
    if missing:
        raise BootstrapError("preflight: artifacts missing, nothing was changed:\n  " + "\n  ".join(missing))
    problems = _check_hosts(ctx, phases)
    if problems:
        raise BootstrapError("preflight failed, nothing was changed:\n  " + "\n  ".join(problems))
    for host in ctx.cluster.hosts:
        profile = ctx.profile(host)
        reporter.debug(
            f"probe {host.name}: {profile.os.get('PRETTY_NAME', '?')}, family {profile.family}, iface "
            f"{profile.iface_for(host)}, docker {'yes' if profile.docker_installed else 'no'} "
            f"({profile.docker_cgroup_driver}), ip_vs {profile.ip_vs}, "
            f"conntrack writable {profile.conntrack_writable}, cgroup fs {profile.cgroup_fs}"
        )
    _resolve_token(ctx)
    ctx.pki_dir = pki_phase.rendering_pki(ctx)
    if ctx.apply and ctx.pki_dir != ctx.state.pki and pki_phase.PHASE not in phases:
        raise BootstrapError(
            f"preflight: the PKI in {ctx.state.pki} is incomplete and the pki phase is not selected: "
            "add --phase pki (or run all phases); nothing was changed"
        )
    conflicts = _ownership_conflicts(ctx, phases)
    if conflicts:
        raise ConflictError(
            "preflight: kubeproof would overwrite files it did not create; nothing was changed:\n  "
            + "\n  ".join(conflicts)
            + "\n  Move them away (or remove them) if kubeproof should manage them, then run again."
        )
    reporter.line(
        f"preflight: {len(ctx.cluster.hosts)} hosts reachable, artifacts present, no ownership conflict, "
        f"bootstrap token: {ctx.token_source} ({time.monotonic() - started:.1f}s)"
    )


# ----------------------------------------------------------------------------- the run


def run(ctx: RunContext, phases: Sequence[Phase]) -> RunResult:
    result = RunResult()
    reporter = ctx.reporter
    run_started = time.monotonic()
    try:
        preflight(ctx, phases)
        result.preflight_seconds = time.monotonic() - run_started
        for phase in phases:
            _run_phase(ctx, phase, result)
            if result.errors and ctx.apply:
                break
        if not result.errors:
            _run_gate(ctx, phases, result)
    finally:
        result.total_seconds = time.monotonic() - run_started
        ctx.sha_cache.save()
        ctx.remote_digests.save()
        for scratch in ctx.extra.get("cleanup", []):
            shutil.rmtree(scratch, ignore_errors=True)
    verb = "apply" if ctx.apply else "plan"
    summary = f"{verb}: {result.changes} change{'s' if result.changes != 1 else ''}"
    if result.errors:
        summary += f", {len(result.errors)} error{'s' if len(result.errors) != 1 else ''}"
    if result.gate is not None:
        failing = "" if result.gate.green or not result.gate.errors else f" ({len(result.gate.errors)} failing)"
        state = "green" if result.gate.green else ("repairs planned" if not ctx.apply else "RED")
        summary += f"; health gate {state}{failing}"
    reporter.line(f"{summary} in {result.total_seconds:.1f}s", always=True)
    timings = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.phase_seconds.items())
    if result.gate is not None:
        timings += f", gate {result.gate.seconds:.1f}s ({result.gate.looks} looks)"
    reporter.line(f"  times: preflight {result.preflight_seconds:.1f}s, {timings}", always=True)
    if TRANSFERS.bytes >= 1_000_000:
        reporter.line(f"  transfers: {TRANSFERS.summary()}")
    return result


def _run_gate(ctx: RunContext, phases: Sequence[Phase], result: RunResult) -> None:
    """The suites' rows of the phases run: apply repairs what it owns and fails on the rest (bootstrap/health.py)."""
    names = [phase.name for phase in phases]
    if ctx.apply:
        outcome = apply_gate(ctx, names, phases_changed=result.changes > 0)
        result.errors += outcome.errors
    else:
        outcome = plan_gate(ctx, names, pending=result.planned, files_pending=result.changes > 0)
    result.changes += outcome.repairs
    result.gate = outcome


def _run_phase(ctx: RunContext, phase: Phase, result: RunResult) -> None:
    reporter = ctx.reporter
    started = time.monotonic()
    prefix = tag(phase)
    local = phase.prepare(ctx) if phase.prepare else []
    for line in local:
        if not line.startswith("note: "):
            result.changes += 1
        reporter.line(f"{prefix} local: {line}")
    plan = plan_phase(ctx, phase)
    for note in plan.notes:
        result.notes += 1
        reporter.line(f"{prefix} {note.host}: note: {note.text}")
    for error in plan.errors:
        reporter.line(f"{prefix} ERROR {error}")
    result.errors += plan.errors
    if not ctx.apply:
        for change in plan.changes:
            reporter.line(f"{prefix} {change.host}: {change.description}")
        result.changes += len(plan.changes)
        result.planned += plan.changes
        result.phase_seconds[phase.name] = time.monotonic() - started
        return
    if plan.errors:
        raise ConflictError(f"{prefix} nothing changed in this phase:\n  " + "\n  ".join(plan.errors))

    def done(change: Change, seconds: float) -> None:
        reporter.line(f"{prefix} {change.host}: {change.description} ({seconds:.2f}s)")

    for change in plan.changes:
        reporter.debug(f"{prefix} planned {change.host}: {change.description}")
    apply_changes(plan.changes, done)
    if plan.changes:
        _drop_early_reads(ctx)  # the hosts are no longer what preflight read
    result.changes += len(plan.changes)
    if phase.verify is not None:
        verify_started = time.monotonic()
        phase.verify(ctx)
        reporter.debug(f"{prefix} verified in {time.monotonic() - verify_started:.1f}s")
    seconds = time.monotonic() - started
    result.phase_seconds[phase.name] = seconds
    local_changes = [line for line in local if not line.startswith("note: ")]
    reporter.line(f"{prefix} done: {len(plan.changes) + len(local_changes)} changes, {seconds:.1f}s")


__all__ = ["PHASES", "PHASE_NAMES", "Note", "RunResult", "plan_phase", "preflight", "run", "select_phases"]
