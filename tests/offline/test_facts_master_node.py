"""Parsers and pure helpers of MASTER, NODE, SMOKE and SEC-02/03, on captured output (no lab).

Where a fact's shell is portable (kubeconfig summaries, token.csv fingerprints, curl) it is run
here against temporary files, so the shell is tested with its parser and secrets are proven absent.
"""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509 as crypto_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kubeproof import layout
from kubeproof.bootstrap.render import kubeconfig
from kubeproof.checks import CATALOGUE_DIR, NotApplicable, Observation, parse_catalogue
from kubeproof.facts import Fact, ParseError, Raw
from kubeproof.facts import master as mf
from kubeproof.facts import node as nf
from kubeproof.inventory import HostSpec, parse_cluster_text
from kubeproof.probes import load_probes
from kubeproof.probes import master as mp
from kubeproof.probes import node as np_
from kubeproof.probes import smoke as sp
from kubeproof.session import HostContext, facts_for_host, inventory_context
from kubeproof.transport import ProbeError
from kubeproof.x509 import parse_certificate
from tests.certificates import self_signed

TOKEN = "0fb61c46f8991b718eb38d27b605b008"
TOKEN_SHA256 = "8865180cda47f3dd88a9824a631a1c9d73761a24c8ea8b67f68a93cd9bd2f3db"

CLUSTER = parse_cluster_text(
    """\
name: lab
hosts:
  - {name: master01, address: 192.168.61.17, roles: [master, etcd], etcd_name: etcd01}
  - {name: node01, address: 192.168.61.18, roles: [node, etcd], etcd_name: etcd02}
  - {name: node02, address: 192.168.61.22, roles: [node, etcd], etcd_name: etcd03}
versions: {kubernetes: v1.34.4}
"""
)


def run_sh(command: str) -> Raw:
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30, check=False)
    return Raw(done.stdout, done.stderr, done.returncode)


# ----------------------------------------------------------------------------- certificates


