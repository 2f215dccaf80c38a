"""Reads of the Kubernetes API tried again when no answer comes in ATTEMPT_SECONDS; writes sent once."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, ClassVar, cast

import pytest
from urllib3.exceptions import ReadTimeoutError

from kubeproof.clients import KubeClients
from kubeproof.probes import master
from kubeproof.transport import ProbeError


class _Response:
    status = 200
    headers: ClassVar[dict[str, str]] = {}
    response = SimpleNamespace(release_conn=lambda: None)

    def read(self) -> bytes:
        return b'{"kind": "Namespace"}'


class _ApiClient:
    """Hangs (a read timeout after the attempt's time) for the first ``hangs`` calls, then answers."""

    def __init__(self, hangs: int) -> None:
        self.hangs = hangs
        self.timeouts: list[float] = []

    def call_api(self, method: str, url: str, *, _request_timeout: float, **_: Any) -> _Response:
        self.timeouts.append(_request_timeout)
        if len(self.timeouts) <= self.hangs:
            time.sleep(_request_timeout)
            raise ReadTimeoutError(cast(Any, None), url, "Read timed out.")
        return _Response()


def _clients(api: _ApiClient) -> KubeClients:
    return cast(KubeClients, SimpleNamespace(api_client=api, server="https://192.168.61.17:6443"))


@pytest.fixture(autouse=True)
def _short_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(master, "ATTEMPT_SECONDS", 0.2)


def test_a_read_without_answer_is_sent_again_and_says_so() -> None:
    api = _ApiClient(hangs=2)
    answer = master.call_json(_clients(api), "GET", "/api/v1/namespaces/x", timeout=2.0, where="master01")
    assert answer.status == 200 and answer.body == {"kind": "Namespace"}
    assert answer.unanswered == 2
    assert answer.describe() == "HTTP 200, after 2 attempt(s) unanswered in 0.2 s"
    assert api.timeouts[:2] == [0.2, 0.2]


def test_the_last_attempt_takes_what_is_left_and_the_timeout_holds() -> None:
    api = _ApiClient(hangs=100)
    started = time.monotonic()
    with pytest.raises(ProbeError, match="Kubernetes API GET /api/v1/nodes: ReadTimeoutError"):
        master.call_json(_clients(api), "GET", "/api/v1/nodes", timeout=1.0, where="master01")
    assert time.monotonic() - started < 1.5
    assert api.timeouts[-1] > 0.2  # no 0.2 s attempt when two no longer fit in what is left


def test_a_write_is_sent_once() -> None:
    api = _ApiClient(hangs=1)
    with pytest.raises(ProbeError, match="POST"):
        master.call_json(_clients(api), "POST", "/api/v1/namespaces", {"kind": "Namespace"}, timeout=1.0, where="m")
    assert len(api.timeouts) == 1 and api.timeouts[0] == pytest.approx(1.0, abs=0.05)
