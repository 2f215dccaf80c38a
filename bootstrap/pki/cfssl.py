"""cfssl's vocabulary as data: Go durations, usage names, and the ca-config.json / csr.json model.

Each model class writes itself back as cfssl JSON (``to_json``/``as_json``) in the guide's key order,
so the effective inputs kept beside the certificates can be fed to ``cfssl gencert`` by hand.
Reading that JSON, with its error messages, is :mod:`.cfssl_json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CFSSL_DEFAULT_EXPIRY",
    "CFSSL_INITCA_DEFAULT_EXPIRY",
    "EXT_KEY_USAGES",
    "KEY_USAGES",
    "CsrSpec",
    "KeySpec",
    "NameEntry",
    "SigningConfig",
    "SigningProfile",
    "format_go_duration",
    "parse_go_duration",
]

# What `cfssl gencert -initca` gives a CA when ca-csr.json has no "ca": {"expiry"} (5 years).
CFSSL_INITCA_DEFAULT_EXPIRY = timedelta(hours=43800)
# cfssl's own signing default when ca-config.json gives no expiry at all (1 year).
CFSSL_DEFAULT_EXPIRY = timedelta(hours=8760)


# ----------------------------------------------------------------------------- Go durations

_GO_DURATION_UNITS: Mapping[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> timedelta:
    """Parse Go's ``time.ParseDuration`` syntax, which cfssl uses: "87600h", "8760h0m0s", "1.5h", "90m"."""
    if not isinstance(text, str):
        raise ValueError(f"a duration must be a string like '87600h', not {type(text).__name__}")
    body = text.strip()
    sign = 1.0
    if body and body[0] in "+-":
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return timedelta(0)
    if not body:
        raise ValueError(f"{text!r} is not a Go duration (e.g. '87600h', '8760h0m0s')")
    seconds = 0.0
    position = 0
    for match in _GO_DURATION_PART.finditer(body):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _GO_DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(body):
        raise ValueError(f"{text!r} is not a Go duration (e.g. '87600h', '8760h0m0s'; units ns us ms s m h)")
    return timedelta(seconds=sign * seconds)


def format_go_duration(duration: timedelta) -> str:
    """Go's notation, in whole hours where possible ("87600h") as the guide writes it."""
    total = int(duration.total_seconds())
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    if rest == 0:
        return f"{sign}{hours}h"
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours}h{minutes}m{seconds}s"


# ----------------------------------------------------------------------------- cfssl usages

