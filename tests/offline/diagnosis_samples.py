"""Journal lines for the signature tests (tests/offline/test_diagnosis_signatures.py): one sample per
signature in its upstream wording, what each unit logs when healthy, and a crash-looping etcd.

etcd 3.4 under systemd logs bare messages (capnslog's journald formatter); Kubernetes components
and flanneld log klog lines; dockerd and cri-dockerd logrus lines. Where a line's wording comes
from is named beside it (the versions of kubeproof/checks/signatures.yaml's header).
"""

from __future__ import annotations

AT = "2026-11-27T00:10:01+0000 node01"
# the syslog identifier each unit's program logs under
IDENTIFIER = {"docker": "dockerd", "kube-proxy": "kube-proxy", "cri-dockerd": "cri-dockerd"}

# One sample per signature: (where the wording comes from, the message as the journal shows it)
SAMPLES: dict[str, tuple[str, str]] = {
    "SIG-ETCD-01": (
        "etcd v3.4.23 embed/config.go",
        'rejected connection from "192.168.61.18:40414" (error "remote error: tls: bad certificate", ServerName "")',
    ),
    "SIG-ETCD-02": (
        "etcd v3.4.23 embed/config.go; Go crypto/tls",
        'rejected connection from "192.168.61.17:52212" (error "tls: failed to verify certificate: x509: '
        'certificate signed by unknown authority", ServerName "")',
    ),
    "SIG-ETCD-03": (
        "etcd v3.4.23 rafthttp/probing_status.go; Go crypto/x509",
        "health check for peer 9f1b2c3d4e5f6a7b could not connect: x509: certificate is valid for 127.0.0.1, "
        "192.168.61.17, 192.168.61.18, not 192.168.61.22",
    ),
    "SIG-ETCD-04": (
        "etcd v3.4.23 etcdserver/config.go",
        'couldn\'t find local name "etcd02" in the initial cluster configuration',
    ),
    "SIG-ETCD-05": (
        "etcd v3.4.23 etcdserver/config.go",
        "--initial-cluster has etcd01=https://192.168.61.17:2380 but missing from "
        '--initial-advertise-peer-urls=https://192.168.61.18:2380 (resolved urls: "https://192.168.61.18:2380" '
        '!= "https://192.168.61.17:2380")',
    ),
    "SIG-ETCD-06": (
        "etcd v3.4.23 etcdserver/server.go",
        "member 8e9e05c52164694d has already been bootstrapped",
    ),
    "SIG-ETCD-07": (
        "etcd v3.4.23 pkg/flags/flag.go",
        'conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag (either '
        "unset environment variable or disable flag)",
    ),
    "SIG-ETCD-08": (
        "etcd v3.4.23 rafthttp/http.go",
        "request cluster ID mismatch (got 3f2a8b9c1d0e4f56 want cdf818194e3a8c32)",
    ),
    "SIG-ETCD-09": (
        "etcd v3.4.23 etcdserver/config.go",
        "initial cluster etcd01=https://192.168.61.17:2380,etcd02=https://192.168.61.17:2380 has duplicate url",
    ),
    "SIG-ETCD-10": (
        "systemd 252 src/core/execute.c",
        "etcd.service: Failed to locate executable /opt/etcd/bin/etcd: No such file or directory",
    ),
    "SIG-FLANNEL-01": (
        "flannel v0.28.10 main.go, subnet/etcd/registry.go",
        "E1127 00:40:01.512733    3001 main.go:536] Couldn't fetch network config: flannel config not found in "
        "etcd store. Did you create your config using etcdv3 API?",
    ),
    "SIG-FLANNEL-02": (
        "grpc-go http2_client.go via etcd client v3.7.2",
        '{"level":"warn","logger":"etcd-client","caller":"v3@v3.7.2/retry_interceptor.go:69","msg":"retrying '
        'of unary invoker failed","error":"rpc error: code = DeadlineExceeded desc = latest balancer error: '
        'last connection error: connection error: desc = \\"transport: authentication handshake failed: tls: '
        'failed to verify certificate: x509: certificate signed by unknown authority\\""}',
    ),
    "SIG-FLANNEL-03": (
        "flannel v0.28.10 main.go",
        "E1127 00:42:03.000101    3102 main.go:328] Failed to find any valid interface to use: failed to get "
        "default interface: protocol not available",
    ),
    "SIG-DOCKER-01": (
        "moby v20.10.24 cmd/dockerd/daemon.go, daemon/daemon.go",
        'failed to start daemon: Error initializing network controller: Error creating default "bridge" '
        "network: failed to allocate gateway (172.17.36.1): Address already in use",
    ),
    "SIG-DOCKER-02": (
        "moby v20.10.24 daemon/config/config.go",
        "unable to configure the Docker daemon with file /etc/docker/daemon.json: the following directives are "
        "specified both as a flag and in the configuration file: bip: (from flag: 172.17.36.1/24, from file: "
        "172.17.0.1/16)",
    ),
    "SIG-DOCKER-03": (
        "systemd 252 src/core/execute.c",
        "docker.service: Failed to load environment files: No such file or directory",
    ),
    "SIG-APISERVER-01": (
        "grpc-go v1.72.1 http2_client.go",
        "W1127 00:50:01.337095    5120 logging.go:55] [core] [Channel #3 SubChannel #4]grpc: "
        'addrConn.createTransport failed to connect to {Addr: "192.168.61.17:2379", ServerName: '
        '"192.168.61.17:2379", }. Err: connection error: desc = "transport: authentication handshake failed: '
        'tls: failed to verify certificate: x509: certificate signed by unknown authority"',
    ),
    "SIG-APISERVER-02": (
        "grpc-go v1.72.1 http2_client.go; Go crypto/tls alert.go",
        "W1127 00:50:02.112001    5120 logging.go:55] [core] [Channel #3 SubChannel #4]grpc: "
        'addrConn.createTransport failed to connect to {Addr: "192.168.61.18:2379", ServerName: '
        '"192.168.61.18:2379", }. Err: connection error: desc = "error reading server preface: remote error: '
        'tls: unknown certificate authority"',
    ),
    "SIG-APISERVER-03": (
        "grpc-go v1.72.1; Go crypto/x509 verify.go",
        "W1127 00:50:03.000200    5120 logging.go:55] [core] [Channel #3 SubChannel #5]grpc: "
        'addrConn.createTransport failed to connect to {Addr: "192.168.61.17:2379", ServerName: '
        '"192.168.61.17:2379", }. Err: connection error: desc = "transport: authentication handshake failed: '
        "tls: failed to verify certificate: x509: certificate is valid for 127.0.0.1, 192.168.61.18, "
        '192.168.61.22, not 192.168.61.17"',
    ),
    "SIG-APISERVER-04": (
        "grpc-go v1.72.1 http2_client.go",
        "W1127 00:50:04.501877    5120 logging.go:55] [core] [Channel #3 SubChannel #6]grpc: "
        'addrConn.createTransport failed to connect to {Addr: "192.168.61.22:2379", ServerName: '
        '"192.168.61.22:2379", }. Err: connection error: desc = "transport: Error while dialing: dial tcp '
        '192.168.61.22:2379: connect: connection refused"',
    ),
    "SIG-APISERVER-05": (
        "kubernetes v1.34.4 pkg/controlplane/instance.go",
        "F1127 00:51:20.000412    5120 instance.go:232] Error creating leases: error creating storage factory: "
        "context deadline exceeded",
    ),
    "SIG-KCM-01": (
        "kubernetes v1.34.4 cmd/kube-controller-manager/app/certificates.go",
        'I1127 01:00:02.123456    6001 certificates.go:60] "Skipping CSR signer controller because no csr '
        'cert/key was specified"',
    ),
    "SIG-KCM-02": (
        "kubernetes v1.34.4 signer/ca_provider.go, controllermanager.go",
        'E1127 01:01:02.000301    6001 controllermanager.go:755] "Error starting controller" err="failed to '
        "start kubernetes.io/kubelet-serving certificate controller: error reading CA cert file "
        '\\"/opt/kubernetes/ssl/ca.pem\\": open /opt/kubernetes/ssl/ca.pem: no such file or directory" '
        'controller="certificatesigningrequest-signing-controller"',
    ),
    "SIG-SCHED-01": (
        "client-go v0.34.4 tools/leaderelection/leaderelection.go",
        "E1127 01:10:05.441002    7001 leaderelection.go:436] error retrieving resource lock "
        "kube-system/kube-scheduler: Get "
        '"https://192.168.61.17:6444/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/'
        'kube-scheduler?timeout=5s": '
        "dial tcp 192.168.61.17:6444: connect: connection refused",
    ),
    "SIG-KUBELET-01": (
        "kubernetes v1.34.4 kubelet/certificate/bootstrap/bootstrap.go",
        'I1127 01:20:01.100200    8001 bootstrap.go:358] "Waiting for client certificate to be issued"',
    ),
    "SIG-KUBELET-02": (
        "client-go v0.34.4 util/certificate/csr/csr.go",
        'E1127 01:21:01.000100    8001 run.go:72] "command failed" err="failed to run Kubelet: cannot watch on '
        "the certificate signing request: certificate signing request is denied, reason: KubeproofDenied, "
        'message: denied by the fault test"',
    ),
    "SIG-KUBELET-03": (
        "kubelet v1.34.4 bootstrap.go waitForServer (seen on the lab: bootstrap.kubeconfig's token not in token.csv)",
        'I1206 06:25:53.030840    2797 bootstrap.go:296] "Failed to connect to apiserver" err="the server has '
        'asked for the client to provide credentials"',
    ),
    "SIG-KUBELET-04": (
        "client-go v0.34.4 util/certificate/csr/csr.go",
        'E1127 01:23:01.000100    8001 run.go:72] "command failed" err="failed to run Kubelet: cannot create '
        "certificate signing request: certificatesigningrequests.certificates.k8s.io is forbidden: User "
        '\\"kubelet-bootstrap\\" cannot create resource \\"certificatesigningrequests\\" in API group '
        '\\"certificates.k8s.io\\" at the cluster scope"',
    ),
    "SIG-KUBELET-05": (
        "kubelet bootstrap.go; Go crypto/x509 verify.go",
        'I1127 01:24:01.000100    8001 bootstrap.go:296] "Failed to connect to apiserver" err="Get '
        '\\"https://192.168.61.17:6443/healthz?timeout=1s\\": tls: failed to verify certificate: x509: '
        'certificate signed by unknown authority"',
    ),
    "SIG-KUBELET-06": (
        "cri-client v0.34.4 pkg/remote_runtime.go",
        'E1127 01:25:01.000100    8001 run.go:72] "command failed" err="failed to run Kubelet: validate '
        'service connection: validate CRI v1 runtime API for endpoint \\"unix:///run/cri-dockerd.sock\\": rpc '
        'error: code = Unavailable desc = connection error: desc = \\"transport: Error while dialing: dial '
        'unix /run/cri-dockerd.sock: connect: no such file or directory\\""',
    ),
    "SIG-PROXY-01": (
        "kubernetes v1.34.4 cmd/kube-proxy/app/server_linux.go",
        'E1127 01:30:01.000100    9001 server.go:135] "Error running ProxyServer" err="can\'t use the IPVS '
        'proxier: Ipvs not supported by the kernel"',
    ),
    "SIG-PROXY-02": (
        "client-go v0.34.4 tools/cache/reflector.go",
        'E1127 01:31:01.000100    9001 reflector.go:205] "Failed to watch" err="failed to list *v1.Service: '
        'Unauthorized" reflector="k8s.io/client-go/informers/factory.go:160" type="*v1.Service"',
    ),
    "SIG-PROXY-03": (
        "Go crypto/x509 verify.go",
        'E1127 01:32:01.000100    9001 reflector.go:205] "Failed to watch" err="failed to list *v1.Node: Get '
        '\\"https://192.168.61.17:6443/api/v1/nodes\\": tls: failed to verify certificate: x509: certificate '
        'signed by unknown authority"',
    ),
    "SIG-KUBELET-07": (
        "kubernetes v1.23 pkg/kubelet/dockershim/docker_service.go",
        'E1127 01:39:01.000100    9001 server.go:302] "Failed to run kubelet" err="failed to run Kubelet: '
        'misconfiguration: kubelet cgroup driver: \\"systemd\\" is different from docker cgroup driver: '
        '\\"cgroupfs\\""',
    ),
}

