"""The health gate (bootstrap/health.py): which rows judge which phase, the repairs as data, the
repairs aimed at root causes only, ownership before any restart, and rows judged by the one
evaluation the suites use (kubeproof.evaluate)."""

from __future__ import annotations

from typing import Any

import pytest

from kubeproof.bootstrap import health
from kubeproof.bootstrap.engine import Manifest
from kubeproof.bootstrap.runner import PHASE_NAMES
from kubeproof.causes import annotate, key_matches, load_cause_rules
from kubeproof.checks import load_catalogue
from kubeproof.evaluate import SettleClock, evaluate_rows, hosts_for
from kubeproof.facts import network as net_facts
from kubeproof.fixtures import plugin
from kubeproof.inventory import Cluster
from tests.offline.facts_samples import DOCKER_SERVICE_CAPTURE, offline_session
from tests.offline.facts_samples import cluster as cluster  # the module-scoped fixture

CATALOGUE = load_catalogue()
KEYS = {row.key for row in CATALOGUE}
RULES = load_cause_rules(known_keys=KEYS)


def test_every_phase_is_judged_by_its_own_groups_and_never_by_smoke() -> None:
    assert set(health.PHASE_GROUPS) == set(PHASE_NAMES)
    groups = {row.group for row in CATALOGUE}
    judged = set(health.gate_groups(PHASE_NAMES))
    assert judged == groups - {"SMOKE", "SEC"}  # SMOKE starts pods; SEC are findings of the guide's choices
    assert health.gate_groups(["flannel"]) == ["FLANNEL"]


def test_a_row_whose_file_a_later_phase_writes_is_judged_with_that_phase() -> None:
    assert set(health.ROW_PHASES) <= KEYS and set(health.ROW_PHASES.values()) <= set(PHASE_NAMES)
    early = {row.key for row in health.gate_rows(CATALOGUE, ["environment", "pki"])}
    assert "PKI-K-04:kube-proxy" not in early and "PKI-K-04:kube-proxy-chain" not in early
    assert "PKI-K-04" in early and "ENV-01" in early  # the rest of PKI-K and ENV still are
    everything = {row.key for row in health.gate_rows(CATALOGUE, PHASE_NAMES)}
    assert {"PKI-K-04:kube-proxy", "PKI-K-04:kube-proxy-chain"} <= everything
    assert everything == {row.key for row in CATALOGUE if row.group not in ("SMOKE", "SEC")}


def test_every_repair_pattern_names_catalogue_rows() -> None:
    for repair in health.REPAIRS:
        for pattern in repair.patterns:
            assert any(key_matches(pattern, key) for key in KEYS), pattern
        assert repair.kind in (health.RESTART, health.APPROVE_CSRS, health.BINDINGS, health.REPLACE_MEMBER)
        assert (repair.kind == health.RESTART) == bool(repair.units)


@pytest.mark.parametrize(
    ("key", "action"),
    [
        ("FLANNEL-07", "restart flanneld"),
        ("FLANNEL-07:neighbour", "restart flanneld"),
        ("FLANNEL-07:fdb", "restart flanneld"),
        ("FLANNEL-06", "restart flanneld and docker"),
        ("DOCKER-02:running", "restart flanneld and docker"),
        ("NODE-04:unit", "restart kubelet"),
        ("NODE-04:cri-dockerd", "restart cri-dockerd"),
        ("NODE-09:iptables", "restart kube-proxy"),
        ("NODE-03", "recreate kubeproof's clusterrolebindings"),
        ("NODE-05", "approve the pending CSRs of the cluster file's workers"),
        ("ETCD-06:running", "restart etcd"),
    ],
)
def test_repairs_are_data(key: str, action: str) -> None:
    repair = health.repair_for(key)
    assert repair is not None and repair.action == action


def test_rows_without_a_repair() -> None:
    for key in ("SMOKE-01", "ETCD-09", "PKI-E-03", "ENV-04", "FLANNEL-01", "DOCKER-02"):
        assert health.repair_for(key) is None, key


def test_a_unit_is_ours_only_through_the_manifest() -> None:
    manifest = Manifest(
        files={
            "/usr/lib/systemd/system/flanneld.service": "a" * 64,
            "/etc/systemd/system/docker.service.d/flannel.conf": "b" * 64,
        }
    )
    assert health.unit_owned(manifest, "flanneld.service")
    assert health.unit_owned(manifest, "docker.service")  # its drop-in is ours
    assert not health.unit_owned(manifest, "kubelet.service")
    assert not health.unit_owned(Manifest(), "flanneld.service")


def _record(key: str, host: str, outcome: str, observed: str = "") -> dict[str, Any]:
    row = next(r for r in CATALOGUE if r.key == key)
    return {"id": row.id, "key": key, "host": host, "text": row.text, "outcome": outcome, "observed": observed}


class _Ctx:
    """What plan_repairs reads of a run for restarts: nothing (the manifest read is stubbed)."""

    transport = None


def _judgement(records: list[dict[str, Any]]) -> health.Judgement:
    roots = annotate(records, RULES)
    return health.Judgement(records, roots, 0.1)


def test_the_repair_targets_the_root_cause_not_its_consequences(monkeypatch: pytest.MonkeyPatch) -> None:
    owned = Manifest(files={"/usr/lib/systemd/system/flanneld.service": "a" * 64})
    monkeypatch.setattr(health, "_manifest", lambda ctx, host, cache: owned)
    records = [
        _record("FLANNEL-07", "node01", "failed", "['no route to 172.17.9.0/24 (node02)']"),
        _record("FLANNEL-07", "node02", "passed"),
        _record("FLANNEL-08", "node01", "failed", "['no reply from node02']"),
        _record("FLANNEL-08", "node02", "failed", "['no reply from node01']"),
        _record("SMOKE-01", "node01", "passed"),
    ]
    planned, unrepaired = health.plan_repairs(_Ctx(), _judgement(records))  # type: ignore[arg-type]
    assert unrepaired == []
    assert [(p.host, p.repair.action) for p in planned] == [("node01", "restart flanneld")]
    line = planned[0].line()
    assert line == "flanneld node01: [FLANNEL-07] ['no route to 172.17.9.0/24 (node02)'] -> restart flanneld"
    assert [c.host for c in planned[0].changes] == ["node01"]


