"""The installer's renderers: what lands in each file, per member and per release."""

from __future__ import annotations

import re

import pytest
import yaml

from kubeproof.bootstrap import render, render_nodes
from kubeproof.bootstrap.artifacts import BinaryInfo, parse_help
from kubeproof.bootstrap.errors import BootstrapError
from kubeproof.inventory import Cluster, parse_cluster_text

CLUSTER_YAML = """
name: lab
hosts:
  - {name: master01, address: 192.168.61.17, roles: [master, etcd], etcd_name: etcd01}
  - {name: node01, address: 192.168.61.18, roles: [node, etcd], etcd_name: etcd02}
  - {name: node02, address: 192.168.61.22, roles: [node, etcd], etcd_name: etcd03}
network: {pod_cidr: 172.17.0.0/16, service_cidr: 10.0.0.0/24, kube_proxy_mode: iptables}
"""

# Trimmed `--help` of the releases: 1.34 (no insecure port, no klog file flags) and a pre-1.20 one.
HELP_1_34 = """
      --advertise-address ip   The IP address
      --allow-privileged   If true
      --authorization-mode strings   Ordered list
      --bind-address ip   The IP address
      --client-ca-file string   If set
      --enable-admission-plugins strings   admission plugins that should be enabled in addition to default enabled
 ones (NamespaceLifecycle). Comma-delimited list of admission plugins: AlwaysAdmit, LimitRanger, NamespaceLifecycle,
 NodeRestriction, ResourceQuota, ServiceAccount. The order of plugins in this flag does not matter.
      --enable-bootstrap-token-auth   Enable
      --etcd-cafile string   SSL
      --etcd-certfile string   SSL
      --etcd-keyfile string   SSL
      --etcd-servers strings   List
      --kubelet-client-certificate string   Path
      --kubelet-client-key string   Path
      --secure-port int   The port
      --service-account-issuer stringArray   Identifier
      --service-account-key-file stringArray   File
      --service-account-signing-key-file string   Path
      --service-cluster-ip-range string   A CIDR
      --service-node-port-range portRange   A port range
      --tls-cert-file string   File
      --tls-private-key-file string   File
      --token-auth-file string   If set
  -v, --v Level   number for the log level verbosity
"""
HELP_1_12 = (
    HELP_1_34.replace("      --service-account-issuer stringArray   Identifier\n", "").replace(
        "      --service-account-signing-key-file string   Path\n", ""
    )
    + "      --insecure-bind-address ip   The IP\n      --insecure-port int   The port\n"
    + "      --logtostderr   log to standard error\n"
)


@pytest.fixture
def cluster() -> Cluster:
    return parse_cluster_text(CLUSTER_YAML)


def test_etcd_env_uses_each_members_own_address_everywhere(cluster: Cluster) -> None:
    seen_initial = set()
    for host in cluster.etcd_members:
        env = render.parse_env_file(render.etcd_env(cluster, host))
        ip = host.address
        assert env["ETCD_NAME"] == host.etcd_name
        assert env["ETCD_LISTEN_PEER_URLS"] == f"https://{ip}:2380"
        # the guide's extra loopback listener lives in the variable, not in a flag
        assert env["ETCD_LISTEN_CLIENT_URLS"] == f"https://{ip}:2379,http://127.0.0.1:2379"
        assert env["ETCD_INITIAL_ADVERTISE_PEER_URLS"] == f"https://{ip}:2380"
        # the guide's node copy keeps master01's address here: every member advertises its own
        assert env["ETCD_ADVERTISE_CLIENT_URLS"] == f"https://{ip}:2379"
        assert f"{host.etcd_name}=https://{ip}:2380" in env["ETCD_INITIAL_CLUSTER"].split(",")
        assert env["ETCD_INITIAL_CLUSTER_TOKEN"] == "etcd-cluster"
        seen_initial.add(env["ETCD_INITIAL_CLUSTER"])
    assert seen_initial == {
        "etcd01=https://192.168.61.17:2380,etcd02=https://192.168.61.18:2380,etcd03=https://192.168.61.22:2380"
    }