# What each unit logs when it is healthy (upstream wording; etcd's and flanneld's captured on the lab)
HEALTHY: dict[str, list[str]] = {
    "etcd": [
        (
            'rejected connection from "192.168.61.22:45838" (error "tls: client didn\'t provide a '
            'certificate", ServerName "")'
        ),
        (
            'rejected connection from "192.168.61.22:59066" (error "tls: first record does not look like a TLS '
            'handshake", ServerName "")'
        ),
        "recognized and used environment variable ETCD_NAME=etcd02",
        "etcd Version: 3.4.23",
        "name = etcd02",
        (
            "peerTLS: cert = /opt/etcd/ssl/server.pem, key = /opt/etcd/ssl/server-key.pem, client-cert-auth = "
            "true, crl-file = , trusted-ca = /opt/etcd/ssl/ca.pem, auto-tls = false"
        ),
        "the server is already initialized as member before, starting as etcd member...",
        "restarting member 8e9e05c52164694d in cluster cdf818194e3a8c32 at commit index 1204",
        "established a TCP streaming connection with peer 9f1b2c3d4e5f6a7b (stream MsgApp v2 reader)",
        "published {Name:etcd02 ClientURLs:[https://192.168.61.18:2379]} to cluster cdf818194e3a8c32",
        "ready to serve client requests",
        "serving client requests on 192.168.61.18:2379",
    ],
    "flanneld": [
        "I1126 23:47:01.611012     859 main.go:540] Found network config - Backend type: vxlan",
        "I1126 23:47:01.612101     859 match.go:269] Using interface with name eth0 and address 192.168.61.18",
        "I1126 23:47:03.815686     859 subnet.go:138] Batch elem [0] is { lease.Event{Type:0, Lease:le",
        "I1126 23:47:03.818001     859 main.go:481] Wrote subnet file to /run/flannel/subnet.env",
        "I1126 23:47:03.818874     859 local_manager.go:399] Waiting for 22h59m58.999849125s to renew lease",
    ],
    "docker": [
        (
            'time="2026-11-26T23:43:28.101Z" level=info msg="Default bridge (docker0) is assigned with an IP '
            'address 172.17.0.0/16. Daemon option --bip can be used to set a preferred IP address"'
        ),
        'time="2026-11-26T23:43:29.001Z" level=info msg="Loading containers: done."',
        'time="2026-11-26T23:43:29.255Z" level=info msg="Daemon has completed initialization"',
        'time="2026-11-26T23:43:29.300Z" level=info msg="API listen on /run/docker.sock"',
        'time="2026-11-26T23:48:41.882338292Z" level=error msg="error removing container" container=655',
    ],
    "kube-apiserver": [
        "I1127 00:50:30.100100    5120 secure_serving.go:211] Serving securely on 192.168.61.17:6443",
        'I1127 00:50:31.100100    5120 shared_informer.go:356] "Caches are synced" controller="node_authorizer"',
        (
            "W1127 00:50:32.100100    5120 logging.go:55] [core] [Channel #7 SubChannel #8]grpc: "
            'addrConn.createTransport failed to connect to {Addr: "192.168.61.22:2379", ServerName: '
            '"192.168.61.22:2379", }. Err: connection error: desc = "transport: Error while dialing: dial tcp '
            '192.168.61.22:2379: operation was canceled"'
        ),
    ],
    "kube-controller-manager": [
        (
            "I1127 01:00:01.100100    6001 leaderelection.go:271] successfully acquired lease "
            "kube-system/kube-controller-manager"
        ),
        (
            'I1127 01:00:02.100100    6001 certificate_controller.go:120] "Starting certificate controller" '
            'name="csrsigning-kubelet-client"'
        ),
    ],
    "kube-scheduler": [
        (
            "I1127 01:10:01.100100    7001 leaderelection.go:257] attempting to acquire leader lease "
            "kube-system/kube-scheduler..."
        ),
        ("I1127 01:10:01.200100    7001 leaderelection.go:271] successfully acquired lease kube-system/kube-scheduler"),
        "I1127 01:10:01.300100    7001 secure_serving.go:211] Serving securely on 127.0.0.1:10259",
    ],
    "kubelet": [
        (
            'I1127 01:20:30.100100    8001 server.go:1423] "Using cgroup driver setting received from the CRI '
            'runtime" cgroupDriver="systemd"'
        ),
        (
            'I1127 01:20:30.200100    8001 bootstrap.go:116] "Kubeconfig exists and is valid, skipping '
            'bootstrap" path="/opt/kubernetes/cfg/kubelet.kubeconfig"'
        ),
        'I1127 01:20:30.300100    8001 csr.go:270] "Certificate signing request is issued" csr="node-csr-Yx2f"',
        'I1127 01:20:31.100100    8001 kubelet.go:1262] "Started kubelet"',
        'I1127 01:20:32.100100    8001 kubelet_node_status.go:78] "Successfully registered node" node="node01"',
    ],
    "kube-proxy": [
        'I1127 01:30:30.100100    9001 server_linux.go:53] "Using iptables proxy"',
        'I1127 01:30:31.100100    9001 shared_informer.go:356] "Caches are synced" controller="service config"',
    ],
    "cri-dockerd": [
        'time="2026-11-27T01:40:00Z" level=info msg="Setting cgroupDriver systemd"',
        'time="2026-11-27T01:40:00Z" level=info msg="Starting the GRPC backend for the Docker CRI interface."',
    ],
}

