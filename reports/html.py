"""report.html: one self-contained page (inline CSS and a small inline script, no network).

It opens with the verdict, the run, the root causes and an ID x host matrix; then every row,
failures first, filterable; then the summaries by guide section, the profile score, the
transport counters, and the long source commands, each written once. The parts live in
`html_overview` (top), `html_results` (rows and tables), `html_text` (escaping, times,
chapters) and `html_assets` (style and script).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kubeproof.reports import html_overview, html_results
from kubeproof.reports.html_assets import css, script
from kubeproof.reports.html_text import e
from kubeproof.reports.model import ResultRow, as_rows

__all__ = ["render_html", "write_html"]

_NO_CJK_NOTE = (
    '<p id="no-cjk-note">The guide\'s chapter titles are shown in English only: this browser has no font '
    "to draw their Chinese originals (a CJK font such as Debian's fonts-noto-cjk shows them beside the English).</p>"
)


def render_html(rows: Sequence[ResultRow], *, meta: Mapping[str, Any], stats: Mapping[str, Mapping[str, Any]]) -> str:
    cluster = meta.get("cluster") or meta.get("name") or "cluster"
    commands = html_results.Commands(rows)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>kubeproof report: {e(cluster)}</title>",
        f"<style>{css()}</style>",
        "</head>",
        "<body>",
        f"<h1>kubeproof report: {e(cluster)}</h1>",
        # Warnings about the run itself (e.g. unverified host keys) come before anything it found.
        *(f'<p class="warning" role="alert">WARNING: {e(w)}</p>' for w in meta.get("warnings") or ()),
        *html_overview.verdict(rows, meta),
        *html_overview.root_causes(meta.get("root_causes") or (), rows),
        *html_overview.run_facts(meta),
        _NO_CJK_NOTE,
        *html_overview.matrix(rows, meta),
        *html_results.results(rows, commands),
        *html_results.section_summary(rows),
        *html_results.profile(rows, str(meta.get("profile") or "seed")),
        *html_results.transport(stats),
        *commands.section(),
        f"<script>{script()}</script>",
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
