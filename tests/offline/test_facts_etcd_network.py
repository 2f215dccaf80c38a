"""ETCD, DOCKER and FLANNEL facts and probes, offline: parsers on output captured from the lab
nodes (Debian 12, systemd 252, iproute2 6.1, docker 20.10, etcd 3.4.23, flannel v0.28.10), and the
cross-layer probes on a session whose facts are those captures (no SSH, no etcd)."""

from __future__ import annotations

import ipaddress
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kubeproof.checks import CATALOGUE_DIR, NotApplicable, load_catalogue
from kubeproof.clients import CredentialFiles, EtcdClients
from kubeproof.facts import Fact, FactRecord, ParseError, Raw
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
from kubeproof.inventory import Cluster, parse_cluster_text
from kubeproof.probes import PROBES, load_probes
from kubeproof.probes import etcd as etcd_probes
from kubeproof.probes import network as net_probes
from kubeproof.session import Session, inventory_context
from kubeproof.transport import ProbeError
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


# ----------------------------------------------------------------------------- env files


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


def _sh_syntax(command: str) -> None:
    subprocess.run(["sh", "-n", "-c", command], check=True)


def test_fact_commands_are_valid_sh_and_quote_their_arguments(cluster: Cluster) -> None:
    fact = service_fact("it's.service", "ETCD_[A-Z]*", journal_match="Using 'interface'")
    _sh_syntax(fact.command)
    assert shlex.quote("it's.service") in fact.command
    peer = cluster.host("master01")
    exposure = etcd_facts.etcd_exposure(cluster, peer)
    assert exposure is not None
    for command in (exposure.command, etcd_facts.etcd_layout.command, etcd_facts.etcdctl_health(peer).command):
        _sh_syntax(command)
    for fact in net_facts.network_facts(cluster, cluster.host("node01")):
        _sh_syntax(fact.command)


def test_service_fact_runs_locally_and_keeps_only_named_variables(tmp_path: Any) -> None:
    """The script itself, on this machine: no systemd here, so `show` is empty but framed."""
    fact = service_fact("kubeproof-absent.service", "ETCD_[A-Z0-9_]*")
    done = subprocess.run(["sh", "-c", fact.command], capture_output=True, text=True, check=False)
    assert done.stdout.startswith("@@kp-section show")


# ----------------------------------------------------------------------------- etcd settings


def _service_capture(env_text: str, unit_text: str, cmdline: list[str] | None, environ: dict[str, str]) -> str:
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


def test_guide_unit_and_env_file_give_etcds_settings() -> None:
    service = parse_service_output(raw(_service_capture(GUIDE_ETCD_ENV, GUIDE_ETCD_UNIT, None, {})))
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


def _lab_etcd_outputs(cluster: Cluster) -> dict[str, dict[Fact[Any], str | tuple[str, str, int]]]:
    """Every member's service as node01's capture, its own name and address swapped in."""
    outputs: dict[str, dict[Fact[Any], str | tuple[str, str, int]]] = {}
    for host in cluster.etcd_members:
        capture = LAB_ETCD_SERVICE_NODE01.replace("192.168.61.18:", host.address + ":")
        capture = capture.replace("etcd02=https://" + host.address, "etcd02=https://192.168.61.18")
        capture = capture.replace('"etcd02"', f'"{host.etcd_name}"').replace("=etcd02\n", f"={host.etcd_name}\n")
        outputs[host.name] = {etcd_facts.etcd_service: capture}
    for host in cluster.hosts:
        exposure = etcd_facts.etcd_exposure(cluster, host)
        if exposure is not None:
            target = next(m for m in cluster.etcd_members if exposure_peer(cluster, m) == host)
            outputs[host.name][exposure] = LAB_EXPOSURE_FROM_MASTER01.replace("192.168.61.22", target.address)
    return outputs


