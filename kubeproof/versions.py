"""Release versions and the boundaries where a release's behaviour changes.

One comparable ``Version`` for every binary kubeproof meets (kube-*, etcd, flanneld), parsed from
what the binary prints (``Kubernetes v1.19.16``, ``etcd Version: 3.3.27``, ``v0.28.10``). The
installer renders and the suites choose their checks from these boundaries, keyed on the
versions read off the artifacts or the hosts, never on a stack's name. Each boundary says where
in upstream source it was confirmed (module zips read from the Go module proxy by exact version).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def v(self) -> str:
        """With the leading v, as Kubernetes and flannel print it (v1.19.16)."""
        return f"v{self}"


def parse_version(text: str | None) -> Version | None:
    """The first release version in ``text`` (`Kubernetes v1.19.16`, `etcd Version: 3.3.27`,
    `v0.28.10`, `v1.34.4-dirty`); None when there is none."""
    if not text:
        return None
    match = _VERSION.search(text)
    if not match:
        return None
    return Version(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


# What a Kubernetes binary built without its version ldflags prints (`Kubernetes v0.0.0-master+$Format:%H$`):
# no release at all.
UNKNOWN = Version(0, 0, 0)


def release_of(text: str | None) -> Version | None:
    """``parse_version``, with v0.0.0 (a build without version stamps) as no release."""
    version = parse_version(text)
    return None if version == UNKNOWN else version


def require_version(text: str | None, what: str) -> Version:
    version = parse_version(text)
    if version is None:
        raise ValueError(f"{what}: no release version in {text!r}")
    return version


# ----------------------------------------------------------------------------- Kubernetes

# kube-apiserver's insecure port (--insecure-bind-address/--insecure-port, default 127.0.0.1:8080
# in v1.19.16 pkg/kubeapiserver/options/serving.go NewInsecureServingOptions) is gone from v1.20.
APISERVER_INSECURE_PORT_REMOVED = Version(1, 20)
# kube-scheduler's and kube-controller-manager's insecure serving (--address/--port; 0.0.0.0:10251
# and 0.0.0.0:10252 by default in v1.19.16, which ComponentStatus reads on 127.0.0.1:
# pkg/registry/core/rest/storage_core.go) "has no effect now" in v1.23.0 (scheduler
# options/deprecated.go, controller-manager options/options.go).
COMPONENT_INSECURE_SERVING_REMOVED = Version(1, 23)
# The kubelet's built-in dockershim: v1.19.16 pkg/kubelet/config/flags.go --container-runtime
# "Possible values: 'docker', 'remote'" (default docker); v1.24.0: "Possible value: 'remote'".
DOCKERSHIM_REMOVED = Version(1, 24)
# KubeletConfiguration.failCgroupV1: absent in k8s.io/kubelet v0.30.0, present in v0.31.0
# (config/v1beta1/types.go); defaulted to false in v1.34.4 and to true in v1.35.0
# (pkg/kubelet/apis/config/v1beta1/defaults.go), so from v1.35 a cgroup v1 host needs it set.
KUBELET_FAIL_CGROUP_V1_FIELD = Version(1, 31)
KUBELET_REFUSES_CGROUP_V1 = Version(1, 35)
# ExtendWebSocketsToKubelet, beta and on by default from v1.36 (pkg/features/kube_features.go of
# v1.37.2): the kubelet then translates exec/attach WebSocket streams itself
# (pkg/kubelet/server/server.go, translator.NewStreamTranslatorHandler) and dials the streaming URL
# the CRI returns; cri-dockerd returns one without a scheme ("//[::]:42059/cri/exec/..."), dialled
# over https: "http: server gave HTTP response to HTTPS client" on the lab (v1.37.2, cri-dockerd
# 0.3.17). With the gate off the kubelet does not advertise it and the apiserver translates.
KUBELET_WEBSOCKETS_TO_CRI = Version(1, 36)
# memorySwap.swapBehavior "NoSwap": absent in k8s.io/kubelet v0.29.10, present in v0.30.0.
KUBELET_NO_SWAP_BEHAVIOR = Version(1, 30)

# kube-scheduler's /livez: cmd/kube-scheduler/app/server.go installs only /healthz in v1.19.16,
# v1.29.10 and v1.30.0; healthz.InstallLivezHandler from v1.31.0 (kubernetes PR 118148).
SCHEDULER_LIVEZ = Version(1, 31)

# ----------------------------------------------------------------------------- etcd

# etcd 3.3.27 embed/config.go: DefaultEnableV2 = true; 3.4 turned the v2 API off by default.
ETCD_V2_OFF_BY_DEFAULT = Version(3, 4)
# --enable-v2: "Deprecated in v3.5. Will be decommission in v3.6." (server v3.5.10
# etcdmain/config.go); no such flag in server v3.6.4 (the v2 API is gone).
ETCD_V2_REMOVED = Version(3, 6)
# etcdctl 3.3.27 main.go: ETCDCTL_API unset or "2" runs the v2 commands; 3.4 made v3 the default
# (ETCDCTL_API=2 still runs ctlv2 in the 3.4-era tree; whether a 3.5 etcdctl still has the v2
# commands was not read: a v2 flanneld beside etcd >= 3.5 is untested).
ETCDCTL_V3_DEFAULT = Version(3, 4)

# ----------------------------------------------------------------------------- flannel

# flanneld v0.17.0 main.go builds its subnet manager on subnet/etcdv2 (the etcd v2 keys API);
# v0.18.1 main.go on subnet/etcd (go.etcd.io/etcd/client/v3). v0.18.0 is the first v0.18 release
# (the module proxy does not serve its zip; v0.18.1 is the first it does).
FLANNEL_ETCD_V3 = Version(0, 18)


def apiserver_has_insecure_port(version: Version) -> bool:
    return version < APISERVER_INSECURE_PORT_REMOVED


def kubelet_uses_dockershim(version: Version) -> bool:
    return version < DOCKERSHIM_REMOVED


def flannel_etcd_api(version: Version) -> int:
    """The etcd API (2 or 3) flanneld of this release reads its config and leases through."""
    return 3 if version >= FLANNEL_ETCD_V3 else 2


def etcd_serves_v2(version: Version, enable_v2: bool) -> bool:
    """Whether a member of this release answers the v2 API (on by default before 3.4, by flag until 3.6)."""
    if version >= ETCD_V2_REMOVED:
        return False
    return version < ETCD_V2_OFF_BY_DEFAULT or enable_v2


def declares_etcd_v2(etcd: str | None, flannel: str | None) -> bool:
    """Whether a cluster file's declared versions say the v2 API is in use: etcd before 3.4 serves
    it by default, and a flanneld before v0.18 reads its config through it. Only a hint for what
    to gather ahead (the suites decide from the versions the hosts print)."""
    etcd_version, flannel_version = release_of(etcd), release_of(flannel)
    return (etcd_version is not None and etcd_version < ETCD_V2_OFF_BY_DEFAULT) or (
        flannel_version is not None and flannel_version < FLANNEL_ETCD_V3
    )
