"""`lab down` leaves nothing behind (its own file, so other lab test files run before it)."""

from __future__ import annotations

import pytest

from kubeproof.lab.dockercli import Docker
from kubeproof.lab.labctl import down, lab_objects
from kubeproof.lab.progress import Progress
from kubeproof.lab.settings import LAB_NODES, LabSettings

pytestmark = pytest.mark.lab


def test_down_leaves_no_container_network_volume_or_state(lab_settings: LabSettings, lab_docker: Docker) -> None:
    down(lab_settings, Progress())
    assert lab_objects(lab_docker, lab_settings) == {"containers": [], "networks": [], "volumes": []}
    # Not even by name (a container created without the label would also block the next `up`).
    assert lab_docker.inspect("container", [node.name for node in LAB_NODES]) == []
    assert lab_docker.inspect("network", [lab_settings.network_name]) == []
    assert [path for path in lab_settings.state_files if path.exists()] == []


def test_down_twice_is_harmless(lab_settings: LabSettings) -> None:
    down(lab_settings, Progress())
