"""What the offline ETCD, DOCKER and FLANNEL fact and probe tests share: output captured from the lab
nodes (Debian 12, systemd 252, iproute2 6.1, docker 20.10, etcd 3.4.23, flannel v0.28.10), the
guide's etcd files, the guide's cluster as a fixture, and a session whose facts are captures (no SSH)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from kubeproof.facts import Fact, FactRecord, Raw
from kubeproof.inventory import Cluster, parse_cluster_text
from kubeproof.session import Session
from tests.offline.guide_cluster import GUIDE_CLUSTER_YAML

CLUSTER_YAML = GUIDE_CLUSTER_YAML


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return parse_cluster_text(CLUSTER_YAML, "cluster.yaml")


def raw(stdout: str, stderr: str = "", rc: int = 0) -> Raw:
    return Raw(stdout, stderr, rc)


# ----------------------------------------------------------------------------- captured on the lab

# The lab after `kubeproof apply` (node01 = etcd02 and worker), printed by the facts'
# own commands; journal lines shortened. node01 leases 172.17.36.0/24, node02 172.17.1.0/24.
LAB_ETCD_SERVICE_NODE01 = (
    "@@kp-section show\n"
    "Type=notify\n"
    "Restart=on-failure\n"
    "MainPID=748\n"
    "Result=success\n"
    "NRestarts=0\n"
    "EnvironmentFiles=/opt/etcd/cfg/etcd (ignore_errors=no)\n"
    "LimitNOFILE=65536\n"
    "Id=etcd.service\n"
    "LoadState=loaded\n"
    "ActiveState=active\n"
    "SubState=running\n"
    "FragmentPath=/lib/systemd/system/etcd.service\n"
    "DropInPaths=\n"
    "UnitFileState=enabled\n"
    "NeedDaemonReload=no\n"
    "@@kp-section cat\n"
    "# /lib/systemd/system/etcd.service\n"
    "# Managed by kubeproof bootstrap; a re-run rewrites local edits.\n"
    "[Unit]\n"
    "Description=Etcd Server\n"
    "After=network.target\n"
    "After=network-online.target\n"
    "Wants=network-online.target\n"
    "\n"
    "[Service]\n"
    "Type=notify\n"
    "EnvironmentFile=/opt/etcd/cfg/etcd\n"
    "ExecStart=/opt/etcd/bin/etcd --cert-file=/opt/etcd/ssl/server.pem \\\n"
    "  --key-file=/opt/etcd/ssl/server-key.pem \\\n"
    "  --trusted-ca-file=/opt/etcd/ssl/ca.pem \\\n"
    "  --peer-cert-file=/opt/etcd/ssl/server.pem \\\n"
    "  --peer-key-file=/opt/etcd/ssl/server-key.pem \\\n"
    "  --peer-trusted-ca-file=/opt/etcd/ssl/ca.pem \\\n"
    "  --client-cert-auth \\\n"
    "  --peer-client-cert-auth\n"
    "Restart=on-failure\n"
    "LimitNOFILE=65536\n"
    "\n"
    "[Install]\n"
    "WantedBy=multi-user.target\n"
    "@@kp-section envfile /opt/etcd/cfg/etcd\n"
    'ETCD_NAME="etcd02"\n'
    'ETCD_DATA_DIR="/var/lib/etcd/default.etcd"\n'
    'ETCD_LISTEN_PEER_URLS="https://192.168.61.18:2380"\n'
    'ETCD_LISTEN_CLIENT_URLS="https://192.168.61.18:2379,http://127.0.0.1:2379"\n'
    "\n"
    'ETCD_INITIAL_ADVERTISE_PEER_URLS="https://192.168.61.18:2380"\n'
    'ETCD_ADVERTISE_CLIENT_URLS="https://192.168.61.18:2379"\n'
    'ETCD_INITIAL_CLUSTER="etcd01=https://192.168.61.17:2380,etcd02=https://192.168.61.18:2380,'
    'etcd03=https://192.168.61.22:2380"\n'
    'ETCD_INITIAL_CLUSTER_TOKEN="etcd-cluster"\n'
    'ETCD_INITIAL_CLUSTER_STATE="new"\n'
    "@@kp-section cmdline\n"
    "/opt/etcd/bin/etcd\n"
    "--cert-file=/opt/etcd/ssl/server.pem\n"
    "--key-file=/opt/etcd/ssl/server-key.pem\n"
    "--trusted-ca-file=/opt/etcd/ssl/ca.pem\n"
    "--peer-cert-file=/opt/etcd/ssl/server.pem\n"
    "--peer-key-file=/opt/etcd/ssl/server-key.pem\n"
    "--peer-trusted-ca-file=/opt/etcd/ssl/ca.pem\n"
    "--client-cert-auth\n"
    "--peer-client-cert-auth\n"
    "@@kp-section environ\n"
    "ETCD_NAME=etcd02\n"
    "ETCD_DATA_DIR=/var/lib/etcd/default.etcd\n"
    "ETCD_LISTEN_PEER_URLS=https://192.168.61.18:2380\n"
    "ETCD_LISTEN_CLIENT_URLS=https://192.168.61.18:2379,http://127.0.0.1:2379\n"
    "ETCD_INITIAL_ADVERTISE_PEER_URLS=https://192.168.61.18:2380\n"
    "ETCD_ADVERTISE_CLIENT_URLS=https://192.168.61.18:2379\n"
    "ETCD_INITIAL_CLUSTER=etcd01=https://192.168.61.17:2380,etcd02=https://192.168.61.18:2380,"
    "etcd03=https://192.168.61.22:2380\n"
    "ETCD_INITIAL_CLUSTER_TOKEN=etcd-cluster\n"
    "ETCD_INITIAL_CLUSTER_STATE=new\n"
    "@@kp-section journal\n"
    '2026-11-26T23:48:47+0000 node01 etcd[748]: rejected connection from "192.168.61.22:45838" (error '
    '"tls: client didn\'t provide a certificate", ServerName "")\n'
    '2026-11-26T23:48:50+0000 node01 etcd[748]: rejected connection from "192.168.61.22:59066" (error '
    '"tls: first record does not look like a TLS\n'
    '2026-11-26T23:48:50+0000 node01 etcd[748]: rejected connection from "192.168.61.22:59074" (error '
    '"tls: client didn\'t provide a certificate", ServerName "")\n'
    '2026-11-26T23:48:50+0000 node01 etcd[748]: rejected connection from "192.168.61.22:45848" (error '
    '"tls: first record does not look like a TLS\n'
    '2026-11-26T23:48:50+0000 node01 etcd[748]: rejected connection from "192.168.61.22:45852" (error '
    '"tls: client didn\'t provide a certificate", ServerName "")\n'
)
LAB_FLANNELD_SERVICE_NODE01 = (
    "@@kp-section show\n"
    "Type=notify\n"
    "Restart=on-failure\n"
    "MainPID=859\n"
    "Result=success\n"
    "NRestarts=0\n"
    "EnvironmentFiles=/opt/kubernetes/cfg/flanneld (ignore_errors=no)\n"
    "LimitNOFILE=524288\n"
    "Id=flanneld.service\n"
    "LoadState=loaded\n"
    "ActiveState=active\n"
    "SubState=running\n"
    "FragmentPath=/lib/systemd/system/flanneld.service\n"
    "DropInPaths=\n"
    "UnitFileState=enabled\n"
    "NeedDaemonReload=no\n"
    "@@kp-section cat\n"
    "# /lib/systemd/system/flanneld.service\n"
    "# Managed by kubeproof bootstrap; a re-run rewrites local edits.\n"
    "[Unit]\n"
    "Description=Flanneld overlay address etcd agent\n"
    "After=network-online.target network.target\n"
    "Before=docker.service\n"
    "\n"
    "[Service]\n"
    "Type=notify\n"
    "EnvironmentFile=/opt/kubernetes/cfg/flanneld\n"
    "ExecStart=/opt/kubernetes/bin/flanneld --ip-masq $FLANNEL_OPTIONS\n"
    "ExecStartPost=/opt/kubernetes/bin/mk-docker-opts.sh -k DOCKER_NETWORK_OPTIONS -d /run/flannel/docker\n"
    "Restart=on-failure\n"
    "\n"
    "[Install]\n"
    "WantedBy=multi-user.target\n"
    "@@kp-section envfile /opt/kubernetes/cfg/flanneld\n"
    'FLANNEL_OPTIONS="--etcd-endpoints=https://192.168.61.17:2379,https://192.168.61.18:2379,https://'
    "192.168.61.22:2379 -etcd-cafile=/opt/etcd/ssl/ca.pem -etcd-certfile=/opt/etcd/ssl/server.pem "
    '-etcd-keyfile=/opt/etcd/ssl/server-key.pem --iface=eth0"\n'
    "@@kp-section cmdline\n"
    "/opt/kubernetes/bin/flanneld\n"
    "--ip-masq\n"
    "--etcd-endpoints=https://192.168.61.17:2379,https://192.168.61.18:2379,https://192.168.61.22:2379\n"
    "-etcd-cafile=/opt/etcd/ssl/ca.pem\n"
    "-etcd-certfile=/opt/etcd/ssl/server.pem\n"
    "-etcd-keyfile=/opt/etcd/ssl/server-key.pem\n"
    "--iface=eth0\n"
    "@@kp-section environ\n"
    "FLANNEL_OPTIONS=--etcd-endpoints=https://192.168.61.17:2379,https://192.168.61.18:2379,https://"
    "192.168.61.22:2379 -etcd-cafile=/opt/etcd/ssl/ca.pem -etcd-certfile=/opt/etcd/ssl/server.pem "
    "-etcd-keyfile=/opt/etcd/ssl/server-key.pem --iface=eth0\n"
    "@@kp-section journal\n"
    "2026-11-26T23:47:03+0000 node01 flanneld[859]: I1126 23:47:03.815686     859 subnet.go:138] Batch "
    "elem [0] is { lease.Event{Type:0, Lease:le\n"
    "2026-11-26T23:47:03+0000 node01 flanneld[859]: I1126 23:47:03.816078     859 vxlan_network.go:340] "
    "Received Subnet Event with VxLan: Backend\n"
    "2026-11-26T23:47:03+0000 node01 flanneld[859]: I1126 23:47:03.818700     859 local_manager.go:322] "
    "manager.WatchLease: sending reset results...\n"
    "2026-11-26T23:47:03+0000 node01 flanneld[859]: I1126 23:47:03.818874     859 local_manager.go:399] "
    "Waiting for 22h59m58.999849125s to renew lease\n"
    "2026-11-26T23:47:03+0000 node01 systemd[1]: Started flanneld.service - Flanneld overlay address "
    "etcd agent.\n"
    "@@kp-section match\n"
    "I1126 23:47:03.672029     859 match.go:269] Using interface with name eth0 and address 192.168.61.18\n"
)
LAB_DOCKER_SERVICE_NODE01 = (
    "@@kp-section show\n"
    "Type=notify\n"
    "Restart=on-failure\n"
    "MainPID=947\n"
    "Result=success\n"
    "NRestarts=0\n"
    "EnvironmentFiles=/etc/default/docker (ignore_errors=yes)\n"
    "EnvironmentFiles=/run/flannel/docker (ignore_errors=no)\n"
    "EnvironmentFiles=/run/flannel/subnet.env (ignore_errors=no)\n"
    "LimitNOFILE=1048576\n"
    "Id=docker.service\n"
    "LoadState=loaded\n"
    "ActiveState=active\n"
    "SubState=running\n"
    "FragmentPath=/lib/systemd/system/docker.service\n"
    "DropInPaths=/etc/systemd/system/docker.service.d/flannel.conf\n"
    "UnitFileState=enabled\n"
    "NeedDaemonReload=no\n"
    "@@kp-section cat\n"
    "# /lib/systemd/system/docker.service\n"
    "[Unit]\n"
    "Description=Docker Application Container Engine\n"
    "Documentation=https://docs.docker.com\n"
    "After=network-online.target docker.socket firewalld.service containerd.service\n"
    "Wants=network-online.target containerd.service\n"
    "Requires=docker.socket\n"
    "\n"
    "[Service]\n"
    "Type=notify\n"
    "# the default is not to use systemd for cgroups because the delegate issues still\n"
    "# exists and systemd currently does not support the cgroup feature set required\n"
    "# for containers run by docker\n"
    "EnvironmentFile=-/etc/default/docker\n"
    "ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS\n"
    "ExecReload=/bin/kill -s HUP $MAINPID\n"
    "LimitNOFILE=1048576\n"
    "# Having non-zero Limit*s causes performance problems due to accounting overhead\n"
    "# in the kernel. We recommend using cgroups to do container-local accounting.\n"
    "LimitNPROC=infinity\n"
    "LimitCORE=infinity\n"
    "# Uncomment TasksMax if your systemd version supports it.\n"
    "# Only systemd 226 and above support this version.\n"
    "TasksMax=infinity\n"
    "TimeoutStartSec=0\n"
    "# set delegate yes so that systemd does not reset the cgroups of docker containers\n"
    "Delegate=yes\n"
    "# kill only the docker process, not all processes in the cgroup\n"
    "KillMode=process\n"
    "# restart the docker process if it exits prematurely\n"
    "Restart=on-failure\n"
    "StartLimitBurst=3\n"
    "StartLimitInterval=60s\n"
    "\n"
    "[Install]\n"
    "WantedBy=multi-user.target\n"
    "\n"
    "# /etc/systemd/system/docker.service.d/flannel.conf\n"
    "# Managed by kubeproof bootstrap; a re-run rewrites local edits.\n"
    "[Unit]\n"
    "After=flanneld.service\n"
    "Requires=flanneld.service\n"
    "\n"
    "[Service]\n"
    "EnvironmentFile=/run/flannel/docker\n"
    "EnvironmentFile=/run/flannel/subnet.env\n"
    "ExecStart=\n"
    "ExecStart=/usr/sbin/dockerd $DOCKER_NETWORK_OPTIONS -H fd:// --containerd=/run/containerd/"
    "containerd.sock $DOCKER_OPTS\n"
    'ExecStartPost=/bin/sh -c "ip link set dev docker0 mtu ${FLANNEL_MTU}"\n'
    "@@kp-section envfile /etc/default/docker\n"
    "@@kp-section envfile /run/flannel/docker\n"
    'DOCKER_OPT_BIP="--bip=172.17.36.1/24"\n'
    'DOCKER_OPT_IPMASQ="--ip-masq=false"\n'
    'DOCKER_OPT_MTU="--mtu=1450"\n'
    'DOCKER_NETWORK_OPTIONS=" --bip=172.17.36.1/24 --ip-masq=false --mtu=1450"\n'
    "@@kp-section envfile /run/flannel/subnet.env\n"
    "FLANNEL_NETWORK=172.17.0.0/16\n"
    "FLANNEL_SUBNET=172.17.36.1/24\n"
    "FLANNEL_MTU=1450\n"
    "FLANNEL_IPMASQ=true\n"
    "@@kp-section cmdline\n"
    "/usr/sbin/dockerd\n"
    "--bip=172.17.36.1/24\n"
    "--ip-masq=false\n"
    "--mtu=1450\n"
    "-H\n"
    "fd://\n"
    "--containerd=/run/containerd/containerd.sock\n"
    "@@kp-section environ\n"
    "DOCKER_OPT_BIP=--bip=172.17.36.1/24\n"
    "DOCKER_OPT_IPMASQ=--ip-masq=false\n"
    "DOCKER_OPT_MTU=--mtu=1450\n"
    "DOCKER_NETWORK_OPTIONS= --bip=172.17.36.1/24 --ip-masq=false --mtu=1450\n"
    "FLANNEL_NETWORK=172.17.0.0/16\n"
    "FLANNEL_SUBNET=172.17.36.1/24\n"
    "FLANNEL_MTU=1450\n"
    "FLANNEL_IPMASQ=true\n"
    "@@kp-section journal\n"
    '2026-11-26T23:48:41+0000 node01 dockerd[947]: time="2026-11-26T23:48:41.818902988Z" level=info '
    'msg="ignoring event" container=655523c1719a4f\n'
    '2026-11-26T23:48:41+0000 node01 dockerd[947]: time="2026-11-26T23:48:41.882338292Z" level=error '
    'msg="error removing container" container=655\n'
    '2026-11-26T23:48:44+0000 node01 dockerd[947]: time="2026-11-26T23:48:44.255528024Z" level=info '
    'msg="Container failed to exit within 2s of si\n'
    '2026-11-26T23:48:44+0000 node01 dockerd[947]: time="2026-11-26T23:48:44.274520121Z" level=info '
    'msg="ignoring event" container=be54e0cacebf5b\n'
    '2026-11-26T23:48:44+0000 node01 dockerd[947]: time="2026-11-26T23:48:44.319166421Z" level=info '
    'msg="ignoring event" container=918e8b3ea89310\n'
)
LAB_FLANNEL_LINK_NODE01 = (
    '[{"ifindex":3,"ifname":"flannel.1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1450,'
    '"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","link_type":"ether","address":"ea:0f:e9:'
    '59:61:87","broadcast":"ff:ff:ff:ff:ff:ff","promiscuity":0,"allmulti":0,"min_mtu":68,"max_mtu":65535,'
    '"linkinfo":{"info_kind":"vxlan","info_data":{"id":1,"local":"192.168.61.18","link":"eth0",'
    '"port_range":{"low":0,"high":0},"port":8472,"learning":false,"ttl":0,"df":"unset","ageing":300,'
    '"udp_csum":true,"udp_zero_csum6_tx":false,"udp_zero_csum6_rx":false}},"num_tx_queues":1,'
    '"num_rx_queues":1,"gso_max_size":65536,"gso_max_segs":65535,"tso_max_size":524280,"tso_max_segs":'
    '65535,"gro_max_size":65536,"addr_info":[{"family":"inet","local":"172.17.36.0","prefixlen":32,'
    '"scope":"global","label":"flannel.1","valid_life_time":4294967295,"preferred_life_time":'
    "4294967295}]}]\n"
)
LAB_DOCKER0_NODE01 = (
    '[{"ifindex":2,"ifname":"docker0","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP"],"mtu":1450,'
    '"qdisc":"noqueue","operstate":"DOWN","group":"default","link_type":"ether","address":"02:42:c3:4b:'
    '34:9a","broadcast":"ff:ff:ff:ff:ff:ff","promiscuity":0,"allmulti":0,"min_mtu":68,"max_mtu":65535,'
    '"linkinfo":{"info_kind":"bridge","info_data":{"forward_delay":1500,"hello_time":200,"max_age":2000,'
    '"ageing_time":30000,"stp_state":0,"priority":32768,"vlan_filtering":0,"bridge_id":"8000.2:42:c3:4b:'
    '34:9a","root_id":"8000.2:42:c3:4b:34:9a","root_port":0,"root_path_cost":0,"topology_change":0,'
    '"topology_change_detected":0,"hello_timer":0.00,"tcn_timer":0.00,"topology_change_timer":0.00,'
    '"gc_timer":181.64,"group_fwd_mask":"0","group_addr":"01:80:c2:00:00:00","mcast_snooping":1,'
    '"no_linklocal_learn":0,"mcast_vlan_snooping":0,"mcast_router":1,"mcast_query_use_ifaddr":0,'
    '"mcast_querier":0,"mcast_hash_elasticity":16,"mcast_hash_max":4096,"mcast_last_member_cnt":2,'
    '"mcast_startup_query_cnt":2,"mcast_last_member_intvl":100,"mcast_membership_intvl":26000,'
    '"mcast_querier_intvl":25500,"mcast_query_intvl":12500,"mcast_query_response_intvl":1000,'
    '"mcast_startup_query_intvl":3124,"mcast_stats_enabled":0,"mcast_igmp_version":2,"mcast_mld_version":'
    '1,"nf_call_iptables":0,"nf_call_ip6tables":0,"nf_call_arptables":0}},"num_tx_queues":1,'
    '"num_rx_queues":1,"gso_max_size":65536,"gso_max_segs":65535,"tso_max_size":524280,"tso_max_segs":'
    '65535,"gro_max_size":65536,"addr_info":[{"family":"inet","local":"172.17.36.1","prefixlen":24,'
    '"broadcast":"172.17.36.255","scope":"global","label":"docker0","valid_life_time":4294967295,'
    '"preferred_life_time":4294967295}]}]\n'
)
LAB_ROUTES_NODE01 = (
    '[{"dst":"default","gateway":"192.168.61.1","dev":"eth0","flags":[]},{"dst":"172.17.1.0/24",'
    '"gateway":"172.17.1.0","dev":"flannel.1","flags":["onlink"]},{"dst":"172.17.36.0/24","dev":'
    '"docker0","protocol":"kernel","scope":"link","prefsrc":"172.17.36.1","flags":["linkdown"]},{"dst":'
    '"192.168.61.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.168.61.18","flags":'
    "[]}]\n"
)
LAB_NEIGH_NODE01 = '[{"dst":"172.17.1.0","lladdr":"f6:ad:d7:85:60:b7","state":["PERMANENT"]}]\n'
LAB_FDB_NODE01 = '[{"mac":"f6:ad:d7:85:60:b7","dst":"192.168.61.22","flags":["self"],"state":"permanent"}]\n'
LAB_FORWARD_NODE01 = (
    "-P FORWARD ACCEPT\n"
    '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j '
    "KUBE-PROXY-FIREWALL\n"
    '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD\n'
    '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j '
    "KUBE-SERVICES\n"
    '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service '
    'portals" -j KUBE-EXTERNAL-SERVICES\n'
    "-A FORWARD -j DOCKER-USER\n"
    "-A FORWARD -j DOCKER-ISOLATION-STAGE-1\n"
    "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
    "-A FORWARD -o docker0 -j DOCKER\n"
    "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT\n"
    "-A FORWARD -i docker0 -o docker0 -j ACCEPT\n"
    '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n'
)
LAB_EXPOSURE_FROM_MASTER01 = (
    "http://192.168.61.22:2379/version 52 curl: (52) Empty reply from server  000\n"
    "https://192.168.61.22:2379/version 55 curl: (55) getpeername() failed with errno 107: Transport "
    "endpoint is not connected  000\n"
    "http://192.168.61.22:2380/version 52 curl: (52) Empty reply from server  000\n"
    "https://192.168.61.22:2380/version 55 curl: (55) getpeername() failed with errno 107: Transport "
    "endpoint is not connected  000\n"
)
LAB_LAYOUT_NODE01 = (
    "dir /opt/etcd yes\n"
    "dir /opt/etcd/bin yes\n"
    "dir /opt/etcd/cfg yes\n"
    "dir /opt/etcd/ssl yes\n"
    "exe /opt/etcd/bin/etcd yes\n"
    "version etcd Version: 3.4.23\n"
    "exe /opt/etcd/bin/etcdctl yes\n"
    "version etcdctl version: 3.4.23\n"
    "cfg yes\n"
    "path /usr/local/bin/etcdctl /opt/etcd/bin/etcdctl\n"
)
LAB_ETCDCTL_HEALTH_NODE01 = '[{"endpoint":"https://192.168.61.18:2379","health":true,"took":"4.79334ms"}]\n'
LAB_SUBNET_ENV_NODE01 = (
    "FLANNEL_NETWORK=172.17.0.0/16\nFLANNEL_SUBNET=172.17.36.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
)
LAB_DOCKER_ENGINE_NODE01 = (
    "dockerd=/usr/sbin/dockerd\n"
    "client=20.10.24+dfsg1\n"
    "server=20.10.24+dfsg1\n"
    "@@daemon.json\n"
    "{\n"
    '  "dns": ["127.0.0.11"]\n'
    "}\n"
)


# ----------------------------------------------------------------------------- the guide's etcd files


# the guide's etcd.sh output for master01 (heredoc expanded)
GUIDE_ETCD_ENV = """\
#[Member]
ETCD_NAME="etcd01"
ETCD_DATA_DIR="/var/lib/etcd/default.etcd"
ETCD_LISTEN_PEER_URLS="https://192.168.61.17:2380"
ETCD_LISTEN_CLIENT_URLS="https://192.168.61.17:2379"

