"""Pure renderers: cluster model (and a few host facts) in, file text out. No I/O, tested offline.

The layout and the variable names are the guide's (etcd.sh) and its series' (apiserver.sh,
scheduler.sh, controller-manager.sh, kubelet.sh, proxy.sh): option files under /opt/kubernetes/cfg
hold ``<COMPONENT>_OPTS="..."`` and the unit passes ``$<COMPONENT>_OPTS``.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import yaml

from kubeproof import layout
from kubeproof.bootstrap.artifacts import BinaryInfo
from kubeproof.bootstrap.errors import BootstrapError
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.versions import (
    COMPONENT_INSECURE_SERVING_REMOVED,
    ETCD_V2_REMOVED,
    ETCDCTL_V3_DEFAULT,
    UNKNOWN,
    Version,
    apiserver_has_insecure_port,
    flannel_etcd_api,
)

HEADER = "# Managed by kubeproof bootstrap; a re-run rewrites local edits.\n"

ETCD_CLUSTER_TOKEN = "etcd-cluster"  # noqa: S105 - etcd.sh's cluster name, not a secret
APISERVER_PORT = 6443
CRI_DOCKERD_SOCKET = "unix:///run/cri-dockerd.sock"
CRI_DOCKERD_UNIT = "cri-dockerd.service"
DOCKER_UNIT = "docker.service"
FLANNEL_NETWORK_KEY = "/coreos.com/network/config"
FLANNEL_DOCKER_ENV = layout.FLANNEL_DOCKER_OPTS  # /run/flannel/docker
DOCKER_DROPIN = "/etc/systemd/system/docker.service.d/flannel.conf"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc"
# The series' admission list; what the release lacks is left out (and said so), NodeRestriction is a must.
SERIES_ADMISSION_PLUGINS = ("NamespaceLifecycle", "LimitRanger", "ServiceAccount", "ResourceQuota", "NodeRestriction")


def master_address(cluster: Cluster) -> str:
    masters = cluster.masters
    if not masters:
        raise BootstrapError("the cluster file has no host with role master")
    return masters[0].address


def apiserver_url(cluster: Cluster) -> str:
    return f"https://{master_address(cluster)}:{APISERVER_PORT}"


# ----------------------------------------------------------------------------- environment

HOSTS_BEGIN = "# BEGIN kubeproof cluster hosts (managed by kubeproof bootstrap)"
HOSTS_END = "# END kubeproof cluster hosts"


def hosts_block(cluster: Cluster) -> list[str]:
    return [HOSTS_BEGIN, *(f"{h.address} {h.name}" for h in cluster.hosts), HOSTS_END]


def edit_etc_hosts(current: str, cluster: Cluster) -> str:
    """/etc/hosts with the managed block first (the resolver takes the first match: it must be ours).

    Everything outside the block is kept as it is.
    """
    lines = current.split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    kept: list[str] = []
    inside = False
    for line in lines:
        if line.strip() == HOSTS_BEGIN:
            inside = True
            continue
        if inside:
            if line.strip() == HOSTS_END:
                inside = False
            continue
        kept.append(line)
    return "\n".join([*hosts_block(cluster), *kept]) + "\n"


def comment_fstab_swap(current: str) -> str:
    """The guide's `sed -ri 's/.*swap.*/#&/'`, narrowed to active entries whose type is swap."""
    out = []
    for line in current.split("\n"):
        fields = line.split()
        if fields and not fields[0].startswith("#") and len(fields) >= 3 and fields[2] == "swap":
            out.append("#" + line)
        else:
            out.append(line)
    return "\n".join(out)


BRIDGE_SYSCTLS = ("net.bridge.bridge-nf-call-ip6tables", "net.bridge.bridge-nf-call-iptables")


def sysctl_k8s_conf() -> str:
    return "".join(f"{key} = 1\n" for key in BRIDGE_SYSCTLS)


