"""bootstrap.pki, what a run makes: the two chains, SANs, usages, modes and the cfssl JSON beside them;
a second run changing nothing; renewal; and no leaf outliving its CA."""

from __future__ import annotations

import shutil
import stat
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kubeproof.bootstrap.pki import Action, PkiPlan, ensure_pki, plan_pki
from kubeproof.bootstrap.pki.cfssl import EXT_KEY_USAGES, KEY_USAGES, KeySpec
from kubeproof.bootstrap.pki.cfssl_json import load_ca_config, load_csr_json
from kubeproof.bootstrap.pki.crypto import build_certificate
from kubeproof.bootstrap.pki.inputs import DEFAULT_CA_EXPIRY, DEFAULT_LEAF_EXPIRY
from kubeproof.inventory import Cluster, HostSpec, Network
from kubeproof.x509 import (
    extended_key_usage_name,
    key_usage_from_names,
    parse_certificate,
    spki_sha256_of_public_key,
    verify_issued_by,
)
from tests.offline.pki_samples import (
    APISERVER_DNS,
    LEAVES,
    NOW,
    PooledKeys,
    actions,
    cert,
    key_spki,
    pem,
    snapshot,
)
from tests.offline.pki_samples import cluster as cluster  # the fixtures, module-scoped where they make keys
from tests.offline.pki_samples import keys as keys
from tests.offline.pki_samples import made as made
from tests.offline.pki_samples import pki_dir as pki_dir
from tests.offline.pki_samples import template as template

# ----------------------------------------------------------------------------- what is made


def test_first_run_creates_everything(made: PkiPlan) -> None:
    assert set(actions(made).values()) == {Action.CREATE, Action.WRITE}
    assert made.changed
    assert actions(made)["kubernetes/sa"] is Action.CREATE


def test_chain_verifies_and_keys_match(made: PkiPlan, pki_dir: Path) -> None:
    for authority, stem in LEAVES:
        assert verify_issued_by(pem(pki_dir, authority, stem), pem(pki_dir, authority, "ca")) is None
        assert cert(pki_dir, authority, stem).spki_sha256 == key_spki(pki_dir, authority, stem)
    for authority in ("etcd", "kubernetes"):
        assert cert(pki_dir, authority, "ca").spki_sha256 == key_spki(pki_dir, authority, "ca")


def test_the_two_cas_are_distinct(made: PkiPlan, pki_dir: Path) -> None:
    etcd_ca, kubernetes_ca = cert(pki_dir, "etcd", "ca"), cert(pki_dir, "kubernetes", "ca")
    assert etcd_ca.spki_sha256 != kubernetes_ca.spki_sha256
    assert etcd_ca.subject_cn == ["etcd"] and kubernetes_ca.subject_cn == ["kubernetes"]
    # A leaf of one authority does not chain to the other.
    assert verify_issued_by(pem(pki_dir, "etcd", "server"), pem(pki_dir, "kubernetes", "ca")) is not None


def test_ca_flags(made: PkiPlan, pki_dir: Path) -> None:
    for authority in ("etcd", "kubernetes"):
        ca = cert(pki_dir, authority, "ca")
        assert ca.is_ca and ca.self_signed
        assert ca.key_usages == ["key_cert_sign", "crl_sign"]
        assert (ca.public_key_algorithm, ca.public_key_size) == ("RSA", 2048)
        assert ca.lifetime == DEFAULT_CA_EXPIRY + timedelta(minutes=5)  # cfssl-style 5 min backdate
    assert cert(pki_dir, "etcd", "ca").subject == "CN=etcd,L=Beijing,ST=Beijing,C=CN"
    for authority, stem in LEAVES:
        leaf = cert(pki_dir, authority, stem)
        assert not leaf.is_ca and not leaf.self_signed
        assert leaf.not_after == NOW + DEFAULT_LEAF_EXPIRY


