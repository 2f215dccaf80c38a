"""The naive design, as the benchmark's baseline: one remote command per fact a check asks for.

The same probes, catalogue rows and comparators as the suites, over the same transport
(testinfra's paramiko backend); what it lacks is what kubeproof's facts layer adds: no batch per
host, no cache across rows, no prefetch. Loaded with `-p kubeproof.bench.naive` by the benchmark
only; it swaps the session the plugin opens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import pytest

from kubeproof.facts import Fact, HostFacts
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.session import Session
from kubeproof.transport import ConnectionOptions

T = TypeVar("T")


class NaiveHostFacts(HostFacts):
    """Each fact asked for runs as a remote command of its own, again every time it is asked for."""

    def get(self, fact: Fact[T]) -> T:
        self.refresh()
        self.gather([fact])
        return super().get(fact)


class NaiveSession(Session):
    def facts(self, host: HostSpec | str) -> HostFacts:
        spec = self.cluster.host(host) if isinstance(host, str) else host
        with self._lock:
            facts = self._host_facts.get(spec.name)
            if facts is None:
                facts = NaiveHostFacts(self.transport.connection(spec), lambda: ())
                self._host_facts[spec.name] = facts
            return facts

    def prefetch(self) -> None:
        """Nothing ahead of time: each row reaches its hosts itself."""


def open_naive_session(
    config: pytest.Config, cluster: Cluster, options: ConnectionOptions, groups: Iterable[str] | None = None
) -> Session:
    """The plugin's open_session, naively: the selected groups do not matter (nothing is prefetched)."""
    return NaiveSession.open(cluster, timeout=config.getoption("ssh_timeout"), options=options, groups=groups)


def pytest_configure(config: pytest.Config) -> None:
    from kubeproof.fixtures import plugin

    setattr(plugin, "open_session", open_naive_session)  # noqa: B010 -- the one seam this baseline swaps
