"""Pure X.509 parsers: PEM text in, plain facts out (no I/O).

Facts fetch certificates (public) and public keys derived on the host with ``openssl pkey -pubout``;
private keys never leave the host. "Key matches certificate" is therefore a comparison of two
SubjectPublicKeyInfo fingerprints: :attr:`CertInfo.spki_sha256` and
:func:`spki_sha256_of_public_key_pem`. Both are computed from the DER that ``cryptography``
re-encodes, so the two sides agree even where the original encodings differ in form.

Error messages never quote the input: a caller may hand us a private key by mistake.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertInfo",
    "CertificateParseError",
    "extended_key_usage_name",
    "key_usage_from_names",
    "parse_certificate",
    "parse_der_certificate",
    "parse_pem_certificates",
    "spki_sha256_of_public_key",
    "spki_sha256_of_public_key_pem",
    "verify_issued_by",
]


class CertificateParseError(ValueError):
    """The input is not what was asked for (no certificate, bad base64, bad DER, not a public key)."""


# Extended key usages by the names Go, OpenSSL and the Kubernetes docs use; unknown ones keep their OID.
_EKU_NAMES: dict[x509.ObjectIdentifier, str] = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}

# The key usage bits, in RFC 5280 order, by cryptography's attribute names.
_KEY_USAGE_BITS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)
# Only defined when key_agreement is set (cryptography refuses them otherwise, both ways).
_KEY_AGREEMENT_BITS = ("encipher_only", "decipher_only")

_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)
_PEM_PRIVATE_KEY_LABEL = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


@dataclass(frozen=True)
class CertInfo:
    """What the checks need to know about one certificate.

    Fingerprints are lowercase hex without separators. Times are timezone-aware UTC.
    """

    subject: str  # RFC 4514, e.g. "CN=etcd,L=Beijing,ST=Beijing,C=CN"
    subject_cn: list[str]
    subject_o: list[str]
    issuer: str  # RFC 4514
    issuer_cn: list[str]
    serial: int
    san_ips: list[str]
    san_dns: list[str]
    is_ca: bool
    path_length: int | None
    key_usages: list[str]  # "digital_signature", "key_encipherment", "key_cert_sign", "crl_sign", ...
    extended_key_usages: list[str]  # "serverAuth", "clientAuth", ... (dotted OID when unnamed)
    not_before: datetime
    not_after: datetime
    public_key_algorithm: str  # "RSA", "EC", "Ed25519", "Ed448", "DSA"
    public_key_size: int  # bits: RSA modulus, EC curve size
    public_key_curve: str | None  # EC curve name, e.g. "secp256r1"
    sha256_fingerprint: str  # SHA-256 of the certificate DER (what `openssl x509 -fingerprint -sha256` shows)
    spki_sha256: str  # SHA-256 of the SubjectPublicKeyInfo DER
    self_signed: bool  # issuer == subject AND the signature verifies with the certificate's own key
    der: bytes = field(repr=False, compare=False)

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")

    @property
    def pem(self) -> str:
        encoded = base64.b64encode(self.der).decode("ascii")
        lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]  # RFC 7468 line length
        return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"

    @property
    def lifetime(self) -> timedelta:
        return self.not_after - self.not_before

    def remaining(self, when: datetime) -> timedelta:
        """Time left at ``when`` (negative once expired)."""
        return self.not_after - when

    def valid_at(self, when: datetime) -> bool:
        return self.not_before <= when <= self.not_after


def _attribute_values(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attribute.value) for attribute in name.get_attributes_for_oid(oid)]


def _public_key_facts(public_key: PublicKeyTypes) -> tuple[str, int, str | None]:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size, None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "EC", public_key.curve.key_size, public_key.curve.name
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    if isinstance(public_key, dsa.DSAPublicKey):
        return "DSA", public_key.key_size, None
    return type(public_key).__name__, 0, None


def spki_sha256_of_public_key(public_key: PublicKeyTypes) -> str:
    """SHA-256 of a public key's SubjectPublicKeyInfo DER, lowercase hex."""
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def spki_sha256_of_public_key_pem(pem: str | bytes) -> str:
    """Fingerprint the output of ``openssl pkey -in KEY -pubout`` (a PUBLIC KEY block).

    Compare it with :attr:`CertInfo.spki_sha256` to tell whether a key file matches a certificate.
    """
    data = pem.encode("ascii", errors="replace") if isinstance(pem, str) else pem
    if _PEM_PRIVATE_KEY_LABEL.search(data.decode("ascii", errors="replace")):
        # Refuse rather than derive: a private key here means a fact fetched a secret.
        raise CertificateParseError("expected a PUBLIC KEY block but the input holds a private key")
    try:
        public_key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateParseError(f"not a PEM public key: {_short(exc)}") from None
    return spki_sha256_of_public_key(public_key)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _key_usages(cert: x509.Certificate) -> list[str]:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return []
    names = [bit for bit in _KEY_USAGE_BITS if getattr(usage, bit)]
    # encipher_only/decipher_only are only defined when key_agreement is set (reading them raises otherwise).
    if usage.key_agreement:
        names += [bit for bit in _KEY_AGREEMENT_BITS if getattr(usage, bit)]
    return names