# etcd02 crash-looping under systemd 252 (the lab's): ETCD_NAME not in ETCD_INITIAL_CLUSTER
CRASH_LOOP = f"""\
{AT} systemd[1]: Starting etcd.service - Etcd Server...
{AT} etcd[2101]: recognized and used environment variable ETCD_NAME=etcd02
{AT} etcd[2101]: etcd Version: 3.4.23
{AT} etcd[2101]: name = etcd02
{AT} etcd[2101]: couldn't find local name "etcd02" in the initial cluster configuration
{AT} systemd[1]: etcd.service: Main process exited, code=exited, status=1/FAILURE
{AT} systemd[1]: etcd.service: Failed with result 'exit-code'.
{AT} systemd[1]: Failed to start etcd.service - Etcd Server.
{AT} systemd[1]: etcd.service: Scheduled restart job, restart counter is at 5.
{AT} systemd[1]: Stopped etcd.service - Etcd Server.
{AT} systemd[1]: etcd.service: Consumed 41ms CPU time.
{AT} systemd[1]: etcd.service: Start request repeated too quickly.
{AT} systemd[1]: etcd.service: Failed with result 'exit-code'.
{AT} systemd[1]: Failed to start etcd.service - Etcd Server.
"""
# what systemd says about a crash-looping unit: never shown as the unit's own lines
BOOKKEEPING = (
    "Start request repeated too quickly",
    "Scheduled restart job",
    "Main process exited",
    "Failed with result",
    "CPU time",
    "Stopped etcd",
    "Failed to start etcd",
)

