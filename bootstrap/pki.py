"""The guide's certificates, made with ``cryptography`` instead of cfssl (the installer's first step).

Two authorities, as in the guide: the **etcd CA** (etcd-cert.sh) signs the etcd server certificate,
which etcd also uses as its peer and client certificate; the **Kubernetes CA** (k8s-cert.sh) signs
the apiserver, admin and kube-proxy certificates. A service-account key pair is added because
kube-apiserver >= 1.20 requires ``--service-account-signing-key-file`` (the guide's era used the CA
key for that; we do not).

Inputs are cfssl's own JSON (``ca-config.json``, ``*-csr.json``): rendered from the cluster by
default, or read from a directory in the guide's format. The effective inputs are written beside
the certificates under their cfssl names, so ``cfssl gencert`` can regenerate them by hand.

Rules this module keeps:

* An existing CA (certificate or key) is never replaced unless asked (``replace_ca``); an existing
  private key is never overwritten. A leaf is re-issued (with its existing key) only when it is
  missing, not signed by the current CA, no longer matches the cluster (subject, SANs, usages),
  outlives its CA, or expires within the renewal window. Everything else stays byte-identical,
  so a second run changes nothing.
* No certificate outlives its CA: cfssl's ``gencert -initca`` gives a CA 5 years by default while
  the guide's profile gives leaves 10 (PKI-E-05/SEC-05). Here a CA gets its own configured life
  and a leaf's notAfter is clamped to its CA's, with a note in the plan.
* Private keys are created 0600 through ``os.open`` (never chmod-ed after the fact), directories
  0700, and no key material appears in a message, a log line or a ``repr``.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import ipaddress
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeproof.inventory import Cluster, HostSpec
from kubeproof.x509 import CertificateParseError, parse_certificate, spki_sha256_of_public_key, verify_issued_by

__all__ = [
    "CFSSL_INITCA_DEFAULT_EXPIRY",
    "DEFAULT_CA_EXPIRY",
    "DEFAULT_LEAF_EXPIRY",
    "DEFAULT_RENEWAL_WINDOW",
    "ETCD",
    "EXT_KEY_USAGES",
    "KEY_USAGES",
    "KUBERNETES",
    "Action",
    "AuthorityInputs",
    "CsrSpec",
    "KeyFactory",
    "KeySpec",
    "LeafInputs",
    "NameEntry",
    "PkiError",
    "PkiInputError",
    "PkiPlan",
    "PlanItem",
    "RemoteFile",
    "SigningConfig",
    "SigningKey",
    "SigningProfile",
    "desired_inputs",
    "ensure_pki",
    "format_go_duration",
    "generate_private_key",
    "host_pki_files",
    "load_ca_config",
    "load_csr_json",
    "parse_ca_config",
    "parse_csr_json",
    "parse_go_duration",
    "plan_pki",
]

ETCD = "etcd"
KUBERNETES = "kubernetes"
AUTHORITIES = (ETCD, KUBERNETES)

# The guide's ca-config.json: "expiry": "87600h" (10 years) for the default and the "www" profile.
DEFAULT_LEAF_EXPIRY = timedelta(hours=87600)
# A CA must outlive what it signs: the leaves' 10 years plus a margin of the same again.
DEFAULT_CA_EXPIRY = timedelta(hours=175200)
# What `cfssl gencert -initca` gives a CA when ca-csr.json has no "ca": {"expiry"} (5 years).
CFSSL_INITCA_DEFAULT_EXPIRY = timedelta(hours=43800)
# cfssl's own signing default when ca-config.json gives no expiry at all (1 year).
CFSSL_DEFAULT_EXPIRY = timedelta(hours=8760)
# Matches the checks' default remaining-life budget (PKI-E-05): a run re-issues what they would flag.
DEFAULT_RENEWAL_WINDOW = timedelta(days=30)
# cfssl backdates notBefore by 5 minutes so a host whose clock lags slightly accepts a fresh certificate.
BACKDATE = timedelta(minutes=5)

REMOTE_ETCD_SSL = "/opt/etcd/ssl"
REMOTE_KUBERNETES_SSL = "/opt/kubernetes/ssl"
KEY_FILE_MODE = 0o600
CERT_FILE_MODE = 0o644
DIR_MODE = 0o700

APISERVER_DNS_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster",
    "kubernetes.default.svc.cluster.local",
)


class PkiError(Exception):
    """The PKI step cannot proceed; the message says which file and what to do."""


class PkiInputError(PkiError, ValueError):
    """A problem in a cfssl JSON input; the message starts with the file (and line:column for JSON syntax)."""

    def __init__(self, problem: str, *, source: str, line: int | None = None, column: int | None = None):
        self.source = source
        self.problem = problem
        self.line = line
        self.column = column
        where = source + (f":{line}:{column}" if line is not None and column is not None else "")
        super().__init__(f"{where}: {problem}")


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

# cfssl's config.KeyUsage names -> cryptography.x509.KeyUsage field. cfssl's "signing" means
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

_ALL_KEY_USAGE_FIELDS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


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


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        self.key = key


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _load_json(text: str, source: str) -> Any:
    try:
        return json.loads(text.lstrip("\ufeff"), object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise PkiInputError(f"invalid JSON: {exc.msg}", source=source, line=exc.lineno, column=exc.colno) from None
    except _DuplicateKey as exc:
        raise PkiInputError(f"duplicate key {exc.key!r}", source=source) from None


def _mapping(value: Any, where: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PkiInputError(f"{where} must be a JSON object, not {_json_type(value)}", source=source)
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _reject_unknown_keys(mapping: Mapping[str, Any], known: Sequence[str], where: str, source: str) -> None:
    for key in mapping:
        if key not in known:
            raise PkiInputError(
                f"{where}: unsupported key {key!r} (kubeproof reads: {', '.join(known)})",
                source=source,
            )


def _duration(value: Any, where: str, source: str) -> timedelta:
    try:
        duration = parse_go_duration(value)
    except ValueError as exc:
        raise PkiInputError(f"{where}: {exc}", source=source) from None
    if duration <= timedelta(0):
        raise PkiInputError(f"{where}: {value!r} must be a positive duration", source=source)
    return duration


def _signing_profile(value: Any, where: str, source: str) -> SigningProfile:
    mapping = _mapping(value, where, source)
    _reject_unknown_keys(mapping, ("expiry", "usages"), where, source)
    expiry = _duration(mapping["expiry"], f"{where}.expiry", source) if "expiry" in mapping else None
    raw_usages = mapping.get("usages", [])
    if not isinstance(raw_usages, list):
        raise PkiInputError(f"{where}.usages must be a list of strings", source=source)
    usages: list[str] = []
    for usage in raw_usages:
        if not isinstance(usage, str):
            raise PkiInputError(f"{where}.usages entries must be strings, not {_json_type(usage)}", source=source)
        if usage not in KEY_USAGES and usage not in EXT_KEY_USAGES:
            known = sorted({*KEY_USAGES, *EXT_KEY_USAGES})
            raise PkiInputError(
                f"{where}.usages: unknown usage {usage!r} (cfssl knows: {', '.join(known)})", source=source
            )
        usages.append(usage)
    return SigningProfile(expiry, tuple(usages))


def parse_ca_config(text: str, source: str = "ca-config.json") -> SigningConfig:
    """Parse a cfssl ca-config.json: ``signing.default`` and ``signing.profiles.<name>`` (expiry, usages)."""
    top = _mapping(_load_json(text, source), "the top level", source)
    _reject_unknown_keys(top, ("signing",), "the top level", source)
    if "signing" not in top:
        raise PkiInputError("missing 'signing'", source=source)
    signing = _mapping(top["signing"], "signing", source)
    _reject_unknown_keys(signing, ("default", "profiles"), "signing", source)
    default = _signing_profile(signing.get("default", {}), "signing.default", source)
    profiles_raw = _mapping(signing.get("profiles", {}), "signing.profiles", source)
    profiles = {
        name: _signing_profile(value, f"signing.profiles.{name}", source) for name, value in profiles_raw.items()
    }
    return SigningConfig(default, profiles, source)


_RSA_SIZES = range(2048, 8193)  # cfssl refuses RSA keys below 2048 and above 8192 bits
_ECDSA_SIZES = (256, 384, 521)
_DNS_NAME = re.compile(
    r"(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*"
)


def _key_spec(value: Any, source: str) -> KeySpec:
    mapping = _mapping(value, "key", source)
    _reject_unknown_keys(mapping, ("algo", "size"), "key", source)
    algorithm = mapping.get("algo", "ecdsa")
    size = mapping.get("size")
    if algorithm not in ("rsa", "ecdsa"):
        raise PkiInputError(f"key.algo: unsupported algorithm {algorithm!r} (supported: rsa, ecdsa)", source=source)
    if size is None:
        size = 2048 if algorithm == "rsa" else 256
    if isinstance(size, bool) or not isinstance(size, int):
        raise PkiInputError(f"key.size must be a whole number, not {_json_type(size)}", source=source)
    if algorithm == "rsa" and size not in _RSA_SIZES:
        raise PkiInputError(f"key.size: unsupported RSA size {size} (2048 to 8192 bits)", source=source)
    if algorithm == "ecdsa" and size not in _ECDSA_SIZES:
        raise PkiInputError(f"key.size: unsupported ECDSA size {size} (256, 384 or 521)", source=source)
    return KeySpec(algorithm, size)


def _name_entry(value: Any, index: int, source: str) -> NameEntry:
    where = f"names[{index}]"
    mapping = _mapping(value, where, source)
    _reject_unknown_keys(mapping, ("C", "ST", "L", "O", "OU"), where, source)
    for key, item in mapping.items():
        if not isinstance(item, str):
            raise PkiInputError(f"{where}.{key} must be a string, not {_json_type(item)}", source=source)
    country = mapping.get("C") or None
    if country is not None and len(country) != 2:
        raise PkiInputError(f"{where}.C: {country!r} is not a two-letter country code", source=source)
    return NameEntry(
        country=country,
        state=mapping.get("ST") or None,
        locality=mapping.get("L") or None,
        organization=mapping.get("O") or None,
        organizational_unit=mapping.get("OU") or None,
    )


def _check_host(host: str, source: str) -> str:
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host))
    if not _DNS_NAME.fullmatch(host) or len(host) > 253:
        raise PkiInputError(
            f"hosts: {host!r} is neither an IP address nor a DNS name (email and URI SANs are not supported)",
            source=source,
        )
    return host


def parse_csr_json(text: str, source: str = "csr.json") -> CsrSpec:
    """Parse a cfssl ``*-csr.json``: CN, hosts, key (algo, size), names (C, ST, L, O, OU), ca (expiry, pathlen)."""
    top = _mapping(_load_json(text, source), "the top level", source)
    _reject_unknown_keys(top, ("CN", "hosts", "key", "names", "ca"), "the top level", source)
    common_name = top.get("CN", "")
    if not isinstance(common_name, str):
        raise PkiInputError(f"CN must be a string, not {_json_type(common_name)}", source=source)
    raw_hosts = top.get("hosts") or []
    if not isinstance(raw_hosts, list):
        raise PkiInputError("hosts must be a list of strings", source=source)
    hosts: list[str] = []
    for host in raw_hosts:
        if not isinstance(host, str):
            raise PkiInputError(f"hosts entries must be strings, not {_json_type(host)}", source=source)
        # `"hosts": [""]` is a common idiom for client certificates: cfssl would add an empty DNS name.
        if host.strip() and (checked := _check_host(host.strip(), source)) not in hosts:
            hosts.append(checked)
    # cfssl's default key when "key" is absent is ECDSA P-256.
    key = _key_spec(top["key"], source) if "key" in top else KeySpec("ecdsa", 256)
    raw_names = top.get("names") or []
    if not isinstance(raw_names, list):
        raise PkiInputError("names must be a list of objects", source=source)
    names = tuple(_name_entry(entry, index, source) for index, entry in enumerate(raw_names))
    ca_expiry: timedelta | None = None
    ca_path_length: int | None = None
    if top.get("ca") is not None:
        ca = _mapping(top["ca"], "ca", source)
        _reject_unknown_keys(ca, ("expiry", "pathlen"), "ca", source)
        if "expiry" in ca:
            ca_expiry = _duration(ca["expiry"], "ca.expiry", source)
        if "pathlen" in ca:
            path_length = ca["pathlen"]
            if isinstance(path_length, bool) or not isinstance(path_length, int) or path_length < 0:
                raise PkiInputError("ca.pathlen must be a whole number >= 0", source=source)
            ca_path_length = path_length
    return CsrSpec(common_name, tuple(hosts), key, names, ca_expiry, ca_path_length, source)


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise PkiInputError(f"cannot read: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError:
        raise PkiInputError("not UTF-8 text", source=str(path)) from None


def load_ca_config(path: Path) -> SigningConfig:
    return parse_ca_config(_read_text(path), str(path))


def load_csr_json(path: Path) -> CsrSpec:
    return parse_csr_json(_read_text(path), str(path))


# ----------------------------------------------------------------------------- desired inputs


@dataclass(frozen=True)
class _LeafDefinition:
    """One leaf certificate of an authority, and what it must keep whatever the inputs say."""

    stem: str  # cfssl's -bare name: <stem>.pem, <stem>-key.pem, <stem>-csr.json
    profiles: tuple[str, ...]  # profile names tried in order in ca-config.json
    required_ext_usages: tuple[str, ...]  # cfssl names
    required_common_name: str | None = None
    required_organization: str | None = None


_ETCD_LEAVES = (
    # etcd uses server.pem as server, peer and client certificate (PKI-E-04): both EKUs.
    _LeafDefinition("server", ("www",), ("server auth", "client auth")),
)
_KUBERNETES_LEAVES = (
    _LeafDefinition("apiserver", ("kubernetes",), ("server auth",)),
    # Client certificates get a client-only profile; with the guide's own ca-config.json (one
    # "kubernetes" profile) they fall back to it, as the guide does.
    _LeafDefinition("admin", ("client", "kubernetes"), ("client auth",), required_organization="system:masters"),
    _LeafDefinition("kube-proxy", ("client", "kubernetes"), ("client auth",), required_common_name="system:kube-proxy"),
)


@dataclass(frozen=True)
class LeafInputs:
    stem: str
    csr: CsrSpec
    profile_name: str
    profile: SigningProfile
    expiry: timedelta


@dataclass(frozen=True)
class AuthorityInputs:
    """The effective cfssl inputs of one authority: exactly what is written beside its certificates."""

    name: str  # "etcd" | "kubernetes"
    ca_config: SigningConfig
    ca_csr: CsrSpec
    ca_expiry: timedelta
    leaves: tuple[LeafInputs, ...]
    notes: tuple[str, ...] = ()

    def json_files(self) -> dict[str, str]:
        files = {"ca-config.json": self.ca_config.to_json(), "ca-csr.json": self.ca_csr.to_json(is_ca=True)}
        for leaf in self.leaves:
            files[f"{leaf.stem}-csr.json"] = leaf.csr.to_json(is_ca=False)
        return files


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        if value not in out:
            out.append(value)
    return tuple(out)


def _normalized_host(host: str) -> str:
    """An IP address in its canonical text (IPv6 compressed); a name as given."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _required_hosts(cluster: Cluster, authority: str, stem: str) -> tuple[str, ...]:
    if authority == ETCD and stem == "server":
        return _unique(_normalized_host(h.address) for h in cluster.etcd_members)
    if authority == KUBERNETES and stem == "apiserver":
        return _unique(
            [
                cluster.network.service_first_address,
                "127.0.0.1",
                *(_normalized_host(h.address) for h in cluster.masters),
                *(_normalized_host(a) for a in cluster.network.load_balancer_addresses),
                *APISERVER_DNS_NAMES,
            ]
        )
    return ()


