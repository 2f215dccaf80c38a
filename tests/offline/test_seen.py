"""A passed problem-list row says what it saw (issue 11).

A row whose comparator judges a list of problems (is_empty, contains_none, subset_of) observes
`[]` when it holds, which says nothing about what was checked. Its probe therefore also returns
`seen`: one line per item checked, with the values compared. Here every such row of the shipped
catalogue runs its probe on one healthy sample cluster (the lab's captures, the guide's files,
certificates made for the test, API answers shaped as the lab's) and must pass with seen lines;
a representative set is checked line by line. The failure format shows the seen lines a failure
adds, without repeating the observed list.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509 as crypto_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kubeproof import layout
from kubeproof.checks import Check, Observation, judge, load_catalogue
from kubeproof.clients import CredentialFiles, EtcdClients, KubeClients
from kubeproof.facts import Fact, FactRecord
from kubeproof.facts import etcd as etcd_facts
from kubeproof.facts import host as host_facts
from kubeproof.facts import master as mf
from kubeproof.facts import network as net_facts
from kubeproof.facts import node as nf
from kubeproof.facts.files import FileStat, directory_stat, file_sha256, key_public_fingerprint
from kubeproof.facts.pki import certificates_in, signing_duration
from kubeproof.inventory import Cluster
from kubeproof.probes import SEEN_LIMIT, capped, cross_ping, load_probes, observe
from kubeproof.probes import etcd as etcd_probes
from kubeproof.probes import master as master_probes
from kubeproof.probes import network as net_probes
from kubeproof.probes import smoke as smoke_probes
from kubeproof.session import Session, inventory_context
from kubeproof.transport import CommandResult
from kubeproof.x509 import parse_certificate
from tests.offline.facts_samples import (
    LAB_DOCKER0_NODE01,
    LAB_DOCKER_ENGINE_NODE01,
    LAB_DOCKER_SERVICE_NODE01,
    LAB_ETCD_SERVICE_NODE01,
    LAB_FDB_NODE01,
    LAB_FLANNEL_LINK_NODE01,
    LAB_FLANNELD_SERVICE_NODE01,
    LAB_FORWARD_NODE01,
    LAB_LAYOUT_NODE01,
    LAB_NEIGH_NODE01,
    LAB_ROUTES_NODE01,
    LAB_SUBNET_ENV_NODE01,
    NODE01_MAC,
    NODE02_MAC,
    OfflineTransport,
    offline_session,
)
from tests.offline.facts_samples import cluster as cluster  # the module-scoped fixture
from tests.offline.test_plugin import LOCAL_TRANSPORT, REPO

pytest_plugins = ["pytester"]

PROBLEM_LISTS = frozenset({"is_empty", "contains_none", "subset_of"})
VERSION = "v1.34.4"
K8S_SSL, ETCD_SSL, K8S_CFG = layout.K8S_SSL, layout.ETCD_SSL, layout.K8S_CFG
# which host a row is run on: the first the guide gives each role
HOST_FOR_ROLE = {"all": "node01", "master": "master01", "node": "node01", "etcd": "node01", "cluster": "master01"}


def problem_list_rows() -> list[Check]:
    return [r for r in load_catalogue(known_probes=load_probes()) if r.comparator in PROBLEM_LISTS]


# ----------------------------------------------------------------------------- certificates


def _name(cn: str) -> crypto_x509.Name:
    return crypto_x509.Name([crypto_x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    cn: str, days: int, issuer: tuple[crypto_x509.Name, rsa.RSAPrivateKey] | None, ips: tuple[str, ...] = ()
) -> tuple[str, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    builder = (
        crypto_x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer[0] if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(crypto_x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(crypto_x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if ips:
        san = [crypto_x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        builder = builder.add_extension(crypto_x509.SubjectAlternativeName(san), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key


@pytest.fixture(scope="module")
def pems() -> dict[str, str]:
    """Two CAs (20 years) and their leaves (10 years), as cfssl makes them for the guide's hosts."""
    made: dict[str, str] = {}
    for authority in ("etcd", "kubernetes"):
        ca_pem, ca_key = _issue(authority, 7300, None)
        made[f"{authority}/ca.pem"] = ca_pem
        for leaf in ("server", "admin", "kube-proxy") if authority == "kubernetes" else ("server",):
            ips = ("192.168.61.17", "192.168.61.18", "192.168.61.22")
            made[f"{authority}/{leaf}.pem"], _ = _issue(leaf, 3650, (_name(authority), ca_key), ips)
    for node in ("node01", "node02"):
        made[f"kubelet/{node}"], _ = _issue(f"system:node:{node}", 365, None)
    return made


