"""Facts about the workers (guide chapter 六): kubelet and kube-proxy, their kubeconfigs and certificates.

Kubeconfigs hold credentials, so they are summarised ON the host: the server URL, file paths, the
CA and client certificates (public) decoded there, and of a token only its length, shape and
sha256 (compared with token.csv's on the master). Client key data is reported as present, never read.
kubelet-client-current.pem holds the kubelet's key too: `openssl x509 -in` extracts the certificate.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from kubeproof import layout
from kubeproof.facts import Fact, ParseError, Raw
from kubeproof.facts.files import file_text
from kubeproof.facts.host import units_state
from kubeproof.facts.master import binary_versions, processes_fact
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.session import fact_set

# cri-dockerd: the kubelet's container runtime endpoint since dockershim left (v1.24); the guide's
# era had it inside the kubelet. Without it no pod sandbox is created, whatever the kubelet says.
NODE_UNITS = ("kubelet", "kube-proxy", "cri-dockerd")
NODE_BINARIES = ("kubelet", "kube-proxy")
BOOTSTRAP_KUBECONFIG = layout.K8S_CFG + "/bootstrap.kubeconfig"
KUBELET_KUBECONFIG = layout.K8S_CFG + "/kubelet.kubeconfig"
KUBE_PROXY_KUBECONFIG = layout.K8S_CFG + "/kube-proxy.kubeconfig"
KUBECONFIGS = {
    "bootstrap.kubeconfig": BOOTSTRAP_KUBECONFIG,
    "kubelet.kubeconfig": KUBELET_KUBECONFIG,
    "kube-proxy.kubeconfig": KUBE_PROXY_KUBECONFIG,
}
KUBELET_CLIENT_CERT = "kubelet-client-current.pem"
# kube-proxy's default metricsBindAddress; /proxyMode there names the mode it actually runs
PROXY_MODE_URL = "http://127.0.0.1:10249/proxyMode"
KUBELET_HEALTHZ_URL = "http://127.0.0.1:10248/healthz"
IPVS_MODULES = ("ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh")


# ----------------------------------------------------------------------------- kubeconfigs


@dataclass(frozen=True)
class TokenShape:
    length: int
    hex: bool
    sha256: str


@dataclass(frozen=True)
class KubeconfigSummary:
    """The non-secret content of a kubeconfig, as printed by its host."""

    present: bool
    mode: str | None = None
    servers: tuple[str, ...] = ()
    ca_files: tuple[str, ...] = ()
    ca_pem: str | None = None  # certificate-authority-data, decoded on the host
    client_cert_files: tuple[str, ...] = ()
    client_key_files: tuple[str, ...] = ()
    client_cert_pem: str | None = None  # client-certificate-data, decoded on the host
    client_key_data: bool = False
    context_users: tuple[str, ...] = ()
    tokens: tuple[TokenShape, ...] = ()
    problems: tuple[str, ...] = field(default=())  # what the host could not decode


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


_TOKEN_SHAPE = re.compile(r"token length=(\d+) hex=(yes|no) sha256=([0-9a-f]{64})")


def parse_kubeconfig_summary(raw: Raw) -> KubeconfigSummary:
    lines = raw.stdout.split("\n")
    if not lines or lines[0].strip() == "absent":
        return KubeconfigSummary(False)
    if lines[0].strip() != "present":
        raise ParseError(f"unexpected kubeconfig summary start {lines[0][:40]!r}")
    values: dict[str, list[str]] = {}
    pems: dict[str, list[str]] = {}
    tokens: list[TokenShape] = []
    problems: list[str] = []
    block: str | None = None
    for line in lines[1:]:
        if block is not None:
            if line == "@end":
                block = None
            else:
                pems.setdefault(block, []).append(line)
            continue
        if line.startswith("@pem "):
            block = line[5:].strip()
            continue
        match = _TOKEN_SHAPE.fullmatch(line.strip())
        if match:
            tokens.append(TokenShape(int(match.group(1)), match.group(2) == "yes", match.group(3)))
            continue
        key, sep, value = line.partition("=")
        if sep:
            values.setdefault(key, []).append(_unquote(value))
    ca_pem = client_pem = None
    for name, body in pems.items():
        text = "\n".join(body).strip() + "\n"
        if "BEGIN CERTIFICATE" not in text:
            problems.append(f"{name} does not decode to a certificate")
            continue
        if name == "certificate-authority-data":
            ca_pem = text
        elif name == "client-certificate-data":
            client_pem = text
    return KubeconfigSummary(
        present=True,
        mode=values["mode"][0] if values.get("mode") else None,
        servers=tuple(values.get("server", [])),
        ca_files=tuple(values.get("ca_file", [])),
        ca_pem=ca_pem,
        client_cert_files=tuple(values.get("client_cert_file", [])),
        client_key_files=tuple(values.get("client_key_file", [])),
        client_cert_pem=client_pem,
        client_key_data=bool(values.get("client_key_data")),
        context_users=tuple(values.get("context_user", [])),
        tokens=tuple(tokens),
        problems=tuple(problems),
    )


def _decode_certificate_field(key: str) -> str:
    """Print the PEM of a certificate field between `@pem KEY` and `@end` (certificates only)."""
    return (
        "d=$(sed -n " + shlex.quote(f"s/^ *{key}: *//p") + ' "$f" | head -n1); '
        "if [ -n \"$d\" ]; then printf '@pem %s\\n' " + shlex.quote(key) + "; "
        "printf '%s' \"$d\" | tr -d '\"' | base64 -d 2>/dev/null | openssl x509 2>&1; echo @end; fi"
    )


def kubeconfig_summary(path: str) -> Fact[KubeconfigSummary]:
    """Summarise a kubeconfig on its host (see the module docstring for what never leaves it)."""
    sed = "sed -n "
    script = "; ".join(
        [
            "f=" + shlex.quote(path),
            'if [ ! -e "$f" ]; then echo absent; exit 0; fi',
            "echo present",
            "stat -c 'mode=%a' \"$f\"",
            sed + shlex.quote("s/^ *server: */server=/p") + ' "$f"',
            sed + shlex.quote("s/^ *certificate-authority: */ca_file=/p") + ' "$f"',
            sed + shlex.quote("s/^ *client-certificate: */client_cert_file=/p") + ' "$f"',
            sed + shlex.quote("s/^ *client-key: */client_key_file=/p") + ' "$f"',
            "grep -q '^ *client-key-data:' \"$f\" && echo client_key_data=present",
            # context users ("user: NAME"); the users list's "user:" lines open a mapping (nothing after)
            sed + shlex.quote("s/^ *user: *\\([^ ].*\\)$/context_user=\\1/p") + ' "$f"',
            # tokens: length, shape and sha256 only; printf is a builtin, so no argv carries the value
            sed + shlex.quote("s/^ *token: *//p") + ' "$f" | while IFS= read -r t; do '
            "t=${t#\\\"}; t=${t%\\\"}; t=${t#\\'}; t=${t%\\'}; "
            'case "$t" in ""|*[!0-9a-fA-F]*) h=no ;; *) h=yes ;; esac; '
            'printf \'token length=%s hex=%s sha256=%s\\n\' "${#t}" "$h" '
            "\"$(printf '%s' \"$t\" | sha256sum | cut -d' ' -f1)\"; done",
            _decode_certificate_field("certificate-authority-data"),
            _decode_certificate_field("client-certificate-data"),
        ]
    )
    return Fact("kubeconfig:" + path, script, parse_kubeconfig_summary, requires=("openssl", "base64", "sha256sum"))


# ----------------------------------------------------------------------------- kubelet client certificate


@dataclass(frozen=True)
class ClientCertificate:
    path: str | None  # the kubelet-client-current.pem found
    resolved: str | None  # what the symlink points at
    pem: str | None


def parse_client_certificate(raw: Raw) -> ClientCertificate:
    if raw.stdout.strip() == "absent":
        return ClientCertificate(None, None, None)
    path = resolved = None
    pem_lines: list[str] = []
    for line in raw.stdout.splitlines():
        if line.startswith("@path "):
            path = line[6:].strip()
        elif line.startswith("@resolved "):
            resolved = line[10:].strip()
        else:
            pem_lines.append(line)
    pem = "\n".join(pem_lines).strip()
    if raw.rc != 0 or "BEGIN CERTIFICATE" not in pem:
        raise ParseError(f"{path}: openssl x509 could not read a certificate: {raw.stderr.strip()[:200]}")
    return ClientCertificate(path, resolved, pem + "\n")


# The directory from the running kubelet's --cert-dir, else the guide's and kubelet's defaults.
kubelet_client_certificate = Fact(
    "node:kubelet-client-cert",
    "pid=$(systemctl show -p MainPID --value kubelet.service 2>/dev/null); d=; "
    'if [ "${pid:-0}" != 0 ] && [ -r "/proc/$pid/cmdline" ]; then '
    "d=$(tr '\\0' '\\n' <\"/proc/$pid/cmdline\" | sed -n 's/^--cert-dir=//p' | tail -n1); fi; "
    'for dir in "$d" ' + shlex.quote(layout.K8S_SSL) + " /var/lib/kubelet/pki; do "
    'c="$dir/' + KUBELET_CLIENT_CERT + '"; '
    'if [ -n "$dir" ] && [ -e "$c" ]; then echo "@path $c"; echo "@resolved $(readlink -f "$c")"; '
    'openssl x509 -in "$c"; exit $?; fi; done; echo absent',
    parse_client_certificate,
    requires=("openssl",),
)


# ----------------------------------------------------------------------------- kube-proxy's data plane


@dataclass(frozen=True)
class ProxyDataplane:
    chains: dict[str, str]  # "iptables" / "iptables-legacy" -> "present" | "absent" | "no binary"
    ip_vs_modules: tuple[str, ...]


def parse_dataplane(raw: Raw) -> ProxyDataplane:
    chains: dict[str, str] = {}
    modules: tuple[str, ...] = ()
    for line in raw.stdout.splitlines():
        key, _, value = line.partition("=")
        if key == "modules":
            modules = tuple(value.split())
        elif key:
            chains[key] = value.strip()
    return ProxyDataplane(chains, modules)


def dataplane_fact(chain: str) -> Fact[ProxyDataplane]:
    return Fact(
        "node:proxy-dataplane",
        'for b in iptables iptables-legacy; do if command -v "$b" >/dev/null 2>&1; then '
        'if "$b" -w 5 -t nat -S ' + shlex.quote(chain) + ' >/dev/null 2>&1; then echo "$b=present"; '
        'else echo "$b=absent"; fi; else echo "$b=no binary"; fi; done; '
        "echo \"modules=$(awk '$1 ~ /^ip_vs/ { print $1 }' /proc/modules | tr '\\n' ' ')\"",
        parse_dataplane,
    )


def parse_text_answer(raw: Raw) -> str:
    """A small plain-text HTTP answer (/proxyMode, /healthz), or why there was none."""
    if raw.rc != 0:
        return "no answer: " + (raw.stderr.strip().splitlines() or [f"curl exit {raw.rc}"])[-1][:200]
    return raw.stdout.strip()


proxy_mode = Fact(
    "node:proxy-mode",
    shlex.join(["curl", "-sS", "--connect-timeout", "2", "-m", "4", "--fail", PROXY_MODE_URL]),
    parse_text_answer,
    requires=("curl",),
)
kubelet_healthz = Fact(
    "node:kubelet-healthz",
    shlex.join(["curl", "-sS", "--connect-timeout", "2", "-m", "4", "--fail", KUBELET_HEALTHZ_URL]),
    parse_text_answer,
    requires=("curl",),
)


# ----------------------------------------------------------------------------- flannel (SMOKE-02)


def parse_subnet_env(text: str | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.strip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


# Same name and command as any other module's file_text of this path: the cache holds one copy.
flannel_subnet_env = file_text(layout.FLANNEL_SUBNET_ENV)


# ----------------------------------------------------------------------------- fact sets

node_units = units_state("node", NODE_UNITS)
node_processes = processes_fact("node", NODE_UNITS)
node_versions = binary_versions("node", NODE_BINARIES)
node_kubeconfigs = {name: kubeconfig_summary(path) for name, path in KUBECONFIGS.items()}
proxy_dataplane = dataplane_fact("KUBE-SERVICES")
kubernetes_ca_on_node = file_text(layout.K8S_SSL + "/ca.pem")


@fact_set("node", groups=("NODE", "SMOKE"))
def node_facts(cluster: Cluster, host: HostSpec) -> list[Fact[Any]]:
    return [
        node_units,
        node_processes,
        node_versions,
        *node_kubeconfigs.values(),
        kubelet_client_certificate,
        proxy_mode,
        proxy_dataplane,
        kubelet_healthz,
        flannel_subnet_env,
    ]
