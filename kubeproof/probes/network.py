"""Probes for DOCKER-01..02 and FLANNEL-01..08: docker on the workers and the flannel overlay.

The flannel rows cross-check layers that must agree: the config and leases in etcd (through the
API the installed flanneld reads: v3 from v0.18, v2 before, chosen from `flanneld --version`),
/run/flannel/subnet.env, the vxlan device, docker0, and the routes, neighbour and fdb entries
flannel programs for every other worker. Cross-layer rows return the list of disagreements (empty
when all agree), so a failure names each one.

FLANNEL-08 (containers pinging across workers) is in `cross_ping`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from kubeproof import layout
from kubeproof.checks import Observation
from kubeproof.facts import ParseError
from kubeproof.facts import network as facts
from kubeproof.facts.etcd import ServiceConfig, parse_env_file, parse_go_flags
from kubeproof.facts.network import FlannelLease, Link
from kubeproof.inventory import HostSpec
from kubeproof.probes import probe
from kubeproof.probes.etcd import through_any_member
from kubeproof.session import HostContext
from kubeproof.transport import ProbeError
from kubeproof.versions import flannel_etcd_api, release_of

# ----------------------------------------------------------------------------- docker


def _docker_service(ctx: HostContext, host: HostSpec | None = None) -> ServiceConfig:
    return ctx.fact(facts.docker_service, host)


@probe("docker_installed")
def docker_installed(ctx: HostContext, _: str) -> str:
    engine = ctx.fact(facts.docker_engine)
    if engine.dockerd is None:
        return "not installed"
    return f"docker {engine.client_version or '(client missing)'} ({engine.dockerd})"


@probe("docker_service_state")
def docker_service_state(ctx: HostContext, _: str) -> Observation:
    service = _docker_service(ctx)
    return ctx.observation(service.state, [] if service.state == "active, enabled" else service.diagnosis())


@probe("docker_api")
def docker_api(ctx: HostContext, _: str) -> Observation:
    engine = ctx.fact(facts.docker_engine)
    if engine.server_version:
        return ctx.observation("answers")
    return ctx.observation(f"no answer: {engine.server_error or 'nothing printed'}", _docker_service(ctx).diagnosis())


def _vs(observed: object, wanted: object) -> str:
    """The comparison a seen line states: `=` or `!=`."""
    return "=" if observed == wanted else "!="


def _flannel_env_files(service: ServiceConfig) -> list[str]:
    return [path for path in service.settings.environment_files if path.startswith("/run/flannel/")]


@probe("docker_flannel_wiring")
def docker_flannel_wiring(ctx: HostContext, _: str) -> Observation:
    """docker.service reads an env file under /run/flannel and passes its options to dockerd."""
    service = _docker_service(ctx)
    if not service.installed:
        return ctx.observation([f"docker.service is {service.state}"])
    problems = []
    flannel_files = _flannel_env_files(service)
    variables: dict[str, str] = {}
    for path in flannel_files:
        text = service.env_files.get(path)
        if text is None:
            problems.append(f"{path} (EnvironmentFile of docker.service) does not exist")
            continue
        variables.update(parse_env_file(text))
    if not flannel_files:
        problems.append(
            "docker.service reads no EnvironmentFile under /run/flannel (EnvironmentFile="
            + (", ".join(service.settings.environment_files) or "none")
            + ")"
        )
    exec_start = service.settings.exec_start
    used = [name for name in variables if f"${name}" in exec_start or f"${{{name}}}" in exec_start]
    if flannel_files and not any("--bip=" in variables[name] for name in used):
        problems.append(f"the ExecStart of docker.service passes no flannel variable carrying --bip: {exec_start!r}")
    sources = f"{' + '.join(service.settings.files) or 'no unit file'}"
    ctx.note_source(f"{ctx.host.name}: systemctl cat docker.service ({sources})")
    seen = [
        f"docker.service EnvironmentFile {path}: {'missing' if service.env_files.get(path) is None else 'present'}"
        for path in flannel_files
    ]
    seen += [f"ExecStart passes ${name}: {variables[name].strip()}" for name in used]
    return ctx.observation(
        problems, [f"ExecStart={exec_start}", *(f"{k}={v}" for k, v in variables.items())], seen=seen
    )


@probe("dockerd_bridge_problems")
def dockerd_bridge_problems(ctx: HostContext, _: str) -> Observation:
    """The running dockerd's --bip and --mtu (or daemon.json) equal FLANNEL_SUBNET and FLANNEL_MTU."""
    service = _docker_service(ctx)
    if not service.running or service.cmdline is None:
        raise ProbeError(
            ctx.host.name, f"prerequisite failed: dockerd is not running (docker.service: {service.state})"
        )
    engine = ctx.fact(facts.docker_engine)
    flags = parse_go_flags(service.cmdline[1:], facts.DOCKERD_BOOLEAN_FLAGS)
    daemon_json = engine.daemon_json or {}
    bip = (flags.get("bip") or [str(daemon_json.get("bip", ""))])[-1]
    mtu = (flags.get("mtu") or [str(daemon_json.get("mtu", ""))])[-1]
    env = ctx.fact(facts.subnet_env)
    if env is None:
        return ctx.observation([f"{layout.FLANNEL_SUBNET_ENV} does not exist"], [f"dockerd: bip={bip!r} mtu={mtu!r}"])
    problems = []
    if bip != env.get("FLANNEL_SUBNET"):
        problems.append(f"dockerd --bip={bip or '(not set)'}, FLANNEL_SUBNET={env.get('FLANNEL_SUBNET')}")
    if mtu != env.get("FLANNEL_MTU"):
        problems.append(f"dockerd --mtu={mtu or '(not set)'}, FLANNEL_MTU={env.get('FLANNEL_MTU')}")
    diagnosis = [f"dockerd: {' '.join(service.cmdline)}"] if problems else []
    seen = [
        f"dockerd --bip={bip or '(not set)'} {_vs(bip, env.get('FLANNEL_SUBNET'))} "
        f"FLANNEL_SUBNET {env.get('FLANNEL_SUBNET')}",
        f"dockerd --mtu={mtu or '(not set)'} {_vs(mtu, env.get('FLANNEL_MTU'))} FLANNEL_MTU {env.get('FLANNEL_MTU')}",
    ]
    return ctx.observation(problems, diagnosis, seen=seen)