def test_etcd_server_sans_are_exactly_the_members(made: PkiPlan, pki_dir: Path) -> None:
    server = cert(pki_dir, "etcd", "server")
    assert server.san_ips == ["192.168.61.17", "192.168.61.18", "192.168.61.22"]
    assert server.san_dns == []
    assert server.subject_cn == ["etcd"]


def test_apiserver_sans(made: PkiPlan, pki_dir: Path) -> None:
    apiserver = cert(pki_dir, "kubernetes", "apiserver")
    assert apiserver.san_ips == ["10.0.0.1", "127.0.0.1", "192.168.61.17"]
    assert apiserver.san_dns == APISERVER_DNS
    assert apiserver.subject_cn == ["kubernetes"]


def test_apiserver_sans_with_two_masters_and_a_load_balancer(
    cluster: Cluster, tmp_path: Path, keys: PooledKeys
) -> None:
    bigger = replace(
        cluster,
        hosts=(*cluster.hosts, HostSpec("master02", "192.168.61.19", frozenset({"master"}))),
        network=Network(service_cidr="10.96.0.0/12", load_balancer_addresses=("192.168.61.100", "192.168.61.17")),
    )
    ensure_pki(bigger, tmp_path, now=NOW, key_factory=keys)
    apiserver = cert(tmp_path, "kubernetes", "apiserver")
    # Service IP first, loopback, the masters, then the load balancers; a repeat is listed once.
    assert apiserver.san_ips == ["10.96.0.1", "127.0.0.1", "192.168.61.17", "192.168.61.19", "192.168.61.100"]


def test_usages(made: PkiPlan, pki_dir: Path) -> None:
    for authority, stem in [("etcd", "server"), ("kubernetes", "apiserver")]:
        leaf = cert(pki_dir, authority, stem)
        assert leaf.extended_key_usages == ["serverAuth", "clientAuth"]
        assert leaf.key_usages == ["digital_signature", "key_encipherment"]
    admin = cert(pki_dir, "kubernetes", "admin")
    assert (admin.subject_cn, admin.subject_o) == (["admin"], ["system:masters"])
    assert admin.extended_key_usages == ["clientAuth"]
    proxy = cert(pki_dir, "kubernetes", "kube-proxy")
    assert proxy.subject_cn == ["system:kube-proxy"]
    assert proxy.extended_key_usages == ["clientAuth"]


def test_every_cfssl_usage_reads_back_as_issued(keys: PooledKeys) -> None:
    # A leaf is reused only if what it was issued with reads back equal through kubeproof.x509:
    # cfssl's usage names must map onto the names x509 reads, or every run would re-issue.
    key = keys(KeySpec("rsa", 2048))
    issued = build_certificate(
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "usages")]),
        public_key=key.public_key(),
        issuer=None,
        issuer_key=key,
        hosts=(),
        is_ca=False,
        path_length=None,
        key_usage_fields=set(KEY_USAGES.values()),
        ext_key_usages=tuple(dict.fromkeys(EXT_KEY_USAGES.values())),
        not_before=NOW,
        not_after=NOW + timedelta(days=1),
    )
    info = parse_certificate(issued.public_bytes(serialization.Encoding.PEM))
    assert set(info.key_usages) == set(KEY_USAGES.values())
    assert info.extended_key_usages == [extended_key_usage_name(oid) for oid in dict.fromkeys(EXT_KEY_USAGES.values())]
    with pytest.raises(ValueError, match="unknown key usage"):
        key_usage_from_names(["signing"])  # cfssl's name, not x509's


def test_ipv6_addresses_are_compared_canonically(cluster: Cluster, tmp_path: Path, keys: PooledKeys) -> None:
    # The cluster file may spell an address longhand; the certificate reads back compressed.
    longhand = replace(cluster, network=Network(load_balancer_addresses=("fd00:0:0::10",)))
    ensure_pki(longhand, tmp_path, now=NOW, key_factory=keys)
    assert cert(tmp_path, "kubernetes", "apiserver").san_ips[-1] == "fd00::10"
    assert set(actions(plan_pki(longhand, tmp_path, now=NOW)).values()) == {Action.REUSE}


