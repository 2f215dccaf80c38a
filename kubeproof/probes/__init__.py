"""Probes: named functions that turn facts (and API reads) into the value a catalogue row compares.

A probe returns a value (or an Observation); it raises ProbeError when it could not look, and
NotApplicable when the check does not apply. It never asserts: that is the comparator's job.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterable
from typing import Any

from kubeproof.checks import Check, Observation
from kubeproof.session import HostContext

# A probe takes its host context and the row's argument ("" when the row names none):
# `probe: file_mode(/opt/etcd/ssl/server-key.pem)` calls file_mode with that path.
ProbeFunction = Callable[[HostContext, str], Any]
PROBES: dict[str, ProbeFunction] = {}

# A row's seen lines (what was checked, with the values) are kept short: the evidence of a pass,
# not a dump of the host. Beyond the cap the rest is counted.
SEEN_LIMIT = 40

_PROBE_MODULES = (
    "env",
    "pki",
    "etcd",
    "etcd_exposure",
    "network",
    "cross_ping",
    "master",
    "node",
    "smoke",
    "security",
)


def probe(name: str) -> Callable[[ProbeFunction], ProbeFunction]:
    def register(function: ProbeFunction) -> ProbeFunction:
        existing = PROBES.get(name)
        # the same function imported again (pytester drops modules between in-process runs) is fine
        if existing is not None and (existing.__module__, existing.__qualname__) != (
            function.__module__,
            function.__qualname__,
        ):
            raise ValueError(f"probe {name!r} registered twice")
        PROBES[name] = function
        return function

    return register


def capped(lines: Iterable[str], limit: int = SEEN_LIMIT) -> tuple[str, ...]:
    """At most `limit` seen lines, the last saying how many more there were."""
    items = [line for line in lines if line]
    if len(items) <= limit:
        return tuple(items)
    return (*items[: limit - 1], f"... and {len(items) - limit + 1} more")


def load_probes() -> dict[str, ProbeFunction]:
    for module in _PROBE_MODULES:
        try:
            importlib.import_module(f"kubeproof.probes.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"kubeproof.probes.{module}":
                raise
    return PROBES


def split_probe_reference(reference: str) -> tuple[str, str]:
    name, paren, rest = reference.partition("(")
    if paren and not rest.endswith(")"):
        raise ValueError(f"malformed probe reference {reference!r}")
    return name.strip(), rest[:-1].strip() if paren else ""


def observe(check: Check, context: HostContext) -> Observation:
    name, argument = split_probe_reference(check.probe)
    # a row about a host that does not answer errors with that, whatever its probe reads: one that
    # reads only the API would report what the apiserver still believes about the host
    context.require_reachable()
    result = PROBES[name](context, argument)
    if isinstance(result, Observation):
        return dataclasses.replace(result, seen=capped(result.seen))
    return context.observation(result)
