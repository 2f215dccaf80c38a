"""Facts about a worker's container network: docker (chapter 三) and flannel (chapter 四).

Each layer is read on its own and the probes cross-check them: the lease flannel holds in etcd
(/coreos.com/network/subnets/*, through the v3 API or, for a flanneld before v0.18, the v2 keys
API), /run/flannel/subnet.env, the vxlan device flannel.1, docker0, and the routes, neighbour and
fdb entries flannel programs for every other node. The parsers of flannel's etcd values live here
too: they are pure and tested offline.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubeproof import layout
from kubeproof.facts import Fact, ParseError, Raw
from kubeproof.facts.etcd import parse_env_file, service_fact
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.session import fact_set
from kubeproof.versions import declares_etcd_v2

FLANNEL_DEVICE = "flannel.1"  # flannel.<VNI>; the guide's VNI is the default, 1
FLANNEL_PREFIX = "/coreos.com/network"
FLANNEL_CONFIG_KEY = FLANNEL_PREFIX + "/config"
FLANNEL_SUBNETS_PREFIX = FLANNEL_PREFIX + "/subnets/"
SUBNET_ENV_KEYS = ("FLANNEL_NETWORK", "FLANNEL_SUBNET", "FLANNEL_MTU", "FLANNEL_IPMASQ")

# ----------------------------------------------------------------------------- flannel's etcd values


@dataclass(frozen=True)
class FlannelLease:
    """One /coreos.com/network/subnets/<a.b.c.d-len> key: flannel's lease.LeaseAttrs JSON."""

    key: str
    subnet: ipaddress.IPv4Network
    public_ip: str
    backend_type: str
    vni: int | None
    vtep_mac: str | None

    def describe(self) -> str:
        return f"{self.subnet} (PublicIP {self.public_ip})"


def json_object(text: str, what: str) -> dict[str, Any]:
    """``text`` as a JSON object, or a ParseError that says what it was."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ParseError(f"{what} is not JSON: {text.strip()[:160]!r}") from None
    if not isinstance(value, dict):
        raise ParseError(f"{what} is not a JSON object: {text.strip()[:160]!r}")
    return value


def parse_lease(key: str, value: bytes | str) -> FlannelLease:
    """Parse a lease; the key names the subnet (`172.17.45.0-24`, `&<ipv6>` appended when dual-stack)."""
    name = key.rsplit("/", 1)[-1].split("&", 1)[0]
    address, sep, prefix = name.rpartition("-")
    if not sep:
        raise ParseError(f"lease key {key!r} does not name a subnet")
    try:
        subnet = ipaddress.IPv4Network(f"{address}/{prefix}")
    except ValueError as exc:
        raise ParseError(f"lease key {key!r}: {exc}") from None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    attrs = json_object(text, f"lease {key!r}")
    backend = attrs.get("BackendData") or {}
    vni = backend.get("VNI") if isinstance(backend, dict) else None
    mac = backend.get("VtepMAC") if isinstance(backend, dict) else None
    return FlannelLease(
        key=key,
        subnet=subnet,
        public_ip=str(attrs.get("PublicIP") or ""),
        backend_type=str(attrs.get("BackendType") or ""),
        vni=int(vni) if isinstance(vni, int) else None,
        vtep_mac=str(mac).lower() if mac else None,
    )


def parse_flannel_config(value: bytes | str) -> dict[str, Any]:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{FLANNEL_CONFIG_KEY} is not JSON ({exc.msg}): {text[:120]!r}") from None
    if not isinstance(config, dict):
        raise ParseError(f"{FLANNEL_CONFIG_KEY} is not a JSON object: {text[:120]!r}")
    return config


def config_value(config: Mapping[str, Any], path: str) -> Any:
    """`Backend.Type` -> config["Backend"]["Type"]; None when any step is missing."""
    current: Any = config
    for step in path.split("."):
        if not isinstance(current, Mapping) or step not in current:
            return None
        current = current[step]
    return current


# ----------------------------------------------------------------------------- the v2 API (flanneld < v0.18)


@dataclass(frozen=True)
class V2Keys:
    """flannel's keys as the etcd v2 keys API serves them (a flanneld before v0.18 reads them so)."""

    config: str | None  # the config key's value; None when the key does not exist
    config_error: str  # why there is no value ("" when there is)
    leases: list[tuple[str, str]]  # (key, value) under /coreos.com/network/subnets


_V2_SECTION = "@@kp-v2 "


