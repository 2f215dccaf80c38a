"""The lab's stacks: named sets of versions, chosen with `--stack NAME` (issue 13).

A stack says which releases the lab deploys and which Go toolchain builds each project; how each
release is built (wrapper modules, the fixes an old release needs) is in lab.recipes. Every fix and
every non-default setting carries its reason here, so the cluster file and docs/STACKS.md can say why.

- guide: the guide's own era. Kubernetes v1.19.16 is the last release with the insecure port 8080
  and the kubelet's built-in dockershim (no cri-dockerd); etcd 3.3 (v2 API, `etcdctl cluster-health`);
  flannel v0.17.0, the last release that reads its config from the etcd v2 API.
- today: what the lab has always run; its paths, build directories and lock entries never move.
- newest: the newest releases the Go module proxy serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from kubeproof.lab.errors import LabError

# Toolchains: LOCAL_TOOLCHAIN is the machine's go (GOTOOLCHAIN=local); the only other one allowed is
# APPROVED_TOOLCHAIN, fetched through the module proxy when a release needs a newer Go.
LOCAL_TOOLCHAIN = "local"
APPROVED_TOOLCHAIN = "go1.27.3"
PROJECTS: tuple[str, ...] = ("kubernetes", "etcd", "flannel", "cri-dockerd")


@dataclass(frozen=True)
class Setting:
    """A non-default setting a stack needs on this machine, with the reason (recorded in the cluster file)."""

    component: str  # e.g. "kubelet"
    key: str  # e.g. "failCgroupV1" (a KubeletConfiguration field)
    value: str  # as it is written in that component's config, e.g. "false"
    reason: str


@dataclass(frozen=True)
class Stack:
    name: str
    description: str
    kubernetes: str  # "v1.19.16"
    etcd: str  # "3.3.27" (no "v", as etcd's tarballs and --version print it)
    flannel: str  # "v0.17.0"
    cri_dockerd: str | None  # "0.3.17"; None: the kubelet talks to docker through its built-in dockershim
    etcd_source: str  # "debian" (copied from Debian's packages) or "module" (built from Go modules)
    flannel_etcd_api: str  # "v2" or "v3": where that flannel release reads its network config
    flannel_module: str  # the module path that release declares
    # Go toolchain per project (PROJECTS): LOCAL_TOOLCHAIN or APPROVED_TOOLCHAIN.
    toolchains: Mapping[str, str] = field(default_factory=dict)
    settings: tuple[Setting, ...] = ()
    # What it took to build the release with today's Go, and why (docs/STACKS.md repeats them).
    build_notes: tuple[str, ...] = ()

    @property
    def uses_dockershim(self) -> bool:
        return self.cri_dockerd is None

    @property
    def default(self) -> bool:
        return self.name == DEFAULT_STACK

    def toolchain(self, project: str) -> str:
        if project not in PROJECTS:
            raise KeyError(project)
        return self.toolchains.get(project, LOCAL_TOOLCHAIN)

    def setting(self, component: str, key: str) -> Setting | None:
        for setting in self.settings:
            if setting.component == component and setting.key == key:
                return setting
        return None


GUIDE = Stack(
    name="guide",
    description="the guide's era: insecure port 8080, dockershim, etcd 3.3 (v2 API), flannel on the etcd v2 API",
    kubernetes="v1.19.16",
    etcd="3.3.27",
    flannel="v0.17.0",
    cri_dockerd=None,
    etcd_source="module",
    flannel_etcd_api="v2",
    flannel_module="github.com/flannel-io/flannel",
    build_notes=(
        "kubernetes v1.19.16: its go.mod pins every dependency with replace directives; the wrapper module"
        " keeps them all and points the staging modules (./staging/src/k8s.io/...) at their published"
        " v0.19.16 releases",
        "kubernetes v1.19.16: k8s.io/kubectl v0.19.16 imports vbom.ml/util/sortorder and that domain is gone"
        " (the module proxy refuses it); replaced by github.com/fvbommel/util at the same commit"
        " (v0.0.0-20160121211510-db5cfe13f5cc), the repository vbom.ml/util redirected to",
        "kubernetes v1.19.16: the version is stamped into k8s.io/component-base/version and"
        " k8s.io/client-go/pkg/version (kubectl 1.19 reads the latter), as hack/lib/version.sh does",
        "etcd 3.3.27 has no go.mod (glide): the wrapper pins the versions of its glide.lock; commits the"
        " module proxy cannot resolve by hash are pinned by the release tag glide.yaml names or by the"
        " pseudo-version of the same commit; see recipes.ETCD_3_3_27_PINS",
        "flannel v0.17.0: the last release with subnet/etcdv2 (go.etcd.io/etcd/client KeysAPI, reads"
        " <prefix>/config from the etcd v2 API); v0.18.0 moved to the etcd v3 API (subnet/etcd, client/v3)",
    ),
)

TODAY = Stack(
    name="today",
    description="what the lab has run so far",
    kubernetes="v1.34.4",
    etcd="3.4.23",
    flannel="v0.28.10",
    cri_dockerd="0.3.17",
    etcd_source="debian",
    flannel_etcd_api="v3",
    flannel_module="github.com/flannel-io/flannel",
    build_notes=("etcd 3.4.23 is Debian's (etcd-server, etcd-client), copied as packaged",),
)

NEWEST = Stack(
    name="newest",
    description="the newest releases the Go module proxy serves",
    kubernetes="v1.37.2",
    etcd="3.6.17",
    flannel="v0.28.10",
    cri_dockerd="0.4.0",
    etcd_source="module",
    flannel_etcd_api="v3",
    flannel_module="github.com/flannel-io/flannel",
    settings=(
        Setting(
            component="kubelet",
            key="failCgroupV1",
            value="false",
            reason="this machine runs cgroup v1, and the kubelet of v1.37.2 refuses to start on cgroup v1 unless"
            " KubeletConfiguration failCgroupV1 is false (pkg/kubelet/apis/config/validation/validation_linux.go"
            " of v1.37.2; the default true is set in pkg/kubelet/apis/config/v1beta1/defaults.go)",
        ),
    ),
    build_notes=(
        "kubernetes v1.37.2 (the module proxy's @latest; v1.38.0-beta.0 is a pre-release) declares go 1.26.0:"
        " the machine's go builds it",
        "etcd 3.6.17 is the newest 3.6 release the proxy serves (3.7 exists; the issue asks for 3.5 or 3.6)",
        "flannel v0.28.10 is the newest flannel release the proxy serves (the same as today's)",
        "cri-dockerd v0.4.0 is the newest release the proxy serves (CRI v1)",
    ),
)

STACKS: Mapping[str, Stack] = MappingProxyType({stack.name: stack for stack in (GUIDE, TODAY, NEWEST)})
DEFAULT_STACK = "today"


def stack_by_name(name: str) -> Stack:
    """The stack called name; a LabError naming the valid ones otherwise."""
    try:
        return STACKS[name]
    except KeyError:
        valid = ", ".join(STACKS)
        raise LabError(f"unknown stack {name!r}: choose one of {valid} (default {DEFAULT_STACK})") from None


def default_stack() -> Stack:
    return STACKS[DEFAULT_STACK]
