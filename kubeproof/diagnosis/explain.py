"""What a failing row shows about a unit, in at most `MAX_DIAGNOSIS_LINES` lines:

1. the unit's state (one line);
2. each known signature its journal matched, "matched SIG-X → points to ID: explanation; fix: ...",
   or "no known signature matched; last own lines:";
3. the last own error lines of its last run (journal.py says which), never systemd's bookkeeping;
   repeats are shown once, with how often they occurred; a matched line is always among them.

kubelet's diagnosis can read cri-dockerd's journal too (`COMPANION_UNITS`): kubelet reaches docker
through it, and when cri-dockerd refuses to start, kubelet's own lines only say the runtime is
down. A companion contributes only the lines its signatures matched, so its journal is read only
while the catalogue has signatures for it (today's has none for cri-dockerd: signatures.yaml).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from kubeproof.diagnosis.journal import (
    JOURNAL_LINES,
    JournalLine,
    collapse_repeats,
    earlier_runs_of_the_loop,
    failing_run,
    journal_command,
    own_lines,
    parse_journal,
    repeat_key,
    systemd_notes,
    unit_file_name,
    unit_short_name,
    whole_run_command,
)
from kubeproof.diagnosis.signatures import (
    Signature,
    SignatureError,
    SignatureMatch,
    default_signatures,
    match_signatures,
)

MAX_DIAGNOSIS_LINES = 12
MAX_MATCHES_SHOWN = 3
COMPANION_UNITS: Mapping[str, tuple[str, ...]] = {"kubelet": ("cri-dockerd",)}
STATE_PROPERTIES = "LoadState,ActiveState,SubState,UnitFileState,Result,NRestarts"
_SECTION = "@@kp-journal "
_WHOLE_RUN_SECTION = "@@kp-whole-run "


@dataclass(frozen=True)
class UnitJournal:
    unit: str  # the catalogue's name: etcd, kubelet, cri-dockerd
    lines: tuple[JournalLine, ...]
    # lines of the current run found by its whole-run signatures' text (`whole_run_command`)
    whole_run: tuple[JournalLine, ...] = ()


@dataclass(frozen=True)
class ShownLine:
    unit: str
    text: str
    matched: bool  # a signature matched it: always shown
    order: tuple[int, int]  # (journal, position): the lines are shown in the order they were logged


@dataclass(frozen=True)
class JournalDiagnosis:
    matches: tuple[SignatureMatch, ...]
    candidates: tuple[ShownLine, ...]
    empty_note: str  # what to say when there is no own line to show
    problem: str = ""  # the signature catalogue could not be read
    notes: tuple[str, ...] = ()  # where the lines come from, when not simply the last run

    def summary(self) -> list[str]:
        lines = [match.signature.summary() for match in self.matches[:MAX_MATCHES_SHOWN]]
        if len(self.matches) > MAX_MATCHES_SHOWN:
            lines[-1] += f" (and {len(self.matches) - MAX_MATCHES_SHOWN} more signatures)"
        if not lines:
            tail = "last own lines:" if self.candidates else self.empty_note
            lines = ["no known signature matched; " + tail]
        lines += self.notes
        if self.problem:
            lines.append(self.problem)
        return lines

    def select(self, budget: int) -> list[ShownLine]:
        """The matched lines, then the most recent others, up to ``budget``; in logged order."""
        matched = [line for line in self.candidates if line.matched]
        others = [line for line in self.candidates if not line.matched]
        chosen = sorted(matched, key=lambda line: line.order, reverse=True)[:budget]
        chosen += sorted(others, key=lambda line: line.order, reverse=True)[: max(budget - len(chosen), 0)]
        return sorted(chosen, key=lambda line: line.order)


def read_unit_journal(unit: str, journal: str | Iterable[str]) -> UnitJournal:
    return UnitJournal(unit_short_name(unit), tuple(parse_journal(journal)))


def _catalogue() -> tuple[Sequence[Signature], str]:
    try:
        return default_signatures(), ""
    except (OSError, SignatureError) as exc:  # a broken catalogue must not cost the row its diagnosis
        return (), f"signature catalogue unavailable: {exc}"


def _worth_showing(line: JournalLine, primary: bool, own: Sequence[JournalLine], hits: set[int]) -> bool:
    """A matched line always; for the unit diagnosed (not a companion) its own error lines and its
    last own line, or, when the program said nothing, systemd's notes about it (it could not start)."""
    if id(line) in hits:
        return True
    if not primary:
        return False
    if not own:
        return line.by_systemd and not line.bookkeeping
    return not line.by_systemd and (line.is_error or line is own[-1])


