"""Probes for ETCD-01..11 and SEC-01: the etcd cluster of the guide's chapter 二.

Three kinds of source, each recorded with the observation:
* the member's host (one batched fact script): layout, unit, env file, /proc/<MainPID>, etcdctl;
* the etcd v3 API over TLS from this machine (pyetcd, through `kubeproof.clients.etcd`): status,
  member list, alarms, a linearizable read, a write read back through every other member;
* a peer host: plain http and TLS without a client certificate against the member's ports
  (`kubeproof.probes.etcd_exposure`).

Settings checks (ETCD-02..06) read the configuration as written (unit + env file), so they hold
whether or not etcd runs; ETCD-06:running compares it with what the process actually runs with.
When a member does not answer, rows that need its answer error with that root cause; rows about
the cluster's agreement (ETCD-07, ETCD-08:state, ETCD-09) fail, naming it.

A member whose HOST does not answer over SSH is not asked over TLS either (a frozen host accepts
TCP and lets every call run into its timeout): rows that need every member error with
"<host> unreachable: ...", rows that need any member use the others and say which was skipped.
"""

from __future__ import annotations

import secrets
import shlex
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubeproof import clients, layout
from kubeproof.checks import Observation
from kubeproof.facts import etcd as facts
from kubeproof.facts.etcd import ServiceConfig
from kubeproof.facts.files import directory_stat
from kubeproof.inventory import HostSpec
from kubeproof.probes import probe
from kubeproof.session import HostContext
from kubeproof.transport import HostUnreachable, ProbeError
from kubeproof.versions import ETCD_V2_OFF_BY_DEFAULT, ETCD_V2_REMOVED, Version, etcd_serves_v2, release_of

T = TypeVar("T")

# kubeproof's own keys: written by ETCD-11 and deleted again at once
PROBE_KEY_PREFIX = "/kubeproof/probe/"
ETCD_DEFAULT_TOKEN = "etcd-cluster"  # noqa: S105 -- not a secret: etcd's default --initial-cluster-token


def describe_error(exc: BaseException) -> str:
    """A gRPC error's code and details (pyetcd re-raises them as bare exceptions, the cause kept)."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        code = getattr(candidate, "code", None)
        details = getattr(candidate, "details", None)
        if callable(code) and callable(details):
            try:
                return f"{code().name}: {details()}"
            except Exception:  # noqa: S112 -- not a live gRPC error after all: try the next candidate
                continue
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


# ----------------------------------------------------------------------------- host facts


def member_service(ctx: HostContext, host: HostSpec | None = None) -> ServiceConfig:
    return ctx.fact(facts.etcd_service, host)


def _configured(ctx: HostContext, host: HostSpec | None = None) -> dict[str, str]:
    return facts.configured_etcd_settings(member_service(ctx, host))


def effective_settings(ctx: HostContext) -> dict[str, str]:
    """What etcd runs with when it runs, else what it would start with."""
    service = member_service(ctx)
    return facts.running_etcd_settings(service) or facts.configured_etcd_settings(service)


def setting_origin(service: ServiceConfig, name: str) -> str:
    """Where a configured setting comes from, for the observation's sources."""
    flag_names = {arg.lstrip("-").partition("=")[0] for arg in service.configured_argv()[1:] if arg.startswith("-")}
    if name in flag_names:
        return f"--{name} in the ExecStart of {service.unit}"
    variable = "ETCD_" + name.upper().replace("-", "_")
    for path in service.settings.environment_files:
        text = service.env_files.get(path)
        if text and variable in facts.parse_env_file(text):
            return f"{variable} in {path}"
    return f"{variable}/--{name}: set nowhere"


def _unhealthy_diagnosis(ctx: HostContext) -> list[str]:
    """The unit's state and last journal lines (read without recording: diagnosis, not a source)."""
    return ctx.session.facts(ctx.host).get(facts.etcd_service).diagnosis()


