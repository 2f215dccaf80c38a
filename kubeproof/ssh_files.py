"""The ssh_config and known_hosts files, each parsed once per process per version of the file.

paramiko parses both again for every connection, and its known_hosts loader looks every line up
against the lines before it. At 50 hosts (a known_hosts of 150 lines) that was 43 ms of the
client's CPU per connection for known_hosts and 10 ms for the ssh_config, under the GIL, so 50
parallel connections took 2.5 s of CPU in one process (profiled on the scale lab). A file is
parsed again when its size or mtime changes (accept-new appends to known_hosts).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import paramiko

T = TypeVar("T")

_lock = threading.Lock()
_parsed: dict[tuple[str, str], tuple[tuple[int, int], Any]] = {}  # (kind, path) -> (version, parsed)


def _cached(kind: str, path: Path, parse: Callable[[str], T]) -> T:
    """``parse(path)``, again only when the file's size or mtime changed (an OSError if unreadable)."""
    stat = path.stat()
    version = (stat.st_size, stat.st_mtime_ns)
    with _lock:
        cached = _parsed.get((kind, str(path)))
        if cached is not None and cached[0] == version:
            return cast(T, cached[1])
    parsed = parse(str(path))
    with _lock:
        _parsed[(kind, str(path))] = (version, parsed)
    return parsed


def ssh_config(path: str | Path) -> paramiko.SSHConfig:
    """The parsed ssh_config (an OSError if it cannot be read, as paramiko's own parse raises)."""
    return _cached("ssh_config", Path(path).expanduser(), paramiko.SSHConfig.from_path)


def ssh_options(path: str | Path, host: str) -> dict[str, Any]:
    """The options `ssh -F path host` would use."""
    return dict(ssh_config(path).lookup(host))


def known_host_keys(path: Path) -> paramiko.HostKeys:
    """The parsed known_hosts file (shared: read it, never add to it)."""
    return _cached("known_hosts", path, paramiko.HostKeys)


def add_known_keys(client: paramiko.SSHClient, files: list[Path], hostname: str, port: int) -> None:
    """Give the client the keys these files know for the host, under the name paramiko looks up
    ("host", or "[host]:port" off port 22): what client.load_host_keys would give it for this host
    (of two files with a key of the same type, the first one's, as there)."""
    name = hostname if port == 22 else f"[{hostname}]:{port}"
    target = client.get_host_keys()
    for path in files:
        known = known_host_keys(path).lookup(name)
        if known is not None:
            have = target.lookup(name)
            for key_type, key in known.items():
                if have is None or key_type not in have:
                    target.add(name, key_type, key)
