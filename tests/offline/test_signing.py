"""The signed evidence bundle: keys, signature, and every kind of tampering named by verify."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kubeproof.audit_cli import evidence_main
from kubeproof.reports.evidence import write_evidence_bundle
from kubeproof.reports.results_json import write_results
from kubeproof.reports.signing import (
    SigningError,
    SigningKey,
    default_key_path,
    ensure_signing_key,
    load_signing_key,
    sign_manifest,
    verify_bundle,
)
from tests.offline.audit_samples import record

RECORDS = [
    record("ENV-01", "master01", "passed"),
    record("ENV-06", "node02", "failed", observed="'0'"),
    record("PKI-E-07", "node01", "passed"),
]


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    return ensure_signing_key(tmp_path / "keys" / "evidence-ed25519")


@pytest.fixture
def bundle(tmp_path: Path, key: SigningKey) -> Path:
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "junit.xml").write_text("<testsuites/>\n")
    write_results(RECORDS, report_dir, meta={"cluster": "lab"})
    write_evidence_bundle(RECORDS, report_dir, meta={"cluster": "lab"}, stats={})
    sign_manifest(report_dir, key)
    return report_dir


def _verify(bundle: Path, key: SigningKey | None = None) -> list[str]:
    check = verify_bundle(bundle, key.public_path if key else None)
    return check.lines()


def test_a_generated_key_is_private_and_outside_the_bundle(tmp_path: Path, key: SigningKey) -> None:
    assert key.generated
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.path.parent.stat().st_mode) == 0o700
    assert key.public_path.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = ensure_signing_key(key.path)
    assert not again.generated and again.fingerprint == key.fingerprint
    inside = ensure_signing_key(tmp_path / "report" / "k")
    with pytest.raises(SigningError, match="must live outside the report directory"):
        sign_manifest(tmp_path / "report", inside)


def test_default_key_place_follows_kubeproof_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEPROOF_STATE", str(tmp_path / "state"))
    assert default_key_path() == tmp_path / "state" / "keys" / "evidence-ed25519"
    monkeypatch.delenv("KUBEPROOF_STATE")
    monkeypatch.chdir(tmp_path)
    assert default_key_path() == tmp_path / ".kubeproof" / "keys" / "evidence-ed25519"


def test_user_keys_open_wrong_or_encrypted_are_refused(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    openssh = tmp_path / "id_ed25519"
    openssh.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    openssh.chmod(0o600)
    assert load_signing_key(openssh).fingerprint.startswith("ed25519:sha256:")
    openssh.chmod(0o644)
    with pytest.raises(SigningError, match="mode 0644 lets others read the private key"):
        load_signing_key(openssh)
    encrypted = tmp_path / "encrypted"
    encrypted.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
        )
    )
    encrypted.chmod(0o600)
    with pytest.raises(SigningError, match="encrypted"):
        load_signing_key(encrypted)
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key\n")
    garbage.chmod(0o600)
    with pytest.raises(SigningError, match="not a private key"):
        load_signing_key(garbage)
    with pytest.raises(SigningError, match="no such file"):
        load_signing_key(tmp_path / "absent")


def test_a_whole_signed_bundle_verifies(bundle: Path, key: SigningKey) -> None:
    check = verify_bundle(bundle, key.public_path)
    assert check.ok, check.lines()
    assert check.signed_by == key.fingerprint
    assert check.warnings == []
    assert {"results.json", "junit.xml", "SHA256SUMS", "evidence/session.json"} <= set(
        entry["path"] for entry in json.loads((bundle / "MANIFEST.json").read_text())["files"]
    )
    # without --pubkey: the bundle's own key, with a warning that it proves integrity, not origin
    embedded = verify_bundle(bundle)
    assert embedded.ok
    assert "proves the bundle is whole, not who signed it" in embedded.warnings[0]


def test_one_evidence_file_changed_is_named(bundle: Path, key: SigningKey) -> None:
    target = bundle / "evidence" / "ENV-06@node02.json"
    document = json.loads(target.read_text())
    document["outcome"] = "passed"
    target.write_text(json.dumps(document, indent=2) + "\n")
    assert _verify(bundle, key) == ["evidence/ENV-06@node02.json: changed (sha256 differs from MANIFEST.json)"]


def test_a_file_added_and_a_file_removed_are_named(bundle: Path, key: SigningKey) -> None:
    (bundle / "evidence" / "ENV-99@node01.json").write_text("{}\n")
    (bundle / "evidence" / "PKI-E-07@node01.json").unlink()
    assert _verify(bundle, key) == [
        "evidence/ENV-99@node01.json: added (not in MANIFEST.json)",
        "evidence/PKI-E-07@node01.json: removed (listed in MANIFEST.json, missing)",
    ]


def test_a_manifest_edited_to_match_a_changed_file_fails_the_signature(bundle: Path, key: SigningKey) -> None:
    target = bundle / "results.json"
    target.write_text(target.read_text().replace('"failed"', '"passed"'))
    manifest = json.loads((bundle / "MANIFEST.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == "results.json":
            entry["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
            entry["size"] = target.stat().st_size
    (bundle / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    lines = _verify(bundle, key)
    assert any(line.startswith("MANIFEST.json: the signature does not verify") for line in lines), lines
    assert any("SHA256SUMS" in line and "results.json" in line for line in lines), lines


def test_an_edited_signature_or_another_key_fails(bundle: Path, key: SigningKey, tmp_path: Path) -> None:
    signature = bundle / "MANIFEST.json.sig"
    original = signature.read_text()
    raw = bytearray(base64.b64decode(original))
    raw[0] ^= 0x01
    signature.write_text(base64.b64encode(bytes(raw)).decode() + "\n")
    assert _verify(bundle, key)[0].startswith("MANIFEST.json: the signature does not verify with --pubkey")
    signature.write_text("not base64!\n")
    assert _verify(bundle, key) == ["MANIFEST.json.sig: not base64"]
    signature.unlink()
    assert _verify(bundle, key) == ["MANIFEST.json.sig: missing: the manifest is not signed"]

    # re-signed by someone else, who also swapped the bundle's public key: whole, but not ours
    other = ensure_signing_key(tmp_path / "other" / "key")
    sign_manifest(bundle, other)
    assert verify_bundle(bundle).ok  # the embedded key only proves integrity...
    lines = _verify(bundle, key)  # ...the auditor's key proves origin
    assert len(lines) == 1 and lines[0].startswith("MANIFEST.json: the signature does not verify with --pubkey")
    assert "holds another key" in verify_bundle(bundle, key.public_path).warnings[0]
    signature.write_text(original)


def test_the_verify_command(bundle: Path, key: SigningKey, capsys: pytest.CaptureFixture[str]) -> None:
    assert evidence_main(["verify", str(bundle), "--pubkey", str(key.public_path)]) == 0
    assert f"signed by {key.fingerprint}" in capsys.readouterr().out
    (bundle / "report.html").write_text("<p>forged</p>\n")
    assert evidence_main(["verify", str(bundle), "--pubkey", str(key.public_path)]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED report.html: added (not in MANIFEST.json)" in out
    assert evidence_main(["verify", str(bundle / "nowhere")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert evidence_main(["verify", str(bundle), "--pubkey", str(bundle / "junit.xml")]) == 2
    assert "not a public key" in capsys.readouterr().err
    assert evidence_main(["check", str(bundle)]) == 2


def test_a_missing_manifest_or_edited_sha256sums_is_named(bundle: Path, key: SigningKey) -> None:
    sums = bundle / "SHA256SUMS"
    sums.write_text(sums.read_text().replace("results.json", "result.json"))
    assert _verify(bundle, key) == ["SHA256SUMS: changed (sha256 differs from MANIFEST.json)"]
    (bundle / "MANIFEST.json").unlink()
    assert _verify(bundle, key) == ["MANIFEST.json: missing"]
