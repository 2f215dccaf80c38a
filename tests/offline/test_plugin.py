"""The plugin tested with pytester, on a "host" whose commands run locally (no SSH)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]

CLUSTER = """\
name: offline
hosts:
  - name: {hostname}
    address: 127.0.0.1
    roles: [master, etcd]
    etcd_name: etcd01
  - name: unreachable01
    address: 127.0.0.2
    roles: [node]
time:
  sync: host-kernel
"""

LOCAL_TRANSPORT = """
import subprocess, time
import pytest
from kubeproof.transport import CommandResult, Connection, HostUnreachable
@pytest.fixture(autouse=True, scope="session")
def _local_transport():
    original = Connection.run
    def run(self, command, *, stdin=None, timeout=120.0):
        if self.name == "unreachable01":
            raise HostUnreachable(self.name, "cannot reach 127.0.0.2:22: Connection refused")
        self.stats.commands += 1
        started = time.time()
        done = subprocess.run(["sh", "-c", command], input=stdin, capture_output=True, timeout=timeout)
        return CommandResult(self.name, command, done.returncode, done.stdout.decode(), done.stderr.decode(),
                             started, time.time() - started)
    Connection.run = run
    yield
    Connection.run = original
"""


@pytest.fixture
def offline_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    hostname = subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip()
    pytester.makefile(".yaml", cluster=CLUSTER.format(hostname=hostname))
    pytester.makeconftest(LOCAL_TRANSPORT)
    shutil.copy(REPO / "suites" / "test_01_env.py", pytester.path / "test_01_env.py")
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_outcomes_ids_and_markers(offline_suite: pytest.Pytester) -> None:
    result = _run(offline_suite, "--cluster", "cluster.yaml", "-rA", "-k", "ENV-03 or ENV-04")
    out = result.stdout.str()
    # every test id names its host; the unreachable host is an error with its reason, not a failure
    assert "test_environment[ENV-03@unreachable01]" in out
    assert "probe could not run: unreachable01 unreachable: cannot reach 127.0.0.2:22: Connection refused" in out
    outcomes = result.parseoutcomes()
    # ENV-03, ENV-03:unique, ENV-04, ENV-04:fstab on unreachable01, and uniqueness on the reachable
    # host too: it cannot be decided while a peer's hostname is unknown
    assert outcomes.get("errors", 0) == 5
    assert outcomes.get("passed", 0) == 3


def test_a_failure_names_id_host_expected_observed_source_fix(offline_suite: pytest.Pytester) -> None:
    (offline_suite.path / "cluster.yaml").write_text(
        CLUSTER.format(hostname="not-this-host").replace("127.0.0.1", "127.0.0.1")
    )
    result = _run(offline_suite, "--cluster", "cluster.yaml", "test_01_env.py::test_environment[ENV-03@not-this-host]")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]ENV-03[]] not-this-host: the hostname equals the inventory name",
            "*expected: 'not-this-host'",
            "*observed: '*'",
            "*source:   not-this-host$ hostname",
            "*fix:      hostnamectl set-hostname <inventory name>",
        ]
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--hosts", "docker://x"], "backend 'docker' is not supported"),
        (["--cluster", "nope.yaml"], "nope.yaml: cannot read cluster file"),
        (["--profile", "strict", "--cluster", "cluster.yaml"], "--profile must be one of hardened, seed"),
        (["--hosts", "paramiko://r@x?roles=worker"], "unknown role 'worker'"),
        ([], "the suites need hosts"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_problem(
    offline_suite: pytest.Pytester, args: list[str], words: str
) -> None:
    result = _run(offline_suite, *args)
    assert result.ret in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERRUPTED)
    assert words in (result.stdout.str() + result.stderr.str())


def test_cluster_file_error_gives_the_line(offline_suite: pytest.Pytester) -> None:
    (offline_suite.path / "cluster.yaml").write_text(
        CLUSTER.format(hostname="h").replace("roles: [node]", "roles: [nod]")
    )
    result = _run(offline_suite, "--cluster", "cluster.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "cluster.yaml:9: host 'unreachable01': unknown role 'nod'" in result.stderr.str()


def test_facts_are_gathered_once_per_host(offline_suite: pytest.Pytester) -> None:
    result = _run(offline_suite, "--cluster", "cluster.yaml", "-k", "not ENV-07 and not unreachable01")
    out = result.stdout.str()
    # one batch for the whole ENV catalogue on the reachable host
    assert "1 fact batches" in out, out


def test_report_dir_and_xdist(offline_suite: pytest.Pytester) -> None:
    pytest.importorskip("kubeproof.reports")
    report_dir = offline_suite.path / "out"
    result = _run(offline_suite, "--cluster", "cluster.yaml", "-n", "2", "--report-dir", str(report_dir))
    assert (report_dir / "junit.xml").is_file()
    assert (report_dir / "report.html").is_file()
    manifest = json.loads((report_dir / "MANIFEST.json").read_text())
    listed = json.dumps(manifest)
    assert "junit.xml" in listed and "report.html" in listed
    assert list((report_dir / "evidence").glob("ENV-03*unreachable01*.json"))
    del result


def test_root_causes_open_the_summary_and_consequences_name_them(offline_suite: pytest.Pytester) -> None:
    report_dir = offline_suite.path / "out"
    result = _run(offline_suite, "--cluster", "cluster.yaml", "--report-dir", str(report_dir), "-k", "ENV-03 or ENV-04")
    out = result.stdout.str()
    # the section opens with the root causes; the host that did not answer is the one cause of all 5 errors
    section = out[out.index("= kubeproof =") :]
    assert section.splitlines()[1] == "root causes (1):", section
    assert "  [UNREACHABLE] unreachable01: unreachable: cannot reach 127.0.0.2:22: Connection refused" in section
    assert "(error; 5 rows follow from it)" in section
    assert "caused by [UNREACHABLE] unreachable01: unreachable: cannot reach" in out
    session = json.loads((report_dir / "evidence" / "session.json").read_text())
    assert [(c["id"], c["host"], c["consequences"]) for c in session["meta"]["root_causes"]] == [
        ("UNREACHABLE", "unreachable01", 5)
    ]
    linked = [r for r in session["results"] if r.get("caused_by")]
    assert len(linked) == 5 and {r["caused_by"] for r in linked} == {"UNREACHABLE@unreachable01"}
    html = (report_dir / "report.html").read_text()
    assert html.index('id="root-causes"') < html.index('<dl class="meta">')
