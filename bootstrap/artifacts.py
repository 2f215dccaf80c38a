"""The release binaries (release-tarball layout, docs/DESIGN.md) and what their versions support.

Flags are chosen from what the binary itself says it accepts (``--help``), so one renderer serves
every release: kube-apiserver lost its insecure port in 1.20 and klog's --log-dir/--logtostderr
in 1.26, and admission plugins come and go (SecurityContextDeny was removed in 1.30).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubeproof.bootstrap.content import Content
from kubeproof.bootstrap.errors import BootstrapError
from kubeproof.bootstrap.state import Sha256Cache
from kubeproof.inventory import Cluster
from kubeproof.versions import UNKNOWN, Version, release_of

LAB_HINT = "or run `kubeproof lab artifacts`"


@dataclass(frozen=True)
class Artifact:
    key: str  # e.g. "kube-apiserver"
    relative: str  # path under the artifacts directory
    how_to_get: str


class Artifacts:
    def __init__(self, cluster: Cluster, sha_cache: Sha256Cache | None = None):
        if cluster.artifacts is None:
            raise BootstrapError(
                "the cluster file has no 'artifacts:' directory (release binaries in release-tarball layout)"
            )
        self.root = cluster.artifacts
        self.cluster = cluster
        self.sha_cache = sha_cache
        versions = cluster.versions
        kubernetes = versions.kubernetes or "<version>"
        etcd_dir = self._versioned_dir("etcd", versions.etcd, "etcd-v{}-linux-amd64")
        flannel_dir = self._versioned_dir("flannel", versions.flannel, "flannel-{}-linux-amd64")
        k8s_how = (
            f"download kubernetes-server-linux-amd64.tar.gz {kubernetes} "
            f"(https://dl.k8s.io/{kubernetes}/kubernetes-server-linux-amd64.tar.gz) and unpack it there, {LAB_HINT}"
        )
        etcd_version = versions.etcd or "<version>"
        etcd_how = (
            f"download etcd-v{etcd_version}-linux-amd64.tar.gz (https://github.com/etcd-io/etcd/releases) "
            f"and unpack it there, {LAB_HINT}"
        )
        flannel_version = versions.flannel or "<version>"
        flannel_how = (
            f"download flannel-{flannel_version}-linux-amd64.tar.gz (https://github.com/flannel-io/flannel/releases) "
            f"and unpack it into {flannel_dir}/, {LAB_HINT}"
        )
        cri_version = versions.cri_dockerd or "<version>"
        cri_how = (
            f"download cri-dockerd-{cri_version}.amd64.tgz (https://github.com/Mirantis/cri-dockerd/releases) "
            f"and unpack it there (cri-dockerd/cri-dockerd), {LAB_HINT}"
        )
        self.items: dict[str, Artifact] = {}
        for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet", "kube-proxy"):
            self.items[name] = Artifact(name, f"kubernetes/server/bin/{name}", k8s_how)
        for name in ("etcd", "etcdctl"):
            self.items[name] = Artifact(name, f"{etcd_dir}/{name}", etcd_how)
        for name in ("flanneld", "mk-docker-opts.sh"):
            self.items[name] = Artifact(name, f"{flannel_dir}/{name}", flannel_how)
        self.items["cri-dockerd"] = Artifact("cri-dockerd", "cri-dockerd/cri-dockerd", cri_how)

    def _versioned_dir(self, name: str, version: str | None, pattern: str) -> str:
        if version:
            return pattern.format(version.lstrip("v") if name == "etcd" else version)
        found = sorted(p.name for p in self.root.glob(pattern.format("*")) if p.is_dir())
        return found[-1] if found else pattern.format("<version>")

    def path(self, key: str) -> Path:
        return self.root / self.items[key].relative

    def content(self, key: str) -> Content:
        path = self.path(key)
        sha = self.sha_cache.sha256(path) if self.sha_cache else None
        return Content(local=path, sha256=sha)

    def missing(self, keys: list[str]) -> list[str]:
        """One message per missing artifact: the file, the directory, and how to get it."""
        problems = []
        for key in keys:
            artifact = self.items[key]
            path = self.root / artifact.relative
            if not path.is_file():
                problems.append(f"{artifact.relative} missing in {self.root}: {artifact.how_to_get}")
            elif not os.access(path, os.R_OK):
                problems.append(f"{path} is not readable")
        return problems


# ----------------------------------------------------------------------------- binary capabilities

_FLAG = re.compile(r"^\s+(?:-\w, )?--([a-z0-9][a-z0-9-]*)", re.MULTILINE)
_ADMISSION_LIST = re.compile(r"Comma-delimited list of admission plugins: (.*?)\. The order", re.DOTALL)
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class BinaryInfo:
    """What a binary says about itself: its version and the flags it accepts."""

    name: str
    version: str
    flags: frozenset[str]
    admission_plugins: frozenset[str] = frozenset()

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        match = _VERSION.search(self.version)
        if not match:
            return (0, 0, 0)
        return (int(match.group(1)), int(match.group(2)), int(match.group(3)))

    @property
    def release(self) -> Version:
        """The comparable release version (0.0.0 when the binary printed none)."""
        return release_of(self.version) or UNKNOWN

    def has(self, flag: str) -> bool:
        return flag.lstrip("-") in self.flags


def parse_help(name: str, version_text: str, help_text: str) -> BinaryInfo:
    flags = frozenset(_FLAG.findall(help_text))
    plugins: frozenset[str] = frozenset()
    match = _ADMISSION_LIST.search(help_text)
    if match:
        plugins = frozenset(p.strip() for p in re.sub(r"\s+", " ", match.group(1)).split(",") if p.strip())
    version_match = _VERSION.search(version_text)
    version = version_match.group(0) if version_match else version_text.strip()
    if version and not version.startswith("v"):
        version = "v" + version
    return BinaryInfo(name, version, flags, plugins)


def binary_info(artifacts: Artifacts, key: str, cache_dir: Path | None) -> BinaryInfo:
    """Run the artifact's --version and --help on this machine (cached by the binary's sha256).

    A binary that prints no release (v0.0.0: built without version stamps) takes MANIFEST.json's.
    """
    info = _binary_info(artifacts, key, cache_dir)
    if info.release == UNKNOWN:
        recorded = manifest_version(artifacts, key)
        if release_of(recorded) is not None:
            return BinaryInfo(info.name, str(recorded), info.flags, info.admission_plugins)
    return info


def _binary_info(artifacts: Artifacts, key: str, cache_dir: Path | None) -> BinaryInfo:
    path = artifacts.path(key)
    sha = artifacts.content(key).sha256
    cache_file = cache_dir / "binary-info.json" if cache_dir else None
    cache: dict[str, dict[str, object]] = {}
    if cache_file and cache_file.is_file():
        try:
            cache = json.loads(cache_file.read_text())
        except ValueError:
            cache = {}
    entry = cache.get(sha)
    if entry:
        return BinaryInfo(
            key,
            str(entry["version"]),
            frozenset(str(f) for f in entry["flags"]),  # type: ignore[attr-defined]
            frozenset(str(p) for p in entry["admission_plugins"]),  # type: ignore[attr-defined]
        )
    try:
        version = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60, check=False)
        help_run = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        raise BootstrapError(
            f"cannot run {path} on this machine to read its version and flags ({exc.strerror}): "
            "the installer needs a linux/amd64 controller"
        ) from None
    info = parse_help(key, version.stdout + version.stderr, help_run.stdout + help_run.stderr)
    if not info.flags:
        raise BootstrapError(f"{path} --help listed no flags: is it really {key}?")
    if cache_file:
        cache[sha] = {
            "version": info.version,
            "flags": sorted(info.flags),
            "admission_plugins": sorted(info.admission_plugins),
        }
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_name(cache_file.name + ".tmp")
        temporary.write_text(json.dumps(cache, indent=1, sort_keys=True))
        os.replace(temporary, cache_file)
    return info


def manifest_version(artifacts: Artifacts, key: str) -> str | None:
    """The version MANIFEST.json (the lab's build record) gives the artifact's path, if any."""
    manifest = artifacts.root / "MANIFEST.json"
    try:
        entries = json.loads(manifest.read_text()).get("artifacts") or []
    except (OSError, ValueError, AttributeError):
        return None
    relative = artifacts.items[key].relative
    for entry in entries:
        if isinstance(entry, dict) and entry.get("path") == relative and entry.get("version"):
            return str(entry["version"])
    return None


def binary_version(artifacts: Artifacts, key: str, cache_dir: Path | None) -> Version:
    """What the artifact says its release is (`<binary> --version`, run here; cached by sha256).

    For binaries whose --help kubeproof does not read (etcd, flanneld print Go's single-dash
    usage). Where the binary prints no version, MANIFEST.json's entry for its path is used.
    """
    path = artifacts.path(key)
    sha = artifacts.content(key).sha256
    cache_file = cache_dir / "binary-version.json" if cache_dir else None
    cache: dict[str, str] = {}
    if cache_file and cache_file.is_file():
        try:
            cache = {str(k): str(v) for k, v in json.loads(cache_file.read_text()).items()}
        except (ValueError, AttributeError):
            cache = {}
    if sha and sha in cache and (cached := release_of(cache[sha])) is not None:
        return cached
    try:
        run = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60, check=False)
        printed = run.stdout + run.stderr
    except OSError as exc:
        printed = f"({exc.strerror})"
    version = release_of(printed)
    source = f"{path} --version: {printed.strip()[:120]!r}"
    if version is None:
        recorded = manifest_version(artifacts, key)
        version = release_of(recorded)
        source += f"; MANIFEST.json: {recorded!r}"
    if version is None:
        raise BootstrapError(f"cannot tell the release of {key}: {source}")
    if cache_file and sha:
        cache[sha] = str(version)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_name(cache_file.name + ".tmp")
        temporary.write_text(json.dumps(cache, indent=1, sort_keys=True))
        os.replace(temporary, cache_file)
    return version
