"""Facts about a host's base environment (the guide's chapter 一, 环境准备)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from kubeproof.facts import Fact, ParseError, Raw
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.session import fact_set


def _text(raw: Raw) -> str:
    return raw.stdout.strip()


def _lines(raw: Raw) -> list[str]:
    return [line for line in raw.stdout.splitlines() if line.strip()]


hostname = Fact("hostname", "hostname", _text)

# "absent" when no firewalld unit exists at all; otherwise "<active-state> <enabled-state>"
firewalld = Fact(
    "firewalld",
    "if systemctl cat firewalld.service >/dev/null 2>&1; then "
    'printf \'%s %s\\n\' "$(systemctl is-active firewalld.service)" "$(systemctl is-enabled firewalld.service)"; '
    "else echo absent; fi",
    _text,
)

selinux = Fact(
    "selinux",
    "if command -v getenforce >/dev/null 2>&1; then getenforce; "
    "elif [ -r /sys/fs/selinux/enforce ]; then "
    "case $(cat /sys/fs/selinux/enforce) in 1) echo Enforcing;; *) echo Permissive;; esac; "
    "else echo absent; fi; "
    "sed -n 's/^SELINUX=//p' /etc/selinux/config 2>/dev/null | head -n1",
    _lines,
)


def parse_proc_swaps(raw: Raw) -> list[str]:
    """Active swap devices from /proc/swaps (first line is the header)."""
    lines = _lines(raw)
    if lines and not lines[0].startswith("Filename"):
        raise ParseError(f"unexpected /proc/swaps header: {lines[0]!r}")
    return [line.split()[0] for line in lines[1:]]


swaps = Fact("swaps", "cat /proc/swaps", parse_proc_swaps)


def parse_fstab_swap(raw: Raw) -> list[str]:
    """Uncommented fstab entries of type swap (the guide comments them out with sed)."""
    entries = []
    for line in raw.stdout.splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.split()
        if len(fields) >= 3 and fields[2] == "swap":
            entries.append(text)
    return entries


fstab_swap = Fact("fstab-swap", "cat /etc/fstab 2>/dev/null || true", parse_fstab_swap)


def parse_etc_hosts(raw: Raw) -> dict[str, list[str]]:
    """name -> addresses in file order (the first one is what the resolver returns)."""
    names: dict[str, list[str]] = {}
    for line in raw.stdout.splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split()
        address, aliases = fields[0], fields[1:]
        for alias in aliases:
            names.setdefault(alias, []).append(address)
    return names


etc_hosts = Fact("etc-hosts", "cat /etc/hosts", parse_etc_hosts)

BRIDGE_SYSCTLS = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")


def parse_key_values(raw: Raw) -> dict[str, str]:
    """`key=value` lines (sysctl's `key = value`, /etc/os-release, a script's `echo name=...`); others skipped."""
    values: dict[str, str] = {}
    for line in raw.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


parse_sysctl_values = parse_key_values  # the sysctl facts' parser, under the name its callers know


# The live values, and what the sysctl.d files would set at boot (persistence).
bridge_sysctls = Fact(
    "bridge-sysctls",
    "for k in "
    + " ".join(BRIDGE_SYSCTLS)
    + '; do printf \'%s = %s\\n\' "$k" "$(sysctl -n "$k" 2>/dev/null || echo missing)"; done',
    parse_sysctl_values,
)
persisted_sysctls = Fact(
    "persisted-sysctls",
    "cat /etc/sysctl.conf /etc/sysctl.d/*.conf /usr/lib/sysctl.d/*.conf /run/sysctl.d/*.conf 2>/dev/null"
    " | grep -v '^[#;]' || true",
    parse_sysctl_values,
)


@dataclass(frozen=True)
class TimeSync:
    virtualization: str
    services: dict[str, str]
    ntp_synchronized: str


def parse_time_sync(raw: Raw) -> TimeSync:
    values = parse_key_values(raw)
    services = {k.removeprefix("unit:"): v for k, v in values.items() if k.startswith("unit:")}
    return TimeSync(values.get("virt", "none"), services, values.get("ntp_synchronized", ""))


time_sync = Fact(
    "time-sync",
    "echo virt=$(systemd-detect-virt -c 2>/dev/null || echo none); "
    # one systemctl for the six units (it prints a state per unit, in order): one process, not six
    "systemctl is-active chrony.service chronyd.service ntp.service ntpd.service ntpsec.service "
    "systemd-timesyncd.service 2>/dev/null | { for u in chrony chronyd ntp ntpd ntpsec systemd-timesyncd; do "
    's=; read -r s; echo "unit:$u=$s"; done; }; '
    "echo ntp_synchronized=$(timedatectl show -p NTPSynchronized --value 2>/dev/null || true)",
    parse_time_sync,
)


def parse_epoch(raw: Raw) -> float:
    try:
        return float(raw.stdout.strip())
    except ValueError:
        raise ParseError(f"date printed {raw.stdout.strip()!r}, not an epoch time") from None


# Not batched: clock skew is measured in a round trip of its own, timed on this side.
clock = Fact("clock", "date +%s.%N", parse_epoch)

SYSTEMD_UNIT_PROPERTIES = "ActiveState,SubState,UnitFileState,LoadState,ExecStart,FragmentPath,Result,NRestarts"


def parse_systemctl_show(raw: Raw) -> dict[str, dict[str, str]]:
    """Output of `systemctl show -p ... a b c`: blank-line separated blocks, in argument order."""
    blocks: list[dict[str, str]] = [{}]
    for line in raw.stdout.split("\n"):
        if not line.strip():
            if blocks[-1]:
                blocks.append({})
            continue
        key, _, value = line.partition("=")
        blocks[-1][key] = value
    return {b.get("Id", f"#{i}"): b for i, b in enumerate(blocks) if b}


def units_state(name: str, units: tuple[str, ...]) -> Fact[dict[str, dict[str, str]]]:
    """`systemctl show` of a set of units, under a fact name of its own (facts are cached by name)."""
    return Fact(
        "units:" + name,
        "systemctl show --no-pager -p Id,"
        + SYSTEMD_UNIT_PROPERTIES
        + " "
        + " ".join(shlex.quote(u + ".service") for u in units),
        parse_systemctl_show,
    )


@fact_set("all", groups=("ENV",))
def environment_facts(cluster: Cluster, host: HostSpec) -> list[Fact[Any]]:
    return [hostname, firewalld, selinux, swaps, fstab_swap, etc_hosts, bridge_sysctls, persisted_sysctls, time_sync]
