"""bootstrap.pki: the guide's certificates, cfssl's JSON, idempotency and the remote layout."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import re
import shutil
import stat
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kubeproof.bootstrap.pki import (
    DEFAULT_CA_EXPIRY,
    DEFAULT_LEAF_EXPIRY,
    Action,
    KeySpec,
    NameEntry,
    PkiError,
    PkiInputError,
    PkiPlan,
    SigningKey,
    ensure_pki,
    format_go_duration,
    host_pki_files,
    load_ca_config,
    load_csr_json,
    parse_ca_config,
    parse_csr_json,
    parse_go_duration,
    plan_pki,
)
from kubeproof.inventory import Cluster, HostSpec, Network, parse_cluster_text
from kubeproof.x509 import CertInfo, parse_certificate, spki_sha256_of_public_key, verify_issued_by
from tests.offline.guide_cluster import GUIDE_CLUSTER_YAML

NOW = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
GUIDE_FILE = Path(__file__).resolve().parents[3] / "shared" / "guide" / "000_da8ec7b93a21bfa2.txt"


# The guide's etcd-cert.sh heredocs, verbatim (test_guide_texts_are_the_guides checks them against the guide).
GUIDE_CA_CONFIG = """\
{
  "signing": {
    "default": {
      "expiry": "87600h"
    },
    "profiles": {
      "www": {
         "expiry": "87600h",
         "usages": [
            "signing",
            "key encipherment",
            "server auth",
            "client auth"
        ]
      }
    }
  }
}"""

GUIDE_CA_CSR = """\
{
    "CN": "etcd",
    "key": {
        "algo": "rsa",
        "size": 2048
    },
    "names": [
        {
            "C": "CN",
            "L": "Beijing",
            "ST": "Beijing"
        }
    ]
}"""

GUIDE_SERVER_CSR = """\
{
    "CN": "etcd",
    "hosts": [
    "192.168.3.11",
    "192.168.3.12",
    "192.168.3.13"
    ],
    "key": {
        "algo": "rsa",
        "size": 2048
    },
    "names": [
        {
            "C": "CN",
            "L": "BeiJing",
            "ST": "BeiJing"
        }
    ]
}"""

# The well-known k8s-cert.sh of the same guide series: one "kubernetes" profile for every certificate.
GUIDE_KUBERNETES_CA_CONFIG = GUIDE_CA_CONFIG.replace('"www"', '"kubernetes"')

APISERVER_DNS = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster",
    "kubernetes.default.svc.cluster.local",
]


class PooledKeys:
    """A key factory drawing from keys made once per module: RSA generation would dominate the run time."""

    def __init__(self, pool: list[rsa.RSAPrivateKey]):
        self._keys = itertools.cycle(pool)
        self.calls = 0

    def __call__(self, spec: KeySpec) -> SigningKey:
        assert spec == KeySpec("rsa", 2048)
        self.calls += 1
        return next(self._keys)


@pytest.fixture(scope="module")
def keys() -> PooledKeys:
    # No test asks for more than 7 new keys (one run into an empty directory), so 8 keys in a cycle
    # never hand the same key out twice within a test.
    return PooledKeys([rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(8)])


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return parse_cluster_text(GUIDE_CLUSTER_YAML)


@pytest.fixture
def pki_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "pki"


@pytest.fixture(scope="module")
def template(cluster: Cluster, keys: PooledKeys, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PkiPlan]:
    """The guide's cluster's PKI, made once per module by a first run into an empty state directory."""
    pki_dir = tmp_path_factory.mktemp("template") / "state" / "pki"
    return pki_dir, ensure_pki(cluster, pki_dir, now=NOW, key_factory=keys)


@pytest.fixture
def made(template: tuple[Path, PkiPlan], pki_dir: Path) -> PkiPlan:
    """A copy of the template PKI in this test's own directory (modes and mtimes kept), and its first-run plan."""
    shutil.copytree(template[0], pki_dir)
    return template[1]


def cert(pki_dir: Path, authority: str, stem: str) -> CertInfo:
    return parse_certificate((pki_dir / authority / f"{stem}.pem").read_bytes())


def pem(pki_dir: Path, authority: str, stem: str) -> bytes:
    return (pki_dir / authority / f"{stem}.pem").read_bytes()