def _name(cn: str, org: str | None = None) -> crypto_x509.Name:
    attributes = [crypto_x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attributes.append(crypto_x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return crypto_x509.Name(attributes)


def _certificate(
    cn: str, org: str | None, issuer_key: rsa.RSAPrivateKey, issuer: crypto_x509.Name | None, ca: bool = False
) -> tuple[bytes, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    builder = (
        crypto_x509.CertificateBuilder()
        .subject_name(_name(cn, org))
        .issuer_name(issuer or _name(cn, org))
        .public_key(key.public_key())
        .serial_number(crypto_x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(crypto_x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    cert = builder.sign(issuer_key if issuer else key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), key


@pytest.fixture(scope="module")
def pki() -> dict[str, bytes]:
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = _name("kubernetes", "k8s")
    now = dt.datetime.now(dt.UTC)
    ca = self_signed(ca_name, ca_key, now - dt.timedelta(minutes=1), now + dt.timedelta(days=10), ca=True, serial=1)
    proxy, proxy_key = _certificate("system:kube-proxy", "k8s", ca_key, ca_name)
    node, _ = _certificate("system:node:node01", "system:nodes", ca_key, ca_name)
    stranger, _ = _certificate("system:node:node01", "system:nodes", rsa.generate_private_key(65537, 2048), None)
    return {
        "ca": ca.public_bytes(serialization.Encoding.PEM),
        "proxy": proxy,
        "proxy_key": proxy_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ),
        "node": node,
        "stranger": stranger,
    }


# ----------------------------------------------------------------------------- flags and processes


def test_parse_flags_equals_separate_and_bare_booleans() -> None:
    flags = mf.parse_flags(
        ["--v=2", "--enable-bootstrap-token-auth", "--token-auth-file", "/opt/kubernetes/cfg/token.csv", "--x=a=b"]
    )
    assert flags == {
        "v": "2",
        "enable-bootstrap-token-auth": "true",
        "token-auth-file": "/opt/kubernetes/cfg/token.csv",
        "x": "a=b",
    }
    assert mf.parse_flags(["--a=1", "--a=2"]) == {"a": "2"}  # the last one wins, as in pflag


# What the processes fact prints for the installer's apiserver (bootstrap/render.py) and kube-proxy.
PROCESSES_OUTPUT = """\
@unit kube-apiserver 4242
@arg /opt/kubernetes/bin/kube-apiserver
@arg --v=2
@arg --etcd-servers=https://192.168.61.17:2379,https://192.168.61.18:2379,https://192.168.61.22:2379
@arg --etcd-cafile=/opt/etcd/ssl/ca.pem
@arg --bind-address=192.168.61.17
@arg --authorization-mode=RBAC,Node
@arg --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,ResourceQuota,NodeRestriction
@arg --enable-bootstrap-token-auth
@arg --token-auth-file=/opt/kubernetes/cfg/token.csv
@unit kube-controller-manager 0
@unit kube-proxy 977
@arg /opt/kubernetes/bin/kube-proxy
@arg --v=2
@arg --config=/opt/kubernetes/cfg/kube-proxy-config.yaml
@config /opt/kubernetes/cfg/kube-proxy-config.yaml
@cfg # Managed by kubeproof bootstrap; a re-run rewrites local edits.
@cfg apiVersion: kubeproof.config.k8s.io/v1alpha1
@cfg clientConnection:
@cfg   kubeconfig: /opt/kubernetes/cfg/kube-proxy.kubeconfig
@cfg clusterCIDR: 172.17.0.0/16
@cfg mode: iptables
@cfg
@unit kubelet 12
@arg /opt/kubernetes/bin/kubelet
@arg --config
@arg /opt/kubernetes/cfg/kubelet.kubeconfig
@config-secret /opt/kubernetes/cfg/kubelet.kubeconfig
"""


def test_parse_processes_reads_argv_config_and_never_a_secret_config() -> None:
    processes = mf.parse_processes(Raw(PROCESSES_OUTPUT, "", 0))
    apiserver = processes["kube-apiserver"]
    assert apiserver.running and apiserver.pid == 4242
    assert apiserver.flags["authorization-mode"] == "RBAC,Node"
    assert apiserver.flags["enable-bootstrap-token-auth"] == "true"
    assert not processes["kube-controller-manager"].running
    proxy = processes["kube-proxy"].config()
    assert proxy["clusterCIDR"] == "172.17.0.0/16"
    assert proxy["clientConnection"]["kubeconfig"] == "/opt/kubernetes/cfg/kube-proxy.kubeconfig"
    kubelet = processes["kubelet"]
    assert kubelet.flags["config"] == "/opt/kubernetes/cfg/kubelet.kubeconfig"
    assert kubelet.config() == {}  # a path naming a secret is never read


def test_processes_fact_quotes_units_and_skips_secret_config_paths() -> None:
    fact = mf.processes_fact("x", ("kube-apiserver",))
    assert "for u in kube-apiserver; do" in fact.command
    assert "*kubeconfig|*.key|*-key.pem|*token.csv) printf '@config-secret" in fact.command


def test_unit_summary_and_distinct_unit_fact_names() -> None:
    raw = Raw(
        "Id=kube-apiserver.service\nActiveState=active\nUnitFileState=enabled\nLoadState=loaded\n\n"
        "Id=kube-scheduler.service\nActiveState=inactive\nUnitFileState=disabled\nLoadState=loaded\n\n"
        "Id=kube-controller-manager.service\nActiveState=inactive\nUnitFileState=\nLoadState=not-found\n",
        "",
        0,
    )
    state = mf.master_units.parse(raw)
    assert mf.unit_summary(state, "kube-apiserver") == "active, enabled"
    assert mf.unit_summary(state, "kube-scheduler") == "inactive, disabled"
    assert mf.unit_summary(state, "kube-controller-manager") == "not installed"
    assert mf.master_units.name != nf.node_units.name  # host.units_fact names every set "units"


def test_binary_versions() -> None:
    raw = Raw(
        "kube-apiserver\tKubernetes v1.34.4\nkubectl\tClient Version: v1.34.4\nkube-scheduler\tmissing\n"
        "kube-controller-manager\tbash: line 1: exec format error\n",
        "",
        0,
    )
    assert mf.parse_binary_versions(raw) == {
        "kube-apiserver": "v1.34.4",
        "kubectl": "v1.34.4",
        "kube-scheduler": "missing",
        "kube-controller-manager": "unknown: bash: line 1: exec format error",
    }


def test_admin_kubectl() -> None:
    raw = Raw(
        "path=/usr/local/bin/kubectl\nresolved=/opt/kubernetes/bin/kubectl\nclient=Client Version: v1.34.4\n"
        "server=Client Version: v1.34.4 | Kustomize Version: v5.7.1 | "
        "The connection to the server localhost:8080 was refused - did you specify the right host or port? | \n",
        "",
        0,
    )
    admin = mf.parse_admin_kubectl(raw)
    assert admin.client_version == "v1.34.4" and admin.resolved == "/opt/kubernetes/bin/kubectl"
    assert "localhost:8080 was refused" in admin.server_answer
    assert mf.parse_admin_kubectl(Raw("path=\n", "", 0)).path is None


def test_version_arithmetic() -> None:
    assert mp.version_tuple("v1.34.4") == (1, 34, 4)
    assert mp.version_tuple("v1.19.16-rc.0+abc") == (1, 19, 16)
    assert mp.version_tuple("missing") is None
    assert mp.version_tuple("v1.34.4")[:2] >= mp.INSECURE_PORT_REMOVED  # type: ignore[index]


# ----------------------------------------------------------------------------- token.csv


def test_token_csv_fingerprints_on_the_host_and_never_prints_the_token(tmp_path: Path) -> None:
    path = tmp_path / "token.csv"
    path.write_text(f'{TOKEN},kubelet-bootstrap,10001,"system:kubelet-bootstrap"\nNOTHEXTOKEN\n\n')
    path.chmod(0o600)
    raw = run_sh(mf.token_csv.command.replace(layout.TOKEN_CSV, str(path)))
    assert raw.rc == 0, raw.stderr
    assert TOKEN not in raw.stdout and "NOTHEXTOKEN" not in raw.stdout
    summary = mf.parse_token_csv(raw)
    assert summary.mode == "600"
    assert [line.shape for line in summary.lines] == [
        '<32 hex>,kubelet-bootstrap,10001,"system:kubelet-bootstrap"',
        "<11 characters, not hex>",
    ]
    assert summary.lines[0].sha256 == TOKEN_SHA256
    assert not mf.parse_token_csv(run_sh(mf.token_csv.command.replace(layout.TOKEN_CSV, str(tmp_path / "no")))).present


def test_self_subject_review() -> None:
    created = (
        '{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},'
        '"status":{"userInfo":{"username":"kubelet-bootstrap","uid":"10001",'
        '"groups":["system:kubelet-bootstrap","system:authenticated"]}}}\n@@KP 201 0.001\n'
    )
    review = mf.parse_self_subject_review(Raw(created, "", 0))
    assert review.username == "kubelet-bootstrap" and "system:authenticated" in review.groups
    denied = '{"kind":"Status","status":"Failure","message":"Unauthorized","code":401}\n@@KP 401 0.001\n'
    assert mf.parse_self_subject_review(Raw(denied, "", 0)) == mf.TokenReview(401, None, (), "Unauthorized")
    assert mf.parse_self_subject_review(Raw("absent\n", "", 0)).username is None


def test_token_review_reads_the_token_only_inside_the_shell() -> None:
    fact = mf.token_review("192.168.61.17")
    assert "-H @-" in fact.command or "-H '@-'" in fact.command or "-H @- " in fact.command
    assert "printf 'Authorization: Bearer %s\\n' \"$tok\" |" in fact.command


# ----------------------------------------------------------------------------- kubeconfigs


def test_kubeconfig_summaries_carry_no_secret(tmp_path: Path, pki: dict[str, bytes]) -> None:
    server = "https://192.168.61.17:6443"
    bootstrap = tmp_path / "bootstrap.kubeconfig"
    bootstrap.write_text(kubeconfig(server, pki["ca"], "kubelet-bootstrap", token=TOKEN))
    proxy = tmp_path / "kube-proxy.kubeconfig"
    proxy.write_text(kubeconfig(server, pki["ca"], "kube-proxy", cert_pem=pki["proxy"], key_pem=pki["proxy_key"]))
    raw = run_sh(nf.kubeconfig_summary(str(bootstrap)).command)
    assert raw.rc == 0, raw.stderr
    assert TOKEN not in raw.stdout
    summary = nf.parse_kubeconfig_summary(raw)
    assert summary.servers == (server,)
    assert summary.tokens == (nf.TokenShape(32, True, TOKEN_SHA256),)
    assert summary.ca_pem is not None and summary.ca_pem.strip() == pki["ca"].decode().strip()
    assert summary.context_users == ("kubelet-bootstrap",)

    raw = run_sh(nf.kubeconfig_summary(str(proxy)).command)
    key_data = base64.b64encode(pki["proxy_key"]).decode()
    assert "PRIVATE KEY" not in raw.stdout and key_data[:40] not in raw.stdout
    summary = nf.parse_kubeconfig_summary(raw)
    assert summary.client_key_data and summary.client_cert_pem is not None
    assert "system:kube-proxy" in parse_certificate(summary.client_cert_pem).subject_cn
    assert not nf.parse_kubeconfig_summary(run_sh(nf.kubeconfig_summary(str(tmp_path / "none")).command)).present


KUBELET_KUBECONFIG = """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: https://192.168.61.17:6443
  name: default-cluster
contexts:
- context:
    cluster: default-cluster
    namespace: default
    user: default-auth
  name: default-context
current-context: default-context
kind: Config
preferences: {{}}
users:
- name: default-auth
  user:
    client-certificate: /opt/kubernetes/ssl/kubelet-client-current.pem
    client-key: /opt/kubernetes/ssl/kubelet-client-current.pem
"""


def test_kubelet_kubeconfig_written_by_the_bootstrap(tmp_path: Path, pki: dict[str, bytes]) -> None:
    path = tmp_path / "kubelet.kubeconfig"
    path.write_text(KUBELET_KUBECONFIG.format(ca=base64.b64encode(pki["ca"]).decode()))
    summary = nf.parse_kubeconfig_summary(run_sh(nf.kubeconfig_summary(str(path)).command))
    assert summary.client_cert_files == ("/opt/kubernetes/ssl/kubelet-client-current.pem",)
    assert summary.client_key_files == summary.client_cert_files
    assert summary.context_users == ("default-auth",) and not summary.tokens


def test_client_certificate_fact(pki: dict[str, bytes]) -> None:
    text = (
        "@path /opt/kubernetes/ssl/kubelet-client-current.pem\n@resolved /opt/kubernetes/ssl/kubelet-client-2026.pem\n"
    )
    found = nf.parse_client_certificate(Raw(text + pki["node"].decode(), "", 0))
    assert found.resolved and found.resolved.endswith("2026.pem")
    assert nf.parse_client_certificate(Raw("absent\n", "", 0)).pem is None
    with pytest.raises(ParseError):
        nf.parse_client_certificate(Raw(text, "unable to load certificate", 1))


def test_certificate_verdicts(pki: dict[str, bytes]) -> None:
    ca = pki["ca"].decode()
    assert mp.certificate_verdict(pki["node"].decode(), ca, "cert") == mp.KUBERNETES_CA
    assert mp.certificate_verdict(pki["stranger"].decode(), ca, "cert").startswith("not the Kubernetes CA")
    assert mp.certificate_verdict(None, ca, "kubelet-client-current.pem") == "no kubelet-client-current.pem"


# ----------------------------------------------------------------------------- listeners and HTTP


SS_OUTPUT = """\
LISTEN 0      4096   192.168.61.17:6443       0.0.0.0:*    users:(("kube-apiserver",pid=4242,fd=7))
LISTEN 0      4096       127.0.0.1:10259      0.0.0.0:*    users:(("kube-scheduler",pid=4300,fd=3))
LISTEN 0      5          127.0.0.1:8080       0.0.0.0:*    users:(("socat",pid=5000,fd=5))
LISTEN 0      5            0.0.0.0:8080       0.0.0.0:*    users:(("nc",pid=5001,fd=3))
LISTEN 0      4096               *:10250            *:*    users:(("kubelet",pid=12,fd=20))
LISTEN 0      4096           [::1]:8080          [::]:*
LISTEN 0      4096   [::ffff:127.0.0.1]:8081     *:*
LISTEN 0      4096   192.168.61.17%eth0:8080  0.0.0.0:*
"""


def test_parse_ss_listeners_loopback_and_wildcards() -> None:
    listeners = mf.parse_ss_listeners(Raw(SS_OUTPUT, "", 0))
    on_8080 = [(str(item), item.loopback) for item in listeners if item.port == 8080]
    assert on_8080 == [
        ("127.0.0.1:8080 (socat)", True),
        ("0.0.0.0:8080 (nc)", False),
        ("[::1]:8080", True),
        ("192.168.61.17:8080", False),
    ]
    assert next(item for item in listeners if item.port == 10250).wildcard
    assert next(item for item in listeners if item.port == 8081).loopback


def test_parse_curl_refused_silent_and_answered() -> None:
    refused = mf.parse_curl(
        Raw("\n@@KP 000 0.000000\n", "curl: (7) Failed to connect to 192.168.61.17 port 8080: Couldn't connect", 7)
    )
    assert not refused.connected and not refused.status
    silent = mf.parse_curl(Raw("\n@@KP 000 0.000157\n", "curl: (28) Operation timed out after 4001 ms", 28))
    assert silent.connected and silent.describe().startswith("TCP connection accepted")
    answered = mf.parse_curl(Raw('{"gitVersion": "v1.34.4"}\n@@KP 200 0.0002\n', "", 0))
    assert answered.status == 200 and "gitVersion" in answered.body
    assert mp._peer_view(refused) == "not reachable"
    assert mp._peer_view(answered).startswith("reachable: HTTP 200")


def test_curl_runs_for_real_against_a_closed_port() -> None:
    answer = mf.parse_curl(run_sh(mf.curl_command("http://127.0.0.1:9/")))
    assert not answer.connected and not answer.status


HEALTH_OUTPUT = """\
@@ kube-scheduler /healthz
ok
@@KP 200 0.000512
@@ERR
@@ kube-scheduler /livez
ok
@@KP 200 0.000400
@@ERR
@@ kube-controller-manager /healthz

@@KP 000 0.000000
@@ERR curl: (7) Failed to connect to 127.0.0.1 port 10257 after 0 ms: Couldn't connect to server
@@ kube-apiserver /readyz?verbose
[+]ping ok
[+]etcd ok
readyz check passed
@@KP 200 0.003
@@ERR
"""


def test_parse_health() -> None:
    answers = mf.parse_health(Raw(HEALTH_OUTPUT, "", 0))
    assert answers["kube-scheduler /healthz"].status == 200 and answers["kube-scheduler /healthz"].body == "ok"
    down = answers["kube-controller-manager /healthz"]
    assert not down.connected and "Couldn't connect" in down.describe()
    assert "[+]etcd ok" in answers["kube-apiserver /readyz?verbose"].body


def test_parse_s_client(pki: dict[str, bytes]) -> None:
    served = (
        "CONNECTED(00000003)\n---\nCertificate chain\n 0 s:CN = kube-apiserver\n   i:CN = kubernetes\n"
        + pki["node"].decode()
        + "---\nServer certificate\nsubject=CN = kube-apiserver\n"
    )
    chain = mf.parse_s_client(Raw(served, "depth=0 CN = kube-apiserver\nverify error:num=20", 0))
    assert chain.connected and chain.certificates_pem.count("BEGIN CERTIFICATE") == 1
    refused = mf.parse_s_client(
        Raw("", "40372A684A7F0000:error:8000006F:system library:BIO_connect:Connection refused\nconnect:errno=111", 1)
    )
    assert not refused.connected and "Connection refused" in refused.detail


# ----------------------------------------------------------------------------- node data plane


def test_dataplane_and_text_answers() -> None:
    plane = nf.parse_dataplane(Raw("iptables=present\niptables-legacy=absent\nmodules=ip_vs ip_vs_rr \n", "", 0))
    assert plane.chains == {"iptables": "present", "iptables-legacy": "absent"}
    assert plane.ip_vs_modules == ("ip_vs", "ip_vs_rr")
    assert nf.parse_text_answer(Raw("iptables", "", 0)) == "iptables"
    refused = nf.parse_text_answer(Raw("", "curl: (7) Failed to connect to 127.0.0.1 port 10249", 7))
    assert refused.startswith("no answer: curl: (7)")
    assert nf.parse_subnet_env("FLANNEL_NETWORK=172.17.0.0/16\nFLANNEL_SUBNET=172.17.45.1/24\n")["FLANNEL_SUBNET"] == (
        "172.17.45.1/24"
    )


# ----------------------------------------------------------------------------- CSRs and pods


def _csr(cn: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    request = (
        crypto_x509.CertificateSigningRequestBuilder()
        .subject_name(_name(cn, "system:nodes"))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode()


def test_csr_subject_and_state() -> None:
    assert np_._csr_subject(_csr("system:node:node01")) == "system:node:node01"
    assert np_._csr_subject("bm90IGEgY3Ny") == "(unreadable request)"
    now = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    approved = {"type": "Approved", "lastUpdateTime": "2026-03-01T07:00:00Z"}
    assert np_._csr_state({"status": {"conditions": [approved], "certificate": "LS0t"}}, now) == np_.CSR_APPROVED
    assert np_._csr_state({"status": {"conditions": [approved]}}, now) == "approved but never issued"
    fresh = {"type": "Approved", "lastUpdateTime": "2026-03-01T07:59:50Z"}
    assert np_._csr_state({"status": {"conditions": [fresh]}}, now) == "approved, being issued"
    assert np_._csr_state({"status": {}}, now) == "pending"
    assert np_._csr_state({"status": {"conditions": [{"type": "Denied"}]}}, now) == "denied"


def test_pod_node_and_state() -> None:
    unscheduled = {
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "values": ["node02"]}]}]
                    }
                }
            }
        },
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "x"}],
        },
    }
    assert sp.pod_node(unscheduled) == "node02"
    state, details, final = sp.pod_state(unscheduled)
    assert state == "Pending: not scheduled" and not final and details
    image = {
        "spec": {"nodeName": "node01"},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "testbox",
                    "ready": False,
                    "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "m"}},
                }
            ],
        },
    }
    assert sp.pod_node(image) == "node01"
    assert sp.pod_state(image)[0] == "Pending: ErrImageNeverPull" and sp.pod_state(image)[2]
    running = {"spec": {"nodeName": "node01"}, "status": {"phase": "Running", "containerStatuses": [{"ready": True}]}}
    assert sp.pod_state(running) == (sp.RUNNING, [], True)