def _default_inputs(cluster: Cluster, authority: str) -> tuple[SigningConfig, CsrSpec, dict[str, CsrSpec]]:
    """The guide's etcd-cert.sh / k8s-cert.sh JSON, filled in from the cluster."""
    rsa_2048 = KeySpec("rsa", 2048)
    ten_years = DEFAULT_LEAF_EXPIRY
    server_and_client = ("signing", "key encipherment", "server auth", "client auth")
    if authority == ETCD:
        config = SigningConfig(
            SigningProfile(ten_years), {"www": SigningProfile(ten_years, server_and_client)}, "ca-config.json"
        )
        ca_csr = CsrSpec("etcd", (), rsa_2048, (NameEntry("CN", "Beijing", "Beijing"),), source="ca-csr.json")
        server_names = (NameEntry("CN", "BeiJing", "BeiJing"),)
        leaves = {
            "server": CsrSpec(
                "etcd", _required_hosts(cluster, ETCD, "server"), rsa_2048, server_names, source="server-csr.json"
            )
        }
        return config, ca_csr, leaves
    config = SigningConfig(
        SigningProfile(ten_years),
        {
            "kubernetes": SigningProfile(ten_years, server_and_client),
            "client": SigningProfile(ten_years, ("signing", "key encipherment", "client auth")),
        },
        "ca-config.json",
    )
    ca_csr = CsrSpec(
        "kubernetes", (), rsa_2048, (NameEntry("CN", "Beijing", "Beijing", "k8s", "System"),), source="ca-csr.json"
    )
    k8s_names = (NameEntry("CN", "BeiJing", "BeiJing", "k8s", "System"),)
    leaves = {
        "apiserver": CsrSpec(
            "kubernetes",
            _required_hosts(cluster, KUBERNETES, "apiserver"),
            rsa_2048,
            k8s_names,
            source="apiserver-csr.json",
        ),
        "admin": CsrSpec(
            "admin",
            (),
            rsa_2048,
            (NameEntry("CN", "BeiJing", "BeiJing", "system:masters", "System"),),
            source="admin-csr.json",
        ),
        "kube-proxy": CsrSpec("system:kube-proxy", (), rsa_2048, k8s_names, source="kube-proxy-csr.json"),
    }
    return config, ca_csr, leaves


