"""The lab's cluster file, in the format of docs/DESIGN.md (nothing in it is lab-only)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kubeproof.lab.settings import NodeSpec

# What the lab deploys; versions match lab/artifacts.lock.json.
KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "3.4.23"
FLANNEL_VERSION = "v0.28.10"
CRI_DOCKERD_VERSION = "0.3.17"
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
        "versions:",
        f"  kubernetes: {KUBERNETES_VERSION}",
        f"  etcd: {ETCD_VERSION}",
        f"  flannel: {FLANNEL_VERSION}",
        f"  cri_dockerd: {CRI_DOCKERD_VERSION}",
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
