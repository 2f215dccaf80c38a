"""The version matrix's stacks (issue 13) for the lab tests: which ones, and their builds in the background.

Which: $KUBEPROOF_LAB_STACKS (comma-separated, e.g. `guide`), every stack other than the default one
when it is unset, none when it is `none`.

Their builds: a first build of the guide and newest stacks takes minutes of both cores, while the lab
tests before test_70 spend most of their wall waiting on the cluster. So when test_70 is collected,
this module runs as a background process at the lowest CPU and I/O priority (`python -m
tests.lab.stack_builds NAME ...`) and builds each chosen stack in turn; test_70's `lab up --stack`
then waits on the stack's build lock (lab.artifacts) instead of building. The lab tests keep the
cores whenever they want them (nice 19 against 0 is a CFS weight of 15 against 1024). Whatever is
still running when the session ends is stopped, process group and all; a build stopped halfway
leaves no stamp, so the next run rebuilds what it did not finish.

Each build's wall goes to $KUBEPROOF_STATE/stack-builds.json, which test_70 copies into its figures.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from kubeproof.lab.stacks import STACKS
from tests.lab.suite_runner import REPO

ENVIRONMENT_VARIABLE = "KUBEPROOF_LAB_STACKS"
NONE = "none"
STATE = Path(os.environ.get("KUBEPROOF_STATE", REPO / ".kubeproof"))
FIGURES = STATE / "stack-builds.json"
LOG = STATE / "stack-builds.log"
STOP_GRACE_SECONDS = 20.0


def chosen_stacks() -> list[str]:
    value = os.environ.get(ENVIRONMENT_VARIABLE)
    if value is None:
        return [name for name, stack in STACKS.items() if not stack.default]
    names = [name.strip() for name in value.split(",") if name.strip()]
    if names == [NONE]:
        return []
    unknown = [name for name in names if name not in STACKS or STACKS[name].default]
    if unknown:
        others = ", ".join(name for name, stack in STACKS.items() if not stack.default)
        raise ValueError(f"{ENVIRONMENT_VARIABLE}={value!r}: {', '.join(unknown)} is not one of {others} (or {NONE})")
    return names


def start_background_builds(names: list[str]) -> subprocess.Popen[bytes]:
    """`python -m tests.lab.stack_builds NAME ...` at the lowest priority, in its own process group."""
    STATE.mkdir(parents=True, exist_ok=True)
    FIGURES.unlink(missing_ok=True)
    argv = ["nice", "-n", "19", sys.executable, "-m", "tests.lab.stack_builds", *names]
    ionice = shutil.which("ionice")
    if ionice is not None:
        argv = [ionice, "-c", "3", *argv]
    with LOG.open("wb") as log:
        return subprocess.Popen(
            argv,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_background_builds(process: subprocess.Popen[bytes]) -> str:
    """Stop the builds if they still run; says how they ended (for the session's last lines)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return f"stopped unfinished (log: {LOG})"
    return f"exited {process.returncode} (log: {LOG})"


def build_walls() -> dict[str, float]:
    return dict(json.loads(FIGURES.read_text())) if FIGURES.exists() else {}


def main(names: list[str]) -> int:
    # Imported here: the hooks above must not load the builder into the test process.
    from kubeproof.lab.artifacts import build_artifacts
    from kubeproof.lab.errors import LabError
    from kubeproof.lab.progress import Progress

    walls: dict[str, float] = {}
    for name in names:
        started = time.monotonic()
        try:
            build_artifacts(None, Progress(), stack=STACKS[name])
        except LabError as error:
            # test_70's own `lab up --stack` builds again and fails with this error where it is read
            print(f"[stack-builds] {name}: {error}", flush=True)
            return 1
        walls[name] = round(time.monotonic() - started, 1)
        FIGURES.write_text(json.dumps(walls, indent=2, sort_keys=True) + "\n")
        print(f"[stack-builds] {name}: built or checked in {walls[name]} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
