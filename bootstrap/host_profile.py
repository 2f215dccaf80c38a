"""What the installer must know about a host before it renders anything, read once in preflight.

The facts the verifier reads too (hostname, active swap) are kubeproof.facts.host's; the ones here
only the installer needs: the SSH user's uid, OS family and commands, the NIC that carries the
host's address, docker's cgroup driver and unit, ip_vs, and whether conntrack can be tuned.
Facts are a command plus a pure parser (kubeproof.facts); the parsers here are tested offline.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubeproof import layout
from kubeproof.bootstrap import render
from kubeproof.facts import Fact, Raw
from kubeproof.facts import host as host_facts
from kubeproof.inventory import HostSpec

REQUIRED_COMMANDS = ("systemctl", "sha256sum", "stat", "cat", "mv", "chmod", "mkdir", "ln", "readlink", "cut")
WORKER_COMMANDS = ("iptables", "ip", "modprobe")
RECOMMENDED_COMMANDS = ("conntrack", "ipset", "socat", "nsenter")
PACKAGE_MANAGERS = ("apt-get", "yum", "dnf")

uid = Fact("kp-uid", "id -u", lambda raw: raw.stdout.strip())


def parse_os_release(raw: Raw) -> dict[str, str]:
    return {k: v.strip('"') for k, v in host_facts.parse_key_values(raw).items()}


os_release = Fact("kp-os-release", "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release", parse_os_release)

_ALL_COMMANDS = REQUIRED_COMMANDS + WORKER_COMMANDS + RECOMMENDED_COMMANDS + PACKAGE_MANAGERS + ("dockerd", "docker")
commands = Fact(
    "kp-commands",
    "for c in " + " ".join(_ALL_COMMANDS) + "; do if command -v $c >/dev/null 2>&1; then echo $c=yes; "
    "else echo $c=no; fi; done",
    lambda raw: {k: v == "yes" for k, v in host_facts.parse_key_values(raw).items()},
)


def parse_ip_addr(raw: Raw) -> dict[str, str]:
    """`ip -o addr show`: address -> interface name."""
    out: dict[str, str] = {}
    for line in raw.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] in ("inet", "inet6"):
            name = fields[1].split("@", 1)[0]
            try:
                address = str(ipaddress.ip_interface(fields[3]).ip)
            except ValueError:
                continue
            out[address] = name
    return out


addresses = Fact("kp-addresses", "ip -o addr show 2>/dev/null || true", parse_ip_addr)

docker_cgroup_driver = Fact(
    "kp-docker-cgroup-driver",
    "timeout 15 docker info -f '{{.CgroupDriver}}' 2>/dev/null || true",
    lambda raw: raw.stdout.strip() or None,
)

# The main fragment of docker.service (not the drop-ins): the ExecStart the flannel drop-in extends.
docker_unit_fragment = Fact(
    "kp-docker-unit",
    "f=$(systemctl show -p FragmentPath docker.service 2>/dev/null | cut -d= -f2-); "
    'if [ -n "$f" ] && [ -f "$f" ]; then echo "path=$f"; echo ---; cat "$f"; fi',
    lambda raw: raw.stdout,
)


def parse_unit_fragment(text: str) -> tuple[str | None, list[str]]:
    if not text.startswith("path="):
        return None, []
    head, _, body = text.partition("\n---\n")
    return head[len("path=") :].strip(), render.parse_exec_start(body)


ip_vs = Fact(
    "kp-ip-vs",
    "if [ -d /sys/module/ip_vs ] || grep -qw '^ip_vs' /proc/modules 2>/dev/null; then echo present; "
    "else echo absent; fi",
    lambda raw: raw.stdout.strip() == "present",
)

# kube-proxy raises nf_conntrack_max unless told not to; outside the init network namespace (a
# container) the file is read-only and kube-proxy would fail.
conntrack_writable = Fact(
    "kp-conntrack-writable",
    "if [ -w /proc/sys/net/netfilter/nf_conntrack_max ]; then echo yes; else echo no; fi",
    lambda raw: raw.stdout.strip() == "yes",
)

cgroup_fs = Fact("kp-cgroup-fs", "stat -fc %T /sys/fs/cgroup", lambda raw: raw.stdout.strip())


def parse_initial_state(raw: Raw) -> str:
    """ETCD_INITIAL_CLUSTER_STATE as the member's env file says it ("" without a file or line)."""
    for line in raw.stdout.splitlines():
        key, _, value = line.strip().partition("=")
        if key == "ETCD_INITIAL_CLUSTER_STATE":
            return value.strip().strip('"')
    return ""


