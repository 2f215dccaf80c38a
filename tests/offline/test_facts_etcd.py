"""ETCD facts, offline: env files, units and flags, the service fact, etcd's settings, the layout,
etcdctl health and the peers' exposure check, parsed from captured output (no SSH, no etcd)."""

from __future__ import annotations

import re
import shlex
import subprocess
from typing import Any

import pytest

from kubeproof.facts import ParseError
from kubeproof.facts import etcd as etcd_facts
from kubeproof.facts import network as net_facts
from kubeproof.facts.etcd import (
    configured_etcd_settings,
    expand_exec,
    exposure_peer,
    parse_env_file,
    parse_etcd_layout,
    parse_etcdctl_health,
    parse_exposure,
    parse_go_flags,
    parse_initial_cluster,
    parse_service_output,
    parse_unit_text,
    running_etcd_settings,
    service_fact,
)
from kubeproof.inventory import Cluster
from tests.offline.facts_samples import (
    DOCKER_SERVICE_CAPTURE,
    EXPOSURE_REFUSED,
    GUIDE_ETCD_ENV,
    GUIDE_ETCD_UNIT,
    GUIDE_NODE01_COPY,
    LAB_ETCD_SERVICE_NODE01,
    LAB_EXPOSURE_FROM_MASTER01,
    LAB_LAYOUT_NODE01,
    raw,
    service_capture,
    sh_syntax,
)
from tests.offline.facts_samples import cluster as cluster  # the module-scoped fixture

# ----------------------------------------------------------------------------- env files


def test_env_file_as_systemd_reads_it() -> None:
    values = parse_env_file(GUIDE_ETCD_ENV)
    assert values["ETCD_NAME"] == "etcd01"
    assert values["ETCD_INITIAL_CLUSTER"].count("https://") == 3
    assert "#[Member]" not in values and len(values) == 9


def test_env_file_keeps_the_guides_wrapped_copy_broken() -> None:
    values = parse_env_file(GUIDE_NODE01_COPY)
    # a closing quote does not end the value: the token assignment is glued onto the cluster
    assert values["ETCD_INITIAL_CLUSTER"] == (
        "etcd01=https://192.168.61.17:2380,etcd02=https://192.168.61.18:2380,etcd03\n"
        '=https://192.168.61.22:2380ETCD_INITIAL_CLUSTER_TOKEN="etcd-cluster"'
    )
    assert "ETCD_INITIAL_CLUSTER_TOKEN" not in values
    assert values["ETCD_ADVERTISE_CLIENT_URLS"] == "https://192.168.61.17:2379"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=plain value   \n", {"A": "plain value"}),
        ("A='single $X'\n", {"A": "single $X"}),
        ('A="esc \\" \\$ \\n"\n', {"A": 'esc " $ \\n'}),
        ("A=one \\\n two\n", {"A": "one  two"}),
        ("; comment\n# comment\nnot an assignment\nB=\n", {"B": ""}),
        ("export C=1\n", {}),  # systemd does not know `export`
        ('D="  kept  "\n', {"D": "  kept  "}),
    ],
)
def test_env_file_syntax(text: str, expected: dict[str, str]) -> None:
    assert parse_env_file(text) == expected


# ----------------------------------------------------------------------------- units and flags


def test_unit_text_with_continuations_and_variables() -> None:
    unit = parse_unit_text(GUIDE_ETCD_UNIT)
    assert unit.files == ("/usr/lib/systemd/system/etcd.service",)
    assert unit.environment_files == ("/opt/etcd/cfg/etcd",)
    assert unit.service["Type"] == "notify" and unit.service["LimitNOFILE"] == "65536"
    argv = expand_exec(unit.exec_start, parse_env_file(GUIDE_ETCD_ENV))
    assert argv[0] == "/opt/etcd/bin/etcd"
    assert "--listen-client-urls=https://192.168.61.17:2379,http://127.0.0.1:2379" in argv
    assert "--initial-cluster-token=etcd-cluster" in argv


DOCKER_UNIT_WITH_DROPIN = """\
# /lib/systemd/system/docker.service
[Unit]
Description=Docker Application Container Engine
Requires=docker.socket

[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS
ExecReload=/bin/kill -s HUP $MAINPID
Restart=on-failure

# /etc/systemd/system/docker.service.d/flannel.conf
# Managed by kubeproof bootstrap; a re-run rewrites local edits.
[Unit]
After=flanneld.service
Requires=flanneld.service

[Service]
EnvironmentFile=/run/flannel/docker
ExecStart=
ExecStart=/usr/sbin/dockerd $DOCKER_NETWORK_OPTIONS -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS
"""


