from __future__ import annotations

from pathlib import Path

import pytest

from kubeproof.inventory import (
    InventoryError,
    cluster_from_host_specs,
    load_ansible_inventory,
    load_cluster_file,
    parse_cluster_text,
    parse_host_spec,
)
from tests.offline.guide_cluster import GUIDE_CLUSTER_YAML

GOOD = GUIDE_CLUSTER_YAML


def test_cluster_file_parses_roles_and_derived_values(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(GOOD)
    cluster = load_cluster_file(path)
    assert [h.name for h in cluster.masters] == ["master01"]
    assert [h.name for h in cluster.workers] == ["node01", "node02"]
    assert cluster.etcd_initial_cluster == (
        "etcd01=https://192.168.61.17:2380,etcd02=https://192.168.61.18:2380,etcd03=https://192.168.61.22:2380"
    )
    assert cluster.network.service_first_address == "10.0.0.1"
    assert cluster.ssh_config == tmp_path / "ssh_config"


@pytest.mark.parametrize(
    ("broken", "line", "words"),
    [
        (GOOD.replace("roles: [node, etcd]\n    etcd_name: etcd02", "roles: [worker]"), 10, "unknown role 'worker'"),
        (GOOD.replace("192.168.61.22", "192.168.61.300"), 13, "not an IP address"),
        (GOOD.replace("profile: seed", "profile: strict"), 2, "profile 'strict'"),
        (GOOD.replace("pod_cidr: 172.17.0.0/16", "pod_cidr: 172.17.0.0/33"), 17, "not a network CIDR"),
        (GOOD.replace("name: node02", "name: node01"), 12, "listed twice"),
        (GOOD + "colour: blue\n", 21, "unknown key 'colour'"),
        (GOOD.replace("hosts:\n", "hosts: [\n", 1), 4, "YAML syntax"),
    ],
)
def test_cluster_file_errors_name_the_line(tmp_path: Path, broken: str, line: int, words: str) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(broken)
    with pytest.raises(InventoryError) as caught:
        load_cluster_file(path)
    assert words in str(caught.value)
    assert caught.value.line == line, str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_unreadable_cluster_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read cluster file"):
        load_cluster_file(tmp_path / "missing.yaml")


def test_host_specs_in_testinfra_syntax() -> None:
    spec = parse_host_spec("paramiko://root@master01:2222?ssh_config=/tmp/cfg")
    assert (spec.backend, spec.user, spec.host, spec.port) == ("paramiko", "root", "master01", 2222)
    assert spec.params["ssh_config"] == "/tmp/cfg"
    assert parse_host_spec("node01").host == "node01"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("docker://master01", "backend 'docker' is not supported"),
        ("paramiko://root@master01:port", "port is not a number"),
        ("paramiko://root@", "no host name"),
        ("paramiko://ro ot@ma ster", "not a host name"),
    ],
)
def test_malformed_host_specs(spec: str, words: str) -> None:
    with pytest.raises(InventoryError, match=words):
        parse_host_spec(spec)


def test_hosts_restrict_a_cluster_file_and_reject_strangers() -> None:
    cluster = parse_cluster_text(GOOD)
    only = cluster_from_host_specs([parse_host_spec("paramiko://root@node01")], cluster)
    assert [h.name for h in only.hosts] == ["node01"]
    with pytest.raises(InventoryError, match="not a host of cluster file"):
        cluster_from_host_specs([parse_host_spec("node09")], cluster)


def test_hosts_alone_use_roles_param_or_the_guide_table() -> None:
    cluster = cluster_from_host_specs(
        [parse_host_spec("master01"), parse_host_spec("paramiko://10.1.1.5?roles=node+etcd&etcd_name=etcd09")], None
    )
    assert cluster.host("master01").roles == {"master", "etcd"}
    assert cluster.host("10.1.1.5").etcd_name == "etcd09"
    with pytest.raises(InventoryError, match="unknown role 'worker'"):
        cluster_from_host_specs([parse_host_spec("paramiko://x?roles=worker")], None)
    with pytest.raises(InventoryError, match="no role known"):
        cluster_from_host_specs([parse_host_spec("db01")], None)


def test_ansible_inventory_groups_of_kubeasz_and_kubespray(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text(
        "[etcd]\n192.168.1.1 NODE_NAME=etcd1\n192.168.1.2 NODE_NAME=etcd2\n\n"
        "[kube_master]\n192.168.1.1 k8s_nodename=master01\n\n"
        "[kube-node]\nnode01 ansible_host=192.168.1.2\n\n[all:vars]\nSECURE_PORT=6443\n"
    )
    cluster = load_ansible_inventory(path)
    assert {h.name: sorted(h.roles) for h in cluster.hosts} == {
        "master01": ["etcd", "master"],
        "node01": ["etcd", "node"],
    }
    bad = tmp_path / "bad"
    bad.write_text("[etcd\nfoo\n")
    with pytest.raises(InventoryError, match=r":1: malformed group header"):
        load_ansible_inventory(bad)
