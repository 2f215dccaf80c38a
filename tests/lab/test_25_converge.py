"""apply converges the running cluster, not only its files (issue 10), proven on the lab.

Each test puts one disturbance into the converged lab for real, then: `plan` shows it (a file,
unit or API change of a phase, or a runtime drift line of the health gate), ONE `apply` repairs
it, the full suites (SMOKE included) are green, and a second `apply` makes zero changes. The
walls of the repairing and of the zero-change apply, and what plan showed, are recorded in
<state>/measurements.json under "converge_<name>".

Beside the lab's own units, files and bindings, the module puts things the installer did not
create (a unit on node01, a file in /opt/kubernetes/cfg, a clusterrolebinding) and asserts after
every apply that they are untouched.

Every disturbance is undone in a `finally` when apply did not undo it. One test at a time may be
run (`-k`), each well within the lab lock's ten minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from kubeproof import layout
from tests.lab.etcd_commands import etcdctl_command
from tests.lab.kubelet_faults import throwaway_ca
from tests.lab.suite_runner import REPO, SuiteRun, run_suites
from tests.lab.test_20_bootstrap import ApiClients, CliRun, api_clients, bootstrap, csr_body, record
from tests.lab.test_41_faults_etcd_flannel import Lab as FaultLab
from tests.lab.test_41_faults_etcd_flannel import open_lab

pytestmark = pytest.mark.lab

__all__ = ["api_clients"]  # the fixture, imported for the pending-CSR disturbance

STATE = Path(os.environ.get("KUBEPROOF_STATE", REPO / ".kubeproof"))
CLUSTER_FILE = STATE / "lab" / "cluster.yaml"
FOREIGN_UNIT = "kubeproof-test-foreign.service"
FOREIGN_UNIT_PATH = "/etc/systemd/system/" + FOREIGN_UNIT
FOREIGN_FILE = layout.K8S_CFG + "/kubeproof-test-foreign.conf"
FOREIGN_BINDING = "kubeproof-test-foreign"
# a line of plan/apply that is a change or a gate finding (not a summary, time or note)
# how long the members run with the swapped certificates (no quorum, flanneld cut off from etcd)
SWAPPED_SECONDS = float(os.environ.get("KUBEPROOF_TEST_SWAPPED_SECONDS", "20"))
FLANNEL_DRIFT = r"^\[gate\] flanneld node01: \[FLANNEL-07.*-> restart flanneld$"
PLAN_LINE = re.compile(r"^\[(?:\d/7 \w+|gate)\] (?!done:|local: note|\S+: note:|\d+ rows: )(.*)$", re.M)


# ----------------------------------------------------------------------------- the lab


class Lab(FaultLab):
    """test_41's lab helpers (sh, ok, wait, connection) and what the convergence tests add."""

    def sha(self, name: str, path: str) -> str:
        data = self.connection(name).read_file(path)
        return hashlib.sha256(data).hexdigest() if data is not None else "missing"

    def kubectl(self, *args: str) -> str:
        return self.sh(self.cluster.masters[0].name, shlex.join(["kubectl", *args]))

    def etcd_healthy(self) -> bool:
        member = self.cluster.etcd_members[0]
        addresses = [h.address for h in self.cluster.etcd_members]
        return self.ok(member.name, etcdctl_command(addresses, "endpoint", "health"), timeout=60)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    yield from open_lab(Lab)


@dataclass
class Foreign:
    """What the installer did not create, and how it looked before any apply."""

    lab: Lab
    file_sha: str
    unit_sha: str
    binding_version: str

    def assert_untouched(self) -> None:
        lab = self.lab
        assert lab.sha("node01", FOREIGN_FILE) == self.file_sha, f"{FOREIGN_FILE} was changed"
        state = lab.sh("node01", "systemctl is-active " + FOREIGN_UNIT + " || true").strip()
        assert state == "active", f"{FOREIGN_UNIT} is {state}"
        assert lab.sha("node01", FOREIGN_UNIT_PATH) == self.unit_sha, f"{FOREIGN_UNIT_PATH} was changed"
        binding = json.loads(lab.kubectl("get", "clusterrolebinding", FOREIGN_BINDING, "-o", "json"))
        assert binding["metadata"]["resourceVersion"] == self.binding_version, f"{FOREIGN_BINDING} was changed"


