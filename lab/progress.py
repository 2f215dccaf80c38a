"""Progress lines with timings, and long subprocesses whose output goes to a log file."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from kubeproof.lab.errors import LabError

# Long work (debootstrap, go build) prints a line this often so a CI log shows it is alive.
HEARTBEAT_SECONDS = 30.0


class Progress:
    """Prints `[lab] ...` lines; `step()` adds how long each step took."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def say(self, message: str) -> None:
        stream = self._stream or sys.stdout
        print(f"[lab] {message}", file=stream, flush=True)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        started = time.monotonic()
        self.say(f"{title} ...")
        try:
            yield
        except BaseException:
            self.say(f"{title}: failed after {time.monotonic() - started:.1f} s")
            raise
        self.say(f"{title}: done in {time.monotonic() - started:.1f} s")


def run_logged(
    argv: Sequence[str],
    *,
    log_path: Path,
    progress: Progress,
    label: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin_path: Path | None = None,
) -> None:
    """Run argv with stdout+stderr appended to log_path, printing a heartbeat while it runs.

    On failure raise LabError naming the log and quoting its last line (the full output stays in
    the log; a CI log shows where to look).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log_path.open("ab") as log_file:
        log_file.write(f"\n$ {subprocess.list2cmdline(list(argv))}\n".encode())
        log_file.flush()
        stdin_file = stdin_path.open("rb") if stdin_path else subprocess.DEVNULL
        try:
            process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=stdin_file,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            while True:
                try:
                    returncode = process.wait(timeout=HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    progress.say(f"  {label}: still running ({time.monotonic() - started:.0f} s)")
        finally:
            if stdin_path and not isinstance(stdin_file, int):
                stdin_file.close()
    if returncode != 0:
        raise LabError(
            f"{label} failed (exit {returncode}) after {time.monotonic() - started:.0f} s:"
            f" {last_line(log_path)!r}; full output in {log_path}"
        )


def last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""
