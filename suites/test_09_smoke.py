"""SMOKE-01..06: the guide's closing test, on a workload of kubeproof's own (removed by SMOKE-06).

The rows share one workload per pytest process (kubeproof/probes/smoke.py); SMOKE-06 comes last
in the catalogue, removes it and checks that nothing is left. The session's finaliser removes it
too, so a failure or an interrupt before SMOKE-06 leaves nothing behind either.
"""

from __future__ import annotations

import pytest

from kubeproof.fixtures.plugin import CheckCase, verify

pytestmark = pytest.mark.catalogue("SMOKE")


def test_smoke(check_case: CheckCase) -> None:
    verify(check_case)
