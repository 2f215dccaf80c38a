"""A thin wrapper around the docker CLI (argv lists, never a shell)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from kubeproof.lab.errors import LabError

DOCKER_START_HINT = (
    "start it (e.g. `systemctl start docker`, or `dockerd --data-root /var/lib/docker"
    " >/var/log/dockerd.log 2>&1 &`) and retry"
)


class DockerError(LabError):
    """A docker command failed; the message carries the command and docker's own first line."""


class Docker:
    """Runs docker commands; `connect()` first checks the CLI exists and the daemon answers."""

    def __init__(self, executable: str) -> None:
        self.executable = executable

    @classmethod
    def connect(cls) -> Docker:
        executable = shutil.which("docker")
        if executable is None:
            raise LabError("docker not found on PATH: install it (apt-get install docker.io) and start dockerd")
        docker = cls(executable)
        try:
            result = subprocess.run(
                [executable, "version", "--format", "{{.Server.Version}}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"the Docker daemon does not answer within 30 s: {DOCKER_START_HINT}") from exc
        if result.returncode != 0 or not result.stdout.strip():
            reason = first_line(result.stderr) or "no answer"
            raise LabError(f"cannot reach the Docker daemon ({reason}): {DOCKER_START_HINT}")
        return docker

    def run(
        self,
        args: Sequence[str],
        *,
        input_text: str | None = None,
        check: bool = True,
        timeout: float | None = 600,
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.executable, *args]
        try:
            result = subprocess.run(
                argv, input=input_text, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise DockerError(f"`docker {' '.join(args[:3])}` did not finish within {timeout} s") from exc
        if check and result.returncode != 0:
            raise DockerError(f"`docker {' '.join(args[:3])}` failed: {first_line(result.stderr) or result.returncode}")
        return result

    def output(self, args: Sequence[str], *, timeout: float | None = 600) -> str:
        return self.run(args, timeout=timeout).stdout

    def lines(self, args: Sequence[str]) -> list[str]:
        return [line for line in self.output(args).splitlines() if line.strip()]

    def inspect(self, kind: str, names: Sequence[str]) -> list[dict[str, Any]]:
        """`docker <kind> inspect` of names; missing objects are simply absent from the result."""
        if not names:
            return []
        result = self.run([kind, "inspect", *names], check=False)
        if not result.stdout.strip():
            return []
        parsed = json.loads(result.stdout)
        return [item for item in parsed if isinstance(item, dict)]

    def image_exists(self, reference: str) -> bool:
        return self.run(["image", "inspect", "--format", "{{.Id}}", reference], check=False).returncode == 0

    def image_id(self, reference: str) -> str | None:
        result = self.run(["image", "inspect", "--format", "{{.Id}}", reference], check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def exec(
        self, container: str, argv: Sequence[str], *, input_text: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        # `docker exec` is the lab's trusted channel (host keys, authorized_keys): no network involved.
        interactive = ["-i"] if input_text is not None else []
        return self.run(["exec", *interactive, container, *argv], input_text=input_text, check=check)


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
