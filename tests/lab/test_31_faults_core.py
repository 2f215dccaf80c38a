"""ENV and PKI checks proven both ways: real faults on the bootstrapped lab, the right IDs fail, then
everything is restored and the same suites pass again.

Faults are injected over SSH with kubeproof's own transport. Several faults go in at once on
different hosts, so one suite run proves many rows; each assertion names host and ID.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kubeproof.inventory import Cluster, load_cluster_file
from kubeproof.transport import Connection, Transport
from tests.lab.suite_runner import REPO, SuiteRun, run_suites

pytestmark = pytest.mark.lab

STATE = Path(os.environ.get("KUBEPROOF_STATE", REPO / ".kubeproof"))
CLUSTER_FILE = STATE / "lab" / "cluster.yaml"


@pytest.fixture(scope="module")
def cluster(converged_cluster_file: Path) -> Cluster:
    return load_cluster_file(converged_cluster_file)


@pytest.fixture(scope="module")
def transport(cluster: Cluster) -> Iterator[Transport]:
    transport = Transport(cluster)
    yield transport
    transport.close()


def sh(connection: Connection, command: str) -> str:
    result = connection.run(command)
    assert result.rc == 0, f"{connection.name}$ {command}: rc={result.rc} {result.stderr}"
    return result.stdout


def remove_exact_lines(connection: Connection, path: str, lines: list[str]) -> None:
    """Undo an appended fault: drop exactly these lines, keep the file's inode and everything else."""
    current = connection.read_file(path) or b""
    kept = [line for line in current.decode().splitlines() if line not in lines]
    sh(connection, "cat > " + shlex.quote(path) + " <<'KUBEPROOF_EOF'\n" + "\n".join(kept) + "\nKUBEPROOF_EOF")


def _suites(tmp_path: Path, name: str, paths: list[str], *extra: str) -> SuiteRun:
    return run_suites(CLUSTER_FILE, paths, *extra, junit=tmp_path / f"{name}.xml")


def _assert_failed(run: SuiteRun, key: str, host: str) -> None:
    outcome = run.outcome_of(f"{key}@{host}")
    assert outcome == "failed", f"{key}@{host}: expected failed, got {outcome}\n{run.output[-3000:]}"


def _assert_clean(run: SuiteRun) -> None:
    bad = run.with_outcome("failed") + run.with_outcome("error")
    assert not bad, "\n".join(f"{o.key}: {o.outcome}\n{o.message[:600]}" for o in bad)


# ----------------------------------------------------------------------------- ENV


ENV_FAULTS_HOSTS = ("master01", "node01", "node02")
FAKE_FIREWALLD = (
    "[Unit]\nDescription=kubeproof fault: a firewalld that is running\n"
    "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n"
)
SWAP_LINE = "/kubeproof-fault-swapfile none swap sw 0 0"
FAKETIME_LINES = (
    "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    'FAKETIME="+30"',
)


def test_env_faults_fail_with_their_ids_and_recover(cluster: Cluster, transport: Transport, tmp_path: Path) -> None:
    master, node01, node02 = (transport.connection(n) for n in ENV_FAULTS_HOSTS)
    saved_hosts = sh(node02, "cat /etc/hosts")
    try:
        # node01: a running firewalld (ENV-01), a wrong hostname (ENV-03), a swap entry in fstab (ENV-04:fstab)
        node01.write_file("/etc/systemd/system/firewalld.service", FAKE_FIREWALLD.encode())
        sh(node01, "systemctl daemon-reload && systemctl enable --now firewalld.service")
        sh(node01, "hostname kubeproof-wrong-name")
        sh(node01, "echo " + shlex.quote(SWAP_LINE) + " >> /etc/fstab")
        # node02: /etc/hosts without node01 (ENV-05), the bridge sysctl off (ENV-06), SELinux config on (ENV-02:config)
        sh(node02, "sed -i '/[[:space:]]node01$/d' /etc/hosts")
        sh(node02, "sysctl -w net.bridge.bridge-nf-call-iptables=0")
        sh(node02, "mkdir -p /etc/selinux && echo SELINUX=enforcing > /etc/selinux/config")
        # master01: a clock 30 s ahead for every process SSH starts, by libfaketime (never the real clock)
        sh(master, "printf '%s\\n' " + " ".join(shlex.quote(line) for line in FAKETIME_LINES) + " >> /etc/environment")
        assert int(float(sh(master, "date +%s"))) != 0

        broken = _suites(tmp_path, "env-broken", ["suites/test_01_env.py"])
        _assert_failed(broken, "ENV-01", "node01")
        _assert_failed(broken, "ENV-03", "node01")
        _assert_failed(broken, "ENV-04:fstab", "node01")
        _assert_failed(broken, "ENV-05", "node02")
        _assert_failed(broken, "ENV-06", "node02")
        _assert_failed(broken, "ENV-02:config", "node02")
        _assert_failed(broken, "ENV-07", "master01")
        # the faults were confined: the same rows pass on the other hosts
        assert broken.outcome_of("ENV-01@node02") == "passed"
        assert broken.outcome_of("ENV-07@node01") == "passed"
        message = next(o.message for o in broken.outcomes if o.key == "ENV-05@node02")
        for part in ("[ENV-05] node02", "expected:", "observed:", "node01=missing", "source:", "fix:"):
            assert part in message, message
    finally:
        sh(
            node01,
            "systemctl disable --now firewalld.service; rm -f /etc/systemd/system/firewalld.service; "
            "systemctl daemon-reload; hostname node01",
        )
        remove_exact_lines(node01, "/etc/fstab", [SWAP_LINE])
        node02.write_file("/etc/hosts", saved_hosts.encode())
        sh(
            node02,
            "sysctl -w net.bridge.bridge-nf-call-iptables=1; rm -f /etc/selinux/config; rmdir /etc/selinux || true",
        )
        remove_exact_lines(master, "/etc/environment", list(FAKETIME_LINES))
    healed = _suites(tmp_path, "env-healed", ["suites/test_01_env.py"])
    _assert_clean(healed)