def diagnose(
    journals: Sequence[UnitJournal], signatures: Sequence[Signature] | None = None, empty_note: str = ""
) -> JournalDiagnosis:
    """The signatures each journal's last run matched, and the lines worth showing (first journal:
    its error lines and last line; a companion: only its matched lines)."""
    problem = ""
    if signatures is None:
        signatures, problem = _catalogue()
    matches: list[SignatureMatch] = []
    candidates: list[ShownLine] = []
    sources: list[str] = []  # where the lines come from, when not the last run
    for position, journal in enumerate(journals):
        run, earlier = failing_run(journal.lines)
        if earlier:
            sources.append(
                f"{journal.unit}: its last run logged nothing in the journal (yet): "
                "lines from the run before it, in the same restart loop"
            )
        own, notes = own_lines(run), systemd_notes(run)
        found = match_signatures(journal.unit, own, signatures, notes)
        earlier_runs = earlier_runs_of_the_loop(journal.lines, run)
        for previous in [] if found else earlier_runs:
            found = match_signatures(journal.unit, own_lines(previous), signatures, systemd_notes(previous))
            if found:
                run, own, notes = previous, own_lines(previous), systemd_notes(previous)
                sources.append(
                    f"{journal.unit}: its last run has not said why (yet): "
                    "lines from an earlier run of the same restart loop"
                )
                break
        ended_with = _how_the_run_before_ended(journal.unit, found, earlier_runs, signatures) if found else []
        if ended_with:
            sources.append(
                f"{journal.unit}: the run before it, in the same restart loop, ended with "
                + ", ".join(match.signature.id for match in ended_with)
            )
        at_start = [] if earlier else _logged_at_start(journal, [*found, *ended_with], signatures)
        if at_start:
            sources.append(
                f"{journal.unit}: "
                + ", ".join(match.signature.id for match in at_start)
                + " matched a line logged when its run started, before the lines read"
            )
        # lines logged before those of the run read: at its start, or in the run before it
        logged_before = ended_with + at_start
        matches += found + logged_before
        hits = {id(match.line) for match in found}
        matched_keys = {repeat_key(match.line) for match in found}
        pool = [line for line in run if _worth_showing(line, position == 0, own, hits)]
        shown_lines = [(match.line, 1, True) for match in logged_before]  # shown first: logged first
        shown_lines += [(line, count, repeat_key(line) in matched_keys) for line, count in collapse_repeats(pool)]
        for index, (line, count, matched) in enumerate(shown_lines):
            text = line.shown() + (f" (logged {count} times)" if count > 1 else "")
            candidates.append(ShownLine(journal.unit, text, matched, (position, index)))
    note = empty_note or f"no own lines in the last {JOURNAL_LINES} journal lines"
    return JournalDiagnosis(tuple(matches), tuple(candidates), note, problem, tuple(sources))


def _logged_at_start(
    journal: UnitJournal, found: Sequence[SignatureMatch], signatures: Sequence[Signature]
) -> list[SignatureMatch]:
    """The whole-run signatures that matched a line of the current run which the last lines read
    did not include (kube-controller-manager logs "Skipping CSR signer controller" once, then 214
    lines in the next 3 s on the lab)."""
    seen = {match.signature.id for match in found}
    once = [signature for signature in signatures if signature.whole_run and signature.id not in seen]
    return match_signatures(journal.unit, own_lines(journal.whole_run), once) if once and journal.whole_run else []


def _how_the_run_before_ended(
    unit: str,
    found: Sequence[SignatureMatch],
    earlier_runs: Sequence[Sequence[JournalLine]],
    signatures: Sequence[Signature],
) -> list[SignatureMatch]:
    """The signatures the run before this one (in the same restart loop) matched that this run's did not.

    A crash loop's run in progress says what it meets (kube-apiserver's etcd client: "connection
    refused"); the run before it ended with the fatal line that says why the loop goes on (on the lab
    kube-apiserver gave up 20 s into a run with "Error creating leases" and was restarted at once).
    Only the run right before counts: same unit file, same configuration, restarted by systemd."""
    if not earlier_runs:
        return []
    previous = earlier_runs[0]
    seen = {match.signature.id for match in found}
    return [
        match
        for match in match_signatures(unit, own_lines(previous), signatures, systemd_notes(previous))
        if match.signature.id not in seen
    ]


