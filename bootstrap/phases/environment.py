"""Phase 1, the guide's 一、环境准备: firewalld, SELinux, hostname, swap, /etc/hosts, bridge sysctls, time."""

from __future__ import annotations

import hashlib
import shlex

from kubeproof.bootstrap import render
from kubeproof.bootstrap.context import RunContext
from kubeproof.bootstrap.engine import (
    STAGE_FILES,
    STAGE_UNITS,
    Change,
    Custom,
    DiffResult,
    HostView,
    Resource,
    run_checked,
)
from kubeproof.bootstrap.errors import ChangeFailed
from kubeproof.bootstrap.phases import Phase, command_change, edit_fact, installed_packages_fact, package_op, write_edit
from kubeproof.facts import Fact, Raw
from kubeproof.facts import host as host_facts
from kubeproof.inventory import Cluster, HostSpec

NAME = "environment"
SYSCTL_FILE = "/etc/sysctl.d/k8s.conf"


def _hostname(view: HostView) -> DiffResult:
    current = view.get(host_facts.hostname)
    wanted = view.host.name
    if current == wanted:
        return []
    command = (
        "hostnamectl set-hostname "
        + shlex.quote(wanted)
        + " 2>/dev/null || { hostname "
        + shlex.quote(wanted)
        + " && echo "
        + shlex.quote(wanted)
        + " > /etc/hostname; }"
    )
    return [command_change(view, f"set hostname {wanted} (was {current})", command)]


def _firewalld(view: HostView) -> DiffResult:
    state = view.get(host_facts.firewalld)
    if state == "absent":
        return []
    active, _, enabled = state.partition(" ")
    if active != "active" and enabled in ("disabled", "masked"):
        return []
    return [
        command_change(
            view, f"stop and disable firewalld (was {active}, {enabled})", "systemctl disable --now firewalld"
        )
    ]


def _selinux(view: HostView) -> DiffResult:
    lines = view.get(host_facts.selinux)
    runtime = lines[0] if lines else "absent"
    config = lines[1].lower() if len(lines) > 1 else "absent"
    out: DiffResult = []
    if runtime == "Enforcing":
        out.append(command_change(view, "setenforce 0 (SELinux was enforcing)", "setenforce 0"))
    if config == "enforcing":
        out.append(
            command_change(
                view,
                "SELinux off after reboot: SELINUX=disabled in /etc/selinux/config",
                "sed -i 's/^SELINUX=enforcing/SELINUX=disabled/' /etc/selinux/config",
            )
        )
    return out


FSTAB = edit_fact("/etc/fstab")
HOSTS = edit_fact("/etc/hosts")
SYSCTL = edit_fact(SYSCTL_FILE)


def _swap(view: HostView) -> DiffResult:
    out: DiffResult = []
    if view.get(host_facts.swaps):
        out.append(command_change(view, "swapoff -a", "swapoff -a"))
    fstab = view.get(FSTAB)
    if fstab.mode is not None:
        edited = render.comment_fstab_swap(fstab.text)
        if edited != fstab.text:
            entries = view.get(host_facts.fstab_swap)
            out.append(
                Change(
                    view.host.name,
                    view.phase,
                    f"comment out the swap entries of /etc/fstab ({len(entries)})",
                    write_edit(view, "/etc/fstab", edited, fstab.mode),
                    STAGE_FILES,
                )
            )
    return out


def _etc_hosts(view: HostView) -> DiffResult:
    current = view.get(HOSTS)
    edited = render.edit_etc_hosts(current.text, view.ctx.cluster)
    if edited == current.text:
        return []
    verb = "update" if render.HOSTS_BEGIN in current.text else "add"
    return [
        Change(
            view.host.name,
            view.phase,
            f"{verb} the kubeproof block of /etc/hosts ({len(view.ctx.cluster.hosts)} hosts)",
            write_edit(view, "/etc/hosts", edited, current.mode if current.mode is not None else 0o644),
            STAGE_FILES,
        )
    ]