# Lines the units really logged on the lab (tests/lab/test_48_signatures_more.py), as `journalctl -o cat`
# shows them: (signature, unit, syslog identifier, the fault, the message)
LAB_LINES: list[tuple[str, str, str, str, str]] = [
    (
        "SIG-DOCKER-02",
        "docker",
        "dockerd",
        'node02\'s docker with "bip" in /etc/docker/daemon.json',
        (
            "unable to configure the Docker daemon with file /etc/docker/daemon.json: the following d"
            "irectives are specified both as a flag and in the configuration file: bip: (from flag: 1"
            "72.17.38.1/24, from file: 172.17.0.1/16)"
        ),
    ),
    (
        "SIG-DOCKER-03",
        "docker",
        "systemd",
        "node01's docker started while /run/flannel/docker was missing",
        "docker.service: Failed to load environment files: No such file or directory",
    ),
    (
        "SIG-KUBELET-06",
        "kubelet",
        "kubelet",
        "node01's kubelet restarted while cri-dockerd was stopped",
        (
            'E1205 23:10:52.344325   15730 run.go:72] "command failed" err="failed to run Kubelet: va'
            'lidate service connection: validate CRI v1 runtime API for endpoint \\"unix:///run/cri-do'
            'ckerd.sock\\": rpc error: code = Unavailable desc = connection error: desc = \\"transport:'
            ' Error while dialing: dial unix /run/cri-dockerd.sock: connect: connection refused\\""'
        ),
    ),
    (
        "SIG-PROXY-01",
        "kube-proxy",
        "kube-proxy",
        "node02's kube-proxy declared mode ipvs, the kernel without IP_VS",
        (
            'E1205 23:07:15.221974    8436 server.go:135] "Error running ProxyServer" err="can\'t use '
            'the IPVS proxier: Ipvs not supported"'
        ),
    ),
    (
        "SIG-KCM-02",
        "kube-controller-manager",
        "kube-controller-manager",
        "--cluster-signing-cert-file naming a missing file",
        (
            'E1205 23:20:06.743241   36259 controllermanager.go:755] "Error starting controller" err='
            '"failed to start kubernetes.io/kubelet-serving certificate controller: error reading CA '
            'cert file \\"/opt/kubernetes/ssl/kubeproof-fault-ca.pem\\": open /opt/kubernetes/ssl/kubep'
            'roof-fault-ca.pem: no such file or directory" controller="certificatesigningrequest-sign'
            'ing-controller"'
        ),
    ),
    (
        "SIG-KUBELET-01",
        "kubelet",
        "kubelet",
        "node01's kubelet without its client certificate, its CSR pending",
        ('I1205 23:05:09.488988    1130 bootstrap.go:358] "Waiting for client certificate to be issued"'),
    ),
    (
        "SIG-FLANNEL-02",
        "flanneld",
        "flanneld",
        "node01's flanneld with the Kubernetes CA as -etcd-cafile, at its start timeout",
        (
            '{"level":"warn","ts":"2026-12-05T23:08:44.904524Z","logger":"etcd-client","caller":"v3@v'
            '3.7.2/retry_interceptor.go:68","msg":"retrying of unary invoker failed","target":"etcd-e'
            'ndpoints://0x12efb186400/192.168.61.17:2379","peer":"Peer{Addr: <nil>, LocalAddr: <nil>,'
            ' AuthInfo: <nil>}","method":"/etcdserverpb.KV/Range","attempt":0,"error":"rpc error: cod'
            'e = Canceled desc = latest balancer error: connection error: desc = \\"transport: authent'
            "ication handshake failed: tls: failed to verify certificate: x509: certificate signed by"
            ' unknown authority\\""}'
        ),
    ),
    (
        "SIG-ETCD-01",
        "etcd",
        "etcd",
        "node02's server.pem from another CA: its peers refuse it (Go 1.19 sends bad certificate)",
        ('rejected connection from "192.168.61.18:46454" (error "remote error: tls: bad certificate", ServerName "")'),
    ),
    (
        "SIG-ETCD-02",
        "etcd",
        "etcd",
        "node02's server.pem from another CA, as master01 saw node02's client certificate",
        (
            'rejected connection from "192.168.61.22:53404" (error "tls: failed to verify client cert'
            'ificate: x509: certificate signed by unknown authority", ServerName "")'
        ),
    ),
    (
        "SIG-APISERVER-01",
        "kube-apiserver",
        "kube-apiserver",
        "kube-apiserver with the Kubernetes CA as --etcd-cafile",
        (
            "W1205 23:41:58.923128   77589 logging.go:55] [core] [Channel #1 SubChannel #4]grpc: addr"
            'Conn.createTransport failed to connect to {Addr: "192.168.61.17:2379", ServerName: "192.'
            '168.61.17:2379", BalancerAttributes: {"<%!p(pickfirstleaf.managedByPickfirstKeyType={})>'
            '": "<%!p(bool=true)>" }}. Err: connection error: desc = "transport: authentication hands'
            "hake failed: tls: failed to verify certificate: x509: certificate signed by unknown auth"
            'ority"'
        ),
    ),
    (
        "SIG-APISERVER-04",
        "kube-apiserver",
        "kube-apiserver",
        "kube-apiserver restarted while node02's etcd was stopped",
        (
            "W1205 23:41:58.907002   77589 logging.go:55] [core] [Channel #2 SubChannel #10]grpc: add"
            'rConn.createTransport failed to connect to {Addr: "192.168.61.22:2379", ServerName: "192'
            '.168.61.22:2379", BalancerAttributes: {"<%!p(pickfirstleaf.managedByPickfirstKeyType={})'
            '>": "<%!p(bool=true)>" }}. Err: connection error: desc = "transport: Error while dialing'
            ': dial tcp 192.168.61.22:2379: connect: connection refused"'
        ),
    ),
    (
        "SIG-APISERVER-05",
        "kube-apiserver",
        "kube-apiserver",
        "kube-apiserver giving up after 20 s, no etcd answering",
        (
            "F1205 23:42:18.932973   77589 instance.go:232] Error creating leases: error creating sto"
            "rage factory: context deadline exceeded"
        ),
    ),
    (
        "SIG-SCHED-01",
        "kube-scheduler",
        "kube-scheduler",
        "kube-scheduler's kubeconfig at a closed port (6999)",
        (
            'E1206 12:49:46.542971    6019 reflector.go:205] "Failed to watch" err="failed to list *v1.Pod: Get '
            '\\"https://192.168.61.17:6999/api/v1/pods?fieldSelector=status.phase%21%3DSucceeded%2Cstatus.phase%21%3DF'
            'ailed&limit=500&resourceVersion=0\\": dial tcp 192.168.61.17:6999: connect: connection refused" logger="Un'
            'handledError"'
        ),
    ),
    (
        "SIG-APISERVER-03",
        "kube-apiserver",
        "kube-apiserver",
        "--etcd-servers naming node01 by its host name; etcd's certificate lists IP addresses only",
        (
            "W1206 12:59:48.576633    9426 logging.go:55] [core] [Channel #2 SubChannel #9]grpc: addrConn.createTr"
            'ansport failed to connect to {Addr: "node01:2379", ServerName: "node01:2379", BalancerAttributes: {"<%'
            '!p(pickfirstleaf.managedByPickfirstKeyType={})>": "<%!p(bool=true)>" }}. Err: connection error: desc '
            '= "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate i'
            's not valid for any names, but wanted to match node01"'
        ),
    ),
]