def edit_sysctl_conf(current: str) -> str:
    """An existing k8s.conf we did not write: set the two keys to 1, leave every other line alone."""
    out: list[str] = []
    seen: set[str] = set()
    for line in current.split("\n"):
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith(("#", ";")) else ""
        if key in BRIDGE_SYSCTLS:
            if key in seen:
                continue
            seen.add(key)
            out.append(f"{key} = 1")
        else:
            out.append(line)
    text = "\n".join(out)
    if text and not text.endswith("\n"):
        text += "\n"
    for key in BRIDGE_SYSCTLS:
        if key not in seen:
            text += f"{key} = 1\n"
    return text


# ----------------------------------------------------------------------------- etcd


def etcd_env(cluster: Cluster, host: HostSpec, state: str = "new", *, enable_v2: bool = False) -> str:
    """/opt/etcd/cfg/etcd as etcd.sh writes it, every URL with the member's OWN address.

    The guide's extra loopback client listener lives here, not as a flag: etcd >= 3.4 refuses to
    start when a setting comes from both an ETCD_* variable and its flag. ``state`` is "existing"
    for a member that was removed and added again (its data dir lost): etcd reads it only while
    the data dir is empty, so the installer keeps whichever the file says once the member runs.
    ``enable_v2`` (etcd 3.4/3.5 beside a flanneld that reads the v2 API, see ``etcd_enable_v2``)
    adds ETCD_ENABLE_V2; etcd 3.3 serves v2 by default and 3.6 has no v2 API at all.
    """
    if state not in ("new", "existing"):
        raise BootstrapError(f"ETCD_INITIAL_CLUSTER_STATE must be new or existing, not {state!r}")
    if not host.etcd_name:
        raise BootstrapError(f"{host.name} has no etcd_name")
    ip = host.address
    return (
        HEADER
        + "#[Member]\n"
        + f'ETCD_NAME="{host.etcd_name}"\n'
        + f'ETCD_DATA_DIR="{layout.ETCD_DATA_DIR}"\n'
        + f'ETCD_LISTEN_PEER_URLS="https://{ip}:2380"\n'
        + f'ETCD_LISTEN_CLIENT_URLS="https://{ip}:2379,http://127.0.0.1:2379"\n'
        + "\n#[Clustering]\n"
        + f'ETCD_INITIAL_ADVERTISE_PEER_URLS="https://{ip}:2380"\n'
        + f'ETCD_ADVERTISE_CLIENT_URLS="https://{ip}:2379"\n'
        + f'ETCD_INITIAL_CLUSTER="{cluster.etcd_initial_cluster}"\n'
        + f'ETCD_INITIAL_CLUSTER_TOKEN="{ETCD_CLUSTER_TOKEN}"\n'
        + f'ETCD_INITIAL_CLUSTER_STATE="{state}"\n'
        + ('ETCD_ENABLE_V2="true"\n' if enable_v2 else "")
    )


def etcd_enable_v2(etcd: Version, flannel: Version) -> bool:
    """Whether etcd must be told to serve the v2 API: only for a flanneld that reads v2 (before
    v0.18) beside etcd 3.4/3.5 (v2 off by default). etcd >= 3.6 has no v2 API: that pair cannot work."""
    if flannel_etcd_api(flannel) == 3:
        return False
    if etcd >= ETCD_V2_REMOVED:
        raise BootstrapError(
            f"flanneld v{flannel} reads its config through the etcd v2 API, which etcd {etcd} no longer has "
            "(removed in 3.6): use flannel >= v0.18 (etcd v3 API) or etcd < 3.6"
        )
    return etcd >= Version(3, 4)