@pytest.mark.parametrize("member", ["master01", "node01", "node02"])
def test_the_labs_members_pass_the_settings_rows(cluster: Cluster, member: str) -> None:
    session = offline_session(cluster, _lab_etcd_outputs(cluster))
    host = cluster.host(member)
    ctx = session.context(host)
    context = inventory_context(cluster, host)
    rows = [r for r in load_catalogue(CATALOGUE_DIR, known_probes=load_probes()) if r.id.startswith(("ETCD", "SEC-01"))]
    offline_probes = {
        "etcd_setting", "etcd_urls", "etcd_initial_cluster_name", "etcd_name_shared_with", "etcd_initial_cluster",
        "etcd_initial_cluster_differs", "etcd_token_differs", "etcd_unit_property", "etcd_service_state",
        "etcd_tls_settings", "etcd_running_drift", "etcd_plaintext", "etcd_without_client_cert",
        "etcd_client_cert_auth", "etcd_plaintext_listeners",
    }  # fmt: skip
    checked = 0
    for row in rows:
        name, _, argument = row.probe.partition("(")
        if name not in offline_probes or "cluster" in row.roles:
            continue
        result = PROBES[name](ctx, argument.rstrip(")"))
        value = result.value if hasattr(result, "value") else result
        assert row.holds(value, context), f"{row.key}@{member}: {value!r}"
        checked += 1
    assert checked >= 20


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


# captured from master01 before etcd was installed: nothing listens
EXPOSURE_REFUSED = "".join(
    f"{scheme}://192.168.61.22:{port}/version 7 curl: (7) Failed to connect to 192.168.61.22 port {port} after 0 ms:"
    " Couldn't connect to server  000\n"
    for port in (2379, 2380)
    for scheme in ("http", "https")
)


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


# ----------------------------------------------------------------------------- network parsers


# docker0 before the installer ran: docker's default bridge
DOCKER0_DEFAULT = (
    '[{"ifindex":3,"ifname":"docker0","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP"],"mtu":1500,'
    '"qdisc":"noqueue","operstate":"DOWN","group":"default","link_type":"ether","address":"02:42:62:73:f6:58",'
    '"broadcast":"ff:ff:ff:ff:ff:ff","linkinfo":{"info_kind":"bridge","info_data":{"stp_state":0}},'
    '"addr_info":[{"family":"inet","local":"172.17.0.1","prefixlen":16,"broadcast":"172.17.255.255",'
    '"scope":"global","label":"docker0"}]}]'
)
NODE01_MAC, NODE02_MAC = "ea:0f:e9:59:61:87", "f6:ad:d7:85:60:b7"


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


DOCKER_ENGINE_CAPTURE = (
    "dockerd=/usr/sbin/dockerd\nclient=20.10.24+dfsg1\nserver=20.10.24+dfsg1\n"
    '@@daemon.json\n{\n  "dns": ["127.0.0.11"]\n}\n'
)


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


# ----------------------------------------------------------------------------- catalogue


def test_catalogue_rows_load_and_cover_every_id() -> None:
    rows = load_catalogue(CATALOGUE_DIR, known_probes=load_probes())
    ids = {r.id for r in rows}
    wanted = {f"ETCD-{n:02d}" for n in range(1, 12)} | {"DOCKER-01", "DOCKER-02", "SEC-01"}
    wanted |= {f"FLANNEL-{n:02d}" for n in range(1, 9)}
    assert wanted <= ids
    sec01 = [r for r in rows if r.id == "SEC-01"]
    assert sec01 and all(r.kind == "finding" and r.section == "SEC" for r in sec01)


def test_expected_values_resolve_per_host(cluster: Cluster) -> None:
    rows = {r.key: r for r in load_catalogue(CATALOGUE_DIR, known_probes=load_probes())}
    context = inventory_context(cluster, cluster.host("node01"))
    assert rows["ETCD-03:client-only"].expected_value(context) == [
        "https://192.168.61.18:2379",
        "http://127.0.0.1:2379",
    ]
    assert rows["ETCD-05"].expected_value(context) == [
        "etcd01=https://192.168.61.17:2380",
        "etcd02=https://192.168.61.18:2380",
        "etcd03=https://192.168.61.22:2380",
    ]


# ----------------------------------------------------------------------------- probes on captured facts


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


def _etcd_outputs(env_by_host: dict[str, str], unit: str) -> dict[str, dict[Fact[Any], str | tuple[str, str, int]]]:
    return {host: {etcd_facts.etcd_service: _service_capture(env, unit, None, {})} for host, env in env_by_host.items()}


def _guide_env(name: str, address: str) -> str:
    return GUIDE_ETCD_ENV.replace('ETCD_NAME="etcd01"', f'ETCD_NAME="{name}"').replace(
        'ETCD_LISTEN_PEER_URLS="https://192.168.61.17', f'ETCD_LISTEN_PEER_URLS="https://{address}'
    )


