"""SEC-01..05, findings scored per profile."""

from __future__ import annotations

import pytest

from kubeproof.fixtures.plugin import CheckCase, verify

pytestmark = pytest.mark.catalogue("SEC")


def test_sec(check_case: CheckCase) -> None:
    verify(check_case)
