"""Small text helpers shared by report.html's parts: escaping, times, chapters, outcome marks.

Every value passes through `e` (redact, then escape) on its way into the page, whatever the
plugin already did.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from kubeproof.redact import redact
from kubeproof.reports.chapters import english_title, has_cjk
from kubeproof.reports.model import ResultRow

# outcome -> (background, text colour, mark). The mark says the outcome without colour (matrix
# cells, colour-blind readers, print); every mark is in DejaVu Sans, Debian's default font.
OUTCOME_STYLE: Mapping[str, tuple[str, str, str]] = {
    "passed": ("#c9ecd2", "#14532d", "✓"),
    "failed": ("#f8c4c1", "#7f1d1d", "✗"),
    "error": ("#fbd3a5", "#7c2d12", "!"),
    "skipped": ("#e4e4e4", "#404040", "–"),
    "finding": ("#fbe7a1", "#713f12", "◆"),
    "waived": ("#d9d2f4", "#3b2a7a", "w"),
}
_UNKNOWN_STYLE = ("#ffffff", "#1f2328", "?")

# Failures first (in guide order among themselves), then what was accepted, then the rest.
_RANK: Mapping[str, int] = {"failed": 0, "error": 0, "waived": 1, "finding": 2}


def e(value: object) -> str:
    """Redact, then escape: the only way text gets into the page."""
    return html.escape(redact(str(value)), quote=True)


def e_preview(value: object, limit: int) -> str:
    """The start of a long text, redacted before it is cut (a cut could hide a secret from redact)."""
    text = redact(str(value))
    return html.escape(text if len(text) <= limit else text[:limit] + "…", quote=True)


def style(outcome: str) -> tuple[str, str, str]:
    return OUTCOME_STYLE.get(outcome, _UNKNOWN_STYLE)


def failure_rank(outcome: str) -> int:
    return _RANK.get(outcome, 3)


def row_anchor(key: str, host: str) -> str:
    """The id of a result row's <tr>: what matrix cells, root causes and "caused by" link to."""
    return "row-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in f"{key}@{host}")


def human_time(timestamp: float, *, milliseconds: bool = False) -> str:
    """Unix time in this machine's time zone, named: "2026-12-05 23:10:04 UTC",
    "2026-12-06 00:10:04 CET (UTC+01:00)"."""
    moment = datetime.fromtimestamp(timestamp).astimezone()
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if milliseconds:
        text += f".{moment.microsecond // 1000:03d}"
    name, offset = moment.tzname() or "", moment.strftime("%z")
    utc_offset = "UTC" if offset in ("", "+0000") else f"UTC{offset[:3]}:{offset[3:]}"
    if not name or name.startswith(("+", "-")):
        return f"{text} {utc_offset}"
    return f"{text} {name}" if name in ("UTC", "GMT") and utc_offset == "UTC" else f"{text} {name} ({utc_offset})"


def plural(count: int, word: str) -> str:
    """ "1 row", "3 rows"."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def chapter_html(guide: str) -> str:
    """The chapter in English, then the guide's own (Chinese) title beside it.

    The Chinese sits in a `.zh` span that the page's script hides, with a note, when the browser
    has no font to draw it: English stays readable either way.
    """
    if not guide:
        return ""
    english = english_title(guide)
    if not has_cjk(guide):
        return e(guide)
    chinese = f'<span class="zh" lang="zh-Hans">{e(guide)}</span>'
    if not english:
        return f'<span class="en untranslated">(untranslated chapter)</span> {chinese}'
    return f'<span class="en">{e(english)}</span> {chinese}'


def section_chapters(rows: Iterable[ResultRow]) -> dict[str, str]:
    """Section -> its chapter as HTML; a section whose rows come from several chapters (the SEC
    findings sit beside what they are about) says how many, and each row names its own."""
    chapters: dict[str, list[str]] = {}
    for row in rows:
        seen = chapters.setdefault(row.section_name, [])
        if row.guide and row.guide not in seen:
            seen.append(row.guide)
    return {
        section: chapter_html(guides[0]) if len(guides) == 1 else e(f"rows from {len(guides)} chapters of the guide")
        for section, guides in chapters.items()
    }


def field(record: Any, name: str) -> Any:
    """A field of an object or a Mapping (the audit helper's `Waiver` is both; its Mapping side gives text)."""
    if record is None:
        return None
    value = getattr(record, name, None)
    if value is None and isinstance(record, Mapping):
        value = record.get(name)
    return value
