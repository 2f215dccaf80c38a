"""Facts about the control plane (guide chapter 五, master01) and the component helpers node.py shares.

What is read, and why from there:

* the flags of the RUNNING process (/proc/<MainPID>/cmdline), not the option file: what the process
  was started with is what is in effect; the option file may have been edited since;
* versions from the binaries themselves (`kube-apiserver --version`), which works with the API down;
* token.csv only as fingerprints: per line the token's length, whether it is hex, its sha256 and
  the non-secret rest of the line; the token itself never leaves the host;
* exposure (6443's certificate chain, plain HTTP to 8080, anonymous requests) from a PEER host, as
  a client on the network would see it: the peer's own batch carries these facts.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from kubeproof import layout
from kubeproof.facts import Fact, ParseError, Raw
from kubeproof.facts.files import file_text
from kubeproof.facts.host import units_state
from kubeproof.inventory import Cluster, HostSpec
from kubeproof.session import fact_set

MASTER_UNITS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
MASTER_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
LAYOUT_DIRECTORIES = ("bin", "cfg", "ssl", "logs")
APISERVER_SECURE_PORT = 6443
INSECURE_PORT = 8080
# a protected path: listing secrets needs privileges an anonymous user must never have (MASTER-06)
PROTECTED_PATH = "/api/v1/namespaces/kube-system/secrets"
# root's standard PATH, without /opt/kubernetes/bin (its login shell may add to it): the kubectl an admin runs
ADMIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# how ss shows a listener on every address (recognised, never bound)
WILDCARD_ADDRESSES = frozenset({"*", "0.0.0.0", "::"})  # noqa: S104
_VERSION = re.compile(r"v\d+\.\d+\.\d+[0-9A-Za-z.+-]*")


# ----------------------------------------------------------------------------- units


def unit_summary(state: dict[str, dict[str, str]], unit: str) -> str:
    """`active, enabled` style: what `systemctl is-active` and `is-enabled` would say."""
    properties = state.get(unit + ".service", {})
    if properties.get("LoadState") == "not-found" or not properties:
        return "not installed"
    return f"{properties.get('ActiveState', 'unknown')}, {properties.get('UnitFileState', 'unknown') or 'unknown'}"


# ----------------------------------------------------------------------------- processes and flags


@dataclass(frozen=True)
class ProcessInfo:
    """The main process of a unit: its argv, and the --config file it reads (when there is one)."""

    unit: str
    pid: int
    argv: tuple[str, ...] = ()
    config_path: str | None = None
    config_text: str | None = None

    @property
    def running(self) -> bool:
        return self.pid > 0 and bool(self.argv)

    @property
    def flags(self) -> dict[str, str]:
        return parse_flags(self.argv[1:])

    def config(self) -> dict[str, Any]:
        """The --config file as YAML (KubeletConfiguration, KubeProxyConfiguration); {} when none."""
        if not self.config_text:
            return {}
        import yaml

        try:
            document = yaml.safe_load(self.config_text)
        except yaml.YAMLError as exc:
            raise ParseError(f"{self.config_path}: not YAML: {str(exc).splitlines()[0]}") from None
        return document if isinstance(document, dict) else {}


def parse_flags(arguments: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`--name=value`, `--name value` and bare boolean `--name` (-> "true"); the last one wins.

    The Kubernetes binaries take no positional arguments, so a word after a bare flag is its value.
    """
    flags: dict[str, str] = {}
    index = 0
    while index < len(arguments):
        word = arguments[index]
        index += 1
        if not word.startswith("-"):
            continue
        name, equals, value = word.lstrip("-").partition("=")
        if equals:
            flags[name] = value
        elif index < len(arguments) and not arguments[index].startswith("-"):
            flags[name] = arguments[index]
            index += 1
        else:
            flags[name] = "true"
    return flags


