"""Self-signed certificates for the tests, offline and on the lab (one builder, not one per module)."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID


def common_name(value: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value)])


def self_signed(
    name: x509.Name,
    key: CertificateIssuerPrivateKeyTypes,
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    ca: bool = False,
    serial: int | None = None,
) -> x509.Certificate:
    """Subject = issuer = name, signed by key; a CA (basic constraints, keyCertSign) when `ca`."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    return builder.sign(key, hashes.SHA256())
