"""The two CAs and the rule that protects them: an existing CA is never replaced unless asked.

A CA is made when neither its certificate nor its key exists, reused when both exist and match,
and refused when only one of them exists (a new CA over a lone certificate or key would orphan
every certificate it signed). ``replace_ca`` makes a new one and keeps the old files beside it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509

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
from kubeproof.bootstrap.pki.inputs import AUTHORITIES, AuthorityInputs
from kubeproof.bootstrap.pki.local_files import aside_path
from kubeproof.bootstrap.pki.plan import Action, PlanItem
from kubeproof.bootstrap.pki.run import PkiRun

__all__ = ["AuthorityState", "authorities_to_replace", "ensure_ca"]


@dataclass
class AuthorityState:
    """The CA of one authority during a run (cert and key are None in plan mode for a CA to be made)."""

    name: str
    cert: x509.Certificate | None
    key: SigningKey | None = field(repr=False)
    not_after: datetime
    fresh: bool  # created or replaced in this run

    @property
    def pem(self) -> bytes | None:
        return certificate_pem(self.cert) if self.cert is not None else None


def authorities_to_replace(replace_ca: bool | Iterable[str]) -> frozenset[str]:
    """The authorities named by ``replace_ca``: True for both, or names; an unknown name is an error."""
    if replace_ca is True:
        return frozenset(AUTHORITIES)
    if replace_ca is False:
        return frozenset()
    # A bare "etcd" is one name, not the letters e, t, c, d.
    names = frozenset({replace_ca}) if isinstance(replace_ca, str) else frozenset(replace_ca)
    unknown = names - set(AUTHORITIES)
    if unknown:
        raise PkiError(f"replace_ca: unknown authority {sorted(unknown)} (known: {', '.join(AUTHORITIES)})")
    return names


def ensure_ca(run: PkiRun, inputs: AuthorityInputs, directory: Path) -> AuthorityState:
    cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    cert_exists, key_exists = os.path.lexists(cert_path), os.path.lexists(key_path)
    notes: list[str] = []
    reasons: list[str] = []
    set_aside: list[tuple[Path, Path]] = []
    if inputs.name in run.replace and (cert_exists or key_exists):
        action = Action.REPLACE
        stamp = run.now.strftime("%Y%m%dT%H%M%SZ")
        set_aside = [(p, aside_path(p, stamp)) for p in (cert_path, key_path) if os.path.lexists(p)]
        reasons.append("replace_ca asked for it")
        notes.append("previous CA kept as " + ", ".join(target.name for _, target in set_aside))
    elif cert_exists and key_exists:
        state = _load_existing_ca(run, inputs, cert_path, key_path, notes)
        run.plan.items.append(PlanItem(inputs.name, "ca", Action.REUSE, (), tuple(notes), (cert_path, key_path)))
        return state
    elif cert_exists or key_exists:
        present, absent = (cert_path, key_path) if cert_exists else (key_path, cert_path)
        raise PkiError(
            f"{present} exists but {absent} does not: refusing to make a new {inputs.name} CA over it. "
            f"Restore {absent.name}, or pass replace_ca to make a new CA (every certificate it signed is re-issued)"
        )
    else:
        action = Action.CREATE
        reasons.append(f"no CA in {directory}")
    not_before = run.now - BACKDATE
    not_after = run.now + inputs.ca_expiry
    run.plan.items.append(PlanItem(inputs.name, "ca", action, tuple(reasons), tuple(notes), (cert_path, key_path)))
    if not run.files.apply:
        return AuthorityState(inputs.name, None, None, not_after, fresh=True)
    key = run.new_key(inputs.ca_csr.key)
    cert = build_certificate(
        subject=inputs.ca_csr.subject(),
        public_key=key.public_key(),
        issuer=None,
        issuer_key=key,
        hosts=inputs.ca_csr.hosts,
        is_ca=True,
        path_length=inputs.ca_csr.ca_path_length,
        # What `cfssl gencert -initca` gives a CA.
        key_usage_fields=("key_cert_sign", "crl_sign"),
        ext_key_usages=(),
        not_before=not_before,
        not_after=not_after,
    )
    # Only now that the new CA exists is the old one moved aside: a failure above leaves it in place.
    for source, target in set_aside:
        run.files.move(source, target)
    run.files.write(key_path, private_key_pem(key), secret=True)
    run.files.write(cert_path, certificate_pem(cert), secret=False, durable=True)
    return AuthorityState(inputs.name, cert, key, cert.not_valid_after_utc, fresh=True)


def _load_existing_ca(
    run: PkiRun, inputs: AuthorityInputs, cert_path: Path, key_path: Path, notes: list[str]
) -> AuthorityState:
    """An existing CA, checked before anything is signed with it; what does not match the inputs is kept."""
    info = read_certificate(cert_path)
    key = load_private_key(key_path)
    if info.spki_sha256 != key_spki(key):
        raise PkiError(
            f"{key_path} does not match {cert_path} (their public keys differ): refusing to sign with it. "
            "Restore the matching key, or pass replace_ca to make a new CA"
        )
    if not info.is_ca:
        raise PkiError(f"{cert_path} is not a CA certificate (no CA:TRUE basic constraint)")
    if info.key_usages and "key_cert_sign" not in info.key_usages:
        raise PkiError(f"{cert_path}: its key usage lacks keyCertSign, so what it signs would not verify")
    if info.not_after <= run.now:
        raise PkiError(
            f"{cert_path} expired at {info.not_after.isoformat()}; pass replace_ca to make a new {inputs.name} CA "
            "(every certificate it signed is re-issued)"
        )
    if info.remaining(run.now) < run.renewal_window:
        notes.append(
            f"the CA expires at {info.not_after.isoformat()}, within the renewal window; its leaves cannot be "
            "renewed past that date: plan a CA replacement (replace_ca)"
        )
    cert = certificate_object(info)
    if cert.subject != inputs.ca_csr.subject():
        notes.append(
            f"the CA's subject {info.subject!r} differs from ca-csr.json's "
            f"{inputs.ca_csr.subject().rfc4514_string()!r}; kept (an existing CA is never replaced unasked)"
        )
    if key_spec_of(key) != inputs.ca_csr.key:
        notes.append(f"the CA key is {key_spec_of(key)}, ca-csr.json asks {inputs.ca_csr.key}; kept")
    run.files.narrow_key_mode(key_path, notes)
    return AuthorityState(inputs.name, cert, key, info.not_after, fresh=False)
