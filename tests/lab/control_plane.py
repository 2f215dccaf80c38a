"""Restarting the control plane in lab tests.

kube-apiserver stops gracefully in about a minute: its HTTP server waits out the open watches of the
kubelets and controllers. Seen on the lab with v1.19 ("Stopped listening" at 09:41:26, the exit at
09:42:26) and v1.34 ("Stopping" at 12:40:36, "Deactivated" at 12:41:43). What the lab tests change
(flags, certificates) is read at start, so the old process is killed instead of waited for.
"""

from __future__ import annotations

import shlex


def restart_at_once(*units: str) -> str:
    """A shell command: the units SIGKILLed, then restarted (a failed unit is reset first)."""
    return _killed_then(("reset-failed", "restart"), units)


def stop_at_once(*units: str) -> str:
    """A shell command: the units SIGKILLed, then stopped (which cancels the restart systemd schedules)."""
    return _killed_then(("stop",), units)


def _killed_then(actions: tuple[str, ...], units: tuple[str, ...]) -> str:
    names = list(units or ("kube-apiserver",))
    steps = [["systemctl", "kill", "--signal=SIGKILL", "--", *names]]
    steps += [["systemctl", action, "--", *names] for action in actions]
    return "; ".join(shlex.join(step) for step in steps)
