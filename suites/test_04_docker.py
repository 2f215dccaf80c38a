"""DOCKER-01..02: the container engine on every worker (guide chapter 三)."""

from __future__ import annotations

import pytest

from kubeproof.fixtures.plugin import CheckCase, verify

pytestmark = pytest.mark.catalogue("DOCKER")


def test_docker(check_case: CheckCase) -> None:
    verify(check_case)
