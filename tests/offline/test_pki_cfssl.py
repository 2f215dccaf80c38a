"""bootstrap.pki and cfssl: its JSON read strictly (the guide's own texts, Go durations, errors that
name the file), the guide's files as inputs, and cfssl itself regenerating from what we write."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from kubeproof.bootstrap.pki import Action, PkiPlan, ensure_pki, plan_pki
from kubeproof.bootstrap.pki.cfssl import KeySpec, NameEntry, format_go_duration, parse_go_duration
from kubeproof.bootstrap.pki.cfssl_json import load_ca_config, load_csr_json, parse_ca_config, parse_csr_json
from kubeproof.bootstrap.pki.errors import PkiInputError
from kubeproof.bootstrap.pki.inputs import DEFAULT_CA_EXPIRY
from kubeproof.inventory import Cluster
from kubeproof.x509 import parse_certificate
from tests.offline.pki_samples import (
    GUIDE_CA_CONFIG,
    GUIDE_CA_CSR,
    GUIDE_FILE,
    GUIDE_KUBERNETES_CA_CONFIG,
    GUIDE_SERVER_CSR,
    NOW,
    PooledKeys,
    cert,
    write,
)
from tests.offline.pki_samples import cluster as cluster  # the fixtures, module-scoped where they make keys
from tests.offline.pki_samples import keys as keys
from tests.offline.pki_samples import made as made
from tests.offline.pki_samples import pki_dir as pki_dir
from tests.offline.pki_samples import template as template

# ----------------------------------------------------------------------------- cfssl JSON


def test_guide_texts_parse() -> None:
    config = parse_ca_config(GUIDE_CA_CONFIG)
    assert config.default.expiry == timedelta(hours=87600)
    www = config.profiles["www"]
    assert www.expiry == timedelta(hours=87600)
    assert www.usages == ("signing", "key encipherment", "server auth", "client auth")
    assert www.key_usage_fields == {"digital_signature", "key_encipherment"}
    ca_csr = parse_csr_json(GUIDE_CA_CSR)
    assert (ca_csr.common_name, ca_csr.key, ca_csr.hosts) == ("etcd", KeySpec("rsa", 2048), ())
    assert ca_csr.names == (NameEntry(country="CN", state="Beijing", locality="Beijing"),)
    assert ca_csr.ca_expiry is None
    server_csr = parse_csr_json(GUIDE_SERVER_CSR)
    assert server_csr.hosts == ("192.168.3.11", "192.168.3.12", "192.168.3.13")
    assert server_csr.subject().rfc4514_string() == "CN=etcd,L=BeiJing,ST=BeiJing,C=CN"


@pytest.mark.skipif(not GUIDE_FILE.is_file(), reason=f"the guide is not at {GUIDE_FILE}")
def test_guide_texts_are_the_guides() -> None:
    guide = GUIDE_FILE.read_text(encoding="utf-8")
    heredocs = dict(re.findall(r"cat > (\S+) <<EOF\n(.*?)\nEOF", guide, re.DOTALL))
    assert heredocs["ca-config.json"] == GUIDE_CA_CONFIG
    assert heredocs["ca-csr.json"] == GUIDE_CA_CSR
    assert heredocs["server-csr.json"] == GUIDE_SERVER_CSR


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("87600h", timedelta(hours=87600)),
        ("8760h0m0s", timedelta(hours=8760)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        ("90m", timedelta(minutes=90)),
        ("300ms", timedelta(milliseconds=300)),
        ("-2h", timedelta(hours=-2)),
        ("0", timedelta(0)),
    ],
)
def test_go_durations(text: str, expected: timedelta) -> None:
    assert parse_go_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10y", "h", "5", "87600", "1h 30m", "h1"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a Go duration"):
        parse_go_duration(text)


def test_format_go_duration() -> None:
    assert format_go_duration(timedelta(hours=87600)) == "87600h"
    assert format_go_duration(timedelta(minutes=90, seconds=5)) == "1h30m5s"
    assert parse_go_duration(format_go_duration(timedelta(minutes=90, seconds=5))) == timedelta(minutes=90, seconds=5)


def test_cfssl_defaults() -> None:
    # No "key": cfssl's default is ECDSA P-256. A profile without expiry falls back to the default.
    assert parse_csr_json('{"CN": "x"}').key == KeySpec("ecdsa", 256)
    config = parse_ca_config('{"signing": {"default": {"expiry": "8760h"}, "profiles": {"p": {"usages": []}}}}')
    assert config.expiry_of(config.profiles["p"]) == timedelta(hours=8760)
    # `"hosts": [""]`, a common idiom for client certificates, means no SAN.
    assert parse_csr_json('{"CN": "admin", "hosts": [""]}').hosts == ()


def test_bad_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "ca-config.json", '{\n  "signing": {\n    "default": {"expiry": "87600h",}\n  }\n}\n')
    with pytest.raises(PkiInputError) as excinfo:
        load_ca_config(path)
    assert str(excinfo.value).startswith(f"{path}:3:")
    assert "invalid JSON" in str(excinfo.value)
    assert (excinfo.value.source, excinfo.value.line) == (str(path), 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GUIDE_CA_CONFIG.replace('"server auth"', '"server-auth"'), "unknown usage 'server-auth'"),
        (GUIDE_CA_CONFIG.replace('"87600h",\n         "usages"', '"10y",\n         "usages"'), "not a Go duration"),
        (GUIDE_CA_CONFIG.replace('"expiry": "87600h"\n', '"expirey": "87600h"\n'), "unsupported key 'expirey'"),
        ('{"signing": {"default": {"expiry": "-1h"}}}', "must be a positive duration"),
        ('{"signing": {"default": {"expiry": "1h"}, "default": {}}}', "duplicate key 'default'"),
        ("[]", "must be a JSON object"),
        ("{}", "missing 'signing'"),
    ],
)
def test_ca_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "ca-config.json", text)
    with pytest.raises(PkiInputError, match=re.escape(message)) as excinfo:
        load_ca_config(path)
    assert str(excinfo.value).startswith(str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GUIDE_SERVER_CSR.replace('"rsa"', '"dsa"'), "unsupported algorithm 'dsa'"),
        (GUIDE_SERVER_CSR.replace("2048", "1024"), "unsupported RSA size 1024"),
        ('{"CN": "x", "key": {"algo": "ecdsa", "size": 255}}', "unsupported ECDSA size 255"),
        (GUIDE_SERVER_CSR.replace('"C": "CN"', '"C": "China"'), "not a two-letter country code"),
        (GUIDE_SERVER_CSR.replace('"192.168.3.11"', '"bad host!"'), "neither an IP address nor a DNS name"),
        (GUIDE_SERVER_CSR.replace('"ST"', '"STATE"'), "unsupported key 'STATE'"),
        ('{"CN": 5}', "CN must be a string"),
        ('{"CN": "x", "ca": {"expiry": "forever"}}', "not a Go duration"),
    ],
)
def test_csr_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "server-csr.json", text)
    with pytest.raises(PkiInputError, match=re.escape(message)) as excinfo:
        load_csr_json(path)
    assert str(excinfo.value).startswith(str(path))


def test_unreadable_input(tmp_path: Path) -> None:
    with pytest.raises(PkiInputError, match="cannot read"):
        load_csr_json(tmp_path / "absent-csr.json")


# ----------------------------------------------------------------------------- the guide's files as inputs


def test_the_guides_own_files_as_inputs(cluster: Cluster, tmp_path: Path, keys: PooledKeys) -> None:
    inputs = tmp_path / "inputs"
    (inputs / "etcd").mkdir(parents=True)
    (inputs / "kubernetes").mkdir()
    write(inputs / "etcd" / "ca-config.json", GUIDE_CA_CONFIG)
    write(inputs / "etcd" / "ca-csr.json", GUIDE_CA_CSR)
    write(inputs / "etcd" / "server-csr.json", GUIDE_SERVER_CSR)
    write(inputs / "kubernetes" / "ca-config.json", GUIDE_KUBERNETES_CA_CONFIG)
    pki_dir = tmp_path / "pki"
    plan = ensure_pki(cluster, pki_dir, inputs_dir=inputs, now=NOW, key_factory=keys)
    server = cert(pki_dir, "etcd", "server")
    # The cluster's members first; the guide's own (stale) addresses kept as declared extras, with a note.
    assert server.san_ips == [
        "192.168.61.17",
        "192.168.61.18",
        "192.168.61.22",
        "192.168.3.11",
        "192.168.3.12",
        "192.168.3.13",
    ]
    assert any("192.168.3.11" in note and "not addresses of any cluster host" in note for note in plan.notes)
    # The guide's ca-csr.json has no ca.expiry: not cfssl's 5 years, and the note says so.
    assert cert(pki_dir, "etcd", "ca").not_after == NOW + DEFAULT_CA_EXPIRY
    assert any("43800h" in note for note in plan.notes)
    assert load_csr_json(pki_dir / "etcd" / "ca-csr.json").ca_expiry == DEFAULT_CA_EXPIRY
    # With the guide's single "kubernetes" profile, client certificates fall back to it, as in the guide.
    assert cert(pki_dir, "kubernetes", "admin").extended_key_usages == ["serverAuth", "clientAuth"]
    again = ensure_pki(cluster, pki_dir, inputs_dir=inputs, now=NOW, key_factory=keys)
    assert not again.changed


def test_inputs_that_would_break_an_invariant_are_refused(cluster: Cluster, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    (inputs / "kubernetes").mkdir(parents=True)
    admin = write(
        inputs / "kubernetes" / "admin-csr.json",
        json.dumps({"CN": "admin", "key": {"algo": "rsa", "size": 2048}, "names": [{"O": "k8s"}]}),
    )
    with pytest.raises(PkiInputError, match="system:masters") as excinfo:
        plan_pki(cluster, tmp_path / "pki", inputs_dir=inputs)
    assert str(excinfo.value).startswith(str(admin))
    admin.unlink()
    config = write(inputs / "kubernetes" / "ca-config.json", GUIDE_CA_CONFIG)  # only a "www" profile
    with pytest.raises(PkiInputError, match="no signing profile 'kubernetes'") as excinfo:
        plan_pki(cluster, tmp_path / "pki", inputs_dir=inputs)
    assert str(excinfo.value).startswith(str(config))


# ----------------------------------------------------------------------------- cfssl itself


@pytest.mark.skipif(shutil.which("cfssl") is None, reason="cfssl is not installed (the guide's tool)")
def test_cfssl_regenerates_from_the_written_json(made: PkiPlan, cluster: Cluster, pki_dir: Path) -> None:
    etcd_dir = pki_dir / "etcd"
    initca = subprocess.run(
        ["cfssl", "gencert", "-initca", "ca-csr.json"], cwd=etcd_dir, capture_output=True, text=True, check=False
    )
    assert initca.returncode == 0, initca.stderr
    ca = parse_certificate(json.loads(initca.stdout)["cert"])
    assert ca.is_ca and ca.subject_cn == ["etcd"] and ca.public_key_size == 2048
    # cfssl honours our ca.expiry instead of its 5-year default, so its CA outlives its leaves too.
    assert abs(ca.lifetime - DEFAULT_CA_EXPIRY) < timedelta(minutes=10)

    # cfssl signing our server-csr.json with our CA gives a certificate we accept as is.
    signed = subprocess.run(
        [
            "cfssl",
            "gencert",
            "-ca=ca.pem",
            "-ca-key=ca-key.pem",
            "-config=ca-config.json",
            "-profile=www",
            "server-csr.json",
        ],
        cwd=etcd_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert signed.returncode == 0, signed.stderr
    output = json.loads(signed.stdout)
    server = parse_certificate(output["cert"])
    assert server.san_ips == cert(pki_dir, "etcd", "server").san_ips
    assert server.extended_key_usages == ["serverAuth", "clientAuth"]
    (etcd_dir / "server-key.pem").unlink()
    descriptor = os.open(etcd_dir / "server-key.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(output["key"])
    (etcd_dir / "server.pem").write_text(output["cert"])
    # Its notAfter is "now" for cfssl, i.e. later than NOW; evaluate from cfssl's own notBefore.
    plan = plan_pki(cluster, pki_dir, now=server.not_before + timedelta(minutes=5))
    assert plan.item("etcd", "server").action is Action.REUSE, plan.item("etcd", "server").reasons