def parse_processes(raw: Raw) -> dict[str, ProcessInfo]:
    """Output of the processes fact: `@unit NAME PID`, then `@arg ...`, `@config PATH`, `@cfg ...` lines."""
    processes: dict[str, ProcessInfo] = {}
    current: dict[str, Any] | None = None

    def close() -> None:
        if current is not None:
            processes[current["unit"]] = ProcessInfo(
                current["unit"],
                current["pid"],
                tuple(current["argv"]),
                current["config_path"],
                "\n".join(current["config"]) + "\n" if current["config_path"] else None,
            )

    for line in raw.stdout.split("\n"):
        tag, _, rest = line.partition(" ")
        if tag == "@unit":
            close()
            name, _, pid = rest.partition(" ")
            try:
                number = int(pid.strip() or "0")
            except ValueError:
                raise ParseError(f"unit {name}: MainPID {pid!r} is not a number") from None
            current = {"unit": name, "pid": number, "argv": [], "config_path": None, "config": []}
        elif current is None:
            if line.strip():
                raise ParseError(f"unexpected line before the first unit: {line[:80]!r}")
        elif tag == "@arg":
            current["argv"].append(rest)
        elif tag == "@config":
            current["config_path"] = rest
        elif tag == "@config-secret":
            current["config_path"] = rest
            current["config"] = ["# not read: the path names a secret"]
        elif tag == "@cfg" or line == "@cfg":
            current["config"].append(rest)
    close()
    return processes


def processes_fact(name: str, units: tuple[str, ...]) -> Fact[dict[str, ProcessInfo]]:
    """argv of each unit's running main process, and the --config file it reads (never a secret)."""
    script = (
        "for u in " + " ".join(shlex.quote(u) for u in units) + "; do "
        'pid=$(systemctl show -p MainPID --value "$u.service" 2>/dev/null); pid=${pid:-0}; '
        'printf \'@unit %s %s\\n\' "$u" "$pid"; '
        'if [ "$pid" != 0 ] && [ -r "/proc/$pid/cmdline" ]; then '
        "tr '\\0' '\\n' <\"/proc/$pid/cmdline\" | sed 's/^/@arg /'; "
        "cfg=$(tr '\\0' '\\n' <\"/proc/$pid/cmdline\" | "
        'awk \'p { print; exit } /^--config=/ { sub(/^--config=/, ""); print; exit } $0 == "--config" { p = 1 }\'); '
        'if [ -n "$cfg" ]; then case "$cfg" in '
        "*kubeconfig|*.key|*-key.pem|*token.csv) printf '@config-secret %s\\n' \"$cfg\" ;; "
        "*) printf '@config %s\\n' \"$cfg\"; sed 's/^/@cfg /' \"$cfg\" ;; esac; fi; "
        "fi; done"
    )
    return Fact("processes:" + name, script, parse_processes)


# ----------------------------------------------------------------------------- versions


def parse_version_word(text: str) -> str | None:
    """`Kubernetes v1.34.4`, `Client Version: v1.34.4` -> v1.34.4."""
    found = _VERSION.search(text)
    return found.group(0) if found else None


def parse_binary_versions(raw: Raw) -> dict[str, str]:
    """`name<TAB>first line of --version` -> name: version, `missing`, or `unknown: <text>`."""
    versions: dict[str, str] = {}
    for line in raw.stdout.splitlines():
        name, tab, text = line.partition("\t")
        if not tab:
            continue
        if text == "missing":
            versions[name] = "missing"
        else:
            versions[name] = parse_version_word(text) or "unknown: " + text.strip()[:80]
    return versions


def binary_versions(name: str, binaries: tuple[str, ...]) -> Fact[dict[str, str]]:
    """The version each binary in /opt/kubernetes/bin reports (kubectl: its client version)."""
    script = (
        "for b in " + " ".join(shlex.quote(b) for b in binaries) + "; do "
        "p=" + shlex.quote(layout.K8S_BIN) + '/"$b"; '
        'if [ ! -x "$p" ]; then printf \'%s\\tmissing\\n\' "$b"; '
        'elif [ "$b" = kubectl ]; then printf \'%s\\t%s\\n\' "$b" "$("$p" version --client 2>&1 | head -n1)"; '
        # the version is on stdout; some releases log to stderr first (v1.19's kube-scheduler:
        # "Registering SelectorSpread plugin"), which is kept only when stdout says nothing
        'else v=$("$p" --version 2>/dev/null | head -n1); [ -n "$v" ] || v=$("$p" --version 2>&1 | tail -n1); '
        'printf \'%s\\t%s\\n\' "$b" "$v"; fi; done'
    )
    return Fact("versions:" + name, script, parse_binary_versions)


