"""ETCD-10 and SEC-01: what a member's ports show to a peer host, and its plain-http listeners.

A peer host (not this machine) dials the member's client and peer ports over plain http and over
TLS without a client certificate; the listeners are read from the configuration and the running
process (`kubeproof.probes.etcd` holds the member's settings and the etcd API rows).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass

from kubeproof.checks import NotApplicable, Observation
from kubeproof.facts import etcd as facts
from kubeproof.inventory import HostSpec
from kubeproof.probes import probe
from kubeproof.probes.etcd import effective_settings, member_service, setting_origin
from kubeproof.session import HostContext
from kubeproof.transport import ProbeError


@dataclass(frozen=True)
class PeerView:
    peer: HostSpec
    plain: facts.PortAnswer
    tls: facts.PortAnswer

    def lines(self) -> list[str]:
        return [f"from {self.peer.name}: {self.plain.describe()}", f"from {self.peer.name}: {self.tls.describe()}"]


def _peer_view(ctx: HostContext, port: int) -> PeerView:
    designated = facts.exposure_peer(ctx.cluster, ctx.host)
    if designated is None:
        raise NotApplicable("there is no other host to probe this member's ports from")
    # any other host will do: among the hosts that answered (the peer facts were gathered so)
    peer = facts.exposure_peer(ctx.session.peer_cluster, ctx.host)
    if peer is None or peer.name == ctx.host.name:
        ctx.require_reachable(designated)
        raise NotApplicable("there is no other host to probe this member's ports from")
    if peer.name != designated.name:
        ctx.note_skipped(designated, f"this member's ports probed from {peer.name} instead")
    exposure = facts.etcd_exposure(ctx.session.peer_cluster, peer)
    if exposure is None:
        raise NotApplicable("there is no other host to probe this member's ports from")
    answers = ctx.fact(exposure, peer)
    plain = answers.get(f"http://{ctx.host.address}:{port}/version")
    tls = answers.get(f"https://{ctx.host.address}:{port}/version")
    if plain is None or tls is None:
        raise ProbeError(peer.name, f"the peer probe printed nothing for {ctx.host.address}:{port}")
    if not plain.connected and not tls.connected:
        service = member_service(ctx)
        raise ProbeError(
            ctx.host.name,
            f"prerequisite failed: nothing answers on {ctx.host.address}:{port} as seen from {peer.name} "
            f"({tls.describe()}); {service.unit}: {service.state}",
        )
    return PeerView(peer, plain, tls)


def _port(argument: str) -> int:
    return int(argument or "2379")


@probe("etcd_plaintext")
def etcd_plaintext(ctx: HostContext, argument: str) -> Observation:
    """Plain http to <address>:<port> from a peer host: refused, or served."""
    view = _peer_view(ctx, _port(argument))
    if view.plain.http_answer:
        return ctx.observation(f"served over plain http (HTTP {view.plain.http_code})", view.lines())
    return ctx.observation("refused")


def _auth_settings(port: int) -> tuple[str, str]:
    """(the client-cert-auth flag, the trusted CA setting) of the client (2379) or peer (2380) listener."""
    if port == 2379:
        return "client-cert-auth", "trusted-ca-file"
    return "peer-client-cert-auth", "peer-trusted-ca-file"


def _without_certificate(ctx: HostContext, port: int) -> Observation:
    view = _peer_view(ctx, port)
    if view.tls.http_answer:
        flag, ca = _auth_settings(port)
        settings = effective_settings(ctx)
        return ctx.observation(
            f"accepted without a client certificate (HTTP {view.tls.http_code})",
            [*view.lines(), f"{flag}: {settings.get(flag, 'not set')}; {ca}: {settings.get(ca, 'not set')}"],
        )
    return ctx.observation("refused")


@probe("etcd_without_client_cert")
def etcd_without_client_cert(ctx: HostContext, argument: str) -> Observation:
    """ETCD-10: where etcd verifies client certificates, a TLS client without one is refused.

    etcd verifies them when --client-cert-auth is on, and also whenever a trusted CA is set:
    TLSInfo.ServerConfig requires and verifies a client certificate if `TrustedCAFile != "" ||
    ClientCertAuth` (etcd 3.4 to 3.6). So the guide's member, --trusted-ca-file without
    --client-cert-auth, refuses such a client too; the missing flag itself is finding SEC-01.
    """
    port = _port(argument)
    flag, ca = _auth_settings(port)
    settings = effective_settings(ctx)
    if not facts.is_true(settings.get(flag)) and not settings.get(ca):
        raise NotApplicable(f"{ctx.host.etcd_name} has neither {flag} nor {ca}: it verifies no client: finding SEC-01")
    return _without_certificate(ctx, port)


@probe("etcd_client_cert_auth")
def etcd_client_cert_auth(ctx: HostContext, argument: str) -> Observation:
    """SEC-01: --client-cert-auth (2379) or --peer-client-cert-auth (2380) as etcd runs (else as configured).

    The flag is what the finding is about: it is what makes etcd take a client's identity from its
    certificate (v3 auth by CN). The diagnosis says whether a client without a certificate gets
    through today (a trusted CA alone already refuses it at the TLS handshake).
    """
    port = _port(argument)
    flag, ca = _auth_settings(port)
    service = member_service(ctx)
    settings = facts.running_etcd_settings(service) or facts.configured_etcd_settings(service)
    ctx.note_source(f"{ctx.host.name}: {setting_origin(service, flag)}")
    if facts.is_true(settings.get(flag)):
        return ctx.observation("on")
    diagnosis = [f"{flag}: {settings.get(flag, 'not set')}; {ca}: {settings.get(ca, 'not set')}"]
    try:
        seen = _without_certificate(ctx, port)
    except (ProbeError, NotApplicable) as exc:
        diagnosis.append(f"no peer probe of port {port}: {exc}")
    else:
        diagnosis.append(f"a TLS client without a certificate, from a peer host: {seen.value}")
    return ctx.observation("off", diagnosis)


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@probe("etcd_plaintext_listeners")
def etcd_plaintext_listeners(ctx: HostContext, _: str) -> Observation:
    """SEC-01: client or peer listeners on plain http beyond loopback (configured or running)."""
    service = member_service(ctx)
    sources = {"configured": facts.configured_etcd_settings(service), "running": facts.running_etcd_settings(service)}
    listeners: dict[tuple[str, str], list[str]] = {}
    for origin, settings in sources.items():
        for name in ("listen-client-urls", "listen-peer-urls"):
            for url in facts.split_urls((settings or {}).get(name)):
                listeners.setdefault((name, url), []).append(origin)
    found = {url for _name, url in listeners if url.startswith("http://") and not _is_loopback(url)}
    seen = [
        f"{name} {url} ({' and '.join(origins)}): "
        + ("TLS" if url.startswith("https://") else "loopback" if _is_loopback(url) else "plain http")
        for (name, url), origins in sorted(listeners.items())
    ]
    return ctx.observation(sorted(found), seen=seen)
