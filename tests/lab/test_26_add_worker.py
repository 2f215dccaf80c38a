"""A worker added to the cluster file joins with one apply (issue 10, "Add a worker").

`kubeproof lab up --workers 3` adds node03 (192.168.61.23, a worker without an etcd member) and
lists it in the cluster file; one `kubeproof apply` prepares it, gives it docker, flannel, a kubelet
that bootstraps over TLS (its own CSR approved) and kube-proxy; the full suites are then green with
node03 in every cross-node check. Nothing on the other hosts restarts: their units keep their
systemd invocation IDs (the installer only rewrites files whose content changes, such as
/etc/hosts). Then node03 leaves the way an operator removes a worker (kubectl delete node, its
flannel lease deleted from etcd) and `lab up --workers 2` removes its container; the suites are
green again with two workers.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kubeproof.facts.network import FLANNEL_SUBNETS_PREFIX
from kubeproof.inventory import load_cluster_file
from kubeproof.lab.settings import LabSettings
from kubeproof.transport import Transport
from tests.lab.suite_runner import REPO, SuiteRun, run_suites
from tests.lab.test_20_bootstrap import bootstrap, kubectl_on_master, record
from tests.lab.test_41_faults_etcd_flannel import Lab

pytestmark = pytest.mark.lab

NEW = "node03"
NEW_ADDRESS = "192.168.61.23"
ORIGINAL = ("master01", "node01", "node02")
UNITS = (
    "etcd", "docker", "flanneld", "kubelet", "kube-proxy", "cri-dockerd",
    "kube-apiserver", "kube-controller-manager", "kube-scheduler",
)  # fmt: skip
READY_SECONDS = 180


def _lab_up(workers: int) -> None:
    command = [sys.executable, "-m", "kubeproof", "lab", "up", "--workers", str(workers)]
    subprocess.run(command, cwd=REPO, check=True, timeout=600)


def _invocations(cluster_file: Path) -> dict[str, str]:
    """host/unit -> systemd InvocationID of every guide unit on the original hosts (empty: not there)."""
    cluster = load_cluster_file(cluster_file)
    transport = Transport(cluster)
    found = {}
    try:
        for host in ORIGINAL:
            names = [unit + ".service" for unit in UNITS]
            result = transport.connection(host).run_argv(["systemctl", "show", "-p", "Id,InvocationID", *names])
            for block in result.stdout.strip().split("\n\n"):
                fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
                if fields.get("InvocationID"):
                    found[f"{host}/{fields['Id']}"] = fields["InvocationID"]
    finally:
        transport.close()
    return found


def _bad(run: SuiteRun) -> str:
    bad = run.with_outcome("failed") + run.with_outcome("error")
    return "\n".join(f"{o.key}: {o.outcome}\n{o.message[:600]}" for o in bad)


def _remove_worker(lab_settings: LabSettings) -> None:
    """What an operator does to take a worker out: the Node object, the flannel lease, the host."""
    cluster_file = lab_settings.cluster_file
    cluster = load_cluster_file(cluster_file)
    if NEW in [h.name for h in cluster.hosts]:
        lab = Lab(cluster, Transport(cluster))
        try:
            lab.sh("master01", "kubectl delete node " + shlex.quote(NEW) + " --ignore-not-found --wait=false")
            for lease in lab.leases("master01"):
                if lease.public_ip == NEW_ADDRESS:
                    assert lease.key.startswith(FLANNEL_SUBNETS_PREFIX), lease.key
                    lab.sh("master01", lab.etcdctl("master01", "del", lease.key))
        finally:
            lab.transport.close()
    _lab_up(2)


def test_node03_joins_with_one_apply_and_the_suites_include_it(lab_settings: LabSettings, tmp_path: Path) -> None:
    cluster_file = lab_settings.cluster_file
    assert cluster_file.exists(), "the lab is not up"
    before = _invocations(cluster_file)
    assert before, "no guide unit found on the original hosts"
    try:
        _lab_up(3)
        assert NEW in [h.name for h in load_cluster_file(cluster_file).hosts]
        started = time.monotonic()
        run = bootstrap("apply", cluster_file, "--yes")
        print(run.output[-5000:])
        assert run.returncode == 0, run.output[-4000:]
        nodes = json.loads(kubectl_on_master(cluster_file, "get", "nodes", "-o", "json"))["items"]
        ready = {
            n["metadata"]["name"]: any(
                c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]
            )
            for n in nodes
        }
        assert ready.get(NEW) is True, ready
        record("add_worker_apply_to_ready_seconds", round(time.monotonic() - started, 1))

        # nothing on the other hosts restarted: the same systemd invocation of every unit
        assert _invocations(cluster_file) == before

        full = run_suites(cluster_file, ["suites"], junit=tmp_path / "three-workers.xml")
        assert not _bad(full), _bad(full)
        on_new = {o.invariant for o in full.outcomes if o.host == NEW and o.outcome == "passed"}
        for invariant in ("ENV-05", "DOCKER-02", "FLANNEL-06", "FLANNEL-07", "NODE-05", "NODE-09", "SMOKE-04"):
            assert invariant in on_new, (invariant, sorted(on_new))
        # the cross-node rows of the original workers include node03 (what they saw says so)
        flannel_routes = [o for o in full.outcomes if o.key.startswith("FLANNEL-07") and o.host == "node01"]
        assert flannel_routes and all(o.outcome == "passed" for o in flannel_routes)
        record("add_worker_full_suite_seconds", round(full.seconds, 1))
    finally:
        _remove_worker(lab_settings)
    assert NEW not in [h.name for h in load_cluster_file(cluster_file).hosts]
    again = run_suites(cluster_file, ["suites"], junit=tmp_path / "two-workers.xml")
    deadline = time.monotonic() + READY_SECONDS
    while _bad(again) and time.monotonic() < deadline:  # the node lifecycle controller forgets node03
        time.sleep(5)
        again = run_suites(cluster_file, ["suites"], junit=tmp_path / "two-workers-again.xml")
    assert not _bad(again), _bad(again)