@dataclass(frozen=True)
class AdminKubectl:
    """The kubectl an administrator's login shell finds on the master, and what it reports."""

    path: str | None
    resolved: str | None
    client_version: str | None
    server_answer: str  # the `Server Version:` line, or why kubectl could not ask


def parse_admin_kubectl(raw: Raw) -> AdminKubectl:
    values: dict[str, str] = {}
    for line in raw.stdout.splitlines():
        key, _, value = line.partition("=")
        values.setdefault(key, value)
    path = values.get("path") or None
    server = values.get("server", "")
    server_line = next((part for part in server.split(" | ") if part.startswith("Server Version")), "")
    return AdminKubectl(
        path,
        values.get("resolved") or None,
        parse_version_word(values.get("client", "")),
        server_line or server[:200] or "no answer",
    )


admin_kubectl = Fact(
    "master:admin-kubectl",
    "k=$(env PATH=" + shlex.quote(ADMIN_PATH) + " bash -lc 'command -v kubectl' 2>/dev/null | tail -n1); "
    'echo "path=$k"; '
    'if [ -n "$k" ]; then echo "resolved=$(readlink -f "$k")"; '
    'echo "client=$("$k" version --client 2>&1 | head -n1)"; '
    "echo \"server=$(timeout 8 \"$k\" version --request-timeout=5s 2>&1 | tr '\\n' '|' | sed 's/|/ | /g')\"; fi",
    parse_admin_kubectl,
)


# ----------------------------------------------------------------------------- files


def parse_layout(raw: Raw) -> list[str]:
    return [line.strip() for line in raw.stdout.splitlines() if line.strip()]


master_layout = Fact(
    "master:layout",
    "for d in " + " ".join(LAYOUT_DIRECTORIES) + "; do "
    "[ -d " + shlex.quote(layout.K8S_HOME) + '/"$d" ] && echo "$d"; done; true',
    parse_layout,
)


@dataclass(frozen=True)
class TokenLine:
    """One token.csv line, with the token reduced to its shape and fingerprint."""

    line: int
    length: int
    hex: bool
    sha256: str
    rest: str  # user,uid,"groups": not secret

    @property
    def shape(self) -> str:
        """`<32 hex>,kubelet-bootstrap,10001,"system:kubelet-bootstrap"`: the line with its token masked."""
        token = f"<{self.length} hex>" if self.hex else f"<{self.length} characters, not hex>"
        return token + ("," + self.rest if self.rest else "")


@dataclass(frozen=True)
class TokenCsv:
    present: bool
    mode: str | None = None
    owner: str | None = None
    lines: tuple[TokenLine, ...] = ()


_TOKEN_LINE = re.compile(r"line=(\d+) length=(\d+) hex=(yes|no) sha256=([0-9a-f]{64}) rest=(.*)")


def parse_token_csv(raw: Raw) -> TokenCsv:
    text = raw.stdout
    if text.strip() == "absent":
        return TokenCsv(False)
    mode = owner = None
    lines: list[TokenLine] = []
    for line in text.splitlines():
        if line.startswith("mode="):
            fields = dict(part.partition("=")[::2] for part in line.split())
            mode, owner = fields.get("mode"), fields.get("owner")
            continue
        match = _TOKEN_LINE.fullmatch(line)
        if match is None:
            if line.strip():
                raise ParseError(f"unexpected token.csv summary line {line[:40]!r}")
            continue
        number, length, is_hex, digest, rest = match.groups()
        lines.append(TokenLine(int(number), int(length), is_hex == "yes", digest, rest))
    if mode is None:
        raise ParseError(f"no mode line for {layout.TOKEN_CSV}: {raw.stderr.strip()[:200]}")
    return TokenCsv(True, mode, owner, tuple(lines))


