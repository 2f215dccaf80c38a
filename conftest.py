"""kubeproof: the plugin lives in fixtures/plugin.py; this file only loads it."""

from __future__ import annotations

pytest_plugins = ["fixtures.plugin"]
