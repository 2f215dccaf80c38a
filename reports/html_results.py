"""The body of report.html: every row (failures first, filterable), then the summaries.

A row says what was checked and what was seen, passes as well as failures: its `seen` lines, the
observed value, the sources. Raw command output stays in the evidence bundle (its file is named
in the row's details), so the page stays small.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubeproof.causes import UNREACHABLE_ID
from kubeproof.reports.evidence import evidence_filename
from kubeproof.reports.html_text import (
    chapter_html,
    e,
    e_preview,
    failure_rank,
    field,
    human_time,
    plural,
    row_anchor,
    section_chapters,
    style,
)
from kubeproof.reports.model import OUTCOMES, ResultRow, profile_score, summarize_by_section

# Transport counters shown first, in this order; any other counter the plugin adds follows.
TRANSPORT_COLUMNS: tuple[str, ...] = ("ssh_connections", "remote_commands", "remote_command_seconds", "fact_batches")
_COLUMNS = ("key", "host", "outcome", "check", "seen", "fix")
_NEEDS_FIX = frozenset({"failed", "error", "finding", "waived"})


class Commands:
    """Source commands longer than a line, each written out once at the end of the page.

    A fact's command (a unit's whole state, a certificate directory's dump) is the source of
    many rows; a row shows its first line's worth and links to the full text.
    """

    PREVIEW = 110

    def __init__(self, rows: Iterable[ResultRow]) -> None:
        self.anchors: dict[str, str] = {}
        for row in rows:
            for source in row.sources:
                if len(source) > self.PREVIEW and source not in self.anchors:
                    self.anchors[source] = f"cmd-{len(self.anchors) + 1}"

    def item(self, source: str) -> str:
        anchor = self.anchors.get(source)
        if anchor is None:
            return f"<li><code>{e(source)}</code></li>"
        return f'<li><code>{e_preview(source, self.PREVIEW)}</code> <a href="#{anchor}">(full: {anchor})</a></li>'

    def section(self) -> list[str]:
        if not self.anchors:
            return []
        lines = [
            '<section id="commands">',
            f"<h2>Long commands ({len(self.anchors)}), each written once</h2>",
            "<ol>",
        ]
        lines += [f'<li id="{anchor}"><pre>{e(source)}</pre></li>' for source, anchor in self.anchors.items()]
        lines += ["</ol>", "</section>"]
        return lines


def _list(items: Iterable[str], css: str) -> str:
    return f'<ul class="{css}">' + "".join(f"<li><code>{e(item)}</code></li>" for item in items) + "</ul>"


def _waiver(row: ResultRow) -> str:
    """A waived row's waiver, or an expired one that no longer covers a failure (the audit helper's fields)."""
    waiver = getattr(row, "waiver", None)
    if not waiver:
        return ""
    expired = row.outcome != "waived" or field(waiver, "expired") is True
    describe = getattr(waiver, "describe", None)
    if callable(describe):
        text = str(describe())
    else:
        reason, approver, expires = (field(waiver, name) or "" for name in ("reason", "approver", "expires"))
        state = f"waiver expired on {expires}" if expired else f"waived until {expires}"
        text = f"{state} by {approver or '(no approver)'}: {reason or '(no reason given)'}"
    return f'<div class="waiver{" expired" if expired else ""}">{e(text)}</div>'


def _outcome_cell(row: ResultRow) -> str:
    return f'<td><span class="badge o-{e(row.outcome)}">{e(style(row.outcome)[2])} {e(row.outcome)}</span></td>'


def _seen_cell(row: ResultRow, commands: Commands) -> str:
    parts: list[str] = []
    regression = str(getattr(row, "regression", "") or "")
    if regression:
        parts.append(f'<div class="regression">regression: {e(regression)}</div>')
    parts.append(_waiver(row))
    if row.caused_by:
        key, _, host = row.caused_by_key.partition("@")
        parts.append(f'<div class="caused-by"><a href="#{row_anchor(key, host)}">{e(row.caused_by)}</a></div>')
    # An unreachable host's rows say so in their "caused by" line already.
    if row.reason and row.outcome in ("error", "skipped") and not row.caused_by_key.startswith(f"{UNREACHABLE_ID}@"):
        parts.append(f'<div class="reason">{e(row.reason)}</div>')
    if row.seen:
        parts.append(_list(row.seen, "seen"))
    if row.observed:
        parts.append(f'<div class="observed">observed <code>{e(row.observed)}</code></div>')
    if row.diagnosis and row.outcome != "passed":
        parts.append('<pre class="diagnosis">' + e("\n".join(row.diagnosis)) + "</pre>")
    parts.append(_details(row, commands))  # in the widest column: sources and the record's file are what was seen, too
    return "<td>" + "".join(parts) + "</td>"


def _details(row: ResultRow, commands: Commands) -> str:
    entries: list[tuple[str, str]] = []
    if row.guide:
        entries.append(("guide chapter", chapter_html(row.guide)))
    entries.append(("kind", e(f"{row.kind} (severity {row.severity})")))
    if row.remediation and row.outcome not in _NEEDS_FIX:
        entries.append(("fix, if it fails", f"<code>{e(row.remediation)}</code>"))
    if row.sources:
        entries.append(("sources", '<ul class="sources">' + "".join(map(commands.item, row.sources)) + "</ul>"))
    if row.diagnosis and row.outcome == "passed":
        entries.append(("diagnosis", "<pre>" + e("\n".join(row.diagnosis)) + "</pre>"))
    entries.append(
        ("full record", f"<code>evidence/{e(evidence_filename(row))}</code> (with raw output) in the bundle")
    )
    if row.nodeid:
        entries.append(("test", f"<code>{e(row.nodeid)}</code>"))
    if row.started is not None:
        took = f", took {row.duration:.3f} s" if row.duration is not None else ""
        entries.append(("started", e(human_time(row.started, milliseconds=True) + took)))
    body = "".join(f"<dt>{e(title)}</dt><dd>{value}</dd>" for title, value in entries)
    return f"<details><summary>details</summary><dl>{body}</dl></details>"


def ordered(rows: Sequence[ResultRow]) -> list[ResultRow]:
    """Failures first (root causes, then the other failed rows, then errors), then waived rows,
    findings, and the rest; the guide's order within each."""
    return sorted(rows, key=lambda row: (failure_rank(row.outcome), bool(row.caused_by), row.outcome != "failed"))