# ----------------------------------------------------------------------------- flannel in etcd


@dataclass(frozen=True)
class FlannelState:
    config: dict[str, Any] | None
    config_error: str
    leases: list[FlannelLease]
    lease_errors: list[str]

    @property
    def network(self) -> ipaddress.IPv4Network | None:
        value = facts.config_value(self.config or {}, "Network")
        try:
            return ipaddress.IPv4Network(str(value)) if value else None
        except ValueError:
            return None

    def leases_of(self, address: str) -> list[FlannelLease]:
        return [lease for lease in self.leases if lease.public_ip == address]


def flannel_api(ctx: HostContext) -> tuple[int, str]:
    """The etcd API (2 or 3) the installed flanneld reads, from the release flanneld prints on this
    worker (on the first worker that answers, for a cluster row): v2 before v0.18
    (kubeproof.versions.FLANNEL_ETCD_V3). Returns the API and a line saying what was read."""
    workers = ctx.cluster.workers
    if not workers:
        raise ProbeError(ctx.host.name, "the cluster file has no worker (role node) running flanneld")
    host = ctx.host if ctx.host.has_role("node") else ctx.first_reachable(workers)
    printed = ctx.fact(facts.flanneld_version, host)
    version = release_of(printed)
    where = f"{host.name}: flanneld --version {printed!r}"
    if version is None:
        declared = release_of(ctx.cluster.versions.flannel)
        if declared is None:
            raise ProbeError(
                host.name, f"the flanneld release is unknown ({layout.K8S_BIN}/flanneld --version: {printed})"
            )
        ctx.note_source(f"cluster file: versions.flannel = {ctx.cluster.versions.flannel} ({where})")
        version, where = declared, f"cluster file: versions.flannel {declared.v}"
    api = flannel_etcd_api(version)
    return api, f"flanneld {version.v} reads the etcd v{api} API ({where})"


