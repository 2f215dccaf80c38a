"""Probes for SMOKE-01..06: the guide's closing test, on a workload of our own.

One workload per pytest process, shared by every SMOKE row (ctx.session.shared): a namespace
labelled as ours, a DaemonSet of the lab's offline test image (busybox httpd on :8080, the pod's
name as its page) so the scheduler places one pod on every worker, and a NodePort Service (which
has a ClusterIP too). Every wait is bounded; the whole smoke run targets <= 60 s.

Cleanup, in three places: leftovers of an earlier, interrupted run are deleted before anything is
created; the workload deletes its namespace when the session closes (also after a failure or
Ctrl-C: the session fixture's finaliser closes shared values); SMOKE-06 deletes it explicitly,
waits until the namespace is gone and then checks that nothing of any run is left.

A worker whose host does not answer over SSH takes no part: the DaemonSet keeps off it (a pod
bound to a frozen kubelet would neither start nor ever be deleted, and the namespace would hang
in Terminating), rows that need it error with "<host> unreachable: ...", and rows that try every
worker (the Service from each NodePort, ping across) try the others and name it as skipped.

Under pytest-xdist each worker process makes its own namespace (named after the worker): runs are
told apart by the xdist test-run id, so one worker never deletes another's live workload. One
kubeproof run at a time per cluster: a second concurrent run's namespaces look like leftovers.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubeproof import layout
from kubeproof.checks import NotApplicable, Observation
from kubeproof.clients import KubeClients, open_private_kube
from kubeproof.facts import node as node_facts
from kubeproof.inventory import HostSpec
from kubeproof.probes import probe
from kubeproof.probes.master import ApiAnswer, api_message, call_json
from kubeproof.session import HostContext, Session
from kubeproof.transport import HostUnreachable, ProbeError

NAMESPACE_PREFIX = "kubeproof-smoke"
SMOKE_LABEL = "kubeproof.io/smoke"
RUN_LABEL = "kubeproof.io/run"
WORKER_LABEL = "kubeproof.io/worker"
APP_LABEL = "app.kubernetes.io/name"
APP = "kubeproof-smoke"
SERVICE_PORT = 80
POD_PORT = 8080
READY_TIMEOUT = 40.0
DELETE_TIMEOUT = 45.0
API_TIMEOUT = 10.0
EXEC_TIMEOUT = 15.0
POLL = 0.5
LOG_MARKER = "kubeproof-smoke: pod"
CONTAINER_FORMAT = '{{.Label "io.kubernetes.pod.namespace"}} {{.Names}}'
# container states that will not turn into Running by waiting longer
TERMINAL_REASONS = frozenset(
    {
        "ErrImageNeverPull",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "CrashLoopBackOff",
        "RunContainerError",
    }
)
RUNNING = "Running"
INSIDE_SUBNET = "inside the node's flannel subnet"
LOGS_OK = "logs readable"
EXEC_OK = "exec answers"


def run_identity() -> tuple[str, str]:
    """(run id, worker): xdist workers of one run share the run id; a plain run makes its own."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or _PROCESS_RUN
    return run[:12], os.environ.get("PYTEST_XDIST_WORKER", "main")


_PROCESS_RUN = uuid.uuid4().hex


@dataclass
class PodState:
    node: str
    name: str = ""
    ip: str = ""
    state: str = "no pod"  # RUNNING, or what it is instead
    details: list[str] = field(default_factory=list)


