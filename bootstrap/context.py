"""What every phase sees during one run: the cluster, connections, local state, host profiles, options."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeproof.bootstrap.artifacts import Artifacts, BinaryInfo, binary_info, binary_version
from kubeproof.bootstrap.host_profile import HostProfile
from kubeproof.bootstrap.kubeapi import KubeApi
from kubeproof.bootstrap.remote_digests import RemoteDigests
from kubeproof.bootstrap.state import Reporter, Sha256Cache, StateDir
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.transport import Transport
from kubeproof.versions import Version


@dataclass
class RunContext:
    cluster: Cluster
    transport: Transport
    state: StateDir
    reporter: Reporter
    artifacts: Artifacts
    sha_cache: Sha256Cache
    apply: bool
    replace_ca: bool = False
    # where the PKI is read from: <state>/pki, or a throw-away copy when planning before the first apply
    pki_dir: Path = field(default_factory=Path)
    token: str = ""
    token_source: str = ""  # "state", "adopted from master01", "new"
    profiles: dict[str, HostProfile] = field(default_factory=dict)
    _binaries: dict[str, BinaryInfo] = field(default_factory=dict)
    _versions: dict[str, Version] = field(default_factory=dict)
    _api: KubeApi | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    extra: dict[str, Any] = field(default_factory=dict)
    # the sha256 of files on the hosts as last read, by stat signature (<state>/cache/remote-sha256.json)
    remote_digests: RemoteDigests = field(default_factory=RemoteDigests)

    def profile(self, host: HostSpec | str) -> HostProfile:
        name = host if isinstance(host, str) else host.name
        return self.profiles[name]

    def binary(self, key: str) -> BinaryInfo:
        with self._lock:
            if key not in self._binaries:
                self._binaries[key] = binary_info(self.artifacts, key, self.state.cache)
            return self._binaries[key]

    def version(self, key: str) -> Version:
        """The release of an artifact, read from the artifact itself (see artifacts.binary_version)."""
        with self._lock:
            if key not in self._versions:
                self._versions[key] = binary_version(self.artifacts, key, self.state.cache)
            return self._versions[key]

    def api(self) -> KubeApi:
        """The API client, made on first use (after preflight: pki_dir is then the one the run renders from)."""
        with self._lock:
            if self._api is None:
                self._api = KubeApi(self.cluster, self.transport, self.pki_dir, self.reporter)
            return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
