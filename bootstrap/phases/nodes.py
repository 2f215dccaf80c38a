"""Phase 7, the series' 六、部署 Worker Node 组件: cri-dockerd, kubelet (TLS bootstrap), kube-proxy.

The kubelet's release decides how it reaches docker: its built-in dockershim before v1.24 (no
cri-dockerd at all), cri-dockerd's socket from v1.24 (kubeproof.versions.DOCKERSHIM_REMOVED).

The guide's 3.5 RBAC (kubelet-bootstrap -> system:node-bootstrapper) and 5.2 CSR approval are done
through the API with the admin certificate; only CSRs that are exactly a worker kubelet's bootstrap
request are approved (bootstrap/csr.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from kubeproof import layout
from kubeproof.bootstrap import csr, render, render_nodes
from kubeproof.bootstrap.content import Content
from kubeproof.bootstrap.context import RunContext
from kubeproof.bootstrap.engine import (
    API_HOST,
    STAGE_API,
    STAGE_WAIT,
    Change,
    DiffResult,
    Directory,
    File,
    Note,
    Resource,
    Unit,
)
from kubeproof.bootstrap.errors import BootstrapError, ConflictError
from kubeproof.bootstrap.kubeapi import MANAGED_BY, MANAGED_BY_LABEL, ApiError, KubeApi
from kubeproof.bootstrap.phases import Phase
from kubeproof.inventory import HostSpec
from kubeproof.versions import KUBELET_REFUSES_CGROUP_V1, kubelet_uses_dockershim

NAME = "nodes"
CRI_DOCKERD = render.CRI_DOCKERD_UNIT
KUBELET = "kubelet.service"
KUBE_PROXY = "kube-proxy.service"
BINARIES = ("kubelet", "kube-proxy")
CSR_TIMEOUT = 150.0
READY_TIMEOUT = 180.0


def proxy_mode(ctx: RunContext, host: HostSpec) -> tuple[str, list[str]]:
    """The declared mode, or iptables with a note where ipvs is declared but the kernel has no ip_vs."""
    declared = ctx.cluster.network.kube_proxy_mode
    if declared == "ipvs" and not ctx.profile(host).ip_vs:
        return "iptables", [
            f"kube-proxy on {host.name}: mode ipvs is declared but the ip_vs modules are absent "
            "(no /sys/module/ip_vs, none in /proc/modules): FALLING BACK to iptables; NODE-09 will report it"
        ]
    return declared, []


def desired(ctx: RunContext, host: HostSpec) -> list[Resource]:
    cluster = ctx.cluster
    profile = ctx.profile(host)
    cfg = layout.K8S_CFG
    pki_dir = ctx.pki_dir / "kubernetes"
    ca_pem = (pki_dir / "ca.pem").read_bytes()
    server = render.apiserver_url(cluster)
    mode, notes = proxy_mode(ctx, host)
    if not profile.conntrack_writable:
        notes.append(
            f"kube-proxy on {host.name}: /proc/sys/net/netfilter/nf_conntrack_max is not writable here (not the "
            "init network namespace): conntrack.maxPerCore 0 and tcp timeouts 0s, kube-proxy leaves them alone"
        )
    if profile.swaps:
        notes.append(f"kubelet on {host.name}: swap is active ({', '.join(profile.swaps)}): failSwapOn false")
    kubelet_info = ctx.binary("kubelet")
    kubelet_version = render_nodes.known_release(kubelet_info)
    dockershim = kubelet_uses_dockershim(kubelet_version)
    cgroup_v1 = profile.cgroup_fs != "cgroup2fs"
    if cgroup_v1 and kubelet_version >= KUBELET_REFUSES_CGROUP_V1:
        notes.append(
            f"kubelet {kubelet_version.v} on {host.name}: cgroup v1 host ({profile.cgroup_fs} on /sys/fs/cgroup): "
            "failCgroupV1 false in its config"
        )
    kubelet_args, kubelet_notes = render_nodes.kubelet_flags(cluster, host, kubelet_info)
    proxy_args, proxy_notes = render_nodes.kube_proxy_flags(ctx.binary("kube-proxy"))
    # cri-dockerd (binary, unit, service) only beside a kubelet without dockershim
    runtime: list[Resource] = []
    if not dockershim:
        runtime = [
            File(f"{layout.K8S_BIN}/cri-dockerd", ctx.artifacts.content("cri-dockerd"), 0o755, restarts=(CRI_DOCKERD,)),
            File(
                f"{layout.SYSTEMD_DIR}/{CRI_DOCKERD}",
                Content.text(render_nodes.cri_dockerd_unit(cluster)),
                restarts=(CRI_DOCKERD,),
            ),
            Unit(CRI_DOCKERD),
        ]
    resources: list[Resource] = [Note(host.name, NAME, n) for n in notes + kubelet_notes + proxy_notes]
    resources += [
        Directory(layout.K8S_HOME),
        Directory(layout.K8S_BIN),
        Directory(layout.K8S_CFG),
        Directory(layout.K8S_SSL),
        Directory(layout.K8S_LOGS),
        File(f"{layout.K8S_BIN}/kubelet", ctx.artifacts.content("kubelet"), 0o755, restarts=(KUBELET,)),
        File(f"{layout.K8S_BIN}/kube-proxy", ctx.artifacts.content("kube-proxy"), 0o755, restarts=(KUBE_PROXY,)),
        *runtime[:1],
        File(
            f"{cfg}/bootstrap.kubeconfig",
            Content.text(render.kubeconfig(server, ca_pem, "kubelet-bootstrap", token=ctx.token)),
            0o600,
            True,
            (KUBELET,),
        ),
        File(
            f"{cfg}/kube-proxy.kubeconfig",
            Content.text(
                render.kubeconfig(
                    server,
                    ca_pem,
                    "kube-proxy",
                    cert_pem=(pki_dir / "kube-proxy.pem").read_bytes(),
                    key_pem=(pki_dir / "kube-proxy-key.pem").read_bytes(),
                )
            ),
            0o600,
            True,
            (KUBE_PROXY,),
        ),
        File(f"{cfg}/kubelet", Content.text(render.options_file("KUBELET_OPTS", kubelet_args)), restarts=(KUBELET,)),
        File(
            f"{cfg}/kubelet-config.yaml",
            Content.text(
                render_nodes.kubelet_config(
                    cluster,
                    host,
                    cgroup_driver=profile.cgroup_driver,
                    swap_active=bool(profile.swaps),
                    version=kubelet_version,
                    cgroup_v1=cgroup_v1,
                )
            ),
            restarts=(KUBELET,),
        ),
        File(
            f"{cfg}/kube-proxy",
            Content.text(render.options_file("KUBE_PROXY_OPTS", proxy_args)),
            restarts=(KUBE_PROXY,),
        ),
        File(
            f"{cfg}/kube-proxy-config.yaml",
            Content.text(
                render_nodes.kube_proxy_config(cluster, host, mode=mode, conntrack_writable=profile.conntrack_writable)
            ),
            restarts=(KUBE_PROXY,),
        ),
        *runtime[1:2],
        File(
            f"{layout.SYSTEMD_DIR}/{KUBELET}",
            Content.text(render_nodes.kubelet_unit(kubelet_version)),
            restarts=(KUBELET,),
        ),
        File(
            f"{layout.SYSTEMD_DIR}/{KUBE_PROXY}",
            Content.text(
                render.component_unit("Kubernetes Proxy", "kube-proxy", "KUBE_PROXY_OPTS", after=("network.target",))
            ),
            restarts=(KUBE_PROXY,),
        ),
        *runtime[2:],
        Unit(KUBELET),
        Unit(KUBE_PROXY),
    ]
    return resources


def runtime_artifacts(ctx: RunContext) -> tuple[str, ...]:
    """cri-dockerd only where the kubelet has no dockershim (v1.24 and later)."""
    return () if kubelet_uses_dockershim(render_nodes.known_release(ctx.binary("kubelet"))) else ("cri-dockerd",)


# ----------------------------------------------------------------------------- API: RBAC and CSRs


def apiserver_client_name(ctx: RunContext) -> str:
    """CN of apiserver.pem: the user kube-apiserver is when it calls kubelets (logs, exec)."""
    cert = x509.load_pem_x509_certificate((ctx.pki_dir / "kubernetes" / "apiserver.pem").read_bytes())
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else "kubernetes"


def binding_body(name: str, role: str, user: str) -> dict[str, Any]:
    group = "rbac.authorization.k8s.io"
    return {
        "apiVersion": f"{group}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
        "roleRef": {"apiGroup": group, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": group, "kind": "User", "name": user}],
    }


def wanted_bindings(ctx: RunContext) -> list[dict[str, Any]]:
    return [
        # the guide's 3.5: kubectl create clusterrolebinding kubelet-bootstrap --clusterrole=system:node-bootstrapper
        binding_body("kubelet-bootstrap", "system:node-bootstrapper", "kubelet-bootstrap"),
        # kubelet authorizes by webhook: the apiserver's client identity may use the kubelet API (logs, exec)
        binding_body("kubeproof:apiserver-kubelet-api-admin", "system:kubelet-api-admin", apiserver_client_name(ctx)),
    ]


def binding_matches(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    subject = wanted["subjects"][0]
    subjects = current.get("subjects") or []
    has_subject = any(s.get("kind") == subject["kind"] and s.get("name") == subject["name"] for s in subjects)
    return bool(current.get("roleRef", {}).get("name") == wanted["roleRef"]["name"] and has_subject)


def binding_changes(ctx: RunContext, api_up: bool) -> DiffResult:
    out: DiffResult = []
    for body in wanted_bindings(ctx):
        name = body["metadata"]["name"]
        summary = f"clusterrolebinding {name}: user {body['subjects'][0]['name']} -> {body['roleRef']['name']}"
        current = ctx.api().cluster_role_binding(name) if api_up else None
        if current is not None and binding_matches(current, body):
            continue
        if current is not None:
            labels = (current.get("metadata") or {}).get("labels") or {}
            if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
                raise ConflictError(
                    f"clusterrolebinding {name} exists with other subjects or role and was not created by kubeproof: "
                    f"left alone; delete it (kubectl delete clusterrolebinding {name}) to have it made as {summary}"
                )

        def apply(body: dict[str, Any] = body, exists: bool = current is not None) -> None:
            api = ctx.api()
            api.wait_ready(60)
            if not exists and api.cluster_role_binding(body["metadata"]["name"]) is not None:
                exists = True
            api.put_cluster_role_binding(body, exists)

        verb = "replace" if current is not None else "create"
        later = "" if api_up else " (apiserver not up yet)"
        out.append(Change(API_HOST, NAME, f"{verb} {summary}{later}", apply, STAGE_API))
    return out


def _approve_loop(ctx: RunContext, waiting: set[str]) -> None:
    """Approve each waiting worker's bootstrap CSR as it appears, until every one has registered."""
    api = ctx.api()
    workers = [w.name for w in ctx.cluster.workers]
    reported: set[str] = set()
    deadline = time.monotonic() + CSR_TIMEOUT
    started = time.monotonic()
    while True:
        try:
            _approve_round(ctx, api, workers, reported, started, waiting)
        except ApiError as exc:
            ctx.reporter.debug(f"CSR round failed, retrying: {exc}")
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise BootstrapError(
                f"no approvable kubelet CSR / node registration from {', '.join(sorted(waiting))} within "
                f"{CSR_TIMEOUT:.0f}s: see `journalctl -u kubelet` there"
            )
        time.sleep(1.0)


