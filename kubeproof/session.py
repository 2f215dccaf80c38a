"""A verification session: the cluster, its connections, each host's cached facts, probe contexts.

One per pytest session (per xdist worker). Probes see hosts only through this object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubeproof.checks import Observation
from kubeproof.facts import Fact, FactRecord, HostFacts
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.transport import ConnectionOptions, ProbeError, Transport

T = TypeVar("T")

# (roles that need them, factory) pairs registered by the fact modules; a host's first batch
# gathers every fact its roles need, so later checks find them cached.
FactFactory = Callable[[Cluster, HostSpec], Iterable[Fact[Any]]]
FACT_SETS: list[tuple[frozenset[str], FactFactory]] = []


def fact_set(*roles: str) -> Callable[[FactFactory], FactFactory]:
    def register(factory: FactFactory) -> FactFactory:
        FACT_SETS.append((frozenset(roles or ("all",)), factory))
        return factory

    return register


def facts_for_host(cluster: Cluster, host: HostSpec) -> list[Fact[Any]]:
    facts: list[Fact[Any]] = []
    for roles, factory in FACT_SETS:
        if "all" in roles or roles & host.roles:
            facts.extend(factory(cluster, host))
    return facts


@dataclass
class Session:
    cluster: Cluster
    transport: Transport
    _host_facts: dict[str, HostFacts] = field(default_factory=dict)
    _shared: dict[str, Any] = field(default_factory=dict)
    _shared_errors: dict[str, ProbeError] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def open(cls, cluster: Cluster, timeout: int = 15, options: ConnectionOptions | None = None) -> Session:
        return cls(cluster, Transport(cluster, timeout=timeout, options=options or ConnectionOptions()))

    def facts(self, host: HostSpec | str) -> HostFacts:
        spec = self.cluster.host(host) if isinstance(host, str) else host
        with self._lock:
            facts = self._host_facts.get(spec.name)
            if facts is None:
                facts = HostFacts(self.transport.connection(spec), lambda: facts_for_host(self.cluster, spec))
                self._host_facts[spec.name] = facts
            return facts

    def prefetch(self) -> None:
        """Gather every host's fact batch at once, in parallel (a batch is ~90 ms to ~2 s per host).

        Errors are kept per fact (an unreachable host errors its own checks later), never raised here.
        """
        from concurrent.futures import ThreadPoolExecutor

        def gather(host: HostSpec) -> None:
            facts = self.facts(host)
            try:
                facts.gather(facts_for_host(self.cluster, host))
            except ProbeError as exc:
                facts.fail_all(facts_for_host(self.cluster, host), exc)

        with ThreadPoolExecutor(max_workers=max(1, len(self.cluster.hosts))) as pool:
            list(pool.map(gather, self.cluster.hosts))

    def shared(self, key: str, compute: Callable[[], T]) -> T:
        """A value computed once per session (a client, a gate); a ProbeError is cached too."""
        with self._lock:
            if key in self._shared_errors:
                raise self._shared_errors[key]
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
        return stats

    def close(self) -> None:
        self.refresh()
        self.transport.close()

    def context(self, host: HostSpec) -> HostContext:
        return HostContext(self, host)


class HostContext:
    """What a probe gets: its host, the cluster, facts of any host, and a record of what it used."""

    def __init__(self, session: Session, host: HostSpec):
        self.session = session
        self.host = host
        self.cluster = session.cluster
        self._used: list[FactRecord] = []
        self._sources: list[str] = []
        self._evidence: list[dict[str, Any]] = []

    def fact(self, fact: Fact[T], host: HostSpec | str | None = None) -> T:
        target = self.host if host is None else (self.cluster.host(host) if isinstance(host, str) else host)
        facts = self.session.facts(target)
        try:
            return facts.get(fact)
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

    def observation(self, value: Any, diagnosis: Iterable[str] = ()) -> Observation:
        sources = [f"{r.host}$ {r.command}" for r in self._used] + self._sources
        evidence = [r.evidence() for r in self._used] + self._evidence
        return Observation(value, tuple(sources), tuple(evidence), tuple(diagnosis))


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
