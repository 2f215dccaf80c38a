"""Root causes from result records: the rules as data (checked against the catalogue), linking,
chains, unreachable hosts, and what must never be linked."""

from __future__ import annotations

from typing import Any

import pytest

from kubeproof.causes import (
    UNREACHABLE_ID,
    CauseRulesError,
    annotate,
    key_matches,
    link_causes,
    load_cause_rules,
    parse_cause_rules,
    root_causes,
)
from kubeproof.checks import load_catalogue

KEYS = [row.key for row in load_catalogue()]
RULES = load_cause_rules(known_keys=KEYS)


def rec(key: str, host: str, outcome: str = "failed", reason: str = "") -> dict[str, Any]:
    return {
        "id": key.split(":")[0],
        "key": key,
        "host": host,
        "outcome": outcome,
        "text": f"text of {key}",
        "reason": reason,
    }


def test_the_shipped_rules_name_only_catalogue_rows_and_have_no_cycle() -> None:
    assert len(RULES) >= 8
    # load_cause_rules raised otherwise; and every rule can fire on some row
    assert all(any(rule.is_effect(key) for key in KEYS) for rule in RULES)


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("ETCD-07", "ETCD-07", True),
        ("ETCD-07", "ETCD-07:etcdctl", True),
        ("ETCD-06:state", "ETCD-06:state", True),
        ("ETCD-06:state", "ETCD-06", False),
        ("FLANNEL-02:", "FLANNEL-02", True),
        ("FLANNEL-02:", "FLANNEL-02:tls", False),
        ("PKI-E-*", "PKI-E-03:extra", True),
        ("PKI-E-*", "PKI-K-03", False),
        ("ETCD-1", "ETCD-10", False),
    ],
)
def test_pattern_semantics(pattern: str, key: str, expected: bool) -> None:
    assert key_matches(pattern, key) is expected


def test_a_stale_pattern_is_refused_with_the_rule_name() -> None:
    text = "rules:\n  - name: gone\n    effects: [ETCD-07]\n    causes: [PKI-E-99]\n"
    with pytest.raises(CauseRulesError, match=r"rules\[0\] \(gone\): \['PKI-E-99'\] match no catalogue row"):
        parse_cause_rules(text, "causes.yaml", KEYS)


def test_rules_that_let_a_row_cause_itself_are_refused() -> None:
    text = (
        "rules:\n  - name: a\n    effects: [ETCD-07]\n    causes: [ETCD-08]\n"
        "  - name: b\n    effects: [ETCD-08]\n    causes: [ETCD-07]\n"
    )
    with pytest.raises(CauseRulesError, match=r"cause itself: ETCD-07.* -> ETCD-08.* -> ETCD-07"):
        parse_cause_rules(text, "causes.yaml", KEYS)


def test_bad_hosts_scope_is_refused() -> None:
    with pytest.raises(CauseRulesError, match=r"hosts must be one of \['any', 'same'\], not 'some'"):
        parse_cause_rules("rules:\n  - {effects: [ETCD-07], causes: [PKI-E-03], hosts: some}\n", "x.yaml", KEYS)


def test_a_bad_etcd_certificate_is_the_root_of_every_etcd_symptom() -> None:
    records = [rec("PKI-E-03", "master01")]
    records += [
        rec(key, host, "error") for key in ("ETCD-07", "ETCD-07:etcdctl", "ETCD-11") for host in ("master01", "node01")
    ]
    records += [rec("ETCD-08", "master01", "error"), rec("ETCD-06:state", "node01")]
    causes = annotate(records, RULES)
    assert [(c.row.key, c.row.host, c.consequences) for c in causes] == [("PKI-E-03", "master01", 8)]
    assert all(r["caused_by"]["key"] == "PKI-E-03" for r in records[1:])
    assert records[0]["caused_by"] is None
    assert records[1]["caused_by"]["text"] == "caused by [PKI-E-03] master01: text of PKI-E-03"


