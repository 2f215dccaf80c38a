"""The guide's TLS bootstrapping gone wrong, for real: kubelets made to bootstrap again into a fault.

A kubelet whose client certificate is moved aside bootstraps again with bootstrap.kubeconfig, as on
the day the node joined. Each fault is one way the guide's section 3.5/5.2 goes wrong by hand, and
each makes the kubelet log a known line (the SIG-KUBELET signatures):
* `token-unknown`: bootstrap.kubeconfig carries a token token.csv does not have (SIG-KUBELET-03);
* `ca-foreign`: bootstrap.kubeconfig embeds a CA other than the one that signed the apiserver's
  certificate (SIG-KUBELET-05);
* `binding-missing`: the kubelet-bootstrap clusterrolebinding deleted (SIG-KUBELET-04);
* `csr-denied`: the node's new CSR denied (SIG-KUBELET-02).

`kubelets_bootstrapping` puts the faults in (at most one per node), waits for each kubelet's line,
and undoes everything it did from what it read before: the certificates, bootstrap.kubeconfig, the
binding, the files the waiting kubelets wrote and their CSRs; every node is Ready again after.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shlex
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kubeproof import layout
from kubeproof.transport import Connection
from tests.certificates import common_name, self_signed

FAULT = "kubeproof-fault"
KUBELET_CERT = layout.K8S_SSL + "/kubelet-client-current.pem"
BOOTSTRAP_KUBECONFIG = layout.K8S_CFG + "/bootstrap.kubeconfig"
BOOTSTRAP_BINDING = "kubelet-bootstrap"
CSR_SECONDS = 60
READY_SECONDS = 120


class FaultLab(Protocol):
    """What the fault tests' lab (tests/lab/test_41) offers."""

    def connection(self, name: str) -> Connection: ...
    def sh(self, name: str, command: str, timeout: float = ...) -> str: ...
    def ok(self, name: str, command: str) -> bool: ...
    def wait(self, what: str, ready: Callable[[], bool], timeout: float = ...) -> None: ...
    def file(self, name: str, path: str) -> tuple[bytes, int]: ...
    def write(self, name: str, path: str, data: bytes | str, mode: int) -> None: ...
    def journal_has(self, name: str, unit: str, text: str) -> Callable[[], bool]: ...


