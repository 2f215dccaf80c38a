"""Where the lab keeps things, and what the lab looks like (the guide's own host table)."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from kubeproof.lab.errors import LabError

DEFAULT_CACHE_DIR = Path("/var/cache/kubeproof")
DEFAULT_LAB_NAME = "lab"

# Label carried by every Docker object a lab creates; its value is the lab name. `down` selects by it.
LAB_LABEL = "io.kubeproof.lab"
# Which node a container or volume belongs to (informational; selection is by LAB_LABEL).
NODE_LABEL = "io.kubeproof.node"
# On the lab network: the absolute state directory, so `down` run from any directory finds it.
STATE_DIR_LABEL = "io.kubeproof.state-dir"
# On the node image: the recipe hash the image was built from.
RECIPE_LABEL = "io.kubeproof.recipe"
# On the lab network and node containers: who logs in over SSH (a lab keeps its login across `up`).
LOGIN_LABEL = "io.kubeproof.login"

# The logins a lab can have: root with the lab's key (the default), or a Vagrant-shaped box where
# root cannot log in over SSH and the user `vagrant` has passwordless sudo.
ROOT_LOGIN = "root"
VAGRANT_LOGIN = "vagrant"
LOGINS: tuple[str, ...] = (ROOT_LOGIN, VAGRANT_LOGIN)

LAB_SUBNET = ipaddress.IPv4Network("192.168.61.0/24")
LAB_GATEWAY = ipaddress.IPv4Address("192.168.61.1")

_LAB_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


@dataclass(frozen=True)
class NodeSpec:
    """One host of the guide's table: its hostname, address, roles and etcd member name."""

    name: str
    address: str
    roles: tuple[str, ...]
    etcd_name: str | None


# The guide's table (section 一): master01 = master + etcd01, node01/node02 = workers + etcd02/03.
LAB_NODES: tuple[NodeSpec, ...] = (
    NodeSpec("master01", "192.168.61.17", ("master", "etcd"), "etcd01"),
    NodeSpec("node01", "192.168.61.18", ("node", "etcd"), "etcd02"),
    NodeSpec("node02", "192.168.61.22", ("node", "etcd"), "etcd03"),
)


def cache_dir() -> Path:
    """$KUBEPROOF_CACHE (default /var/cache/kubeproof): builds, artifacts, rootfs; never the repo."""
    return Path(os.environ.get("KUBEPROOF_CACHE") or DEFAULT_CACHE_DIR).absolute()


def state_root() -> Path:
    """$KUBEPROOF_STATE (default <cwd>/.kubeproof)."""
    configured = os.environ.get("KUBEPROOF_STATE")
    return Path(configured).absolute() if configured else Path.cwd() / ".kubeproof"


def artifacts_dir() -> Path:
    return cache_dir() / "artifacts"


def build_dir() -> Path:
    return cache_dir() / "build"


@dataclass(frozen=True)
class LabSettings:
    """One lab: its name (the label value), its state directory and its SSH login.

    login None: not said; `up` then keeps the login the lab has (root for a new lab), and the other
    commands read it from the lab (labctl.with_lab_login).
    """

    name: str
    state_dir: Path
    login: str | None = None

    @classmethod
    def create(
        cls, name: str = DEFAULT_LAB_NAME, state_dir: Path | None = None, login: str | None = None
    ) -> LabSettings:
        if not _LAB_NAME_PATTERN.match(name):
            raise LabError(f"invalid lab name {name!r}: use lowercase letters, digits and '-' (max 31 characters)")
        if login is not None and login not in LOGINS:
            raise LabError(f"invalid login {login!r}: use one of {', '.join(LOGINS)}")
        return cls(name=name, state_dir=(state_dir or state_root() / "lab").absolute(), login=login)

    @property
    def ssh_user(self) -> str:
        """Who logs in over SSH: root, or the vagrant user."""
        return self.login or ROOT_LOGIN

    @property
    def sudo(self) -> bool:
        """Whether commands over SSH need `sudo -n` (every login but root)."""
        return self.ssh_user != ROOT_LOGIN

    @property
    def network_name(self) -> str:
        return f"kubeproof-{self.name}"

    def volume_name(self, node: NodeSpec) -> str:
        return f"kubeproof-{self.name}-{node.name}-docker"

    @property
    def label_filter(self) -> str:
        return f"label={LAB_LABEL}={self.name}"

    @property
    def cluster_file(self) -> Path:
        return self.state_dir / "cluster.yaml"

    @property
    def ssh_config_file(self) -> Path:
        return self.state_dir / "ssh_config"

    @property
    def private_key_file(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def public_key_file(self) -> Path:
        return self.state_dir / "id_ed25519.pub"

    @property
    def known_hosts_file(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def state_files(self) -> tuple[Path, ...]:
        """Every file `up` writes into the state directory (and `down` removes; nothing else)."""
        return (
            self.cluster_file,
            self.ssh_config_file,
            self.private_key_file,
            self.public_key_file,
            self.known_hosts_file,
        )


def node_by_name(name: str) -> NodeSpec:
    for node in LAB_NODES:
        if node.name == name:
            return node
    known = ", ".join(node.name for node in LAB_NODES)
    raise LabError(f"no lab node named {name!r}: the lab has {known}")