def test_a_unit_kubeproof_did_not_install_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_manifest", lambda ctx, host, cache: Manifest())
    records = [_record("FLANNEL-07:fdb", "node02", "failed", "['no fdb entry for node01']")]
    planned, _ = health.plan_repairs(_Ctx(), _judgement(records))  # type: ignore[arg-type]
    assert len(planned) == 1 and planned[0].changes == []
    assert "kubeproof did not install flanneld.service on node02" in planned[0].refused
    assert "NOT repaired" in planned[0].line()


def test_a_failing_row_with_no_repair_is_reported_not_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_manifest", lambda ctx, host, cache: Manifest())
    records = [_record("PKI-E-03", "node01", "failed", "expired"), _record("ETCD-06:state", "node01", "failed")]
    planned, unrepaired = health.plan_repairs(_Ctx(), _judgement(records))  # type: ignore[arg-type]
    # ETCD-06:state follows from the certificate: no restart is aimed at it
    assert planned == [] and [r["key"] for r in unrepaired] == ["PKI-E-03"]


def test_one_evaluation_for_suites_and_gate(cluster: Cluster) -> None:
    """The plugin's settle clock and host selection are kubeproof.evaluate's; a row judged by the
    gate's evaluate_rows fails and passes on the same facts as the suites' probe does."""
    assert vars(plugin)["SettleClock"] is SettleClock and vars(plugin)["hosts_for"] is hosts_for
    row = next(r for r in CATALOGUE if r.key == "DOCKER-02")
    one_node = cluster.restricted_to(["node01"])
    unwired = offline_session(one_node, {"node01": {net_facts.docker_service: DOCKER_SERVICE_CAPTURE}})
    records, roots = evaluate_rows(unwired, [row], RULES, settle=False)
    assert [(r["key"], r["host"], r["outcome"]) for r in records] == [("DOCKER-02", "node01", "failed")]
    assert records[0]["message"].startswith("[DOCKER-02] node01: ")
    assert [root.row.key for root in roots] == ["DOCKER-02"]
    wired_unit = DOCKER_SERVICE_CAPTURE.replace(
        "@@kp-section envfile /etc/default/docker\n",
        "@@kp-section envfile /etc/default/docker\n@@kp-section envfile /run/flannel/docker\n"
        'DOCKER_NETWORK_OPTIONS=" --bip=172.17.36.1/24 --ip-masq=false --mtu=1450"\n',
    ).replace(
        "ExecStart=/usr/sbin/dockerd -H fd://",
        "EnvironmentFile=/run/flannel/docker\nExecStart=/usr/sbin/dockerd $DOCKER_NETWORK_OPTIONS -H fd://",
    )
    wired = offline_session(one_node, {"node01": {net_facts.docker_service: wired_unit}})
    records, roots = evaluate_rows(wired, [row], RULES, settle=False)
    assert [r["outcome"] for r in records] == ["passed"] and roots == []


def test_a_member_that_lost_its_data_is_replaced_not_restarted() -> None:
    lost = {"observed": "'activating, enabled'", "diagnosis": ["matched SIG-ETCD-06 -> ETCD-05: ..."]}
    repair = health.repair_for("ETCD-06:state", lost)
    assert repair is not None and repair.kind == health.REPLACE_MEMBER
    stopped = {"observed": "'inactive, enabled'", "diagnosis": ["no known signature matched"]}
    repair = health.repair_for("ETCD-06:state", stopped)
    assert repair is not None and repair.action == "restart etcd"


def test_the_member_env_file_keeps_existing_once_re_added(cluster: Cluster) -> None:
    from kubeproof.bootstrap import render
    from kubeproof.bootstrap.errors import BootstrapError
    from kubeproof.bootstrap.host_profile import parse_initial_state
    from kubeproof.facts import Raw

    member = cluster.etcd_members[1]
    assert render.parse_env_file(render.etcd_env(cluster, member))["ETCD_INITIAL_CLUSTER_STATE"] == "new"
    existing = render.etcd_env(cluster, member, "existing")
    assert render.parse_env_file(existing)["ETCD_INITIAL_CLUSTER_STATE"] == "existing"
    assert parse_initial_state(Raw('ETCD_INITIAL_CLUSTER_STATE="existing"\n', "", 0)) == "existing"
    assert parse_initial_state(Raw("", "", 1)) == ""
    with pytest.raises(BootstrapError):
        render.etcd_env(cluster, member, "standby")


def test_plan_does_not_count_a_repair_the_phases_already_make() -> None:
    from kubeproof.bootstrap.engine import Change

    def change(host: str, text: str) -> Change:
        return Change(host, "nodes", text, lambda: None)

    restart = health.PlannedRepair(health.repair_for("NODE-09:unit") or health.REPAIRS[0], "node02")
    assert health.covered(restart, [change("node02", "start kube-proxy.service")])
    assert not health.covered(restart, [change("node01", "start kube-proxy.service")])
    binding = health.PlannedRepair(health.repair_for("NODE-03") or health.REPAIRS[0], "api")
    assert health.covered(binding, [change("api", "create clusterrolebinding kubelet-bootstrap: ...")])
    assert not health.covered(binding, [change("api", "approve pending CSR x of node01")])
