"""The lab's cluster file, in the format of docs/DESIGN.md (nothing in it is lab-only)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubeproof.lab.settings import NodeSpec
from kubeproof.lab.stacks import STACKS, Stack, default_stack

# What the lab deploys by default (the `today` stack); versions match lab/artifacts.lock.json.
# Aliases kept for the modules that import them; the stack data in lab.stacks is the source.
KUBERNETES_VERSION = STACKS["today"].kubernetes
ETCD_VERSION = STACKS["today"].etcd
FLANNEL_VERSION = STACKS["today"].flannel
CRI_DOCKERD_VERSION = STACKS["today"].cri_dockerd or ""
PAUSE_IMAGE = "kubeproof/pause:3.10"
TEST_IMAGE = "kubeproof/testbox:1"

# The guide's networks: flannel Network 172.17.0.0/16, service range 10.0.0.0/24.
POD_CIDR = "172.17.0.0/16"
SERVICE_CIDR = "10.0.0.0/24"


@dataclass(frozen=True)
class ClusterFileInputs:
    lab_name: str
    nodes: Sequence[NodeSpec]
    ssh_config: str  # relative to the cluster file
    artifacts_dir: Path
    profile: str = "seed"
    ssh_user: str = "root"
    ssh_sudo: bool = False  # every command under `sudo -n` (the vagrant login)
    stack: Stack = field(default_factory=default_stack)


def _scalar(value: str) -> str:
    # JSON strings are valid YAML double-quoted scalars; plain words stay plain for readability.
    if value and all(ch.isalnum() or ch in "._-/:" for ch in value) and value[0] not in "-:":
        return value
    return json.dumps(value)


def render_cluster_file(inputs: ClusterFileInputs) -> str:
    lines = [
        "# Written by `kubeproof lab up`. An ordinary cluster file: real VMs would have the same.",
        f"name: {_scalar(inputs.lab_name)}",
        f"profile: {_scalar(inputs.profile)}",
        "hosts:",
    ]
    for node in inputs.nodes:
        lines.append(f"  - name: {_scalar(node.name)}")
        lines.append(f"    address: {_scalar(node.address)}")
        lines.append(f"    roles: [{', '.join(_scalar(role) for role in node.roles)}]")
        if node.etcd_name:
            lines.append(f"    etcd_name: {_scalar(node.etcd_name)}")
    lines += [
        "network:",
        f"  pod_cidr: {POD_CIDR}",
        f"  service_cidr: {SERVICE_CIDR}",
        "  flannel_backend: vxlan",
        "  # declared, never a silent switch; this machine's kernel has no ip_vs",
        "  kube_proxy_mode: iptables",
        "  load_balancer_addresses: []",
        *_versions_lines(inputs.stack),
        "ssh:",
        f"  user: {_scalar(inputs.ssh_user)}",
        *(["  sudo: true"] if inputs.ssh_sudo else []),
        f"  config: {_scalar(inputs.ssh_config)}",
        f"artifacts: {_scalar(str(inputs.artifacts_dir))}",
        "images:",
        f"  pause: {PAUSE_IMAGE}",
        f"  test: {TEST_IMAGE}",
        "time:",
        "  max_skew_seconds: 1.0",
        "  # lab nodes are containers sharing the machine's kernel clock",
        "  sync: host-kernel",
    ]
    return "\n".join(lines) + "\n"


def _versions_lines(stack: Stack) -> list[str]:
    """The versions section; a stack other than the default names itself and its settings in comments."""
    lines = []
    if not stack.default:
        lines.append(f"# stack {stack.name}: {stack.description}")
    lines += [
        "versions:",
        f"  kubernetes: {stack.kubernetes}",
        f"  etcd: {stack.etcd}",
        f"  flannel: {stack.flannel}",
    ]
    if stack.cri_dockerd is None:
        lines.append("  # no cri_dockerd: the kubelet talks to docker through its built-in dockershim")
    else:
        lines.append(f"  cri_dockerd: {stack.cri_dockerd}")
    for setting in stack.settings:
        lines.append(f"  # {setting.component} {setting.key}: {setting.value} -- {setting.reason}")
    return lines