def test_a_chain_links_to_its_root_and_says_what_is_in_between() -> None:
    records = [rec("PKI-E-02", "node01"), rec("ETCD-06:state", "node01"), rec("FLANNEL-01", "master01", "error")]
    links = link_causes(records, RULES)
    flannel = links[("FLANNEL-01", "master01")]
    assert (flannel.root.key, flannel.root.host) == ("PKI-E-02", "node01")
    assert flannel.via is not None and flannel.via.key == "ETCD-06:state"
    assert flannel.text.endswith("(via [ETCD-06:state] node01)")


def test_the_same_host_is_preferred_and_a_same_rule_never_crosses_hosts() -> None:
    records = [rec("PKI-E-03", "master01"), rec("PKI-E-03", "node01"), rec("ETCD-07", "node01", "error")]
    assert link_causes(records, RULES)[("ETCD-07", "node01")].root.host == "node01"
    # docker on node02 cannot follow from flannel's subnet.env on node01 (hosts: same)
    docker = [rec("FLANNEL-04", "node01"), rec("DOCKER-01:service", "node02")]
    assert ("DOCKER-01:service", "node02") not in link_causes(docker, RULES)


def test_an_admin_certificate_without_system_masters_explains_the_api_errors() -> None:
    records = [rec("PKI-K-04", "master01")]
    records += [rec(key, "master01", "error", "HTTP 403") for key in ("MASTER-07", "MASTER-10", "NODE-03")]
    records += [rec("NODE-08", host, "error", "HTTP 403") for host in ("node01", "node02")]
    causes = annotate(records, RULES)
    assert [(c.row.key, c.consequences) for c in causes] == [("PKI-K-04", 5)]


def test_unrelated_failures_stay_separate_root_causes() -> None:
    records = [rec("ENV-04", "node01"), rec("ETCD-02", "node02"), rec("MASTER-01", "master01")]
    causes = annotate(records, RULES)
    assert sorted(c.row.key for c in causes) == ["ENV-04", "ETCD-02", "MASTER-01"]
    assert all(r["caused_by"] is None for r in records)


def test_the_same_row_on_two_hosts_is_two_symptoms_not_a_chain() -> None:
    records = [rec("SMOKE-01", "node01"), rec("SMOKE-01", "node02")]
    assert link_causes(records, RULES) == {}


def test_an_unreachable_host_is_the_root_of_every_row_that_needed_it() -> None:
    reason = "probe could not run: node02 unreachable: no SSH banner within 5 s"
    records = [rec(key, "node02", "error", reason) for key in ("ENV-01", "DOCKER-01", "FLANNEL-02")]
    records += [rec("ETCD-08", "master01", "error", reason), rec("ENV-01", "master01", "passed")]
    causes = root_causes(records, link_causes(records, RULES))
    assert [(c.row.id, c.row.host, c.consequences, c.outcome) for c in causes] == [
        (UNREACHABLE_ID, "node02", 4, "error")
    ]
    assert (
        causes[0].text == "[UNREACHABLE] node02: unreachable: no SSH banner within 5 s (error; 4 rows follow from it)"
    )


def test_passed_rows_are_never_causes_or_consequences() -> None:
    records = [
        rec("PKI-E-03", "master01", "passed"),
        rec("ETCD-07", "master01", "error"),
        rec("ETCD-06:state", "master01", "skipped"),
    ]
    causes = annotate(records, RULES)
    assert [(c.row.key, c.consequences) for c in causes] == [("ETCD-07", 0)]
    assert causes[0].text.endswith("(error; no other row follows from it)")


def test_only_a_host_of_the_run_can_be_unreachable() -> None:
    # the apiserver "is unreachable": a component down, not a host; that row is a root of its own
    reason = (
        "probe could not run: prerequisite failed: kube-apiserver at https://192.168.61.17:6443 is unreachable: refused"
    )
    records = [rec("MASTER-07", "master01", "error", reason)]
    causes = root_causes(records, link_causes(records, RULES))
    assert [(c.row.id, c.row.host) for c in causes] == [("MASTER-07", "master01")]
