"""NODE-01..09: kubelet and kube-proxy on the workers (guide chapter 六)."""

from __future__ import annotations

import pytest

from kubeproof.fixtures.plugin import CheckCase, verify

pytestmark = pytest.mark.catalogue("NODE")


def test_node(check_case: CheckCase) -> None:
    verify(check_case)