def key_usage_from_names(names: Iterable[str]) -> x509.KeyUsage:
    """The KeyUsage value with exactly the named bits, by the names :attr:`CertInfo.key_usages` uses.

    The inverse of reading it, so that what an issuer asks for and what a check reads back are
    spelled alike. encipher_only/decipher_only are dropped without key_agreement (they mean nothing
    without it). An unknown name raises ValueError.
    """
    wanted = set(names)
    every_bit = (*_KEY_USAGE_BITS, *_KEY_AGREEMENT_BITS)
    unknown = wanted.difference(every_bit)
    if unknown:
        raise ValueError(f"unknown key usage {sorted(unknown)} (known: {', '.join(every_bit)})")
    flags = {bit: bit in wanted for bit in every_bit}
    if not flags["key_agreement"]:
        flags.update(dict.fromkeys(_KEY_AGREEMENT_BITS, False))
    return x509.KeyUsage(**flags)


def extended_key_usage_name(oid: x509.ObjectIdentifier) -> str:
    """The name :attr:`CertInfo.extended_key_usages` gives ``oid`` ("serverAuth"; its dotted form when unnamed)."""
    return _EKU_NAMES.get(oid, oid.dotted_string)


def _extended_key_usages(cert: x509.Certificate) -> list[str]:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []
    return [extended_key_usage_name(oid) for oid in usage]


def _subject_alt_names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    ips = [str(address) for address in san.get_values_for_type(x509.IPAddress)]
    return ips, list(san.get_values_for_type(x509.DNSName))


def _basic_constraints(cert: x509.Certificate) -> tuple[bool, int | None]:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False, None
    return constraints.ca, constraints.path_length


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """None when ``issuer``'s key verifies ``cert``'s signature; otherwise why not."""
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return "the signature does not verify with the CA's public key"
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # ValueError: issuer name mismatch or unsupported signature algorithm; TypeError: key type.
        return f"the signature cannot be checked against the CA: {_short(exc)}"
    return None


def _info_from_certificate(cert: x509.Certificate, der: bytes) -> CertInfo:
    is_ca, path_length = _basic_constraints(cert)
    san_ips, san_dns = _subject_alt_names(cert)
    public_key = cert.public_key()
    algorithm, size, curve = _public_key_facts(public_key)
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        subject_cn=_attribute_values(cert.subject, NameOID.COMMON_NAME),
        subject_o=_attribute_values(cert.subject, NameOID.ORGANIZATION_NAME),
        issuer=cert.issuer.rfc4514_string(),
        issuer_cn=_attribute_values(cert.issuer, NameOID.COMMON_NAME),
        serial=cert.serial_number,
        san_ips=san_ips,
        san_dns=san_dns,
        is_ca=is_ca,
        path_length=path_length,
        key_usages=_key_usages(cert),
        extended_key_usages=_extended_key_usages(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        public_key_algorithm=algorithm,
        public_key_size=size,
        public_key_curve=curve,
        sha256_fingerprint=hashlib.sha256(der).hexdigest(),
        spki_sha256=spki_sha256_of_public_key(public_key),
        self_signed=cert.issuer == cert.subject and _signed_by(cert, cert) is None,
        der=der,
    )


