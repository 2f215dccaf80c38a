"""The CLI's refusals before anything changes, the local state, and what the log may contain."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from kubeproof.bootstrap.artifacts import Artifacts
from kubeproof.bootstrap.cli import main
from kubeproof.bootstrap.state import Reporter, Sha256Cache, StateDir, new_token
from kubeproof.inventory import parse_cluster_text

ARTIFACT_FILES = (
    "kubernetes/server/bin/kube-apiserver",
    "kubernetes/server/bin/kube-controller-manager",
    "kubernetes/server/bin/kube-scheduler",
    "kubernetes/server/bin/kubectl",
    "kubernetes/server/bin/kubelet",
    "kubernetes/server/bin/kube-proxy",
    "etcd-v3.4.23-linux-amd64/etcd",
    "etcd-v3.4.23-linux-amd64/etcdctl",
    "flannel-v0.28.10-linux-amd64/flanneld",
    "flannel-v0.28.10-linux-amd64/mk-docker-opts.sh",
    "cri-dockerd/cri-dockerd",
)


def write_cluster(tmp_path: Path, artifacts: Path, port: int = 1) -> Path:
    (tmp_path / "known_hosts").write_text("")
    (tmp_path / "ssh_config").write_text(
        f"Host h1\n    HostName 127.0.0.1\n    Port {port}\n    UserKnownHostsFile {tmp_path / 'known_hosts'}\n"
    )
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(
        "name: t\n"
        "hosts:\n"
        "  - {name: h1, address: 127.0.0.1, roles: [master, node, etcd], etcd_name: etcd01}\n"
        "versions: {kubernetes: v1.34.4, etcd: 3.4.23, flannel: v0.28.10, cri_dockerd: 0.3.17}\n"
        "ssh: {user: root, config: ssh_config}\n"
        f"artifacts: {artifacts}\n"
    )
    return cluster


def fake_artifacts(root: Path, skip: str | None = None) -> Path:
    for relative in ARTIFACT_FILES:
        if relative == skip:
            continue
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"#!/bin/sh\n")
        path.chmod(0o755)
    return root


def test_a_missing_artifact_names_the_file_and_where_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifacts = fake_artifacts(tmp_path / "artifacts", skip="kubernetes/server/bin/kube-apiserver")
    cluster = write_cluster(tmp_path, artifacts)
    assert main(["plan", "--cluster", str(cluster), "--state-dir", str(tmp_path / "state")]) == 1
    out = capsys.readouterr().out
    assert f"kubernetes/server/bin/kube-apiserver missing in {artifacts}" in out
    assert "kubernetes-server-linux-amd64.tar.gz v1.34.4" in out
    assert "kubeproof lab artifacts" in out


def test_an_unreachable_host_stops_everything_before_a_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifacts = fake_artifacts(tmp_path / "artifacts")
    cluster = write_cluster(tmp_path, artifacts, port=1)
    state = tmp_path / "state"
    assert main(["apply", "--cluster", str(cluster), "--state-dir", str(state)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    error = [line for line in out if line.startswith("error:")]
    assert len(error) == 1
    assert error[0].startswith("error: preflight: h1 unreachable:")
    assert error[0].endswith("nothing was changed")
    # not even local state: no PKI, no token
    assert not (state / "pki").exists() and not (state / "secrets").exists()
    assert len(list((state / "runs").glob("*-apply.log"))) == 1


def test_a_cluster_file_error_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("name: t\nhosts:\n  - name: h1\n    address: not-an-ip\n    roles: [master]\n")
    assert main(["plan", "--cluster", str(cluster)]) == 2
    err = capsys.readouterr().err
    assert f"{cluster}:4:" in err and "not an IP address" in err


def test_the_token_is_made_once_kept_private_and_masked(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    assert state.read_token() is None
    token = new_token()
    state.save_token(token)
    assert state.read_token() == token
    assert stat.S_IMODE(os.stat(state.token_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state.secrets).st_mode) == 0o700
    stream = io.StringIO()
    reporter = Reporter(state.runs, "apply", stream=stream)
    reporter.line(f"token.csv: {token},kubelet-bootstrap,10001")
    reporter.debug(f"users: [{{name: kubelet-bootstrap, user: {{token: {token}}}}}]")
    reporter.close()
    assert reporter.log_path is not None
    assert token not in stream.getvalue()
    assert token not in reporter.log_path.read_text()


def test_artifact_sha256_is_cached_by_size_and_mtime(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"abc")
    cache = Sha256Cache(tmp_path / "cache.json")
    first = cache.sha256(blob)
    cache.save()
    again = Sha256Cache(tmp_path / "cache.json")
    assert again.sha256(blob) == first == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_artifacts_know_their_release_layout(tmp_path: Path) -> None:
    cluster = parse_cluster_text(
        "name: t\nhosts:\n  - {name: h1, address: 10.0.0.1, roles: [master]}\n"
        "versions: {etcd: 3.4.23, flannel: v0.28.10}\n"
        f"artifacts: {tmp_path}\n"
    )
    artifacts = Artifacts(cluster)
    assert artifacts.path("etcd") == tmp_path / "etcd-v3.4.23-linux-amd64" / "etcd"
    assert artifacts.path("mk-docker-opts.sh") == tmp_path / "flannel-v0.28.10-linux-amd64" / "mk-docker-opts.sh"
    assert artifacts.path("cri-dockerd") == tmp_path / "cri-dockerd" / "cri-dockerd"
    problems = artifacts.missing(["etcd"])
    assert problems and "etcd-v3.4.23-linux-amd64.tar.gz" in problems[0]
