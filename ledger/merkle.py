"""RFC 6962 Merkle tree hashing, proofs and their verifiers, as pure functions.

Hashing follows RFC 6962 section 2.1 (Certificate Transparency):
leaf hash ``SHA-256(0x00 || data)``, interior node ``SHA-256(0x01 || left || right)``, the
empty tree hashes to ``SHA-256()``, and a tree of ``n`` leaves splits at the largest power of
two smaller than ``n``. Proofs are those of RFC 6962 section 2.1.1 (audit path) and 2.1.2
(consistency); the verifiers are the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2 and
need nothing but the proof, the digest(s) and, for inclusion, the leaf.

Verifiers raise :class:`ProofError` with the reason; they never return a false success.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256

__all__ = [
    "EMPTY_ROOT_HASH",
    "HASH_SIZE_BYTES",
    "ConsistencyProof",
    "Digest",
    "InclusionProof",
    "MerkleFrontier",
    "MerkleTree",
    "ProofError",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "subtree_roots",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE_BYTES = 32
EMPTY_ROOT_HASH = sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class ProofError(ValueError):
    """A proof does not prove what it claims, or is malformed."""


@dataclass(frozen=True, slots=True)
class Digest:
    """What a client keeps: the size of the tree and its root hash."""

    tree_size: int
    root_hash: bytes

    def to_json(self) -> dict[str, int | str]:
        return {"tree_size": self.tree_size, "root_hash": self.root_hash.hex()}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Digest:
        return cls(_size(data, "tree_size"), _hex(data, "root_hash"))


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Audit path for leaf ``leaf_index`` (0-based) in the tree of ``tree_size`` leaves."""

    leaf_index: int
    tree_size: int
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "hashes": [h.hex() for h in self.hashes],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> InclusionProof:
        return cls(_size(data, "leaf_index"), _size(data, "tree_size"), _hex_list(data))


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """Proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size``."""

    old_size: int
    new_size: int
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "hashes": [h.hex() for h in self.hashes],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ConsistencyProof:
        return cls(_size(data, "old_size"), _size(data, "new_size"), _hex_list(data))


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: ``SHA-256(0x00 || data)``."""
    return sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return sha256(_NODE_PREFIX + left + right).digest()


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """Root of the tree over ``leaf_hashes``, bottom-up in O(n) time and O(n) memory.

    Pairing neighbours level by level and carrying an unpaired last node up unchanged builds
    exactly the RFC 6962 tree (its left subtrees are always the largest complete ones).
    """
    if not leaf_hashes:
        return EMPTY_ROOT_HASH
    level = list(leaf_hashes)
    prefix = _NODE_PREFIX
    while len(level) > 1:
        paired = [
            sha256(prefix + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


def subtree_roots(leaf_hashes: Sequence[bytes], size: int) -> list[bytes]:
    """Roots of consecutive subtrees of ``size`` leaves each (a power of two; the last one may
    hold fewer).

    Where the first leaf's index in the whole tree is a multiple of ``size``, these are the
    nodes of the whole tree one level of ``size`` leaves up, where :func:`root_hash` would
    carry them: the roots of the parts of a tree, cut at such multiples and computed apart,
    give the whole tree's root as ``root_hash(roots of part 1 + roots of part 2 + ...)``.
    """
    if size < 1 or size & (size - 1):
        raise ValueError(f"subtree size {size} is not a power of two")
    return [root_hash(leaf_hashes[i : i + size]) for i in range(0, len(leaf_hashes), size)]


class MerkleTree:
    """The complete subtrees of a tree of leaf hashes, for roots and proofs of any prefix.

    ``levels[h][j]`` is the hash of the complete subtree of ``2**h`` leaves starting at leaf
    ``j * 2**h``. Every subtree the RFC 6962 recursion visits is either such a block or the
    right edge of a prefix, so any root or proof costs O(log n) hashes once the levels exist.
    Building the levels costs n - 1 hashes.
    """

    __slots__ = ("levels",)

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        level = list(leaf_hashes)
        self.levels: list[list[bytes]] = [level]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            self.levels.append(level)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def root(self, tree_size: int | None = None) -> bytes:
        """Root hash of the first ``tree_size`` leaves (all of them by default)."""
        size = self._size(tree_size)
        return EMPTY_ROOT_HASH if size == 0 else self._subtree(0, size)

    def digest(self, tree_size: int | None = None) -> Digest:
        size = self._size(tree_size)
        return Digest(size, self.root(size))

    def inclusion_proof(self, leaf_index: int, tree_size: int | None = None) -> InclusionProof:
        """RFC 6962 audit path of ``leaf_index`` in the first ``tree_size`` leaves."""
        size = self._size(tree_size)
        if not 0 <= leaf_index < size:
            raise ProofError(f"leaf index {leaf_index} outside a tree of {size} leaves")
        path: list[bytes] = []
        lo, hi, index = 0, size, leaf_index
        # Walk down from the root; the sibling subtree at each split joins the path, which is
        # then reversed so that it runs from the leaf upwards as RFC 6962 orders it.
        while hi - lo > 1:
            split = _largest_power_of_two_below(hi - lo)
            if index < lo + split:
                path.append(self._subtree(lo + split, hi))
                hi = lo + split
            else:
                path.append(self._subtree(lo, lo + split))
                lo += split
        path.reverse()
        return InclusionProof(leaf_index, size, tuple(path))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """RFC 6962 consistency proof from the first ``old_size`` leaves to ``new_size``."""
        size = self._size(new_size)
        if not 0 <= old_size <= size:
            raise ProofError(f"old size {old_size} outside 0..{size}")
        path: list[bytes] = []
        if 0 < old_size < size:
            self._subproof(old_size, 0, size, True, path)
        return ConsistencyProof(old_size, size, tuple(path))

    def _subproof(self, m: int, lo: int, hi: int, complete: bool, out: list[bytes]) -> None:
        # SUBPROOF(m, D[lo:hi], b) of RFC 6962 section 2.1.2; appends nodes in RFC order.
        if m == hi - lo:
            if not complete:
                out.append(self._subtree(lo, hi))
            return
        split = _largest_power_of_two_below(hi - lo)
        if m <= split:
            self._subproof(m, lo, lo + split, complete, out)
            out.append(self._subtree(lo + split, hi))
        else:
            self._subproof(m - split, lo + split, hi, False, out)
            out.append(self._subtree(lo, lo + split))

    def _subtree(self, lo: int, hi: int) -> bytes:
        # MTH(D[lo:hi]); callers only ask for ranges whose start is aligned to the largest
        # power of two not above their length, so the left part is always a stored block.
        count = hi - lo
        height = count.bit_length() - 1
        if count == 1 << height:
            return self.levels[height][lo >> height]
        split = 1 << height
        return node_hash(self.levels[height][lo >> height], self._subtree(lo + split, hi))

    def _size(self, tree_size: int | None) -> int:
        size = self.size if tree_size is None else tree_size
        if not 0 <= size <= self.size:
            raise ProofError(f"tree size {size} outside 0..{self.size}")
        return size


class MerkleFrontier:
    """A growing tree kept as the roots of its perfect subtrees: leaves can be appended and
    the root computed without the leaves before them.

    A tree of ``size`` leaves splits into one perfect subtree per bit set in ``size``,
    largest (leftmost) first; their roots are all an append-only log needs to go on growing
    its tree (the "compact range" of Certificate Transparency's logs), O(log n) of memory.
    Appending a leaf costs one node hash amortised (as many as the carries of a binary
    increment); the root, one per subtree but the last.

    >>> frontier = MerkleFrontier()
    >>> for data in (b"a", b"b", b"c"):
    ...     frontier.append(leaf_hash(data))
    >>> frontier.root() == root_hash([leaf_hash(d) for d in (b"a", b"b", b"c")])
    True
    """

    __slots__ = ("_roots", "size")

    def __init__(self) -> None:
        self.size = 0
        self._roots: list[bytes] = []

    @classmethod
    def of_tree(cls, tree: MerkleTree) -> MerkleFrontier:
        """The frontier of all of ``tree``'s leaves, read from its levels (no hashing)."""
        frontier = cls()
        size, start = tree.size, 0
        for height in range(size.bit_length() - 1, -1, -1):
            if size >> height & 1:
                frontier._roots.append(tree.levels[height][start >> height])
                start += 1 << height
        frontier.size = size
        return frontier

    def append(self, leaf: bytes) -> None:
        """Append one leaf *hash*."""
        roots, node, size = self._roots, leaf, self.size
        # Each trailing one bit of the old size is a perfect subtree as tall as the node
        # being carried: the two join, as a binary increment carries.
        while size & 1:
            node = node_hash(roots.pop(), node)
            size >>= 1
        roots.append(node)
        self.size += 1

    def root(self) -> bytes:
        """Root hash of the tree of every leaf appended."""
        roots = self._roots
        if not roots:
            return EMPTY_ROOT_HASH
        node = roots[-1]
        for left in reversed(roots[:-1]):
            node = node_hash(left, node)
        return node

    def digest(self) -> Digest:
        return Digest(self.size, self.root())


def verify_inclusion(leaf: bytes, proof: InclusionProof, digest: Digest) -> None:
    """Check that ``leaf`` (a leaf *hash*) is at ``proof.leaf_index`` of the ``digest`` tree.

    Raises :class:`ProofError` unless the proof is for the digest's size and recomputes its
    root exactly (RFC 9162 section 2.1.3.2).
    """
    if proof.tree_size != digest.tree_size:
        raise ProofError(f"proof is for size {proof.tree_size}, digest for {digest.tree_size}")
    index, size = proof.leaf_index, proof.tree_size
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} outside a tree of {size} leaves")
    _check_hash(leaf, "leaf hash")
    _check_hash(digest.root_hash, "root hash")
    fn, sn, r = index, size - 1, leaf
    for position, p in enumerate(proof.hashes):
        _check_hash(p, f"proof element {position}")
        if sn == 0:
            raise ProofError("proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the path to the root")
    if r != digest.root_hash:
        raise ProofError("proof does not lead to the digest's root hash")


