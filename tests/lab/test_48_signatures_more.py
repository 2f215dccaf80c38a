"""More known signatures proven on the lab (test_46's pattern): a real fault makes a unit log a known
line; the failing row's diagnosis names the signature and shows the program's own line.

Faults on different hosts share one suite run (the CI budget is tight); each is undone in a
`finally` from what was read before it went in, and the suites are green again after:
1. workers: node01's docker started while /run/flannel/docker is missing (SIG-DOCKER-03, systemd's
   own line) and its kubelet restarted while cri-dockerd is stopped (SIG-KUBELET-06); node02's
   docker with "bip" in /etc/docker/daemon.json beside flannel's --bip (SIG-DOCKER-02) and its
   kube-proxy declared mode ipvs on a kernel without IP_VS (SIG-PROXY-01);
2. control plane: kube-controller-manager's signing certificate path missing (SIG-KCM-02), then its
   signing flags left out (SIG-KCM-01, logged once at start, found in the whole run);
   kube-scheduler's kubeconfig naming a closed port (SIG-SCHED-01, on the stale lease's row); node01's
   kubelet without its client certificate, its new CSR pending (SIG-KUBELET-01, logged at --v=2,
   the installer's level); node02's docker given flannel's gateway as --bip without its prefix
   length, a hand-written /run/flannel/docker (SIG-DOCKER-01: "invalid CIDR address"). Tried on
   the lab first: docker 20.10.24 takes any well-formed --bip, even the node's own eth0 address or
   all of 172.17.0.0/16, so a bip outside flannel's subnet is DOCKER-02's to find, not a refusal;
3. etcd: node02's server.pem re-signed by a throwaway CA, same key, subject and SANs: node02 logs
   that its peers refuse it (SIG-ETCD-01), the peers that they cannot verify it (SIG-ETCD-02);
4. kubelets bootstrapping again into the faults of the guide's sections 3.5 and 5.2 (tests/lab/
   kubelet_faults.py), one case at a time: a token token.csv lacks (SIG-KUBELET-03) beside a CA that
   did not sign the apiserver's certificate (SIG-KUBELET-05), the kubelet-bootstrap binding deleted
   (SIG-KUBELET-04), the node's CSR denied (SIG-KUBELET-02); NODE-05:node names the signature and
   follows from the NODE-02/NODE-03 row that failed on its own;
5. node01's flanneld given an --iface the host lacks (SIG-FLANNEL-03); node02's given the Kubernetes
   CA as -etcd-cafile (SIG-FLANNEL-02: flanneld v0.28.10 logs the handshake error only when systemd
   cancels its start, so that start gets 10 s instead of 90 s);
6. kube-proxy.kubeconfig embedding another CA on node01 (SIG-PROXY-03) and carrying a client
   certificate of another CA on node02 (SIG-PROXY-02): the kubeconfig's rows carry kube-proxy's journal;
7. kube-apiserver restarted with --etcd-cafile set to the Kubernetes CA while node02's etcd is
   stopped: unknown authority (SIG-APISERVER-01) and connection refused (SIG-APISERVER-04); in the
   same window node02's etcd bootstrapping a cluster of its own (SIG-ETCD-08), then kube-apiserver
   with a client certificate etcd refuses (SIG-APISERVER-02) and node01 named by a host name etcd's
   certificate lacks (SIG-APISERVER-03), giving up 20 s into each run of its restart loop
   (SIG-APISERVER-05, read from the run before the one in progress).
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeproof import layout
from kubeproof.facts.etcd import parse_env_file
from tests.lab.control_plane import restart_at_once
from tests.lab.kubelet_faults import (
    KUBELET_BOOTSTRAP_FAULTS,
    KUBELET_CERT,
    READY_SECONDS,
    csr_names,
    embedded_pem_changed,
    kubectl,
    kubelets_bootstrapping,
    nodes_ready,
    throwaway_ca,
)
from tests.lab.suite_runner import SuiteRun, run_suites
from tests.lab.test_31_faults_core import resign
from tests.lab.test_41_faults_etcd_flannel import FLANNELD_OPTIONS, open_lab
from tests.lab.test_46_signatures import (
    CLUSTER_FILE,
    ETCD_SUITE,
    FAULT,
    FLANNEL_SUITES,
    Lab,
    _assert_clean,
    _assert_names_signature,
    _set_env,
    _suites,
)

pytestmark = pytest.mark.lab

WORKER_SUITES = ["suites/test_04_docker.py", "suites/test_05_flannel.py", "suites/test_08_node.py"]
NODE_SUITES = ["suites/test_04_docker.py", "suites/test_08_node.py"]
CONTROL_SUITES = ["suites/test_04_docker.py", "suites/test_07_master.py", "suites/test_08_node.py"]
DAEMON_JSON = "/etc/docker/daemon.json"
PROXY_CONFIG = layout.K8S_CFG + "/kube-proxy-config.yaml"
PROXY_KUBECONFIG = layout.K8S_CFG + "/kube-proxy.kubeconfig"
KCM_OPTIONS = layout.K8S_CFG + "/kube-controller-manager"
APISERVER_OPTIONS = layout.K8S_CFG + "/kube-apiserver"
NODE_SUITE = "suites/test_08_node.py"
ETCD_CA = layout.ETCD_SSL + "/ca.pem"
K8S_CA = layout.K8S_SSL + "/ca.pem"
UNKNOWN_AUTHORITY = "x509: certificate signed by unknown authority"
ETCD_CERT = layout.ETCD_SSL + "/server.pem"
ETCD_KEY = layout.ETCD_SSL + "/server-key.pem"
APISERVER_CERT = layout.K8S_SSL + "/apiserver.pem"
APISERVER_KEY = layout.K8S_SSL + "/apiserver-key.pem"
APISERVER = "kube-apiserver.service"
REFUSED = ("refused", "connect: connection refused")
BAD_CERTIFICATE = "remote error: tls: bad certificate"
GAVE_UP = "Error creating leases: error creating storage factory"
SCHEDULER = "kube-scheduler.service"
SCHEDULER_KUBECONFIG = layout.K8S_CFG + "/kube-scheduler.kubeconfig"
CLOSED_PORT = 6999  # on master01: asserted closed before the fault
K8S_CA_KEY = layout.K8S_SSL + "/ca-key.pem"
KCM = "kube-controller-manager.service"
SKIPPING_SIGNER = "Skipping CSR signer controller because no csr cert/key was specified"
FLANNELD_DROPIN_DIR = "/etc/systemd/system/flanneld.service.d"
FLANNELD_DROPIN = FLANNELD_DROPIN_DIR + "/" + FAULT + "-timeout.conf"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    yield from open_lab(Lab)


def _replace(text: bytes, old: str, new: str) -> bytes:
    decoded = text.decode()
    assert decoded.count(old) == 1, f"expected {old!r} once in:\n{decoded}"
    return decoded.replace(old, new).encode()


# ----------------------------------------------------------------------------- 1: docker, kubelet, kube-proxy


def test_worker_unit_faults_are_named_by_their_signatures(lab: Lab, tmp_path: Path) -> None:
    daemon_json = lab.connection("node02").read_file(DAEMON_JSON)  # None: the guide writes none
    proxy_config, proxy_mode = lab.file("node02", PROXY_CONFIG)
    assert not lab.ok("node02", "test -e /proc/net/ip_vs"), "this kernel has IP_VS: no fault to make"
    units = {name: lab.active_units(name) for name in ("node01", "node02")}
    assert {"docker.service", "cri-dockerd.service", "kubelet.service"} <= units["node01"]
    aside = layout.FLANNEL_DOCKER_OPTS + "." + FAULT
    try:
        # node01: docker (re)started while /run/flannel/docker is missing (flanneld never wrote it)
        lab.sh("node01", "systemctl stop docker.socket docker.service cri-dockerd.service")
        lab.sh("node01", shlex.join(["mv", layout.FLANNEL_DOCKER_OPTS, aside]))
        lab.connection("node01").run("systemctl start docker.service")  # systemd refuses
        # node01: kubelet restarted while cri-dockerd is stopped
        lab.sh("node01", "systemctl restart kubelet.service")
        # node02: bip in daemon.json beside the --bip of /run/flannel/docker
        settings = json.loads(daemon_json or b"{}")
        assert "bip" not in settings, settings
        lab.write("node02", DAEMON_JSON, json.dumps({**settings, "bip": "172.17.0.1/16"}) + "\n", 0o644)
        lab.connection("node02").run("systemctl restart docker.service", timeout=120)  # fails
        # node02: kube-proxy declared ipvs
        lab.write("node02", PROXY_CONFIG, _replace(proxy_config, "mode: iptables", "mode: ipvs"), proxy_mode)
        lab.sh("node02", "systemctl restart kube-proxy.service")
        lab.wait("systemd's line", lab.journal_has("node01", "docker.service", "Failed to load environment files"))
        lab.wait("kubelet's line", lab.journal_has("node01", "kubelet.service", "validate CRI v1 runtime API"))
        lab.wait("dockerd's line", lab.journal_has("node02", "docker.service", "specified both as a flag"))
        lab.wait("kube-proxy's line", lab.journal_has("node02", "kube-proxy.service", "can't use the IPVS proxier"))

        broken = _suites(tmp_path, "workers", NODE_SUITES)
        _assert_names_signature(
            broken,
            "DOCKER-01:service@node01",
            "SIG-DOCKER-03",
            "FLANNEL-04",
            "docker.service: Failed to load environment files: No such file or directory",
        )
        _assert_names_signature(
            broken, "NODE-04:unit@node01", "SIG-KUBELET-06", "NODE-04", "validate CRI v1 runtime API for endpoint"
        )
        _assert_names_signature(
            broken,
            "DOCKER-01:service@node02",
            "SIG-DOCKER-02",
            "DOCKER-02",
            "the following directives are specified both as a flag and in the configuration file: bip",
        )
        _assert_names_signature(broken, "NODE-09:unit@node02", "SIG-PROXY-01", "NODE-09", "can't use the IPVS proxier")
    finally:
        restore = shlex.join(["test", "-e", aside]) + " && " + shlex.join(["mv", aside, layout.FLANNEL_DOCKER_OPTS])
        lab.sh("node01", restore + " || true")
        if daemon_json is None:
            lab.sh("node02", shlex.join(["rm", "-f", DAEMON_JSON]))
        else:
            lab.write("node02", DAEMON_JSON, daemon_json, 0o644)
        lab.write("node02", PROXY_CONFIG, proxy_config, proxy_mode)
        for name in ("node01", "node02"):
            lab.sh(name, "systemctl reset-failed docker.service kubelet.service kube-proxy.service")
            lab.start_missing_units(name, units[name])
        lab.sh("node01", "systemctl restart kubelet.service")
        lab.sh("node02", "systemctl restart kube-proxy.service")
        lab.wait("every node Ready", nodes_ready(lab, len(lab.cluster.workers)), READY_SECONDS)
    lab.wait_until_suites_clean(tmp_path, "workers-healed", WORKER_SUITES)


# ----------------------------------------------------------------------------- 3: controller-manager, kubelet's CSR


def test_signing_ca_missing_and_kubelet_waiting_for_its_csr_are_named(lab: Lab, tmp_path: Path) -> None:
    kcm_options, kcm_mode = lab.file("master01", KCM_OPTIONS)
    missing_ca = layout.K8S_SSL + "/" + FAULT + "-ca.pem"
    assert not lab.ok("master01", "test -e " + shlex.quote(missing_ca))
    target = lab.sh("node01", shlex.join(["readlink", "-e", KUBELET_CERT])).strip()
    ssl_before = set(lab.sh("node01", shlex.join(["ls", layout.K8S_SSL])).split())
    csrs_before = csr_names(lab)
    aside = KUBELET_CERT + "." + FAULT
    docker_opts, docker_opts_mode = lab.file("node02", layout.FLANNEL_DOCKER_OPTS)
    units = lab.active_units("node02")
    assert {"docker.service", "cri-dockerd.service"} <= units
    scheduler_kubeconfig, scheduler_mode = lab.file("master01", SCHEDULER_KUBECONFIG)
    secure_port = f"server: https://{lab.host('master01').address}:6443"
    assert not lab.sh("master01", shlex.join(["ss", "-Hltn", f"sport = :{CLOSED_PORT}"])).strip()
    since = time.time()
    try:
        # master01: kube-scheduler's kubeconfig names a port nothing listens on; the old process is
        # killed, not stopped gracefully (control_plane.py), and its lease goes stale
        closed = _replace(scheduler_kubeconfig, secure_port, secure_port.replace(":6443", f":{CLOSED_PORT}"))
        lab.write("master01", SCHEDULER_KUBECONFIG, closed, scheduler_mode)
        lab.sh("master01", restart_at_once("kube-scheduler"))
        # master01: --cluster-signing-cert-file names a file that is not there
        broken_options = _replace(
            kcm_options, "--cluster-signing-cert-file=" + K8S_CA, "--cluster-signing-cert-file=" + missing_ca
        )
        lab.write("master01", KCM_OPTIONS, broken_options, kcm_mode)
        lab.sh("master01", "systemctl restart kube-controller-manager.service")
        # node01: kubelet without its client certificate bootstraps again; nothing approves its CSR
        lab.sh("node01", shlex.join(["mv", KUBELET_CERT, aside]) + " && systemctl restart kubelet.service")
        # node02: --bip=172.17.N.1 for --bip=172.17.N.1/24
        bip = re.search(rb"--bip=(\d+\.\d+\.\d+\.\d+)/\d+", docker_opts)
        assert bip, docker_opts
        without_length = docker_opts.replace(bip.group(0), b"--bip=" + bip.group(1))
        lab.write("node02", layout.FLANNEL_DOCKER_OPTS, without_length, docker_opts_mode)
        lab.connection("node02").run("systemctl restart docker.service", timeout=120)  # dockerd refuses
        lab.wait("dockerd's line", lab.journal_has("node02", "docker.service", "invalid CIDR address"))
        lab.wait("kubelet's line", lab.journal_has("node01", "kubelet.service", "Waiting for client certificate"))
        lab.wait(
            "kcm's line",
            lab.journal_has("master01", "kube-controller-manager.service", "error reading CA cert file"),
            120,
        )

        scheduler_refused = f"dial tcp {lab.host('master01').address}:{CLOSED_PORT}: connect: connection refused"
        lab.wait("kube-scheduler's line", lab.journal_has("master01", SCHEDULER, scheduler_refused, since))

        broken = _suites(tmp_path, "kcm-csr", CONTROL_SUITES)
        _assert_names_signature(broken, "MASTER-08@master01", "SIG-SCHED-01", "MASTER-03", scheduler_refused)
        # kcm crash-loops: between runs its unit row fails; while a new run waits for the leader
        # lease (its own, not released by the crash) the unit is active and the signing row fails
        keys = ("MASTER-09:unit@master01", "MASTER-09:signing@master01")
        failing = [key for key in keys if broken.outcome_of(key) == "failed"]
        assert failing, [(key, broken.outcome_of(key)) for key in keys]
        _assert_names_signature(broken, failing[0], "SIG-KCM-02", "MASTER-09", "error reading CA cert file")
        _assert_names_signature(
            broken, "NODE-05:node@node01", "SIG-KUBELET-01", "NODE-05", "Waiting for client certificate to be issued"
        )
        _assert_names_signature(
            broken,
            "DOCKER-01:service@node02",
            "SIG-DOCKER-01",
            "DOCKER-02",
            "failed to start daemon: Error initializing network controller: invalid CIDR address: "
            + bip.group(1).decode(),
        )

        # master01: no signing flags at all. kube-controller-manager runs, and once it holds the lease
        # it logs, once, that it skips the CSR signer (SIG-KCM-01, found in its whole run)
        unsigned = _replace(kcm_options, f"--cluster-signing-cert-file={K8S_CA} \\\n", "")
        unsigned = _replace(unsigned, f"--cluster-signing-key-file={K8S_CA_KEY} \\\n", "")
        since = time.time()
        lab.write("master01", KCM_OPTIONS, unsigned, kcm_mode)
        lab.sh("master01", restart_at_once("kube-controller-manager"))
        lab.wait("kcm skipping its signer", lab.journal_has("master01", KCM, SKIPPING_SIGNER, since), 90)
        unsigned_run = _master_suite(tmp_path, "kcm-unsigned", "MASTER-09")
        _assert_names_signature(unsigned_run, "MASTER-09:signing@master01", "SIG-KCM-01", "MASTER-09", SKIPPING_SIGNER)
    finally:
        lab.write("node02", layout.FLANNEL_DOCKER_OPTS, docker_opts, docker_opts_mode)
        lab.sh("node02", "systemctl reset-failed docker.service cri-dockerd.service")
        lab.start_missing_units("node02", units)
        lab.write("master01", KCM_OPTIONS, kcm_options, kcm_mode)
        lab.sh(
            "master01",
            "systemctl reset-failed kube-controller-manager.service; systemctl restart kube-controller-manager.service",
        )
        lab.write("master01", SCHEDULER_KUBECONFIG, scheduler_kubeconfig, scheduler_mode)
        lab.sh("master01", restart_at_once("kube-scheduler"))
        lab.sh("node01", "systemctl stop kubelet.service")
        lab.sh(
            "node01",
            shlex.join(["test", "-e", aside]) + " && " + shlex.join(["mv", "-f", aside, KUBELET_CERT]) + " || true",
        )
        # only what the fault left: files the waiting kubelet wrote, and its CSR
        new_files = set(lab.sh("node01", shlex.join(["ls", layout.K8S_SSL])).split()) - ssl_before
        if new_files:
            lab.sh("node01", shlex.join(["rm", "-f", *(layout.K8S_SSL + "/" + name for name in sorted(new_files))]))
        new_csrs = csr_names(lab) - csrs_before
        if new_csrs:
            kubectl(lab, "delete", "csr", *sorted(new_csrs))
        lab.sh("node01", "systemctl start kubelet.service")
        assert lab.sh("node01", shlex.join(["readlink", "-e", KUBELET_CERT])).strip() == target
        lab.wait("every node Ready", nodes_ready(lab, len(lab.cluster.workers)), READY_SECONDS)
    lab.wait_until_suites_clean(tmp_path, "kcm-csr-healed", CONTROL_SUITES)


# ----------------------------------------------------------------------------- 4: etcd, a certificate from another CA


def test_etcd_certificate_from_another_ca_is_named_by_its_signature(lab: Lab, tmp_path: Path) -> None:
    server_pem = layout.ETCD_SSL + "/server.pem"
    saved = lab.connection("node02").read_file(server_pem)
    assert saved
    mode = int(lab.sh("node02", "stat -c %a " + shlex.quote(server_pem)).strip(), 8)
    # the same key, subject, SANs and usages: only the CA that signed it is another
    foreign = resign(saved, *throwaway_ca())
    try:
        lab.write("node02", server_pem, foreign, mode)
        since = time.time()  # test_45's SAN fault left the same lines in these journals
        lab.sh("node02", "systemctl restart --no-block etcd.service")
        refused = lab.journal_has("node02", "etcd.service", "remote error: tls: bad certificate", since)
        lab.wait("node02 refused", refused)
        lab.wait("master01 refusing", lab.journal_has("master01", "etcd.service", UNKNOWN_AUTHORITY, since))

        broken = _suites(tmp_path, "etcd-foreign-ca", ETCD_SUITE)
        # node02's own journal: its peers refuse its certificate (they send "bad certificate": etcd 3.4.23
        # is built with Go 1.19, whose server sends no "unknown certificate authority" alert)
        _assert_names_signature(
            broken, "ETCD-06:state@node02", "SIG-ETCD-01", "PKI-E-03", "remote error: tls: bad certificate"
        )
        # the cluster row that names node02 silent shows what a member that answered says about it
        message = _assert_names_signature(broken, "ETCD-09@master01", "SIG-ETCD-02", "PKI-E-06", UNKNOWN_AUTHORITY)
        assert f"{lab.host('node02').etcd_name} did not answer" in message, message
    finally:
        lab.write("node02", server_pem, saved, mode)
        lab.restart_etcd_healthy("node02")
    _assert_clean(_suites(tmp_path, "etcd-foreign-ca-healed", ETCD_SUITE), "after the foreign CA fault")


# ----------------------------------------------------------------------------- 5: kubelet TLS bootstrapping
#
# Each case alone, so that the row each kubelet's failure follows from is its own fault's (a
# bootstrapping kubelet's NODE-05 links to any host's failed NODE-02 or NODE-03).

# node -> fault, and node -> the rows its NODE-05:node may follow from (None: a root cause itself). A
# kubelet refused at its CSR exits and systemd restarts it: caught between two runs its NODE-04:unit
# fails too, and its diagnosis names the signature as well.
KUBELET_CASES: dict[str, tuple[dict[str, str], dict[str, tuple[str | None, ...]]]] = {
    "token-and-ca": (
        {"node01": "token-unknown", "node02": "ca-foreign"},
        {"node01": ("NODE-02:token@node01",), "node02": ("NODE-02:ca@node02",)},
    ),
    "binding": ({"node01": "binding-missing"}, {"node01": ("NODE-03@master01", "NODE-04:unit@node01")}),
    "denied": ({"node02": "csr-denied"}, {"node02": (None, "NODE-04:unit@node02")}),
}


@pytest.mark.parametrize("case", list(KUBELET_CASES))
def test_kubelet_bootstrap_faults_are_named_by_their_signatures(lab: Lab, tmp_path: Path, case: str) -> None:
    faults, causes = KUBELET_CASES[case]
    with kubelets_bootstrapping(lab, faults, len(lab.cluster.workers)):
        broken = _suites(tmp_path, case, [NODE_SUITE])
        for node, fault in faults.items():
            spec = KUBELET_BOOTSTRAP_FAULTS[fault]
            message = _assert_names_signature(
                broken, f"NODE-05:node@{node}", spec.signature, spec.points_to, spec.own_line
            )
            failed = [cause for cause in causes[node] if cause and broken.outcome_of(cause) == "failed"]
            named = [cause for cause in failed if "caused by [{}] {}".format(*cause.split("@", 1)) in message]
            if not failed:
                assert None in causes[node] and "caused by" not in message, message[:600]
            else:
                assert len(named) == 1, (failed, message[:600])
            for cause in failed:
                if cause.startswith("NODE-04:unit@"):  # the kubelet's unit row shows its line as well
                    _assert_names_signature(broken, cause, spec.signature, spec.points_to, spec.own_line)
    lab.wait_until_suites_clean(tmp_path, case + "-healed", [NODE_SUITE])


# ----------------------------------------------------------------------------- 6: flanneld without an interface


def test_flanneld_faults_are_named_by_their_signatures(lab: Lab, tmp_path: Path) -> None:
    """node01's --iface naming no interface of the host (a copy of another host's options): flanneld
    reads its config, finds no interface and exits; docker (Requires=flanneld) and cri-dockerd stop
    with it and are started again after.

    node02's -etcd-cafile naming the Kubernetes CA: flanneld v0.28.10 retries the handshake without a
    word and logs it only when systemd cancels its start. The test gives that start 10 s (a drop-in;
    the guide's unit waits systemd's default 90 s). Each automatic restart of flanneld restarts docker
    too, which then fails on the dependency; the row reads the line in the run before the one in
    progress."""
    options, mode = lab.file("node01", FLANNELD_OPTIONS)
    iface = re.search(rb"--iface=(\S+?)(?=[\s\"])", options)
    assert iface, options
    missing = FAULT + "0"
    assert not lab.ok("node01", shlex.join(["ip", "link", "show", missing]))
    units = lab.active_units("node01")
    assert {"flanneld.service", "docker.service", "cri-dockerd.service"} <= units
    node02_options, node02_mode = lab.file("node02", FLANNELD_OPTIONS)
    node02_units = lab.active_units("node02")
    wrong_ca = _replace(node02_options, "-etcd-cafile=" + ETCD_CA, "-etcd-cafile=" + K8S_CA)
    since = time.time()
    try:
        lab.write("node01", FLANNELD_OPTIONS, options.replace(iface.group(0), b"--iface=" + missing.encode()), mode)
        lab.connection("node01").run("systemctl restart flanneld.service", timeout=120)  # flanneld exits
        lab.sh("node02", "mkdir -p " + shlex.quote(FLANNELD_DROPIN_DIR))
        lab.write("node02", FLANNELD_DROPIN, b"[Service]\nTimeoutStartSec=10\n", 0o644)
        lab.write("node02", FLANNELD_OPTIONS, wrong_ca, node02_mode)
        lab.sh("node02", "systemctl daemon-reload; systemctl restart --no-block flanneld.service")
        own_line = "Failed to find interface to use that matches the interfaces and/or regexes provided"
        lab.wait("flanneld's line", lab.journal_has("node01", "flanneld.service", own_line))
        handshake = "authentication handshake failed: tls: failed to verify certificate: " + UNKNOWN_AUTHORITY
        lab.wait("the handshake, at the timeout", lab.journal_has("node02", "flanneld.service", handshake, since), 60)

        broken = _suites(tmp_path, "flannel-iface", FLANNEL_SUITES)
        _assert_names_signature(broken, "FLANNEL-02@node01", "SIG-FLANNEL-03", "FLANNEL-05", own_line)
        _assert_names_signature(broken, "FLANNEL-02@node02", "SIG-FLANNEL-02", "FLANNEL-02", handshake)
    finally:
        lab.write("node01", FLANNELD_OPTIONS, options, mode)
        lab.sh("node01", "systemctl reset-failed flanneld.service; systemctl restart flanneld.service")
        lab.start_missing_units("node01", units)
        lab.write("node02", FLANNELD_OPTIONS, node02_options, node02_mode)
        remove = shlex.join(["rm", "-f", FLANNELD_DROPIN]) + "; rmdir " + shlex.quote(FLANNELD_DROPIN_DIR) + " || true"
        lab.sh("node02", remove + "; systemctl daemon-reload; systemctl reset-failed flanneld.service")
        lab.sh("node02", "systemctl restart flanneld.service", timeout=120)
        lab.start_missing_units("node02", node02_units)
        lab.wait("every node Ready", nodes_ready(lab, len(lab.cluster.workers)), READY_SECONDS)
    lab.wait_until_suites_clean(tmp_path, "flannel-iface-healed", WORKER_SUITES)


# ----------------------------------------------------------------------------- 7: kube-proxy's kubeconfig


def test_kube_proxy_refused_by_or_refusing_the_apiserver_is_named_by_its_signatures(lab: Lab, tmp_path: Path) -> None:
    """kube-proxy.kubeconfig as a hand deployment gets it wrong, kube-proxy restarted: on node01 it
    embeds a CA that did not sign the apiserver's certificate (kube-proxy refuses the apiserver:
    SIG-PROXY-03), on node02 its client certificate is signed by another CA (the apiserver refuses
    kube-proxy: SIG-PROXY-02). kube-proxy keeps running on the rules it had; the kubeconfig's rows
    fail and carry its journal."""
    saved = {name: lab.file(name, PROXY_KUBECONFIG) for name in ("node01", "node02")}
    ca_pem, ca_key_pem = throwaway_ca()
    faults = {
        "node01": embedded_pem_changed(saved["node01"][0], "clusters", "certificate-authority-data", lambda _: ca_pem),
        "node02": embedded_pem_changed(
            saved["node02"][0], "users", "client-certificate-data", lambda pem: resign(pem, ca_pem, ca_key_pem)
        ),
    }
    try:
        for name, data in faults.items():
            lab.write(name, PROXY_KUBECONFIG, data, saved[name][1])
            lab.sh(name, "systemctl restart kube-proxy.service")
        lab.wait("node01's kube-proxy line", lab.journal_has("node01", "kube-proxy.service", UNKNOWN_AUTHORITY))
        lab.wait("node02's kube-proxy line", lab.journal_has("node02", "kube-proxy.service", "Unauthorized"))

        broken = _suites(tmp_path, "kube-proxy-kubeconfig", [NODE_SUITE])
        _assert_names_signature(broken, "NODE-02:kube-proxy-ca@node01", "SIG-PROXY-03", "NODE-02", UNKNOWN_AUTHORITY)
        _assert_names_signature(
            broken, "NODE-02:kube-proxy-issuer@node02", "SIG-PROXY-02", "PKI-K-04", ": Unauthorized"
        )
    finally:
        for name, (data, mode) in saved.items():
            lab.write(name, PROXY_KUBECONFIG, data, mode)
            lab.sh(name, "systemctl restart kube-proxy.service")
    lab.wait_until_suites_clean(tmp_path, "kube-proxy-kubeconfig-healed", [NODE_SUITE])


# ----------------------------------------------------------------------------- 8: kube-apiserver and etcd


def test_apiserver_without_etcd_is_named_by_its_signatures(lab: Lab, tmp_path: Path) -> None:
    """Three faults in one window where kube-apiserver reaches no etcd (one heal for the three: it
    restarts the node agents and waits for them), node02's etcd stopped for (a) and (b):
    (a) --etcd-cafile set to the Kubernetes CA: unknown authority, connection refused;
    (b) node02's etcd bootstrapping a cluster of its own (SIG-ETCD-08): safe only while the apiserver
        reads nothing from etcd, else it would serve node02's empty store;
    (c) --etcd-certfile/--etcd-keyfile of the Kubernetes CA: etcd refuses the client certificate, and
        20 s into each run the apiserver gives up with "Error creating leases"; node02's etcd is back,
        and --etcd-servers names node01 by its host name, which etcd's certificate does not list. (A
        member serving a certificate without its own address was tried first: its peers refuse it, so it
        never serves clients, and the apiserver's handshakes with it only time out.)"""
    options, mode = lab.file("master01", APISERVER_OPTIONS)
    wrong_ca = _replace(options, "--etcd-cafile=" + ETCD_CA, "--etcd-cafile=" + K8S_CA)
    wrong_cert = _replace(options, "--etcd-certfile=" + ETCD_CERT, "--etcd-certfile=" + APISERVER_CERT)
    wrong_cert = _replace(wrong_cert, "--etcd-keyfile=" + ETCD_KEY, "--etcd-keyfile=" + APISERVER_KEY)
    solo_dir = ""
    try:
        lab.sh("node02", "systemctl stop etcd.service")  # two members keep the quorum
        _restart_apiserver_with(lab, wrong_ca, mode, ("unknown authority", UNKNOWN_AUTHORITY), REFUSED)
        # the apiserver never serves: MASTER-04:chain (no TLS handshake on 6443) carries its journal
        broken = _master_suite(tmp_path, "apiserver-etcd-ca")
        for signature, points_to, line in (
            ("SIG-APISERVER-01", "MASTER-03", UNKNOWN_AUTHORITY),
            ("SIG-APISERVER-04", "ETCD-07", REFUSED[1]),
        ):
            _assert_names_signature(broken, "MASTER-04:chain@master01", signature, points_to, line)

        solo_dir = _member_in_a_cluster_of_its_own(lab, tmp_path)

        _forget_solo_cluster(lab, solo_dir)
        solo_dir = ""
        lab.restart_etcd_healthy("node02")
        node01 = lab.host("node01").address
        by_name = _replace(wrong_cert, f"https://{node01}:2379", "https://node01:2379")  # /etc/hosts has it
        not_node01 = ("a name etcd's certificate lacks", "but wanted to match node01")
        since = _restart_apiserver_with(lab, by_name, mode, ("refused certificate", BAD_CERTIFICATE), not_node01)
        lab.wait("the apiserver giving up", lab.journal_has("master01", APISERVER, GAVE_UP, since), 60)
        broken = _master_suite(tmp_path, "apiserver-etcd-cert")
        for signature, points_to, line in (
            ("SIG-APISERVER-02", "MASTER-03", BAD_CERTIFICATE),
            ("SIG-APISERVER-03", "PKI-E-03", not_node01[1]),
            ("SIG-APISERVER-05", "ETCD-07", GAVE_UP),
        ):
            _assert_names_signature(broken, "MASTER-04:chain@master01", signature, points_to, line)
    finally:
        lab.write("master01", APISERVER_OPTIONS, options, mode)
        if solo_dir:
            _forget_solo_cluster(lab, solo_dir)
        lab.sh("node02", "systemctl start etcd.service")
        lab.wait_etcd_healthy("node02")
        lab.sh("master01", restart_at_once("kube-apiserver"), timeout=150)
        lab.wait("the apiserver ready", lambda: lab.ok("master01", "kubectl get --raw /readyz"), 120)
        for host in lab.cluster.workers:  # fresh informers, not client-go's backoff (test_42)
            lab.sh(host.name, "systemctl restart kubelet kube-proxy")
        lab.wait("every node Ready", nodes_ready(lab, len(lab.cluster.workers)), READY_SECONDS)
    lab.wait_until_suites_clean(tmp_path, "apiserver-etcd-healed", CONTROL_SUITES)


