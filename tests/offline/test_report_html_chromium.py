"""report.html in headless Chromium: rendered, screenshotted, and its DOM (after the page's own
script ran) checked against the records: matrix cells = IDs x hosts, verdict counts = rows, every
link lands on an element, the filters are live, and the Chinese titles hidden behind their English
ones exactly when the machine has no CJK font.

Needs no lab: the page is made from the realistic 437-row run of report_html_samples. CI gets
Chromium from ./kp (Debian package `chromium`); without it the test skips and says so. Set
KUBEPROOF_SCREENSHOT_DIR to keep the screenshots for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from kubeproof.reports import write_html
from kubeproof.reports.html_text import row_anchor
from tests.offline import report_html_samples as samples
from tests.offline.report_html_samples import ReportDom, dom_problems

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (./kp setup installs the Debian package `chromium`)"
)
WINDOW = (1366, 1800)
TIMEOUT = 180  # seconds for one Chromium run; a first start on a cold 2-core machine is slow


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",  # nothing left in ~/.config
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def _has_cjk_font() -> bool:
    if shutil.which("fc-list") is None:
        return False
    listed = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False)
    return bool(listed.stdout.strip())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path, str]:
    records, causes = samples.broken_run()
    directory = tmp_path_factory.mktemp("report")
    report = write_html(
        records, directory / "report.html", meta={**samples.META, "root_causes": causes}, stats=samples.STATS
    )
    started = time.monotonic()
    dumped = _chromium(directory / "profile", "--dump-dom", report.as_uri())
    elapsed = time.monotonic() - started
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    print(f"chromium --dump-dom of {report.stat().st_size} bytes, {len(records)} rows: {elapsed:.1f} s")
    return records, report, dumped.stdout


def test_dom_after_the_script_matches_the_records(rendered: tuple[list[dict[str, Any]], Path, str]) -> None:
    records, _, dumped = rendered
    dom = ReportDom(dumped)
    assert dom_problems(dom, records) == []
    [filters] = [a for t, a in dom.elements if a.get("id") == "filters"]
    assert "hidden" not in filters  # the script ran and showed the filter controls
    assert dom.texts["#shown-count"] == str(len(records))
    [root] = [a for t, a in dom.elements if t == "html"]
    # Chinese titles shown beside the English where a CJK font exists, hidden (with a note) where none does.
    assert ("no-cjk" in root.get("class", "").split()) is (not _has_cjk_font())


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_screenshot(rendered: tuple[list[dict[str, Any]], Path, str], tmp_path: Path) -> None:
    _, report, _ = rendered
    shot = tmp_path / "report.png"
    result = _chromium(tmp_path / "profile", f"--screenshot={shot}", report.as_uri())
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    assert _png_size(shot) == WINDOW
    # A blank page compresses to a few KB; the verdict, matrix and table make it far larger.
    assert shot.stat().st_size > 100_000, shot.stat().st_size
    keep = os.environ.get("KUBEPROOF_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")


# What a reader does: untick "passed", type a host name. Appended after the page's own script.
_READER = """<script>
document.querySelector('#filters input[data-outcome="passed"]').click();
var text = document.getElementById("filter-text");
text.value = "NODE02"; text.dispatchEvent(new Event("input"));
</script></body>"""


def test_filters_hide_and_count_rows(rendered: tuple[list[dict[str, Any]], Path, str], tmp_path: Path) -> None:
    records, report, _ = rendered
    filtered = tmp_path / "filtered.html"
    filtered.write_text(report.read_text(encoding="utf-8").replace("</body>", _READER), encoding="utf-8")
    result = _chromium(tmp_path / "profile", "--dump-dom", filtered.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = ReportDom(result.stdout)
    rows = dom.results_rows()
    shown = [row for row in rows if "hidden" not in row]
    assert shown and len(shown) < len(rows)
    assert all(row["data-outcome"] != "passed" for row in shown)
    assert all("node02" in dom.texts[f"#{row['id']}"].lower() for row in shown)
    on_node02 = {row_anchor(r["key"], r["host"]) for r in records if r["host"] == "node02" and r["outcome"] != "passed"}
    assert on_node02 and on_node02 <= {row["id"] for row in shown}
    assert dom.texts["#shown-count"] == str(len(shown))