@dataclass
class SmokeWorkload:
    """The namespace, DaemonSet and Service of this process, and what became of them."""

    namespace: str
    run: str
    worker: str
    clients: KubeClients
    image: str
    workers: list[str]  # the workers that answer: the ones the DaemonSet places a pod on
    pods: dict[str, PodState] = field(default_factory=dict)
    cluster_ip: str = ""
    node_port: int = 0
    ready_seconds: float = 0.0
    timings: list[str] = field(default_factory=list)  # how long each step of the creation took
    leftovers_deleted: list[str] = field(default_factory=list)
    removed: bool = False
    unreachable: dict[str, HostUnreachable] = field(default_factory=dict)  # workers kept out of the workload
    _exec_lock: threading.Lock = field(default_factory=threading.Lock)

    # -- API

    def call(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201)) -> ApiAnswer:
        answer = call_json(self.clients, method, path, body, timeout=API_TIMEOUT, where="smoke")
        if answer.status not in ok:
            raise ProbeError("smoke", f"Kubernetes API {method} {path}: HTTP {answer.status}: {api_message(answer)}")
        return answer

    @property
    def base(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}"

    def delete_namespace(self) -> None:
        if self.removed:
            return
        self.call("DELETE", f"/api/v1/namespaces/{self.namespace}", ok=(200, 202, 404))
        # Terminating now: no pod can be created in it again (the DaemonSet cannot bring one back).
        # Its pods go at once rather than when each kubelet confirms, so the namespace controller
        # finishes in a second or two (it took 8.6 to 22.4 s on the lab, waiting on pod deletion);
        # the kubelets still stop the containers, which SMOKE-06:containers waits for and checks.
        self.call("DELETE", f"{self.base}/pods?gracePeriodSeconds=0", ok=(200, 202, 404))
        self.removed = True

    def close(self) -> None:
        """Session end (also after failures and interrupts): delete the namespace, don't wait."""
        try:
            self.delete_namespace()
        except ProbeError:
            pass  # the next run's start removes it as a leftover; SMOKE-06 of that run reports it
        finally:
            self.clients.close()

    # -- exec through the API (the apiserver -> kubelet path), bounded by a watchdog thread

    def exec(self, pod: str, command: list[str], timeout: float = EXEC_TIMEOUT) -> tuple[int | None, str, str]:
        """(exit code, stdout, stderr) of a command in the pod's container; a ProbeError when exec fails."""
        from kubernetes import client
        from kubernetes.stream import stream

        result: dict[str, Any] = {}

        def work() -> None:
            # a client of its own: stream() swaps call_api on the client it is given while it runs
            api = client.ApiClient(self.clients.api_client.configuration)
            try:
                core = client.CoreV1Api(api)
                channel = stream(
                    core.connect_get_namespaced_pod_exec,
                    pod,
                    self.namespace,
                    command=command,
                    container="testbox",
                    stderr=True,
                    stdin=False,
                    stdout=True,
                    tty=False,
                    _preload_content=False,
                )
                channel.run_forever(timeout=timeout)
                result["stdout"] = channel.read_stdout(timeout=0)
                result["stderr"] = channel.read_stderr(timeout=0)
                # channel 3 carries the v1.Status of the exec; the client's own returncode parser
                # fails on a Failure without an ExitCode cause (kubelet unreachable, for one)
                status_text = channel.read_channel(3, timeout=0)
                channel.close()
                rc, error = exec_status(status_text, still_open=channel.is_open())
                result["rc"] = rc
                if error:
                    result["error"] = error
            except Exception as exc:  # websocket, ssl and API errors alike: exec did not work
                result["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
            finally:
                api.close()  # type: ignore[no-untyped-call]

        if not self._exec_lock.acquire(timeout=timeout + 5):
            raise ProbeError("smoke", f"exec in {pod}: an earlier exec is still hanging")
        try:
            thread = threading.Thread(target=work, name=f"kubeproof-exec-{pod}", daemon=True)
            thread.start()
            thread.join(timeout + 5)
            if thread.is_alive():
                raise ProbeError("smoke", f"exec in {pod}: no answer within {timeout + 5:.0f}s")
        finally:
            self._exec_lock.release()
        if "error" in result:
            raise ProbeError("smoke", f"exec in {pod}: {result['error'][:300]}")
        return result.get("rc"), str(result.get("stdout", "")), str(result.get("stderr", ""))


def exec_status(text: str, still_open: bool = False) -> tuple[int | None, str]:
    """(exit code, error) from an exec's status channel: 0 on Success, the ExitCode cause of a
    NonZeroExitCode, else no code and the apiserver's message (the exec itself failed)."""
    if not text.strip():
        return None, "no exit status (the exec stream did not finish)" if still_open else ""
    try:
        status = json.loads(text)
    except json.JSONDecodeError:
        return None, text.strip()[:300]
    if status.get("status") == "Success":
        return 0, ""
    causes = (status.get("details") or {}).get("causes") or []
    for cause in causes:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", "")), ""
            except ValueError:
                break
    return None, str(status.get("message") or status.get("reason") or text)[:300]


# ----------------------------------------------------------------------------- manifests


def namespace_manifest(name: str, run: str, worker: str) -> dict[str, Any]:
    labels = {SMOKE_LABEL: "true", RUN_LABEL: run, WORKER_LABEL: worker, "app.kubernetes.io/managed-by": "kubeproof"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def daemonset_manifest(image: str, kept_off: Sequence[str] = ()) -> dict[str, Any]:
    """One pod per schedulable node, placed by the scheduler; the image's httpd, with a start line to log.

    ``kept_off``: nodes (by their kubernetes.io/hostname label, the inventory name) to place no pod
    on. A label expression, not a metadata.name field: the DaemonSet controller replaces the
    matchFields of every term with the node it makes the pod for, but keeps matchExpressions.
    """
    start = (
        'echo "' + LOG_MARKER + " $POD_NAME on $NODE_NAME serving :" + str(POD_PORT) + '"; '
        "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p " + str(POD_PORT) + " -h /www"
    )
    field_env = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    placement: dict[str, Any] = {}
    if kept_off:
        expression = {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": sorted(kept_off)}
        placement["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [expression]}]
                }
            }
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": APP, "labels": {APP_LABEL: APP}},
        "spec": {
            "selector": {"matchLabels": {APP_LABEL: APP}},
            "template": {
                "metadata": {"labels": {APP_LABEL: APP}},
                "spec": {
                    **placement,
                    # httpd as PID 1 ignores SIGTERM: do not wait the default 30 s at deletion
                    "terminationGracePeriodSeconds": 1,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "containers": [
                        {
                            "name": "testbox",
                            "image": image,
                            # the lab has no registry: the image is preloaded in every node's docker
                            "imagePullPolicy": "Never",
                            "command": ["/bin/sh", "-c", start],
                            "env": field_env,
                            "ports": [{"containerPort": POD_PORT, "protocol": "TCP"}],
                        }
                    ],
                },
            },
        },
    }


def service_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": APP},
        "spec": {
            "type": "NodePort",
            "selector": {APP_LABEL: APP},
            "ports": [{"port": SERVICE_PORT, "targetPort": POD_PORT, "protocol": "TCP"}],
        },
    }


