"""The suites choose the API and the check from the versions read off the hosts.

Command outputs are in the formats the releases print, taken from their source:
* etcd 3.3.27 etcdctl/ctlv2/command/cluster_health.go (`member <id> is healthy: got healthy result
  from <url>`, `cluster is healthy|degraded|unavailable`, `failed to check the health of member ...`);
* etcd 3.3.27 v2 keys API answers: store/event.go (`action`, `node`), store/node_extern.go (`key`,
  `value`, `dir`, `nodes`, `modifiedIndex`, `createdIndex`), error/error.go (`errorCode` 100, `Key
  not found`, `cause`, `index`), lease values as flannel writes them (subnet/etcdv2: LeaseAttrs);
* `etcd --version` (`etcd Version: 3.3.27`), `flanneld --version` (`v0.11.0`), `kubelet --version`
  (`Kubernetes v1.19.16`).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kubeproof.checks import NotApplicable
from kubeproof.facts import Fact, ParseError, Raw
from kubeproof.facts import etcd as etcd_facts
from kubeproof.facts import master as master_facts
from kubeproof.facts import network as net_facts
from kubeproof.facts import node as node_facts
from kubeproof.inventory import Cluster
from kubeproof.probes import PROBES, load_probes
from kubeproof.session import Session
from kubeproof.transport import CommandResult
from kubeproof.versions import Version, etcd_serves_v2, flannel_etcd_api, parse_version
from tests.offline.facts_samples import (
    GUIDE_ETCD_ENV,
    GUIDE_ETCD_UNIT,
    LAB_ETCDCTL_HEALTH_NODE01,
    LAB_LAYOUT_NODE01,
    offline_session,
    service_capture,
)
from tests.offline.facts_samples import cluster as cluster  # the module-scoped fixture

load_probes()

# ----------------------------------------------------------------------------- versions


def test_versions_parse_from_what_each_binary_prints() -> None:
    assert parse_version("Kubernetes v1.19.16") == Version(1, 19, 16)
    assert parse_version("etcd Version: 3.3.27\nGit SHA: Not provided") == Version(3, 3, 27)
    assert parse_version("v0.28.10") == Version(0, 28, 10)
    assert parse_version("v1.34.4-dirty+abc") == Version(1, 34, 4)
    assert parse_version("Client Version: v1.37.2") == Version(1, 37, 2)
    assert parse_version("missing") is None and parse_version("") is None and parse_version(None) is None
    assert Version(1, 19, 16) < Version(1, 20) < Version(1, 34, 4) < Version(1, 37, 2)
    assert Version(0, 9, 1) < Version(0, 18) and str(Version(3, 4, 23)) == "3.4.23"
    assert Version(1, 19, 16).v == "v1.19.16"


def test_the_boundaries() -> None:
    assert flannel_etcd_api(Version(0, 17, 0)) == 2 and flannel_etcd_api(Version(0, 18, 1)) == 3
    assert etcd_serves_v2(Version(3, 3, 27), enable_v2=False)
    assert not etcd_serves_v2(Version(3, 4, 23), enable_v2=False)
    assert etcd_serves_v2(Version(3, 5, 10), enable_v2=True)
    assert not etcd_serves_v2(Version(3, 6, 4), enable_v2=True)


# ----------------------------------------------------------------------------- ETCD-07:etcdctl

CLUSTER_HEALTH_33 = (
    "member 3a57933972cb5131 is healthy: got healthy result from https://192.168.61.17:2379\n"
    "member 8e9e05c52164694d is healthy: got healthy result from https://192.168.61.18:2379\n"
    "member f4d3edba9e8d2a35 is unhealthy: got unhealthy result from https://192.168.61.22:2379\n"
    "cluster is degraded\n"
)


def test_cluster_health_is_read_for_the_member_asked() -> None:
    raw = Raw(CLUSTER_HEALTH_33, "", 5)  # ExitClusterNotHealthy: another member is unhealthy
    assert etcd_facts.parse_cluster_health(raw, "https://192.168.61.18:2379").healthy
    sick = etcd_facts.parse_cluster_health(raw, "https://192.168.61.22:2379")
    assert not sick.healthy and "is unhealthy: got unhealthy result" in sick.error
    refused = Raw(
        "failed to check the health of member 8e9e05c52164694d on https://192.168.61.18:2379: "
        "Get https://192.168.61.18:2379/health: dial tcp 192.168.61.18:2379: connect: connection refused\n"
        "member 8e9e05c52164694d is unreachable: [https://192.168.61.18:2379] are all unreachable\n"
        "cluster is degraded\n",
        "",
        5,
    )
    down = etcd_facts.parse_cluster_health(refused, "https://192.168.61.18:2379")
    assert not down.healthy and "are all unreachable" in down.error
    no_list = Raw(
        "cluster may be unhealthy: failed to list members\n",
        "Error:  client: etcd cluster is unavailable or misconfigured; error #0: dial tcp: connection refused\n",
        4,
    )
    failed = etcd_facts.parse_cluster_health(no_list, "https://192.168.61.18:2379")
    assert not failed.healthy and "failed to list members" in failed.error and "unavailable" in failed.error


def _etcd_session(cluster: Cluster, release: str, *, env: str = GUIDE_ETCD_ENV, extra: dict[Fact[Any], str]) -> Session:
    host = cluster.host("node01")
    layout = LAB_LAYOUT_NODE01.replace("etcd Version: 3.4.23", f"etcd Version: {release}")
    outputs: dict[Fact[Any], str | tuple[str, str, int]] = {
        etcd_facts.etcd_layout: layout,
        etcd_facts.etcd_service: service_capture(env, GUIDE_ETCD_UNIT, None, {}),
        **extra,
    }
    assert host.address == "192.168.61.18"
    return offline_session(cluster, {"node01": outputs})


def test_etcdctl_health_speaks_v2_to_etcd_3_3_and_v3_to_3_4(cluster: Cluster) -> None:
    node01 = cluster.host("node01")
    # etcd 3.3: the guide's cluster-health; only the v2 fact is recorded, the v3 one would raise
    v2 = _etcd_session(cluster, "3.3.27", extra={etcd_facts.etcdctl_cluster_health(node01): CLUSTER_HEALTH_33})
    observed = PROBES["etcdctl_health"](v2.context(node01), "")
    assert observed.value == "healthy"
    assert observed.seen == ("etcd 3.3.27 serves the v2 API by default: ETCDCTL_API=2 etcdctl cluster-health",)
    assert any("ETCDCTL_API=2" in source and "cluster-health" in source for source in observed.sources)
    # etcd 3.4: endpoint health over v3
    v3 = _etcd_session(cluster, "3.4.23", extra={etcd_facts.etcdctl_health(node01): LAB_ETCDCTL_HEALTH_NODE01})
    observed = PROBES["etcdctl_health"](v3.context(node01), "")
    assert observed.value == "healthy" and "endpoint health" in observed.seen[0]
    assert "etcd 3.4.23 with enable-v2=false" in observed.seen[0]
    # etcd 3.4 with the v2 API enabled: the v2 path, as the member speaks it
    enabled = _etcd_session(
        cluster,
        "3.4.23",
        env=GUIDE_ETCD_ENV + 'ETCD_ENABLE_V2="true"\n',
        extra={etcd_facts.etcdctl_cluster_health(node01): CLUSTER_HEALTH_33},
    )
    observed = PROBES["etcdctl_health"](enabled.context(node01), "")
    assert "enable-v2=true" in observed.seen[0] and "cluster-health" in observed.seen[0]
    # a member of 3.3 that is down: unhealthy with the line about it
    down = _etcd_session(
        cluster,
        "3.3.27",
        extra={etcd_facts.etcdctl_cluster_health(node01): CLUSTER_HEALTH_33.replace("61.18:2379", "61.99:2379")},
    )
    assert PROBES["etcdctl_health"](down.context(node01), "").value.startswith("unhealthy")


# ----------------------------------------------------------------------------- FLANNEL-01 and the v2 keys

V2_CONFIG = {
    "action": "get",
    "node": {
        "key": "/coreos.com/network/config",
        "value": '{"Network": "172.17.0.0/16", "Backend": {"Type": "vxlan"}}',
        "modifiedIndex": 9,
        "createdIndex": 9,
    },
}
V2_SUBNETS = {
    "action": "get",
    "node": {
        "key": "/coreos.com/network/subnets",
        "dir": True,
        "nodes": [
            {
                "key": "/coreos.com/network/subnets/172.17.38.0-24",
                "value": '{"PublicIP":"192.168.61.18","BackendType":"vxlan",'
                '"BackendData":{"VtepMAC":"6e:1c:61:5a:4b:2f"}}',
                "expiration": "2026-12-07T02:00:00.1Z",
                "ttl": 86000,
                "modifiedIndex": 12,
                "createdIndex": 12,
            }
        ],
        "modifiedIndex": 10,
        "createdIndex": 10,
    },
}
KEY_NOT_FOUND = {"errorCode": 100, "message": "Key not found", "cause": "/coreos.com/network/config", "index": 12}


def _run_v2_fact(tmp_path: Path, cluster: Cluster, config: object, config_code: str, curl_rc: int = 0) -> Raw:
    """The fact's own shell command, run here against a stub curl that answers as etcd 3.3 does."""
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    answers = tmp_path / "answers"
    answers.mkdir(exist_ok=True)
    (answers / "config").write_text(json.dumps(config) + "\n" + config_code)
    (answers / "subnets").write_text(json.dumps(V2_SUBNETS) + "\n200")
    (stub / "curl").write_text(
        "#!/bin/sh\n"
        f"[ {curl_rc} = 0 ] || {{ echo 'curl: (7) Failed to connect to 192.168.61.17 port 2379'; "
        f"printf '\\n000'; exit {curl_rc}; }}\n"
        'for a in "$@"; do last=$a; done\n'
        f"case $last in */config) cat {answers}/config;; *) cat {answers}/subnets;; esac\n"
    )
    (stub / "curl").chmod(0o755)
    fact = net_facts.flannel_v2_keys(cluster.host("master01"))
    assert "--key /opt/etcd/ssl/server-key.pem" in fact.command  # read by curl on the member
    run = subprocess.run(
        ["sh", "-c", fact.command],
        capture_output=True,
        text=True,
        env={"PATH": f"{stub}:/usr/bin:/bin"},
        check=False,
        timeout=30,
    )
    return Raw(run.stdout, run.stderr, run.returncode)