def test_etcd_unit_repeats_no_setting_of_its_environment_file(cluster: Cluster) -> None:
    # etcd >= 3.4 refuses to start when ETCD_FOO and --foo are both given
    unit = render.etcd_unit()
    flags = set(re.findall(r"--([a-z-]+)", unit))
    env_keys = set(render.parse_env_file(render.etcd_env(cluster, cluster.etcd_members[0])))
    as_env = {"ETCD_" + flag.upper().replace("-", "_") for flag in flags}
    assert not as_env & env_keys
    assert "EnvironmentFile=/opt/etcd/cfg/etcd" in unit
    for line in ("Type=notify", "Restart=on-failure", "LimitNOFILE=65536"):
        assert line in unit.splitlines()
    for flag in ("cert-file", "key-file", "trusted-ca-file", "peer-cert-file", "peer-key-file", "peer-trusted-ca-file"):
        assert flag in flags
    assert "${" not in unit


def test_etc_hosts_block_goes_first_and_is_idempotent(cluster: Cluster) -> None:
    original = "127.0.0.1\tlocalhost\n127.0.1.1 node01\n192.168.61.18\tnode01\n"
    edited = render.edit_etc_hosts(original, cluster)
    lines = edited.splitlines()
    assert lines[0] == render.HOSTS_BEGIN
    assert lines[1:4] == ["192.168.61.17 master01", "192.168.61.18 node01", "192.168.61.22 node02"]
    assert lines[5:] == original.splitlines()  # everything else kept, in order
    assert render.edit_etc_hosts(edited, cluster) == edited
    # an old block elsewhere is replaced, not duplicated
    moved = original + render.HOSTS_BEGIN + "\n10.0.0.9 master01\n" + render.HOSTS_END + "\n"
    assert render.edit_etc_hosts(moved, cluster) == edited


def test_fstab_only_active_swap_entries_are_commented() -> None:
    fstab = (
        "UUID=1 / ext4 defaults 0 1\n"
        "/swapfile none swap sw 0 0\n"
        "#/old none swap sw 0 0\n"
        "UUID=2 /srv/swapdata ext4 defaults 0 2\n"
    )
    edited = render.comment_fstab_swap(fstab)
    assert edited.splitlines() == [
        "UUID=1 / ext4 defaults 0 1",
        "#/swapfile none swap sw 0 0",
        "#/old none swap sw 0 0",
        "UUID=2 /srv/swapdata ext4 defaults 0 2",  # the guide's sed would have commented this one too
    ]
    assert render.comment_fstab_swap(edited) == edited


def test_someone_elses_sysctl_file_keeps_its_other_lines() -> None:
    current = "# mine\nnet.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables=0\n"
    edited = render.edit_sysctl_conf(current)
    assert edited.splitlines() == [
        "# mine",
        "net.ipv4.ip_forward = 1",
        "net.bridge.bridge-nf-call-iptables = 1",
        "net.bridge.bridge-nf-call-ip6tables = 1",
    ]
    assert render.edit_sysctl_conf(edited) == edited


DEBIAN_DOCKER_UNIT = """[Unit]
Description=Docker Application Container Engine

[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS
ExecReload=/bin/kill -s HUP $MAINPID
"""


def test_docker_dropin_extends_the_nodes_own_exec_start() -> None:
    argv = render.parse_exec_start(DEBIAN_DOCKER_UNIT)
    assert argv == ["/usr/sbin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock", "$DOCKER_OPTS"]
    dropin = render.docker_dropin(argv)
    lines = dropin.splitlines()
    assert "EnvironmentFile=/run/flannel/docker" in lines
    assert "Requires=flanneld.service" in lines and "After=flanneld.service" in lines
    reset = lines.index("ExecStart=")
    assert lines[reset + 1] == (
        "ExecStart=/usr/sbin/dockerd $DOCKER_NETWORK_OPTIONS -H fd:// --containerd=/run/containerd/containerd.sock "
        "$DOCKER_OPTS"
    )


