"""Each stack of the version matrix (issue 13) live: lab up --stack NAME, apply, the full suites.

For every stack named in $KUBEPROOF_LAB_STACKS (comma-separated: guide, newest; today is the rest of
the lab tests): the lab is taken down and brought up with that stack, the installer converges it
from bare hosts, and the full suites are green with the skips differing from today's only where a
version says so (each such skip names the version). The binaries on the hosts print the versions
the lock file pins. On the guide stack three faults of its own era are made for real:
* kube-apiserver's insecure port bound to 0.0.0.0: MASTER-05 and MASTER-05:peer fail, and SEC-02
  fails under the hardened profile (under the seed profile, a finding that is reported);
* flannel's config changed through the etcd v2 API: FLANNEL-01:backend fails;
* the kubelet's cgroup driver (systemd) other than docker's (cgroupfs): the v1.19 kubelet refuses to
  start and NODE-04:unit's diagnosis names SIG-KUBELET-07 with the kubelet's own fatal line.
Afterwards the lab is taken down (test_90 brings up its own, later tests bring today's back).

The stacks are all but the default one unless $KUBEPROOF_LAB_STACKS names some (`none`: skipped,
saying so). Their first builds take minutes of both cores (guide: 7 min 23 s, newest: 12 min 36 s
from empty build directories on this machine), so they run in the background from the start of
the session at the lowest priority (tests.lab.stack_builds), and `lab up --stack` here waits for
them. Figures go to $KUBEPROOF_STATE/measurements.json under "stacks".
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from kubeproof.inventory import load_cluster_file
from kubeproof.lab.settings import LabSettings
from kubeproof.lab.stacks import STACKS, Stack
from kubeproof.transport import Transport
from tests.lab.control_plane import restart_at_once
from tests.lab.stack_builds import ENVIRONMENT_VARIABLE, NONE, build_walls, chosen_stacks
from tests.lab.suite_runner import REPO, SuiteRun, run_suites
from tests.lab.test_46_signatures import _assert_names_signature

pytestmark = pytest.mark.lab

CHOSEN = chosen_stacks()
MEASUREMENTS = Path(os.environ.get("KUBEPROOF_STATE", REPO / ".kubeproof")) / "measurements.json"
# today's skips (test_30): rows that do not apply on this machine whatever the versions
MACHINE_SKIPS = {"NODE-09:ipvs"}
KAS_OPTIONS = "/opt/kubernetes/cfg/kube-apiserver"
# the old kube-apiserver killed, not waited for (control_plane.py); 3 s for the new one to listen
RESTART_APISERVER_AT_ONCE = restart_at_once("kube-apiserver") + " && sleep 3"
KUBELET_CONFIG = "/opt/kubernetes/cfg/kubelet-config.yaml"
ETCDCTL_V2 = (
    "ETCDCTL_API=2 /opt/etcd/bin/etcdctl --ca-file=/opt/etcd/ssl/ca.pem --cert-file=/opt/etcd/ssl/server.pem"
    " --key-file=/opt/etcd/ssl/server-key.pem --endpoints="
)
FLANNEL_CONFIG_KEY = "/coreos.com/network/config"

if not CHOSEN:
    pytest.skip(f"no stack chosen: {ENVIRONMENT_VARIABLE}={NONE}", allow_module_level=True)


def _kubeproof(*argv: str, timeout: float = 1800) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "kubeproof", *argv], cwd=REPO, check=True, timeout=timeout)
    return time.monotonic() - started


def _record(stack: str, figures: dict[str, object]) -> None:
    data = json.loads(MEASUREMENTS.read_text()) if MEASUREMENTS.exists() else {}
    data.setdefault("stacks", {})[stack] = figures
    MEASUREMENTS.write_text(json.dumps(data, indent=2, sort_keys=True))


class StackLab:
    """The default lab brought up with one stack: its cluster file and SSH."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.cluster_file = LabSettings.create().cluster_file
        self.cluster = load_cluster_file(self.cluster_file)
        self.transport = Transport(self.cluster)
        self.healthy: SuiteRun | None = None

    def file(self, host: str, path: str) -> tuple[bytes, int]:
        data = self.transport.connection(self.cluster.host(host)).read_file(path)
        assert data is not None, f"{host}: {path} is missing before the fault"
        return data, int(self.sh(host, shlex.join(["stat", "-c", "%a", path])).strip(), 8)

    def write(self, host: str, path: str, data: bytes, mode: int) -> None:
        self.transport.connection(self.cluster.host(host)).write_file(path, data, mode)

    def etcdctl_v2(self, host: str) -> str:
        return f"{ETCDCTL_V2}https://{self.cluster.host(host).address}:2379"

    def sh(self, host: str, command: str, timeout: float = 120) -> str:
        result = self.transport.connection(self.cluster.host(host)).run(command, timeout=timeout)
        assert result.rc == 0, f"{host}$ {command}\n{result.stdout}{result.stderr}"
        return result.stdout

    def suites(self, tmp_path: Path, name: str, *paths: str, options: Sequence[str] = ()) -> SuiteRun:
        return run_suites(self.cluster_file, list(paths) or ["suites"], *options, junit=tmp_path / f"{name}.xml")

    def close(self) -> None:
        self.transport.close()


