"""Every resource the apiserver can list, listed with a short timeout: is each of its storages answering?

kube-apiserver keeps one etcd client per resource. When an etcd member freezes (its host paused),
a client whose connection to that member is idle is not told: gRPC pings only a connection with an
active stream. The first request of that resource routed to the frozen member then waits out the
keepalive timeout, 10 s (seen on the lab: "Txn call failed ... keepalive ping failed to receive ACK
within timeout" for the smoke's Service, through its IPAddress), and only then is the connection
dropped. test_47 lists every resource a few times, each with a 1 s timeout, until all answer: then
no storage of the apiserver still routes to the frozen member, and a run measured afterwards times
kubeproof's handling of a host that is down, not the apiserver's first meetings with it.

Discovery is made while the cluster is healthy; the admin credentials are read from master01 over
SFTP (kubeproof.clients.fetch_credential_files) into a private directory that ``close`` removes.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import urllib3

from kubeproof import layout
from kubeproof.clients import fetch_credential_files
from kubeproof.inventory import HostSpec
from kubeproof.transport import Transport

PARALLEL = 8


class ResourceLists:
    """The list path of every listable resource, and which of them answer a list within a timeout."""

    def __init__(self, transport: Transport, master: HostSpec) -> None:
        files = {name: f"{layout.K8S_SSL}/{name}" for name in ("ca.pem", "admin.pem", "admin-key.pem")}
        self._credentials = fetch_credential_files(transport.connection(master), master, files, "admin credentials")
        self._server = f"https://{master.address}:6443"
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=PARALLEL,
            cert_reqs="CERT_REQUIRED",
            ca_certs=self._credentials.path("ca.pem"),
            cert_file=self._credentials.path("admin.pem"),
            key_file=self._credentials.path("admin-key.pem"),
            retries=False,
        )
        self.paths = self._discover()

    def _get(self, path: str, timeout: float) -> urllib3.BaseHTTPResponse:
        return self._pool.request("GET", self._server + path, timeout=timeout)

    def _discover(self) -> list[str]:
        groups = [("/api/v1", self._get("/api/v1", 5).json())]
        for group in self._get("/apis", 5).json().get("groups") or []:
            version = (group.get("preferredVersion") or {}).get("groupVersion")
            if version:
                groups.append((f"/apis/{version}", self._get(f"/apis/{version}", 5).json()))
        paths = [
            f"{prefix}/{resource['name']}?limit=1"
            for prefix, body in groups
            for resource in body.get("resources") or []
            if "/" not in resource["name"] and "list" in (resource.get("verbs") or [])
        ]
        assert paths, "API discovery found no listable resource"
        return paths

    def not_answering(self, per_resource: int, timeout: float) -> list[str]:
        """The paths of which one of ``per_resource`` lists in a row got no answer within ``timeout``."""

        def lists(path: str) -> str:
            for _ in range(per_resource):
                try:
                    response = self._get(path, timeout)
                except urllib3.exceptions.HTTPError as exc:
                    return f"{path}: {type(exc).__name__}"
                if response.status != 200:
                    return f"{path}: HTTP {response.status} {json.dumps(response.data[:200].decode(errors='replace'))}"
            return ""

        with ThreadPoolExecutor(PARALLEL) as pool:
            return [result for result in pool.map(lists, self.paths) if result]

    def close(self) -> None:
        self._pool.clear()
        self._credentials.close()
