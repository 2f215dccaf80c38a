"""Phase 4, the guide's 三、部署 docker 引擎: docker installed, enabled and running on every worker.

A docker that is already there means no package manager call at all (air-gapped nodes).
"""

from __future__ import annotations

from kubeproof.bootstrap.context import RunContext
from kubeproof.bootstrap.engine import HostView, Resource, Unit
from kubeproof.bootstrap.host_profile import PROFILE_FACTS, host_profile
from kubeproof.bootstrap.phases import Phase, installed_packages_fact, package_op
from kubeproof.facts import Fact, HostFacts
from kubeproof.inventory import HostSpec

NAME = "docker"
PACKAGES = {"apt": ["docker.io"], "yum": ["docker-ce", "docker-ce-cli", "containerd.io"]}

dockerd_present: Fact[bool] = Fact(
    "kp-dockerd-present",
    "if command -v dockerd >/dev/null 2>&1; then echo yes; else echo no; fi",
    lambda raw: raw.stdout.strip() == "yes",
)
docker_packages = installed_packages_fact(("docker.io", "docker-ce", "moby-engine"))


def _present(view: HostView) -> bool:
    return bool(view.get(dockerd_present)) or bool(view.get(docker_packages))


def desired(ctx: RunContext, host: HostSpec) -> list[Resource]:
    return [
        package_op("docker", PACKAGES, _present, (dockerd_present, docker_packages)),
        Unit("docker.service"),
    ]


def verify(ctx: RunContext) -> None:
    """Docker installed in this run: read its cgroup driver and unit again for the later phases."""
    for host in ctx.cluster.workers:
        if ctx.profile(host).docker_installed and ctx.profile(host).docker_cgroup_driver:
            continue
        facts = HostFacts(ctx.transport.connection(host), lambda: [])
        facts.gather(PROFILE_FACTS)
        ctx.profiles[host.name] = host_profile(host.name, facts.get)


PHASE = Phase(NAME, "docker engine", lambda cluster: cluster.workers, desired, verify=verify)
