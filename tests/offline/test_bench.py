"""The benchmark's own parts, offline: what it reads from a pytest run, the table, its input checks,
and the naive baseline's one-command-per-fact behaviour."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

import pytest

from kubeproof.bench.cli import _modes, _sizes, render_table
from kubeproof.bench.measure import (
    HostCounts,
    Measurement,
    parse_host_counts,
    parse_outcomes,
    process_tree_rss_kb,
)
from kubeproof.bench.naive import NaiveHostFacts
from kubeproof.facts import Fact, HostFacts, Raw
from kubeproof.transport import CommandResult

RUN_OUTPUT = """\
........................................................................ [ 50%]
..........................................................sx............ [100%]
=================================== kubeproof ===================================
scale001: 1 SSH connections, 3 remote commands, 2 fact batches
scale002: 1 SSH connections, 2 remote commands, 1 fact batches
2 failed, 139 passed, 1 skipped, 1 xfailed, 3 errors in 4.12s
"""


def test_a_runs_outcomes_and_transport_counts_are_read_from_its_output() -> None:
    assert parse_outcomes(RUN_OUTPUT) == {"failed": 2, "passed": 139, "skipped": 1, "xfailed": 1, "error": 3}
    assert parse_host_counts(RUN_OUTPUT) == {"scale001": HostCounts(1, 3, 2), "scale002": HostCounts(1, 2, 1)}
    assert parse_outcomes("collected 0 items\n") == {}


def test_the_table_compares_each_mode_with_the_naive_run_of_the_same_size() -> None:
    counts = {"h1": HostCounts(1, 4, 2), "h2": HostCounts(1, 2, 1)}
    rows = [
        Measurement(3, "serial", 2.0, 80.0, {"passed": 100}, counts),
        Measurement(3, "naive", 8.0, 75.0, {"passed": 100}, {"h1": HostCounts(1, 120, 120)}),
        Measurement(10, "serial", 3.0, 90.0, {"passed": 300}, counts),
    ]
    table = render_table(rows).splitlines()
    assert table[0].split()[:4] == ["hosts", "mode", "rows", "wall"]
    assert table[2].split()[:8] == ["3", "serial", "100", "2.00", "1.0", "3.0", "80", "4.0"]
    assert table[3].split()[7] == "1.0"
    assert table[4].split()[7] == "-"  # no naive run of 10 hosts to compare with


@pytest.mark.parametrize("text", ["", "3,x", "0,3", "3,201"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        _sizes(text)


def test_sizes_and_modes_are_read_in_order() -> None:
    assert _sizes("50,3,10,3") == [3, 10, 50]
    assert _modes("serial,naive") == ["serial", "naive"]
    with pytest.raises(argparse.ArgumentTypeError, match="modes are some of"):
        _modes("serial,fast")


def test_the_process_tree_memory_counts_children() -> None:
    alone = process_tree_rss_kb(os.getpid())
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; b = bytearray(64 * 1024 * 1024); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = 50
        with_child = alone
        while deadline and with_child < alone + 60 * 1024:
            subprocess.run(["sleep", "0.1"], check=True)
            with_child = process_tree_rss_kb(os.getpid())
            deadline -= 1
    finally:
        child.communicate("")
    assert alone > 0
    assert with_child >= alone + 60 * 1024, (alone, with_child)


class _CountingConnection:
    name = "node01"

    def __init__(self) -> None:
        self.commands: list[str] = []

    def run(self, command: str, **_: Any) -> CommandResult:
        self.commands.append(command)
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
        return CommandResult(self.name, command, done.returncode, done.stdout, done.stderr, 0.0, 0.0)


def test_the_naive_baseline_runs_one_command_per_fact_every_time_it_is_asked() -> None:
    def word(raw: Raw) -> str:
        return raw.stdout.strip()

    first, second = Fact("first", "echo one", word), Fact("second", "echo two", word)
    naive_connection, batched_connection = _CountingConnection(), _CountingConnection()
    naive = NaiveHostFacts(naive_connection, lambda: [first, second])  # type: ignore[arg-type]
    batched = HostFacts(batched_connection, lambda: [first, second])  # type: ignore[arg-type]
    for facts in (naive, batched):
        assert [facts.get(first), facts.get(second), facts.get(first)] == ["one", "two", "one"]
    assert len(naive_connection.commands) == 3
    assert len(batched_connection.commands) == 1
