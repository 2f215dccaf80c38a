"""ETCD probes and catalogue rows, offline: on a session whose facts are captures from the lab and
the guide (no SSH, no etcd), with etcd's API answers given as a cluster view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubeproof.checks import CATALOGUE_DIR, NotApplicable, load_catalogue
from kubeproof.clients import CredentialFiles, EtcdClients
from kubeproof.facts import Fact
from kubeproof.facts import etcd as etcd_facts
from kubeproof.facts.etcd import expand_exec, exposure_peer, parse_env_file, parse_unit_text
from kubeproof.inventory import Cluster
from kubeproof.probes import PROBES, load_probes
from kubeproof.probes import etcd as etcd_probes
from kubeproof.session import Session, inventory_context
from kubeproof.transport import ProbeError
from tests.offline.facts_samples import (
    EXPOSURE_REFUSED,
    GUIDE_ETCD_ENV,
    GUIDE_ETCD_UNIT,
    GUIDE_NODE01_COPY,
    LAB_ETCD_SERVICE_NODE01,
    LAB_EXPOSURE_FROM_MASTER01,
    offline_session,
    service_capture,
)
from tests.offline.facts_samples import cluster as cluster  # the module-scoped fixture

# ----------------------------------------------------------------------------- catalogue


def test_catalogue_rows_load_and_cover_every_id() -> None:
    rows = load_catalogue(CATALOGUE_DIR, known_probes=load_probes())
    ids = {r.id for r in rows}
    wanted = {f"ETCD-{n:02d}" for n in range(1, 12)} | {"DOCKER-01", "DOCKER-02", "SEC-01"}
    wanted |= {f"FLANNEL-{n:02d}" for n in range(1, 9)}
    assert wanted <= ids
    sec01 = [r for r in rows if r.id == "SEC-01"]
    assert sec01 and all(r.kind == "finding" and r.section == "SEC" for r in sec01)


def test_expected_values_resolve_per_host(cluster: Cluster) -> None:
    rows = {r.key: r for r in load_catalogue(CATALOGUE_DIR, known_probes=load_probes())}
    context = inventory_context(cluster, cluster.host("node01"))
    assert rows["ETCD-03:client-only"].expected_value(context) == [
        "https://192.168.61.18:2379",
        "http://127.0.0.1:2379",
    ]
    assert rows["ETCD-05"].expected_value(context) == [
        "etcd01=https://192.168.61.17:2380",
        "etcd02=https://192.168.61.18:2380",
        "etcd03=https://192.168.61.22:2380",
    ]


# ----------------------------------------------------------------------------- probes on captured facts


def _etcd_outputs(env_by_host: dict[str, str], unit: str) -> dict[str, dict[Fact[Any], str | tuple[str, str, int]]]:
    return {host: {etcd_facts.etcd_service: service_capture(env, unit, None, {})} for host, env in env_by_host.items()}


def _guide_env(name: str, address: str) -> str:
    return GUIDE_ETCD_ENV.replace('ETCD_NAME="etcd01"', f'ETCD_NAME="{name}"').replace(
        'ETCD_LISTEN_PEER_URLS="https://192.168.61.17', f'ETCD_LISTEN_PEER_URLS="https://{address}'
    )


def test_guide_node_copy_fails_etcd_02_04_05(cluster: Cluster) -> None:
    session = offline_session(
        cluster,
        _etcd_outputs(
            {"master01": GUIDE_ETCD_ENV, "node01": GUIDE_NODE01_COPY, "node02": GUIDE_ETCD_ENV},
            GUIDE_ETCD_UNIT,
        ),
    )
    node01 = session.context(cluster.host("node01"))
    assert PROBES["etcd_setting"](node01, "name") == "etcd01"  # ETCD-02: not etcd02
    shared = PROBES["etcd_name_shared_with"](node01, "")
    assert shared.value == ["master01 (name=etcd01)", "node02 (name=etcd01)"]
    assert shared.seen == (
        "node01 name=etcd01",
        "master01 name=etcd01 = etcd01 here",
        "node02 name=etcd01 = etcd01 here",
    )
    assert PROBES["etcd_urls"](node01, "advertise-client-urls").value == ["https://192.168.61.17:2379"]  # ETCD-04
    entries = PROBES["etcd_initial_cluster"](node01, "")
    assert entries[-1] == 'etcd03=https://192.168.61.22:2380ETCD_INITIAL_CLUSTER_TOKEN="etcd-cluster"'  # ETCD-05
    assert PROBES["etcd_initial_cluster_differs"](node01, "")  # ETCD-05:identical
    # ETCD-03: the guide's unit adds the loopback listener to the env file's URL
    assert PROBES["etcd_urls"](node01, "listen-client-urls").value == [
        "https://192.168.61.18:2379",
        "http://127.0.0.1:2379",
    ]
    master = session.context(cluster.host("master01"))
    assert PROBES["etcd_initial_cluster_name"](master, "") == "etcd01"
    assert PROBES["etcd_tls_settings"](master, "")[2] == "trusted-ca-file=/opt/etcd/ssl/ca.pem"


def test_running_drift_and_not_running(cluster: Cluster) -> None:
    running_env = {k: v for k, v in parse_env_file(GUIDE_ETCD_ENV).items()}
    running_env["ETCD_ADVERTISE_CLIENT_URLS"] = "https://192.168.61.99:2379"
    unit = GUIDE_ETCD_UNIT.replace("${ETCD_ADVERTISE_CLIENT_URLS}", "${ETCD_ADVERTISE_CLIENT_URLS}")
    argv = expand_exec(parse_unit_text(unit).exec_start, running_env)
    capture = service_capture(GUIDE_ETCD_ENV, unit, argv, {})
    session = offline_session(cluster, {"master01": {etcd_facts.etcd_service: capture}})
    drift = PROBES["etcd_running_drift"](session.context(cluster.host("master01")), "")
    assert drift.value == [
        "advertise-client-urls: configured 'https://192.168.61.17:2379', running 'https://192.168.61.99:2379'"
    ]
    stopped = offline_session(cluster, _etcd_outputs({"master01": GUIDE_ETCD_ENV}, GUIDE_ETCD_UNIT))
    with pytest.raises(ProbeError, match="prerequisite failed: etcd is not running"):
        PROBES["etcd_running_drift"](stopped.context(cluster.host("master01")), "")


def _lab_etcd_outputs(cluster: Cluster) -> dict[str, dict[Fact[Any], str | tuple[str, str, int]]]:
    """Every member's service as node01's capture, its own name and address swapped in."""
    outputs: dict[str, dict[Fact[Any], str | tuple[str, str, int]]] = {}
    for host in cluster.etcd_members:
        capture = LAB_ETCD_SERVICE_NODE01.replace("192.168.61.18:", host.address + ":")
        capture = capture.replace("etcd02=https://" + host.address, "etcd02=https://192.168.61.18")
        capture = capture.replace('"etcd02"', f'"{host.etcd_name}"').replace("=etcd02\n", f"={host.etcd_name}\n")
        outputs[host.name] = {etcd_facts.etcd_service: capture}
    for host in cluster.hosts:
        exposure = etcd_facts.etcd_exposure(cluster, host)
        if exposure is not None:
            target = next(m for m in cluster.etcd_members if exposure_peer(cluster, m) == host)
            outputs[host.name][exposure] = LAB_EXPOSURE_FROM_MASTER01.replace("192.168.61.22", target.address)
    return outputs


@pytest.mark.parametrize("member", ["master01", "node01", "node02"])
def test_the_labs_members_pass_the_settings_rows(cluster: Cluster, member: str) -> None:
    session = offline_session(cluster, _lab_etcd_outputs(cluster))
    host = cluster.host(member)
    ctx = session.context(host)
    context = inventory_context(cluster, host)
    rows = [r for r in load_catalogue(CATALOGUE_DIR, known_probes=load_probes()) if r.id.startswith(("ETCD", "SEC-01"))]
    offline_probes = {
        "etcd_setting", "etcd_urls", "etcd_initial_cluster_name", "etcd_name_shared_with", "etcd_initial_cluster",
        "etcd_initial_cluster_differs", "etcd_token_differs", "etcd_unit_property", "etcd_service_state",
        "etcd_tls_settings", "etcd_running_drift", "etcd_plaintext", "etcd_without_client_cert",
        "etcd_client_cert_auth", "etcd_plaintext_listeners",
    }  # fmt: skip
    checked = 0
    for row in rows:
        name, _, argument = row.probe.partition("(")
        if name not in offline_probes or "cluster" in row.roles:
            continue
        result = PROBES[name](ctx, argument.rstrip(")"))
        value = result.value if hasattr(result, "value") else result
        assert row.holds(value, context), f"{row.key}@{member}: {value!r}"
        checked += 1
    assert checked >= 20


def _member_answer(cluster: Cluster, name: str, **fields: Any) -> etcd_probes.MemberAnswer:
    host = cluster.host(name)
    return etcd_probes.MemberAnswer(host, f"https://{host.address}:2379", **fields)


def _listed(cluster: Cluster) -> list[etcd_probes.ListedMember]:
    return [
        etcd_probes.ListedMember(
            i + 1, h.etcd_name or "", (f"https://{h.address}:2380",), (f"https://{h.address}:2379",)
        )
        for i, h in enumerate(cluster.etcd_members)
    ]


def _api_session(cluster: Cluster, answers: dict[str, etcd_probes.MemberAnswer], **facts: Any) -> Session:
    session = offline_session(cluster, facts.get("outputs", {}))
    session._shared["etcd-clients"] = EtcdClients({}, CredentialFiles(Path("/nonexistent")))
    session._shared["etcd-cluster-view"] = etcd_probes.ClusterView(answers)
    return session


def test_one_member_down_fails_agreement_and_names_it(cluster: Cluster) -> None:
    listed = _listed(cluster)
    healthy = {"member_id": 0, "leader_id": 2, "raft_term": 7, "version": "3.4.23", "members": listed}
    answers = {
        "master01": _member_answer(cluster, "master01", raft_index=120, **{**healthy, "member_id": 1}),
        "node01": _member_answer(cluster, "node01", raft_index=121, **{**healthy, "member_id": 2}),
        "node02": _member_answer(cluster, "node02", error="UNAVAILABLE: failed to connect to all addresses"),
    }
    outputs = {"node02": {etcd_facts.etcd_service: service_capture(GUIDE_ETCD_ENV, GUIDE_ETCD_UNIT, None, {})}}
    session = _api_session(cluster, answers, outputs=outputs)
    master, node02 = session.context(cluster.host("master01")), session.context(cluster.host("node02"))
    leader = PROBES["etcd_leader_problems"](master, "")
    assert leader.value == ["etcd03 did not answer: UNAVAILABLE: failed to connect to all addresses"]
    assert PROBES["etcd_term_problems"](master, "").value == leader.value
    assert PROBES["etcd_raft_index_spread"](master, "").value == 1
    assert PROBES["etcd_member_list"](master, "").value == sorted(
        inventory_context(cluster, cluster.host("master01"))["etcd_initial_cluster_entries"]
    )
    state = PROBES["etcd_member_state"](node02, "")
    assert state.value.startswith("not answering: UNAVAILABLE") and any("etcd.service" in d for d in state.diagnosis)
    assert PROBES["etcd_member_state"](master, "").value == "started"
    health = PROBES["etcd_api_health"](node02, "")
    assert health.value.startswith("unhealthy: UNAVAILABLE")
    with pytest.raises(ProbeError, match="prerequisite failed: etcd member etcd03 does not answer"):
        PROBES["etcd_replication_problems"](node02, "")


def test_a_leaderless_member_answers_status_but_not_reads(cluster: Cluster) -> None:
    """A partitioned member (seen on the lab): Status answers with leader 0, Alarm and reads time out."""
    listed = _listed(cluster)
    answers = {
        "master01": _member_answer(cluster, "master01", member_id=1, leader_id=1, raft_term=9, members=listed),
        "node01": _member_answer(cluster, "node01", member_id=2, leader_id=1, raft_term=9, members=listed),
        "node02": _member_answer(
            cluster,
            "node02",
            member_id=3,
            leader_id=0,
            raft_term=74,
            members=listed,
            alarms_error="DEADLINE_EXCEEDED: Deadline Exceeded",
            read_error="DEADLINE_EXCEEDED: Deadline Exceeded",
        ),
    }
    outputs = {"node02": {etcd_facts.etcd_service: service_capture(GUIDE_ETCD_ENV, GUIDE_ETCD_UNIT, None, {})}}
    session = _api_session(cluster, answers, outputs=outputs)
    master, node02 = session.context(cluster.host("master01")), session.context(cluster.host("node02"))
    assert PROBES["etcd_member_state"](node02, "").value == "started"
    assert PROBES["etcd_api_health"](node02, "").value == "unhealthy: DEADLINE_EXCEEDED: Deadline Exceeded"
    assert PROBES["etcd_leader_problems"](master, "").value == ["no leader according to etcd03"]
    assert PROBES["etcd_term_problems"](master, "").value == ["raft terms differ: etcd01=9, etcd02=9, etcd03=74"]
    alarms = PROBES["etcd_alarms"](master, "")
    assert alarms.value == []
    assert alarms.seen == (
        "alarm list read through etcd01: 0 alarms",
        "member etcd01: no alarm",
        "member etcd02: no alarm",
        "member etcd03: no alarm",
    )


def test_leaders_disagree(cluster: Cluster) -> None:
    listed = _listed(cluster)
    answers = {
        name: _member_answer(cluster, name, member_id=i + 1, leader_id=leader, raft_term=term, members=listed)
        for i, (name, leader, term) in enumerate([("master01", 1, 3), ("node01", 2, 4), ("node02", 0, 4)])
    }
    session = _api_session(cluster, answers)
    problems = PROBES["etcd_leader_problems"](session.context(cluster.host("master01")), "").value
    assert problems == [
        "no leader according to etcd03",
        "members disagree on the leader: etcd01 sees etcd01, etcd02 sees etcd02, etcd03 sees 0",
    ]
    assert PROBES["etcd_term_problems"](session.context(cluster.host("master01")), "").value == [
        "raft terms differ: etcd01=3, etcd02=4, etcd03=4"
    ]


def test_a_member_in_a_cluster_of_its_own_is_named_with_its_journal(cluster: Cluster) -> None:
    """etcd03 bootstrapped alone: it leads itself in another cluster; the two others agree."""
    listed = _listed(cluster)
    answers = {
        "master01": _member_answer(cluster, "master01", member_id=1, cluster_id=0xA1, leader_id=1, members=listed),
        "node01": _member_answer(cluster, "node01", member_id=2, cluster_id=0xA1, leader_id=1, members=listed),
        "node02": _member_answer(cluster, "node02", member_id=9, cluster_id=0xB2, leader_id=9, members=listed[2:]),
    }
    outputs = {"node02": {etcd_facts.etcd_service: service_capture(GUIDE_ETCD_ENV, GUIDE_ETCD_UNIT, None, {})}}
    session = _api_session(cluster, answers, outputs=outputs)
    session.facts(cluster.host("node02")).get(etcd_facts.etcd_service)  # gathered, as at session start
    leader = PROBES["etcd_leader_problems"](session.context(cluster.host("master01")), "")
    assert leader.value == [
        "members disagree on the leader: etcd01 sees etcd01, etcd02 sees etcd01, etcd03 sees 9",
        "leader 9 is not in the member list",
        "members belong to different clusters: etcd01 in cluster a1, etcd02 in cluster a1, etcd03 in cluster b2",
    ]
    odd = leader.diagnosis.index("node02 (etcd03):")
    assert leader.diagnosis[odd + 1].startswith("etcd.service: ")  # its service state, then its journal


def test_one_cluster_names_no_split(cluster: Cluster) -> None:
    listed = _listed(cluster)
    answers = {
        name: _member_answer(cluster, name, member_id=i + 1, cluster_id=0xA1, leader_id=1, members=listed)
        for i, name in enumerate(["master01", "node01", "node02"])
    }
    session = _api_session(cluster, answers)
    assert PROBES["etcd_leader_problems"](session.context(cluster.host("master01")), "").value == []


def _exposure_outputs(cluster: Cluster, lines: str) -> dict[str, dict[Fact[Any], str | tuple[str, str, int]]]:
    outputs: dict[str, dict[Fact[Any], str | tuple[str, str, int]]] = {}
    for host in cluster.hosts:
        fact = etcd_facts.etcd_exposure(cluster, host)
        if fact is not None:
            outputs[host.name] = {fact: lines}
    return outputs


def test_peer_view_plaintext_and_missing_certificate(cluster: Cluster) -> None:
    served = (
        "http://192.168.61.17:2379/version 0 200\n"
        "https://192.168.61.17:2379/version 0 200\n"
        "http://192.168.61.17:2380/version 52 curl: (52) Empty reply from server 000\n"
        "https://192.168.61.17:2380/version 56 curl: (56) OpenSSL SSL_read: error:0A00045C:SSL routines::"
        "tlsv13 alert certificate required, errno 0 000\n"
    )
    outputs = _exposure_outputs(cluster, served)
    outputs["master01"] = {
        etcd_facts.etcd_service: service_capture(
            GUIDE_ETCD_ENV.replace(
                'ETCD_LISTEN_CLIENT_URLS="https://192.168.61.17:2379"',
                'ETCD_LISTEN_CLIENT_URLS="https://192.168.61.17:2379,http://192.168.61.17:2379"',
            ),
            GUIDE_ETCD_UNIT,
            None,
            {},
        )
    }
    session = offline_session(cluster, outputs)
    master = session.context(cluster.host("master01"))
    plain = PROBES["etcd_plaintext"](master, "2379")
    assert plain.value == "served over plain http (HTTP 200)"
    assert plain.diagnosis[0] == "from node01: http://192.168.61.17:2379/version: HTTP 200"
    assert PROBES["etcd_plaintext"](master, "2380").value == "refused"
    # the guide's unit sets --trusted-ca-file: etcd should verify clients, and ETCD-10 applies
    accepted = PROBES["etcd_without_client_cert"](master, "2379")
    assert accepted.value == "accepted without a client certificate (HTTP 200)"
    assert accepted.diagnosis[-1] == "client-cert-auth: not set; trusted-ca-file: /opt/etcd/ssl/ca.pem"
    sec01 = PROBES["etcd_client_cert_auth"](master, "2379")
    assert sec01.value == "off"
    assert sec01.diagnosis[-1].endswith("from a peer host: accepted without a client certificate (HTTP 200)")
    assert PROBES["etcd_client_cert_auth"](master, "2380").diagnosis[-1].endswith("from a peer host: refused")
    listeners = PROBES["etcd_plaintext_listeners"](master, "")
    assert listeners.value == ["http://192.168.61.17:2379"]
    assert "listen-client-urls http://192.168.61.17:2379 (configured): plain http" in listeners.seen


def test_no_trusted_ca_and_no_client_cert_auth_is_not_applicable_to_etcd_10(cluster: Cluster) -> None:
    unit = GUIDE_ETCD_UNIT.replace("--trusted-ca-file=/opt/etcd/ssl/ca.pem \\\n", "")
    outputs = _exposure_outputs(cluster, EXPOSURE_REFUSED)
    outputs["master01"] = {etcd_facts.etcd_service: service_capture(GUIDE_ETCD_ENV, unit, None, {})}
    session = offline_session(cluster, outputs)
    master = session.context(cluster.host("master01"))
    with pytest.raises(NotApplicable, match=r"neither client-cert-auth nor trusted-ca-file: .*SEC-01"):
        PROBES["etcd_without_client_cert"](master, "2379")
    # the peer side still has its CA
    assert PROBES["etcd_client_cert_auth"](master, "2380").value == "off"


def test_peer_view_of_a_stopped_member_is_an_error_with_the_cause(cluster: Cluster) -> None:
    outputs = _exposure_outputs(cluster, EXPOSURE_REFUSED.replace("192.168.61.22", "192.168.61.17"))
    outputs["master01"] = {etcd_facts.etcd_service: service_capture(GUIDE_ETCD_ENV, GUIDE_ETCD_UNIT, None, {})}
    session = offline_session(cluster, outputs)
    with pytest.raises(ProbeError, match=r"prerequisite failed: nothing answers on 192.168.61.17:2379 .*inactive"):
        PROBES["etcd_plaintext"](session.context(cluster.host("master01")), "2379")