def _v2_node(body: str, what: str) -> dict[str, Any] | None:
    """The `node` of a v2 GET answer; None for errorCode 100 (Key not found).

    Shapes (etcd 3.3.27 store/event.go, store/node_extern.go, error/error.go): `{"action": "get",
    "node": {"key", "value", "dir", "nodes": [...], "modifiedIndex", "createdIndex"}}`, or
    `{"errorCode": 100, "message": "Key not found", "cause": "/coreos.com/network/config", "index": N}`.
    """
    answer = json_object(body, f"etcd v2 GET {what}")
    if "errorCode" in answer:
        if answer.get("errorCode") == 100:
            return None
        raise ParseError(f"etcd v2 GET {what}: error {answer.get('errorCode')}: {answer.get('message')}")
    node = answer.get("node")
    if not isinstance(node, dict):
        raise ParseError(f"etcd v2 GET {what}: no node in {body.strip()[:160]!r}")
    return node


def parse_v2_keys(raw: Raw) -> V2Keys:
    """The output of ``flannel_v2_keys``: per key a `@@kp-v2 <name> <curl exit> <http code>` header, then the body."""
    sections: dict[str, tuple[int, str, list[str]]] = {}
    current: list[str] | None = None
    for line in raw.stdout.split("\n"):
        if line.startswith(_V2_SECTION):
            fields = line[len(_V2_SECTION) :].split()
            if len(fields) != 3 or not fields[1].isdigit():
                raise ParseError(f"unexpected section header {line!r}")
            current = []
            sections[fields[0]] = (int(fields[1]), fields[2], current)
        elif current is not None:
            current.append(line)
    for name in ("config", "subnets"):
        if name not in sections:
            raise ParseError(f"no {name} section in {raw.stdout[:200]!r} (stderr {raw.stderr.strip()[:200]!r})")
        rc, code, lines = sections[name]
        if rc != 0:
            raise ParseError(f"curl to the etcd v2 API ({name}) exited {rc}: {' '.join(lines).strip()[:200]}")
        if code not in ("200", "404"):
            raise ParseError(f"etcd v2 API ({name}) answered HTTP {code}: {' '.join(lines).strip()[:200]}")
    config_node = _v2_node("\n".join(sections["config"][2]), FLANNEL_CONFIG_KEY)
    config = None if config_node is None else str(config_node.get("value", ""))
    error = f"{FLANNEL_CONFIG_KEY} does not exist (v2 API)" if config_node is None else ""
    subnets = _v2_node("\n".join(sections["subnets"][2]), FLANNEL_SUBNETS_PREFIX)
    leases = [
        (str(node.get("key", "")), str(node.get("value", "")))
        for node in (subnets or {}).get("nodes") or []
        if isinstance(node, dict) and not node.get("dir")
    ]
    return V2Keys(config, error, leases)


def flannel_v2_keys(member: HostSpec) -> Fact[V2Keys]:
    """On an etcd member: GET flannel's config and leases from its own v2 keys API over TLS.

    The client key is read by curl on the member; its bytes never leave it.
    """
    ssl = layout.ETCD_SSL
    base = f"https://{member.address}:2379/v2/keys"
    tls = ["--cacert", ssl + "/ca.pem", "--cert", ssl + "/server.pem", "--key", ssl + "/server-key.pem"]
    parts = []
    for name, key in (("config", FLANNEL_CONFIG_KEY), ("subnets", FLANNEL_SUBNETS_PREFIX.rstrip("/"))):
        curl = shlex.join(["curl", "-sS", "-m", "5", *tls, "-w", "\n%{http_code}", base + key])
        parts.append(
            f'out=$({curl} 2>&1); rc=$?; code=$(printf \'%s\' "$out" | tail -n 1); [ "$rc" = 0 ] || code=000; '
            f'printf \'%s %s %s %s\\n\' {shlex.quote(_V2_SECTION.strip())} {name} "$rc" "${{code:-000}}"; '
            "printf '%s\\n' \"$out\" | sed '$d'"
        )
    return Fact("flannel.v2-keys", "; ".join(parts), parse_v2_keys, requires=("curl",))


def parse_flanneld_version(raw: Raw) -> str:
    """`flanneld --version` prints its release (`v0.28.10`); `missing` when there is no binary."""
    text = raw.stdout.strip()
    return text.splitlines()[0].strip() if text else "missing"


flanneld_version = Fact(
    "flannel.version",
    f'p={shlex.quote(layout.K8S_BIN + "/flanneld")}; [ -x "$p" ] && "$p" --version 2>&1 | head -n 1 || true',
    parse_flanneld_version,
)


# ----------------------------------------------------------------------------- subnet.env


def parse_subnet_env(raw: Raw) -> dict[str, str] | None:
    if raw.rc != 0:
        if "No such file" in raw.stderr:
            return None
        raise ParseError(raw.stderr.strip() or f"cat exited {raw.rc}")
    return parse_env_file(raw.stdout)


subnet_env = Fact("flannel.subnet-env", "cat -- " + shlex.quote(layout.FLANNEL_SUBNET_ENV), parse_subnet_env)


