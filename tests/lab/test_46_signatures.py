"""Known signatures proven on the lab: a real fault makes its unit log a known line, and the failing
row's diagnosis names that signature and shows the program's own line, not systemd's bookkeeping.

One fault per test, each undone in a `finally` from what was read before it went in:
1. etcd on node02 given `--name` in its ExecStart beside ETCD_NAME in its env file: etcd 3.4
   refuses to start (SIG-ETCD-07); ETCD-06:state@node02 fails;
2. etcd on node02 with an ETCD_NAME that ETCD_INITIAL_CLUSTER does not list (SIG-ETCD-04), on a
   data dir of its own: with its real data dir etcd would restart from its WAL, skip the check and
   publish the new name to the cluster; ETCD-06:state and ETCD-02 fail on node02;
3-5. etcd on node02 refusing to bootstrap, each on a data dir of its own: another member's name
   (SIG-ETCD-05), its data dir new while the cluster knows it as started (SIG-ETCD-06), two
   members given one peer URL (SIG-ETCD-09);
6. etcd.service naming a binary that is not there (SIG-ETCD-10, systemd's own line);
7. flanneld restarted on node02 while the network config is missing from etcd (SIG-FLANNEL-01).

Not here yet (tried on the lab): kube-scheduler pointed at a port nothing listens on did not lose
its lease within 90 s (SIG-SCHED-01).

One etcd member down at a time keeps the quorum. The cluster must be converged before (the
installer is not run here): the suites are green first, and again after each fault is undone.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubeproof import layout
from kubeproof.facts.etcd import parse_env_file, parse_unit_text
from kubeproof.facts.network import FLANNEL_CONFIG_KEY
from kubeproof.inventory import Cluster, HostSpec
from tests.lab.suite_runner import REPO, SuiteRun, run_suites
from tests.lab.test_41_faults_etcd_flannel import Lab as FaultLab
from tests.lab.test_41_faults_etcd_flannel import open_lab

pytestmark = pytest.mark.lab

STATE = Path(os.environ.get("KUBEPROOF_STATE", REPO / ".kubeproof"))
CLUSTER_FILE = STATE / "lab" / "cluster.yaml"
ETCD_SUITE = ["suites/test_03_etcd.py"]
FLANNEL_SUITES = ["suites/test_04_docker.py", "suites/test_05_flannel.py"]
HEAL_SECONDS = 120
FAULT = "kubeproof-fault"
ETCD_DROPIN_DIR = "/etc/systemd/system/etcd.service.d"
ETCD_DROPIN = ETCD_DROPIN_DIR + "/" + FAULT + "-signature.conf"
# what systemd says about a failing unit: a diagnosis must show the program's own line instead
BOOKKEEPING = ("Start request repeated too quickly", "Scheduled restart job", "Failed with result")


# ----------------------------------------------------------------------------- the lab


class Lab(FaultLab):
    """test_41's lab helpers (sh, ok, wait, etcdctl, file) and what the signature faults add."""

    def journal_has(self, name: str, unit: str, text: str, since: float | None = None) -> Callable[[], bool]:
        """Whether the unit's last 50 journal lines contain the text; given `since` (a time.time(): an
        earlier test's fault may have logged the same line), every line logged after it does."""
        argv = ["journalctl", "-u", unit, "--no-pager", "-o", "cat"]
        # the nodes share this machine's clock; with --since, -n would count from since, not from the end
        argv += ["-n", "50"] if since is None else ["--since", f"@{int(since)}"]
        return lambda: self.ok(name, shlex.join(argv) + " | grep -qF -- " + shlex.quote(text))

    def etcd_down(self, name: str) -> Callable[[], bool]:
        return lambda: not self.ok(name, "systemctl is-active --quiet etcd.service")

    def wait_until_suites_clean(self, tmp_path: Path, name: str, paths: list[str]) -> None:
        """Runs of the suites until one is clean (a healed unit's dependents take a while): else the last's rows."""
        deadline = time.monotonic() + HEAL_SECONDS
        attempt = 0
        while True:
            attempt += 1
            run = _suites(tmp_path, f"{name}-{attempt}", paths)
            bad = run.with_outcome("failed") + run.with_outcome("error")
            if not bad or time.monotonic() >= deadline:
                break
            time.sleep(5)
        _assert_clean(run, f"{HEAL_SECONDS} s after the fault was undone")

    @contextmanager
    def etcd_started_as(self, name: str, argv: list[str]) -> Iterator[None]:
        """etcd.service on a member restarted with another ExecStart (a drop-in); undone after."""
        dropin = "[Service]\nExecStart=\nExecStart=" + shlex.join(argv) + "\n"
        try:
            self.sh(name, "mkdir -p " + shlex.quote(ETCD_DROPIN_DIR))
            self.connection(name).write_file(ETCD_DROPIN, dropin.encode(), 0o644)
            self.sh(name, "systemctl daemon-reload")
            self.connection(name).run("systemctl restart etcd.service", timeout=120)  # expected to fail
            self.wait(f"etcd on {name} to be down", self.etcd_down(name))
            yield
        finally:
            rm = shlex.join(["rm", "-f", ETCD_DROPIN]) + "; rmdir " + shlex.quote(ETCD_DROPIN_DIR) + " || true"
            self.sh(name, rm)
            self.restart_etcd_healthy(name)

    def restart_etcd_healthy(self, name: str) -> None:
        self.sh(name, "systemctl daemon-reload; systemctl reset-failed etcd.service; systemctl restart etcd.service")
        self.wait(f"etcd on {name} to be healthy", lambda: self.ok(name, self.etcdctl(name, "endpoint", "health")))


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    yield from open_lab(Lab)


