"""A verification session: the cluster, its connections, each host's cached facts, probe contexts.

One per pytest session (per xdist worker). Probes see hosts only through this object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubeproof.checks import Observation
from kubeproof.facts import Fact, FactRecord, HostFacts
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.transport import ConnectionOptions, HostUnreachable, ProbeError, Transport

T = TypeVar("T")

GATHERED_FORMAT = "kubeproof-gathered/1"

# The fact sets the fact modules register: a host's first batch gathers every fact its roles need
# for the catalogue groups the run selected, so later checks find them cached.
FactFactory = Callable[[Cluster, HostSpec], Iterable[Fact[Any]]]


@dataclass(frozen=True)
class FactSet:
    roles: frozenset[str]  # "all", or the host roles that have these facts
    groups: frozenset[str]  # the catalogue groups (Check.group) whose probes read them
    peer: bool  # which host gathers them depends on which hosts answer (round 2 of prefetch)
    factory: FactFactory

    def applies(self, host: HostSpec, groups: frozenset[str] | None) -> bool:
        wanted = groups is None or bool(self.groups & groups)
        return wanted and ("all" in self.roles or bool(self.roles & host.roles))


FACT_SETS: list[FactSet] = []


def fact_set(*roles: str, groups: Iterable[str], peer: bool = False) -> Callable[[FactFactory], FactFactory]:
    """Register a fact set. `groups` are the catalogue groups whose probes read it: a run that
    selects none of them does not gather it (a probe that still asks gets it in a batch of its own,
    which the lab's one-batch-per-host assertions catch)."""

    def register(factory: FactFactory) -> FactFactory:
        FACT_SETS.append(FactSet(frozenset(roles or ("all",)), frozenset(groups), peer, factory))
        return factory

    return register


def facts_for_host(
    cluster: Cluster, host: HostSpec, groups: frozenset[str] | None = None, peer: bool | None = None
) -> list[Fact[Any]]:
    """The host's facts for these catalogue groups (None: all), only peer sets or only the others."""
    facts: list[Fact[Any]] = []
    for entry in FACT_SETS:
        if entry.applies(host, groups) and (peer is None or entry.peer == peer):
            facts.extend(entry.factory(cluster, host))
    return facts


@dataclass
class Session:
    cluster: Cluster
    transport: Transport
    _host_facts: dict[str, HostFacts] = field(default_factory=dict)
    _shared: dict[str, Any] = field(default_factory=dict)
    _shared_errors: dict[str, ProbeError] = field(default_factory=dict)
    _unreachable: dict[str, HostUnreachable] = field(default_factory=dict)
    _peer_cluster: Cluster | None = None
    # The catalogue groups the run selected (None: all): prefetch gathers only their fact sets.
    groups: frozenset[str] | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def open(
        cls,
        cluster: Cluster,
        timeout: int = 15,
        options: ConnectionOptions | None = None,
        groups: Iterable[str] | None = None,
    ) -> Session:
        """A session whose connections give up on a host after ``timeout`` seconds (TCP connect, SSH
        banner, key exchange, login each); prefetch() then finds every host that does not answer.
        ``groups``: the catalogue groups the run checks (None: all), whose facts prefetch gathers."""
        transport = Transport(cluster, timeout=timeout, options=options or ConnectionOptions())
        return cls(cluster, transport, groups=None if groups is None else frozenset(groups))

    def fresh(self) -> Session:
        """A session over the same connections with nothing cached: what a re-probe sees.

        It keeps what this one knows of hosts that do not answer (they are not tried again) and
        the peer vantage points chosen at prefetch; facts and clients are gathered anew.
        """
        with self._lock:
            return Session(
                self.cluster,
                self.transport,
                _unreachable=dict(self._unreachable),
                _peer_cluster=self._peer_cluster,
                groups=self.groups,
            )

    # -- hosts that do not answer

    def unreachable(self, host: HostSpec | str) -> HostUnreachable | None:
        """Why this host was marked down for the session (None while it answers, or untried)."""
        name = host if isinstance(host, str) else host.name
        with self._lock:
            seen = self._unreachable.get(name)
        if seen is None and isinstance(self.transport, Transport):  # stand-in transports keep no record
            seen = self.transport.unreachable().get(name)
        return seen

    def require_reachable(self, host: HostSpec | str) -> None:
        """Raise the host's HostUnreachable if it was marked down (no new connection attempt)."""
        down = self.unreachable(host)
        if down is not None:
            raise down.again()

    def note_unreachable(self, error: HostUnreachable) -> None:
        """Keep a marked-down host's verdict (whichever transport or stand-in raised it)."""
        if error.marked_down:
            with self._lock:
                self._unreachable.setdefault(error.host, error)

    @property
    def peer_cluster(self) -> Cluster:
        """The cluster as peer probes choose their vantage points: the hosts that answered.

        Fixed once prefetch() knows every host's verdict, so the peer facts gathered then are the
        ones the probes ask for later; before that, the hosts not (yet) known to be down.
        """
        if self._peer_cluster is not None:
            return self._peer_cluster
        return self.cluster.restricted_to(h.name for h in self.cluster.hosts if self.unreachable(h) is None)

    # -- facts

    def facts(self, host: HostSpec | str) -> HostFacts:
        spec = self.cluster.host(host) if isinstance(host, str) else host
        with self._lock:
            facts = self._host_facts.get(spec.name)
            if facts is None:
                facts = HostFacts(
                    self.transport.connection(spec), lambda: facts_for_host(self.peer_cluster, spec, self.groups)
                )
                self._host_facts[spec.name] = facts
            return facts

    def prefetch(self) -> None:
        """Connect to every host and gather its fact batch, all hosts in parallel, in two rounds.

        Round 1 connects (a host that does not answer is found here, within one SSH timeout, and
        marked down for the session) and gathers every fact of the selected groups that does not
        depend on which hosts answer. Round 2, once every host has answered or not, gathers the peer probes (one host
        probing another's ports), their vantage points chosen among the hosts that answered: no
        batch waits on curl timeouts against a host that is down, and no peer probe is lost
        because its designated peer is. A round with nothing new for a host costs no round trip.

        Errors are kept per fact (an unreachable host errors its own checks later), never raised here.
        """
        hosts = list(self.cluster.hosts)

        def first_round(host: HostSpec) -> None:
            facts = self.facts(host)
            independent = facts_for_host(self.cluster, host, self.groups, peer=False)
            try:
                if independent:
                    facts.gather(independent)
                else:
                    self.transport.connection(host).connect()
            except HostUnreachable as exc:
                self.note_unreachable(exc)
                facts.fail_all(facts_for_host(self.cluster, host, self.groups), exc)
            except ProbeError as exc:
                facts.fail_all(independent, exc)

        in_parallel(first_round, hosts)
        answering = [h.name for h in hosts if self.unreachable(h) is None]
        with self._lock:
            self._peer_cluster = self.cluster.restricted_to(answering)

        def second_round(host: HostSpec) -> None:
            facts = self.facts(host)
            wanted = facts_for_host(self.peer_cluster, host, self.groups)
            try:
                facts.gather(wanted)
            except HostUnreachable as exc:
                self.note_unreachable(exc)
                facts.fail_all(wanted, exc)
            except ProbeError as exc:
                facts.fail_all(wanted, exc)

        in_parallel(second_round, [h for h in hosts if self.unreachable(h) is None])

    # -- one gathering shared between processes (xdist workers)

    def export_gathered(self) -> dict[str, Any]:
        """What prefetch() found, as JSON: each host's facts and errors, the hosts marked down and
        the peer vantage points. `load_gathered` in another process makes it that process's own."""
        with self._lock:
            hosts = {name: facts.export() for name, facts in self._host_facts.items()}
            peers = None if self._peer_cluster is None else [h.name for h in self._peer_cluster.hosts]
        return {
            "format": GATHERED_FORMAT,
            "cluster": [h.name for h in self.cluster.hosts],
            "unreachable": {name: down.cause for name, down in sorted(self.transport.unreachable().items())},
            "peer_hosts": peers,
            "hosts": hosts,
        }

    def load_gathered(self, document: Mapping[str, Any]) -> None:
        """Start from another process's prefetch: no batch is run again, no down host tried again."""
        if document.get("format") != GATHERED_FORMAT:
            raise ValueError(f"gathered facts: format {document.get('format')!r}, expected {GATHERED_FORMAT!r}")
        names = [h.name for h in self.cluster.hosts]
        if list(document.get("cluster", ())) != names:
            raise ValueError(f"gathered facts are of hosts {document.get('cluster')}, this session's are {names}")
        for name, cause in dict(document.get("unreachable", {})).items():
            self.note_unreachable(self.transport.mark_down(name, str(cause)))
        peers = document.get("peer_hosts")
        with self._lock:
            if peers is not None:
                self._peer_cluster = self.cluster.restricted_to(peers)
        for name, gathered in dict(document.get("hosts", {})).items():
            self.facts(name).preload(gathered)

    def shared(self, key: str, compute: Callable[[], T]) -> T:
        """A value computed once per session (a client, a gate); a ProbeError is cached too."""
        with self._lock:
            if key in self._shared_errors:
                error = self._shared_errors[key]
                raise error.again() if isinstance(error, HostUnreachable) else error
            if key not in self._shared:
                try:
                    self._shared[key] = compute()
                except ProbeError as exc:
                    self._shared_errors[key] = exc
                    raise
            return self._shared[key]  # type: ignore[no-any-return]

    def refresh(self) -> None:
        with self._lock:
            for facts in self._host_facts.values():
                facts.refresh()
            for value in self._shared.values():
                close = getattr(value, "close", None)
                if callable(close):
                    close()
            self._shared.clear()
            self._shared_errors.clear()

    def stats(self) -> dict[str, dict[str, Any]]:
        stats = self.transport.stats()
        for name, facts in self._host_facts.items():
            stats.setdefault(name, {})["fact_batches"] = facts.batches
            stats[name]["fact_misses"] = list(facts.misses)
        return stats

    def close(self) -> None:
        self.refresh()
        self.transport.close()

    def context(self, host: HostSpec) -> HostContext:
        return HostContext(self, host)


def in_parallel(work: Callable[[HostSpec], None], hosts: list[HostSpec]) -> None:
    """One thread per host (a host that does not answer costs one timeout, not one per host)."""
    if not hosts:
        return
    with ThreadPoolExecutor(max_workers=len(hosts), thread_name_prefix="kubeproof-host") as pool:
        list(pool.map(work, hosts))


class HostContext:
    """What a probe gets: its host, the cluster, facts of any host, and a record of what it used."""

    def __init__(self, session: Session, host: HostSpec):
        self.session = session
        self.host = host
        self.cluster = session.cluster
        self._used: list[FactRecord] = []
        self._sources: list[str] = []
        self._evidence: list[dict[str, Any]] = []
        self._notes: list[str] = []

    def fact(self, fact: Fact[T], host: HostSpec | str | None = None) -> T:
        target = self.host if host is None else (self.cluster.host(host) if isinstance(host, str) else host)
        facts = self.session.facts(target)
        try:
            return facts.get(fact)
        except HostUnreachable as exc:
            self.session.note_unreachable(exc)
            raise
        finally:
            record = facts.record(fact.name)
            if record is not None and record not in self._used:
                self._used.append(record)

    def note_source(self, source: str, evidence: dict[str, Any] | None = None) -> None:
        """Record a source that is not a host fact (an API call, a peer probe)."""
        if source not in self._sources:
            self._sources.append(source)
        if evidence is not None:
            self._evidence.append(evidence)

    # -- hosts that do not answer: rows that need one error with it, rows that need any host skip it

    def require_reachable(self, host: HostSpec | str | None = None) -> None:
        """Raise ``<host> unreachable: <reason>`` when the host (this one by default) is down."""
        self.session.require_reachable(self.host if host is None else host)

    def note_skipped(self, host: HostSpec | str | HostUnreachable, instead: str = "") -> None:
        """Say in the observation that a down host was left out (and what was done instead)."""
        down = host if isinstance(host, HostUnreachable) else self.session.unreachable(host)
        if down is not None:
            note = f"{down.host} skipped: {down.reason}" + (f"; {instead}" if instead else "")
            if note not in self._notes:
                self._notes.append(note)

    def reachable(self, hosts: Iterable[HostSpec]) -> list[HostSpec]:
        """The hosts that answer, for a probe that needs some of them; each one left out is noted."""
        answering = []
        for host in hosts:
            if self.session.unreachable(host) is None:
                answering.append(host)
            else:
                self.note_skipped(host)
        return answering

    def first_reachable(self, hosts: Sequence[HostSpec]) -> HostSpec:
        """The first of these hosts that answers (the ones before it noted as skipped); when none
        does, the first one's HostUnreachable. ``hosts`` must not be empty."""
        first_down: HostUnreachable | None = None
        for host in hosts:
            down = self.session.unreachable(host)
            if down is None:
                return host
            self.note_skipped(down)
            first_down = first_down or down
        if first_down is None:
            raise ValueError("first_reachable() needs at least one host")
        raise first_down.again()

    def observation(self, value: Any, diagnosis: Iterable[str] = (), seen: Iterable[str] = ()) -> Observation:
        sources = [f"{r.host}$ {r.command}" for r in self._used] + self._sources
        evidence = [r.evidence() for r in self._used] + self._evidence
        return Observation(value, tuple(sources), tuple(evidence), (*diagnosis, *self._notes), tuple(seen))


def inventory_context(cluster: Cluster, host: HostSpec) -> dict[str, Any]:
    """Values a catalogue row may refer to as `$name` in its expected value."""
    masters = cluster.masters
    return {
        "host_name": host.name,
        "host_address": host.address,
        "etcd_name": host.etcd_name,
        "hosts": [h.name for h in cluster.hosts],
        "addresses": [h.address for h in cluster.hosts],
        "etcd_names": [h.etcd_name for h in cluster.etcd_members],
        "etcd_addresses": [h.address for h in cluster.etcd_members],
        "etcd_initial_cluster": cluster.etcd_initial_cluster,
        "etcd_client_urls": cluster.etcd_client_urls,
        # this member's own URLs, and the initial cluster as `name=peer URL` items (ETCD-03..05, 08)
        "etcd_peer_url": f"https://{host.address}:2380",
        "etcd_client_url": f"https://{host.address}:2379",
        "etcd_initial_cluster_entries": cluster.etcd_initial_cluster.split(",") if cluster.etcd_members else [],
        "master_addresses": [h.address for h in masters],
        "master_address": masters[0].address if masters else None,
        # MASTER-08/09 lease holders, NODE-02/07 kubeconfig servers, NODE-06 the kubelet's user
        "master_names": [h.name for h in masters],
        "apiserver_urls": [
            f"https://{address}:6443"
            for address in [h.address for h in masters] + list(cluster.network.load_balancer_addresses)
        ],
        "node_user": f"system:node:{host.name}",
        "worker_names": [h.name for h in cluster.workers],
        "pod_cidr": cluster.network.pod_cidr,
        "service_cidr": cluster.network.service_cidr,
        "service_first_address": cluster.network.service_first_address,
        "kube_proxy_mode": cluster.network.kube_proxy_mode,
        "kubernetes_version": cluster.versions.kubernetes,
        "max_skew_seconds": cluster.time.max_skew_seconds,
        "cert_budget_days": 30,
        "inventory_addresses": sorted(
            {h.address for h in cluster.hosts} | set(cluster.network.load_balancer_addresses)
        ),
        "time_sync": cluster.time.sync,
        "hosts_entries": [f"{h.name}={h.address}" for h in cluster.hosts],
        "apiserver_san_ips": sorted(
            {cluster.network.service_first_address, "127.0.0.1", *(h.address for h in masters)}
            | set(cluster.network.load_balancer_addresses)
        ),
        "apiserver_san_dns": [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster",
            "kubernetes.default.svc.cluster.local",
        ],
    }
