"""report.html's inline style and script: the page needs no network and no other file.

The script does two things, and the page reads correctly without it:
* filtering: outcome checkboxes and a text filter over the results table (hidden without script);
  following a link to a row the filter hides shows every row again;
* fonts: when the browser cannot draw CJK ideographs (two different ones render as the same
  .notdef box), it marks the page `no-cjk`: the Chinese chapter titles are hidden behind their
  English ones and a note says why. An embedded font would need a CJK font file at build time
  and would have to be rebuilt whenever a chapter changes; the English-first titles need neither.
"""

from __future__ import annotations

from kubeproof.reports.html_text import OUTCOME_STYLE

_CSS = """
body { font: 14px/1.4 system-ui, "DejaVu Sans", sans-serif; margin: 1em 1.5em; color: #1f2328; }
h1 { margin: 0 0 0.3em; font-size: 1.5em; }
h2 { margin: 1.2em 0 0.4em; font-size: 1.2em; }
table { border-collapse: collapse; margin: 0.4em 0 1em; }
th, td { border: 1px solid #d0d7de; padding: 0.2em 0.45em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.zero { color: #8c959f; }
code, pre { font: 12px/1.35 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap;
  word-break: break-word; }
pre { margin: 0.2em 0; }
.zh { color: #57606a; font-family: "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
  "PingFang SC", "Microsoft YaHei", sans-serif; }
.no-cjk .zh { display: none; }
#no-cjk-note { display: none; color: #57606a; font-size: 0.9em; }
.no-cjk #no-cjk-note { display: block; }
#verdict { border: 2px solid; border-radius: 6px; padding: 0.5em 0.8em; margin: 0.4em 0 0.8em; }
#verdict.verdict-passed { border-color: #2da44e; background: #effaf1; }
#verdict.verdict-failed { border-color: #cf222e; background: #fff1f0; }
p.verdict { margin: 0 0 0.3em; font-size: 1.25em; }
.verdict-passed p.verdict strong { color: #116329; }
.verdict-failed p.verdict strong { color: #a40e26; }
ul.counts { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 0.4em; }
ul.counts li { padding: 0.1em 0.6em; border-radius: 4px; }
ul.counts li.total { background: #eaeef2; }
ul.counts .count { font-weight: 700; font-variant-numeric: tabular-nums; }
.waiver-problems, .regressions { color: #a40e26; font-weight: 600; margin: 0.3em 0 0; }
.regressions.none { color: #57606a; font-weight: 400; }
dl.meta { display: grid; grid-template-columns: repeat(2, max-content minmax(0, 1fr)); gap: 0.05em 1em;
  margin: 0.3em 0; max-width: 80em; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
p.warning { background: #fff8c5; border: 1px solid #d4a72c; padding: 0.4em 0.6em; font-weight: 600; }
#root-causes { border-left: 4px solid #cf222e; padding-left: 0.8em; }
#root-causes li { margin: 0.2em 0; }
.badge { padding: 0 0.35em; border-radius: 3px; white-space: nowrap; }
.hint { color: #57606a; margin: 0.2em 0; }
#matrix { display: flex; flex-wrap: wrap; gap: 0.2em 1em; align-items: flex-start; }
table.matrix { margin: 0; font-size: 12px; }
table.matrix th, table.matrix td { padding: 0.05em 0.3em; }
table.matrix th.chapter { font-weight: 400; font-size: 11px; color: #57606a; }
/* The chapter wraps within the width the IDs and hosts give the table, never widens it. */
table.matrix th.chapter div { width: 0; min-width: 100%; }
table.matrix th.id { font-weight: 400; white-space: nowrap; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
td.cell { white-space: nowrap; padding: 1px 2px; }
.m.legend-empty { height: 1.1em; vertical-align: middle; border: 1px solid #d0d7de; }
td.cell.empty, .m.legend-empty { background: repeating-linear-gradient(45deg, #fff, #fff 3px, #d8dee4 3px,
  #d8dee4 5px); }
.m { display: inline-block; min-width: 1.15em; margin: 0 1px 0 0; text-align: center; text-decoration: none;
  border-radius: 2px; font-size: 11px; line-height: 1.35; }
#filters { position: sticky; top: 0; background: #fff; padding: 0.4em 0; border-bottom: 1px solid #d0d7de;
  z-index: 1; }
#filters label { margin-right: 0.4em; padding: 0.1em 0.4em; border-radius: 3px; }
#filter-text { margin-left: 0.6em; width: 18em; }
#results-table { width: 100%; table-layout: fixed; }
#results-table th.c-key { width: 9em; }
#results-table th.c-host { width: 5.5em; }
#results-table th.c-outcome { width: 6.5em; } #results-table th.c-check { width: 22%; }
#results-table th.c-seen { width: 36%; }
#results-table td { overflow-wrap: anywhere; }
#results-table td code { word-break: normal; }
#results-table td.key { white-space: nowrap; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
#results-table tr.first-of-rest td { border-top: 3px solid #57606a; }
#results-table tr:target td { outline: 2px solid #0969da; }
.expected { color: #57606a; }
ul.seen, ul.sources { margin: 0; padding-left: 1.1em; }
.observed { color: #57606a; }
.reason { font-style: italic; }
.caused-by { font-weight: 600; }
.regression { color: #a40e26; font-weight: 600; }
.waiver { color: #3b2a7a; }
.waiver.expired { color: #a40e26; }
details summary { color: #57606a; cursor: pointer; }
details dl { margin: 0.2em 0; display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 0.1em 0.8em; }
details dl dt { font-weight: 600; }
details dl dd { margin: 0; }
"""

