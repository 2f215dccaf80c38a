"""Probes for PKI-E-01..07, PKI-K-01..05, SEC-04 and SEC-05.

Arguments name certificates by path; `kubeconfig:<path>` names the client certificate embedded in
a kubeconfig. A certificate's CA is the ca.pem of its own directory (the guide's layout).
Private keys are compared through the public-key fingerprints the hosts compute themselves.
"""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime

from kubeproof import layout
from kubeproof.checks import Observation
from kubeproof.facts.files import FileStat, directory_stat, file_sha256, key_public_fingerprint
from kubeproof.facts.pki import certificates_in, kubeconfig_client_certificate, signing_duration
from kubeproof.inventory import HostSpec
from kubeproof.probes import probe
from kubeproof.session import HostContext
from kubeproof.x509 import CertificateParseError, CertInfo, parse_certificate, verify_issued_by

SECONDS_PER_DAY = 86400.0


class Missing(str):
    """An observation that a file is absent: fails every comparator with a readable text."""


def _ca_path(reference: str) -> str:
    if reference.startswith("kubeconfig:"):
        return layout.K8S_SSL + "/ca.pem"
    return posixpath.join(posixpath.dirname(reference), "ca.pem")


def _pem(ctx: HostContext, reference: str, host: HostSpec | None = None) -> str | Missing:
    if reference.startswith("kubeconfig:"):
        text = ctx.fact(kubeconfig_client_certificate(reference.removeprefix("kubeconfig:")), host)
    else:
        directory, name = posixpath.split(reference)
        text = (ctx.fact(certificates_in(directory), host) or {}).get(name)
    if not text or "BEGIN CERTIFICATE" not in text:
        return Missing(f"{reference} is missing" if text is None else f"{reference} holds no certificate")
    return text


def _cert(ctx: HostContext, reference: str) -> CertInfo | Missing:
    text = _pem(ctx, reference)
    if isinstance(text, Missing):
        return text
    try:
        return parse_certificate(text)
    except CertificateParseError as exc:
        return Missing(f"{reference} is not a certificate: {exc}")


@probe("ca_properties")
def ca_properties(ctx: HostContext, reference: str) -> list[str] | Missing:
    """The CA properties the guide's cfssl -initca gives: self-signed, CA:TRUE, keyCertSign, RSA >= 2048."""
    cert = _cert(ctx, reference)
    if isinstance(cert, Missing):
        return cert
    properties = []
    if cert.self_signed:
        properties.append("self-signed")
    properties.append("CA:TRUE" if cert.is_ca else "CA:FALSE")
    if "key_cert_sign" in cert.key_usages:
        properties.append("keyCertSign")
    if cert.public_key_algorithm == "RSA" and cert.public_key_size >= 2048:
        properties.append("RSA>=2048")
    else:
        properties.append(f"key={cert.public_key_algorithm}-{cert.public_key_size}")
    return properties


@probe("issued_by_ca")
def issued_by_ca(ctx: HostContext, reference: str) -> str:
    cert = _pem(ctx, reference)
    ca = _pem(ctx, _ca_path(reference))
    for text in (cert, ca):
        if isinstance(text, Missing):
            return str(text)
    reason = verify_issued_by(cert, ca)
    return "verified" if reason is None else reason


@probe("key_matches_cert")
def key_matches_cert(ctx: HostContext, reference: str) -> str:
    cert = _cert(ctx, reference)
    if isinstance(cert, Missing):
        return str(cert)
    key_path = reference.removesuffix(".pem") + "-key.pem"
    key_spki = ctx.fact(key_public_fingerprint(key_path))
    if key_spki is None:
        return f"{key_path} is missing"
    if key_spki == cert.spki_sha256:
        return "matches"
    return f"does not match (certificate key {cert.spki_sha256[:16]}…, {key_path} {key_spki[:16]}…)"


@probe("san_ips")
def san_ips(ctx: HostContext, reference: str) -> Observation:
    cert = _cert(ctx, reference)
    if isinstance(cert, Missing):
        return ctx.observation(cert)
    ips = sorted(cert.san_ips)
    return ctx.observation(ips, seen=[f"{reference} IP SANs: {', '.join(ips) or 'none'}"])