# The token goes through a pipe into sha256sum; `printf` is a shell builtin, so it is never in a
# process's argv. Lines without a comma are all token (nothing else of them is printed).
token_csv = Fact(
    "master:token-csv",
    "f=" + shlex.quote(layout.TOKEN_CSV) + "; "
    'if [ ! -e "$f" ]; then echo absent; else '
    "stat -c 'mode=%a owner=%U group=%G' \"$f\"; n=0; "
    'while IFS= read -r line || [ -n "$line" ]; do n=$((n+1)); [ -z "$line" ] && continue; '
    'case "$line" in *,*) tok=${line%%,*}; rest=${line#*,} ;; *) tok=$line; rest= ;; esac; '
    'case "$tok" in ""|*[!0-9a-fA-F]*) hex=no ;; *) hex=yes ;; esac; '
    "sum=$(printf '%s' \"$tok\" | sha256sum | cut -d' ' -f1); "
    'printf \'line=%s length=%s hex=%s sha256=%s rest=%s\\n\' "$n" "${#tok}" "$hex" "$sum" "$rest"; '
    'done <"$f"; fi',
    parse_token_csv,
    requires=("sha256sum",),
)


@dataclass(frozen=True)
class HttpAnswer:
    """What curl saw: exit code, HTTP status (0: none), whether TCP connected, the body's start."""

    rc: int
    status: int
    connected: bool
    body: str
    error: str = ""

    def describe(self) -> str:
        if self.status:
            return f"HTTP {self.status}" + (f": {self.body[:80]}" if self.body else "")
        if self.connected:
            return "TCP connection accepted, no HTTP answer" + (f" ({self.error})" if self.error else "")
        return self.error or f"curl exit {self.rc}"


_CURL_TRAILER = re.compile(r"\n?@@KP (\d{3}) ([0-9.]+)\s*$")


def parse_curl(raw: Raw) -> HttpAnswer:
    """curl with `-w '\\n@@KP %{http_code} %{time_connect}'`: the body, then the trailer."""
    match = _CURL_TRAILER.search(raw.stdout)
    if match is None:
        return HttpAnswer(raw.rc, 0, False, "", raw.stderr.strip()[:200] or "no curl output")
    body = raw.stdout[: match.start()].strip()
    return HttpAnswer(raw.rc, int(match.group(1)), float(match.group(2)) > 0, body[:2000], raw.stderr.strip()[:200])


def curl_command(url: str, *options: str) -> str:
    return shlex.join(
        [
            "curl",
            "-sS",
            "--connect-timeout",
            "2",
            "-m",
            "4",
            *options,
            "-w",
            "\n@@KP %{http_code} %{time_connect}\n",
            url,
        ]
    )


# ----------------------------------------------------------------------------- listeners


@dataclass(frozen=True)
class Listener:
    address: str  # without brackets or %interface; "*" for a wildcard
    port: int
    process: str  # the first process name ss reports, "" when none

    @property
    def wildcard(self) -> bool:
        return self.address in WILDCARD_ADDRESSES

    @property
    def loopback(self) -> bool:
        import ipaddress

        if self.wildcard or not self.address:
            return False
        try:
            address = ipaddress.ip_address(self.address)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return address.ipv4_mapped.is_loopback
        return address.is_loopback

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}" + (f" ({self.process})" if self.process else "")


_PROCESS_NAME = re.compile(r'users:\(\("([^"]+)"')


def parse_ss_listeners(raw: Raw) -> list[Listener]:
    """`ss -Hltnp` lines: State Recv-Q Send-Q Local:Port Peer:Port [users:(("name",pid=..,fd=..))]."""
    if raw.rc != 0:
        raise ParseError(raw.stderr.strip() or f"ss exited {raw.rc}")
    listeners = []
    for line in raw.stdout.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        local = fields[3]
        host, _, port = local.rpartition(":")
        host = host.strip("[]").split("%", 1)[0]
        if not port.isdigit():
            raise ParseError(f"unexpected ss local address {local!r}")
        process = _PROCESS_NAME.search(line)
        listeners.append(Listener(host, int(port), process.group(1) if process else ""))
    return listeners


