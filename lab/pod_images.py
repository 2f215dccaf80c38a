"""Offline pod images: kubeproof/pause:3.10 and kubeproof/testbox:1, built without any registry.

Both are `docker import`ed from tiny root filesystems, `docker save`d into <artifacts>/images/, and
loaded into each node's docker by streaming the tarball over SSH to `docker load`, as an
air-gapped site would.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko

from kubeproof.lab.dockercli import Docker
from kubeproof.lab.errors import LabError
from kubeproof.lab.progress import Progress, run_logged
from kubeproof.lab.settings import LabSettings, NodeSpec, build_dir
from kubeproof.lab.ssh_material import connect, remote_command, run_remote

PAUSE_SOURCE_DIR = Path(__file__).resolve().parent / "images" / "pause"
BUSYBOX_PATH = Path("/bin/busybox")
BUSYBOX_PACKAGE = "busybox-static"

# busybox applets linked into the test image: what smoke tests and humans reach for.
TESTBOX_APPLETS: tuple[str, ...] = (
    "sh",
    "ash",
    "ping",
    "ping6",
    "arping",
    "nc",
    "httpd",
    "wget",
    "nslookup",
    "ip",
    "ifconfig",
    "route",
    "netstat",
    "traceroute",
    "hostname",
    "cat",
    "echo",
    "printf",
    "ls",
    "mkdir",
    "rm",
    "touch",
    "tee",
    "head",
    "tail",
    "cut",
    "wc",
    "grep",
    "sed",
    "awk",
    "env",
    "id",
    "whoami",
    "ps",
    "kill",
    "sleep",
    "timeout",
    "date",
    "uname",
    "true",
    "false",
    "test",
    "df",
    "mount",
)
# The test image serves a page naming the container's hostname on :8080 (Service smoke tests can
# tell which pod answered).
TESTBOX_COMMAND = (
    "/bin/sh",
    "-c",
    "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www",
)


@dataclass(frozen=True)
class PodImage:
    reference: str  # repository:tag inside the nodes' docker
    version: str
    tarball_name: str  # under <artifacts>/images/


PAUSE_IMAGE = PodImage("kubeproof/pause:3.10", "3.10", "pause.tar")
TEST_IMAGE = PodImage("kubeproof/testbox:1", "1", "testbox.tar")
POD_IMAGES: tuple[PodImage, ...] = (PAUSE_IMAGE, TEST_IMAGE)


def go_environment(cgo: bool) -> dict[str, str]:
    """The environment of every Go build of the lab: pinned toolchain, no VCS stamping."""
    environment = dict(os.environ)
    environment.update(
        {
            "CGO_ENABLED": "1" if cgo else "0",
            # Never let go download another toolchain: the lock records which one built what.
            "GOTOOLCHAIN": "local",
            "GOFLAGS": "-buildvcs=false",
            "GOAMD64": "v1",
        }
    )
    go_bin = "/usr/local/go/bin"
    if go_bin not in environment.get("PATH", "").split(":") and Path(go_bin, "go").exists():
        environment["PATH"] = go_bin + ":" + environment.get("PATH", "")
    return environment


def find_go() -> str:
    found = shutil.which("go") or (str(Path("/usr/local/go/bin/go")) if Path("/usr/local/go/bin/go").exists() else None)
    if found is None:
        raise LabError("go not found (PATH or /usr/local/go/bin/go): install Go 1.26.8 into /usr/local/go")
    return found


def build_pause_binary(progress: Progress) -> Path:
    """The static pause binary, built from lab/images/pause/ with CGO_ENABLED=0."""
    work = build_dir() / "pause"
    work.mkdir(parents=True, exist_ok=True)
    for source in ("go.mod", "pause.go"):
        shutil.copyfile(PAUSE_SOURCE_DIR / source, work / source)
    output = work / "pause"
    run_logged(
        [find_go(), "build", "-trimpath", "-ldflags", "-s -w", "-o", str(output), "."],
        cwd=work,
        env=go_environment(cgo=False),
        log_path=work / "build.log",
        progress=progress,
        label="go build pause",
    )
    return output


def _tar_add_file(archive: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    archive.addfile(info, io.BytesIO(data))


def _tar_add_dir(archive: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.mtime = 0
    archive.addfile(info)


def _tar_add_symlink(archive: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    info.mtime = 0
    archive.addfile(info)


def pause_rootfs(pause_binary: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        _tar_add_file(archive, "pause", pause_binary.read_bytes(), 0o755)
    return buffer.getvalue()


def testbox_rootfs(busybox: Path = BUSYBOX_PATH) -> bytes:
    if not busybox.is_file():
        raise LabError(f"{busybox} not found: install the busybox-static package (apt-get install busybox-static)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for directory in ("bin", "etc", "www", "root"):
            _tar_add_dir(archive, directory)
        _tar_add_dir(archive, "tmp", 0o1777)
        _tar_add_file(archive, "bin/busybox", busybox.read_bytes(), 0o755)
        for applet in TESTBOX_APPLETS:
            _tar_add_symlink(archive, f"bin/{applet}", "busybox")
        _tar_add_file(archive, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
        _tar_add_file(archive, "etc/group", b"root:x:0:\n", 0o644)
    return buffer.getvalue()


def _import(docker: Docker, rootfs: bytes, reference: str, changes: Sequence[str]) -> None:
    argv = [docker.executable, "import"]
    for change in changes:
        argv += ["--change", change]
    argv += ["-", reference]
    result = subprocess.run(argv, input=rootfs, capture_output=True, check=False)
    if result.returncode != 0:
        raise LabError(f"docker import {reference} failed: {result.stderr.decode(errors='replace').strip()}")


def ensure_pod_image_tarballs(docker: Docker, images_dir: Path, progress: Progress) -> dict[str, Path]:
    """<artifacts>/images/{pause,testbox}.tar; built (import + save) only when missing."""
    images_dir.mkdir(parents=True, exist_ok=True)
    tarballs: dict[str, Path] = {}
    for image in POD_IMAGES:
        tarball = images_dir / image.tarball_name
        tarballs[image.reference] = tarball
        if tarball.is_file():
            continue
        with progress.step(f"build pod image {image.reference}"):
            if image is PAUSE_IMAGE:
                _import(docker, pause_rootfs(build_pause_binary(progress)), image.reference, ['ENTRYPOINT ["/pause"]'])
            else:
                _import(docker, testbox_rootfs(), image.reference, ["CMD " + json.dumps(list(TESTBOX_COMMAND))])
            partial = tarball.with_suffix(".tar.partial")
            docker.run(["save", "-o", str(partial), image.reference])
            partial.rename(tarball)
    return tarballs


def image_id_in_tarball(tarball: Path) -> str:
    """The image ID (sha256:...) recorded in a `docker save` tarball (legacy or OCI layout)."""
    with tarfile.open(tarball) as archive:
        member = archive.extractfile("manifest.json")
        if member is None:
            raise LabError(f"{tarball} has no manifest.json: not a docker save tarball")
        manifest = json.load(member)
    config = str(manifest[0]["Config"])
    digest = config.rsplit("/", 1)[-1].removesuffix(".json")
    return "sha256:" + digest


def load_into_node(client: paramiko.SSHClient, image: PodImage, tarball: Path, *, sudo: bool = False) -> bool:
    """Stream tarball into the node's `docker load` (under `sudo -n` when sudo) unless already there."""
    wanted = image_id_in_tarball(tarball)
    present = run_remote(client, ["docker", "image", "inspect", "--format", "{{.Id}}", image.reference], sudo=sudo)
    if present.exit_status == 0 and present.stdout.strip() == wanted:
        return False
    transport = client.get_transport()
    if transport is None:
        raise LabError("SSH transport closed while loading images")
    channel = transport.open_session()
    channel.exec_command(remote_command(["docker", "load"], sudo=sudo))
    with tarball.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            channel.sendall(chunk)
    channel.shutdown_write()
    # docker load prints a line or two; paramiko buffers them while the tarball is being sent.
    channel.makefile("rb").read()
    error_text = channel.makefile_stderr("rb").read()
    status = channel.recv_exit_status()
    channel.close()
    if status != 0:
        raise LabError(f"docker load of {image.reference} failed: {error_text.decode(errors='replace').strip()}")
    return True


def load_pod_images(
    settings: LabSettings, nodes: Sequence[NodeSpec], tarballs: dict[str, Path], progress: Progress
) -> None:
    for node in nodes:
        client = connect(node, settings)
        try:
            for image in POD_IMAGES:
                loaded = load_into_node(client, image, tarballs[image.reference], sudo=settings.sudo)
                progress.say(f"  {node.name}: {image.reference} {'loaded' if loaded else 'already present'}")
        finally:
            client.close()
