"""Probes for NODE-01..09: kubelet and kube-proxy on the workers (guide chapter 六).

NODE-05 and garbage-collected CSRs: the CSR cleaner (kube-controller-manager) deletes approved and
denied CSRs one hour after their last condition, pending ones after 24 hours. A node bootstrapped
earlier than that has no CSR left; its kubelet client certificate (CN=system:node:<name>, issued by
the Kubernetes CA) is then the proof that its CSR was approved and issued, because that certificate
can only come from an approved CSR. Pending, denied and failed CSRs still listed are always reported.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from cryptography import x509 as crypto_x509
from cryptography.x509.oid import NameOID

from kubeproof import layout, x509
from kubeproof.checks import NotApplicable, Observation
from kubeproof.facts import master as master_facts
from kubeproof.facts import node as facts
from kubeproof.facts.node import KubeconfigSummary
from kubeproof.inventory import HostSpec
from kubeproof.probes import probe
from kubeproof.probes.master import (
    KUBELET_MAX_MINOR_SKEW,
    KUBERNETES_CA,
    api_get,
    apiserver_version,
    certificate_verdict,
    first_master,
    kubernetes_ca_pem,
    parse_time,
    process,
    unit_diagnosis,
    unit_state,
    version_tuple,
)
from kubeproof.session import HostContext
from kubeproof.transport import ProbeError
from kubeproof.versions import DOCKERSHIM_REMOVED, kubelet_uses_dockershim, release_of

CSR_APPROVED = "approved and issued"
CSR_COLLECTED = "garbage-collected; the issued client certificate proves the approval"
BOOTSTRAP_GENERATED = "written by the TLS bootstrap"
KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
# an approved CSR gets its certificate from the signer within seconds; older than this is a problem
ISSUE_GRACE_SECONDS = 60


# ----------------------------------------------------------------------------- NODE-01


@probe("node_binaries_off_skew")
def node_binaries_off_skew(ctx: HostContext, _: str) -> Observation:
    """kubelet/kube-proxy missing, or outside the supported skew of kube-apiserver (<= 3 minors older, never newer)."""
    reference = apiserver_version(ctx)
    server = version_tuple(reference)
    offending = []
    diagnosis = [f"kube-apiserver: {reference}"]
    seen = []
    for name, version in ctx.fact(facts.node_versions).items():
        diagnosis.append(f"{layout.K8S_BIN}/{name}: {version}")
        parsed = version_tuple(version)
        if parsed is None or server is None:
            offending.append(f"{name}={version}")
        elif parsed[0] != server[0] or parsed[1] > server[1]:
            offending.append(f"{name}={version} (newer than kube-apiserver {reference})")
        elif server[1] - parsed[1] > KUBELET_MAX_MINOR_SKEW:
            offending.append(f"{name}={version} (more than {KUBELET_MAX_MINOR_SKEW} minors older than {reference})")
        else:
            seen.append(
                f"{layout.K8S_BIN}/{name} {version}: within {KUBELET_MAX_MINOR_SKEW} minors of kube-apiserver "
                f"{reference}, not newer"
            )
    return ctx.observation(offending, diagnosis, seen=seen + offending)


# ----------------------------------------------------------------------------- kubeconfigs (NODE-02, NODE-07)


def _kubeconfig(ctx: HostContext, name: str) -> KubeconfigSummary:
    if name not in facts.node_kubeconfigs:
        raise ValueError(f"unknown kubeconfig {name!r} (known: {sorted(facts.node_kubeconfigs)})")
    return ctx.fact(facts.node_kubeconfigs[name])


@probe("kubeconfig_server")
def kubeconfig_server(ctx: HostContext, name: str) -> Observation:
    summary = _kubeconfig(ctx, name)
    if not summary.present:
        return ctx.observation(f"({name} is absent)")
    if not summary.servers:
        return ctx.observation("(no server)")
    return ctx.observation(summary.servers[0], [f"servers: {', '.join(summary.servers)}"])


@probe("kubeconfig_ca")
def kubeconfig_ca(ctx: HostContext, name: str) -> Observation:
    """`the Kubernetes CA (embedded)` when certificate-authority-data is the master's ca.pem."""
    summary = _kubeconfig(ctx, name)
    if not summary.present:
        return ctx.observation(f"({name} is absent)")
    if summary.ca_pem is None:
        if summary.ca_files:
            return ctx.observation(f"not embedded (certificate-authority: {summary.ca_files[0]})")
        return ctx.observation("no CA" + (f" ({'; '.join(summary.problems)})" if summary.problems else ""))
    ca_pem = kubernetes_ca_pem(ctx)
    if not ca_pem:
        raise ProbeError(first_master(ctx).name, f"{layout.K8S_SSL}/ca.pem is missing")
    embedded = x509.parse_certificate(summary.ca_pem)
    expected = x509.parse_certificate(ca_pem)
    if embedded.sha256_fingerprint == expected.sha256_fingerprint:
        return ctx.observation(KUBERNETES_CA + " (embedded)")
    return ctx.observation(
        f"another CA ({embedded.subject}, sha256 {embedded.sha256_fingerprint[:16]})",
        [
            f"Kubernetes CA: {expected.subject}, sha256 {expected.sha256_fingerprint[:16]}",
            *_reader_diagnosis(ctx, name),
        ],
    )