def _flannel_keys_v2(ctx: HostContext) -> tuple[facts.V2Keys, HostSpec]:
    """flannel's keys through the v2 keys API, asked on the first etcd member that answers."""
    errors = []
    for member in ctx.reachable(ctx.cluster.etcd_members):
        try:
            return ctx.fact(facts.flannel_v2_keys(member), member), member
        except ProbeError as exc:
            errors.append(f"{member.name}: {exc.reason}")
    raise ProbeError(
        ctx.host.name,
        "prerequisite failed: no etcd member answered the v2 keys API: " + ("; ".join(errors) or "none up"),
    )


def _state_from(raw_config: bytes | str | None, missing: str, raw_leases: list[tuple[Any, Any]]) -> FlannelState:
    config: dict[str, Any] | None = None
    config_error = missing if raw_config is None else ""
    if raw_config is not None:
        try:
            config = facts.parse_flannel_config(raw_config)
        except ParseError as exc:
            config_error = str(exc)
    leases, errors = [], []
    for key, value in raw_leases:
        try:
            name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
            leases.append(facts.parse_lease(name, value))
        except ParseError as exc:
            errors.append(str(exc))
    return FlannelState(config, config_error, sorted(leases, key=lambda lease: lease.subnet), errors)


def _flannel_state(ctx: HostContext) -> FlannelState:
    api, why = flannel_api(ctx)
    if api == 2:
        keys, member = ctx.session.shared("flannel-etcd-keys-v2", lambda: _flannel_keys_v2(ctx))
        ctx.fact(facts.flannel_v2_keys(member), member)  # recorded as this row's source
        ctx.note_source(f"{why}: etcd v2 keys API over TLS on {member.name}")
        return _state_from(keys.config, keys.config_error, keys.leases)

    def read_config(client: Any) -> bytes | None:
        value, _meta = client.get(facts.FLANNEL_CONFIG_KEY)
        return value  # type: ignore[no-any-return]

    def read_leases(client: Any) -> list[tuple[bytes, bytes]]:
        return [(meta.key, value) for value, meta in client.get_prefix(facts.FLANNEL_SUBNETS_PREFIX)]

    def compute() -> FlannelState:
        raw_config = through_any_member(ctx, f"Range {facts.FLANNEL_CONFIG_KEY}", read_config)
        raw_leases = through_any_member(ctx, f"Range {facts.FLANNEL_SUBNETS_PREFIX} (prefix)", read_leases)
        return _state_from(raw_config, f"{facts.FLANNEL_CONFIG_KEY} does not exist (v3 API)", raw_leases)

    state = ctx.session.shared("flannel-etcd-state", compute)
    ctx.note_source(
        f"etcd v3 API over TLS from this machine: {facts.FLANNEL_CONFIG_KEY}, {facts.FLANNEL_SUBNETS_PREFIX}*"
    )
    return state


def _lease_lines(state: FlannelState) -> list[str]:
    return ["leases in etcd: " + (", ".join(lease.describe() for lease in state.leases) or "none")]


@probe("flannel_config")
def flannel_config(ctx: HostContext, path: str) -> Observation:
    """A field of /coreos.com/network/config (`Network`, `Backend.Type`)."""
    state = _flannel_state(ctx)
    if state.config is None:
        return ctx.observation(state.config_error)
    value = facts.config_value(state.config, path)
    return ctx.observation("not set" if value is None else value, [f"{facts.FLANNEL_CONFIG_KEY}: {state.config}"])


@probe("flannel_lease_problems")
def flannel_lease_problems(ctx: HostContext, _: str) -> Observation:
    """This worker holds exactly one lease (by PublicIP), inside Network."""
    state = _flannel_state(ctx)
    mine = state.leases_of(ctx.host.address)
    problems = list(state.lease_errors)
    if not mine:
        problems.append(f"no lease with PublicIP {ctx.host.address}")
    elif len(mine) > 1:
        problems.append(
            f"{len(mine)} leases with PublicIP {ctx.host.address}: {', '.join(str(m.subnet) for m in mine)}"
        )
    network = state.network
    problems += [
        f"lease {m.subnet} lies outside Network {network}" for m in mine if network and not m.subnet.subnet_of(network)
    ]
    seen = [f"{len(mine)} lease(s) with PublicIP {ctx.host.address} among {len(state.leases)} in etcd"]
    seen += [
        f"lease {m.subnet} (VtepMAC {m.vtep_mac}) "
        + (f"{'inside' if m.subnet.subnet_of(network) else 'outside'} Network {network}" if network else "")
        for m in mine
    ]
    return ctx.observation(problems, _flanneld_diagnosis(ctx) + _lease_lines(state) if problems else [], seen=seen)


