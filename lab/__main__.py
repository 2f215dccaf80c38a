"""`kubeproof lab ...`: the lab command line."""

from __future__ import annotations

import sys

from kubeproof.lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
