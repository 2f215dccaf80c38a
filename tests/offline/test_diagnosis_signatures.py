"""Known signatures as data (kubeproof.diagnosis), offline: the catalogue validates; each signature
matches a sample line in its upstream wording and no healthy line of its unit; the journal reader
drops systemd's bookkeeping; failing rows show the program's fatal line, not systemd's."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from kubeproof.checks import load_catalogue
from kubeproof.diagnosis import (
    KNOWN_UNITS,
    MAX_DIAGNOSIS_LINES,
    SignatureError,
    default_signatures,
    explain,
    journal_command,
    match_signatures,
    parse_journal,
    parse_signatures,
    render_unit_diagnosis,
    unit_diagnosis_command,
)
from kubeproof.diagnosis.journal import error_lines, last_run, own_lines, systemd_notes
from kubeproof.facts.etcd import parse_service_output, service_fact
from kubeproof.inventory import HostSpec
from kubeproof.probes import master
from kubeproof.session import HostContext
from kubeproof.transport import CommandResult
from tests.offline.diagnosis_samples import AT, BOOKKEEPING, CRASH_LOOP, HEALTHY, IDENTIFIER, LAB_LINES, SAMPLES
from tests.offline.facts_samples import GUIDE_ETCD_ENV, GUIDE_ETCD_UNIT, raw, service_capture

INVARIANTS = Path(__file__).resolve().parents[2].parent / "shared" / "guide" / "INVARIANTS.md"
SIGNATURES = default_signatures()


def _line(unit: str, message: str, identifier: str | None = None) -> str:
    return f"{AT} {identifier or IDENTIFIER.get(unit, unit)}[4242]: {message}"


def _matches(unit: str, message: str, source: str = "unit") -> list[str]:
    ident = "systemd" if source == "systemd" else None
    lines = parse_journal([_line(unit, message, ident)])
    return [m.signature.id for m in match_signatures(unit, own_lines(lines), SIGNATURES, systemd_notes(lines))]


# ----------------------------------------------------------------------------- the catalogue


def test_catalogue_loads_and_every_row_is_well_formed() -> None:
    assert len(SIGNATURES) >= 15
    assert len({s.id for s in SIGNATURES}) == len(SIGNATURES)
    assert {s.unit for s in SIGNATURES} <= set(KNOWN_UNITS)
    for signature in SIGNATURES:
        assert signature.id.startswith("SIG-") and not signature.pattern.search("")
        assert "\n" not in signature.explanation + signature.fix


def test_points_to_is_an_invariant_of_the_guide_with_a_catalogue_row() -> None:
    if not INVARIANTS.exists():
        pytest.skip(f"{INVARIANTS} is not beside the repository")
    invariants = set(re.findall(r"^- ([A-Z]+(?:-[A-Z])?-\d+)", INVARIANTS.read_text(encoding="utf-8"), re.M))
    checked = {row.id for row in load_catalogue()}
    for signature in SIGNATURES:
        assert signature.points_to in invariants, f"{signature.id}: {signature.points_to} is not in INVARIANTS.md"
        assert signature.points_to in checked, f"{signature.id}: no catalogue row checks {signature.points_to}"


def _one(**fields: str) -> str:
    """A catalogue of one signature: a valid one, with ``fields`` changed ("" leaves a field out)."""
    row = {"id": "SIG-ETCD-01", "unit": "etcd", "pattern": "a", "points_to": "ETCD-02", "explanation": "e", "fix": "f"}
    row.update(fields)
    return "signatures:\n- " + json.dumps({k: v for k, v in row.items() if v})


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (_one(fix=""), "missing fields ['fix']"),
        (_one(pattern="("), "not a valid regex"),
        (_one(pattern="x|"), "matches the empty string"),
        (_one(unit="containerd"), "unknown unit"),
        (_one(points_to="etcd02"), "points_to"),
        (_one(explanation="a\nb"), "one non-empty line"),
        (_one(source="log"), "source"),
        (_one(id="ETCD-01"), "id must look like"),
        (_one(cleared_by="("), "cleared_by is not a valid regex"),
        (_one(scope="everything"), "scope must be one of"),
        (_one(pattern="a.*b", scope="whole-run"), "it must be literal text"),
        (_one() + "\n" + _one(pattern="b").removeprefix("signatures:\n"), "appears twice"),
        ("checks: []", "signatures:"),
    ],
)
def test_malformed_catalogues_are_refused_naming_the_entry(text: str, complaint: str) -> None:
    with pytest.raises(SignatureError, match=re.escape(complaint)):
        parse_signatures(text, "test.yaml")


# ----------------------------------------------------------------------------- signatures both ways


def test_every_signature_has_a_sample() -> None:
    assert set(SAMPLES) == {s.id for s in SIGNATURES}


@pytest.mark.parametrize("signature", SIGNATURES, ids=lambda s: s.id)
def test_signature_matches_its_upstream_sample(signature: Any) -> None:
    _, message = SAMPLES[signature.id]
    assert signature.id in _matches(signature.unit, message, signature.source)


@pytest.mark.parametrize(
    ("signature", "unit_name", "identifier", "fault", "message"), LAB_LINES, ids=[line[0] for line in LAB_LINES]
)
def test_a_line_the_unit_logged_on_the_lab_matches_its_signature(
    signature: str, unit_name: str, identifier: str, fault: str, message: str
) -> None:
    lines = parse_journal([_line(unit_name, message, identifier)])
    found = [m.signature.id for m in match_signatures(unit_name, own_lines(lines), SIGNATURES, systemd_notes(lines))]
    assert signature in found, f"{fault}: {message}"


@pytest.mark.parametrize("unit", KNOWN_UNITS)
def test_no_signature_matches_a_healthy_line_of_its_unit(unit: str) -> None:
    for message in HEALTHY[unit]:
        assert _matches(unit, message) == [], message
    starts = [
        f"Starting {unit}.service - x...",
        f"Started {unit}.service - x.",
        f"{unit}.service: Deactivated successfully.",
    ]
    for signature in (s for s in SIGNATURES if s.unit == unit):
        assert not any(signature.pattern.search(text) for text in starts)


def test_a_signature_reads_only_its_own_unit_and_source() -> None:
    # kubelet's unknown-authority signature does not fire on an etcd line with the same words
    assert "SIG-KUBELET-05" not in _matches("etcd", SAMPLES["SIG-KUBELET-05"][1])
    # a systemd-source signature does not read the program's lines, nor a program one systemd's
    assert _matches("docker", SAMPLES["SIG-DOCKER-03"][1], "unit") == []
    assert _matches("etcd", SAMPLES["SIG-ETCD-04"][1], "systemd") == []


def test_a_condition_that_passed_later_in_the_run_is_not_reported() -> None:
    waiting, issued = SAMPLES["SIG-KUBELET-01"][1], HEALTHY["kubelet"][2]  # a healthy bootstrap: both
    bootstrap = own_lines(parse_journal([_line("kubelet", waiting), _line("kubelet", issued)]))
    assert match_signatures("kubelet", bootstrap, SIGNATURES) == []
    stuck = own_lines(parse_journal([_line("kubelet", issued), _line("kubelet", waiting)]))
    assert [m.signature.id for m in match_signatures("kubelet", stuck, SIGNATURES)] == ["SIG-KUBELET-01"]


# ----------------------------------------------------------------------------- the journal reader


def test_short_iso_journal_keeps_the_programs_own_lines_only() -> None:
    lines = parse_journal("-- Boot 3f2a --\n" + CRASH_LOOP + "-- No entries --\n")
    own = own_lines(lines)
    assert [line.identifier for line in own] == ["etcd"] * 4
    assert not any(fragment in line.raw for line in own for fragment in BOOKKEEPING)
    assert all(line.bookkeeping for line in lines if line.by_systemd)
    assert systemd_notes(lines) == []


def test_cat_output_tells_systemd_by_its_texts() -> None:
    cat = [re.sub(r"^\S+ \S+ [^:]+: ", "", line) for line in CRASH_LOOP.splitlines()]
    own = own_lines(parse_journal(cat))
    assert [line.message for line in own] == cat[1:5]


def test_continuation_lines_belong_to_the_message_above() -> None:
    text = f"{AT} dockerd[9]: failed to start daemon: first line\n    second line\n"
    text += f"{AT} systemd[1]: docker.service: Failed with result 'exit-code'.\n"
    lines = parse_journal(text)
    assert [(line.identifier, line.by_systemd) for line in lines] == [
        ("dockerd", False),
        ("dockerd", False),
        ("systemd", True),
    ]


def test_only_the_last_run_counts() -> None:
    notify = parse_journal(
        CRASH_LOOP + f"{AT} systemd[1]: Starting etcd.service - Etcd Server...\n{AT} etcd[2200]: name = etcd02\n"
    )
    assert [line.message for line in own_lines(last_run(notify))] == ["name = etcd02"]
    ready = f"{AT} systemd[1]: Starting etcd.service - E...\n{AT} etcd[1]: a\n"
    ready += f"{AT} systemd[1]: Started etcd.service - E.\n{AT} etcd[1]: b\n"
    assert [line.message for line in own_lines(last_run(parse_journal(ready)))] == ["a", "b"]
    # a Type=simple unit restarted: "Started" is its only start line
    simple = f"{AT} systemd[1]: Started kubelet.service - K.\n{AT} kubelet[1]: old\n"
    simple += f"{AT} systemd[1]: kubelet.service: Main process exited, code=exited, status=1/FAILURE\n"
    simple += f"{AT} systemd[1]: kubelet.service: Scheduled restart job, restart counter is at 1.\n"
    simple += f"{AT} systemd[1]: Stopped kubelet.service - K.\n"
    simple += f"{AT} systemd[1]: Started kubelet.service - K.\n{AT} kubelet[2]: new\n"
    assert [line.message for line in own_lines(last_run(parse_journal(simple)))] == ["new"]
    # a Type=notify unit whose "Starting" is above what was read: "Started" only says it is ready
    ready_late = (
        f"{AT} dockerd[86]: Daemon has completed initialization\n{AT} systemd[1]: Started docker.service - D.\n"
    )
    assert [line.message for line in own_lines(last_run(parse_journal(ready_late)))] == [
        "Daemon has completed initialization"
    ]


def test_error_lines_are_the_marked_ones_and_the_last() -> None:
    messages = [
        'time="t" level=info msg="Loading containers: done."',
        'time="t" level=error msg="error removing container"',
        '{"level":"fatal","msg":"discovery failed"}',
        "E1127 00:00:00.1 1 main.go:1] boom",
        "I1127 00:00:00.1 1 main.go:1] all good",
        "member 8e9e05c52164694d has already been bootstrapped",
    ]
    chosen = [line.message for line in error_lines(parse_journal([_line("etcd", m) for m in messages]))]
    assert chosen == messages[1:4] + messages[5:]


def test_journal_command_quotes_its_unit() -> None:
    assert journal_command("etcd").startswith("journalctl -u etcd.service -n 20000 --no-pager -o short-iso 2>&1 | ")
    assert journal_command("etcd").endswith(" | tail -n 200")
    assert "'it'\"'\"'s.service'" in journal_command("it's")
    assert journal_command("etcd.service") in service_fact("etcd.service", "ETCD_[A-Z]*").command


# ----------------------------------------------------------------------------- the diagnoses


def _crash_looping_etcd() -> Any:
    capture = service_capture(GUIDE_ETCD_ENV, GUIDE_ETCD_UNIT, None, {}).replace(
        "ActiveState=inactive\nSubState=dead", "ActiveState=failed\nSubState=failed\nResult=exit-code\nNRestarts=5"
    )
    return parse_service_output(raw(capture + CRASH_LOOP))


def test_crash_looping_etcd_shows_its_fatal_line_not_systemds() -> None:
    diagnosis = _crash_looping_etcd().diagnosis()
    assert diagnosis[0] == "etcd.service: failed (failed), enabled; Result=exit-code NRestarts=5"
    assert diagnosis[1].startswith("matched SIG-ETCD-04 → points to ETCD-02: ETCD_NAME is not one of the names")
    assert any('etcd[2101]: couldn\'t find local name "etcd02"' in line for line in diagnosis)
    assert any(line.startswith("journalctl -u etcd.service -n 200") for line in diagnosis)
    assert not any(fragment in line for line in diagnosis for fragment in BOOKKEEPING)
    assert len(diagnosis) <= MAX_DIAGNOSIS_LINES


# journald behind on a busy host: the last run of the loop read back with systemd's lines only
LATE_LAST_RUN = CRASH_LOOP.replace(
    f"{AT} systemd[1]: etcd.service: Consumed 41ms CPU time.\n",
    f"{AT} systemd[1]: Starting etcd.service - Etcd Server...\n"
    f"{AT} systemd[1]: etcd.service: Main process exited, code=exited, status=1/FAILURE\n",
)


def test_a_crash_loops_last_run_without_own_lines_is_read_from_the_run_before() -> None:
    capture = service_capture(GUIDE_ETCD_ENV, GUIDE_ETCD_UNIT, None, {})
    diagnosis = parse_service_output(raw(capture + LATE_LAST_RUN)).diagnosis()
    assert diagnosis[1].startswith("matched SIG-ETCD-04 → points to ETCD-02:")
    assert diagnosis[2] == (
        "etcd: its last run logged nothing in the journal (yet): lines from the run before it, in the same restart loop"
    )
    assert any('etcd[2101]: couldn\'t find local name "etcd02"' in line for line in diagnosis)


def test_a_run_before_a_restart_by_hand_is_not_read() -> None:
    # an operator's restart (no "Scheduled restart job") begins another episode: the old error is not shown
    by_hand = LATE_LAST_RUN.replace(
        f"{AT} systemd[1]: etcd.service: Scheduled restart job, restart counter is at 5.\n", ""
    )
    lines = explain.render_service_journal("etcd.service", "etcd.service: failed", by_hand.splitlines())
    assert not any("SIG-ETCD-04" in line or "couldn't find local name" in line for line in lines), lines
    assert not any("restart loop" in line for line in lines)


def test_no_match_says_the_cause_is_unknown_and_shows_the_last_own_lines() -> None:
    journal = [_line("etcd", m) for m in HEALTHY["etcd"]]
    lines = explain.render_service_journal("etcd.service", "etcd.service: active, enabled", journal)
    assert lines[1] == "no known signature matched; last own lines:"
    assert not any("matched SIG-" in line for line in lines)
    assert lines[-1].endswith("serving client requests on 192.168.61.18:2379")  # the last own line


def test_repeats_collapse_and_the_output_stays_bounded() -> None:
    journal = [_line("etcd", f"unrelated problem {chr(65 + n)}: error") for n in range(26)]
    journal += [_line("etcd", f"failed thing number {n} at {n}") for n in range(150)]
    journal.insert(3, _line("etcd", SAMPLES["SIG-ETCD-06"][1]))  # old, but matched
    lines = explain.render_service_journal("etcd.service", "etcd.service: active, enabled", journal)
    assert len(lines) <= MAX_DIAGNOSIS_LINES
    assert any("has already been bootstrapped" in line for line in lines)  # a matched line is always shown
    assert any("(logged 150 times)" in line for line in lines)


def test_a_unit_systemd_could_not_start_shows_systemds_note() -> None:
    journal = [
        f"{AT} systemd[1]: Starting docker.service - Docker Application Container Engine...",
        f"{AT} systemd[1]: {SAMPLES['SIG-DOCKER-03'][1]}",
        f"{AT} systemd[1]: docker.service: Failed to run 'start' task: No such file or directory",
        f"{AT} systemd[1]: docker.service: Failed with result 'resources'.",
        f"{AT} systemd[1]: Failed to start docker.service - Docker Application Container Engine.",
    ]
    lines = explain.render_service_journal("docker.service", "docker.service: failed (failed), enabled", journal)
    assert lines[1].startswith("matched SIG-DOCKER-03 → points to FLANNEL-04:")
    assert [line for line in lines if line.startswith("  ")] == ["  " + journal[1], "  " + journal[2]]


def test_systemds_child_that_could_not_exec_is_systemd_speaking() -> None:
    # as read on the lab: systemd's forked child logs under "(<binary>)", cut to 15 characters
    journal = [
        f"{AT} systemd[1]: Starting etcd.service - Etcd Server...",
        f"{AT} (of-fault)[10750]: etcd.service: Failed to locate executable /opt/etcd/bin/etcd.kubeproof-fault: "
        "No such file or directory",
        f"{AT} (of-fault)[10750]: etcd.service: Failed at step EXEC spawning /opt/etcd/bin/etcd.kubeproof-fault: "
        "No such file or directory",
        f"{AT} systemd[1]: etcd.service: Main process exited, code=exited, status=203/EXEC",
        f"{AT} systemd[1]: etcd.service: Scheduled restart job, restart counter is at 5.",
        f"{AT} systemd[1]: Stopped etcd.service - Etcd Server.",
        f"{AT} (of-fault)[10757]: etcd.service: Failed to locate executable /opt/etcd/bin/etcd.kubeproof-fault: "
        "No such file or directory",
        f"{AT} systemd[1]: Starting etcd.service - Etcd Server...",
        f"{AT} systemd[1]: Failed to start etcd.service - Etcd Server.",
    ]
    assert [line.by_systemd for line in parse_journal(journal)] == [True] * len(journal)
    lines = explain.render_service_journal("etcd.service", "etcd.service: failed (failed), enabled", journal)
    assert lines[1].startswith("matched SIG-ETCD-10 → points to ETCD-01:")
    # the child's lines of the last run came in above its "Starting": the run before is read
    assert any("restart loop" in line for line in lines)
    # in order, the last run's own lines are read from it
    in_order = [*journal[:6], journal[7], journal[6], journal[8]]
    lines = explain.render_service_journal("etcd.service", "etcd.service: failed (failed), enabled", in_order)
    assert lines[1].startswith("matched SIG-ETCD-10 → points to ETCD-01:")
    assert not any("restart loop" in line for line in lines)


def test_a_broken_catalogue_costs_the_row_only_the_signatures(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable() -> Any:
        raise SignatureError("signatures.yaml: not YAML")

    monkeypatch.setattr(explain, "default_signatures", unreadable)
    lines = _crash_looping_etcd().diagnosis()
    assert "signature catalogue unavailable: signatures.yaml: not YAML" in lines
    assert any("couldn't find local name" in line for line in lines)


def _unit_output(kubelet_lines: list[str], cri_lines: list[str]) -> str:
    properties = "LoadState=loaded\nActiveState=activating\nSubState=auto-restart\nUnitFileState=enabled\n"
    properties += "Result=exit-code\nNRestarts=7\n"
    journals = ["@@kp-journal kubelet", *kubelet_lines, "@@kp-journal cri-dockerd", *cri_lines]
    return properties + "\n".join(journals) + "\n"


# cri-dockerd v0.3.17's own cgroup driver check (core/docker_service.go): its flags never set the
# driver it compares, so the shipped catalogue has no cri-dockerd signature; this test-only one shows
# how a companion's lines are read
CRI_DOCKERD_FATAL = (
    'time="2026-11-27T01:40:01Z" level=fatal msg="misconfiguration: kubelet cgroup driver: \\"systemd\\" '
    'is different from docker cgroup driver: \\"cgroupfs\\""'
)
CRI_DOCKERD_SIGNATURE = """\
signatures:
  - id: SIG-CRIDOCKERD-90
    unit: cri-dockerd
    pattern: 'misconfiguration: kubelet cgroup driver'
    points_to: NODE-04
    explanation: cri-dockerd refuses a kubelet cgroup driver other than docker's
    fix: give cri-dockerd docker's cgroup driver