# The kubeconfigs a running unit reads: when one is wrong, that unit's journal says what it does about it
# (bootstrap.kubeconfig is read only while a kubelet bootstraps: its rows stay file checks).
KUBECONFIG_READERS = {"kube-proxy.kubeconfig": "kube-proxy", "kubelet.kubeconfig": "kubelet"}


def _reader_diagnosis(ctx: HostContext, name: str) -> list[str]:
    unit = KUBECONFIG_READERS.get(name)
    return [] if unit is None else unit_diagnosis(ctx, ctx.host, unit)


@probe("bootstrap_token_source")
def bootstrap_token_source(ctx: HostContext, _: str) -> Observation:
    """Whether bootstrap.kubeconfig's token is token.csv's (compared by sha256, computed on each host)."""
    summary = _kubeconfig(ctx, "bootstrap.kubeconfig")
    if not summary.present:
        return ctx.observation("(bootstrap.kubeconfig is absent)")
    if not summary.tokens:
        return ctx.observation("no token")
    token = summary.tokens[0]
    csv = ctx.fact(master_facts.token_csv, first_master(ctx))
    known = {line.sha256 for line in csv.lines}
    shape = f"length {token.length}, {'hex' if token.hex else 'not hex'}, sha256 {token.sha256[:12]}"
    if token.sha256 in known:
        return ctx.observation("the token of token.csv", [f"token: {shape}"])
    listed = [f"token.csv line {line.line}: sha256 {line.sha256[:12]}" for line in csv.lines]
    return ctx.observation("a token not in token.csv", [f"bootstrap.kubeconfig token: {shape}", *listed])


def _client_certificate(summary: KubeconfigSummary) -> x509.CertInfo | None:
    return x509.parse_certificate(summary.client_cert_pem) if summary.client_cert_pem else None


@probe("kubeconfig_client_cn")
def kubeconfig_client_cn(ctx: HostContext, name: str) -> Observation:
    summary = _kubeconfig(ctx, name)
    if not summary.present:
        return ctx.observation(f"({name} is absent)")
    info = _client_certificate(summary)
    if info is None:
        return ctx.observation("(no embedded client certificate)")
    key = "client key embedded" if summary.client_key_data else "NO client key data"
    return ctx.observation(", ".join(info.subject_cn) or "(no CN)", [f"{info.subject}; {key}"])


@probe("kubeconfig_client_issuer")
def kubeconfig_client_issuer(ctx: HostContext, name: str) -> Observation:
    summary = _kubeconfig(ctx, name)
    if not summary.present:
        return ctx.observation(f"({name} is absent)")
    verdict = certificate_verdict(summary.client_cert_pem, kubernetes_ca_pem(ctx), "client certificate")
    return ctx.observation(verdict, [] if verdict == KUBERNETES_CA else _reader_diagnosis(ctx, name))


