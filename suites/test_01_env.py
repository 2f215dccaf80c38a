"""ENV-01..07: environment preparation on every host (guide chapter 一)."""

from __future__ import annotations

import pytest

from kubeproof.fixtures.plugin import CheckCase, verify

pytestmark = pytest.mark.catalogue("ENV")


def test_environment(check_case: CheckCase) -> None:
    verify(check_case)
