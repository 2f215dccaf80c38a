"""FLANNEL-01..08: the flannel overlay (guide chapter 四), cross-checked layer against layer."""

from __future__ import annotations

import pytest

from kubeproof.fixtures.plugin import CheckCase, verify

pytestmark = pytest.mark.catalogue("FLANNEL")


def test_flannel(check_case: CheckCase) -> None:
    verify(check_case)
