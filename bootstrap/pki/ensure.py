"""The PKI step itself: :func:`plan_pki` says what :func:`ensure_pki` would do, and it does it.

Per authority, in this order: its directory, its CA, the leaves it signs, the service-account key
pair (Kubernetes only) and the effective cfssl JSON inputs, written beside the certificates under
their cfssl names so that ``cfssl gencert`` can regenerate them by hand.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kubeproof.bootstrap.pki.authority import authorities_to_replace, ensure_ca
from kubeproof.bootstrap.pki.cfssl import KeySpec
from kubeproof.bootstrap.pki.crypto import (
    KeyFactory,
    generate_private_key,
    load_private_key,
    private_key_pem,
    public_key_pem,
)
from kubeproof.bootstrap.pki.errors import PkiError
from kubeproof.bootstrap.pki.inputs import KUBERNETES, AuthorityInputs, desired_inputs
from kubeproof.bootstrap.pki.leaves import ensure_leaf
from kubeproof.bootstrap.pki.local_files import PkiFiles, exclusive_lock
from kubeproof.bootstrap.pki.plan import Action, PkiPlan, PlanItem
from kubeproof.bootstrap.pki.run import PkiRun
from kubeproof.inventory import Cluster

__all__ = ["DEFAULT_RENEWAL_WINDOW", "ensure_pki", "plan_pki"]

# Matches the checks' default remaining-life budget (PKI-E-05): a run re-issues what they would flag.
DEFAULT_RENEWAL_WINDOW = timedelta(days=30)


def _ensure_service_account(run: PkiRun, directory: Path) -> None:
    """sa-key.pem signs service-account tokens, sa.pem verifies them (kube-apiserver >= 1.20 needs both)."""
    public_path, key_path = directory / "sa.pem", directory / "sa-key.pem"
    paths = (public_path, key_path)
    notes: list[str] = []
    if os.path.lexists(key_path):
        key = load_private_key(key_path)
        run.files.narrow_key_mode(key_path, notes)
        wanted = public_key_pem(key)
        current = public_path.read_bytes() if os.path.lexists(public_path) else None
        if current == wanted:
            run.plan.items.append(PlanItem(KUBERNETES, "sa", Action.REUSE, (), tuple(notes), paths))
            return
        # The private key is the authority; the public half is derived from it and safe to rewrite.
        reason = "sa.pem missing" if current is None else "sa.pem does not match sa-key.pem"
        run.plan.items.append(
            PlanItem(KUBERNETES, "sa", Action.REISSUE, (reason + ": rewritten from the key",), tuple(notes), paths)
        )
        run.files.write(public_path, wanted, secret=False)
        return
    if os.path.lexists(public_path):
        raise PkiError(
            f"{public_path} exists without {key_path.name}: a new pair would invalidate every service-account "
            f"token signed so far. Restore {key_path.name}, or remove {public_path.name} to have a new pair made"
        )
    run.plan.items.append(PlanItem(KUBERNETES, "sa", Action.CREATE, ("no service-account key pair",), (), paths))
    if run.files.apply:
        key = run.new_key(KeySpec("rsa", 2048))
        run.files.write(key_path, private_key_pem(key), secret=True)
        run.files.write(public_path, public_key_pem(key), secret=False, durable=True)


def _ensure_json_inputs(run: PkiRun, inputs: AuthorityInputs, directory: Path) -> None:
    for name, text in inputs.json_files().items():
        path = directory / name
        data = text.encode("utf-8")
        current = path.read_bytes() if path.is_file() else None
        if current == data:
            run.plan.items.append(PlanItem(inputs.name, name, Action.REUSE, paths=(path,)))
            continue
        reason = "missing" if current is None else "differs from the effective input (generated file; edit inputs_dir)"
        run.plan.items.append(PlanItem(inputs.name, name, Action.WRITE, (reason,), paths=(path,)))
        run.files.write(path, data, secret=False)


def _run_pki(
    cluster: Cluster,
    pki_dir: Path,
    *,
    apply: bool,
    inputs_dir: Path | None,
    replace_ca: bool | Iterable[str],
    ca_expiry: timedelta | None,
    renewal_window: timedelta,
    now: datetime | None,
    key_factory: KeyFactory | None,
) -> PkiPlan:
    if now is not None and now.tzinfo is None:
        raise PkiError("now must be timezone-aware")
    # X.509 times have whole seconds; truncating keeps computed and parsed times comparable.
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    etcd_inputs, kubernetes_inputs = desired_inputs(cluster, inputs_dir=inputs_dir, ca_expiry=ca_expiry)
    plan = PkiPlan(pki_dir=pki_dir, applied=apply)
    run = PkiRun(plan, PkiFiles(plan), moment, renewal_window, authorities_to_replace(replace_ca), key_factory)
    run.files.ensure_directory(pki_dir)
    with exclusive_lock(pki_dir, apply):
        for inputs in (etcd_inputs, kubernetes_inputs):
            plan.notes += [f"{inputs.name}: {note}" for note in inputs.notes]
            directory = pki_dir / inputs.name
            run.files.ensure_directory(directory)
            ca = ensure_ca(run, inputs, directory)
            for leaf in inputs.leaves:
                ensure_leaf(run, ca, leaf, directory)
            if inputs.name == KUBERNETES:
                _ensure_service_account(run, directory)
            _ensure_json_inputs(run, inputs, directory)
    return plan


def plan_pki(
    cluster: Cluster,
    pki_dir: Path,
    *,
    inputs_dir: Path | None = None,
    replace_ca: bool | Iterable[str] = False,
    ca_expiry: timedelta | None = None,
    renewal_window: timedelta = DEFAULT_RENEWAL_WINDOW,
    now: datetime | None = None,
) -> PkiPlan:
    """What :func:`ensure_pki` would do, without writing anything or making keys."""
    return _run_pki(
        cluster,
        pki_dir,
        apply=False,
        inputs_dir=inputs_dir,
        replace_ca=replace_ca,
        ca_expiry=ca_expiry,
        renewal_window=renewal_window,
        now=now,
        key_factory=None,
    )


def ensure_pki(
    cluster: Cluster,
    pki_dir: Path,
    *,
    inputs_dir: Path | None = None,
    replace_ca: bool | Iterable[str] = False,
    ca_expiry: timedelta | None = None,
    renewal_window: timedelta = DEFAULT_RENEWAL_WINDOW,
    now: datetime | None = None,
    key_factory: KeyFactory = generate_private_key,
) -> PkiPlan:
    """Make ``pki_dir/{etcd,kubernetes}`` hold the cluster's certificates; return what was done and why.

    ``replace_ca``: True, or the authorities ("etcd", "kubernetes") whose CA to make anew; the old
    files are kept as ``ca.pem.replaced-<time>``. ``ca_expiry`` overrides ca-csr.json's
    ``ca.expiry`` (default :data:`DEFAULT_CA_EXPIRY`). ``key_factory`` makes new private keys.
    """
    return _run_pki(
        cluster,
        pki_dir,
        apply=True,
        inputs_dir=inputs_dir,
        replace_ca=replace_ca,
        ca_expiry=ca_expiry,
        renewal_window=renewal_window,
        now=now,
        key_factory=key_factory,
    )