@pytest.fixture(scope="module", params=CHOSEN)
def stack_lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackLab]:
    name = str(request.param)
    assert name in STACKS and not STACKS[name].default, f"{ENVIRONMENT_VARIABLE}: {name!r} (guide or newest)"
    stack = STACKS[name]
    _kubeproof("lab", "down")
    build_and_up = _kubeproof("lab", "up", "--stack", name)
    bare_to_ready = _kubeproof("apply", "--cluster", str(LabSettings.create().cluster_file), "--yes")
    lab = StackLab(stack)
    healthy = lab.suites(tmp_path_factory.mktemp(name), "healthy")
    _record(
        name,
        {
            "versions": {
                "kubernetes": stack.kubernetes,
                "etcd": stack.etcd,
                "flannel": stack.flannel,
                "cri_dockerd": stack.cri_dockerd,
            },
            "lab_up_seconds_with_any_build": round(build_and_up, 1),
            # the background build's wall (built, or only checked when it was built before)
            "background_build_seconds": build_walls().get(name),
            "bare_to_ready_seconds": round(bare_to_ready, 1),
            "suite_seconds": round(healthy.seconds, 1),
            "outcomes": healthy.summary(),
        },
    )
    lab.healthy = healthy
    try:
        yield lab
    finally:
        lab.close()
        # nothing of this stack for the tests after this module (converged_cluster_file brings today's up)
        _kubeproof("lab", "down")


def test_the_stack_is_green_and_skips_only_where_a_version_says_so(stack_lab: StackLab) -> None:
    run = stack_lab.healthy
    assert run is not None
    bad = run.with_outcome("failed") + run.with_outcome("error")
    assert not bad, "\n\n".join(f"{o.key}: {o.outcome}\n{o.message[:1200]}" for o in bad)
    assert run.returncode == 0, run.output[-3000:]
    assert len(run.outcomes) > 300, run.summary()
    for skipped in run.with_outcome("skipped"):
        if skipped.key.split("@", 1)[0] in MACHINE_SKIPS:
            continue
        # a version skip names the release it read off the host ("kubelet v1.19.16 talks to docker ...")
        stack = stack_lab.stack
        named = (stack.kubernetes, f"etcd {stack.etcd}", stack.flannel)
        assert any(version in skipped.message for version in named), f"{skipped.key}: {skipped.message[:400]}"


def test_the_hosts_run_the_versions_the_lock_pins(stack_lab: StackLab) -> None:
    stack = stack_lab.stack
    master, worker = stack_lab.cluster.masters[0].name, stack_lab.cluster.workers[0].name
    printed = {
        "kube-apiserver": stack_lab.sh(master, "/opt/kubernetes/bin/kube-apiserver --version 2>/dev/null"),
        "kubelet": stack_lab.sh(worker, "/opt/kubernetes/bin/kubelet --version 2>/dev/null"),
        "etcd": stack_lab.sh(master, "/opt/etcd/bin/etcd --version | head -n1"),
        "flanneld": stack_lab.sh(worker, "/opt/kubernetes/bin/flanneld --version 2>&1"),
    }
    assert f"Kubernetes {stack.kubernetes}" in printed["kube-apiserver"], printed
    assert f"Kubernetes {stack.kubernetes}" in printed["kubelet"], printed
    assert f"etcd Version: {stack.etcd}" in printed["etcd"], printed
    assert stack.flannel in printed["flanneld"], printed
    if stack.cri_dockerd is None:
        assert stack_lab.sh(worker, "test -e /opt/kubernetes/bin/cri-dockerd || echo absent").strip() == "absent"
    else:
        cri = stack_lab.sh(worker, "/opt/kubernetes/bin/cri-dockerd --version 2>&1")
        assert f"cri-dockerd {stack.cri_dockerd}" in cri, cri


def _guide_only(stack_lab: StackLab) -> None:
    if stack_lab.stack.name != "guide":
        pytest.skip(f"not applicable: a fault of the guide's era (stack {stack_lab.stack.name} has no such release)")


