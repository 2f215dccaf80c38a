"""Realistic report.html input: every catalogue row on the guide's hosts plus a fourth node.

One run of the real catalogue (437 rows on master01, node01, node02, node03) with what a broken
cluster produces: node02's etcd certificate lacks its address (a root cause with consequences,
linked by the real cause rules), node03 does not answer (every one of its rows errors), a few
rows not applicable, the SEC findings of the seed profile, one waived failure and one whose
waiver expired, one regression against a baseline. Every row carries `seen` lines, sources and a
raw-output evidence item of a few KB, as the plugin records them (the page must not carry that
output). `green_records` is the same run on a healthy cluster.
"""

from __future__ import annotations

import copy
from html.parser import HTMLParser
from typing import Any

from kubeproof.causes import annotate, load_cause_rules
from kubeproof.checks import Check, load_catalogue
from kubeproof.evaluate import base_record
from kubeproof.inventory import parse_cluster_text
from tests.offline.guide_cluster import GUIDE_CLUSTER_YAML

STARTED = 1_796_512_204.0  # 2026-12-05 23:10:04 UTC
NODE03 = """\
  - name: node03
    address: 192.168.61.23
    roles: [node]
"""
CLUSTER = parse_cluster_text(GUIDE_CLUSTER_YAML.replace("network:", NODE03 + "network:"))
HOSTS = [host.name for host in CLUSTER.hosts]
UNREACHABLE = "node03 unreachable: ssh: no banner from 192.168.61.23:22 within 15 s (--ssh-timeout)"
# Raw output of the size a certificate-directory dump or a unit's journal has: it belongs in the
# evidence bundle, and the test asserts it never reaches the page.
RAW_OUTPUT_MARK = "RAW-STDOUT-LINE"
RAW_OUTPUT = "".join(
    f"{RAW_OUTPUT_MARK} {n:04d} Dec 05 23:10:04 kubelet[812]: I1205 reflector.go:376\n" for n in range(60)
)

# A unit-state fact's command as the real facts write it (~1.3 KB): the source of many rows.
UNIT_COMMAND = (
    "u={unit}.service; echo '@@kp-section show'; systemctl show --no-pager -p Id,LoadState,ActiveState,SubState,"
    "UnitFileState,MainPID,Type,Restart,LimitNOFILE,NRestarts,Result,NeedDaemonReload,FragmentPath,DropInPaths,"
    'EnvironmentFiles "$u"; echo \'@@kp-section cat\'; systemctl cat --no-pager "$u" 2>/dev/null; '
    'systemctl show -p EnvironmentFiles --value "$u" | while read -r f _; do [ -n "$f" ] || continue; '
    'case $f in *-key.pem|*.key|*token.csv|*kubeconfig) continue;; esac; if [ -r "$f" ]; then '
    "printf '@@kp-section envfile %s\\n' \"$f\"; awk -v re='^[[:space:]]*(export[[:space:]]+)?([A-Z0-9_]*)=' "
    "'/^[[:space:]]*[#;]/ {{next}} {{print}}' \"$f\"; else printf '@@kp-section envfile-missing %s\\n' \"$f\"; fi; "
    'done; pid=$(systemctl show -p MainPID --value "$u"); if [ "${{pid:-0}}" != 0 ] && '
    "[ -r \"/proc/$pid/cmdline\" ]; then echo '@@kp-section cmdline'; tr '\\0' '\\n' <\"/proc/$pid/cmdline\"; fi; "
    "echo '@@kp-section journal'; if systemctl is-active -q \"$u\"; then journalctl -u {unit}.service -n 30 "
    "--no-pager -o short-iso 2>&1; else journalctl -u {unit}.service -n 200 --no-pager -o short-iso 2>&1; fi; true"
)

META: dict[str, Any] = {
    "cluster": "lab",
    "profile": "seed",
    "hosts": HOSTS,
    "source": "/work/main/.kubeproof/lab/cluster.yaml",
    "args": ["--cluster", ".kubeproof/lab/cluster.yaml", "--report-dir", "reports-out"],
    "started": STARTED,
    "finished": STARTED + 21.4,
    "kubeproof": "0.1.0",
    "python": "3.11.7",
    "user": "root",
    "logins": ["root"],
    "baseline": "reports-baseline",
    "regressions": 1,
}
STATS: dict[str, dict[str, Any]] = {
    host: {"ssh_connections": 1, "remote_commands": 40 + n, "remote_command_seconds": 1.5 + n, "fact_batches": 2}
    for n, host in enumerate(HOSTS)
}


