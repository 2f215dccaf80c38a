"""bootstrap.pki and what is already there: an existing CA reused, never replaced unasked (and kept
aside when asked), a leaf from another CA, missing, unreadable or exposed keys, and one applying run
at a time."""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from kubeproof.bootstrap.pki import Action, PkiPlan, ensure_pki, plan_pki
from kubeproof.bootstrap.pki.errors import PkiError
from kubeproof.inventory import Cluster
from kubeproof.x509 import verify_issued_by
from tests.offline.pki_samples import LEAVES, NOW, PooledKeys, actions, cert, key_spki, pem, snapshot
from tests.offline.pki_samples import cluster as cluster  # the fixtures, module-scoped where they make keys
from tests.offline.pki_samples import keys as keys
from tests.offline.pki_samples import made as made
from tests.offline.pki_samples import pki_dir as pki_dir
from tests.offline.pki_samples import template as template

# ----------------------------------------------------------------------------- an existing CA


def test_an_existing_ca_is_reused(
    cluster: Cluster, pki_dir: Path, keys: PooledKeys, template: tuple[Path, PkiPlan]
) -> None:
    # A CA that is already there (made elsewhere) before the first run.
    (pki_dir / "etcd").mkdir(parents=True, mode=0o700)
    for name in ("ca.pem", "ca-key.pem"):
        shutil.copy2(template[0] / "etcd" / name, pki_dir / "etcd" / name)
    foreign_ca = (pki_dir / "etcd" / "ca.pem").read_bytes()
    plan = ensure_pki(cluster, pki_dir, now=NOW, key_factory=keys)
    assert plan.item("etcd", "ca").action is Action.REUSE
    assert plan.item("etcd", "server").action is Action.CREATE
    assert (pki_dir / "etcd" / "ca.pem").read_bytes() == foreign_ca
    assert verify_issued_by(pem(pki_dir, "etcd", "server"), foreign_ca) is None


def test_a_ca_without_its_key_is_an_error(made: PkiPlan, cluster: Cluster, pki_dir: Path, keys: PooledKeys) -> None:
    (pki_dir / "etcd" / "ca-key.pem").unlink()
    before = snapshot(pki_dir)
    with pytest.raises(PkiError, match=r"ca\.pem exists but .*ca-key\.pem does not"):
        ensure_pki(cluster, pki_dir, now=NOW, key_factory=keys)
    assert snapshot(pki_dir) == before


def test_a_ca_key_that_does_not_match_is_an_error(
    made: PkiPlan, cluster: Cluster, pki_dir: Path, keys: PooledKeys
) -> None:
    shutil.copy(pki_dir / "kubernetes" / "ca-key.pem", pki_dir / "etcd" / "ca-key.pem")
    with pytest.raises(PkiError, match="does not match"):
        ensure_pki(cluster, pki_dir, now=NOW, key_factory=keys)


def test_replace_ca_replaces_and_keeps_the_old_one(
    made: PkiPlan, cluster: Cluster, pki_dir: Path, keys: PooledKeys
) -> None:
    before = snapshot(pki_dir)
    plan = ensure_pki(cluster, pki_dir, now=NOW, replace_ca=True, key_factory=keys)
    for authority in ("etcd", "kubernetes"):
        assert plan.item(authority, "ca").action is Action.REPLACE
        assert (pki_dir / authority / "ca.pem").read_bytes() != before[f"{authority}/ca.pem"][0]
        kept = pki_dir / authority / f"ca-key.pem.replaced-{NOW:%Y%m%dT%H%M%SZ}"
        assert kept.read_bytes() == before[f"{authority}/ca-key.pem"][0]
    for authority, stem in LEAVES:
        assert plan.item(authority, stem).action is Action.REISSUE
        assert plan.item(authority, stem).reasons == ("its CA is new",)
        assert verify_issued_by(pem(pki_dir, authority, stem), pem(pki_dir, authority, "ca")) is None
        assert snapshot(pki_dir)[f"{authority}/{stem}-key.pem"][0] == before[f"{authority}/{stem}-key.pem"][0]
    assert plan.item("kubernetes", "sa").action is Action.REUSE


def test_replace_ca_for_one_authority(made: PkiPlan, cluster: Cluster, pki_dir: Path, keys: PooledKeys) -> None:
    before = snapshot(pki_dir)
    plan = ensure_pki(cluster, pki_dir, now=NOW, replace_ca=["etcd"], key_factory=keys)
    assert plan.item("etcd", "ca").action is Action.REPLACE
    assert plan.item("kubernetes", "ca").action is Action.REUSE
    assert snapshot(pki_dir)["kubernetes/ca.pem"] == before["kubernetes/ca.pem"]
    with pytest.raises(PkiError, match="unknown authority"):
        ensure_pki(cluster, pki_dir, now=NOW, replace_ca=["etdc"], key_factory=keys)
    later = NOW + timedelta(seconds=1)  # a second replacement keeps the first one's files too
    assert (
        ensure_pki(cluster, pki_dir, now=later, replace_ca="kubernetes", key_factory=keys)
        .item("kubernetes", "ca")
        .action
        is Action.REPLACE
    )
    assert len(list((pki_dir / "etcd").glob("ca-key.pem.replaced-*"))) == 1
    assert len(list((pki_dir / "kubernetes").glob("ca-key.pem.replaced-*"))) == 1


