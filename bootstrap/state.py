"""The installer's local state: <state>/pki, <state>/secrets, <state>/runs, <state>/cache.

The bootstrap token is made once (secrets.token_hex(16)), kept in <state>/secrets/bootstrap-token
(mode 0600, directory 0700) and reused by every later run; it is registered with kubeproof.redact
the moment it is known, so no log line can carry it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kubeproof.filelock import holder_lock
from kubeproof.redact import redact, register_secret

TOKEN_PATTERN = re.compile(r"^[0-9a-f]{32}$")


def default_state_dir() -> Path:
    configured = os.environ.get("KUBEPROOF_STATE")
    return Path(configured).absolute() if configured else Path.cwd() / ".kubeproof"


def write_private(path: Path, data: bytes) -> None:
    """Atomic write of a secret: created 0600 through os.open, then renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def token_file(self) -> Path:
        return self.secrets / "bootstrap-token"

    def read_token(self) -> str | None:
        try:
            value = self.token_file.read_text().strip()
        except FileNotFoundError:
            return None
        if not TOKEN_PATTERN.match(value):
            raise ValueError(f"{self.token_file} does not hold a 32-hex-digit token: fix or remove it")
        register_secret(value)
        return value

    def save_token(self, token: str) -> None:
        if not TOKEN_PATTERN.match(token):
            raise ValueError("a bootstrap token is 32 lowercase hex digits")
        register_secret(token)
        self.secrets.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.secrets, 0o700)
        write_private(self.token_file, (token + "\n").encode())


@contextmanager
def apply_lock(state: StateDir, reporter: Reporter) -> Iterator[None]:
    """One `apply` per state directory at a time: a second one waits instead of interleaving."""

    def waiting(holder: str) -> None:
        reporter.line(f"waiting for another apply on {state.root} ({holder}) to finish")

    with holder_lock(state.root / "apply.lock", waiting):
        yield


def new_token() -> str:
    token = secrets.token_hex(16)
    register_secret(token)
    return token


class JsonCache:
    """A JSON document kept in <state>/cache, read at start and written once at the end of a run
    (atomically, and only when something changed); ``path`` None keeps it in memory."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, Any] = {}
        if path is not None:
            try:
                loaded = json.loads(path.read_text())
            except (OSError, ValueError):
                loaded = {}
            self._entries = loaded if isinstance(loaded, dict) else {}
        self._dirty = False

    def changed(self) -> None:
        self._dirty = True

    def save(self) -> None:
        with self._lock:
            if not self._dirty or self.path is None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(self.path.name + ".tmp")
            temporary.write_text(json.dumps(self._entries, indent=1, sort_keys=True))
            os.replace(temporary, self.path)
            self._dirty = False


class Sha256Cache(JsonCache):
    """sha256 of local artifacts, keyed by (path, size, mtime): a re-apply does not re-read 700 MB."""

    def sha256(self, file: Path) -> str:
        stat = file.stat()
        key = str(file.resolve())
        with self._lock:
            entry = self._entries.get(key)
            if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
                return str(entry[2])
        digest = hashlib.sha256()
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        value = digest.hexdigest()
        with self._lock:
            self._entries[key] = [stat.st_size, stat.st_mtime_ns, value]
            self.changed()
        return value


class Reporter:
    """Progress on stdout and everything (masked) in <state>/runs/<UTC timestamp>-<command>.log."""

    def __init__(self, runs_dir: Path | None, command: str, stream: TextIO | None = None, quiet: bool = False):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self._lock = threading.Lock()
        self.log_path: Path | None = None
        self._log: TextIO | None = None
        if runs_dir is not None:
            runs_dir.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            self.log_path = runs_dir / f"{stamp}-{command}.log"
            self._log = self.log_path.open("w", encoding="utf-8")

    def _stamp(self) -> str:
        return datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]

    def line(self, text: str, *, always: bool = False) -> None:
        """A line for the operator (and the log); ``always``: shown even with --quiet (summaries, errors)."""
        masked = redact(text)
        with self._lock:
            if always or not self.quiet:
                print(masked, file=self.stream, flush=True)
            if self._log:
                self._log.write(f"{self._stamp()} {masked}\n")
                self._log.flush()

    def debug(self, text: str) -> None:
        """Only in the log."""
        with self._lock:
            if self._log:
                self._log.write(f"{self._stamp()}   {redact(text)}\n")
                self._log.flush()

    def close(self) -> None:
        with self._lock:
            if self._log:
                self._log.close()
                self._log = None
