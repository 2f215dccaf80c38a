"""What the CAs sign, and when an existing certificate is signed again.

A leaf is re-issued, with its existing key, only when it is missing, not signed by the current CA,
no longer matches the cluster (subject, SANs, usages), outlives its CA, or expires within the
renewal window. Otherwise it stays byte-identical, so a second run changes nothing. An existing
private key is never overwritten. No leaf outlives its CA: its notAfter is clamped to the CA's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from kubeproof.bootstrap.pki.authority import AuthorityState
from kubeproof.bootstrap.pki.cfssl import format_go_duration
from kubeproof.bootstrap.pki.crypto import (
    BACKDATE,
    SigningKey,
    build_certificate,
    certificate_object,
    certificate_pem,
    key_spec_of,
    key_spki,
    load_private_key,
    private_key_pem,
    read_certificate,
)
from kubeproof.bootstrap.pki.errors import PkiError
from kubeproof.bootstrap.pki.inputs import LeafInputs
from kubeproof.bootstrap.pki.plan import Action, PlanItem
from kubeproof.bootstrap.pki.run import PkiRun
from kubeproof.inventory import canonical_address
from kubeproof.x509 import CertInfo, extended_key_usage_name, verify_issued_by

__all__ = ["ensure_leaf"]


def ensure_leaf(run: PkiRun, ca: AuthorityState, leaf: LeafInputs, directory: Path) -> None:
    cert_path, key_path = directory / f"{leaf.stem}.pem", directory / f"{leaf.stem}-key.pem"
    notes: list[str] = []
    reasons: list[str] = []
    key = load_private_key(key_path) if os.path.lexists(key_path) else None
    if key is not None:
        run.files.narrow_key_mode(key_path, notes)
        if key_spec_of(key) != leaf.csr.key:
            notes.append(
                f"the existing key is {key_spec_of(key)}, {leaf.csr.source} asks {leaf.csr.key}; kept "
                f"(delete {key_path.name} to have a new one made)"
            )
    cert: CertInfo | None = None
    if os.path.lexists(cert_path):
        try:
            cert = read_certificate(cert_path)
        except PkiError as exc:
            reasons.append(f"unreadable: {exc}")
    wanted_not_after, clamp_note = _leaf_not_after(run, ca, leaf)
    if cert is None and not reasons:
        reasons.append("certificate missing")
    elif cert is not None:
        reasons += _leaf_staleness(run, ca, leaf, cert, key, wanted_not_after, notes)
    if not reasons:
        run.plan.items.append(PlanItem(ca.name, leaf.stem, Action.REUSE, (), tuple(notes), (cert_path, key_path)))
        return
    action = Action.CREATE if cert is None and key is None and reasons == ["certificate missing"] else Action.REISSUE
    if clamp_note:
        notes.append(clamp_note)
    run.plan.items.append(PlanItem(ca.name, leaf.stem, action, tuple(reasons), tuple(notes), (cert_path, key_path)))
    if not run.files.apply:
        return
    if ca.cert is None or ca.key is None:
        raise AssertionError("the CA exists in apply mode")
    if key is None:
        key = run.new_key(leaf.csr.key)
        run.files.write(key_path, private_key_pem(key), secret=True)
    new_cert = build_certificate(
        subject=leaf.csr.subject(),
        public_key=key.public_key(),
        issuer=ca.cert,
        issuer_key=ca.key,
        hosts=leaf.csr.hosts,
        is_ca=False,
        path_length=None,
        key_usage_fields=leaf.profile.key_usage_fields,
        ext_key_usages=leaf.profile.ext_key_usage_oids,
        not_before=run.now - BACKDATE,
        not_after=wanted_not_after,
    )
    run.files.write(cert_path, certificate_pem(new_cert), secret=False)


def _leaf_not_after(run: PkiRun, ca: AuthorityState, leaf: LeafInputs) -> tuple[datetime, str | None]:
    wanted = run.now + leaf.expiry
    if wanted <= ca.not_after:
        return wanted, None
    return ca.not_after, (
        f"notAfter clamped to the CA's {ca.not_after.isoformat()} (the profile's "
        f"{format_go_duration(leaf.expiry)} would end {wanted.isoformat()}): a certificate must not outlive its CA"
    )


def _leaf_staleness(
    run: PkiRun,
    ca: AuthorityState,
    leaf: LeafInputs,
    cert: CertInfo,
    key: SigningKey | None,
    wanted_not_after: datetime,
    notes: list[str],
) -> list[str]:
    """Why an existing leaf must be signed again (empty: it stays byte-identical)."""
    reasons: list[str] = []
    if ca.fresh or ca.pem is None:
        reasons.append("its CA is new")
    elif (why := verify_issued_by(cert.pem, ca.pem)) is not None:
        reasons.append(f"not signed by the current CA: {why}")
    if key is None:
        return [*reasons, "private key missing: a new one is made"]
    if cert.spki_sha256 != key_spki(key):
        reasons.append(f"does not match {leaf.stem}-key.pem")
    if certificate_object(cert).subject != leaf.csr.subject():
        reasons.append(f"subject {cert.subject!r} differs from {leaf.csr.subject().rfc4514_string()!r}")
    wanted_hosts = [canonical_address(h) for h in leaf.csr.hosts]
    if (san_reason := _san_differences(cert.san_ips + cert.san_dns, wanted_hosts)) is not None:
        reasons.append(san_reason)
    wanted_ext_usages = {extended_key_usage_name(oid) for oid in leaf.profile.ext_key_usage_oids}
    if set(cert.key_usages) != set(leaf.profile.key_usage_fields) or set(cert.extended_key_usages) != wanted_ext_usages:
        reasons.append(f"key usages differ from profile {leaf.profile_name!r}")
    if cert.not_after > ca.not_after:
        reasons.append(f"outlives its CA (notAfter {cert.not_after.isoformat()} > CA's {ca.not_after.isoformat()})")
    elif cert.remaining(run.now) < run.renewal_window:
        if wanted_not_after > cert.not_after:
            reasons.append(
                f"expires {cert.not_after.isoformat()}, within the renewal window of {run.renewal_window.days} days"
            )
        else:
            # Re-issuing would not extend it (the CA ends first); doing so on every run would break idempotency.
            notes.append(f"expires {cert.not_after.isoformat()} with its CA; only a new CA (replace_ca) extends it")
    return reasons


def _san_differences(cert_hosts: Sequence[str], wanted_hosts: Sequence[str]) -> str | None:
    have, want = set(cert_hosts), set(wanted_hosts)
    if have == want:
        return None
    parts = []
    if want - have:
        parts.append("missing " + ", ".join(h for h in wanted_hosts if h not in have))
    if have - want:
        parts.append("unexpected " + ", ".join(h for h in cert_hosts if h not in want))
    return "SANs differ from the cluster: " + "; ".join(parts)
