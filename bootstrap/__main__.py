"""`kubeproof plan|apply --cluster FILE ...`: see bootstrap/cli.py."""

from __future__ import annotations

import sys

from kubeproof.bootstrap.cli import main

if __name__ == "__main__":
    sys.exit(main())
