"""Facts about files: contents of public files, modes, and fingerprints of secrets.

Secrets (private keys, token.csv, kubeconfigs with credentials) are never read back: the host
prints their mode and a fingerprint (openssl's public key, a sha256), never the bytes.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from kubeproof.facts import Fact, ParseError, Raw
from kubeproof.layout import is_secret_path


def absent(raw: Raw) -> bool:
    """True when a file fact's command failed because the path does not exist; any other failure
    is a ParseError (the probe could not look), never a silent "absent"."""
    if raw.rc == 0:
        return False
    if "No such file" in raw.stderr:
        return True
    raise ParseError(raw.stderr.strip() or f"exit {raw.rc}")


def require_path(path: str, test: str = "-e") -> str:
    """A shell prefix that fails with "No such file" (what `absent` looks for) when path is missing."""
    quoted = shlex.quote(path)
    return "test " + test + " " + quoted + " || { echo " + shlex.quote(path + ": No such file") + " >&2; exit 1; }; "


def _content_or_none(raw: Raw) -> str | None:
    return None if absent(raw) else raw.stdout


def file_text(path: str) -> Fact[str | None]:
    if is_secret_path(path):
        raise ValueError(f"{path} holds a secret; use file_sha256 or key_public_fingerprint")
    return Fact("file:" + path, "cat -- " + shlex.quote(path), _content_or_none)


@dataclass(frozen=True)
class FileStat:
    name: str
    mode: str  # octal, e.g. "600"
    owner: str
    group: str
    size: int

    @property
    def group_or_world_readable(self) -> bool:
        return bool(int(self.mode, 8) & 0o044)


def parse_find_stat(raw: Raw) -> dict[str, FileStat] | None:
    if absent(raw):
        return None
    entries: dict[str, FileStat] = {}
    for line in raw.stdout.splitlines():
        fields = line.split("\t")
        if len(fields) != 5:
            raise ParseError(f"unexpected find output line {line!r}")
        name, mode, owner, group, size = fields
        entries[name] = FileStat(name, mode, owner, group, int(size))
    return entries


def directory_stat(directory: str) -> Fact[dict[str, FileStat] | None]:
    """Every regular file directly in a directory: name, octal mode, owner, size.

    Symlinks are followed (-L): kubelet-client-current.pem is a link, and what matters is the
    mode of the key it points at, not the link's own 0777.
    """
    return Fact(
        "stat:" + directory,
        "find -L " + shlex.quote(directory) + " -maxdepth 1 -type f -printf '%f\\t%m\\t%u\\t%g\\t%s\\n'",
        parse_find_stat,
    )


def _sha256_or_none(raw: Raw) -> str | None:
    if absent(raw):
        return None
    value = raw.stdout.split()[0] if raw.stdout.split() else ""
    if len(value) != 64:
        raise ParseError(f"not a sha256: {raw.stdout.strip()[:80]!r}")
    return value


def file_sha256(path: str) -> Fact[str | None]:
    return Fact("sha256:" + path, "sha256sum -- " + shlex.quote(path), _sha256_or_none, requires=("sha256sum",))


def key_public_fingerprint(path: str) -> Fact[str | None]:
    """sha256 of the SubjectPublicKeyInfo DER of a private key, computed on the host."""
    quoted = shlex.quote(path)
    return Fact(
        "spki:" + path,
        require_path(path) + "openssl pkey -in " + quoted + " -pubout -outform DER | sha256sum",
        _sha256_or_none,
        requires=("openssl", "sha256sum"),
    )