def test_service_account_pair(made: PkiPlan, pki_dir: Path) -> None:
    public = serialization.load_pem_public_key((pki_dir / "kubernetes" / "sa.pem").read_bytes())
    assert spki_sha256_of_public_key(public) == key_spki(pki_dir, "kubernetes", "sa")
    assert key_spki(pki_dir, "kubernetes", "sa") != key_spki(pki_dir, "kubernetes", "ca")


def test_modes(template: tuple[Path, PkiPlan]) -> None:
    pki_dir = template[0]
    for directory in (pki_dir, pki_dir / "etcd", pki_dir / "kubernetes"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    key_files = sorted(pki_dir.rglob("*-key.pem"))
    assert len(key_files) == 7
    for path in key_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not list(pki_dir.rglob(".*.tmp"))


def test_cfssl_json_inputs_are_written_beside(made: PkiPlan, pki_dir: Path) -> None:
    assert sorted(p.name for p in (pki_dir / "etcd").glob("*.json")) == [
        "ca-config.json",
        "ca-csr.json",
        "server-csr.json",
    ]
    server_csr = load_csr_json(pki_dir / "etcd" / "server-csr.json")
    assert server_csr.hosts == ("192.168.61.17", "192.168.61.18", "192.168.61.22")
    ca_csr = load_csr_json(pki_dir / "etcd" / "ca-csr.json")
    assert ca_csr.ca_expiry == DEFAULT_CA_EXPIRY  # so cfssl's -initca does not fall back to 5 years
    config = load_ca_config(pki_dir / "kubernetes" / "ca-config.json")
    assert set(config.profiles) == {"kubernetes", "client"}
    assert load_csr_json(pki_dir / "kubernetes" / "admin-csr.json").organizations == ["system:masters"]


# ----------------------------------------------------------------------------- idempotency


def test_second_run_changes_nothing(made: PkiPlan, cluster: Cluster, pki_dir: Path, keys: PooledKeys) -> None:
    before = snapshot(pki_dir)
    calls = keys.calls
    again = ensure_pki(cluster, pki_dir, now=NOW + timedelta(days=1), key_factory=keys)
    assert set(actions(again).values()) == {Action.REUSE}
    assert not again.changed and again.changed_paths == []
    assert snapshot(pki_dir) == before
    assert keys.calls == calls


def test_plan_writes_nothing(cluster: Cluster, pki_dir: Path) -> None:
    plan = plan_pki(cluster, pki_dir, now=NOW)
    assert not pki_dir.exists()
    assert not plan.applied
    assert actions(plan)["etcd/ca"] is Action.CREATE
    assert actions(plan)["kubernetes/admin"] is Action.CREATE
    assert plan.lines()[0].startswith("PKI plan in")


def test_plan_after_apply_is_all_reuse(made: PkiPlan, cluster: Cluster, pki_dir: Path) -> None:
    assert set(actions(plan_pki(cluster, pki_dir, now=NOW)).values()) == {Action.REUSE}


def test_a_member_added_reissues_the_server_certificate_only(
    made: PkiPlan, cluster: Cluster, pki_dir: Path, keys: PooledKeys
) -> None:
    before = snapshot(pki_dir)
    grown = replace(
        cluster, hosts=(*cluster.hosts, HostSpec("node03", "192.168.61.30", frozenset({"node", "etcd"}), "etcd04"))
    )
    plan = ensure_pki(grown, pki_dir, now=NOW, key_factory=keys)
    changed = {name: action for name, action in actions(plan).items() if action is not Action.REUSE}
    assert changed == {"etcd/server": Action.REISSUE, "etcd/server-csr.json": Action.WRITE}
    (reason,) = plan.item("etcd", "server").reasons
    assert "missing 192.168.61.30" in reason
    after = snapshot(pki_dir)
    assert after["etcd/server-key.pem"] == before["etcd/server-key.pem"]  # the key is kept
    assert after["etcd/ca.pem"] == before["etcd/ca.pem"]
    assert cert(pki_dir, "etcd", "server").san_ips[-1] == "192.168.61.30"
    assert verify_issued_by(pem(pki_dir, "etcd", "server"), pem(pki_dir, "etcd", "ca")) is None


def test_renewal_window(made: PkiPlan, cluster: Cluster, pki_dir: Path, keys: PooledKeys) -> None:
    later = NOW + DEFAULT_LEAF_EXPIRY - timedelta(days=10)
    spki_before = key_spki(pki_dir, "kubernetes", "admin")
    plan = ensure_pki(cluster, pki_dir, now=later, key_factory=keys)
    for authority, stem in LEAVES:
        item = plan.item(authority, stem)
        assert item.action is Action.REISSUE
        assert "renewal window" in item.reasons[0]
    assert plan.item("etcd", "ca").action is Action.REUSE
    assert cert(pki_dir, "kubernetes", "admin").not_after == later + DEFAULT_LEAF_EXPIRY
    assert key_spki(pki_dir, "kubernetes", "admin") == spki_before


# ----------------------------------------------------------------------------- CA life and clamping


def test_leaves_are_clamped_to_their_ca(cluster: Cluster, pki_dir: Path, keys: PooledKeys) -> None:
    short = timedelta(days=400)
    plan = ensure_pki(cluster, pki_dir, now=NOW, ca_expiry=short, key_factory=keys)
    for authority, stem in LEAVES:
        ca, leaf = cert(pki_dir, authority, "ca"), cert(pki_dir, authority, stem)
        assert ca.not_after == NOW + short
        assert leaf.not_after == ca.not_after
        assert any("clamped" in note for note in plan.item(authority, stem).notes)


def test_a_ca_ending_inside_the_window_does_not_cause_churn(cluster: Cluster, pki_dir: Path, keys: PooledKeys) -> None:
    ten_days = timedelta(days=10)
    ensure_pki(cluster, pki_dir, now=NOW, ca_expiry=ten_days, key_factory=keys)
    before = snapshot(pki_dir)
    plan = ensure_pki(cluster, pki_dir, now=NOW + timedelta(days=1), ca_expiry=ten_days, key_factory=keys)
    assert set(actions(plan).values()) == {Action.REUSE}
    assert snapshot(pki_dir) == before
    assert any("replace_ca" in note for note in plan.item("etcd", "ca").notes)
    assert any("only a new CA" in note for note in plan.item("etcd", "server").notes)


def test_a_leaf_outliving_its_ca_is_reissued(made: PkiPlan, cluster: Cluster, pki_dir: Path) -> None:
    # What cfssl's defaults produce: a CA of 5 years under leaves of 10. Simulate it by swapping in
    # a short-lived CA made with the same key (so the signature link still holds).
    short_dir = pki_dir.parent / "short"
    shutil.copytree(pki_dir, short_dir)
    ca_key = serialization.load_pem_private_key(
        (pki_dir / "etcd" / "ca-key.pem").read_bytes(), None, unsafe_skip_rsa_key_validation=True
    )
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    shutil.rmtree(short_dir / "etcd")
    ensure_pki(cluster, short_dir, now=NOW, ca_expiry=timedelta(hours=43800), key_factory=lambda spec: ca_key)
    # short_dir/etcd now has a 5-year CA; put the 10-year server certificate under it.
    shutil.copy(pki_dir / "etcd" / "server.pem", short_dir / "etcd" / "server.pem")
    plan = plan_pki(cluster, short_dir, now=NOW)
    reasons = plan.item("etcd", "server").reasons
    assert any("outlives its CA" in r for r in reasons), reasons