# ----------------------------------------------------------------------------- pod states


def pod_node(pod: dict[str, Any]) -> str:
    """The node a DaemonSet pod is for: spec.nodeName once bound, else its node affinity's target."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in affinity.get("nodeSelectorTerms") or []:
        for match in term.get("matchFields") or []:
            if match.get("key") == "metadata.name" and match.get("values"):
                return str(match["values"][0])
    return ""


def pod_state(pod: dict[str, Any]) -> tuple[str, list[str], bool]:
    """(state, details, final): RUNNING when Running and ready; final when waiting will not help."""
    status = pod.get("status") or {}
    phase = status.get("phase", "Unknown")
    statuses = status.get("containerStatuses") or []
    if phase == "Running" and statuses and all(s.get("ready") for s in statuses):
        return RUNNING, [], True
    details = []
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True" and condition.get("message"):
            details.append(f"{condition.get('type')}: {condition.get('reason', '')} {condition.get('message')}")
    reason = ""
    final = phase in ("Failed", "Succeeded")
    for container in statuses:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting:
            reason = waiting.get("reason", "")
            details.append(f"container {container.get('name')}: {reason}: {waiting.get('message', '')}".strip())
            final = final or reason in TERMINAL_REASONS
    scheduled: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {})
    if scheduled.get("status") == "False":
        reason = reason or "not scheduled"
    return f"{phase}" + (f": {reason}" if reason else ""), details, final


# ----------------------------------------------------------------------------- the workload


def _registry(session: Session) -> dict[str, Any]:
    """Per-session notes: the workload once made, and the final teardown's result."""
    return session.shared("smoke-registry", dict)