def _hosts_for(check: Check) -> list[str]:
    """As the plugin parametrizes rows (fixtures/plugin.py hosts_for)."""
    if "cluster" in check.roles:
        return [CLUSTER.masters[0].name]
    if "all" in check.roles:
        return HOSTS
    return [h.name for h in CLUSTER.hosts if h.roles & set(check.roles)]


def _record(check: Check, host: str, index: int) -> dict[str, Any]:
    """The plugin's record of a passed row (kubeproof.evaluate.base_record), filled in."""
    probe = check.probe.split("(")[0]
    nodeid = f"suites/test_{check.section.lower()}.py::test_row[{check.key}-{host}]"
    return base_record(check, host, nodeid) | {
        "expected": f"expected {check.expected!r}" if check.expected is not None else "expected none",
        "observed": repr(check.expected) if check.expected is not None else "[]",
        "sources": [
            f"{host}$ {probe.replace('_', ' ')} --check",
            f"{host}$ " + UNIT_COMMAND.format(unit=check.section.lower()),
        ],
        "seen": [f"{probe} on {host}: {check.expected!r}", f"read from {probe} at index {index}"],
        "evidence": [
            {
                "host": host,
                "fact": probe,
                "command": f"{probe} --dump",
                "rc": 0,
                "stdout": RAW_OUTPUT,
                "stderr": "",
                "timestamp": STARTED + 1,
            }
        ],
        "started": STARTED + 0.04 * index,
        "duration": 0.012,
        "outcome": "passed",
        "caused_by": None,
    }


def green_records() -> list[dict[str, Any]]:
    """Every catalogue row on every host it applies to, as a healthy cluster answers them."""
    records: list[dict[str, Any]] = []
    for check in load_catalogue():
        for host in _hosts_for(check):
            record = _record(check, host, len(records))
            if check.kind == "finding":
                record["outcome"] = "finding"
            records.append(record)
    return records


def _set(records: list[dict[str, Any]], key: str, host: str, **fields: Any) -> dict[str, Any]:
    [record] = [r for r in records if r["key"] == key and r["host"] == host]
    record.update(fields)
    return record


