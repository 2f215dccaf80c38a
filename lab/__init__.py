"""The kubeproof lab: three node containers that look like the guide's three VMs, reached by SSH.

Nothing above the transport depends on this package: `lab up` writes an ordinary cluster file
(hosts, addresses, an OpenSSH config with strict host keys) that real VMs would have too.
"""

from __future__ import annotations
