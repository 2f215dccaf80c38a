"""PKI-K-01..05, the Kubernetes certificates."""

from __future__ import annotations

import pytest

from kubeproof.fixtures.plugin import CheckCase, verify

pytestmark = pytest.mark.catalogue("PKI-K")


def test_pki_k(check_case: CheckCase) -> None:
    verify(check_case)
