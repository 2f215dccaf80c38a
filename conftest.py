"""The repository's root conftest.

kubeproof's pytest plugin (kubeproof/fixtures/plugin.py, i.e. fixtures/plugin.py) is loaded by
its ``pytest11`` entry point once the distribution is installed (``pip install .``, or ``./kp``,
which installs this checkout in editable mode), so that the suites run from any directory beside
testinfra's own plugin. Loading it here as well would register it twice; this file only marks
the repository root for pytest's rootdir and conftest discovery.
"""

from __future__ import annotations
