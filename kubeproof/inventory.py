"""The cluster model and its three sources: a cluster file, an Ansible inventory, testinfra host specs.

Everything above the transport keys on roles (master, node, etcd), never on addresses or on
whether a host is a VM or a lab container.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

ROLES = frozenset({"master", "node", "etcd"})
PROFILES = frozenset({"seed", "hardened"})
PROXY_MODES = frozenset({"iptables", "ipvs"})
TIME_SYNC_KINDS = frozenset({"chrony", "ntp", "timesyncd", "host-kernel"})

# Group names used by kubeasz and kubespray inventories, mapped to kubeproof roles.
ANSIBLE_GROUP_ROLES: Mapping[str, str] = {
    "etcd": "etcd",
    "kube_master": "master",
    "kube-master": "master",
    "kube_control_plane": "master",
    "master": "master",
    "kube_node": "node",
    "kube-node": "node",
    "node": "node",
}

# The guide's own table: used only when a host spec names a guide host and no other source
# gives roles.
GUIDE_ROLES: Mapping[str, tuple[frozenset[str], str]] = {
    "master01": (frozenset({"master", "etcd"}), "etcd01"),
    "node01": (frozenset({"node", "etcd"}), "etcd02"),
    "node02": (frozenset({"node", "etcd"}), "etcd03"),
}


class InventoryError(ValueError):
    """A problem in the user's inventory input; the message names file and line where known."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        self.source = source
        self.line = line
        where = ""
        if source:
            where = source + (f":{line}" if line else "") + ": "
        super().__init__(where + message)


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str
    roles: frozenset[str]
    etcd_name: str | None = None
    # testinfra-style connection spec, e.g. "paramiko://root@master01"; built from name if empty
    connection: str = ""

    def has_role(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class Network:
    pod_cidr: str = "172.17.0.0/16"
    service_cidr: str = "10.0.0.0/24"
    flannel_backend: str = "vxlan"
    kube_proxy_mode: str = "iptables"
    load_balancer_addresses: tuple[str, ...] = ()

    @property
    def service_first_address(self) -> str:
        return str(next(ipaddress.ip_network(self.service_cidr).hosts()))


@dataclass(frozen=True)
class Versions:
    kubernetes: str | None = None
    etcd: str | None = None
    flannel: str | None = None
    cri_dockerd: str | None = None


@dataclass(frozen=True)
class TimePolicy:
    max_skew_seconds: float = 1.0
    sync: str = "chrony"


@dataclass(frozen=True)
class Images:
    pause: str = "kubeproof/pause:3.10"
    test: str = "kubeproof/testbox:1"


@dataclass(frozen=True)
class Cluster:
    name: str
    hosts: tuple[HostSpec, ...]
    profile: str = "seed"
    network: Network = field(default_factory=Network)
    versions: Versions = field(default_factory=Versions)
    time: TimePolicy = field(default_factory=TimePolicy)
    images: Images = field(default_factory=Images)
    ssh_user: str = "root"
    ssh_config: Path | None = None
    ssh_sudo: bool = False
    artifacts: Path | None = None
    source: Path | None = None

    def host(self, name: str) -> HostSpec:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def with_role(self, role: str) -> list[HostSpec]:
        return [h for h in self.hosts if role in h.roles]

    @property
    def masters(self) -> list[HostSpec]:
        return self.with_role("master")

    @property
    def workers(self) -> list[HostSpec]:
        return self.with_role("node")

    @property
    def etcd_members(self) -> list[HostSpec]:
        return self.with_role("etcd")

    @property
    def etcd_client_urls(self) -> list[str]:
        return [f"https://{h.address}:2379" for h in self.etcd_members]

    @property
    def etcd_initial_cluster(self) -> str:
        return ",".join(f"{h.etcd_name}=https://{h.address}:2380" for h in self.etcd_members)

    def connection_spec(self, host: HostSpec) -> str:
        return host.connection or f"paramiko://{self.ssh_user}@{host.name}"

    def restricted_to(self, names: Iterable[str]) -> Cluster:
        wanted = set(names)
        return replace(self, hosts=tuple(h for h in self.hosts if h.name in wanted))


# ----------------------------------------------------------------------------- cluster file


class _Located:
    """A YAML value with the line it came from (1-based)."""

    __slots__ = ("line", "value")

    def __init__(self, value: Any, line: int):
        self.value = value
        self.line = line


def _compose_located(node: yaml.Node) -> _Located:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, _Located] = {}
        for key_node, value_node in node.value:
            key = str(yaml.safe_load(yaml.serialize(key_node)))
            if key in mapping:
                raise InventoryError(f"duplicate key {key!r}", line=key_node.start_mark.line + 1)
            mapping[key] = _compose_located(value_node)
        return _Located(mapping, line)
    if isinstance(node, yaml.SequenceNode):
        return _Located([_compose_located(v) for v in node.value], line)
    return _Located(yaml.safe_load(yaml.serialize(node)), line)