def _suites(tmp_path: Path, name: str, paths: list[str]) -> SuiteRun:
    return run_suites(CLUSTER_FILE, paths, "-p", "no:cacheprovider", junit=tmp_path / f"{name}.xml")


def _assert_clean(run: SuiteRun, when: str) -> None:
    bad = run.with_outcome("failed") + run.with_outcome("error")
    assert not bad, f"{when}: " + "\n".join(f"{o.key}: {o.outcome}\n{o.message[:800]}" for o in bad)
    assert run.outcomes, f"{when}: no results\n{run.output[-2000:]}"


@pytest.fixture(scope="module")
def healthy_before(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    run = _suites(tmp_path_factory.mktemp("before"), "before", ETCD_SUITE)
    _assert_clean(run, "the lab must be green before faults go in (converge it with kubeproof apply)")
    return run


def _assert_names_signature(run: SuiteRun, key: str, signature: str, points_to: str, own_line: str) -> str:
    """The row failed with its own ID, its diagnosis names the signature and shows the program's line."""
    found = [o for o in run.outcomes if o.key == key]
    assert found, f"no result for {key}: {run.summary()}"
    outcome = found[0]
    assert outcome.outcome == "failed", f"{key}: expected failed, got {outcome.outcome}\n{outcome.message[:1500]}"
    message = outcome.message
    assert f"[{key.split('@', 1)[0]}]" in message, message[:500]
    assert f"matched {signature} → points to {points_to}:" in message, message
    assert own_line in message, message
    assert not any(text in message for text in BOOKKEEPING), message
    return message


def _set_env(text: str, name: str, value: str) -> str:
    replaced, count = re.subn(rf"^{name}=.*$", f'{name}="{value}"', text, flags=re.M)
    assert count == 1, f"{name} not in the env file"
    return replaced


# ----------------------------------------------------------------------------- 1: etcd given a setting twice


def test_etcd_setting_given_twice_is_named_by_its_signature(lab: Lab, healthy_before: SuiteRun, tmp_path: Path) -> None:
    node02 = lab.host("node02")
    assert node02.etcd_name
    env, _ = lab.file("node02", layout.ETCD_ENV_FILE)
    assert "ETCD_NAME" in parse_env_file(env.decode()), "the env file must set ETCD_NAME for this fault"
    argv = shlex.split(parse_unit_text(lab.sh("node02", "systemctl cat etcd.service")).exec_start)
    assert not any(arg.startswith("--name") for arg in argv), f"etcd.service already passes --name: {argv}"
    with lab.etcd_started_as("node02", [*argv, "--name=" + node02.etcd_name]):
        lab.wait("etcd's fatal line", lab.journal_has("node02", "etcd.service", "is shadowed by corresponding"))
        broken = _suites(tmp_path, "etcd-shadowed", ETCD_SUITE)
        _assert_names_signature(
            broken,
            "ETCD-06:state@node02",
            "SIG-ETCD-07",
            "ETCD-06",
            'conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag',
        )
    _assert_clean(_suites(tmp_path, "etcd-shadowed-healed", ETCD_SUITE), "after the --name fault")


# ----------------------------------------------------------------------------- 2-5: etcd refusing to bootstrap
#
# Each one a member (node02's) started as a hand deployment gets it wrong, on a data dir of its own
# (with its real one etcd restarts from its WAL and skips the bootstrap checks): etcd exits, the
# unit's row fails, and its diagnosis names the signature with etcd's own line.


@dataclass(frozen=True)
class EtcdBootstrapFault:
    signature: str
    points_to: str
    own_line: str  # a piece of etcd's fatal line, in the journal and in the row's diagnosis
    settings: Callable[[Cluster, HostSpec], dict[str, str]]  # env file settings, beside ETCD_DATA_DIR
    also_failed: tuple[str, ...] = ()  # the row the signature points to, where it fails on its own


def _other_member(cluster: Cluster, host: HostSpec) -> HostSpec:
    return next(h for h in cluster.etcd_members if h.name != host.name)


def _unlisted_name(cluster: Cluster, host: HostSpec) -> dict[str, str]:
    return {"ETCD_NAME": FAULT}


def _another_members_name(cluster: Cluster, host: HostSpec) -> dict[str, str]:
    # the guide's copy of the master's env file to a node, with ETCD_NAME left at etcd01
    return {"ETCD_NAME": str(_other_member(cluster, host).etcd_name)}


def _fresh_data_dir_only(cluster: Cluster, host: HostSpec) -> dict[str, str]:
    # the member's data dir wiped (or moved) and etcd started again as for a new cluster
    return {}


def _duplicate_peer_url(cluster: Cluster, host: HostSpec) -> dict[str, str]:
    # another member's entry given this member's peer URL (a copy-paste slip)
    other = _other_member(cluster, host)
    entries = [
        f"{h.etcd_name}=https://{(host if h.name == other.name else h).address}:2380" for h in cluster.etcd_members
    ]
    return {"ETCD_INITIAL_CLUSTER": ",".join(entries)}


ETCD_BOOTSTRAP_FAULTS = {
    "unlisted-name": EtcdBootstrapFault(
        "SIG-ETCD-04",
        "ETCD-02",
        f'couldn\'t find local name "{FAULT}" in the initial cluster configuration',
        _unlisted_name,
        also_failed=("ETCD-02@node02",),
    ),
    "another-members-name": EtcdBootstrapFault(
        "SIG-ETCD-05", "ETCD-02", "but missing from --initial-advertise-peer-urls=", _another_members_name
    ),
    "already-bootstrapped": EtcdBootstrapFault(
        "SIG-ETCD-06", "ETCD-08", "has already been bootstrapped", _fresh_data_dir_only
    ),
    "duplicate-peer-url": EtcdBootstrapFault("SIG-ETCD-09", "ETCD-05", "has duplicate url", _duplicate_peer_url),
}


@pytest.mark.parametrize("fault", list(ETCD_BOOTSTRAP_FAULTS))
def test_etcd_refusing_to_bootstrap_is_named_by_its_signature(
    lab: Lab, healthy_before: SuiteRun, tmp_path: Path, fault: str
) -> None:
    spec = ETCD_BOOTSTRAP_FAULTS[fault]
    node02 = lab.host("node02")
    env, mode = lab.file("node02", layout.ETCD_ENV_FILE)
    data_dir = parse_env_file(env.decode()).get("ETCD_DATA_DIR", "")
    assert data_dir.startswith("/"), f"ETCD_DATA_DIR is not set in {layout.ETCD_ENV_FILE}"
    fault_dir = data_dir.rstrip("/") + "." + FAULT
    assert not lab.ok("node02", "test -e " + shlex.quote(fault_dir)), f"{fault_dir} exists before the fault"
    text = _set_env(env.decode(), "ETCD_DATA_DIR", fault_dir)
    for name, value in spec.settings(lab.cluster, node02).items():
        text = _set_env(text, name, value)
    try:
        lab.connection("node02").write_file(layout.ETCD_ENV_FILE, text.encode(), mode)
        lab.connection("node02").run("systemctl restart etcd.service", timeout=120)  # fails at bootstrap
        lab.wait(f"etcd on node02 to refuse ({fault})", lab.etcd_down("node02"))
        lab.wait("etcd's fatal line", lab.journal_has("node02", "etcd.service", spec.own_line))

        broken = _suites(tmp_path, fault, ETCD_SUITE)
        _assert_names_signature(broken, "ETCD-06:state@node02", spec.signature, spec.points_to, spec.own_line)
        for key in spec.also_failed:
            assert broken.outcome_of(key) == "failed", key
    finally:
        lab.connection("node02").write_file(layout.ETCD_ENV_FILE, env, mode)
        assert fault_dir.endswith("." + FAULT)  # never anything but the fault's own directory
        lab.sh("node02", shlex.join(["rm", "-rf", "--", fault_dir]))
        lab.restart_etcd_healthy("node02")
    _assert_clean(_suites(tmp_path, fault + "-healed", ETCD_SUITE), f"after the {fault} fault")


# ----------------------------------------------------------------------------- 6: etcd's binary missing


def test_etcd_binary_systemd_cannot_execute_is_named_by_its_signature(
    lab: Lab, healthy_before: SuiteRun, tmp_path: Path
) -> None:
    argv = shlex.split(parse_unit_text(lab.sh("node02", "systemctl cat etcd.service")).exec_start)
    missing = argv[0] + "." + FAULT  # the binary ExecStart names is not there (not copied, or a typo)
    assert not lab.ok("node02", "test -e " + shlex.quote(missing))
    with lab.etcd_started_as("node02", [missing, *argv[1:]]):
        broken = _suites(tmp_path, "etcd-binary", ETCD_SUITE)
        _assert_names_signature(broken, "ETCD-06:state@node02", "SIG-ETCD-10", "ETCD-01", missing)
    _assert_clean(_suites(tmp_path, "etcd-binary-healed", ETCD_SUITE), "after the missing-binary fault")


# ----------------------------------------------------------------------------- 7: flanneld without its config


def test_flanneld_without_its_network_config_is_named_by_its_signature(
    lab: Lab, healthy_before: SuiteRun, tmp_path: Path
) -> None:
    """The guide's order broken: flanneld (re)started on node02 before the network config is in etcd.

    flanneld retries forever without writing subnet.env; docker is kept stopped (it would wait on
    flanneld). The other workers' flanneld keep running on the config they read at their start.
    """
    config = lab.sh("master01", lab.etcdctl("master01", "get", "--print-value-only", FLANNEL_CONFIG_KEY)).strip()
    assert json.loads(config)["Network"], config
    env_files = (layout.FLANNEL_SUBNET_ENV, layout.FLANNEL_DOCKER_OPTS)
    aside = " && ".join(shlex.join(["mv", path, path + "." + FAULT]) for path in env_files)
    try:
        lab.sh("node02", "systemctl stop docker.socket docker.service flanneld.service && " + aside)
        lab.sh("master01", lab.etcdctl("master01", "del", FLANNEL_CONFIG_KEY))
        lab.sh("node02", "systemctl start --no-block flanneld.service")  # Type=notify: it never becomes ready
        lab.wait("flanneld's line", lab.journal_has("node02", "flanneld.service", "Couldn't fetch network config"))

        broken = _suites(tmp_path, "flannel-config", FLANNEL_SUITES)
        own_line = "Couldn't fetch network config: "
        _assert_names_signature(broken, "FLANNEL-02@node02", "SIG-FLANNEL-01", "FLANNEL-01", own_line)
        _assert_names_signature(broken, "FLANNEL-04:lease@node02", "SIG-FLANNEL-01", "FLANNEL-01", own_line)
        # the ID the signature points to fails on its own row
        assert broken.outcome_of("FLANNEL-01@master01") == "failed"
    finally:
        lab.sh("master01", lab.etcdctl("master01", "put", FLANNEL_CONFIG_KEY, config))
        lab.sh("node02", "systemctl restart flanneld.service && systemctl start docker.socket docker.service")
        lab.sh("node02", shlex.join(["rm", "-f", *(path + "." + FAULT for path in env_files)]))
    lab.wait_until_suites_clean(tmp_path, "flannel-config-healed", FLANNEL_SUITES)
