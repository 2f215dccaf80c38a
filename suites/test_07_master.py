"""MASTER-01..10: the control plane on master01 (guide chapter 五)."""

from __future__ import annotations

import pytest

from kubeproof.fixtures.plugin import CheckCase, verify

pytestmark = pytest.mark.catalogue("MASTER")


def test_master(check_case: CheckCase) -> None:
    verify(check_case)
