"""`lab up`, `lab down`, `lab status`: the node containers, their network and volumes, SSH material.

Every Docker object is created with the label io.kubeproof.lab=<lab name> in the same call that
creates it, so an interrupted `up` leaves only labelled objects, and `down` removes exactly those.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import paramiko

from kubeproof.inventory import load_cluster_file
from kubeproof.lab.artifacts import build_artifacts, missing_artifacts
from kubeproof.lab.cluster_file import ClusterFileInputs, render_cluster_file
from kubeproof.lab.dockercli import Docker
from kubeproof.lab.errors import LabError
from kubeproof.lab.node_image import ensure_node_image, node_image_tag
from kubeproof.lab.pod_images import ensure_pod_image_tarballs, load_pod_images
from kubeproof.lab.progress import Progress
from kubeproof.lab.recipes import stack_artifacts_dir
from kubeproof.lab.settings import (
    LAB_LABEL,
    LOGIN_LABEL,
    NODE_LABEL,
    ROOT_LOGIN,
    STATE_DIR_LABEL,
    LabSettings,
    NodeSpec,
    artifacts_dir,
)
from kubeproof.lab.ssh_material import (
    HOST_PUBLIC_KEY_FILES,
    HostKey,
    connect,
    ensure_keypair,
    render_known_hosts,
    render_ssh_config,
    render_sudoers,
    render_vagrant_ssh_config,
    run_remote,
    write_public_file,
)
from kubeproof.lab.stacks import Stack, default_stack

# Node containers run without --privileged (it fails where CAP_SYS_RESOURCE is outside the
# bounding set): every capability Docker knows except SYS_RESOURCE and SYS_TIME. SYS_TIME stays out
# on purpose: nodes share the machine's kernel clock, so no node may ever set it.
NODE_CAPABILITY_ARGS: tuple[str, ...] = ("--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--cap-drop", "SYS_TIME")
NODE_SECURITY_ARGS: tuple[str, ...] = (
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    # /proc/sys writable, so the installer's sysctls (ENV-06, ip_forward) work as on a VM.
    "--security-opt",
    "systempaths=unconfined",
)
BOOT_TIMEOUT_SECONDS = 120.0
SSH_READY_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class NodeState:
    name: str
    state: str  # running, exited, created, ... or "absent"
    address: str | None
    image: str | None


def node_run_args(settings: LabSettings, node: NodeSpec, image: str) -> list[str]:
    """`docker run` arguments for one node (argv list; no shell involved)."""
    return [
        "run",
        "--detach",
        # A terminal gives the node a /dev/console, which the entrypoint links /dev/kmsg to: kubelet
        # refuses to start without /dev/kmsg, and the machine's real one is not handed to nodes.
        "--tty",
        "--name",
        node.name,
        "--hostname",
        node.name,
        "--network",
        settings.network_name,
        "--ip",
        node.address,
        "--label",
        f"{LAB_LABEL}={settings.name}",
        "--label",
        f"{NODE_LABEL}={node.name}",
        "--label",
        f"{LOGIN_LABEL}={settings.ssh_user}",
        *NODE_CAPABILITY_ARGS,
        *NODE_SECURITY_ARGS,
        # Each node its own cgroup root (two kubelets must not fight over /kubepods).
        "--cgroupns",
        "private",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/run/lock",
        # systemd halts cleanly on SIGRTMIN+3 (docker import cannot record STOPSIGNAL).
        "--stop-signal",
        "SIGRTMIN+3",
        *(_light_args() if settings.light else _docker_volume_args(settings, node)),
        image,
    ]


def _docker_volume_args(settings: LabSettings, node: NodeSpec) -> list[str]:
    # Docker inside a node on the container's overlay falls back to vfs; a volume gives overlay2.
    return ["--volume", f"{settings.volume_name(node)}:/var/lib/docker"]


# A scale lab's hosts run no docker: a unit file that is /dev/null is masked (systemd's rule), so
# neither dockerd nor containerd starts, and fifty hosts cost what fifty systemd+sshd do.
MASKED_IN_LIGHT_HOSTS = ("docker.service", "docker.socket", "containerd.service")


def _light_args() -> list[str]:
    args = []
    for unit in MASKED_IN_LIGHT_HOSTS:
        args += ["--mount", f"type=bind,source=/dev/null,target=/etc/systemd/system/{unit},readonly"]
    return args


# ----------------------------------------------------------------------------- conflicts


def _labels(item: dict[str, Any]) -> dict[str, str]:
    labels = item.get("Labels")
    if labels is None:
        labels = (item.get("Config") or {}).get("Labels")
    return dict(labels or {})


def _is_ours(item: dict[str, Any], settings: LabSettings) -> bool:
    return _labels(item).get(LAB_LABEL) == settings.name


def check_network_conflicts(docker: Docker, settings: LabSettings) -> dict[str, Any] | None:
    """Our network if it exists; LabError if something else holds the name or the address range."""
    ours: dict[str, Any] | None = None
    network_ids = docker.lines(["network", "ls", "--quiet", "--no-trunc"])
    for network in docker.inspect("network", network_ids):
        name = str(network.get("Name"))
        subnets = [
            str(config.get("Subnet"))
            for config in (network.get("IPAM") or {}).get("Config") or []
            if config.get("Subnet")
        ]
        if name == settings.network_name:
            if not _is_ours(network, settings):
                raise LabError(
                    f"a Docker network named {name} exists that lab {settings.name!r} did not create:"
                    f" remove it (docker network rm {name}) or use another lab name (--name)"
                )
            if str(settings.subnet) not in subnets:
                raise LabError(
                    f"the lab network {name} has subnets {subnets}, not {settings.subnet}:"
                    " run `kubeproof lab down` and `kubeproof lab up` again"
                )
            ours = network
            continue
        for subnet in subnets:
            try:
                overlaps = ipaddress.ip_network(subnet, strict=False).overlaps(settings.subnet)
            except (ValueError, TypeError):
                continue
            if overlaps:
                owner = _labels(network).get(LAB_LABEL)
                hint = f" (it belongs to kubeproof lab {owner!r}: `kubeproof lab down --name {owner}`)" if owner else ""
                raise LabError(
                    f"Docker network {name} uses {subnet}, which overlaps the lab's {settings.subnet}{hint}:"
                    f" remove it (docker network rm {name}) and retry"
                )
    if ours is None:
        check_host_addresses(settings.subnet)
    return ours


def check_host_addresses(subnet: ipaddress.IPv4Network) -> None:
    """An address of this machine inside the lab range would make the lab's addresses ambiguous."""
    ip = shutil.which("ip")
    if ip is None:
        return
    result = subprocess.run([ip, "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] != "inet":
            continue
        interface = ipaddress.ip_interface(fields[3])
        if interface.ip in subnet or interface.network.overlaps(subnet):
            raise LabError(
                f"this machine's interface {fields[1]} has address {fields[3]}, inside the lab's {subnet}:"
                " free that range (the guide's addresses need it) and retry"
            )


def check_container_conflicts(docker: Docker, settings: LabSettings) -> dict[str, dict[str, Any]]:
    """Existing node containers of this lab by name; LabError for a same-named foreign container."""
    existing: dict[str, dict[str, Any]] = {}
    for container in docker.inspect("container", [node.name for node in settings.nodes]):
        name = str(container.get("Name", "")).lstrip("/")
        if not _is_ours(container, settings):
            raise LabError(
                f"a container named {name} exists that lab {settings.name!r} did not create:"
                f" remove or rename it (docker rm -f {name}) and retry"
            )
        existing[name] = container
    return existing


# ----------------------------------------------------------------------------- login


def recorded_login(objects: Iterable[dict[str, Any]]) -> str | None:
    """The login an existing lab was made with (its network's or containers' label); None: no lab.

    A lab made before logins existed carries no label: it is a root lab.
    """
    found = list(objects)
    for item in found:
        login = _labels(item).get(LOGIN_LABEL)
        if login:
            return login
    return ROOT_LOGIN if found else None


def choose_login(settings: LabSettings, recorded: str | None) -> LabSettings:
    """settings with the login the lab gets: the recorded one, else the requested one, else root.

    Switching the login of an existing lab is refused (its users, sshd and files would be half of each).
    """
    requested = settings.login
    if recorded is not None and requested is not None and requested != recorded:
        name_option = "" if settings.name == "lab" else f" --name {settings.name}"
        raise LabError(
            f"lab {settings.name!r} exists with login {recorded!r}, not {requested!r}:"
            f" run `kubeproof lab{name_option} down` first, then `kubeproof lab{name_option} up --login {requested}`"
        )
    return replace(settings, login=recorded or requested or ROOT_LOGIN)


def with_lab_login(docker: Docker, settings: LabSettings) -> LabSettings:
    """settings with the login of the lab as it exists (root when there is no lab)."""
    network = docker.inspect("network", [settings.network_name])
    containers = [
        item for item in docker.inspect("container", [n.name for n in settings.nodes]) if _is_ours(item, settings)
    ]
    ours = [item for item in network if _is_ours(item, settings)] + containers
    return choose_login(replace(settings, login=None), recorded_login(ours))


# Constant script (no interpolation). $1 the user, $2 the sudoers file's text, $3 the sshd drop-in's
# text; the public key arrives on stdin. Idempotent: sshd is reloaded only when its drop-in changed.
_SETUP_SUDO_LOGIN = r"""set -eu
user="$1"
if ! id -u "$user" >/dev/null 2>&1; then
  useradd --create-home --user-group --shell /bin/bash "$user"
fi
# No password at all ('*', not locked '!': sshd refuses even keys for a locked account without PAM).
usermod --password '*' "$user"
home=$(getent passwd "$user" | cut -d: -f6)
install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
umask 077
cat > "$home/.ssh/authorized_keys.tmp"
chown "$user:$user" "$home/.ssh/authorized_keys.tmp"
mv -f "$home/.ssh/authorized_keys.tmp" "$home/.ssh/authorized_keys"
# sudo skips files in sudoers.d whose name has a dot: the .tmp is never read half-written.
printf '%s' "$2" > "/etc/sudoers.d/$user.tmp"
chmod 0440 "/etc/sudoers.d/$user.tmp"
visudo -cqf "/etc/sudoers.d/$user.tmp"
mv -f "/etc/sudoers.d/$user.tmp" "/etc/sudoers.d/$user"
# root has no key any more, and sshd refuses root anyway.
rm -f /root/.ssh/authorized_keys
dropin=/etc/ssh/sshd_config.d/00-kubeproof-login.conf
printf '%s' "$3" > "$dropin.tmp"
chmod 0644 "$dropin.tmp"
if cmp -s "$dropin.tmp" "$dropin"; then
  rm -f "$dropin.tmp"
else
  mv -f "$dropin.tmp" "$dropin"
  sshd -t
  systemctl reload ssh.service
fi
"""

# sshd takes the first value it reads for a keyword, and reads sshd_config.d/*.conf in lexical
# order: this file (00-...) comes before the image's kubeproof.conf (PermitRootLogin prohibit-password).
SUDO_LOGIN_SSHD_DROPIN = (
    "# Written by `kubeproof lab up --login vagrant`: root cannot log in over SSH (a Vagrant box).\n"
    "PermitRootLogin no\n"
)


def setup_login(docker: Docker, node: NodeSpec, settings: LabSettings, public_key: str) -> None:
    """The lab's login on node, through docker exec: root's authorized_keys, or the sudo user."""
    if not settings.sudo:
        install_authorized_key(docker, node, public_key)
        return
    user = settings.ssh_user
    docker.exec(
        node.name,
        ["sh", "-c", _SETUP_SUDO_LOGIN, "sh", user, render_sudoers(user), SUDO_LOGIN_SSHD_DROPIN],
        input_text=public_key.strip() + "\n",
    )


def render_lab_ssh_config(settings: LabSettings) -> str:
    """The lab's ssh_config: strict host keys for root; for the vagrant login, `vagrant ssh-config`'s form."""
    if settings.sudo:
        return render_vagrant_ssh_config(
            settings.nodes, user=settings.ssh_user, identity_file=settings.private_key_file
        )
    return render_ssh_config(
        settings.nodes,
        user=settings.ssh_user,
        identity_file=settings.private_key_file,
        known_hosts_file=settings.known_hosts_file,
    )


# ----------------------------------------------------------------------------- up


def check_same_stack(settings: LabSettings, stack: Stack) -> None:
    """An existing lab keeps the stack it was brought up with: its cluster file names its releases."""
    if not settings.cluster_file.is_file():
        return
    declared = load_cluster_file(settings.cluster_file).versions
    if (declared.kubernetes, declared.etcd) != (stack.kubernetes, stack.etcd):
        raise LabError(
            f"lab {settings.name!r} runs Kubernetes {declared.kubernetes} and etcd {declared.etcd}"
            f" ({settings.cluster_file}), not stack {stack.name!r} ({stack.kubernetes}, etcd {stack.etcd}):"
            f" `lab down` first to change stacks (etcd's data and the installed binaries are that stack's)"
        )


def up(settings: LabSettings, progress: Progress, *, mirror: str | None = None, stack: Stack | None = None) -> Path:
    """Create or reuse the lab; settings.login None keeps the login an existing lab has (root when new).

    mirror: the Debian mirror, needed only when the node rootfs is not cached (see debian_mirror).
    stack: the releases the cluster file names and the installer deploys (default: today's); a lab
    that was brought up with another stack is refused (its etcd data and binaries are that stack's).
    """
    started = time.monotonic()
    stack = stack or default_stack()
    docker = Docker.connect()
    with progress.step("node image"):
        image = ensure_node_image(docker, progress, mirror)
        progress.say(f"  {image}")
    with progress.step(f"artifacts of stack {stack.name}"):
        missing = missing_artifacts(stack=stack)
        if missing:
            progress.say(f"  missing: {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")
            # Docker builds the pod images of the default stack; another stack copies them
            build_artifacts(docker if stack.default else None, progress, stack=stack)
        else:
            progress.say(f"  present in {stack_artifacts_dir(stack)}")
    with progress.step("check for conflicts"):
        network = check_network_conflicts(docker, settings)
        containers = check_container_conflicts(docker, settings)
        if containers:
            check_same_stack(settings, stack)
        settings = choose_login(settings, recorded_login([*([network] if network else []), *containers.values()]))
        progress.say(f"  login: {settings.ssh_user}{' (sudo)' if settings.sudo else ''}")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with progress.step(f"network {settings.network_name} ({settings.subnet})"):
        if network is None:
            create_network(docker, settings)
        else:
            progress.say("  exists")
    nodes = settings.nodes
    with progress.step("node containers"):
        ensure_inotify_instances(len(nodes), progress)
        start_nodes(docker, settings, image, containers, progress)
        remove_extra_hosts(docker, settings, progress)
    with progress.step("wait for systemd and sshd in every node"):
        host_keys = {node.name: wait_for_host_keys(docker, node) for node in nodes}
    with progress.step(f"SSH material (key, {settings.ssh_user}'s login, known_hosts, ssh_config)"):
        public_key = ensure_keypair(settings)
        for node in nodes:
            setup_login(docker, node, settings, public_key)
        write_if_changed(
            settings.known_hosts_file,
            render_known_hosts(((node.name, node.address), host_keys[node.name]) for node in nodes),
        )
        write_if_changed(settings.ssh_config_file, render_lab_ssh_config(settings))
    with progress.step("SSH answers on every node (strict host keys)"):
        for node in nodes:
            wait_for_ssh(node, settings)
    if not settings.light:
        with progress.step("pod images into every node's docker (over SSH)"):
            tarballs = ensure_pod_image_tarballs(docker, artifacts_dir() / "images", progress)
            load_pod_images(settings, nodes, tarballs, progress)
    write_if_changed(
        settings.cluster_file,
        render_cluster_file(
            ClusterFileInputs(
                lab_name=settings.name,
                nodes=nodes,
                ssh_config=settings.ssh_config_file.name,
                artifacts_dir=stack_artifacts_dir(stack),
                ssh_user=settings.ssh_user,
                ssh_sudo=settings.sudo,
                stack=stack,
            )
        ),
    )
    progress.say(f"lab {settings.name!r} is up in {time.monotonic() - started:.1f} s")
    progress.say(f"cluster file: {settings.cluster_file}")
    first = settings.nodes[0].name
    name_option = "" if settings.name == "lab" else f" --name {settings.name}"
    progress.say(f"ssh: ssh -F {settings.ssh_config_file} {first}   (or: kubeproof lab{name_option} ssh {first})")
    return settings.cluster_file


def create_network(docker: Docker, settings: LabSettings) -> None:
    docker.run(
        [
            "network",
            "create",
            "--driver",
            "bridge",
            "--subnet",
            str(settings.subnet),
            "--gateway",
            str(settings.gateway),
            # Internal: no route out of the lab. The machine still reaches the nodes (the bridge holds
            # the gateway address) and the nodes reach each other, nothing else (the lab's network rule).
            "--internal",
            "--label",
            f"{LAB_LABEL}={settings.name}",
            "--label",
            f"{STATE_DIR_LABEL}={settings.state_dir}",
            "--label",
            f"{LOGIN_LABEL}={settings.ssh_user}",
            settings.network_name,
        ]
    )


def start_nodes(
    docker: Docker, settings: LabSettings, image: str, containers: dict[str, dict[str, Any]], progress: Progress
) -> None:
    existing_volumes = set(docker.lines(["volume", "ls", "--quiet", "--filter", settings.label_filter]))
    for node in settings.nodes:
        container = containers.get(node.name)
        if container is None:
            volume = settings.volume_name(node)
            if not settings.light and volume not in existing_volumes:
                docker.run(
                    [
                        "volume",
                        "create",
                        "--label",
                        f"{LAB_LABEL}={settings.name}",
                        "--label",
                        f"{NODE_LABEL}={node.name}",
                        volume,
                    ]
                )
            docker.run(node_run_args(settings, node, image))
            progress.say(f"  created {node.name} ({node.address})")
            continue
        running_image = str((container.get("Config") or {}).get("Image"))
        if running_image != image:
            progress.say(
                f"  note: {node.name} runs {running_image}; the recipe now builds {image}."
                " Keeping it (its state may matter); `kubeproof lab down && kubeproof lab up` recreates it."
            )
        if not (container.get("State") or {}).get("Running"):
            docker.run(["start", node.name])
            progress.say(f"  started {node.name}")
        else:
            progress.say(f"  {node.name} is running")


# Every node's systemd (and journald, udevd, sshd, dockerd, kubelet) takes inotify instances from
# root's one per-user limit of the shared kernel, 128 by default: on the lab, the 14th to 16th node
# of a scale lab (beside the guide's three) died at boot with "Failed to create control group
# inotify object: Too many open files". 32 a node leaves room for what runs inside.
INOTIFY_INSTANCES_FILE = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_BASE = 128
INOTIFY_INSTANCES_PER_NODE = 32


def ensure_inotify_instances(nodes: int, progress: Progress, limit_file: Path = INOTIFY_INSTANCES_FILE) -> None:
    """Raise the kernel's per-user inotify instance limit where it is too low for this many nodes."""
    needed = INOTIFY_BASE + INOTIFY_INSTANCES_PER_NODE * nodes
    try:
        current = int(limit_file.read_text().strip())
    except (OSError, ValueError):
        return  # no such limit to read here: nothing to raise
    if current >= needed:
        return
    try:
        limit_file.write_text(f"{needed}\n")
    except OSError as exc:
        raise LabError(
            f"{nodes} nodes need fs.inotify.max_user_instances >= {needed} (it is {current}) and it cannot be"
            f" raised from here ({exc.strerror}): sysctl -w fs.inotify.max_user_instances={needed}"
        ) from None
    progress.say(f"  raised fs.inotify.max_user_instances from {current} to {needed} (every node's systemd takes some)")


def remove_extra_hosts(docker: Docker, settings: LabSettings, progress: Progress) -> None:
    """A lab made with more hosts than asked now (`up --workers 2` after `--workers 3`, a smaller
    --scale): this lab's own containers beyond the count go, with their volumes. Only this lab's
    (by label); the cluster's side (kubectl delete node) is the caller's."""
    wanted = {node.name for node in settings.nodes}
    ids = docker.lines(["ps", "--all", "--quiet", "--filter", settings.label_filter])
    for item in docker.inspect("container", ids):
        name = str(item.get("Name", "")).lstrip("/")
        if name in wanted or not _is_ours(item, settings):
            continue
        docker.run(["rm", "--force", "--volumes", name])
        for volume in docker.inspect("volume", [f"kubeproof-{settings.name}-{name}-docker"]):
            if _is_ours(volume, settings):
                docker.run(["volume", "rm", str(volume.get("Name"))])
        progress.say(f"  removed {name} (beyond the {len(wanted)} hosts asked for)")


def existing_topology(docker: Docker, settings: LabSettings) -> LabSettings:
    """settings with the hosts the lab has now: its worker count, or its scale (from its containers)."""
    ids = docker.lines(["ps", "--all", "--quiet", "--filter", settings.label_filter])
    names = [str(item.get("Name", "")).lstrip("/") for item in docker.inspect("container", ids)]
    scale = sum(1 for name in names if name.startswith("scale"))
    if scale:
        return replace(settings, scale=scale, workers=2)
    workers = sum(1 for name in names if name.startswith("node"))
    return replace(settings, workers=max(2, workers), scale=0)


def wait_for_host_keys(docker: Docker, node: NodeSpec) -> list[HostKey]:
    """The node's public host keys, read through docker exec once sshd is active."""
    deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
    last_problem = "not started"
    while time.monotonic() < deadline:
        active = docker.exec(node.name, ["systemctl", "is-active", "ssh.service"], check=False)
        if active.stdout.strip() == "active":
            keys = docker.exec(node.name, ["cat", *HOST_PUBLIC_KEY_FILES], check=False)
            if keys.returncode == 0:
                return [HostKey.parse(line) for line in keys.stdout.splitlines() if line.strip()]
            last_problem = "host keys missing"
        else:
            last_problem = f"ssh.service is {active.stdout.strip() or active.stderr.strip() or 'unknown'}"
        time.sleep(1.0)
    raise LabError(
        f"{node.name}: sshd not ready within {BOOT_TIMEOUT_SECONDS:.0f} s ({last_problem});"
        f" inspect with `docker logs {node.name}` and `docker exec {node.name} systemctl --failed`"
    )


# Constant script (no interpolation): the key arrives on stdin.
_INSTALL_AUTHORIZED_KEY = (
    "umask 077 && mkdir -p /root/.ssh && cat > /root/.ssh/authorized_keys.tmp"
    " && mv /root/.ssh/authorized_keys.tmp /root/.ssh/authorized_keys"
)


def install_authorized_key(docker: Docker, node: NodeSpec, public_key: str) -> None:
    current = docker.exec(node.name, ["cat", "/root/.ssh/authorized_keys"], check=False)
    if current.returncode == 0 and current.stdout.strip() == public_key.strip():
        return
    docker.exec(node.name, ["sh", "-c", _INSTALL_AUTHORIZED_KEY], input_text=public_key.strip() + "\n")


def write_if_changed(path: Path, text: str) -> None:
    if path.is_file() and path.read_text() == text:
        return
    write_public_file(path, text)


def wait_for_ssh(node: NodeSpec, settings: LabSettings) -> None:
    deadline = time.monotonic() + SSH_READY_TIMEOUT_SECONDS
    last_error = ""
    while time.monotonic() < deadline:
        try:
            client = connect(node, settings, timeout=5.0)
        except (OSError, paramiko.SSHException) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(1.0)
            continue
        try:
            hostname = run_remote(client, ["hostname"]).stdout.strip()
            sudo_result = run_remote(client, ["true"], sudo=True) if settings.sudo else None
        finally:
            client.close()
        if hostname != node.name:
            raise LabError(f"{node.address} answers SSH as {hostname!r}, expected {node.name!r}")
        if sudo_result is not None and sudo_result.exit_status != 0:
            raise LabError(
                f"{node.name}: `sudo -n true` as {settings.ssh_user} failed: {sudo_result.stderr.strip()};"
                f" inspect /etc/sudoers.d/{settings.ssh_user} (docker exec {node.name} ...)"
            )
        return
    raise LabError(
        f"{node.name} ({node.address}) does not answer SSH within {SSH_READY_TIMEOUT_SECONDS:.0f} s: {last_error}"
    )


# ----------------------------------------------------------------------------- down


def down(settings: LabSettings, progress: Progress) -> None:
    docker = Docker.connect()
    label_filter = ["--filter", settings.label_filter]
    state_dirs = {settings.state_dir}
    with progress.step("remove node containers"):
        container_ids = docker.lines(["ps", "--all", "--quiet", *label_filter])
        if container_ids:
            names = [str(item.get("Name", "")).lstrip("/") for item in docker.inspect("container", container_ids)]
            docker.run(["rm", "--force", "--volumes", *container_ids])
            progress.say(f"  removed {', '.join(names)}")
    with progress.step("remove network"):
        network_ids = docker.lines(["network", "ls", "--quiet", "--no-trunc", *label_filter])
        for network in docker.inspect("network", network_ids):
            recorded = _labels(network).get(STATE_DIR_LABEL)
            if recorded:
                state_dirs.add(Path(recorded))
            docker.run(["network", "rm", str(network["Id"])])
            progress.say(f"  removed {network.get('Name')}")
    with progress.step("remove volumes"):
        volume_names = docker.lines(["volume", "ls", "--quiet", *label_filter])
        if volume_names:
            docker.run(["volume", "rm", *volume_names])
            progress.say(f"  removed {', '.join(volume_names)}")
    with progress.step("remove state files"):
        for state_dir in sorted(state_dirs):
            remove_state_files(LabSettings(name=settings.name, state_dir=state_dir), progress)


def remove_state_files(settings: LabSettings, progress: Progress) -> None:
    """Only the files `up` writes; the directory too if that leaves it empty."""
    removed = []
    for path in settings.state_files:
        for candidate in (path, path.with_name(path.name + ".tmp")):
            if candidate.is_file():
                candidate.unlink()
                removed.append(candidate.name)
    if removed:
        progress.say(f"  removed {', '.join(removed)} from {settings.state_dir}")
    # Not empty (someone else's files) or already gone: leave it.
    with contextlib.suppress(OSError):
        settings.state_dir.rmdir()


# ----------------------------------------------------------------------------- status


def node_states(docker: Docker, settings: LabSettings) -> list[NodeState]:
    found = {
        str(item.get("Name", "")).lstrip("/"): item
        for item in docker.inspect("container", [node.name for node in settings.nodes])
        if _is_ours(item, settings)
    }
    states = []
    for node in settings.nodes:
        item = found.get(node.name)
        if item is None:
            states.append(NodeState(node.name, "absent", None, None))
            continue
        networks = (item.get("NetworkSettings") or {}).get("Networks") or {}
        address = (networks.get(settings.network_name) or {}).get("IPAddress") or None
        states.append(
            NodeState(
                node.name,
                str((item.get("State") or {}).get("Status")),
                address,
                str((item.get("Config") or {}).get("Image")),
            )
        )
    return states


def ssh_answers(node: NodeSpec, settings: LabSettings) -> str:
    if not settings.known_hosts_file.is_file() or not settings.private_key_file.is_file():
        return "no SSH material"
    try:
        client = connect(node, settings, timeout=5.0)
    except (OSError, paramiko.SSHException) as exc:
        return f"no ({type(exc).__name__})"
    try:
        hostname = run_remote(client, ["hostname"], timeout=10).stdout.strip()
        sudo_ok = not settings.sudo or run_remote(client, ["true"], timeout=10, sudo=True).exit_status == 0
    except (OSError, paramiko.SSHException) as exc:
        return f"no ({type(exc).__name__})"
    finally:
        client.close()
    if hostname != node.name:
        return f"answers as {hostname!r}"
    return "yes" if sudo_ok else "yes, but sudo -n fails"


def status(settings: LabSettings, progress: Progress) -> int:
    """Print each node's state, address and whether SSH answers; 0 when all run and answer."""
    docker = Docker.connect()
    settings = with_lab_login(docker, existing_topology(docker, settings))
    states = node_states(docker, settings)
    recipe_image = node_image_tag()
    all_good = True
    present = any(state.state != "absent" for state in states)
    login = f"{settings.ssh_user}{' (sudo)' if settings.sudo else ''}" if present else "-"
    print(f"lab {settings.name!r}  network {settings.network_name}  state {settings.state_dir}  login {login}")
    print(f"{'NODE':<10} {'STATE':<9} {'ADDRESS':<15} {'SSH':<24} IMAGE")
    for node, state in zip(settings.nodes, states, strict=True):
        answer = ssh_answers(node, settings) if state.state == "running" else "-"
        all_good = all_good and state.state == "running" and answer == "yes"
        image_note = state.image or "-"
        if state.image and state.image != recipe_image:
            image_note += f" (recipe now {recipe_image})"
        print(f"{node.name:<10} {state.state:<9} {state.address or '-':<15} {answer:<24} {image_note}")
    if settings.cluster_file.is_file():
        print(f"cluster file: {settings.cluster_file}")
    else:
        print("cluster file: none (run `kubeproof lab up`)")
    return 0 if all_good else 1


def cluster_file_if_up(settings: LabSettings) -> Path | None:
    """The cluster file when the lab's nodes run (for fixtures deciding whether to call up)."""
    if not settings.cluster_file.is_file():
        return None
    docker = Docker.connect()
    if all(state.state == "running" for state in node_states(docker, existing_topology(docker, settings))):
        return settings.cluster_file
    return None


def lab_objects(docker: Docker, settings: LabSettings) -> dict[str, list[str]]:
    """Every Docker object carrying this lab's label (what `down` must leave at zero)."""
    label_filter = ["--filter", settings.label_filter]
    return {
        "containers": docker.lines(["ps", "--all", "--quiet", *label_filter]),
        "networks": docker.lines(["network", "ls", "--quiet", *label_filter]),
        "volumes": docker.lines(["volume", "ls", "--quiet", *label_filter]),
    }
