"""`python -m kubeproof ...`: the same front door as the ``kubeproof`` console script."""

from __future__ import annotations

import sys

from kubeproof.cli import main

if __name__ == "__main__":
    sys.exit(main())