def test_a_leaf_from_another_ca_is_reissued(made: PkiPlan, cluster: Cluster, pki_dir: Path) -> None:
    # Same stem, same key, but signed by the Kubernetes CA: only the signature link is wrong.
    for suffix in (".pem", "-key.pem"):
        shutil.copy(pki_dir / "kubernetes" / f"kube-proxy{suffix}", pki_dir / "etcd" / f"server{suffix}")
    reasons = plan_pki(cluster, pki_dir, now=NOW).item("etcd", "server").reasons
    assert reasons[0].startswith("not signed by the current CA")


def test_a_missing_leaf_key_gets_a_new_key(made: PkiPlan, cluster: Cluster, pki_dir: Path, keys: PooledKeys) -> None:
    (pki_dir / "kubernetes" / "admin-key.pem").unlink()
    plan = ensure_pki(cluster, pki_dir, now=NOW, key_factory=keys)
    assert plan.item("kubernetes", "admin").action is Action.REISSUE
    assert cert(pki_dir, "kubernetes", "admin").spki_sha256 == key_spki(pki_dir, "kubernetes", "admin")
    assert stat.S_IMODE((pki_dir / "kubernetes" / "admin-key.pem").stat().st_mode) == 0o600


def test_an_unreadable_key_is_an_error_that_does_not_quote_it(
    made: PkiPlan, cluster: Cluster, pki_dir: Path, keys: PooledKeys
) -> None:
    (pki_dir / "etcd" / "server-key.pem").write_text("-----BEGIN RSA PRIVATE KEY-----\nSECRETSTUFF\n")
    with pytest.raises(PkiError, match=r"server-key\.pem: not a PEM private key") as excinfo:
        ensure_pki(cluster, pki_dir, now=NOW, key_factory=keys)
    assert "SECRETSTUFF" not in str(excinfo.value)


def test_a_wide_key_mode_is_narrowed(made: PkiPlan, cluster: Cluster, pki_dir: Path, keys: PooledKeys) -> None:
    key_path = pki_dir / "kubernetes" / "ca-key.pem"
    key_path.chmod(0o644)
    plan = ensure_pki(cluster, pki_dir, now=NOW, key_factory=keys)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert plan.changed and key_path in plan.changed_paths
    assert any("narrowed" in note for note in plan.item("kubernetes", "ca").notes)


def test_service_account_rules(made: PkiPlan, cluster: Cluster, pki_dir: Path, keys: PooledKeys) -> None:
    sa_public = pki_dir / "kubernetes" / "sa.pem"
    original = sa_public.read_bytes()
    sa_public.unlink()
    plan = ensure_pki(cluster, pki_dir, now=NOW, key_factory=keys)
    assert plan.item("kubernetes", "sa").action is Action.REISSUE
    assert sa_public.read_bytes() == original  # derived again from sa-key.pem
    (pki_dir / "kubernetes" / "sa-key.pem").unlink()
    with pytest.raises(PkiError, match="invalidate every service-account token"):
        ensure_pki(cluster, pki_dir, now=NOW, key_factory=keys)


def test_clusters_without_etcd_or_master_are_refused(cluster: Cluster, pki_dir: Path) -> None:
    with pytest.raises(PkiError, match="no host with role etcd"):
        plan_pki(replace(cluster, hosts=tuple(replace(h, roles=h.roles - {"etcd"}) for h in cluster.hosts)), pki_dir)
    with pytest.raises(PkiError, match="no host with role master"):
        plan_pki(cluster.restricted_to(["node01"]), pki_dir)


def test_one_applying_run_at_a_time(made: PkiPlan, cluster: Cluster, pki_dir: Path, keys: PooledKeys) -> None:
    descriptor = os.open(pki_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        with pytest.raises(PkiError, match="in use by another kubeproof run"):
            ensure_pki(cluster, pki_dir, now=NOW, key_factory=keys)
        assert set(actions(plan_pki(cluster, pki_dir, now=NOW)).values()) == {Action.REUSE}  # reading is fine
    finally:
        os.close(descriptor)
    assert not ensure_pki(cluster, pki_dir, now=NOW, key_factory=keys).changed