def _delete_leftovers(workload: SmokeWorkload) -> list[str]:
    """Namespaces of earlier runs (an interrupted run, a crashed worker): deleted, not waited for."""
    answer = workload.call("GET", f"/api/v1/namespaces?labelSelector={SMOKE_LABEL}%3Dtrue")
    deleted = []
    for item in answer.body.get("items") or []:
        metadata = item.get("metadata") or {}
        if (metadata.get("labels") or {}).get(RUN_LABEL) == workload.run:
            continue  # this run's (another xdist worker's) live workload
        name = metadata.get("name", "")
        workload.call("DELETE", f"/api/v1/namespaces/{name}", ok=(200, 202, 404, 409))
        deleted.append(f"{name} ({(item.get('status') or {}).get('phase', '?')})")
    return deleted


def _wait_for_default_service_account(workload: SmokeWorkload, deadline: float) -> None:
    # pods of a namespace are admitted only once the controller-manager made its "default" account
    while time.monotonic() < deadline:
        answer = workload.call("GET", f"{workload.base}/serviceaccounts/default", ok=(200, 404))
        if answer.status == 200:
            return
        time.sleep(0.2)


def _observe_pods(workload: SmokeWorkload) -> tuple[dict[str, PodState], bool]:
    pods = workload.call("GET", f"{workload.base}/pods?labelSelector={APP_LABEL}%3D{APP}").body.get("items") or []
    daemonset = workload.call("GET", f"/apis/apps/v1/namespaces/{workload.namespace}/daemonsets/{APP}").body
    states: dict[str, PodState] = {name: PodState(name) for name in workload.workers}
    finals: dict[str, bool] = {name: False for name in workload.workers}
    for pod in pods:
        node = pod_node(pod)
        if node not in states or states[node].state == RUNNING:
            continue  # a pod on a non-worker (a master with a kubelet), or a second one (a replaced pod)
        state, details, final = pod_state(pod)
        metadata = pod.get("metadata") or {}
        states[node] = PodState(
            node, metadata.get("name", ""), (pod.get("status") or {}).get("podIP") or "", state, details
        )
        finals[node] = final
    status = daemonset.get("status") or {}
    observed = (status.get("observedGeneration") or 0) >= ((daemonset.get("metadata") or {}).get("generation") or 1)
    desired = int(status.get("desiredNumberScheduled") or 0)
    placed = sum(1 for s in states.values() if s.name)
    # a worker without a pod after the DaemonSet controller placed all it wants gets none by waiting
    settled = observed and desired > 0 and placed >= desired
    for name, entry in states.items():
        if not entry.name and settled:
            entry.state = "no pod scheduled"
            entry.details.append(f"the DaemonSet wants {desired} pods and made none for {name} (taint, cordon?)")
            finals[name] = True
    return states, all(finals.values())


