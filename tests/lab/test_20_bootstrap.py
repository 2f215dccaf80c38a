"""The installer on the real lab: bare lab -> all nodes Ready (timed), a re-apply that changes nothing
(timed, plan empty), runs SIGKILLed mid-etcd and mid-nodes that converge when run again, and CSRs
that must not be approved.

Runs `kubeproof` as a user would (a subprocess) with the default state directory, so the
cluster it leaves behind is the one the suites (test_30) verify.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from kubeproof.bootstrap.kubeapi import SshTunnel
from kubeproof.bootstrap.state import StateDir, default_state_dir
from kubeproof.inventory import load_cluster_file
from kubeproof.lab.labctl import down, up
from kubeproof.lab.progress import Progress
from kubeproof.lab.settings import LabSettings
from kubeproof.transport import Transport
from tests.lab.suite_runner import REPO

pytestmark = pytest.mark.lab

BARE_TO_READY_BUDGET = 180.0
REAPPLY_BUDGET = 20.0
STATE = Path(os.environ.get("KUBEPROOF_STATE", REPO / ".kubeproof"))
MEASUREMENTS = STATE / "measurements.json"
WORKERS = ("node01", "node02")


@dataclass
class CliRun:
    returncode: int
    seconds: float
    output: str

    def summary(self) -> str:
        found = re.findall(r"^(?:plan|apply): .*$", self.output, re.M)
        return found[-1] if found else self.output[-2000:]

    @property
    def changes(self) -> int:
        match = re.search(r"^(?:plan|apply): (\d+) changes?", self.output, re.M)
        assert match, self.output[-3000:]
        return int(match.group(1))


def bootstrap(command: str, cluster_file: Path, *extra: str, timeout: float = 900) -> CliRun:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "kubeproof", command, "--cluster", str(cluster_file), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliRun(result.returncode, time.monotonic() - started, result.stdout + result.stderr)


def bootstrap_killed_at(cluster_file: Path, pattern: str, timeout: float = 600) -> str:
    """Start `apply`, SIGKILL it as soon as a progress line matches ``pattern``; return what it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kubeproof", "apply", "--cluster", str(cluster_file)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        for line in process.stdout:
            seen.append(line)
            if re.search(pattern, line):
                process.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "".join(seen[-40:])
        else:
            pytest.fail(f"apply finished before printing {pattern!r}:\n" + "".join(seen[-40:]))
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return "".join(seen)


def record(name: str, value: object) -> None:
    data = json.loads(MEASUREMENTS.read_text()) if MEASUREMENTS.exists() else {}
    data[name] = value
    MEASUREMENTS.parent.mkdir(parents=True, exist_ok=True)
    MEASUREMENTS.write_text(json.dumps(data, indent=2, sort_keys=True))


def bare_lab(settings: LabSettings) -> Path:
    """A lab whose hosts have never seen the installer (local state, PKI and token, is kept)."""
    down(settings, Progress())
    return up(settings, Progress())


def kubectl_on_master(cluster_file: Path, *args: str) -> str:
    cluster = load_cluster_file(cluster_file)
    transport = Transport(cluster)
    try:
        result = transport.connection(cluster.masters[0]).run_argv(["kubectl", *args], timeout=60)
    finally:
        transport.close()
    assert result.rc == 0, result.stderr
    return result.stdout


def assert_all_workers_ready(cluster_file: Path) -> None:
    nodes = json.loads(kubectl_on_master(cluster_file, "get", "nodes", "-o", "json"))["items"]
    ready = {
        n["metadata"]["name"]: any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
        for n in nodes
    }
    assert ready == dict.fromkeys(WORKERS, True), ready


@pytest.fixture(scope="module")
def settings() -> LabSettings:
    return LabSettings.create()


def test_bare_lab_to_all_nodes_ready(settings: LabSettings) -> None:
    cluster_file = bare_lab(settings)
    run = bootstrap("apply", cluster_file)
    print(run.output[-6000:])
    assert run.returncode == 0, run.output[-4000:]
    assert_all_workers_ready(cluster_file)
    times = re.search(r"^  times: (.*)$", run.output, re.M)
    record("bootstrap_bare_to_ready_seconds", round(run.seconds, 1))
    record("bootstrap_bare_phase_times", times.group(1) if times else "")
    assert run.seconds <= BARE_TO_READY_BUDGET, f"bare -> Ready took {run.seconds:.0f}s"


def test_second_apply_changes_nothing_and_plan_is_empty(lab_cluster_file: Path) -> None:
    first = bootstrap("apply", lab_cluster_file)
    assert first.returncode == 0, first.output[-4000:]
    plan = bootstrap("plan", lab_cluster_file)
    assert plan.returncode == 0, plan.output[-3000:]
    assert plan.changes == 0, plan.output[-3000:]
    again = bootstrap("apply", lab_cluster_file)
    assert again.returncode == 0, again.output[-3000:]
    assert again.changes == 0, again.output[-3000:]
    record("bootstrap_reapply_seconds", round(again.seconds, 1))
    record("bootstrap_plan_converged_seconds", round(plan.seconds, 1))
    assert again.seconds <= REAPPLY_BUDGET, f"re-apply took {again.seconds:.1f}s"