master_listeners = Fact("master:listeners", "ss -Hltnp", parse_ss_listeners, requires=("ss",))


# ----------------------------------------------------------------------------- health endpoints


def parse_health(raw: Raw) -> dict[str, HttpAnswer]:
    """`@@ NAME` headers, each followed by one curl's output (see curl_command) and `@@ERR` its stderr."""
    answers: dict[str, HttpAnswer] = {}
    for block in raw.stdout.split("@@ ")[1:]:
        name, _, rest = block.partition("\n")
        body, _, error = rest.partition("@@ERR")
        answers[name.strip()] = parse_curl(Raw(body, error.strip(), 0))
    return answers


def _health_script(unit: str, port: int, paths: tuple[str, ...]) -> str:
    """curl the component's secure port on the address it binds (loopback when it binds all)."""
    lines = [
        "pid=$(systemctl show -p MainPID --value " + shlex.quote(unit + ".service") + " 2>/dev/null); "
        "pid=${pid:-0}; a=; p=",
        'if [ "$pid" != 0 ] && [ -r "/proc/$pid/cmdline" ]; then '
        "a=$(tr '\\0' '\\n' <\"/proc/$pid/cmdline\" | sed -n 's/^--bind-address=//p' | tail -n1); "
        "p=$(tr '\\0' '\\n' <\"/proc/$pid/cmdline\" | sed -n 's/^--secure-port=//p' | tail -n1); fi",
        'case "$a" in ""|0.0.0.0|::) a=127.0.0.1 ;; *:*) a="[$a]" ;; esac; p=${p:-' + shlex.quote(str(port)) + "}",
    ]
    for path in paths:
        lines.append(
            "printf '@@ %s\\n' " + shlex.quote(unit + " /" + path) + "; "
            "curl -sSk --connect-timeout 2 -m 4 -w '\\n@@KP %{http_code} %{time_connect}\\n' "
            '"https://$a:$p/"' + shlex.quote(path) + ' 2>"$kp_health_err"; '
            'printf \'@@ERR %s\\n\' "$(cat "$kp_health_err")"'
        )
    return "; ".join(lines)


# What each component serves: kube-controller-manager has /healthz only (/livez answers 404 in v1.34).
HEALTH_PATHS = {
    "kube-scheduler": ("healthz", "livez"),
    "kube-controller-manager": ("healthz",),
    "kube-apiserver": ("livez", "readyz?verbose"),
}
SECURE_PORTS = {"kube-scheduler": 10259, "kube-controller-manager": 10257, "kube-apiserver": APISERVER_SECURE_PORT}

component_health = Fact(
    "master:component-health",
    "kp_health_err=$(mktemp); "
    + "; ".join(_health_script(unit, SECURE_PORTS[unit], paths) for unit, paths in HEALTH_PATHS.items())
    + '; rm -f "$kp_health_err"',
    parse_health,
    requires=("curl",),
)

# Every etcd member's /health, asked the way the running apiserver asks: its --etcd-servers with its
# --etcd-cafile/--etcd-certfile/--etcd-keyfile (curl opens the key on the host; it never leaves it).
etcd_health = Fact(
    "master:etcd-health",
    "kp_health_err=$(mktemp); "
    "pid=$(systemctl show -p MainPID --value kube-apiserver.service 2>/dev/null); "
    'if [ "${pid:-0}" != 0 ] && [ -r "/proc/$pid/cmdline" ]; then '
    "args=$(tr '\\0' '\\n' <\"/proc/$pid/cmdline\"); "
    'flag() { printf \'%s\\n\' "$args" | sed -n "s/^--$1=//p" | tail -n1; }; '
    "ca=$(flag etcd-cafile); cert=$(flag etcd-certfile); key=$(flag etcd-keyfile); "
    "for u in $(flag etcd-servers | tr ',' ' '); do printf '@@ %s\\n' \"$u\"; "
    'curl -sS --connect-timeout 2 -m 4 --cacert "$ca" --cert "$cert" --key "$key" '
    '-w \'\\n@@KP %{http_code} %{time_connect}\\n\' "$u/health" 2>"$kp_health_err"; '
    'printf \'@@ERR %s\\n\' "$(cat "$kp_health_err")"; done; fi; '
    'rm -f "$kp_health_err"',
    parse_health,
    requires=("curl",),
)


