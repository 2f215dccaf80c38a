"""The node image: a Debian bookworm rootfs made by debootstrap, customized, `docker import`ed.

Two caches, both under $KUBEPROOF_CACHE:
* the debootstrap rootfs tarball, keyed by what debootstrap gets (suite, variant, packages): the
  network-bound part, rebuilt only when the package list changes;
* the docker image `kubeproof-node:<recipe hash>`, keyed by the whole recipe (packages, the files
  under lab/node/files, lab/node/customize.sh, the import settings): rebuilt when any of it changes,
  from the cached rootfs, in about half a minute.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kubeproof.lab.dockercli import Docker
from kubeproof.lab.errors import LabError
from kubeproof.lab.progress import Progress, run_logged
from kubeproof.lab.settings import RECIPE_LABEL, build_dir, cache_dir

NODE_IMAGE_REPOSITORY = "kubeproof-node"
DEBIAN_SUITE = "bookworm"
DEBOOTSTRAP_VARIANT = "minbase"
# No mirror is written here: it comes from `lab up --mirror URL`, $KUBEPROOF_DEBIAN_MIRROR or this
# machine's own apt configuration (debian_mirror), in that order.
MIRROR_ENVIRONMENT_VARIABLE = "KUBEPROOF_DEBIAN_MIRROR"
APT_DIR = Path("/etc/apt")

# What a node needs: systemd as init, sshd, docker, the tools the guide's steps and the checks use
# (iproute2, iptables, conntrack, openssl for `openssl pkey -pubout`, curl, faketime for skewed-clock
# tests) and what kubelet/kube-proxy call (mount, nsenter from util-linux, ethtool, socat,
# conntrack, ipset, nftables).
NODE_PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "iproute2",
    "iptables",
    "nftables",
    "ipset",
    "conntrack",
    "docker.io",
    "ca-certificates",
    "kmod",
    "procps",
    "iputils-ping",
    "netcat-openbsd",
    "socat",
    "ethtool",
    "util-linux",
    "mount",
    "openssl",
    "curl",
    "faketime",
    "less",
    "net-tools",
    "psmisc",
    "jq",
    "e2fsprogs",
    "xz-utils",
    "gzip",
    "tar",
    "bash",
    # The vagrant login (`lab up --login vagrant`): passwordless sudo for the user `vagrant`.
    "sudo",
)

_LAB_PACKAGE_DIR = Path(__file__).resolve().parent
NODE_FILES_DIR = _LAB_PACKAGE_DIR / "node" / "files"
CUSTOMIZE_SCRIPT = _LAB_PACKAGE_DIR / "node" / "customize.sh"
ENTRYPOINT_PATH = "/usr/local/sbin/kubeproof-entrypoint"

# `docker import --change` instructions; STOPSIGNAL is not accepted by import, so `lab up` passes
# --stop-signal SIGRTMIN+3 (systemd's "halt") at `docker run`.
IMPORT_CHANGES: tuple[str, ...] = (
    "ENV container=docker",
    f'ENTRYPOINT ["{ENTRYPOINT_PATH}"]',
    'CMD ["/sbin/init"]',
)

# Written beside the debootstrap target when debootstrap finished, so an interrupted run is redone.
_DEBOOTSTRAP_DONE_MARKER = "debootstrap-complete"


@dataclass(frozen=True)
class RecipeFile:
    """A file copied into the image: its path in the image, whether executable, its bytes."""

    image_path: str
    executable: bool
    content: bytes


def recipe_files(files_dir: Path = NODE_FILES_DIR) -> list[RecipeFile]:
    found: list[RecipeFile] = []
    for path in sorted(files_dir.rglob("*")):
        if path.is_file():
            found.append(
                RecipeFile(
                    image_path="/" + path.relative_to(files_dir).as_posix(),
                    # Git keeps only the executable bit, so that is all the recipe keys on.
                    executable=os.access(path, os.X_OK),
                    content=path.read_bytes(),
                )
            )
    return found


def _digest12(document: object) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:12]


def rootfs_key(
    packages: tuple[str, ...] = NODE_PACKAGES,
    suite: str = DEBIAN_SUITE,
    variant: str = DEBOOTSTRAP_VARIANT,
) -> str:
    """Key of the debootstrap tarball: only what debootstrap receives (the mirror is not part)."""
    return _digest12({"suite": suite, "variant": variant, "packages": sorted(set(packages))})


def recipe_hash(
    packages: tuple[str, ...] = NODE_PACKAGES,
    files: list[RecipeFile] | None = None,
    customize_script: bytes | None = None,
    import_changes: tuple[str, ...] = IMPORT_CHANGES,
) -> str:
    """Hash of the whole node recipe; the image tag is `kubeproof-node:<this>`."""
    chosen_files = recipe_files() if files is None else files
    script = CUSTOMIZE_SCRIPT.read_bytes() if customize_script is None else customize_script
    return _digest12(
        {
            "rootfs": rootfs_key(packages),
            "files": [
                {
                    "path": item.image_path,
                    "executable": item.executable,
                    "sha256": hashlib.sha256(item.content).hexdigest(),
                }
                for item in chosen_files
            ],
            "customize": hashlib.sha256(script).hexdigest(),
            "import": list(import_changes),
        }
    )


def node_image_tag() -> str:
    return f"{NODE_IMAGE_REPOSITORY}:{recipe_hash()}"


def apt_source_files(apt_dir: Path = APT_DIR) -> list[Path]:
    """The apt source files in the order apt reads them: sources.list, then sources.list.d/*."""
    parts = apt_dir / "sources.list.d"
    found = [apt_dir / "sources.list"]
    found += sorted(path for path in parts.glob("*") if path.suffix in (".list", ".sources"))
    return found


def debian_mirror(override: str | None = None, sources: list[Path] | None = None) -> str:
    """The Debian mirror debootstrap uses: override (`--mirror`), $KUBEPROOF_DEBIAN_MIRROR, or apt's.

    apt's: /etc/apt/sources.list and sources.list.d/*.list|*.sources, one-line and deb822 formats;
    the first `deb` source that carries the suite itself (not -security or -updates). None found:
    LabError saying how to give one.
    """
    for given in (override, os.environ.get(MIRROR_ENVIRONMENT_VARIABLE)):
        if given and given.strip():
            return given.strip().rstrip("/")
    chosen = apt_source_files() if sources is None else sources
    for source in chosen:
        try:
            text = source.read_text(errors="replace")
        except OSError:
            continue
        found = mirror_in_sources_text(text, deb822=source.suffix == ".sources")
        if found:
            return found
    read = ", ".join(str(path) for path in chosen) or "no apt source files"
    raise LabError(
        f"no Debian mirror for {DEBIAN_SUITE} found in this machine's apt configuration ({read}):"
        f" give one with `kubeproof lab up --mirror URL` or ${MIRROR_ENVIRONMENT_VARIABLE}=URL"
    )


def mirror_in_sources_text(text: str, *, deb822: bool) -> str | None:
    """The first mirror URI for DEBIAN_SUITE in one apt source file (one-line or deb822 format)."""
    return _mirror_in_deb822(text) if deb822 else _mirror_in_one_line(text)


def _mirror_in_one_line(text: str) -> str | None:
    # deb [options] URI suite components...
    for raw_line in text.splitlines():
        words = raw_line.split("#", 1)[0].split()
        if words[:1] != ["deb"]:
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2 and words[1] == DEBIAN_SUITE:
            return words[0].rstrip("/")
    return None


def _mirror_in_deb822(text: str) -> str | None:
    # Stanzas separated by blank lines, "Field: value"; continuation lines (indented) and comments skipped.
    for stanza in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        for raw_line in stanza.splitlines():
            if raw_line.startswith("#") or ":" not in raw_line or raw_line[:1].isspace():
                continue
            key, value = raw_line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        types = fields.get("types", "").split()
        suites = fields.get("suites", "").split()
        uris = fields.get("uris", "").split()
        if "deb" in types and DEBIAN_SUITE in suites and uris:
            return uris[0].rstrip("/")
    return None


def rootfs_tarball_path(key: str | None = None) -> Path:
    chosen = key or rootfs_key()
    return cache_dir() / "rootfs" / f"debootstrap-{DEBIAN_SUITE}-{DEBOOTSTRAP_VARIANT}-{chosen}.tar"


def ensure_rootfs_tarball(progress: Progress, mirror: str | None = None) -> Path:
    """The debootstrap rootfs as a tarball, built once per package list (mirror: see debian_mirror)."""
    key = rootfs_key()
    tarball = rootfs_tarball_path(key)
    if tarball.is_file():
        return tarball
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise LabError("debootstrap not found on PATH: install it (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise LabError("building the node rootfs needs root (debootstrap, chroot): run as root")
    work_dir = build_dir() / "rootfs" / key
    target = work_dir / "target"
    if not (work_dir / _DEBOOTSTRAP_DONE_MARKER).is_file():
        chosen_mirror = debian_mirror(mirror)
        shutil.rmtree(work_dir, ignore_errors=True)
        work_dir.mkdir(parents=True)
        with progress.step(f"debootstrap {DEBIAN_SUITE} ({len(NODE_PACKAGES)} packages) from {chosen_mirror}"):
            run_logged(
                [
                    debootstrap,
                    f"--variant={DEBOOTSTRAP_VARIANT}",
                    "--include=" + ",".join(NODE_PACKAGES),
                    DEBIAN_SUITE,
                    str(target),
                    chosen_mirror,
                ],
                log_path=work_dir / "debootstrap.log",
                progress=progress,
                label="debootstrap",
            )
        (work_dir / _DEBOOTSTRAP_DONE_MARKER).write_text("ok\n")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".tar.partial")
    with progress.step(f"pack rootfs into {tarball}"):
        run_logged(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(target), "-cf", str(partial), "."],
            log_path=work_dir / "tar.log",
            progress=progress,
            label="tar rootfs",
        )
        partial.rename(tarball)
    # The tarball is the cache; the unpacked tree (~600 MB) is not needed any more.
    shutil.rmtree(work_dir, ignore_errors=True)
    return tarball


def ensure_node_image(docker: Docker, progress: Progress, mirror: str | None = None) -> str:
    """`kubeproof-node:<recipe hash>`, built only when no image with that tag exists."""
    tag = node_image_tag()
    if docker.image_exists(tag):
        return tag
    tarball = ensure_rootfs_tarball(progress, mirror)
    with progress.step(f"build node image {tag}"):
        build_root = build_dir() / "node-image"
        build_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=build_root, prefix="rootfs-") as temp:
            tree = Path(temp) / "tree"
            tree.mkdir()
            log_path = build_root / "build.log"
            run_logged(
                ["tar", "--numeric-owner", "--xattrs", "-C", str(tree), "-xpf", str(tarball)],
                log_path=log_path,
                progress=progress,
                label="unpack rootfs",
            )
            _install_recipe_files(tree)
            shutil.copyfile(CUSTOMIZE_SCRIPT, tree / "kubeproof-customize.sh")
            run_logged(
                ["chroot", str(tree), "/bin/sh", "/kubeproof-customize.sh"],
                log_path=log_path,
                progress=progress,
                label="customize rootfs",
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
            )
            (tree / "kubeproof-customize.sh").unlink()
            _docker_import(docker, tree, tag, log_path, progress)
    prune_old_node_images(docker, keep=tag, progress=progress)
    return tag


def prune_old_node_images(docker: Docker, *, keep: str, progress: Progress) -> None:
    """Remove node images of older recipes (~450 MB each) that no container uses any more."""
    for reference in docker.lines(["images", NODE_IMAGE_REPOSITORY, "--format", "{{.Repository}}:{{.Tag}}"]):
        if reference == keep:
            continue
        # docker refuses to remove an image a container (e.g. a running lab node) still uses: keep those.
        if docker.run(["rmi", reference], check=False).returncode == 0:
            progress.say(f"  removed the outdated node image {reference}")


def _install_recipe_files(tree: Path) -> None:
    for item in recipe_files():
        destination = tree / item.image_path.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(item.content)
        destination.chmod(0o755 if item.executable else 0o644)


def _docker_import(docker: Docker, tree: Path, tag: str, log_path: Path, progress: Progress) -> None:
    import_argv = [docker.executable, "import"]
    for change in (*IMPORT_CHANGES, f"LABEL {RECIPE_LABEL}={tag.split(':', 1)[1]}"):
        import_argv += ["--change", change]
    import_argv += ["-", tag]
    with log_path.open("ab") as log_file:
        tar_process = subprocess.Popen(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(tree), "-c", "."],
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
        assert tar_process.stdout is not None
        import_result = subprocess.run(
            import_argv, stdin=tar_process.stdout, stdout=log_file, stderr=log_file, check=False
        )
        tar_process.stdout.close()
        tar_returncode = tar_process.wait()
    if tar_returncode != 0 or import_result.returncode != 0:
        raise LabError(f"docker import of the node image failed; see {log_path}")
    progress.say(f"  imported {tag}")