def broken_run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(records, root causes): the healthy run broken as the module docstring says, causes linked
    by the real rules (kubeproof/checks/causes.yaml) as the plugin links them."""
    records = copy.deepcopy(green_records())
    _set(
        records,
        "PKI-E-03",
        "node02",
        outcome="failed",
        observed="['192.168.61.17', '192.168.61.18']",
        seen=["/opt/etcd/ssl/server.pem SAN IPs: 192.168.61.17, 192.168.61.18 (192.168.61.22 missing)"],
        diagnosis=["etcd-cert.sh's server-csr.json lists the hosts the guide had when it was written"],
    )
    _set(
        records,
        "ETCD-06:state",
        "node02",
        outcome="failed",
        observed="'activating/auto-restart'",
        seen=["etcd.service: activating (auto-restart), 14 restarts"],
        diagnosis=[
            "matched SIG-ETCD-01 -> PKI-E-03: the server certificate does not name this member's address",
            'etcd[2211]: rejected connection from "192.168.61.17:40122" (error "tls: bad certificate")',
        ],
    )
    for record in records:
        if record["id"] in ("ETCD-07", "ETCD-08") and record["host"] in ("master01", "node01"):
            record.update(outcome="error", reason="probe could not run: etcd member 192.168.61.22 refused", seen=[])
    for record in records:
        if record["host"] == "node03":
            record.update(outcome="error", reason=f"probe could not run: {UNREACHABLE}", seen=[], observed="")
    _set(records, "MASTER-05", "master01", outcome="skipped", reason="not applicable: v1.34.4 has no insecure port")
    _set(
        records,
        "ENV-02:config",
        "node01",
        outcome="waived",
        observed="'enforcing'",
        waiver={
            "id": "ENV-02:config",
            "host": "node01",
            "reason": "SELinux policy change scheduled with the OS upgrade (CHG-4411)",
            "approver": "J. Doe",
            "expires": "2027-01-31",
            "expired": False,
            "source": "waivers.yaml:3",
        },
    )
    _set(
        records,
        "ENV-05",
        "node01",
        outcome="failed",
        observed="[('192.168.61.22', 'node2')]",
        regression="passed -> failed",
        waiver={
            "id": "ENV-05",
            "host": "node01",
            "reason": "stale hosts entry during the rename",
            "approver": "A. Li",
            "expires": "2026-11-30",
            "expired": True,
            "source": "waivers.yaml:9",
        },
    )
    roots = annotate(records, load_cause_rules())
    return records, [cause.as_dict() for cause in roots]


class ReportDom(HTMLParser):
    """What the tests read from report.html, as written or as Chromium dumps it after its script ran.

    `elements`: (tag, attributes) of every start tag in order; `texts`: the text of every element
    with an id or a data-outcome count, keyed "#id" or "count:<outcome>".
    """

    VOID = frozenset({"meta", "input", "br", "hr", "img", "link", "wbr", "col"})

    def __init__(self, document: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []
        self.feed(document)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.elements.append((tag, values))
        if tag in self.VOID:
            return
        label = None
        if "count" in values.get("class", "").split() and "data-outcome" in values:
            label = f"count:{values['data-outcome']}"
        elif "id" in values:
            label = f"#{values['id']}"
        if label is not None:
            self.texts[label] = ""
        self._open.append((tag, label))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            opened, _ = self._open.pop()
            if opened == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, label in self._open:
            if label is not None:
                self.texts[label] += data

    def with_class(self, css: str, tag: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.elements if css in a.get("class", "").split() and (tag is None or t == tag)]

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.elements if "id" in a}

    def results_rows(self) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == "tr" and "data-outcome" in a and "id" in a]


def dom_problems(dom: ReportDom, records: list[dict[str, Any]]) -> list[str]:
    """What a reader would find wrong with the page against the records it was made from."""
    problems: list[str] = []
    ids = dom.ids()
    rows = dom.results_rows()
    if len(rows) != len(records):
        problems.append(f"{len(rows)} result rows for {len(records)} records")
    # Verdict counts = rows in the table, by outcome.
    for outcome in {*(r["outcome"] for r in records), "failed", "passed"}:
        shown = dom.texts.get(f"count:{outcome}", "").strip()
        actual = sum(1 for row in rows if row["data-outcome"] == outcome)
        expected = sum(1 for r in records if r["outcome"] == outcome)
        if shown != str(actual) or actual != expected:
            problems.append(f"verdict says {shown!r} {outcome}, table has {actual}, records {expected}")
    if dom.texts.get("count:total", "").strip() != str(len(records)):
        problems.append(f"verdict total {dom.texts.get('count:total')!r} for {len(records)} records")
    # Matrix: IDs x hosts that ran, every cell drawn; one link per row, each to an existing row.
    cells = dom.with_class("cell", "td")
    want_ids = {r["id"] for r in records}
    want_hosts = {r["host"] for r in records}
    if len(cells) != len(want_ids) * len(want_hosts):
        problems.append(f"{len(cells)} matrix cells for {len(want_ids)} IDs x {len(want_hosts)} hosts")
    if {(c["data-id"], c["data-host"]) for c in cells} != {(i, h) for i in want_ids for h in want_hosts}:
        problems.append("matrix cells do not cover every ID x host")
    marks = [a for t, a in dom.elements if t == "a" and "m" in a.get("class", "").split() and "href" in a]
    targets = [a["href"].removeprefix("#") for a in marks]
    if sorted(targets) != sorted(row["id"] for row in rows):
        problems.append(f"{len(targets)} matrix links for {len(rows)} rows, or not one link per row")
    # Every in-page link lands somewhere.
    dangling = sorted(
        {a["href"] for _, a in dom.elements if a.get("href", "").startswith("#") and a["href"][1:] not in ids}
    )
    if dangling:
        problems.append(f"links to no element: {dangling[:5]}")
    return problems
