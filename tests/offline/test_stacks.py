"""Stacks as data (issue 13): lookup, per-stack layout, build recipes and lock sections.

The default stack must keep exactly what the lab has always had: its paths, build directories,
ldflags and lock entries (warm caches and CI depend on them).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml

from kubeproof.inventory import parse_cluster_text
from kubeproof.lab import cluster_file
from kubeproof.lab.artifacts import (
    BINARY_ARTIFACTS,
    LOCK_FILE,
    Measurement,
    compare_with_lock,
    load_lock,
    missing_artifacts,
    stack_build_lock,
    versioned_artifacts,
    write_lock,
)
from kubeproof.lab.cli import build_parser
from kubeproof.lab.cluster_file import ClusterFileInputs, render_cluster_file
from kubeproof.lab.errors import LabError
from kubeproof.lab.go_build import GoWrapper, upstream_replaces
from kubeproof.lab.k8s_openapi import has_openapi_tag, tagged_packages
from kubeproof.lab.progress import Progress
from kubeproof.lab.recipes import (
    ETCD_3_3_27_PINS,
    K8S_SOURCE_DIR,
    OPENAPI_GEN_PACKAGE,
    REFLECT2_FIX,
    binary_artifacts,
    etcd_wrapper,
    flannel_wrapper,
    go_wrappers,
    k8s_ldflags,
    k8s_wrapper,
    stack_artifacts_dir,
    stack_build_dir,
)
from kubeproof.lab.settings import LAB_NODES
from kubeproof.lab.stacks import APPROVED_TOOLCHAIN, DEFAULT_STACK, LOCAL_TOOLCHAIN, STACKS, stack_by_name
from tests.lab import stack_builds

GUIDE, TODAY, NEWEST = STACKS["guide"], STACKS["today"], STACKS["newest"]


def _lock_document() -> dict[str, object]:
    document: dict[str, object] = json.loads(LOCK_FILE.read_text())
    return document


# ----------------------------------------------------------------------------- lookup


def test_three_stacks_and_today_is_the_default() -> None:
    assert list(STACKS) == ["guide", "today", "newest"]
    assert DEFAULT_STACK == "today"
    assert stack_by_name("guide") is GUIDE
    assert [stack.default for stack in STACKS.values()] == [False, True, False]


def test_unknown_stack_names_the_valid_ones() -> None:
    with pytest.raises(LabError) as caught:
        stack_by_name("oldest")
    assert "'oldest'" in caught.value.message
    for name in STACKS:
        assert name in caught.value.message


def test_cli_artifacts_takes_a_stack() -> None:
    parser = build_parser()
    assert parser.parse_args(["artifacts"]).stack == "today"
    arguments = parser.parse_args(["artifacts", "--stack", "guide", "--update-lock"])
    assert (arguments.stack, arguments.update_lock) == ("guide", True)


def test_the_old_version_names_are_the_default_stack() -> None:
    assert cluster_file.KUBERNETES_VERSION == TODAY.kubernetes == "v1.34.4"
    assert cluster_file.ETCD_VERSION == TODAY.etcd == "3.4.23"
    assert cluster_file.FLANNEL_VERSION == TODAY.flannel == "v0.28.10"
    assert cluster_file.CRI_DOCKERD_VERSION == TODAY.cri_dockerd == "0.3.17"


def test_what_each_stack_pins() -> None:
    assert (GUIDE.kubernetes, GUIDE.etcd, GUIDE.flannel, GUIDE.cri_dockerd) == ("v1.19.16", "3.3.27", "v0.17.0", None)
    assert GUIDE.uses_dockershim and GUIDE.flannel_etcd_api == "v2"
    assert (NEWEST.kubernetes, NEWEST.etcd, NEWEST.flannel, NEWEST.cri_dockerd) == (
        "v1.37.2",
        "3.6.17",
        "v0.28.10",
        "0.3.17",
    )
    assert not TODAY.uses_dockershim and TODAY.flannel_etcd_api == NEWEST.flannel_etcd_api == "v3"
    for stack in STACKS.values():
        for project in ("kubernetes", "etcd", "flannel", "cri-dockerd"):
            assert stack.toolchain(project) in (LOCAL_TOOLCHAIN, APPROVED_TOOLCHAIN)
    with pytest.raises(KeyError):
        TODAY.toolchain("docker")


def test_newest_turns_off_the_kubelets_cgroup_v1_refusal_with_a_reason() -> None:
    setting = NEWEST.setting("kubelet", "failCgroupV1")
    assert setting is not None and setting.value == "false"
    assert "cgroup v1" in setting.reason and NEWEST.kubernetes in setting.reason
    assert GUIDE.setting("kubelet", "failCgroupV1") is None and TODAY.settings == ()


# ----------------------------------------------------------------------------- layout


def test_today_keeps_its_directories_and_others_have_their_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEPROOF_CACHE", str(tmp_path))
    assert stack_artifacts_dir(TODAY) == tmp_path / "artifacts"
    assert stack_build_dir(TODAY) == tmp_path / "build"
    assert stack_artifacts_dir(GUIDE) == tmp_path / "artifacts" / "stacks" / "guide"
    assert stack_build_dir(NEWEST) == tmp_path / "build" / "stacks" / "newest"
    assert missing_artifacts() == missing_artifacts(stack=TODAY)
    assert "cri-dockerd/cri-dockerd" in missing_artifacts(stack=NEWEST)
    assert "cri-dockerd/cri-dockerd" not in missing_artifacts(stack=GUIDE)


def test_today_layout_is_the_lock_files() -> None:
    """Today's artifacts are the ones its lock entries name, path for path, version for version."""
    entries = _lock_document()["artifacts"]
    assert isinstance(entries, list)
    by_name = {entry["name"]: entry for entry in entries}
    assert binary_artifacts(TODAY) == BINARY_ARTIFACTS
    assert {artifact.name for artifact in BINARY_ARTIFACTS} == set(by_name)
    for artifact in BINARY_ARTIFACTS:
        assert (artifact.path, artifact.version) == (by_name[artifact.name]["path"], by_name[artifact.name]["version"])


