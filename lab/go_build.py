"""Go builds of the lab: a wrapper module per project requires it at a pinned version and builds its commands.

A wrapper directory (under the stack's build directory) holds go.mod, go.sum, tools.go and out/; go.mod
is rewritten and tidied only when it does not pin what the recipe asks for, and a binary is rebuilt
only when its stamp (package, flags, toolchain, go.mod hash) changed. Never two builds at once: on 2
cores another process's `go build` is waited for, never killed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeproof.lab.errors import LabError
from kubeproof.lab.pod_images import go_environment
from kubeproof.lab.progress import Progress, run_logged
from kubeproof.lab.stacks import LOCAL_TOOLCHAIN

# Another process's `go build` (e.g. one started by hand) is waited for, never killed.
FOREIGN_BUILD_PATTERN = "go build"
FOREIGN_BUILD_POLL_SECONDS = 15.0
# Where an upstream go.mod points its in-repository modules (k8s.io/kubernetes: ./staging/src/k8s.io/api).
STAGING_PREFIX = "./staging/src/"


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

    directory: str  # under the stack's build directory ($KUBEPROOF_CACHE/build for the default stack)
    module_path: str
    go_directive: str
    requires: Mapping[str, str]
    replaces: Mapping[str, str]  # old path -> "new@version" or "./local/dir"
    binaries: tuple[GoBinary, ...]
    copy_replaces_from: str | None = None  # "module@version" whose own replaces must be kept
    local_replacements: Mapping[str, Path] = field(default_factory=dict)  # copied dirs, "./..." target
    # With copy_replaces_from: an upstream replace to ./staging/src/<path> becomes <path>@staging_version.
    staging_version: str | None = None
    toolchain: str = LOCAL_TOOLCHAIN  # GOTOOLCHAIN for this wrapper's go commands
    tool_packages: tuple[str, ...] = ()  # build tools the recipe runs (kept in go.mod/go.sum by tools.go)
    # Module sources copied (writable) into the wrapper: relative dir -> "module@version".
    source_copies: Mapping[str, str] = field(default_factory=dict)

    def tools_go(self) -> str:
        packages = [binary.package for binary in self.binaries] + list(self.tool_packages)
        imports = "\n".join(f'\t_ "{package}"' for package in packages)
        return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"


def wrapper_environment(wrapper: GoWrapper | None, cgo: bool) -> dict[str, str]:
    """go_environment, with the wrapper's toolchain when it is not the machine's own."""
    environment = go_environment(cgo=cgo)
    if wrapper is not None and wrapper.toolchain != LOCAL_TOOLCHAIN:
        environment["GOTOOLCHAIN"] = wrapper.toolchain
    return environment


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- toolchains


def go_version(go: str, toolchain: str = LOCAL_TOOLCHAIN) -> str:
    environment = go_environment(cgo=False)
    if toolchain != LOCAL_TOOLCHAIN:
        environment["GOTOOLCHAIN"] = toolchain
    result = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, env=environment, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        reason = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise LabError(f"`{go} env GOVERSION` (GOTOOLCHAIN={environment['GOTOOLCHAIN']}) failed: {reason[0]}")
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


# ----------------------------------------------------------------------------- wrapper modules


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


def module_info(go: str, module_at_version: str) -> dict[str, Any]:
    """`go mod download -json module@version`: its Dir, GoMod, Origin, ...

    Run outside any module, so that no go.mod's replaces or state can stand in the way.
    """
    result = subprocess.run(
        [go, "mod", "download", "-json", module_at_version],
        cwd=tempfile.gettempdir(),
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


def upstream_replaces(wrapper: GoWrapper, upstream: Mapping[str, Any]) -> dict[str, str]:
    """The replaces of the upstream go.mod (parsed by `go mod edit -json`) a wrapper must keep.

    A replace to a directory of the upstream repository (./staging/src/<path>) becomes the published
    release of that module (<path>@staging_version); any other directory cannot be reached from the
    wrapper and is an error.
    """
    replaces: dict[str, str] = {}
    for replace in upstream.get("Replace") or []:
        old_path = str(replace["Old"]["Path"])
        target = _replace_target(replace)
        if target.startswith("."):
            if target.startswith(STAGING_PREFIX) and wrapper.staging_version:
                target = f"{target.removeprefix(STAGING_PREFIX)}@{wrapper.staging_version}"
            elif old_path not in wrapper.replaces:
                raise LabError(
                    f"{wrapper.copy_replaces_from} replaces {old_path} with its own directory {target}:"
                    " the recipe must say which published module stands for it"
                )
        replaces[old_path] = target
    return replaces


def desired_replaces(wrapper: GoWrapper, go: str, work: Path) -> dict[str, str]:
    """The wrapper's own replaces, then the upstream ones it keeps (its own win)."""
    replaces = dict(wrapper.replaces)
    if wrapper.copy_replaces_from:
        info = module_info(go, wrapper.copy_replaces_from)
        for old_path, target in upstream_replaces(wrapper, _go_mod_json(go, Path(info["GoMod"]), work)).items():
            replaces.setdefault(old_path, target)
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


