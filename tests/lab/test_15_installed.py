"""kubeproof as a user installs it: a wheel in a fresh venv outside the repository, run from an
empty directory with `pytest --pyargs kubeproof.suites`, beside a user's own testinfra test file
in the same session and against the same hosts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from tests.lab.suite_runner import REPO, run_suites

pytestmark = pytest.mark.lab

USER_TESTS = '''\
"""A user's own testinfra checks, written against testinfra's `host` fixture."""


def test_hostname_is_the_inventory_name(host):
    assert host.run("hostname").stdout.strip() == host.backend.get_hostname()


def test_docker_is_running(host):
    assert host.service("docker").is_running
'''


@pytest.fixture(scope="module")
def converged(converged_cluster_file: Path) -> Path:
    return converged_cluster_file


# What a build must not see (or write into): local state, caches, VCS, earlier builds.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".kubeproof", "build", "*.egg-info", "__pycache__", ".*_cache", ".tox", ".venv", "reports-out"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (setuptools writes build/ beside what it builds)."""
    source = tmp_path_factory.mktemp("source") / "kubeproof"
    shutil.copytree(REPO, source, symlinks=True, ignore=NOT_SOURCES)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)],
        check=True,
        cwd=dist,
    )
    (built,) = dist.glob("kubeproof-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the wheel and the dependencies its metadata declares (pinned as CI pins them)."""
    home = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(home)
    pip = [str(home / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, str(wheel), "-c", str(REPO / "requirements.txt")], check=True, cwd=home)
    return home


def test_the_wheel_claims_only_the_kubeproof_namespace(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_text = archive.read(entry_points).decode()
    top_level = {name.split("/", 1)[0] for name in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"kubeproof"}, sorted(top_level)
    for data_file in (
        "kubeproof/checks/catalogue/30-etcd.yaml",
        "kubeproof/checks/causes.yaml",
        "kubeproof/checks/signatures.yaml",
        "kubeproof/lab/artifacts.lock.json",
        "kubeproof/lab/node/customize.sh",
        "kubeproof/lab/node/files/usr/local/sbin/kubeproof-entrypoint",
        "kubeproof/lab/images/pause/pause.go",
        "kubeproof/suites/test_03_etcd.py",
        "kubeproof/bootstrap/phases/etcd.py",
    ):
        assert data_file in names, f"{data_file} missing from {wheel.name}"
    assert "[pytest11]\nkubeproof = kubeproof.fixtures.plugin" in entry_text
    assert "kubeproof = kubeproof.cli:main" in entry_text


def test_installed_wheel_verifies_the_lab_beside_a_users_testinfra_tests(
    converged: Path, installed: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "empty"
    workdir.mkdir()
    (workdir / "test_my_hosts.py").write_text(USER_TESTS)
    ssh_config = converged.parent / "ssh_config"
    names = ["master01", "node01", "node02"]
    report_dir = tmp_path / "reports"
    run = run_suites(
        converged,
        ["--pyargs", "kubeproof.suites", "test_my_hosts.py"],
        "--hosts",
        ",".join(names),
        "--ssh-config",
        str(ssh_config),
        "-p",
        "no:cacheprovider",
        report_dir=report_dir,
        junit=tmp_path / "junit.xml",
        python=installed / "bin" / "python",
        cwd=workdir,
    )
    bad = run.with_outcome("failed") + run.with_outcome("error")
    assert not bad, "\n\n".join(f"{o.key}: {o.outcome}\n{o.message[:1500]}" for o in bad)
    assert run.returncode == 0, run.output[-3000:]
    # the suites that ran are the installed ones, not this checkout's
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import kubeproof.suites as s; print(s.__path__[0])"],
        capture_output=True,
        text=True,
        check=True,
        cwd=workdir,
    ).stdout.strip()
    assert where.startswith(str(installed)) and "site-packages" in where, where
    mine = [o for o in run.outcomes if o.key.startswith("paramiko://")]
    assert sorted(o.key for o in mine) == sorted(f"paramiko://{n}" for n in names for _ in range(2)), run.output[-2000:]
    assert all(o.outcome == "passed" for o in mine)
    kubeproof_rows = [o for o in run.outcomes if o.invariant]
    assert len(kubeproof_rows) > 300, run.summary()
    assert (report_dir / "report.html").is_file()
    session = json.loads((report_dir / "evidence" / "session.json").read_text())
    assert set(session["stats"]) == set(names)
    assert all(stats["host_key"] == "verified" for stats in session["stats"].values())
    # the evidence names the version that ran: the installed distribution's, pyproject's
    assert session["meta"]["kubeproof"] == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    # the console script of the same install
    shown = subprocess.run(
        [str(installed / "bin" / "kubeproof"), "--help"], capture_output=True, text=True, check=True, cwd=workdir
    )
    assert "kubeproof verify" in shown.stdout
