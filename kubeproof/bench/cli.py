"""`kubeproof bench`: a scale lab of N light hosts, laid out by the installer's environment and pki
phases, then the host-level groups verified serially, with `-n auto`, and the naive way.

For each N (ascending, the same lab grown or shrunk): `lab up --scale N`, `apply --phase
environment pki` (its own state directory: the scale lab's CAs are not the guide lab's), then one
verify per mode. A table on stdout, the figures as JSON with --json. The lab and the installer's
state for it are removed at the end unless --keep. Figures are what this machine measured; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from kubeproof.bench.measure import HOST_LEVEL_SELECTION, MODES, Measurement, measure_verify
from kubeproof.lab.errors import LabError
from kubeproof.lab.labctl import down, up
from kubeproof.lab.progress import Progress
from kubeproof.lab.settings import MAX_SCALE_HOSTS, LabSettings, state_root

DEFAULT_NAME = "bench"


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a comma-separated list of host counts, e.g. 3,10,25,50") from None
    if not sizes or sizes[0] < 1 or sizes[-1] > MAX_SCALE_HOSTS:
        raise argparse.ArgumentTypeError(f"{text!r}: host counts from 1 to {MAX_SCALE_HOSTS}")
    return sizes


def _modes(text: str) -> list[str]:
    modes = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [mode for mode in modes if mode not in MODES]
    if not modes or unknown:
        raise argparse.ArgumentTypeError(f"{text!r}: modes are some of {', '.join(MODES)}")
    return modes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubeproof bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_sizes, default=[3, 10, 25, 50], help="host counts (default 3,10,25,50)")
    parser.add_argument("--modes", type=_modes, default=list(MODES), help=f"some of {','.join(MODES)} (default all)")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"the scale lab's name (default {DEFAULT_NAME})")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="leave the scale lab up afterwards")
    return parser


def _apply(cluster_file: Path, state_dir: Path, progress: Progress) -> float:
    """The installer's environment and pki phases; what its health gate still finds wrong (rows of
    files the later phases write, such as kube-proxy.kubeconfig) shows in the verify runs' outcomes."""
    from kubeproof.bootstrap.cli import main as bootstrap_main

    started = time.monotonic()
    argv = ["apply", "--cluster", str(cluster_file), "--state-dir", str(state_dir), "--phase", "environment", "pki"]
    if bootstrap_main([*argv, "--yes", "--quiet"]) != 0:
        progress.say(f"  the installer reported problems (log under {state_dir}/runs); measuring anyway")
    return time.monotonic() - started


def render_table(measurements: Sequence[Measurement]) -> str:
    naive = {m.hosts: m.wall for m in measurements if m.mode == "naive"}
    header = (
        f"{'hosts':>5} {'mode':<7} {'rows':>5} {'wall s':>7} {'ssh/host':>8} {'cmds/host':>9} "
        f"{'peak MB':>8} {'x naive':>7}  outcomes"
    )
    lines = [header, "-" * len(header)]
    for m in measurements:
        ratio = f"{naive[m.hosts] / m.wall:.1f}" if m.hosts in naive and m.wall else "-"
        outcomes = ", ".join(f"{count} {name}" for name, count in sorted(m.outcomes.items())) or m.tail[-200:]
        lines.append(
            f"{m.hosts:>5} {m.mode:<7} {m.rows:>5} {m.wall:>7.2f} {m.mean('connections'):>8.1f} "
            f"{m.mean('commands'):>9.1f} {m.peak_rss_mb:>8.0f} {ratio:>7}  {outcomes}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    progress = Progress()
    settings = LabSettings.create(arguments.name, scale=arguments.sizes[0])
    installer_state = state_root() / f"installer-{arguments.name}"
    measurements: list[Measurement] = []
    try:
        for size in arguments.sizes:
            settings = LabSettings.create(arguments.name, scale=size)
            up(settings, progress)
            seconds = _apply(settings.cluster_file, installer_state, progress)
            progress.say(f"installer (environment, pki) on {size} hosts: {seconds:.1f} s")
            for mode in arguments.modes:
                measurement = measure_verify(settings.cluster_file, size, mode, selection=HOST_LEVEL_SELECTION)
                progress.say(f"{size} hosts, {mode}: {measurement.wall:.2f} s, {measurement.rows} rows")
                measurements.append(measurement)
    except LabError as error:
        print(f"bench: error: {error.message}", file=sys.stderr)
        return 2
    finally:
        if measurements:
            print(render_table(measurements))
        if arguments.json is not None and measurements:
            arguments.json.write_text(json.dumps([asdict(m) for m in measurements], indent=2) + "\n")
        if not arguments.keep:  # the scale lab and the installer's state for it (its CAs): the bench's own
            down(settings, progress)
            shutil.rmtree(installer_state, ignore_errors=True)
    return 0
