"""Host facts whose shell does more than run one command, run here under `sh` with stand-in binaries."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from kubeproof.facts import Raw
from kubeproof.facts.host import time_sync


def _stand_in(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def test_time_sync_pairs_each_units_state_with_its_name(tmp_path: Path) -> None:
    # systemctl is-active prints one state per unit, in argument order: ntpd alone is active here
    _stand_in(
        tmp_path,
        "systemctl",
        'shift; for u in "$@"; do [ "$u" = ntpd.service ] && echo active || echo inactive; done; exit 3',
    )
    _stand_in(tmp_path, "systemd-detect-virt", "echo docker")
    _stand_in(tmp_path, "timedatectl", "echo yes")
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(["sh", "-c", time_sync.command], capture_output=True, text=True, env=env, check=False)
    value = time_sync.parse(Raw(done.stdout, done.stderr, done.returncode))
    assert value.services == {
        "chrony": "inactive",
        "chronyd": "inactive",
        "ntp": "inactive",
        "ntpd": "active",
        "ntpsec": "inactive",
        "systemd-timesyncd": "inactive",
    }
    assert value.virtualization == "docker" and value.ntp_synchronized == "yes"


def test_time_sync_without_systemctl_names_every_unit_with_no_state(tmp_path: Path) -> None:
    _stand_in(tmp_path, "systemctl", "exit 127")
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(["sh", "-c", time_sync.command], capture_output=True, text=True, env=env, check=False)
    value = time_sync.parse(Raw(done.stdout, done.stderr, done.returncode))
    assert value.services == dict.fromkeys(["chrony", "chronyd", "ntp", "ntpd", "ntpsec", "systemd-timesyncd"], "")