def test_parse_exec_start_continuations_and_resets() -> None:
    text = "[Service]\nExecStart=/bin/a \\\n  --x=1\nExecStart=\nExecStart=-/bin/b --y\n"
    assert render.parse_exec_start(text) == ["/bin/b", "--y"]


def test_flanneld_options_point_at_every_member_over_tls(cluster: Cluster) -> None:
    text = render.flanneld_options(cluster, "eth0")
    value = render.parse_env_file(text)["FLANNEL_OPTIONS"]
    assert "--etcd-endpoints=https://192.168.61.17:2379,https://192.168.61.18:2379,https://192.168.61.22:2379" in value
    assert "-etcd-cafile=/opt/etcd/ssl/ca.pem" in value
    assert "-etcd-keyfile=/opt/etcd/ssl/server-key.pem" in value
    assert value.endswith("--iface=eth0")
    assert render.flannel_network_config(cluster) == '{"Network": "172.17.0.0/16", "Backend": {"Type": "vxlan"}}'
    unit = render.flanneld_unit()
    assert (
        "ExecStartPost=/opt/kubernetes/bin/mk-docker-opts.sh -k DOCKER_NETWORK_OPTIONS -d /run/flannel/docker" in unit
    )


def _apiserver_args(cluster: Cluster, help_text: str, version: str) -> tuple[list[str], list[str]]:
    info = parse_help("kube-apiserver", f"Kubernetes {version}", help_text)
    return render.apiserver_flags(cluster, cluster.masters[0], info)


def test_apiserver_1_34_has_no_insecure_port_and_service_account_signing(cluster: Cluster) -> None:
    args, notes = _apiserver_args(cluster, HELP_1_34, "v1.34.4")
    assert not [a for a in args if a.startswith("--insecure")]
    assert not [a for a in args if a.startswith(("--logtostderr", "--log-dir"))]
    assert "--service-account-issuer=https://kubernetes.default.svc" in args
    assert "--service-account-signing-key-file=/opt/kubernetes/ssl/sa-key.pem" in args
    assert "--service-account-key-file=/opt/kubernetes/ssl/sa.pem" in args
    assert "--authorization-mode=RBAC,Node" in args
    assert "--enable-bootstrap-token-auth" in args
    assert "--token-auth-file=/opt/kubernetes/cfg/token.csv" in args
    assert "--service-cluster-ip-range=10.0.0.0/24" in args
    assert "--bind-address=192.168.61.17" in args and "--advertise-address=192.168.61.17" in args
    assert "--etcd-servers=https://192.168.61.17:2379,https://192.168.61.18:2379,https://192.168.61.22:2379" in args
    plugins = next(a for a in args if a.startswith("--enable-admission-plugins=")).split("=", 1)[1].split(",")
    assert "NodeRestriction" in plugins
    assert any("no insecure port" in n for n in notes)


def test_apiserver_with_an_insecure_port_keeps_it_on_loopback(cluster: Cluster) -> None:
    args, _ = _apiserver_args(cluster, HELP_1_12, "v1.12.3")
    assert "--insecure-bind-address=127.0.0.1" in args and "--insecure-port=8080" in args
    assert "--logtostderr=true" in args
    assert not [a for a in args if a.startswith("--service-account-signing-key-file")]


def test_a_required_flag_the_release_lacks_stops_the_run(cluster: Cluster) -> None:
    info = parse_help("kube-apiserver", "v1.34.4", HELP_1_34.replace("--token-auth-file", "--other-file"))
    with pytest.raises(BootstrapError, match="token-auth-file"):
        render.apiserver_flags(cluster, cluster.masters[0], info)