@probe("etcd_layout_missing")
def etcd_layout_missing(ctx: HostContext, _: str) -> Observation:
    found = ctx.fact(facts.etcd_layout)
    present = {**found.directories, **found.executables, layout.ETCD_ENV_FILE: found.env_file}
    return ctx.observation(
        found.missing(), seen=[f"{path} {'present' if ok else 'missing'}" for path, ok in present.items()]
    )


@probe("etcdctl_on_path")
def etcdctl_on_path(ctx: HostContext, _: str) -> Observation:
    """What a root login shell runs as `etcdctl`, symlinks resolved."""
    found = ctx.fact(facts.etcd_layout)
    value = found.etcdctl_resolved or found.etcdctl_on_path or "not on PATH"
    if value == layout.ETCD_BIN + "/etcdctl":
        return ctx.observation(value)
    return ctx.observation(
        value,
        [
            f"`command -v etcdctl` in a root login shell: {found.etcdctl_on_path or 'nothing'}",
            f"{layout.ETCD_BIN}: {', '.join(found.versions) or 'no version printed'}",
        ],
    )


@probe("etcd_setting")
def etcd_setting(ctx: HostContext, name: str) -> str:
    service = member_service(ctx)
    ctx.note_source(f"{ctx.host.name}: {setting_origin(service, name)}")
    return facts.configured_etcd_settings(service).get(name, "not set")


@probe("etcd_urls")
def etcd_urls(ctx: HostContext, name: str) -> Observation:
    service = member_service(ctx)
    origin = setting_origin(service, name)
    ctx.note_source(f"{ctx.host.name}: {origin}")
    value = facts.configured_etcd_settings(service).get(name)
    return ctx.observation(facts.split_urls(value), seen=[f"{name}={value or '(not set)'} ({origin})"])


@probe("etcd_initial_cluster_name")
def etcd_initial_cluster_name(ctx: HostContext, _: str) -> str:
    """The name ETCD_INITIAL_CLUSTER gives to this member's own peer URL."""
    own = f"https://{ctx.host.address}:2380"
    entries = facts.parse_initial_cluster(_configured(ctx).get("initial-cluster"))
    names = [name for name, url in entries if url == own]
    if not names:
        return f"{own} is not in the initial cluster"
    return names[0] if len(names) == 1 else f"{own} appears {len(names)} times: {', '.join(names)}"


@probe("etcd_name_shared_with")
def etcd_name_shared_with(ctx: HostContext, _: str) -> Observation:
    """Other members configured with the same ETCD_NAME as this one."""
    mine = _configured(ctx).get("name")
    names = {h.name: _configured(ctx, h).get("name") for h in ctx.cluster.etcd_members if h.name != ctx.host.name}
    return ctx.observation(
        [f"{host} (name={mine})" for host, name in names.items() if name == mine],
        seen=[
            f"{ctx.host.name} name={mine}",
            *(f"{host} name={name} {'=' if name == mine else '!='} {mine} here" for host, name in names.items()),
        ],
    )


@probe("etcd_initial_cluster")
def etcd_initial_cluster(ctx: HostContext, _: str) -> list[str]:
    service = member_service(ctx)
    ctx.note_source(f"{ctx.host.name}: {setting_origin(service, 'initial-cluster')}")
    return [f"{name}={url}" for name, url in facts.parse_initial_cluster(_configured(ctx).get("initial-cluster"))]


@probe("etcd_initial_cluster_differs")
def etcd_initial_cluster_differs(ctx: HostContext, _: str) -> Observation:
    """Members whose ETCD_INITIAL_CLUSTER lists other members than this one's (order aside)."""
    here = _configured(ctx).get("initial-cluster")
    mine = sorted(facts.parse_initial_cluster(here))
    differing = []
    seen = [f"{ctx.host.name} initial-cluster {here!r}"]
    for host in ctx.cluster.etcd_members:
        if host.name == ctx.host.name:
            continue
        theirs = _configured(ctx, host).get("initial-cluster")
        if sorted(facts.parse_initial_cluster(theirs)) != mine:
            differing.append(f"{host.name}: {theirs!r}")
            seen.append(f"{host.name} initial-cluster {theirs!r}")
        else:
            seen.append(f"{host.name} initial-cluster: the same {len(mine)} members")
    return ctx.observation(differing, seen=seen)


