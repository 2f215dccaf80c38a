"""What each host gets of the local PKI, at the guide's paths, and the checks before it is shipped.

A PKI that would not work on the host (a broken chain, a key that does not match its certificate,
a serving certificate that does not name the host) is refused: the PKI step was not re-run after
the cluster changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kubeproof.bootstrap.pki.crypto import key_spki, parse_private_key
from kubeproof.bootstrap.pki.errors import PkiError
from kubeproof.bootstrap.pki.inputs import ETCD, KUBERNETES
from kubeproof.bootstrap.pki.local_files import CERT_FILE_MODE, KEY_FILE_MODE
from kubeproof.inventory import Cluster, HostSpec, canonical_address
from kubeproof.layout import ETCD_SSL, K8S_SSL
from kubeproof.x509 import parse_certificate, verify_issued_by

__all__ = ["RemoteFile", "host_pki_files"]


@dataclass(frozen=True, repr=False)
class RemoteFile:
    """A file to put on a host. ``data`` of a secret never appears in repr or str."""

    path: str
    data: bytes
    mode: int
    secret: bool

    def __repr__(self) -> str:
        return f"RemoteFile(path={self.path!r}, mode=0o{self.mode:o}, secret={self.secret}, size={len(self.data)})"

    __str__ = __repr__


def _read_pki_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PkiError(f"{path} is missing: run the PKI step (ensure_pki) first") from None


def host_pki_files(pki_dir: Path, cluster: Cluster, host: HostSpec) -> list[RemoteFile]:
    """The certificates and keys ``host`` gets, at the guide's paths.

    * Every host gets the etcd client material ``/opt/etcd/ssl/{ca.pem,server.pem,server-key.pem}``:
      etcd members serve and peer with it, kube-apiserver (masters) and flanneld (workers) reach etcd
      with it, as the guide's scripts do.
    * The etcd ``ca-key.pem`` goes to the first master only. No daemon needs it; the guide keeps it
      on master01 (where it made it and from where it re-signs server.pem when a member is added),
      and PKI-E-01 looks for it there. Its ``scp -r /opt/etcd`` also hands it to every other member,
      which lets any node mint an etcd client certificate, i.e. read and write all cluster state:
      we do not follow that step.
    * Masters get ``/opt/kubernetes/ssl/{ca.pem,ca-key.pem,apiserver*,admin*,sa.pem,sa-key.pem}``:
      the Kubernetes ``ca-key.pem`` on every master because kube-controller-manager signs kubelet
      CSRs with it (``--cluster-signing-key-file``) and any master may hold its leader lease.
    * Workers get ``/opt/kubernetes/ssl/{ca.pem,kube-proxy.pem,kube-proxy-key.pem}``.

    Keys are 0600 and marked secret, certificates and public keys 0644.
    """
    if all(h.name != host.name for h in cluster.hosts):
        raise PkiError(f"host {host.name!r} is not in cluster {cluster.name!r}")
    etcd_dir, kubernetes_dir = pki_dir / ETCD, pki_dir / KUBERNETES
    first_master = cluster.masters[0].name if cluster.masters else None
    # (remote path, local file, secret)
    wanted: list[tuple[str, Path, bool]] = [
        (f"{ETCD_SSL}/ca.pem", etcd_dir / "ca.pem", False),
        (f"{ETCD_SSL}/server.pem", etcd_dir / "server.pem", False),
        (f"{ETCD_SSL}/server-key.pem", etcd_dir / "server-key.pem", True),
    ]
    if host.name == first_master:
        wanted.append((f"{ETCD_SSL}/ca-key.pem", etcd_dir / "ca-key.pem", True))
    if host.has_role("master") or host.has_role("node"):
        wanted.append((f"{K8S_SSL}/ca.pem", kubernetes_dir / "ca.pem", False))
    if host.has_role("master"):
        for stem in ("apiserver", "admin"):
            wanted.append((f"{K8S_SSL}/{stem}.pem", kubernetes_dir / f"{stem}.pem", False))
            wanted.append((f"{K8S_SSL}/{stem}-key.pem", kubernetes_dir / f"{stem}-key.pem", True))
        wanted.append((f"{K8S_SSL}/ca-key.pem", kubernetes_dir / "ca-key.pem", True))
        wanted.append((f"{K8S_SSL}/sa.pem", kubernetes_dir / "sa.pem", False))
        wanted.append((f"{K8S_SSL}/sa-key.pem", kubernetes_dir / "sa-key.pem", True))
    if host.has_role("node"):
        wanted.append((f"{K8S_SSL}/kube-proxy.pem", kubernetes_dir / "kube-proxy.pem", False))
        wanted.append((f"{K8S_SSL}/kube-proxy-key.pem", kubernetes_dir / "kube-proxy-key.pem", True))

    files: dict[str, RemoteFile] = {}
    for remote_path, local_path, secret in wanted:
        mode = KEY_FILE_MODE if secret else CERT_FILE_MODE
        files[remote_path] = RemoteFile(remote_path, _read_pki_file(local_path), mode, secret)
    _check_shippable(files, host)
    return [files[path] for path in sorted(files)]


# Each shipped leaf certificate, its key and its CA certificate (remote paths).
_SHIPPED_PAIRS = (
    (f"{ETCD_SSL}/server.pem", f"{ETCD_SSL}/server-key.pem", f"{ETCD_SSL}/ca.pem"),
    *(
        (
            f"{K8S_SSL}/{stem}.pem",
            f"{K8S_SSL}/{stem}-key.pem",
            f"{K8S_SSL}/ca.pem",
        )
        for stem in ("apiserver", "admin", "kube-proxy")
    ),
)


def _check_shippable(files: Mapping[str, RemoteFile], host: HostSpec) -> None:
    """Refuse to ship a PKI that would not work on the host: a broken chain, a key that does not
    match its certificate, or a serving certificate that does not name the host (the PKI step was
    not re-run after the cluster changed)."""
    for cert_path, key_path, ca_path in _SHIPPED_PAIRS:
        if cert_path not in files:
            continue
        if (why := verify_issued_by(files[cert_path].data, files[ca_path].data)) is not None:
            raise PkiError(f"{cert_path} for {host.name}: {why}; re-run the PKI step (ensure_pki)")
        key = parse_private_key(files[key_path].data, key_path)
        if key_spki(key) != parse_certificate(files[cert_path].data).spki_sha256:
            raise PkiError(f"{key_path} for {host.name} does not match {cert_path}; re-run the PKI step (ensure_pki)")
    address = canonical_address(host.address)
    for role, remote_path in (
        ("etcd", f"{ETCD_SSL}/server.pem"),
        ("master", f"{K8S_SSL}/apiserver.pem"),
    ):
        if not host.has_role(role) or remote_path not in files:
            continue
        info = parse_certificate(files[remote_path].data)
        if address not in info.san_ips + info.san_dns:
            raise PkiError(
                f"{remote_path} for {host.name} lacks its address {address} in its SANs: "
                "re-run the PKI step (ensure_pki)"
            )