@pytest.fixture(scope="module")
def foreign(lab: Lab) -> Iterator[Foreign]:
    """A unit, a file in /opt/kubernetes/cfg and a binding kubeproof did not create (removed at the end)."""
    unit = "[Unit]\nDescription=kubeproof test: not the installer's\n[Service]\nExecStart=/bin/sleep infinity\n"
    lab.connection("node01").write_file(FOREIGN_UNIT_PATH, unit.encode(), 0o644)
    lab.sh("node01", "systemctl daemon-reload && systemctl start " + FOREIGN_UNIT)
    lab.connection("node01").write_file(FOREIGN_FILE, b"# a file of the operator's, not kubeproof's\n", 0o644)
    lab.kubectl("delete", "clusterrolebinding", FOREIGN_BINDING, "--ignore-not-found")
    lab.kubectl("create", "clusterrolebinding", FOREIGN_BINDING, "--clusterrole=view", "--user=kubeproof-test")
    binding = json.loads(lab.kubectl("get", "clusterrolebinding", FOREIGN_BINDING, "-o", "json"))
    state = Foreign(
        lab,
        lab.sha("node01", FOREIGN_FILE),
        lab.sha("node01", FOREIGN_UNIT_PATH),
        binding["metadata"]["resourceVersion"],
    )
    try:
        yield state
    finally:
        lab.sh(
            "node01",
            f"systemctl stop {FOREIGN_UNIT}; rm -f {FOREIGN_UNIT_PATH} {FOREIGN_FILE}; systemctl daemon-reload",
        )
        lab.kubectl("delete", "clusterrolebinding", FOREIGN_BINDING, "--ignore-not-found")


@pytest.fixture(scope="module")
def converged(lab: Lab, foreign: Foreign) -> None:
    """The lab converged and its health gate green before anything goes in."""
    run = bootstrap("apply", CLUSTER_FILE, "--yes")
    assert run.returncode == 0, "the lab must be converged and healthy first:\n" + run.output[-4000:]
    foreign.assert_untouched()
    times = re.search(r"^  times: (.*)$", run.output, re.M)
    record("converge_gate_on_converged_apply", {"wall_seconds": round(run.seconds, 1), "times": times and times[1]})


def plan_lines(run: CliRun) -> list[str]:
    return [m.group(0) for m in PLAN_LINE.finditer(run.output)]


def _assert_green(run: SuiteRun, when: str) -> None:
    bad = run.with_outcome("failed") + run.with_outcome("error")
    assert not bad, f"{when}: " + "\n".join(f"{o.key}: {o.outcome}\n{o.message[:800]}" for o in bad)
    assert run.outcomes, f"{when}: no results\n{run.output[-2000:]}"


def converge(name: str, foreign: Foreign, tmp_path: Path, shows: str | None) -> dict[str, Any]:
    """plan shows it; one apply repairs; the full suites are green; a second apply changes nothing."""
    plan = bootstrap("plan", CLUSTER_FILE)
    assert plan.returncode == 0, plan.output[-4000:]
    lines = plan_lines(plan)
    if shows is not None:
        assert re.search(shows, plan.output, re.M), f"plan does not show {shows!r}:\n" + "\n".join(lines)
    repair = bootstrap("apply", CLUSTER_FILE, "--yes")
    assert repair.returncode == 0, repair.output[-5000:]
    assert "health gate green" in repair.summary(), repair.output[-3000:]
    foreign.assert_untouched()
    suites = run_suites(CLUSTER_FILE, ["suites"], "-p", "no:cacheprovider", junit=tmp_path / f"{name}.xml")
    _assert_green(suites, f"the full suites after one apply ({name})")
    again = bootstrap("apply", CLUSTER_FILE, "--yes")
    assert again.returncode == 0, again.output[-4000:]
    assert again.changes == 0, f"a second apply after {name} changed something:\n" + again.output[-3000:]
    foreign.assert_untouched()
    figures = {
        "plan": lines,
        "plan_seconds": round(plan.seconds, 1),
        "repairing_apply_seconds": round(repair.seconds, 1),
        "repairing_apply_changes": repair.changes,
        "repairing_apply_lines": plan_lines(repair),
        "zero_change_apply_seconds": round(again.seconds, 1),
        "suites": suites.summary(),
        "suites_seconds": round(suites.seconds, 1),
    }
    record(f"converge_{name}", figures)
    print(json.dumps(figures, indent=2))
    return figures