def test_parse_help_reads_flags_version_and_admission_plugins() -> None:
    info = parse_help("kube-apiserver", "Kubernetes v1.34.4\n", HELP_1_34)
    assert info.version == "v1.34.4" and info.version_tuple == (1, 34, 4)
    assert info.has("--secure-port") and info.has("v") and not info.has("insecure-port")
    assert "NodeRestriction" in info.admission_plugins and "AlwaysAdmit" in info.admission_plugins


def test_kubelet_config_follows_docker_and_swap(cluster: Cluster) -> None:
    node = cluster.host("node01")
    config = yaml.safe_load(render_nodes.kubelet_config(cluster, node, cgroup_driver="cgroupfs", swap_active=False))
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["failSwapOn"] is True
    assert config["authentication"]["x509"]["clientCAFile"] == "/opt/kubernetes/ssl/ca.pem"
    assert config["authentication"]["webhook"]["enabled"] is True
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authorization"]["mode"] == "Webhook"
    assert config["clusterDNS"] == ["10.0.0.2"]
    swapping = yaml.safe_load(render_nodes.kubelet_config(cluster, node, cgroup_driver="systemd", swap_active=True))
    assert swapping["failSwapOn"] is False and swapping["cgroupDriver"] == "systemd"


def test_kubelet_flags(cluster: Cluster) -> None:
    info = BinaryInfo(
        "kubelet",
        "v1.34.4",
        frozenset(
            {
                "v",
                "hostname-override",
                "node-ip",
                "bootstrap-kubeconfig",
                "kubeconfig",
                "config",
                "cert-dir",
                "container-runtime-endpoint",
            }
        ),
    )
    args, _ = render_nodes.kubelet_flags(cluster, cluster.host("node02"), info)
    assert "--hostname-override=node02" in args and "--node-ip=192.168.61.22" in args
    assert "--bootstrap-kubeconfig=/opt/kubernetes/cfg/bootstrap.kubeconfig" in args
    assert "--kubeconfig=/opt/kubernetes/cfg/kubelet.kubeconfig" in args
    assert "--cert-dir=/opt/kubernetes/ssl" in args
    assert "--container-runtime-endpoint=unix:///run/cri-dockerd.sock" in args
    # --pod-infra-container-image is optional: this release lacks it, so it is left out
    assert not [a for a in args if a.startswith("--pod-infra")]


def test_kube_proxy_leaves_conntrack_alone_where_it_cannot_write_it(cluster: Cluster) -> None:
    node = cluster.host("node01")
    config = yaml.safe_load(render_nodes.kube_proxy_config(cluster, node, mode="iptables", conntrack_writable=False))
    assert config["conntrack"]["maxPerCore"] == 0
    assert config["conntrack"]["tcpEstablishedTimeout"] == "0s"
    assert config["clusterCIDR"] == "172.17.0.0/16"
    assert config["clientConnection"]["kubeconfig"] == "/opt/kubernetes/cfg/kube-proxy.kubeconfig"
    assert config["mode"] == "iptables" and config["hostnameOverride"] == "node01"
    free = yaml.safe_load(render_nodes.kube_proxy_config(cluster, node, mode="ipvs", conntrack_writable=True))
    assert "conntrack" not in free and free["mode"] == "ipvs"


def test_cri_dockerd_uses_the_no_op_network_plugin_and_the_offline_pause_image(cluster: Cluster) -> None:
    unit = render_nodes.cri_dockerd_unit(cluster)
    assert "--network-plugin=no-op" in unit
    assert "--pod-infra-container-image=kubeproof/pause:3.10" in unit
    assert "--container-runtime-endpoint=unix:///run/cri-dockerd.sock" in unit


def test_kubeconfigs_and_token_csv() -> None:
    token = "0123456789abcdef0123456789abcdef"
    assert render.token_csv(token) == f'{token},kubelet-bootstrap,10001,"system:kubelet-bootstrap"\n'
    assert render.parse_token_csv(render.token_csv(token)) == token
    config = yaml.safe_load(render.kubeconfig("https://192.168.61.17:6443", b"CA", "kubelet-bootstrap", token=token))
    assert config["clusters"][0]["cluster"]["server"] == "https://192.168.61.17:6443"
    assert config["clusters"][0]["cluster"]["certificate-authority-data"] == "Q0E="
    assert config["users"][0] == {"name": "kubelet-bootstrap", "user": {"token": token}}


