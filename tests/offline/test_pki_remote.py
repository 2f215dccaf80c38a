"""bootstrap.pki on the hosts: what each host gets at the guide's paths and modes, what is refused
before shipping (a stale or inconsistent PKI), and no key material in a plan or a repr."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from kubeproof.bootstrap.pki import PkiPlan, ensure_pki, host_pki_files
from kubeproof.bootstrap.pki.errors import PkiError
from kubeproof.inventory import Cluster, HostSpec
from tests.offline.pki_samples import NOW, PooledKeys, host_layout, pem
from tests.offline.pki_samples import cluster as cluster  # the fixtures, module-scoped where they make keys
from tests.offline.pki_samples import keys as keys
from tests.offline.pki_samples import made as made
from tests.offline.pki_samples import pki_dir as pki_dir
from tests.offline.pki_samples import template as template

# ----------------------------------------------------------------------------- secrets stay secret


def test_no_key_material_in_plans_or_reprs(made: PkiPlan, cluster: Cluster, pki_dir: Path) -> None:
    key_lines = {
        line
        for path in pki_dir.rglob("*-key.pem")
        for line in path.read_text().splitlines()
        if not line.startswith("-----")
    }
    files = [f for host in cluster.hosts for f in host_pki_files(pki_dir, cluster, host)]
    texts = [repr(made), "\n".join(made.lines()), *(repr(f) for f in files), *(str(f) for f in files)]
    for text in texts:
        assert "PRIVATE KEY" not in text
        assert not any(line in text for line in key_lines)


# ----------------------------------------------------------------------------- remote layout


def test_remote_layout_of_the_first_master(made: PkiPlan, cluster: Cluster, pki_dir: Path) -> None:
    assert host_layout(pki_dir, cluster, "master01") == {
        "/opt/etcd/ssl/ca.pem": (0o644, False),
        "/opt/etcd/ssl/ca-key.pem": (0o600, True),
        "/opt/etcd/ssl/server.pem": (0o644, False),
        "/opt/etcd/ssl/server-key.pem": (0o600, True),
        "/opt/kubernetes/ssl/ca.pem": (0o644, False),
        "/opt/kubernetes/ssl/ca-key.pem": (0o600, True),
        "/opt/kubernetes/ssl/apiserver.pem": (0o644, False),
        "/opt/kubernetes/ssl/apiserver-key.pem": (0o600, True),
        "/opt/kubernetes/ssl/admin.pem": (0o644, False),
        "/opt/kubernetes/ssl/admin-key.pem": (0o600, True),
        "/opt/kubernetes/ssl/sa.pem": (0o644, False),
        "/opt/kubernetes/ssl/sa-key.pem": (0o600, True),
    }


def test_remote_layout_of_a_worker(made: PkiPlan, cluster: Cluster, pki_dir: Path) -> None:
    # No CA key of either authority leaves the masters.
    assert host_layout(pki_dir, cluster, "node01") == {
        "/opt/etcd/ssl/ca.pem": (0o644, False),
        "/opt/etcd/ssl/server.pem": (0o644, False),
        "/opt/etcd/ssl/server-key.pem": (0o600, True),
        "/opt/kubernetes/ssl/ca.pem": (0o644, False),
        "/opt/kubernetes/ssl/kube-proxy.pem": (0o644, False),
        "/opt/kubernetes/ssl/kube-proxy-key.pem": (0o600, True),
    }


def test_remote_files_carry_the_local_bytes(made: PkiPlan, cluster: Cluster, pki_dir: Path) -> None:
    files = {f.path: f for f in host_pki_files(pki_dir, cluster, cluster.host("node02"))}
    assert files["/opt/etcd/ssl/ca.pem"].data == pem(pki_dir, "etcd", "ca")
    assert files["/opt/kubernetes/ssl/ca.pem"].data == pem(pki_dir, "kubernetes", "ca")
    assert (
        files["/opt/kubernetes/ssl/kube-proxy-key.pem"].data
        == (pki_dir / "kubernetes" / "kube-proxy-key.pem").read_bytes()
    )


def test_only_the_first_master_gets_the_etcd_ca_key(
    made: PkiPlan, cluster: Cluster, pki_dir: Path, keys: PooledKeys
) -> None:
    second = HostSpec("master02", "192.168.61.19", frozenset({"master", "etcd"}), "etcd04")
    bigger = replace(cluster, hosts=(*cluster.hosts, second))
    ensure_pki(bigger, pki_dir, now=NOW, key_factory=keys)
    layout = host_layout(pki_dir, bigger, "master02")
    assert "/opt/etcd/ssl/ca-key.pem" not in layout
    assert layout["/opt/kubernetes/ssl/ca-key.pem"] == (0o600, True)  # controller-manager on any master


def test_stale_pki_is_not_shipped(made: PkiPlan, cluster: Cluster, pki_dir: Path) -> None:
    grown = replace(
        cluster, hosts=(*cluster.hosts, HostSpec("node03", "192.168.61.30", frozenset({"node", "etcd"}), "etcd04"))
    )
    with pytest.raises(PkiError, match=r"lacks its address 192\.168\.61\.30"):
        host_pki_files(pki_dir, grown, grown.host("node03"))
    with pytest.raises(PkiError, match="not in cluster"):
        host_pki_files(pki_dir, cluster, HostSpec("stranger", "10.1.1.1", frozenset({"node"})))


def test_an_inconsistent_pki_is_not_shipped(made: PkiPlan, cluster: Cluster, pki_dir: Path) -> None:
    kubernetes_dir = pki_dir / "kubernetes"
    shutil.copy(kubernetes_dir / "admin-key.pem", kubernetes_dir / "apiserver-key.pem")
    with pytest.raises(PkiError, match=r"apiserver-key\.pem for master01 does not match"):
        host_pki_files(pki_dir, cluster, cluster.host("master01"))
    for suffix in (".pem", "-key.pem"):
        shutil.copy(kubernetes_dir / f"kube-proxy{suffix}", pki_dir / "etcd" / f"server{suffix}")
    with pytest.raises(PkiError, match=r"server\.pem for node01: its issuer"):
        host_pki_files(pki_dir, cluster, cluster.host("node01"))


def test_missing_pki_is_reported(cluster: Cluster, pki_dir: Path) -> None:
    with pytest.raises(PkiError, match="run the PKI step"):
        host_pki_files(pki_dir, cluster, cluster.host("node01"))