def test_dropin_resets_exec_start_and_adds_env_file() -> None:
    unit = parse_unit_text(DOCKER_UNIT_WITH_DROPIN)
    assert unit.files == ("/lib/systemd/system/docker.service", "/etc/systemd/system/docker.service.d/flannel.conf")
    assert unit.environment_files == ("/etc/default/docker", "/run/flannel/docker")
    assert unit.exec_start.startswith("/usr/sbin/dockerd $DOCKER_NETWORK_OPTIONS")
    assert unit.unit["Requires"] == "flanneld.service"
    env = {"DOCKER_NETWORK_OPTIONS": " --bip=172.17.36.1/24 --ip-masq=false --mtu=1450"}
    assert expand_exec(unit.exec_start, env) == [
        "/usr/sbin/dockerd",
        "--bip=172.17.36.1/24",
        "--ip-masq=false",
        "--mtu=1450",
        "-H",
        "fd://",
        "--containerd=/run/containerd/containerd.sock",
    ]


def test_exec_prefixes_and_missing_variables() -> None:
    assert expand_exec("-/usr/bin/x ${MISSING} $MISSING --a=${A}b", {"A": "v w"}) == ["/usr/bin/x", "", "--a=v wb"]


def test_go_flags() -> None:
    args = ["--name=etcd01", "-data-dir", "/var/lib/etcd", "--client-cert-auth", "--peer-client-cert-auth", "-H", "a"]
    flags = parse_go_flags([*args, "-H", "b"], etcd_facts.ETCD_BOOLEAN_FLAGS)
    assert flags["name"] == ["etcd01"]
    assert flags["data-dir"] == ["/var/lib/etcd"]
    assert flags["client-cert-auth"] == ["true"] and flags["peer-client-cert-auth"] == ["true"]
    assert flags["H"] == ["a", "b"]


def test_initial_cluster_entries() -> None:
    assert parse_initial_cluster("etcd01=https://a:2380, etcd02=https://b:2380") == [
        ("etcd01", "https://a:2380"),
        ("etcd02", "https://b:2380"),
    ]


# ----------------------------------------------------------------------------- services


# a unit that does not exist (flanneld before the installer ran)
MISSING_SERVICE_CAPTURE = """\
@@kp-section show
Type=
Restart=no
MainPID=0
Result=success
NRestarts=0
LimitNOFILE=20000
Id=flanneld.service
LoadState=not-found
ActiveState=inactive
SubState=dead
FragmentPath=
DropInPaths=
UnitFileState=
NeedDaemonReload=no
@@kp-section cat
@@kp-section journal
@@kp-section match

"""


def test_service_running_and_configured() -> None:
    service = parse_service_output(raw(DOCKER_SERVICE_CAPTURE))
    assert service.unit == "docker.service" and service.state == "active, enabled" and service.running
    assert service.cmdline == ("/usr/sbin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock")
    assert service.env_files == {"/etc/default/docker": ""}
    assert service.configured_argv() == list(service.cmdline)
    assert len(service.journal) == 2
    assert service.diagnosis()[0].startswith("docker.service: active, enabled; Result=success")


def test_service_not_installed() -> None:
    service = parse_service_output(raw(MISSING_SERVICE_CAPTURE))
    assert not service.installed and not service.running and service.cmdline is None
    assert service.state == "not installed (not-found)"
    assert service.configured_argv() == []


def test_service_parse_error_without_show() -> None:
    with pytest.raises(ParseError):
        parse_service_output(raw("", "sh: systemctl: not found", 127))


def test_fact_commands_are_valid_sh_and_quote_their_arguments(cluster: Cluster) -> None:
    fact = service_fact("it's.service", "ETCD_[A-Z]*", journal_match="Using 'interface'")
    sh_syntax(fact.command)
    assert shlex.quote("it's.service") in fact.command
    peer = cluster.host("master01")
    exposure = etcd_facts.etcd_exposure(cluster, peer)
    assert exposure is not None
    for command in (exposure.command, etcd_facts.etcd_layout.command, etcd_facts.etcdctl_health(peer).command):
        sh_syntax(command)
    for fact in net_facts.network_facts(cluster, cluster.host("node01")):
        sh_syntax(fact.command)


def test_service_fact_runs_locally_and_keeps_only_named_variables(tmp_path: Any) -> None:
    """The script itself, on this machine: no systemd here, so `show` is empty but framed."""
    fact = service_fact("kubeproof-absent.service", "ETCD_[A-Z0-9_]*")
    done = subprocess.run(["sh", "-c", fact.command], capture_output=True, text=True, check=False)
    assert done.stdout.startswith("@@kp-section show")


# ----------------------------------------------------------------------------- etcd settings