def test_options_file_is_one_systemd_variable() -> None:
    text = render.options_file("KUBE_SCHEDULER_OPTS", ["--v=2", "--leader-elect=true"])
    assert text.endswith('KUBE_SCHEDULER_OPTS="--v=2 \\\n--leader-elect=true"\n')


def test_ipvs_without_ip_vs_falls_back_to_iptables_and_says_so(cluster: Cluster) -> None:
    from types import SimpleNamespace
    from typing import cast

    from kubeproof.bootstrap.context import RunContext
    from kubeproof.bootstrap.phases.nodes import proxy_mode

    ipvs_cluster = parse_cluster_text(CLUSTER_YAML.replace("kube_proxy_mode: iptables", "kube_proxy_mode: ipvs"))
    for has_ip_vs, expected in ((False, "iptables"), (True, "ipvs")):
        ctx = SimpleNamespace(cluster=ipvs_cluster, profile=lambda host, v=has_ip_vs: SimpleNamespace(ip_vs=v))
        mode, notes = proxy_mode(cast(RunContext, ctx), ipvs_cluster.host("node01"))
        assert mode == expected
        assert bool(notes) == (not has_ip_vs)
    ctx = SimpleNamespace(cluster=ipvs_cluster, profile=lambda host: SimpleNamespace(ip_vs=False))
    _, notes = proxy_mode(cast(RunContext, ctx), ipvs_cluster.host("node01"))
    assert "ipvs is declared" in notes[0] and "FALLING BACK to iptables" in notes[0]


def test_host_profile_parsers() -> None:
    from kubeproof.bootstrap import host_profile
    from kubeproof.facts import Raw
    from kubeproof.facts import host as host_facts

    addresses = host_profile.parse_ip_addr(
        Raw(
            "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
            "28: eth0    inet 192.168.61.18/24 brd 192.168.61.255 scope global eth0\\ valid_lft forever\n"
            "5: flannel.1    inet 172.17.45.0/32 scope global flannel.1\n",
            "",
            0,
        )
    )
    assert addresses == {"127.0.0.1": "lo", "192.168.61.18": "eth0", "172.17.45.0": "flannel.1"}
    path, argv = host_profile.parse_unit_fragment("path=/lib/systemd/system/docker.service\n---\n" + DEBIAN_DOCKER_UNIT)
    assert path == "/lib/systemd/system/docker.service" and argv[0] == "/usr/sbin/dockerd"
    assert host_profile.parse_unit_fragment("") == (None, [])
    assert host_facts.parse_proc_swaps(Raw("Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1 0 -2\n", "", 0)) == [
        "/swapfile"
    ]
    host = host_profile.HostProfile(
        "h",
        "0",
        {"ID": "rocky", "ID_LIKE": "rhel centos fedora"},
        {},
        {},
        "h",
        None,
        None,
        [],
        False,
        False,
        [],
        "tmpfs",
    )
    assert host.family == "yum" and host.cgroup_driver == "cgroupfs"
    host.os = {"ID": "debian"}
    host.cgroup_fs = "cgroup2fs"
    assert host.family == "apt" and host.cgroup_driver == "systemd"
    assert host_profile.parse_os_release(Raw('ID=debian\nPRETTY_NAME="Debian GNU/Linux 12"\n\n', "", 0)) == {
        "ID": "debian",
        "PRETTY_NAME": "Debian GNU/Linux 12",
    }
    assert host_profile.commands.parse(Raw("systemctl=yes\nyum=no\n", "", 0)) == {"systemctl": True, "yum": False}
    # what the verifier reads as well comes from its facts layer: one definition, one cache entry
    assert host_facts.hostname in host_profile.PROFILE_FACTS and host_facts.swaps in host_profile.PROFILE_FACTS
