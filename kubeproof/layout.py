"""The guide's paths on the hosts: one place, used by the installer and by the facts."""

from __future__ import annotations

ETCD_HOME = "/opt/etcd"
ETCD_BIN = ETCD_HOME + "/bin"
ETCD_CFG = ETCD_HOME + "/cfg"
ETCD_SSL = ETCD_HOME + "/ssl"
ETCD_ENV_FILE = ETCD_CFG + "/etcd"
ETCD_DATA_DIR = "/var/lib/etcd/default.etcd"

K8S_HOME = "/opt/kubernetes"
K8S_BIN = K8S_HOME + "/bin"
K8S_CFG = K8S_HOME + "/cfg"
K8S_SSL = K8S_HOME + "/ssl"
K8S_LOGS = K8S_HOME + "/logs"
TOKEN_CSV = K8S_CFG + "/token.csv"

SYSTEMD_DIR = "/usr/lib/systemd/system"
FLANNEL_SUBNET_ENV = "/run/flannel/subnet.env"
FLANNEL_DOCKER_OPTS = "/run/flannel/docker"


def is_secret_path(path: str) -> bool:
    """Files whose content never leaves the host (only their mode and fingerprints do)."""
    name = path.rsplit("/", 1)[-1]
    return name.endswith(("-key.pem", ".key")) or name in ("token.csv",) or name.endswith("kubeconfig")
