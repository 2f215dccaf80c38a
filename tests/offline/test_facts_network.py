"""NETWORK, DOCKER and FLANNEL, offline: the parsers of links, routes, neighbours, fdb, subnet.env, the
FORWARD chain, the docker engine and flannel's leases and config on output captured on the lab, and
the cross-layer probes on a session whose facts are those captures (no SSH, no etcd)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from kubeproof.clients import CredentialFiles, EtcdClients
from kubeproof.facts import Fact, ParseError
from kubeproof.facts import network as net_facts
from kubeproof.inventory import Cluster
from kubeproof.probes import PROBES, cross_ping
from kubeproof.probes import network as net_probes
from kubeproof.session import Session
from tests.offline.facts_samples import (
    DOCKER0_DEFAULT,
    DOCKER_ENGINE_CAPTURE,
    DOCKER_SERVICE_CAPTURE,
    LAB_DOCKER0_NODE01,
    LAB_DOCKER_ENGINE_NODE01,
    LAB_DOCKER_SERVICE_NODE01,
    LAB_FDB_NODE01,
    LAB_FLANNEL_LINK_NODE01,
    LAB_FLANNELD_SERVICE_NODE01,
    LAB_FORWARD_NODE01,
    LAB_NEIGH_NODE01,
    LAB_ROUTES_NODE01,
    LAB_SUBNET_ENV_NODE01,
    NODE01_MAC,
    NODE02_MAC,
    offline_session,
    raw,
    sh_syntax,
)
from tests.offline.facts_samples import cluster as cluster  # the module-scoped fixture

# ----------------------------------------------------------------------------- network parsers


def test_links() -> None:
    link = net_facts.parse_ip_link(raw(LAB_FLANNEL_LINK_NODE01))
    assert link is not None and link.kind == "vxlan" and link.up
    assert (link.vxlan["id"], link.vxlan["port"], link.vxlan["local"]) == (1, 8472, "192.168.61.18")
    assert link.addresses == ("172.17.36.0/32",) and link.mtu == 1450 and link.mac == NODE01_MAC
    docker0 = net_facts.parse_ip_link(raw(LAB_DOCKER0_NODE01))
    assert docker0 is not None and docker0.kind == "bridge" and docker0.addresses == ("172.17.36.1/24",)
    default = net_facts.parse_ip_link(raw(DOCKER0_DEFAULT))
    assert default is not None and default.addresses == ("172.17.0.1/16",) and default.mtu == 1500
    assert net_facts.parse_ip_link(raw("", 'Device "flannel.1" does not exist.', 1)) is None


def test_routes_neighbours_fdb() -> None:
    routes = net_facts.parse_routes(raw(LAB_ROUTES_NODE01))
    assert routes[1].describe() == "172.17.1.0/24 via 172.17.1.0 dev flannel.1 onlink"
    assert net_facts.parse_neighbours(raw(LAB_NEIGH_NODE01))[0].lladdr == NODE02_MAC
    assert net_facts.parse_fdb(raw(LAB_FDB_NODE01))[0].dst == "192.168.61.22"
    assert net_facts.parse_neighbours(raw("", 'Cannot find device "flannel.1"', 1)) == []
    with pytest.raises(ParseError):
        net_facts.parse_routes(raw("not json"))


def test_subnet_env_and_forward_chain() -> None:
    env = net_facts.parse_subnet_env(raw(LAB_SUBNET_ENV_NODE01))
    assert env == {
        "FLANNEL_NETWORK": "172.17.0.0/16",
        "FLANNEL_SUBNET": "172.17.36.1/24",
        "FLANNEL_MTU": "1450",
        "FLANNEL_IPMASQ": "true",
    }
    assert net_facts.parse_subnet_env(raw("", "cat: /run/flannel/subnet.env: No such file or directory", 1)) is None
    assert net_facts.parse_forward_chain(raw(LAB_FORWARD_NODE01))[0] == "-P FORWARD ACCEPT"


def test_docker_engine() -> None:
    engine = net_facts.parse_docker_engine(raw(DOCKER_ENGINE_CAPTURE))
    assert engine.dockerd == "/usr/sbin/dockerd" and engine.server_version == "20.10.24+dfsg1"
    assert engine.daemon_json == {"dns": ["127.0.0.11"]}
    down = net_facts.parse_docker_engine(
        raw(
            "dockerd=/usr/sbin/dockerd\nclient=20.10.24+dfsg1\n"
            "server_error=Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
            "Is the docker daemon running? \n"
        )
    )
    assert down.server_version is None and "Cannot connect" in down.server_error and down.daemon_json is None


LEASE_VALUE = (  # flannel writes the MAC in lower case; the parser does not rely on it
    '{"PublicIP":"192.168.61.18","PublicIPv6":null,"BackendType":"vxlan",'
    '"BackendData":{"VNI":1,"VtepMAC":"EA:0F:E9:59:61:87"}}'
)


def test_flannel_lease_and_config() -> None:
    lease = net_facts.parse_lease("/coreos.com/network/subnets/172.17.36.0-24", LEASE_VALUE.encode())
    assert lease.subnet == ipaddress.IPv4Network("172.17.36.0/24")
    assert (lease.public_ip, lease.backend_type, lease.vni, lease.vtep_mac) == ("192.168.61.18", "vxlan", 1, NODE01_MAC)
    dual = net_facts.parse_lease("/coreos.com/network/subnets/172.17.46.0-24&fd00::-64", LEASE_VALUE)
    assert dual.subnet == ipaddress.IPv4Network("172.17.46.0/24")
    with pytest.raises(ParseError):
        net_facts.parse_lease("/coreos.com/network/subnets/garbage", LEASE_VALUE)
    config = net_facts.parse_flannel_config(b'{"Network": "172.17.0.0/16", "Backend": {"Type": "vxlan"}}')
    assert net_facts.config_value(config, "Backend.Type") == "vxlan"
    assert net_facts.config_value(config, "Backend.Port") is None
    with pytest.raises(ParseError):
        net_facts.parse_flannel_config(b"{Network: 172.17.0.0/16}")


# ----------------------------------------------------------------------------- flannel cross-checks


# the two leases on the lab, as etcdctl get --prefix /coreos.com/network/subnets/ prints them
LAB_LEASES = {
    "/coreos.com/network/subnets/172.17.1.0-24": '{"PublicIP":"192.168.61.22","PublicIPv6":null,'
    '"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"f6:ad:d7:85:60:b7"}}',
    "/coreos.com/network/subnets/172.17.36.0-24": '{"PublicIP":"192.168.61.18","PublicIPv6":null,'
    '"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"ea:0f:e9:59:61:87"}}',
}


def _flannel_state(extra: dict[str, str] | None = None) -> net_probes.FlannelState:
    leases = [net_facts.parse_lease(key, value) for key, value in {**LAB_LEASES, **(extra or {})}.items()]
    config = net_facts.parse_flannel_config('{"Network": "172.17.0.0/16", "Backend": {"Type": "vxlan"}}')
    return net_probes.FlannelState(config, "", sorted(leases, key=lambda lease: lease.subnet), [])


def _network_session(cluster: Cluster, **overrides: str | tuple[str, str, int]) -> Session:
    facts: dict[Fact[Any], str | tuple[str, str, int]] = {
        net_facts.subnet_env: LAB_SUBNET_ENV_NODE01,
        net_facts.flannel_link: LAB_FLANNEL_LINK_NODE01,
        net_facts.docker0_link: LAB_DOCKER0_NODE01,
        net_facts.routes: LAB_ROUTES_NODE01,
        net_facts.flannel_neighbours: LAB_NEIGH_NODE01,
        net_facts.flannel_fdb: LAB_FDB_NODE01,
        net_facts.forward_chain: LAB_FORWARD_NODE01,
        net_facts.flanneld_service: LAB_FLANNELD_SERVICE_NODE01,
        net_facts.flanneld_version: "v0.28.10\n",
        net_facts.docker_service: LAB_DOCKER_SERVICE_NODE01,
        net_facts.docker_engine: LAB_DOCKER_ENGINE_NODE01,
    }
    by_name = {fact.name: fact for fact in facts}
    for name, output in overrides.items():
        facts[by_name[name]] = output
    session = offline_session(cluster, {"node01": facts})
    session._shared["etcd-clients"] = EtcdClients({}, CredentialFiles(Path("/nonexistent")))
    session._shared["flannel-etcd-state"] = _flannel_state()
    return session


@pytest.mark.parametrize(
    "probe_name",
    [
        "flannel_lease_problems",
        "flannel_subnet_env_problems",
        "flannel_vxlan_problems",
        "docker0_address_problems",
        "docker0_mtu_problems",
        "flannel_route_problems",
        "flannel_neighbour_problems",
        "flannel_fdb_problems",
        "docker_flannel_wiring",
        "dockerd_bridge_problems",
    ],
)
def test_the_labs_agreeing_layers_have_no_problems(cluster: Cluster, probe_name: str) -> None:
    session = _network_session(cluster)
    observation = PROBES[probe_name](session.context(cluster.host("node01")), "")
    assert observation.value == [], observation
    assert observation.diagnosis == () or probe_name == "docker_flannel_wiring"


def test_the_labs_flanneld_and_docker(cluster: Cluster) -> None:
    node01 = _network_session(cluster).context(cluster.host("node01"))
    assert PROBES["flanneld_state"](node01, "").value == "active, enabled"
    assert PROBES["flanneld_etcd_endpoints"](node01, "") == [
        "https://192.168.61.17:2379",
        "https://192.168.61.18:2379",
        "https://192.168.61.22:2379",
    ]
    assert PROBES["flanneld_etcd_tls"](node01, "") == [
        "etcd-cafile=/opt/etcd/ssl/ca.pem",
        "etcd-certfile=/opt/etcd/ssl/server.pem",
        "etcd-keyfile=/opt/etcd/ssl/server-key.pem",
    ]
    assert [PROBES["flannel_vxlan"](node01, a).value for a in ("id", "port", "local")] == [1, 8472, "192.168.61.18"]
    assert PROBES["docker_installed"](node01, "") == "docker 20.10.24+dfsg1 (/usr/sbin/dockerd)"
    assert PROBES["docker_service_state"](node01, "").value == "active, enabled"
    assert PROBES["docker_api"](node01, "").value == "answers"
    assert PROBES["flannel_subnet_env_keys"](node01, "") == sorted(net_facts.SUBNET_ENV_KEYS)


def test_each_layer_disagreeing_is_named(cluster: Cluster) -> None:
    node01 = cluster.host("node01")
    docker0_default = _network_session(cluster, **{"ip-link:docker0": DOCKER0_DEFAULT})
    assert PROBES["docker0_address_problems"](docker0_default.context(node01), "").value == [
        "docker0 172.17.0.1/16 lies outside FLANNEL_SUBNET 172.17.36.1/24"
    ]
    assert PROBES["docker0_mtu_problems"](docker0_default.context(node01), "").value == [
        "docker0 MTU 1500, FLANNEL_MTU 1450"
    ]
    no_route = _network_session(cluster, **{"ip-routes": "[]"})
    assert PROBES["flannel_route_problems"](no_route.context(node01), "").value == [
        "no route to 172.17.1.0/24 (node02); wanted 172.17.1.0/24 via 172.17.1.0 dev flannel.1 onlink"
    ]
    wrong_route = _network_session(
        cluster, **{"ip-routes": LAB_ROUTES_NODE01.replace('"gateway":"172.17.1.0","dev":"flannel.1"', '"dev":"eth0"')}
    )
    assert PROBES["flannel_route_problems"](wrong_route.context(node01), "").value == [
        "route to 172.17.1.0/24 (node02) is 172.17.1.0/24 dev eth0 onlink, "
        "wanted 172.17.1.0/24 via 172.17.1.0 dev flannel.1 onlink"
    ]
    stale_fdb = _network_session(cluster, **{"bridge-fdb:flannel.1": LAB_FDB_NODE01.replace("61.22", "61.99")})
    assert PROBES["flannel_fdb_problems"](stale_fdb.context(node01), "").value == [
        f"fdb sends {NODE02_MAC} (node02) to 192.168.61.99, not 192.168.61.22"
    ]
    no_fdb = _network_session(cluster, **{"bridge-fdb:flannel.1": "[]"})
    assert PROBES["flannel_fdb_problems"](no_fdb.context(node01), "").value == [
        f"no fdb entry for {NODE02_MAC} (node02) on flannel.1"
    ]
    wrong_neighbour = _network_session(cluster, **{"ip-neigh:flannel.1": LAB_NEIGH_NODE01.replace("f6:ad", "aa:bb")})
    assert PROBES["flannel_neighbour_problems"](wrong_neighbour.context(node01), "").value == [
        f"neighbour 172.17.1.0 (node02) is aa:bb:d7:85:60:b7, its lease says {NODE02_MAC}"
    ]
    # what a deleted lease left behind (seen on the lab: flanneld did not remove it)
    stale = _network_session(
        cluster,
        **{
            "ip-routes": LAB_ROUTES_NODE01.rstrip()[:-1] + ',{"dst":"172.17.250.0/24","gateway":"172.17.250.0",'
            '"dev":"flannel.1","flags":["onlink"]}]',
            "ip-neigh:flannel.1": LAB_NEIGH_NODE01.rstrip()[:-1]
            + ',{"dst":"172.17.250.0","lladdr":"02:00:5e:00:00:01",'
            '"state":["PERMANENT"]},{"dst":"172.17.251.0","lladdr":"02:00:5e:00:00:02","state":["FAILED"]}]',
            "bridge-fdb:flannel.1": LAB_FDB_NODE01.rstrip()[:-1] + ',{"mac":"02:00:5e:00:00:01","dst":"192.168.61.22",'
            '"flags":["self"],"state":"permanent"}]',
        },
    )
    assert PROBES["flannel_route_problems"](stale.context(node01), "").value == [
        "stale route 172.17.250.0/24 via 172.17.250.0 dev flannel.1 onlink: no lease for 172.17.250.0/24"
    ]
    assert PROBES["flannel_neighbour_problems"](stale.context(node01), "").value == [
        "stale neighbour 172.17.250.0 lladdr 02:00:5e:00:00:01: no lease with that gateway"
    ]
    assert PROBES["flannel_fdb_problems"](stale.context(node01), "").value == [
        "stale fdb entry 02:00:5e:00:00:01 dst 192.168.61.22: no lease with that VtepMAC"
    ]
    wrong_env = _network_session(cluster, **{"flannel.subnet-env": LAB_SUBNET_ENV_NODE01.replace("36.1/24", "37.1/24")})
    assert PROBES["flannel_subnet_env_problems"](wrong_env.context(node01), "").value == [
        "FLANNEL_SUBNET=172.17.37.1/24, this node's lease is 172.17.36.0/24"
    ]
    assert PROBES["dockerd_bridge_problems"](wrong_env.context(node01), "").value == [
        "dockerd --bip=172.17.36.1/24, FLANNEL_SUBNET=172.17.37.1/24"
    ]
    small_mtu = _network_session(
        cluster, **{"ip-link:flannel.1": LAB_FLANNEL_LINK_NODE01.replace('"mtu":1450', '"mtu":1400')}
    )
    assert PROBES["flannel_vxlan_problems"](small_mtu.context(node01), "").value == [
        "flannel.1 MTU 1400, FLANNEL_MTU 1450"
    ]
    recreated = _network_session(cluster, **{"ip-link:flannel.1": LAB_FLANNEL_LINK_NODE01.replace("ea:0f", "ee:0f")})
    assert PROBES["flannel_vxlan_problems"](recreated.context(node01), "").value == [
        f"flannel.1 MAC ee:0f:e9:59:61:87, the lease publishes VtepMAC {NODE01_MAC}"
    ]
    gone = _network_session(cluster, **{"ip-link:flannel.1": ("", 'Device "flannel.1" does not exist.', 1)})
    missing = PROBES["flannel_vxlan"](gone.context(node01), "id")
    assert missing.value == "no flannel.1 device"
    assert any("Using interface with name eth0 and address 192.168.61.18" in line for line in missing.diagnosis)


def test_lease_conflicts_and_missing_lease(cluster: Cluster) -> None:
    session = _network_session(cluster)
    session._shared["flannel-etcd-state"] = _flannel_state(
        {
            "/coreos.com/network/subnets/172.17.36.128-25": LAB_LEASES["/coreos.com/network/subnets/172.17.36.0-24"],
            "/coreos.com/network/subnets/10.9.0.0-24": LAB_LEASES["/coreos.com/network/subnets/172.17.1.0-24"].replace(
                "61.22", "61.30"
            ),
        }
    )
    master = session.context(cluster.host("master01"))
    assert PROBES["flannel_lease_conflicts"](master, "").value == [
        "10.9.0.0/24 (PublicIP 192.168.61.30) lies outside Network 172.17.0.0/16",
        "172.17.36.0/24 (PublicIP 192.168.61.18) overlaps 172.17.36.128/25 (PublicIP 192.168.61.18)",
    ]
    node01_problems = PROBES["flannel_lease_problems"](session.context(cluster.host("node01")), "")
    assert node01_problems.value == ["2 leases with PublicIP 192.168.61.18: 172.17.36.0/24, 172.17.36.128/25"]
    assert any("Using interface" in line for line in node01_problems.diagnosis)
    # FLANNEL-04/05/07 do not repeat FLANNEL-03's failure: they say why they cannot compare
    node01 = session.context(cluster.host("node01"))
    assert PROBES["flannel_subnet_env_problems"](node01, "").value == [
        "no single lease with PublicIP 192.168.61.18 to compare with (FLANNEL-03)"
    ]


def test_flannel_config_field(cluster: Cluster) -> None:
    session = _network_session(cluster)
    master = session.context(cluster.host("master01"))
    assert PROBES["flannel_config"](master, "Network").value == "172.17.0.0/16"
    assert PROBES["flannel_config"](master, "Backend.Type").value == "vxlan"
    session._shared["flannel-etcd-state"] = net_probes.FlannelState(
        None, "/coreos.com/network/config does not exist (v3 API)", [], []
    )
    assert PROBES["flannel_config"](master, "Network").value == "/coreos.com/network/config does not exist (v3 API)"


def test_docker_wiring(cluster: Cluster) -> None:
    capture = DOCKER_SERVICE_CAPTURE.replace(
        "@@kp-section envfile /etc/default/docker\n",
        "@@kp-section envfile /etc/default/docker\n@@kp-section envfile /run/flannel/docker\n"
        'DOCKER_OPT_BIP="--bip=172.17.36.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=false"\nDOCKER_OPT_MTU="--mtu=1450"\n'
        'DOCKER_NETWORK_OPTIONS=" --bip=172.17.36.1/24 --ip-masq=false --mtu=1450"\n',
    )
    unwired = offline_session(cluster, {"node01": {net_facts.docker_service: DOCKER_SERVICE_CAPTURE}})
    problems = PROBES["docker_flannel_wiring"](unwired.context(cluster.host("node01")), "").value
    assert problems == [
        "docker.service reads no EnvironmentFile under /run/flannel (EnvironmentFile=/etc/default/docker)"
    ]
    wired_unit = capture.replace(
        "ExecStart=/usr/sbin/dockerd -H fd://",
        "EnvironmentFile=/run/flannel/docker\nExecStart=/usr/sbin/dockerd $DOCKER_NETWORK_OPTIONS -H fd://",
    )
    wired = offline_session(cluster, {"node01": {net_facts.docker_service: wired_unit}})
    assert PROBES["docker_flannel_wiring"](wired.context(cluster.host("node01")), "").value == []
    # dockerd still runs without --bip: DOCKER-02:running names both values
    running = offline_session(
        cluster,
        {
            "node01": {
                net_facts.docker_service: wired_unit,
                net_facts.docker_engine: DOCKER_ENGINE_CAPTURE,
                net_facts.subnet_env: LAB_SUBNET_ENV_NODE01,
            }
        },
    )
    assert PROBES["dockerd_bridge_problems"](running.context(cluster.host("node01")), "").value == [
        "dockerd --bip=(not set), FLANNEL_SUBNET=172.17.36.1/24",
        "dockerd --mtu=(not set), FLANNEL_MTU=1450",
    ]


def test_cross_ping_scripts_are_valid_sh() -> None:
    sh_syntax(cross_ping._start_script("kubeproof-probe-node01-ab12", "kubeproof/testbox:1"))
    sh_syntax(cross_ping._ping_script("kubeproof-probe-node01-ab12", ["172.17.90.2", "172.17.33.2"]))


def test_cross_ping_starts_no_container_where_docker_is_not_running(cluster: Cluster) -> None:
    """The docker CLI would wait on docker.socket for a docker that cannot start: FLANNEL-08 asks the
    gathered docker.service fact first (120 s of timeouts on the lab, with flanneld failing to start)."""
    stopped = LAB_DOCKER_SERVICE_NODE01.replace("ActiveState=active\n", "ActiveState=inactive\n")
    stopped = stopped.replace("SubState=running\n", "SubState=dead\n")
    session = offline_session(
        cluster,
        {
            "node01": {net_facts.docker_service: LAB_DOCKER_SERVICE_NODE01},
            "node02": {net_facts.docker_service: stopped},
        },
    )
    assert cross_ping._docker_not_running(session, cluster.host("node01")) == ""
    assert (
        cross_ping._docker_not_running(session, cluster.host("node02")) == "docker.service is inactive (dead), enabled"
    )
