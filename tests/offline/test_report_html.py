"""report.html as a reader meets it: verdict, root causes, ID x host matrix, failures first, seen
lines, waivers, human times, chapters in English and Chinese, size. Rendered by a browser in
test_report_html_chromium.py; here the page as written."""

from __future__ import annotations

import dataclasses
import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeproof.checks import load_catalogue
from kubeproof.reports import render_html, write_html
from kubeproof.reports.chapters import CHAPTER_TITLES_EN, english_title, has_cjk
from kubeproof.reports.html_text import human_time, row_anchor
from kubeproof.reports.model import as_rows
from tests.offline import report_html_samples as samples
from tests.offline.report_html_samples import ReportDom, dom_problems

MAX_BYTES = 1_500_000


@pytest.fixture(scope="module")
def broken() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    records, causes = samples.broken_run()
    return records, {**samples.META, "root_causes": causes}


@pytest.fixture(scope="module")
def page(broken: tuple[list[dict[str, Any]], dict[str, Any]]) -> str:
    records, meta = broken
    return render_html(as_rows(records), meta=meta, stats=samples.STATS)


@pytest.fixture
def utc() -> Iterator[None]:
    with _zone("UTC"):
        yield


class _zone:
    """TZ set for the block (the report names this machine's zone)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        self.mp = pytest.MonkeyPatch()
        self.mp.setenv("TZ", self.name)
        time.tzset()

    def __exit__(self, *exc: object) -> None:
        self.mp.undo()
        time.tzset()


def _render(records: list[dict[str, Any]], **meta: Any) -> str:
    return render_html(as_rows(records), meta={**samples.META, **meta}, stats=samples.STATS)


# ----------------------------------------------------------------------------- chapters, times, user


def test_every_catalogue_chapter_has_an_english_title() -> None:
    chapters = {check.guide for check in load_catalogue()}
    assert sorted(c for c in chapters if not english_title(c)) == []
    assert set(CHAPTER_TITLES_EN) >= {c for c in chapters if has_cjk(c)}
    assert english_title("一、环境准备") == "1. Environment preparation"
    assert english_title("九、新的一章") == ""  # untranslated: said so on the page, not guessed


def test_chapters_appear_in_english_first_and_in_chinese(page: str) -> None:
    dom = ReportDom(page)
    summary = re.search(r'<tr data-section="ENV">.*?</tr>', page)
    assert summary is not None
    assert '<span class="en">1. Environment preparation</span> <span class="zh" lang="zh-Hans">一、环境准备</span>' in (
        summary.group(0)
    )
    # The note for browsers without CJK fonts is in the page; the script shows it only there.
    assert "#no-cjk-note" in dom.texts and "fonts-noto-cjk" in dom.texts["#no-cjk-note"]
    untranslated = _render([{**samples.green_records()[0], "guide": "九、新的一章"}])
    assert '(untranslated chapter)</span> <span class="zh" lang="zh-Hans">九、新的一章</span>' in untranslated


def test_times_are_human_with_the_machines_zone_named(utc: None) -> None:
    assert human_time(samples.STARTED) == "2026-12-05 23:10:04 UTC"
    with _zone("Europe/Berlin"):
        assert human_time(samples.STARTED) == "2026-12-06 00:10:04 CET (UTC+01:00)"
    with _zone("Asia/Shanghai"):
        assert human_time(samples.STARTED) == "2026-12-06 07:10:04 CST (UTC+08:00)"
    page = _render(samples.green_records()[:3])
    dom = ReportDom(page)
    meta = re.search(r'<dl class="meta">.*?</dl>', page, re.S)
    assert meta is not None
    assert "<dt>started</dt><dd>2026-12-05 23:10:04 UTC</dd>" in meta.group(0)
    assert "<dt>finished</dt><dd>2026-12-05 23:10:25 UTC (took 21.4 s)</dd>" in meta.group(0)
    assert str(int(samples.STARTED)) not in page  # no raw epoch anywhere, rows' details included
    assert dom.texts  # parsed


def test_user_is_shown_or_left_out() -> None:
    assert "<dt>run by</dt><dd>root</dd>" in _render(samples.green_records()[:3])
    for empty in ("", None):
        assert "run by" not in _render(samples.green_records()[:3], user=empty)
        assert "<dt>user</dt>" not in _render(samples.green_records()[:3], user=empty)


# ----------------------------------------------------------------------------- verdict, matrix, order


def test_verdict_matrix_and_links_agree_with_the_rows(
    page: str, broken: tuple[list[dict[str, Any]], dict[str, Any]]
) -> None:
    records, _ = broken
    assert len(records) >= 400
    dom = ReportDom(page)
    assert dom_problems(dom, records) == []
    assert "<strong>FAILED</strong> 90 of 441 rows did not hold; 3 root causes below" in page
    # An ID's parts share one cell (ETCD-06 has 7 on master01); a role that does not run there
    # leaves the cell empty: DOCKER-01 is a node row.
    [etcd06] = [c for c in dom.with_class("cell") if (c["data-id"], c["data-host"]) == ("ETCD-06", "master01")]
    cell = re.search(r'<td class="cell" data-id="ETCD-06" data-host="master01">(.*?)</td>', page)
    assert cell is not None and cell.group(1).count("<a ") == 7
    [docker] = [c for c in dom.with_class("cell") if (c["data-id"], c["data-host"]) == ("DOCKER-01", "master01")]
    assert "empty" in docker["class"].split() and etcd06
    # The unreachable host is a root cause without a row of its own: its entry is the anchor.
    assert f'<li id="{row_anchor("UNREACHABLE", "node03")}">' in page


def test_green_run_passes_with_findings_reported() -> None:
    records = samples.green_records()
    page = _render(records, regressions=0)
    assert dom_problems(ReportDom(page), records) == []
    assert '<section id="verdict" class="verdict-passed">' in page
    assert "<strong>PASSED</strong> every invariant held (441 rows); 20 findings reported, not failing" in page
    assert 'class="regressions none">0 regressions' in page
    assert 'id="root-causes"' not in page


def test_failures_come_first_root_causes_before_their_consequences(page: str) -> None:
    order = [(row["id"], row["data-outcome"]) for row in ReportDom(page).results_rows()]
    outcomes = [outcome for _, outcome in order]
    bad = outcomes.count("failed") + outcomes.count("error")
    assert set(outcomes[:bad]) == {"failed", "error"}
    assert order[:3] == [
        (row_anchor("ENV-05", "node01"), "failed"),  # root causes first, in the guide's order
        (row_anchor("PKI-E-03", "node02"), "failed"),
        (row_anchor("ETCD-06:state", "node02"), "failed"),  # then what follows from them
    ]
    assert outcomes[bad] == "waived" and "finding" in outcomes[bad + 1 : bad + 3]
    assert page.count('class="row-passed first-of-rest"') + page.count('class="row-waived first-of-rest"') == 1


# ----------------------------------------------------------------------------- what each row says


def test_every_passed_row_shows_what_was_seen(page: str) -> None:
    rows = re.findall(r'<tr id="[^"]+" class="row-passed[^"]*" data-outcome="passed">.*?</tr>', page)
    assert len(rows) == 330
    assert all('<ul class="seen"><li><code>' in row for row in rows)
    assert "<li><code>firewalld_state on master01: [&#x27;absent&#x27;, " in page


def test_waived_and_expired_waivers_and_regressions_are_shown(page: str) -> None:
    waived = re.search(r'<tr id="row-ENV-02_config_node01".*?</tr>', page)
    assert waived is not None
    assert '<span class="badge o-waived">w waived</span>' in waived.group(0)
    assert (
        '<div class="waiver">waived until 2027-01-31 by J. Doe: SELinux policy change scheduled with the OS '
        "upgrade (CHG-4411) (waivers.yaml:3)</div>" in waived.group(0)
    )
    expired = re.search(r'<tr id="row-ENV-05_node01".*?</tr>', page)
    assert expired is not None
    assert '<span class="badge o-failed">✗ failed</span>' in expired.group(0)
    assert '<div class="regression">regression: passed -&gt; failed</div>' in expired.group(0)
    assert '<div class="waiver expired">waiver expired on 2026-11-30 by A. Li: stale hosts entry' in expired.group(0)


def test_waiver_as_a_plain_mapping_before_the_model_reads_it() -> None:
    """The audit helper's fields may arrive as plain records; the page says the same."""
    row = as_rows([samples.green_records()[0]])[0]
    plain = {"reason": "accepted risk", "approver": "ops", "expires": "2027-02-01"}
    waived = dataclasses.replace(row, outcome="waived", waiver=plain)  # type: ignore[arg-type]
    shown = render_html([waived], meta=samples.META, stats={})
    assert '<div class="waiver">waived until 2027-02-01 by ops: accepted risk</div>' in shown
    assert '<div class="waiver' not in render_html([row], meta=samples.META, stats={})


