"""The artifacts builder: the release-tarball layout of docs/DESIGN.md, per stack (lab.stacks).

Go binaries are built from pinned module versions through small wrapper modules (lab.go_build, one
directory per project under the stack's build directory, recipes in lab.recipes), Debian's etcd and
cfssl are copied from their packages, the pod images are built by lab.pod_images. Every artifact must
print its pinned version; every sha256 is compared with the stack's entries in lab/artifacts.lock.json:
a mismatch with the same toolchain is an error (the build is not reproducible, or something was
tampered with), with a different toolchain a warning.

The default stack (`today`) keeps its place: $KUBEPROOF_CACHE/artifacts, $KUBEPROOF_CACHE/build and
the lock's top-level "artifacts" list; any other stack has artifacts/stacks/<name>, build/stacks/<name>
and the lock's "stacks" -> <name> list.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubeproof.filelock import holder_lock
from kubeproof.lab.dockercli import Docker
from kubeproof.lab.errors import LabError
from kubeproof.lab.go_build import (
    GoWrapper,
    build_go_binary,
    cgo_toolchain_suffix,
    debian_package_version,
    go_mod_satisfies,
    go_version,
    module_info,
    prepare_wrapper,
    render_go_mod,
    sha256_file,
)
from kubeproof.lab.k8s_openapi import ensure_openapi
from kubeproof.lab.pod_images import ensure_pod_image_tarballs, find_go
from kubeproof.lab.progress import Progress
from kubeproof.lab.recipes import (
    IMAGE_ARTIFACTS,
    K8S_MODULE,
    Artifact,
    all_artifacts,
    artifact_named,
    binary_artifacts,
    debian_copies,
    generates_openapi,
    go_wrappers,
    k8s_wrapper,
    stack_artifacts_dir,
    stack_build_dir,
)
from kubeproof.lab.stacks import LOCAL_TOOLCHAIN, Stack, default_stack

LOCK_FILE = Path(__file__).resolve().parent / "artifacts.lock.json"
MANIFEST_NAME = "MANIFEST.json"
LOCK_COMMENT = (
    "Pinned artifacts of the kubeproof lab, measured by `python -m lab artifacts --update-lock [--stack NAME]`."
    " A sha256 mismatch with the same toolchain is an error, with another toolchain a warning."
    " 'artifacts' is the default stack (today), 'stacks' the others."
)

# The default stack, under the names other modules and tests have always imported.
BINARY_ARTIFACTS: tuple[Artifact, ...] = binary_artifacts(default_stack())
ALL_ARTIFACTS: tuple[Artifact, ...] = all_artifacts(default_stack())
KUBERNETES_WRAPPER: GoWrapper = k8s_wrapper(default_stack())
GO_WRAPPERS: tuple[GoWrapper, ...] = go_wrappers(default_stack())

__all__ = [
    "ALL_ARTIFACTS",
    "BINARY_ARTIFACTS",
    "GO_WRAPPERS",
    "IMAGE_ARTIFACTS",
    "KUBERNETES_WRAPPER",
    "Artifact",
    "LockEntry",
    "Measurement",
    "build_artifacts",
    "check_version",
    "compare_with_lock",
    "go_mod_satisfies",
    "load_lock",
    "missing_artifacts",
    "read_manifest",
    "render_go_mod",
    "sha256_file",
    "versioned_artifacts",
    "write_lock",
]


def artifact_by_name(name: str, stack: Stack | None = None) -> Artifact:
    return artifact_named(stack or default_stack(), name)


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


def reports_version(artifact: Artifact) -> Callable[[Path], bool]:
    def check(binary: Path) -> bool:
        try:
            check_version(binary, artifact)
        except LabError:
            return False
        return True

    return check


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


def _lock_items(document: Mapping[str, Any], stack: Stack) -> list[Mapping[str, Any]]:
    if stack.default:
        return list(document.get("artifacts", []))
    return list((document.get("stacks") or {}).get(stack.name, []))


def load_lock(path: Path = LOCK_FILE, stack: Stack | None = None) -> dict[str, LockEntry]:
    """The stack's pinned entries (the default stack's when none is given)."""
    if not path.is_file():
        return {}
    document = json.loads(path.read_text())
    entries: dict[str, LockEntry] = {}
    for item in _lock_items(document, stack or default_stack()):
        entry = LockEntry(
            name=str(item["name"]),
            version=str(item["version"]),
            source=str(item["source"]),
            toolchain=str(item["toolchain"]),
            sha256=str(item["sha256"]),
        )
        entries[entry.name] = entry
    return entries


def _update_hint(stack: Stack) -> str:
    option = "" if stack.default else f" --stack {stack.name}"
    return f"`kubeproof lab artifacts --update-lock{option}`"


def compare_with_lock(
    measurement: Measurement, lock: Mapping[str, LockEntry], stack: Stack | None = None
) -> str | None:
    """None when the lock agrees; a warning text when it cannot; raises LabError on a real mismatch."""
    stack = stack or default_stack()
    artifact = measurement.artifact
    entry = lock.get(artifact.name)
    if entry is None:
        return f"{artifact.name} is not pinned in {LOCK_FILE.name} (pin with {_update_hint(stack)})"
    if entry.version != artifact.version:
        raise LabError(f"{artifact.name}: the lock pins version {entry.version}, the recipe builds {artifact.version}")
    if entry.sha256 == measurement.sha256:
        return None
    if entry.toolchain == measurement.toolchain:
        raise LabError(
            f"{artifact.name}: sha256 {measurement.sha256[:16]}... differs from the lock's {entry.sha256[:16]}..."
            f" with the same toolchain ({entry.toolchain}): the build is not reproducible or the input changed;"
            f" investigate, then re-pin with {_update_hint(stack)} if the change is intended"
        )
    return (
        f"{artifact.name}: sha256 differs from the lock, but the toolchain differs too"
        f" ({measurement.toolchain} here, {entry.toolchain} in the lock)"
    )


def lock_entries(measurements: Iterable[Measurement], stack: Stack) -> list[dict[str, str]]:
    binaries = binary_artifacts(stack)
    return [
        {
            "name": item.artifact.name,
            "version": item.artifact.version,
            "path": item.artifact.path,
            "source": item.source_detail,
            "toolchain": item.toolchain,
            "sha256": item.sha256,
        }
        for item in measurements
        if item.artifact in binaries
    ]


def write_lock(measurements: Iterable[Measurement], path: Path = LOCK_FILE, stack: Stack | None = None) -> None:
    """Replace the stack's entries; every other stack's (and the comment) stay as they are."""
    stack = stack or default_stack()
    document: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    document.setdefault("comment", LOCK_COMMENT)
    entries = lock_entries(measurements, stack)
    if stack.default:
        document["artifacts"] = entries
    else:
        document.setdefault("artifacts", [])
        stacks = dict(document.get("stacks") or {})
        stacks[stack.name] = entries
        document["stacks"] = {name: stacks[name] for name in sorted(stacks)}
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)


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


def manifest_path(target: Path | None = None, stack: Stack | None = None) -> Path:
    return (target or stack_artifacts_dir(stack or default_stack())) / MANIFEST_NAME


def missing_artifacts(target: Path | None = None, stack: Stack | None = None) -> list[str]:
    """Fast check for `lab up`: which artifacts (or the manifest) are absent. No hashing."""
    stack = stack or default_stack()
    directory = target or stack_artifacts_dir(stack)
    missing = [artifact.path for artifact in all_artifacts(stack) if not (directory / artifact.path).is_file()]
    if not manifest_path(directory).is_file():
        missing.append(MANIFEST_NAME)
    return missing


def _build_go(stack: Stack, go: str, progress: Progress, directory: Path) -> tuple[list[Measurement], set[str]]:
    measurements: list[Measurement] = []
    toolchains: set[str] = set()
    root = stack_build_dir(stack)
    for wrapper in go_wrappers(stack):
        go_toolchain = go_version(go, wrapper.toolchain)
        toolchains.add(go_toolchain)
        work = prepare_wrapper(wrapper, go, root, progress)
        if wrapper.requires.get(K8S_MODULE) and generates_openapi(stack):
            ensure_openapi(wrapper, go, work, progress)
        for binary in wrapper.binaries:
            toolchain = go_toolchain + (cgo_toolchain_suffix() if binary.cgo else "")
            artifact = artifact_named(stack, binary.artifact)
            built = build_go_binary(wrapper, binary, go, toolchain, work, progress, reports_version(artifact))
            install_file(built, directory / artifact.path)
            module = next(iter(wrapper.requires))
            measurements.append(Measurement(artifact, toolchain, "", f"{module}@{wrapper.requires[module]}"))
    return measurements, toolchains


def _copy_flannel_script(stack: Stack, go: str, directory: Path) -> Measurement:
    module_at_version = f"{stack.flannel_module}@{stack.flannel}"
    flannel_module_dir = Path(module_info(go, module_at_version)["Dir"])
    artifact = artifact_named(stack, "mk-docker-opts.sh")
    install_file(flannel_module_dir / "dist" / "mk-docker-opts.sh", directory / artifact.path)
    return Measurement(artifact, f"module:{module_at_version}", "", f"{module_at_version}:dist/mk-docker-opts.sh")


def _copy_debian(stack: Stack, directory: Path) -> list[Measurement]:
    measurements = []
    for name, (source_file, package) in debian_copies(stack).items():
        artifact = artifact_named(stack, name)
        source = Path(source_file)
        if not source.is_file():
            raise LabError(f"{source} not found: apt-get install {package}")
        package_version = debian_package_version(package)
        install_file(source, directory / artifact.path)
        detail = f"debian:{package}={package_version}"
        measurements.append(Measurement(artifact, detail, "", detail))
    return measurements


def _pod_images(stack: Stack, docker: Docker | None, progress: Progress, directory: Path) -> list[Measurement]:
    """The same image tarballs for every stack: another stack copies the default one's when present."""
    with progress.step("pod images"):
        shared = stack_artifacts_dir(default_stack())
        if not stack.default and all((shared / artifact.path).is_file() for artifact in IMAGE_ARTIFACTS):
            for artifact in IMAGE_ARTIFACTS:
                install_file(shared / artifact.path, directory / artifact.path, mode=0o644)
        else:
            ensure_pod_image_tarballs(docker or Docker.connect(), directory / "images", progress)
    return [Measurement(artifact, "", "", artifact.source) for artifact in IMAGE_ARTIFACTS]


