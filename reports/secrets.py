"""A last look for secrets in a written report directory, for auditors and the self-tests.

Findings name the file and what kind of secret it holds, never the secret itself.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from pathlib import Path

from kubeproof.redact import fingerprint

_PEM_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


def _spellings(secret: str) -> set[str]:
    """The secret as written raw, inside a JSON string, and HTML-escaped."""
    return {secret, json.dumps(secret, ensure_ascii=False)[1:-1], html.escape(secret, quote=True)}


def scan_for_secrets(directory: Path, secrets: Iterable[str] = ()) -> list[str]:
    """Every file under `directory` (recursively) holding a PEM private-key block or one of `secrets`.

    Returns findings such as "evidence/x.json: PEM private key block" or
    "report.html: secret sha256:0123456789abcdef" (a fingerprint, not the value); sorted by file.
    """
    directory = Path(directory)
    wanted = [(fingerprint(secret), _spellings(secret)) for secret in secrets if secret]
    findings: list[str] = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        name = path.relative_to(directory).as_posix()
        text = path.read_bytes().decode("utf-8", errors="replace")
        if _PEM_PRIVATE_KEY.search(text):
            findings.append(f"{name}: PEM private key block")
        findings += [
            f"{name}: secret {secret_print}" for secret_print, spellings in wanted if any(s in text for s in spellings)
        ]
    return findings