@probe("flannel_lease_conflicts")
def flannel_lease_conflicts(ctx: HostContext, _: str) -> Observation:
    """No two leases overlap; every lease lies inside Network."""
    state = _flannel_state(ctx)
    network = state.network
    problems = []
    if network is None:
        problems.append(f"no usable Network in {facts.FLANNEL_CONFIG_KEY}: {state.config_error or state.config}")
    for index, lease in enumerate(state.leases):
        if network is not None and not lease.subnet.subnet_of(network):
            problems.append(f"{lease.describe()} lies outside Network {network}")
        problems += [
            f"{lease.describe()} overlaps {other.describe()}"
            for other in state.leases[index + 1 :]
            if lease.subnet.overlaps(other.subnet)
        ]
    seen = [
        f"{lease.describe()} "
        + (f"{'inside' if lease.subnet.subnet_of(network) else 'outside'} Network {network}, " if network else "")
        + "overlaps "
        + (
            ", ".join(str(o.subnet) for o in state.leases if o is not lease and lease.subnet.overlaps(o.subnet))
            or "no other lease"
        )
        for lease in state.leases
    ]
    return ctx.observation(problems, _lease_lines(state) if problems else [], seen=seen or ["no lease in etcd"])


# ----------------------------------------------------------------------------- flanneld


def _flanneld(ctx: HostContext) -> ServiceConfig:
    return ctx.fact(facts.flanneld_service)


def _flanneld_diagnosis(ctx: HostContext) -> list[str]:
    service = ctx.session.facts(ctx.host).get(facts.flanneld_service)  # diagnosis, not a source
    lines = service.diagnosis()
    lines.append("flanneld: " + (service.journal_match or 'no "Using interface" line in its journal'))
    return lines


def _flanneld_settings(service: ServiceConfig) -> tuple[dict[str, str], str]:
    """flanneld's flags as it runs (else as configured), FLANNELD_* variables filling the rest."""
    if service.running and service.cmdline is not None:
        argv, environment, origin = list(service.cmdline), dict(service.environ), "running flanneld (/proc/PID)"
    else:
        argv, environment = service.configured_argv(), service.configured_environment()
        origin = "flanneld.service as configured (not running)"
    settings = {name: values[-1] for name, values in parse_go_flags(argv[1:], facts.FLANNELD_BOOLEAN_FLAGS).items()}
    for key, value in environment.items():
        if key.startswith("FLANNELD_"):
            settings.setdefault(key[len("FLANNELD_") :].lower().replace("_", "-"), value)
    return settings, origin


@probe("flanneld_state")
def flanneld_state(ctx: HostContext, _: str) -> Observation:
    service = _flanneld(ctx)
    return ctx.observation(service.state, [] if service.state == "active, enabled" else _flanneld_diagnosis(ctx))


@probe("flanneld_etcd_endpoints")
def flanneld_etcd_endpoints(ctx: HostContext, _: str) -> list[str]:
    settings, origin = _flanneld_settings(_flanneld(ctx))
    ctx.note_source(f"{ctx.host.name}: --etcd-endpoints of {origin}")
    return sorted(url.strip() for url in settings.get("etcd-endpoints", "").split(",") if url.strip())


@probe("flanneld_etcd_tls")
def flanneld_etcd_tls(ctx: HostContext, _: str) -> list[str]:
    settings, origin = _flanneld_settings(_flanneld(ctx))
    ctx.note_source(f"{ctx.host.name}: --etcd-* TLS flags of {origin}")
    return [
        f"{name}={settings[name]}" for name in ("etcd-cafile", "etcd-certfile", "etcd-keyfile") if settings.get(name)
    ]


# ----------------------------------------------------------------------------- the node's own layers


@probe("flannel_subnet_env_keys")
def flannel_subnet_env_keys(ctx: HostContext, _: str) -> list[str]:
    env = ctx.fact(facts.subnet_env)
    return ["(no file)"] if env is None else sorted(env)


def _own_lease(ctx: HostContext, state: FlannelState) -> FlannelLease | str:
    mine = state.leases_of(ctx.host.address)
    if len(mine) == 1:
        return mine[0]
    return f"no single lease with PublicIP {ctx.host.address} to compare with (FLANNEL-03)"