@probe("etcd_token_differs")
def etcd_token_differs(ctx: HostContext, _: str) -> Observation:
    mine = _configured(ctx).get("initial-cluster-token", ETCD_DEFAULT_TOKEN)
    tokens = {
        host.name: _configured(ctx, host).get("initial-cluster-token", ETCD_DEFAULT_TOKEN)
        for host in ctx.cluster.etcd_members
        if host.name != ctx.host.name
    }
    return ctx.observation(
        [f"{host}: {theirs!r} (here: {mine!r})" for host, theirs in tokens.items() if theirs != mine],
        seen=[f"{ctx.host.name} initial-cluster-token {mine!r}"]
        + [f"{host} initial-cluster-token {theirs!r}" for host, theirs in tokens.items()],
    )


@probe("etcd_unit_property")
def etcd_unit_property(ctx: HostContext, name: str) -> str:
    service = member_service(ctx)
    if not service.installed:
        return service.state
    return service.properties.get(name, "unset")


@probe("etcd_service_state")
def etcd_service_state(ctx: HostContext, _: str) -> Observation:
    service = member_service(ctx)
    state = service.state
    return ctx.observation(state, [] if state == "active, enabled" else service.diagnosis())


@probe("etcd_tls_settings")
def etcd_tls_settings(ctx: HostContext, _: str) -> list[str]:
    """`setting=path` for every TLS file the configuration names (client side and peer side)."""
    configured = _configured(ctx)
    return [f"{name}={configured[name]}" for name in facts.ETCD_TLS_SETTINGS if configured.get(name)]


@probe("etcd_tls_files_missing")
def etcd_tls_files_missing(ctx: HostContext, _: str) -> Observation:
    """TLS files the configuration names that are not on the host (the guide's ps shows /opt/etc/ssl/ca.pem)."""
    configured = _configured(ctx)
    paths = sorted({configured[name] for name in facts.ETCD_TLS_SETTINGS if configured.get(name)})
    in_ssl = ctx.fact(directory_stat(layout.ETCD_SSL)) or {}
    missing = [p for p in paths if p.rpartition("/")[0] == layout.ETCD_SSL and p.rpartition("/")[2] not in in_ssl]
    elsewhere = [p for p in paths if p.rpartition("/")[0] != layout.ETCD_SSL]
    if elsewhere:  # rare: one more round trip, only for paths outside the guide's directory
        command = "for p in " + " ".join(shlex.quote(p) for p in elsewhere) + '; do [ -e "$p" ] || echo "$p"; done'
        result = ctx.session.transport.connection(ctx.host).run(command)
        ctx.note_source(f"{ctx.host.name}$ {command}")
        missing += [line for line in result.stdout.splitlines() if line]
    seen = [f"{path} {'missing' if path in missing else 'present'}" for path in paths]
    return ctx.observation(sorted(missing), seen=seen or ["no TLS file configured"])


@probe("etcd_running_drift")
def etcd_running_drift(ctx: HostContext, _: str) -> Observation:
    """Settings the running etcd has that differ from its configuration (edited, not restarted)."""
    service = member_service(ctx)
    running = facts.running_etcd_settings(service)
    if running is None:
        raise ProbeError(ctx.host.name, f"prerequisite failed: etcd is not running ({service.unit}: {service.state})")
    configured = facts.configured_etcd_settings(service)
    drift = [
        f"{name}: configured {configured.get(name, 'not set')!r}, running {running.get(name, 'not set')!r}"
        for name in facts.ETCD_COMPARED_SETTINGS
        if configured.get(name) != running.get(name)
    ]
    diagnosis = (
        [f"etcd main PID {service.properties.get('MainPID')}: {' '.join(service.cmdline or ())}"] if drift else []
    )
    seen = [
        f"{name}={configured[name]} configured and running"
        for name in facts.ETCD_COMPARED_SETTINGS
        if name in configured and configured.get(name) == running.get(name)
    ]
    return ctx.observation(drift, diagnosis, seen=[f"etcd main PID {service.properties.get('MainPID')}", *seen])


