"""Pure renderers of the workers' files (kubelet, kube-proxy, cri-dockerd), per release.

Split from ``render`` (which holds the shared pieces: HEADER, Flag, select_flags, component_unit).
The kubelet's release decides how it reaches docker (dockershim before v1.24, cri-dockerd after)
and what its KubeletConfiguration may carry (kubeproof.versions).
"""

from __future__ import annotations

import ipaddress

import yaml

from kubeproof import layout
from kubeproof.bootstrap.artifacts import BinaryInfo
from kubeproof.bootstrap.errors import BootstrapError
from kubeproof.bootstrap.render import (
    CRI_DOCKERD_SOCKET,
    CRI_DOCKERD_UNIT,
    DOCKER_UNIT,
    HEADER,
    Flag,
    component_unit,
    select_flags,
)
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.versions import (
    DOCKERSHIM_REMOVED,
    KUBELET_NO_SWAP_BEHAVIOR,
    KUBELET_REFUSES_CGROUP_V1,
    KUBELET_WEBSOCKETS_TO_CRI,
    UNKNOWN,
    Version,
    kubelet_uses_dockershim,
)


def cluster_dns(cluster: Cluster) -> str:
    """The series' clusterDNS: the service range's second address (10.0.0.2)."""
    network = ipaddress.ip_network(cluster.network.service_cidr)
    return str(network.network_address + 2)


def known_release(info: BinaryInfo) -> Version:
    if info.release == UNKNOWN:
        raise BootstrapError(f"{info.name} printed no release version ({info.version!r}): cannot tell what it takes")
    return info.release


def kubelet_runtime_flags(cluster: Cluster, info: BinaryInfo) -> list[Flag]:
    """How the kubelet reaches docker: its own dockershim before v1.24, cri-dockerd's socket after."""
    if kubelet_uses_dockershim(known_release(info)):
        # v1.19.16 pkg/kubelet/config/flags.go: --container-runtime docker (the default, said
        # anyway), --pod-infra-container-image is dockershim's sandbox image (the offline pause);
        # --network-plugin stays unset: "" is the no-op plugin (dockershim/network/plugins.go),
        # pods on docker0 inside the flannel subnet, as with cri-dockerd's --network-plugin=no-op.
        # No --container-runtime-endpoint: with docker it names dockershim's own socket.
        return [
            Flag("container-runtime", "docker"),
            Flag("pod-infra-container-image", cluster.images.pause),
        ]
    return [
        Flag("container-runtime-endpoint", CRI_DOCKERD_SOCKET),
        # only keeps the image from garbage collection in 1.34; the sandbox image is cri-dockerd's
        Flag("pod-infra-container-image", cluster.images.pause, required=False),
    ]


def kubelet_flags(cluster: Cluster, host: HostSpec, info: BinaryInfo) -> tuple[list[str], list[str]]:
    cfg = layout.K8S_CFG
    flags = [
        Flag("logtostderr", "true", required=False),
        Flag("v", "2"),
        Flag("hostname-override", host.name),
        Flag("node-ip", host.address),
        Flag("bootstrap-kubeconfig", f"{cfg}/bootstrap.kubeconfig"),
        Flag("kubeconfig", f"{cfg}/kubelet.kubeconfig"),
        Flag("config", f"{cfg}/kubelet-config.yaml"),
        Flag("cert-dir", layout.K8S_SSL),
        *kubelet_runtime_flags(cluster, info),
    ]
    return select_flags(info, flags)


def kubelet_unit(kubelet: Version) -> str:
    """kubelet.service: after docker (dockershim), or after docker and cri-dockerd."""
    if kubelet_uses_dockershim(kubelet):
        return component_unit(
            "Kubernetes Kubelet", "kubelet", "KUBELET_OPTS", after=(DOCKER_UNIT,), wants=(DOCKER_UNIT,)
        )
    return component_unit(
        "Kubernetes Kubelet",
        "kubelet",
        "KUBELET_OPTS",
        after=(DOCKER_UNIT, CRI_DOCKERD_UNIT),
        wants=(CRI_DOCKERD_UNIT,),
    )


