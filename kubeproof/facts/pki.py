"""Facts for the certificates of the guide (etcd-cert.sh, k8s-cert.sh): public files, key fingerprints, modes."""

from __future__ import annotations

import shlex
from typing import Any

from kubeproof import layout
from kubeproof.facts import Fact, ParseError, Raw
from kubeproof.facts.files import absent, directory_stat, file_sha256, key_public_fingerprint, require_path
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.session import fact_set


def parse_certificate_dump(raw: Raw) -> dict[str, str] | None:
    """`==> name` frames of certificate blocks -> {file name: PEM text ('' if it holds no certificate)}."""
    if absent(raw):
        return None
    files: dict[str, str] = {}
    current: str | None = None
    for line in raw.stdout.splitlines(keepends=True):
        if line.startswith("==> "):
            current = line[4:].strip()
            files[current] = ""
        elif current is not None:
            files[current] += line
    return files


def certificates_in(directory: str) -> Fact[dict[str, str] | None]:
    """The certificate blocks of every *.pem in a directory, in one command.

    Only BEGIN/END CERTIFICATE blocks are printed, so a file that also holds a key (kubelet's
    kubelet-client-current.pem) gives up its certificate and nothing else; *-key.pem is skipped.
    """
    quoted = shlex.quote(directory)
    return Fact(
        "certs:" + directory,
        require_path(directory, "-d")
        + "for f in "
        + quoted
        + '/*.pem; do [ -e "$f" ] || continue; case "$f" in *-key.pem) continue;; esac; '
        'echo "==> ${f##*/}"; sed -n \'/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p\' "$f"; done',
        parse_certificate_dump,
    )


def _pem_or_none(raw: Raw) -> str | None:
    if absent(raw):
        return None
    return raw.stdout if "BEGIN CERTIFICATE" in raw.stdout else None


def kubeconfig_client_certificate(path: str) -> Fact[str | None]:
    """The client certificate embedded in a kubeconfig, decoded on the host (its key never leaves)."""
    quoted = shlex.quote(path)
    return Fact(
        "kubeconfig-cert:" + path,
        require_path(path) + "sed -n 's/^ *client-certificate-data: *//p' " + quoted + " | head -n1 | base64 -d",
        _pem_or_none,
        requires=("base64",),
    )


def _seconds_or_none(raw: Raw) -> float | None:
    text = raw.stdout.strip()
    if not text:
        return None
    total = 0.0
    number = ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total += float(number) * units[char]
            number = ""
        else:
            raise ParseError(f"not a Go duration: {text!r}")
    if number:
        raise ParseError(f"not a Go duration: {text!r}")
    return total


# What the controller-manager signs for (a CA must not sign beyond its own life: SEC-05).
signing_duration = Fact(
    "pki:cm-signing-duration",
    "p=$(pidof kube-controller-manager | cut -d' ' -f1); [ -n \"$p\" ] && tr '\\0' '\\n' </proc/$p/cmdline"
    " | sed -n 's/^--\\(experimental-\\)\\{0,1\\}cluster-signing-duration=//p' | head -n1",
    _seconds_or_none,
)

TOKEN_CSV = layout.TOKEN_CSV


@fact_set("etcd", groups=("PKI-E", "ETCD", "PKI-K", "SEC"))
def etcd_pki_facts(cluster: Cluster, host: HostSpec) -> list[Fact[Any]]:
    return [
        certificates_in(layout.ETCD_SSL),
        directory_stat(layout.ETCD_SSL),
        key_public_fingerprint(f"{layout.ETCD_SSL}/server-key.pem"),
        key_public_fingerprint(f"{layout.ETCD_SSL}/ca-key.pem"),
        file_sha256(f"{layout.ETCD_SSL}/ca.pem"),
        file_sha256(f"{layout.ETCD_SSL}/server.pem"),
    ]


@fact_set("master", groups=("PKI-K", "MASTER", "SEC"))
def master_pki_facts(cluster: Cluster, host: HostSpec) -> list[Fact[Any]]:
    return [
        certificates_in(layout.K8S_SSL),
        directory_stat(layout.K8S_SSL),
        directory_stat(layout.K8S_CFG),
        key_public_fingerprint(f"{layout.K8S_SSL}/ca-key.pem"),
        key_public_fingerprint(f"{layout.K8S_SSL}/apiserver-key.pem"),
        key_public_fingerprint(f"{layout.K8S_SSL}/admin-key.pem"),
        signing_duration,
    ]


@fact_set("node", groups=("PKI-K", "SEC"))
def worker_pki_facts(cluster: Cluster, host: HostSpec) -> list[Fact[Any]]:
    return [
        certificates_in(layout.K8S_SSL),
        directory_stat(layout.K8S_SSL),
        directory_stat(layout.K8S_CFG),
        kubeconfig_client_certificate(f"{layout.K8S_CFG}/kube-proxy.kubeconfig"),
    ]
