"""The settlement ledger's Merkle tree, as the ledger endpoints read it: rebuilt at most once
every :data:`MAX_AGE_S`, whatever the number of requests.

Building the tree reads every entry, which costs a second or more on a large ledger; the
digest is public, so without a limit anyone could make the server rescan its ledger as fast
as they can ask. A digest up to a second old is as good as a fresh one (a client checks proofs
against the digest it keeps, of whatever size), and a proof for a larger tree than the one
held rebuilds it at once. One rebuild runs at a time; a request arriving meanwhile waits for
it instead of starting another.
"""

from __future__ import annotations

import threading
import time
from typing import Final

from ledger import MerkleTree
from ledger.store import Ledger

__all__ = ["MAX_AGE_S", "LedgerTree"]

MAX_AGE_S: Final = 1.0


class LedgerTree:
    def __init__(self, max_age_s: float = MAX_AGE_S) -> None:
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._tree: MerkleTree | None = None
        self._built_at = 0.0

    def tree(self, ledger: Ledger, *, at_least: int = 0) -> MerkleTree:
        """A tree of the ledger at most ``max_age_s`` old with at least ``at_least``
        leaves, if the ledger has that many (blocking: call it off the event loop)."""
        with self._lock:
            tree = self._tree
            fresh = time.monotonic() - self._built_at < self.max_age_s
            if tree is None or not fresh or tree.size < at_least:
                tree = self._tree = ledger.tree()
                self._built_at = time.monotonic()
            return tree