def test_smoke_manifests_use_the_offline_image_and_no_registry() -> None:
    daemonset = sp.daemonset_manifest("kubeproof/testbox:1")
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "kubeproof/testbox:1" and container["imagePullPolicy"] == "Never"
    assert sp.LOG_MARKER in container["command"][2]
    assert daemonset["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 1
    labels = sp.namespace_manifest("kubeproof-smoke-x", "run", "gw0")["metadata"]["labels"]
    assert labels[sp.SMOKE_LABEL] == "true" and labels[sp.RUN_LABEL] == "run" and labels[sp.WORKER_LABEL] == "gw0"
    assert sp.service_manifest()["spec"]["type"] == "NodePort"


def test_run_identity_follows_xdist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_TESTRUNUID", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    run, worker = sp.run_identity()
    assert worker == "main" and run == sp.run_identity()[0]
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", "abcdef0123456789")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert sp.run_identity() == ("abcdef012345", "gw1")


# ----------------------------------------------------------------------------- wiring


def test_peer_facts_ride_in_one_worker_batch() -> None:
    master = CLUSTER.host("master01")
    assert mf.exposure_peer(CLUSTER, master).name == "node01"
    names = {f.name for f in facts_for_host(CLUSTER, CLUSTER.host("node01"))}
    assert {"peer:tls:master01", "peer:http8080:master01", "peer:anonymous:master01"} <= names
    assert not any(n.startswith("peer:") for n in (f.name for f in facts_for_host(CLUSTER, CLUSTER.host("node02"))))
    # one name, one command: a batch keeps one fact per name, so a clash would silently lose one
    for host in CLUSTER.hosts:
        commands: dict[str, str] = {}
        for fact in facts_for_host(CLUSTER, host):
            assert commands.setdefault(fact.name, fact.command) == fact.command, fact.name


def test_inventory_context_additions() -> None:
    context = inventory_context(CLUSTER, CLUSTER.host("node02"))
    assert context["master_names"] == ["master01"]
    assert context["apiserver_urls"] == ["https://192.168.61.17:6443"]
    assert context["node_user"] == "system:node:node02"


MY_CATALOGUES = ("70-master.yaml", "80-node.yaml", "90-smoke.yaml", "95-sec-api.yaml")


def test_every_invariant_of_this_part_has_a_row() -> None:
    probes = load_probes()
    rows = [
        row
        for name in MY_CATALOGUES
        for row in parse_catalogue((CATALOGUE_DIR / name).read_text(encoding="utf-8"), name, probes)
    ]
    ids = {row.id for row in rows}
    wanted = {f"MASTER-{i:02d}" for i in range(1, 11)} | {f"NODE-{i:02d}" for i in range(1, 10)}
    wanted |= {f"SMOKE-{i:02d}" for i in range(1, 7)} | {"SEC-02", "SEC-03"}
    assert wanted <= ids
    findings = {row.id for row in rows if row.kind == "finding"}
    assert {"SEC-02", "SEC-03"} <= findings
    smoke = [row.id for row in rows if row.group == "SMOKE"]
    assert smoke[-1] == "SMOKE-06" and smoke.index("SMOKE-06") > max(i for i, r in enumerate(smoke) if r != "SMOKE-06")


def test_exec_status_channel() -> None:
    assert sp.exec_status('{"metadata":{},"status":"Success"}') == (0, "")
    nonzero = (
        '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 1",'
        '"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"1"}]}}'
    )
    assert sp.exec_status(nonzero) == (1, "")
    unreachable = (
        '{"metadata":{},"status":"Failure","message":"error sending request: Post \\"https://node02:10250/exec/x\\": '
        'dial tcp 192.168.61.22:10250: connect: connection refused","reason":"InternalError"}'
    )
    code, error = sp.exec_status(unreachable)
    assert code is None and "connection refused" in error
    assert sp.exec_status("", still_open=True)[1].startswith("no exit status")


def test_every_fact_command_of_this_part_is_valid_posix_sh() -> None:
    """dash (the nodes' /bin/sh) parses every command; the batch would otherwise lose the whole host."""
    facts = [
        *facts_for_host(CLUSTER, CLUSTER.host("master01")),
        *facts_for_host(CLUSTER, CLUSTER.host("node01")),
        mf.token_review("192.168.61.17"),
    ]
    mine = [f for f in facts if f.name.split(":", 1)[0] in ("master", "node", "peer", "units", "processes", "versions")]
    mine += [f for f in facts if f.name.startswith("kubeconfig:")]
    assert len(mine) >= 20
    for fact in mine:
        checked = subprocess.run(["sh", "-n", "-c", fact.command], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, f"{fact.name}: {checked.stderr}"


# ----------------------------------------------------------------------------- probes both ways (stub hosts)
# Rows whose fault cannot be injected safely on the shared lab (a node's client certificate shared
# with another, an address the kubelet would rewrite at once) are shown failing here, on probe level.


class NoTransport:
    """Commands outside the facts (a unit's diagnosis) cannot run here: the probe says so."""

    def connection(self, host: HostSpec) -> NoTransport:
        return self

    def run(self, command: str, **_: Any) -> Any:
        raise ProbeError("offline", "no transport in this test")


class StubSession:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.transport = NoTransport()

    def shared(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.values:
            self.values[key] = compute()
        return self.values[key]


class StubContext:
    """Enough of HostContext for a probe: facts by (host, fact name), sources and observations."""

    def __init__(self, host: str, facts: Mapping[tuple[str, str], object]) -> None:
        self.cluster = CLUSTER
        self.host = CLUSTER.host(host)
        self.session = StubSession()
        self.facts = facts

    def fact(self, fact: Fact[Any], host: HostSpec | str | None = None) -> Any:
        name = host if isinstance(host, str) else (host or self.host).name
        return self.facts[(name, fact.name)]

    def note_source(self, source: str, evidence: object = None) -> None:
        pass

    def observation(self, value: Any, diagnosis: Iterable[str] = (), seen: Iterable[str] = ()) -> Observation:
        return Observation(value, (), (), tuple(diagnosis), tuple(seen))


def stub(host: str, facts: Mapping[tuple[str, str], object]) -> HostContext:
    return cast(HostContext, StubContext(host, facts))


def _client_cert(pem: bytes) -> nf.ClientCertificate:
    return nf.ClientCertificate("/opt/kubernetes/ssl/kubelet-client-current.pem", "/x.pem", pem.decode())


def test_node_06_unique_fails_when_two_nodes_hold_one_certificate(pki: dict[str, bytes]) -> None:
    shared = {
        ("node01", nf.kubelet_client_certificate.name): _client_cert(pki["node"]),
        ("node02", nf.kubelet_client_certificate.name): _client_cert(pki["node"]),
    }
    observation = np_.kubelet_client_cert_shared(stub("node02", shared), "")
    assert observation.value == ["node01 (same certificate)"]
    own, _ = _certificate("system:node:node02", "system:nodes", rsa.generate_private_key(65537, 2048), None)
    shared[("node02", nf.kubelet_client_certificate.name)] = _client_cert(own)
    assert np_.kubelet_client_cert_shared(stub("node02", shared), "").value == []
    # node02 holding node01's certificate fails the CN row too
    assert (
        np_.kubelet_client_cert_cn(
            stub(
                "node02",
                {
                    ("node02", nf.kubelet_client_certificate.name): _client_cert(pki["node"]),
                },
            ),
            "",
        ).value
        == "system:node:node01"
    )


def test_node_05_node_fails_without_csr_and_without_a_proper_certificate(
    pki: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(np_, "_csrs", lambda ctx: ([], dt.datetime.now(dt.UTC)))
    facts = {
        ("node01", nf.kubelet_client_certificate.name): _client_cert(pki["node"]),
        ("master01", mf.kubernetes_ca.name): pki["ca"].decode(),
    }
    assert np_.node_csr_state(stub("node01", facts), "").value == np_.CSR_COLLECTED
    facts[("node01", nf.kubelet_client_certificate.name)] = _client_cert(pki["stranger"])
    assert np_.node_csr_state(stub("node01", facts), "").value.startswith("no CSR, and")
    facts[("node01", nf.kubelet_client_certificate.name)] = nf.ClientCertificate(None, None, None)
    assert np_.node_csr_state(stub("node01", facts), "").value == "no CSR and no issued client certificate"
    pending = {"name": "csr-1", "created": "2026", "subject": "system:node:node01", "signer": np_.KUBELET_SIGNER}
    monkeypatch.setattr(
        np_, "_csrs", lambda ctx: ([{**pending, "username": "kubelet-bootstrap", "state": "pending"}], None)
    )
    assert np_.node_csr_state(stub("node01", facts), "").value == "pending"
    # approved once, but the kubelet holds no certificate now (bootstrapping again, refused before its CSR)
    approved = {**pending, "username": "kubelet-bootstrap", "state": np_.CSR_APPROVED}
    monkeypatch.setattr(np_, "_csrs", lambda ctx: ([approved], None))
    observed = np_.node_csr_state(stub("node01", facts), "").value
    assert observed == "approved and issued earlier, but the kubelet has no kubelet-client-current.pem now"
    facts[("node01", nf.kubelet_client_certificate.name)] = _client_cert(pki["node"])
    assert np_.node_csr_state(stub("node01", facts), "").value == np_.CSR_APPROVED


def test_node_08_address_and_ready_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = {
        "node01": {
            "status": {
                "addresses": [{"type": "InternalIP", "address": "10.9.9.9"}],
                "conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}],
            }
        }
    }
    monkeypatch.setattr(np_, "_nodes", lambda ctx: nodes)
    monkeypatch.setattr(np_, "unit_diagnosis", lambda ctx, host, unit: ["journal: ..."])
    ctx = stub("node01", {})
    assert np_.node_internal_ip(ctx, "").value == "10.9.9.9"
    assert np_.node_ready(ctx, "").value == "Unknown: NodeStatusUnknown"
    assert np_.node_ready(stub("node02", {}), "").value == "not registered"


def test_node_09_dataplane_rows_both_ways() -> None:
    absent = nf.ProxyDataplane({"iptables": "absent", "iptables-legacy": "absent"}, ())
    present = nf.ProxyDataplane({"iptables": "present", "iptables-legacy": "absent"}, ())
    key = ("node01", nf.proxy_dataplane.name)
    assert np_.kube_proxy_chain(stub("node01", {key: absent}), "KUBE-SERVICES").value == "absent"
    assert np_.kube_proxy_chain(stub("node01", {key: present}), "KUBE-SERVICES").value == "present"
    with pytest.raises(NotApplicable, match="iptables"):
        np_.ip_vs_modules(stub("node01", {key: present}), "")


def test_kube_proxy_reads_only_its_config_file_next_to_config() -> None:
    """cmd/kube-proxy/app/options.go: with --config the file replaces the flags (logging excepted)."""
    config = "/opt/kubernetes/cfg/kube-proxy-config.yaml"
    with_config = mf.ProcessInfo(
        "kube-proxy",
        977,
        ("/opt/kubernetes/bin/kube-proxy", "--cluster-cidr=10.244.0.0/16", "--config=" + config),
        config,
        "clusterCIDR: 172.17.0.0/16\nmode: iptables\n",
    )
    facts = {("node01", nf.node_processes.name): {"kube-proxy": with_config}}
    observation = np_.kube_proxy_setting(stub("node01", facts), "cluster-cidr")
    assert observation.value == "172.17.0.0/16"
    assert "--cluster-cidr=10.244.0.0/16 is ignored" in observation.diagnosis[0]
    assert np_.kube_proxy_setting(stub("node01", facts), "kubeconfig").value == "(not set)"
    flags_only = mf.ProcessInfo("kube-proxy", 977, ("/opt/kubernetes/bin/kube-proxy", "--cluster-cidr=10.244.0.0/16"))
    facts = {("node01", nf.node_processes.name): {"kube-proxy": flags_only}}
    assert np_.kube_proxy_setting(stub("node01", facts), "cluster-cidr").value == "10.244.0.0/16"
