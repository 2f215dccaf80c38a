"""The ``kubeproof`` command: one front door to the suites, the installer and the lab.

This is the only module that imports both the installer (kubeproof.bootstrap) and the lab
(kubeproof.lab); the core library below it (inventory, transport, facts, checks) imports neither.
Each subcommand's own parser lives with its code; this module only dispatches, lazily, so that
``kubeproof verify`` does not import the lab and ``kubeproof lab`` does not import pytest.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

USAGE = """\
usage: kubeproof verify [pytest options]         run the suites (pytest --pyargs kubeproof.suites ...)
       kubeproof plan  --cluster FILE ...        show what apply would change
       kubeproof apply --cluster FILE ...        install / converge the cluster
       kubeproof lab {up,down,status,ssh,artifacts,images} ...
                                                 the lab of node containers
       kubeproof diff OLD_DIR NEW_DIR            rows that changed between two report directories
       kubeproof evidence verify DIR [--pubkey FILE]
                                                 check an evidence bundle's hashes and signature
       kubeproof bench [--sizes 3,10,25,50] [--modes serial,auto,naive]
                                                 verify walls on a scale lab of light hosts

verify takes every pytest option, kubeproof's (--cluster, --profile, --report-dir, --ssh-timeout,
--baseline, --waivers, --signing-key)
and testinfra's (--hosts, --ssh-config, --ssh-identity-file, --sudo, --sudo-user,
--ansible-inventory), and xdist's -n.
"""


def _verify(args: list[str]) -> int:
    import pytest

    return int(pytest.main(["--pyargs", "kubeproof.suites", *args]))


def _bootstrap(command: str) -> Callable[[list[str]], int]:
    def run(args: list[str]) -> int:
        from kubeproof.bootstrap.cli import main as bootstrap_main

        return int(bootstrap_main([command, *args]))

    return run


def _lab(args: list[str]) -> int:
    from kubeproof.lab.cli import main as lab_main

    return int(lab_main(args))


def _diff(args: list[str]) -> int:
    from kubeproof.audit_cli import diff_main

    return diff_main(args)


def _evidence(args: list[str]) -> int:
    from kubeproof.audit_cli import evidence_main

    return evidence_main(args)


def _bench(args: list[str]) -> int:
    from kubeproof.bench.cli import main as bench_main

    return bench_main(args)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "verify": _verify,
    "plan": _bootstrap("plan"),
    "apply": _bootstrap("apply"),
    "lab": _lab,
    "diff": _diff,
    "evidence": _evidence,
    "bench": _bench,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    handler = COMMANDS.get(command)
    if handler is None:
        print(f"kubeproof: unknown command {command!r} (choose from {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    return handler(rest)