def test_v2_keys_fact_and_parser(tmp_path: Path, cluster: Cluster) -> None:
    keys = net_facts.parse_v2_keys(_run_v2_fact(tmp_path, cluster, V2_CONFIG, "200"))
    assert json.loads(keys.config or "") == {"Network": "172.17.0.0/16", "Backend": {"Type": "vxlan"}}
    assert keys.leases == [("/coreos.com/network/subnets/172.17.38.0-24", V2_SUBNETS["node"]["nodes"][0]["value"])]  # type: ignore[index]
    missing = net_facts.parse_v2_keys(_run_v2_fact(tmp_path, cluster, KEY_NOT_FOUND, "404"))
    assert missing.config is None and missing.config_error == "/coreos.com/network/config does not exist (v2 API)"
    with pytest.raises(ParseError, match="exited 7"):
        net_facts.parse_v2_keys(_run_v2_fact(tmp_path, cluster, V2_CONFIG, "200", curl_rc=7))
    with pytest.raises(ParseError, match="answered HTTP 401"):
        denied = {"errorCode": 110, "message": "The request requires user authentication", "index": 3}
        net_facts.parse_v2_keys(_run_v2_fact(tmp_path, cluster, denied, "401"))
    # a member that does not serve v2 (3.4 without --enable-v2) answers Go's plain 404 page
    no_v2 = Raw("@@kp-v2 config 0 404\n404 page not found\n@@kp-v2 subnets 0 404\n404 page not found\n", "", 0)
    with pytest.raises(ParseError, match="not JSON: '404 page not found'"):
        net_facts.parse_v2_keys(no_v2)