def _authority_inputs(
    cluster: Cluster, authority: str, inputs_dir: Path | None, ca_expiry: timedelta | None
) -> AuthorityInputs:
    config, ca_csr, leaf_csrs = _default_inputs(cluster, authority)
    notes: list[str] = []
    user_dir = inputs_dir / authority if inputs_dir is not None else None
    if user_dir is not None and user_dir.is_dir():
        if (user_dir / "ca-config.json").is_file():
            config = load_ca_config(user_dir / "ca-config.json")
        if (user_dir / "ca-csr.json").is_file():
            ca_csr = load_csr_json(user_dir / "ca-csr.json")
            if ca_csr.ca_expiry is None and ca_expiry is None:
                notes.append(
                    f'{ca_csr.source} has no "ca": {{"expiry"}}: `cfssl gencert -initca` would give the CA only '
                    f"{format_go_duration(CFSSL_INITCA_DEFAULT_EXPIRY)} (shorter than its leaves); "
                    f"using {format_go_duration(DEFAULT_CA_EXPIRY)} and writing it into ca-csr.json"
                )
        known = {"ca-config.json", "ca-csr.json", *(f"{stem}-csr.json" for stem in leaf_csrs)}
        for path in sorted(user_dir.glob("*.json")):
            if path.name not in known:
                notes.append(
                    f"{path}: not an input of the {authority} PKI (known: {', '.join(sorted(known))}); ignored"
                )
        for stem in list(leaf_csrs):
            path = user_dir / f"{stem}-csr.json"
            if not path.is_file():
                continue
            user_csr = load_csr_json(path)
            required = _required_hosts(cluster, authority, stem)
            # The cluster decides the SANs it needs; the file may declare more (a VIP, a DNS name).
            extras = tuple(h for h in user_csr.hosts if h not in required)
            cluster_addresses = {_normalized_host(h.address) for h in cluster.hosts}
            strangers = [h for h in extras if _is_ip(h) and h not in cluster_addresses]
            if strangers:
                notes.append(
                    f"{path}: hosts {', '.join(strangers)} are not addresses of any cluster host; kept as declared "
                    "extra SANs (remove them from the file if they are stale)"
                )
            leaf_csrs[stem] = replace(user_csr, hosts=required + extras)
    effective_ca_expiry = ca_expiry or ca_csr.ca_expiry or DEFAULT_CA_EXPIRY
    ca_csr = replace(ca_csr, ca_expiry=effective_ca_expiry)
    definitions = _ETCD_LEAVES if authority == ETCD else _KUBERNETES_LEAVES
    leaves: list[LeafInputs] = []
    for definition in definitions:
        csr = leaf_csrs[definition.stem]
        if definition.required_common_name and csr.common_name != definition.required_common_name:
            raise PkiInputError(
                f"CN must be {definition.required_common_name!r} (Kubernetes identifies the user by it), "
                f"not {csr.common_name!r}",
                source=csr.source,
            )
        if definition.required_organization and definition.required_organization not in csr.organizations:
            raise PkiInputError(
                f"names must include O {definition.required_organization!r} (the group that grants its rights)",
                source=csr.source,
            )
        profile_name = next((name for name in definition.profiles if name in config.profiles), None)
        if profile_name is None:
            raise PkiInputError(
                f"no signing profile {' or '.join(repr(p) for p in definition.profiles)} for {definition.stem}",
                source=config.source,
            )
        profile = config.profiles[profile_name]
        missing = [u for u in definition.required_ext_usages if u not in profile.usages]
        if missing:
            raise PkiInputError(
                f"signing.profiles.{profile_name}.usages lacks {', '.join(repr(u) for u in missing)}, "
                f"which {definition.stem} needs",
                source=config.source,
            )
        leaves.append(LeafInputs(definition.stem, csr, profile_name, profile, config.expiry_of(profile)))
    return AuthorityInputs(authority, config, ca_csr, effective_ca_expiry, tuple(leaves), tuple(notes))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def desired_inputs(
    cluster: Cluster, *, inputs_dir: Path | None = None, ca_expiry: timedelta | None = None
) -> tuple[AuthorityInputs, AuthorityInputs]:
    """The etcd and Kubernetes inputs for ``cluster``.

    ``inputs_dir`` may hold the guide's own files under ``etcd/`` and ``kubernetes/``
    (ca-config.json, ca-csr.json, server-csr.json, apiserver-csr.json, admin-csr.json,
    kube-proxy-csr.json); each file present replaces the rendered default, except that the SANs the
    cluster needs are always present (the file's extra hosts are kept as declared).
    """
    if not cluster.etcd_members:
        raise PkiError(f"cluster {cluster.name!r} has no host with role etcd: the etcd certificate would have no SAN")
    if not cluster.masters:
        raise PkiError(f"cluster {cluster.name!r} has no host with role master: the apiserver certificate needs one")
    if ca_expiry is not None and ca_expiry <= timedelta(0):
        raise PkiError("ca_expiry must be positive")
    return (
        _authority_inputs(cluster, ETCD, inputs_dir, ca_expiry),
        _authority_inputs(cluster, KUBERNETES, inputs_dir, ca_expiry),
    )