class _Reader:
    """Typed access to a located mapping; every error carries the file and line."""

    def __init__(self, located: _Located, where: str, source: str):
        if not isinstance(located.value, dict):
            raise InventoryError(f"{where} must be a mapping", source=source, line=located.line)
        self.located = located
        self.items: dict[str, _Located] = located.value
        self.where = where
        self.source = source
        self.used: set[str] = set()

    def error(self, message: str, key: str | None = None) -> InventoryError:
        line = self.items[key].line if key and key in self.items else self.located.line
        return InventoryError(message, source=self.source, line=line)

    def raw(self, key: str) -> _Located | None:
        self.used.add(key)
        return self.items.get(key)

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        item = self.raw(key)
        if item is None or item.value is None:
            if required:
                raise self.error(f"{self.where}: missing required key {key!r}")
            return default
        if not isinstance(item.value, (str, int, float)) or isinstance(item.value, bool):
            raise self.error(f"{self.where}.{key} must be a string", key)
        return str(item.value)

    def number(self, key: str, default: float) -> float:
        item = self.raw(key)
        if item is None:
            return default
        if isinstance(item.value, bool) or not isinstance(item.value, (int, float)):
            raise self.error(f"{self.where}.{key} must be a number", key)
        return float(item.value)

    def flag(self, key: str, default: bool) -> bool:
        item = self.raw(key)
        if item is None or item.value is None:
            return default
        if not isinstance(item.value, bool):
            raise self.error(f"{self.where}.{key} must be true or false", key)
        return item.value

    def strings(self, key: str) -> tuple[str, ...]:
        item = self.raw(key)
        if item is None or item.value is None:
            return ()
        if not isinstance(item.value, list):
            raise self.error(f"{self.where}.{key} must be a list", key)
        out = []
        for element in item.value:
            if not isinstance(element.value, str):
                raise InventoryError(
                    f"{self.where}.{key} entries must be strings", source=self.source, line=element.line
                )
            out.append(element.value)
        return tuple(out)

    def section(self, key: str) -> _Reader | None:
        item = self.raw(key)
        if item is None or item.value is None:
            return None
        return _Reader(item, f"{self.where}.{key}" if self.where else key, self.source)

    def reject_unknown(self) -> None:
        for key in self.items:
            if key not in self.used:
                raise self.error(f"{self.where or 'cluster file'}: unknown key {key!r}", key)


