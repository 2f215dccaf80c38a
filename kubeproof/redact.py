"""The safety net that keeps secrets out of logs, reports and evidence.

Facts are written to fetch fingerprints rather than secrets; this catches what slips through:
PEM private-key blocks, bearer tokens in kubeconfigs and token.csv lines, and any value the run
has registered as secret (for example the bootstrap token once the installer has made it).
"""

from __future__ import annotations

import hashlib
import re
import threading

_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.DOTALL
)
# token: <value> in kubeconfig YAML, --token=<value>, Authorization: Bearer <value>
_TOKEN_FIELD = re.compile(r"(?i)(\btoken[\"']?\s*[:=]\s*[\"']?|bearer\s+)([A-Za-z0-9._~+/=-]{8,})")
# token.csv: <token>,<user>,<uid>,"<groups>" (anywhere: journal lines quote it mid-line)
_TOKEN_CSV_LINE = re.compile(r"\b([0-9a-fA-F]{16,64})(,[^,\n]+,\d+)")
# client-key-data: <base64> in kubeconfigs
_KEY_DATA = re.compile(r"(?i)(client-key-data\s*:\s*)([A-Za-z0-9+/=]{16,})")

_registered: set[str] = set()
_lock = threading.Lock()


def fingerprint(secret: str | bytes) -> str:
    data = secret.encode() if isinstance(secret, str) else secret
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def register_secret(value: str) -> None:
    """Mask this exact value wherever it appears from now on."""
    if len(value) >= 6:
        with _lock:
            _registered.add(value)


def redact(text: str) -> str:
    if not text:
        return text
    text = _PRIVATE_KEY_BLOCK.sub(lambda m: f"<redacted {m.group(1)}PRIVATE KEY>", text)
    text = _KEY_DATA.sub(lambda m: m.group(1) + "<redacted>", text)
    text = _TOKEN_FIELD.sub(lambda m: m.group(1) + f"<redacted {fingerprint(m.group(2))}>", text)
    text = _TOKEN_CSV_LINE.sub(lambda m: f"<redacted {fingerprint(m.group(1))}>" + m.group(2), text)
    with _lock:
        values = sorted(_registered, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, f"<redacted {fingerprint(value)}>")
    return text