def member_version(ctx: HostContext, host: HostSpec | None = None) -> Version:
    """The member's etcd release as its binary prints it (`etcd --version`), else the declared one (noted)."""
    target = host or ctx.host
    printed = facts.member_release(ctx.fact(facts.etcd_layout, target))
    version = release_of(printed)
    if version is not None:
        return version
    declared = release_of(ctx.cluster.versions.etcd)
    if declared is None:
        raise ProbeError(target.name, f"the etcd release is unknown ({layout.ETCD_BIN}/etcd --version printed none)")
    ctx.note_source(f"cluster file: versions.etcd = {ctx.cluster.versions.etcd} (etcd --version printed none)")
    return declared


def member_speaks_v2(ctx: HostContext) -> tuple[bool, str]:
    """Whether the member serves the v2 API (etcd < 3.4, or --enable-v2 before 3.6), and why."""
    version = member_version(ctx)
    enabled = facts.is_true(effective_settings(ctx).get("enable-v2"))
    speaks = etcd_serves_v2(version, enabled)
    if version >= ETCD_V2_REMOVED:
        why = f"etcd {version} has no v2 API"
    elif version < ETCD_V2_OFF_BY_DEFAULT:
        why = f"etcd {version} serves the v2 API by default"
    else:
        why = f"etcd {version} with enable-v2={'true' if enabled else 'false'}"
    return speaks, why


@probe("etcdctl_health")
def etcdctl_health(ctx: HostContext, _: str) -> Observation:
    """etcdctl on the member: the guide's `cluster-health` (v2) where the member speaks v2, else
    `endpoint health` (v3); chosen from the release the member's binary prints."""
    v2, why = member_speaks_v2(ctx)
    if v2:
        health = ctx.fact(facts.etcdctl_cluster_health(ctx.host))
        seen = [f"{why}: ETCDCTL_API=2 etcdctl cluster-health"]
    else:
        health = ctx.fact(facts.etcdctl_health(ctx.host))
        seen = [f"{why}: ETCDCTL_API=3 etcdctl endpoint health"]
    if health.healthy:
        return ctx.observation("healthy", seen=seen)
    return ctx.observation(f"unhealthy: {health.error or 'no reason given'}", _unhealthy_diagnosis(ctx), seen=seen)


# ----------------------------------------------------------------------------- the etcd API


@dataclass(frozen=True)
class ListedMember:
    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]

    @property
    def entry(self) -> str:
        return f"{self.name or '(unstarted)'}={','.join(self.peer_urls)}"


@dataclass
class MemberAnswer:
    """What one member said over TLS; `error` set when it did not answer Status at all.

    A member without a leader still answers Status (and, in 3.4, MemberList) but not what goes
    through raft (Alarm) or needs a quorum (a linearizable read): those errors are kept apart.
    """

    host: HostSpec
    url: str
    error: str | None = None
    members_error: str | None = None
    alarms_error: str | None = None
    member_id: int = 0
    cluster_id: int = 0  # the cluster the member belongs to (every response header carries it)
    leader_id: int = 0
    raft_term: int = 0
    raft_index: int = 0
    version: str = ""
    members: list[ListedMember] = field(default_factory=list)
    alarms: list[tuple[int, str]] = field(default_factory=list)
    read_error: str | None = None  # the linearizable read of "health" (what etcdctl endpoint health does)


