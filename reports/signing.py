"""The evidence bundle's signature: Ed25519 over MANIFEST.json's bytes, and its verification.

`sign_manifest` writes, beside the manifest, MANIFEST.json.sig (the signature, base64, one line)
and MANIFEST.json.pub (the signer's public key, PEM). The private key stays outside the bundle:
the user's (`--signing-key FILE`, PEM PKCS#8 or OpenSSH, not readable by others) or one kubeproof
generates once in $KUBEPROOF_STATE/keys/evidence-ed25519 (0600, with a .pub beside it).

`verify_bundle` checks every file against the manifest (naming each file added, removed or
changed), SHA256SUMS against the manifest, and the signature: against the key the auditor
holds (`--pubkey`), or, without one, the key the bundle carries, which proves the bundle is
whole but not who made it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kubeproof.reports.evidence import (
    MANIFEST_FILE,
    PUBLIC_KEY_FILE,
    SHA256SUMS_FILE,
    SIGNATURE_FILE,
    UNSEALED,
    bundle_files,
    check_sha256sums,
    inside,
    sha256_of,
)

DEFAULT_KEY_NAME = "evidence-ed25519"


class SigningError(ValueError):
    """A key that cannot be used (missing, wrong type, too open, inside the bundle)."""


def default_key_path() -> Path:
    """$KUBEPROOF_STATE/keys/evidence-ed25519 (KUBEPROOF_STATE defaults to ./.kubeproof)."""
    state = os.environ.get("KUBEPROOF_STATE")
    base = Path(state).absolute() if state else Path.cwd() / ".kubeproof"
    return base / "keys" / DEFAULT_KEY_NAME


def public_key_fingerprint(key: Ed25519PublicKey) -> str:
    """ "ed25519:sha256:<hex>" of the raw 32-byte public key: what the report and verify print."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:sha256:" + hashlib.sha256(raw).hexdigest()


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey = field(repr=False)
    path: Path
    generated: bool = False

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def fingerprint(self) -> str:
        return public_key_fingerprint(self.public)

    @property
    def public_path(self) -> Path:
        return self.path.with_name(self.path.name + ".pub")


def load_signing_key(path: Path) -> SigningKey:
    """An Ed25519 private key from a file only its owner can read."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise SigningError(f"{path}: no such file") from None
    except OSError as exc:
        raise SigningError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningError(f"{path}: mode {stat.S_IMODE(mode):04o} lets others read the private key; chmod 600 it")
    key: Any
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SigningError(f"{path}: the key is encrypted; give an unencrypted Ed25519 key") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningError(f"{path}: not a private key kubeproof can read ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: a {type(key).__name__.removeprefix('_')}, not an Ed25519 private key")
    return SigningKey(key, path)


def _write(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def ensure_signing_key(path: Path | None = None) -> SigningKey:
    """The key at `path` (default `default_key_path()`); generated there (0600) when absent."""
    path = Path(path).expanduser().absolute() if path is not None else default_key_path()
    if path.exists():
        return load_signing_key(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(path, pem, 0o600)
    key = SigningKey(private, path, generated=True)
    _write(key.public_path, _public_pem(key.public), 0o644)
    return key


def check_outside(key: SigningKey, report_dir: Path) -> None:
    """The private key must not end up in the bundle it signs."""
    if key.path.resolve().is_relative_to(Path(report_dir).resolve()):
        raise SigningError(f"{key.path}: the signing key must live outside the report directory {report_dir}")


def sign_manifest(report_dir: Path, key: SigningKey) -> Path:
    """Sign MANIFEST.json as it is on disk; write MANIFEST.json.sig and .pub; return the .sig path."""
    report_dir = Path(report_dir)
    check_outside(key, report_dir)
    manifest = (report_dir / MANIFEST_FILE).read_bytes()
    signature = key.private.sign(manifest)
    (report_dir / PUBLIC_KEY_FILE).write_bytes(_public_pem(key.public))
    signature_path = report_dir / SIGNATURE_FILE
    signature_path.write_text(base64.b64encode(signature).decode("ascii") + "\n", encoding="ascii")
    return signature_path


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key: PEM (as MANIFEST.json.pub / the generated .pub) or OpenSSH one-line."""
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SigningError(f"{path}: no such file") from None
    except OSError as exc:
        raise SigningError(f"{path}: cannot read: {exc.strerror or exc}") from None
    key: Any
    try:
        if data.startswith(b"ssh-ed25519 "):
            key = serialization.load_ssh_public_key(data)
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningError(f"{path}: not a public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{path}: not an Ed25519 public key")
    return key


# ----------------------------------------------------------------------------- verification