# ----------------------------------------------------------------------------- disturbances


def test_a_managed_file_edited(lab: Lab, converged: None, foreign: Foreign, tmp_path: Path) -> None:
    path = layout.K8S_CFG + "/kube-proxy"
    original = lab.connection("node01").read_file(path)
    assert original is not None
    lab.connection("node01").write_file(path, original + b"# edited by hand\n", 0o644)
    try:
        figures = converge("managed_file_edited", foreign, tmp_path, rf"node01: update {path} \(changed since")
        assert any("restart kube-proxy.service" in line for line in figures["repairing_apply_lines"])
    finally:
        if lab.connection("node01").read_file(path) != original:
            lab.connection("node01").write_file(path, original, 0o644)
            lab.sh("node01", "systemctl restart kube-proxy")


def test_a_unit_stopped(lab: Lab, converged: None, foreign: Foreign, tmp_path: Path) -> None:
    lab.sh("node02", "systemctl stop kube-proxy")
    try:
        converge("unit_stopped", foreign, tmp_path, r"node02: start kube-proxy\.service")
    finally:
        lab.sh("node02", "systemctl start kube-proxy")


def test_the_bootstrap_binding_deleted(lab: Lab, converged: None, foreign: Foreign, tmp_path: Path) -> None:
    lab.kubectl("delete", "clusterrolebinding", "kubelet-bootstrap")
    try:
        converge("binding_deleted", foreign, tmp_path, r"create clusterrolebinding kubelet-bootstrap")
    finally:
        if not lab.ok(lab.cluster.masters[0].name, "kubectl get clusterrolebinding kubelet-bootstrap"):
            bootstrap("apply", CLUSTER_FILE, "--yes", "--phase", "nodes")


def test_etcd_certificates_swapped_and_restored(lab: Lab, converged: None, foreign: Foreign, tmp_path: Path) -> None:
    """The issue's own disturbance: the server certificates of every member swapped, etcd restarted,
    the originals put back, etcd restarted. Files and units are as written afterwards; what is not
    (flanneld's routes, a lost watch) is the gate's to find."""
    members = [h.name for h in lab.cluster.etcd_members]
    ssl = layout.ETCD_SSL
    cert, key = throwaway_ca()  # a certificate (and key) of no CA the cluster knows
    saved = {}
    for member in members:
        saved[member] = (
            lab.connection(member).read_file(ssl + "/server.pem"),
            lab.connection(member).read_file(ssl + "/server-key.pem"),
        )
        assert None not in saved[member]
    try:
        for member in members:
            lab.connection(member).write_file(ssl + "/server.pem", cert, 0o644)
            lab.connection(member).write_file(ssl + "/server-key.pem", key, 0o600)
        for member in members:
            lab.sh(member, "systemctl restart --no-block etcd")
        time.sleep(SWAPPED_SECONDS)
    finally:
        for member in members:
            original_cert, original_key = saved[member]
            assert original_cert is not None and original_key is not None
            lab.connection(member).write_file(ssl + "/server.pem", original_cert, 0o644)
            lab.connection(member).write_file(ssl + "/server-key.pem", original_key, 0o600)
        for member in members:
            lab.sh(member, "systemctl reset-failed etcd; systemctl restart --no-block etcd")
        lab.wait("etcd healthy after the certificates were restored", lab.etcd_healthy, 120)
    time.sleep(5)  # what a user sees a little after: flanneld and the apiserver have noticed
    converge("etcd_certificates_swapped", foreign, tmp_path, None)


def test_flannel_routes_deleted(lab: Lab, converged: None, foreign: Foreign, tmp_path: Path) -> None:
    before = lab.sh("node01", "ip route show dev flannel.1")
    assert before.strip(), "node01 has no route on flannel.1 to begin with"
    lab.sh(
        "node01",
        "ip route flush dev flannel.1; "
        'ip neigh show dev flannel.1 | while read ip _; do ip neigh del "$ip" dev flannel.1; done; '
        'bridge fdb show dev flannel.1 | while read mac _ ip _; do bridge fdb del "$mac" dev flannel.1 dst "$ip"; done',
    )
    try:
        converge(
            "flannel_routes_deleted",
            foreign,
            tmp_path,
            FLANNEL_DRIFT,
        )
    finally:
        if not lab.sh("node01", "ip route show dev flannel.1").strip():
            lab.sh("node01", "systemctl restart flanneld")