@dataclass
class ClusterView:
    answers: dict[str, MemberAnswer]
    unreachable: dict[str, HostUnreachable] = field(default_factory=dict)  # members not asked: host down

    def require_every_member(self) -> None:
        """For rows about all members' agreement: one that was not asked leaves them undecided."""
        first_down = next(iter(self.unreachable.values()), None)
        if first_down is not None:
            raise first_down.again()

    def answer_of(self, host: HostSpec) -> MemberAnswer:
        down = self.unreachable.get(host.name)
        if down is not None:
            raise down.again()
        return self.answers[host.name]

    def answering(self) -> list[MemberAnswer]:
        return [a for a in self.answers.values() if a.error is None]

    def member_list(self) -> list[ListedMember]:
        for answer in self.answering():
            if answer.members:
                return answer.members
        return []

    def name_of(self, member_id: int) -> str:
        for member in self.member_list():
            if member.id == member_id:
                return member.name or f"{member_id:x}"
        return f"{member_id:x}"

    def summary(self) -> list[str]:
        lines = []
        for answer in self.answers.values():
            label = f"{answer.host.etcd_name} ({answer.url})"
            if answer.error:
                lines.append(f"{label}: no answer: {answer.error}")
            else:
                lines.append(
                    f"{label}: leader {self.name_of(answer.leader_id) if answer.leader_id else 'none'}, "
                    f"raft term {answer.raft_term}, raft index {answer.raft_index}, version {answer.version}"
                )
        lines += [f"{down.host}: not asked: {down.reason}" for down in self.unreachable.values()]
        return lines


def _client_url(host: HostSpec) -> str:
    return f"https://{host.address}:2379"


def _forget_failures(client: Any) -> None:
    # pyetcd marks an endpoint "failed" for 300 s after one error and then refuses to dial it,
    # hiding the reason; kubeproof asks each member afresh to report why it did not answer.
    for endpoint in getattr(client, "endpoints", {}).values():
        endpoint.last_failed = 0


def _ask(client: Any, host: HostSpec) -> MemberAnswer:
    from pyetcd import etcdrpc

    answer = MemberAnswer(host, _client_url(host))
    _forget_failures(client)
    try:
        status = client.maintenancestub.Status(etcdrpc.StatusRequest(), client.timeout)
    except Exception as exc:  # gRPC raises many types; all mean this member did not answer
        answer.error = describe_error(exc)
        return answer
    answer.member_id, answer.cluster_id = status.header.member_id, status.header.cluster_id
    answer.leader_id, answer.raft_term, answer.raft_index = status.leader, status.raftTerm, status.raftIndex
    answer.version = status.version
    try:
        listed = client.clusterstub.MemberList(etcdrpc.MemberListRequest(), client.timeout)
        answer.members = [
            ListedMember(m.ID, m.name, tuple(sorted(m.peerURLs)), tuple(sorted(m.clientURLs))) for m in listed.members
        ]
    except Exception as exc:  # answered Status, not this: kept with the answer
        answer.members_error = describe_error(exc)
    try:
        request = etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.GET, memberID=0, alarm=etcdrpc.NONE)
        alarms = client.maintenancestub.Alarm(request, client.timeout)
        answer.alarms = [(a.memberID, etcdrpc.AlarmType.Name(a.alarm)) for a in alarms.alarms]
    except Exception as exc:  # the alarm list goes through raft: no leader, no answer
        answer.alarms_error = describe_error(exc)
    try:
        client.kvstub.Range(etcdrpc.RangeRequest(key=b"health"), client.timeout)
    except Exception as exc:  # e.g. no leader: the read needs a quorum
        answer.read_error = describe_error(exc)
    return answer


