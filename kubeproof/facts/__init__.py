"""Facts: a shell command plus a pure parser.

A host's facts are gathered as ONE batched script per round trip (measured on the lab: one remote
command per property costs ~60 ms, a host's whole fact script ~90 ms) and cached for the session.
Parsers never touch the network, so they are tested offline on captured output.
"""

from __future__ import annotations

import secrets
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

from kubeproof.redact import redact
from kubeproof.transport import Connection, HostUnreachable, ProbeError

T = TypeVar("T")

FACT_TIMEOUT_SECONDS = 30.0
TIMED_OUT = "kubeproof: timed out after"
# GNU timeout's --verbose line tells its own kill apart from a command that exits 124 by itself
_BOUND = (
    'if timeout --verbose 5 true >/dev/null 2>&1; then kp_bound() { timeout --verbose -k 2 "$@"; }; '
    'else kp_bound() { shift; "$@"; }; fi'
)


@dataclass(frozen=True)
class Raw:
    """What one fact's command printed on one host."""

    stdout: str
    stderr: str
    rc: int


class ParseError(ValueError):
    """The command ran but printed something the parser does not understand."""


@dataclass(frozen=True)
class Fact(Generic[T]):
    """A named shell command (POSIX sh, arguments already quoted) and a pure parser of its output.

    ``requires`` names binaries the command needs; a missing one makes the fact a probe error
    ("probe could not run"), not a value.
    """

    name: str
    command: str
    parse: Callable[[Raw], T]
    requires: tuple[str, ...] = ()
    # a command that hangs (docker's CLI against a wedged dockerd, a read of a dead mount) must not
    # hold the host's whole batch: past this it is killed and the fact is a probe error saying so
    timeout: float = FACT_TIMEOUT_SECONDS

    @property
    def key(self) -> tuple[str, str, tuple[str, ...]]:
        """What makes two facts the same remote work (the parser may be a new closure each time)."""
        return self.name, self.command, self.requires


@dataclass(frozen=True)
class FactRecord:
    """Evidence for one fact on one host: the command, its raw output and when it ran."""

    host: str
    fact: str
    command: str
    rc: int
    stdout: str
    stderr: str
    timestamp: float

    def evidence(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "fact": self.fact,
            "command": self.command,
            "rc": self.rc,
            "stdout": redact(self.stdout),
            "stderr": redact(self.stderr),
            "timestamp": self.timestamp,
        }


def build_batch_script(facts: Sequence[Fact[Any]], nonce: str) -> str:
    """One sh script that runs every fact, framing each one's stdout, stderr and exit code.

    The framing costs no process of its own per fact (on the lab it took 3.2 ms of a host's CPU
    per fact, 0.13 CPU-s of a 40-fact batch, with a `date` and a `cat` each): each BEGIN carries the
    host's uptime, read by the `read` builtin, and one CLOCK line at the start ties uptime to the
    wall clock; the stderr file is copied by a `read` loop.
    """
    lines = [
        "export LC_ALL=C PATH=/opt/kubernetes/bin:/opt/etcd/bin:/usr/local/sbin:/usr/local/bin:"
        "/usr/sbin:/usr/bin:/sbin:/bin",
        "kp_err=$(mktemp) || exit 97",
        _BOUND,
        "kp_up=; read kp_up kp_idle </proc/uptime 2>/dev/null; "
        f'printf \'\\n@@{nonce} CLOCK %s %s\\n\' "$(date +%s.%N)" "$kp_up"',
    ]
    for fact in facts:
        tag = shlex.quote(fact.name)
        missing_check = ""
        if fact.requires:
            probes = " ".join(shlex.quote(b) for b in fact.requires)
            missing_check = (
                f'for kp_b in {probes}; do command -v "$kp_b" >/dev/null 2>&1 || '
                f'{{ echo "kubeproof: $kp_b: not installed" >"$kp_err"; kp_rc=127; }}; done; '
            )
        seconds = f"{fact.timeout:g}"
        lines.append(
            f"kp_up=; read kp_up kp_idle </proc/uptime 2>/dev/null; "
            f"printf '\\n@@{nonce} BEGIN %s u%s\\n' {tag} \"$kp_up\"; kp_rc=0; {missing_check}"
            f"if [ $kp_rc -eq 0 ]; then kp_bound {seconds} sh -c {shlex.quote(fact.command)} "
            f'2>"$kp_err" </dev/null; kp_rc=$?; '
            f"if [ $kp_rc -eq 124 ] && grep -q '^timeout: sending signal' \"$kp_err\"; then "
            f'echo "{TIMED_OUT} {seconds} s" >>"$kp_err"; fi; fi; '
            f"printf '\\n@@{nonce} STDERR %s\\n' {tag}; "
            """while IFS= read -r kp_l || [ -n "$kp_l" ]; do printf '%s\\n' "$kp_l"; done <"$kp_err"; """
            f"printf '\\n@@{nonce} END %s %s\\n' {tag} \"$kp_rc\""
        )
    lines.append('rm -f "$kp_err"')
    return "\n".join(lines) + "\n"