def results(rows: Sequence[ResultRow], commands: Commands) -> list[str]:
    shown = ordered(rows)
    bad = sum(1 for row in rows if failure_rank(row.outcome) == 0)
    boxes = "".join(
        f'<label class="o-{e(name)}"><input type="checkbox" data-outcome="{e(name)}" checked> {e(name)}</label>'
        for name in OUTCOMES
    )
    lines = [
        '<section id="results">',
        f"<h2>Results: the {plural(bad, 'failed or errored row')} first, then the other {len(rows) - bad}</h2>"
        if bad
        else f"<h2>Results: {plural(len(rows), 'row')}, in the guide's order</h2>",
        # Hidden until the page's script runs: without it every row is shown and the controls do nothing.
        f'<div id="filters" hidden>{boxes}<input type="search" id="filter-text" '
        'placeholder="filter: ID, host, text..." aria-label="filter rows by text">'
        f' <span id="shown-count">{len(rows)}</span> of {len(rows)} rows shown</div>',
        '<table id="results-table">',
        # table-layout: fixed takes the column widths from these header cells.
        "<thead><tr>"
        + "".join(f'<th class="c-{name}">{name if name != "key" else "ID"}</th>' for name in _COLUMNS)
        + "</tr></thead>",
        "<tbody>",
    ]
    previous_rank = 0
    for row in shown:
        rank = failure_rank(row.outcome)
        css = f"row-{e(row.outcome)}" + (" first-of-rest" if rank and not previous_rank and bad else "")
        previous_rank = rank
        fix = f"<code>{e(row.remediation)}</code>" if row.outcome in _NEEDS_FIX and row.remediation else ""
        expected = f'<div class="expected">{e(row.expected)}</div>' if row.expected else ""
        lines.append(
            f'<tr id="{row_anchor(row.key, row.host)}" class="{css}" data-outcome="{e(row.outcome)}">'
            f'<td class="key">{e(row.key)}</td><td>{e(row.host)}</td>{_outcome_cell(row)}'
            f"<td>{e(row.text or row.id)}{expected}</td>{_seen_cell(row, commands)}<td>{fix}</td></tr>"
        )
    lines += ["</tbody>", "</table>", "</section>"]
    return lines


def section_summary(rows: Sequence[ResultRow]) -> list[str]:
    chapters = section_chapters(rows)
    head = "".join(f"<th>{e(name)}</th>" for name in OUTCOMES)
    lines = [
        "<h2>Summary by guide section</h2>",
        '<table id="summary">',
        f"<thead><tr><th>section</th><th>guide chapter</th>{head}<th>total</th></tr></thead>",
        "<tbody>",
    ]
    for section, counts in summarize_by_section(rows).items():
        cells = "".join(
            f'<td class="num o-{name}">{counts[name]}</td>' if counts[name] else '<td class="num zero">0</td>'
            for name in OUTCOMES
        )
        lines.append(
            f'<tr data-section="{e(section)}"><td>{e(section)}</td><td>{chapters[section]}</td>'
            f'{cells}<td class="num">{sum(counts.values())}</td></tr>'
        )
    lines += ["</tbody>", "</table>"]
    return lines


def profile(rows: Sequence[ResultRow], name: str) -> list[str]:
    score = profile_score(rows, name)
    lines = [
        "<h2>Profile score</h2>",
        f"<p>profile <strong>{e(score.profile)}</strong>: {e(score.verdict)}; "
        f"weighted score <strong>{score.score}</strong> (high=5, medium=3, low=1)</p>",
    ]
    if score.findings:
        lines += [
            '<table id="findings">',
            "<thead><tr><th>ID</th><th>host</th><th>severity</th><th>observed</th><th>remediation</th></tr></thead>",
            "<tbody>",
        ]
        lines += [
            f'<tr><td><a href="#{row_anchor(row.key, row.host)}">{e(row.key)}</a></td><td>{e(row.host)}</td>'
            f"<td>{e(row.severity)}</td><td><code>{e(row.observed)}</code></td>"
            f"<td><code>{e(row.remediation)}</code></td></tr>"
            for row in score.findings
        ]
        lines += ["</tbody>", "</table>"]
    return lines


def _number_cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.3f}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value}</td>'
    return f"<td>{e(value)}</td>"


def transport(stats: Mapping[str, Mapping[str, Any]]) -> list[str]:
    columns = [name for name in TRANSPORT_COLUMNS if any(name in counters for counters in stats.values())]
    for counters in stats.values():
        columns += [name for name in counters if name not in columns]
    head = "".join(f"<th>{e(name.replace('_', ' '))}</th>" for name in columns)
    lines = ["<h2>Transport</h2>", '<table id="transport">', f"<thead><tr><th>host</th>{head}</tr></thead>", "<tbody>"]
    for host, counters in stats.items():
        lines.append(f"<tr><td>{e(host)}</td>{''.join(_number_cell(counters.get(n, '')) for n in columns)}</tr>")
    lines += ["</tbody>", "</table>"]
    return lines
