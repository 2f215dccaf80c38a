"""kubeproof.x509: the pure certificate parsers the checks and the installer share."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeproof.x509 import (
    CertificateParseError,
    parse_certificate,
    parse_der_certificate,
    parse_pem_certificates,
    spki_sha256_of_public_key,
    spki_sha256_of_public_key_pem,
    verify_issued_by,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()

    @property
    def public_key_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _make_ca(key: rsa.RSAPrivateKey, common_name: str, *, signer: rsa.RSAPrivateKey | None = None) -> Issued:
    """A CA; ``signer`` other than ``key`` makes one that claims to be self-signed but is not."""
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(1000)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(signer or key, hashes.SHA256())
    )
    return Issued(cert, key)


def _make_leaf(key: ec.EllipticCurvePrivateKey, ca: Issued) -> Issued:
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("admin", "system:masters"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(0xABCDEF)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("192.168.61.17")),
                    x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                    x509.DNSName("kubernetes.default"),
                ]
            ),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(cert, key)


@pytest.fixture(scope="module")
def rsa_keys() -> list[rsa.RSAPrivateKey]:
    # Generated once per module: RSA key generation dominates the run time otherwise.
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


@pytest.fixture(scope="module")
def ca(rsa_keys: list[rsa.RSAPrivateKey]) -> Issued:
    return _make_ca(rsa_keys[0], "etcd")


@pytest.fixture(scope="module")
def other_ca(rsa_keys: list[rsa.RSAPrivateKey]) -> Issued:
    return _make_ca(rsa_keys[1], "kubernetes")


@pytest.fixture(scope="module")
def leaf(ca: Issued) -> Issued:
    return _make_leaf(ec.generate_private_key(ec.SECP256R1()), ca)


# ----------------------------------------------------------------------------- fields


def test_ca_fields(ca: Issued) -> None:
    info = parse_certificate(ca.pem)
    assert info.subject_cn == ["etcd"]
    assert info.subject == "CN=etcd,C=CN"
    assert info.issuer == info.subject
    assert info.issuer_cn == ["etcd"]
    assert info.is_ca is True
    assert info.path_length == 0
    assert info.key_usages == ["key_cert_sign", "crl_sign"]
    assert info.extended_key_usages == []
    assert info.self_signed is True
    assert (info.public_key_algorithm, info.public_key_size, info.public_key_curve) == ("RSA", 2048, None)
    assert info.serial == 1000


def test_leaf_fields(leaf: Issued) -> None:
    info = parse_certificate(leaf.pem)
    assert info.subject_cn == ["admin"]
    assert info.subject_o == ["system:masters"]
    assert info.issuer_cn == ["etcd"]
    assert info.serial == 0xABCDEF and info.serial_hex == "abcdef"
    assert info.san_ips == ["192.168.61.17", "10.0.0.1"]
    assert info.san_dns == ["kubernetes.default"]
    assert info.is_ca is False and info.path_length is None
    assert info.key_usages == ["digital_signature", "key_encipherment"]
    assert info.extended_key_usages == ["serverAuth", "clientAuth"]
    assert info.self_signed is False
    assert (info.public_key_algorithm, info.public_key_size, info.public_key_curve) == ("EC", 256, "secp256r1")


def test_times_are_aware_utc(leaf: Issued) -> None:
    info = parse_certificate(leaf.pem)
    assert info.not_before == NOW
    assert info.not_after == NOW + timedelta(days=365)
    assert info.not_before.tzinfo is not None and info.not_before.utcoffset() == timedelta(0)
    assert info.lifetime == timedelta(days=365)
    assert info.remaining(NOW + timedelta(days=300)) == timedelta(days=65)
    assert info.valid_at(NOW + timedelta(days=1))
    assert not info.valid_at(NOW + timedelta(days=366))


def test_fingerprints(leaf: Issued) -> None:
    info = parse_certificate(leaf.pem)
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    assert info.sha256_fingerprint == hashlib.sha256(der).hexdigest()
    assert info.der == der
    assert info.pem == leaf.pem  # the same PEM as cryptography/OpenSSL write it
    assert info.spki_sha256 == spki_sha256_of_public_key(leaf.key.public_key())


def test_parse_der_certificate(leaf: Issued) -> None:
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    assert parse_der_certificate(der) == parse_certificate(leaf.pem)


def test_self_signed_requires_a_verifying_signature(rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    # Subject == issuer, but signed by another key: looks self-signed, is not.
    impostor = _make_ca(rsa_keys[0], "etcd", signer=rsa_keys[1])
    info = parse_certificate(impostor.pem)
    assert info.issuer == info.subject
    assert info.self_signed is False


def test_repr_omits_der(ca: Issued) -> None:
    assert "der=" not in repr(parse_certificate(ca.pem))


# ----------------------------------------------------------------------------- bundles and garbage


def test_bundle_in_order_ignoring_other_blocks(ca: Issued, leaf: Issued, other_ca: Issued) -> None:
    text = leaf.pem + leaf.key_pem + "some commentary\n" + ca.pem + other_ca.pem
    infos = parse_pem_certificates(text)
    assert [i.subject_cn for i in infos] == [["admin"], ["etcd"], ["kubernetes"]]
    assert parse_pem_certificates(text.encode()) == infos


def test_parse_certificate_wants_exactly_one(ca: Issued, leaf: Issued) -> None:
    with pytest.raises(CertificateParseError, match="expected one certificate, found 2"):
        parse_certificate(ca.pem + leaf.pem)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no PEM CERTIFICATE block"),
        ("hello world", "no PEM CERTIFICATE block"),
        ("-----BEGIN CERTIFICATE-----\n%%%notbase64%%%\n-----END CERTIFICATE-----\n", "not valid base64"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a valid X.509 certificate"),
        ("-----BEGIN CERTIFICATE-----\nMIIB\n", "no matching END"),
    ],
)
def test_garbage_raises_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(CertificateParseError, match=message):
        parse_pem_certificates(text)


def test_truncated_certificate(ca: Issued) -> None:
    der = ca.cert.public_bytes(serialization.Encoding.DER)
    with pytest.raises(CertificateParseError, match=r"not a valid X\.509 certificate"):
        parse_der_certificate(der[:-20])


def test_a_private_key_is_refused_without_echoing_it(leaf: Issued) -> None:
    body_line = leaf.key_pem.splitlines()[1]
    with pytest.raises(CertificateParseError, match="private key") as excinfo:
        parse_certificate(leaf.key_pem)
    assert body_line not in str(excinfo.value)
    with pytest.raises(CertificateParseError, match="private key") as excinfo:
        spki_sha256_of_public_key_pem(leaf.key_pem)
    assert body_line not in str(excinfo.value)


def test_binary_input_is_refused() -> None:
    with pytest.raises(CertificateParseError, match="not ASCII"):
        parse_pem_certificates(b"\x30\x82\xff\xfe")


# ----------------------------------------------------------------------------- key matches cert


def test_spki_of_public_key_pem_matches_cert(leaf: Issued, ca: Issued) -> None:
    info = parse_certificate(leaf.pem)
    assert spki_sha256_of_public_key_pem(leaf.public_key_pem) == info.spki_sha256
    assert spki_sha256_of_public_key_pem(leaf.public_key_pem.encode()) == info.spki_sha256
    # Another key: mismatch.
    assert spki_sha256_of_public_key_pem(ca.public_key_pem) != info.spki_sha256


def test_spki_of_garbage() -> None:
    with pytest.raises(CertificateParseError, match="not a PEM public key"):
        spki_sha256_of_public_key_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_agrees_with_openssl_on_the_host_side_commands(leaf: Issued, tmp_path: Path) -> None:
    """What a fact runs on a host: `openssl pkey -pubout` and `openssl x509 -fingerprint -sha256`."""
    key_path = tmp_path / "leaf-key.pem"
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(leaf.key_pem)
    cert_path = tmp_path / "leaf.pem"
    cert_path.write_text(leaf.pem)
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(key_path), "-pubout"], capture_output=True, text=True, check=True
    ).stdout
    info = parse_certificate(cert_path.read_text())
    assert spki_sha256_of_public_key_pem(public) == info.spki_sha256
    fingerprint = subprocess.run(
        ["openssl", "x509", "-in", str(cert_path), "-noout", "-fingerprint", "-sha256"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert fingerprint.strip().split("=", 1)[1].replace(":", "").lower() == info.sha256_fingerprint


# ----------------------------------------------------------------------------- issued by


def test_verify_issued_by_the_right_ca(leaf: Issued, ca: Issued) -> None:
    assert verify_issued_by(leaf.pem, ca.pem) is None
    assert verify_issued_by(ca.pem, ca.pem) is None


def test_verify_issued_by_the_wrong_ca_gives_a_reason(leaf: Issued, other_ca: Issued) -> None:
    reason = verify_issued_by(leaf.pem, other_ca.pem)
    assert reason is not None
    assert "issuer" in reason and "CN=kubernetes" in reason


def test_verify_issued_by_same_name_other_key(leaf: Issued, rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    # A CA with the right name but another key (e.g. a regenerated CA): the signature is what fails.
    lookalike = _make_ca(rsa_keys[1], "etcd")
    reason = verify_issued_by(leaf.pem, lookalike.pem)
    assert reason is not None and "signature does not verify" in reason


def test_verify_issued_by_bundle(leaf: Issued, ca: Issued, other_ca: Issued) -> None:
    assert verify_issued_by(leaf.pem, other_ca.pem + ca.pem) is None


def test_verify_issued_by_garbage(leaf: Issued) -> None:
    with pytest.raises(CertificateParseError):
        verify_issued_by(leaf.pem, "not a certificate")