# ----------------------------------------------------------------------------- keys

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
KeyFactory = Callable[[KeySpec], SigningKey]

_CURVES: Mapping[int, ec.EllipticCurve] = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}


def generate_private_key(spec: KeySpec) -> SigningKey:
    if spec.algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=spec.size)
    if spec.algorithm == "ecdsa" and spec.size in _CURVES:
        return ec.generate_private_key(_CURVES[spec.size])
    raise PkiError(f"unsupported key: {spec}")


def _key_spec_of(key: SigningKey) -> KeySpec:
    if isinstance(key, rsa.RSAPrivateKey):
        return KeySpec("rsa", key.key_size)
    return KeySpec("ecdsa", key.curve.key_size)


def _private_key_pem(key: SigningKey) -> bytes:
    # cfssl writes PKCS#1 "RSA PRIVATE KEY" / SEC1 "EC PRIVATE KEY"; etcd and Kubernetes read both.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def _public_key_pem(key: SigningKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _signature_hash(key: SigningKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    # As cfssl: SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521.
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == 384:
        return hashes.SHA384()
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == 521:
        return hashes.SHA512()
    return hashes.SHA256()


def _load_private_key(path: Path) -> SigningKey:
    return _parse_private_key(path.read_bytes(), str(path))


def _parse_private_key(data: bytes, path: str) -> SigningKey:
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


def _load_certificate(path: Path) -> x509.Certificate:
    try:
        infos = parse_certificate(path.read_bytes())
    except CertificateParseError as exc:
        raise PkiError(f"{path}: {exc}") from None
    return x509.load_der_x509_certificate(infos.der)