def build_artifacts(
    docker: Docker | None,
    progress: Progress,
    *,
    update_lock: bool = False,
    target: Path | None = None,
    stack: Stack | None = None,
) -> Path:
    """Build or copy whatever is missing, verify versions and the lock, write MANIFEST.json.

    One build of a stack at a time: a second process (a `lab up --stack` while the tests' background
    build of that stack runs) waits for the first and then finds everything built.
    """
    stack = stack or default_stack()
    with stack_build_lock(stack, progress):
        return _build_artifacts(docker, progress, update_lock=update_lock, target=target, stack=stack)


BUILD_LOCK_NAME = ".artifacts.lock"


@contextmanager
def stack_build_lock(stack: Stack, progress: Progress) -> Iterator[None]:
    started = time.monotonic()
    waited: list[str] = []

    def waiting(holder: str) -> None:
        waited.append(holder)
        progress.say(f"  stack {stack.name}: waiting for the build {holder} runs")

    with holder_lock(stack_build_dir(stack) / BUILD_LOCK_NAME, waiting):
        if waited:
            progress.say(f"  stack {stack.name}: that build ended after {time.monotonic() - started:.0f} s of waiting")
        yield


def _build_artifacts(
    docker: Docker | None, progress: Progress, *, update_lock: bool, target: Path | None, stack: Stack
) -> Path:
    directory = target or stack_artifacts_dir(stack)
    directory.mkdir(parents=True, exist_ok=True)
    progress.say(f"  stack {stack.name}: kubernetes {stack.kubernetes}, etcd {stack.etcd}, flannel {stack.flannel}")
    go = find_go()
    measurements, toolchains = _build_go(stack, go, progress, directory)
    measurements.append(_copy_flannel_script(stack, go, directory))
    measurements += _copy_debian(stack, directory)
    measurements += _pod_images(stack, docker, progress, directory)

    binaries = binary_artifacts(stack)
    with progress.step("verify versions and sha256"):
        lock = load_lock(stack=stack)
        for measurement in measurements:
            path = directory / measurement.artifact.path
            check_version(path, measurement.artifact)
            measurement.sha256 = sha256_file(path)
            progress.say(
                f"  {measurement.artifact.name:<24} {measurement.artifact.version:<9} sha256:{measurement.sha256[:16]}"
            )
            if measurement.artifact in binaries and not update_lock:
                warning = compare_with_lock(measurement, lock, stack)
                if warning:
                    progress.say(f"  warning: {warning}")
    if update_lock:
        write_lock(measurements, stack=stack)
        progress.say(f"  pinned {sum(1 for m in measurements if m.artifact in binaries)} artifacts in {LOCK_FILE}")

    local = go_version(go, LOCAL_TOOLCHAIN)
    manifest: dict[str, Any] = {"toolchain": local}
    if not stack.default:
        manifest = {"stack": stack.name, "toolchain": local, "toolchains": sorted(toolchains | {local})}
    manifest["artifacts"] = [
        {"name": m.artifact.name, "version": m.artifact.version, "path": m.artifact.path, "sha256": m.sha256}
        for m in measurements
    ]
    partial = manifest_path(directory).with_suffix(".json.partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    partial.replace(manifest_path(directory))
    progress.say(f"  artifacts ready in {directory}")
    return directory


def read_manifest(target: Path | None = None, stack: Stack | None = None) -> dict[str, Any]:
    path = manifest_path(target, stack)
    try:
        document: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LabError(f"cannot read {path}: run `kubeproof lab artifacts`") from exc
    return document


def versioned_artifacts(stack: Stack | None = None) -> Sequence[Artifact]:
    """Artifacts that have a version command (the others carry a reason)."""
    return [artifact for artifact in binary_artifacts(stack or default_stack()) if artifact.version_argv is not None]