def test_guide_node_copy_fails_etcd_02_04_05(cluster: Cluster) -> None:
    session = offline_session(
        cluster,
        _etcd_outputs(
            {"master01": GUIDE_ETCD_ENV, "node01": GUIDE_NODE01_COPY, "node02": GUIDE_ETCD_ENV},
            GUIDE_ETCD_UNIT,
        ),
    )
    node01 = session.context(cluster.host("node01"))
    assert PROBES["etcd_setting"](node01, "name") == "etcd01"  # ETCD-02: not etcd02
    assert PROBES["etcd_name_shared_with"](node01, "") == ["master01 (name=etcd01)", "node02 (name=etcd01)"]
    assert PROBES["etcd_urls"](node01, "advertise-client-urls") == ["https://192.168.61.17:2379"]  # ETCD-04
    entries = PROBES["etcd_initial_cluster"](node01, "")
    assert entries[-1] == 'etcd03=https://192.168.61.22:2380ETCD_INITIAL_CLUSTER_TOKEN="etcd-cluster"'  # ETCD-05
    assert PROBES["etcd_initial_cluster_differs"](node01, "")  # ETCD-05:identical
    # ETCD-03: the guide's unit adds the loopback listener to the env file's URL
    assert PROBES["etcd_urls"](node01, "listen-client-urls") == ["https://192.168.61.18:2379", "http://127.0.0.1:2379"]
    master = session.context(cluster.host("master01"))
    assert PROBES["etcd_initial_cluster_name"](master, "") == "etcd01"
    assert PROBES["etcd_tls_settings"](master, "")[2] == "trusted-ca-file=/opt/etcd/ssl/ca.pem"


def test_running_drift_and_not_running(cluster: Cluster) -> None:
    running_env = {k: v for k, v in parse_env_file(GUIDE_ETCD_ENV).items()}
    running_env["ETCD_ADVERTISE_CLIENT_URLS"] = "https://192.168.61.99:2379"
    unit = GUIDE_ETCD_UNIT.replace("${ETCD_ADVERTISE_CLIENT_URLS}", "${ETCD_ADVERTISE_CLIENT_URLS}")
    argv = expand_exec(parse_unit_text(unit).exec_start, running_env)
    capture = _service_capture(GUIDE_ETCD_ENV, unit, argv, {})
    session = offline_session(cluster, {"master01": {etcd_facts.etcd_service: capture}})
    drift = PROBES["etcd_running_drift"](session.context(cluster.host("master01")), "")
    assert drift.value == [
        "advertise-client-urls: configured 'https://192.168.61.17:2379', running 'https://192.168.61.99:2379'"
    ]
    stopped = offline_session(cluster, _etcd_outputs({"master01": GUIDE_ETCD_ENV}, GUIDE_ETCD_UNIT))
    with pytest.raises(ProbeError, match="prerequisite failed: etcd is not running"):
        PROBES["etcd_running_drift"](stopped.context(cluster.host("master01")), "")


def _member_answer(cluster: Cluster, name: str, **fields: Any) -> etcd_probes.MemberAnswer:
    host = cluster.host(name)
    return etcd_probes.MemberAnswer(host, f"https://{host.address}:2379", **fields)


def _listed(cluster: Cluster) -> list[etcd_probes.ListedMember]:
    return [
        etcd_probes.ListedMember(
            i + 1, h.etcd_name or "", (f"https://{h.address}:2380",), (f"https://{h.address}:2379",)
        )
        for i, h in enumerate(cluster.etcd_members)
    ]


def _api_session(cluster: Cluster, answers: dict[str, etcd_probes.MemberAnswer], **facts: Any) -> Session:
    session = offline_session(cluster, facts.get("outputs", {}))
    session._shared["etcd-clients"] = EtcdClients({}, CredentialFiles(Path("/nonexistent")))
    session._shared["etcd-cluster-view"] = etcd_probes.ClusterView(answers)
    return session


