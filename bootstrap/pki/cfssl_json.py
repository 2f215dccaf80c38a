"""Reading cfssl's JSON (ca-config.json, ``*-csr.json``) into the :mod:`.cfssl` model.

Strict where cfssl is lenient: an unknown key, a duplicate key or an unknown usage is an error
naming the file (and line:column for JSON syntax), since a typo would otherwise change a
certificate silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from kubeproof.bootstrap.pki.cfssl import (
    EXT_KEY_USAGES,
    KEY_USAGES,
    CsrSpec,
    KeySpec,
    NameEntry,
    SigningConfig,
    SigningProfile,
    parse_go_duration,
)
from kubeproof.bootstrap.pki.errors import PkiInputError
from kubeproof.inventory import canonical_address, is_ip_address

__all__ = ["load_ca_config", "load_csr_json", "parse_ca_config", "parse_csr_json"]


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
    if is_ip_address(host):
        return canonical_address(host)
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
