"""FLANNEL-08: containers on different workers reach each other across the flannel overlay.

A probe container from the offline test image is started on every worker and each pings the
others; they are named and labelled `kubeproof-probe`, exit by themselves after 300 s, and are
always removed.
"""

from __future__ import annotations

import ipaddress
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from kubeproof.checks import NotApplicable, Observation
from kubeproof.facts import network as facts
from kubeproof.inventory import HostSpec
from kubeproof.probes import probe
from kubeproof.session import HostContext, Session, in_parallel
from kubeproof.transport import CommandResult, HostUnreachable, ProbeError

PROBE_CONTAINER_PREFIX = "kubeproof-probe-"
PROBE_LABEL = "kubeproof.probe=flannel-08"
PROBE_SECONDS = 300  # `sleep 300`: a probe container left behind by a killed run exits by itself


@dataclass
class PingRun:
    """One cross-node ping round: a probe container per worker, each pinging every other."""

    containers: dict[str, str] = field(default_factory=dict)  # worker -> container IP
    start_errors: dict[str, str] = field(default_factory=dict)  # worker -> why no container
    results: dict[str, dict[str, bool]] = field(default_factory=dict)  # worker -> {peer worker: reached}
    commands: list[str] = field(default_factory=list)
    unreachable: dict[str, HostUnreachable] = field(default_factory=dict)  # worker -> why it took no part


def _start_script(name: str, image: str) -> str:
    label = shlex.quote(PROBE_LABEL)
    return (
        "now=$(date +%s); "
        # leftovers of earlier runs whose time is up (a killed run; docker restarted under them)
        "docker ps -a --filter label=" + label + " --format '{{.ID}} {{.Label \"kubeproof.expires\"}}' | "
        'while read -r id expires; do [ "${expires:-0}" -lt "$now" ] && docker rm -f "$id" >/dev/null 2>&1; done; '
        "docker run -d --rm --name " + shlex.quote(name) + " --label " + label + " "
        "--label kubeproof.expires=$((now + "
        + str(PROBE_SECONDS + 30)
        + ")) "
        + shlex.quote(image)
        + " sleep "
        + str(PROBE_SECONDS)
        + " >/dev/null && "
        "docker inspect -f '{{.NetworkSettings.IPAddress}}' " + shlex.quote(name)
    )


def _ping_script(name: str, addresses: list[str]) -> str:
    return (
        "for ip in "
        + " ".join(shlex.quote(a) for a in addresses)
        + "; do if docker exec "
        + shlex.quote(name)
        + ' ping -c1 -W2 "$ip" >/dev/null 2>&1; then echo "$ip ok"; else echo "$ip fail"; fi; done'
    )


def run_cross_ping(session: Session) -> PingRun:
    """Start a probe container on every worker, ping across, remove them (always, in the finally).

    Each step runs on all workers at once (a thread per worker), so the round costs three round
    trips whatever the number of workers; results are kept in the workers' order.
    """
    cluster = session.cluster
    workers = cluster.workers
    token = secrets.token_hex(4)
    names = {w.name: f"{PROBE_CONTAINER_PREFIX}{w.name}-{token}" for w in workers}
    run = PingRun()
    attempted: list[HostSpec] = []
    starts = {w.name: _start_script(names[w.name], cluster.images.test) for w in workers}
    try:
        for worker in workers:
            down = session.unreachable(worker)
            if down is not None:  # the others still ping each other
                run.unreachable[worker.name] = down
                continue
            not_running = _docker_not_running(session, worker)
            if not_running:
                run.start_errors[worker.name] = not_running
                continue
            run.commands.append(f"{worker.name}$ {starts[worker.name]}")
            attempted.append(worker)  # before running: a half-started container must be removed too
        started, start_failed = _on_each(session, attempted, lambda w: (starts[w.name], 60), run.unreachable)
        for worker in attempted:
            if worker.name in start_failed:
                run.start_errors[worker.name] = start_failed[worker.name].reason
                continue
            result = started.get(worker.name)
            if result is None:
                continue
            address = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
            try:
                ipaddress.IPv4Address(address)
            except ValueError:
                error = result.stderr.strip() or result.stdout.strip() or f"rc {result.rc}"
                run.start_errors[worker.name] = error[:300]
                continue
            run.containers[worker.name] = address
        # every container stays up until every worker has pinged
        peers = {w.name: {p: ip for p, ip in run.containers.items() if p != w.name} for w in workers}
        pinging = [w for w in workers if w.name in run.containers and peers[w.name]]
        pings = {w.name: _ping_script(names[w.name], list(peers[w.name].values())) for w in pinging}
        for worker in pinging:
            run.commands.append(f"{worker.name}$ {pings[worker.name]}")
        pinged, ping_failed = _on_each(
            session, pinging, lambda w: (pings[w.name], 30 + 5 * len(peers[w.name])), run.unreachable
        )
        for worker in pinging:
            if worker.name in ping_failed:  # the row errors with it, as any probe error
                raise ping_failed[worker.name]
            result = pinged.get(worker.name)
            if result is None:
                continue
            reached = {line.split()[0] for line in result.stdout.splitlines() if line.endswith(" ok")}
            run.results[worker.name] = {w: ip in reached for w, ip in peers[worker.name].items()}
    finally:
        # unreachable now? the container exits by itself after PROBE_SECONDS (--rm)
        _on_each(session, attempted, lambda w: ("docker rm -f " + shlex.quote(names[w.name]), 60), {})
    return run


