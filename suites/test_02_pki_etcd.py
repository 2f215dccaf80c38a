"""PKI-E-01..07, the etcd certificates."""

from __future__ import annotations

import pytest

from kubeproof.fixtures.plugin import CheckCase, verify

pytestmark = pytest.mark.catalogue("PKI-E")


def test_pki_e(check_case: CheckCase) -> None:
    verify(check_case)
