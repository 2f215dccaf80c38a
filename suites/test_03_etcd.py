"""ETCD-01..11: the etcd cluster (guide chapter 二). SEC-01, the finding about it, runs with SEC."""

from __future__ import annotations

import pytest

from kubeproof.fixtures.plugin import CheckCase, verify

pytestmark = pytest.mark.catalogue("ETCD")


def test_etcd(check_case: CheckCase) -> None:
    verify(check_case)
