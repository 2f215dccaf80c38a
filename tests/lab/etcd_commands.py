"""etcdctl as the lab tests run it on a member: v3 API, the guide's TLS files, one endpoint or several."""

from __future__ import annotations

import shlex

from kubeproof import layout


def etcdctl_command(addresses: list[str], *args: str) -> str:
    """`ETCDCTL_API=3 etcdctl --cacert ... --endpoints=https://<address>:2379,... ARGS`, quoted."""
    ssl = layout.ETCD_SSL
    argv = [
        layout.ETCD_BIN + "/etcdctl",
        "--cacert=" + ssl + "/ca.pem",
        "--cert=" + ssl + "/server.pem",
        "--key=" + ssl + "/server-key.pem",
        "--endpoints=" + ",".join(f"https://{address}:2379" for address in addresses),
        *args,
    ]
    return "ETCDCTL_API=3 " + shlex.join(argv)
