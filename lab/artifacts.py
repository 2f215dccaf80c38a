"""The artifacts builder: the release-tarball layout of docs/DESIGN.md under $KUBEPROOF_CACHE/artifacts.

Go binaries are built from pinned module versions through small wrapper modules (one directory per
project under $KUBEPROOF_CACHE/build), Debian's etcd and cfssl are copied from their packages, the
pod images are built by lab.pod_images. Every artifact must print its pinned version; every sha256
is compared with lab/artifacts.lock.json: a mismatch with the same toolchain is an error (the build
is not reproducible, or something was tampered with), with a different toolchain a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeproof.lab.cluster_file import CRI_DOCKERD_VERSION, ETCD_VERSION, FLANNEL_VERSION, KUBERNETES_VERSION
from kubeproof.lab.dockercli import Docker
from kubeproof.lab.errors import LabError
from kubeproof.lab.pod_images import (
    BUSYBOX_PACKAGE,
    PAUSE_IMAGE,
    TEST_IMAGE,
    ensure_pod_image_tarballs,
    find_go,
    go_environment,
)
from kubeproof.lab.progress import Progress, run_logged
from kubeproof.lab.settings import artifacts_dir, build_dir

LOCK_FILE = Path(__file__).resolve().parent / "artifacts.lock.json"
BUILD_SUPPORT_DIR = Path(__file__).resolve().parent / "build_support"
MANIFEST_NAME = "MANIFEST.json"

K8S_VERSION_PACKAGE = "k8s.io/component-base/version"
K8S_MINOR = KUBERNETES_VERSION.lstrip("v").split(".")[1]
# Fixed build date and commit: the same inputs give the same bytes, so the lock can pin sha256.
K8S_BUILD_DATE = "2026-01-01T00:00:00Z"
K8S_GIT_COMMIT = "0" * 40
K8S_LDFLAGS = " ".join(
    [
        "-s -w",
        f"-X {K8S_VERSION_PACKAGE}.gitVersion={KUBERNETES_VERSION}",
        f"-X {K8S_VERSION_PACKAGE}.gitMajor=1",
        f"-X {K8S_VERSION_PACKAGE}.gitMinor={K8S_MINOR}",
        f"-X {K8S_VERSION_PACKAGE}.gitTreeState=clean",
        f"-X {K8S_VERSION_PACKAGE}.buildDate={K8S_BUILD_DATE}",
        f"-X {K8S_VERSION_PACKAGE}.gitCommit={K8S_GIT_COMMIT}",
    ]
)
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging/...;
# a module that requires it must replace them with the matching published releases.
K8S_STAGING_MODULES: tuple[str, ...] = (
    "api",
    "apiextensions-apiserver",
    "apimachinery",
    "apiserver",
    "cli-runtime",
    "client-go",
    "cloud-provider",
    "cluster-bootstrap",
    "code-generator",
    "component-base",
    "component-helpers",
    "controller-manager",
    "cri-api",
    "cri-client",
    "csi-translation-lib",
    "dynamic-resource-allocation",
    "endpointslice",
    "externaljwt",
    "kms",
    "kube-aggregator",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "metrics",
    "mount-utils",
    "pod-security-admission",
    "sample-apiserver",
    "sample-cli-plugin",
    "sample-controller",
)
K8S_STAGING_VERSION = "v0." + KUBERNETES_VERSION.lstrip("v").split(".", 1)[1]
K8S_COMMANDS: tuple[str, ...] = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "kube-proxy",
)

FLANNEL_MODULE = "github.com/flannel-io/flannel"
# Verified in the module source: pkg/version/version.go declares `var Version = "dev"`.
FLANNEL_LDFLAGS = f"-s -w -X {FLANNEL_MODULE}/pkg/version.Version={FLANNEL_VERSION} -extldflags -static"
TENCENT_VPC_MODULE = "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc"

CRI_DOCKERD_MODULE = "github.com/Mirantis/cri-dockerd"
# Commit of tag v0.3.17 (the module proxy's .info "Origin"); printed by `cri-dockerd --version`.
CRI_DOCKERD_COMMIT = "2104021544064fc73260e6ef9f26fcdc253382ed"
# Verified in the module source: cmd/version/version.go declares Version, PreRelease, GitCommit.
CRI_DOCKERD_LDFLAGS = (
    f"-s -w -X {CRI_DOCKERD_MODULE}/cmd/version.Version={CRI_DOCKERD_VERSION}"
    f" -X {CRI_DOCKERD_MODULE}/cmd/version.GitCommit={CRI_DOCKERD_COMMIT}"
)

ETCD_DIR = f"etcd-v{ETCD_VERSION}-linux-amd64"
FLANNEL_DIR = f"flannel-{FLANNEL_VERSION}-linux-amd64"
K8S_BIN_DIR = "kubernetes/server/bin"

# Another process's `go build` (e.g. one started by hand) is waited for, never killed.
FOREIGN_BUILD_PATTERN = "go build"
FOREIGN_BUILD_POLL_SECONDS = 15.0


@dataclass(frozen=True)
class Artifact:
    """One file of the artifacts layout and how to prove its version."""

    name: str
    version: str
    path: str  # relative to the artifacts directory
    source: str  # module@version, debian:<package>, or lab:<path>
    version_argv: tuple[str, ...] | None  # arguments that print the version
    version_text: str | None  # what that output must contain
    no_version_reason: str | None = None  # why there is no version option, if none


def _k8s_artifact(command: str) -> Artifact:
    argv: tuple[str, ...]
    if command == "kubectl":
        argv, text = ("version", "--client"), f"Client Version: {KUBERNETES_VERSION}"
    else:
        argv, text = ("--version",), f"Kubernetes {KUBERNETES_VERSION}"
    return Artifact(
        command, KUBERNETES_VERSION, f"{K8S_BIN_DIR}/{command}", f"k8s.io/kubernetes@{KUBERNETES_VERSION}", argv, text
    )


BINARY_ARTIFACTS: tuple[Artifact, ...] = (
    *(_k8s_artifact(command) for command in K8S_COMMANDS),
    Artifact(
        "etcd", ETCD_VERSION, f"{ETCD_DIR}/etcd", "debian:etcd-server", ("--version",), f"etcd Version: {ETCD_VERSION}"
    ),
    Artifact(
        "etcdctl",
        ETCD_VERSION,
        f"{ETCD_DIR}/etcdctl",
        "debian:etcd-client",
        ("version",),
        f"etcdctl version: {ETCD_VERSION}",
    ),
    Artifact(
        "flanneld",
        FLANNEL_VERSION,
        f"{FLANNEL_DIR}/flanneld",
        f"{FLANNEL_MODULE}@{FLANNEL_VERSION}",
        ("--version",),
        FLANNEL_VERSION,
    ),
    Artifact(
        "mk-docker-opts.sh",
        FLANNEL_VERSION,
        f"{FLANNEL_DIR}/mk-docker-opts.sh",
        f"{FLANNEL_MODULE}@{FLANNEL_VERSION}",
        None,
        None,
        no_version_reason="a shell helper from flannel's dist/ with no version option",
    ),
    Artifact(
        "cri-dockerd",
        CRI_DOCKERD_VERSION,
        "cri-dockerd/cri-dockerd",
        f"{CRI_DOCKERD_MODULE}@v{CRI_DOCKERD_VERSION}",
        ("--version",),
        f"cri-dockerd {CRI_DOCKERD_VERSION}",
    ),
    Artifact("cfssl", "1.2.0", "cfssl/cfssl", "debian:golang-cfssl", ("version",), "Version: 1.2.0"),
    Artifact(
        "cfssljson",
        "1.2.0",
        "cfssl/cfssljson",
        "debian:golang-cfssl",
        None,
        None,
        no_version_reason="cfssljson 1.2.0 has no version option (its package, golang-cfssl, is pinned)",
    ),
)
IMAGE_ARTIFACTS: tuple[Artifact, ...] = (
    Artifact(
        "pause.tar",
        PAUSE_IMAGE.version,
        f"images/{PAUSE_IMAGE.tarball_name}",
        "lab:lab/images/pause",
        None,
        None,
        no_version_reason="an image tarball; its tag kubeproof/pause:3.10 carries the version",
    ),
    Artifact(
        "testbox.tar",
        TEST_IMAGE.version,
        f"images/{TEST_IMAGE.tarball_name}",
        f"debian:{BUSYBOX_PACKAGE}",
        None,
        None,
        no_version_reason="an image tarball; its tag kubeproof/testbox:1 carries the version",
    ),
)
ALL_ARTIFACTS: tuple[Artifact, ...] = BINARY_ARTIFACTS + IMAGE_ARTIFACTS

# Debian binaries copied as they are: artifact name -> (file, package).
DEBIAN_COPIES: Mapping[str, tuple[str, str]] = {
    "etcd": ("/usr/bin/etcd", "etcd-server"),
    "etcdctl": ("/usr/bin/etcdctl", "etcd-client"),
    "cfssl": ("/usr/bin/cfssl", "golang-cfssl"),
    "cfssljson": ("/usr/bin/cfssljson", "golang-cfssl"),
}


@dataclass(frozen=True)
class GoBinary:
    artifact: str  # artifact name (and file name under out/)
    package: str
    ldflags: str
    cgo: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class GoWrapper:
    """A wrapper module that requires one project at a pinned version and builds its commands."""

    directory: str  # under $KUBEPROOF_CACHE/build
    module_path: str
    go_directive: str
    requires: Mapping[str, str]
    replaces: Mapping[str, str]  # old path -> "new@version" or "./local/dir"
    binaries: tuple[GoBinary, ...]
    copy_replaces_from: str | None = None  # "module@version" whose own replaces must be kept
    local_replacements: Mapping[str, Path] = field(default_factory=dict)  # copied dirs, "./..." target

    def tools_go(self) -> str:
        imports = "\n".join(f'\t_ "{binary.package}"' for binary in self.binaries)
        return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"


KUBERNETES_WRAPPER = GoWrapper(
    directory="k8s",
    module_path="kubeproof.local/build/kubernetes",
    go_directive="1.24.0",
    requires={"k8s.io/kubernetes": KUBERNETES_VERSION},
    replaces={f"k8s.io/{name}": f"k8s.io/{name}@{K8S_STAGING_VERSION}" for name in K8S_STAGING_MODULES},
    binaries=tuple(GoBinary(command, f"k8s.io/kubernetes/cmd/{command}", K8S_LDFLAGS) for command in K8S_COMMANDS),
)
FLANNEL_WRAPPER = GoWrapper(
    directory="flannel",
    module_path="kubeproof.local/build/flannel",
    go_directive="1.26.0",
    requires={FLANNEL_MODULE: FLANNEL_VERSION},
    replaces={TENCENT_VPC_MODULE: "./stubs/tencentcloud-vpc"},
    # Upstream builds amd64 flanneld with cgo (its UDP backend is C) linked statically; netgo and
    # osusergo keep the static binary from needing the build host's glibc NSS modules at run time.
    binaries=(GoBinary("flanneld", FLANNEL_MODULE, FLANNEL_LDFLAGS, cgo=True, tags=("netgo", "osusergo")),),
    local_replacements={"stubs/tencentcloud-vpc": BUILD_SUPPORT_DIR / "tencentcloud-vpc-stub"},
)
CRI_DOCKERD_WRAPPER = GoWrapper(
    directory="cri-dockerd",
    module_path="kubeproof.local/build/cri-dockerd",
    go_directive="1.23.7",
    requires={CRI_DOCKERD_MODULE: f"v{CRI_DOCKERD_VERSION}"},
    replaces={},
    binaries=(GoBinary("cri-dockerd", CRI_DOCKERD_MODULE, CRI_DOCKERD_LDFLAGS),),
    copy_replaces_from=f"{CRI_DOCKERD_MODULE}@v{CRI_DOCKERD_VERSION}",
)
GO_WRAPPERS: tuple[GoWrapper, ...] = (KUBERNETES_WRAPPER, FLANNEL_WRAPPER, CRI_DOCKERD_WRAPPER)


def artifact_by_name(name: str) -> Artifact:
    for artifact in ALL_ARTIFACTS:
        if artifact.name == name:
            return artifact
    raise KeyError(name)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def run_version(binary: Path, artifact: Artifact) -> str:
    """Run the artifact's version command; return its output (stdout and stderr)."""
    if artifact.version_argv is None:
        return ""
    try:
        result = subprocess.run(
            [str(binary), *artifact.version_argv], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{artifact.name}: cannot run {binary} {' '.join(artifact.version_argv)}: {exc}") from exc
    return result.stdout + result.stderr


def check_version(binary: Path, artifact: Artifact) -> None:
    if artifact.version_argv is None or artifact.version_text is None:
        return
    output = run_version(binary, artifact)
    if artifact.version_text not in output:
        first = output.strip().splitlines()[0] if output.strip() else "no output"
        raise LabError(
            f"{artifact.name}: `{binary.name} {' '.join(artifact.version_argv)}` printed {first!r},"
            f" expected {artifact.version_text!r}"
        )


# ----------------------------------------------------------------------------- toolchains


def go_version(go: str) -> str:
    result = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise LabError(f"`{go} env GOVERSION` failed: is Go installed correctly?")
    return result.stdout.strip()


def debian_package_version(package: str) -> str:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise LabError(f"Debian package {package} is not installed: apt-get install {package}")
    return result.stdout.strip()


def cgo_toolchain_suffix() -> str:
    """What else a static cgo build depends on: the C compiler and the C library it links."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise LabError("gcc not found: flanneld is built with cgo like upstream; apt-get install gcc libc6-dev")
    first_line = subprocess.run([gcc, "--version"], capture_output=True, text=True, check=False).stdout.splitlines()
    gcc_version = first_line[0].split()[-1] if first_line else "unknown"
    return f"+cgo(gcc {gcc_version}, libc6-dev {debian_package_version('libc6-dev')})"


# ----------------------------------------------------------------------------- the lock


@dataclass(frozen=True)
class LockEntry:
    name: str
    version: str
    source: str
    toolchain: str
    sha256: str


@dataclass
class Measurement:
    """What the builder measured for one artifact."""

    artifact: Artifact
    toolchain: str
    sha256: str
    source_detail: str  # e.g. "debian:etcd-server=3.4.23-4+b4"


def load_lock(path: Path = LOCK_FILE) -> dict[str, LockEntry]:
    if not path.is_file():
        return {}
    document = json.loads(path.read_text())
    entries: dict[str, LockEntry] = {}
    for item in document.get("artifacts", []):
        entry = LockEntry(
            name=str(item["name"]),
            version=str(item["version"]),
            source=str(item["source"]),
            toolchain=str(item["toolchain"]),
            sha256=str(item["sha256"]),
        )
        entries[entry.name] = entry
    return entries


def compare_with_lock(measurement: Measurement, lock: Mapping[str, LockEntry]) -> str | None:
    """None when the lock agrees; a warning text when it cannot; raises LabError on a real mismatch."""
    artifact = measurement.artifact
    entry = lock.get(artifact.name)
    if entry is None:
        return f"{artifact.name} is not pinned in {LOCK_FILE.name} (pin with `kubeproof lab artifacts --update-lock`)"
    if entry.version != artifact.version:
        raise LabError(f"{artifact.name}: the lock pins version {entry.version}, the recipe builds {artifact.version}")
    if entry.sha256 == measurement.sha256:
        return None
    if entry.toolchain == measurement.toolchain:
        raise LabError(
            f"{artifact.name}: sha256 {measurement.sha256[:16]}... differs from the lock's {entry.sha256[:16]}..."
            f" with the same toolchain ({entry.toolchain}): the build is not reproducible or the input changed;"
            " investigate, then re-pin with `kubeproof lab artifacts --update-lock` if the change is intended"
        )
    return (
        f"{artifact.name}: sha256 differs from the lock, but the toolchain differs too"
        f" ({measurement.toolchain} here, {entry.toolchain} in the lock)"
    )


def write_lock(measurements: Iterable[Measurement], path: Path = LOCK_FILE) -> None:
    document: dict[str, Any] = {
        "comment": (
            "Pinned artifacts of the kubeproof lab, measured by `kubeproof lab artifacts --update-lock`."
            " A sha256 mismatch with the same toolchain is an error, with another toolchain a warning."
        ),
        "artifacts": [
            {
                "name": item.artifact.name,
                "version": item.artifact.version,
                "path": item.artifact.path,
                "source": item.source_detail,
                "toolchain": item.toolchain,
                "sha256": item.sha256,
            }
            for item in measurements
            if item.artifact in BINARY_ARTIFACTS
        ],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


# ----------------------------------------------------------------------------- Go builds


def wait_for_foreign_go_builds(progress: Progress) -> None:
    """Wait while another process runs `go build` (2 cores: never build concurrently; never kill it)."""
    pgrep = shutil.which("pgrep")
    if pgrep is None:
        progress.say("  note: pgrep not found (procps), so a concurrent `go build` cannot be detected")
        return
    started = time.monotonic()
    announced = 0.0
    while True:
        result = subprocess.run([pgrep, "-f", FOREIGN_BUILD_PATTERN], capture_output=True, text=True, check=False)
        own = {os.getpid(), os.getppid()}
        pids = [int(pid) for pid in result.stdout.split() if pid.isdigit() and int(pid) not in own]
        if not pids:
            return
        waited = time.monotonic() - started
        if waited == 0.0 or waited - announced >= 60:
            progress.say(f"  waiting for a running `go build` (pids {' '.join(map(str, pids))}), {waited:.0f} s so far")
            announced = waited
        time.sleep(FOREIGN_BUILD_POLL_SECONDS)


def _go_mod_json(go: str, go_mod: Path, cwd: Path) -> dict[str, Any]:
    result = subprocess.run(
        [go, "mod", "edit", "-json", str(go_mod)], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return {}
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def _module_info(go: str, module_at_version: str, cwd: Path) -> dict[str, Any]:
    result = subprocess.run(
        [go, "mod", "download", "-json", module_at_version],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=go_environment(cgo=False),
        check=False,
    )
    try:
        info: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError:
        info = {}
    if result.returncode != 0 or "Error" in info:
        reason = info.get("Error") or result.stderr.strip().splitlines()[-1:] or "unknown error"
        raise LabError(f"go mod download {module_at_version} failed: {reason}; is the Go module proxy reachable?")
    return info


def _replace_target(replace: Mapping[str, Any]) -> str:
    new = replace.get("New", {})
    return f"{new.get('Path')}@{new['Version']}" if new.get("Version") else str(new.get("Path"))


def desired_replaces(wrapper: GoWrapper, go: str, work: Path) -> dict[str, str]:
    replaces = dict(wrapper.replaces)
    if wrapper.copy_replaces_from:
        info = _module_info(go, wrapper.copy_replaces_from, work)
        upstream = _go_mod_json(go, Path(info["GoMod"]), work)
        for replace in upstream.get("Replace") or []:
            old_path = str(replace["Old"]["Path"])
            replaces.setdefault(old_path, _replace_target(replace))
    return replaces


def render_go_mod(wrapper: GoWrapper, replaces: Mapping[str, str]) -> str:
    lines = [f"module {wrapper.module_path}", "", f"go {wrapper.go_directive}", ""]
    lines += [f"require {path} {version}" for path, version in wrapper.requires.items()]
    if replaces:
        lines += ["", "replace ("]
        for old_path, target in replaces.items():
            new_path, _, version = target.partition("@")
            lines.append(f"\t{old_path} => {new_path} {version}".rstrip())
        lines.append(")")
    return "\n".join(lines) + "\n"


def go_mod_satisfies(current: Mapping[str, Any], wrapper: GoWrapper, replaces: Mapping[str, str]) -> bool:
    """Whether an existing (tidied) go.mod already pins what the wrapper asks for."""
    if current.get("Module", {}).get("Path") != wrapper.module_path:
        return False
    required = {item["Path"]: item["Version"] for item in current.get("Require") or []}
    if any(required.get(path) != version for path, version in wrapper.requires.items()):
        return False
    present = {str(item["Old"]["Path"]): _replace_target(item) for item in current.get("Replace") or []}
    return all(present.get(old_path) == target for old_path, target in replaces.items())


def prepare_wrapper(wrapper: GoWrapper, go: str, progress: Progress) -> Path:
    """The wrapper module directory, with go.mod/go.sum tidied (only rewritten when they differ)."""
    work = build_dir() / wrapper.directory
    work.mkdir(parents=True, exist_ok=True)
    for relative, source in wrapper.local_replacements.items():
        destination = work / relative
        if destination.exists():
            shutil.rmtree(destination)
        shutil.copytree(source, destination)
    tools = work / "tools.go"
    if not tools.is_file() or tools.read_text() != wrapper.tools_go():
        tools.write_text(wrapper.tools_go())
    replaces = desired_replaces(wrapper, go, work)
    go_mod = work / "go.mod"
    if (
        go_mod.is_file()
        and (work / "go.sum").is_file()
        and go_mod_satisfies(_go_mod_json(go, go_mod, work), wrapper, replaces)
    ):
        return work
    go_mod.write_text(render_go_mod(wrapper, replaces))
    with progress.step(f"go mod tidy in {work}"):
        run_logged(
            [go, "mod", "tidy"],
            cwd=work,
            env=go_environment(cgo=False),
            log_path=work / "tidy.log",
            progress=progress,
            label=f"go mod tidy ({wrapper.directory})",
        )
    return work


def _stamp(binary: GoBinary, toolchain: str, work: Path) -> dict[str, Any]:
    return {
        "package": binary.package,
        "ldflags": binary.ldflags,
        "cgo": binary.cgo,
        "tags": list(binary.tags),
        "toolchain": toolchain,
        "go.mod": sha256_file(work / "go.mod"),
    }


def build_go_binary(
    wrapper: GoWrapper, binary: GoBinary, go: str, toolchain: str, work: Path, progress: Progress
) -> Path:
    """out/<name> in the wrapper directory; rebuilt only when missing or built from other inputs."""
    out_dir = work / "out"
    out_dir.mkdir(exist_ok=True)
    output = out_dir / binary.artifact
    stamp_path = out_dir / f"{binary.artifact}.stamp.json"
    stamp = _stamp(binary, toolchain, work)
    artifact = artifact_by_name(binary.artifact)
    if output.is_file():
        if stamp_path.is_file() and json.loads(stamp_path.read_text()) == stamp:
            return output
        if not stamp_path.is_file():
            # Built before the builder existed (same wrapper, same flags, e.g. by hand): adopt it if
            # it reports the pinned version; the lock comparison later catches any other difference.
            try:
                check_version(output, artifact)
            except LabError:
                pass
            else:
                stamp_path.write_text(json.dumps(stamp, indent=2) + "\n")
                return output
    argv = [go, "build", "-trimpath"]
    if binary.tags:
        argv += ["-tags", ",".join(binary.tags)]
    argv += ["-ldflags", binary.ldflags, "-o", f"out/{binary.artifact}", binary.package]
    wait_for_foreign_go_builds(progress)
    with progress.step(f"go build {binary.artifact} ({binary.package})"):
        run_logged(
            argv,
            cwd=work,
            env=go_environment(cgo=binary.cgo),
            log_path=work / "build.log",
            progress=progress,
            label=f"go build {binary.artifact}",
        )
    stamp_path.write_text(json.dumps(stamp, indent=2) + "\n")
    return output


# ----------------------------------------------------------------------------- the builder


def install_file(source: Path, destination: Path, mode: int = 0o755) -> None:
    """Copy source to destination atomically, unless it is already there with the same bytes."""
    if (
        destination.is_file()
        and destination.stat().st_size == source.stat().st_size
        and sha256_file(destination) == sha256_file(source)
    ):
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    shutil.copyfile(source, partial)
    partial.chmod(mode)
    partial.replace(destination)


def manifest_path(target: Path | None = None) -> Path:
    return (target or artifacts_dir()) / MANIFEST_NAME


def missing_artifacts(target: Path | None = None) -> list[str]:
    """Fast check for `lab up`: which artifacts (or the manifest) are absent. No hashing."""
    directory = target or artifacts_dir()
    missing = [artifact.path for artifact in ALL_ARTIFACTS if not (directory / artifact.path).is_file()]
    if not manifest_path(directory).is_file():
        missing.append(MANIFEST_NAME)
    return missing


def build_artifacts(
    docker: Docker, progress: Progress, *, update_lock: bool = False, target: Path | None = None
) -> Path:
    """Build or copy whatever is missing, verify versions and the lock, write MANIFEST.json."""
    directory = target or artifacts_dir()
    directory.mkdir(parents=True, exist_ok=True)
    go = find_go()
    go_toolchain = go_version(go)
    measurements: list[Measurement] = []

    for wrapper in GO_WRAPPERS:
        work = prepare_wrapper(wrapper, go, progress)
        for binary in wrapper.binaries:
            toolchain = go_toolchain + (cgo_toolchain_suffix() if binary.cgo else "")
            built = build_go_binary(wrapper, binary, go, toolchain, work, progress)
            artifact = artifact_by_name(binary.artifact)
            install_file(built, directory / artifact.path)
            version = next(iter(wrapper.requires.values()))
            module = next(iter(wrapper.requires))
            measurements.append(Measurement(artifact, toolchain, "", f"{module}@{version}"))

    flannel_module_dir = Path(_module_info(go, f"{FLANNEL_MODULE}@{FLANNEL_VERSION}", build_dir())["Dir"])
    opts_artifact = artifact_by_name("mk-docker-opts.sh")
    install_file(flannel_module_dir / "dist" / "mk-docker-opts.sh", directory / opts_artifact.path)
    measurements.append(
        Measurement(
            opts_artifact,
            f"module:{FLANNEL_MODULE}@{FLANNEL_VERSION}",
            "",
            f"{FLANNEL_MODULE}@{FLANNEL_VERSION}:dist/mk-docker-opts.sh",
        )
    )

    for name, (source_file, package) in DEBIAN_COPIES.items():
        artifact = artifact_by_name(name)
        source = Path(source_file)
        if not source.is_file():
            raise LabError(f"{source} not found: apt-get install {package}")
        package_version = debian_package_version(package)
        install_file(source, directory / artifact.path)
        detail = f"debian:{package}={package_version}"
        measurements.append(Measurement(artifact, detail, "", detail))

    with progress.step("pod images"):
        ensure_pod_image_tarballs(docker, directory / "images", progress)
    for artifact in IMAGE_ARTIFACTS:
        measurements.append(Measurement(artifact, "", "", artifact.source))

    with progress.step("verify versions and sha256"):
        lock = load_lock()
        for measurement in measurements:
            path = directory / measurement.artifact.path
            check_version(path, measurement.artifact)
            measurement.sha256 = sha256_file(path)
            progress.say(
                f"  {measurement.artifact.name:<24} {measurement.artifact.version:<9} sha256:{measurement.sha256[:16]}"
            )
            if measurement.artifact in BINARY_ARTIFACTS and not update_lock:
                warning = compare_with_lock(measurement, lock)
                if warning:
                    progress.say(f"  warning: {warning}")
    if update_lock:
        write_lock(measurements)
        progress.say(
            f"  pinned {sum(1 for m in measurements if m.artifact in BINARY_ARTIFACTS)} artifacts in {LOCK_FILE}"
        )

    manifest = {
        "toolchain": go_toolchain,
        "artifacts": [
            {"name": m.artifact.name, "version": m.artifact.version, "path": m.artifact.path, "sha256": m.sha256}
            for m in measurements
        ],
    }
    partial = manifest_path(directory).with_suffix(".json.partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    partial.replace(manifest_path(directory))
    progress.say(f"  artifacts ready in {directory}")
    return directory


def read_manifest(target: Path | None = None) -> dict[str, Any]:
    path = manifest_path(target)
    try:
        document: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LabError(f"cannot read {path}: run `kubeproof lab artifacts`") from exc
    return document


def versioned_artifacts() -> Sequence[Artifact]:
    """Artifacts that have a version command (the others carry a reason)."""
    return [artifact for artifact in BINARY_ARTIFACTS if artifact.version_argv is not None]