#[Clustering]
ETCD_INITIAL_ADVERTISE_PEER_URLS="https://192.168.61.17:2380"
ETCD_ADVERTISE_CLIENT_URLS="https://192.168.61.17:2379"
ETCD_INITIAL_CLUSTER="etcd01=https://192.168.61.17:2380,etcd02=https://192.168.61.18:2380,etcd03=https://192.168.61.22:2380"
ETCD_INITIAL_CLUSTER_TOKEN="etcd-cluster"
ETCD_INITIAL_CLUSTER_STATE="new"
"""

# the guide's step 9 node01 copy, byte for byte (name and advertise URL not changed, the line wrapped)
GUIDE_NODE01_COPY = """\
#[Member]
ETCD_NAME="etcd01"
ETCD_DATA_DIR="/var/lib/etcd/default.etcd"
ETCD_LISTEN_PEER_URLS="https://192.168.61.18:2380"
ETCD_LISTEN_CLIENT_URLS="https://192.168.61.18:2379"

#[Clustering]
ETCD_INITIAL_ADVERTISE_PEER_URLS="https://192.168.61.18:2380"
ETCD_ADVERTISE_CLIENT_URLS="https://192.168.61.17:2379"
ETCD_INITIAL_CLUSTER="etcd01=https://192.168.61.17:2380,etcd02=https://192.168.61.18:2380,etcd03
=https://192.168.61.22:2380"ETCD_INITIAL_CLUSTER_TOKEN="etcd-cluster"
ETCD_INITIAL_CLUSTER_STATE="new"
"""


# the guide's etcd.service (etcd.sh's heredoc, expanded), as `systemctl cat` shows it
GUIDE_ETCD_UNIT = """\
# /usr/lib/systemd/system/etcd.service
[Unit]
Description=Etcd Server
After=network.target
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
EnvironmentFile=/opt/etcd/cfg/etcd
ExecStart=/opt/etcd/bin/etcd \\
--name=${ETCD_NAME} \\
--data-dir=${ETCD_DATA_DIR} \\
--listen-peer-urls=${ETCD_LISTEN_PEER_URLS} \\
--listen-client-urls=${ETCD_LISTEN_CLIENT_URLS},http://127.0.0.1:2379 \\
--advertise-client-urls=${ETCD_ADVERTISE_CLIENT_URLS} \\
--initial-advertise-peer-urls=${ETCD_INITIAL_ADVERTISE_PEER_URLS} \\
--initial-cluster=${ETCD_INITIAL_CLUSTER} \\
--initial-cluster-token=${ETCD_INITIAL_CLUSTER_TOKEN} \\
--initial-cluster-state=new \\
--cert-file=/opt/etcd/ssl/server.pem \\
--key-file=/opt/etcd/ssl/server-key.pem \\
--trusted-ca-file=/opt/etcd/ssl/ca.pem \\
--peer-cert-file=/opt/etcd/ssl/server.pem \\
--peer-key-file=/opt/etcd/ssl/server-key.pem \\
--peer-trusted-ca-file=/opt/etcd/ssl/ca.pem
Restart=on-failure
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
"""


# ----------------------------------------------------------------------------- captured before the installer ran


# docker.service on node01 before the installer ran (captured with service_fact)
DOCKER_SERVICE_CAPTURE = """\
@@kp-section show
Type=notify
Restart=on-failure
MainPID=86
Result=success
NRestarts=0
EnvironmentFiles=/etc/default/docker (ignore_errors=yes)
LimitNOFILE=1048576
Id=docker.service
LoadState=loaded
ActiveState=active
SubState=running
FragmentPath=/lib/systemd/system/docker.service
DropInPaths=
UnitFileState=enabled
NeedDaemonReload=no
@@kp-section cat
# /lib/systemd/system/docker.service
[Unit]
Description=Docker Application Container Engine
Documentation=https://docs.docker.com
After=network-online.target docker.socket firewalld.service containerd.service
Wants=network-online.target containerd.service
Requires=docker.socket