def kubelet_config(
    cluster: Cluster,
    host: HostSpec,
    *,
    cgroup_driver: str,
    swap_active: bool,
    version: Version | None = None,
    cgroup_v1: bool = False,
) -> str:
    """KubeletConfiguration for this kubelet release (None: today's fields) on this host.

    ``cgroup_v1``: the host's /sys/fs/cgroup is not cgroup2fs (host_profile's cgroup_fs fact).
    """
    document: dict[str, object] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": host.address,
        "port": 10250,
        "readOnlyPort": 0,
        "cgroupDriver": cgroup_driver,
        "clusterDNS": [cluster_dns(cluster)],
        "clusterDomain": "cluster.local",
        "failSwapOn": not swap_active,
        "hairpinMode": "promiscuous-bridge",
        "serializeImagePulls": False,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True, "cacheTTL": "2m0s"},
            "x509": {"clientCAFile": f"{layout.K8S_SSL}/ca.pem"},
        },
        "authorization": {
            "mode": "Webhook",
            "webhook": {"cacheAuthorizedTTL": "5m0s", "cacheUnauthorizedTTL": "30s"},
        },
    }
    if swap_active and (version is None or version >= KUBELET_NO_SWAP_BEHAVIOR):
        # swap the host shares with us (a container cannot turn the machine's swap off); before
        # v1.30 there is no NoSwap and failSwapOn: false alone lets the kubelet start
        document["memorySwap"] = {"swapBehavior": "NoSwap"}
    why = ""
    if cgroup_v1 and version is not None and version >= KUBELET_REFUSES_CGROUP_V1:
        document["failCgroupV1"] = False
        why = (
            f"# failCgroupV1: false: this host runs cgroup v1 (/sys/fs/cgroup is not cgroup2fs), which kubelet\n"
            f"# {version.v} refuses unless told (default true since v1.35; the field exists since v1.31).\n"
        )
    if version is not None and version >= KUBELET_WEBSOCKETS_TO_CRI and version >= DOCKERSHIM_REMOVED:
        document["featureGates"] = {"ExtendWebSocketsToKubelet": False}
        why += (
            f"# featureGates ExtendWebSocketsToKubelet: false: kubelet {version.v} would dial cri-dockerd's streaming\n"
            "# URL, which has no scheme, over https, and kubectl exec/attach fail (kubeproof.versions).\n"
        )
    return HEADER + why + yaml.safe_dump(document, sort_keys=False)


def kube_proxy_config(cluster: Cluster, host: HostSpec, *, mode: str, conntrack_writable: bool) -> str:
    document: dict[str, object] = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "bindAddress": "0.0.0.0",  # noqa: S104 - kube-proxy serves NodePorts on every address
        "clientConnection": {"kubeconfig": f"{layout.K8S_CFG}/kube-proxy.kubeconfig"},
        "clusterCIDR": cluster.network.pod_cidr,
        "hostnameOverride": host.name,
        "mode": mode,
    }
    if not conntrack_writable:
        # nf_conntrack_max is read-only outside the init network namespace: zero means "leave it".
        document["conntrack"] = {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"}
    return HEADER + yaml.safe_dump(document, sort_keys=False)


def kube_proxy_flags(info: BinaryInfo) -> tuple[list[str], list[str]]:
    flags = [
        Flag("logtostderr", "true", required=False),
        Flag("v", "2"),
        Flag("config", f"{layout.K8S_CFG}/kube-proxy-config.yaml"),
    ]
    return select_flags(info, flags)


def cri_dockerd_unit(cluster: Cluster) -> str:
    """A plain service (no socket activation) on unix:///run/cri-dockerd.sock.

    --network-plugin defaults to "cni" in cri-dockerd 0.3.17 (cmd/cri/options/options.go); the
    guide's pods live on docker0 inside the flannel subnet with no CNI, which is the no-op plugin
    (network/plugins.go: "" or "no-op"): docker's own bridge networking gives pods their IPs.
    """
    exec_start = " \\\n  ".join(
        [
            f"{layout.K8S_BIN}/cri-dockerd",
            f"--container-runtime-endpoint={CRI_DOCKERD_SOCKET}",
            f"--pod-infra-container-image={cluster.images.pause}",
            "--network-plugin=no-op",
        ]
    )
    return (
        HEADER
        + "[Unit]\n"
        + "Description=CRI Interface for Docker Application Container Engine (cri-dockerd)\n"
        + "Documentation=https://github.com/Mirantis/cri-dockerd\n"
        + "After=network-online.target docker.service\n"
        + "Wants=network-online.target\n"
        + "Requires=docker.service\n"
        + "\n[Service]\n"
        + "Type=notify\n"
        + f"ExecStart={exec_start}\n"
        + "ExecReload=/bin/kill -s HUP $MAINPID\n"
        + "TimeoutSec=0\n"
        + "RestartSec=2\n"
        + "Restart=always\n"
        + "LimitNOFILE=infinity\n"
        + "LimitNPROC=infinity\n"
        + "LimitCORE=infinity\n"
        + "TasksMax=infinity\n"
        + "Delegate=yes\n"
        + "KillMode=process\n"
        + "\n[Install]\n"
        + "WantedBy=multi-user.target\n"
    )
