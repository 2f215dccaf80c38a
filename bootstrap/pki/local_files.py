"""The local state directory's file effects: atomic writes with final modes, narrowing, the run lock.

Private keys are created 0600 through ``os.open`` (never chmod-ed after the fact) and directories
0700, so a key is never readable by others, not even for an instant.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from kubeproof.bootstrap.pki.errors import PkiError
from kubeproof.bootstrap.pki.plan import PkiPlan

__all__ = ["CERT_FILE_MODE", "DIR_MODE", "KEY_FILE_MODE", "PkiFiles", "aside_path", "exclusive_lock"]

KEY_FILE_MODE = 0o600
CERT_FILE_MODE = 0o644
DIR_MODE = 0o700


class PkiFiles:
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


def aside_path(path: Path, stamp: str) -> Path:
    """Where a replaced CA file is kept (never deleted: we did not necessarily create it)."""
    target = path.with_name(f"{path.name}.replaced-{stamp}")
    counter = 1
    while os.path.lexists(target):
        counter += 1
        target = path.with_name(f"{path.name}.replaced-{stamp}-{counter}")
    return target


@contextlib.contextmanager
def exclusive_lock(pki_dir: Path, apply: bool) -> Iterator[None]:
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