etcd_initial_state = Fact(
    "kp-etcd-initial-state",
    "grep -s '^ETCD_INITIAL_CLUSTER_STATE=' " + shlex.quote(layout.ETCD_ENV_FILE) + " || true",
    parse_initial_state,
)

PROFILE_FACTS: tuple[Fact[Any], ...] = (
    uid,
    os_release,
    commands,
    addresses,
    host_facts.hostname,
    docker_cgroup_driver,
    docker_unit_fragment,
    ip_vs,
    conntrack_writable,
    host_facts.swaps,
    cgroup_fs,
    etcd_initial_state,
)


@dataclass
class HostProfile:
    host: str
    uid: str
    os: dict[str, str]
    commands: dict[str, bool]
    addresses: dict[str, str]
    hostname: str
    docker_cgroup_driver: str | None
    docker_unit_path: str | None
    docker_exec_start: list[str]
    ip_vs: bool
    conntrack_writable: bool
    swaps: list[str]
    cgroup_fs: str
    # the member's env file: "existing" once kubeproof re-added it to its cluster (bootstrap/health.py)
    etcd_initial_state: str = ""

    @property
    def family(self) -> str:
        """apt or yum, from /etc/os-release (ID, then ID_LIKE)."""
        words = [self.os.get("ID", ""), *self.os.get("ID_LIKE", "").split()]
        for word in words:
            if word in ("debian", "ubuntu"):
                return "apt"
            if word in ("rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn"):
                return "yum"
        if self.commands.get("apt-get"):
            return "apt"
        if self.commands.get("yum") or self.commands.get("dnf"):
            return "yum"
        return "unknown"

    @property
    def docker_installed(self) -> bool:
        return bool(self.commands.get("dockerd"))

    def iface_for(self, spec: HostSpec) -> str | None:
        return self.addresses.get(spec.address)

    @property
    def cgroup_driver(self) -> str:
        """docker's cgroup driver; where docker is not there yet, docker's own default for this host."""
        if self.docker_cgroup_driver:
            return self.docker_cgroup_driver
        return "systemd" if self.cgroup_fs == "cgroup2fs" else "cgroupfs"

    @property
    def docker_exec_start_or_default(self) -> list[str]:
        if self.docker_exec_start:
            return self.docker_exec_start
        # docker-ce's and Debian's docker.service; the real one is read again once docker is installed
        return ["/usr/bin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock"]


def host_profile(name: str, get: Callable[[Fact[Any]], Any]) -> HostProfile:
    """Build a HostProfile from a getter of PROFILE_FACTS (HostFacts.get)."""
    unit_path, exec_start = parse_unit_fragment(get(docker_unit_fragment))
    return HostProfile(
        host=name,
        uid=get(uid),
        os=get(os_release),
        commands=get(commands),
        addresses=get(addresses),
        hostname=get(host_facts.hostname),
        docker_cgroup_driver=get(docker_cgroup_driver),
        docker_unit_path=unit_path,
        docker_exec_start=exec_start,
        ip_vs=get(ip_vs),
        conntrack_writable=get(conntrack_writable),
        swaps=get(host_facts.swaps),
        cgroup_fs=get(cgroup_fs),
        etcd_initial_state=get(etcd_initial_state),
    )