# ----------------------------------------------------------------------------- token.csv in use


# apiserver's authorization refusal: `... is forbidden: User "kubelet-bootstrap" cannot create ...`
_FORBIDDEN_USER = re.compile(r'is forbidden: User "([^"]+)" cannot ')


@dataclass(frozen=True)
class TokenReview:
    """Who the apiserver says the first token.csv token is (a SelfSubjectReview made with it)."""

    status: int
    username: str | None
    groups: tuple[str, ...] = field(default=())
    detail: str = ""


def parse_self_subject_review(raw: Raw) -> TokenReview:
    if raw.stdout.strip() == "absent":
        return TokenReview(0, None, (), f"{layout.TOKEN_CSV} is absent")
    answer = parse_curl(raw)
    if not answer.status:
        return TokenReview(0, None, (), answer.describe())
    try:
        document = json.loads(answer.body)
    except json.JSONDecodeError:
        return TokenReview(answer.status, None, (), answer.body[:200])
    status = document.get("status") if isinstance(document, dict) else None
    user = (status.get("userInfo") if isinstance(status, dict) else None) or {}
    if answer.status != 201 or not user:
        message = str(document.get("message", "") if isinstance(document, dict) else document)
        forbidden = _FORBIDDEN_USER.search(message) if answer.status == 403 else None
        if forbidden:
            # Authenticated, not authorized: a release without SelfSubjectReview (GA in v1.28, so
            # not on the guide's v1.19) answers the token's user with 403 naming them; a token
            # the apiserver does not accept gets 401. The groups are not said.
            return TokenReview(answer.status, forbidden.group(1), (), message[:200])
        return TokenReview(answer.status, None, (), message[:200])
    return TokenReview(answer.status, user.get("username"), tuple(user.get("groups") or ()))


def token_review(apiserver: str) -> Fact[TokenReview]:
    """POST a SelfSubjectReview with token.csv's first token, on the master itself.

    The token travels only through the shell (sed -> variable -> printf builtin -> curl's stdin,
    read with `-H @-`), never through an argv or back to us; the answer names the user.
    """
    url = f"https://{apiserver}:{APISERVER_SECURE_PORT}/apis/authentication.k8s.io/v1/selfsubjectreviews"
    body = '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}'
    return Fact(
        "master:token-review",
        "f=" + shlex.quote(layout.TOKEN_CSV) + "; "
        'if [ ! -r "$f" ]; then echo absent; else '
        "tok=$(sed -n '1s/,.*//p' \"$f\"); "
        "printf 'Authorization: Bearer %s\\n' \"$tok\" | "
        + curl_command(
            url,
            "--cacert",
            layout.K8S_SSL + "/ca.pem",
            "-H",
            "@-",
            "-H",
            "Content-Type: application/json",
            "-X",
            "POST",
            "--data",
            body,
        )
        + "; fi",
        parse_self_subject_review,
        requires=("curl",),
    )


# ----------------------------------------------------------------------------- peer exposure


def exposure_peer(cluster: Cluster, master: HostSpec) -> HostSpec:
    """The host that probes a master from the network: a worker first, else any other host, else itself."""
    others = [h for h in cluster.workers if h.name != master.name] or [
        h for h in cluster.hosts if h.name != master.name
    ]
    return others[0] if others else master


@dataclass(frozen=True)
class ServedChain:
    """What `openssl s_client -showcerts` got from the dialled address: PEM blocks and the handshake verdict."""

    certificates_pem: str
    connected: bool
    detail: str