def prepare_wrapper(wrapper: GoWrapper, go: str, root: Path, progress: Progress) -> Path:
    """The wrapper module directory under root, with go.mod/go.sum tidied (only rewritten when they differ)."""
    work = root / wrapper.directory
    work.mkdir(parents=True, exist_ok=True)
    for relative, source in wrapper.local_replacements.items():
        destination = work / relative
        if destination.exists():
            shutil.rmtree(destination)
        shutil.copytree(source, destination)
    for relative, module_at_version in wrapper.source_copies.items():
        copy_module_source(go, module_at_version, work / relative, progress)
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
            env=wrapper_environment(wrapper, cgo=False),
            log_path=work / "tidy.log",
            progress=progress,
            label=f"go mod tidy ({wrapper.directory})",
        )
    return work


SOURCE_MARKER = ".kubeproof-source.json"


def copy_module_source(go: str, module_at_version: str, destination: Path, progress: Progress) -> None:
    """A writable copy of a module's source (the module cache is read-only); kept when already made."""
    info = module_info(go, module_at_version)
    marker = destination / SOURCE_MARKER
    expected = {"module": module_at_version, "sum": info.get("Sum", "")}
    if marker.is_file() and json.loads(marker.read_text()) == expected:
        return
    with progress.step(f"copy {module_at_version} into {destination}"):
        partial = destination.with_name(destination.name + ".partial")
        for stale in (partial, destination):
            if stale.exists():
                shutil.rmtree(stale)
        shutil.copytree(Path(info["Dir"]), partial)
        for path in (partial, *partial.rglob("*")):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o200)
        (partial / SOURCE_MARKER).write_text(json.dumps(expected, indent=2) + "\n")
        partial.replace(destination)


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
    wrapper: GoWrapper,
    binary: GoBinary,
    go: str,
    toolchain: str,
    work: Path,
    progress: Progress,
    reports_pinned_version: Callable[[Path], bool],
) -> Path:
    """out/<name> in the wrapper directory; rebuilt only when missing or built from other inputs."""
    out_dir = work / "out"
    out_dir.mkdir(exist_ok=True)
    output = out_dir / binary.artifact
    stamp_path = out_dir / f"{binary.artifact}.stamp.json"
    stamp = _stamp(binary, toolchain, work)
    if output.is_file():
        if stamp_path.is_file() and json.loads(stamp_path.read_text()) == stamp:
            return output
        # Built before the builder existed (same wrapper, same flags, e.g. by hand): adopt it if it
        # reports the pinned version; the lock comparison later catches any other difference.
        if not stamp_path.is_file() and reports_pinned_version(output):
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
            env=wrapper_environment(wrapper, cgo=binary.cgo),
            log_path=work / "build.log",
            progress=progress,
            label=f"go build {binary.artifact}",
        )
    stamp_path.write_text(json.dumps(stamp, indent=2) + "\n")
    return output