def _view(ctx: HostContext) -> ClusterView:
    etcd = clients.etcd(ctx)  # raises "prerequisite failed" when no member answers at all
    asked = [h for h in ctx.cluster.etcd_members if h.name in etcd.members]
    ctx.note_source(
        "etcd v3 API over TLS from this machine (Status, MemberList, Alarm, Range 'health'): "
        + ", ".join(_client_url(h) for h in asked)
    )

    def compute() -> ClusterView:
        return ClusterView({h.name: _ask(etcd.members[h.name], h) for h in asked}, dict(etcd.unreachable))

    view = ctx.session.shared("etcd-cluster-view", compute)
    for down in view.unreachable.values():
        ctx.note_skipped(down, "its etcd member was not asked")
    return view


def through_any_member(ctx: HostContext, what: str, read: Callable[[Any], T]) -> T:
    """Run an etcd API read through the first member that answers (used by the flannel checks too)."""
    etcd = clients.etcd(ctx)
    errors = []
    for host in ctx.cluster.etcd_members:
        client = etcd.members.get(host.name)
        if client is None:  # its host does not answer: the next member may
            ctx.note_skipped(host, f"{what} read through another member")
            continue
        _forget_failures(client)
        try:
            value = read(client)
        except Exception as exc:  # this member failed; the next may answer
            errors.append(f"{host.etcd_name}: {describe_error(exc)}")
            continue
        ctx.note_source(f"etcd v3 API over TLS from this machine: {what} via {_client_url(host)}")
        return value
    raise ProbeError(ctx.host.name, f"prerequisite failed: no etcd member answered {what}: " + "; ".join(errors))


@probe("etcd_api_health")
def etcd_api_health(ctx: HostContext, _: str) -> Observation:
    view = _view(ctx)
    answer = view.answer_of(ctx.host)
    problem = answer.error or answer.read_error or answer.alarms_error
    if problem is None:
        own_alarms = [kind for member_id, kind in answer.alarms if member_id == answer.member_id]
        if own_alarms:
            problem = "alarm " + ", ".join(own_alarms)
    if problem is None:
        return ctx.observation("healthy")
    return ctx.observation(f"unhealthy: {problem}", _unhealthy_diagnosis(ctx) + view.summary())


@probe("etcd_member_list")
def etcd_member_list(ctx: HostContext, _: str) -> Observation:
    """`name=peer URLs` of every member the cluster lists (`(unstarted)` for a member never started)."""
    view = _view(ctx)
    entries = sorted(member.entry for member in view.member_list())
    return ctx.observation(entries, [] if entries == sorted(_expected_entries(ctx)) else view.summary())


def _expected_entries(ctx: HostContext) -> list[str]:
    return ctx.cluster.etcd_initial_cluster.split(",") if ctx.cluster.etcd_members else []


def _listed_self(ctx: HostContext, view: ClusterView) -> ListedMember | None:
    own_peer = f"https://{ctx.host.address}:2380"
    for member in view.member_list():
        if member.name == ctx.host.etcd_name or own_peer in member.peer_urls:
            return member
    return None


@probe("etcd_member_state")
def etcd_member_state(ctx: HostContext, _: str) -> Observation:
    """started (listed, named, answering), or why not."""
    view = _view(ctx)
    listed = _listed_self(ctx, view)
    answer = view.answer_of(ctx.host)
    if listed is None:
        value = "not listed"
    elif not listed.name:
        value = "unstarted"
    elif answer.error:
        value = f"not answering: {answer.error}"
    else:
        value = "started"
    return ctx.observation(value, [] if value == "started" else _unhealthy_diagnosis(ctx) + view.summary())


@probe("etcd_member_client_urls")
def etcd_member_client_urls(ctx: HostContext, _: str) -> list[str]:
    """The client URLs the member list carries for this member (its --advertise-client-urls)."""
    listed = _listed_self(ctx, _view(ctx))
    return ["not listed"] if listed is None else list(listed.client_urls)


def _silent(view: ClusterView) -> list[str]:
    return [f"{a.host.etcd_name} did not answer: {a.error}" for a in view.answers.values() if a.error]