@dataclass
class BundleCheck:
    """What `kubeproof evidence verify` found; `ok` only when nothing is wrong."""

    directory: Path
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # manifest/SHA256SUMS/signature trouble
    signed_by: str = ""  # fingerprint of the key the signature verified with
    warnings: list[str] = field(default_factory=list)
    files: int = 0

    @property
    def ok(self) -> bool:
        return not (self.added or self.removed or self.changed or self.problems)

    def lines(self) -> list[str]:
        lines = [f"{path}: added (not in {MANIFEST_FILE})" for path in self.added]
        lines += [f"{path}: removed (listed in {MANIFEST_FILE}, missing)" for path in self.removed]
        lines += [f"{path}: changed (sha256 differs from {MANIFEST_FILE})" for path in self.changed]
        return lines + self.problems


def _manifest_entries(report_dir: Path, check: BundleCheck) -> tuple[bytes, dict[str, dict[str, Any]]] | None:
    try:
        raw = (report_dir / MANIFEST_FILE).read_bytes()
    except FileNotFoundError:
        check.problems.append(f"{MANIFEST_FILE}: missing")
        return None
    try:
        document = json.loads(raw)
    except ValueError as exc:
        check.problems.append(f"{MANIFEST_FILE}: not JSON ({exc})")
        return raw, {}
    entries = document.get("files") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        check.problems.append(f"{MANIFEST_FILE}: no 'files' list")
        return raw, {}
    listed: dict[str, dict[str, Any]] = {}
    for entry in entries:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or not inside(path) or path in UNSEALED:
            check.problems.append(f"{MANIFEST_FILE}: bad entry {entry!r}")
        elif path in listed:
            check.problems.append(f"{MANIFEST_FILE}: {path} listed twice")
        else:
            listed[path] = entry
    return raw, listed


def _check_signature(report_dir: Path, manifest: bytes, pubkey: Path | None, check: BundleCheck) -> None:
    try:
        text = (report_dir / SIGNATURE_FILE).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        check.problems.append(f"{SIGNATURE_FILE}: missing: the manifest is not signed")
        return
    except (OSError, UnicodeDecodeError) as exc:
        check.problems.append(f"{SIGNATURE_FILE}: unreadable ({exc})")
        return
    try:
        signature = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        check.problems.append(f"{SIGNATURE_FILE}: not base64")
        return
    embedded: Ed25519PublicKey | None = None
    try:
        embedded = load_public_key(report_dir / PUBLIC_KEY_FILE)
    except SigningError as exc:
        if pubkey is None:
            check.problems.append(f"{PUBLIC_KEY_FILE}: {exc}; give --pubkey to check the signature")
            return
    if pubkey is not None:
        key = load_public_key(pubkey)
        source = f"--pubkey {pubkey}"
        if embedded is not None and public_key_fingerprint(embedded) != public_key_fingerprint(key):
            check.warnings.append(
                f"{PUBLIC_KEY_FILE} holds another key ({public_key_fingerprint(embedded)}) than --pubkey"
            )
    else:
        assert embedded is not None
        key = embedded
        source = f"the bundle's own {PUBLIC_KEY_FILE}"
        check.warnings.append(
            f"checked against the public key inside the bundle: this proves the bundle is whole, not who signed it;"
            f" give --pubkey with the signer's key ({public_key_fingerprint(key)}) to prove its origin"
        )
    try:
        key.verify(signature, manifest)
    except InvalidSignature:
        check.problems.append(
            f"{MANIFEST_FILE}: the signature does not verify with {source} ({public_key_fingerprint(key)}):"
            f" the manifest or {SIGNATURE_FILE} was changed after signing, or another key signed it"
        )
        return
    check.signed_by = public_key_fingerprint(key)


def verify_bundle(report_dir: Path, pubkey: Path | None = None) -> BundleCheck:
    """Every hash, every file, SHA256SUMS and the signature of a report directory.

    Raises SigningError for bad input (no such directory, an unreadable --pubkey); tampering is
    reported in the returned BundleCheck.
    """
    report_dir = Path(report_dir)
    if not report_dir.is_dir():
        raise SigningError(f"{report_dir}: no such directory")
    if pubkey is not None:
        load_public_key(pubkey)  # bad input is an error, not a failed verification
    check = BundleCheck(report_dir)
    loaded = _manifest_entries(report_dir, check)
    if loaded is None:
        return check
    manifest, listed = loaded
    present = [path for path in bundle_files(report_dir) if path not in UNSEALED]
    check.files = len(listed)
    check.added = [path for path in present if path not in listed]
    for path, entry in listed.items():
        file = report_dir / path
        if not file.is_file():
            check.removed.append(path)
        elif file.stat().st_size != entry.get("size") or sha256_of(file) != entry.get("sha256"):
            check.changed.append(path)
    if listed and SHA256SUMS_FILE not in (*check.removed, *check.changed):  # else already named above
        check.problems += check_sha256sums(report_dir, listed)
    _check_signature(report_dir, manifest, pubkey, check)
    return check