def test_runs_killed_mid_etcd_and_mid_nodes_converge(settings: LabSettings) -> None:
    cluster_file = bare_lab(settings)
    printed = bootstrap_killed_at(cluster_file, r"^\[3/7 etcd\] \S+: create /opt/etcd/cfg/etcd")
    assert "[3/7 etcd]" in printed
    printed = bootstrap_killed_at(cluster_file, r"^\[7/7 nodes\] \S+: start kubelet\.service")
    assert "[7/7 nodes]" in printed
    resumed = bootstrap("apply", cluster_file)
    assert resumed.returncode == 0, resumed.output[-4000:]
    assert_all_workers_ready(cluster_file)
    converged = bootstrap("plan", cluster_file)
    assert converged.changes == 0, converged.output[-3000:]


# ----------------------------------------------------------------------------- CSRs that must stay pending


def csr_body(name: str, common_name: str) -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"],
        },
    }


def mint_client_certificate(pki: Path, directory: Path, user: str) -> tuple[Path, Path]:
    """A client certificate for ``user`` (no group) signed by the cluster's CA, for the test only."""
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca-key.pem").read_bytes(), password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{user}.pem", directory / f"{user}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class ApiClients:
    admin: kubernetes.client.ApiClient
    bootstrap_token: kubernetes.client.ApiClient
    mallory: kubernetes.client.ApiClient  # an ordinary user allowed to create CSRs, nothing more


@pytest.fixture
def api_clients(lab_cluster_file: Path, tmp_path: Path) -> Iterator[ApiClients]:
    """Clients of three users, through an SSH tunnel to the master (as the installer reaches it)."""
    cluster = load_cluster_file(lab_cluster_file)
    transport = Transport(cluster)
    master = cluster.masters[0]
    tunnel = SshTunnel(transport.connection(master), master.address, 6443)
    pki = default_state_dir() / "pki" / "kubernetes"
    token = StateDir(default_state_dir()).read_token()
    assert token, "run the bootstrap first"

    def client(**kwargs: Any) -> kubernetes.client.ApiClient:
        config = kubernetes.client.Configuration()
        config.host = f"https://127.0.0.1:{tunnel.port}"
        config.ssl_ca_cert = str(pki / "ca.pem")
        for key, value in kwargs.items():
            setattr(config, key, value)
        return kubernetes.client.ApiClient(config)

    mallory_cert, mallory_key = mint_client_certificate(pki, tmp_path, "mallory")
    clients = ApiClients(
        admin=client(cert_file=str(pki / "admin.pem"), key_file=str(pki / "admin-key.pem")),
        bootstrap_token=client(api_key={"authorization": "Bearer " + token}),
        mallory=client(cert_file=str(mallory_cert), key_file=str(mallory_key)),
    )
    rbac = kubernetes.client.RbacAuthorizationV1Api(clients.admin)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "kubeproof-test-mallory"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node-bootstrapper"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}],
    }
    rbac.create_cluster_role_binding(binding)  # type: ignore[arg-type]
    try:
        yield clients
    finally:
        rbac.delete_cluster_role_binding("kubeproof-test-mallory")
        for api_client in (clients.admin, clients.bootstrap_token, clients.mallory):
            api_client.close()  # type: ignore[no-untyped-call]
        tunnel.close()
        transport.close()


def test_wrong_csrs_are_left_pending(lab_cluster_file: Path, api_clients: ApiClients) -> None:
    admin_certs = kubernetes.client.CertificatesV1Api(api_clients.admin)
    # CN=system:node:node02, but submitted by another user (not an admin: the controller-manager
    # would approve an admin's node CSR itself), not by the bootstrap token's user
    not_bootstrap = csr_body("kubeproof-test-not-bootstrap", "system:node:node02")
    # submitted with the bootstrap token, for a node that is not in the cluster file
    unknown_node = csr_body("kubeproof-test-unknown-node", "system:node:node99")
    names = [not_bootstrap["metadata"]["name"], unknown_node["metadata"]["name"]]
    for name in names:
        try:
            admin_certs.delete_certificate_signing_request(name)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise
    kubernetes.client.CertificatesV1Api(api_clients.mallory).create_certificate_signing_request(
        not_bootstrap  # type: ignore[arg-type]
    )
    kubernetes.client.CertificatesV1Api(api_clients.bootstrap_token).create_certificate_signing_request(
        unknown_node  # type: ignore[arg-type]
    )
    try:
        run = bootstrap("apply", lab_cluster_file)
        # left alone, and the cluster is not conforming while they are pending (NODE-05): the
        # health gate says so and apply exits non-zero, approving nothing (bootstrap/health.py)
        assert run.returncode == 1, run.output[-3000:]
        assert run.changes == 0, run.output[-3000:]
        assert "[NODE-05] master01: " in run.output and "health gate RED" in run.output, run.output[-3000:]
        assert "left alone: CSR kubeproof-test-not-bootstrap" in run.output
        assert "submitted by 'mallory', not by the bootstrap token's user" in run.output
        assert "left alone: CSR kubeproof-test-unknown-node" in run.output
        assert "'node99' is not a worker of the cluster file" in run.output
        for name in names:
            status = admin_certs.read_certificate_signing_request(name).status
            conditions = [c.type for c in (status.conditions or [])] if status else []
            assert "Approved" not in conditions, f"{name} was approved"
    finally:
        for name in names:
            admin_certs.delete_certificate_signing_request(name)