[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS
ExecReload=/bin/kill -s HUP $MAINPID
LimitNOFILE=1048576
Restart=on-failure

[Install]
WantedBy=multi-user.target
@@kp-section envfile /etc/default/docker
@@kp-section cmdline
/usr/sbin/dockerd
-H
fd://
--containerd=/run/containerd/containerd.sock
@@kp-section environ
@@kp-section journal
2026-11-26T23:43:29+0000 node01 dockerd[86]: level=info msg="Daemon has completed initialization"
2026-11-26T23:43:29+0000 node01 systemd[1]: Started docker.service - Docker Application Container Engine.
"""


# captured from master01 before etcd was installed: nothing listens
EXPOSURE_REFUSED = "".join(
    f"{scheme}://192.168.61.22:{port}/version 7 curl: (7) Failed to connect to 192.168.61.22 port {port} after 0 ms:"
    " Couldn't connect to server  000\n"
    for port in (2379, 2380)
    for scheme in ("http", "https")
)


# docker0 before the installer ran: docker's default bridge
DOCKER0_DEFAULT = (
    '[{"ifindex":3,"ifname":"docker0","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP"],"mtu":1500,'
    '"qdisc":"noqueue","operstate":"DOWN","group":"default","link_type":"ether","address":"02:42:62:73:f6:58",'
    '"broadcast":"ff:ff:ff:ff:ff:ff","linkinfo":{"info_kind":"bridge","info_data":{"stp_state":0}},'
    '"addr_info":[{"family":"inet","local":"172.17.0.1","prefixlen":16,"broadcast":"172.17.255.255",'
    '"scope":"global","label":"docker0"}]}]'
)
NODE01_MAC, NODE02_MAC = "ea:0f:e9:59:61:87", "f6:ad:d7:85:60:b7"


DOCKER_ENGINE_CAPTURE = (
    "dockerd=/usr/sbin/dockerd\nclient=20.10.24+dfsg1\nserver=20.10.24+dfsg1\n"
    '@@daemon.json\n{\n  "dns": ["127.0.0.11"]\n}\n'
)


# ----------------------------------------------------------------------------- helpers


def sh_syntax(command: str) -> None:
    subprocess.run(["sh", "-n", "-c", command], check=True)


def service_capture(env_text: str, unit_text: str, cmdline: list[str] | None, environ: dict[str, str]) -> str:
    lines = [
        "@@kp-section show",
        "Id=etcd.service",
        "LoadState=loaded",
        "ActiveState=active" if cmdline else "ActiveState=inactive",
        "SubState=running" if cmdline else "SubState=dead",
        "UnitFileState=enabled",
        "Type=notify",
        "Restart=on-failure",
        "LimitNOFILE=65536",
        "MainPID=1234" if cmdline else "MainPID=0",
        "EnvironmentFiles=/opt/etcd/cfg/etcd (ignore_errors=no)",
        "@@kp-section cat",
        unit_text,
        "@@kp-section envfile /opt/etcd/cfg/etcd",
        env_text,
    ]
    if cmdline is not None:
        lines += ["@@kp-section cmdline", *cmdline, "@@kp-section environ", *(f"{k}={v}" for k, v in environ.items())]
    lines += ["@@kp-section journal"]
    return "\n".join(lines) + "\n"


class NoNetwork:
    """A connection that must not be used: every fact of these tests is pre-recorded."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, command: str, **kwargs: Any) -> Any:
        raise AssertionError(f"{self.name}: offline test ran {command[:80]!r}")


class OfflineTransport:
    def connection(self, host: Any) -> NoNetwork:
        return NoNetwork(host if isinstance(host, str) else host.name)

    def stats(self) -> dict[str, dict[str, Any]]:
        return {}

    def close(self) -> None:
        return None


def offline_session(cluster: Cluster, outputs: dict[str, dict[Fact[Any], str | tuple[str, str, int]]]) -> Session:
    session = Session(cluster, OfflineTransport())  # type: ignore[arg-type]
    for host, facts in outputs.items():
        host_facts = session.facts(host)
        for fact, output in facts.items():
            stdout, stderr, rc = (output, "", 0) if isinstance(output, str) else output
            host_facts._records[fact.name] = FactRecord(host, fact.name, fact.command, rc, stdout, stderr, 0.0)
    return session
