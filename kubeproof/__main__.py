"""`python -m kubeproof lab|plan|apply|verify ...`: one front door to the lab, the installer and the suites."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(
            "usage: python -m kubeproof lab {up,down,status,ssh,artifacts,images} ...\n"
            "       python -m kubeproof {plan,apply} --cluster FILE ...\n"
            "       python -m kubeproof verify --cluster FILE [pytest options]"
        )
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "lab":
        from lab.cli import main as lab_main

        return lab_main(rest)
    if command in ("plan", "apply"):
        from bootstrap.cli import main as bootstrap_main

        return int(bootstrap_main([command, *rest]))
    if command == "verify":
        import pytest

        return int(pytest.main(["suites", *rest]))
    print(f"kubeproof: unknown command {command!r} (lab, plan, apply, verify)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