def test_guide_unit_and_env_file_give_etcds_settings() -> None:
    service = parse_service_output(raw(service_capture(GUIDE_ETCD_ENV, GUIDE_ETCD_UNIT, None, {})))
    settings = configured_etcd_settings(service)
    assert settings["name"] == "etcd01"
    assert settings["listen-client-urls"] == "https://192.168.61.17:2379,http://127.0.0.1:2379"  # the flag wins
    assert settings["trusted-ca-file"] == "/opt/etcd/ssl/ca.pem"
    assert "client-cert-auth" not in settings
    assert running_etcd_settings(service) is None


# ----------------------------------------------------------------------------- layout, etcdctl, exposure


LAYOUT_MISSING = "dir /opt/etcd no\ndir /opt/etcd/bin no\ndir /opt/etcd/cfg no\ndir /opt/etcd/ssl no\n" + (
    "exe /opt/etcd/bin/etcd no\nexe /opt/etcd/bin/etcdctl no\ncfg no\npath  \n"
)


def test_layout_missing() -> None:
    found = parse_etcd_layout(raw(LAYOUT_MISSING))
    assert found.etcdctl_on_path is None
    assert found.missing() == [
        "/opt/etcd (directory)",
        "/opt/etcd/bin (directory)",
        "/opt/etcd/cfg (directory)",
        "/opt/etcd/ssl (directory)",
        "/opt/etcd/bin/etcd (executable)",
        "/opt/etcd/bin/etcdctl (executable)",
        "/opt/etcd/cfg/etcd (config file)",
    ]


def test_the_labs_layout() -> None:
    found = parse_etcd_layout(raw(LAB_LAYOUT_NODE01))
    assert found.missing() == []
    assert (found.etcdctl_on_path, found.etcdctl_resolved) == ("/usr/local/bin/etcdctl", "/opt/etcd/bin/etcdctl")
    assert found.versions == ("etcd Version: 3.4.23", "etcdctl version: 3.4.23")


def test_the_labs_etcd_member_runs_what_it_is_configured_with() -> None:
    service = parse_service_output(raw(LAB_ETCD_SERVICE_NODE01))
    configured, running = configured_etcd_settings(service), running_etcd_settings(service)
    assert running is not None and service.state == "active, enabled"
    assert {k: configured.get(k) for k in etcd_facts.ETCD_COMPARED_SETTINGS} == {
        k: running.get(k) for k in etcd_facts.ETCD_COMPARED_SETTINGS
    }
    assert configured["name"] == "etcd02" and configured["client-cert-auth"] == "true"
    assert configured["listen-client-urls"] == "https://192.168.61.18:2379,http://127.0.0.1:2379"
    assert service.properties["LimitNOFILE"] == "65536"


def test_the_labs_peer_probe_sees_tls_only_with_client_certificates(cluster: Cluster) -> None:
    answers = parse_exposure(raw(LAB_EXPOSURE_FROM_MASTER01))
    plain, tls = answers["http://192.168.61.22:2379/version"], answers["https://192.168.61.22:2379/version"]
    assert plain.connected and not plain.http_answer and plain.rc == 52  # Empty reply: etcd closed it
    assert tls.connected and not tls.http_answer and tls.rc == 55  # handshake refused without a certificate


def test_etcdctl_health_json() -> None:
    healthy = parse_etcdctl_health(raw('[{"endpoint":"https://192.168.61.17:2379","health":true,"took":"9.1ms"}]\n'))
    assert healthy.healthy and healthy.endpoint == "https://192.168.61.17:2379"
    down = parse_etcdctl_health(
        raw(
            '[{"endpoint":"https://192.168.61.22:2379","health":false,"took":"5.0s",'
            '"error":"context deadline exceeded"}]\n',
            "Error: unhealthy cluster",
            1,
        )
    )
    assert not down.healthy and down.error == "context deadline exceeded"
    nothing = parse_etcdctl_health(raw("", "Error: open /opt/etcd/ssl/server.pem: no such file or directory", 1))
    assert not nothing.healthy and "server.pem" in nothing.error


def test_exposure_answers() -> None:
    answers = parse_exposure(raw(EXPOSURE_REFUSED))
    assert len(answers) == 4
    refused = answers["http://192.168.61.22:2379/version"]
    assert not refused.connected and not refused.http_answer
    assert "Couldn't connect" in refused.message and refused.http_code == "000"


def test_exposure_peers_are_other_hosts(cluster: Cluster) -> None:
    peers = {m.name: exposure_peer(cluster, m) for m in cluster.etcd_members}
    assert {name: peer.name if peer else None for name, peer in peers.items()} == {
        "master01": "node01",
        "node01": "node02",
        "node02": "master01",
    }
    # every member is probed by exactly one peer's batch
    probed = [
        url
        for host in cluster.hosts
        if (fact := etcd_facts.etcd_exposure(cluster, host)) is not None
        for url in re.findall(r"https?://[0-9.]+:[0-9]+/version", fact.command)
    ]
    assert sorted(probed) == sorted(url for m in cluster.etcd_members for url in etcd_facts.exposure_urls(m.address))
