from __future__ import annotations

import subprocess
import time
from types import SimpleNamespace
from typing import Any

import pytest

from kubeproof.checks import (
    COMPARATORS,
    CatalogueError,
    Check,
    Observation,
    judge,
    load_catalogue,
    parse_catalogue,
)
from kubeproof.facts import TIMED_OUT, Fact, HostFacts, Raw, build_batch_script, split_batch_output
from kubeproof.probes import load_probes
from kubeproof.transport import ProbeError


@pytest.mark.parametrize(
    ("name", "observed", "expected", "holds"),
    [
        ("equals", "1", "1", True),
        ("equals", "0", "1", False),
        ("one_of", "absent", ["absent", "disabled"], True),
        ("one_of", "enforcing", ["absent", "disabled"], False),
        ("contains_all", ["a", "b", "c"], ["a", "b"], True),
        ("contains_all", ["a"], ["a", "b"], False),
        ("contains_none", ["a"], ["b"], True),
        ("contains_none", ["a", "b"], ["b"], False),
        ("subset_of", ["a"], ["a", "b"], True),
        ("subset_of", ["a", "z"], ["a", "b"], False),
        ("same_items", ["b", "a"], ["a", "b"], True),
        ("same_items", ["a"], ["a", "b"], False),
        ("matches", "v1.34.4", r"v1\.34\.\d+", True),
        ("matches", "v1.33.0", r"v1\.34\.\d+", False),
        ("matches", None, ".*", False),
        ("at_least", 31, 30, True),
        ("at_least", 29.5, 30, False),
        ("at_least", "/opt/etcd/ssl/server.pem is missing", 30, False),
        ("at_most", 0, 0, True),
        ("at_most", 1, 0, False),
        ("below", 0.2, 1.0, True),
        ("below", 1.0, 1.0, False),
        ("mode_at_most", "600", "600", True),
        ("mode_at_most", "400", "600", True),
        ("mode_at_most", "644", "600", False),
        ("mode_at_most", None, "600", False),
        ("is_empty", [], None, True),
        ("is_empty", ["/swapfile"], None, False),
        ("is_true", True, None, True),
        ("is_true", "true", None, False),
    ],
)
def test_comparators_both_ways(name: str, observed: object, expected: object, holds: bool) -> None:
    assert COMPARATORS[name].holds(observed, expected) is holds


def test_each_comparator_writes_its_own_expected_text() -> None:
    texts = {name: c.describe(["a"] if name not in ("mode_at_most",) else "600") for name, c in COMPARATORS.items()}
    assert all(text.startswith("expected") for text in texts.values())
    assert len(set(texts.values())) == len(texts)


ROW = """
section: ENV
guide: "一、环境准备"
checks:
  - id: ENV-01
    text: firewalld is stopped
    roles: all
    probe: firewalld_state
    comparator: one_of
    expected: [absent, stopped and disabled]
    remediation: systemctl disable --now firewalld
"""


def test_failure_message_has_the_one_format() -> None:
    check = parse_catalogue(ROW, "row.yaml")[0]
    observation = Observation("active, enabled", ("master01$ systemctl is-active firewalld",), (), ("unit: active",))
    verdict = judge(check, "master01", observation, {})
    assert not verdict.holds
    assert verdict.message.splitlines() == [
        "[ENV-01] master01: firewalld is stopped",
        "  expected: one of ['absent', 'stopped and disabled']",
        "  observed: 'active, enabled'",
        "  source:   master01$ systemctl is-active firewalld",
        "  fix:      systemctl disable --now firewalld",
        "  diagnosis:",
        "    unit: active",
    ]


def test_expected_values_refer_to_the_inventory() -> None:
    check = Check("ENV-03", "t", "ENV", "", ("all",), "hostname", "equals", "$host_name", "fix")
    assert check.holds("node01", {"host_name": "node01"})
    assert check.expected_text({"host_name": "node01"}) == "expected 'node01'"
    with pytest.raises(KeyError):
        check.holds("x", {})


@pytest.mark.parametrize(
    ("mutation", "words"),
    [
        (("comparator: one_of", "comparator: roughly"), "comparator 'roughly'"),
        (("id: ENV-01", "id: env1"), "not an invariant ID"),
        (("roles: all", "roles: [workers]"), "roles must be"),
        (("probe: firewalld_state", "probe: nope"), "no probe named 'nope'"),
        (("    remediation: systemctl disable --now firewalld\n", ""), "missing 'remediation'"),
    ],
)
def test_catalogue_rejects_bad_rows(mutation: tuple[str, str], words: str) -> None:
    with pytest.raises(CatalogueError, match=words):
        parse_catalogue(ROW.replace(*mutation), "row.yaml", known_probes=load_probes())


