"""report.html: one self-contained page (inline CSS, no JavaScript) for people reading a run.

Every value passes through `redact` and `html.escape` on its way into the page, whatever the
plugin already did. Rows keep the order they arrive in (the guide's order); sections appear in
first-seen order.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kubeproof.redact import redact
from kubeproof.reports.model import (
    OUTCOMES,
    ResultRow,
    as_rows,
    count_outcomes,
    iso_utc,
    profile_score,
    summarize_by_section,
)

# Transport counters shown first, in this order; any other counter the plugin adds follows.
TRANSPORT_COLUMNS: tuple[str, ...] = ("ssh_connections", "remote_commands", "remote_command_seconds", "fact_batches")

_OUTCOME_COLOURS: Mapping[str, tuple[str, str]] = {  # outcome -> (background, text)
    "passed": ("#dff3e3", "#14532d"),
    "failed": ("#fde2e1", "#7f1d1d"),
    "error": ("#fde8cf", "#7c2d12"),
    "skipped": ("#ececec", "#404040"),
    "finding": ("#fff4c2", "#713f12"),
}


def _e(value: object) -> str:
    """Redact, then escape: the only way text gets into the page."""
    return html.escape(redact(str(value)), quote=True)


def _css() -> str:
    colours = "\n".join(
        f".o-{name} {{ background: {background}; color: {text}; }}"
        for name, (background, text) in _OUTCOME_COLOURS.items()
    )
    # The "hide <outcome>" checkboxes precede the results table in the same section, so a sibling
    # selector filters rows without any script.
    filters = "\n".join(f"#hide-{name}:checked ~ table tr.row-{name} {{ display: none; }}" for name in OUTCOMES)
    return f"""
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #1f2328; }}
h1 {{ margin-bottom: 0.2em; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #d0d7de; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }}
th {{ background: #f6f8fa; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.zero {{ color: #8c959f; }}
dl.meta {{ display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; }}
dl.meta dt {{ font-weight: 600; }}
dl.meta dd {{ margin: 0; }}
code, pre {{ font: 12px/1.4 ui-monospace, monospace; white-space: pre-wrap; word-break: break-word; }}
details dl dt {{ font-weight: 600; margin-top: 0.4em; }}
details dl dd {{ margin-left: 1em; }}
.reason {{ font-style: italic; }}
.caused-by {{ font-weight: 600; }}
#root-causes li {{ margin: 0.2em 0; }}
p.warning {{ background: #fff8c5; border: 1px solid #d4a72c; padding: 0.4em 0.6em; font-weight: 600; }}
label {{ margin-right: 1em; }}
{colours}
{filters}
"""


def _meta_value(key: str, value: Any) -> str:
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and any(word in key for word in ("start", "end", "finish", "time"))
    ):
        return f"{iso_utc(float(value))} ({value})"
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def _header(meta: Mapping[str, Any], rows: Sequence[ResultRow]) -> list[str]:
    cluster = meta.get("cluster") or meta.get("name") or "cluster"
    totals = count_outcomes(rows)
    parts = [f"<h1>kubeproof report: {_e(cluster)}</h1>"]
    # Warnings about the run itself (e.g. unverified host keys) come before anything it found.
    parts += [f'<p class="warning" role="alert">WARNING: {_e(w)}</p>' for w in meta.get("warnings") or ()]
    parts += _root_causes(meta.get("root_causes") or ())
    parts.append('<dl class="meta">')
    parts += [
        f"<dt>{_e(key)}</dt><dd>{_e(_meta_value(key, value))}</dd>"
        for key, value in meta.items()
        if key not in ("warnings", "root_causes") and value not in ("", None, [], ())
    ]
    parts.append("</dl>")
    parts.append(
        "<p>"
        + " ".join(f'<span class="o-{name}">{_e(name)}: {totals[name]}</span>' for name in OUTCOMES)
        + f" of {len(rows)} results</p>"
    )
    return parts


def _row_anchor(key: str, host: str) -> str:
    return "row-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in f"{key}@{host}")


def _root_causes(causes: Iterable[Mapping[str, Any]]) -> list[str]:
    """What the reader needs first on a broken cluster: the few rows everything else follows from."""
    causes = list(causes)
    if not causes:
        return []
    parts = ['<section id="root-causes">', f"<h2>Root causes ({len(causes)})</h2>", "<ol>"]
    for cause in causes:
        count = int(cause.get("consequences") or 0)
        follow = {0: "no other row follows from it", 1: "1 row follows from it"}.get(
            count, f"{count} rows follow from it"
        )
        label = f"[{cause.get('key')}] {cause.get('host')}"
        target = _row_anchor(str(cause.get("key")), str(cause.get("host")))
        parts.append(
            f'<li><a href="#{target}"><strong>{_e(label)}</strong></a>: {_e(cause.get("text", ""))}'
            f' <span class="o-{_e(cause.get("outcome", "failed"))}">{_e(cause.get("outcome", ""))}</span>;'
            f" {_e(follow)}</li>"
        )
    parts += ["</ol>", "</section>"]
    return parts


def _summary(rows: Sequence[ResultRow]) -> list[str]:
    chapters: dict[str, str] = {}
    for row in rows:
        chapters.setdefault(row.section_name, row.guide)
    head = "".join(f"<th>{_e(name)}</th>" for name in OUTCOMES)
    parts = [
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
        parts.append(
            f'<tr data-section="{_e(section)}"><td>{_e(section)}</td><td>{_e(chapters[section])}</td>'
            f'{cells}<td class="num">{sum(counts.values())}</td></tr>'
        )
    parts += ["</tbody>", "</table>"]
    return parts


def _profile(rows: Sequence[ResultRow], profile: str) -> list[str]:
    score = profile_score(rows, profile)
    parts = [
        "<h2>Profile score</h2>",
        f"<p>profile <strong>{_e(score.profile)}</strong>: {_e(score.verdict)}; "
        f"weighted score <strong>{score.score}</strong> (high=5, medium=3, low=1)</p>",
    ]
    if score.findings:
        parts += [
            '<table id="findings">',
            "<thead><tr><th>ID</th><th>host</th><th>severity</th><th>observed</th><th>remediation</th></tr></thead>",
            "<tbody>",
        ]
        parts += [
            f"<tr><td>{_e(row.key)}</td><td>{_e(row.host)}</td><td>{_e(row.severity)}</td>"
            f"<td><code>{_e(row.observed)}</code></td><td><code>{_e(row.remediation)}</code></td></tr>"
            for row in score.findings
        ]
        parts += ["</tbody>", "</table>"]
    return parts


def _list(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li><code>{_e(item)}</code></li>" for item in items) + "</ul>"


def _details(row: ResultRow) -> str:
    entries: list[tuple[str, str]] = [("invariant", _e(row.text or row.id))]
    if row.guide:
        entries.append(("guide chapter", _e(row.guide)))
    entries.append(("kind", _e(f"{row.kind} (severity {row.severity})")))
    if row.sources:
        entries.append(("sources", _list(row.sources)))
    if row.diagnosis:
        entries.append(("diagnosis", "<pre>" + _e("\n".join(row.diagnosis)) + "</pre>"))
    if row.reason:
        entries.append(("reason", _e(row.reason)))
    if row.evidence:
        commands = [f"{item.host}$ {item.command}  (fact {item.fact}, rc {item.rc})" for item in row.evidence]
        entries.append(("commands (raw output in the evidence bundle)", _list(commands)))
    if row.nodeid:
        entries.append(("test", f"<code>{_e(row.nodeid)}</code>"))
    if row.started is not None:
        duration = f", {row.duration:.3f} s" if row.duration is not None else ""
        entries.append(("started", _e(f"{iso_utc(row.started)}{duration}")))
    body = "".join(f"<dt>{_e(title)}</dt><dd>{value}</dd>" for title, value in entries)
    return f"<details><summary>details</summary><dl>{body}</dl></details>"


def _results(rows: Sequence[ResultRow]) -> list[str]:
    parts = ['<section id="results">', "<h2>Results</h2>"]
    for name in OUTCOMES:
        parts.append(f'<input type="checkbox" id="hide-{name}"><label for="hide-{name}">hide {_e(name)}</label>')
    parts += [
        '<table id="results-table">',
        "<thead><tr><th>ID</th><th>host</th><th>outcome</th><th>expected</th><th>observed</th>"
        "<th>remediation</th><th>details</th></tr></thead>",
        "<tbody>",
    ]
    for row in rows:
        observed = f"<code>{_e(row.observed)}</code>" if row.observed else ""
        if row.reason and row.outcome in ("error", "skipped"):
            observed += f'<div class="reason">{_e(row.reason)}</div>'
        if row.caused_by:
            key, _, host = row.caused_by_key.partition("@")
            observed = (
                f'<div class="caused-by"><a href="#{_row_anchor(key, host)}">{_e(row.caused_by)}</a></div>' + observed
            )
        parts.append(
            f'<tr id="{_row_anchor(row.key, row.host)}" class="row-{_e(row.outcome)}">'
            f"<td>{_e(row.key)}</td><td>{_e(row.host)}</td>"
            f'<td class="o-{_e(row.outcome)}">{_e(row.outcome)}</td>'
            f"<td>{_e(row.expected)}</td><td>{observed}</td>"
            f"<td><code>{_e(row.remediation)}</code></td><td>{_details(row)}</td></tr>"
        )
    parts += ["</tbody>", "</table>", "</section>"]
    return parts


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.3f}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value}</td>'
    return f"<td>{_e(value)}</td>"


def _transport(stats: Mapping[str, Mapping[str, Any]]) -> list[str]:
    columns = [name for name in TRANSPORT_COLUMNS if any(name in counters for counters in stats.values())]
    for counters in stats.values():
        columns += [name for name in counters if name not in columns]
    head = "".join(f"<th>{_e(name.replace('_', ' '))}</th>" for name in columns)
    parts = [
        "<h2>Transport</h2>",
        '<table id="transport">',
        f"<thead><tr><th>host</th>{head}</tr></thead>",
        "<tbody>",
    ]
    for host, counters in stats.items():
        cells = "".join(_cell(counters.get(name, "")) for name in columns)
        parts.append(f"<tr><td>{_e(host)}</td>{cells}</tr>")
    parts += ["</tbody>", "</table>"]
    return parts


def render_html(rows: Sequence[ResultRow], *, meta: Mapping[str, Any], stats: Mapping[str, Mapping[str, Any]]) -> str:
    cluster = meta.get("cluster") or meta.get("name") or "cluster"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>kubeproof report: {_e(cluster)}</title>",
        f"<style>{_css()}</style>",
        "</head>",
        "<body>",
        *_header(meta, rows),
        *_summary(rows),
        *_profile(rows, str(meta.get("profile") or "seed")),
        *_results(rows),
        *_transport(stats),
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def write_html(
    rows: Iterable[ResultRow | Mapping[str, Any]],
    path: Path,
    *,
    meta: Mapping[str, Any],
    stats: Mapping[str, Mapping[str, Any]],
) -> Path:
    """Write report.html (UTF-8) to `path`, creating its directory; return the path.

    `rows` are `ResultRow`s or the plugin's plain records.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(as_rows(rows), meta=meta, stats=stats), encoding="utf-8")
    return path
