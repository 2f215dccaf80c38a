"""A unit's journal, read for its own lines: what the program said, not what systemd said about it.

`journalctl -u UNIT` mixes two kinds of lines: the program's (its stdout, stderr and journal
messages) and systemd's about the unit ("Scheduled restart job", "Start request repeated too
quickly", "Main process exited, code=exited", "Failed with result", "Started/Stopped ...",
"Consumed ... CPU time"). When a unit crash-loops its last lines are all systemd's, and the
program's fatal message sits above them. This module keeps the two apart:

* `-o short-iso` lines are `<timestamp> <host> <identifier>[<pid>]: <message>`; those whose
  identifier is `systemd`, or `(<binary>)` (systemd's child before the exec), are systemd's.
  An indented line continues the message above it.
* `-o cat` lines carry no identifier: systemd's are recognised by their texts only (the
  bookkeeping texts of systemd 252, Debian bookworm's; the lab's nodes run it).

Runs: systemd's "Starting X..." line (or, for a Type=simple unit, which gets no "Starting", its
"Started X." line) begins a run of the program. Only the last run is diagnosed: an earlier run's
error is not what is wrong now.

Error lines (kept simple on purpose): a line with a level marker, i.e. zap JSON
`"level":"error"` (fatal, panic, dpanic), logrus `level=error` (fatal, panic) or a klog/glog header
`E1126`/`F1126`; or with one of the words in `_ERROR_WORDS`. Words matter because etcd 3.4's
default logger (capnslog) writes bare messages to the journal, without a level. A program's last
own line is always kept as well: a fatal message is usually the last thing a program says.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# enough for a crash-looping unit: etcd 3.4 prints ~25 lines per start, systemd 6 per restart
JOURNAL_LINES = 200
# A Go program's fatal line is followed by a dump of every goroutine: v1.19's kubelet logs ~1,800
# lines of it per crash ("F... failed to run Kubelet: misconfiguration: ..." first). Those lines are
# dropped on the host (a goroutine header, a stack frame "pkg.(*T).f(0x...)", its tab-indented
# "file.go:123 +0x47", "created by ..."), from this many lines back, so the program's own last
# lines are what is read.
GOROUTINE_DUMP_SCAN = 20000
_GOROUTINE_DUMP = r"goroutine [0-9]+ \[|created by |[[:space:]]|[^ ]+\(.*\)$|\.\.\.additional frames elided"
# Kubernetes components log every flag at each start (kube-apiserver v1.34 about 150 lines of klog's
# "flags.go:64] FLAG: --name=value"): dropped too, so that a crash loop's run in progress does not
# push the run before it, and its fatal line, out of the lines read.
_FLAG_DUMP = r"I[0-9]{4} [0-9:.]+ +[0-9]+ flags\.go:[0-9]+\] FLAG: "
_NOT_READ = "(" + _GOROUTINE_DUMP + "|" + _FLAG_DUMP + ")"
# a shown line longer than this is cut (zap JSON lines of the etcd client run to 1000+ characters)
MAX_LINE_CHARS = 400

_SHORT_ISO = re.compile(
    r"^(?P<timestamp>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s+"
    r"(?P<host>\S+)\s+(?P<identifier>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?:\s?(?P<message>.*)$"
)
_UNIT = r"[\w@:.\\-]+\.(?:service|socket)"
# systemd 252's own texts about a unit (libsystemd-core-252.so), older wordings beside them
_BOOKKEEPING = re.compile(
    r"^(?:"
    r"(?:Starting|Stopping|Reloading) .+\.\.\.$"
    r"|(?:Started|Stopped|Reloaded|Failed to start) .+\.$"
    rf"|{_UNIT}: (?:Scheduled restart job|Start request repeated too quickly|Main process exited"
    r"|Control process exited|Failed with result|Consumed .+ CPU time|Deactivated successfully|Succeeded\."
    r"|Service RestartSec=|Service has no hold-off time|Service hold-off time over|Unit entered failed state"
    r"|Killing process|Sent signal|State '[\w-]+' timed out|Found left-over process|Failed to kill control group"
    r"|Triggering OnFailure|Changed \S+ -> )"
    rf"|{_UNIT} holdoff time over"
    r"|This usually indicates unclean termination"
    r")"
)
# systemd's lines that end a run (the next "Started" of a Type=simple unit begins another)
_RUN_END = re.compile(
    r"^(?:Stopped|Stopping|Failed to start) "
    r"|: (?:Main process exited|Deactivated successfully|Failed with result|Succeeded\.)"
)
RESTART_SCHEDULED = "Scheduled restart job"
# systemd's forked child, before it executes the program, logs as "(<binary>)" (cut to the kernel's
# 15-character comm): "(etcd)[1201]: etcd.service: Failed to locate executable /opt/etcd/bin/etcd"
_SYSTEMD_CHILD = re.compile(r"^\(.+\)$")
_ERROR_WORDS = (
    "error",
    "errors",
    "failed",
    "failure",
    "fatal",
    "panic",
    "refused",
    "rejected",
    "denied",
    "unauthorized",
    "forbidden",
    "couldn't",
    "cannot",
    "can't",
    "unable",
    "invalid",
    "mismatch",
)
_ERROR_MARKERS = re.compile(
    r'"level":"(?:error|fatal|panic|dpanic)"'
    r"|\blevel=(?:error|fatal|panic)\b"
    r"|^[EF]\d{4} "
    r"|\b(?:" + "|".join(re.escape(word) for word in _ERROR_WORDS) + r")(?![\w'])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class JournalLine:
    """One line as journalctl printed it, and what it is."""

    raw: str  # as printed (timestamp, host, identifier and all): what a diagnosis shows
    message: str  # the message alone
    identifier: str  # the syslog identifier ("etcd", "dockerd", "systemd"); "" with -o cat
    by_systemd: bool  # systemd's line about the unit, not the program's
    bookkeeping: bool  # one of systemd's start/stop/restart/exit texts

    @property
    def is_error(self) -> bool:
        return bool(_ERROR_MARKERS.search(self.message))

    def shown(self) -> str:
        """The line as printed; a long one keeps its head (time, program) and its tail, where Go
        programs put the wrapped error ("...: x509: certificate signed by unknown authority")."""
        text = self.raw.rstrip()
        if len(text) <= MAX_LINE_CHARS:
            return text
        head = MAX_LINE_CHARS // 3
        return text[:head] + " … " + text[-(MAX_LINE_CHARS - head - 3) :]


def unit_file_name(unit: str) -> str:
    """etcd -> etcd.service (a name with a unit suffix stays as it is)."""
    return unit if re.search(r"\.(?:service|socket|target|timer)$", unit) else unit + ".service"


def unit_short_name(unit: str) -> str:
    """etcd.service -> etcd: the names the signature catalogue uses."""
    return re.sub(r"\.service$", "", unit)


def journal_command(unit: str, lines: int = JOURNAL_LINES, output: str = "short-iso") -> str:
    """The unit's last ``lines`` journal lines but Go's goroutine dumps, every argument quoted;
    journalctl's own complaints ("No journal files were found.") are kept, they explain an empty
    journal."""
    argv = ["journalctl", "-u", unit_file_name(unit), "-n", str(GOROUTINE_DUMP_SCAN), "--no-pager", "-o", output]
    # where the program's message begins: after "unit[pid]: " (a line starting with blanks is
    # journalctl's continuation of a multi-line message, kept), or at the start with -o cat
    begins = "^" if output == "cat" else r"\]: "
    drop = shlex.join(["grep", "-v", "-E", begins + _NOT_READ])
    return f"{shlex.join(argv)} 2>&1 | {drop} | tail -n {int(lines)}"


def whole_run_command(unit: str, literals: Sequence[str], lines: int = 5) -> str:
    """The lines of the unit's current (else last) run that contain one of ``literals``, the last
    ``lines`` of them: a line logged once when the unit starts, which later lines push out of what
    `journal_command` reads. Nothing when systemd has no invocation of the unit."""
    show = shlex.join(["systemctl", "show", "-p", "InvocationID", "--value", unit_file_name(unit)])
    grep = shlex.join(["grep", "-F", *(argument for literal in literals for argument in ("-e", literal))])
    read = 'journalctl "_SYSTEMD_INVOCATION_ID=$id" --no-pager -o short-iso 2>&1'
    return f'id=$({show}); if [ -n "$id" ]; then {read} | {grep} | tail -n {int(lines)}; fi'


def parse_journal(text: str | Iterable[str]) -> list[JournalLine]:
    """`journalctl -o short-iso` or `-o cat` output, line by line; journalctl's "-- ... --" lines dropped."""
    raw_lines = text.splitlines() if isinstance(text, str) else [line.rstrip("\n") for line in text]
    parsed: list[JournalLine] = []
    for raw in raw_lines:
        if not raw.strip() or raw.startswith("-- "):
            continue
        match = _SHORT_ISO.match(raw)
        if match is not None:
            identifier, message = match["identifier"], match["message"]
            systemd = identifier == "systemd" or _SYSTEMD_CHILD.match(identifier) is not None
            bookkeeping = systemd and bool(_BOOKKEEPING.match(message))
            parsed.append(JournalLine(raw, message, identifier, systemd, bookkeeping))
        elif raw[0].isspace() and parsed:
            # journalctl indents the continuation lines of a multi-line message
            previous = parsed[-1]
            parsed.append(JournalLine(raw, raw.strip(), previous.identifier, previous.by_systemd, False))
        else:
            bookkeeping = bool(_BOOKKEEPING.match(raw))
            parsed.append(JournalLine(raw, raw, "", bookkeeping, bookkeeping))
    return parsed


