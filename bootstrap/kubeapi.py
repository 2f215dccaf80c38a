"""The Kubernetes API as the installer uses it: the kubernetes python client, the admin certificate.

Responses are read as plain JSON (``_preload_content=False``): the installer needs a handful of
fields and stays independent of the client's model classes. Where this machine cannot reach the
apiserver directly (a bastion in between), it goes through an SSH tunnel to the master; the
apiserver certificate carries 127.0.0.1 for that reason too (PKI-K-03).
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import kubernetes.client
import urllib3
from kubernetes.client.exceptions import ApiException

from kubeproof.bootstrap import render
from kubeproof.bootstrap.errors import BootstrapError
from kubeproof.bootstrap.state import Reporter
from kubeproof.inventory import Cluster
from kubeproof.transport import Connection, Transport

T = TypeVar("T")

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "kubeproof"


class ApiError(BootstrapError):
    """The API call failed (unreachable, TLS, or an error status); loops that wait retry on it."""


def _api_call(what: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except ApiException as exc:
        raise ApiError(f"{what}: HTTP {exc.status} {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ApiError(f"{what}: {type(exc).__name__}: {str(exc)[:200]}") from None


class SshTunnel:
    """A local port forwarded to host:port through an SSH connection (paramiko direct-tcpip)."""

    def __init__(self, conn: Connection, remote_host: str, remote_port: int):
        self.conn = conn
        self.remote = (remote_host, remote_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, name="kubeproof-tunnel", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, peer = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pump, args=(client, peer), daemon=True).start()

    def _pump(self, client: socket.socket, peer: tuple[str, int]) -> None:
        transport = self.conn.backend.client.get_transport()
        if transport is None:
            client.close()
            return
        try:
            channel: Any = transport.open_channel("direct-tcpip", self.remote, peer, timeout=10)
        except Exception:
            client.close()
            return
        try:
            while True:
                readable, _, _ = select.select([client, channel], [], [], 30)
                if client in readable:
                    data = client.recv(65536)
                    if not data:
                        break
                    channel.sendall(data)
                if channel in readable:
                    data = channel.recv(65536)
                    if not data:
                        break
                    client.sendall(data)
        except (OSError, EOFError):
            pass  # either end went away: the tunnel's connection is over
        finally:
            # closing a channel whose SSH transport already ended raises EOFError
            with contextlib.suppress(OSError, EOFError):
                channel.close()
            client.close()

    def close(self) -> None:
        self._closed = True
        self.listener.close()


class KubeApi:
    """The admin's client of the cluster's apiserver; ``pki_dir`` holds kubernetes/{ca,admin,admin-key}.pem."""

    def __init__(self, cluster: Cluster, transport: Transport, pki_dir: Path, reporter: Reporter):
        self.cluster = cluster
        pki = pki_dir / "kubernetes"
        address = render.master_address(cluster)
        self.tunnel: SshTunnel | None = None
        host = render.apiserver_url(cluster)
        # Direct only when this machine sees the apiserver's own certificate: a middlebox (a
        # transparent TLS proxy, as on the lab's machine) or a filtered port sends us through SSH.
        if not _verified_tls(address, render.APISERVER_PORT, pki / "ca.pem"):
            master = cluster.masters[0]
            self.tunnel = SshTunnel(transport.connection(master), address, render.APISERVER_PORT)
            host = f"https://127.0.0.1:{self.tunnel.port}"
            reporter.debug(f"apiserver {address}:6443: no verified TLS from here, SSH tunnel via {master.name}")
        config = kubernetes.client.Configuration()
        config.host = host
        config.ssl_ca_cert = str(pki / "ca.pem")
        config.cert_file = str(pki / "admin.pem")
        config.key_file = str(pki / "admin-key.pem")
        config.verify_ssl = True
        self.host = host
        self.client = kubernetes.client.ApiClient(config)
        self.core = kubernetes.client.CoreV1Api(self.client)
        self.rbac = kubernetes.client.RbacAuthorizationV1Api(self.client)
        self.certificates = kubernetes.client.CertificatesV1Api(self.client)
        self.coordination = kubernetes.client.CoordinationV1Api(self.client)

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]
        if self.tunnel:
            self.tunnel.close()

    # -- health

    def ready(self, timeout: float = 3.0) -> bool:
        try:
            response = self.client.rest_client.request(  # type: ignore[no-untyped-call]
                "GET", self.host + "/readyz", headers={}, _request_timeout=timeout
            )
            response.read()
            return bool(response.status == 200)
        except Exception:
            return False

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return
            time.sleep(1.0)
        raise BootstrapError(
            f"kube-apiserver at {render.apiserver_url(self.cluster)} not ready after {timeout:.0f}s: "
            f"see `journalctl -u kube-apiserver` on {self.cluster.masters[0].name}"
        )

    # -- raw JSON helpers

    @staticmethod
    def _json(response: Any) -> dict[str, Any]:
        data = response.data if hasattr(response, "data") else response.read()
        return json.loads(data) if data else {}  # type: ignore[no-any-return]

    def nodes(self) -> dict[str, dict[str, Any]]:
        response = _api_call("list nodes", lambda: self.core.list_node(_preload_content=False, _request_timeout=10))
        return {item["metadata"]["name"]: item for item in self._json(response).get("items", [])}

    def node_leases(self) -> set[str]:
        """Names of the nodes whose kubelet holds a heartbeat Lease in kube-node-lease."""
        response = _api_call(
            "list node leases",
            lambda: self.coordination.list_namespaced_lease(
                "kube-node-lease", _preload_content=False, _request_timeout=10
            ),
        )
        return {item["metadata"]["name"] for item in self._json(response).get("items", [])}

    def csrs(self) -> list[dict[str, Any]]:
        response = _api_call(
            "list CSRs",
            lambda: self.certificates.list_certificate_signing_request(_preload_content=False, _request_timeout=10),
        )
        return list(self._json(response).get("items", []))

    def approve_csr(self, csr: dict[str, Any], message: str) -> None:
        body = dict(csr)
        status = dict(body.get("status") or {})
        conditions = list(status.get("conditions") or [])
        conditions.append(
            {
                "type": "Approved",
                "status": "True",
                "reason": "KubeproofBootstrapApproved",
                "message": message,
                "lastUpdateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        status["conditions"] = conditions
        body["status"] = status
        _api_call(
            f"approve CSR {csr['metadata']['name']}",
            lambda: self.certificates.replace_certificate_signing_request_approval(
                csr["metadata"]["name"],
                body,  # type: ignore[arg-type]
                _preload_content=False,
                _request_timeout=10,
            ),
        )

    def cluster_role_binding(self, name: str) -> dict[str, Any] | None:
        try:
            response = self.rbac.read_cluster_role_binding(name, _preload_content=False, _request_timeout=10)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ApiError(f"read clusterrolebinding {name}: HTTP {exc.status} {exc.reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(f"read clusterrolebinding {name}: {type(exc).__name__}") from None
        return self._json(response)

    def put_cluster_role_binding(self, body: dict[str, Any], exists: bool) -> None:
        name = body["metadata"]["name"]
        if exists:
            _api_call(
                f"replace clusterrolebinding {name}",
                lambda: self.rbac.replace_cluster_role_binding(
                    name,
                    body,  # type: ignore[arg-type]  # the client serializes plain dicts as they are
                    _preload_content=False,
                    _request_timeout=10,
                ),
            )
        else:
            _api_call(
                f"create clusterrolebinding {name}",
                lambda: self.rbac.create_cluster_role_binding(
                    body,  # type: ignore[arg-type]
                    _preload_content=False,
                    _request_timeout=10,
                ),
            )


def _verified_tls(host: str, port: int, ca_file: Path, timeout: float = 3.0) -> bool:
    """A TLS handshake with host:port that verifies against our CA (and the address in its SANs)."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False
