"""Phase 6, the series' 五、部署 master 组件: token.csv, kube-apiserver, kube-scheduler, kube-controller-manager.

Flags follow what the release accepts (bootstrap.artifacts.BinaryInfo). kube-scheduler and
kube-controller-manager reach the apiserver with the admin client certificate (O=system:masters):
the guide's k8s-cert.sh makes no certificate of their own, and they run on the master beside it.
"""

from __future__ import annotations

from kubeproof import layout
from kubeproof.bootstrap import render
from kubeproof.bootstrap.content import Content
from kubeproof.bootstrap.context import RunContext
from kubeproof.bootstrap.engine import Directory, File, Note, Resource, Symlink, Unit
from kubeproof.bootstrap.phases import Phase
from kubeproof.inventory import HostSpec

NAME = "master"
APISERVER = "kube-apiserver.service"
SCHEDULER = "kube-scheduler.service"
CONTROLLER_MANAGER = "kube-controller-manager.service"
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
READY_TIMEOUT = 120.0


def admin_kubeconfig(ctx: RunContext, server: str) -> str:
    directory = ctx.pki_dir / "kubernetes"
    return render.kubeconfig(
        server,
        (directory / "ca.pem").read_bytes(),
        "admin",
        cert_pem=(directory / "admin.pem").read_bytes(),
        key_pem=(directory / "admin-key.pem").read_bytes(),
    )


def desired(ctx: RunContext, host: HostSpec) -> list[Resource]:
    cluster = ctx.cluster
    resources: list[Resource] = [
        Directory(layout.K8S_HOME),
        Directory(layout.K8S_BIN),
        Directory(layout.K8S_CFG),
        Directory(layout.K8S_SSL),
        Directory(layout.K8S_LOGS),
    ]
    restarts_of = {
        "kube-apiserver": (APISERVER,),
        "kube-controller-manager": (CONTROLLER_MANAGER,),
        "kube-scheduler": (SCHEDULER,),
        "kubectl": (),
    }
    for binary in BINARIES:
        resources.append(
            File(f"{layout.K8S_BIN}/{binary}", ctx.artifacts.content(binary), 0o755, restarts=restarts_of[binary])
        )
    resources.append(File(layout.TOKEN_CSV, Content.text(render.token_csv(ctx.token)), 0o600, True, (APISERVER,)))

    apiserver_args, notes = render.apiserver_flags(cluster, host, ctx.binary("kube-apiserver"))
    cm_args, cm_notes = render.controller_manager_flags(cluster, ctx.binary("kube-controller-manager"))
    scheduler_args, scheduler_notes = render.scheduler_flags(ctx.binary("kube-scheduler"))
    resources += [Note(host.name, NAME, n) for n in notes + cm_notes + scheduler_notes]

    server = render.apiserver_url(cluster)
    kubeconfig_text = admin_kubeconfig(ctx, server)
    for component, unit in (("kube-controller-manager", CONTROLLER_MANAGER), ("kube-scheduler", SCHEDULER)):
        resources.append(File(render.kubeconfig_path(component), Content.text(kubeconfig_text), 0o600, True, (unit,)))
    options = (
        ("kube-apiserver", "KUBE_APISERVER_OPTS", apiserver_args, APISERVER),
        ("kube-controller-manager", "KUBE_CONTROLLER_MANAGER_OPTS", cm_args, CONTROLLER_MANAGER),
        ("kube-scheduler", "KUBE_SCHEDULER_OPTS", scheduler_args, SCHEDULER),
    )
    for binary, variable, args, unit in options:
        resources.append(
            File(
                f"{layout.K8S_CFG}/{binary}", Content.text(render.options_file(variable, args)), 0o644, restarts=(unit,)
            )
        )
    units = (
        (
            APISERVER,
            "Kubernetes API Server",
            "kube-apiserver",
            "KUBE_APISERVER_OPTS",
            ("network.target", "etcd.service"),
        ),
        (SCHEDULER, "Kubernetes Scheduler", "kube-scheduler", "KUBE_SCHEDULER_OPTS", (APISERVER,)),
        (
            CONTROLLER_MANAGER,
            "Kubernetes Controller Manager",
            "kube-controller-manager",
            "KUBE_CONTROLLER_MANAGER_OPTS",
            (APISERVER,),
        ),
    )
    for unit, description, binary, variable, after in units:
        text = render.component_unit(description, binary, variable, after=after)
        resources.append(File(f"{layout.SYSTEMD_DIR}/{unit}", Content.text(text), 0o644, restarts=(unit,)))
    # kubectl on the master, as the guide uses it (admin kubeconfig, server on the master address)
    resources += [
        Directory("/root/.kube", 0o700),
        File("/root/.kube/config", Content.text(kubeconfig_text), 0o600, True),
        Symlink("/usr/local/bin/kubectl", f"{layout.K8S_BIN}/kubectl"),
        Unit(APISERVER),
        Unit(SCHEDULER),
        Unit(CONTROLLER_MANAGER),
    ]
    return resources


def verify(ctx: RunContext) -> None:
    ctx.api().wait_ready(READY_TIMEOUT)


PHASE = Phase(NAME, "control plane", lambda cluster: cluster.masters, desired, verify=verify, artifacts=BINARIES)