def _load_der(der: bytes, where: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CertificateParseError(f"{where}: not a valid X.509 certificate: {_short(exc)}") from None


def parse_der_certificate(der: bytes) -> CertInfo:
    """One DER certificate (e.g. what a TLS handshake presents)."""
    return _parse_loaded(_load_der(der, "certificate"), der, "certificate")


def _parse_loaded(cert: x509.Certificate, der: bytes, where: str) -> CertInfo:
    try:
        return _info_from_certificate(cert, der)
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        # cryptography parses extensions lazily: malformed ones surface here, not at load time.
        raise CertificateParseError(f"{where}: malformed extension or field: {_short(exc)}") from None


def _pem_blocks(text: str | bytes) -> list[bytes]:
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise CertificateParseError("PEM input is not ASCII text (DER? use parse_der_certificate)") from None
    blocks = _PEM_CERTIFICATE.findall(text)
    begins = text.count("-----BEGIN CERTIFICATE-----")
    if begins != len(blocks):
        raise CertificateParseError("a BEGIN CERTIFICATE line has no matching END CERTIFICATE line")
    if not blocks:
        if _PEM_PRIVATE_KEY_LABEL.search(text):
            raise CertificateParseError("no PEM CERTIFICATE block found (the input holds a private key)")
        raise CertificateParseError("no PEM CERTIFICATE block found")
    ders = []
    for index, body in enumerate(blocks, start=1):
        compact = "".join(body.split())
        try:
            ders.append(base64.b64decode(compact, validate=True))
        except (binascii.Error, ValueError):
            raise CertificateParseError(f"certificate {index}: the PEM body is not valid base64") from None
    return ders


def parse_pem_certificates(text: str | bytes) -> list[CertInfo]:
    """Every CERTIFICATE block in ``text``, in order; other PEM blocks (keys, CSRs) are ignored.

    Raises :class:`CertificateParseError` when there is no certificate or one is malformed.
    """
    infos = []
    ders = _pem_blocks(text)
    for index, der in enumerate(ders, start=1):
        where = f"certificate {index} of {len(ders)}"
        infos.append(_parse_loaded(_load_der(der, where), der, where))
    return infos


def parse_certificate(pem: str | bytes) -> CertInfo:
    """Exactly one certificate (a ca.pem or server.pem); a bundle is an error here."""
    infos = parse_pem_certificates(pem)
    if len(infos) != 1:
        raise CertificateParseError(f"expected one certificate, found {len(infos)} (use parse_pem_certificates)")
    return infos[0]


def verify_issued_by(cert_pem: str | bytes, ca_pem: str | bytes) -> str | None:
    """None when ``cert_pem`` names the CA as issuer and the CA's key verifies its signature.

    Otherwise a human reason. Only the signature link is checked: validity periods, CA flags and
    key usages are separate invariants with their own checks. ``ca_pem`` may be a bundle; the
    certificate passes if any CA in it issued it. Malformed input raises :class:`CertificateParseError`.
    """
    cert_der = _pem_blocks(cert_pem)
    if len(cert_der) != 1:
        raise CertificateParseError(f"expected one certificate to verify, found {len(cert_der)}")
    cert = _load_der(cert_der[0], "certificate")
    reasons = []
    for index, ca_der in enumerate(_pem_blocks(ca_pem), start=1):
        ca = _load_der(ca_der, f"CA certificate {index}")
        if cert.issuer != ca.subject:
            reasons.append(
                f"its issuer {cert.issuer.rfc4514_string()!r} is not the CA's subject {ca.subject.rfc4514_string()!r}"
            )
            continue
        reason = _signed_by(cert, ca)
        if reason is None:
            return None
        reasons.append(reason)
    return "; ".join(reasons)