@probe("flannel_subnet_env_problems")
def flannel_subnet_env_problems(ctx: HostContext, _: str) -> Observation:
    """subnet.env agrees with the config (Network) and the node's lease (its subnet, first address)."""
    env = ctx.fact(facts.subnet_env)
    if env is None:
        return ctx.observation([f"{layout.FLANNEL_SUBNET_ENV} does not exist"], _flanneld_diagnosis(ctx))
    state = _flannel_state(ctx)
    problems = []
    seen = []
    if state.network is not None:
        seen.append(
            f"FLANNEL_NETWORK={env.get('FLANNEL_NETWORK')} {_vs(env.get('FLANNEL_NETWORK'), str(state.network))} "
            f"Network in etcd {state.network}"
        )
        if env.get("FLANNEL_NETWORK") != str(state.network):
            problems.append(f"FLANNEL_NETWORK={env.get('FLANNEL_NETWORK')}, Network in etcd {state.network}")
    lease = _own_lease(ctx, state)
    if isinstance(lease, str):
        problems.append(lease)
    else:
        try:
            subnet = ipaddress.IPv4Interface(env.get("FLANNEL_SUBNET", ""))
        except ValueError:
            problems.append(f"FLANNEL_SUBNET={env.get('FLANNEL_SUBNET')!r} is not an address/prefix")
        else:
            first = lease.subnet.network_address + 1
            seen.append(
                f"FLANNEL_SUBNET={subnet} {_vs(subnet.ip, first)} first address {first} of lease {lease.subnet}"
            )
            if subnet.network != lease.subnet:
                problems.append(f"FLANNEL_SUBNET={subnet}, this node's lease is {lease.subnet}")
            elif subnet.ip != first:
                problems.append(f"FLANNEL_SUBNET={subnet} is not the lease's first address")
    return ctx.observation(problems, [*_lease_lines(state), f"subnet.env: {env}"] if problems else [], seen=seen)


def _flannel_link(ctx: HostContext) -> Link | None:
    return ctx.fact(facts.flannel_link)


@probe("flannel_vxlan")
def flannel_vxlan(ctx: HostContext, attribute: str) -> Observation:
    """An attribute of flannel.1's vxlan details (`id`, `port`, `local`)."""
    link = _flannel_link(ctx)
    if link is None:
        return ctx.observation(f"no {facts.FLANNEL_DEVICE} device", _flanneld_diagnosis(ctx))
    if link.kind != "vxlan":
        return ctx.observation(f"{facts.FLANNEL_DEVICE} is a {link.kind or 'plain'} device, not vxlan")
    return ctx.observation(link.vxlan.get(attribute, "not set"))


@probe("flannel_vxlan_problems")
def flannel_vxlan_problems(ctx: HostContext, _: str) -> Observation:
    """flannel.1 is up, its MTU is FLANNEL_MTU, its MAC and VNI are the ones the node's lease publishes."""
    link = _flannel_link(ctx)
    if link is None:
        return ctx.observation([f"no {facts.FLANNEL_DEVICE} device"], _flanneld_diagnosis(ctx))
    problems = []
    if not link.up:
        problems.append(f"{link.name} is down ({','.join(link.flags)})")
    env = ctx.fact(facts.subnet_env) or {}
    env_mtu = env.get("FLANNEL_MTU", "(no subnet.env)")
    if str(link.mtu) != env.get("FLANNEL_MTU"):
        problems.append(f"{link.name} MTU {link.mtu}, FLANNEL_MTU {env_mtu}")
    seen = [
        f"{link.name} {'up' if link.up else 'down'}",
        f"{link.name} MTU {link.mtu} {_vs(str(link.mtu), env_mtu)} FLANNEL_MTU {env_mtu}",
    ]
    state = _flannel_state(ctx)
    lease = _own_lease(ctx, state)
    if isinstance(lease, str):
        problems.append(lease)
    else:
        seen.append(f"{link.name} MAC {link.mac} {_vs(link.mac, lease.vtep_mac)} lease VtepMAC {lease.vtep_mac}")
        if lease.vtep_mac != link.mac:
            problems.append(f"{link.name} MAC {link.mac}, the lease publishes VtepMAC {lease.vtep_mac}")
        if lease.vni is not None:
            seen.append(
                f"{link.name} VNI {link.vxlan.get('id')} {_vs(link.vxlan.get('id'), lease.vni)} lease VNI {lease.vni}"
            )
        if lease.vni is not None and lease.vni != link.vxlan.get("id"):
            problems.append(f"{link.name} VNI {link.vxlan.get('id')}, the lease publishes VNI {lease.vni}")
    return ctx.observation(problems, _flanneld_diagnosis(ctx) if problems else [], seen=seen)