# ----------------------------------------------------------------------------- links and addresses


@dataclass(frozen=True)
class Link:
    """A device as `ip -d -j link` / `ip -j addr` show it (the fields the checks use)."""

    name: str
    mtu: int
    mac: str
    flags: tuple[str, ...]
    kind: str
    vxlan: Mapping[str, Any]
    addresses: tuple[str, ...]  # IPv4 "a.b.c.d/len"

    @property
    def up(self) -> bool:
        return "UP" in self.flags


def _missing_device(raw: Raw) -> bool:
    return raw.rc != 0 and ("does not exist" in raw.stderr or "Cannot find device" in raw.stderr)


def parse_ip_link(raw: Raw) -> Link | None:
    """`ip -d -j addr show dev X` (one device); None when the device does not exist."""
    if _missing_device(raw):
        return None
    try:
        data = json.loads(raw.stdout or "null")
    except json.JSONDecodeError:
        raise ParseError(f"ip printed no JSON: {raw.stdout[:200]!r} {raw.stderr[:200]!r}") from None
    if not isinstance(data, list) or not data:
        if raw.rc != 0:
            raise ParseError(raw.stderr.strip() or f"ip exited {raw.rc}")
        return None
    entry = data[0]
    linkinfo = entry.get("linkinfo") or {}
    addresses = tuple(
        f"{a['local']}/{a['prefixlen']}"
        for a in entry.get("addr_info") or []
        if a.get("family") == "inet" and "local" in a and "prefixlen" in a
    )
    return Link(
        name=str(entry.get("ifname", "")),
        mtu=int(entry.get("mtu", 0)),
        mac=str(entry.get("address", "")).lower(),
        flags=tuple(entry.get("flags") or ()),
        kind=str(linkinfo.get("info_kind", "")),
        vxlan=dict(linkinfo.get("info_data") or {}) if linkinfo.get("info_kind") == "vxlan" else {},
        addresses=addresses,
    )


def link_fact(device: str) -> Fact[Link | None]:
    # `ip -d addr` carries both the link details (vxlan id, port, local) and the addresses
    return Fact("ip-link:" + device, "ip -d -j addr show dev " + shlex.quote(device), parse_ip_link, requires=("ip",))


flannel_link = link_fact(FLANNEL_DEVICE)
docker0_link = link_fact("docker0")


