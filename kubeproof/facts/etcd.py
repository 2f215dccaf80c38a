"""Facts about the etcd members (the guide's chapter 二) and the systemd services beside them.

A member's settings come from two places that must both be read: the unit (`systemctl cat`:
fragment plus drop-ins) and its EnvironmentFile. etcd >= 3.4 refuses to start when a setting
is given both as an ETCD_* variable and as a flag, so installers move everything into the
env file; the guide's etcd.sh passed ${ETCD_*} on the command line. What the member *runs*
with is read from /proc/<MainPID>: its argv and the ETCD_* variables systemd handed it.

The generic service fact (`service_fact`) is used by the docker and flannel facts too.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubeproof import layout
from kubeproof.diagnosis import journal_command, render_service_journal
from kubeproof.facts import Fact, ParseError, Raw
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.session import fact_set
from kubeproof.versions import declares_etcd_v2

# ----------------------------------------------------------------------------- env files and units


def parse_env_file(text: str) -> dict[str, str]:
    """A systemd EnvironmentFile, parsed as systemd does (env-file.c's state machine, simplified).

    Quoted values may span lines, a closing quote does not end the value (`"a"b` is `ab`), and
    an unquoted value ends at the newline. So the guide's wrapped node copy
    (`ETCD_INITIAL_CLUSTER="...etcd03\\n=https://...:2380"ETCD_INITIAL_CLUSTER_TOKEN="etcd-cluster"`)
    yields one broken ETCD_INITIAL_CLUSTER and no token, exactly what etcd received.
    """
    values: dict[str, str] = {}
    state = "pre_key"
    key: list[str] = []
    value: list[str] = []
    quoted: list[bool] = []  # per value character: came from inside quotes (kept even if blank)

    def add(char: str, inside_quotes: bool) -> None:
        value.append(char)
        quoted.append(inside_quotes)

    def finish() -> None:
        while value and value[-1].isspace() and not quoted[-1]:  # unquoted trailing blanks go
            value.pop()
            quoted.pop()
        name = "".join(key).strip()
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            values[name] = "".join(value)

    for char in text + "\n":
        if state == "pre_key":
            if char in "#;":
                state = "comment"
            elif not char.isspace():
                key, value, quoted, state = [char], [], [], "key"
        elif state == "comment":
            if char == "\n":
                state = "pre_key"
        elif state == "key":
            if char == "=":
                state = "pre_value"
            elif char == "\n":
                state = "pre_key"  # a line without '=' is ignored
            else:
                key.append(char)
        elif state in ("pre_value", "value"):
            if char == "\n":
                finish()
                state = "pre_key"
            elif char == "\\":
                state = "value_escape"
            elif char in "'\"" and state == "pre_value":
                state = "single" if char == "'" else "double"
            elif char.isspace() and state == "pre_value":
                continue
            else:
                add(char, False)
                state = "value"
        elif state == "value_escape":
            if char != "\n":  # backslash-newline continues the value
                add(char, True)
            state = "value"
        elif state == "single":
            if char == "'":
                state = "pre_value"
            else:
                add(char, True)
        elif state == "double":
            if char == '"':
                state = "pre_value"  # the value goes on: `"a"b` is `ab`
            elif char == "\\":
                state = "double_escape"
            else:
                add(char, True)
        elif state == "double_escape":
            if char in '"\\`$':
                add(char, True)
            elif char != "\n":
                add("\\", True)
                add(char, True)
            state = "double"
    return values


@dataclass(frozen=True)
class UnitSettings:
    """What `systemctl cat` shows for a unit: fragment and drop-ins merged in order."""

    files: tuple[str, ...]
    exec_start: str  # the effective ExecStart command line, unexpanded ("" when none)
    environment: Mapping[str, str]
    environment_files: tuple[str, ...]
    unit: Mapping[str, str]  # [Unit] settings, last assignment wins (Requires, After, ...)
    service: Mapping[str, str]  # [Service] scalar settings, last assignment wins


_LIST_SETTINGS = ("ExecStart", "Environment", "EnvironmentFile")


def parse_unit_text(text: str) -> UnitSettings:
    """Parse `systemctl cat UNIT` output: `# /path` headers, sections, continuations, resets."""
    files: list[str] = []
    logical: list[str] = []
    pending = ""
    for raw_line in text.split("\n"):
        if not pending and raw_line.startswith("# /"):
            files.append(raw_line[2:].strip())
            continue
        line = pending + raw_line
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        logical.append(line)
    if pending:
        logical.append(pending)
    section = ""
    lists: dict[str, list[str]] = {name: [] for name in _LIST_SETTINGS}
    unit: dict[str, str] = {}
    service: dict[str, str] = {}
    for line in logical:
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
            continue
        name, sep, value = stripped.partition("=")
        if not sep:
            continue
        name, value = name.strip(), value.strip()
        if section == "Service" and name in lists:
            if value:
                lists[name].append(value)
            else:
                lists[name].clear()  # an empty assignment resets the list (drop-ins rely on it)
        elif section == "Service":
            service[name] = value
        elif section == "Unit":
            unit[name] = value
    environment: dict[str, str] = {}
    for assignment in lists["Environment"]:
        for word in _split_words(assignment):
            key, sep, value = word.partition("=")
            if sep:
                environment[key] = value
    env_files = tuple(value.lstrip("-") for value in lists["EnvironmentFile"])
    exec_start = lists["ExecStart"][-1] if lists["ExecStart"] else ""
    return UnitSettings(tuple(files), exec_start, environment, env_files, unit, service)


def _split_words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


_WHOLE_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_BRACED_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_exec(command: str, environment: Mapping[str, str]) -> list[str]:
    """An ExecStart line as systemd runs it: `${X}` stays one word, a bare `$X` word splits on blanks."""
    words = _split_words(command)
    if words:
        words[0] = words[0].lstrip("-@+!:")  # systemd's prefixes are not part of the path
    argv: list[str] = []
    for word in words:
        whole = _WHOLE_VARIABLE.fullmatch(word)
        if whole:
            argv.extend(environment.get(whole.group(1), "").split())
            continue
        argv.append(_BRACED_VARIABLE.sub(lambda m: environment.get(m.group(1), ""), word))
    return argv


def parse_go_flags(args: Sequence[str], booleans: Iterable[str] = ()) -> dict[str, list[str]]:
    """Flags in Go's (and pflag's) syntax: `-x=v`, `--x=v`, `--x v`, bare booleans; repeats kept in order."""
    known_booleans = set(booleans)
    flags: dict[str, list[str]] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            continue
        name, sep, value = arg.lstrip("-").partition("=")
        if not sep:
            following = args[index] if index < len(args) else None
            if name not in known_booleans and following is not None and not following.startswith("-"):
                value = following
                index += 1
            else:
                value = "true"
        flags.setdefault(name, []).append(value)
    return flags


# ----------------------------------------------------------------------------- systemd services


SERVICE_PROPERTIES = (
    "Id,LoadState,ActiveState,SubState,UnitFileState,MainPID,Type,Restart,LimitNOFILE,"
    "NRestarts,Result,NeedDaemonReload,FragmentPath,DropInPaths,EnvironmentFiles"
)
_SECTION = "@@kp-section "


@dataclass(frozen=True)
class ServiceConfig:
    """A systemd service as configured (unit + env files) and as running (/proc/MainPID)."""

    unit: str
    properties: Mapping[str, str]
    unit_text: str
    env_files: Mapping[str, str | None]  # path -> the kept lines (None: the file is missing)
    cmdline: tuple[str, ...] | None  # None: no main process
    environ: Mapping[str, str]
    journal: tuple[str, ...]
    journal_match: str = ""
    settings: UnitSettings = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", parse_unit_text(self.unit_text))

    @property
    def installed(self) -> bool:
        return self.properties.get("LoadState") == "loaded"

    @property
    def active(self) -> bool:
        return self.properties.get("ActiveState") == "active"

    @property
    def running(self) -> bool:
        return self.active and self.cmdline is not None

    @property
    def state(self) -> str:
        """`active, enabled` when it should be; otherwise what systemd says."""
        if not self.installed:
            return f"not installed ({self.properties.get('LoadState', 'unknown')})"
        active = self.properties.get("ActiveState", "unknown")
        if active != "active":
            active += f" ({self.properties.get('SubState', '?')})"
        return f"{active}, {self.properties.get('UnitFileState') or 'unknown'}"

    def configured_environment(self) -> dict[str, str]:
        """Environment= then the env files (systemd: the files override Environment=)."""
        environment = dict(self.settings.environment)
        for path in self.settings.environment_files:
            text = self.env_files.get(path)
            if text:
                environment.update(parse_env_file(text))
        return environment

    def configured_argv(self) -> list[str]:
        return expand_exec(self.settings.exec_start, self.configured_environment())

    def diagnosis(self) -> list[str]:
        """The state, the known signatures the unit's own journal lines match, and its last own error
        lines (systemd's bookkeeping left out), at most 12 lines (kubeproof.diagnosis)."""
        props = self.properties
        state = (
            f"{self.unit}: {self.state}; Result={props.get('Result', '?')} NRestarts={props.get('NRestarts', '?')}"
            + (" NeedDaemonReload=yes" if props.get("NeedDaemonReload") == "yes" else "")
        )
        return render_service_journal(self.unit or "unknown.service", state, self.journal)


ACTIVE_JOURNAL_LINES = 30


def service_fact(unit: str, variables: str, journal_match: str = "") -> Fact[ServiceConfig]:
    """Everything about one service in one command.

    ``variables`` is an ERE for the variable names kept from env files and /proc/PID/environ:
    environments can hold secrets, so only the named settings ever leave the host.
    ``journal_match`` adds the last journal line containing it (flanneld's "Using interface").
    """
    quoted = shlex.quote(unit)
    keep = shlex.quote("^[[:space:]]*(export[[:space:]]+)?(" + variables + ")=")
    # a KEY= line decides whether it and its continuation lines (a quoted value over several
    # lines, as in the guide's wrapped copy) are kept
    awk_program = shlex.quote(
        "/^[[:space:]]*(export[[:space:]]+)?[A-Za-z_][A-Za-z0-9_]*=/ {keep = ($0 ~ re)} "
        "/^[[:space:]]*[#;]/ {next} keep {print}"
    )
    environ_filter = shlex.quote("^(" + variables + ")=")

    def section(name: str) -> str:
        return "echo " + shlex.quote(_SECTION + name) + "; "

    script = (
        "u="
        + quoted
        + "; "
        + section("show")
        + "systemctl show --no-pager -p "
        + shlex.quote(SERVICE_PROPERTIES)
        + ' "$u"; '
        + section("cat")
        + 'systemctl cat --no-pager "$u" 2>/dev/null; '
        + 'systemctl show -p EnvironmentFiles --value "$u" | while read -r f _; do '
        + '[ -n "$f" ] || continue; '
        + "case $f in *-key.pem|*.key|*token.csv|*kubeconfig) continue;; esac; "
        + 'if [ -r "$f" ]; then printf '
        + shlex.quote(_SECTION + "envfile %s\\n")
        + ' "$f"; '
        + "awk -v re="
        + keep
        + " "
        + awk_program
        + ' "$f"; '
        + "else printf "
        + shlex.quote(_SECTION + "envfile-missing %s\\n")
        + ' "$f"; fi; done; '
        + 'pid=$(systemctl show -p MainPID --value "$u"); '
        + 'if [ "${pid:-0}" != 0 ] && [ -r "/proc/$pid/cmdline" ]; then '
        + section("cmdline")
        + "tr '\\0' '\\n' <\"/proc/$pid/cmdline\"; "
        + section("environ")
        + "tr '\\0' '\\n' <\"/proc/$pid/environ\" | grep -E "
        + environ_filter
        + "; fi; "
        + section("journal")
        # A running unit's recent lines suffice (and every row of the unit carries this fact in its
        # evidence); a unit that is not running gets the depth its last start needs.
        + 'if systemctl is-active -q "$u"; then '
        + journal_command(unit, ACTIVE_JOURNAL_LINES)
        + "; else "
        + journal_command(unit)
        + "; fi; "
    )
    if journal_match:
        script += (
            section("match")
            + 'journalctl -u "$u" -n 5000 --no-pager -o cat 2>/dev/null | grep -F -- '
            + shlex.quote(journal_match)
            + " | tail -n 1; "
        )
    script += "true"
    return Fact("service:" + unit, script, parse_service_output)


def _sections(text: str) -> list[tuple[str, str, list[str]]]:
    sections: list[tuple[str, str, list[str]]] = []
    for line in text.split("\n"):
        if line.startswith(_SECTION):
            kind, _, argument = line[len(_SECTION) :].partition(" ")
            sections.append((kind, argument, []))
        elif sections:
            sections[-1][2].append(line)
    return sections


def parse_service_output(raw: Raw) -> ServiceConfig:
    sections = _sections(raw.stdout)
    if not sections or sections[0][0] != "show":
        raise ParseError(f"no systemctl show output (stderr: {raw.stderr.strip()[:200]!r})")
    properties: dict[str, str] = {}
    unit_text = ""
    env_files: dict[str, str | None] = {}
    cmdline: tuple[str, ...] | None = None
    environ: dict[str, str] = {}
    journal: tuple[str, ...] = ()
    match = ""
    for kind, argument, lines in sections:
        if kind == "show":
            for line in lines:
                key, sep, value = line.partition("=")
                if sep:
                    properties[key] = value
        elif kind == "cat":
            unit_text = "\n".join(lines)
        elif kind == "envfile":
            env_files[argument] = "\n".join(lines)
        elif kind == "envfile-missing":
            env_files[argument] = None
        elif kind == "cmdline":
            cmdline = tuple(line for line in lines if line)
        elif kind == "environ":
            for line in lines:
                key, sep, value = line.partition("=")
                if sep:
                    environ[key] = value
        elif kind == "journal":
            journal = tuple(line for line in lines if line.strip())
        elif kind == "match":
            match = next((line.strip() for line in lines if line.strip()), "")
    unit = properties.get("Id", "")
    return ServiceConfig(unit, properties, unit_text, env_files, cmdline or None, environ, journal, match)


# ----------------------------------------------------------------------------- etcd settings


# etcd's boolean flags (a bare `--client-cert-auth` means true and takes no value)
ETCD_BOOLEAN_FLAGS = frozenset(
    {
        "client-cert-auth",
        "peer-client-cert-auth",
        "auto-tls",
        "peer-auto-tls",
        "enable-v2",
        "enable-pprof",
        "enable-grpc-gateway",
        "strict-reconfig-check",
        "force-new-cluster",
        "debug",
        "pre-vote",
        "version",
        "experimental-initial-corrupt-check",
    }
)
ETCD_TLS_SETTINGS = (
    "cert-file",
    "key-file",
    "trusted-ca-file",
    "peer-cert-file",
    "peer-key-file",
    "peer-trusted-ca-file",
)
# the settings compared between configuration and the running process
ETCD_COMPARED_SETTINGS = (
    "name",
    "data-dir",
    "listen-peer-urls",
    "listen-client-urls",
    "initial-advertise-peer-urls",
    "advertise-client-urls",
    "initial-cluster",
    "initial-cluster-token",
    "client-cert-auth",
    "peer-client-cert-auth",
    *ETCD_TLS_SETTINGS,
)


def etcd_settings(environment: Mapping[str, str], argv: Sequence[str]) -> dict[str, str]:
    """etcd's view: ETCD_<NAME> variables, then flags (a flag wins; etcd >= 3.4 refuses both)."""
    settings: dict[str, str] = {}
    for key, value in environment.items():
        if key.startswith("ETCD_"):
            settings[key[len("ETCD_") :].lower().replace("_", "-")] = value
    for name, values in parse_go_flags(argv[1:], ETCD_BOOLEAN_FLAGS).items():
        settings[name] = values[-1]
    return settings


def configured_etcd_settings(service: ServiceConfig) -> dict[str, str]:
    return etcd_settings(service.configured_environment(), service.configured_argv())


def running_etcd_settings(service: ServiceConfig) -> dict[str, str] | None:
    if service.cmdline is None:
        return None
    return etcd_settings(service.environ, service.cmdline)


def split_urls(value: str | None) -> list[str]:
    return [url.strip() for url in (value or "").split(",") if url.strip()]


def parse_initial_cluster(value: str | None) -> list[tuple[str, str]]:
    """`etcd01=https://a:2380,etcd02=https://b:2380` -> [(name, peer URL)] in order."""
    entries = []
    for item in split_urls(value):
        name, _, url = item.partition("=")
        entries.append((name.strip(), url.strip()))
    return entries


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


etcd_service = service_fact("etcd.service", "ETCD_[A-Z0-9_]*")


# ----------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class EtcdLayout:
    directories: Mapping[str, bool]
    executables: Mapping[str, bool]
    env_file: bool
    etcdctl_on_path: str | None  # what a root login shell finds as `etcdctl`
    etcdctl_resolved: str | None  # that path with symlinks resolved
    versions: tuple[str, ...]

    def missing(self) -> list[str]:
        items = [f"{path} (directory)" for path, present in self.directories.items() if not present]
        items += [f"{path} (executable)" for path, present in self.executables.items() if not present]
        if not self.env_file:
            items.append(f"{layout.ETCD_ENV_FILE} (config file)")
        return items


ETCD_DIRECTORIES = (layout.ETCD_HOME, layout.ETCD_BIN, layout.ETCD_CFG, layout.ETCD_SSL)
ETCD_EXECUTABLES = (layout.ETCD_BIN + "/etcd", layout.ETCD_BIN + "/etcdctl")


def parse_etcd_layout(raw: Raw) -> EtcdLayout:
    directories: dict[str, bool] = {}
    executables: dict[str, bool] = {}
    env_file = False
    on_path: str | None = None
    resolved: str | None = None
    versions: list[str] = []
    for line in raw.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "dir":
            path, _, present = rest.rpartition(" ")
            directories[path] = present == "yes"
        elif kind == "exe":
            path, _, present = rest.rpartition(" ")
            executables[path] = present == "yes"
        elif kind == "cfg":
            env_file = rest.rpartition(" ")[2] == "yes"
        elif kind == "path":
            found, _, target = rest.partition(" ")
            on_path = found or None
            resolved = target.strip() or None
        elif kind == "version":
            versions.append(rest.strip())
    if not directories:
        raise ParseError(f"unexpected layout output {raw.stdout[:200]!r}")
    return EtcdLayout(directories, executables, env_file, on_path, resolved, tuple(versions))


def _layout_command() -> str:
    directories = " ".join(shlex.quote(d) for d in ETCD_DIRECTORIES)
    executables = " ".join(shlex.quote(e) for e in ETCD_EXECUTABLES)
    return (
        "for d in " + directories + '; do if [ -d "$d" ]; then echo "dir $d yes"; else echo "dir $d no"; fi; done; '
        "for e in " + executables + '; do if [ -f "$e" ] && [ -x "$e" ]; then echo "exe $e yes"; '
        # etcd prints its version with --version, etcdctl (3.4) with the `version` command
        'case $e in *ctl) v=$("$e" version 2>/dev/null | head -n 1);; '
        '*) v=$("$e" --version 2>/dev/null | head -n 1);; esac; '
        '[ -n "$v" ] && echo "version $v"; '
        'else echo "exe $e no"; fi; done; '
        "if [ -f " + shlex.quote(layout.ETCD_ENV_FILE) + ' ]; then echo "cfg yes"; else echo "cfg no"; fi; '
        # a root login shell with a clean environment: what an operator typing `etcdctl` gets
        "p=$(env -i HOME=/root LOGNAME=root USER=root sh -lc 'command -v etcdctl' 2>/dev/null); "
        'echo "path ${p} $( [ -n "$p" ] && readlink -f "$p")"'
    )


etcd_layout = Fact("etcd.layout", _layout_command(), parse_etcd_layout)


# ----------------------------------------------------------------------------- etcdctl on the host


@dataclass(frozen=True)
class EtcdctlHealth:
    endpoint: str
    healthy: bool
    took: str
    error: str


def parse_etcdctl_health(raw: Raw) -> EtcdctlHealth:
    """`etcdctl endpoint health -w json`: a JSON list even when unhealthy (then etcdctl exits 1)."""
    text = raw.stdout.strip()
    if not text:
        return EtcdctlHealth(
            "", False, "", raw.stderr.strip().splitlines()[-1] if raw.stderr.strip() else f"rc {raw.rc}"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ParseError(f"etcdctl printed no JSON: {text[:200]!r}") from None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise ParseError(f"unexpected etcdctl JSON: {text[:200]!r}")
    entry: dict[str, Any] = data[0]
    return EtcdctlHealth(
        str(entry.get("endpoint", "")),
        bool(entry.get("health")),
        str(entry.get("took", "")),
        str(entry.get("error", "")),
    )


def etcdctl_health(host: HostSpec) -> Fact[EtcdctlHealth]:
    ssl = layout.ETCD_SSL
    argv = [
        "etcdctl",
        "--cacert=" + ssl + "/ca.pem",
        "--cert=" + ssl + "/server.pem",
        "--key=" + ssl + "/server-key.pem",  # etcdctl reads it on the host; its bytes never leave
        "--endpoints=https://" + host.address + ":2379",
        "--dial-timeout=3s",
        "--command-timeout=5s",
        "endpoint",
        "health",
        "-w",
        "json",
    ]
    return Fact(
        "etcd.etcdctl-health",
        "ETCDCTL_API=3 timeout 15 " + shlex.join(argv),
        parse_etcdctl_health,
        requires=("etcdctl", "timeout"),
    )


def parse_cluster_health(raw: Raw, url: str) -> EtcdctlHealth:
    """`ETCDCTL_API=2 etcdctl cluster-health` (the guide's check), for the member at ``url``.

    Its lines (etcd 3.3.27 etcdctl/ctlv2/command/cluster_health.go): `member <id> is healthy: got
    healthy result from <url>`, `... is unhealthy: got unhealthy result from <url>`, `failed to
    check the health of member <id> on <url>: <err>`, `member <id> is unreachable: [<urls>] are all
    unreachable`, then `cluster is healthy|degraded|unavailable`; when the member list cannot be
    read, `cluster may be unhealthy: failed to list members` and `Error:  <err>` on stderr.
    """
    lines = [line.strip() for line in raw.stdout.splitlines() if line.strip()]
    for line in lines:
        healthy = line.startswith("member ") and " is healthy: got healthy result from " in line
        if healthy and line.rsplit(" ", 1)[-1].rstrip("/") == url.rstrip("/"):
            return EtcdctlHealth(url, True, "", "")
    mine = [line for line in lines if url in line]
    if mine:
        return EtcdctlHealth(url, False, "", mine[-1])
    errors = [line for line in raw.stderr.splitlines() if line.strip()]
    reason = (lines[-1] if lines else "") + ("; " + errors[-1].strip() if errors else "")
    return EtcdctlHealth(url, False, "", reason.strip("; ") or f"rc {raw.rc}, {url} not in the member list")


def etcdctl_cluster_health(host: HostSpec) -> Fact[EtcdctlHealth]:
    """The v2 health path (etcd < 3.4, or v2 enabled): ETCDCTL_API=2 etcdctl cluster-health with
    the v2 TLS flags --ca-file/--cert-file/--key-file (etcd 3.3.27 etcdctl/ctlv2/ctl.go)."""
    ssl = layout.ETCD_SSL
    url = "https://" + host.address + ":2379"
    argv = [
        "etcdctl",
        "--ca-file=" + ssl + "/ca.pem",
        "--cert-file=" + ssl + "/server.pem",
        "--key-file=" + ssl + "/server-key.pem",  # read on the host; its bytes never leave
        "--endpoints=" + url,
        "cluster-health",
    ]
    return Fact(
        "etcd.etcdctl-cluster-health",
        "ETCDCTL_API=2 timeout 15 " + shlex.join(argv),
        lambda raw: parse_cluster_health(raw, url),
        requires=("etcdctl", "timeout"),
    )


def member_release(found: EtcdLayout) -> str | None:
    """`etcd Version: 3.3.27` (etcd --version's first line) from the layout fact, if it printed one."""
    return next((line for line in found.versions if line.lower().startswith("etcd version")), None)


# ----------------------------------------------------------------------------- exposure, seen from a peer


@dataclass(frozen=True)
class PortAnswer:
    """What `curl` from a peer host got at one URL (no client certificate, any server certificate)."""

    url: str
    rc: int
    http_code: str
    message: str

    @property
    def connected(self) -> bool:
        # 6: cannot resolve, 7: connection refused/unreachable, 28: timed out before any answer
        return self.rc not in (6, 7, 28)

    @property
    def http_answer(self) -> bool:
        """An HTTP response other than Go's "Client sent an HTTP request to an HTTPS server" (400)."""
        return self.rc == 0 and self.http_code not in ("000", "400")

    def describe(self) -> str:
        if self.rc == 0:
            return f"{self.url}: HTTP {self.http_code}"
        return f"{self.url}: curl exit {self.rc}: {self.message or 'no message'}"


def exposure_urls(address: str) -> list[str]:
    return [f"{scheme}://{address}:{port}/version" for port in (2379, 2380) for scheme in ("http", "https")]


def exposure_peer(cluster: Cluster, member: HostSpec) -> HostSpec | None:
    """The host that probes a member's ports: the next host of the inventory (a peer, never itself)."""
    hosts = list(cluster.hosts)
    index = next((i for i, h in enumerate(hosts) if h.name == member.name), None)
    if index is None or len(hosts) < 2:
        return None
    return hosts[(index + 1) % len(hosts)]


def parse_exposure(raw: Raw) -> dict[str, PortAnswer]:
    answers: dict[str, PortAnswer] = {}
    for line in raw.stdout.splitlines():
        fields = line.split()
        if len(fields) < 3 or not fields[1].lstrip("-").isdigit():
            continue
        url, rc, rest = fields[0], int(fields[1]), fields[2:]
        code = rest[-1] if rest and rest[-1].isdigit() and len(rest[-1]) == 3 else "000"
        message = " ".join(rest[:-1] if rest and rest[-1] == code else rest)
        answers[url] = PortAnswer(url, rc, code, message)
    return answers


def etcd_exposure(cluster: Cluster, peer: HostSpec) -> Fact[dict[str, PortAnswer]] | None:
    """From ``peer``: plain http and TLS without a client certificate to every member it probes."""
    urls = [
        url
        for member in cluster.etcd_members
        if (chosen := exposure_peer(cluster, member)) is not None and chosen.name == peer.name
        for url in exposure_urls(member.address)
    ]
    if not urls:
        return None
    command = (
        "for url in " + " ".join(shlex.quote(u) for u in urls) + "; do "
        "case $url in https:*) insecure=-k;; *) insecure=;; esac; "
        "out=$(curl -sS $insecure -o /dev/null --connect-timeout 2 -m 4 -w '\\n%{http_code}' \"$url\" 2>&1); rc=$?; "
        "printf '%s %s %s\\n' \"$url\" \"$rc\" \"$(printf '%s' \"$out\" | tr '\\n' ' ')\"; done"
    )
    return Fact("etcd.exposure", command, parse_exposure, requires=("curl",))


# ----------------------------------------------------------------------------- registration


@fact_set("etcd", groups=("ETCD", "SEC"))
def etcd_member_facts(cluster: Cluster, host: HostSpec) -> list[Fact[Any]]:
    facts: list[Fact[Any]] = [etcd_layout, etcd_service, etcdctl_health(host)]
    if declares_etcd_v2(cluster.versions.etcd, cluster.versions.flannel):
        facts.append(etcdctl_cluster_health(host))  # ETCD-07 asks for v2 health where the member speaks it
    return facts


@fact_set("all", groups=("ETCD",), peer=True)
def etcd_peer_facts(cluster: Cluster, host: HostSpec) -> list[Fact[Any]]:
    exposure = etcd_exposure(cluster, host)
    return [exposure] if exposure is not None else []