def _approve_round(
    ctx: RunContext, api: KubeApi, workers: list[str], reported: set[str], started: float, waiting: set[str]
) -> None:
    for item in api.csrs():
        name = item["metadata"]["name"]
        if csr.csr_state(item) != "Pending":
            continue
        verdict = csr.judge_csr(item, workers)
        if verdict.approvable:
            api.approve_csr(item, f"kubeproof bootstrap: kubelet client certificate of worker {verdict.node}")
            ctx.reporter.line(
                f"        approved CSR {name} for {verdict.node} ({time.monotonic() - started:.1f}s after start)"
            )
        elif name not in reported:
            reported.add(name)
            ctx.reporter.line(f"        left alone: CSR {csr.describe(item)}: {verdict.reason}")
    registered = set(api.nodes())
    waiting -= registered


def _approve_one(ctx: RunContext, item: dict[str, Any], node: str) -> Callable[[], None]:
    def apply() -> None:
        ctx.api().approve_csr(item, f"kubeproof bootstrap: kubelet client certificate of worker {node}")

    return apply


def csr_changes(ctx: RunContext, api_up: bool) -> DiffResult:
    workers = [w.name for w in ctx.cluster.workers]
    out: DiffResult = []
    if not api_up:
        missing = set(workers)
    else:
        api = ctx.api()
        missing = set(workers) - set(api.nodes())
        for item in api.csrs():
            if csr.csr_state(item) != "Pending":
                continue
            verdict = csr.judge_csr(item, workers)
            if verdict.approvable and verdict.node not in missing:
                # a registered node asking again (its kubelet lost its certificate): approve as well
                out.append(
                    Change(
                        API_HOST,
                        NAME,
                        f"approve pending CSR {verdict.name} of {verdict.node}",
                        _approve_one(ctx, item, str(verdict.node)),
                        STAGE_WAIT,
                    )
                )
            elif not verdict.approvable:
                out.append(Note(API_HOST, NAME, f"left alone: CSR {csr.describe(item)}: {verdict.reason}"))
    if missing:
        names = ", ".join(sorted(missing))
        out.append(
            Change(
                API_HOST,
                NAME,
                f"approve the bootstrap CSRs of {names} as their kubelets ask, until they register",
                lambda: _approve_loop(ctx, set(missing)),
                STAGE_WAIT,
            )
        )
    return out


