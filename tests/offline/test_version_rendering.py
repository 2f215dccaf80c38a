"""The installer renders what each release takes, keyed on the versions the artifacts report.

* Today's stack (v1.34.4, etcd 3.4.23, flannel v0.28.10, cri-dockerd) renders byte for byte what
  it rendered before the version gates: ``data/today_rendering_v1.34.4.json`` was written by the
  renderers of commit 54626db from the flag sets today's binaries print
  (``data/binaries_v1.34.4.json``, `<binary> --help` run on the lab's artifacts).
* v1.19.16 (the guide's era) and v1.37.2 (the newest) flag sets are the names their sources
  register (k8s.io/kubernetes@v1.19.16: cmd/kube-apiserver/app/options/options.go,
  pkg/kubeapiserver/options/*.go, pkg/kubelet/config/flags.go, cmd/kube-scheduler/app/options/
  insecure_serving.go, cmd/kube-controller-manager/app/options/options.go), trimmed to the
  flags the renderers ask for: a missing required flag would stop the run, so the test also
  proves every flag rendered for v1.19 exists there.
* etcd: every setting the env file and unit carry is registered by 3.3.27 (etcdmain/config.go)
  and by server v3.6.4 (embed/config.go, where --enable-v2 no longer is); etcdctl's v2 flags from
  3.3.27 etcdctl/ctlv2/ctl.go, its API switch from etcdctl/main.go.
* kubelet v1.37.2 refuses cgroup v1 in pkg/kubelet/apis/config/validation/validation_linux.go
  (`kc.FailCgroupV1 && isCgroup1`), defaulted true in v1beta1/defaults.go.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from kubeproof.bootstrap import render, render_nodes
from kubeproof.bootstrap.artifacts import BinaryInfo
from kubeproof.bootstrap.errors import BootstrapError
from kubeproof.inventory import Cluster, parse_cluster_text
from kubeproof.versions import Version
from tests.offline.test_bootstrap_render import CLUSTER_YAML

DATA = Path(__file__).parent / "data"
TODAY = Version(1, 34, 4)
ETCD_34 = Version(3, 4, 23)
FLANNEL_TODAY = Version(0, 28, 10)


@pytest.fixture
def cluster() -> Cluster:
    return parse_cluster_text(CLUSTER_YAML + "images: {pause: kubeproof/pause:3.10, test: kubeproof/testbox:1}\n")


def today_infos() -> dict[str, BinaryInfo]:
    data = json.loads((DATA / "binaries_v1.34.4.json").read_text())
    return {
        key: BinaryInfo(key, value["version"], frozenset(value["flags"]), frozenset(value["admission_plugins"]))
        for key, value in data.items()
    }


COMMON_1_19 = {"logtostderr", "v", "kubeconfig", "bind-address", "leader-elect"}
FLAGS_1_19 = {
    "kube-apiserver": COMMON_1_19
    | {
        "etcd-servers",
        "etcd-cafile",
        "etcd-certfile",
        "etcd-keyfile",
        "secure-port",
        "advertise-address",
        "allow-privileged",
        "service-cluster-ip-range",
        "enable-admission-plugins",
        "authorization-mode",
        "enable-bootstrap-token-auth",
        "token-auth-file",
        "service-node-port-range",
        "kubelet-client-certificate",
        "kubelet-client-key",
        "tls-cert-file",
        "tls-private-key-file",
        "client-ca-file",
        "service-account-key-file",
        "service-account-signing-key-file",  # options.go:249 (required only from v1.20)
        "service-account-issuer",  # pkg/kubeapiserver/options/authentication.go:289
        "insecure-bind-address",
        "insecure-port",
    },
    "kube-controller-manager": COMMON_1_19
    | {
        "authentication-kubeconfig",
        "authorization-kubeconfig",
        "address",  # options.go:231 AddUnqualifiedFlags: --address/--port (0.0.0.0:10252)
        "port",
        "service-cluster-ip-range",
        "cluster-name",
        "cluster-signing-cert-file",
        "cluster-signing-key-file",
        "cluster-signing-duration",
        "experimental-cluster-signing-duration",
        "root-ca-file",
        "service-account-private-key-file",
        "use-service-account-credentials",
    },
    "kube-scheduler": COMMON_1_19
    | {"authentication-kubeconfig", "authorization-kubeconfig", "address", "port"},  # insecure_serving.go:47,50
    "kubelet": COMMON_1_19
    | {
        "hostname-override",
        "node-ip",
        "bootstrap-kubeconfig",
        "config",
        "cert-dir",
        "container-runtime",  # pkg/kubelet/config/flags.go:84 ('docker', 'remote')
        "container-runtime-endpoint",
        "pod-infra-container-image",  # flags.go:92
        "docker-endpoint",
        "network-plugin",  # flags.go:97
    },
    "kube-proxy": COMMON_1_19 | {"config"},
}
PLUGINS_1_19 = frozenset(
    {"NamespaceLifecycle", "LimitRanger", "ServiceAccount", "ResourceQuota", "NodeRestriction", "AlwaysAdmit"}
)


def infos_1_19() -> dict[str, BinaryInfo]:
    return {
        key: BinaryInfo(key, "v1.19.16", frozenset(flags), PLUGINS_1_19 if key == "kube-apiserver" else frozenset())
        for key, flags in FLAGS_1_19.items()
    }


def infos_newest() -> dict[str, BinaryInfo]:
    """v1.37.2: today's flag sets under the newest version, less what v1.37.2 no longer registers
    (--pod-infra-container-image: in no file of cmd/kubelet/app/options or pkg/kubelet/config)."""
    infos = {key: BinaryInfo(key, "v1.37.2", info.flags, info.admission_plugins) for key, info in today_infos().items()}
    kubelet = infos["kubelet"]
    infos["kubelet"] = BinaryInfo("kubelet", "v1.37.2", kubelet.flags - {"pod-infra-container-image"})
    return infos


def render_stack(
    cluster: Cluster, infos: dict[str, BinaryInfo], etcd: Version, flannel: Version, *, cgroup_v1: bool = True
) -> dict[str, str]:
    """What the phases render for one stack (the same calls as phases/etcd, flannel, master, nodes)."""
    out: dict[str, str] = {}
    enable_v2 = render.etcd_enable_v2(etcd, flannel)
    for host in cluster.etcd_members:
        out[f"etcd_env:{host.name}"] = render.etcd_env(cluster, host, enable_v2=enable_v2)
        out[f"etcd_env_existing:{host.name}"] = render.etcd_env(cluster, host, "existing", enable_v2=enable_v2)
    out["etcd_unit"] = render.etcd_unit()
    out["flanneld_options"] = render.flanneld_options(cluster, "eth0")
    out["flanneld_unit"] = render.flanneld_unit()
    out["docker_dropin"] = render.docker_dropin(
        ["/usr/bin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock"]
    )
    master = cluster.masters[0]
    apiserver, apiserver_notes = render.apiserver_flags(cluster, master, infos["kube-apiserver"])
    out["kube-apiserver"] = render.options_file("KUBE_APISERVER_OPTS", apiserver)
    manager, manager_notes = render.controller_manager_flags(cluster, infos["kube-controller-manager"])
    out["kube-controller-manager"] = render.options_file("KUBE_CONTROLLER_MANAGER_OPTS", manager)
    scheduler, scheduler_notes = render.scheduler_flags(infos["kube-scheduler"])
    out["kube-scheduler"] = render.options_file("KUBE_SCHEDULER_OPTS", scheduler)
    out["master_notes"] = "\n".join(apiserver_notes + manager_notes + scheduler_notes)
    kubelet = infos["kubelet"].release
    for host in cluster.workers:
        args, notes = render_nodes.kubelet_flags(cluster, host, infos["kubelet"])
        out[f"kubelet:{host.name}"] = render.options_file("KUBELET_OPTS", args)
        out[f"kubelet_notes:{host.name}"] = "\n".join(notes)
        for driver in ("cgroupfs", "systemd"):
            for swap in (False, True):
                out[f"kubelet_config:{host.name}:{driver}:{swap}"] = render_nodes.kubelet_config(
                    cluster, host, cgroup_driver=driver, swap_active=swap, version=kubelet, cgroup_v1=cgroup_v1
                )
        for mode in ("iptables", "ipvs"):
            for writable in (False, True):
                out[f"kube_proxy_config:{host.name}:{mode}:{writable}"] = render_nodes.kube_proxy_config(
                    cluster, host, mode=mode, conntrack_writable=writable
                )
    proxy, _ = render_nodes.kube_proxy_flags(infos["kube-proxy"])
    out["kube-proxy"] = render.options_file("KUBE_PROXY_OPTS", proxy)
    out["cri_dockerd_unit"] = render_nodes.cri_dockerd_unit(cluster)
    out["kubelet_unit"] = render_nodes.kubelet_unit(kubelet)
    out["kube_proxy_unit"] = render.component_unit(
        "Kubernetes Proxy", "kube-proxy", "KUBE_PROXY_OPTS", after=("network.target",)
    )
    out["apiserver_unit"] = render.component_unit(
        "Kubernetes API Server", "kube-apiserver", "KUBE_APISERVER_OPTS", after=("network.target", "etcd.service")
    )
    out["flannel_network_config"] = render.flannel_network_config(cluster)
    out["flannel_get_command"] = shlex.join(render.flannel_config_get_argv(cluster, flannel, etcd)) + (
        " 2>&1; echo kp-rc=$?"
    )
    out["flannel_put_argv"] = shlex.join(render.flannel_config_put_argv(cluster, flannel, etcd))
    out["etcd_health_argv"] = shlex.join(
        render.etcdctl_argv(cluster, "endpoint", "health", "--command-timeout=5s", etcd=etcd)
    )
    return out


def test_today_renders_byte_for_byte_what_it_rendered_before_the_version_gates(cluster: Cluster) -> None:
    before = json.loads((DATA / "today_rendering_v1.34.4.json").read_text())
    now = render_stack(cluster, today_infos(), ETCD_34, FLANNEL_TODAY, cgroup_v1=True)
    assert sorted(now) == sorted(before)
    changed = [key for key in before if now[key] != before[key]]
    assert changed == [], f"today's rendering changed: {changed}"


def test_the_flannel_phase_builds_its_etcd_fact_from_the_same_renderer(cluster: Cluster) -> None:
    from kubeproof.bootstrap.phases import flannel as flannel_phase

    before = json.loads((DATA / "today_rendering_v1.34.4.json").read_text())
    assert flannel_phase.network_config_fact(cluster, FLANNEL_TODAY, ETCD_34).command == before["flannel_get_command"]
    old = flannel_phase.network_config_fact(cluster, Version(0, 11, 0), Version(3, 3, 27)).command
    assert old.startswith("env ETCDCTL_API=2 /opt/etcd/bin/etcdctl ") and " get /coreos.com/network/config " in old


def _args(text: str) -> list[str]:
    body = text.split('="', 1)[1].rsplit('"', 1)[0]
    return [line.rstrip(" \\") for line in body.split("\n")]


def test_guide_era_apiserver_keeps_its_insecure_port_on_loopback(cluster: Cluster) -> None:
    out = render_stack(cluster, infos_1_19(), Version(3, 3, 27), Version(0, 11, 0))
    args = _args(out["kube-apiserver"])
    assert "--insecure-bind-address=127.0.0.1" in args and "--insecure-port=8080" in args
    assert "--logtostderr=true" in args
    # both exist in v1.19 (TokenRequest beta); the audience defaults to the issuer there
    assert "--service-account-issuer=https://kubernetes.default.svc" in args
    assert "--service-account-signing-key-file=/opt/kubernetes/ssl/sa-key.pem" in args
    assert "no insecure port" not in out["master_notes"]
    # every flag rendered is one v1.19.16 registers
    assert {a.split("=", 1)[0].lstrip("-") for a in args} <= FLAGS_1_19["kube-apiserver"]


def test_scheduler_and_controller_manager_plain_http_on_loopback_only_before_1_23(cluster: Cluster) -> None:
    old = render_stack(cluster, infos_1_19(), Version(3, 3, 27), Version(0, 11, 0))
    for component in ("kube-scheduler", "kube-controller-manager"):
        assert "--address=127.0.0.1" in _args(old[component])
        assert {a.split("=", 1)[0].lstrip("-") for a in _args(old[component])} <= FLAGS_1_19[component]
    # v1.22 would still take it; a release whose --help has it but is >= 1.23 does not get it
    late = BinaryInfo("kube-scheduler", "v1.23.0", frozenset(FLAGS_1_19["kube-scheduler"]))
    args, _ = render.scheduler_flags(late)
    assert not [a for a in args if a.startswith("--address")]
    newest = render_stack(cluster, infos_newest(), Version(3, 6, 4), FLANNEL_TODAY)
    assert not [a for a in _args(newest["kube-scheduler"]) if a.startswith("--address")]


def test_kubelet_dockershim_before_1_24_and_cri_dockerd_after(cluster: Cluster) -> None:
    old = render_stack(cluster, infos_1_19(), Version(3, 3, 27), Version(0, 11, 0))
    args = _args(old["kubelet:node01"])
    assert "--container-runtime=docker" in args
    assert "--pod-infra-container-image=kubeproof/pause:3.10" in args
    assert not [a for a in args if a.startswith(("--container-runtime-endpoint", "--network-plugin"))]
    assert "cri-dockerd" not in old["kubelet_unit"]
    assert "After=docker.service\n" in old["kubelet_unit"] and "Wants=docker.service\n" in old["kubelet_unit"]
    newest = render_stack(cluster, infos_newest(), Version(3, 6, 4), FLANNEL_TODAY)
    args = _args(newest["kubelet:node01"])
    assert "--container-runtime-endpoint=unix:///run/cri-dockerd.sock" in args
    assert not [a for a in args if a.startswith(("--container-runtime=", "--pod-infra-container-image"))]
    assert "Wants=cri-dockerd.service" in newest["kubelet_unit"]
    # a dockershim kubelet without --container-runtime in its --help is refused, naming the flag
    lacking = BinaryInfo("kubelet", "v1.19.16", frozenset(FLAGS_1_19["kubelet"] - {"container-runtime"}))
    with pytest.raises(BootstrapError, match="container-runtime"):
        render_nodes.kubelet_flags(cluster, cluster.host("node01"), lacking)
    with pytest.raises(BootstrapError, match="printed no release version"):
        render_nodes.kubelet_flags(cluster, cluster.host("node01"), BinaryInfo("kubelet", "", frozenset({"v"})))


def test_kubelet_config_per_release_and_cgroup_version(cluster: Cluster) -> None:
    node = cluster.host("node01")

    def config(version: Version, *, cgroup_v1: bool, swap: bool = False) -> tuple[str, dict[str, object]]:
        text = render_nodes.kubelet_config(
            cluster, node, cgroup_driver="cgroupfs", swap_active=swap, version=version, cgroup_v1=cgroup_v1
        )
        return text, yaml.safe_load(text)

    text, newest_v1 = config(Version(1, 37, 2), cgroup_v1=True)
    assert newest_v1["failCgroupV1"] is False
    assert "# failCgroupV1: false: this host runs cgroup v1" in text and "v1.37.2" in text
    # the same release on a cgroup v2 host: left at its default
    assert "failCgroupV1" not in config(Version(1, 37, 2), cgroup_v1=False)[1]
    # v1.34 defaults it to false already (today's bytes stay), v1.19 has no such field
    assert "failCgroupV1" not in config(TODAY, cgroup_v1=True)[1]
    assert "failCgroupV1" not in config(Version(1, 19, 16), cgroup_v1=True)[1]
    # NoSwap exists from v1.30: v1.19 with active swap only gets failSwapOn false
    old_swap = config(Version(1, 19, 16), cgroup_v1=True, swap=True)[1]
    assert old_swap["failSwapOn"] is False and "memorySwap" not in old_swap
    assert config(Version(1, 37, 2), cgroup_v1=True, swap=True)[1]["memorySwap"] == {"swapBehavior": "NoSwap"}
    # from v1.36 the kubelet would translate exec streams itself and dial cri-dockerd's scheme-less
    # streaming URL over https (kubectl exec failed on the lab with v1.37.2): the gate goes off there only
    assert newest_v1["featureGates"] == {"ExtendWebSocketsToKubelet": False}
    assert "# featureGates ExtendWebSocketsToKubelet: false" in text
    assert "featureGates" not in config(Version(1, 35, 4), cgroup_v1=True)[1]
    assert "featureGates" not in config(TODAY, cgroup_v1=True)[1]


def test_etcd_v2_api_only_where_flannel_reads_it(cluster: Cluster) -> None:
    member = cluster.etcd_members[0]
    guide = render_stack(cluster, infos_1_19(), Version(3, 3, 27), Version(0, 11, 0))
    # etcd 3.3 serves v2 by default: nothing to add, and the same flags as 3.4 (all in 3.3's config.go)
    assert "ENABLE_V2" not in guide[f"etcd_env:{member.name}"]
    assert guide["etcd_unit"] == render.etcd_unit()
    # etcd 3.4 beside a v2 flanneld: told to serve v2; beside a v3 flanneld: not
    assert render.etcd_enable_v2(Version(3, 4, 23), Version(0, 11, 0)) is True
    assert render.etcd_enable_v2(Version(3, 4, 23), Version(0, 18, 1)) is False
    env = render.parse_env_file(render.etcd_env(cluster, member, enable_v2=True))
    assert env["ETCD_ENABLE_V2"] == "true"
    # etcd 3.6 has no v2 API (no --enable-v2): never rendered, and a v2 flanneld is refused
    newest = render_stack(cluster, infos_newest(), Version(3, 6, 4), Version(0, 28, 10))
    assert "ENABLE_V2" not in newest[f"etcd_env:{member.name}"] and "enable-v2" not in newest["etcd_unit"]
    with pytest.raises(BootstrapError, match=r"v2 API.*3\.6"):
        render.etcd_enable_v2(Version(3, 6, 4), Version(0, 17, 0))


def test_etcdctl_is_told_its_api_where_its_default_differs(cluster: Cluster) -> None:
    guide = render_stack(cluster, infos_1_19(), Version(3, 3, 27), Version(0, 11, 0))
    # etcd 3.3's etcdctl defaults to v2: the installer's own health check asks for v3 explicitly
    assert guide["etcd_health_argv"].startswith("env ETCDCTL_API=3 /opt/etcd/bin/etcdctl --endpoints=")
    assert " --cacert=/opt/etcd/ssl/ca.pem " in guide["etcd_health_argv"]
    newest = render_stack(cluster, infos_newest(), Version(3, 6, 4), FLANNEL_TODAY)
    assert newest["etcd_health_argv"].startswith("/opt/etcd/bin/etcdctl ")


def test_flannel_config_written_through_the_api_its_flanneld_reads(cluster: Cluster) -> None:
    value = '{"Network": "172.17.0.0/16", "Backend": {"Type": "vxlan"}}'
    v2 = render.flannel_config_put_argv(cluster, Version(0, 17, 0), Version(3, 3, 27))
    assert v2[:3] == ["env", "ETCDCTL_API=2", "/opt/etcd/bin/etcdctl"]
    assert v2[-3:] == ["set", "/coreos.com/network/config", value]
    assert {"--ca-file=/opt/etcd/ssl/ca.pem", "--cert-file=/opt/etcd/ssl/server.pem"} <= set(v2)
    assert "--key-file=/opt/etcd/ssl/server-key.pem" in v2 and not [a for a in v2 if a.startswith("--cacert")]
    v3 = render.flannel_config_put_argv(cluster, Version(0, 18, 1), Version(3, 6, 4))
    assert v3[0] == "/opt/etcd/bin/etcdctl" and v3[-4:-1] == ["put", "/coreos.com/network/config", value]
    assert "--cacert=/opt/etcd/ssl/ca.pem" in v3 and not [a for a in v3 if a.startswith("--ca-file")]
    # a v3 flanneld beside etcd 3.3: v3 through an etcdctl told ETCDCTL_API=3
    mixed = render.flannel_config_get_argv(cluster, Version(0, 28, 10), Version(3, 3, 27))
    assert mixed[:2] == ["env", "ETCDCTL_API=3"] and "--print-value-only" in mixed


def test_the_release_is_read_from_the_artifact_then_its_manifest(tmp_path: Path) -> None:
    from kubeproof.bootstrap.artifacts import Artifacts, binary_version
    from kubeproof.bootstrap.state import Sha256Cache

    root = tmp_path / "artifacts"
    cluster = parse_cluster_text(
        CLUSTER_YAML + f"versions: {{etcd: 3.3.27, flannel: v0.11.0}}\nartifacts: {root}\n", str(tmp_path / "c.yaml")
    )
    artifacts = Artifacts(cluster, Sha256Cache(tmp_path / "sha.json"))
    etcd = artifacts.path("etcd")
    etcd.parent.mkdir(parents=True)
    # etcd 3.3.27 etcdmain/config.go prints its version on stdout; flanneld (main.go) on stderr
    etcd.write_text("#!/bin/sh\necho 'etcd Version: 3.3.27'\necho 'Git SHA: Not provided'\n")
    flanneld = artifacts.path("flanneld")
    flanneld.parent.mkdir(parents=True)
    flanneld.write_text("#!/bin/sh\necho v0.11.0 >&2\n")
    for path in (etcd, flanneld):
        path.chmod(0o755)
    cache = tmp_path / "cache"
    assert binary_version(artifacts, "etcd", cache) == Version(3, 3, 27)
    assert binary_version(artifacts, "flanneld", cache) == Version(0, 11, 0)
    # cached by sha256: the answer stays when the binary is not run again
    assert json.loads((cache / "binary-version.json").read_text())[artifacts.content("etcd").sha256 or ""] == "3.3.27"
    # a binary that prints no release (built without its version ldflags): MANIFEST.json's entry
    kubelet = artifacts.path("kubelet")
    kubelet.parent.mkdir(parents=True)
    kubelet.write_text("#!/bin/sh\necho 'Kubernetes v0.0.0-master+$Format:%H$'\n")
    kubelet.chmod(0o755)
    with pytest.raises(BootstrapError, match="cannot tell the release of kubelet"):
        binary_version(artifacts, "kubelet", cache)
    manifest = {"artifacts": [{"name": "kubelet", "version": "v1.19.16", "path": "kubernetes/server/bin/kubelet"}]}
    (root / "MANIFEST.json").write_text(json.dumps(manifest))
    assert binary_version(artifacts, "kubelet", cache) == Version(1, 19, 16)


def test_the_flannel_phase_writes_the_config_through_its_flanneld_api_and_converges(cluster: Cluster) -> None:
    from types import SimpleNamespace
    from typing import cast

    from kubeproof.bootstrap.engine import Change, HostView
    from kubeproof.bootstrap.phases import flannel as flannel_phase

    wanted = render.flannel_network_config(cluster)

    def changes(flannel: Version, etcd: Version, answer: tuple[int, str]) -> list[str]:
        versions = {"flanneld": flannel, "etcd": etcd}
        view = SimpleNamespace(
            ctx=SimpleNamespace(cluster=cluster, version=versions.__getitem__),
            host=cluster.etcd_members[0],
            phase="flannel",
            conn=None,
            get=lambda fact: answer,
        )
        return [c.description for c in flannel_phase._network_config(cast(HostView, view)) if isinstance(c, Change)]

    guide, today = (Version(0, 11, 0), Version(3, 3, 27)), (FLANNEL_TODAY, ETCD_34)
    # etcdctl v2 `get` of an absent key exits 4 with the v2 error: set, as the guide does
    absent = (4, "Error:  100: Key not found (/coreos.com/network/config) [8]")
    assert changes(*guide, absent) == [
        f"set /coreos.com/network/config = {wanted} in etcd (etcd v2 API, read by flanneld v0.11.0)"
    ]
    # a converged cluster: nothing, through either API
    assert changes(*guide, (0, wanted)) == [] and changes(*today, (0, wanted)) == []
    # today's wording is unchanged
    assert changes(*today, (0, "")) == [f"put /coreos.com/network/config = {wanted} in etcd"]
    assert "etcd not answering yet" in changes(*guide, (2, "Error:  client: etcd cluster is unavailable"))[0]


def _nodes_ctx(cluster: Cluster, tmp_path: Path, infos: dict[str, BinaryInfo], cgroup_fs: str) -> object:
    from types import SimpleNamespace

    from kubeproof.bootstrap.content import Content

    pki = tmp_path / "pki" / "kubernetes"
    pki.mkdir(parents=True, exist_ok=True)
    for name in ("ca.pem", "kube-proxy.pem", "kube-proxy-key.pem"):
        (pki / name).write_bytes(b"PEM")
    profile = SimpleNamespace(
        conntrack_writable=True, swaps=[], cgroup_fs=cgroup_fs, cgroup_driver="cgroupfs", ip_vs=True
    )
    return SimpleNamespace(
        cluster=cluster,
        profile=lambda host: profile,
        pki_dir=tmp_path / "pki",
        token="0123456789abcdef0123456789abcdef",
        binary=infos.__getitem__,
        artifacts=SimpleNamespace(content=lambda key: Content.text(key)),
    )


def test_the_nodes_phase_installs_cri_dockerd_only_beside_a_kubelet_without_dockershim(
    cluster: Cluster, tmp_path: Path
) -> None:
    from typing import cast

    from kubeproof.bootstrap.context import RunContext
    from kubeproof.bootstrap.engine import File, Note, Unit
    from kubeproof.bootstrap.phases import nodes

    def plan(infos: dict[str, BinaryInfo], cgroup_fs: str = "tmpfs") -> tuple[list[str], dict[str, str], list[str]]:
        ctx = cast(RunContext, _nodes_ctx(cluster, tmp_path, infos, cgroup_fs))
        resources = nodes.desired(ctx, cluster.host("node01"))
        names = [r.path if isinstance(r, File) else f"unit {r.name}" for r in resources if isinstance(r, File | Unit)]
        files = {r.path: r.content.read().decode() for r in resources if isinstance(r, File)}
        notes = [r.text for r in resources if isinstance(r, Note)]
        assert nodes.runtime_artifacts(ctx) == (() if infos["kubelet"].release < Version(1, 24) else ("cri-dockerd",))
        return names, files, notes

    guide, files, _ = plan(infos_1_19())
    assert not [name for name in guide if "cri-dockerd" in name]
    assert "--container-runtime=docker" in files["/opt/kubernetes/cfg/kubelet"]
    today, files, _ = plan(today_infos())
    # today's order: cri-dockerd's binary after kube-proxy's, its unit before kubelet's, started first
    assert today.index("/opt/kubernetes/bin/cri-dockerd") == today.index("/opt/kubernetes/bin/kube-proxy") + 1
    assert today.index("/usr/lib/systemd/system/cri-dockerd.service") + 1 == today.index(
        "/usr/lib/systemd/system/kubelet.service"
    )
    assert today[-3:] == ["unit cri-dockerd.service", "unit kubelet.service", "unit kube-proxy.service"]
    assert "failCgroupV1" not in files["/opt/kubernetes/cfg/kubelet-config.yaml"]
    newest, files, notes = plan(infos_newest())
    assert "/opt/kubernetes/bin/cri-dockerd" in newest
    assert "failCgroupV1: false" in files["/opt/kubernetes/cfg/kubelet-config.yaml"]
    assert any("failCgroupV1 false" in note and "cgroup v1 host (tmpfs" in note for note in notes)
    _, files, notes = plan(infos_newest(), cgroup_fs="cgroup2fs")
    assert "failCgroupV1" not in files["/opt/kubernetes/cfg/kubelet-config.yaml"] and not notes
