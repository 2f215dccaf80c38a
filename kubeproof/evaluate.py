"""Evaluating catalogue rows against a session: observe, judge, settle, link causes.

One copy of what a check row is, used by the pytest plugin (one row per test item) and by the
installer's health gate (the rows of the phases it ran, in catalogue order, outside pytest).
A row's record is a plain dict with the fields the plugin's reports and `kubeproof.causes` read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from kubeproof.causes import CauseRule, RootCause, annotate, link_causes
from kubeproof.checks import Check, NotApplicable, Observation, Verdict, format_observed, judge
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.probes import load_probes, observe
from kubeproof.redact import redact
from kubeproof.session import Session, inventory_context
from kubeproof.transport import ProbeError

# Seconds between two re-probes of a row within its settle window.
SETTLE_PAUSE_SECONDS = 2.0


class SettleClock:
    """One clock per session for every settle window: it starts at the first row that needs one.

    A row re-probes until its own window, counted from that start, is over. On a healthy cluster
    in transit (a lease being taken) that is the wait the state needs; on a broken one the rows
    share one wait instead of adding theirs up.
    """

    def __init__(self) -> None:
        self.started: float | None = None

    def deadline(self, window: float) -> float:
        if self.started is None:
            self.started = time.monotonic()
        return self.started + window


def hosts_for(check: Check, cluster: Cluster) -> list[HostSpec]:
    """The hosts a row is judged on: its roles, or the first master for a cluster-wide row."""
    if "cluster" in check.roles:
        anchor = cluster.masters or list(cluster.hosts)
        return anchor[:1]
    if "all" in check.roles:
        return list(cluster.hosts)
    return [h for h in cluster.hosts if h.roles & set(check.roles)]


def settle_verdict(
    check: Check,
    host: str,
    verdict: Verdict,
    context: Mapping[str, Any],
    record: dict[str, Any],
    *,
    reprobe: Callable[[], Observation] | None,
    clock: SettleClock | None,
    follows_a_failure: Callable[[], bool] | None,
    pause: float = SETTLE_PAUSE_SECONDS,
) -> Verdict:
    """Re-probe a failing row of moving state within its settle window; the evidence says so.

    A row that follows from a failure already judged is not in transit: judged at once.
    """
    if verdict.holds or not check.settle or reprobe is None or clock is None:
        return verdict
    if follows_a_failure is not None and follows_a_failure():
        return verdict
    first = format_observed(verdict.observed)
    deadline = clock.deadline(check.settle)
    started, attempts = time.monotonic(), 0
    while not verdict.holds and time.monotonic() < deadline:
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        attempts += 1
        try:
            verdict = judge(check, host, reprobe(), context)
        except (ProbeError, NotApplicable) as exc:
            record["settle_error"] = str(exc)
            break
    waited = round(time.monotonic() - started, 1)
    settled = "held" if verdict.holds else "still failed"
    note = (
        f"re-probed {attempts} times over {waited} s (settle window {check.settle} s): first observed {first};"
        f" {settled} at {datetime.now(UTC).strftime('%H:%M:%S')}Z"
    )
    record["settle"] = {
        "window_seconds": check.settle,
        "reprobes": attempts,
        "waited_seconds": waited,
        "first_observed": first,
        "held": verdict.holds,
    }
    return replace(verdict, diagnosis=(*verdict.diagnosis, note))


def base_record(check: Check, host: str, nodeid: str = "") -> dict[str, Any]:
    return {
        "id": check.id,
        "key": check.key,
        "part": check.part,
        "host": host,
        "section": check.section,
        "guide": check.guide,
        "text": check.text,
        "kind": check.kind,
        "severity": check.severity,
        "remediation": check.remediation,
        "expected": "",
        "observed": "",
        "sources": [],
        "diagnosis": [],
        "seen": [],
        "probe": check.probe,
        "evidence": [],
        "reason": "",
        "nodeid": nodeid,
        "started": time.time(),
    }


def record_verdict(record: dict[str, Any], verdict: Verdict) -> None:
    """A judged row's expected/observed/sources/diagnosis, secrets masked, into its record."""
    record.update(
        expected=verdict.expected,
        observed=format_observed(verdict.observed),
        sources=[redact(s) for s in verdict.sources],
        diagnosis=[redact(d) for d in verdict.diagnosis],
        seen=[redact(s) for s in verdict.seen],
        evidence=list(verdict.evidence),
    )


def evaluate_rows(
    session: Session,
    rows: Iterable[Check],
    rules: Sequence[CauseRule],
    *,
    settle: bool = True,
    pause: float = SETTLE_PAUSE_SECONDS,
) -> tuple[list[dict[str, Any]], list[RootCause]]:
    """Judge every row on each of its hosts, in the given (catalogue) order, as the suites do.

    Each record gets an ``outcome`` (passed, failed, error, skipped, finding), a ``message`` in the
    one failure format for failed rows, and ``caused_by``; the root causes come back beside them.
    ``settle=False``: no re-probing (a read-only look that must not wait).
    """
    load_probes()  # the probe modules register themselves (idempotent)
    cluster = session.cluster
    clock = SettleClock()
    records: list[dict[str, Any]] = []
    for check in rows:
        for host in hosts_for(check, cluster):
            record = base_record(check, host.name)
            records.append(record)
            _evaluate_one(session, check, host, record, records, rules, clock if settle else None, pause)
            record["duration"] = time.time() - record["started"]
    causes = annotate(records, rules)
    return records, causes


def _evaluate_one(
    session: Session,
    check: Check,
    host: HostSpec,
    record: dict[str, Any],
    records: list[dict[str, Any]],
    rules: Sequence[CauseRule],
    clock: SettleClock | None,
    pause: float,
) -> None:
    context = inventory_context(session.cluster, host)
    record["expected"] = check.expected_text(context)
    probe_context = session.context(host)
    try:
        observation = observe(check, probe_context)
    except NotApplicable as exc:
        record.update(outcome="skipped", reason=f"not applicable: {exc}")
        return
    except ProbeError as exc:
        evidence = probe_context.observation(None)
        record.update(
            outcome="error",
            reason=f"probe could not run: {exc.reason}",
            sources=list(evidence.sources),
            message=f"[{check.key}] {host.name}: probe could not run: {exc.reason}",
        )
        return

    def reprobe() -> Observation:
        scratch = session.fresh()
        try:
            return observe(check, scratch.context(host))
        finally:
            scratch.refresh()

    def follows_a_failure() -> bool:
        earlier = [r for r in records if r is not record and r.get("outcome") in ("failed", "error")]
        return (check.key, host.name) in link_causes([*earlier, {**record, "outcome": "failed"}], rules)

    verdict = settle_verdict(
        check,
        host.name,
        judge(check, host.name, observation, context),
        context,
        record,
        reprobe=reprobe,
        clock=clock,
        follows_a_failure=follows_a_failure,
        pause=pause,
    )
    record_verdict(record, verdict)
    if verdict.holds:
        record["outcome"] = "passed"
    elif check.kind == "finding" and session.cluster.profile != "hardened":
        record["outcome"] = "finding"
    else:
        record["outcome"] = "failed"
        record["message"] = verdict.message


__all__ = [
    "SETTLE_PAUSE_SECONDS",
    "SettleClock",
    "base_record",
    "evaluate_rows",
    "hosts_for",
    "record_verdict",
    "settle_verdict",
]
