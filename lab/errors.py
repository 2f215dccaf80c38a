"""The one error type the lab raises for conditions a user can fix."""

from __future__ import annotations


class LabError(Exception):
    """A problem the user can fix; the CLI prints its message as one line and exits with 2.

    Messages say what is wrong and what to do, e.g. "docker not found on PATH: install docker.io".
    """

    def __init__(self, message: str) -> None:
        # One line, always: the CLI contract is a single line on stderr, no traceback.
        super().__init__(" ".join(message.split()))

    @property
    def message(self) -> str:
        return str(self.args[0])
