"""Keys and certificates with ``cryptography``: made, serialized, read back and checked.

Existing certificates are read through :mod:`kubeproof.x509`, as the checks read them, so the
installer and the checks cannot disagree on what a file says. Private keys never appear in a
message: an error names the file, never its content.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from kubeproof.bootstrap.pki.cfssl import KeySpec
from kubeproof.bootstrap.pki.errors import PkiError
from kubeproof.x509 import (
    CertificateParseError,
    CertInfo,
    key_usage_from_names,
    parse_certificate,
    spki_sha256_of_public_key,
)

__all__ = [
    "BACKDATE",
    "KeyFactory",
    "SigningKey",
    "build_certificate",
    "certificate_object",
    "certificate_pem",
    "generate_private_key",
    "key_spec_of",
    "key_spki",
    "load_private_key",
    "parse_private_key",
    "private_key_pem",
    "public_key_pem",
    "read_certificate",
]

# cfssl backdates notBefore by 5 minutes so a host whose clock lags slightly accepts a fresh certificate.
BACKDATE = timedelta(minutes=5)

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
KeyFactory = Callable[[KeySpec], SigningKey]

_CURVES: Mapping[int, ec.EllipticCurve] = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}


# ----------------------------------------------------------------------------- private keys


def generate_private_key(spec: KeySpec) -> SigningKey:
    if spec.algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=spec.size)
    if spec.algorithm == "ecdsa" and spec.size in _CURVES:
        return ec.generate_private_key(_CURVES[spec.size])
    raise PkiError(f"unsupported key: {spec}")


def key_spec_of(key: SigningKey) -> KeySpec:
    if isinstance(key, rsa.RSAPrivateKey):
        return KeySpec("rsa", key.key_size)
    return KeySpec("ecdsa", key.curve.key_size)


def key_spki(key: SigningKey) -> str:
    """The key's SubjectPublicKeyInfo fingerprint, comparable with :attr:`CertInfo.spki_sha256`."""
    return spki_sha256_of_public_key(key.public_key())


def private_key_pem(key: SigningKey) -> bytes:
    # cfssl writes PKCS#1 "RSA PRIVATE KEY" / SEC1 "EC PRIVATE KEY"; etcd and Kubernetes read both.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def public_key_pem(key: SigningKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(path: Path) -> SigningKey:
    return parse_private_key(path.read_bytes(), str(path))


def parse_private_key(data: bytes, path: str) -> SigningKey:
    try:
        # OpenSSL's RSA consistency check costs ~30 ms a key; the sign-and-verify below proves the
        # same thing that matters here (the private half works with the public half) in ~1 ms.
        key = serialization.load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:
        raise PkiError(f"{path}: the private key is encrypted; kubeproof needs it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        # Never quote the file: it is (or was meant to be) a secret.
        raise PkiError(f"{path}: not a PEM private key kubeproof can read") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise PkiError(f"{path}: {type(key).__name__} keys are not supported (RSA or ECDSA)")
    if not _signs_consistently(key):
        raise PkiError(f"{path}: the private key is corrupt (its signatures do not verify with its public key)")
    return key


def _signs_consistently(key: SigningKey) -> bool:
    probe = b"kubeproof key self-test"
    try:
        if isinstance(key, rsa.RSAPrivateKey):
            key.public_key().verify(
                key.sign(probe, padding.PKCS1v15(), hashes.SHA256()), probe, padding.PKCS1v15(), hashes.SHA256()
            )
        else:
            key.public_key().verify(key.sign(probe, ec.ECDSA(hashes.SHA256())), probe, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


# ----------------------------------------------------------------------------- certificates


def read_certificate(path: Path) -> CertInfo:
    """One PEM certificate file, parsed by :mod:`kubeproof.x509`."""
    try:
        return parse_certificate(path.read_bytes())
    except CertificateParseError as exc:
        raise PkiError(f"{path}: {exc}") from None


def certificate_object(info: CertInfo) -> x509.Certificate:
    """``cryptography``'s certificate behind ``info``, for the two things CertInfo does not carry:
    a CA to sign with, and the subject as a Name (compared attribute set by attribute set, as
    ``cryptography`` does: its RFC 4514 text depends on the order inside a multi-valued RDN)."""
    return x509.load_der_x509_certificate(info.der)


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _signature_hash(key: SigningKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    # As cfssl: SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521.
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == 384:
        return hashes.SHA384()
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == 521:
        return hashes.SHA512()
    return hashes.SHA256()


def _general_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def build_certificate(
    *,
    subject: x509.Name,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    issuer: x509.Certificate | None,
    issuer_key: SigningKey,
    hosts: Sequence[str],
    is_ca: bool,
    path_length: int | None,
    key_usage_fields: Iterable[str],
    ext_key_usages: Sequence[x509.ObjectIdentifier],
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """A certificate as cfssl makes one; ``issuer`` None makes it self-signed (a CA's)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None), critical=True)
        .add_extension(key_usage_from_names(key_usage_fields), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if ext_key_usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ext_key_usages)), critical=False)
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(hosts)), critical=False)
    if issuer is not None:
        try:
            issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski)
        except x509.ExtensionNotFound:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
        builder = builder.add_extension(aki, critical=False)
    return builder.sign(issuer_key, _signature_hash(issuer_key))