def _create(ctx: HostContext) -> SmokeWorkload:
    run, worker = run_identity()
    namespace = f"{NAMESPACE_PREFIX}-{run[:8]}" + ("" if worker == "main" else f"-{worker}")
    if not ctx.cluster.workers:
        raise ProbeError(ctx.host.name, "the cluster file has no worker (role node): nothing to smoke-test")
    unreachable = {h.name: down for h in ctx.cluster.workers if (down := ctx.session.unreachable(h)) is not None}
    workers = [h.name for h in ctx.cluster.workers if h.name not in unreachable]
    if not workers:
        raise next(iter(unreachable.values())).again()
    workload = SmokeWorkload(namespace, run, worker, open_private_kube(ctx), ctx.cluster.images.test, workers)
    workload.unreachable = unreachable
    _registry(ctx.session)["workload"] = workload
    started = time.monotonic()

    def step(name: str) -> None:
        workload.timings.append(f"{name} at {time.monotonic() - started:.1f}s")

    try:
        workload.leftovers_deleted = _delete_leftovers(workload)
        workload.call("POST", "/api/v1/namespaces", namespace_manifest(namespace, run, worker))
        step("namespace created")
        _wait_for_default_service_account(workload, time.monotonic() + 10)
        step("default service account present")
        workload.call(
            "POST",
            f"/apis/apps/v1/namespaces/{namespace}/daemonsets",
            daemonset_manifest(workload.image, kept_off=sorted(unreachable)),
        )
        service = workload.call("POST", f"{workload.base}/services", service_manifest()).body
        step("DaemonSet and Service created")
        workload.cluster_ip = (service.get("spec") or {}).get("clusterIP", "")
        workload.node_port = int(((service.get("spec") or {}).get("ports") or [{}])[0].get("nodePort") or 0)
        deadline = started + READY_TIMEOUT
        while True:
            workload.pods, done = _observe_pods(workload)
            if done or time.monotonic() >= deadline:
                break
            time.sleep(POLL)
        workload.ready_seconds = time.monotonic() - started
        step("pods settled")
        if not all(state.state == RUNNING for state in workload.pods.values()):
            events = workload.call("GET", f"{workload.base}/events").body.get("items") or []
            warnings = [
                f"event {e.get('reason')}: {(e.get('involvedObject') or {}).get('name')}: {e.get('message')}"
                for e in events
                if e.get("type") == "Warning"
            ]
            for state in workload.pods.values():
                if state.state != RUNNING:
                    state.details.extend(warnings[-5:])
    except BaseException:
        # an error or an interrupt half-way: nothing of ours may stay behind (SMOKE-06 still finds
        # the namespace by its labels until the deletion completes)
        _registry(ctx.session).pop("workload", None)
        workload.close()
        raise
    return workload


def smoke_workload(ctx: HostContext) -> SmokeWorkload:
    workload = ctx.session.shared("smoke-workload", lambda: _create(ctx))
    if workload.removed:
        raise ProbeError(ctx.host.name, "the smoke workload was already removed (SMOKE-06 runs last)")
    if ctx.host.name in workload.unreachable:
        raise workload.unreachable[ctx.host.name].again()
    ctx.note_source(
        f"Kubernetes API: smoke workload in namespace {workload.namespace} (DaemonSet {APP} of {workload.image}, "
        f"NodePort Service {workload.cluster_ip}:{SERVICE_PORT} / :{workload.node_port}; "
        f"pods settled in {workload.ready_seconds:.1f}s)"
    )
    return workload


def _running_pod(ctx: HostContext, workload: SmokeWorkload, node: str) -> PodState:
    state = workload.pods.get(node)
    if state is None or state.state != RUNNING:
        raise ProbeError(
            ctx.host.name,
            f"prerequisite failed: no Running smoke pod on {node} (SMOKE-01: {state.state if state else 'no pod'})",
        )
    return state


# ----------------------------------------------------------------------------- SMOKE-01..05


@probe("smoke_pod_state")
def smoke_pod_state(ctx: HostContext, _: str) -> Observation:
    """The state of the smoke DaemonSet's pod on this worker (`Running` when running and ready)."""
    workload = smoke_workload(ctx)
    state = workload.pods.get(ctx.host.name, PodState(ctx.host.name))
    details = [f"pod {state.name or '(none)'} on {ctx.host.name}: {state.state}", *state.details]
    details.append("workload: " + ", ".join(workload.timings))
    return ctx.observation(state.state, details)


@probe("smoke_pod_subnet")
def smoke_pod_subnet(ctx: HostContext, _: str) -> Observation:
    """Whether this worker's pod IP lies in FLANNEL_SUBNET of /run/flannel/subnet.env on this worker."""
    workload = smoke_workload(ctx)
    pod = _running_pod(ctx, workload, ctx.host.name)
    subnet_text = node_facts.parse_subnet_env(ctx.fact(node_facts.flannel_subnet_env)).get("FLANNEL_SUBNET")
    if not subnet_text:
        return ctx.observation(f"{pod.ip}: no FLANNEL_SUBNET in {layout.FLANNEL_SUBNET_ENV}")
    try:
        subnet = ipaddress.ip_network(subnet_text, strict=False)
        inside = ipaddress.ip_address(pod.ip) in subnet
    except ValueError as exc:
        return ctx.observation(f"{pod.ip} vs FLANNEL_SUBNET {subnet_text}: {exc}")
    details = [f"pod {pod.name}: IP {pod.ip}; FLANNEL_SUBNET={subnet_text}"]
    return ctx.observation(INSIDE_SUBNET if inside else f"{pod.ip} is outside FLANNEL_SUBNET {subnet_text}", details)