@dataclass(frozen=True)
class Route:
    dst: str
    gateway: str
    dev: str
    flags: tuple[str, ...]

    def describe(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        onlink = " onlink" if "onlink" in self.flags else ""
        return f"{self.dst}{via} dev {self.dev}{onlink}"


def _json_list(raw: Raw, what: str) -> list[dict[str, Any]]:
    if _missing_device(raw):
        return []
    if raw.rc != 0:
        raise ParseError(raw.stderr.strip() or f"{what} exited {raw.rc}")
    try:
        data = json.loads(raw.stdout or "[]")
    except json.JSONDecodeError:
        raise ParseError(f"{what} printed no JSON: {raw.stdout[:200]!r}") from None
    if not isinstance(data, list):
        raise ParseError(f"{what} printed {type(data).__name__}, not a list")
    return [item for item in data if isinstance(item, dict)]


def parse_routes(raw: Raw) -> list[Route]:
    return [
        Route(str(r.get("dst", "")), str(r.get("gateway", "")), str(r.get("dev", "")), tuple(r.get("flags") or ()))
        for r in _json_list(raw, "ip route")
    ]


routes = Fact("ip-routes", "ip -j route show table main", parse_routes, requires=("ip",))


@dataclass(frozen=True)
class Neighbour:
    dst: str
    lladdr: str
    state: tuple[str, ...]


def parse_neighbours(raw: Raw) -> list[Neighbour]:
    return [
        Neighbour(str(n.get("dst", "")), str(n.get("lladdr", "")).lower(), tuple(n.get("state") or ()))
        for n in _json_list(raw, "ip neigh")
    ]


flannel_neighbours = Fact(
    "ip-neigh:" + FLANNEL_DEVICE, "ip -j neigh show dev " + shlex.quote(FLANNEL_DEVICE), parse_neighbours, ("ip",)
)


@dataclass(frozen=True)
class FdbEntry:
    mac: str
    dst: str
    state: str


def parse_fdb(raw: Raw) -> list[FdbEntry]:
    return [
        FdbEntry(str(e.get("mac", "")).lower(), str(e.get("dst", "")), str(e.get("state", "")))
        for e in _json_list(raw, "bridge fdb")
    ]


flannel_fdb = Fact(
    "bridge-fdb:" + FLANNEL_DEVICE, "bridge -j fdb show dev " + shlex.quote(FLANNEL_DEVICE), parse_fdb, ("bridge",)
)


def parse_forward_chain(raw: Raw) -> list[str]:
    """`iptables -S FORWARD`: the policy line first, then the rules (diagnosis only)."""
    if raw.rc != 0:
        return [f"iptables -S FORWARD failed: {raw.stderr.strip()[:200]}"]
    return [line for line in raw.stdout.splitlines() if line.strip()]


forward_chain = Fact("iptables-forward", "iptables -w 5 -S FORWARD", parse_forward_chain, requires=("iptables",))

# ----------------------------------------------------------------------------- docker


@dataclass(frozen=True)
class DockerEngine:
    dockerd: str | None  # path of the daemon binary
    client_version: str
    server_version: str | None  # None: the daemon did not answer
    server_error: str
    daemon_json: Mapping[str, Any] | None  # /etc/docker/daemon.json (None: absent)
    daemon_json_error: str


def parse_docker_engine(raw: Raw) -> DockerEngine:
    values: dict[str, str] = {}
    daemon_lines: list[str] = []
    in_daemon_json = False
    for line in raw.stdout.split("\n"):
        if line == "@@daemon.json":
            in_daemon_json = True
            continue
        if in_daemon_json:
            daemon_lines.append(line)
            continue
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value.strip()
    daemon_json: Mapping[str, Any] | None = None
    daemon_json_error = ""
    if in_daemon_json and "".join(daemon_lines).strip():
        try:
            loaded = json.loads("\n".join(daemon_lines))
            daemon_json = loaded if isinstance(loaded, dict) else {}
        except json.JSONDecodeError as exc:
            daemon_json, daemon_json_error = {}, f"/etc/docker/daemon.json is not JSON: {exc.msg}"
    elif in_daemon_json:
        daemon_json = {}
    server = values.get("server", "")
    return DockerEngine(
        dockerd=values.get("dockerd") or None,
        client_version=values.get("client", ""),
        server_version=server or None,
        server_error=values.get("server_error", ""),
        daemon_json=daemon_json,
        daemon_json_error=daemon_json_error,
    )


# The daemon is asked only when docker.service is active: docker's CLI dials docker.sock, and with
# socket activation that starts docker.service, which then waits for flanneld (a probe must not
# start units, nor hang on one that cannot start). `docker --version` reads no socket.
DOCKER_NOT_ASKED = "docker.service is not active (the daemon was not asked: its socket would start it)"
docker_engine = Fact(
    "docker.engine",
    'echo "dockerd=$(command -v dockerd)"; '
    "echo \"client=$(docker --version 2>/dev/null | sed -n 's/^Docker version \\([^,]*\\),.*/\\1/p')\"; "
    "if ! systemctl is-active --quiet docker.service; then "
    "echo " + shlex.quote("server_error=" + DOCKER_NOT_ASKED) + "; "
    "else s=$(timeout 10 docker version --format '{{.Server.Version}}' 2>&1); "
    'if [ $? -eq 0 ]; then echo "server=$s"; else echo "server_error=$(printf %s "$s" | tr "\\n" " ")"; fi; fi; '
    "if [ -f /etc/docker/daemon.json ]; then echo @@daemon.json; cat /etc/docker/daemon.json; fi",
    parse_docker_engine,
)

docker_service = service_fact("docker.service", "DOCKER[A-Z0-9_]*|FLANNEL_[A-Z0-9_]*")
flanneld_service = service_fact("flanneld.service", "FLANNEL[A-Z0-9_]*", journal_match="Using interface")

# flanneld's boolean flags (a bare `--ip-masq` takes no value)
FLANNELD_BOOLEAN_FLAGS = frozenset(
    {"ip-masq", "kube-subnet-mgr", "version", "subnet-lease-renew-margin-disabled", "iptables-forward-rules", "v6"}
)
DOCKERD_BOOLEAN_FLAGS = frozenset(
    {"D", "debug", "ip-masq", "iptables", "ip6tables", "ip-forward", "icc", "live-restore", "experimental", "tls"}
)


@fact_set("node", groups=("DOCKER", "FLANNEL"))
def network_facts(cluster: Cluster, host: HostSpec) -> list[Fact[Any]]:
    return [
        subnet_env,
        flannel_link,
        docker0_link,
        routes,
        flannel_neighbours,
        flannel_fdb,
        forward_chain,
        docker_engine,
        docker_service,
        flanneld_service,
        flanneld_version,
    ]


@fact_set("etcd", groups=("FLANNEL",))
def flannel_v2_facts(cluster: Cluster, host: HostSpec) -> list[Fact[Any]]:
    """A flanneld before v0.18 keeps its config and leases under the etcd v2 keys API, read on a
    member: gathered there ahead when the cluster file declares such a release."""
    return [flannel_v2_keys(host)] if declares_etcd_v2(None, cluster.versions.flannel) else []