def test_one_member_down_fails_agreement_and_names_it(cluster: Cluster) -> None:
    listed = _listed(cluster)
    healthy = {"member_id": 0, "leader_id": 2, "raft_term": 7, "version": "3.4.23", "members": listed}
    answers = {
        "master01": _member_answer(cluster, "master01", raft_index=120, **{**healthy, "member_id": 1}),
        "node01": _member_answer(cluster, "node01", raft_index=121, **{**healthy, "member_id": 2}),
        "node02": _member_answer(cluster, "node02", error="UNAVAILABLE: failed to connect to all addresses"),
    }
    outputs = {"node02": {etcd_facts.etcd_service: _service_capture(GUIDE_ETCD_ENV, GUIDE_ETCD_UNIT, None, {})}}
    session = _api_session(cluster, answers, outputs=outputs)
    master, node02 = session.context(cluster.host("master01")), session.context(cluster.host("node02"))
    leader = PROBES["etcd_leader_problems"](master, "")
    assert leader.value == ["etcd03 did not answer: UNAVAILABLE: failed to connect to all addresses"]
    assert PROBES["etcd_term_problems"](master, "").value == leader.value
    assert PROBES["etcd_raft_index_spread"](master, "").value == 1
    assert PROBES["etcd_member_list"](master, "").value == sorted(
        inventory_context(cluster, cluster.host("master01"))["etcd_initial_cluster_entries"]
    )
    state = PROBES["etcd_member_state"](node02, "")
    assert state.value.startswith("not answering: UNAVAILABLE") and any("etcd.service" in d for d in state.diagnosis)
    assert PROBES["etcd_member_state"](master, "").value == "started"
    health = PROBES["etcd_api_health"](node02, "")
    assert health.value.startswith("unhealthy: UNAVAILABLE")
    with pytest.raises(ProbeError, match="prerequisite failed: etcd member etcd03 does not answer"):
        PROBES["etcd_replication_problems"](node02, "")


def test_a_leaderless_member_answers_status_but_not_reads(cluster: Cluster) -> None:
    """A partitioned member (seen on the lab): Status answers with leader 0, Alarm and reads time out."""
    listed = _listed(cluster)
    answers = {
        "master01": _member_answer(cluster, "master01", member_id=1, leader_id=1, raft_term=9, members=listed),
        "node01": _member_answer(cluster, "node01", member_id=2, leader_id=1, raft_term=9, members=listed),
        "node02": _member_answer(
            cluster,
            "node02",
            member_id=3,
            leader_id=0,
            raft_term=74,
            members=listed,
            alarms_error="DEADLINE_EXCEEDED: Deadline Exceeded",
            read_error="DEADLINE_EXCEEDED: Deadline Exceeded",
        ),
    }
    outputs = {"node02": {etcd_facts.etcd_service: _service_capture(GUIDE_ETCD_ENV, GUIDE_ETCD_UNIT, None, {})}}
    session = _api_session(cluster, answers, outputs=outputs)
    master, node02 = session.context(cluster.host("master01")), session.context(cluster.host("node02"))
    assert PROBES["etcd_member_state"](node02, "").value == "started"
    assert PROBES["etcd_api_health"](node02, "").value == "unhealthy: DEADLINE_EXCEEDED: Deadline Exceeded"
    assert PROBES["etcd_leader_problems"](master, "").value == ["no leader according to etcd03"]
    assert PROBES["etcd_term_problems"](master, "").value == ["raft terms differ: etcd01=9, etcd02=9, etcd03=74"]
    assert PROBES["etcd_alarms"](master, "") == []


def test_leaders_disagree(cluster: Cluster) -> None:
    listed = _listed(cluster)
    answers = {
        name: _member_answer(cluster, name, member_id=i + 1, leader_id=leader, raft_term=term, members=listed)
        for i, (name, leader, term) in enumerate([("master01", 1, 3), ("node01", 2, 4), ("node02", 0, 4)])
    }
    session = _api_session(cluster, answers)
    problems = PROBES["etcd_leader_problems"](session.context(cluster.host("master01")), "").value
    assert problems == [
        "no leader according to etcd03",
        "members disagree on the leader: etcd01 sees etcd01, etcd02 sees etcd02, etcd03 sees 0",
    ]
    assert PROBES["etcd_term_problems"](session.context(cluster.host("master01")), "").value == [
        "raft terms differ: etcd01=3, etcd02=4, etcd03=4"
    ]


def _exposure_outputs(cluster: Cluster, lines: str) -> dict[str, dict[Fact[Any], str | tuple[str, str, int]]]:
    outputs: dict[str, dict[Fact[Any], str | tuple[str, str, int]]] = {}
    for host in cluster.hosts:
        fact = etcd_facts.etcd_exposure(cluster, host)
        if fact is not None:
            outputs[host.name] = {fact: lines}
    return outputs


