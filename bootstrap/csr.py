"""Which kubelet CSRs the installer approves (the guide's 5.2 `kubectl certificate approve`), and why not others.

Only a request that is exactly what a worker's kubelet sends during TLS bootstrapping is approved:
submitted by the bootstrap token's user, for the kubelet client signer, CN=system:node:<a worker of
the cluster file>, O=system:nodes and nothing else, client-auth usages, no SANs. Anything else is
reported, never approved; the installer never approves "everything pending".
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

BOOTSTRAP_USER = "kubelet-bootstrap"
KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
REQUIRED_USAGES = frozenset({"digital signature", "client auth"})
ALLOWED_USAGES = REQUIRED_USAGES | {"key encipherment"}


@dataclass(frozen=True)
class CsrVerdict:
    name: str
    node: str | None  # the worker it is for, when approvable
    reason: str  # why it is not approvable ("" when it is)

    @property
    def approvable(self) -> bool:
        return self.node is not None


def csr_state(csr: dict[str, Any]) -> str:
    """ "Pending", "Approved", "Denied" or "Failed" (the last condition that is True wins over pending)."""
    conditions = (csr.get("status") or {}).get("conditions") or []
    for wanted in ("Denied", "Failed", "Approved"):
        if any(c.get("type") == wanted and c.get("status", "True") == "True" for c in conditions):
            return wanted
    return "Pending"


def judge_csr(csr: dict[str, Any], workers: Iterable[str]) -> CsrVerdict:
    metadata = csr.get("metadata") or {}
    spec = csr.get("spec") or {}
    name = str(metadata.get("name", "?"))
    worker_names = set(workers)

    def no(reason: str) -> CsrVerdict:
        return CsrVerdict(name, None, reason)

    username = spec.get("username")
    if username != BOOTSTRAP_USER:
        return no(f"submitted by {username!r}, not by the bootstrap token's user {BOOTSTRAP_USER!r}")
    signer = spec.get("signerName")
    if signer != KUBELET_CLIENT_SIGNER:
        return no(f"signer {signer!r}, not {KUBELET_CLIENT_SIGNER!r}")
    usages = set(spec.get("usages") or [])
    if not usages >= REQUIRED_USAGES or not usages <= ALLOWED_USAGES:
        return no(f"usages {sorted(usages)}, expected {sorted(REQUIRED_USAGES)} (and maybe key encipherment)")
    try:
        pem = base64.b64decode(spec.get("request") or "", validate=True)
        request = x509.load_pem_x509_csr(pem)
    except (binascii.Error, ValueError):
        return no("the request is not a PEM certificate request")
    if not request.is_signature_valid:
        return no("the request's signature does not verify")
    common_names = [a.value for a in request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    organizations = [a.value for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    other = [
        a.oid.dotted_string for a in request.subject if a.oid not in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME)
    ]
    if len(common_names) != 1 or not str(common_names[0]).startswith(NODE_PREFIX):
        return no(f"subject CN {common_names}, expected one {NODE_PREFIX}<node>")
    node = str(common_names[0])[len(NODE_PREFIX) :]
    if node not in worker_names:
        return no(f"CN=system:node:{node}: {node!r} is not a worker of the cluster file")
    if organizations != [NODES_GROUP]:
        return no(f"subject O {organizations}, expected exactly [{NODES_GROUP!r}]")
    if other:
        return no(f"unexpected subject attributes {other}")
    try:
        san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        san = None
    if san is not None and list(san.value):
        return no("a kubelet client certificate has no subject alternative names")
    return CsrVerdict(name, node, "")


def describe(csr: dict[str, Any]) -> str:
    spec = csr.get("spec") or {}
    return (
        f"{(csr.get('metadata') or {}).get('name')} (user {spec.get('username')!r}, signer {spec.get('signerName')!r})"
    )