def test_text_is_escaped_and_secrets_redacted() -> None:
    record = {
        **samples.green_records()[0],
        "seen": ['<script>alert("x")</script>'],
        "guide": "<b>一、环境准备</b>",
        "observed": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEow\n-----END " + "RSA PRIVATE KEY-----",
    }
    page = _render([record])
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<b>" not in page and "PRIVATE KEY-----" not in page
    assert page.count("<script>") == 1  # the page's own


# ----------------------------------------------------------------------------- self-contained, small


def test_self_contained_and_small_for_400_rows(
    tmp_path: Path, broken: tuple[list[dict[str, Any]], dict[str, Any]]
) -> None:
    records, meta = broken
    path = write_html(records, tmp_path / "report.html", meta=meta, stats=samples.STATS)
    size = path.stat().st_size
    page = path.read_text(encoding="utf-8")
    assert size < MAX_BYTES * len(records) / 441, f"{size} bytes for {len(records)} rows"
    # Raw command output stays in the evidence bundle; each row names its file.
    assert samples.RAW_OUTPUT_MARK not in page
    assert "<code>evidence/ENV-01@master01.json</code>" in page
    # Nothing the browser would fetch: no external scripts, styles, fonts or images.
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)|<link\b|@import|url\(""", page, re.I)


def test_long_source_commands_are_written_once(page: str, broken: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    """A fact's command is the source of many rows: rows show its start, the page holds it once."""
    records, _ = broken
    command = samples.UNIT_COMMAND.format(unit="etcd")
    # One command per section's unit and host (its tail is past the preview, so only the full text has it).
    assert page.count("@@kp-section envfile-missing") == len({(r["section"], r["host"]) for r in records})
    full = [m for m in re.findall(r'<li id="(cmd-\d+)"><pre>(.*?)</pre></li>', page, re.S) if "u=etcd.service" in m[1]]
    assert len(full) == 3  # the etcd members: master01, node01, node02 (node03 has no etcd rows)
    assert all(html.unescape(text).endswith(command) for _, text in full)
    anchor = full[0][0]
    assert page.count(f'<a href="#{anchor}">(full: {anchor})</a>') > 10  # every etcd row on that host links to it
    # The preview is cut after redaction, so a secret at the cut is never half-shown.
    secret = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEow\n-----END " + "RSA PRIVATE KEY-----"
    long_source = "master01$ cat " + "x" * 90 + " " + secret
    shown = _render([{**samples.green_records()[0], "sources": [long_source]}])
    assert "PRIVATE KEY-----" not in shown and "MIIEow" not in shown and "redacted RSA PRIVATE KEY" in shown
