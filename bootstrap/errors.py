"""The installer's errors: every module raises them, so they depend on nothing else of the installer."""

from __future__ import annotations


class BootstrapError(Exception):
    """Stops the run. The message is one line: what, where, and how to proceed."""


class ConflictError(BootstrapError):
    """A target path holds something kubeproof did not create; it is left alone."""


class ChangeFailed(BootstrapError):
    """A change could not be made (its command failed on the host); the message carries the command's stderr."""
