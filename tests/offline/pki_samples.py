"""What the offline PKI tests share: the guide's cfssl JSON verbatim, a pooled key factory, the
guide's cluster, a PKI made once per module (copied into each test's own directory), and helpers
that read what a run left on disk.

The fixtures are imported by each test module (``from tests.offline.pki_samples import made as
made``); being module-scoped, each module makes its own template PKI once.
"""

from __future__ import annotations

import functools
import itertools
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kubeproof.bootstrap.pki import Action, PkiPlan, ensure_pki, host_pki_files
from kubeproof.bootstrap.pki.cfssl import KeySpec
from kubeproof.bootstrap.pki.crypto import SigningKey
from kubeproof.inventory import Cluster, parse_cluster_text
from kubeproof.x509 import CertInfo, parse_certificate, spki_sha256_of_public_key
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


@functools.cache
def _rsa_key_pool() -> tuple[rsa.RSAPrivateKey, ...]:
    # Made once per process, not per module: the four PKI test modules each import the fixture.
    return tuple(rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(8))


@pytest.fixture(scope="module")
def keys() -> PooledKeys:
    # No test asks for more than 7 new keys (one run into an empty directory), so 8 keys in a cycle
    # never hand the same key out twice within a test.
    return PooledKeys(list(_rsa_key_pool()))


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


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def host_layout(pki_dir: Path, cluster: Cluster, name: str) -> dict[str, tuple[int, bool]]:
    """What host ``name`` gets: remote path -> (mode, secret)."""
    return {f.path: (f.mode, f.secret) for f in host_pki_files(pki_dir, cluster, cluster.host(name))}
