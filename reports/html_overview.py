"""The top of report.html: the verdict, the run, the root causes, and the ID x host matrix.

What a reader needs first: did the cluster pass, what broke first, and where on the cluster the
rest of the rows stand, at a glance, each cell one click from its row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubeproof.reports.html_text import duration_text, e, human_time, plural, row_anchor, section_chapters, style
from kubeproof.reports.model import OUTCOMES, ResultRow, count_outcomes

# The run's facts in the order a reader wants them, with their labels; other meta keys follow,
# and the ones rendered elsewhere (verdict, warnings, root causes) are left out of this list.
_RUN_FIELDS: tuple[tuple[str, str], ...] = (
    ("cluster", "cluster"),
    ("profile", "profile"),
    ("hosts", "hosts"),
    ("started", "started"),
    ("finished", "finished"),
    ("user", "run by"),
    ("logins", "logins"),
    ("source", "cluster file"),
    ("args", "arguments"),
    ("kubeproof", "kubeproof"),
    ("python", "python"),
    ("baseline", "baseline"),
    ("waivers", "waivers file"),
    ("signature", "signed by key"),
)
_SHOWN_ELSEWHERE = frozenset({"warnings", "root_causes", "waiver_problems", "regressions", "name"})


def _bad(counts: Mapping[str, int]) -> int:
    return counts.get("failed", 0) + counts.get("error", 0)


def verdict(rows: Sequence[ResultRow], meta: Mapping[str, Any]) -> list[str]:
    counts = count_outcomes(rows)
    bad = _bad(counts)
    causes = list(meta.get("root_causes") or ())
    if bad:
        word, css = "FAILED", "verdict-failed"
        said = f"{bad} of {len(rows)} rows did not hold"
        if causes:
            said += f"; {plural(len(causes), 'root cause')} below"
    else:
        word, css = "PASSED", "verdict-passed"
        said = f"every invariant held ({len(rows)} rows)"
    if counts.get("waived"):
        said += f"; {plural(counts['waived'], 'failure')} waived"
    if counts.get("finding"):
        said += f"; {plural(counts['finding'], 'finding')} reported, not failing"
    lines = [
        f'<section id="verdict" class="{css}">',
        f'<p class="verdict"><strong>{word}</strong> {e(said)}</p>',
        '<ul class="counts">',
    ]
    for name in OUTCOMES:
        lines.append(
            f'<li class="o-{e(name)}"><span class="mark">{e(style(name)[2])}</span> '
            f'<span class="count" data-outcome="{e(name)}">{counts[name]}</span> {e(name)}</li>'
        )
    lines.append(f'<li class="total"><span class="count" data-outcome="total">{len(rows)}</span> rows</li>')
    lines.append("</ul>")
    regressions = meta.get("regressions")
    if isinstance(regressions, int) and meta.get("baseline"):
        css = "regressions" if regressions else "regressions none"
        said = f"{plural(regressions, 'regression')} against the baseline {meta['baseline']}"
        lines.append(f'<p class="{css}">{e(said)}</p>')
    problems = [str(p) for p in meta.get("waiver_problems") or ()]
    if problems:
        lines.append('<ul class="waiver-problems">')
        lines += [f"<li>waivers: {e(problem)}</li>" for problem in problems]
        lines.append("</ul>")
    lines.append("</section>")
    return lines


def _meta_value(key: str, value: Any, meta: Mapping[str, Any]) -> str:
    if key in ("started", "finished") and isinstance(value, (int, float)) and not isinstance(value, bool):
        text = human_time(float(value))
        started = meta.get("started")
        if key == "finished" and isinstance(started, (int, float)) and not isinstance(started, bool):
            text += f" (took {duration_text(float(value) - float(started))})"
        return e(text)
    if key == "hosts" and isinstance(value, (list, tuple)):
        return e(f"{len(value)}: {', '.join(str(item) for item in value)}")
    if isinstance(value, (list, tuple)):
        return (
            f"<code>{e(' '.join(str(item) for item in value))}</code>"
            if key == "args"
            else e(", ".join(map(str, value)))
        )
    if isinstance(value, Mapping):
        return e(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))
    return e(value)


def run_facts(meta: Mapping[str, Any]) -> list[str]:
    """The run in a definition list; empty values are left out rather than shown blank."""
    known = [key for key, _ in _RUN_FIELDS]
    keys = known + [key for key in meta if key not in known and key not in _SHOWN_ELSEWHERE]
    labels = dict(_RUN_FIELDS)
    lines = ['<dl class="meta">']
    for key in keys:
        value = meta.get(key)
        if value in ("", None, [], ()):
            continue
        lines.append(f"<dt>{e(labels.get(key, key))}</dt><dd>{_meta_value(key, value, meta)}</dd>")
    lines.append("</dl>")
    return lines


def root_causes(causes: Iterable[Mapping[str, Any]], rows: Sequence[ResultRow]) -> list[str]:
    """The few rows everything else follows from, each linked to its row.

    A cause that is no row (an unreachable host) carries the anchor itself, so its consequences'
    "caused by" links land here.
    """
    causes = list(causes)
    if not causes:
        return []
    anchors = {row_anchor(row.key, row.host) for row in rows}
    lines = ['<section id="root-causes">', f"<h2>Root causes ({len(causes)})</h2>", "<ol>"]
    for cause in causes:
        count = int(cause.get("consequences") or 0)
        follow = {0: "no other row follows from it", 1: "1 row follows from it"}.get(
            count, f"{count} rows follow from it"
        )
        outcome = str(cause.get("outcome") or "failed")
        key, host = str(cause.get("key")), str(cause.get("host"))
        anchor = row_anchor(key, host)
        own = "" if anchor in anchors else f' id="{anchor}"'
        lines.append(
            f'<li{own}><a href="#{anchor}"><strong>{e(f"[{key}] {host}")}</strong></a>: '
            f'{e(cause.get("text", ""))} <span class="badge o-{e(outcome)}">{e(outcome)}</span>; {e(follow)}</li>'
        )
    lines += ["</ol>", "</section>"]
    return lines


def _hosts(rows: Sequence[ResultRow], meta: Mapping[str, Any]) -> list[str]:
    """The hosts that ran rows, in the cluster file's order (then any other, first seen)."""
    ran = {row.host for row in rows}
    ordered = [str(h) for h in meta.get("hosts") or () if str(h) in ran]
    return ordered + sorted(ran - set(ordered), key=[row.host for row in rows].index)


