"""Probes for ENV-01..07: the environment every host is prepared with."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from kubeproof.checks import Observation
from kubeproof.facts import Raw
from kubeproof.facts import host as facts
from kubeproof.probes import probe
from kubeproof.session import HostContext
from kubeproof.transport import HostUnreachable, ProbeError


@probe("firewalld_state")
def firewalld_state(ctx: HostContext, _: str) -> str:
    value = ctx.fact(facts.firewalld)
    if value == "absent":
        return "absent"
    active, _sep, enabled = value.partition(" ")
    if active != "active" and enabled in ("disabled", "masked"):
        return "stopped and disabled"
    return f"{active}, {enabled}"


@probe("selinux_mode")
def selinux_mode(ctx: HostContext, part: str) -> str:
    lines = ctx.fact(facts.selinux)
    runtime = lines[0] if lines else "absent"
    if part == "config":
        return lines[1].lower() if len(lines) > 1 else "absent"
    return runtime.lower()


@probe("hostname")
def hostname(ctx: HostContext, _: str) -> str:
    return ctx.fact(facts.hostname)


@probe("hostname_unique")
def hostname_unique(ctx: HostContext, _: str) -> Observation:
    """Other cluster hosts that report the same hostname as this one."""
    mine = ctx.fact(facts.hostname)
    others = {h.name: ctx.fact(facts.hostname, h) for h in ctx.cluster.hosts if h.name != ctx.host.name}
    return ctx.observation(
        [name for name, theirs in others.items() if theirs == mine],
        seen=[f"{ctx.host.name} hostname {mine}", *(f"{name} hostname {theirs}" for name, theirs in others.items())],
    )


@probe("active_swaps")
def active_swaps(ctx: HostContext, _: str) -> Observation:
    swaps = ctx.fact(facts.swaps)
    return ctx.observation(swaps, seen=[f"/proc/swaps: {len(swaps)} active swap device(s)", *swaps])


@probe("fstab_swap_entries")
def fstab_swap_entries(ctx: HostContext, _: str) -> Observation:
    entries = ctx.fact(facts.fstab_swap)
    return ctx.observation(entries, seen=[f"/etc/fstab: {len(entries)} uncommented entry(ies) of type swap", *entries])


@probe("etc_hosts_resolution")
def etc_hosts_resolution(ctx: HostContext, _: str) -> list[str]:
    """For every cluster host, `name=<first address /etc/hosts gives it>` (or `name=missing`)."""
    entries = ctx.fact(facts.etc_hosts)
    return [f"{h.name}={(entries.get(h.name) or ['missing'])[0]}" for h in ctx.cluster.hosts]


@probe("bridge_sysctl")
def bridge_sysctl(ctx: HostContext, key: str) -> str:
    return ctx.fact(facts.bridge_sysctls).get(key, "missing")


@probe("persisted_sysctl")
def persisted_sysctl(ctx: HostContext, key: str) -> str:
    return ctx.fact(facts.persisted_sysctls).get(key, "not set")


# Round trips timed at once: at 50 hosts one after another they took 2.7 s of an 11 s run (profiled);
# eight at a time keep each round trip short on a 2-core controller, so the uncertainty stays small.
CLOCK_THREADS = 8


def _measure_offset(ctx: HostContext, name: str) -> tuple[float, float]:
    """(remote - local) seconds, and the half round trip as its uncertainty."""
    connection = ctx.session.transport.connection(name)
    connection.run("true")  # the connection is open before timing starts
    before = time.time()
    result = connection.run("date +%s.%N")
    after = time.time()
    if result.rc != 0:
        raise ProbeError(name, f"date failed: {result.stderr.strip()}")
    remote = facts.parse_epoch(Raw(result.stdout, result.stderr, result.rc))
    return remote - (before + after) / 2, (after - before) / 2


def _clock_offsets(ctx: HostContext, names: list[str]) -> dict[str, tuple[float, float] | ProbeError]:
    """Every named host's offset (or why it could not be measured), measured once per session."""

    def one(name: str) -> tuple[float, float] | ProbeError:
        try:
            return _measure_offset(ctx, name)
        except ProbeError as exc:
            return exc

    def measure_all() -> dict[str, tuple[float, float] | ProbeError]:
        with ThreadPoolExecutor(max_workers=max(1, min(CLOCK_THREADS, len(names))), thread_name_prefix="clock") as pool:
            return dict(zip(names, pool.map(one, names), strict=True))

    return ctx.session.shared("clock-offsets:" + ",".join(names), measure_all)


@probe("clock_deviation")
def clock_deviation(ctx: HostContext, _: str) -> Observation:
    """Seconds between this host's clock and the median of all hosts' clocks.

    The median is the reference, not any one host: a host that does not answer is left out of it
    (noted), and the other hosts' deviation is still measured.
    """
    ctx.require_reachable()
    measured = _clock_offsets(ctx, [h.name for h in ctx.reachable(ctx.cluster.hosts)])
    offsets: dict[str, tuple[float, float]] = {}
    for name, value in measured.items():
        if isinstance(value, ProbeError):  # as when measured one by one: the first host that failed
            raise value.again() if isinstance(value, HostUnreachable) else value
        offsets[name] = value
    median = statistics.median(offset for offset, _ in offsets.values())
    mine, uncertainty = offsets[ctx.host.name]
    deviation = round(abs(mine - median), 3)
    ctx.note_source(f"{ctx.host.name}$ date +%s.%N (timed round trip, ±{uncertainty:.3f}s)")
    diagnosis = [f"{name}: {offset:+.3f}s against the controller clock" for name, (offset, _) in offsets.items()]
    return ctx.observation(deviation, diagnosis)


@probe("time_sync")
def time_sync(ctx: HostContext, _: str) -> str:
    """The time source in place: a running sync daemon, or the shared kernel clock of a container."""
    state = ctx.fact(facts.time_sync)
    declared = ctx.cluster.time.sync
    running = sorted(unit for unit, active in state.services.items() if active == "active")
    if declared == "host-kernel":
        if state.virtualization in ("none", ""):
            return "no container: the host keeps its own clock"
        return "host-kernel"
    if running:
        names = {"chronyd": "chrony", "ntpd": "ntp", "ntpsec": "ntp", "systemd-timesyncd": "timesyncd"}
        return names.get(running[0], running[0])
    return "none"