def test_peer_view_plaintext_and_missing_certificate(cluster: Cluster) -> None:
    served = (
        "http://192.168.61.17:2379/version 0 200\n"
        "https://192.168.61.17:2379/version 0 200\n"
        "http://192.168.61.17:2380/version 52 curl: (52) Empty reply from server 000\n"
        "https://192.168.61.17:2380/version 56 curl: (56) OpenSSL SSL_read: error:0A00045C:SSL routines::"
        "tlsv13 alert certificate required, errno 0 000\n"
    )
    outputs = _exposure_outputs(cluster, served)
    outputs["master01"] = {
        etcd_facts.etcd_service: _service_capture(
            GUIDE_ETCD_ENV.replace(
                'ETCD_LISTEN_CLIENT_URLS="https://192.168.61.17:2379"',
                'ETCD_LISTEN_CLIENT_URLS="https://192.168.61.17:2379,http://192.168.61.17:2379"',
            ),
            GUIDE_ETCD_UNIT,
            None,
            {},
        )
    }
    session = offline_session(cluster, outputs)
    master = session.context(cluster.host("master01"))
    plain = PROBES["etcd_plaintext"](master, "2379")
    assert plain.value == "served over plain http (HTTP 200)"
    assert plain.diagnosis[0] == "from node01: http://192.168.61.17:2379/version: HTTP 200"
    assert PROBES["etcd_plaintext"](master, "2380").value == "refused"
    # the guide's unit sets --trusted-ca-file: etcd should verify clients, and ETCD-10 applies
    accepted = PROBES["etcd_without_client_cert"](master, "2379")
    assert accepted.value == "accepted without a client certificate (HTTP 200)"
    assert accepted.diagnosis[-1] == "client-cert-auth: not set; trusted-ca-file: /opt/etcd/ssl/ca.pem"
    sec01 = PROBES["etcd_client_cert_auth"](master, "2379")
    assert sec01.value == "off"
    assert sec01.diagnosis[-1].endswith("from a peer host: accepted without a client certificate (HTTP 200)")
    assert PROBES["etcd_client_cert_auth"](master, "2380").diagnosis[-1].endswith("from a peer host: refused")
    assert PROBES["etcd_plaintext_listeners"](master, "") == ["http://192.168.61.17:2379"]


def test_no_trusted_ca_and_no_client_cert_auth_is_not_applicable_to_etcd_10(cluster: Cluster) -> None:
    unit = GUIDE_ETCD_UNIT.replace("--trusted-ca-file=/opt/etcd/ssl/ca.pem \\\n", "")
    outputs = _exposure_outputs(cluster, EXPOSURE_REFUSED)
    outputs["master01"] = {etcd_facts.etcd_service: _service_capture(GUIDE_ETCD_ENV, unit, None, {})}
    session = offline_session(cluster, outputs)
    master = session.context(cluster.host("master01"))
    with pytest.raises(NotApplicable, match=r"neither client-cert-auth nor trusted-ca-file: .*SEC-01"):
        PROBES["etcd_without_client_cert"](master, "2379")
    # the peer side still has its CA
    assert PROBES["etcd_client_cert_auth"](master, "2380").value == "off"


def test_peer_view_of_a_stopped_member_is_an_error_with_the_cause(cluster: Cluster) -> None:
    outputs = _exposure_outputs(cluster, EXPOSURE_REFUSED.replace("192.168.61.22", "192.168.61.17"))
    outputs["master01"] = {etcd_facts.etcd_service: _service_capture(GUIDE_ETCD_ENV, GUIDE_ETCD_UNIT, None, {})}
    session = offline_session(cluster, outputs)
    with pytest.raises(ProbeError, match=r"prerequisite failed: nothing answers on 192.168.61.17:2379 .*inactive"):
        PROBES["etcd_plaintext"](session.context(cluster.host("master01")), "2379")


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
    _sh_syntax(net_probes._start_script("kubeproof-probe-node01-ab12", "kubeproof/testbox:1"))
    _sh_syntax(net_probes._ping_script("kubeproof-probe-node01-ab12", ["172.17.90.2", "172.17.33.2"]))