def key_spki(pki_dir: Path, authority: str, stem: str) -> str:
    data = (pki_dir / authority / f"{stem}-key.pem").read_bytes()
    key = serialization.load_pem_private_key(data, None, unsafe_skip_rsa_key_validation=True)
    assert isinstance(key, rsa.RSAPrivateKey)
    return spki_sha256_of_public_key(key.public_key())


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file's bytes, mode and mtime."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            status = path.stat()
            out[str(path.relative_to(root))] = (path.read_bytes(), stat.S_IMODE(status.st_mode), status.st_mtime_ns)
    return out


def actions(plan: PkiPlan) -> dict[str, Action]:
    return {f"{item.authority}/{item.name}": item.action for item in plan.items}


LEAVES = [("etcd", "server"), ("kubernetes", "apiserver"), ("kubernetes", "admin"), ("kubernetes", "kube-proxy")]


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


def _layout(pki_dir: Path, cluster: Cluster, name: str) -> dict[str, tuple[int, bool]]:
    return {f.path: (f.mode, f.secret) for f in host_pki_files(pki_dir, cluster, cluster.host(name))}


def test_remote_layout_of_the_first_master(made: PkiPlan, cluster: Cluster, pki_dir: Path) -> None:
    assert _layout(pki_dir, cluster, "master01") == {
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
    assert _layout(pki_dir, cluster, "node01") == {
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
    layout = _layout(pki_dir, bigger, "master02")
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


def test_missing_pki_is_reported(cluster: Cluster, pki_dir: Path) -> None:
    with pytest.raises(PkiError, match="run the PKI step"):
        host_pki_files(pki_dir, cluster, cluster.host("node01"))


# ----------------------------------------------------------------------------- cfssl JSON


def test_guide_texts_parse() -> None:
    config = parse_ca_config(GUIDE_CA_CONFIG)
    assert config.default.expiry == timedelta(hours=87600)
    www = config.profiles["www"]
    assert www.expiry == timedelta(hours=87600)
    assert www.usages == ("signing", "key encipherment", "server auth", "client auth")
    assert www.key_usage_fields == {"digital_signature", "key_encipherment"}
    ca_csr = parse_csr_json(GUIDE_CA_CSR)
    assert (ca_csr.common_name, ca_csr.key, ca_csr.hosts) == ("etcd", KeySpec("rsa", 2048), ())
    assert ca_csr.names == (NameEntry(country="CN", state="Beijing", locality="Beijing"),)
    assert ca_csr.ca_expiry is None
    server_csr = parse_csr_json(GUIDE_SERVER_CSR)
    assert server_csr.hosts == ("192.168.3.11", "192.168.3.12", "192.168.3.13")
    assert server_csr.subject().rfc4514_string() == "CN=etcd,L=BeiJing,ST=BeiJing,C=CN"


@pytest.mark.skipif(not GUIDE_FILE.is_file(), reason=f"the guide is not at {GUIDE_FILE}")
def test_guide_texts_are_the_guides() -> None:
    guide = GUIDE_FILE.read_text(encoding="utf-8")
    heredocs = dict(re.findall(r"cat > (\S+) <<EOF\n(.*?)\nEOF", guide, re.DOTALL))
    assert heredocs["ca-config.json"] == GUIDE_CA_CONFIG
    assert heredocs["ca-csr.json"] == GUIDE_CA_CSR
    assert heredocs["server-csr.json"] == GUIDE_SERVER_CSR


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("87600h", timedelta(hours=87600)),
        ("8760h0m0s", timedelta(hours=8760)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        ("90m", timedelta(minutes=90)),
        ("300ms", timedelta(milliseconds=300)),
        ("-2h", timedelta(hours=-2)),
        ("0", timedelta(0)),
    ],
)
def test_go_durations(text: str, expected: timedelta) -> None:
    assert parse_go_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10y", "h", "5", "87600", "1h 30m", "h1"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a Go duration"):
        parse_go_duration(text)


def test_format_go_duration() -> None:
    assert format_go_duration(timedelta(hours=87600)) == "87600h"
    assert format_go_duration(timedelta(minutes=90, seconds=5)) == "1h30m5s"
    assert parse_go_duration(format_go_duration(timedelta(minutes=90, seconds=5))) == timedelta(minutes=90, seconds=5)


