"""Session-wide API clients, and the gates that make dependent checks error with the root cause.

The Kubernetes client uses the admin credentials and the etcd client the etcd member
certificates, both read from the hosts over SFTP into a private temporary directory that lives
as long as the session (the client libraries want files); nothing of them is logged.
When a prerequisite is down, every check that needs it errors with the same root cause
("prerequisite failed: ...") instead of a cascade of independent failures.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeproof import layout
from kubeproof.inventory import HostSpec
from kubeproof.session import HostContext, Session
from kubeproof.transport import Connection, HostUnreachable, ProbeError


@dataclass
class CredentialFiles:
    directory: Path

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _fetch_credentials(session: Session, host: HostSpec, files: dict[str, str], purpose: str) -> CredentialFiles:
    return fetch_credential_files(session.transport.connection(host), host, files, purpose)


def fetch_credential_files(
    connection: Connection, host: HostSpec, files: dict[str, str], purpose: str
) -> CredentialFiles:
    """``files`` (local name -> remote path) read from the host over SFTP into a private directory."""
    directory = Path(tempfile.mkdtemp(prefix="kubeproof-cred-"))
    os.chmod(directory, 0o700)
    for local_name, remote_path in files.items():
        data = connection.read_file(remote_path)
        if data is None:
            shutil.rmtree(directory, ignore_errors=True)
            raise ProbeError(host.name, f"prerequisite failed: {purpose}: {remote_path} is missing on {host.name}")
        descriptor = os.open(directory / local_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    return CredentialFiles(directory)


def _first_answering(session: Session, hosts: list[HostSpec], role: str, anchor: HostSpec) -> HostSpec:
    """The first host of the role that answers over SSH (any one has the credentials); when none
    does, the first one's ``<host> unreachable: ...``, so every row behind this gate says so."""
    if not hosts:
        raise ProbeError(anchor.name, f"the cluster has no host with role {role}")
    first_down: HostUnreachable | None = None
    for host in hosts:
        down = session.unreachable(host)
        if down is None:
            return host
        first_down = first_down or down
    assert first_down is not None
    raise first_down.again()


# ----------------------------------------------------------------------------- Kubernetes


@dataclass
class KubeClients:
    api_client: Any
    server: str
    credentials: CredentialFiles

    def _api(self, name: str) -> Any:
        from kubernetes import client

        return getattr(client, name)(self.api_client)

    def core(self) -> Any:
        return self._api("CoreV1Api")

    def apps(self) -> Any:
        return self._api("AppsV1Api")

    def rbac(self) -> Any:
        return self._api("RbacAuthorizationV1Api")

    def certificates(self) -> Any:
        return self._api("CertificatesV1Api")

    def coordination(self) -> Any:
        return self._api("CoordinationV1Api")

    def version(self) -> Any:
        return self._api("VersionApi")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api_client.close()
        self.credentials.close()


def kube(ctx: HostContext) -> KubeClients:
    """The admin client for the cluster's first master; a ProbeError names why it is unavailable."""
    return ctx.session.shared("kube-client", lambda: _open_kube(ctx.session, ctx.host))


def open_private_kube(ctx: HostContext) -> KubeClients:
    """An admin client of the caller's own, closed by the caller (after the gate of kube(ctx) passed).

    For work that must outlive the session's shared client: the smoke workload deletes its
    namespace when the session closes, and the shared client may be closed before it by then.
    """
    kube(ctx)
    return _open_kube(ctx.session, ctx.host)


def _open_kube(session: Session, anchor: HostSpec) -> KubeClients:
    from kubernetes import client

    master = _first_answering(session, session.cluster.masters, "master", anchor)
    credentials = _fetch_credentials(
        session,
        master,
        {
            "ca.pem": layout.K8S_SSL + "/ca.pem",
            "admin.pem": layout.K8S_SSL + "/admin.pem",
            "admin-key.pem": layout.K8S_SSL + "/admin-key.pem",
        },
        "admin credentials for the Kubernetes API",
    )
    configuration = client.Configuration()
    configuration.host = f"https://{master.address}:6443"
    configuration.ssl_ca_cert = credentials.path("ca.pem")
    configuration.cert_file = credentials.path("admin.pem")
    configuration.key_file = credentials.path("admin-key.pem")
    configuration.verify_ssl = True
    configuration.retries = 1
    api_client = client.ApiClient(configuration)
    clients = KubeClients(api_client, configuration.host, credentials)
    try:
        clients.version().get_code(_request_timeout=5)
    except Exception as exc:  # any transport or HTTP failure means the API is not usable
        clients.close()
        raise ProbeError(
            master.name, f"prerequisite failed: kube-apiserver at {configuration.host} is unreachable: {_short(exc)}"
        ) from None
    return clients


# ----------------------------------------------------------------------------- etcd


@dataclass
class EtcdClients:
    """One pyetcd client per member (python-etcd3's maintained equivalent behind the same seam).

    A member whose host does not answer over SSH gets no client (``unreachable`` says why): a
    frozen host still accepts TCP, so each call to it would cost the whole gRPC timeout.
    """

    members: dict[str, Any]
    credentials: CredentialFiles
    unreachable: dict[str, HostUnreachable] = field(default_factory=dict)

    def close(self) -> None:
        for member in self.members.values():
            with contextlib.suppress(Exception):
                member.close()
        self.credentials.close()


def etcd(ctx: HostContext) -> EtcdClients:
    return ctx.session.shared("etcd-clients", lambda: _open_etcd(ctx.session, ctx.host))


def _open_etcd(session: Session, anchor: HostSpec) -> EtcdClients:
    import pyetcd

    member = _first_answering(session, session.cluster.etcd_members, "etcd", anchor)
    credentials = _fetch_credentials(
        session,
        member,
        {
            "ca.pem": layout.ETCD_SSL + "/ca.pem",
            "server.pem": layout.ETCD_SSL + "/server.pem",
            "server-key.pem": layout.ETCD_SSL + "/server-key.pem",
        },
        "etcd client certificates",
    )
    clients: dict[str, Any] = {}
    unreachable: dict[str, HostUnreachable] = {}
    for host in session.cluster.etcd_members:
        down = session.unreachable(host)
        if down is not None:
            unreachable[host.name] = down
            continue
        clients[host.name] = pyetcd.client(
            host=host.address,
            port=2379,
            ca_cert=credentials.path("ca.pem"),
            cert_key=credentials.path("server-key.pem"),
            cert_cert=credentials.path("server.pem"),
            timeout=5,
        )
    result = EtcdClients(clients, credentials, unreachable)
    errors = []
    for name, client in clients.items():
        try:
            client.status()
        except Exception as exc:  # grpc raises many types; all mean this member did not answer
            errors.append(f"{name}: {_short(exc)}")
    if len(errors) == len(clients):
        result.close()
        errors += [f"{name}: not asked: {down.reason}" for name, down in unreachable.items()]
        raise ProbeError(member.name, "prerequisite failed: no etcd member answers over TLS: " + "; ".join(errors))
    return result


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return f"{type(exc).__name__}: {first[:300]}"