def _v2_section(name: str, body: object, code: str = "200") -> str:
    return f"@@kp-v2 {name} 0 {code}\n{json.dumps(body)}\n"


def _flannel_session(cluster: Cluster, flanneld: str, config_value: str | None = None) -> Session:
    config = dict(V2_CONFIG["node"])  # type: ignore[arg-type]
    if config_value is not None:
        config["value"] = config_value
    v2 = _v2_section("config", {"action": "get", "node": config}) + _v2_section("subnets", V2_SUBNETS)
    return offline_session(
        cluster,
        {
            "node01": {net_facts.flanneld_version: flanneld + "\n"},
            "master01": {net_facts.flannel_v2_keys(cluster.host("master01")): v2},
        },
    )


def test_flannel_rows_read_through_the_api_the_flanneld_release_reads(cluster: Cluster) -> None:
    master = cluster.host("master01")
    session = _flannel_session(cluster, "v0.11.0")
    observed = PROBES["flannel_config"](session.context(master), "Network")
    assert observed.value == "172.17.0.0/16"
    assert any("flanneld v0.11.0 reads the etcd v2 API" in source for source in observed.sources)
    assert any("/v2/keys/coreos.com/network/config" in source for source in observed.sources)
    lease = PROBES["flannel_lease_problems"](session.context(cluster.host("node01")), "")
    assert lease.value == []
    # FLANNEL-01 fails when the v2 config in etcd was changed
    changed = _flannel_session(cluster, "v0.11.0", '{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}')
    assert PROBES["flannel_config"](changed.context(master), "Network").value == "10.244.0.0/16"
    # a v3 flanneld: the v3 API (here the shared state the v3 read would fill), the v2 keys not asked
    v3 = offline_session(cluster, {"node01": {net_facts.flanneld_version: "v0.28.10\n"}})
    from kubeproof.probes import network as net_probes

    v3._shared["flannel-etcd-state"] = net_probes.FlannelState({"Network": "172.17.0.0/16"}, "", [], [])
    observed = PROBES["flannel_config"](v3.context(master), "Network")
    assert observed.value == "172.17.0.0/16"
    assert any("etcd v3 API over TLS" in source for source in observed.sources)
    assert not any("/v2/keys" in source for source in observed.sources)