_SCRIPT = r"""
(function () {
  var root = document.documentElement;
  // CJK glyphs drawable? Two different ideographs drawn alike are both the missing-glyph box.
  try {
    var canvas = document.createElement("canvas"), ctx = canvas.getContext("2d");
    canvas.width = canvas.height = 32;
    var draw = function (ch) {
      ctx.clearRect(0, 0, 32, 32); ctx.font = "24px sans-serif"; ctx.fillText(ch, 2, 26);
      return Array.prototype.join.call(ctx.getImageData(0, 0, 32, 32).data, "");
    };
    if (draw("\u73af") === draw("\u5883")) { root.classList.add("no-cjk"); }
  } catch (err) { /* no canvas: leave the Chinese shown */ }

  var filters = document.getElementById("filters");
  if (!filters) { return; }
  var boxes = filters.querySelectorAll("input[data-outcome]");
  var text = document.getElementById("filter-text");
  var count = document.getElementById("shown-count");
  var rows = document.querySelectorAll("#results-table > tbody > tr");
  var apply = function () {
    var on = {}, query = text.value.trim().toLowerCase(), shown = 0;
    boxes.forEach(function (box) { on[box.dataset.outcome] = box.checked; });
    rows.forEach(function (row) {
      var visible = on[row.dataset.outcome] !== false &&
        (!query || row.textContent.toLowerCase().indexOf(query) >= 0);
      row.hidden = !visible;
      if (visible) { shown += 1; }
    });
    count.textContent = String(shown);
  };
  var reveal = function () {
    var target = location.hash && document.getElementById(location.hash.slice(1));
    if (target && target.hidden) {
      boxes.forEach(function (box) { box.checked = true; });
      text.value = ""; apply(); target.scrollIntoView();
    }
  };
  boxes.forEach(function (box) { box.addEventListener("change", apply); });
  text.addEventListener("input", apply);
  window.addEventListener("hashchange", reveal);
  filters.hidden = false;
  apply();
})();
"""


def css() -> str:
    colours = "\n".join(
        f".o-{name} {{ background: {background}; color: {text}; }}"
        for name, (background, text, _) in OUTCOME_STYLE.items()
    )
    return _CSS + colours + "\n"


def script() -> str:
    return _SCRIPT