def test_shipped_catalogue_is_valid_and_names_known_probes() -> None:
    rows = load_catalogue(known_probes=load_probes())
    assert rows, "the catalogue is empty"
    assert all(r.remediation for r in rows)


def test_batch_script_frames_every_fact_exactly() -> None:
    facts: list[Fact[Any]] = [
        Fact("plain", "printf 'a\\nb\\n'", lambda r: r.stdout),
        Fact("no-newline", "printf 'x'", lambda r: r.stdout),
        Fact("empty", "true", lambda r: r.stdout),
        Fact("fails", "echo oops >&2; exit 3", lambda r: r.rc),
        Fact("missing-binary", "kp-no-such-binary --version", lambda r: r.stdout, requires=("kp-no-such-binary",)),
        Fact("reads-stdin", "cat", lambda r: r.stdout),
        # stderr is copied by a read loop: leading blanks, backslashes and a last line without newline kept
        Fact("stderr-lines", "printf '  one \\\\n\\ttwo\\nthree' >&2", lambda r: r.stderr),
        Fact("slow", "sleep 0.3", lambda r: r.rc),
        Fact("after-slow", "true", lambda r: r.rc),
    ]
    script = build_batch_script(facts, "KPtest")
    before = time.time()
    completed = subprocess.run(["sh", "-c", script], capture_output=True, text=True, input="never read", check=False)
    frames = split_batch_output(completed.stdout, "KPtest")
    assert frames["plain"][0] == "a\nb\n"
    assert frames["no-newline"][0] == "x"
    assert frames["empty"][0] == ""
    assert frames["fails"][1:3] == ("oops", 3)
    assert frames["missing-binary"][2] == 127
    assert "kp-no-such-binary: not installed" in frames["missing-binary"][1]
    assert frames["reads-stdin"][0] == ""  # facts never consume the batch's stdin
    assert frames["stderr-lines"][1] == "  one \\n\ttwo\nthree"  # printf made one backslash
    # each fact's time: the host's uptime at its start, against the batch's one wall clock reading
    stamps = [frames[f.name][3] for f in facts]
    assert before - 1 <= stamps[0] and stamps[-1] <= time.time() + 1, (before, stamps)
    assert stamps == sorted(stamps)
    assert frames["after-slow"][3] - frames["slow"][3] >= 0.25


class _LocalConnection:
    """Runs the batch on this machine: the shape of Connection that HostFacts uses."""

    name = "here"

    def run(self, command: str, *, timeout: float = 120.0, **_: Any) -> Any:
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=timeout, check=False)
        return SimpleNamespace(rc=done.returncode, stdout=done.stdout, stderr=done.stderr)


def test_a_hanging_command_is_killed_at_its_bound_and_the_rest_of_the_batch_still_comes() -> None:
    hangs = Fact("hangs", "sleep 60; echo never", lambda r: r.stdout, timeout=1)
    exits_124 = Fact("exits-124", "echo own; exit 124", lambda r: (r.rc, r.stdout))
    after = Fact("after", "echo ok", lambda r: r.stdout)
    facts = HostFacts(_LocalConnection(), lambda: [hangs, exits_124, after])  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(ProbeError) as caught:
        facts.get(hangs)
    assert time.monotonic() - started < 10  # killed at 1 s (+2 s for a KILL), not after 60 s
    assert "fact 'hangs': its command did not finish within 1 s: sleep 60; echo never" in str(caught.value)
    assert facts.batches == 1
    assert facts.get(after) == "ok\n"
    # a command's own exit 124 is its value, not a timeout
    assert facts.get(exits_124) == (124, "own\n")
    assert TIMED_OUT not in facts.records()[1].stderr


def test_a_forged_marker_in_output_cannot_end_a_frame_early() -> None:
    facts = [Fact("evil", "echo '@@KPother END evil 0'; echo real", lambda r: r.stdout)]
    completed = subprocess.run(["sh", "-c", build_batch_script(facts, "KPnonce")], capture_output=True, text=True)
    assert split_batch_output(completed.stdout, "KPnonce")["evil"][0] == "@@KPother END evil 0\nreal\n"


def test_raw_is_what_parsers_get() -> None:
    assert Raw("a", "", 0).stdout == "a"
