"""Records and certificates shared by the audit tests (results.json, drift, waivers, signing)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.certificates import common_name, self_signed

STARTED = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def record(key: str, host: str, outcome: str, **fields: Any) -> dict[str, Any]:
    """A plugin record as fixtures/plugin.py builds it (only what the audit reads is filled)."""
    check_id, _, part = key.partition(":")
    base: dict[str, Any] = {
        "id": check_id,
        "key": key,
        "part": part,
        "host": host,
        "section": check_id.rsplit("-", 1)[0],
        "text": f"invariant {key}",
        "kind": "invariant",
        "severity": "medium",
        "outcome": outcome,
        "expected": "expected 'x'",
        "observed": "'x'",
        "remediation": "fix it",
        "sources": [f"{host}$ true"],
        "diagnosis": [],
        "seen": [],
        "reason": "",
        "nodeid": f"suites/test_x.py::test_x[{key}@{host}]",
        "started": STARTED,
        "duration": 0.25,
        "evidence": [],
    }
    base.update(fields)
    return base


def certificate_pem(name: str, not_after: dt.datetime) -> str:
    """A self-signed EC certificate (fast to make), PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(common_name(name), key, not_after - dt.timedelta(days=3650), not_after)
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def directory_dump(directory: str, files: dict[str, str], host: str = "master01") -> dict[str, Any]:
    """The evidence item of the `certs:<directory>` fact (kubeproof.facts.pki.certificates_in)."""
    stdout = "".join(f"==> {name}\n{pem}" for name, pem in files.items())
    return {
        "host": host,
        "fact": f"certs:{directory}",
        "command": f"for f in {directory}/*.pem; ...",
        "rc": 0,
        "stdout": stdout,
        "stderr": "",
        "timestamp": STARTED,
    }