def cluster_diff(ctx: RunContext) -> DiffResult:
    api_up = ctx.api().ready()
    return binding_changes(ctx, api_up) + csr_changes(ctx, api_up)


def node_ready(node: dict[str, Any]) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def verify(ctx: RunContext) -> None:
    """Wait until every worker is Registered, Ready and heartbeating (the guide's 5.4 kubectl get node).

    A kubelet reports Ready a few seconds before its lease controller creates the node Lease; a
    node is only handed over once both are there.
    """
    api = ctx.api()
    deadline = time.monotonic() + READY_TIMEOUT
    workers = {w.name for w in ctx.cluster.workers}
    pending = set(workers)
    while True:
        try:
            nodes = api.nodes()
            leases = api.node_leases()
        except ApiError as exc:
            ctx.reporter.debug(f"listing nodes failed, retrying: {exc}")
            nodes, leases = {}, set()
        pending = {name for name in workers if name not in nodes or not node_ready(nodes[name]) or name not in leases}
        if not pending:
            return
        if time.monotonic() > deadline:
            states = {
                name: (
                    "not registered" if name not in nodes else "NotReady" if not node_ready(nodes[name]) else "no Lease"
                )
                for name in pending
            }
            raise BootstrapError(
                f"nodes not Ready after {READY_TIMEOUT:.0f}s: {states}; see `journalctl -u kubelet` on them"
            )
        time.sleep(1.0)


PHASE = Phase(
    NAME,
    "worker nodes",
    lambda cluster: cluster.workers,
    desired,
    cluster_diff=cluster_diff,
    verify=verify,
    artifacts=BINARIES,
    more_artifacts=runtime_artifacts,
)