def _restart_apiserver_with(lab: Lab, options: bytes, mode: int, *lines: tuple[str, str]) -> float:
    """kube-apiserver restarted with these options; waits for each (what, text) line it logs."""
    since = time.time()
    lab.write("master01", APISERVER_OPTIONS, options, mode)
    lab.sh("master01", restart_at_once("kube-apiserver"), timeout=150)
    for what, text in lines:
        lab.wait(f"the apiserver's etcd client: {what}", lab.journal_has("master01", APISERVER, text, since))
    return since


def _master_suite(tmp_path: Path, name: str, rows: str = "MASTER-03 or MASTER-04") -> SuiteRun:
    """The master suite, only the rows the `-k` expression ``rows`` selects."""
    only = ("-p", "no:cacheprovider", "-k", rows)
    return run_suites(CLUSTER_FILE, ["suites/test_07_master.py"], *only, junit=tmp_path / f"{name}.xml")


def _member_in_a_cluster_of_its_own(lab: Lab, tmp_path: Path) -> str:
    """node02's etcd started alone on an empty data dir (ETCD_INITIAL_CLUSTER of itself only): it
    bootstraps a cluster of its own under the same name and peer URL. Its former peers still list it
    and dial it; both sides log "cluster ID mismatch". ETCD-09 names the member and its journal.
    Returns the fault's data dir (the member's own is untouched), stopped again after."""
    env, mode = lab.file("node02", layout.ETCD_ENV_FILE)
    data_dir = parse_env_file(env.decode()).get("ETCD_DATA_DIR", "")
    assert data_dir.startswith("/"), f"ETCD_DATA_DIR is not set in {layout.ETCD_ENV_FILE}"
    solo_dir = data_dir.rstrip("/") + "." + FAULT
    assert not lab.ok("node02", "test -e " + shlex.quote(solo_dir)), f"{solo_dir} exists before the fault"
    node02 = lab.host("node02")
    text = _set_env(env.decode(), "ETCD_DATA_DIR", solo_dir)
    text = _set_env(text, "ETCD_INITIAL_CLUSTER", f"{node02.etcd_name}=https://{node02.address}:2380")
    since = time.time()
    try:
        lab.write("node02", layout.ETCD_ENV_FILE, text.encode(), mode)
        lab.sh("node02", "systemctl start etcd.service")
        lab.wait("a cluster of its own", lambda: lab.ok("node02", lab.etcdctl("node02", "endpoint", "health")))
        lab.wait("its peers refused", lab.journal_has("node02", "etcd.service", "cluster ID mismatch", since))
        broken = _suites(tmp_path, "etcd-solo", ETCD_SUITE)
        message = _assert_names_signature(broken, "ETCD-09@master01", "SIG-ETCD-08", "ETCD-05", "cluster ID mismatch")
        assert "members belong to different clusters" in message and "node02 (etcd03):" in message, message
        for key in ("ETCD-05@node02", "ETCD-05:identical@master01"):  # the settings that caused it
            assert broken.outcome_of(key) == "failed", key
    finally:
        lab.write("node02", layout.ETCD_ENV_FILE, env, mode)
        lab.sh("node02", "systemctl stop etcd.service")
    return solo_dir


def _forget_solo_cluster(lab: Lab, solo_dir: str) -> None:
    assert solo_dir.endswith("." + FAULT)  # never anything but the fault's own directory
    lab.sh("node02", "systemctl stop etcd.service; " + shlex.join(["rm", "-rf", "--", solo_dir]))