def _stamp(tail: str, clock: tuple[float, float] | None) -> float:
    """A BEGIN line's time: "u<uptime>" against the batch's CLOCK (wall, uptime), or a wall time."""
    try:
        if tail.startswith("u"):
            if clock is None:
                return time.time()
            return clock[0] + float(tail[1:]) - clock[1]
        return float(tail)
    except ValueError:
        return time.time()


def split_batch_output(output: str, nonce: str) -> dict[str, tuple[str, str, int, float]]:
    """Frame-by-frame: fact name -> (stdout, stderr, rc, timestamp)."""
    results: dict[str, tuple[str, str, int, float]] = {}
    marker = f"@@{nonce} "
    current: str | None = None
    section = ""
    stamp = 0.0
    clock: tuple[float, float] | None = None
    stdout_lines: list[str] = []
    stderr_lines: list[str] = []
    for line in output.split("\n"):
        if line.startswith(marker):
            kind, _, rest = line[len(marker) :].partition(" ")
            name, _, tail = rest.partition(" ")
            if kind == "CLOCK":
                try:
                    clock = (float(name), float(tail))
                except ValueError:
                    clock = None
            elif kind == "BEGIN":
                current, section, stdout_lines, stderr_lines = name, "out", [], []
                stamp = _stamp(tail, clock)
            elif kind == "STDERR" and name == current:
                section = "err"
            elif kind == "END" and name == current:
                rc = int(tail) if tail.strip().lstrip("-").isdigit() else 1
                # printf put one newline before each marker, so joining the lines restores the
                # command's output exactly, trailing newline or not
                results[name] = ("\n".join(stdout_lines), "\n".join(stderr_lines).rstrip("\n"), rc, stamp)
                current = None
            continue
        if current is None:
            continue
        (stdout_lines if section == "out" else stderr_lines).append(line)
    return results


