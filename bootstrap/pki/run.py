"""What one PKI run carries from step to step: its plan, its file effects, its clock, its key maker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kubeproof.bootstrap.pki.cfssl import KeySpec
from kubeproof.bootstrap.pki.crypto import KeyFactory, SigningKey, key_spec_of
from kubeproof.bootstrap.pki.errors import PkiError
from kubeproof.bootstrap.pki.local_files import PkiFiles
from kubeproof.bootstrap.pki.plan import PkiPlan

__all__ = ["PkiRun"]


@dataclass
class PkiRun:
    plan: PkiPlan
    files: PkiFiles
    now: datetime
    renewal_window: timedelta
    replace: frozenset[str]  # the authorities whose CA replace_ca names
    key_factory: KeyFactory | None = field(repr=False)  # None in plan mode, which never makes keys

    def new_key(self, spec: KeySpec) -> SigningKey:
        if self.key_factory is None:
            raise AssertionError("plan mode never makes keys")
        key = self.key_factory(spec)
        if key_spec_of(key) != spec:
            raise PkiError(f"the key factory returned a {key_spec_of(key)} key for a {spec} request")
        return key
