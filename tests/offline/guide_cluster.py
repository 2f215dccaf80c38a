"""The guide's three hosts as a cluster file, shared by the offline tests."""

from __future__ import annotations

GUIDE_CLUSTER_YAML = """\
name: lab
profile: seed
hosts:
  - name: master01
    address: 192.168.61.17
    roles: [master, etcd]
    etcd_name: etcd01
  - name: node01
    address: 192.168.61.18
    roles: [node, etcd]
    etcd_name: etcd02
  - name: node02
    address: 192.168.61.22
    roles: [node, etcd]
    etcd_name: etcd03
network:
  pod_cidr: 172.17.0.0/16
  service_cidr: 10.0.0.0/24
ssh:
  config: ssh_config
"""
