"""Which CSRs the installer approves: only a worker kubelet's own bootstrap request."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubeproof.bootstrap.csr import csr_state, judge_csr

WORKERS = ["node01", "node02"]
_KEY = ec.generate_private_key(ec.SECP256R1())


def make_csr(
    cn: str = "system:node:node01",
    orgs: tuple[str, ...] = ("system:nodes",),
    *,
    user: str = "kubelet-bootstrap",
    signer: str = "kubernetes.io/kube-apiserver-client-kubelet",
    usages: tuple[str, ...] = ("digital signature", "client auth"),
    sans: tuple[str, ...] = (),
    name: str = "node-csr-x",
) -> dict[str, Any]:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    request = builder.sign(_KEY, hashes.SHA256())
    pem = request.public_bytes(serialization.Encoding.PEM)
    return {
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": signer,
            "usages": list(usages),
            "username": user,
        },
        "status": {},
    }


def test_a_workers_bootstrap_request_is_approvable() -> None:
    verdict = judge_csr(make_csr(), WORKERS)
    assert verdict.approvable and verdict.node == "node01" and verdict.reason == ""
    with_key_encipherment = make_csr(usages=("digital signature", "key encipherment", "client auth"))
    assert judge_csr(with_key_encipherment, WORKERS).approvable


@pytest.mark.parametrize(
    ("csr", "reason"),
    [
        (make_csr("system:node:node02", user="mallory"), "not by the bootstrap token's user"),
        (make_csr("system:node:node99"), "not a worker of the cluster file"),
        (make_csr("system:node:master01"), "not a worker of the cluster file"),
        (make_csr("admin"), "expected one system:node:"),
        (make_csr(orgs=("system:masters",)), "subject O"),
        (make_csr(orgs=("system:nodes", "system:masters")), "subject O"),
        (make_csr(signer="kubernetes.io/kube-apiserver-client"), "signer"),
        (make_csr(usages=("digital signature", "client auth", "server auth")), "usages"),
        (make_csr(usages=("digital signature",)), "usages"),
        (make_csr(sans=("evil.example",)), "subject alternative names"),
    ],
)
def test_anything_else_is_left_alone_with_a_reason(csr: dict[str, Any], reason: str) -> None:
    verdict = judge_csr(csr, WORKERS)
    assert not verdict.approvable
    assert reason in verdict.reason


def test_garbage_request_is_not_approvable() -> None:
    csr = make_csr()
    csr["spec"]["request"] = base64.b64encode(b"not a pem").decode()
    assert "not a PEM" in judge_csr(csr, WORKERS).reason


def test_csr_state() -> None:
    csr = make_csr()
    assert csr_state(csr) == "Pending"
    csr["status"] = {"conditions": [{"type": "Approved", "status": "True"}]}
    assert csr_state(csr) == "Approved"
    csr["status"]["conditions"].append({"type": "Denied", "status": "True"})
    assert csr_state(csr) == "Denied"
