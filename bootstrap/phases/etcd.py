"""Phase 3, the guide's etcd.sh: three TLS members under /opt/etcd, started together."""

from __future__ import annotations

import time

from kubeproof import layout
from kubeproof.bootstrap import render
from kubeproof.bootstrap.content import Content
from kubeproof.bootstrap.context import RunContext
from kubeproof.bootstrap.engine import Directory, File, Resource, Symlink, Unit, unit_journal
from kubeproof.bootstrap.errors import BootstrapError
from kubeproof.bootstrap.phases import Phase
from kubeproof.inventory import HostSpec
from kubeproof.transport import ProbeError

NAME = "etcd"
UNIT = "etcd.service"
UNIT_PATH = f"{layout.SYSTEMD_DIR}/{UNIT}"
HEALTH_TIMEOUT = 120.0
LAGGARD_TIMEOUT = 30.0


def desired(ctx: RunContext, host: HostSpec) -> list[Resource]:
    restarts = (UNIT,)
    # "existing" stays once a member was re-added (etcd reads it only while its data dir is empty)
    state = "existing" if ctx.profile(host).etcd_initial_state == "existing" else "new"
    # the v2 API only where the flanneld of this run reads it and this etcd has it off by default
    enable_v2 = render.etcd_enable_v2(ctx.version("etcd"), ctx.version("flanneld"))
    return [
        Directory(layout.ETCD_HOME),
        Directory(layout.ETCD_BIN),
        Directory(layout.ETCD_CFG),
        Directory(layout.ETCD_SSL),
        File(f"{layout.ETCD_BIN}/etcd", ctx.artifacts.content("etcd"), 0o755, restarts=restarts),
        File(f"{layout.ETCD_BIN}/etcdctl", ctx.artifacts.content("etcdctl"), 0o755),
        File(
            layout.ETCD_ENV_FILE,
            Content.text(render.etcd_env(ctx.cluster, host, state, enable_v2=enable_v2)),
            0o644,
            restarts=restarts,
        ),
        File(UNIT_PATH, Content.text(render.etcd_unit()), 0o644, restarts=restarts),
        # the guide: ln -s /opt/etcd/bin/etcd* /usr/local/bin
        Symlink("/usr/local/bin/etcd", f"{layout.ETCD_BIN}/etcd"),
        Symlink("/usr/local/bin/etcdctl", f"{layout.ETCD_BIN}/etcdctl"),
        # Type=notify blocks `systemctl start` until the member has quorum: start all without waiting
        Unit(UNIT, no_block=True),
    ]


def endpoint_health(ctx: RunContext) -> tuple[int, str]:
    """How many members answer healthy over TLS, and etcdctl's output."""
    member = ctx.cluster.etcd_members[0]
    conn = ctx.transport.connection(member)
    argv = render.etcdctl_argv(ctx.cluster, "endpoint", "health", "--command-timeout=5s", etcd=ctx.version("etcd"))
    try:
        result = conn.run_argv(argv, timeout=30)
    except ProbeError as exc:
        return 0, exc.reason
    output = (result.stdout + result.stderr).strip()
    return output.count(" is healthy"), output


def verify(ctx: RunContext) -> None:
    """Wait until every member answers healthy over TLS (the guide's 10, cluster-health).

    Once a quorum is healthy, a member that stays unhealthy for LAGGARD_TIMEOUT more is left to the
    health gate (bootstrap/health.py: it is judged there, repaired when its data dir was lost, or
    the run fails naming it); without a quorum the run stops here.
    """
    members = len(ctx.cluster.etcd_members)
    quorum = members // 2 + 1
    started = time.monotonic()
    deadline = started + HEALTH_TIMEOUT
    quorum_since: float | None = None
    output = ""
    while time.monotonic() < deadline:
        healthy, output = endpoint_health(ctx)
        if healthy == members:
            ctx.reporter.debug(f"etcd healthy after {time.monotonic() - started:.1f}s: {output}")
            return
        if healthy >= quorum:
            quorum_since = quorum_since or time.monotonic()
            if time.monotonic() - quorum_since > LAGGARD_TIMEOUT:
                ctx.reporter.line(
                    f"        etcd: quorum healthy, not every member ({healthy}/{members}): left to the health gate"
                )
                return
        time.sleep(1.0)
    journals = []
    for member in ctx.cluster.etcd_members:
        journals.append(f"--- {member.name}:\n" + unit_journal(ctx.transport.connection(member), UNIT, 12))
    raise BootstrapError(f"etcd not healthy after {HEALTH_TIMEOUT:.0f}s: {output[-400:]}\n" + "\n".join(journals))


PHASE = Phase(
    NAME,
    "etcd cluster",
    lambda cluster: cluster.etcd_members,
    desired,
    verify=verify,
    # flanneld: its release decides whether etcd must serve the v2 API (render.etcd_enable_v2)
    artifacts=("etcd", "etcdctl", "flanneld"),
)