def parse_env_file(text: str) -> dict[str, str]:
    """KEY="value" lines (systemd EnvironmentFile subset), for tests and checks."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, value = stripped.partition("=")
        values[key.strip()] = value.strip().strip('"')
    return values


def etcd_unit() -> str:
    """etcd.service as etcd.sh writes it, minus every flag its EnvironmentFile already sets."""
    ssl = layout.ETCD_SSL
    flags = [
        f"--cert-file={ssl}/server.pem",
        f"--key-file={ssl}/server-key.pem",
        f"--trusted-ca-file={ssl}/ca.pem",
        f"--peer-cert-file={ssl}/server.pem",
        f"--peer-key-file={ssl}/server-key.pem",
        f"--peer-trusted-ca-file={ssl}/ca.pem",
        # Not in the guide: without these any client that reaches :2379 reads and writes all
        # cluster state (SEC-01). Every client here presents server.pem, so nothing breaks.
        "--client-cert-auth",
        "--peer-client-cert-auth",
    ]
    exec_start = f"{layout.ETCD_BIN}/etcd " + " \\\n  ".join(flags)
    return (
        HEADER
        + "[Unit]\n"
        + "Description=Etcd Server\n"
        + "After=network.target\n"
        + "After=network-online.target\n"
        + "Wants=network-online.target\n"
        + "\n[Service]\n"
        + "Type=notify\n"
        + f"EnvironmentFile={layout.ETCD_ENV_FILE}\n"
        + f"ExecStart={exec_start}\n"
        + "Restart=on-failure\n"
        + "LimitNOFILE=65536\n"
        + "\n[Install]\n"
        + "WantedBy=multi-user.target\n"
    )


def etcdctl_argv(cluster: Cluster, *args: str, etcd: Version | None = None) -> list[str]:
    """etcdctl (v3 API) against every member over TLS with the server certificate.

    v3 is etcdctl's default from 3.4; an older etcdctl (``etcd`` < 3.4) is told ETCDCTL_API=3.
    """
    ssl = layout.ETCD_SSL
    prefix = ["env", "ETCDCTL_API=3"] if etcd is not None and etcd < ETCDCTL_V3_DEFAULT else []
    return [
        *prefix,
        f"{layout.ETCD_BIN}/etcdctl",
        "--endpoints=" + ",".join(cluster.etcd_client_urls),
        f"--cacert={ssl}/ca.pem",
        f"--cert={ssl}/server.pem",
        f"--key={ssl}/server-key.pem",
        *args,
    ]


def etcdctl_v2_argv(cluster: Cluster, *args: str) -> list[str]:
    """etcdctl's v2 commands (ETCDCTL_API=2; the default of 3.3) against every member over TLS.

    The v2 global flags are --endpoints, --ca-file, --cert-file, --key-file (etcd 3.3.27
    etcdctl/ctlv2/ctl.go), not the v3 --cacert/--cert/--key.
    """
    ssl = layout.ETCD_SSL
    return [
        "env",
        "ETCDCTL_API=2",
        f"{layout.ETCD_BIN}/etcdctl",
        "--endpoints=" + ",".join(cluster.etcd_client_urls),
        f"--ca-file={ssl}/ca.pem",
        f"--cert-file={ssl}/server.pem",
        f"--key-file={ssl}/server-key.pem",
        *args,
    ]


# ----------------------------------------------------------------------------- flannel and docker


def flannel_config_get_argv(cluster: Cluster, flannel: Version, etcd: Version | None = None) -> list[str]:
    """Read /coreos.com/network/config through the etcd API this flanneld reads (v2 before v0.18)."""
    if flannel_etcd_api(flannel) == 2:
        return etcdctl_v2_argv(cluster, "get", FLANNEL_NETWORK_KEY)
    return etcdctl_argv(cluster, "get", FLANNEL_NETWORK_KEY, "--print-value-only", "--command-timeout=5s", etcd=etcd)


def flannel_config_put_argv(cluster: Cluster, flannel: Version, etcd: Version | None = None) -> list[str]:
    """Write the network config where this flanneld reads it: the guide's
    `ETCDCTL_API=2 etcdctl set /coreos.com/network/config '{...}'`, or a v3 put."""
    value = flannel_network_config(cluster)
    if flannel_etcd_api(flannel) == 2:
        return etcdctl_v2_argv(cluster, "set", FLANNEL_NETWORK_KEY, value)
    return etcdctl_argv(cluster, "put", FLANNEL_NETWORK_KEY, value, "--command-timeout=10s", etcd=etcd)


def flannel_network_config(cluster: Cluster) -> str:
    return json.dumps({"Network": cluster.network.pod_cidr, "Backend": {"Type": cluster.network.flannel_backend}})


def flanneld_options(cluster: Cluster, iface: str) -> str:
    ssl = layout.ETCD_SSL
    options = (
        f"--etcd-endpoints={','.join(cluster.etcd_client_urls)} "
        f"-etcd-cafile={ssl}/ca.pem -etcd-certfile={ssl}/server.pem -etcd-keyfile={ssl}/server-key.pem "
        f"--iface={iface}"
    )
    return HEADER + f'FLANNEL_OPTIONS="{options}"\n'


def flanneld_unit() -> str:
    return (
        HEADER
        + "[Unit]\n"
        + "Description=Flanneld overlay address etcd agent\n"
        + "After=network-online.target network.target\n"
        + "Before=docker.service\n"
        + "\n[Service]\n"
        + "Type=notify\n"
        + f"EnvironmentFile={layout.K8S_CFG}/flanneld\n"
        + f"ExecStart={layout.K8S_BIN}/flanneld --ip-masq $FLANNEL_OPTIONS\n"
        + f"ExecStartPost={layout.K8S_BIN}/mk-docker-opts.sh -k DOCKER_NETWORK_OPTIONS -d {FLANNEL_DOCKER_ENV}\n"
        + "Restart=on-failure\n"
        + "\n[Install]\n"
        + "WantedBy=multi-user.target\n"
    )


def parse_exec_start(unit_text: str) -> list[str]:
    """The effective ExecStart argv of a unit fragment (the last assignment wins; 'ExecStart=' resets)."""
    joined: list[str] = []
    pending = ""
    for raw in unit_text.split("\n"):
        line = pending + raw
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        joined.append(line)
    command: list[str] = []
    section = ""
    for line in joined:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped
            continue
        if section != "[Service]" or not stripped.startswith("ExecStart="):
            continue
        value = stripped[len("ExecStart=") :].strip()
        command = shlex.split(value) if value else []
    # systemd's prefixes (-, @, +, !, :) are not part of the command
    if command:
        command[0] = command[0].lstrip("-@+!:")
    return command


def docker_dropin(original_exec_start: Sequence[str]) -> str:
    """docker.service drop-in: the guide's 7.3, docker0 moved into the flannel subnet.

    The original ExecStart is kept (read from the node's own docker.service) with
    $DOCKER_NETWORK_OPTIONS (written by mk-docker-opts.sh) added after the binary.
    """
    if not original_exec_start:
        raise BootstrapError("docker.service has no ExecStart to extend")
    argv = [original_exec_start[0], "$DOCKER_NETWORK_OPTIONS", *original_exec_start[1:]]
    exec_start = " ".join(a if a.startswith("$") else shlex.quote(a) for a in argv)
    return (
        HEADER
        + "[Unit]\n"
        + "After=flanneld.service\n"
        + "Requires=flanneld.service\n"
        + "\n[Service]\n"
        + f"EnvironmentFile={FLANNEL_DOCKER_ENV}\n"
        + f"EnvironmentFile={layout.FLANNEL_SUBNET_ENV}\n"
        + "ExecStart=\n"
        + f"ExecStart={exec_start}\n"
        # dockerd applies --mtu only when it creates docker0; a bridge that existed before flannel
        # (docker started once already) keeps 1500 (FLANNEL-06). systemd expands ${FLANNEL_MTU}.
        + 'ExecStartPost=/bin/sh -c "ip link set dev docker0 mtu ${FLANNEL_MTU}"\n'
    )


# ----------------------------------------------------------------------------- kubeconfigs and token


def token_csv(token: str) -> str:
    return f'{token},kubelet-bootstrap,10001,"system:kubelet-bootstrap"\n'


def parse_token_csv(text: str) -> str | None:
    for line in text.splitlines():
        fields = line.strip().split(",")
        if len(fields) >= 3 and fields[1] == "kubelet-bootstrap":
            return fields[0]
    return None


def kubeconfig(
    server: str,
    ca_pem: bytes,
    user: str,
    *,
    token: str | None = None,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
) -> str:
    credentials: dict[str, str] = {}
    if token is not None:
        credentials["token"] = token
    if cert_pem is not None and key_pem is not None:
        credentials["client-certificate-data"] = base64.b64encode(cert_pem).decode()
        credentials["client-key-data"] = base64.b64encode(key_pem).decode()
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubernetes",
                "cluster": {"certificate-authority-data": base64.b64encode(ca_pem).decode(), "server": server},
            }
        ],
        "contexts": [{"name": "default", "context": {"cluster": "kubernetes", "user": user}}],
        "current-context": "default",
        "preferences": {},
        "users": [{"name": user, "user": credentials}],
    }
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


# ----------------------------------------------------------------------------- flags


@dataclass(frozen=True)
class Flag:
    name: str
    value: str | None = None  # None: a boolean switch given bare (--enable-bootstrap-token-auth)
    required: bool = True
    why_optional: str = ""
    # the releases that take it: since <= version < until (None: no bound)
    since: Version | None = None
    until: Version | None = None

    def applies_to(self, version: Version) -> bool:
        return (self.since is None or version >= self.since) and (self.until is None or version < self.until)

    def render(self) -> str:
        return f"--{self.name}" if self.value is None else f"--{self.name}={self.value}"


def select_flags(info: BinaryInfo, flags: Iterable[Flag]) -> tuple[list[str], list[str]]:
    """The flags this release accepts; a missing required flag stops the run, a missing optional one is noted."""
    args: list[str] = []
    notes: list[str] = []
    for flag in flags:
        if not flag.applies_to(info.release):
            continue
        if info.has(flag.name):
            args.append(flag.render())
        elif flag.required:
            raise BootstrapError(
                f"{info.name} {info.version} has no --{flag.name}, which the guide's setup needs: "
                "use a release that has it"
            )
        elif flag.why_optional:
            notes.append(f"{info.name} {info.version}: {flag.why_optional}")
    return args, notes


def options_file(variable: str, args: Sequence[str]) -> str:
    """KUBE_APISERVER_OPTS="--a=b \\ ... " as the series writes it (systemd joins the continued lines)."""
    body = " \\\n".join(args)
    return HEADER + f'{variable}="{body}"\n'


def apiserver_flags(cluster: Cluster, host: HostSpec, info: BinaryInfo) -> tuple[list[str], list[str]]:
    ssl, etcd_ssl = layout.K8S_SSL, layout.ETCD_SSL
    notes: list[str] = []
    available = info.admission_plugins
    plugins = [p for p in SERIES_ADMISSION_PLUGINS if not available or p in available]
    dropped = [p for p in SERIES_ADMISSION_PLUGINS if p not in plugins]
    if "NodeRestriction" in dropped:
        raise BootstrapError(f"kube-apiserver {info.version} has no NodeRestriction admission plugin")
    if dropped:
        notes.append(f"kube-apiserver {info.version} has no admission plugin {', '.join(dropped)}: left out")
    flags = [
        Flag("logtostderr", "true", required=False),
        Flag("v", "2"),
        Flag("etcd-servers", ",".join(cluster.etcd_client_urls)),
        Flag("etcd-cafile", f"{etcd_ssl}/ca.pem"),
        Flag("etcd-certfile", f"{etcd_ssl}/server.pem"),
        Flag("etcd-keyfile", f"{etcd_ssl}/server-key.pem"),
        Flag("bind-address", host.address),
        Flag("secure-port", str(APISERVER_PORT)),
        Flag("advertise-address", host.address),
        Flag("allow-privileged", "true"),
        Flag("service-cluster-ip-range", cluster.network.service_cidr),
        Flag("enable-admission-plugins", ",".join(plugins)),
        Flag("authorization-mode", "RBAC,Node"),
        Flag("enable-bootstrap-token-auth"),
        Flag("token-auth-file", layout.TOKEN_CSV),
        Flag("service-node-port-range", "30000-50000"),
        Flag("kubelet-client-certificate", f"{ssl}/apiserver.pem"),
        Flag("kubelet-client-key", f"{ssl}/apiserver-key.pem"),
        Flag("tls-cert-file", f"{ssl}/apiserver.pem"),
        Flag("tls-private-key-file", f"{ssl}/apiserver-key.pem"),
        Flag("client-ca-file", f"{ssl}/ca.pem"),
        Flag("service-account-key-file", f"{ssl}/sa.pem"),
        Flag(
            "service-account-signing-key-file",
            f"{ssl}/sa-key.pem",
            required=False,
            why_optional="no --service-account-signing-key-file (before 1.20): legacy service-account tokens",
        ),
        Flag("service-account-issuer", SERVICE_ACCOUNT_ISSUER, required=False),
    ]
    # keyed on the version; --help decides only where the binary printed none
    known = info.release != UNKNOWN
    insecure = apiserver_has_insecure_port(info.release) if known else info.has("insecure-port")
    if insecure:
        # The series' insecure port, kept where the release still has one: loopback only (MASTER-05).
        flags += [Flag("insecure-bind-address", "127.0.0.1"), Flag("insecure-port", "8080")]
    else:
        notes.append(f"kube-apiserver {info.version} has no insecure port (removed in 1.20): nothing on 8080")
    args, more = select_flags(info, flags)
    return args, notes + more


def kubeconfig_path(component: str) -> str:
    return f"{layout.K8S_CFG}/{component}.kubeconfig"


def controller_manager_flags(cluster: Cluster, info: BinaryInfo) -> tuple[list[str], list[str]]:
    ssl = layout.K8S_SSL
    kubeconfig_file = kubeconfig_path("kube-controller-manager")
    duration = (
        "cluster-signing-duration" if info.has("cluster-signing-duration") else "experimental-cluster-signing-duration"
    )
    flags = [
        Flag("logtostderr", "true", required=False),
        Flag("v", "2"),
        Flag("kubeconfig", kubeconfig_file),
        Flag("authentication-kubeconfig", kubeconfig_file, required=False),
        Flag("authorization-kubeconfig", kubeconfig_file, required=False),
        Flag("bind-address", "127.0.0.1"),
        # before v1.23 it also serves plain HTTP on 0.0.0.0:10252, where ComponentStatus asks it
        # on 127.0.0.1 (kubectl get cs): loopback only
        Flag("address", "127.0.0.1", required=False, until=COMPONENT_INSECURE_SERVING_REMOVED),
        Flag("leader-elect", "true"),
        Flag("service-cluster-ip-range", cluster.network.service_cidr),
        Flag("cluster-name", "kubernetes"),
        Flag("cluster-signing-cert-file", f"{ssl}/ca.pem"),
        Flag("cluster-signing-key-file", f"{ssl}/ca-key.pem"),
        Flag(duration, "87600h"),
        Flag("root-ca-file", f"{ssl}/ca.pem"),
        Flag("service-account-private-key-file", f"{ssl}/sa-key.pem"),
        Flag("use-service-account-credentials", "true"),
    ]
    return select_flags(info, flags)


def scheduler_flags(info: BinaryInfo) -> tuple[list[str], list[str]]:
    kubeconfig_file = kubeconfig_path("kube-scheduler")
    flags = [
        Flag("logtostderr", "true", required=False),
        Flag("v", "2"),
        Flag("kubeconfig", kubeconfig_file),
        Flag("authentication-kubeconfig", kubeconfig_file, required=False),
        Flag("authorization-kubeconfig", kubeconfig_file, required=False),
        Flag("bind-address", "127.0.0.1"),
        # before v1.23 it also serves plain HTTP on 0.0.0.0:10251 (ComponentStatus): loopback only
        Flag("address", "127.0.0.1", required=False, until=COMPONENT_INSECURE_SERVING_REMOVED),
        Flag("leader-elect", "true"),
    ]
    return select_flags(info, flags)


def component_unit(
    description: str,
    binary: str,
    variable: str,
    *,
    after: Sequence[str] = (),
    requires: Sequence[str] = (),
    wants: Sequence[str] = (),
    notify: bool = False,
) -> str:
    unit = HEADER + "[Unit]\n" + f"Description={description}\n"
    unit += "Documentation=https://github.com/kubernetes/kubernetes\n"
    if after:
        unit += f"After={' '.join(after)}\n"
    if requires:
        unit += f"Requires={' '.join(requires)}\n"
    if wants:
        unit += f"Wants={' '.join(wants)}\n"
    unit += "\n[Service]\n"
    if notify:
        unit += "Type=notify\n"
    unit += f"EnvironmentFile={layout.K8S_CFG}/{binary}\n"
    unit += f"ExecStart={layout.K8S_BIN}/{binary} ${variable}\n"
    unit += "Restart=on-failure\n"
    unit += "RestartSec=5\n"
    unit += "LimitNOFILE=65536\n"
    unit += "\n[Install]\nWantedBy=multi-user.target\n"
    return unit
