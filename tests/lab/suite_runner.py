"""Run the conformance suites as a user would (a pytest subprocess) and read their outcomes back.

Outcomes come from the JUnit XML's per-test properties (invariant, host, outcome) the plugin
writes, so a fault test asserts on the ID that failed, not on text.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outcome:
    key: str  # "ENV-04:fstab@node01" (the parametrized id)
    invariant: str
    host: str
    outcome: str  # passed failed error skipped finding
    message: str


@dataclass
class SuiteRun:
    returncode: int
    seconds: float
    output: str
    outcomes: list[Outcome] = field(default_factory=list)

    def with_outcome(self, outcome: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.outcome == outcome]

    def failed_ids(self) -> set[tuple[str, str]]:
        return {(o.invariant, o.host) for o in self.outcomes if o.outcome == "failed"}

    def outcome_of(self, key: str) -> str:
        matches = [o.outcome for o in self.outcomes if o.key == key]
        assert matches, f"no result for {key}; have {[o.key for o in self.outcomes][:20]}..."
        return matches[0]

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.outcome] = counts.get(o.outcome, 0) + 1
        return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def run_suites(
    cluster_file: Path,
    paths: Sequence[str] = ("suites",),
    *extra: str,
    report_dir: Path | None = None,
    junit: Path,
    timeout: float = 900,
    python: Path | str = sys.executable,
    cwd: Path = REPO,
) -> SuiteRun:
    """``python -m pytest PATHS --cluster FILE ...`` in cwd; ``--pyargs kubeproof.suites`` works as a path."""
    command = [str(python), "-m", "pytest", *paths, "--cluster", str(cluster_file), "-q", "-rfE"]
    command += ["--junitxml", str(junit), "-o", "junit_family=xunit1"]
    if report_dir is not None:
        command += ["--report-dir", str(report_dir)]
    command += list(extra)
    started = time.monotonic()
    completed = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ), check=False
    )
    run = SuiteRun(completed.returncode, time.monotonic() - started, completed.stdout + completed.stderr)
    if junit.exists():
        run.outcomes = _read_junit(junit)
    return run


def _read_junit(path: Path) -> list[Outcome]:
    outcomes = []
    for case in ET.parse(path).getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        name = case.get("name", "")
        key = name[name.find("[") + 1 : -1] if "[" in name else name
        message = ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                message = (element.get("message") or "") + "\n" + (element.text or "")
        outcome = properties.get("outcome")
        if outcome is None:  # not a catalogue test (or the record was lost): derive from the XML
            outcome = "passed"
            if case.find("failure") is not None:
                outcome = "failed"
            elif case.find("error") is not None:
                outcome = "error"
            elif case.find("skipped") is not None:
                outcome = "skipped"
        outcomes.append(Outcome(key, properties.get("invariant") or "", properties.get("host") or "", outcome, message))
    return outcomes