def test_official_tarball_layout_per_stack() -> None:
    guide = {artifact.name: artifact for artifact in binary_artifacts(GUIDE)}
    assert guide["kubelet"].path == "kubernetes/server/bin/kubelet"
    assert guide["etcd"].path == "etcd-v3.3.27-linux-amd64/etcd"
    assert guide["etcdctl"].path == "etcd-v3.3.27-linux-amd64/etcdctl"
    assert guide["flanneld"].path == "flannel-v0.17.0-linux-amd64/flanneld"
    assert guide["mk-docker-opts.sh"].path == "flannel-v0.17.0-linux-amd64/mk-docker-opts.sh"
    assert "cri-dockerd" not in guide
    newest = {artifact.name: artifact for artifact in binary_artifacts(NEWEST)}
    assert newest["etcdutl"].path == "etcd-v3.6.17-linux-amd64/etcdutl"
    assert newest["cri-dockerd"].source == "github.com/Mirantis/cri-dockerd@v0.3.17"
    assert newest["etcd"].source == "go.etcd.io/etcd/server/v3@v3.6.17"
    assert guide["etcd"].source == "github.com/coreos/etcd@v3.3.27+incompatible"


def test_version_texts_per_stack() -> None:
    def texts(stack_name: str) -> dict[str, tuple[tuple[str, ...] | None, str | None]]:
        return {a.name: (a.version_argv, a.version_text) for a in versioned_artifacts(STACKS[stack_name])}

    guide = texts("guide")
    assert guide["kube-apiserver"] == (("--version",), "Kubernetes v1.19.16")
    # kubectl 1.19 prints a Go struct without --short
    assert guide["kubectl"] == (("version", "--client", "--short"), "Client Version: v1.19.16")
    # etcdctl 3.3 defaults to the v2 API, whose version option is --version
    assert guide["etcdctl"] == (("--version",), "etcdctl version: 3.3.27")
    assert guide["etcd"] == (("--version",), "etcd Version: 3.3.27")
    assert guide["flanneld"] == (("--version",), "v0.17.0")
    newest = texts("newest")
    assert newest["kubectl"] == (("version", "--client"), "Client Version: v1.37.2")
    assert newest["etcdctl"] == (("version",), "etcdctl version: 3.6.17")
    assert newest["etcdutl"] == (("version",), "etcdutl version: 3.6.17")
    assert newest["cri-dockerd"] == (("--version",), "cri-dockerd 0.3.17")
    assert texts("today") == {a.name: (a.version_argv, a.version_text) for a in versioned_artifacts()}


