"""Host keys as `ssh -F` treats them, on the lab's real sshd: StrictHostKeyChecking yes (and the
default) rejects an unknown key, accept-new records it, no connects and says so in the report."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from kubeproof.inventory import Cluster, load_cluster_file
from kubeproof.transport import HOST_KEY_RECORDED, HOST_KEY_UNVERIFIED, HostUnreachable, Transport
from tests.lab.suite_runner import run_suites

pytestmark = pytest.mark.lab


def _variant(lab_cluster_file: Path, tmp_path: Path, *, strict: str | None, known_hosts: Path) -> Cluster:
    """The lab's cluster with an ssh_config whose host-key lines are replaced (the rest kept)."""
    original = (lab_cluster_file.parent / "ssh_config").read_text()
    lines = [
        line
        for line in original.splitlines()
        if not re.match(r"\s*(StrictHostKeyChecking|UserKnownHostsFile)\b", line, re.IGNORECASE)
    ]
    text = "\n".join(lines) + "\n"
    extra = f"    UserKnownHostsFile {known_hosts}\n" + (f"    StrictHostKeyChecking {strict}\n" if strict else "")
    text = re.sub(r"^(Host .*)$", lambda m: m.group(1) + "\n" + extra.rstrip("\n"), text, flags=re.MULTILINE)
    config = tmp_path / f"ssh_config.{strict or 'default'}"
    config.write_text(text)
    return replace(load_cluster_file(lab_cluster_file), ssh_config=config)


@pytest.mark.parametrize("strict", ["yes", None])
def test_an_unknown_host_key_is_rejected(lab_cluster_file: Path, tmp_path: Path, strict: str | None) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    transport = Transport(_variant(lab_cluster_file, tmp_path, strict=strict, known_hosts=empty))
    try:
        with pytest.raises(HostUnreachable, match=r"not found in known_hosts|host key"):
            transport.connection("master01").run("true")
    finally:
        transport.close()
    assert empty.read_text() == ""


def test_accept_new_records_the_key_then_verifies_it(lab_cluster_file: Path, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    cluster = _variant(lab_cluster_file, tmp_path, strict="accept-new", known_hosts=known)
    first = Transport(cluster)
    try:
        assert first.connection("node01").run("hostname").stdout.strip() == "node01"
        assert first.stats()["node01"]["host_key"] == HOST_KEY_RECORDED
    finally:
        first.close()
    recorded = known.read_text().split()
    assert recorded[0] == "192.168.61.18" and recorded[1].startswith(("ssh-", "ecdsa-")), recorded
    # the recorded key now verifies; a changed key would be rejected (BadHostKeyException)
    tampered = tmp_path / "known_hosts.changed"
    other_key = (lab_cluster_file.parent / "known_hosts").read_text().splitlines()
    master_line = next(line for line in other_key if line.split()[0].split(",")[0] in ("master01", "192.168.61.17"))
    key_type, key_body = master_line.split()[1:3]
    tampered.write_text(f"192.168.61.18 {key_type} {key_body}\n")
    changed = Transport(_variant(lab_cluster_file, tmp_path, strict="accept-new", known_hosts=tampered))
    try:
        with pytest.raises(HostUnreachable, match=r"does not match|not found|host key"):
            changed.connection("node01").run("true")
    finally:
        changed.close()


def test_strict_no_connects_and_the_report_says_identity_was_not_verified(
    converged_cluster_file: Path, tmp_path: Path
) -> None:
    # converged: the environment rows must pass, so that only the warning differs from a strict run
    lab_cluster_file = converged_cluster_file
    cluster = _variant(lab_cluster_file, tmp_path, strict="no", known_hosts=Path("/dev/null"))
    assert cluster.ssh_config is not None
    report_dir = tmp_path / "reports"
    run = run_suites(
        lab_cluster_file,
        ["suites/test_01_env.py"],
        "--ssh-config",
        str(cluster.ssh_config),
        report_dir=report_dir,
        junit=tmp_path / "junit.xml",
    )
    assert run.returncode == 0, run.output[-3000:]
    assert re.search(r"WARNING: host identity was not verified for master01, node01, node02", run.output), run.output[
        -2000:
    ]
    html = (report_dir / "report.html").read_text()
    assert "host identity was not verified" in html
    session = json.loads((report_dir / "evidence" / "session.json").read_text())
    assert {s["host_key"] for s in session["stats"].values()} == {HOST_KEY_UNVERIFIED}
    assert any("not verified" in w for w in session["meta"]["warnings"])
