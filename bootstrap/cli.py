"""`kubeproof plan|apply --cluster FILE [--state-dir DIR] [--phase NAME ...] [--replace-ca] [--yes]`.

plan shows the changes (nothing is touched); apply makes them, phase by phase in the guide's
order, and prints each change with its host, phase and time. Every run is logged, secrets masked,
in <state>/runs/<UTC timestamp>-<command>.log.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from kubeproof.bootstrap.artifacts import Artifacts
from kubeproof.bootstrap.context import RunContext
from kubeproof.bootstrap.errors import BootstrapError
from kubeproof.bootstrap.remote_digests import RemoteDigests
from kubeproof.bootstrap.runner import PHASE_NAMES, run, select_phases
from kubeproof.bootstrap.state import Reporter, Sha256Cache, StateDir, apply_lock, default_state_dir
from kubeproof.inventory import InventoryError, load_cluster_file
from kubeproof.transport import ProbeError, Transport


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubeproof",
        description="Install a Kubernetes cluster the way the guide does it by hand (plan shows, apply does).",
    )
    parser.add_argument("command", choices=("plan", "apply"))
    parser.add_argument("--cluster", required=True, type=Path, help="the cluster file (docs/DESIGN.md)")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="local state (default $KUBEPROOF_STATE or ./.kubeproof)"
    )
    parser.add_argument(
        "--phase",
        action="extend",
        nargs="+",
        choices=PHASE_NAMES,
        metavar="NAME",
        help=f"only these phases, run in the guide's order ({', '.join(PHASE_NAMES)}); repeatable",
    )
    parser.add_argument(
        "--replace-ca",
        action="store_true",
        help="make new CAs and replace the CAs on the hosts (every certificate is re-issued; kubelets must re-join)",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask before --replace-ca")
    parser.add_argument("--quiet", action="store_true", help="only the summary on stdout (the log has everything)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cluster = load_cluster_file(args.cluster)
    except InventoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state = StateDir((args.state_dir or default_state_dir()).absolute())
    apply = args.command == "apply"
    if apply and args.replace_ca and not args.yes:
        answer = input("--replace-ca makes new CAs and replaces them on every host. Type 'replace' to go on: ")
        if answer.strip() != "replace":
            print("not replacing the CA; nothing was changed", file=sys.stderr)
            return 1
    reporter = Reporter(state.runs, args.command, quiet=args.quiet)
    sha_cache = Sha256Cache(state.cache / "artifact-sha256.json")
    transport = Transport(cluster)
    ctx: RunContext | None = None
    try:
        phases = select_phases(args.phase)
        ctx = RunContext(
            cluster=cluster,
            transport=transport,
            state=state,
            reporter=reporter,
            artifacts=Artifacts(cluster, sha_cache),
            sha_cache=sha_cache,
            remote_digests=RemoteDigests(state.cache / "remote-sha256.json"),
            apply=apply,
            replace_ca=args.replace_ca,
            pki_dir=state.pki,
        )
        reporter.line(
            f"{args.command} {cluster.name} ({args.cluster}): phases {', '.join(p.name for p in phases)}; "
            f"log {reporter.log_path}"
        )
        with apply_lock(state, reporter) if apply else nullcontext():
            result = run(ctx, phases)
        if result.errors:
            return 1
        return 0
    except BootstrapError as exc:
        reporter.line(f"error: {exc}", always=True)
        return 1
    except ProbeError as exc:
        reporter.line(f"error: {exc.host}: {exc.reason}", always=True)
        return 1
    except Exception as exc:
        reporter.line(
            f"error: unexpected {type(exc).__name__}: {str(exc)[:500]} (traceback in {reporter.log_path})", always=True
        )
        reporter.debug(traceback.format_exc())
        return 1
    except KeyboardInterrupt:
        reporter.line("interrupted: run `apply` again to complete (every step is idempotent)")
        return 130
    finally:
        if ctx is not None:
            ctx.close()
        transport.close()
        reporter.close()