# ----------------------------------------------------------------------------- a healthy session


def put(session: Session, host: str, fact: Fact[Any], value: Any) -> None:
    """A fact as gathered: raw output (parsed by the fact's own parser) or the parsed value."""
    facts = session.facts(host)
    stdout = value if isinstance(value, str) else repr(value)[:200]
    facts._records[fact.name] = FactRecord(host, fact.name, fact.command, 0, stdout, "", 0.0)
    if not isinstance(value, str):
        facts._values[fact.name] = value


class ScriptedConnection:
    """Commands outside the fact batches, answered by the first matching fragment."""

    def __init__(self, host: str, answers: dict[str, str]) -> None:
        self.host, self.answers = host, answers

    def run(self, command: str, **_: Any) -> CommandResult:
        for fragment, stdout in self.answers.items():
            if fragment in command:
                return CommandResult(self.host, command, 0, stdout.replace("{host}", self.host), "", 0.0, 0.0)
        raise AssertionError(f"{self.host}: unexpected command {command[:100]!r}")


class ScriptedTransport(OfflineTransport):
    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def connection(self, host: Any) -> ScriptedConnection:  # type: ignore[override]
        return ScriptedConnection(host if isinstance(host, str) else host.name, self.answers)


class EtcdMember:
    """A pyetcd client of one member over one shared keyspace (what ETCD-11 writes and reads back)."""

    def __init__(self, store: dict[str, bytes]) -> None:
        self.store = store

    def put(self, key: str, value: str) -> None:
        self.store[key] = value.encode()

    def get(self, key: str) -> tuple[bytes | None, None]:
        return self.store.get(key), None

    def delete(self, key: str) -> None:
        self.store.pop(key, None)


class Workload(smoke_probes.SmokeWorkload):
    def exec(self, pod: str, command: list[str], timeout: float = 0) -> tuple[int | None, str, str]:
        return 0, "".join(f"{ip} ok\n" for ip in command[4:]), ""


def _stat(*names: str, mode: str = "600") -> dict[str, FileStat]:
    return {name: FileStat(name, mode if layout.is_secret_path(name) else "644", "root", "root", 1) for name in names}


def _spki(pem: str) -> str:
    return parse_certificate(pem).spki_sha256


LEASES = {
    "/coreos.com/network/subnets/172.17.1.0-24": '{"PublicIP":"192.168.61.22","BackendType":"vxlan",'
    f'"BackendData":{{"VNI":1,"VtepMAC":"{NODE02_MAC}"}}}}',
    "/coreos.com/network/subnets/172.17.36.0-24": '{"PublicIP":"192.168.61.18","BackendType":"vxlan",'
    f'"BackendData":{{"VNI":1,"VtepMAC":"{NODE01_MAC}"}}}}',
}
APISERVER_ARGV = (
    "/opt/kubernetes/bin/kube-apiserver",
    "--secure-port=6443",
    "--enable-admission-plugins=NodeRestriction",
)
CM_ARGV = (
    "/opt/kubernetes/bin/kube-controller-manager",
    f"--cluster-signing-cert-file={K8S_SSL}/ca.pem",
    f"--cluster-signing-key-file={K8S_SSL}/ca-key.pem",
)


