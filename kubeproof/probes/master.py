"""Probes for MASTER-01..10 and the API-side findings SEC-02, SEC-03 (guide chapter 五, master01).

Also home of the helpers the node and smoke probes share: reading the Kubernetes API as plain JSON
through the admin client (clients.kube gates it: "prerequisite failed: ..." once per session),
flags of running components, version arithmetic, and the unit diagnosis attached to failing rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from kubeproof import layout, x509
from kubeproof.checks import NotApplicable, Observation
from kubeproof.clients import KubeClients, kube
from kubeproof.diagnosis import render_unit_diagnosis, unit_diagnosis_command
from kubeproof.facts import Fact, Raw
from kubeproof.facts import master as facts
from kubeproof.facts import node as node_facts
from kubeproof.facts.files import file_text, key_public_fingerprint
from kubeproof.facts.master import HttpAnswer, ProcessInfo
from kubeproof.inventory import HostSpec
from kubeproof.probes import probe
from kubeproof.session import HostContext
from kubeproof.transport import CommandResult, ProbeError
from kubeproof.versions import (
    APISERVER_INSECURE_PORT_REMOVED,
    SCHEDULER_LIVEZ,
    apiserver_has_insecure_port,
    release_of,
)

# The release that removed the apiserver's insecure port (kubeproof.versions has the source).
INSECURE_PORT_REMOVED = (APISERVER_INSECURE_PORT_REMOVED.major, APISERVER_INSECURE_PORT_REMOVED.minor)
# kubelet may be up to three minor versions older than kube-apiserver, never newer (version skew policy).
KUBELET_MAX_MINOR_SKEW = 3
UNIT_OK = "active, enabled"
KUBERNETES_CA = "the Kubernetes CA"


# ----------------------------------------------------------------------------- shared helpers


def version_tuple(version: str | None) -> tuple[int, int, int] | None:
    """v1.34.4 -> (1, 34, 4); None when it is not a release version."""
    if not version:
        return None
    core = version.lstrip("v").split("-", 1)[0].split("+", 1)[0].split(".")
    try:
        major, minor, patch = (int(part) for part in core[:3])
    except ValueError:
        return None
    return major, minor, patch


def first_master(ctx: HostContext) -> HostSpec:
    masters = ctx.cluster.masters
    if not masters:
        raise ProbeError(ctx.host.name, "the cluster file has no host with role master")
    return masters[0]


def exposure_vantage(ctx: HostContext) -> HostSpec:
    """The host that probes this master from the network: its designated peer, or where that one
    does not answer the next one that does (noted). Never the master itself when it has peers:
    the rows are about what the network sees, and none left answering is the designated peer's error.
    """
    designated = facts.exposure_peer(ctx.cluster, ctx.host)
    # the peer facts were gathered for the hosts that answered at session start
    peer = facts.exposure_peer(ctx.session.peer_cluster, ctx.host)
    if peer.name != designated.name:
        if peer.name == ctx.host.name:
            ctx.require_reachable(designated)
        ctx.note_skipped(designated, f"{ctx.host.name} probed from {peer.name} instead")
    return peer


def apiserver_version(ctx: HostContext) -> str:
    """What `kube-apiserver --version` says on the first master (the declared version when it cannot)."""
    master = first_master(ctx)
    reported = ctx.fact(facts.master_versions, master).get("kube-apiserver", "missing")
    if release_of(reported) is not None:  # v0.0.0 (a build without version stamps) is no release
        return reported
    declared = ctx.cluster.versions.kubernetes
    if declared:
        ctx.note_source(f"cluster file: versions.kubernetes = {declared} (kube-apiserver --version: {reported})")
        return declared
    raise ProbeError(master.name, f"the kube-apiserver version is unknown (kube-apiserver --version: {reported})")


def run_once(ctx: HostContext, host: HostSpec, command: str, timeout: float = 30.0) -> CommandResult:
    """A command outside the fact batches (on demand, or timed); run once per session and recorded."""

    def run() -> CommandResult:
        return ctx.session.transport.connection(host).run(command, timeout=timeout)

    result = ctx.session.shared(f"run:{host.name}:{command}", run)
    ctx.note_source(f"{host.name}$ {command}")
    return result


def unit_diagnosis(ctx: HostContext, host: HostSpec, unit: str) -> list[str]:
    """A unit's state, the known signatures its own journal lines match, and its last own error lines
    (systemd's bookkeeping left out), at most 12 lines: attached to failing rows (kubeproof.diagnosis)."""
    try:
        result = run_once(ctx, host, unit_diagnosis_command(unit))
    except ProbeError as exc:
        return [f"{host.name}: {unit}: no diagnosis ({exc.reason})"]
    return render_unit_diagnosis(host.name, unit, result.stdout)


@dataclass(frozen=True)
class ApiAnswer:
    status: int
    body: Any  # parsed JSON, or the text when it is not JSON
    server_time: datetime | None  # the apiserver's Date header: the cluster's clock, not ours
    unanswered: int = 0  # earlier attempts of a read that got no answer in ATTEMPT_SECONDS

    def describe(self) -> str:
        retried = f", after {self.unanswered} attempt(s) unanswered in {ATTEMPT_SECONDS:g} s" if self.unanswered else ""
        return f"HTTP {self.status}{retried}"


# A read is tried again when it gets no answer in this time, within the caller's timeout. With one
# etcd member frozen, kube-apiserver's etcd client sends a share of its requests to that member
# until its keepalive gives up (30 s + 10 s); such a request hangs, the next one is sent to another
# member (seen on the lab: a 10 s hang of one GET while node02 was paused). Writes are sent once.
ATTEMPT_SECONDS = 3.0
IDEMPOTENT = frozenset({"GET", "HEAD"})


def call_json(
    clients: KubeClients, method: str, path: str, body: Any = None, *, timeout: float, where: str
) -> ApiAnswer:
    """One request through an admin client; plain JSON in and out (no generated models)."""
    deadline = time.monotonic() + timeout
    unanswered = 0
    while True:
        left = deadline - time.monotonic()
        # the last attempt takes what is left: a slow answer still comes within the caller's timeout
        attempt = ATTEMPT_SECONDS if method in IDEMPOTENT and left > 2 * ATTEMPT_SECONDS else max(left, 0.1)
        try:
            answer = _call_once(clients, method, path, body, timeout=attempt, where=where)
        except _NoAnswer as exc:
            if attempt < left:
                unanswered += 1
                continue
            raise ProbeError(where, exc.reason) from None
        return dataclasses.replace(answer, unanswered=unanswered) if unanswered else answer


class _NoAnswer(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _call_once(clients: KubeClients, method: str, path: str, body: Any, *, timeout: float, where: str) -> ApiAnswer:
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    response: Any = None
    try:
        response = clients.api_client.call_api(
            method, clients.server + path, header_params=headers, body=body, _request_timeout=timeout
        )
        data = response.read()
        status = int(response.status)
        date_header = response.headers.get("Date")
    except Exception as exc:  # urllib3 and ssl raise many types; all mean the request did not complete
        reason = f"Kubernetes API {method} {path}: {type(exc).__name__}: {exc}"
        if _is_read_timeout(exc):
            raise _NoAnswer(reason) from None
        raise ProbeError(where, reason) from None
    finally:
        if response is not None:
            with contextlib.suppress(Exception):
                response.response.release_conn()
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    try:
        parsed: Any = json.loads(text)
    except json.JSONDecodeError:
        parsed = text
    server_time = None
    if date_header:
        with contextlib.suppress(TypeError, ValueError):
            server_time = parsedate_to_datetime(date_header)
    return ApiAnswer(status, parsed, server_time)


def _is_read_timeout(exc: BaseException) -> bool:
    """The request went out and no answer came in time (not: refused, reset, TLS, DNS)."""
    from urllib3.exceptions import MaxRetryError, ReadTimeoutError

    if isinstance(exc, MaxRetryError):
        return isinstance(exc.reason, ReadTimeoutError)
    return isinstance(exc, ReadTimeoutError)


def api_request(
    ctx: HostContext, method: str, path: str, body: Any = None, *, timeout: float = 10.0, record: bool = True
) -> ApiAnswer:
    """A request with the session's admin client (gated: "prerequisite failed" when the API is down)."""
    answer = call_json(kube(ctx), method, path, body, timeout=timeout, where=ctx.host.name)
    if record:
        ctx.note_source(f"Kubernetes API: {method} {path} ({answer.describe()})")
    return answer


def api_message(answer: ApiAnswer) -> str:
    if isinstance(answer.body, dict):
        return str(answer.body.get("message", ""))[:300]
    return str(answer.body)[:300]


def api_get(ctx: HostContext, path: str, *, not_found_ok: bool = False) -> ApiAnswer:
    """GET that must succeed (404 allowed when asked): anything else is a probe error."""
    answer = api_request(ctx, "GET", path)
    if answer.status == 200 or (not_found_ok and answer.status == 404):
        return answer
    raise ProbeError(ctx.host.name, f"Kubernetes API GET {path}: HTTP {answer.status}: {api_message(answer)}")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def process(ctx: HostContext, unit: str, host: HostSpec | None = None) -> ProcessInfo:
    """The running main process of a unit on this (or another) host; a probe error when it is not running."""
    target = host or ctx.host
    fact = facts.master_processes if unit in facts.MASTER_UNITS else node_facts.node_processes
    info = ctx.fact(fact, target).get(unit)
    if info is None or not info.running:
        states = ctx.fact(facts.master_units if unit in facts.MASTER_UNITS else node_facts.node_units, target)
        raise ProbeError(
            target.name,
            f"{unit} is not running ({facts.unit_summary(states, unit)}): no running process to read flags from",
        )
    return info


def _unit_and_flag(argument: str) -> tuple[str, str]:
    parts = argument.split()
    if len(parts) != 2 or not parts[1].startswith("--"):
        raise ValueError(f"expected 'UNIT --flag', got {argument!r}")
    return parts[0], parts[1].lstrip("-")


def certificate_verdict(pem: str | None, ca_pem: str | None, what: str) -> str:
    """KUBERNETES_CA when the Kubernetes CA signed it; otherwise what is wrong, in words."""
    if not pem:
        return f"no {what}"
    if not ca_pem:
        return "the Kubernetes CA (ca.pem) is missing on the master"
    try:
        reason = x509.verify_issued_by(pem, ca_pem)
    except x509.CertificateParseError as exc:
        return f"{what} unreadable: {exc}"
    return KUBERNETES_CA if reason is None else f"not the Kubernetes CA: {reason}"


def kubernetes_ca_pem(ctx: HostContext) -> str | None:
    return ctx.fact(facts.kubernetes_ca, first_master(ctx))


# ----------------------------------------------------------------------------- units and flags


@probe("unit_state")
def unit_state(ctx: HostContext, unit: str) -> Observation:
    """`active, enabled` (what is-active and is-enabled say), with status and journal when it is not."""
    fact = facts.master_units if unit in facts.MASTER_UNITS else node_facts.node_units
    summary = facts.unit_summary(ctx.fact(fact), unit)
    diagnosis = [] if summary == UNIT_OK else unit_diagnosis(ctx, ctx.host, unit)
    return ctx.observation(summary, diagnosis)


@probe("flag")
def flag(ctx: HostContext, argument: str) -> str:
    """The value a running component was started with (`flag(kube-apiserver --secure-port)`)."""
    unit, name = _unit_and_flag(argument)
    return process(ctx, unit).flags.get(name, "(not set)")


@probe("flag_list")
def flag_list(ctx: HostContext, argument: str) -> Observation:
    """A comma-separated flag's items (`flag_list(kube-apiserver --authorization-mode)`)."""
    unit, name = _unit_and_flag(argument)
    value = process(ctx, unit).flags.get(name, "")
    items = [item.strip() for item in value.split(",") if item.strip()]
    return ctx.observation(items, seen=[f"running {unit} --{name}={value or '(not set)'}"])


@probe("flags_set")
def flags_set(ctx: HostContext, argument: str) -> Observation:
    """Which of the named flags the running component was given (`flags_set(kube-apiserver --a --b)`)."""
    unit, *names = argument.split()
    flags = process(ctx, unit).flags
    wanted = [name.lstrip("-") for name in names]
    present = [name for name in wanted if flags.get(name)]
    return ctx.observation(present, [f"--{name}={flags.get(name, '(not set)')}" for name in wanted])


# ----------------------------------------------------------------------------- MASTER-01


@probe("master_layout_dirs")
def master_layout_dirs(ctx: HostContext, _: str) -> list[str]:
    return ctx.fact(facts.master_layout)


def _binaries_off_version(ctx: HostContext, fact: Fact[dict[str, str]]) -> Observation:
    versions = ctx.fact(fact)
    reference = ctx.cluster.versions.kubernetes or versions.get("kube-apiserver", "")
    offending = [f"{name}={version}" for name, version in versions.items() if version != reference]
    origin = "versions.kubernetes in the cluster file" if ctx.cluster.versions.kubernetes else "kube-apiserver"
    diagnosis = [f"reference version: {reference} ({origin})"]
    diagnosis += [f"{layout.K8S_BIN}/{name}: {version}" for name, version in versions.items()]
    seen = [
        f"{layout.K8S_BIN}/{name} {version} {'=' if version == reference else '!='} {reference}"
        for name, version in versions.items()
    ]
    return ctx.observation(offending, diagnosis, seen=seen)


@probe("master_binaries_off_version")
def master_binaries_off_version(ctx: HostContext, _: str) -> Observation:
    """Binaries missing from /opt/kubernetes/bin or reporting another version than the cluster's."""
    return _binaries_off_version(ctx, facts.master_versions)


# ----------------------------------------------------------------------------- MASTER-02


@probe("token_csv_lines")
def token_csv_lines(ctx: HostContext, _: str) -> list[str]:
    """token.csv's lines with the token replaced by its shape (`<32 hex>,kubelet-bootstrap,...`)."""
    summary = ctx.fact(facts.token_csv)
    if not summary.present:
        return ["<file absent>"]
    return [line.shape for line in summary.lines]


@probe("token_csv_mode")
def token_csv_mode(ctx: HostContext, _: str) -> str | None:
    summary = ctx.fact(facts.token_csv)
    return summary.mode if summary.present else None


@probe("token_csv_user")
def token_csv_user(ctx: HostContext, _: str) -> Observation:
    """Who the apiserver authenticates token.csv's token as (a SelfSubjectReview made on the master)."""
    review = ctx.fact(facts.token_review(ctx.host.address))
    if review.username:
        return ctx.observation(review.username, [f"groups: {', '.join(review.groups)}"])
    if review.status:
        return ctx.observation(f"not authenticated (HTTP {review.status})", [review.detail] if review.detail else [])
    return ctx.observation(f"no answer: {review.detail}" if review.detail else "no answer")


# ----------------------------------------------------------------------------- MASTER-04


@probe("listening_addresses")
def listening_addresses(ctx: HostContext, port: str) -> Observation:
    """Addresses of this host a client can reach the port on (a wildcard listener covers the host address)."""
    listeners = [item for item in ctx.fact(facts.master_listeners) if item.port == int(port)]
    addresses: list[str] = []
    for item in listeners:
        if item.wildcard:
            addresses.append(ctx.host.address)
        elif not item.loopback:
            addresses.append(item.address)
    return ctx.observation(sorted(set(addresses)), [f"listener: {item}" for item in listeners] or ["no listener"])


def _served_chain(ctx: HostContext) -> tuple[list[x509.CertInfo], str]:
    peer = exposure_vantage(ctx)
    chain = ctx.fact(facts.peer_tls(ctx.host), peer)
    where = f"from {peer.name} to {ctx.host.address}:{facts.APISERVER_SECURE_PORT}"
    if not chain.connected:
        return [], f"no TLS handshake {where}: {chain.detail}"
    try:
        return x509.parse_pem_certificates(chain.certificates_pem), where
    except x509.CertificateParseError as exc:
        return [], f"unreadable certificate {where}: {exc}"


@probe("served_certificate_issuer")
def served_certificate_issuer(ctx: HostContext, _: str) -> Observation:
    """Whether the certificate 6443 serves (seen from a peer) chains to the Kubernetes CA."""
    chain, where = _served_chain(ctx)
    if not chain:  # nothing serves 6443: kube-apiserver's journal says why (SIG-APISERVER-*)
        return ctx.observation(where, unit_diagnosis(ctx, ctx.host, "kube-apiserver"))
    verdict = certificate_verdict(chain[0].pem, kubernetes_ca_pem(ctx), "served certificate")
    return ctx.observation(verdict, [f"served {where}: {info.subject} (issuer {info.issuer})" for info in chain])


@probe("served_certificate_sans")
def served_certificate_sans(ctx: HostContext, _: str) -> Observation:
    """The IP SANs of the certificate 6443 serves to a peer (it must cover the dialled address)."""
    chain, where = _served_chain(ctx)
    if not chain:
        return ctx.observation([where])
    return ctx.observation(chain[0].san_ips, [f"served {where}: DNS SANs {chain[0].san_dns}"])


@probe("served_certificate_is_apiserver")
def served_certificate_is_apiserver(ctx: HostContext, _: str) -> Observation:
    """Whether 6443 serves the certificate --tls-cert-file names (and not some other one)."""
    chain, where = _served_chain(ctx)
    if not chain:
        return ctx.observation(where)
    configured = ctx.fact(facts.apiserver_cert) or ""
    path = next((line[6:] for line in configured.splitlines() if line.startswith("@path ")), "--tls-cert-file")
    try:
        expected = x509.parse_pem_certificates(configured)[0]
    except x509.CertificateParseError as exc:
        raise ProbeError(ctx.host.name, f"{path}: {exc}") from None
    if chain[0].sha256_fingerprint == expected.sha256_fingerprint:
        return ctx.observation("the --tls-cert-file certificate", [f"{path}: {expected.subject}"])
    return ctx.observation(
        f"another certificate ({chain[0].subject})", [f"{path}: {expected.subject}", f"served {where}"]
    )


# ----------------------------------------------------------------------------- MASTER-05, SEC-02


def _insecure_port_exists(ctx: HostContext) -> tuple[bool, str]:
    """Whether the master's kube-apiserver release still has an insecure port (before v1.20), from
    what its binary prints (`kube-apiserver --version` on the master; the declared one, noted, when
    it prints none)."""
    version = apiserver_version(ctx)
    parsed = release_of(version)
    return (parsed is not None and apiserver_has_insecure_port(parsed)), version


def _listeners_on(ctx: HostContext, port: int) -> list[facts.Listener]:
    return [item for item in ctx.fact(facts.master_listeners) if item.port == port]


@probe("insecure_port_exposed")
def insecure_port_exposed(ctx: HostContext, _: str) -> Observation:
    """Listeners on 8080 bound to a non-loopback (or wildcard) address of the master."""
    listeners = _listeners_on(ctx, facts.INSECURE_PORT)
    seen = [f"listener {item}: {'loopback' if item.loopback else 'beyond loopback'}" for item in listeners]
    return ctx.observation(
        [str(item) for item in listeners if not item.loopback],
        [f"listener: {item}" for item in listeners] or ["nothing listens on 8080"],
        seen=seen or [f"nothing listens on {facts.INSECURE_PORT} (ss -ltnp)"],
    )


@probe("insecure_port_listeners")
def insecure_port_listeners(ctx: HostContext, _: str) -> Observation:
    """Every listener on 8080, loopback included: a release without the insecure port has none."""
    exists, version = _insecure_port_exists(ctx)
    if exists:
        raise NotApplicable(f"kube-apiserver {version} still has its insecure port (on 127.0.0.1 only)")
    listeners = [str(item) for item in _listeners_on(ctx, facts.INSECURE_PORT)]
    seen = [f"listener {item}" for item in listeners] or [
        f"nothing listens on {facts.INSECURE_PORT}, loopback included (kube-apiserver {version}; ss -ltnp)"
    ]
    return ctx.observation(listeners, seen=seen)


@probe("insecure_port_loopback_healthz")
def insecure_port_loopback_healthz(ctx: HostContext, _: str) -> str:
    """Where the release still has an insecure port: 127.0.0.1:8080/healthz answers ok."""
    exists, version = _insecure_port_exists(ctx)
    if not exists:
        raise NotApplicable(
            f"kube-apiserver {version} has no insecure port (removed in {APISERVER_INSECURE_PORT_REMOVED.v})"
        )
    result = run_once(ctx, ctx.host, facts.curl_command(f"http://127.0.0.1:{facts.INSECURE_PORT}/healthz"))
    answer = facts.parse_curl(Raw(result.stdout, result.stderr, result.rc))
    return answer.body if answer.status == 200 else answer.describe()


def _peer_view(answer: HttpAnswer) -> str:
    return "not reachable" if not answer.connected else "reachable: " + answer.describe()


@probe("insecure_port_from_peer")
def insecure_port_from_peer(ctx: HostContext, _: str) -> Observation:
    """What a peer host gets for plain HTTP to <master>:8080 (nothing, when there is no insecure port)."""
    peer = exposure_vantage(ctx)
    answer = ctx.fact(facts.peer_insecure(ctx.host), peer)
    return ctx.observation(_peer_view(answer), [f"from {peer.name}: {answer.describe()}"])


@probe("insecure_apiserver_endpoints")
def insecure_apiserver_endpoints(ctx: HostContext, _: str) -> Observation:
    """Plain-HTTP endpoints a peer reaches on the master: :8080, and any non-TLS apiserver listener."""
    peer = exposure_vantage(ctx)
    found: list[str] = []
    diagnosis: list[str] = []
    answer = ctx.fact(facts.peer_insecure(ctx.host), peer)
    diagnosis.append(f"from {peer.name}: http://{ctx.host.address}:{facts.INSECURE_PORT}/version: {answer.describe()}")
    if answer.connected:
        found.append(f"http://{ctx.host.address}:{facts.INSECURE_PORT} ({answer.describe()})")
    secure_port = facts.APISERVER_SECURE_PORT
    with contextlib.suppress(ProbeError):
        secure_port = int(process(ctx, "kube-apiserver").flags.get("secure-port", secure_port))
    for item in _listeners_on_process(ctx, "kube-apiserver"):
        if item.loopback or item.port in (secure_port, facts.INSECURE_PORT):
            continue
        address = ctx.host.address if item.wildcard else item.address
        url = f"http://{address}:{item.port}/version"
        result = run_once(ctx, peer, facts.curl_command(url))
        other = facts.parse_curl(Raw(result.stdout, result.stderr, result.rc))
        diagnosis.append(f"from {peer.name}: {url}: {other.describe()}")
        if other.status and "gitVersion" in other.body:
            found.append(f"http://{address}:{item.port} ({other.describe()})")
    return ctx.observation(found, diagnosis, seen=diagnosis)


def _listeners_on_process(ctx: HostContext, name: str) -> list[facts.Listener]:
    return [item for item in ctx.fact(facts.master_listeners) if item.process == name]


# ----------------------------------------------------------------------------- MASTER-06


@probe("anonymous_status")
def anonymous_status(ctx: HostContext, _: str) -> Observation:
    """The HTTP status an anonymous client on a peer gets for a protected path on 6443."""
    peer = exposure_vantage(ctx)
    answer = ctx.fact(facts.peer_anonymous(ctx.host), peer)
    if not answer.status:
        raise ProbeError(
            peer.name, f"no HTTPS answer from {ctx.host.address}:{facts.APISERVER_SECURE_PORT}: {answer.describe()}"
        )
    return ctx.observation(
        answer.status, [f"from {peer.name}: GET {facts.PROTECTED_PATH} without credentials: {answer.describe()}"]
    )


# ----------------------------------------------------------------------------- MASTER-07


@probe("api_version")
def api_version(ctx: HostContext, _: str) -> Observation:
    """gitVersion of GET /version through the admin client."""
    answer = api_get(ctx, "/version")
    body = answer.body if isinstance(answer.body, dict) else {}
    return ctx.observation(body.get("gitVersion"), [f"/version: {json.dumps(body, sort_keys=True)[:300]}"])


@probe("kubectl_version")
def kubectl_version(ctx: HostContext, _: str) -> Observation:
    """The client version of the kubectl root's login shell finds (else /opt/kubernetes/bin/kubectl)."""
    admin = ctx.fact(facts.admin_kubectl)
    if admin.path and admin.client_version:
        diagnosis = [f"kubectl: {admin.path} -> {admin.resolved}", f"kubectl version (server): {admin.server_answer}"]
        return ctx.observation(admin.client_version, diagnosis)
    fallback = ctx.fact(facts.master_versions).get("kubectl", "missing")
    return ctx.observation(fallback, [f"kubectl is not on root's login PATH; {layout.K8S_BIN}/kubectl: {fallback}"])


# ----------------------------------------------------------------------------- MASTER-08, MASTER-09


@probe("component_health")
def component_health(ctx: HostContext, argument: str) -> Observation:
    """`healthz=ok` (and `livez=ok` where served) from the component's secure port, the journal when not ok.

    `component_health(kube-scheduler livez)` asks only the paths named. kube-scheduler serves
    /livez only from SCHEDULER_LIVEZ (kubeproof.versions): an older release skips, naming it.
    """
    unit, *asked = argument.split()
    paths = tuple(asked) or facts.HEALTH_PATHS[unit]
    if unit == "kube-scheduler" and "livez" in paths:
        printed = ctx.fact(facts.master_versions).get("kube-scheduler", "missing")
        version = release_of(printed)
        if version is not None and version < SCHEDULER_LIVEZ:
            raise NotApplicable(f"kube-scheduler {version.v} serves no /livez (added in {SCHEDULER_LIVEZ.v})")
    answers = ctx.fact(facts.component_health)
    observed = []
    for path in paths:
        answer = answers.get(f"{unit} /{path}")
        if answer is None:
            observed.append(f"{path}=not probed")
        elif answer.status == 200 and answer.body.strip() == "ok":
            observed.append(f"{path}=ok")
        else:
            observed.append(f"{path}={answer.describe()}")
    healthy = all(item.endswith("=ok") for item in observed)
    return ctx.observation(observed, [] if healthy else unit_diagnosis(ctx, ctx.host, unit))


@probe("leader_lease")
def leader_lease(ctx: HostContext, name: str) -> Observation:
    """The master holding the kube-system/<name> Lease, when its holder renewed it within its duration."""
    answer = api_get(ctx, f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}", not_found_ok=True)
    if answer.status == 404:
        return ctx.observation("no lease", unit_diagnosis(ctx, first_master(ctx), name))
    spec = answer.body.get("spec") or {}
    holder = spec.get("holderIdentity") or ""
    renewed = parse_time(spec.get("renewTime"))
    duration = int(spec.get("leaseDurationSeconds") or 15)
    now = answer.server_time or datetime.now(UTC)
    age = (now - renewed).total_seconds() if renewed else None
    # holderIdentity is "<hostname>_<uuid>"
    holder_host = holder.split("_", 1)[0]
    details = [f"holderIdentity={holder!r} renewTime={spec.get('renewTime')} leaseDurationSeconds={duration}"]
    # the Date header has whole seconds: one second of slack
    if holder and age is not None and age <= duration + 1:
        return ctx.observation(holder_host, details)
    if not holder:
        observed = "no holder (released)"
    else:
        observed = f"stale: {holder_host} renewed {age:.0f}s ago (lease {duration}s)" if age is not None else holder
    return ctx.observation(observed, details + unit_diagnosis(ctx, first_master(ctx), name))


@probe("controller_manager_signing")
def controller_manager_signing(ctx: HostContext, _: str) -> Observation:
    """What is wrong with the controller-manager's CSR signing pair (empty: the Kubernetes CA and its key)."""
    flags = process(ctx, "kube-controller-manager").flags
    cert_path = flags.get("cluster-signing-cert-file")
    key_path = flags.get("cluster-signing-key-file")
    problems = []
    if not cert_path:
        problems.append("--cluster-signing-cert-file is not set")
    if not key_path:
        problems.append("--cluster-signing-key-file is not set")
    ca_pem = ctx.fact(facts.kubernetes_ca)
    if not ca_pem:
        raise ProbeError(ctx.host.name, f"{layout.K8S_SSL}/ca.pem is missing")
    ca = x509.parse_certificate(ca_pem)
    diagnosis = [f"Kubernetes CA: {layout.K8S_SSL}/ca.pem {ca.subject} sha256 {ca.sha256_fingerprint[:16]}"]
    seen = []
    if cert_path:
        signing_pem = ctx.fact(file_text(cert_path))
        if signing_pem is None:
            problems.append(f"--cluster-signing-cert-file {cert_path} does not exist")
        else:
            signing = x509.parse_pem_certificates(signing_pem)[0]
            diagnosis.append(f"signing certificate {cert_path}: {signing.subject}")
            same = signing.sha256_fingerprint == ca.sha256_fingerprint
            seen.append(
                f"--cluster-signing-cert-file {cert_path} sha256 {signing.sha256_fingerprint[:16]} "
                f"{'=' if same else '!='} ca.pem {ca.sha256_fingerprint[:16]}"
            )
            if not same:
                problems.append(f"--cluster-signing-cert-file {cert_path} is not the Kubernetes CA ({signing.subject})")
    if key_path:
        fingerprint = ctx.fact(key_public_fingerprint(key_path))
        if fingerprint is None:
            problems.append(f"--cluster-signing-key-file {key_path} does not exist")
        else:
            seen.append(
                f"--cluster-signing-key-file {key_path} public key {fingerprint[:16]} "
                f"{'=' if fingerprint == ca.spki_sha256 else '!='} ca.pem key {ca.spki_sha256[:16]}"
            )
            if fingerprint != ca.spki_sha256:
                problems.append(f"--cluster-signing-key-file {key_path} is not the Kubernetes CA's key")
    if problems:  # what the controller-manager said about its signing pair (SIG-KCM-01/02)
        diagnosis += unit_diagnosis(ctx, ctx.host, "kube-controller-manager")
    return ctx.observation(problems, diagnosis, seen=seen)


# ----------------------------------------------------------------------------- MASTER-10


def _etcd_members_unhealthy(ctx: HostContext) -> tuple[list[str], list[str]]:
    """Members whose /health is not true, asked with the running apiserver's own etcd flags."""
    master = first_master(ctx)
    answers = ctx.fact(facts.etcd_health, master)
    # a member on a host that does not answer: its /health timed out for the reason the host did
    # (this row needs every member, as ETCD-09 does), so the row errors naming it, at once
    addresses = {urllib.parse.urlsplit(url).hostname for url in answers}
    for host in ctx.cluster.hosts:
        if host.address in addresses:
            ctx.require_reachable(host)
    problems = []
    diagnosis = []
    for url, answer in answers.items():
        try:
            healthy = answer.status == 200 and str(json.loads(answer.body).get("health")) == "true"
        except (json.JSONDecodeError, AttributeError):
            healthy = False
        diagnosis.append(f"etcd {url}/health (apiserver's etcd client certificate): {answer.describe()}")
        if not healthy:
            problems.append(f"etcd {url}: {answer.describe()}")
    if not answers:
        problems.append("etcd: the running kube-apiserver names no --etcd-servers")
    return problems, diagnosis


@probe("unhealthy_components")
def unhealthy_components(ctx: HostContext, _: str) -> Observation:
    """Components that are not healthy, or missing, in the ComponentStatus API (kubectl get cs), and
    etcd members that do not answer /health to the apiserver's etcd client certificate.

    ComponentStatus is deprecated (v1.19) but still served in v1.34. It reports etcd as ONE entry
    (etcd-0: the storage backend), not per member, so each member's /health is asked as well. Where
    a release stops serving ComponentStatus, the components' own /healthz (/livez) stand in.
    """
    answer = api_get(ctx, "/api/v1/componentstatuses", not_found_ok=True)
    problems, diagnosis = _etcd_members_unhealthy(ctx)
    if answer.status == 404:
        more, notes, answered = _unhealthy_without_componentstatus(ctx)
        return ctx.observation(more + problems, notes + diagnosis, seen=answered + diagnosis)
    seen: dict[str, str] = {}
    for item in answer.body.get("items") or []:
        name = (item.get("metadata") or {}).get("name", "?")
        conditions = {c.get("type"): c for c in item.get("conditions") or []}
        healthy = conditions.get("Healthy") or {}
        message = healthy.get("message") or healthy.get("error") or ""
        seen[name] = f"{name}: Healthy={healthy.get('status', '?')} {message}".strip()
        if healthy.get("status") != "True":
            problems.append(seen[name])
    problems += [f"{name}: not reported" for name in ("scheduler", "controller-manager") if name not in seen]
    if not any(name.startswith("etcd-") for name in seen):
        problems.append("etcd: not reported")
    diagnosis = ["kubectl get cs: " + line for line in seen.values()] + diagnosis
    checked = list(diagnosis)
    if any(p.startswith(("scheduler", "controller-manager")) for p in problems):
        for unit in ("kube-scheduler", "kube-controller-manager"):
            diagnosis += unit_diagnosis(ctx, first_master(ctx), unit)
    return ctx.observation(problems, diagnosis, seen=checked)


def _unhealthy_without_componentstatus(ctx: HostContext) -> tuple[list[str], list[str], list[str]]:
    """(problems, notes, what each component's /healthz and /livez answered)."""
    answers = ctx.fact(facts.component_health, first_master(ctx))
    problems, answered = [], []
    for unit in ("kube-scheduler", "kube-controller-manager"):
        for path in facts.HEALTH_PATHS[unit]:
            answer = answers.get(f"{unit} /{path}")
            answered.append(f"{unit} /{path}: {answer.describe() if answer else 'not probed'}")
            if answer is None or answer.status != 200:
                problems.append(answered[-1])
    return problems, ["ComponentStatus is not served: used the components' /healthz and /livez"], answered


# ----------------------------------------------------------------------------- SEC-03


ANONYMOUS_SUBJECTS = {("User", "system:anonymous"), ("Group", "system:anonymous"), ("Group", "system:unauthenticated")}


@probe("anonymous_cluster_admin_bindings")
def anonymous_cluster_admin_bindings(ctx: HostContext, _: str) -> Observation:
    """(Cluster)role bindings granting cluster-admin to system:anonymous (or every unauthenticated user)."""
    found = []
    seen = []
    for path, kind in (
        ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "clusterrolebinding"),
        ("/apis/rbac.authorization.k8s.io/v1/rolebindings", "rolebinding"),
    ):
        for item in api_get(ctx, path).body.get("items") or []:
            role = item.get("roleRef") or {}
            if role.get("kind") != "ClusterRole" or role.get("name") != "cluster-admin":
                continue
            metadata = item.get("metadata") or {}
            name = metadata.get("name", "?")
            if kind == "rolebinding":
                name = f"{metadata.get('namespace', '?')}/{name}"
            subjects = [(subject.get("kind"), subject.get("name")) for subject in item.get("subjects") or []]
            seen.append(f"{kind} {name}: cluster-admin -> " + (", ".join(f"{k} {n}" for k, n in subjects) or "nobody"))
            found += [f"{kind} {name}: cluster-admin -> {k} {n}" for k, n in subjects if (k, n) in ANONYMOUS_SUBJECTS]
    return ctx.observation(found, seen=seen or ["no binding grants cluster-admin"])
