"""Fact sets: which catalogue groups read them (prefetch gathers only the selected groups' sets)
and which depend on the hosts that answer (gathered in prefetch's second round)."""

from __future__ import annotations

from kubeproof.checks import load_catalogue
from kubeproof.fixtures.gathering import groups_of_node_ids
from kubeproof.inventory import parse_cluster_text
from kubeproof.probes import load_probes
from kubeproof.session import FACT_SETS, facts_for_host

CLUSTER = parse_cluster_text(
    """\
name: lab
hosts:
  - {name: master01, address: 192.168.61.17, roles: [master, etcd], etcd_name: etcd01}
  - {name: node01, address: 192.168.61.18, roles: [node, etcd], etcd_name: etcd02}
  - {name: node02, address: 192.168.61.19, roles: [node, etcd], etcd_name: etcd03}
  - {name: node03, address: 192.168.61.23, roles: [node]}
"""
)

load_probes()


def _names(host: str, groups: frozenset[str] | None, peer: bool | None = None) -> set[str]:
    return {fact.name for fact in facts_for_host(CLUSTER, CLUSTER.host(host), groups, peer)}


def test_every_catalogue_group_has_fact_sets_and_every_set_names_known_groups() -> None:
    groups = {row.group for row in load_catalogue()}
    named = set().union(*(entry.groups for entry in FACT_SETS))
    assert named <= groups, named - groups
    assert groups <= named, groups - named


def test_a_run_of_some_groups_gathers_only_their_sets() -> None:
    everything = _names("node03", None)
    env = _names("node03", frozenset({"ENV"}))
    assert "hostname" in env and env < everything
    assert not any(name.startswith(("node", "units", "kubeconfig")) for name in env), env
    # the node facts (kubelet, units, versions) are gathered for NODE, not for the host-level groups
    host_level = _names("node03", frozenset({"ENV", "PKI-E", "PKI-K", "SEC"}))
    assert _names("node03", frozenset({"NODE"})) - host_level
    assert _names("node03", frozenset()) == set()


def test_peer_sets_are_exactly_those_that_depend_on_which_hosts_answer() -> None:
    """A non-peer fact is the same remote work whichever other host is down; prefetch gathers
    those in its first round, before it knows which hosts answer."""
    for host in CLUSTER.hosts:
        independent = _names(host.name, None, peer=False)
        for other in CLUSTER.hosts:
            if other.name == host.name:
                continue
            without = CLUSTER.restricted_to(h.name for h in CLUSTER.hosts if h.name != other.name)
            same = {f.name for f in facts_for_host(without, host, None, peer=False)}
            assert same == independent, (host.name, other.name)
    moving = [
        entry.factory.__name__
        for entry in FACT_SETS
        if entry.peer
        and any(
            {f.name for f in entry.factory(CLUSTER, h)}
            != {f.name for f in entry.factory(CLUSTER.restricted_to([h.name]), h)}
            for h in CLUSTER.hosts
        )
    ]
    assert sorted(moving) == sorted(entry.factory.__name__ for entry in FACT_SETS if entry.peer)


def test_the_groups_of_node_ids_a_worker_reports() -> None:
    """What the xdist controller gathers for: the groups of the rows a worker collected."""
    ids = [
        "kubeproof/suites/test_01_env.py::test_environment[ENV-04:fstab@node01]",
        "kubeproof/suites/test_02_pki_etcd.py::test_pki_e[PKI-E-03@master01]",
        "kubeproof/suites/test_11_security.py::test_sec[SEC-02@master01]",
        "tests/test_mine.py::test_x[param]",  # a user's own test beside the suites: no group
        "tests/test_mine.py::test_y",
    ]
    assert groups_of_node_ids(ids) == {"ENV", "PKI-E", "SEC"}
    assert groups_of_node_ids([]) == frozenset()