def healthy_session(cluster: Cluster, pems: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Session:
    """The guide's three hosts, every layer agreeing, as a session without SSH."""
    outputs: dict[str, dict[Fact[Any], str | tuple[str, str, int]]] = {}
    for host in cluster.etcd_members:  # every member's service as node01's capture, its own name and address
        capture = LAB_ETCD_SERVICE_NODE01.replace("192.168.61.18:", host.address + ":")
        capture = capture.replace("etcd02=https://" + host.address, "etcd02=https://192.168.61.18")
        capture = capture.replace('"etcd02"', f'"{host.etcd_name}"').replace("=etcd02\n", f"={host.etcd_name}\n")
        outputs[host.name] = {etcd_facts.etcd_service: capture}
    session = offline_session(cluster, outputs)
    session.transport = ScriptedTransport(  # type: ignore[assignment]
        {
            "curl -sS": "http://10.0.0.37:80/\t0\tkubeproof-smoke-abc-node01\n"
            "http://192.168.61.18:30080/\t0\tkubeproof-smoke-abc-node02\n"
            "http://192.168.61.22:30080/\t0\tkubeproof-smoke-abc-node01\n",
            "docker ps --format": "\n",
        }
    )
    ca_k8s, ca_etcd = pems["kubernetes/ca.pem"], pems["etcd/ca.pem"]
    for host in cluster.hosts:
        name = host.name
        put(session, name, host_facts.hostname, name + "\n")
        put(session, name, host_facts.swaps, "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
        put(session, name, host_facts.fstab_swap, "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n")
        put(session, name, etcd_facts.etcd_layout, LAB_LAYOUT_NODE01)
        put(session, name, certificates_in(ETCD_SSL), {"ca.pem": ca_etcd, "server.pem": pems["etcd/server.pem"]})
        put(session, name, directory_stat(ETCD_SSL), _stat("ca.pem", "server.pem", "server-key.pem"))
        put(session, name, directory_stat(K8S_CFG), _stat("kubelet.config", "token.csv"))
        for file in ("ca.pem", "server.pem"):
            put(
                session,
                name,
                file_sha256(f"{ETCD_SSL}/{file}"),
                hashlib.sha256(pems[f"etcd/{file}"].encode()).hexdigest(),
            )
        k8s = {f"{n}.pem": pems[f"kubernetes/{n}.pem"] for n in ("ca", "server", "admin", "kube-proxy")}
        put(session, name, certificates_in(K8S_SSL), k8s)
        put(session, name, directory_stat(K8S_SSL), _stat(*k8s, "ca-key.pem", "server-key.pem", "admin-key.pem"))
        put(
            session,
            name,
            mf.peer_insecure(cluster.host("master01")),
            mf.HttpAnswer(7, 0, False, "", "curl: (7) refused"),
        )
    for node in ("node01", "node02"):
        pem = pems[f"kubelet/{node}"]
        put(
            session,
            node,
            nf.kubelet_client_certificate,
            nf.ClientCertificate("/x/kubelet-client-current.pem", "/x/a.pem", pem),
        )
        put(session, node, nf.node_versions, {"kubelet": VERSION, "kube-proxy": VERSION})
    binaries = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
    put(session, "master01", mf.master_versions, dict.fromkeys(binaries, VERSION))
    put(session, "master01", signing_duration, "87600h\n")
    put(
        session,
        "master01",
        mf.master_listeners,
        [mf.Listener("*", 6443, "kube-apiserver"), mf.Listener("127.0.0.1", 10257, "kube-controller")],
    )
    put(
        session,
        "master01",
        mf.master_processes,
        {
            "kube-apiserver": mf.ProcessInfo("kube-apiserver", 700, APISERVER_ARGV),
            "kube-controller-manager": mf.ProcessInfo("kube-controller-manager", 701, CM_ARGV),
        },
    )
    put(session, "master01", mf.kubernetes_ca, ca_k8s)
    put(session, "master01", key_public_fingerprint(f"{K8S_SSL}/ca-key.pem"), _spki(ca_k8s))
    put(
        session,
        "master01",
        mf.etcd_health,
        {
            f"https://{h.address}:2379": mf.HttpAnswer(0, 200, True, '{"health":"true","reason":""}')
            for h in cluster.etcd_members
        },
    )
    node01: dict[Fact[Any], str] = {
        net_facts.subnet_env: LAB_SUBNET_ENV_NODE01,
        net_facts.flannel_link: LAB_FLANNEL_LINK_NODE01,
        net_facts.docker0_link: LAB_DOCKER0_NODE01,
        net_facts.routes: LAB_ROUTES_NODE01,
        net_facts.flannel_neighbours: LAB_NEIGH_NODE01,
        net_facts.flannel_fdb: LAB_FDB_NODE01,
        net_facts.forward_chain: LAB_FORWARD_NODE01,
        net_facts.flanneld_service: LAB_FLANNELD_SERVICE_NODE01,
        net_facts.flanneld_version: "v0.28.10\n",
        net_facts.docker_service: LAB_DOCKER_SERVICE_NODE01,
        net_facts.docker_engine: LAB_DOCKER_ENGINE_NODE01,
    }
    for fact, output in node01.items():
        put(session, "node01", fact, output)
    _shared_state(session, cluster, monkeypatch)
    return session


def _shared_state(session: Session, cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the etcd and Kubernetes APIs answer on the healthy lab (session-wide reads)."""
    store: dict[str, bytes] = {}
    session._shared["etcd-clients"] = EtcdClients(
        {h.name: EtcdMember(store) for h in cluster.etcd_members}, CredentialFiles(Path("/nonexistent"))
    )
    listed = [
        etcd_probes.ListedMember(
            i + 1, h.etcd_name or "", (f"https://{h.address}:2380",), (f"https://{h.address}:2379",)
        )
        for i, h in enumerate(cluster.etcd_members)
    ]
    session._shared["etcd-cluster-view"] = etcd_probes.ClusterView(
        {
            h.name: etcd_probes.MemberAnswer(
                h,
                f"https://{h.address}:2379",
                member_id=i + 1,
                leader_id=1,
                raft_term=7,
                raft_index=120 + i,
                version="3.4.23",
                members=listed,
            )
            for i, h in enumerate(cluster.etcd_members)
        }
    )
    leases = [net_facts.parse_lease(key, value) for key, value in LEASES.items()]
    config = net_facts.parse_flannel_config('{"Network": "172.17.0.0/16", "Backend": {"Type": "vxlan"}}')
    session._shared["flannel-etcd-state"] = net_probes.FlannelState(
        config, "", sorted(leases, key=lambda lease: lease.subnet), []
    )
    session._shared["flannel-cross-ping"] = cross_ping.PingRun(
        containers={"node01": "172.17.36.2", "node02": "172.17.1.2"},
        results={"node01": {"node02": True}, "node02": {"node01": True}},
    )
    now = dt.datetime.now(dt.UTC)
    session._shared["csr-list"] = (
        [
            {
                "name": "node-csr-1",
                "created": "",
                "subject": "system:node:node01",
                "signer": "kubernetes.io/kube-apiserver-client-kubelet",
                "username": "kubelet-bootstrap",
                "state": "approved and issued",
            }
        ],
        now,
    )
    pods = {
        n: smoke_probes.PodState(n, f"kubeproof-smoke-abc-{n}", ip, smoke_probes.RUNNING)
        for n, ip in (("node01", "172.17.36.5"), ("node02", "172.17.1.5"))
    }
    session._shared["smoke-workload"] = Workload(
        "kubeproof-smoke-abc",
        "abc",
        "main",
        cast(KubeClients, None),  # the probes read no API through it: exec is answered here
        "kubeproof/testbox:1",
        ["node01", "node02"],
        pods,
        "10.0.0.37",
        30080,
    )
    session._shared["smoke-teardown"] = smoke_probes.Teardown(
        [],
        ["deleted namespace kubeproof-smoke-abc (this run, worker main)", "waited 4.1s for the namespaces to be gone"],
        [],
    )

    def api_get(ctx: Any, path: str, *, not_found_ok: bool = False) -> master_probes.ApiAnswer:
        bodies: dict[str, Any] = {
            "/api/v1/componentstatuses": {
                "items": [
                    {"metadata": {"name": name}, "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]}
                    for name in ("scheduler", "controller-manager", "etcd-0")
                ]
            },
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings": {
                "items": [
                    {
                        "metadata": {"name": "cluster-admin"},
                        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                        "subjects": [{"kind": "Group", "name": "system:masters"}],
                    },
                ]
            },
            "/apis/rbac.authorization.k8s.io/v1/rolebindings": {"items": []},
        }
        return master_probes.ApiAnswer(200, bodies[path], now)

    monkeypatch.setattr(master_probes, "api_get", api_get)


@pytest.fixture
def healthy(cluster: Cluster, pems: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Session:
    return healthy_session(cluster, pems, monkeypatch)


def _observe(session: Session, cluster: Cluster, row: Check) -> tuple[Observation, dict[str, Any]]:
    host = cluster.host(HOST_FOR_ROLE[row.roles[0]])
    return observe(row, session.context(host)), inventory_context(cluster, host)


# ----------------------------------------------------------------------------- every row


def test_the_catalogue_has_the_problem_list_rows_the_issue_counts() -> None:
    rows = problem_list_rows()
    assert sum(r.comparator == "is_empty" for r in rows) >= 49
    assert len(rows) >= 52


@pytest.mark.parametrize("row", problem_list_rows(), ids=lambda r: r.key)
def test_every_problem_list_row_passes_saying_what_it_saw(healthy: Session, cluster: Cluster, row: Check) -> None:
    observation, context = _observe(healthy, cluster, row)
    verdict = judge(row, cluster.host(HOST_FOR_ROLE[row.roles[0]]).name, observation, context)
    assert verdict.holds, verdict.message
    assert verdict.seen, f"{row.key}: passed with observed {observation.value!r} and no seen lines"
    assert all(line.strip() for line in verdict.seen) and len(verdict.seen) <= SEEN_LIMIT


# ----------------------------------------------------------------------------- what the lines say


def _seen(session: Session, cluster: Cluster, key: str) -> tuple[str, ...]:
    row = next(r for r in problem_list_rows() if r.key == key)
    return _observe(session, cluster, row)[0].seen


EXPECTED_LINES: dict[str, Callable[[tuple[str, ...]], bool]] = {
    "FLANNEL-06": lambda seen: seen == ("docker0 172.17.36.1/24 inside FLANNEL_SUBNET 172.17.36.1/24",),
    "FLANNEL-06:mtu": lambda seen: seen == ("docker0 MTU 1450 = FLANNEL_MTU 1450",),
    "FLANNEL-04:lease": lambda seen: (
        seen
        == (
            "FLANNEL_NETWORK=172.17.0.0/16 = Network in etcd 172.17.0.0/16",
            "FLANNEL_SUBNET=172.17.36.1/24 = first address 172.17.36.1 of lease 172.17.36.0/24",
        )
    ),
    "FLANNEL-07": lambda seen: (
        seen == ("node02 lease 172.17.1.0/24: route 172.17.1.0/24 via 172.17.1.0 dev flannel.1 onlink",)
    ),
    "FLANNEL-07:fdb": lambda seen: (
        seen == (f"node02 fdb {NODE02_MAC} dst 192.168.61.22 = lease PublicIP 192.168.61.22",)
    ),
    "DOCKER-02:running": lambda seen: (
        seen
        == ("dockerd --bip=172.17.36.1/24 = FLANNEL_SUBNET 172.17.36.1/24", "dockerd --mtu=1450 = FLANNEL_MTU 1450")
    ),
    "PKI-E-07": lambda seen: seen == (f"{ETCD_SSL}/server-key.pem mode 0600 <= 0600, owner root",),
    "ETCD-11": lambda seen: (
        seen[0].startswith("wrote /kubeproof/probe/")
        and seen[1:]
        == (
            "member etcd01 https://192.168.61.17:2379 read back the same value",
            "member etcd03 https://192.168.61.22:2379 read back the same value",
        )
    ),
    "ETCD-09": lambda seen: (
        seen[0] == "etcd01 (https://192.168.61.17:2379): leader etcd01, raft term 7, raft index 120, version 3.4.23"
    ),
    "ETCD-05:token": lambda seen: (
        seen
        == (
            "node01 initial-cluster-token 'etcd-cluster'",
            "master01 initial-cluster-token 'etcd-cluster'",
            "node02 initial-cluster-token 'etcd-cluster'",
        )
    ),
    "ENV-03:unique": lambda seen: (
        seen == ("node01 hostname node01", "master01 hostname master01", "node02 hostname node02")
    ),
    "MASTER-03:admission-not-disabled": lambda seen: (
        seen == ("running kube-apiserver --disable-admission-plugins=(not set)",)
    ),
    "MASTER-05:none": lambda seen: seen[0].startswith(
        "nothing listens on 8080, loopback included (kube-apiserver v1.34.4"
    ),
    "SEC-03": lambda seen: seen == ("clusterrolebinding cluster-admin: cluster-admin -> Group system:masters",),
    "SMOKE-03": lambda seen: (
        seen == ("kubeproof-smoke-abc-node01 (172.17.36.5) -> kubeproof-smoke-abc-node02 on node02 (172.17.1.5): ok",)
    ),
}


@pytest.mark.parametrize("key", sorted(EXPECTED_LINES))
def test_the_seen_lines_carry_the_compared_values(healthy: Session, cluster: Cluster, key: str) -> None:
    seen = _seen(healthy, cluster, key)
    assert EXPECTED_LINES[key](seen), seen


def test_certificate_rows_name_each_file_with_its_days(healthy: Session, cluster: Cluster) -> None:
    budget = _seen(healthy, cluster, "PKI-K-05")
    assert [line.split(":")[0] for line in budget] == ["admin.pem", "ca.pem", "kube-proxy.pem", "server.pem"]
    assert all(line.endswith("days left (budget 30)") for line in budget)
    beyond = _seen(healthy, cluster, "SEC-05")
    assert len(beyond) == 1 and beyond[0].startswith("server.pem ends ") and beyond[0].endswith(" days before ca.pem")
    signing = _seen(healthy, cluster, "MASTER-09:signing")
    ca = parse_certificate(healthy.facts("master01").get(mf.kubernetes_ca) or "")
    cert, key = ca.sha256_fingerprint[:16], ca.spki_sha256[:16]
    assert signing == (
        f"--cluster-signing-cert-file {K8S_SSL}/ca.pem sha256 {cert} = ca.pem {cert}",
        f"--cluster-signing-key-file {K8S_SSL}/ca-key.pem public key {key} = ca.pem key {key}",
    )


def test_seen_lines_never_carry_a_secret(healthy: Session, cluster: Cluster) -> None:
    """Fingerprints only: no PEM block, no token, in any row's seen lines."""
    for row in problem_list_rows():
        for line in _observe(healthy, cluster, row)[0].seen:
            assert "BEGIN" not in line and "PRIVATE" not in line, (row.key, line)


# ----------------------------------------------------------------------------- failures and the cap


def test_a_failing_row_shows_what_else_it_saw_without_repeating_the_offenders(
    healthy: Session, cluster: Cluster
) -> None:
    put(
        healthy,
        "node01",
        directory_stat(ETCD_SSL),
        {
            "server-key.pem": FileStat("server-key.pem", "644", "root", "root", 1),
            "peer-key.pem": FileStat("peer-key.pem", "600", "root", "root", 1),
        },
    )
    row = next(r for r in problem_list_rows() if r.key == "PKI-E-07")
    observation, context = _observe(healthy, cluster, row)
    verdict = judge(row, "node01", observation, context)
    assert not verdict.holds
    lines = verdict.message.splitlines()
    assert lines[2] == f"  observed: ['{ETCD_SSL}/server-key.pem mode 0644 owner root']"
    assert lines[3:6] == [
        "  seen:",
        f"    {ETCD_SSL}/peer-key.pem mode 0600 <= 0600, owner root",
        f"    {ETCD_SSL}/server-key.pem mode 0644 > 0600, owner root",
    ]
    assert lines[6].startswith("  source:")
    # a seen line that is an offender already listed is not shown twice
    repeated = Observation(["a (bad)"], ("h$ cmd",), (), (), ("a (bad)", "b (fine)"))
    message = judge(row, "node01", repeated, context).message
    assert "    a (bad)" not in message and "    b (fine)" in message


def test_seen_lines_are_capped() -> None:
    lines = [f"file{i} mode 0600" for i in range(100)]
    assert capped(lines) == (*lines[: SEEN_LIMIT - 1], f"... and {100 - SEEN_LIMIT + 1} more")
    assert capped(lines[:3]) == tuple(lines[:3])
    assert len(capped(lines)) == SEEN_LIMIT


# ----------------------------------------------------------------------------- the plugin's record

SINGLE_HOST = """\
name: offline
hosts:
  - name: {hostname}
    address: 127.0.0.1
    roles: [master, etcd]
    etcd_name: etcd01
time:
  sync: host-kernel
"""


def test_a_passed_rows_record_carries_its_seen_lines(pytester: pytest.Pytester) -> None:
    """Through the plugin (pytester, commands run locally): ENV-03:unique passes on a one-host
    cluster, and its row in results.json says which hostname it compared."""
    pytest.importorskip("kubeproof.reports")
    hostname = subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip()
    pytester.makefile(".yaml", cluster=SINGLE_HOST.format(hostname=hostname))
    pytester.makeconftest(LOCAL_TRANSPORT)
    shutil.copy(REPO / "suites" / "test_01_env.py", pytester.path / "test_01_env.py")
    report_dir = pytester.path / "out"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--cluster", "cluster.yaml", "--report-dir", str(report_dir), "-k", "ENV-03"
    )
    result.assert_outcomes(passed=2)
    rows = {row["key"]: row for row in json.loads((report_dir / "results.json").read_text())["rows"]}
    unique = rows["ENV-03:unique"]
    assert unique["outcome"] == "passed" and unique["observed"] == "[]"
    assert unique["seen"] == [f"{hostname} hostname {hostname}"]