def _spki(key: SigningKey | x509.Certificate) -> str:
    return spki_sha256_of_public_key(key.public_key())


# ----------------------------------------------------------------------------- issuing


def _general_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _key_usage(fields: Iterable[str]) -> x509.KeyUsage:
    wanted = set(fields)
    flags = {name: name in wanted for name in _ALL_KEY_USAGE_FIELDS}
    # encipher_only/decipher_only only mean something with key_agreement (cryptography enforces it).
    if not flags["key_agreement"]:
        flags["encipher_only"] = flags["decipher_only"] = False
    return x509.KeyUsage(**flags)


def _build_certificate(
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
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None), critical=True)
        .add_extension(_key_usage(key_usage_fields), critical=True)
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


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# ----------------------------------------------------------------------------- plan


class Action(enum.StrEnum):
    CREATE = "create"  # nothing was there
    REUSE = "reuse"  # left byte-identical
    REISSUE = "reissue"  # certificate signed again (with the existing key where there is one)
    REPLACE = "replace"  # a CA replaced because replace_ca asked for it
    WRITE = "write"  # a cfssl JSON input (re)written


@dataclass(frozen=True)
class PlanItem:
    authority: str  # "etcd" | "kubernetes"
    name: str  # "ca", "server", "apiserver", "admin", "kube-proxy", "sa", or a JSON file name
    action: Action
    reasons: tuple[str, ...] = ()  # why the action (empty for reuse)
    notes: tuple[str, ...] = ()  # remarks that did not change the action (a clamp, a kept key)
    paths: tuple[Path, ...] = ()

    def describe(self) -> str:
        text = f"{self.authority}/{self.name}: {self.action.value}"
        if self.reasons:
            text += " (" + "; ".join(self.reasons) + ")"
        for note in self.notes:
            text += f"\n    note: {note}"
        return text


@dataclass
class PkiPlan:
    """What the PKI step did (``applied``) or would do: one item per CA, leaf, key pair and JSON input."""

    pki_dir: Path
    applied: bool
    items: list[PlanItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changed_paths: list[Path] = field(default_factory=list)  # files and directories written or chmod-ed

    @property
    def changed(self) -> bool:
        return bool(self.changed_paths) or any(item.action is not Action.REUSE for item in self.items)

    def item(self, authority: str, name: str) -> PlanItem:
        for item in self.items:
            if item.authority == authority and item.name == name:
                return item
        raise KeyError(f"{authority}/{name}")

    def lines(self) -> list[str]:
        verb = "applied" if self.applied else "plan"
        out = [f"PKI {verb} in {self.pki_dir}:"]
        out += ["  " + item.describe() for item in self.items]
        out += [f"  note: {note}" for note in self.notes]
        return out


# ----------------------------------------------------------------------------- files


class _Files:
    """All filesystem effects of a run; in plan mode it only reads."""

    def __init__(self, plan: PkiPlan):
        self.plan = plan
        self.apply = plan.applied

    def ensure_directory(self, path: Path) -> None:
        if not self.apply:
            return
        if not path.exists():
            for parent in reversed(path.parents):
                if not parent.exists():
                    os.mkdir(parent, DIR_MODE)
            os.mkdir(path, DIR_MODE)  # the umask can only narrow 0700
            self.plan.changed_paths.append(path)
            return
        if not path.is_dir():
            raise PkiError(f"{path} exists and is not a directory")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, DIR_MODE)
            self.plan.notes.append(f"{path}: mode {mode:04o} narrowed to {DIR_MODE:04o}")
            self.plan.changed_paths.append(path)

    def write(self, path: Path, data: bytes, *, secret: bool, durable: bool = False) -> None:
        """Write ``data`` atomically; ``durable`` (implied by ``secret``) also survives a power cut.

        Keys and CA certificates cannot be made again without consequences, so they are fsync-ed;
        leaf certificates and JSON inputs are re-made by the next run if lost, so they skip the cost.
        """
        if not self.apply:
            return
        mode = KEY_FILE_MODE if secret else CERT_FILE_MODE
        # A temporary file created with its final mode, then renamed over the target: a key is never
        # readable by others for an instant, and a crash leaves the old file or the new, never half.
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                if secret or durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        self.plan.changed_paths.append(path)

    def narrow_key_mode(self, path: Path, notes: list[str]) -> None:
        """An existing key that others can read: narrow it (the exposure already happened; stop it going on)."""
        mode = stat.S_IMODE(path.stat().st_mode)
        if not mode & 0o077:
            return
        if self.apply:
            os.chmod(path, KEY_FILE_MODE)
            self.plan.changed_paths.append(path)
            notes.append(f"{path.name} had mode {mode:04o}; narrowed to {KEY_FILE_MODE:04o}")
        else:
            notes.append(f"{path.name} has mode {mode:04o}; would narrow to {KEY_FILE_MODE:04o}")

    def move(self, source: Path, target: Path) -> None:
        if self.apply:
            os.replace(source, target)
            self.plan.changed_paths.append(target)


def _aside_path(path: Path, stamp: str) -> Path:
    """Where a replaced CA file is kept (never deleted: we did not necessarily create it)."""
    target = path.with_name(f"{path.name}.replaced-{stamp}")
    counter = 1
    while os.path.lexists(target):
        counter += 1
        target = path.with_name(f"{path.name}.replaced-{stamp}-{counter}")
    return target


@dataclass
class _AuthorityState:
    """The CA of one authority during a run (cert and key are None in plan mode for a CA to be made)."""

    name: str
    cert: x509.Certificate | None
    key: SigningKey | None = field(repr=False)
    not_after: datetime
    fresh: bool  # created or replaced in this run

    @property
    def pem(self) -> bytes | None:
        return _cert_pem(self.cert) if self.cert is not None else None


@dataclass
class _Run:
    plan: PkiPlan
    files: _Files
    now: datetime
    renewal_window: timedelta
    replace: frozenset[str]
    key_factory: KeyFactory | None = field(repr=False)

    def new_key(self, spec: KeySpec) -> SigningKey:
        if self.key_factory is None:
            raise AssertionError("plan mode never makes keys")
        key = self.key_factory(spec)
        if _key_spec_of(key) != spec:
            raise PkiError(f"the key factory returned a {_key_spec_of(key)} key for a {spec} request")
        return key