# ----------------------------------------------------------------------------- recipes


def test_today_recipes_are_unchanged() -> None:
    assert [(w.directory, w.module_path, w.go_directive) for w in go_wrappers(TODAY)] == [
        ("k8s", "kubeproof.local/build/kubernetes", "1.24.0"),
        ("flannel", "kubeproof.local/build/flannel", "1.26.0"),
        ("cri-dockerd", "kubeproof.local/build/cri-dockerd", "1.23.7"),
    ]
    base = "k8s.io/component-base/version"
    assert k8s_ldflags(TODAY) == (
        f"-s -w -X {base}.gitVersion=v1.34.4 -X {base}.gitMajor=1 -X {base}.gitMinor=34"
        f" -X {base}.gitTreeState=clean -X {base}.buildDate=2026-01-01T00:00:00Z -X {base}.gitCommit={'0' * 40}"
    )
    flannel = flannel_wrapper(TODAY).binaries[0]
    assert flannel.ldflags == (
        "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=v0.28.10 -extldflags -static"
    )
    assert all(w.toolchain == LOCAL_TOOLCHAIN and not w.source_copies for w in go_wrappers(TODAY))


def test_guide_kubernetes_recipe() -> None:
    wrapper = k8s_wrapper(GUIDE)
    assert wrapper.copy_replaces_from == "k8s.io/kubernetes@v1.19.16"
    assert wrapper.staging_version == "v0.19.16"
    assert wrapper.replaces["vbom.ml/util"].startswith("github.com/fvbommel/util@")
    # reflect2 v1.0.1 (pinned by v1.19.16) crashes on map encoding with Go >= 1.18
    assert wrapper.replaces["github.com/modern-go/reflect2"] == "github.com/modern-go/reflect2@v1.0.2"
    assert wrapper.replaces["k8s.io/kubernetes"] == f"./{K8S_SOURCE_DIR}"
    assert wrapper.source_copies == {K8S_SOURCE_DIR: "k8s.io/kubernetes@v1.19.16"}
    assert OPENAPI_GEN_PACKAGE in wrapper.tools_go()
    ldflags = k8s_ldflags(GUIDE)
    assert "-X k8s.io/client-go/pkg/version.gitVersion=v1.19.16" in ldflags
    assert "-X k8s.io/component-base/version.gitMinor=19" in ldflags
    assert "client-go" not in k8s_ldflags(NEWEST)
    assert [w.directory for w in go_wrappers(GUIDE)] == ["k8s", "etcd", "flannel"]


def test_guide_etcd_and_flannel_recipes() -> None:
    etcd = etcd_wrapper(GUIDE)
    assert etcd is not None and etcd.requires == {"github.com/coreos/etcd": "v3.3.27+incompatible"}
    assert etcd.replaces == {path: f"{path}@{version}" for path, version in ETCD_3_3_27_PINS.items()}
    assert [b.package for b in etcd.binaries] == ["github.com/coreos/etcd", "github.com/coreos/etcd/etcdctl"]
    assert etcd.replaces["github.com/modern-go/reflect2"] == "github.com/modern-go/reflect2@v1.0.2"
    assert etcd_wrapper(TODAY) is None  # Debian's etcd
    flannel = flannel_wrapper(GUIDE)
    assert flannel.copy_replaces_from == "github.com/flannel-io/flannel@v0.17.0"
    assert flannel.replaces == REFLECT2_FIX
    assert "-X github.com/flannel-io/flannel/version.Version=v0.17.0" in flannel.binaries[0].ldflags


