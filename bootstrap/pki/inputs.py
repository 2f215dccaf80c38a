"""Which certificates each authority has, and their inputs: subjects, SANs, profiles and lives.

The defaults are the guide's etcd-cert.sh / k8s-cert.sh JSON filled in from the cluster; an
``inputs_dir`` in the guide's format may replace any file. Whatever the files say, the SANs the
cluster needs are present, and a certificate keeps what Kubernetes identifies it by (kube-proxy's
CN, admin's O=system:masters) and the extended usages it is used for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from kubeproof.bootstrap.pki.cfssl import (
    CFSSL_INITCA_DEFAULT_EXPIRY,
    CsrSpec,
    KeySpec,
    NameEntry,
    SigningConfig,
    SigningProfile,
    format_go_duration,
)
from kubeproof.bootstrap.pki.cfssl_json import load_ca_config, load_csr_json
from kubeproof.bootstrap.pki.errors import PkiError, PkiInputError
from kubeproof.inventory import Cluster, canonical_address, is_ip_address

__all__ = [
    "AUTHORITIES",
    "DEFAULT_CA_EXPIRY",
    "DEFAULT_LEAF_EXPIRY",
    "ETCD",
    "KUBERNETES",
    "AuthorityInputs",
    "LeafInputs",
    "desired_inputs",
]

ETCD = "etcd"
KUBERNETES = "kubernetes"
AUTHORITIES = (ETCD, KUBERNETES)

# The guide's ca-config.json: "expiry": "87600h" (10 years) for the default and the "www" profile.
DEFAULT_LEAF_EXPIRY = timedelta(hours=87600)
# A CA must outlive what it signs: the leaves' 10 years plus a margin of the same again.
DEFAULT_CA_EXPIRY = timedelta(hours=175200)

APISERVER_DNS_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class _LeafDefinition:
    """One leaf certificate of an authority, and what it must keep whatever the inputs say."""

    stem: str  # cfssl's -bare name: <stem>.pem, <stem>-key.pem, <stem>-csr.json
    profiles: tuple[str, ...]  # profile names tried in order in ca-config.json
    required_ext_usages: tuple[str, ...]  # cfssl names
    required_common_name: str | None = None
    required_organization: str | None = None


_ETCD_LEAVES = (
    # etcd uses server.pem as server, peer and client certificate (PKI-E-04): both EKUs.
    _LeafDefinition("server", ("www",), ("server auth", "client auth")),
)
_KUBERNETES_LEAVES = (
    _LeafDefinition("apiserver", ("kubernetes",), ("server auth",)),
    # Client certificates get a client-only profile; with the guide's own ca-config.json (one
    # "kubernetes" profile) they fall back to it, as the guide does.
    _LeafDefinition("admin", ("client", "kubernetes"), ("client auth",), required_organization="system:masters"),
    _LeafDefinition("kube-proxy", ("client", "kubernetes"), ("client auth",), required_common_name="system:kube-proxy"),
)


@dataclass(frozen=True)
class LeafInputs:
    stem: str
    csr: CsrSpec
    profile_name: str
    profile: SigningProfile
    expiry: timedelta


@dataclass(frozen=True)
class AuthorityInputs:
    """The effective cfssl inputs of one authority: exactly what is written beside its certificates."""

    name: str  # "etcd" | "kubernetes"
    ca_config: SigningConfig
    ca_csr: CsrSpec
    ca_expiry: timedelta
    leaves: tuple[LeafInputs, ...]
    notes: tuple[str, ...] = ()

    def json_files(self) -> dict[str, str]:
        files = {"ca-config.json": self.ca_config.to_json(), "ca-csr.json": self.ca_csr.to_json(is_ca=True)}
        for leaf in self.leaves:
            files[f"{leaf.stem}-csr.json"] = leaf.csr.to_json(is_ca=False)
        return files


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        if value not in out:
            out.append(value)
    return tuple(out)


def _required_hosts(cluster: Cluster, authority: str, stem: str) -> tuple[str, ...]:
    if authority == ETCD and stem == "server":
        return _unique(canonical_address(h.address) for h in cluster.etcd_members)
    if authority == KUBERNETES and stem == "apiserver":
        return _unique(
            [
                cluster.network.service_first_address,
                "127.0.0.1",
                *(canonical_address(h.address) for h in cluster.masters),
                *(canonical_address(a) for a in cluster.network.load_balancer_addresses),
                *APISERVER_DNS_NAMES,
            ]
        )
    return ()


def _default_inputs(cluster: Cluster, authority: str) -> tuple[SigningConfig, CsrSpec, dict[str, CsrSpec]]:
    """The guide's etcd-cert.sh / k8s-cert.sh JSON, filled in from the cluster."""
    rsa_2048 = KeySpec("rsa", 2048)
    ten_years = DEFAULT_LEAF_EXPIRY
    server_and_client = ("signing", "key encipherment", "server auth", "client auth")
    if authority == ETCD:
        config = SigningConfig(
            SigningProfile(ten_years), {"www": SigningProfile(ten_years, server_and_client)}, "ca-config.json"
        )
        ca_csr = CsrSpec("etcd", (), rsa_2048, (NameEntry("CN", "Beijing", "Beijing"),), source="ca-csr.json")
        server_names = (NameEntry("CN", "BeiJing", "BeiJing"),)
        leaves = {
            "server": CsrSpec(
                "etcd", _required_hosts(cluster, ETCD, "server"), rsa_2048, server_names, source="server-csr.json"
            )
        }
        return config, ca_csr, leaves
    config = SigningConfig(
        SigningProfile(ten_years),
        {
            "kubernetes": SigningProfile(ten_years, server_and_client),
            "client": SigningProfile(ten_years, ("signing", "key encipherment", "client auth")),
        },
        "ca-config.json",
    )
    ca_csr = CsrSpec(
        "kubernetes", (), rsa_2048, (NameEntry("CN", "Beijing", "Beijing", "k8s", "System"),), source="ca-csr.json"
    )
    k8s_names = (NameEntry("CN", "BeiJing", "BeiJing", "k8s", "System"),)
    leaves = {
        "apiserver": CsrSpec(
            "kubernetes",
            _required_hosts(cluster, KUBERNETES, "apiserver"),
            rsa_2048,
            k8s_names,
            source="apiserver-csr.json",
        ),
        "admin": CsrSpec(
            "admin",
            (),
            rsa_2048,
            (NameEntry("CN", "BeiJing", "BeiJing", "system:masters", "System"),),
            source="admin-csr.json",
        ),
        "kube-proxy": CsrSpec("system:kube-proxy", (), rsa_2048, k8s_names, source="kube-proxy-csr.json"),
    }
    return config, ca_csr, leaves