def run_starts(lines: Sequence[JournalLine]) -> list[int]:
    """Where each run of the unit begins (the first is 0: what was read may begin inside a run).

    "Starting X..." always begins a run. "Started X." begins one only for a Type=simple unit, where
    it is the only start line: at the top of what was read, or after the previous run ended. After
    "Starting", or right after the program's own lines, it only says that the run became ready.
    """
    starts = [0]
    starting, ended, seen_own = False, False, False
    for index, line in enumerate(lines):
        if not line.by_systemd:
            seen_own = True
        elif line.message.startswith("Starting "):
            starts.append(index)
            starting, ended = True, False
        elif line.message.startswith("Started "):
            if not starting and (ended or not seen_own):
                starts.append(index)
                ended = False
            starting = False
        elif _RUN_END.search(line.message):
            starting, ended = False, True
    return starts if len(starts) < 2 or starts[1] else starts[1:]  # a start on the first line is the 0


def last_run(lines: Sequence[JournalLine]) -> list[JournalLine]:
    """The lines from the last start of the unit on (all of them when the start is not in view)."""
    return list(lines[run_starts(lines)[-1] :])


def failing_run(lines: Sequence[JournalLine]) -> tuple[list[JournalLine], bool]:
    """The last run; or, when it said nothing yet (no line of its own, no note of systemd's) and
    systemd restarted it automatically (one restart loop: same unit file, same configuration), from
    the last run of that loop that did. journald takes a dying process's lines in its own time: on
    the lab a crash loop's last run read back with systemd's bookkeeping only, and the exec errors of
    systemd's child for one run sat above that run's "Starting" line. An earlier run of the same loop
    says the same. True when the lines come from an earlier run."""
    starts = run_starts(lines)
    index = len(starts) - 1
    while (
        index > 0
        and not _says_something(lines[starts[index] :])
        and any(
            line.by_systemd and RESTART_SCHEDULED in line.message for line in lines[starts[index - 1] : starts[index]]
        )
    ):
        index -= 1
    if not _says_something(lines[starts[index] :]):  # no run of the loop said anything: the last one it is
        index = len(starts) - 1
    return list(lines[starts[index] :]), index != len(starts) - 1