def test_cfssl_defaults() -> None:
    # No "key": cfssl's default is ECDSA P-256. A profile without expiry falls back to the default.
    assert parse_csr_json('{"CN": "x"}').key == KeySpec("ecdsa", 256)
    config = parse_ca_config('{"signing": {"default": {"expiry": "8760h"}, "profiles": {"p": {"usages": []}}}}')
    assert config.expiry_of(config.profiles["p"]) == timedelta(hours=8760)
    # `"hosts": [""]`, a common idiom for client certificates, means no SAN.
    assert parse_csr_json('{"CN": "admin", "hosts": [""]}').hosts == ()


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "ca-config.json", '{\n  "signing": {\n    "default": {"expiry": "87600h",}\n  }\n}\n')
    with pytest.raises(PkiInputError) as excinfo:
        load_ca_config(path)
    assert str(excinfo.value).startswith(f"{path}:3:")
    assert "invalid JSON" in str(excinfo.value)
    assert (excinfo.value.source, excinfo.value.line) == (str(path), 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GUIDE_CA_CONFIG.replace('"server auth"', '"server-auth"'), "unknown usage 'server-auth'"),
        (GUIDE_CA_CONFIG.replace('"87600h",\n         "usages"', '"10y",\n         "usages"'), "not a Go duration"),
        (GUIDE_CA_CONFIG.replace('"expiry": "87600h"\n', '"expirey": "87600h"\n'), "unsupported key 'expirey'"),
        ('{"signing": {"default": {"expiry": "-1h"}}}', "must be a positive duration"),
        ('{"signing": {"default": {"expiry": "1h"}, "default": {}}}', "duplicate key 'default'"),
        ("[]", "must be a JSON object"),
        ("{}", "missing 'signing'"),
    ],
)
def test_ca_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "ca-config.json", text)
    with pytest.raises(PkiInputError, match=re.escape(message)) as excinfo:
        load_ca_config(path)
    assert str(excinfo.value).startswith(str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GUIDE_SERVER_CSR.replace('"rsa"', '"dsa"'), "unsupported algorithm 'dsa'"),
        (GUIDE_SERVER_CSR.replace("2048", "1024"), "unsupported RSA size 1024"),
        ('{"CN": "x", "key": {"algo": "ecdsa", "size": 255}}', "unsupported ECDSA size 255"),
        (GUIDE_SERVER_CSR.replace('"C": "CN"', '"C": "China"'), "not a two-letter country code"),
        (GUIDE_SERVER_CSR.replace('"192.168.3.11"', '"bad host!"'), "neither an IP address nor a DNS name"),
        (GUIDE_SERVER_CSR.replace('"ST"', '"STATE"'), "unsupported key 'STATE'"),
        ('{"CN": 5}', "CN must be a string"),
        ('{"CN": "x", "ca": {"expiry": "forever"}}', "not a Go duration"),
    ],
)
def test_csr_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "server-csr.json", text)
    with pytest.raises(PkiInputError, match=re.escape(message)) as excinfo:
        load_csr_json(path)
    assert str(excinfo.value).startswith(str(path))


def test_unreadable_input(tmp_path: Path) -> None:
    with pytest.raises(PkiInputError, match="cannot read"):
        load_csr_json(tmp_path / "absent-csr.json")


# ----------------------------------------------------------------------------- the guide's files as inputs