# cfssl's config.KeyUsage names -> cryptography.x509.KeyUsage field, which is also the name
# kubeproof.x509 reads a certificate's key usages back by. cfssl's "signing" means
# digitalSignature (the guide's comment that it makes CA=TRUE is mistaken: initca does that).
KEY_USAGES: Mapping[str, str] = {
    "signing": "digital_signature",
    "digital signature": "digital_signature",
    "content commitment": "content_commitment",
    "key encipherment": "key_encipherment",
    "key agreement": "key_agreement",
    "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
    "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}

# cfssl's config.ExtKeyUsage names -> OID.
EXT_KEY_USAGES: Mapping[str, x509.ObjectIdentifier] = {
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}

# ----------------------------------------------------------------------------- cfssl JSON model


@dataclass(frozen=True)
class SigningProfile:
    """One entry of ca-config.json's ``signing``: a life and a list of cfssl usage names."""

    expiry: timedelta | None  # None: fall back to signing.default (cfssl's rule)
    usages: tuple[str, ...] = ()

    @property
    def key_usage_fields(self) -> frozenset[str]:
        return frozenset(KEY_USAGES[u] for u in self.usages if u in KEY_USAGES)

    @property
    def ext_key_usage_oids(self) -> tuple[x509.ObjectIdentifier, ...]:
        oids: list[x509.ObjectIdentifier] = []
        for usage in self.usages:
            oid = EXT_KEY_USAGES.get(usage)
            if oid is not None and oid not in oids:
                oids.append(oid)
        return tuple(oids)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.expiry is not None:
            out["expiry"] = format_go_duration(self.expiry)
        if self.usages:
            out["usages"] = list(self.usages)
        return out


@dataclass(frozen=True)
class SigningConfig:
    """A parsed ca-config.json."""

    default: SigningProfile
    profiles: Mapping[str, SigningProfile]
    source: str = "ca-config.json"

    def expiry_of(self, profile: SigningProfile) -> timedelta:
        return profile.expiry or self.default.expiry or CFSSL_DEFAULT_EXPIRY

    def to_json(self) -> str:
        document = {
            "signing": {
                "default": self.default.as_json(),
                "profiles": {name: profile.as_json() for name, profile in self.profiles.items()},
            }
        }
        return json.dumps(document, indent=4, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class KeySpec:
    algorithm: str  # "rsa" | "ecdsa" (cfssl's key.algo)
    size: int  # RSA modulus bits, or the ECDSA curve size (256, 384, 521)

    def __str__(self) -> str:
        return f"{self.algorithm} {self.size}"


@dataclass(frozen=True)
class NameEntry:
    """One element of a csr.json ``names`` list."""

    country: str | None = None  # C
    state: str | None = None  # ST
    locality: str | None = None  # L
    organization: str | None = None  # O
    organizational_unit: str | None = None  # OU

    def as_json(self) -> dict[str, str]:
        # The guide's key order: C, L, ST, O, OU.
        pairs = (
            ("C", self.country),
            ("L", self.locality),
            ("ST", self.state),
            ("O", self.organization),
            ("OU", self.organizational_unit),
        )
        return {key: value for key, value in pairs if value}


@dataclass(frozen=True)
class CsrSpec:
    """A parsed ``*-csr.json``: what cfssl would put in the request."""

    common_name: str
    hosts: tuple[str, ...] = ()
    key: KeySpec = KeySpec("rsa", 2048)
    names: tuple[NameEntry, ...] = ()
    ca_expiry: timedelta | None = None  # "ca": {"expiry"}: only `gencert -initca` reads it
    ca_path_length: int | None = None  # "ca": {"pathlen"}
    source: str = "csr.json"

    @property
    def organizations(self) -> list[str]:
        return [entry.organization for entry in self.names if entry.organization]

    def subject(self) -> x509.Name:
        """The subject as cfssl/Go build it: C, ST, L, O, OU then CN, one RDN per attribute type."""
        rdns: list[x509.RelativeDistinguishedName] = []
        for oid, attribute in (
            (NameOID.COUNTRY_NAME, "country"),
            (NameOID.STATE_OR_PROVINCE_NAME, "state"),
            (NameOID.LOCALITY_NAME, "locality"),
            (NameOID.ORGANIZATION_NAME, "organization"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "organizational_unit"),
        ):
            values: list[str] = []
            for entry in self.names:
                value = getattr(entry, attribute)
                if value and value not in values:
                    values.append(value)
            if values:
                rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(oid, v) for v in values]))
        if self.common_name:
            rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, self.common_name)]))
        return x509.Name(rdns)

    def to_json(self, *, is_ca: bool) -> str:
        document: dict[str, Any] = {"CN": self.common_name}
        if self.hosts or not is_ca:
            document["hosts"] = list(self.hosts)
        document["key"] = {"algo": self.key.algorithm, "size": self.key.size}
        document["names"] = [entry.as_json() for entry in self.names]
        if is_ca and (self.ca_expiry is not None or self.ca_path_length is not None):
            ca: dict[str, Any] = {}
            if self.ca_expiry is not None:
                ca["expiry"] = format_go_duration(self.ca_expiry)
            if self.ca_path_length is not None:
                ca["pathlen"] = self.ca_path_length
            document["ca"] = ca
        return json.dumps(document, indent=4, ensure_ascii=False) + "\n"