def _check_address(value: str, reader: _Reader, key: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise reader.error(f"{reader.where}.{key}: {value!r} is not an IP address", key) from None
    return value


def _check_cidr(value: str, reader: _Reader, key: str) -> str:
    try:
        ipaddress.ip_network(value)
    except ValueError:
        raise reader.error(f"{reader.where}.{key}: {value!r} is not a network CIDR", key) from None
    return value


def parse_cluster_text(text: str, source: str = "<cluster file>", base_dir: Path | None = None) -> Cluster:
    try:
        root_node = yaml.compose(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise InventoryError(f"YAML syntax: {exc.problem}", source=source, line=line) from None
    if root_node is None:
        raise InventoryError("the cluster file is empty", source=source, line=1)
    try:
        located = _compose_located(root_node)
    except InventoryError as exc:
        raise InventoryError(str(exc).split(": ", 1)[-1], source=source, line=exc.line) from None
    top = _Reader(located, "", source)

    name = top.text("name", "cluster") or "cluster"
    profile = top.text("profile", "seed") or "seed"
    if profile not in PROFILES:
        raise top.error(f"profile {profile!r} is not one of {sorted(PROFILES)}", "profile")

    hosts_item = top.raw("hosts")
    if hosts_item is None or not isinstance(hosts_item.value, list) or not hosts_item.value:
        raise top.error("'hosts' must be a non-empty list", "hosts")
    hosts: list[HostSpec] = []
    seen_names: dict[str, int] = {}
    seen_addresses: dict[str, int] = {}
    for entry in hosts_item.value:
        reader = _Reader(entry, "hosts[]", source)
        host_name = reader.text("name", required=True) or ""
        if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", host_name):
            raise reader.error(f"host name {host_name!r} is not a valid hostname", "name")
        if host_name in seen_names:
            raise reader.error(f"host {host_name!r} is listed twice (first at line {seen_names[host_name]})", "name")
        seen_names[host_name] = entry.line
        address = _check_address(reader.text("address", required=True) or "", reader, "address")
        if address in seen_addresses:
            raise reader.error(f"address {address} is used twice (first at line {seen_addresses[address]})", "address")
        seen_addresses[address] = entry.line
        roles = reader.strings("roles")
        if not roles:
            raise reader.error(f"host {host_name!r} has no roles (one or more of {sorted(ROLES)})", "roles")
        for role in roles:
            if role not in ROLES:
                raise reader.error(f"host {host_name!r}: unknown role {role!r} (known: {sorted(ROLES)})", "roles")
        etcd_name = reader.text("etcd_name")
        if "etcd" in roles and not etcd_name:
            raise reader.error(f"host {host_name!r} has role etcd but no etcd_name", "roles")
        connection = reader.text("connection", "") or ""
        reader.reject_unknown()
        hosts.append(HostSpec(host_name, address, frozenset(roles), etcd_name, connection))
    etcd_names = [h.etcd_name for h in hosts if "etcd" in h.roles]
    if len(set(etcd_names)) != len(etcd_names):
        raise top.error("etcd_name values must be unique", "hosts")

    network = Network()
    net = top.section("network")
    if net:
        network = Network(
            pod_cidr=_check_cidr(net.text("pod_cidr", network.pod_cidr) or "", net, "pod_cidr"),
            service_cidr=_check_cidr(net.text("service_cidr", network.service_cidr) or "", net, "service_cidr"),
            flannel_backend=net.text("flannel_backend", network.flannel_backend) or "vxlan",
            kube_proxy_mode=net.text("kube_proxy_mode", network.kube_proxy_mode) or "iptables",
            load_balancer_addresses=tuple(
                _check_address(a, net, "load_balancer_addresses") for a in net.strings("load_balancer_addresses")
            ),
        )
        if network.kube_proxy_mode not in PROXY_MODES:
            raise net.error(f"network.kube_proxy_mode must be one of {sorted(PROXY_MODES)}", "kube_proxy_mode")
        net.reject_unknown()

    versions = Versions()
    ver = top.section("versions")
    if ver:
        versions = Versions(
            kubernetes=ver.text("kubernetes"),
            etcd=ver.text("etcd"),
            flannel=ver.text("flannel"),
            cri_dockerd=ver.text("cri_dockerd"),
        )
        ver.reject_unknown()

    time_policy = TimePolicy()
    tm = top.section("time")
    if tm:
        time_policy = TimePolicy(
            max_skew_seconds=tm.number("max_skew_seconds", 1.0),
            sync=tm.text("sync", "chrony") or "chrony",
        )
        if time_policy.sync not in TIME_SYNC_KINDS:
            raise tm.error(f"time.sync must be one of {sorted(TIME_SYNC_KINDS)}", "sync")
        tm.reject_unknown()

    images = Images()
    im = top.section("images")
    if im:
        images = Images(
            pause=im.text("pause", images.pause) or images.pause, test=im.text("test", images.test) or images.test
        )
        im.reject_unknown()

    base = base_dir or Path.cwd()
    ssh_user = "root"
    ssh_config: Path | None = None
    ssh_sudo = False
    ssh = top.section("ssh")
    if ssh:
        ssh_user = ssh.text("user", "root") or "root"
        ssh_sudo = ssh.flag("sudo", False)
        config_text = ssh.text("config")
        if config_text:
            ssh_config = (base / config_text).resolve()
        ssh.reject_unknown()

    artifacts_text = top.text("artifacts")
    artifacts = (base / artifacts_text).resolve() if artifacts_text else None
    top.reject_unknown()
    return Cluster(
        name=name,
        hosts=tuple(hosts),
        profile=profile,
        network=network,
        versions=versions,
        time=time_policy,
        images=images,
        ssh_user=ssh_user,
        ssh_config=ssh_config,
        ssh_sudo=ssh_sudo,
        artifacts=artifacts,
        source=Path(source) if source and not source.startswith("<") else None,
    )


def load_cluster_file(path: Path) -> Cluster:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"cannot read cluster file: {exc.strerror}", source=str(path)) from None
    return parse_cluster_text(text, source=str(path), base_dir=path.resolve().parent)


# ----------------------------------------------------------------------------- host specs


@dataclass(frozen=True)
class ParsedHostSpec:
    """One entry of --hosts, in testinfra's syntax: backend://user@host:port?param=value."""

    spec: str
    backend: str
    user: str | None
    host: str
    port: int | None
    params: Mapping[str, str]


_SUPPORTED_BACKENDS = frozenset({"paramiko", "ssh"})


def parse_host_spec(spec: str) -> ParsedHostSpec:
    spec = spec.strip()
    if not spec:
        raise InventoryError("empty host spec in --hosts")
    text = spec if "://" in spec else "paramiko://" + spec
    backend, _, rest = text.partition("://")
    if backend not in _SUPPORTED_BACKENDS:
        raise InventoryError(
            f"host spec {spec!r}: backend {backend!r} is not supported "
            "(use paramiko:// or ssh://, both reach hosts over SSH)"
        )
    parsed = urllib.parse.urlsplit("ssh://" + rest)
    try:
        port = parsed.port
    except ValueError:
        raise InventoryError(f"host spec {spec!r}: the port is not a number") from None
    if not parsed.hostname:
        raise InventoryError(f"host spec {spec!r}: no host name")
    if not re.fullmatch(r"[A-Za-z0-9._:-]+", parsed.hostname):
        raise InventoryError(f"host spec {spec!r}: {parsed.hostname!r} is not a host name or address")
    params: dict[str, str] = {}
    for key, values in urllib.parse.parse_qs(parsed.query, keep_blank_values=True, strict_parsing=False).items():
        params[key] = values[-1]
    if parsed.query and not params:
        raise InventoryError(f"host spec {spec!r}: malformed query {parsed.query!r}")
    return ParsedHostSpec(spec, backend, parsed.username, parsed.hostname, port, params)


def split_hosts_option(value: str) -> list[str]:
    return [part for part in (p.strip() for p in value.split(",")) if part]


def cluster_from_host_specs(specs: Iterable[ParsedHostSpec], base: Cluster | None) -> Cluster:
    """Restrict a cluster to --hosts, or build one from the specs alone.

    Roles come from the cluster file when given, else from a ``roles=`` parameter, else from the
    guide's own host table.
    """
    hosts: list[HostSpec] = []
    for spec in specs:
        known = None
        if base is not None:
            for candidate in base.hosts:
                if spec.host in (candidate.name, candidate.address):
                    known = candidate
                    break
            if known is None:
                raise InventoryError(
                    f"host spec {spec.spec!r}: {spec.host!r} is not a host of cluster file {base.source}"
                )
            hosts.append(replace(known, connection=spec.spec if "://" in spec.spec else ""))
            continue
        roles_param = spec.params.get("roles")
        if roles_param is not None:
            roles = frozenset(roles_param.replace("+", " ").split())  # parse_qs turns "+" into " "
            unknown = roles - ROLES
            if unknown or not roles:
                raise InventoryError(
                    f"host spec {spec.spec!r}: unknown role {sorted(unknown)[0] if unknown else '(empty)'!r} "
                    f"(known: {sorted(ROLES)}; join several with '+')"
                )
            etcd_name = spec.params.get("etcd_name") or (GUIDE_ROLES.get(spec.host, (None, None))[1])
        elif spec.host in GUIDE_ROLES:
            roles, etcd_name = GUIDE_ROLES[spec.host]
        else:
            raise InventoryError(
                f"host spec {spec.spec!r}: no role known for {spec.host!r}; give --cluster or "
                "--ansible-inventory, or add ?roles=master+etcd to the spec"
            )
        address = spec.params.get("address", spec.host)
        hosts.append(HostSpec(spec.host, address, roles, etcd_name, spec.spec))
    if base is not None:
        return replace(base, hosts=tuple(hosts))
    return Cluster(name="hosts", hosts=tuple(hosts))


# ----------------------------------------------------------------------------- ansible


def load_ansible_inventory(path: Path, base: Cluster | None = None) -> Cluster:
    """Read an INI Ansible inventory (kubeasz/kubespray groups) into a cluster."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"cannot read Ansible inventory: {exc.strerror}", source=str(path)) from None
    # An inventory may name one machine by address in one group and by alias (with
    # ansible_host=) in another: collect every line first, then merge by address.
    entries: list[tuple[str, str | None, dict[str, str]]] = []
    group: str | None = None
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise InventoryError(f"malformed group header {line!r}", source=str(path), line=number)
            group = line[1:-1].strip()
            continue
        if group is None or ":" in group:  # [all:vars], [x:children] carry no hosts
            continue
        fields = line.split()
        host_vars: dict[str, str] = {}
        for item in fields[1:]:
            key, eq, value = item.partition("=")
            if not eq:
                raise InventoryError(f"malformed host variable {item!r}", source=str(path), line=number)
            host_vars[key] = value.strip("'\"")
        entries.append((fields[0], ANSIBLE_GROUP_ROLES.get(group), host_vars))
    address_of: dict[str, str] = {}
    for name, _role, host_vars in entries:
        if "ansible_host" in host_vars:
            address_of[name] = host_vars["ansible_host"]
    merged: dict[str, tuple[set[str], dict[str, str], list[str]]] = {}
    for name, role, host_vars in entries:
        address = address_of.get(name, name)
        roles, all_vars, aliases = merged.setdefault(address, (set(), {}, []))
        all_vars.update(host_vars)
        aliases.append(name)
        if role:
            roles.add(role)
    hosts: list[HostSpec] = []
    etcd_counter = 0
    for address, (roles, host_vars, aliases) in merged.items():
        if not roles:
            continue
        named = [a for a in aliases if not is_ip_address(a)]
        hostname = host_vars.get("k8s_nodename") or host_vars.get("hostname") or (named[0] if named else address)
        etcd_name = None
        if "etcd" in roles:
            etcd_counter += 1
            etcd_name = host_vars.get("NODE_NAME") or host_vars.get("etcd_member_name") or f"etcd{etcd_counter:02d}"
        hosts.append(HostSpec(hostname, address, frozenset(roles), etcd_name))
    if not hosts:
        raise InventoryError(
            "no host is in a known group (" + ", ".join(sorted(ANSIBLE_GROUP_ROLES)) + ")", source=str(path)
        )
    if base is not None:
        return replace(base, hosts=tuple(hosts))
    return Cluster(name=path.stem, hosts=tuple(hosts), source=path)


# ----------------------------------------------------------------------------- addresses


def is_ip_address(text: str) -> bool:
    """Whether ``text`` is one IPv4 or IPv6 address (not a host name, not a network)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def canonical_address(text: str) -> str:
    """An IP address in its canonical text (IPv6 compressed, as a certificate's SANs read back); a name as given.

    Hosts may be written "fd00:0::1" in a cluster file; comparing them with what a certificate
    says needs one spelling.
    """
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text
