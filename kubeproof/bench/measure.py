"""One measured verify run: a pytest subprocess, its wall, its rows, its transport counts, and the
peak memory of its process tree (the controller and any xdist workers), sampled from /proc."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The host-level groups: what a host without a running cluster can answer (files, certificates,
# kernel settings, the clock). SEC-04/SEC-05 are SEC's file rows; SEC-01..03 need etcd and the API,
# and PKI-K-04's kube-proxy rows read kube-proxy.kubeconfig, which the nodes phase writes.
HOST_LEVEL_SUITES: tuple[str, ...] = (
    "kubeproof.suites.test_01_env",
    "kubeproof.suites.test_02_pki_etcd",
    "kubeproof.suites.test_06_pki_k8s",
    "kubeproof.suites.test_11_security",
)
HOST_LEVEL_SELECTION = "not SEC-01 and not SEC-02 and not SEC-03 and not kube-proxy"

MODES: dict[str, tuple[str, ...]] = {
    "serial": (),
    "auto": ("-n", "auto"),  # what kubeproof chooses (fixtures/gathering.auto_workers)
    "n2": ("-n", "2"),  # two workers whatever the size: what sharing the gathering buys
    "naive": ("-p", "kubeproof.bench.naive"),
}
SAMPLE_SECONDS = 0.05

_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")
_HOST_STATS = re.compile(r"^(\S+): (\d+) SSH connections, (\d+) remote commands, (\d+) fact batches", re.M)


@dataclass(frozen=True)
class HostCounts:
    connections: int
    commands: int
    batches: int


@dataclass(frozen=True)
class Measurement:
    hosts: int
    mode: str
    wall: float
    peak_rss_mb: float
    outcomes: dict[str, int]
    per_host: dict[str, HostCounts] = field(default_factory=dict)
    exit_code: int = 0
    tail: str = ""  # the run's last lines, for a run that did not finish as a run should

    @property
    def rows(self) -> int:
        return sum(self.outcomes.values())

    def mean(self, attribute: str) -> float:
        values = [getattr(counts, attribute) for counts in self.per_host.values()]
        return sum(values) / len(values) if values else 0.0


def process_tree_rss_kb(root: int) -> int:
    """Resident memory of `root` and all its descendants now (kB); processes gone meanwhile count 0."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the fields after the last ')' are fixed
        fields = text.rsplit(")", 1)[-1].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, ()))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


def parse_outcomes(output: str) -> dict[str, int]:
    """The counts of pytest's last summary line ("3 failed, 350 passed, 2 skipped in 4.1s")."""
    lines = [line for line in output.splitlines() if " in " in line and _COUNTS.search(line)]
    if not lines:
        return {}
    counts: dict[str, int] = {}
    for number, word in _COUNTS.findall(lines[-1]):
        key = "error" if word.startswith("error") else word
        counts[key] = counts.get(key, 0) + int(number)
    return counts


def parse_host_counts(output: str) -> dict[str, HostCounts]:
    """The kubeproof section's per-host transport line."""
    return {
        host: HostCounts(int(connections), int(commands), int(batches))
        for host, connections, commands, batches in _HOST_STATS.findall(output)
    }


def measure_verify(
    cluster_file: Path, hosts: int, mode: str, suites: Sequence[str] = HOST_LEVEL_SUITES, selection: str = ""
) -> Measurement:
    argv = [sys.executable, "-m", "pytest", "--pyargs", *suites, "--cluster", str(cluster_file)]
    argv += ["-p", "no:cacheprovider", "-q", "-o", "addopts=", *MODES[mode]]
    if selection:
        argv += ["-k", selection]
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, process_tree_rss_kb(process.pid))
            stop.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    wall = time.monotonic() - started
    stop.set()
    sampler.join()
    return Measurement(
        hosts=hosts,
        mode=mode,
        wall=wall,
        peak_rss_mb=peak / 1024,
        outcomes=parse_outcomes(output),
        per_host=parse_host_counts(output),
        exit_code=process.returncode,
        tail="\n".join(output.splitlines()[-15:]),
    )
