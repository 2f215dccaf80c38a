"""The guide's certificates, made with ``cryptography`` instead of cfssl (the installer's first step).

Two authorities, as in the guide: the **etcd CA** (etcd-cert.sh) signs the etcd server certificate,
which etcd also uses as its peer and client certificate; the **Kubernetes CA** (k8s-cert.sh) signs
the apiserver, admin and kube-proxy certificates. A service-account key pair is added because
kube-apiserver >= 1.20 requires ``--service-account-signing-key-file`` (the guide's era used the CA
key for that; we do not).

Inputs are cfssl's own JSON (``ca-config.json``, ``*-csr.json``): rendered from the cluster by
default, or read from a directory in the guide's format. The effective inputs are written beside
the certificates under their cfssl names, so ``cfssl gencert`` can regenerate them by hand.

Rules this package keeps:

* An existing CA (certificate or key) is never replaced unless asked (``replace_ca``); an existing
  private key is never overwritten (:mod:`.authority`). A leaf is re-issued (with its existing key)
  only when it is missing, not signed by the current CA, no longer matches the cluster (subject,
  SANs, usages), outlives its CA, or expires within the renewal window (:mod:`.leaves`).
  Everything else stays byte-identical, so a second run changes nothing.
* No certificate outlives its CA: cfssl's ``gencert -initca`` gives a CA 5 years by default while
  the guide's profile gives leaves 10 (PKI-E-05/SEC-05). Here a CA gets its own configured life
  and a leaf's notAfter is clamped to its CA's, with a note in the plan.
* Private keys are created 0600 through ``os.open`` (never chmod-ed after the fact), directories
  0700 (:mod:`.local_files`), and no key material appears in a message, a log line or a ``repr``.

Modules: :mod:`.cfssl` and :mod:`.cfssl_json` (cfssl's model and its JSON), :mod:`.inputs` (which
certificates, SANs and profiles), :mod:`.crypto` (keys and certificates), :mod:`.authority` and
:mod:`.leaves` (when to make, keep or re-issue), :mod:`.plan`, :mod:`.local_files`, :mod:`.run`,
:mod:`.ensure` (the step itself) and :mod:`.remote` (what each host gets).
"""

from __future__ import annotations

# The package's public face, what the installer's phase (bootstrap/phases/pki.py) calls as
# ``pki.<name>``; everything else is imported from its submodule.
from kubeproof.bootstrap.pki.ensure import ensure_pki, plan_pki
from kubeproof.bootstrap.pki.plan import Action, PkiPlan
from kubeproof.bootstrap.pki.remote import host_pki_files

__all__ = ["Action", "PkiPlan", "ensure_pki", "host_pki_files", "plan_pki"]
