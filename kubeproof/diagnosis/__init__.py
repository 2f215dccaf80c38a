"""Why a unit failed, read from its journal: known signatures as data.

A failing row about a unit shows the unit's state, the known signatures its own journal lines
matched ("matched SIG-ETCD-04 → points to ETCD-02: ...; fix: ...") or "no known signature matched",
and the last own error lines of its last run, never systemd's bookkeeping about the unit.

* `journal`: the reader: `journalctl -u UNIT -o short-iso` (or `-o cat`) lines parsed; the
  program's own lines told from systemd's; the last run; error lines; the command that fetches them.
* `signatures`: the catalogue (`kubeproof/checks/signatures.yaml`) loaded and validated, and the
  matcher: a signature is reported only with the line it matched.
* `explain`: the two diagnoses built from those: a unit read on demand (`unit_diagnosis_command`,
  `render_unit_diagnosis`) and a service fact's journal section (`render_service_journal`).

The package imports nothing above the facts layer; the facts and probes call it.
"""

from __future__ import annotations

from kubeproof.diagnosis.explain import (
    COMPANION_UNITS,
    MAX_DIAGNOSIS_LINES,
    diagnose,
    read_unit_journal,
    render_service_journal,
    render_unit_diagnosis,
    unit_diagnosis_command,
)
from kubeproof.diagnosis.journal import JOURNAL_LINES, JournalLine, journal_command, parse_journal
from kubeproof.diagnosis.signatures import (
    KNOWN_UNITS,
    SIGNATURES_FILE,
    Signature,
    SignatureError,
    SignatureMatch,
    default_signatures,
    load_signatures,
    match_signatures,
    parse_signatures,
)

__all__ = [
    "COMPANION_UNITS",
    "JOURNAL_LINES",
    "KNOWN_UNITS",
    "MAX_DIAGNOSIS_LINES",
    "SIGNATURES_FILE",
    "JournalLine",
    "Signature",
    "SignatureError",
    "SignatureMatch",
    "default_signatures",
    "diagnose",
    "journal_command",
    "load_signatures",
    "match_signatures",
    "parse_journal",
    "parse_signatures",
    "read_unit_journal",
    "render_service_journal",
    "render_unit_diagnosis",
    "unit_diagnosis_command",
]
