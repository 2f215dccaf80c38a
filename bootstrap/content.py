"""The bytes of a file the installer places: rendered text, or a release binary read only when copied.

Artifacts make it, the renderers' callers wrap text in it and the engine writes it, so it depends on
nothing else of the installer.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


class Content:
    """The bytes of a file to place: rendered in memory, or a local file read only when copied."""

    def __init__(self, data: bytes | None = None, *, local: Path | None = None, sha256: str | None = None):
        if (data is None) == (local is None):
            raise ValueError("Content needs exactly one of data or local")
        self._data = data
        self.local = local
        self._sha256 = sha256

    @classmethod
    def text(cls, text: str) -> Content:
        return cls(text.encode("utf-8"))

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            if self._data is not None:
                self._sha256 = hashlib.sha256(self._data).hexdigest()
            else:
                assert self.local is not None
                digest = hashlib.sha256()
                with self.local.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
                self._sha256 = digest.hexdigest()
        return self._sha256

    @property
    def size(self) -> int:
        if self._data is not None:
            return len(self._data)
        assert self.local is not None
        return self.local.stat().st_size

    def read(self) -> bytes:
        if self._data is not None:
            return self._data
        assert self.local is not None
        return self.local.read_bytes()

    def __repr__(self) -> str:  # never the bytes: they may be a key
        where = str(self.local) if self.local else f"{len(self._data or b'')} bytes"
        return f"Content({where})"