def _ensure_ca(run: _Run, inputs: AuthorityInputs, directory: Path) -> _AuthorityState:
    cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    cert_exists, key_exists = os.path.lexists(cert_path), os.path.lexists(key_path)
    notes: list[str] = []
    reasons: list[str] = []
    set_aside: list[tuple[Path, Path]] = []
    if inputs.name in run.replace and (cert_exists or key_exists):
        action = Action.REPLACE
        stamp = run.now.strftime("%Y%m%dT%H%M%SZ")
        set_aside = [(p, _aside_path(p, stamp)) for p in (cert_path, key_path) if os.path.lexists(p)]
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
        return _AuthorityState(inputs.name, None, None, not_after, fresh=True)
    key = run.new_key(inputs.ca_csr.key)
    cert = _build_certificate(
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
    run.files.write(key_path, _private_key_pem(key), secret=True)
    run.files.write(cert_path, _cert_pem(cert), secret=False, durable=True)
    return _AuthorityState(inputs.name, cert, key, cert.not_valid_after_utc, fresh=True)


def _load_existing_ca(
    run: _Run, inputs: AuthorityInputs, cert_path: Path, key_path: Path, notes: list[str]
) -> _AuthorityState:
    cert = _load_certificate(cert_path)
    key = _load_private_key(key_path)
    if _spki(cert) != _spki(key):
        raise PkiError(
            f"{key_path} does not match {cert_path} (their public keys differ): refusing to sign with it. "
            "Restore the matching key, or pass replace_ca to make a new CA"
        )
    info = parse_certificate(_cert_pem(cert))
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
    if cert.subject != inputs.ca_csr.subject():
        notes.append(
            f"the CA's subject {cert.subject.rfc4514_string()!r} differs from ca-csr.json's "
            f"{inputs.ca_csr.subject().rfc4514_string()!r}; kept (an existing CA is never replaced unasked)"
        )
    if _key_spec_of(key) != inputs.ca_csr.key:
        notes.append(f"the CA key is {_key_spec_of(key)}, ca-csr.json asks {inputs.ca_csr.key}; kept")
    run.files.narrow_key_mode(key_path, notes)
    return _AuthorityState(inputs.name, cert, key, info.not_after, fresh=False)


def _ext_key_usage_oids(cert: x509.Certificate) -> frozenset[x509.ObjectIdentifier]:
    try:
        return frozenset(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return frozenset()


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


def _leaf_not_after(run: _Run, ca: _AuthorityState, leaf: LeafInputs) -> tuple[datetime, str | None]:
    wanted = run.now + leaf.expiry
    if wanted <= ca.not_after:
        return wanted, None
    return ca.not_after, (
        f"notAfter clamped to the CA's {ca.not_after.isoformat()} (the profile's "
        f"{format_go_duration(leaf.expiry)} would end {wanted.isoformat()}): a certificate must not outlive its CA"
    )


def _ensure_leaf(run: _Run, ca: _AuthorityState, leaf: LeafInputs, directory: Path) -> None:
    cert_path, key_path = directory / f"{leaf.stem}.pem", directory / f"{leaf.stem}-key.pem"
    notes: list[str] = []
    reasons: list[str] = []
    key = _load_private_key(key_path) if os.path.lexists(key_path) else None
    if key is not None:
        run.files.narrow_key_mode(key_path, notes)
        if _key_spec_of(key) != leaf.csr.key:
            notes.append(
                f"the existing key is {_key_spec_of(key)}, {leaf.csr.source} asks {leaf.csr.key}; kept "
                f"(delete {key_path.name} to have a new one made)"
            )
    cert: x509.Certificate | None = None
    if os.path.lexists(cert_path):
        try:
            cert = _load_certificate(cert_path)
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
        run.files.write(key_path, _private_key_pem(key), secret=True)
    new_cert = _build_certificate(
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
    run.files.write(cert_path, _cert_pem(new_cert), secret=False)


def _leaf_staleness(
    run: _Run,
    ca: _AuthorityState,
    leaf: LeafInputs,
    cert: x509.Certificate,
    key: SigningKey | None,
    wanted_not_after: datetime,
    notes: list[str],
) -> list[str]:
    """Why an existing leaf must be signed again (empty: it stays byte-identical)."""
    reasons: list[str] = []
    cert_pem = _cert_pem(cert)
    info = parse_certificate(cert_pem)
    if ca.fresh or ca.pem is None:
        reasons.append("its CA is new")
    elif (why := verify_issued_by(cert_pem, ca.pem)) is not None:
        reasons.append(f"not signed by the current CA: {why}")
    if key is None:
        return [*reasons, "private key missing: a new one is made"]
    if _spki(cert) != _spki(key):
        reasons.append(f"does not match {leaf.stem}-key.pem")
    if cert.subject != leaf.csr.subject():
        reasons.append(
            f"subject {cert.subject.rfc4514_string()!r} differs from {leaf.csr.subject().rfc4514_string()!r}"
        )
    wanted_hosts = [_normalized_host(h) for h in leaf.csr.hosts]
    if (san_reason := _san_differences(info.san_ips + info.san_dns, wanted_hosts)) is not None:
        reasons.append(san_reason)
    if set(info.key_usages) != set(leaf.profile.key_usage_fields) or _ext_key_usage_oids(cert) != set(
        leaf.profile.ext_key_usage_oids
    ):
        reasons.append(f"key usages differ from profile {leaf.profile_name!r}")
    if info.not_after > ca.not_after:
        reasons.append(f"outlives its CA (notAfter {info.not_after.isoformat()} > CA's {ca.not_after.isoformat()})")
    elif info.remaining(run.now) < run.renewal_window:
        if wanted_not_after > info.not_after:
            reasons.append(
                f"expires {info.not_after.isoformat()}, within the renewal window of {run.renewal_window.days} days"
            )
        else:
            # Re-issuing would not extend it (the CA ends first); doing so on every run would break idempotency.
            notes.append(f"expires {info.not_after.isoformat()} with its CA; only a new CA (replace_ca) extends it")
    return reasons


def _ensure_service_account(run: _Run, directory: Path) -> None:
    """sa-key.pem signs service-account tokens, sa.pem verifies them (kube-apiserver >= 1.20 needs both)."""
    public_path, key_path = directory / "sa.pem", directory / "sa-key.pem"
    paths = (public_path, key_path)
    notes: list[str] = []
    if os.path.lexists(key_path):
        key = _load_private_key(key_path)
        run.files.narrow_key_mode(key_path, notes)
        wanted = _public_key_pem(key)
        current = public_path.read_bytes() if os.path.lexists(public_path) else None
        if current == wanted:
            run.plan.items.append(PlanItem(KUBERNETES, "sa", Action.REUSE, (), tuple(notes), paths))
            return
        # The private key is the authority; the public half is derived from it and safe to rewrite.
        reason = "sa.pem missing" if current is None else "sa.pem does not match sa-key.pem"
        run.plan.items.append(
            PlanItem(KUBERNETES, "sa", Action.REISSUE, (reason + ": rewritten from the key",), tuple(notes), paths)
        )
        run.files.write(public_path, wanted, secret=False)
        return
    if os.path.lexists(public_path):
        raise PkiError(
            f"{public_path} exists without {key_path.name}: a new pair would invalidate every service-account "
            f"token signed so far. Restore {key_path.name}, or remove {public_path.name} to have a new pair made"
        )
    run.plan.items.append(PlanItem(KUBERNETES, "sa", Action.CREATE, ("no service-account key pair",), (), paths))
    if run.files.apply:
        key = run.new_key(KeySpec("rsa", 2048))
        run.files.write(key_path, _private_key_pem(key), secret=True)
        run.files.write(public_path, _public_key_pem(key), secret=False, durable=True)


def _ensure_json_inputs(run: _Run, inputs: AuthorityInputs, directory: Path) -> None:
    for name, text in inputs.json_files().items():
        path = directory / name
        data = text.encode("utf-8")
        current = path.read_bytes() if path.is_file() else None
        if current == data:
            run.plan.items.append(PlanItem(inputs.name, name, Action.REUSE, paths=(path,)))
            continue
        reason = "missing" if current is None else "differs from the effective input (generated file; edit inputs_dir)"
        run.plan.items.append(PlanItem(inputs.name, name, Action.WRITE, (reason,), paths=(path,)))
        run.files.write(path, data, secret=False)


def _replace_set(replace_ca: bool | Iterable[str]) -> frozenset[str]:
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


def _run_pki(
    cluster: Cluster,
    pki_dir: Path,
    *,
    apply: bool,
    inputs_dir: Path | None,
    replace_ca: bool | Iterable[str],
    ca_expiry: timedelta | None,
    renewal_window: timedelta,
    now: datetime | None,
    key_factory: KeyFactory | None,
) -> PkiPlan:
    if now is not None and now.tzinfo is None:
        raise PkiError("now must be timezone-aware")
    # X.509 times have whole seconds; truncating keeps computed and parsed times comparable.
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    etcd_inputs, kubernetes_inputs = desired_inputs(cluster, inputs_dir=inputs_dir, ca_expiry=ca_expiry)
    plan = PkiPlan(pki_dir=pki_dir, applied=apply)
    run = _Run(plan, _Files(plan), moment, renewal_window, _replace_set(replace_ca), key_factory)
    run.files.ensure_directory(pki_dir)
    with _exclusive(pki_dir, apply):
        for inputs in (etcd_inputs, kubernetes_inputs):
            plan.notes += [f"{inputs.name}: {note}" for note in inputs.notes]
            directory = pki_dir / inputs.name
            run.files.ensure_directory(directory)
            ca = _ensure_ca(run, inputs, directory)
            for leaf in inputs.leaves:
                _ensure_leaf(run, ca, leaf, directory)
            if inputs.name == KUBERNETES:
                _ensure_service_account(run, directory)
            _ensure_json_inputs(run, inputs, directory)
    return plan


@contextlib.contextmanager
def _exclusive(pki_dir: Path, apply: bool) -> Iterator[None]:
    """One applying run at a time: two racing first runs would each make a CA and sign with it."""
    if not apply:
        yield
        return
    lock_path = pki_dir / ".lock"
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, KEY_FILE_MODE)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PkiError(f"{pki_dir} is in use by another kubeproof run (it holds {lock_path})") from None
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def plan_pki(
    cluster: Cluster,
    pki_dir: Path,
    *,
    inputs_dir: Path | None = None,
    replace_ca: bool | Iterable[str] = False,
    ca_expiry: timedelta | None = None,
    renewal_window: timedelta = DEFAULT_RENEWAL_WINDOW,
    now: datetime | None = None,
) -> PkiPlan:
    """What :func:`ensure_pki` would do, without writing anything or making keys."""
    return _run_pki(
        cluster,
        pki_dir,
        apply=False,
        inputs_dir=inputs_dir,
        replace_ca=replace_ca,
        ca_expiry=ca_expiry,
        renewal_window=renewal_window,
        now=now,
        key_factory=None,
    )


def ensure_pki(
    cluster: Cluster,
    pki_dir: Path,
    *,
    inputs_dir: Path | None = None,
    replace_ca: bool | Iterable[str] = False,
    ca_expiry: timedelta | None = None,
    renewal_window: timedelta = DEFAULT_RENEWAL_WINDOW,
    now: datetime | None = None,
    key_factory: KeyFactory = generate_private_key,
) -> PkiPlan:
    """Make ``pki_dir/{etcd,kubernetes}`` hold the cluster's certificates; return what was done and why.

    ``replace_ca``: True, or the authorities ("etcd", "kubernetes") whose CA to make anew; the old
    files are kept as ``ca.pem.replaced-<time>``. ``ca_expiry`` overrides ca-csr.json's
    ``ca.expiry`` (default :data:`DEFAULT_CA_EXPIRY`). ``key_factory`` makes new private keys.
    """
    return _run_pki(
        cluster,
        pki_dir,
        apply=True,
        inputs_dir=inputs_dir,
        replace_ca=replace_ca,
        ca_expiry=ca_expiry,
        renewal_window=renewal_window,
        now=now,
        key_factory=key_factory,
    )


# ----------------------------------------------------------------------------- remote layout


@dataclass(frozen=True, repr=False)
class RemoteFile:
    """A file to put on a host. ``data`` of a secret never appears in repr or str."""

    path: str
    data: bytes
    mode: int
    secret: bool

    def __repr__(self) -> str:
        return f"RemoteFile(path={self.path!r}, mode=0o{self.mode:o}, secret={self.secret}, size={len(self.data)})"

    __str__ = __repr__


def _read_pki_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PkiError(f"{path} is missing: run the PKI step (ensure_pki) first") from None


def host_pki_files(pki_dir: Path, cluster: Cluster, host: HostSpec) -> list[RemoteFile]:
    """The certificates and keys ``host`` gets, at the guide's paths.

    * Every host gets the etcd client material ``/opt/etcd/ssl/{ca.pem,server.pem,server-key.pem}``:
      etcd members serve and peer with it, kube-apiserver (masters) and flanneld (workers) reach etcd
      with it, as the guide's scripts do.
    * The etcd ``ca-key.pem`` goes to the first master only. No daemon needs it; the guide keeps it
      on master01 (where it made it and from where it re-signs server.pem when a member is added),
      and PKI-E-01 looks for it there. Its ``scp -r /opt/etcd`` also hands it to every other member,
      which lets any node mint an etcd client certificate, i.e. read and write all cluster state:
      we do not follow that step.
    * Masters get ``/opt/kubernetes/ssl/{ca.pem,ca-key.pem,apiserver*,admin*,sa.pem,sa-key.pem}``:
      the Kubernetes ``ca-key.pem`` on every master because kube-controller-manager signs kubelet
      CSRs with it (``--cluster-signing-key-file``) and any master may hold its leader lease.
    * Workers get ``/opt/kubernetes/ssl/{ca.pem,kube-proxy.pem,kube-proxy-key.pem}``.

    Keys are 0600 and marked secret, certificates and public keys 0644.
    """
    if all(h.name != host.name for h in cluster.hosts):
        raise PkiError(f"host {host.name!r} is not in cluster {cluster.name!r}")
    etcd_dir, kubernetes_dir = pki_dir / ETCD, pki_dir / KUBERNETES
    first_master = cluster.masters[0].name if cluster.masters else None
    # (remote path, local file, secret)
    wanted: list[tuple[str, Path, bool]] = [
        (f"{REMOTE_ETCD_SSL}/ca.pem", etcd_dir / "ca.pem", False),
        (f"{REMOTE_ETCD_SSL}/server.pem", etcd_dir / "server.pem", False),
        (f"{REMOTE_ETCD_SSL}/server-key.pem", etcd_dir / "server-key.pem", True),
    ]
    if host.name == first_master:
        wanted.append((f"{REMOTE_ETCD_SSL}/ca-key.pem", etcd_dir / "ca-key.pem", True))
    if host.has_role("master") or host.has_role("node"):
        wanted.append((f"{REMOTE_KUBERNETES_SSL}/ca.pem", kubernetes_dir / "ca.pem", False))
    if host.has_role("master"):
        for stem in ("apiserver", "admin"):
            wanted.append((f"{REMOTE_KUBERNETES_SSL}/{stem}.pem", kubernetes_dir / f"{stem}.pem", False))
            wanted.append((f"{REMOTE_KUBERNETES_SSL}/{stem}-key.pem", kubernetes_dir / f"{stem}-key.pem", True))
        wanted.append((f"{REMOTE_KUBERNETES_SSL}/ca-key.pem", kubernetes_dir / "ca-key.pem", True))
        wanted.append((f"{REMOTE_KUBERNETES_SSL}/sa.pem", kubernetes_dir / "sa.pem", False))
        wanted.append((f"{REMOTE_KUBERNETES_SSL}/sa-key.pem", kubernetes_dir / "sa-key.pem", True))
    if host.has_role("node"):
        wanted.append((f"{REMOTE_KUBERNETES_SSL}/kube-proxy.pem", kubernetes_dir / "kube-proxy.pem", False))
        wanted.append((f"{REMOTE_KUBERNETES_SSL}/kube-proxy-key.pem", kubernetes_dir / "kube-proxy-key.pem", True))

    files: dict[str, RemoteFile] = {}
    for remote_path, local_path, secret in wanted:
        mode = KEY_FILE_MODE if secret else CERT_FILE_MODE
        files[remote_path] = RemoteFile(remote_path, _read_pki_file(local_path), mode, secret)
    _check_shippable(files, host)
    return [files[path] for path in sorted(files)]


# Each shipped leaf certificate, its key and its CA certificate (remote paths).
_SHIPPED_PAIRS = (
    (f"{REMOTE_ETCD_SSL}/server.pem", f"{REMOTE_ETCD_SSL}/server-key.pem", f"{REMOTE_ETCD_SSL}/ca.pem"),
    *(
        (
            f"{REMOTE_KUBERNETES_SSL}/{stem}.pem",
            f"{REMOTE_KUBERNETES_SSL}/{stem}-key.pem",
            f"{REMOTE_KUBERNETES_SSL}/ca.pem",
        )
        for stem in ("apiserver", "admin", "kube-proxy")
    ),
)


def _check_shippable(files: Mapping[str, RemoteFile], host: HostSpec) -> None:
    """Refuse to ship a PKI that would not work on the host: a broken chain, a key that does not
    match its certificate, or a serving certificate that does not name the host (the PKI step was
    not re-run after the cluster changed)."""
    for cert_path, key_path, ca_path in _SHIPPED_PAIRS:
        if cert_path not in files:
            continue
        if (why := verify_issued_by(files[cert_path].data, files[ca_path].data)) is not None:
            raise PkiError(f"{cert_path} for {host.name}: {why}; re-run the PKI step (ensure_pki)")
        key = _parse_private_key(files[key_path].data, key_path)
        if _spki(key) != parse_certificate(files[cert_path].data).spki_sha256:
            raise PkiError(f"{key_path} for {host.name} does not match {cert_path}; re-run the PKI step (ensure_pki)")
    address = _normalized_host(host.address)
    for role, remote_path in (
        ("etcd", f"{REMOTE_ETCD_SSL}/server.pem"),
        ("master", f"{REMOTE_KUBERNETES_SSL}/apiserver.pem"),
    ):
        if not host.has_role(role) or remote_path not in files:
            continue
        info = parse_certificate(files[remote_path].data)
        if address not in info.san_ips + info.san_dns:
            raise PkiError(
                f"{remote_path} for {host.name} lacks its address {address} in its SANs: "
                "re-run the PKI step (ensure_pki)"
            )
