"""Settle windows: a failing row of moving state is re-probed within its window, says so in its
evidence, and a real fault still fails within the window; rows whose cause failed never wait."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kubeproof.checks import CatalogueError, Check, Observation, judge, load_catalogue, parse_catalogue
from kubeproof.evaluate import SettleClock
from kubeproof.fixtures import plugin
from kubeproof.fixtures.plugin import CheckCase, _settled_verdict
from kubeproof.inventory import HostSpec

HOST = HostSpec("master01", "192.168.61.17", frozenset({"master"}))


def lease_check(settle: int) -> Check:
    return Check(
        id="MASTER-09",
        text="kube-controller-manager holds its leader lease",
        section="MASTER",
        guide="",
        roles=("cluster",),
        probe="leader_lease(kube-controller-manager)",
        comparator="equals",
        expected="held",
        remediation="systemctl restart kube-controller-manager",
        settle=settle,
    )


def case_for(
    check: Check, observations: Iterator[str], *, follows: bool = False, clock: SettleClock | None = None
) -> CheckCase:
    calls: list[float] = []

    def reprobe() -> Observation:
        calls.append(time.monotonic())
        return Observation(next(observations), sources=("kubectl get lease",))

    case = CheckCase(
        check,
        HOST,
        Observation("stale: renewed 23s ago (lease 15s)"),
        {},
        "seed",
        {},
        reprobe=reprobe,
        settle_clock=clock or SettleClock(),
        follows_a_failure=lambda: follows,
    )
    case.record["calls"] = calls
    return case


@pytest.fixture(autouse=True)
def quick_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugin, "SETTLE_PAUSE_SECONDS", 0.05)


def first_verdict(case: CheckCase):  # type: ignore[no-untyped-def]
    return judge(case.check, HOST.name, case.observation, case.context)


def test_a_lease_in_transit_settles_and_the_evidence_says_so() -> None:
    case = case_for(lease_check(5), iter(["stale: renewed 17s ago (lease 15s)", "held"]))
    verdict = _settled_verdict(case, first_verdict(case))
    assert verdict.holds
    assert case.record["settle"]["reprobes"] == 2 and case.record["settle"]["held"] is True
    assert case.record["settle"]["first_observed"] == "'stale: renewed 23s ago (lease 15s)'"
    assert any(line.startswith("re-probed 2 times over ") and "held at" in line for line in verdict.diagnosis)


def test_a_real_fault_still_fails_within_its_window() -> None:
    window = 1
    case = case_for(lease_check(window), iter(lambda: "stale: renewed 600s ago (lease 15s)", None))
    started = time.monotonic()
    verdict = _settled_verdict(case, first_verdict(case))
    elapsed = time.monotonic() - started
    assert not verdict.holds
    assert window <= elapsed <= window + 0.5  # the window, plus at most one pause and one probe
    assert case.record["settle"]["reprobes"] >= 2
    assert any("still failed" in line for line in verdict.diagnosis)


def test_a_row_whose_cause_failed_is_judged_at_once() -> None:
    case = case_for(lease_check(30), iter(["held"]), follows=True)
    verdict = _settled_verdict(case, first_verdict(case))
    assert not verdict.holds and case.record["calls"] == [] and "settle" not in case.record


def test_rows_without_a_window_and_rows_that_hold_are_never_re_probed() -> None:
    for case in (case_for(lease_check(0), iter(["held"])), case_for(lease_check(30), iter(["held"]))):
        if case.check.settle:
            case = CheckCase(**{**case.__dict__, "observation": Observation("held")})
        _settled_verdict(case, first_verdict(case))
        assert case.record["calls"] == []


def test_one_clock_for_the_session_so_broken_clusters_wait_once() -> None:
    clock = SettleClock()
    forever = iter(lambda: "stale", None)
    first, second = case_for(lease_check(1), forever, clock=clock), case_for(lease_check(1), forever, clock=clock)
    started = time.monotonic()
    _settled_verdict(first, first_verdict(first))
    _settled_verdict(second, first_verdict(second))
    assert time.monotonic() - started <= 1.5  # not 2 windows
    assert second.record["settle"]["reprobes"] <= 1


def test_the_catalogue_states_windows_only_on_moving_state() -> None:
    windows = {row.key: row.settle for row in load_catalogue() if row.settle}
    assert {"MASTER-08", "MASTER-09", "NODE-08", "NODE-08:heartbeat", "ETCD-09"} <= set(windows)
    assert not [key for key in windows if key.startswith(("PKI-", "ENV-", "SEC-"))]


@pytest.mark.parametrize("value", [-1, 121, "30", True, 1.5])
def test_a_bad_window_is_refused(value: object) -> None:
    text = (
        "checks:\n  - {id: MASTER-09, text: t, roles: cluster, probe: p, comparator: equals, remediation: r,"
        f" settle: {value!r}}}\n"
    ).replace("True", "true")
    with pytest.raises(CatalogueError, match="settle must be whole seconds from 0 to 120"):
        parse_catalogue(text, "x.yaml")