def _docker0_and_subnet(ctx: HostContext) -> tuple[Link, dict[str, str]] | list[str]:
    link = ctx.fact(facts.docker0_link)
    env = ctx.fact(facts.subnet_env)
    problems = []
    if link is None:
        problems.append("no docker0 bridge")
    if env is None:
        problems.append(f"{layout.FLANNEL_SUBNET_ENV} does not exist")
    if link is None or env is None:
        return problems
    return link, env


@probe("docker0_address_problems")
def docker0_address_problems(ctx: HostContext, _: str) -> Observation:
    """Every IPv4 address of docker0 lies inside FLANNEL_SUBNET (the guide's 7.3)."""
    found = _docker0_and_subnet(ctx)
    if isinstance(found, list):
        return ctx.observation(found)
    link, env = found
    try:
        subnet = ipaddress.IPv4Interface(env.get("FLANNEL_SUBNET", "")).network
    except ValueError:
        return ctx.observation([f"FLANNEL_SUBNET={env.get('FLANNEL_SUBNET')!r} is not an address/prefix"])
    problems = [] if link.addresses else ["docker0 has no IPv4 address"]
    problems += [
        f"docker0 {address} lies outside FLANNEL_SUBNET {env.get('FLANNEL_SUBNET')}"
        for address in link.addresses
        if not ipaddress.IPv4Interface(address).network.subnet_of(subnet)
    ]
    seen = [
        f"docker0 {address} {'inside' if ipaddress.IPv4Interface(address).network.subnet_of(subnet) else 'outside'}"
        f" FLANNEL_SUBNET {env.get('FLANNEL_SUBNET')}"
        for address in link.addresses
    ]
    return ctx.observation(
        problems, [f"docker.service: {_docker_service(ctx).settings.exec_start}"] if problems else [], seen=seen
    )


@probe("docker0_mtu_problems")
def docker0_mtu_problems(ctx: HostContext, _: str) -> Observation:
    found = _docker0_and_subnet(ctx)
    if isinstance(found, list):
        return ctx.observation(found)
    link, env = found
    seen = [f"docker0 MTU {link.mtu} {_vs(str(link.mtu), env.get('FLANNEL_MTU'))} FLANNEL_MTU {env.get('FLANNEL_MTU')}"]
    if str(link.mtu) == env.get("FLANNEL_MTU"):
        return ctx.observation([], seen=seen)
    return ctx.observation([f"docker0 MTU {link.mtu}, FLANNEL_MTU {env.get('FLANNEL_MTU')}"], seen=seen)


# ----------------------------------------------------------------------------- routes, neighbours, fdb


def _peer_leases(ctx: HostContext) -> tuple[list[tuple[HostSpec, FlannelLease]], list[str]]:
    """(worker, its lease) for every other worker; workers without one are noted (FLANNEL-03 fails them)."""
    state = _flannel_state(ctx)
    pairs, notes = [], []
    for worker in ctx.cluster.workers:
        if worker.name == ctx.host.name:
            continue
        leases = state.leases_of(worker.address)
        if len(leases) == 1:
            pairs.append((worker, leases[0]))
        else:
            notes.append(f"{worker.name}: {len(leases)} leases with PublicIP {worker.address} (see FLANNEL-03)")
    return pairs, notes


def _foreign_leases(ctx: HostContext) -> list[FlannelLease]:
    """The vxlan leases flannel programs entries for here: every lease but this node's own."""
    return [
        lease
        for lease in _flannel_state(ctx).leases
        if lease.public_ip != ctx.host.address and lease.backend_type == "vxlan"
    ]


