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


# Workers beyond the guide's two (`lab up --workers N`): node03 at .23, node04 at .24, ... (no etcd
# member: the guide's etcd cluster stays the three members of its table).
MAX_WORKERS = 8
_EXTRA_WORKER_FIRST_ADDRESS = 23

# A scale lab (`lab up --scale N`): N light hosts (systemd and sshd; docker masked, no volume) on a
# network of their own, so it can stand beside the guide's lab. Enough for the host-level groups:
# the installer's environment and pki phases lay out what ENV, PKI-E, PKI-K and SEC files check.
SCALE_SUBNET = ipaddress.IPv4Network("192.168.62.0/24")
SCALE_GATEWAY = ipaddress.IPv4Address("192.168.62.1")
MAX_SCALE_HOSTS = 200
_SCALE_FIRST_ADDRESS = 11
SCALE_ETCD_MEMBERS = 3


def guide_nodes(workers: int = 2) -> tuple[NodeSpec, ...]:
    """The guide's table, with workers beyond node02 appended (node03, node04, ...)."""
    if not 2 <= workers <= MAX_WORKERS:
        raise LabError(f"--workers {workers}: the lab has from 2 (the guide's) to {MAX_WORKERS} workers")
    first = LAB_SUBNET.network_address + _EXTRA_WORKER_FIRST_ADDRESS
    extra = tuple(NodeSpec(f"node{n:02d}", str(first + n - 3), ("node",), None) for n in range(3, workers + 1))
    return LAB_NODES + extra


def scale_nodes(count: int) -> tuple[NodeSpec, ...]:
    """scale001..scaleNNN: the first a master and etcd member, the next two workers and etcd members
    (the guide's roles), the rest workers."""
    if not 1 <= count <= MAX_SCALE_HOSTS:
        raise LabError(f"--scale {count}: a scale lab has from 1 to {MAX_SCALE_HOSTS} hosts")
    nodes = []
    for index in range(count):
        roles: tuple[str, ...] = ("master", "etcd") if index == 0 else ("node", "etcd")
        if index >= SCALE_ETCD_MEMBERS:
            roles = ("node",)
        address = str(SCALE_SUBNET.network_address + _SCALE_FIRST_ADDRESS + index)
        etcd_name = f"etcd{index + 1:02d}" if "etcd" in roles else None
        nodes.append(NodeSpec(f"scale{index + 1:03d}", address, roles, etcd_name))
    return tuple(nodes)


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
    workers: int = 2  # the guide's lab: node01, node02 and any more (node03, ...)
    scale: int = 0  # > 0: a scale lab of that many light hosts instead of the guide's

    @property
    def nodes(self) -> tuple[NodeSpec, ...]:
        return scale_nodes(self.scale) if self.scale else guide_nodes(self.workers)

    @property
    def light(self) -> bool:
        """Hosts without docker (masked) or a docker volume: a scale lab's."""
        return self.scale > 0

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return SCALE_SUBNET if self.scale else LAB_SUBNET

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return SCALE_GATEWAY if self.scale else LAB_GATEWAY

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(node.name for node in self.nodes)
        raise LabError(f"no lab node named {name!r}: the lab has {known}")

    @classmethod
    def create(
        cls,
        name: str = DEFAULT_LAB_NAME,
        state_dir: Path | None = None,
        login: str | None = None,
        workers: int = 2,
        scale: int = 0,
    ) -> LabSettings:
        if not _LAB_NAME_PATTERN.match(name):
            raise LabError(f"invalid lab name {name!r}: use lowercase letters, digits and '-' (max 31 characters)")
        if login is not None and login not in LOGINS:
            raise LabError(f"invalid login {login!r}: use one of {', '.join(LOGINS)}")
        if scale and workers != 2:
            raise LabError("--scale and --workers do not go together: a scale lab has its own hosts")
        directory = (state_dir or state_root() / name_dir(name)).absolute()
        settings = cls(name=name, state_dir=directory, login=login, workers=workers, scale=scale)
        settings.nodes  # noqa: B018  (validates the counts: a LabError names the bad one)
        return settings

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


def name_dir(name: str) -> str:
    """The state directory under $KUBEPROOF_STATE: `lab` for the default lab, `lab-<name>` else."""
    return "lab" if name == DEFAULT_LAB_NAME else f"lab-{name}"