def _on_each(
    session: Session,
    workers: list[HostSpec],
    command_of: Callable[[HostSpec], tuple[str, float]],
    unreachable: dict[str, HostUnreachable],
) -> tuple[dict[str, CommandResult], dict[str, ProbeError]]:
    """Run each worker's (command, timeout) on all of them at once: (worker -> result, worker ->
    the probe error that stopped it). A worker that stops answering goes to ``unreachable`` instead."""
    results: dict[str, CommandResult] = {}
    failed: dict[str, ProbeError] = {}

    def run_one(worker: HostSpec) -> None:
        command, timeout = command_of(worker)
        try:
            results[worker.name] = session.transport.connection(worker).run(command, timeout=timeout)
        except ProbeError as exc:
            failed[worker.name] = exc

    in_parallel(run_one, workers)
    for worker in workers:  # in the workers' order, whichever answered first
        error = failed.get(worker.name)
        if isinstance(error, HostUnreachable):
            unreachable[worker.name] = error
            del failed[worker.name]
    return results, failed


def _docker_not_running(session: Session, worker: HostSpec) -> str:
    """Why no probe container can start on the worker, as its docker.service fact says; "" when docker
    runs. The docker CLI would otherwise wait on docker.socket for a docker that cannot start (while
    flanneld does not start: Requires=flanneld), for the command's whole timeout, twice: 120 s on the lab.
    """
    try:
        service = session.facts(worker).get(facts.docker_service)
    except ProbeError:  # the fact could not be read: starting the container says what is wrong
        return ""
    return "" if service.properties.get("ActiveState") == "active" else f"docker.service is {service.state}"


@probe("flannel_cross_node_ping")
def flannel_cross_node_ping(ctx: HostContext, _: str) -> Observation:
    """Other workers whose probe container this worker's probe container cannot ping."""
    if len(ctx.cluster.workers) < 2:
        raise NotApplicable("fewer than two workers: nothing to reach across nodes")
    run = ctx.session.shared("flannel-cross-ping", lambda: run_cross_ping(ctx.session))
    for command in run.commands:
        ctx.note_source(command)
    if ctx.host.name in run.unreachable:
        raise run.unreachable[ctx.host.name].again()
    for down in run.unreachable.values():
        ctx.note_skipped(down, "no probe container there")
    if ctx.host.name in run.start_errors:
        raise ProbeError(
            ctx.host.name,
            f"prerequisite failed: cannot start a probe container ({ctx.cluster.images.test}): "
            f"{run.start_errors[ctx.host.name]}",
        )
    results = run.results.get(ctx.host.name, {})
    skipped = [f"{w}: no probe container ({error})" for w, error in run.start_errors.items() if w != ctx.host.name]
    if not results:
        first_down = next(iter(run.unreachable.values()), None)
        if first_down is not None:  # the only other workers do not answer: say which
            raise first_down.again()
        raise ProbeError(
            ctx.host.name, "prerequisite failed: no probe container on another worker: " + "; ".join(skipped)
        )
    unreachable = sorted(f"{w} ({run.containers[w]})" for w, ok in results.items() if not ok)
    mine = run.containers.get(ctx.host.name, "")
    seen = [
        f"container {mine} on {ctx.host.name} -> container {run.containers[w]} on {w}: "
        + ("reached" if ok else "no reply")
        for w, ok in sorted(results.items())
    ]
    diagnosis = list(skipped)
    if unreachable:
        diagnosis.append("probe containers: " + ", ".join(f"{w}={ip}" for w, ip in run.containers.items()))
        for host in [ctx.host, *(ctx.cluster.host(w) for w, ok in results.items() if not ok)]:
            # diagnosis only, not the observation's source: read without recording
            host_facts = ctx.session.facts(host)
            try:
                forward = host_facts.get(facts.forward_chain)
                flanneld = host_facts.get(facts.flanneld_service)
            except ProbeError as exc:
                diagnosis.append(f"{host.name}: no diagnosis ({exc.reason})")
                continue
            diagnosis.append(f"{host.name}: iptables {forward[0] if forward else '(no FORWARD chain)'}")
            diagnosis.append(f"{host.name}: {flanneld.journal_match or 'no Using interface line in its journal'}")
    return ctx.observation(unreachable, diagnosis, seen=seen)