@probe("smoke_ping_unreachable")
def smoke_ping_unreachable(ctx: HostContext, _: str) -> Observation:
    """Pods on the other workers this worker's pod cannot ping (exec'd through the API)."""
    workload = smoke_workload(ctx)
    others = [name for name in workload.workers if name != ctx.host.name]
    for down in workload.unreachable.values():
        ctx.note_skipped(down, "no smoke pod there to ping")
    if not others and workload.unreachable:  # the only other workers do not answer: say which
        raise next(iter(workload.unreachable.values())).again()
    if not others:
        raise NotApplicable("a single worker: there is no other node's pod to ping")
    source = _running_pod(ctx, workload, ctx.host.name)
    targets = {name: workload.pods[name] for name in others if workload.pods[name].state == RUNNING}
    diagnosis = [f"{name}: no Running pod to ping (SMOKE-01)" for name in others if name not in targets]
    if not targets:
        raise ProbeError(ctx.host.name, "prerequisite failed: no other worker has a Running smoke pod (SMOKE-01)")
    script = 'for ip in "$@"; do if ping -c 1 -W 2 "$ip" >/dev/null 2>&1 || ping -c 1 -W 2 "$ip" >/dev/null 2>&1; '
    script += 'then echo "$ip ok"; else echo "$ip unreachable"; fi; done'
    rc, stdout, stderr = workload.exec(source.name, ["sh", "-c", script, "sh", *(t.ip for t in targets.values())])
    ctx.note_source(f"exec in {workload.namespace}/{source.name}: ping -c 1 -W 2 <pod IP> (twice at most)")
    answers = dict(line.split(" ", 1) for line in stdout.splitlines() if " " in line)
    unreachable = [f"{t.name} on {name} ({t.ip})" for name, t in targets.items() if answers.get(t.ip) != "ok"]
    diagnosis += [f"from {source.name} ({source.ip}): {line}" for line in stdout.splitlines()]
    if stderr.strip():
        diagnosis.append(f"stderr: {stderr.strip()[:200]}")
    if rc not in (0, None):
        diagnosis.append(f"exec exit code {rc}")
    seen = [
        f"{source.name} ({source.ip}) -> {t.name} on {name} ({t.ip}): {answers.get(t.ip, 'no answer')}"
        for name, t in targets.items()
    ]
    return ctx.observation(unreachable, diagnosis, seen=seen)


def _service_urls(ctx: HostContext, workload: SmokeWorkload) -> list[str]:
    urls = [f"http://{workload.cluster_ip}:{SERVICE_PORT}/"] if workload.cluster_ip else []
    if workload.node_port:
        # this node's NodePort first, then every other worker's (the Service from any node), but
        # none on a worker that does not answer: curl would wait out its retries on a frozen host
        others = [h for h in ctx.cluster.workers if h.name != ctx.host.name]
        for host in others:
            if host.name in workload.unreachable:
                ctx.note_skipped(workload.unreachable[host.name], f"its NodePort :{workload.node_port} not tried")
        ordered: list[HostSpec] = [ctx.host] + [h for h in others if h.name not in workload.unreachable]
        urls += [f"http://{h.address}:{workload.node_port}/" for h in ordered]
    return urls