@probe("san_dns")
def san_dns(ctx: HostContext, reference: str) -> list[str] | Missing:
    cert = _cert(ctx, reference)
    return cert if isinstance(cert, Missing) else sorted(cert.san_dns)


@probe("extended_key_usages")
def extended_key_usages(ctx: HostContext, reference: str) -> list[str] | Missing:
    cert = _cert(ctx, reference)
    return cert if isinstance(cert, Missing) else sorted(cert.extended_key_usages)


@probe("subject_cn")
def subject_cn(ctx: HostContext, reference: str) -> list[str] | Missing:
    cert = _cert(ctx, reference)
    return cert if isinstance(cert, Missing) else cert.subject_cn


@probe("subject_o")
def subject_o(ctx: HostContext, reference: str) -> list[str] | Missing:
    cert = _cert(ctx, reference)
    return cert if isinstance(cert, Missing) else cert.subject_o


@probe("days_left")
def days_left(ctx: HostContext, reference: str) -> float | Missing:
    cert = _cert(ctx, reference)
    if isinstance(cert, Missing):
        return cert
    return round(cert.remaining(datetime.now(UTC)).total_seconds() / SECONDS_PER_DAY, 1)


@probe("days_beyond_ca")
def days_beyond_ca(ctx: HostContext, reference: str) -> float | Missing:
    """How many days the certificate outlives its CA (<= 0 is right)."""
    cert = _cert(ctx, reference)
    ca = _cert(ctx, _ca_path(reference))
    for item in (cert, ca):
        if isinstance(item, Missing):
            return item
    assert isinstance(cert, CertInfo) and isinstance(ca, CertInfo)
    return round((cert.not_after - ca.not_after).total_seconds() / SECONDS_PER_DAY, 1)


def _certificates_in(ctx: HostContext, directory: str) -> list[str]:
    """Paths of the files in a directory that hold a certificate (sa.pem is a bare public key)."""
    files = ctx.fact(certificates_in(directory)) or {}
    return sorted(f"{directory}/{name}" for name, text in files.items() if "BEGIN CERTIFICATE" in text)


@probe("certs_below_budget")
def certs_below_budget(ctx: HostContext, directory: str) -> Observation:
    """Certificates in a directory that are expired or have less than the budget (30 days) left."""
    offenders = []
    seen = []
    for path in _certificates_in(ctx, directory):
        left = days_left(ctx, path)
        if isinstance(left, Missing) or left < 30:
            offenders.append(f"{posixpath.basename(path)}: {left} days left")
        seen.append(f"{posixpath.basename(path)}: {left} days left (budget 30)")
    return ctx.observation(offenders, seen=seen or [f"no certificate in {directory}"])


@probe("certs_beyond_ca")
def certs_beyond_ca(ctx: HostContext, directory: str) -> Observation:
    offenders = []
    seen = []
    for path in _certificates_in(ctx, directory):
        if path.endswith("/ca.pem") or path.endswith("/sa.pem"):
            continue
        beyond = days_beyond_ca(ctx, path)
        if isinstance(beyond, Missing) or beyond > 0:
            offenders.append(f"{posixpath.basename(path)} outlives its CA by {beyond} days")
            seen.append(f"{posixpath.basename(path)} ends {beyond} days after ca.pem")
        else:
            seen.append(f"{posixpath.basename(path)} ends {-beyond} days before ca.pem")
    return ctx.observation(offenders, seen=seen or [f"no certificate besides ca.pem in {directory}"])


@probe("ca_signs_beyond_its_life")
def ca_signs_beyond_its_life(ctx: HostContext, reference: str) -> Observation:
    """The controller-manager's signing duration against the Kubernetes CA's remaining life."""
    ca = _cert(ctx, reference)
    if isinstance(ca, Missing):
        return ctx.observation([str(ca)])
    duration = ctx.fact(signing_duration)
    if duration is None:
        return ctx.observation([], seen=["kube-controller-manager signs with no --cluster-signing-duration"])
    remaining = ca.remaining(datetime.now(UTC)).total_seconds()
    seen = (
        f"kube-controller-manager signs for {duration / SECONDS_PER_DAY:.0f} days; "
        f"{posixpath.basename(reference)} has {remaining / SECONDS_PER_DAY:.0f} left"
    )
    return ctx.observation([seen] if duration > remaining else [], seen=[seen])