# ----------------------------------------------------------------------------- PKI


def resign(
    pem: bytes,
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    *,
    drop_address: str | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    subject: x509.Name | None = None,
) -> bytes:
    """The same certificate (same key, subject, usages) re-signed by its CA with one thing wrong."""
    original = x509.load_pem_x509_certificate(pem)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or original.subject)
        .issuer_name(ca_cert.subject)
        .public_key(original.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or original.not_valid_before_utc)
        .not_valid_after(not_after or original.not_valid_after_utc)
    )
    for extension in original.extensions:
        if isinstance(extension.value, x509.SubjectAlternativeName) and drop_address:
            kept = [
                name
                for name in extension.value
                if not (isinstance(name, x509.IPAddress) and name.value == ipaddress.ip_address(drop_address))
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(kept), extension.critical)
        elif not isinstance(extension.value, (x509.AuthorityKeyIdentifier, x509.SubjectKeyIdentifier)):
            builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_pki_faults_fail_with_their_ids_and_recover(cluster: Cluster, transport: Transport, tmp_path: Path) -> None:
    master, node01, node02 = (transport.connection(n) for n in ENV_FAULTS_HOSTS)
    etcd_pki = STATE / "pki" / "etcd"
    k8s_pki = STATE / "pki" / "kubernetes"
    saved_server = node01.read_file("/opt/etcd/ssl/server.pem")
    saved_admin = master.read_file("/opt/kubernetes/ssl/admin.pem")
    assert saved_server and saved_admin
    etcd_ca = (etcd_pki / "ca.pem").read_bytes()
    etcd_ca_key = (etcd_pki / "ca-key.pem").read_bytes()
    k8s_ca = (k8s_pki / "ca.pem").read_bytes()
    k8s_ca_key = (k8s_pki / "ca-key.pem").read_bytes()
    now = dt.datetime.now(dt.UTC)
    try:
        # node01: server.pem expired and without node02's address (PKI-E-03, PKI-E-05, PKI-E-06)
        broken_server = resign(
            saved_server,
            etcd_ca,
            etcd_ca_key,
            drop_address=cluster.host("node02").address,
            not_before=now - dt.timedelta(days=10),
            not_after=now - dt.timedelta(days=1),
        )
        node01.write_file("/opt/etcd/ssl/server.pem", broken_server, 0o644)
        # node02: a world-readable etcd key (PKI-E-07; SEC-04 is a finding that --profile hardened fails)
        sh(node02, "chmod 644 /opt/etcd/ssl/server-key.pem")
        # master01: admin.pem outliving the Kubernetes CA (PKI-K-05:within-ca; SEC-05:kubernetes)
        ca_end = x509.load_pem_x509_certificate(k8s_ca).not_valid_after_utc
        master.write_file(
            "/opt/kubernetes/ssl/admin.pem",
            resign(saved_admin, k8s_ca, k8s_ca_key, not_after=ca_end + dt.timedelta(days=400)),
            0o644,
        )
        paths = ["suites/test_02_pki_etcd.py", "suites/test_06_pki_k8s.py", "suites/test_11_security.py"]
        broken = _suites(
            tmp_path, "pki-broken", paths, "--profile", "hardened", "-k", "not SEC-01 and not SEC-02 and not SEC-03"
        )
        _assert_failed(broken, "PKI-E-03", "node01")
        _assert_failed(broken, "PKI-E-05", "node01")
        _assert_failed(broken, "PKI-E-06", "node01")
        _assert_failed(broken, "PKI-E-07", "node02")
        _assert_failed(broken, "SEC-04", "node02")
        _assert_failed(broken, "PKI-K-05:within-ca", "master01")
        _assert_failed(broken, "SEC-05:kubernetes", "master01")
        assert broken.outcome_of("PKI-E-02@node01") == "passed"  # still signed by the CA: chain holds
        assert broken.outcome_of("PKI-E-07@node01") == "passed"
    finally:
        node01.write_file("/opt/etcd/ssl/server.pem", saved_server, 0o644)
        sh(node02, "chmod 600 /opt/etcd/ssl/server-key.pem")
        master.write_file("/opt/kubernetes/ssl/admin.pem", saved_admin, 0o644)
    healed = _suites(tmp_path, "pki-healed", paths, "-k", "not SEC-01 and not SEC-02 and not SEC-03")
    _assert_clean(healed)