@probe("smoke_service_failures")
def smoke_service_failures(ctx: HostContext, _: str) -> Observation:
    """Service URLs (ClusterIP and NodePorts) that do not answer with a smoke pod's name from this node."""
    workload = smoke_workload(ctx)
    if not any(state.state == RUNNING for state in workload.pods.values()):
        raise ProbeError(ctx.host.name, "prerequisite failed: no smoke pod is Running (SMOKE-01)")
    urls = _service_urls(ctx, workload)
    # kube-proxy programs the rules a moment after the endpoints appear: retry up to ~10 s per URL
    script = (
        "for u in " + " ".join(shlex.quote(u) for u in urls) + "; do i=0; while :; do "
        'b=$(curl -sS --connect-timeout 2 -m 3 "$u" 2>&1); rc=$?; '
        '[ "$rc" = 0 ] && break; i=$((i+1)); [ "$i" -ge 10 ] && break; sleep 1; done; '
        'printf \'%s\\t%s\\t%s\\n\' "$u" "$rc" "$(printf \'%s\' "$b" | head -n1)"; done'
    )
    result = ctx.session.transport.connection(ctx.host).run(script, timeout=60 + 15 * len(urls))
    ctx.note_source(f"{ctx.host.name}$ curl -sS --connect-timeout 2 -m 3 <url> (retried up to 10 s)")
    names = {state.name for state in workload.pods.values() if state.name}
    failures = []
    diagnosis = []
    for line in result.stdout.splitlines():
        url, _, rest = line.partition("\t")
        rc, _, body = rest.partition("\t")
        diagnosis.append(f"{url}: " + (f"answered by pod {body}" if rc == "0" else f"curl exit {rc}: {body}"))
        if rc != "0" or body.strip() not in names:
            failures.append(f"{url} ({'curl exit ' + rc if rc != '0' else 'answered ' + repr(body[:60])})")
    missing = [u for u in urls if not any(line.startswith(u + "\t") for line in result.stdout.splitlines())]
    failures += [f"{u} (not tried: {result.stderr.strip()[:100]})" for u in missing]
    return ctx.observation(failures, diagnosis, seen=[f"from {ctx.host.name}: {line}" for line in diagnosis])


@probe("smoke_pod_logs")
def smoke_pod_logs(ctx: HostContext, _: str) -> Observation:
    """Whether `kubectl logs` works against this worker's pod: its start line comes back."""
    workload = smoke_workload(ctx)
    pod = _running_pod(ctx, workload, ctx.host.name)
    path = f"{workload.base}/pods/{pod.name}/log?container=testbox&tailLines=20"
    answer = call_json(workload.clients, "GET", path, timeout=API_TIMEOUT, where=ctx.host.name)
    ctx.note_source(f"Kubernetes API: GET {path} (HTTP {answer.status})")
    text = answer.body if isinstance(answer.body, str) else api_message(answer)
    if answer.status == 200 and f"{LOG_MARKER} {pod.name}" in text:
        return ctx.observation(LOGS_OK, [line for line in text.splitlines()[:3]])
    return ctx.observation(f"logs: HTTP {answer.status}: {text.strip()[:200]}")


@probe("smoke_pod_exec")
def smoke_pod_exec(ctx: HostContext, _: str) -> Observation:
    """Whether `kubectl exec` works against this worker's pod: `hostname` answers the pod's name."""
    workload = smoke_workload(ctx)
    pod = _running_pod(ctx, workload, ctx.host.name)
    ctx.note_source(f"exec in {workload.namespace}/{pod.name}: hostname")
    try:
        rc, stdout, stderr = workload.exec(pod.name, ["hostname"])
    except ProbeError as exc:
        # the API refused or could not reach the kubelet: that IS the failure this row looks for
        return ctx.observation(f"exec: {exc.reason}")
    if rc == 0 and stdout.strip() == pod.name:
        return ctx.observation(EXEC_OK, [f"hostname -> {stdout.strip()}"])
    return ctx.observation(f"exec: exit {rc}: {(stdout + stderr).strip()[:200]}")


# ----------------------------------------------------------------------------- SMOKE-06


@dataclass
class Teardown:
    remaining: list[str]
    diagnosis: list[str]
    live_elsewhere: list[str]  # namespaces of this run's other xdist workers, still in use