def parse_s_client(raw: Raw) -> ServedChain:
    text = raw.stdout
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.DOTALL)
    connected = "CONNECTED(" in text and bool(blocks)
    detail = ""
    if not connected:
        errors = [
            line for line in (raw.stderr + "\n" + text).splitlines() if "error" in line.lower() or "connect" in line
        ]
        detail = "; ".join(e.strip() for e in errors[:3]) or f"openssl s_client exit {raw.rc}"
    return ServedChain("\n".join(blocks) + ("\n" if blocks else ""), connected, detail)


def peer_tls(master: HostSpec) -> Fact[ServedChain]:
    return Fact(
        "peer:tls:" + master.name,
        "timeout 8 openssl s_client -connect "
        + shlex.quote(f"{master.address}:{APISERVER_SECURE_PORT}")
        + " -showcerts </dev/null",
        parse_s_client,
        requires=("openssl", "timeout"),
    )


def peer_insecure(master: HostSpec) -> Fact[HttpAnswer]:
    return Fact(
        "peer:http8080:" + master.name,
        curl_command(f"http://{master.address}:{INSECURE_PORT}/version"),
        parse_curl,
        requires=("curl",),
    )


def peer_anonymous(master: HostSpec) -> Fact[HttpAnswer]:
    # -k: this row is about authorization, not the certificate (MASTER-04 verifies the chain);
    # no credentials at all, so the apiserver sees system:anonymous.
    return Fact(
        "peer:anonymous:" + master.name,
        curl_command(f"https://{master.address}:{APISERVER_SECURE_PORT}{PROTECTED_PATH}", "-k"),
        parse_curl,
        requires=("curl",),
    )


def peer_facts(master: HostSpec) -> list[Fact[Any]]:
    return [peer_tls(master), peer_insecure(master), peer_anonymous(master)]


# ----------------------------------------------------------------------------- fact sets

master_units = units_state("master", MASTER_UNITS)
master_processes = processes_fact("master", MASTER_UNITS)
master_versions = binary_versions("master", MASTER_BINARIES)
kubernetes_ca = file_text(layout.K8S_SSL + "/ca.pem")


def apiserver_serving_cert() -> Fact[str | None]:
    """The certificate --tls-cert-file names (public), read where the running apiserver says it is."""
    return Fact(
        "master:apiserver-serving-cert",
        "pid=$(systemctl show -p MainPID --value kube-apiserver.service 2>/dev/null); "
        'if [ "${pid:-0}" = 0 ]; then echo "kube-apiserver is not running" >&2; exit 3; fi; '
        "f=$(tr '\\0' '\\n' <\"/proc/$pid/cmdline\" | sed -n 's/^--tls-cert-file=//p' | tail -n1); "
        'if [ -z "$f" ]; then echo "kube-apiserver has no --tls-cert-file" >&2; exit 4; fi; '
        'echo "@path $f"; openssl x509 -in "$f"',
        _serving_cert,
        requires=("openssl",),
    )


def _serving_cert(raw: Raw) -> str | None:
    if raw.rc != 0:
        raise ParseError(raw.stderr.strip() or f"exit {raw.rc}")
    return raw.stdout


apiserver_cert = apiserver_serving_cert()


@fact_set("master", groups=("MASTER", "NODE", "SEC"))
def master_facts(cluster: Cluster, host: HostSpec) -> list[Fact[Any]]:
    return [
        master_units,
        master_processes,
        master_versions,
        master_layout,
        token_csv,
        master_listeners,
        component_health,
        etcd_health,
        token_review(host.address),
        admin_kubectl,
        kubernetes_ca,
        apiserver_cert,
    ]


@fact_set("all", groups=("MASTER", "SEC"), peer=True)
def exposure_facts(cluster: Cluster, host: HostSpec) -> list[Fact[Any]]:
    """Peer probes ride in the designated peer's own batch (one round trip, no extra connection)."""
    facts: list[Fact[Any]] = []
    for master in cluster.masters:
        if exposure_peer(cluster, master).name == host.name:
            facts.extend(peer_facts(master))
    return facts