@probe("kubelet_kubeconfig_origin")
def kubelet_kubeconfig_origin(ctx: HostContext, _: str) -> Observation:
    """kubelet.kubeconfig as the bootstrap writes it: client cert and key = <cert-dir>/kubelet-client-current.pem."""
    summary = _kubeconfig(ctx, "kubelet.kubeconfig")
    if not summary.present:
        return ctx.observation("(kubelet.kubeconfig is absent)")
    certificate = ctx.fact(facts.kubelet_client_certificate)
    expected = certificate.path or f"<cert-dir>/{facts.KUBELET_CLIENT_CERT}"
    details = [
        f"client-certificate: {', '.join(summary.client_cert_files) or '(none)'}",
        f"client-key: {', '.join(summary.client_key_files) or '(none)'}",
        f"tokens: {len(summary.tokens)}, embedded client certificate: {summary.client_cert_pem is not None}",
    ]
    rotating = (
        summary.client_cert_files == (expected,) and summary.client_key_files == (expected,) and not summary.tokens
    )
    if rotating:
        return ctx.observation(BOOTSTRAP_GENERATED, details)
    return ctx.observation(f"not bootstrap-generated (expected client-certificate and client-key {expected})", details)


# ----------------------------------------------------------------------------- NODE-03


@probe("bootstrap_binding_grants")
def bootstrap_binding_grants(ctx: HostContext, name: str) -> Observation:
    """`ClusterRole/<role> -> <Kind>/<subject>` for every subject of the named clusterrolebinding."""
    answer = api_get(ctx, f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}", not_found_ok=True)
    if answer.status == 404:
        return ctx.observation([], [f"no clusterrolebinding named {name}"])
    role = answer.body.get("roleRef") or {}
    grants = [
        f"{role.get('kind')}/{role.get('name')} -> {subject.get('kind')}/{subject.get('name')}"
        for subject in answer.body.get("subjects") or []
    ]
    return ctx.observation(grants)


# ----------------------------------------------------------------------------- NODE-05


def _csr_subject(request: str) -> str:
    try:
        pem = base64.b64decode(request)
        csr = crypto_x509.load_pem_x509_csr(pem)
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except (ValueError, TypeError):
        return "(unreadable request)"
    return str(names[0].value) if names else "(no CN)"


def _csr_state(item: dict[str, Any], now: datetime) -> str:
    conditions = {c.get("type"): c for c in (item.get("status") or {}).get("conditions") or []}
    if "Denied" in conditions:
        return "denied"
    if "Failed" in conditions:
        return "failed: " + str(conditions["Failed"].get("message", ""))[:120]
    if "Approved" in conditions:
        if (item.get("status") or {}).get("certificate"):
            return CSR_APPROVED
        approved = parse_time(conditions["Approved"].get("lastUpdateTime"))
        if approved and (now - approved).total_seconds() < ISSUE_GRACE_SECONDS:
            return "approved, being issued"
        return "approved but never issued"
    return "pending"


def _csrs(ctx: HostContext) -> tuple[list[dict[str, Any]], datetime]:
    def fetch() -> tuple[list[dict[str, Any]], datetime]:
        answer = api_get(ctx, "/apis/certificates.k8s.io/v1/certificatesigningrequests")
        items = []
        now = answer.server_time or datetime.now(UTC)
        for item in answer.body.get("items") or []:
            spec = item.get("spec") or {}
            items.append(
                {
                    "name": (item.get("metadata") or {}).get("name", "?"),
                    "created": (item.get("metadata") or {}).get("creationTimestamp", ""),
                    "subject": _csr_subject(spec.get("request", "")),
                    "signer": spec.get("signerName", ""),
                    "username": spec.get("username", ""),
                    "state": _csr_state(item, now),
                }
            )
        return items, now

    result = ctx.session.shared("csr-list", fetch)
    ctx.note_source("Kubernetes API: GET /apis/certificates.k8s.io/v1/certificatesigningrequests")
    return result


def _describe_csr(item: dict[str, Any]) -> str:
    return (
        f"{item['name']}: {item['subject']} (signer {item['signer']}, requested by {item['username']}): {item['state']}"
    )