@probe("differs_from_first_member")
def differs_from_first_member(ctx: HostContext, names: str) -> Observation:
    """Files (in /opt/etcd/ssl) whose bytes differ from the first etcd member's copy (the first
    that answers: any member's copy is the reference when all must be the same)."""
    reference = ctx.first_reachable(ctx.cluster.etcd_members)
    differing = []
    seen = []
    for name in names.split(","):
        path = f"{layout.ETCD_SSL}/{name.strip()}"
        mine = ctx.fact(file_sha256(path))
        theirs = ctx.fact(file_sha256(path), reference)
        if mine is None:
            differing.append(f"{name.strip()}: missing here")
        elif mine != theirs:
            differing.append(f"{name.strip()}: {str(mine)[:12]} here, {str(theirs)[:12]} on {reference.name}")
        else:
            seen.append(f"{name.strip()} sha256 {str(mine)[:12]} here = {str(theirs)[:12]} on {reference.name}")
    return ctx.observation(differing, seen=seen + differing)


def _secret_files(entries: dict[str, FileStat]) -> list[FileStat]:
    """Private keys (kubelet's client cert file holds one too) and token.csv, in name order."""
    return [
        entry
        for name, entry in sorted(entries.items())
        if layout.is_secret_path(name) or name.startswith("kubelet-client")
    ]


def _describe(directory: str, entry: FileStat) -> str:
    return f"{directory}/{entry.name} mode 0{entry.mode} owner {entry.owner}"


@probe("loose_private_keys")
def loose_private_keys(ctx: HostContext, directory: str) -> Observation:
    """Private keys in a directory that are not 0600-or-stricter and root-owned."""
    entries = ctx.fact(directory_stat(directory))
    if entries is None:
        return ctx.observation([f"{directory} is missing"])
    keys = [entry for entry in _secret_files(entries) if not entry.name.endswith("kubeconfig")]
    seen = [
        f"{directory}/{entry.name} mode 0{entry.mode} {'>' if int(entry.mode, 8) & 0o177 else '<='} 0600, "
        f"owner {entry.owner}"
        for entry in keys
    ]
    return ctx.observation(
        [_describe(directory, entry) for entry in keys if int(entry.mode, 8) & 0o177 or entry.owner != "root"],
        seen=seen or [f"no private key in {directory}"],
    )


@probe("secrets_readable_by_others")
def secrets_readable_by_others(ctx: HostContext, _: str) -> Observation:
    """Private keys and token.csv that a non-root user can read (SEC-04)."""
    directories = []
    if "etcd" in ctx.host.roles:
        directories.append(layout.ETCD_SSL)
    if ctx.host.roles & {"master", "node"}:
        directories += [layout.K8S_SSL, layout.K8S_CFG]
    offenders = []
    seen = []
    for directory in directories:
        entries = ctx.fact(directory_stat(directory)) or {}
        secrets = _secret_files(entries)
        offenders += [
            _describe(directory, entry) for entry in secrets if entry.group_or_world_readable or entry.owner != "root"
        ]
        seen += [
            f"{_describe(directory, entry)}: {'' if entry.group_or_world_readable else 'not '}readable by group/others"
            for entry in secrets
        ]
    return ctx.observation(offenders, seen=seen or [f"no private key or token.csv in {', '.join(directories)}"])


@probe("ca_distinct_from_etcd_ca")
def ca_distinct_from_etcd_ca(ctx: HostContext, _: str) -> str:
    kubernetes_ca = _cert(ctx, layout.K8S_SSL + "/ca.pem")
    if isinstance(kubernetes_ca, Missing):
        return str(kubernetes_ca)
    own = [h for h in ctx.cluster.etcd_members if h.name == ctx.host.name]
    etcd_host = own[0] if own else ctx.first_reachable(ctx.cluster.etcd_members)  # any member has the etcd CA
    etcd_text = _pem(ctx, layout.ETCD_SSL + "/ca.pem", etcd_host)
    if isinstance(etcd_text, Missing):
        return "distinct (no etcd CA found to compare)"
    etcd_ca = parse_certificate(etcd_text)
    if etcd_ca.spki_sha256 == kubernetes_ca.spki_sha256:
        return "the same key as the etcd CA"
    return "distinct"