def test_guide_insecure_port_on_the_network_fails_master_05_and_sec_02(stack_lab: StackLab, tmp_path: Path) -> None:
    _guide_only(stack_lab)
    master = stack_lab.cluster.masters[0].name
    saved, mode = stack_lab.file(master, KAS_OPTIONS)
    assert b"--insecure-bind-address=127.0.0.1" in saved
    try:
        exposed = saved.replace(b"--insecure-bind-address=127.0.0.1", b"--insecure-bind-address=0.0.0.0")
        stack_lab.write(master, KAS_OPTIONS, exposed, mode)
        stack_lab.sh(master, RESTART_APISERVER_AT_ONCE)
        run = stack_lab.suites(tmp_path, "insecure", "suites/test_07_master.py", "suites/test_11_security.py")
        assert run.outcome_of(f"MASTER-05@{master}") == "failed", run.summary()
        assert run.outcome_of(f"MASTER-05:peer@{master}") == "failed", run.summary()
        assert run.outcome_of(f"SEC-02@{master}") == "finding", run.summary()
        hardened = _security_hardened(stack_lab, tmp_path, "insecure-hardened")
        assert hardened.outcome_of(f"SEC-02@{master}") == "failed", hardened.summary()
    finally:
        stack_lab.write(master, KAS_OPTIONS, saved, mode)
        stack_lab.sh(master, RESTART_APISERVER_AT_ONCE)
    healed = stack_lab.suites(tmp_path, "insecure-healed", "suites/test_07_master.py")
    assert not healed.with_outcome("failed") + healed.with_outcome("error"), healed.output[-2000:]
    healed_hardened = _security_hardened(stack_lab, tmp_path, "insecure-healed-hardened")
    assert healed_hardened.outcome_of(f"SEC-02@{master}") == "passed", healed_hardened.summary()


def _security_hardened(stack_lab: StackLab, tmp_path: Path, name: str) -> SuiteRun:
    """SEC-02 is a finding: the hardened profile fails what the seed profile reports."""
    options = ("--profile", "hardened", "-k", "SEC-02")
    return stack_lab.suites(tmp_path, name, "suites/test_11_security.py", options=options)


def test_guide_flannel_config_changed_through_the_v2_api_fails_flannel_01(stack_lab: StackLab, tmp_path: Path) -> None:
    _guide_only(stack_lab)
    master = stack_lab.cluster.masters[0].name
    etcdctl = stack_lab.etcdctl_v2(master)
    saved = stack_lab.sh(master, f"{etcdctl} get {FLANNEL_CONFIG_KEY}").strip()
    document = json.loads(saved)
    assert document["Backend"]["Type"] == "vxlan", saved
    changed = json.dumps({**document, "Backend": {"Type": "udp"}})
    try:
        stack_lab.sh(master, f"{etcdctl} set {FLANNEL_CONFIG_KEY} {shlex.quote(changed)} >/dev/null")
        run = stack_lab.suites(tmp_path, "flannel-v2", "suites/test_05_flannel.py")
        assert run.outcome_of(f"FLANNEL-01:backend@{master}") == "failed", run.summary()
        assert "etcd v2 keys API" in run.output, run.output[-2000:]
    finally:
        stack_lab.sh(master, f"{etcdctl} set {FLANNEL_CONFIG_KEY} {shlex.quote(saved)} >/dev/null")
    healed = stack_lab.suites(tmp_path, "flannel-v2-healed", "suites/test_05_flannel.py")
    assert not healed.with_outcome("failed") + healed.with_outcome("error"), healed.output[-2000:]


def test_guide_kubelet_cgroup_driver_mismatch_is_named_by_its_signature(stack_lab: StackLab, tmp_path: Path) -> None:
    _guide_only(stack_lab)
    node = stack_lab.cluster.workers[-1].name
    saved, mode = stack_lab.file(node, KUBELET_CONFIG)
    assert b"cgroupDriver: cgroupfs" in saved
    try:
        stack_lab.write(node, KUBELET_CONFIG, saved.replace(b"cgroupDriver: cgroupfs", b"cgroupDriver: systemd"), mode)
        stack_lab.sh(node, "systemctl restart kubelet; sleep 8")
        run = stack_lab.suites(tmp_path, "cgroup-driver", "suites/test_08_node.py")
        _assert_names_signature(
            run,
            f"NODE-04:unit@{node}",
            "SIG-KUBELET-07",
            "NODE-04",
            'misconfiguration: kubelet cgroup driver: "systemd" is different from docker cgroup driver: "cgroupfs"',
        )
    finally:
        stack_lab.write(node, KUBELET_CONFIG, saved, mode)
        stack_lab.sh(node, "systemctl reset-failed kubelet; systemctl restart kubelet")
    deadline = time.monotonic() + 120
    while True:
        healed = stack_lab.suites(tmp_path, "cgroup-driver-healed", "suites/test_08_node.py")
        if not healed.with_outcome("failed") + healed.with_outcome("error") or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert not healed.with_outcome("failed") + healed.with_outcome("error"), healed.output[-2000:]