@probe("etcd_leader_problems")
def etcd_leader_problems(ctx: HostContext, _: str) -> Observation:
    """Exactly one leader, the same for every member, and a listed member."""
    view = _view(ctx)
    view.require_every_member()
    problems = _silent(view)
    answering = view.answering()
    leaderless = [a.host.etcd_name or a.host.name for a in answering if not a.leader_id]
    if leaderless:
        problems.append(f"no leader according to {', '.join(leaderless)}")
    leaders = {a.leader_id for a in answering if a.leader_id}
    if len(leaders) > 1:
        problems.append(
            "members disagree on the leader: "
            + ", ".join(f"{a.host.etcd_name} sees {view.name_of(a.leader_id)}" for a in answering)
        )
    listed_ids = {m.id for m in view.member_list()}
    problems += [f"leader {leader:x} is not in the member list" for leader in leaders if leader not in listed_ids]
    odd = _outside_the_largest_cluster(view)
    if odd:
        problems.append(
            "members belong to different clusters: "
            + ", ".join(f"{a.host.etcd_name} in cluster {a.cluster_id:x}" for a in answering)
        )
    diagnosis = view.summary() + _peers_on_the_silent(ctx, view) + _journals_of(ctx, odd) if problems else []
    return ctx.observation(problems, diagnosis, seen=view.summary())


def _outside_the_largest_cluster(view: ClusterView) -> list[MemberAnswer]:
    """Members whose cluster ID differs from most members' (one started alone, or with another
    initial cluster or token, bootstrapped a cluster of its own), the first one's when there is a tie."""
    answering = view.answering()
    counts = Counter(a.cluster_id for a in answering)
    if len(counts) < 2:
        return []
    largest = counts.most_common(1)[0][0]  # on a tie, the first member's (most_common keeps insertion order)
    return [a for a in answering if a.cluster_id != largest]


def _journals_of(ctx: HostContext, answers: Sequence[MemberAnswer]) -> list[str]:
    """The etcd diagnosis of each member named (its journal: "cluster ID mismatch" says which clusters
    its peers and it belong to)."""
    lines: list[str] = []
    for host in _gathered([answer.host for answer in answers], ctx):
        lines += [f"{host.name} ({host.etcd_name}):", *_etcd_diagnosis(ctx, host)]
    return lines


def _peers_on_the_silent(ctx: HostContext, view: ClusterView) -> list[str]:
    """When a member does not answer, its peers' journals say why they cannot reach it (its certificate
    from another CA, a SAN missing): the etcd diagnosis of the first member that answered."""
    gathered = _gathered([a.host for a in view.answering()], ctx)
    if not _silent(view) or not gathered:
        return []
    peer = gathered[0]
    return [f"{peer.name} ({peer.etcd_name}, a member that answered):", *_etcd_diagnosis(ctx, peer)]


def _gathered(hosts: Sequence[HostSpec], ctx: HostContext) -> list[HostSpec]:
    """The hosts whose etcd.service fact is already gathered: diagnosis reads it without recording it
    (diagnosis, not a source) and never runs a command for it."""
    return [host for host in hosts if ctx.session.facts(host).record(facts.etcd_service.name)]


def _etcd_diagnosis(ctx: HostContext, host: HostSpec) -> list[str]:
    return ctx.session.facts(host).get(facts.etcd_service).diagnosis()


@probe("etcd_term_problems")
def etcd_term_problems(ctx: HostContext, _: str) -> Observation:
    view = _view(ctx)
    view.require_every_member()
    problems = _silent(view)
    terms = {a.raft_term for a in view.answering()}
    if len(terms) > 1:
        problems.append(
            "raft terms differ: " + ", ".join(f"{a.host.etcd_name}={a.raft_term}" for a in view.answering())
        )
    return ctx.observation(problems, view.summary() if problems else [], seen=view.summary())