@dataclass
class HostFacts:
    """The facts of one host, gathered in batches and cached for the session."""

    connection: Connection
    registry: Callable[[], Iterable[Fact[Any]]]
    _records: dict[str, FactRecord] = field(default_factory=dict)
    _values: dict[str, Any] = field(default_factory=dict)
    _errors: dict[str, ProbeError] = field(default_factory=dict)
    batches: int = 0
    # Facts a probe asked for that prefetch had not gathered (each cost a round trip of its own):
    # a fact set whose `groups` miss a group that reads it. The lab asserts none.
    misses: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.connection.name

    def gather(self, facts: Iterable[Fact[Any]]) -> None:
        """Run every not-yet-cached fact in one round trip."""
        pending = [f for f in facts if f.name not in self._records and f.name not in self._errors]
        unique: dict[str, Fact[Any]] = {}
        for fact in pending:
            unique.setdefault(fact.name, fact)
        if not unique:
            return
        nonce = "KP" + secrets.token_hex(6)
        script = build_batch_script(list(unique.values()), nonce)
        try:
            result = self.connection.run("sh -c " + shlex.quote(script), timeout=180)
        except HostUnreachable as exc:
            if exc.marked_down:  # down for the session: these facts will not come; say so at once next time
                for name in unique:
                    self._errors.setdefault(name, exc)
            raise
        self.batches += 1
        frames = split_batch_output(result.stdout, nonce)
        for name, fact in unique.items():
            frame = frames.get(name)
            if frame is None:
                self._errors[name] = ProbeError(
                    self.host,
                    f"fact {name!r} produced no output (batch exit {result.rc}: {result.stderr.strip()[:200]})",
                )
                continue
            stdout, stderr, rc, stamp = frame
            self._records[name] = FactRecord(self.host, name, fact.command, rc, stdout, stderr, stamp)

    def export(self) -> dict[str, Any]:
        """What was gathered, as JSON: each fact's record and each fact's error. Another process
        preloads it instead of gathering again (xdist workers share the controller's gathering).
        Facts never read secrets (docs/WRITING_CHECKS.md), so the raw output may travel."""
        return {
            "records": [asdict(record) for record in self._records.values()],
            "errors": {name: _error_document(error) for name, error in self._errors.items()},
            "batches": self.batches,
        }

    def preload(self, document: Mapping[str, Any]) -> None:
        """Take another process's `export()` as if this host's batch had run here (no round trip)."""
        for item in document.get("records", ()):
            record = FactRecord(**item)
            if record.host != self.host:
                raise ValueError(f"gathered facts of {record.host!r} offered to {self.host!r}")
            self._records.setdefault(record.fact, record)
        for name, error in dict(document.get("errors", {})).items():
            self._errors.setdefault(name, _error_from_document(self.host, error))

    def fail_all(self, facts: Iterable[Fact[Any]], error: ProbeError) -> None:
        """Record that these facts could not be gathered (the host was unreachable)."""
        for fact in facts:
            if fact.name not in self._records:
                self._errors.setdefault(fact.name, error)

    def get(self, fact: Fact[T]) -> T:
        if fact.name in self._values:
            return self._values[fact.name]  # type: ignore[no-any-return]
        if fact.name in self._errors:
            raise _raised(self._errors[fact.name])
        if fact.name not in self._records:
            # gather the whole registry with it: the next fact asked for is then already here
            self.misses.append(fact.name)
            self.gather([fact, *self.registry()])
        if fact.name in self._errors:
            raise _raised(self._errors[fact.name])
        record = self._records[fact.name]
        if record.rc == 127 and "not installed" in record.stderr:
            raise self._failed(fact, record.stderr.strip().removeprefix("kubeproof: "))
        if record.rc == 124 and TIMED_OUT in record.stderr:
            seconds = record.stderr.rsplit(TIMED_OUT, 1)[1].strip()
            raise self._failed(fact, f"fact {fact.name!r}: its command did not finish within {seconds}: {fact.command}")
        try:
            value = fact.parse(Raw(record.stdout, record.stderr, record.rc))
        except ParseError as exc:
            raise self._failed(fact, f"fact {fact.name!r}: {exc}") from None
        self._values[fact.name] = value
        return value

    def _failed(self, fact: Fact[Any], reason: str) -> ProbeError:
        """The fact's probe error, cached: asking again gives the same answer without a round trip."""
        error = ProbeError(self.host, reason)
        self._errors[fact.name] = error
        return error

    def record(self, name: str) -> FactRecord | None:
        return self._records.get(name)

    def records(self) -> list[FactRecord]:
        return list(self._records.values())

    def refresh(self) -> None:
        """Forget everything: the next get() re-reads the host (used after a fault is injected)."""
        self._records.clear()
        self._values.clear()
        self._errors.clear()


def _error_document(error: ProbeError) -> dict[str, Any]:
    if isinstance(error, HostUnreachable):
        return {"unreachable": error.cause, "marked_down": error.marked_down}
    return {"reason": error.reason}


def _error_from_document(host: str, document: Mapping[str, Any]) -> ProbeError:
    if "unreachable" in document:
        return HostUnreachable(host, str(document["unreachable"]), bool(document.get("marked_down")))
    return ProbeError(host, str(document.get("reason", "")))


def _raised(error: ProbeError) -> ProbeError:
    """A cached error, to raise again: an unreachable host's as a new object (rows on several
    threads raise it at once, and one object would share one traceback)."""
    return error.again() if isinstance(error, HostUnreachable) else error