def test_upstream_replaces_point_staging_at_published_releases() -> None:
    wrapper = GoWrapper("k8s", "m", "1.15", {}, {}, (), copy_replaces_from="k8s.io/kubernetes@v1.19.16")
    upstream = {
        "Replace": [
            {"Old": {"Path": "k8s.io/api"}, "New": {"Path": "./staging/src/k8s.io/api"}},
            {"Old": {"Path": "golang.org/x/sys"}, "New": {"Path": "golang.org/x/sys", "Version": "v0.0.1"}},
        ]
    }
    with pytest.raises(LabError, match="its own directory"):
        upstream_replaces(wrapper, upstream)
    staged = GoWrapper("k8s", "m", "1.15", {}, {}, (), staging_version="v0.19.16")
    assert upstream_replaces(staged, upstream) == {
        "k8s.io/api": "k8s.io/api@v0.19.16",
        "golang.org/x/sys": "golang.org/x/sys@v0.0.1",
    }


def test_openapi_inputs_are_the_tagged_packages(tmp_path: Path) -> None:
    assert has_openapi_tag("// +k8s:openapi-gen=true\npackage v1\n")
    assert not has_openapi_tag("// +k8s:deepcopy-gen=package\npackage v1\n")
    assert not has_openapi_tag("package v1 // mentions +k8s:openapi-gen= but has no tag line\n")
    files = {
        "pkg/apis/a/v1/doc.go": "// +k8s:openapi-gen=true\npackage v1\n",
        "pkg/apis/b/v1/doc.go": "// +k8s:deepcopy-gen=package\npackage v1\n",
        "vendor/x/doc.go": "// +k8s:openapi-gen=true\npackage x\n",
        "_output/y/doc.go": "// +k8s:openapi-gen=true\npackage y\n",
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert tagged_packages(tmp_path, "k8s.io/kubernetes", top_level_skips=("vendor",)) == {
        "k8s.io/kubernetes/pkg/apis/a/v1"
    }


# ----------------------------------------------------------------------------- the lock


def _measurements(stack_name: str) -> list[Measurement]:
    return [
        Measurement(artifact, "go1.26.8", f"{index:064x}", artifact.source)
        for index, artifact in enumerate(binary_artifacts(STACKS[stack_name]))
    ]


def test_a_stacks_lock_entries_leave_today_byte_identical(tmp_path: Path) -> None:
    lock = tmp_path / "artifacts.lock.json"
    shutil.copyfile(LOCK_FILE, lock)
    before = json.loads(lock.read_text())
    write_lock(_measurements("guide"), lock, stack=GUIDE)
    write_lock(_measurements("newest"), lock, stack=NEWEST)
    after = json.loads(lock.read_text())
    assert after["comment"] == before["comment"]
    assert json.dumps(after["artifacts"], indent=2) == json.dumps(before["artifacts"], indent=2)
    assert list(after["stacks"]) == ["guide", "newest"]
    assert load_lock(lock) == load_lock(LOCK_FILE) == load_lock(LOCK_FILE, stack=TODAY)
    guide = load_lock(lock, stack=GUIDE)
    assert guide["etcd"].version == "3.3.27" and "cri-dockerd" not in guide
    assert load_lock(lock, stack=NEWEST)["etcdutl"].version == "3.6.17"
    # re-pinning one stack replaces only its own list
    write_lock(_measurements("guide")[:2], lock, stack=GUIDE)
    again = json.loads(lock.read_text())
    assert len(again["stacks"]["guide"]) == 2 and again["stacks"]["newest"] == after["stacks"]["newest"]
    assert again["artifacts"] == before["artifacts"]


def test_committed_lock_pins_each_stack_it_names() -> None:
    document = _lock_document()
    stacks = document.get("stacks") or {}
    assert isinstance(stacks, dict)
    for name, entries in stacks.items():
        stack = stack_by_name(name)
        expected = {a.name: a for a in binary_artifacts(stack)}
        assert {entry["name"] for entry in entries} == set(expected), name
        for entry in entries:
            assert (entry["path"], entry["version"]) == (expected[entry["name"]].path, expected[entry["name"]].version)
            assert len(entry["sha256"]) == 64


def test_lock_comparison_names_the_stack_in_its_hint() -> None:
    measurement = _measurements("guide")[0]
    warning = compare_with_lock(measurement, {}, GUIDE)
    assert warning is not None and "--update-lock --stack guide" in warning
    other = compare_with_lock(measurement, {}, TODAY)
    assert other is not None and "--stack" not in other


# ----------------------------------------------------------------------------- the cluster file


def _cluster_text(stack_name: str) -> str:
    return render_cluster_file(ClusterFileInputs("lab", LAB_NODES, "ssh_config", Path("/a"), stack=STACKS[stack_name]))


def test_cluster_file_of_today_is_what_it_was() -> None:
    default = render_cluster_file(ClusterFileInputs("lab", LAB_NODES, "ssh_config", Path("/a")))
    assert default == _cluster_text("today")
    assert "# stack" not in default
    assert yaml.safe_load(default)["versions"] == {
        "kubernetes": "v1.34.4",
        "etcd": "3.4.23",
        "flannel": "v0.28.10",
        "cri_dockerd": "0.3.17",
    }


def test_cluster_files_of_other_stacks_parse_and_say_why() -> None:
    guide = parse_cluster_text(_cluster_text("guide"))
    assert (guide.versions.kubernetes, guide.versions.etcd, guide.versions.cri_dockerd) == ("v1.19.16", "3.3.27", None)
    assert "dockershim" in _cluster_text("guide")
    newest_text = _cluster_text("newest")
    newest = parse_cluster_text(newest_text)
    assert newest.versions.kubernetes == "v1.37.2" and newest.versions.cri_dockerd == "0.3.17"
    assert "# kubelet failCgroupV1: false -- this machine runs cgroup v1" in newest_text


def test_a_second_build_of_a_stack_waits_for_the_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """test_70's `lab up --stack` beside the background build: it waits, then goes on; never both at once."""
    monkeypatch.setenv("KUBEPROOF_CACHE", str(tmp_path))
    stack = STACKS["guide"]
    said: list[str] = []
    inside: list[str] = []
    first_holds = threading.Event()
    release_first = threading.Event()

    class Recorder(Progress):
        def say(self, message: str) -> None:
            said.append(message)

    def first() -> None:
        with stack_build_lock(stack, Recorder()):
            inside.append("first in")
            first_holds.set()
            release_first.wait(timeout=10)
            inside.append("first out")

    def second() -> None:
        with stack_build_lock(stack, Recorder()):
            inside.append("second in")

    one = threading.Thread(target=first)
    one.start()
    assert first_holds.wait(timeout=10)
    two = threading.Thread(target=second)
    two.start()
    deadline = time.monotonic() + 10
    while not any("waiting for the build" in line for line in said) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inside == ["first in"], inside
    assert any(f"stack guide: waiting for the build pid {os.getpid()} runs" in line for line in said), said
    release_first.set()
    one.join(timeout=10)
    two.join(timeout=10)
    assert inside == ["first in", "first out", "second in"]
    # the lock file is the stack's own, and says nobody holds it afterwards
    lock = tmp_path / "build" / "stacks" / "guide" / ".artifacts.lock"
    assert lock.read_text() == ""


def test_the_lab_tests_stacks_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(stack_builds.ENVIRONMENT_VARIABLE, raising=False)
    assert stack_builds.chosen_stacks() == ["guide", "newest"]
    monkeypatch.setenv(stack_builds.ENVIRONMENT_VARIABLE, " newest ")
    assert stack_builds.chosen_stacks() == ["newest"]
    monkeypatch.setenv(stack_builds.ENVIRONMENT_VARIABLE, "none")
    assert stack_builds.chosen_stacks() == []
    monkeypatch.setenv(stack_builds.ENVIRONMENT_VARIABLE, "guide,today,old")
    with pytest.raises(ValueError, match="today, old is not one of guide, newest"):
        stack_builds.chosen_stacks()
