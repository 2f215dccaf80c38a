"""Which known signatures are proven on the lab, and why the others are not (issue 9).

A signature is proven where a lab test makes its condition for real and asserts that a failing row's
diagnosis names it (tests/lab/test_46, test_48, test_45, test_70). This keeps the catalogue and that
list honest: a signature added without a lab proof must be listed here with the reason, and one that
gets a proof must leave the list.
"""

from __future__ import annotations

import re
from pathlib import Path

from kubeproof.diagnosis import default_signatures

LAB_TESTS = Path(__file__).resolve().parents[1] / "lab"
# Named by a lab test: as a quoted ID, or in the text it asserts ("matched SIG-ETCD-03 → ...").
NAMED = re.compile(r"\"(SIG-[A-Z]+-\d{2})\"|matched (SIG-[A-Z]+-\d{2}) ")

# Not proven on the lab, each with what was seen when it was tried or read (none today).
UNPROVEN: dict[str, str] = {}


def _named_by_lab_tests() -> set[str]:
    named: set[str] = set()
    for path in sorted(LAB_TESTS.glob("*.py")):
        for match in NAMED.finditer(path.read_text()):
            named.add(match.group(1) or match.group(2))
    return named


def test_every_signature_is_proven_on_the_lab_or_says_why_not() -> None:
    catalogue = {signature.id for signature in default_signatures()}
    named = _named_by_lab_tests()
    assert named - catalogue == set(), "lab tests name signatures the catalogue lacks"
    assert sorted(catalogue - named - set(UNPROVEN)) == [], "neither proven on the lab nor listed as unproven"
    assert sorted(named & set(UNPROVEN)) == [], "proven on the lab now: take them off UNPROVEN"
    assert set(UNPROVEN) <= catalogue
    # issue 9 asks for at least 15 signatures proven for real
    assert len(catalogue & named) >= 15, sorted(catalogue & named)