def _teardown(ctx: HostContext) -> Teardown:
    """Delete our workload and earlier leftovers, then wait (bounded) until their namespaces are gone."""
    registry = _registry(ctx.session)
    workload: SmokeWorkload | None = registry.get("workload")
    own = open_private_kube(ctx) if workload is None else workload.clients
    run, worker = run_identity()
    diagnosis = []
    started = time.monotonic()
    live_elsewhere: set[str] = set()
    try:
        if workload is not None:
            workload.delete_namespace()
            diagnosis.append(f"deleted namespace {workload.namespace} (this run, worker {worker})")
        probe_workload = workload or SmokeWorkload("", run, worker, own, "", [])
        at_start = workload.leftovers_deleted if workload is not None else []
        diagnosis += [f"at start: deleted leftover namespace {name} of an earlier run" for name in at_start]
        known = {name.split(" ", 1)[0] for name in at_start}
        leftovers = _delete_leftovers(probe_workload)
        diagnosis += [
            f"now: deleted leftover namespace {name} of an earlier run"
            for name in leftovers
            if name.split(" ", 1)[0] not in known
        ]
        remaining: list[str] = []
        while True:
            answer = probe_workload.call("GET", f"/api/v1/namespaces?labelSelector={SMOKE_LABEL}%3Dtrue")
            remaining = []
            for item in answer.body.get("items") or []:
                metadata = item.get("metadata") or {}
                labels = metadata.get("labels") or {}
                if labels.get(RUN_LABEL) == run and labels.get(WORKER_LABEL) != worker:
                    live_elsewhere.add(metadata.get("name", ""))
                    continue
                phase = (item.get("status") or {}).get("phase", "?")
                remaining.append(f"namespace {metadata.get('name')} ({phase})")
            if not remaining or time.monotonic() - started >= DELETE_TIMEOUT:
                break
            time.sleep(POLL)
        diagnosis.append(f"waited {time.monotonic() - started:.1f}s for the namespaces to be gone")
        diagnosis += [
            f"{name}: another xdist worker's live workload (that worker removes it)" for name in live_elsewhere
        ]
        return Teardown(remaining, diagnosis, sorted(live_elsewhere))
    finally:
        if workload is None:
            own.close()


def smoke_teardown(ctx: HostContext) -> Teardown:
    result = ctx.session.shared("smoke-teardown", lambda: _teardown(ctx))
    ctx.note_source("Kubernetes API: DELETE and GET /api/v1/namespaces?labelSelector=kubeproof.io/smoke=true")
    return result


@probe("smoke_leftover_namespaces")
def smoke_leftover_namespaces(ctx: HostContext, _: str) -> Observation:
    """Smoke namespaces still present after the teardown (this run's and any earlier run's)."""
    result = smoke_teardown(ctx)
    left = f"namespaces labelled {SMOKE_LABEL}=true left: {len(result.remaining)}"
    return ctx.observation(result.remaining, result.diagnosis, seen=[*result.diagnosis, left])


@probe("smoke_leftover_containers")
def smoke_leftover_containers(ctx: HostContext, _: str) -> Observation:
    """Running containers of smoke pods still on this worker after the teardown (waits up to 10 s)."""
    result = smoke_teardown(ctx)
    # the kubelet stops a deleted pod's containers before the API forgets the pod; a few seconds' grace
    exclusions = "".join(
        "c=$(printf '%s\\n' \"$c\" | grep -v -- " + shlex.quote("^" + name + " ") + "); "
        for name in result.live_elsewhere
    )
    command = (
        "i=0; while :; do c=$(docker ps --format " + shlex.quote(CONTAINER_FORMAT) + " | "
        "grep -- "
        + shlex.quote("^" + NAMESPACE_PREFIX)
        + "); "
        + exclusions
        + '[ -z "$c" ] && break; i=$((i+1)); [ "$i" -ge 10 ] && break; sleep 1; done; printf \'%s\\n\' "$c"'
    )
    output = ctx.session.transport.connection(ctx.host).run(command, timeout=60)
    ctx.note_source(
        ctx.host.name + "$ docker ps --format " + shlex.quote(CONTAINER_FORMAT) + " (until none is left, 10 s)"
    )
    leftovers = []
    for line in output.stdout.splitlines():
        namespace, _, name = line.partition(" ")
        if namespace:
            leftovers.append(f"{name} (namespace {namespace})")
    seen = [f"docker ps on {ctx.host.name}: {len(leftovers)} container(s) of {NAMESPACE_PREFIX}* namespaces running"]
    seen += [f"{name}: another xdist worker's live workload, not counted" for name in result.live_elsewhere]
    return ctx.observation(leftovers, result.diagnosis, seen=seen + leftovers)