def test_docker0_readdressed(lab: Lab, converged: None, foreign: Foreign, tmp_path: Path) -> None:
    link = json.loads(lab.sh("node01", "ip -j addr show dev docker0"))[0]
    address = [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a.get("family") == "inet"]
    assert len(address) == 1, address
    lab.sh(
        "node01",
        shlex.join(["ip", "addr", "del", address[0], "dev", "docker0"]) + " && ip addr add 10.254.0.1/24 dev docker0",
    )
    try:
        converge("docker0_readdressed", foreign, tmp_path, r"node01: restart flanneld\.service and docker\.service")
    finally:
        now = lab.sh("node01", "ip -4 -o addr show dev docker0")
        if address[0] not in now:
            lab.sh("node01", "ip addr del 10.254.0.1/24 dev docker0; systemctl restart flanneld docker")


def test_a_pending_csr_of_a_cluster_node(
    lab: Lab, converged: None, foreign: Foreign, tmp_path: Path, api_clients: ApiClients
) -> None:
    name = "kubeproof-test-pending-node01"
    certificates = kubernetes.client.CertificatesV1Api(api_clients.admin)
    try:
        certificates.delete_certificate_signing_request(name)
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise
    body = csr_body(name, "system:node:node01")
    kubernetes.client.CertificatesV1Api(api_clients.bootstrap_token).create_certificate_signing_request(
        body  # type: ignore[arg-type]
    )
    try:
        converge("pending_csr", foreign, tmp_path, rf"approve pending CSR {name} of node01")
        status = certificates.read_certificate_signing_request(name).status
        assert status is not None and "Approved" in [c.type for c in status.conditions or []]
    finally:
        certificates.delete_certificate_signing_request(name)


def test_one_etcd_member_data_wiped(lab: Lab, converged: None, foreign: Foreign, tmp_path: Path) -> None:
    """node01's data dir lost (kept aside here, so nothing is lost): its peers know the member as
    bootstrapped, so it cannot start again on its own. apply replaces it (member remove, member
    add, ETCD_INITIAL_CLUSTER_STATE=existing, the broken data dir set aside) and touches neither
    of the other two members."""
    wiped = "node01"
    data = layout.ETCD_DATA_DIR
    backup = "/var/lib/etcd/kubeproof-test-wiped"
    others = [h.name for h in lab.cluster.etcd_members if h.name != wiped]
    started = {name: lab.sh(name, "systemctl show -p ActiveEnterTimestampMonotonic etcd").strip() for name in others}
    lab.sh(wiped, f"systemctl stop etcd && rm -rf {backup} && mv {data} {backup} && systemctl start --no-block etcd")
    try:
        lab.wait(f"etcd on {wiped} to fail", lambda: not lab.ok(wiped, "systemctl is-active --quiet etcd"), 60)
        converge("etcd_member_wiped", foreign, tmp_path, rf"^\[gate\] etcd {wiped}: \[ETCD-06:state\].*-> replace the")
        env = lab.sh(wiped, "grep ^ETCD_INITIAL_CLUSTER_STATE= " + layout.ETCD_ENV_FILE)
        assert env.strip() == 'ETCD_INITIAL_CLUSTER_STATE="existing"', env
        assert lab.sh(wiped, f"ls -d {data}.kubeproof-replaced-* | wc -l").strip() != "0", "the data dir was not kept"
        for name in others:  # the other two members were not restarted
            now = lab.sh(name, "systemctl show -p ActiveEnterTimestampMonotonic etcd").strip()
            assert now == started[name], f"etcd on {name} was restarted"
    finally:
        if not lab.etcd_healthy():
            lab.sh(wiped, "journalctl -u etcd -n 20 --no-pager -o cat >&2 || true")
        lab.sh(wiped, f"rm -rf {backup} {data}.kubeproof-replaced-*")