def _authority_inputs(
    cluster: Cluster, authority: str, inputs_dir: Path | None, ca_expiry: timedelta | None
) -> AuthorityInputs:
    config, ca_csr, leaf_csrs = _default_inputs(cluster, authority)
    notes: list[str] = []
    user_dir = inputs_dir / authority if inputs_dir is not None else None
    if user_dir is not None and user_dir.is_dir():
        if (user_dir / "ca-config.json").is_file():
            config = load_ca_config(user_dir / "ca-config.json")
        if (user_dir / "ca-csr.json").is_file():
            ca_csr = load_csr_json(user_dir / "ca-csr.json")
            if ca_csr.ca_expiry is None and ca_expiry is None:
                notes.append(
                    f'{ca_csr.source} has no "ca": {{"expiry"}}: `cfssl gencert -initca` would give the CA only '
                    f"{format_go_duration(CFSSL_INITCA_DEFAULT_EXPIRY)} (shorter than its leaves); "
                    f"using {format_go_duration(DEFAULT_CA_EXPIRY)} and writing it into ca-csr.json"
                )
        known = {"ca-config.json", "ca-csr.json", *(f"{stem}-csr.json" for stem in leaf_csrs)}
        for path in sorted(user_dir.glob("*.json")):
            if path.name not in known:
                notes.append(
                    f"{path}: not an input of the {authority} PKI (known: {', '.join(sorted(known))}); ignored"
                )
        for stem in list(leaf_csrs):
            path = user_dir / f"{stem}-csr.json"
            if not path.is_file():
                continue
            user_csr = load_csr_json(path)
            required = _required_hosts(cluster, authority, stem)
            # The cluster decides the SANs it needs; the file may declare more (a VIP, a DNS name).
            extras = tuple(h for h in user_csr.hosts if h not in required)
            cluster_addresses = {canonical_address(h.address) for h in cluster.hosts}
            strangers = [h for h in extras if is_ip_address(h) and h not in cluster_addresses]
            if strangers:
                notes.append(
                    f"{path}: hosts {', '.join(strangers)} are not addresses of any cluster host; kept as declared "
                    "extra SANs (remove them from the file if they are stale)"
                )
            leaf_csrs[stem] = replace(user_csr, hosts=required + extras)
    effective_ca_expiry = ca_expiry or ca_csr.ca_expiry or DEFAULT_CA_EXPIRY
    ca_csr = replace(ca_csr, ca_expiry=effective_ca_expiry)
    definitions = _ETCD_LEAVES if authority == ETCD else _KUBERNETES_LEAVES
    leaves: list[LeafInputs] = []
    for definition in definitions:
        csr = leaf_csrs[definition.stem]
        if definition.required_common_name and csr.common_name != definition.required_common_name:
            raise PkiInputError(
                f"CN must be {definition.required_common_name!r} (Kubernetes identifies the user by it), "
                f"not {csr.common_name!r}",
                source=csr.source,
            )
        if definition.required_organization and definition.required_organization not in csr.organizations:
            raise PkiInputError(
                f"names must include O {definition.required_organization!r} (the group that grants its rights)",
                source=csr.source,
            )
        profile_name = next((name for name in definition.profiles if name in config.profiles), None)
        if profile_name is None:
            raise PkiInputError(
                f"no signing profile {' or '.join(repr(p) for p in definition.profiles)} for {definition.stem}",
                source=config.source,
            )
        profile = config.profiles[profile_name]
        missing = [u for u in definition.required_ext_usages if u not in profile.usages]
        if missing:
            raise PkiInputError(
                f"signing.profiles.{profile_name}.usages lacks {', '.join(repr(u) for u in missing)}, "
                f"which {definition.stem} needs",
                source=config.source,
            )
        leaves.append(LeafInputs(definition.stem, csr, profile_name, profile, config.expiry_of(profile)))
    return AuthorityInputs(authority, config, ca_csr, effective_ca_expiry, tuple(leaves), tuple(notes))


def desired_inputs(
    cluster: Cluster, *, inputs_dir: Path | None = None, ca_expiry: timedelta | None = None
) -> tuple[AuthorityInputs, AuthorityInputs]:
    """The etcd and Kubernetes inputs for ``cluster``.

    ``inputs_dir`` may hold the guide's own files under ``etcd/`` and ``kubernetes/``
    (ca-config.json, ca-csr.json, server-csr.json, apiserver-csr.json, admin-csr.json,
    kube-proxy-csr.json); each file present replaces the rendered default, except that the SANs the
    cluster needs are always present (the file's extra hosts are kept as declared).
    """
    if not cluster.etcd_members:
        raise PkiError(f"cluster {cluster.name!r} has no host with role etcd: the etcd certificate would have no SAN")
    if not cluster.masters:
        raise PkiError(f"cluster {cluster.name!r} has no host with role master: the apiserver certificate needs one")
    if ca_expiry is not None and ca_expiry <= timedelta(0):
        raise PkiError("ca_expiry must be positive")
    return (
        _authority_inputs(cluster, ETCD, inputs_dir, ca_expiry),
        _authority_inputs(cluster, KUBERNETES, inputs_dir, ca_expiry),
    )
