"""`kubeproof lab up | down | status | ssh NAME | artifacts | images`.

Errors a user can fix (docker absent or not running, an address clash, a missing tool) print one
line and exit with 2; no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import shutil
import sys
import termios
import tty
from collections.abc import Sequence
from pathlib import Path

import paramiko

from kubeproof.lab.artifacts import build_artifacts
from kubeproof.lab.dockercli import Docker
from kubeproof.lab.errors import LabError
from kubeproof.lab.labctl import down, existing_topology, status, up, with_lab_login
from kubeproof.lab.node_image import MIRROR_ENVIRONMENT_VARIABLE
from kubeproof.lab.pod_images import ensure_pod_image_tarballs, load_pod_images
from kubeproof.lab.progress import Progress
from kubeproof.lab.settings import (
    DEFAULT_LAB_NAME,
    LAB_NODES,
    LOGINS,
    ROOT_LOGIN,
    VAGRANT_LOGIN,
    LabSettings,
    artifacts_dir,
)
from kubeproof.lab.ssh_material import connect
from kubeproof.lab.stacks import DEFAULT_STACK, STACKS, stack_by_name

EXIT_USAGE_OR_FIXABLE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubeproof lab",
        description="The kubeproof lab: the guide's three hosts as node containers reached by SSH.",
    )
    parser.add_argument(
        "--name", default=DEFAULT_LAB_NAME, help="lab name, the value of the io.kubeproof.lab label (default: lab)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where cluster.yaml, ssh_config, the key and known_hosts go (default: $KUBEPROOF_STATE/lab,"
        " KUBEPROOF_STATE defaulting to ./.kubeproof)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up_parser = commands.add_parser("up", help="create or reuse the lab (idempotent) and write cluster.yaml")
    up_parser.add_argument(
        "--login",
        choices=LOGINS,
        default=None,
        help=f"who logs in over SSH: {ROOT_LOGIN} (a new lab's default) or {VAGRANT_LOGIN} (a Vagrant-shaped box:"
        " root cannot log in, `vagrant` has passwordless sudo, ssh_config as `vagrant ssh-config` prints it)."
        " An existing lab keeps its login; another one needs `lab down` first",
    )
    up_parser.add_argument(
        "--mirror",
        default=None,
        metavar="URL",
        help=f"Debian mirror for building the node rootfs (default: ${MIRROR_ENVIRONMENT_VARIABLE},"
        " else the mirror of this machine's apt sources)",
    )
    up_parser.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="workers: the guide's node01 and node02, and more as node03, node04, ... (default 2;"
        " a lab that has more than N loses its extra workers' containers)",
    )
    up_parser.add_argument(
        "--scale",
        type=int,
        default=0,
        metavar="N",
        help="instead of the guide's lab, N light hosts (systemd and sshd, no docker) on a network of their own,"
        " for the host-level groups at scale; give it a --name of its own (e.g. --name scale)",
    )
    up_parser.add_argument(
        "--stack",
        default=DEFAULT_STACK,
        metavar="NAME",
        help=f"the releases the lab's cluster file names and the installer deploys: {', '.join(STACKS)}"
        f" (default {DEFAULT_STACK}; docs/STACKS.md); built from their Go modules when missing. A lab"
        " keeps its stack: `lab down` first to change it",
    )
    commands.add_parser("down", help="remove everything the lab created (selected by label)")
    commands.add_parser("status", help="each node's state, address and whether SSH answers")
    ssh_parser = commands.add_parser("ssh", help="open a shell on a node (OpenSSH with the lab's ssh_config)")
    ssh_parser.add_argument("node", help=", ".join(node.name for node in LAB_NODES) + " (and node03, ... when added)")
    ssh_parser.add_argument(
        "remote_command", nargs=argparse.REMAINDER, help="optional command to run instead of a shell"
    )
    artifacts_parser = commands.add_parser(
        "artifacts", help="build or verify a stack's artifacts under $KUBEPROOF_CACHE/artifacts"
    )
    artifacts_parser.add_argument(
        "--update-lock",
        action="store_true",
        help="write the measured sha256 values into lab/artifacts.lock.json (the stack's entries only)",
    )
    artifacts_parser.add_argument(
        "--stack",
        default=DEFAULT_STACK,
        metavar="NAME",
        help=f"which stack to build: {', '.join(STACKS)} (default {DEFAULT_STACK}); a stack other than the"
        " default lives under $KUBEPROOF_CACHE/artifacts/stacks/NAME",
    )
    commands.add_parser("images", help="build the offline pod images if missing and load them into every node")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    progress = Progress()
    try:
        command = arguments.command
        settings = LabSettings.create(
            arguments.name,
            arguments.state_dir,
            getattr(arguments, "login", None),
            workers=getattr(arguments, "workers", 2),
            scale=getattr(arguments, "scale", 0),
        )
        if command == "up":
            up(settings, progress, mirror=arguments.mirror, stack=stack_by_name(arguments.stack))
            return 0
        if command == "down":
            down(settings, progress)
            return 0
        if command == "status":
            return status(settings, progress)
        if command == "ssh":
            return open_ssh(settings, arguments.node, list(arguments.remote_command))
        if command == "artifacts":
            stack = stack_by_name(arguments.stack)
            # Docker builds the pod images; another stack copies the default stack's when they exist.
            docker = Docker.connect() if stack.default else None
            build_artifacts(docker, progress, update_lock=arguments.update_lock, stack=stack)
            return 0
        if command == "images":
            docker = Docker.connect()
            tarballs = ensure_pod_image_tarballs(docker, artifacts_dir() / "images", progress)
            require_lab_up(settings)
            settings = with_lab_login(docker, existing_topology(docker, settings))
            load_pod_images(settings, settings.nodes, tarballs, progress)
            return 0
        parser.error(f"unknown command {command}")
    except LabError as error:
        print(f"lab: error: {error.message}", file=sys.stderr)
        return EXIT_USAGE_OR_FIXABLE
    except KeyboardInterrupt:
        print("lab: interrupted; `kubeproof lab down` removes whatever was created", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_USAGE_OR_FIXABLE


def require_lab_up(settings: LabSettings) -> None:
    if not settings.ssh_config_file.is_file() or not settings.known_hosts_file.is_file():
        raise LabError(f"the lab is not up (no {settings.ssh_config_file}): run `kubeproof lab up`")


def open_ssh(settings: LabSettings, node_name: str, remote_command: Sequence[str]) -> int:
    if node_name not in {node.name for node in settings.nodes}:  # a worker added with `up --workers`?
        with contextlib.suppress(LabError):  # no docker here: the guide's names are all there is to say
            settings = existing_topology(Docker.connect(), settings)
    node = settings.node(node_name)
    require_lab_up(settings)
    if remote_command[:1] == ["--"]:
        remote_command = remote_command[1:]
    ssh_binary = shutil.which("ssh")
    if ssh_binary is not None:
        sys.stdout.flush()
        # Replace this process: the user's terminal talks to OpenSSH directly.
        os.execv(ssh_binary, [ssh_binary, "-F", str(settings.ssh_config_file), node.name, *remote_command])  # noqa: S606 -- argv list, no shell
    return paramiko_session(settings, node_name, remote_command)


def paramiko_session(settings: LabSettings, node_name: str, remote_command: Sequence[str]) -> int:
    """Fallback without an ssh binary: a paramiko session (interactive shell when on a terminal)."""
    import shlex

    client = connect(settings.node(node_name), with_lab_login(Docker.connect(), settings))
    try:
        transport = client.get_transport()
        if transport is None:
            raise LabError(f"SSH to {node_name} closed unexpectedly")
        channel = transport.open_session()
        interactive = sys.stdin.isatty()
        if interactive:
            size = shutil.get_terminal_size()
            channel.get_pty(term=os.environ.get("TERM", "xterm"), width=size.columns, height=size.lines)
        if remote_command:
            channel.exec_command(shlex.join(remote_command))
        else:
            channel.invoke_shell()
        _pump(channel, interactive)
        return channel.recv_exit_status()
    finally:
        client.close()


def _pump(channel: paramiko.Channel, interactive: bool) -> None:
    stdin_fd = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin_fd) if interactive else None
    try:
        if interactive:
            tty.setraw(stdin_fd)
        stdin_open = True
        while True:
            readable = [channel, stdin_fd] if stdin_open else [channel]
            ready, _, _ = select.select(readable, [], [])
            if channel in ready:
                try:
                    data = channel.recv(32768)
                except TimeoutError:
                    continue
                if not data:
                    break
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
            if stdin_fd in ready:
                chunk = os.read(stdin_fd, 1024)
                if not chunk:
                    stdin_open = False
                    channel.shutdown_write()
                else:
                    channel.sendall(chunk)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
