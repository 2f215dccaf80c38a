"""The sha256 of files on the hosts, as the installer last read them, keyed by what `stat` says.

A zero-change apply used to hash every binary it owns on every run: about 330 MB on the master and
210 MB on each worker, a second of the master phase alone on the lab. The installer now sends, with
each path, the stat signature it saw when it last hashed the file there; the host hashes the file
again only when the signature differs, and otherwise answers "=" (the sha256 known for it).

The signature is size, mtime and ctime in nanoseconds, inode and device (`stat -c`, GNU coreutils).
Any write changes the ctime, and no system call sets a ctime, so a file changed since it was hashed
is hashed again, whatever its mtime says. Two cases are never trusted: a signature that is not in
that exact form (another `stat` that cannot print nanoseconds), and a file changed in the last
RACY_SECONDS before it was read (it could change again within the same clock tick, as git's "racily
clean" index entries can). The verify suites do not use this: their rows hash what they check.

Kept in <state>/cache/remote-sha256.json, beside the local artifacts' digests.
"""

from __future__ import annotations

import re

from kubeproof.bootstrap.state import JsonCache

SIGNATURE_FORMAT = "%s:%.9Y:%.9Z:%i:%d"  # size, mtime, ctime (ns), inode, device
SIGNATURE = re.compile(r"^\d+:\d+\.\d{9}:(\d+)\.\d{9}:\d+:\d+$")
RACY_SECONDS = 2
UNCHANGED = "="  # what the host prints instead of a sha256 when the signature matches


def trusted_signature(signature: str, host_now: int | None) -> str | None:
    """The signature, if a later run may trust it: the exact form, and the file not changed within
    RACY_SECONDS of the host's clock when it was read (None when that clock is unknown)."""
    match = SIGNATURE.match(signature)
    if match is None or host_now is None:
        return None
    return signature if int(match.group(1)) <= host_now - RACY_SECONDS else None


class RemoteDigests(JsonCache):
    """host -> path -> [signature, sha256]; thread-safe (phases plan every host in its own thread)."""

    def known(self, host: str) -> dict[str, tuple[str, str]]:
        """path -> (signature, sha256) of what was hashed on the host before."""
        with self._lock:
            entries = self._entries.get(host) or {}
            return {path: (str(entry[0]), str(entry[1])) for path, entry in dict(entries).items()}

    def learn(self, host: str, path: str, signature: str, sha256: str) -> None:
        with self._lock:
            entries = self._entries.setdefault(host, {})
            if entries.get(path) != [signature, sha256]:
                entries[path] = [signature, sha256]
                self.changed()