def _cell(rows: Sequence[ResultRow], row_id: str, host: str) -> str:
    if not rows:
        return f'<td class="cell empty" data-id="{e(row_id)}" data-host="{e(host)}" title="not run on {e(host)}"></td>'
    marks = "".join(
        f'<a class="m o-{e(row.outcome)}" href="#{row_anchor(row.key, row.host)}" '
        f'title="{e(f"[{row.key}] {row.host}: {row.outcome}: {row.text}")}">{e(style(row.outcome)[2])}</a>'
        for row in rows
    )
    return f'<td class="cell" data-id="{e(row_id)}" data-host="{e(host)}">{marks}</td>'


def matrix(rows: Sequence[ResultRow], meta: Mapping[str, Any]) -> list[str]:
    """ID x host, one small table per guide section; a cell holds one mark per row (an ID's parts).

    Every cell of the grid is drawn, an empty one where the ID does not run on that host (its
    role), so the matrix has exactly IDs x hosts cells.
    """
    hosts = _hosts(rows, meta)
    sections: dict[str, dict[str, dict[str, list[ResultRow]]]] = {}
    chapters = section_chapters(rows)
    for row in rows:
        by_host = sections.setdefault(row.section_name, {}).setdefault(row.id, {})
        by_host.setdefault(row.host, []).append(row)
    ids = sum(len(ids) for ids in sections.values())
    lines = [
        f'<section id="matrix-section"><h2>Matrix: {ids} IDs x {len(hosts)} hosts</h2>',
        '<p class="hint">One mark per row, coloured by outcome; click one to go to its row. '
        + " ".join(f'<span class="m o-{e(n)}">{e(style(n)[2])}</span> {e(n)}' for n in OUTCOMES)
        + ' <span class="m legend-empty"></span> not run on that host</p>',
        f'<div id="matrix" data-ids="{ids}" data-hosts="{len(hosts)}">',
    ]
    head = "".join(f"<th>{e(host)}</th>" for host in hosts)
    for section, by_id in sections.items():
        lines.append(
            f'<table class="matrix" data-section="{e(section)}"><thead><tr><th class="sec">{e(section)}</th>'
            f'{head}</tr><tr><th colspan="{len(hosts) + 1}" class="chapter"><div>{chapters[section]}</div></th>'
            "</tr></thead><tbody>"
        )
        for row_id, by_host in by_id.items():
            first = next(iter(by_host.values()))[0]
            cells = "".join(_cell(by_host.get(host, []), row_id, host) for host in hosts)
            lines.append(f'<tr><th class="id" title="{e(first.text)}">{e(row_id)}</th>{cells}</tr>')
        lines.append("</tbody></table>")
    lines += ["</div>", "</section>"]
    return lines
