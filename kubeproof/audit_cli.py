"""`kubeproof diff` and `kubeproof evidence verify`: what an auditor runs on kept report directories.

Exit codes: diff 0 no change, 1 changes, 2 bad input; verify 0 whole and signed, 1 tampered
(or unsigned), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from kubeproof.reports.drift import diff_results, format_changes
from kubeproof.reports.results_json import ResultsError, load_results
from kubeproof.reports.signing import SigningError, verify_bundle

EXIT_OK, EXIT_CHANGED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def diff_main(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="kubeproof diff",
        description="Rows whose outcome, observed value or certificates changed between two report directories"
        " (their results.json). Exit 0: no change, 1: changes, 2: bad input.",
    )
    parser.add_argument("old", type=Path, metavar="OLD_DIR", help="the earlier report directory (or its results.json)")
    parser.add_argument("new", type=Path, metavar="NEW_DIR", help="the later report directory (or its results.json)")
    parser.add_argument(
        "--measurements", action="store_true", help="also list numbers that moved without changing the outcome"
    )
    parser.add_argument("--json", action="store_true", help="print the changes as JSON")
    args = parser.parse_args(list(argv))
    try:
        old, new = load_results(args.old), load_results(args.new)
    except ResultsError as exc:
        print(f"kubeproof diff: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    changes = diff_results(old.rows, new.rows, measurements=args.measurements)
    compared = len({(r.key, r.host) for r in old.rows} | {(r.key, r.host) for r in new.rows})
    if args.json:
        document = {
            "old": str(old.path),
            "new": str(new.path),
            "compared": compared,
            "changes": [change.as_dict() for change in changes],
        }
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        print(format_changes(changes, old=str(old.path), new=str(new.path), compared=compared), end="")
    return EXIT_CHANGED if changes else EXIT_OK


def verify_main(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="kubeproof evidence verify",
        description="Check every hash of an evidence bundle, name any file added, removed or changed, and check"
        " the manifest's signature. Exit 0: whole and signed, 1: tampered or unsigned, 2: bad input.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="the report directory (with MANIFEST.json)")
    parser.add_argument(
        "--pubkey",
        type=Path,
        metavar="FILE",
        help="the signer's public key (PEM or ssh-ed25519); without it the bundle's own key is used,"
        " which proves integrity but not origin",
    )
    args = parser.parse_args(list(argv))
    try:
        check = verify_bundle(args.directory, args.pubkey)
    except SigningError as exc:
        print(f"kubeproof evidence verify: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for warning in check.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    for line in check.lines():
        print(f"TAMPERED {line}")
    if check.ok:
        print(f"OK {check.directory}: {check.files} files match MANIFEST.json; signed by {check.signed_by}")
        return EXIT_OK
    print(f"FAILED {check.directory}: {len(check.lines())} problem(s)")
    return EXIT_CHANGED


def evidence_main(argv: Sequence[str]) -> int:
    args = list(argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: kubeproof evidence verify DIR [--pubkey FILE]", file=sys.stdout if args else sys.stderr)
        return EXIT_OK if args else EXIT_BAD_INPUT
    if args[0] != "verify":
        print(f"kubeproof evidence: unknown command {args[0]!r} (choose from verify)", file=sys.stderr)
        return EXIT_BAD_INPUT
    return verify_main(args[1:])