# ----------------------------------------------------------------------------- NODE-04:cri-dockerd, MASTER-05


def test_cri_dockerd_row_skips_naming_a_dockershim_kubelet(cluster: Cluster) -> None:
    node = cluster.host("node01")
    session = offline_session(cluster, {"node01": {node_facts.node_versions: "kubelet\tKubernetes v1.19.16\n"}})
    with pytest.raises(NotApplicable, match=r"kubelet v1\.19\.16 talks to docker through its built-in dockershim"):
        PROBES["runtime_unit_state"](session.context(node), "cri-dockerd")
    units = "Id=cri-dockerd.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n"
    today = offline_session(
        cluster,
        {"node01": {node_facts.node_versions: "kubelet\tKubernetes v1.34.4\n", node_facts.node_units: units}},
    )
    assert PROBES["runtime_unit_state"](today.context(node), "cri-dockerd").value == "active, enabled"


def _master_session(cluster: Cluster, apiserver: str) -> Session:
    versions = f"kube-apiserver\tKubernetes {apiserver}\n"
    return offline_session(cluster, {"master01": {master_facts.master_versions: versions}})


def test_master_05_parts_follow_the_apiserver_release_on_the_host(cluster: Cluster) -> None:
    master = cluster.host("master01")
    today = _master_session(cluster, "v1.34.4")
    with pytest.raises(NotApplicable, match=r"kube-apiserver v1\.34\.4 has no insecure port \(removed in v1\.20\.0\)"):
        PROBES["insecure_port_loopback_healthz"](today.context(master), "")
    guide = _master_session(cluster, "v1.19.16")
    with pytest.raises(NotApplicable, match=r"kube-apiserver v1\.19\.16 still has its insecure port"):
        PROBES["insecure_port_listeners"](guide.context(master), "")
    command = master_facts.curl_command("http://127.0.0.1:8080/healthz")
    guide._shared[f"run:master01:{command}"] = CommandResult(
        "master01", command, 0, "ok\n@@KP 200 0.000123\n", "", 0.0, 0.01
    )
    assert PROBES["insecure_port_loopback_healthz"](guide.context(master), "") == "ok"


SCHEDULER_HEALTH = (
    "@@ kube-scheduler /healthz\nok\n@@KP 200 0.000100\n@@ERR \n"
    "@@ kube-scheduler /livez\nok\n@@KP 200 0.000100\n@@ERR \n"
)


def test_scheduler_livez_only_where_the_release_serves_it(cluster: Cluster) -> None:
    master = cluster.host("master01")

    def session(release: str) -> Session:
        return offline_session(
            cluster,
            {
                "master01": {
                    master_facts.master_versions: f"kube-scheduler\tKubernetes {release}\n",
                    master_facts.component_health: SCHEDULER_HEALTH,
                }
            },
        )

    # v1.30.0's cmd/kube-scheduler/app/server.go installs only /healthz; v1.31.0 adds /livez
    with pytest.raises(NotApplicable, match=r"kube-scheduler v1\.30\.0 serves no /livez \(added in v1\.31\.0\)"):
        PROBES["component_health"](session("v1.30.0").context(master), "kube-scheduler livez")
    assert PROBES["component_health"](session("v1.19.16").context(master), "kube-scheduler healthz").value == [
        "healthz=ok"
    ]
    assert PROBES["component_health"](session("v1.31.0").context(master), "kube-scheduler livez").value == ["livez=ok"]
    assert PROBES["component_health"](session("v1.34.4").context(master), "kube-scheduler").value == [
        "healthz=ok",
        "livez=ok",
    ]