def earlier_runs_of_the_loop(lines: Sequence[JournalLine], run: Sequence[JournalLine]) -> list[list[JournalLine]]:
    """The runs before ``run`` (the one `failing_run` chose) that systemd restarted automatically into
    the next ("Scheduled restart job"), newest first: one restart loop, one unit file, one
    configuration. A run in progress has not said why it will fail yet (on the lab a crash-looping
    Type=simple kube-proxy was read 0.1 s into a run; a flanneld that cannot reach etcd logs the
    handshake error only when its start times out); the run before it in the loop has."""
    starts = run_starts(lines)
    first = len(lines) - len(run)  # where the chosen run begins: it runs to the end of what was read
    index = starts.index(first) if first in starts else 0
    runs = []
    while index > 0 and any(
        line.by_systemd and RESTART_SCHEDULED in line.message for line in lines[starts[index - 1] : starts[index]]
    ):
        runs.append(list(lines[starts[index - 1] : starts[index]]))
        index -= 1
    return runs


def _says_something(lines: Sequence[JournalLine]) -> bool:
    return any(not line.bookkeeping for line in lines)


def own_lines(lines: Sequence[JournalLine]) -> list[JournalLine]:
    """The program's lines: systemd's about the unit left out."""
    return [line for line in lines if not line.by_systemd]


def systemd_notes(lines: Sequence[JournalLine]) -> list[JournalLine]:
    """systemd's lines about the unit that are not bookkeeping, e.g. "Failed to load environment files"."""
    return [line for line in lines if line.by_systemd and not line.bookkeeping]


def error_lines(lines: Sequence[JournalLine]) -> list[JournalLine]:
    """The error lines, and the last line whatever it says (a fatal message is usually the last)."""
    chosen = [line for line in lines[:-1] if line.is_error]
    return [*chosen, lines[-1]] if lines else []


def repeat_key(line: JournalLine) -> str:
    """The same complaint with other ports, pids or times is the same complaint."""
    return line.identifier + "\0" + re.sub(r"\d+", "#", line.message)


def collapse_repeats(lines: Sequence[JournalLine]) -> list[tuple[JournalLine, int]]:
    """Each distinct message once, at its last occurrence, with how often it occurred."""
    last: dict[str, int] = {}
    counts: dict[str, int] = {}
    for index, line in enumerate(lines):
        key = repeat_key(line)
        last[key] = index
        counts[key] = counts.get(key, 0) + 1
    return [(lines[index], counts[key]) for key, index in sorted(last.items(), key=lambda item: item[1])]