@probe("flannel_route_problems")
def flannel_route_problems(ctx: HostContext, _: str) -> Observation:
    """A route to every other worker's subnet via <subnet address> dev flannel.1 onlink; none without a lease."""
    pairs, notes = _peer_leases(ctx)
    routes = ctx.fact(facts.routes)
    leased = {str(lease.subnet) for lease in _foreign_leases(ctx)}
    problems = [
        f"stale route {r.describe()}: no lease for {r.dst}"
        for r in routes
        if r.dev == facts.FLANNEL_DEVICE and r.dst not in leased
    ]
    seen = []
    for worker, lease in pairs:
        found = [r for r in routes if r.dst == str(lease.subnet)]
        wanted = facts.Route(str(lease.subnet), str(lease.subnet.network_address), facts.FLANNEL_DEVICE, ("onlink",))
        right = [r for r in found if r.dev == wanted.dev and r.gateway == wanted.gateway]
        if not found:
            problems.append(f"no route to {lease.subnet} ({worker.name}); wanted {wanted.describe()}")
        elif not right:
            problems.append(
                f"route to {lease.subnet} ({worker.name}) is {found[0].describe()}, wanted {wanted.describe()}"
            )
        else:
            seen.append(f"{worker.name} lease {lease.subnet}: route {right[0].describe()}")
    return ctx.observation(
        problems,
        notes + ([f"routes: {[r.describe() for r in routes]}"] if problems else []),
        seen=(seen or ["no other worker's lease to route to"]) if not problems else seen,
    )


@probe("flannel_neighbour_problems")
def flannel_neighbour_problems(ctx: HostContext, _: str) -> Observation:
    """A neighbour entry on flannel.1 for every other worker's gateway address, with its VtepMAC; none stale."""
    pairs, notes = _peer_leases(ctx)
    neighbours = {n.dst: n for n in ctx.fact(facts.flannel_neighbours)}
    gateways = {str(lease.subnet.network_address) for lease in _foreign_leases(ctx)}
    # only PERMANENT entries are flannel's; the kernel's own (FAILED, STALE) come and go
    problems = [
        f"stale neighbour {n.dst} lladdr {n.lladdr}: no lease with that gateway"
        for n in neighbours.values()
        if "PERMANENT" in n.state and n.dst not in gateways
    ]
    seen = []
    for worker, lease in pairs:
        gateway = str(lease.subnet.network_address)
        entry = neighbours.get(gateway)
        if entry is None:
            problems.append(f"no neighbour {gateway} ({worker.name}) on {facts.FLANNEL_DEVICE}")
        elif entry.lladdr != lease.vtep_mac:
            problems.append(f"neighbour {gateway} ({worker.name}) is {entry.lladdr}, its lease says {lease.vtep_mac}")
        else:
            seen.append(f"{worker.name} neighbour {gateway} lladdr {entry.lladdr} = lease VtepMAC {lease.vtep_mac}")
    return ctx.observation(problems, notes, seen=(seen or ["no other worker's lease"]) if not problems else seen)


@probe("flannel_fdb_problems")
def flannel_fdb_problems(ctx: HostContext, _: str) -> Observation:
    """An fdb entry on flannel.1 sending every other worker's VtepMAC to its PublicIP; none stale."""
    pairs, notes = _peer_leases(ctx)
    fdb = ctx.fact(facts.flannel_fdb)
    macs = {lease.vtep_mac for lease in _foreign_leases(ctx)}
    problems = [f"stale fdb entry {e.mac} dst {e.dst}: no lease with that VtepMAC" for e in fdb if e.mac not in macs]
    seen = []
    for worker, lease in pairs:
        entries = [e for e in fdb if e.mac == lease.vtep_mac]
        if not entries:
            problems.append(f"no fdb entry for {lease.vtep_mac} ({worker.name}) on {facts.FLANNEL_DEVICE}")
        elif not any(e.dst == lease.public_ip for e in entries):
            problems.append(
                f"fdb sends {lease.vtep_mac} ({worker.name}) to {', '.join(e.dst for e in entries)}, "
                f"not {lease.public_ip}"
            )
        else:
            seen.append(f"{worker.name} fdb {lease.vtep_mac} dst {lease.public_ip} = lease PublicIP {lease.public_ip}")
    return ctx.observation(problems, notes, seen=(seen or ["no other worker's lease"]) if not problems else seen)
