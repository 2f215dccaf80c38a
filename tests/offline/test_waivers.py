"""Waivers: strict parsing with file:line errors, matching, expiry and unmatched waivers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from kubeproof.reports.model import ResultRow
from kubeproof.reports.waivers import WaiverBook, WaiverError, load_waivers, parse_waivers
from tests.offline.audit_samples import record

WAIVERS = """\
- id: ENV-04:fstab
  host: node01
  reason: swap kept on the batch node until OPS-1234
  approver: J. Doe
  expires: 2026-12-31
- id: PKI-E-03
  host: "*"
  reason: SANs re-issued in the next window
  approver: A. Auditor
  expires: 2026-06-30
- id: ENV-01
  host: master01
  reason: firewalld needed for the migration
  approver: J. Doe
  expires: 2025-12-31
"""
KNOWN = {"ENV-01", "ENV-04", "ENV-04:fstab", "PKI-E-03", "PKI-E-03:extra", "ETCD-06:state"}


def test_parses_every_field_and_the_line_of_each_waiver() -> None:
    rules = parse_waivers(WAIVERS, "waivers.yaml", known_keys=KNOWN)
    assert [(r.id, r.host, r.source) for r in rules] == [
        ("ENV-04:fstab", "node01", "waivers.yaml:1"),
        ("PKI-E-03", "*", "waivers.yaml:6"),
        ("ENV-01", "master01", "waivers.yaml:11"),
    ]
    assert rules[0].expires == date(2026, 12, 31)
    assert rules[0].approver == "J. Doe"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- id: ENV-01\n  host: a\n  reason: r\n  approver: p\n", "waivers.yaml:1: waiver without expires"),
        ("- id: ENV-01\n  host: a\n  reason: r\n  approver: p\n  expires: 31.12.2026\n", "waivers.yaml:5: expires"),
        ("- id: ENV-01\n  host: a\n  reason: r\n  approver: p\n  expires: 2026-02-30\n", "waivers.yaml:5: expires"),
        ("- id: env-01\n  host: a\n  reason: r\n  approver: p\n  expires: 2026-01-01\n", "waivers.yaml:1: id 'env-01'"),
        ("- id: ENV-99\n  host: a\n  reason: r\n  approver: p\n  expires: 2026-01-01\n", "not in the catalogue"),
        ("- id: ENV-01\n  host: a b\n  reason: r\n  approver: p\n  expires: 2026-01-01\n", "waivers.yaml:2: host"),
        (
            "- id: ENV-01\n  host: a\n  reason: ''\n  approver: p\n  expires: 2026-01-01\n",
            "waivers.yaml:3: reason is empty",
        ),
        (
            "- id: ENV-01\n  host: a\n  reason: r\n  approver: p\n  expires: 2026-01-01\n  ok: yes\n",
            "waivers.yaml:6: unknown key 'ok'",
        ),
        ("id: ENV-01\n", "waivers.yaml:1: the waiver file must be a list"),
        ("- id: [ENV-01\n", "waivers.yaml:"),
        (
            "- {id: ENV-01, host: a, reason: r, approver: p, expires: 2026-01-01}\n"
            "- {id: ENV-01, host: a, reason: s, approver: q, expires: 2026-02-01}\n",
            "waivers.yaml:2: ENV-01@a is waived twice (first at waivers.yaml:1)",
        ),
    ],
)
def test_bad_waivers_are_refused_with_file_and_line(text: str, message: str) -> None:
    with pytest.raises(WaiverError) as caught:
        parse_waivers(text, "waivers.yaml", known_keys=KNOWN)
    assert message in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(WaiverError, match=r"nope\.yaml: cannot read the waiver file"):
        load_waivers(tmp_path / "nope.yaml")


def test_matching_key_id_host_and_star() -> None:
    book = WaiverBook(parse_waivers(WAIVERS, "w.yaml"), date(2026, 3, 1))
    fstab = book.find("ENV-04", "ENV-04:fstab", "node01")
    assert fstab is not None and fstab.id == "ENV-04:fstab"
    assert book.find("ENV-04", "ENV-04", "node01") is None  # a key waives that part only
    assert book.find("ENV-04", "ENV-04:fstab", "node02") is None  # and on that host only
    # a bare ID waives every part of the invariant, "*" every host
    assert book.find("PKI-E-03", "PKI-E-03:extra", "node02") is not None
    assert book.find("PKI-E-03", "PKI-E-03", "master01") is not None


def test_expired_waivers_waive_nothing_and_are_problems() -> None:
    book = WaiverBook(parse_waivers(WAIVERS, "w.yaml"), date(2026, 3, 1))
    firewalld = book.find("ENV-01", "ENV-01", "master01")
    assert firewalld is not None and firewalld.is_expired(book.today)
    waiver = firewalld.for_row(book.today)
    assert waiver.expired
    assert waiver.describe() == "waiver expired on 2025-12-31 by J. Doe: firewalld needed for the migration (w.yaml:11)"
    assert [rule.id for rule in book.expired()] == ["ENV-01"]
    # valid through its last day
    assert not firewalld.is_expired(date(2025, 12, 31))


def test_unmatched_and_no_longer_needed_waivers_are_reported() -> None:
    book = WaiverBook(parse_waivers(WAIVERS, "w.yaml"), date(2026, 3, 1))
    rows = [
        ResultRow.from_record(record("ENV-04:fstab", "node01", "passed")),
        ResultRow.from_record(record("ENV-01", "master01", "failed")),
    ]
    problems = book.problems(rows, hosts=["master01", "node01", "node02"])
    assert problems == [
        "waiver ENV-01@master01 (w.yaml:11) expired on 2025-12-31: renew it or fix the failure",
        "waiver ENV-04:fstab@node01 (w.yaml:1) matches nothing that failed (its rows: passed):"
        " remove it if the failure is fixed",
        "waiver PKI-E-03@* (w.yaml:6) matches nothing: no such row ran",
    ]
    ghost = WaiverBook(
        parse_waivers("- {id: ENV-01, host: node09, reason: r, approver: p, expires: 2026-12-31}\n", "g.yaml"),
        date(2026, 3, 1),
    )
    assert ghost.problems(rows, hosts=["master01", "node01"]) == [
        "waiver ENV-01@node09 (g.yaml:1) matches nothing: node09 is not in the inventory"
    ]


def test_a_waived_row_matches_and_a_live_waiver_beats_an_expired_one() -> None:
    text = WAIVERS + (
        "- id: ENV-01\n  host: '*'\n  reason: all hosts, renewed\n  approver: B. Boss\n  expires: 2026-12-31\n"
    )
    book = WaiverBook(parse_waivers(text, "w.yaml"), date(2026, 3, 1))
    chosen = book.find("ENV-01", "ENV-01", "master01")
    assert chosen is not None and chosen.reason == "all hosts, renewed"
    waived = [
        ResultRow.from_record(record("ENV-01", "master01", "waived", waiver=chosen.for_row(book.today).as_dict()))
    ]
    assert waived[0].waiver is not None and waived[0].waiver["approver"] == "B. Boss"
    assert not any("ENV-01@*" in p for p in book.problems(waived))