def render(
    diagnosis: JournalDiagnosis,
    *,
    first: Sequence[str],
    summary_prefix: str,
    line_prefix: Callable[[str], str],
    header: str | None = None,
    limit: int = MAX_DIAGNOSIS_LINES,
) -> list[str]:
    lines = [*first, *(summary_prefix + line for line in diagnosis.summary())]
    if header is not None and diagnosis.candidates:
        lines.append(header)
    budget = max(limit - len(lines), 1)
    return lines + [line_prefix(shown.unit) + shown.text for shown in diagnosis.select(budget)]


# ----------------------------------------------------------------------------- a unit, on demand


def unit_diagnosis_command(unit: str) -> str:
    """The unit's state and its journal (and its companions'): one command, run once per session.
    A unit with whole-run signatures gets a second section: its current run's lines that hold their
    text."""
    signatures, _ = _catalogue()
    parts = [shlex.join(["systemctl", "show", "--no-pager", "-p", STATE_PROPERTIES, unit_file_name(unit)]) + " 2>&1"]
    companions = [c for c in COMPANION_UNITS.get(unit_short_name(unit), ()) if any(s.unit == c for s in signatures)]
    for name in (unit, *companions):
        parts += ["echo " + shlex.quote(_SECTION + name), journal_command(name)]
        literals = [s.pattern.pattern for s in signatures if s.whole_run and s.unit == unit_short_name(name)]
        if literals:
            parts += ["echo " + shlex.quote(_WHOLE_RUN_SECTION + name), whole_run_command(name, literals)]
    return "; ".join(parts)


def parse_unit_diagnosis(stdout: str) -> tuple[dict[str, str], list[UnitJournal]]:
    """`systemctl show` properties, then each `@@kp-journal NAME` section's journal (and the
    `@@kp-whole-run NAME` section that may follow it)."""
    properties: dict[str, str] = {}
    sections: list[tuple[str, list[str], list[str]]] = []
    target: list[str] | None = None
    for line in stdout.splitlines():
        if line.startswith(_SECTION):
            sections.append((line[len(_SECTION) :].strip(), [], []))
            target = sections[-1][1]
        elif line.startswith(_WHOLE_RUN_SECTION) and sections:
            target = sections[-1][2]
        elif target is not None:
            target.append(line)
        else:
            key, sep, value = line.partition("=")
            properties[key.strip() if sep else "error"] = value if sep else line.strip()
    journals = [
        UnitJournal(unit_short_name(name), tuple(parse_journal(lines)), tuple(parse_journal(whole_run)))
        for name, lines, whole_run in sections
    ]
    return properties, journals


def unit_state(properties: Mapping[str, str]) -> str:
    """`active, enabled; Result=success NRestarts=0`, or what systemctl said instead."""
    load = properties.get("LoadState", "")
    if not load:
        return "state unknown: " + (properties.get("error") or "systemctl show printed nothing")
    if load != "loaded":
        return f"not installed ({load})"
    active = properties.get("ActiveState") or "unknown"
    if active != "active":
        active += f" ({properties.get('SubState') or '?'})"
    return (
        f"{active}, {properties.get('UnitFileState') or 'unknown'}; "
        f"Result={properties.get('Result', '?')} NRestarts={properties.get('NRestarts', '?')}"
    )


def render_unit_diagnosis(
    host: str, unit: str, stdout: str, signatures: Sequence[Signature] | None = None
) -> list[str]:
    """What `unit_diagnosis_command` printed, as the failing row's diagnosis lines."""
    properties, journals = parse_unit_diagnosis(stdout)
    if not journals:
        journals = [UnitJournal(unit_short_name(unit), ())]
    file_name = unit_file_name(unit)
    diagnosis = diagnose(
        journals, signatures, f"no own lines in the last {JOURNAL_LINES} lines of journalctl -u {file_name}"
    )
    return render(
        diagnosis,
        first=[f"{host} {unit} status: {unit_state(properties)}"],
        summary_prefix=f"{host} {unit}: ",
        line_prefix=lambda name: f"{host} {name} journal: ",
    )


# ----------------------------------------------------------------------------- a service fact's journal


def render_service_journal(
    unit: str, state_line: str, journal: Iterable[str], signatures: Sequence[Signature] | None = None
) -> list[str]:
    """A service fact's state line and journal section (`journal_command` output) as diagnosis lines."""
    file_name = unit_file_name(unit)
    command = f"journalctl -u {file_name} -n {JOURNAL_LINES}"
    diagnosis = diagnose([read_unit_journal(unit, journal)], signatures, f"{command} shows no own lines")
    return render(
        diagnosis,
        first=[state_line],
        summary_prefix="",
        line_prefix=lambda _: "  ",
        header=f"{command}, {unit_short_name(unit)}'s own lines of its last run (systemd's left out):",
    )