@probe("csr_problems")
def csr_problems(ctx: HostContext, _: str) -> Observation:
    """CSRs that are pending, denied, failed or approved without a certificate."""
    items, _now = _csrs(ctx)
    problems = [_describe_csr(item) for item in items if item["state"] not in (CSR_APPROVED, "approved, being issued")]
    listed = [_describe_csr(item) for item in items]
    collected = "no CSR is listed (the CSR cleaner deletes approved ones after an hour)"
    return ctx.observation(problems, listed or ["no CSR is listed"], seen=listed or [collected])


@probe("node_csr_state")
def node_csr_state(ctx: HostContext, _: str) -> Observation:
    """The state of this node's newest client CSR, or the proof by its certificate once CSRs are collected."""
    items, _now = _csrs(ctx)
    user = f"system:node:{ctx.host.name}"
    mine = sorted(
        (item for item in items if item["subject"] == user and item["signer"] == KUBELET_SIGNER),
        key=lambda item: str(item["created"]),
    )
    certificate = ctx.fact(facts.kubelet_client_certificate)
    if mine:
        state = mine[-1]["state"]
        details = [_describe_csr(item) for item in mine]
        if state == CSR_APPROVED and certificate.pem is None:
            # an earlier approval, but the kubelet holds no certificate now: it is bootstrapping again and
            # has not filed a CSR (its token, CA or RBAC refused it: SIG-KUBELET-03/04/05)
            state = f"{CSR_APPROVED} earlier, but the kubelet has no {facts.KUBELET_CLIENT_CERT} now"
        # not issued: the kubelet waits for it; its journal says so (SIG-KUBELET-01/02)
        kubelet = [] if state == CSR_APPROVED else unit_diagnosis(ctx, ctx.host, "kubelet")
        return ctx.observation(state, details + kubelet)
    if certificate.pem is None:
        return ctx.observation("no CSR and no issued client certificate", unit_diagnosis(ctx, ctx.host, "kubelet"))
    info = x509.parse_certificate(certificate.pem)
    verdict = certificate_verdict(certificate.pem, kubernetes_ca_pem(ctx), "client certificate")
    details = [f"no CSR for {user} is listed", f"{certificate.path}: {info.subject}, issuer: {verdict}"]
    if user in info.subject_cn and verdict == KUBERNETES_CA:
        return ctx.observation(CSR_COLLECTED, details)
    return ctx.observation("no CSR, and the client certificate is not the Kubernetes CA's for this node", details)


# ----------------------------------------------------------------------------- NODE-06


def _kubelet_certificate(ctx: HostContext, host: HostSpec | None = None) -> tuple[x509.CertInfo | None, str]:
    found = ctx.fact(facts.kubelet_client_certificate, host)
    if found.pem is None:
        return None, "(no kubelet-client-current.pem)"
    return x509.parse_certificate(found.pem), f"{found.path} -> {found.resolved}"


@probe("kubelet_client_cert_cn")
def kubelet_client_cert_cn(ctx: HostContext, _: str) -> Observation:
    info, where = _kubelet_certificate(ctx)
    if info is None:
        return ctx.observation(where)
    return ctx.observation(", ".join(info.subject_cn) or "(no CN)", [f"{where}: {info.subject}"])


@probe("kubelet_client_cert_orgs")
def kubelet_client_cert_orgs(ctx: HostContext, _: str) -> Observation:
    info, where = _kubelet_certificate(ctx)
    if info is None:
        return ctx.observation([where])
    return ctx.observation(info.subject_o, [f"{where}: {info.subject}"])


@probe("kubelet_client_cert_issuer")
def kubelet_client_cert_issuer(ctx: HostContext, _: str) -> Observation:
    found = ctx.fact(facts.kubelet_client_certificate)
    return ctx.observation(certificate_verdict(found.pem, kubernetes_ca_pem(ctx), "kubelet-client-current.pem"))