def _sysctl(view: HostView) -> DiffResult:
    current = view.get(SYSCTL)
    manifest = view.manifest
    out: DiffResult = []
    file_changes = False
    if current.mode is None or SYSCTL_FILE in manifest.files:
        wanted = render.sysctl_k8s_conf()
        sha = hashlib.sha256(wanted.encode()).hexdigest()
        if current.text != wanted or current.mode is None:
            verb = "create" if current.mode is None else "update"
            file_changes = True
            applier = view.applier
            assert applier is not None

            def write_owned() -> None:
                applier.own(SYSCTL_FILE, sha)
                write_edit(view, SYSCTL_FILE, wanted, 0o644)()

            out.append(Change(view.host.name, view.phase, f"{verb} {SYSCTL_FILE}", write_owned, STAGE_FILES))
    else:
        # someone else's k8s.conf: only the two keys are set, the rest is theirs
        edited = render.edit_sysctl_conf(current.text)
        if edited != current.text:
            file_changes = True
            out.append(
                Change(
                    view.host.name,
                    view.phase,
                    f"set the bridge-nf-call keys to 1 in {SYSCTL_FILE} (a file kubeproof did not create)",
                    write_edit(view, SYSCTL_FILE, edited, current.mode),
                    STAGE_FILES,
                )
            )
    live = view.get(host_facts.bridge_sysctls)
    wrong = {k: v for k, v in live.items() if v != "1"}
    if wrong or file_changes:
        host = view.host.name

        def apply() -> None:
            result = view.conn.run("sysctl --system", timeout=60)
            check = view.conn.run(host_facts.bridge_sysctls.command, timeout=30)
            values = host_facts.parse_sysctl_values(Raw(check.stdout, check.stderr, check.rc))
            bad = {k: v for k, v in values.items() if v != "1"}
            if bad:
                detail = result.stderr.strip()[-300:]
                raise ChangeFailed(
                    f"{host}: after sysctl --system {bad} (br_netfilter missing? `modprobe br_netfilter`): {detail}"
                )

        what = ", ".join(f"{k}={v}" for k, v in wrong.items()) or "file changed"
        out.append(Change(host, view.phase, f"sysctl --system ({what})", apply, STAGE_UNITS))
    return out


TIME_SERVICES: dict[str, tuple[dict[str, list[str]], tuple[str, ...], str]] = {
    # kind: (packages per family, unit names to try, binary)
    "chrony": ({"apt": ["chrony"], "yum": ["chrony"]}, ("chrony.service", "chronyd.service"), "chronyd"),
    "ntp": ({"apt": ["ntpsec"], "yum": ["ntp"]}, ("ntpsec.service", "ntp.service", "ntpd.service"), "ntpd"),
    "timesyncd": ({"apt": ["systemd-timesyncd"], "yum": []}, ("systemd-timesyncd.service",), "systemd-timesyncd"),
}

TIME_UNITS_FACT: Fact[dict[str, str]] = Fact(
    "kp-time-units",
    "for u in chrony chronyd ntpsec ntp ntpd systemd-timesyncd; do "
    "printf '%s=%s,%s\\n' $u.service \"$(systemctl is-active $u.service 2>/dev/null)\" "
    '"$(systemctl is-enabled $u.service 2>/dev/null)"; done',
    lambda raw: {k: v for k, _, v in (line.partition("=") for line in raw.stdout.splitlines()) if k},
)


def _time_resources(cluster: Cluster) -> list[Resource]:
    kind = cluster.time.sync
    if kind == "host-kernel":
        # containers share the machine's kernel clock: nothing to install, and never set the time
        return []
    packages, unit_names, binary = TIME_SERVICES[kind]
    binary_fact: Fact[bool] = Fact(
        "kp-has-" + binary,
        "command -v " + binary + " >/dev/null 2>&1 || test -x /lib/systemd/" + binary + " && echo yes || echo no",
        lambda raw: raw.stdout.strip().endswith("yes"),
    )
    package_names = tuple(sorted({p for names in packages.values() for p in names}))
    installed = installed_packages_fact(package_names)

    def present(view: HostView) -> bool:
        return bool(view.get(binary_fact)) or bool(view.get(installed))

    def enable(view: HostView) -> DiffResult:
        states = view.get(TIME_UNITS_FACT)
        for unit in unit_names:
            active, _, enabled = states.get(unit, ",").partition(",")
            if active == "active" and enabled in ("enabled", "static", "alias"):
                return []
        for unit in unit_names:
            active, _, enabled = states.get(unit, ",").partition(",")
            if enabled not in ("", "not-found"):
                return [command_change(view, f"enable and start {unit}", "systemctl enable --now " + unit, STAGE_UNITS)]

        # installed in this run: the unit name is known only afterwards
        def apply() -> None:
            names = " ".join(unit_names)
            run_checked(
                view.conn,
                f"for u in {names}; do if systemctl cat $u >/dev/null 2>&1; then systemctl enable --now $u; exit $?; "
                "fi; done; echo no unit among " + shlex.quote(names) + " >&2; exit 1",
                f"enable {kind}",
            )

        return [Change(view.host.name, view.phase, f"enable and start {kind}", apply, STAGE_UNITS)]

    return [
        package_op(kind, packages, present, (binary_fact, installed), why=f" (time.sync: {kind})"),
        Custom("time-service", (TIME_UNITS_FACT,), enable),
    ]


def desired(ctx: RunContext, host: HostSpec) -> list[Resource]:
    resources: list[Resource] = [
        Custom("hostname", (host_facts.hostname,), _hostname),
        Custom("firewalld", (host_facts.firewalld,), _firewalld),
        Custom("selinux", (host_facts.selinux,), _selinux),
        Custom("swap", (host_facts.swaps, host_facts.fstab_swap, FSTAB), _swap, paths=()),
        Custom("etc-hosts", (HOSTS,), _etc_hosts),
        Custom("sysctl", (SYSCTL, host_facts.bridge_sysctls), _sysctl),
    ]
    resources += _time_resources(ctx.cluster)
    return resources


PHASE = Phase(NAME, "environment", lambda cluster: list(cluster.hosts), desired)