def test_the_guides_own_files_as_inputs(cluster: Cluster, tmp_path: Path, keys: PooledKeys) -> None:
    inputs = tmp_path / "inputs"
    (inputs / "etcd").mkdir(parents=True)
    (inputs / "kubernetes").mkdir()
    _write(inputs / "etcd" / "ca-config.json", GUIDE_CA_CONFIG)
    _write(inputs / "etcd" / "ca-csr.json", GUIDE_CA_CSR)
    _write(inputs / "etcd" / "server-csr.json", GUIDE_SERVER_CSR)
    _write(inputs / "kubernetes" / "ca-config.json", GUIDE_KUBERNETES_CA_CONFIG)
    pki_dir = tmp_path / "pki"
    plan = ensure_pki(cluster, pki_dir, inputs_dir=inputs, now=NOW, key_factory=keys)
    server = cert(pki_dir, "etcd", "server")
    # The cluster's members first; the guide's own (stale) addresses kept as declared extras, with a note.
    assert server.san_ips == [
        "192.168.61.17",
        "192.168.61.18",
        "192.168.61.22",
        "192.168.3.11",
        "192.168.3.12",
        "192.168.3.13",
    ]
    assert any("192.168.3.11" in note and "not addresses of any cluster host" in note for note in plan.notes)
    # The guide's ca-csr.json has no ca.expiry: not cfssl's 5 years, and the note says so.
    assert cert(pki_dir, "etcd", "ca").not_after == NOW + DEFAULT_CA_EXPIRY
    assert any("43800h" in note for note in plan.notes)
    assert load_csr_json(pki_dir / "etcd" / "ca-csr.json").ca_expiry == DEFAULT_CA_EXPIRY
    # With the guide's single "kubernetes" profile, client certificates fall back to it, as in the guide.
    assert cert(pki_dir, "kubernetes", "admin").extended_key_usages == ["serverAuth", "clientAuth"]
    again = ensure_pki(cluster, pki_dir, inputs_dir=inputs, now=NOW, key_factory=keys)
    assert not again.changed


def test_inputs_that_would_break_an_invariant_are_refused(cluster: Cluster, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    (inputs / "kubernetes").mkdir(parents=True)
    admin = _write(
        inputs / "kubernetes" / "admin-csr.json",
        json.dumps({"CN": "admin", "key": {"algo": "rsa", "size": 2048}, "names": [{"O": "k8s"}]}),
    )
    with pytest.raises(PkiInputError, match="system:masters") as excinfo:
        plan_pki(cluster, tmp_path / "pki", inputs_dir=inputs)
    assert str(excinfo.value).startswith(str(admin))
    admin.unlink()
    config = _write(inputs / "kubernetes" / "ca-config.json", GUIDE_CA_CONFIG)  # only a "www" profile
    with pytest.raises(PkiInputError, match="no signing profile 'kubernetes'") as excinfo:
        plan_pki(cluster, tmp_path / "pki", inputs_dir=inputs)
    assert str(excinfo.value).startswith(str(config))


# ----------------------------------------------------------------------------- cfssl itself


@pytest.mark.skipif(shutil.which("cfssl") is None, reason="cfssl is not installed (the guide's tool)")
def test_cfssl_regenerates_from_the_written_json(made: PkiPlan, cluster: Cluster, pki_dir: Path) -> None:
    etcd_dir = pki_dir / "etcd"
    initca = subprocess.run(
        ["cfssl", "gencert", "-initca", "ca-csr.json"], cwd=etcd_dir, capture_output=True, text=True, check=False
    )
    assert initca.returncode == 0, initca.stderr
    ca = parse_certificate(json.loads(initca.stdout)["cert"])
    assert ca.is_ca and ca.subject_cn == ["etcd"] and ca.public_key_size == 2048
    # cfssl honours our ca.expiry instead of its 5-year default, so its CA outlives its leaves too.
    assert abs(ca.lifetime - DEFAULT_CA_EXPIRY) < timedelta(minutes=10)

    # cfssl signing our server-csr.json with our CA gives a certificate we accept as is.
    signed = subprocess.run(
        [
            "cfssl",
            "gencert",
            "-ca=ca.pem",
            "-ca-key=ca-key.pem",
            "-config=ca-config.json",
            "-profile=www",
            "server-csr.json",
        ],
        cwd=etcd_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert signed.returncode == 0, signed.stderr
    output = json.loads(signed.stdout)
    server = parse_certificate(output["cert"])
    assert server.san_ips == cert(pki_dir, "etcd", "server").san_ips
    assert server.extended_key_usages == ["serverAuth", "clientAuth"]
    (etcd_dir / "server-key.pem").unlink()
    descriptor = os.open(etcd_dir / "server-key.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(output["key"])
    (etcd_dir / "server.pem").write_text(output["cert"])
    # Its notAfter is "now" for cfssl, i.e. later than NOW; evaluate from cfssl's own notBefore.
    plan = plan_pki(cluster, pki_dir, now=server.not_before + timedelta(minutes=5))
    assert plan.item("etcd", "server").action is Action.REUSE, plan.item("etcd", "server").reasons