@probe("kubelet_client_cert_shared")
def kubelet_client_cert_shared(ctx: HostContext, _: str) -> Observation:
    """Other workers holding the same client certificate or the same key as this one."""
    mine, _where = _kubelet_certificate(ctx)
    if mine is None:
        return ctx.observation([], ["this node has no kubelet-client-current.pem (NODE-06 CN row fails)"])
    shared = []
    seen = [f"{ctx.host.name}: certificate sha256 {mine.sha256_fingerprint[:16]}, key {mine.spki_sha256[:16]}"]
    for other in ctx.cluster.workers:
        if other.name == ctx.host.name:
            continue
        theirs, where = _kubelet_certificate(ctx, other)
        if theirs is None:
            seen.append(f"{other.name}: {where}")
            continue
        seen.append(f"{other.name}: certificate sha256 {theirs.sha256_fingerprint[:16]}, key {theirs.spki_sha256[:16]}")
        if theirs.sha256_fingerprint == mine.sha256_fingerprint:
            shared.append(f"{other.name} (same certificate)")
        elif theirs.spki_sha256 == mine.spki_sha256:
            shared.append(f"{other.name} (same key)")
    return ctx.observation(
        shared, [f"{ctx.host.name}: {mine.subject} sha256 {mine.sha256_fingerprint[:16]}"], seen=seen
    )


# ----------------------------------------------------------------------------- NODE-08


def _nodes(ctx: HostContext) -> dict[str, dict[str, Any]]:
    def fetch() -> dict[str, dict[str, Any]]:
        items = api_get(ctx, "/api/v1/nodes").body.get("items") or []
        return {(item.get("metadata") or {}).get("name", "?"): item for item in items}

    result = ctx.session.shared("node-list", fetch)
    ctx.note_source("Kubernetes API: GET /api/v1/nodes")
    return result


@probe("registered_nodes")
def registered_nodes(ctx: HostContext, _: str) -> list[str]:
    return sorted(_nodes(ctx))


@probe("node_ready")
def node_ready(ctx: HostContext, _: str) -> Observation:
    """`Ready`, or the Ready condition's status with its reason (the kubelet's journal attached)."""
    node = _nodes(ctx).get(ctx.host.name)
    if node is None:
        return ctx.observation("not registered", unit_diagnosis(ctx, ctx.host, "kubelet"))
    conditions = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
    ready = conditions.get("Ready") or {}
    if ready.get("status") == "True":
        return ctx.observation("Ready")
    observed = f"{'NotReady' if ready.get('status') == 'False' else 'Unknown'}: {ready.get('reason', '')}"
    details = [f"Ready condition: {ready.get('message', '')} (since {ready.get('lastTransitionTime')})"]
    return ctx.observation(observed, details + unit_diagnosis(ctx, ctx.host, "kubelet"))


@probe("node_internal_ip")
def node_internal_ip(ctx: HostContext, _: str) -> Observation:
    node = _nodes(ctx).get(ctx.host.name)
    if node is None:
        return ctx.observation("not registered")
    addresses = (node.get("status") or {}).get("addresses") or []
    internal = [a.get("address") for a in addresses if a.get("type") == "InternalIP"]
    return ctx.observation(internal[0] if internal else "(no InternalIP)", [f"addresses: {addresses}"])


@probe("node_heartbeat_age")
def node_heartbeat_age(ctx: HostContext, _: str) -> Observation:
    """Seconds since the kubelet renewed its kube-node-lease Lease (the heartbeat, every 10 s)."""
    answer = api_get(
        ctx, f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{ctx.host.name}", not_found_ok=True
    )
    if answer.status == 404:
        return ctx.observation(
            None, [f"no Lease kube-node-lease/{ctx.host.name}", *unit_diagnosis(ctx, ctx.host, "kubelet")]
        )
    spec = answer.body.get("spec") or {}
    renewed = parse_time(spec.get("renewTime"))
    now = answer.server_time or datetime.now(UTC)
    if renewed is None:
        return ctx.observation(None, ["the Lease has no renewTime"])
    age = max(0, round((now - renewed).total_seconds()))
    details = [f"renewTime {spec.get('renewTime')}, leaseDurationSeconds {spec.get('leaseDurationSeconds')}"]
    if age >= int(spec.get("leaseDurationSeconds") or 40):
        details += unit_diagnosis(ctx, ctx.host, "kubelet")
    return ctx.observation(age, details)


# ----------------------------------------------------------------------------- NODE-09