def throwaway_ca() -> tuple[bytes, bytes]:
    """A self-signed CA of the test's own (certificate PEM, key PEM), valid for a day."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = self_signed(
        common_name(FAULT + " throwaway CA"), key, now - dt.timedelta(minutes=5), now + dt.timedelta(days=1), ca=True
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _kubeconfig_with(text: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    config = yaml.safe_load(text)
    assert isinstance(config, dict) and config.get("clusters") and config.get("users"), "not a kubeconfig"
    change(config)
    return yaml.safe_dump(config, sort_keys=False).encode()


def _unknown_token(config: dict[str, Any]) -> None:
    user = config["users"][0]["user"]
    assert user.get("token"), "bootstrap.kubeconfig has no token"
    user["token"] = "0" * len(str(user["token"]))  # the shape of a token, in no token.csv


def _change_embedded(config: dict[str, Any], section: str, field: str, change: Callable[[bytes], bytes]) -> None:
    """One embedded PEM of a kubeconfig (clusters' CA, users' client certificate) changed."""
    entry = config[section][0][section[:-1]]
    assert entry.get(field), f"the kubeconfig embeds no {field}"
    entry[field] = base64.b64encode(change(base64.b64decode(entry[field]))).decode()


def embedded_pem_changed(text: bytes, section: str, field: str, change: Callable[[bytes], bytes]) -> bytes:
    return _kubeconfig_with(text, lambda config: _change_embedded(config, section, field, change))


def _foreign_ca(config: dict[str, Any]) -> None:
    _change_embedded(config, "clusters", "certificate-authority-data", lambda _: throwaway_ca()[0])


@dataclass(frozen=True)
class KubeletBootstrapFault:
    signature: str
    points_to: str
    own_line: str  # a piece of the kubelet's line, in its journal and in the row's diagnosis
    bootstrap_kubeconfig: Callable[[dict[str, Any]], None] | None = None
    binding_deleted: bool = False
    csr_denied: bool = False


KUBELET_BOOTSTRAP_FAULTS: Mapping[str, KubeletBootstrapFault] = {
    "token-unknown": KubeletBootstrapFault(
        # the kubelet's first minute: its /healthz with the token is refused (the CSR comes after)
        "SIG-KUBELET-03",
        "NODE-02",
        "the server has asked for the client to provide credentials",
        _unknown_token,
    ),
    "ca-foreign": KubeletBootstrapFault(
        "SIG-KUBELET-05", "NODE-02", "x509: certificate signed by unknown authority", _foreign_ca
    ),
    "binding-missing": KubeletBootstrapFault(
        "SIG-KUBELET-04",
        "NODE-03",
        "cannot create certificate signing request: certificatesigningrequests.certificates.k8s.io is forbidden",
        binding_deleted=True,
    ),
    "csr-denied": KubeletBootstrapFault(
        "SIG-KUBELET-02", "NODE-05", "certificate signing request is denied, reason: KubectlDeny", csr_denied=True
    ),
}


def kubectl(lab: FaultLab, *args: str) -> str:
    return lab.sh("master01", shlex.join(["kubectl", *args]))


def csr_names(lab: FaultLab) -> set[str]:
    return set(kubectl(lab, "get", "csr", "-o", "jsonpath={.items[*].metadata.name}").split())


def nodes_ready(lab: FaultLab, workers: int) -> Callable[[], bool]:
    def ready() -> bool:
        jsonpath = '{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'
        result = lab.connection("master01").run(shlex.join(["kubectl", "get", "nodes", "-o", f"jsonpath={jsonpath}"]))
        states = result.stdout.split()
        return result.rc == 0 and len(states) == workers and set(states) == {"True"}

    return ready


@dataclass
class _Saved:
    certificate_target: str
    ssl_files: set[str]
    kubeconfig: tuple[bytes, int]


def _binding_manifest(lab: FaultLab) -> str:
    """The binding as read, without what the apiserver sets, for `kubectl create -f`."""
    binding = json.loads(kubectl(lab, "get", "clusterrolebinding", BOOTSTRAP_BINDING, "-o", "json"))
    metadata = {
        key: binding["metadata"][key] for key in ("name", "labels", "annotations") if key in binding["metadata"]
    }
    return json.dumps({**binding, "metadata": metadata})


def _wait_for_new_csr(lab: FaultLab, before: set[str]) -> str:
    found: list[str] = []

    def appeared() -> bool:
        found[:] = sorted(csr_names(lab) - before)
        return bool(found)

    lab.wait("the kubelet's new CSR", appeared, CSR_SECONDS)
    assert len(found) == 1, found
    return found[0]


def _restart_bootstrapping(lab: FaultLab, node: str) -> None:
    aside = KUBELET_CERT + "." + FAULT
    lab.sh(node, shlex.join(["mv", KUBELET_CERT, aside]) + " && systemctl restart kubelet.service")


@contextmanager
def kubelets_bootstrapping(lab: FaultLab, faults: Mapping[str, str], workers: int) -> Iterator[None]:
    """Node name -> fault name (KUBELET_BOOTSTRAP_FAULTS); undone after, every node Ready again."""
    specs = {node: KUBELET_BOOTSTRAP_FAULTS[name] for node, name in faults.items()}
    saved = {
        node: _Saved(
            lab.sh(node, shlex.join(["readlink", "-e", KUBELET_CERT])).strip(),
            set(lab.sh(node, shlex.join(["ls", layout.K8S_SSL])).split()),
            lab.file(node, BOOTSTRAP_KUBECONFIG),
        )
        for node in specs
    }
    csrs_before = csr_names(lab)
    binding = _binding_manifest(lab) if any(spec.binding_deleted for spec in specs.values()) else None
    try:
        # a denied CSR first: it is created while the binding is still there
        for node, spec in sorted(specs.items(), key=lambda item: not item[1].csr_denied):
            if spec.binding_deleted:
                kubectl(lab, "delete", "clusterrolebinding", BOOTSTRAP_BINDING)
            if spec.bootstrap_kubeconfig is not None:
                data, mode = saved[node].kubeconfig
                lab.write(node, BOOTSTRAP_KUBECONFIG, _kubeconfig_with(data, spec.bootstrap_kubeconfig), mode)
            pending = csr_names(lab)
            _restart_bootstrapping(lab, node)
            if spec.csr_denied:
                kubectl(lab, "certificate", "deny", _wait_for_new_csr(lab, pending))
        for node, spec in specs.items():
            lab.wait(f"{node}'s kubelet line", lab.journal_has(node, "kubelet.service", spec.own_line), CSR_SECONDS)
        yield
    finally:
        if binding is not None and not lab.ok(
            "master01", shlex.join(["kubectl", "get", "clusterrolebinding", BOOTSTRAP_BINDING])
        ):
            path = "/tmp/" + FAULT + "-binding.json"
            lab.write("master01", path, binding, 0o600)
            lab.sh("master01", shlex.join(["kubectl", "create", "-f", path]) + " && " + shlex.join(["rm", "-f", path]))
        for node, before in saved.items():
            aside = KUBELET_CERT + "." + FAULT
            lab.sh(node, "systemctl stop kubelet.service")
            lab.sh(
                node,
                shlex.join(["test", "-e", aside]) + " && " + shlex.join(["mv", "-f", aside, KUBELET_CERT]) + " || true",
            )
            data, mode = before.kubeconfig
            lab.write(node, BOOTSTRAP_KUBECONFIG, data, mode)
            # only what the fault left: files the waiting kubelet wrote
            new_files = set(lab.sh(node, shlex.join(["ls", layout.K8S_SSL])).split()) - before.ssl_files
            if new_files:
                lab.sh(node, shlex.join(["rm", "-f", *(layout.K8S_SSL + "/" + name for name in sorted(new_files))]))
        new_csrs = csr_names(lab) - csrs_before
        if new_csrs:
            kubectl(lab, "delete", "csr", *sorted(new_csrs))
        for node, before in saved.items():
            lab.sh(node, "systemctl reset-failed kubelet.service; systemctl start kubelet.service")
            assert lab.sh(node, shlex.join(["readlink", "-e", KUBELET_CERT])).strip() == before.certificate_target
        lab.wait("every node Ready", nodes_ready(lab, workers), READY_SECONDS)