@probe("etcd_raft_index_spread")
def etcd_raft_index_spread(ctx: HostContext, _: str) -> Observation:
    """Largest difference between the members' raft indexes (read one after another, so never 0 under load)."""
    view = _view(ctx)
    view.require_every_member()
    indexes = [a.raft_index for a in view.answering()]
    spread = max(indexes) - min(indexes)
    return ctx.observation(spread, view.summary())


@probe("etcd_alarms")
def etcd_alarms(ctx: HostContext, _: str) -> Observation:
    view = _view(ctx)
    listing = [a for a in view.answering() if a.alarms_error is None]
    if not listing:
        return ctx.observation(
            [
                "no member lists its alarms: "
                + "; ".join(f"{a.host.etcd_name}: {a.alarms_error}" for a in view.answering())
            ]
        )
    alarms = [f"{view.name_of(member_id)}: {kind}" for member_id, kind in listing[0].alarms]
    raised = {view.name_of(member_id) for member_id, _kind in listing[0].alarms}
    seen = [f"alarm list read through {listing[0].host.etcd_name}: {len(alarms)} alarms"]
    seen += [f"member {m.name or f'{m.id:x}'}: no alarm" for m in view.member_list() if m.name not in raised]
    return ctx.observation(alarms, seen=seen + alarms)


@probe("etcd_replication_problems")
def etcd_replication_problems(ctx: HostContext, _: str) -> Observation:
    """Write a kubeproof key through this member, read it linearizably through every other, delete it."""
    view = _view(ctx)
    me = view.answer_of(ctx.host)
    if me.error:
        raise ProbeError(
            ctx.host.name,
            f"prerequisite failed: etcd member {ctx.host.etcd_name} does not answer at {me.url}: {me.error}",
        )
    members = clients.etcd(ctx).members
    client = members[ctx.host.name]
    key = PROBE_KEY_PREFIX + secrets.token_hex(8)
    value = secrets.token_hex(16)
    readers = [h for h in ctx.cluster.etcd_members if h.name != ctx.host.name]
    ctx.note_source(
        f"etcd v3 API over TLS from this machine: Put {key} via {me.url}; linearizable Range via "
        + ", ".join(_client_url(h) for h in readers)
        + "; Delete"
    )
    problems: list[str] = []
    diagnosis: list[str] = []
    seen = [f"wrote {key} through {me.url}"]
    try:
        try:
            _forget_failures(client)
            client.put(key, value)
        except Exception as exc:  # a write needs a quorum: any failure is the finding
            return ctx.observation([f"write through {me.url} failed: {describe_error(exc)}"], view.summary())
        for host in readers:
            if host.name in view.unreachable:
                diagnosis.append(f"{host.etcd_name} not read: {view.unreachable[host.name].reason}")
                continue
            if view.answers[host.name].error:
                diagnosis.append(f"{host.etcd_name} not read: it does not answer ({view.answers[host.name].error})")
                continue
            try:
                _forget_failures(members[host.name])
                read, _meta = members[host.name].get(key)
            except Exception as exc:  # the reader answered Status earlier: a failed read is the finding
                problems.append(f"read through {_client_url(host)} failed: {describe_error(exc)}")
                continue
            if read != value.encode():
                problems.append(f"read through {_client_url(host)} returned {read!r}, not the value just written")
            else:
                seen.append(f"member {host.etcd_name} {_client_url(host)} read back the same value")
    finally:
        _delete_everywhere(members, key, first=ctx.host.name)
    return ctx.observation(problems, diagnosis + (view.summary() if problems else []), seen=seen)


def _delete_everywhere(members: dict[str, Any], key: str, first: str) -> None:
    """Delete the probe key through the writer, or any member that takes it."""
    for name in [first, *(n for n in members if n != first)]:
        try:
            _forget_failures(members[name])
            members[name].delete(key)
        except Exception:  # noqa: S112 -- try the next member; the key is tiny and namespaced
            continue
        return