def verify_consistency(proof: ConsistencyProof, old: Digest, new: Digest) -> None:
    """Check that ``old`` is a prefix of ``new`` (RFC 9162 section 2.1.4.2).

    Raises :class:`ProofError` unless the proof's sizes are the digests' and the proof
    recomputes both roots exactly.
    """
    if (proof.old_size, proof.new_size) != (old.tree_size, new.tree_size):
        raise ProofError(
            f"proof is for sizes {proof.old_size}->{proof.new_size}, "
            f"digests for {old.tree_size}->{new.tree_size}"
        )
    first, second, path = proof.old_size, proof.new_size, list(proof.hashes)
    _check_hash(old.root_hash, "old root hash")
    _check_hash(new.root_hash, "new root hash")
    for position, p in enumerate(path):
        _check_hash(p, f"proof element {position}")
    if not 0 <= first <= second:
        raise ProofError(f"old size {first} is not within 0..{second}")
    if first == second or first == 0:
        # Equal trees need equal roots; the empty tree is a prefix of every tree. Either way
        # there is nothing to prove, so a non-empty proof is malformed.
        if path:
            raise ProofError("proof must be empty for these sizes")
        if first == second and old.root_hash != new.root_hash:
            raise ProofError("digests of the same size have different roots")
        if first == 0 and old.root_hash != EMPTY_ROOT_HASH:
            raise ProofError("old digest of size 0 is not the empty root")
        return
    if not path:
        raise ProofError("proof is empty")
    if first & (first - 1) == 0:
        path.insert(0, old.root_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the path to the root")
    if fr != old.root_hash:
        raise ProofError("proof does not lead to the old root hash")
    if sr != new.root_hash:
        raise ProofError("proof does not lead to the new root hash")


def _largest_power_of_two_below(n: int) -> int:
    # The k of RFC 6962: the largest power of two strictly smaller than n (n >= 2).
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE_BYTES:
        raise ProofError(f"{what} has {len(value)} bytes, expected {HASH_SIZE_BYTES}")


def _size(data: dict[str, object], key: str) -> int:
    value = data.get(key)
    if type(value) is not int or value < 0:
        raise ProofError(f"{key!r} must be a non-negative integer")
    return value


def _hex(data: dict[str, object], key: str) -> bytes:
    value = data.get(key)
    if not isinstance(value, str):
        raise ProofError(f"{key!r} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as error:
        raise ProofError(f"{key!r} is not hex: {error}") from None


def _hex_list(data: dict[str, object]) -> tuple[bytes, ...]:
    values = data.get("hashes")
    if not isinstance(values, list):
        raise ProofError("'hashes' must be a list of hex strings")
    return tuple(_hex({"hash": v}, "hash") for v in values)
