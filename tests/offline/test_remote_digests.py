"""The installer hashes a file on a host again only when its stat signature changed (remote_digests).

The paths script runs here under the local `sh` against real files, so what is asserted is what the
shell does: which files it hashed and which it answered "=" for.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from kubeproof.bootstrap.engine import paths_fact
from kubeproof.bootstrap.remote_digests import RACY_SECONDS, SIGNATURE, RemoteDigests, trusted_signature
from kubeproof.facts import ParseError, Raw

FAKE_SHA = "f" * 64  # what no real file hashes to: seen back only if the script did not hash


def _run(fact_script: str) -> Raw:
    done = subprocess.run(["sh", "-c", fact_script], capture_output=True, text=True, check=False, timeout=30)
    return Raw(done.stdout, done.stderr, done.returncode)


def _old(path: Path) -> None:
    """Make the file's ctime old enough to be trusted: RACY_SECONDS must pass after its last change."""
    time.sleep(RACY_SECONDS + 0.2)
    assert path.stat().st_ctime <= time.time() - RACY_SECONDS


def _state(path: Path, known: dict[str, tuple[str, str]] | None = None) -> tuple[str | None, str | None, str]:
    fact = paths_fact([str(path)], known=known)
    raw = _run(fact.command)
    state = fact.parse(raw)[str(path)]
    return state.sha256, state.signature, raw.stdout


def test_a_file_is_hashed_until_its_signature_is_known_then_answered_unchanged(tmp_path: Path) -> None:
    binary = tmp_path / "kubelet"
    binary.write_bytes(b"A" * 4096)
    _old(binary)
    sha, signature, _ = _state(binary)
    assert sha == hashlib.sha256(b"A" * 4096).hexdigest()
    assert signature is not None and SIGNATURE.match(signature), signature

    # the same signature: the host answers "=" and the known digest is taken (here a fake one)
    sha, again, out = _state(binary, {str(binary): (signature, FAKE_SHA)})
    assert "\t=\t" in out, out
    assert sha == FAKE_SHA and again == signature


def test_a_rewrite_of_the_same_size_and_mtime_is_hashed_again(tmp_path: Path) -> None:
    binary = tmp_path / "kube-proxy"
    binary.write_bytes(b"A" * 4096)
    _old(binary)
    _, signature, _ = _state(binary)
    assert signature is not None
    before = binary.stat()
    with binary.open("r+b") as handle:  # one byte changed in place, mtime put back: only the ctime tells
        handle.seek(1000)
        handle.write(b"X")
    os.utime(binary, ns=(before.st_atime_ns, before.st_mtime_ns))
    changed = b"A" * 1000 + b"X" + b"A" * 3095
    sha, new_signature, out = _state(binary, {str(binary): (signature, FAKE_SHA)})
    assert "\t=\t" not in out, out
    assert sha == hashlib.sha256(changed).hexdigest()
    assert new_signature != signature


def test_a_file_changed_just_before_it_was_read_is_not_trusted(tmp_path: Path) -> None:
    binary = tmp_path / "etcd"
    binary.write_bytes(b"fresh")
    sha, signature, _ = _state(binary)
    assert sha == hashlib.sha256(b"fresh").hexdigest()
    assert signature is None  # racy: it could change again within the same clock tick


def test_trusted_signature_needs_the_exact_form_and_the_hosts_clock() -> None:
    good = "102359202:1796572436.983039839:1796572436.987039839:2130170:40"
    assert trusted_signature(good, 1796572436 + RACY_SECONDS) == good
    assert trusted_signature(good, 1796572436 + RACY_SECONDS - 1) is None
    assert trusted_signature(good, None) is None
    # a stat without nanoseconds prints the format back or whole seconds: never trusted
    assert trusted_signature("102359202:%.9Y:%.9Z:2130170:40", 2_000_000_000) is None
    assert trusted_signature("102359202:1796572436:1796572436:2130170:40", 2_000_000_000) is None
    assert trusted_signature("", 2_000_000_000) is None


def test_unchanged_without_a_known_digest_is_a_parse_error(tmp_path: Path) -> None:
    fact = paths_fact(["/opt/kubernetes/bin/kubelet"])
    raw = Raw("N\t1796572500\nF\t/opt/kubernetes/bin/kubelet\t755\t=\t1:2.000000000:3.000000000:4:5\n", "", 0)
    with pytest.raises(ParseError, match="no digest is known"):
        fact.parse(raw)


def test_the_digests_survive_a_run_and_are_written_only_when_they_changed(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "remote-sha256.json"
    digests = RemoteDigests(path)
    digests.save()
    assert not path.exists()
    digests.learn("node01", "/opt/kubernetes/bin/kubelet", "sig", FAKE_SHA)
    digests.save()
    assert json.loads(path.read_text()) == {"node01": {"/opt/kubernetes/bin/kubelet": ["sig", FAKE_SHA]}}
    written = path.stat().st_mtime_ns
    again = RemoteDigests(path)
    assert again.known("node01") == {"/opt/kubernetes/bin/kubelet": ("sig", FAKE_SHA)}
    assert again.known("node02") == {}
    again.learn("node01", "/opt/kubernetes/bin/kubelet", "sig", FAKE_SHA)  # nothing new
    again.save()
    assert path.stat().st_mtime_ns == written


def test_a_damaged_cache_file_is_read_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "remote-sha256.json"
    path.write_text("[not an object")
    assert RemoteDigests(path).known("node01") == {}