_PROXY_SETTINGS = {
    # setting: (flag, path in KubeProxyConfiguration)
    "kubeconfig": ("kubeconfig", ("clientConnection", "kubeconfig")),
    "cluster-cidr": ("cluster-cidr", ("clusterCIDR",)),
    "mode": ("proxy-mode", ("mode",)),
}


def _proxy_setting(ctx: HostContext, setting: str) -> tuple[str, str]:
    """(value, where it came from). With --config, kube-proxy takes everything from that file and
    ignores the other flags except logging (cmd/kube-proxy/app/options.go, Complete); without it, the flags."""
    flag_name, path = _PROXY_SETTINGS[setting]
    info = process(ctx, "kube-proxy")
    flags = info.flags
    if info.config_path:
        value: Any = info.config()
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        ignored = (
            f"; --{flag_name}={flags[flag_name]} is ignored (kube-proxy reads only --config)"
            if flag_name in flags
            else ""
        )
        if value not in (None, ""):
            return str(value), f"{info.config_path}: {'.'.join(path)}{ignored}"
        return "(not set)", f"{info.config_path} has no {'.'.join(path)}{ignored}"
    if flag_name in flags:
        return flags[flag_name], f"--{flag_name}"
    return "(not set)", "no --config and no --" + flag_name


@probe("kube_proxy_setting")
def kube_proxy_setting(ctx: HostContext, setting: str) -> Observation:
    value, origin = _proxy_setting(ctx, setting)
    return ctx.observation(value, [f"from {origin}"])


@probe("kube_proxy_mode")
def kube_proxy_mode(ctx: HostContext, _: str) -> Observation:
    """The mode kube-proxy runs in (its /proxyMode answer), checked against its configuration."""
    live = ctx.fact(facts.proxy_mode)
    diagnosis = [f"{facts.PROXY_MODE_URL}: {live}"]
    try:
        configured, origin = _proxy_setting(ctx, "mode")
        diagnosis.append(f"configured mode: {configured} ({origin}; empty means iptables on Linux)")
    except ProbeError as exc:
        diagnosis.append(exc.reason)
    if live.startswith("no answer"):
        diagnosis += unit_diagnosis(ctx, ctx.host, "kube-proxy")
    return ctx.observation(live, diagnosis)


@probe("kube_proxy_chain")
def kube_proxy_chain(ctx: HostContext, chain: str) -> Observation:
    """`present` when kube-proxy's nat chain exists (iptables mode)."""
    declared = ctx.cluster.network.kube_proxy_mode
    if declared != "iptables":
        raise NotApplicable(f"kube-proxy mode is {declared} (network.kube_proxy_mode): no {chain} chain expected")
    dataplane = ctx.fact(facts.proxy_dataplane)
    present = any(state == "present" for state in dataplane.chains.values())
    diagnosis = [f"{binary} -t nat -S {chain}: {state}" for binary, state in dataplane.chains.items()]
    return ctx.observation("present" if present else "absent", diagnosis)


@probe("ip_vs_modules")
def ip_vs_modules(ctx: HostContext, _: str) -> Observation:
    declared = ctx.cluster.network.kube_proxy_mode
    if declared != "ipvs":
        raise NotApplicable(f"kube-proxy mode is {declared} (network.kube_proxy_mode): ip_vs modules are not needed")
    modules = ctx.fact(facts.proxy_dataplane).ip_vs_modules
    return ctx.observation(list(modules), [f"/proc/modules: {' '.join(modules) or 'no ip_vs module'}"])


# ----------------------------------------------------------------------------- NODE-04: the runtime


@probe("runtime_unit_state")
def runtime_unit_state(ctx: HostContext, unit: str) -> Observation:
    """cri-dockerd's unit where the kubelet needs it; a kubelet before v1.24 talks to docker through
    its built-in dockershim (kubeproof.versions.DOCKERSHIM_REMOVED) and has no cri-dockerd."""
    printed = ctx.fact(facts.node_versions).get("kubelet", "missing")
    version = release_of(printed)
    if version is not None and kubelet_uses_dockershim(version):
        raise NotApplicable(
            f"kubelet {version.v} talks to docker through its built-in dockershim "
            f"(removed in {DOCKERSHIM_REMOVED.v}): no {unit}"
        )
    state: Observation = unit_state(ctx, unit)
    return state