"""


def test_kubelets_diagnosis_reads_no_companion_the_catalogue_has_no_signature_for() -> None:
    command = unit_diagnosis_command("kubelet")
    assert command.count("journalctl -u ") == 1 and "cri-dockerd" not in command


def test_unit_diagnosis_reads_kubelet_and_cri_dockerd_in_one_command(monkeypatch: pytest.MonkeyPatch) -> None:
    with_companion = (*SIGNATURES, *parse_signatures(CRI_DOCKERD_SIGNATURE))
    monkeypatch.setattr(explain, "default_signatures", lambda: with_companion)
    command = unit_diagnosis_command("kubelet")
    assert subprocess.run(["sh", "-n", "-c", command], check=False).returncode == 0
    assert command.count("journalctl -u ") == 2 and "cri-dockerd.service" in command
    kubelet = [
        f"{AT} systemd[1]: Started kubelet.service - Kubernetes Kubelet.",
        _line("kubelet", SAMPLES["SIG-KUBELET-06"][1]),
    ]
    kubelet += [f"{AT} systemd[1]: kubelet.service: Main process exited, code=exited, status=1/FAILURE"]
    cri = [_line("cri-dockerd", HEALTHY["cri-dockerd"][0]), _line("cri-dockerd", CRI_DOCKERD_FATAL)]
    seen: list[str] = []

    def run_once(ctx: Any, host: Any, cmd: str, timeout: float = 30.0) -> CommandResult:
        seen.append(cmd)
        return CommandResult(host.name, cmd, 0, _unit_output(kubelet, cri), "", 0.0, 0.1)

    monkeypatch.setattr(master, "run_once", run_once)
    host = HostSpec("node01", "192.168.61.18", frozenset({"node"}))
    lines = master.unit_diagnosis(cast(HostContext, None), host, "kubelet")  # run_once is stubbed
    assert seen == [command]
    assert lines[0] == "node01 kubelet status: activating (auto-restart), enabled; Result=exit-code NRestarts=7"
    assert lines[1].startswith("node01 kubelet: matched SIG-KUBELET-06 → points to NODE-04")
    assert lines[2].startswith("node01 kubelet: matched SIG-CRIDOCKERD-90 → points to NODE-04")
    assert any(line.startswith("node01 cri-dockerd journal: ") and "misconfiguration" in line for line in lines)
    assert not any("Setting cgroupDriver" in line or "Main process exited" in line for line in lines)
    assert any("journal:" in line and "kubelet" in line for line in lines)  # what the lab's NODE-08 test reads


def test_unit_diagnosis_without_journal_lines_says_so() -> None:
    lines = render_unit_diagnosis(
        "master01", "kube-scheduler", "LoadState=not-found\n@@kp-journal kube-scheduler\n-- No entries --\n"
    )
    assert lines == [
        "master01 kube-scheduler status: not installed (not-found)",
        "master01 kube-scheduler: no known signature matched; "
        "no own lines in the last 200 lines of journalctl -u kube-scheduler.service",
    ]


def test_a_long_line_keeps_its_head_and_its_error() -> None:
    line = parse_journal([_line("flanneld", SAMPLES["SIG-FLANNEL-02"][1])])[0]
    shown = line.shown()
    assert len(line.raw) > 400 and len(shown) == 400
    assert shown.startswith(AT + " flanneld[4242]: ") and shown.endswith('signed by unknown authority\\""}')


# kube-proxy (Type=simple) crash-looping on the lab, read 0.1 s into a new run of the loop
_PROXY = "kube-proxy.service - Kubernetes Proxy"
_IPVS = next(line[4] for line in LAB_LINES if line[0] == "SIG-PROXY-01")
PROXY_LOOP = [
    f"{AT} systemd[1]: Started {_PROXY}.",
    f"{AT} kube-proxy[8436]: I1205 23:07:15.007677    8436 feature_gate.go:385] feature gates: {{map[]}}",
    f"{AT} kube-proxy[8436]: {_IPVS}",
    f"{AT} systemd[1]: kube-proxy.service: Main process exited, code=exited, status=1/FAILURE",
    f"{AT} systemd[1]: kube-proxy.service: Failed with result 'exit-code'.",
    f"{AT} systemd[1]: kube-proxy.service: Scheduled restart job, restart counter is at 1.",
    f"{AT} systemd[1]: Stopped {_PROXY}.",
    f"{AT} systemd[1]: Started {_PROXY}.",
    f"{AT} kube-proxy[8485]: I1205 23:07:20.526545    8485 feature_gate.go:385] feature gates: {{map[]}}",
]


def test_a_restart_loops_run_in_progress_is_explained_by_the_run_before_it() -> None:
    lines = explain.render_service_journal("kube-proxy.service", "kube-proxy.service: activating", PROXY_LOOP)
    assert lines[1].startswith("matched SIG-PROXY-01 → points to NODE-09:"), lines
    assert (
        "kube-proxy: its last run has not said why (yet): lines from an earlier run of the same restart loop" in lines
    )
    assert any("can't use the IPVS proxier" in line for line in lines)
    assert not any(fragment in line for line in lines for fragment in ("Scheduled restart", "Main process exited"))


def test_a_run_started_by_hand_is_not_explained_by_the_runs_before_it() -> None:
    by_hand = [line for line in PROXY_LOOP if "Scheduled restart job" not in line]
    lines = explain.render_service_journal("kube-proxy.service", "kube-proxy.service: active", by_hand)
    assert lines[1] == "no known signature matched; last own lines:", lines
    assert not any("IPVS" in line for line in lines)


# v1.19.16's kubelet on the lab with cgroupDriver systemd beside docker's cgroupfs: its fatal line,
# then Go's dump of every goroutine (about 1,800 lines per crash; a few of each kind here)
_KUBELET = "2026-12-06T02:52:24+0000 node02 kubelet[18871]: "
KUBELET_FATAL_DUMP = "".join(
    line + "\n"
    for line in (
        _KUBELET + "I1206 02:52:24.051785   18871 docker_service.go:257] Docker cri networking managed by "
        "kubernetes.io/no-op",
        _KUBELET + "F1206 02:52:24.062211   18871 server.go:265] failed to run Kubelet: misconfiguration: kubelet "
        'cgroup driver: "systemd" is different from docker cgroup driver: "cgroupfs"',
        _KUBELET + "goroutine 1 [running]:",
        _KUBELET + "k8s.io/kubernetes/vendor/k8s.io/klog/v2.stacks(0xc000010001, 0xc000b8e000, 0xab, 0xff)",
        _KUBELET + "\tk8s.io/klog/v2@v2.2.0/klog.go:996 +0xb9",
        _KUBELET + "net/http.(*persistConn).Read(0x1e729b8b900, {0x1e729c12000?, 0x3faf0a0?})",
        _KUBELET + "\tnet/http/transport.go:2174 +0x47",
        _KUBELET + "created by net/http.(*Transport).dialConn in goroutine 697",
        _KUBELET + "...additional frames elided...",
        _KUBELET + "goroutine 699 [select]:",
        "2026-12-06T02:52:24+0000 node02 systemd[1]: kubelet.service: Main process exited, code=exited, "
        "status=255/EXCEPTION",
        "  a continuation line of a multi-line message (journalctl indents it): kept",
    )
)


def test_journal_command_drops_a_goroutine_dump_and_keeps_the_fatal_line() -> None:
    """The filter journal_command runs on the host, run here by the nodes' /bin/sh on the lab's lines."""
    command = journal_command("kubelet", 4)
    pipeline = command.split(" | ", 1)[1]  # what follows journalctl
    done = subprocess.run(["sh", "-c", pipeline], input=KUBELET_FATAL_DUMP, capture_output=True, text=True, check=True)
    kept = done.stdout.splitlines()
    assert len(kept) == 4, kept
    assert "failed to run Kubelet: misconfiguration: kubelet cgroup driver" in kept[1]
    assert kept[2].endswith("status=255/EXCEPTION") and kept[3].startswith("  a continuation line")
    own = [line.message for line in error_lines(own_lines(parse_journal(kept[:3])))]
    assert len(own) == 1 and own[0].startswith("F1206 02:52:24.062211"), own


# kube-apiserver crash-looping without etcd, as on the lab: a run gives up after 20 s with its fatal
# line and systemd restarts it at once; the run in progress only says what it meets
_APISERVER = "kube-apiserver.service - Kubernetes API Server"
APISERVER_LOOP = [
    f"{AT} systemd[1]: Starting {_APISERVER}...",
    _line("kube-apiserver", SAMPLES["SIG-APISERVER-04"][1]),
    _line("kube-apiserver", SAMPLES["SIG-APISERVER-05"][1]),
    f"{AT} systemd[1]: kube-apiserver.service: Main process exited, code=exited, status=255/EXCEPTION",
    f"{AT} systemd[1]: kube-apiserver.service: Failed with result 'exit-code'.",
    f"{AT} systemd[1]: kube-apiserver.service: Scheduled restart job, restart counter is at 1.",
    f"{AT} systemd[1]: Stopped {_APISERVER}.",
    f"{AT} systemd[1]: Starting {_APISERVER}...",
    _line("kube-apiserver", SAMPLES["SIG-APISERVER-04"][1]),
]


def test_a_restart_loops_run_in_progress_also_names_how_the_run_before_ended() -> None:
    lines = explain.render_service_journal("kube-apiserver.service", "kube-apiserver: activating", APISERVER_LOOP)
    assert lines[1].startswith("matched SIG-APISERVER-04 → points to ETCD-07:"), lines
    assert lines[2].startswith("matched SIG-APISERVER-05 → points to ETCD-07:"), lines
    assert "kube-apiserver: the run before it, in the same restart loop, ended with SIG-APISERVER-05" in lines
    shown = [line for line in lines if line.startswith("  ")]
    assert "Error creating leases" in shown[0] and "connection refused" in shown[-1]  # in logged order


def test_a_run_started_by_hand_does_not_name_how_the_runs_before_it_ended() -> None:
    by_hand = [line for line in APISERVER_LOOP if "Scheduled restart job" not in line]
    lines = explain.render_service_journal("kube-apiserver.service", "kube-apiserver: activating", by_hand)
    assert lines[1].startswith("matched SIG-APISERVER-04 → points to ETCD-07:"), lines
    assert not any("SIG-APISERVER-05" in line or "Error creating leases" in line for line in lines)


def test_journal_command_drops_the_flag_dump_of_each_start() -> None:
    """kube-apiserver v1.34 logs about 150 FLAG lines at each start (seen on the lab); they are dropped
    on the host, so the lines read reach back to the run before's fatal line."""
    at = "2026-12-06T12:42:09+0000 master01 kube-apiserver[1385]: "
    journal = [
        at + "F1206 12:42:04.267667    1283 instance.go:232] Error creating leases: error creating storage factory",
        "2026-12-06T12:42:09+0000 master01 systemd[1]: Started kube-apiserver.service - Kubernetes API Server.",
        *(at + f'I1206 12:42:09.474333    1385 flags.go:64] FLAG: --flag-{n}="value"' for n in range(150)),
        at + "I1206 12:42:09.474779    1385 options.go:263] external host was not specified, using 192.168.61.17",
    ]
    pipeline = journal_command("kube-apiserver", 3).split(" | ", 1)[1]
    done = subprocess.run(["sh", "-c", pipeline], input="\n".join(journal) + "\n", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [journal[0], journal[1], journal[-1]]


# kube-controller-manager v1.34 without its signing flags, as on the lab: the line is logged once when
# the controllers start, and the last lines read are all later ones
_KCM = "2026-12-06T13:20:01+0000 master01 kube-controller-manager[7001]: "
_KCM_SKIPPING = _KCM + SAMPLES["SIG-KCM-01"][1]
_KCM_OUTPUT = (
    "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nResult=success\nNRestarts=0\n"
    "@@kp-journal kube-controller-manager\n"
    + "".join(
        _KCM + f'I1206 13:20:02.000001    7001 controllermanager.go:781] "Started controller" name="c{n}"\n'
        for n in range(3)
    )
    + "@@kp-whole-run kube-controller-manager\n"
    + _KCM_SKIPPING
    + "\n"
)


def test_a_line_logged_once_at_start_is_found_in_the_whole_run() -> None:
    command = unit_diagnosis_command("kube-controller-manager")
    assert subprocess.run(["sh", "-n", "-c", command], check=False).returncode == 0
    assert "@@kp-whole-run kube-controller-manager" in command
    assert "-e 'Skipping CSR signer controller because no csr cert/key was specified'" in command
    assert "@@kp-whole-run" not in unit_diagnosis_command("kube-scheduler")  # no whole-run signature there
    lines = render_unit_diagnosis("master01", "kube-controller-manager", _KCM_OUTPUT)
    assert lines[1].startswith("master01 kube-controller-manager: matched SIG-KCM-01 → points to MASTER-09:"), lines
    assert (
        "master01 kube-controller-manager: kube-controller-manager: SIG-KCM-01 matched a line logged when its run"
        " started, before the lines read" in lines
    )
    assert any(line.endswith(SAMPLES["SIG-KCM-01"][1]) for line in lines)


def test_whole_run_lines_are_not_read_for_a_run_before() -> None:
    """Lines of the current run say nothing of a run before it: whole-run lines are left unread when
    the diagnosis reads an earlier run of a restart loop."""
    journal = explain.UnitJournal(
        "kube-proxy",
        tuple(parse_journal(PROXY_LOOP)),
        tuple(parse_journal([_KCM_SKIPPING.replace("kube-controller-manager", "kube-proxy")])),
    )
    diagnosis = explain.diagnose([journal])
    assert [match.signature.id for match in diagnosis.matches] == ["SIG-PROXY-01"]
