"""The PKI step's errors: each message names the file concerned and says what to do about it."""

from __future__ import annotations

__all__ = ["PkiError", "PkiInputError"]


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
