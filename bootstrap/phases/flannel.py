"""Phase 5, the guide's 四、flannel: network config in etcd, flanneld on every worker, docker0 moved into its subnet."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shlex

from kubeproof import layout
from kubeproof.bootstrap import render
from kubeproof.bootstrap.content import Content
from kubeproof.bootstrap.context import RunContext
from kubeproof.bootstrap.engine import (
    STAGE_FILES,
    STAGE_WAIT,
    Change,
    Custom,
    DiffResult,
    Directory,
    File,
    HostView,
    Resource,
    Unit,
    run_checked,
)
from kubeproof.bootstrap.errors import BootstrapError
from kubeproof.bootstrap.phases import Phase, unique_hosts
from kubeproof.facts import Fact, Raw
from kubeproof.facts import host as host_facts
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.versions import Version, flannel_etcd_api

NAME = "flannel"
NETWORK_KEY = render.FLANNEL_NETWORK_KEY
# etcdctl v2 prints "Error:  100: Key not found (<key>) [<index>]" (etcd 3.3.27 client/keys.go Error.Error,
# etcdctl/ctlv2/command/error.go handleError) and exits 4
V2_KEY_NOT_FOUND = "100: Key not found"
FLANNELD = "flanneld.service"
DOCKER = "docker.service"


# ----------------------------------------------------------------------------- the etcd key


def _parse_etcd_value(raw: Raw) -> tuple[int, str]:
    lines = raw.stdout.rstrip("\n").split("\n")
    rc = 1
    if lines and lines[-1].startswith("kp-rc="):
        rc = int(lines[-1][len("kp-rc=") :] or 1)
        lines = lines[:-1]
    return rc, "\n".join(lines).strip()


def network_config_fact(cluster: Cluster, flannel: Version, etcd: Version | None = None) -> Fact[tuple[int, str]]:
    """The network config as the installed flanneld reads it: the v2 API before v0.18, else v3."""
    argv = render.flannel_config_get_argv(cluster, flannel, etcd)
    return Fact("kp-flannel-network", shlex.join(argv) + " 2>&1; echo kp-rc=$?", _parse_etcd_value)


def _versions(ctx: RunContext) -> tuple[Version, Version]:
    return ctx.version("flanneld"), ctx.version("etcd")


def _same_config(current: str, wanted: str) -> bool:
    try:
        return bool(json.loads(current) == json.loads(wanted))
    except ValueError:
        return False


def _network_config(view: HostView) -> DiffResult:
    cluster = view.ctx.cluster
    wanted = render.flannel_network_config(cluster)
    flannel, etcd = _versions(view.ctx)
    rc, current = view.get(network_config_fact(cluster, flannel, etcd))
    if rc == 0 and _same_config(current, wanted):
        return []
    if rc != 0 and V2_KEY_NOT_FOUND in current:
        why = ""  # etcdctl v2 `get` of an absent key: exit 4, "Error:  100: Key not found (<key>) [<index>]"
    elif rc != 0:
        why = f" (etcd not answering yet: {current.splitlines()[-1][:100] if current else 'exit ' + str(rc)})"
    elif current:
        why = f" (was {current})"
    else:
        why = ""
    argv = render.flannel_config_put_argv(cluster, flannel, etcd)
    verb = "put" if flannel_etcd_api(flannel) == 3 else "set"  # etcdctl's v3 put / v2 set

    def apply() -> None:
        run_checked(view.conn, shlex.join(argv), f"etcdctl {verb} {NETWORK_KEY}")

    api = f"etcd v{flannel_etcd_api(flannel)} API, read by flanneld {flannel.v}"
    if verb == "put":  # today's wording, unchanged
        api = ""
    where = f" ({api})" if api else ""
    return [
        Change(view.host.name, view.phase, f"{verb} {NETWORK_KEY} = {wanted} in etcd{where}{why}", apply, STAGE_FILES)
    ]


# ----------------------------------------------------------------------------- docker0 in the subnet


def _parse_docker0(raw: Raw) -> dict[str, str]:
    return {k: v.strip('"') for k, v in host_facts.parse_key_values(raw).items()}


docker0_fact: Fact[dict[str, str]] = Fact(
    "kp-docker0",
    "echo docker0_addr=$(ip -4 -o addr show dev docker0 2>/dev/null | awk '{print $4}' | head -n1); "
    "echo docker0_mtu=$(cat /sys/class/net/docker0/mtu 2>/dev/null); "
    "cat /run/flannel/subnet.env 2>/dev/null; "
    "echo dropin_sha=$(sha256sum < " + render.DOCKER_DROPIN + " 2>/dev/null | cut -d' ' -f1)",
    _parse_docker0,
)


def docker0_problem(values: dict[str, str]) -> str | None:
    """Why docker0 is not where flannel put the node (None: it is, or flannel has no lease yet)."""
    subnet = values.get("FLANNEL_SUBNET")
    if not subnet:
        return None
    address = values.get("docker0_addr", "")
    try:
        network = ipaddress.ip_interface(subnet).network
        inside = bool(address) and ipaddress.ip_interface(address).ip in network
    except ValueError:
        return f"unreadable docker0 address {address!r} or FLANNEL_SUBNET {subnet!r}"
    if not inside:
        return f"docker0 is {address or 'unaddressed'}, outside FLANNEL_SUBNET {subnet}"
    if values.get("FLANNEL_MTU") and values.get("docker0_mtu") and values["FLANNEL_MTU"] != values["docker0_mtu"]:
        return f"docker0 MTU {values['docker0_mtu']} differs from FLANNEL_MTU {values['FLANNEL_MTU']}"
    return None


def _docker0(wanted_dropin: str) -> Custom:
    wanted_sha = hashlib.sha256(wanted_dropin.encode()).hexdigest()

    def diff(view: HostView) -> DiffResult:
        values = view.get(docker0_fact)
        # Only when the drop-in is already in place and no restart is owed: otherwise the handler
        # restarts docker in this very run.
        if values.get("dropin_sha") != wanted_sha or DOCKER in view.manifest.pending_restarts:
            return []
        problem = docker0_problem(values)
        if problem is None:
            return []

        # flanneld first: its ExecStartPost rewrites /run/flannel/docker from the current lease
        # (a docker restart alone would read the stale one); docker follows in the same job.
        def apply() -> None:
            run_checked(view.conn, shlex.join(["systemctl", "restart", FLANNELD, DOCKER]), "restart flanneld, docker")

        return [Change(view.host.name, view.phase, f"restart {FLANNELD} and {DOCKER} ({problem})", apply, STAGE_WAIT)]

    return Custom("docker0", (docker0_fact,), diff)


def verify(ctx: RunContext) -> None:
    problems = []
    for host in ctx.cluster.workers:
        conn = ctx.transport.connection(host)
        result = conn.run(docker0_fact.command, timeout=30)
        problem = docker0_problem(_parse_docker0(Raw(result.stdout, result.stderr, result.rc)))
        values = _parse_docker0(Raw(result.stdout, result.stderr, result.rc))
        if not values.get("FLANNEL_SUBNET"):
            problem = "no /run/flannel/subnet.env: flanneld has no lease (journalctl -u flanneld)"
        if problem:
            problems.append(f"{host.name}: {problem}")
    if problems:
        raise BootstrapError("flannel: " + "; ".join(problems))


# ----------------------------------------------------------------------------- resources


def desired(ctx: RunContext, host: HostSpec) -> list[Resource]:
    cluster = ctx.cluster
    resources: list[Resource] = []
    if cluster.etcd_members and host.name == cluster.etcd_members[0].name:
        flannel, etcd = _versions(ctx)
        resources.append(
            Custom("flannel-network-config", (network_config_fact(cluster, flannel, etcd),), _network_config)
        )
    if not host.has_role("node"):
        return resources
    profile = ctx.profile(host)
    iface = profile.iface_for(host)
    if iface is None:
        raise BootstrapError(f"{host.name}: no network interface carries its address {host.address} (ip -o addr)")
    dropin = render.docker_dropin(profile.docker_exec_start_or_default)
    resources += [
        Directory(layout.K8S_HOME),
        Directory(layout.K8S_BIN),
        Directory(layout.K8S_CFG),
        File(f"{layout.K8S_BIN}/flanneld", ctx.artifacts.content("flanneld"), 0o755, restarts=(FLANNELD,)),
        File(f"{layout.K8S_BIN}/mk-docker-opts.sh", ctx.artifacts.content("mk-docker-opts.sh"), 0o755),
        File(
            f"{layout.K8S_CFG}/flanneld",
            Content.text(render.flanneld_options(cluster, iface)),
            0o644,
            restarts=(FLANNELD,),
        ),
        File(f"{layout.SYSTEMD_DIR}/{FLANNELD}", Content.text(render.flanneld_unit()), 0o644, restarts=(FLANNELD,)),
        Directory("/etc/systemd/system/docker.service.d"),
        File(render.DOCKER_DROPIN, Content.text(dropin), 0o644, restarts=(DOCKER,)),
        Unit(FLANNELD),
        Unit(DOCKER),
        _docker0(dropin),
    ]
    return resources


PHASE = Phase(
    NAME,
    "flannel network",
    lambda cluster: unique_hosts(cluster.etcd_members[:1], cluster.workers),
    desired,
    verify=verify,
    # etcd: its release decides whether etcdctl speaks v3 by default (render.etcdctl_argv)
    artifacts=("flanneld", "mk-docker-opts.sh", "etcd"),
)
