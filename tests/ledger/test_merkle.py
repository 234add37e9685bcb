"""RFC 6962 Merkle tree: the Certificate Transparency reference vectors, and corrupted proofs.

The vectors are the published ones for the eight-leaf reference tree (RFC 6962 hashing over
the leaves "", 00, 10, 2021, 3031, 40414243, 5051525354555657 and 606162...6f), as used by
the Certificate Transparency implementations' test suites.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT_HASH,
    ConsistencyProof,
    Digest,
    InclusionProof,
    MerkleTree,
    ProofError,
    leaf_hash,
    root_hash,
    subtree_roots,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
LEAF_HASHES = [leaf_hash(leaf) for leaf in LEAVES]
TREE = MerkleTree(LEAF_HASHES)

# Root hash of the tree of the first n leaves, n = 1..8.
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# (1-based leaf, tree size, audit path)
INCLUSION_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (3, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        2,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# (old size, new size, consistency proof)
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def digest(size: int) -> Digest:
    return Digest(size, ROOTS[size - 1] if size else EMPTY_ROOT_HASH)


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert root_hash([]) == EMPTY_ROOT_HASH == MerkleTree([]).root()
    assert EMPTY_ROOT_HASH.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_reference_vectors(size: int) -> None:
    assert root_hash(LEAF_HASHES[:size]) == ROOTS[size - 1]
    assert TREE.root(size) == ROOTS[size - 1]


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION_VECTORS)
def test_inclusion_proofs_match_reference_vectors(leaf: int, size: int, path: list[bytes]) -> None:
    proof = TREE.inclusion_proof(leaf - 1, size)
    assert list(proof.hashes) == path
    verify_inclusion(LEAF_HASHES[leaf - 1], proof, digest(size))


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY_VECTORS)
def test_consistency_proofs_match_reference_vectors(old: int, new: int, path: list[bytes]) -> None:
    proof = TREE.consistency_proof(old, new)
    assert list(proof.hashes) == path
    verify_consistency(proof, digest(old), digest(new))


def corrupted_inclusion(proof: InclusionProof, root: bytes):
    """Every way to break an inclusion proof that a forger or a bug could produce."""
    hashes = list(proof.hashes)
    index, size = proof.leaf_index, proof.tree_size
    yield "index - 1", InclusionProof(index - 1, size, proof.hashes), size
    yield "index + 1", InclusionProof(index + 1, size, proof.hashes), size
    yield "index ^ 2", InclusionProof(index ^ 2, size, proof.hashes), size
    yield "size * 2", InclusionProof(index, size * 2, proof.hashes), size * 2
    yield "size / 2", InclusionProof(index, size // 2, proof.hashes), size // 2
    for extra_name, extra in [("empty", b""), ("root", root), ("some hash", SOME_HASH)]:
        yield f"trailing {extra_name}", InclusionProof(index, size, (*hashes, extra)), size
        yield f"preceding {extra_name}", InclusionProof(index, size, (extra, *hashes)), size
    for i in range(len(hashes)):
        for byte in range(32):
            flipped = bytearray(hashes[i])
            flipped[byte] ^= 0x01
            mutated = [*hashes[:i], bytes(flipped), *hashes[i + 1 :]]
            yield f"flip proof[{i}] byte {byte}", InclusionProof(index, size, tuple(mutated)), size
        yield (
            f"drop proof[{i}]",
            InclusionProof(index, size, tuple(hashes[:i] + hashes[i + 1 :])),
            size,
        )
    for i, j in itertools.combinations(range(len(hashes)), 2):
        swapped = list(hashes)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        yield f"swap proof[{i}] proof[{j}]", InclusionProof(index, size, tuple(swapped)), size


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION_VECTORS)
def test_every_corrupted_inclusion_proof_fails(leaf: int, size: int, path: list[bytes]) -> None:
    good = InclusionProof(leaf - 1, size, tuple(path))
    root = ROOTS[size - 1]
    cases = list(corrupted_inclusion(good, root))
    assert len(cases) >= 11
    for name, proof, claimed_size in cases:
        with pytest.raises(ProofError):
            verify_inclusion(LEAF_HASHES[leaf - 1], proof, Digest(claimed_size, root))
            pytest.fail(f"{name} verified")
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(b"WrongLeaf"), good, Digest(size, root))
    for byte in range(32):
        wrong_root = bytearray(root)
        wrong_root[byte] ^= 0x80
        with pytest.raises(ProofError):
            verify_inclusion(LEAF_HASHES[leaf - 1], good, Digest(size, bytes(wrong_root)))
    with pytest.raises(ProofError):
        verify_inclusion(LEAF_HASHES[leaf - 1], good, Digest(size, EMPTY_ROOT_HASH))


def corrupted_consistency(proof: ConsistencyProof):
    hashes = list(proof.hashes)
    old, new = proof.old_size, proof.new_size
    yield "old - 1", ConsistencyProof(old - 1, new, proof.hashes), old - 1, new
    yield "old + 1", ConsistencyProof(old + 1, new, proof.hashes), old + 1, new
    yield "old ^ 2", ConsistencyProof(old ^ 2, new, proof.hashes), old ^ 2, new
    yield "new * 2", ConsistencyProof(old, new * 2, proof.hashes), old, new * 2
    yield "new / 2", ConsistencyProof(old, new // 2, proof.hashes), old, new // 2
    yield "empty proof", ConsistencyProof(old, new, ()), old, new
    for extra_name, extra in [("empty", b""), ("some hash", SOME_HASH), ("first", hashes[0])]:
        yield f"trailing {extra_name}", ConsistencyProof(old, new, (*hashes, extra)), old, new
        yield f"preceding {extra_name}", ConsistencyProof(old, new, (extra, *hashes)), old, new
    for i in range(len(hashes)):
        for byte in range(32):
            flipped = bytearray(hashes[i])
            flipped[byte] ^= 0x10
            mutated = [*hashes[:i], bytes(flipped), *hashes[i + 1 :]]
            yield (
                f"flip proof[{i}] byte {byte}",
                ConsistencyProof(old, new, tuple(mutated)),
                old,
                new,
            )
        yield (
            f"drop proof[{i}]",
            ConsistencyProof(old, new, tuple(hashes[:i] + hashes[i + 1 :])),
            old,
            new,
        )
    for i, j in itertools.combinations(range(len(hashes)), 2):
        swapped = list(hashes)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        yield f"swap proof[{i}] proof[{j}]", ConsistencyProof(old, new, tuple(swapped)), old, new


@pytest.mark.parametrize(("old", "new", "path"), [v for v in CONSISTENCY_VECTORS if v[2]])
def test_every_corrupted_consistency_proof_fails(old: int, new: int, path: list[bytes]) -> None:
    good = ConsistencyProof(old, new, tuple(path))
    root1, root2 = ROOTS[old - 1], ROOTS[new - 1]
    for name, proof, claimed_old, claimed_new in corrupted_consistency(good):
        with pytest.raises(ProofError):
            verify_consistency(proof, Digest(claimed_old, root1), Digest(claimed_new, root2))
            pytest.fail(f"{name} verified")
    for first, second in [(root2, root1), (SOME_HASH, root2), (root1, SOME_HASH)]:
        with pytest.raises(ProofError):
            verify_consistency(good, Digest(old, first), Digest(new, second))


def test_trivial_consistency_needs_equal_roots_and_an_empty_proof() -> None:
    verify_consistency(ConsistencyProof(0, 0, ()), digest(0), digest(0))
    verify_consistency(ConsistencyProof(0, 5, ()), digest(0), digest(5))
    verify_consistency(ConsistencyProof(3, 3, ()), digest(3), digest(3))
    with pytest.raises(ProofError):
        verify_consistency(ConsistencyProof(3, 3, ()), digest(3), Digest(3, ROOTS[0]))
    with pytest.raises(ProofError):
        verify_consistency(ConsistencyProof(3, 3, (ROOTS[2],)), digest(3), digest(3))
    with pytest.raises(ProofError):
        verify_consistency(ConsistencyProof(0, 5, (EMPTY_ROOT_HASH,)), digest(0), digest(5))
    with pytest.raises(ProofError):
        verify_consistency(ConsistencyProof(5, 3, ()), digest(5), digest(3))


def test_inclusion_in_a_tree_of_one_is_the_leaf_itself() -> None:
    single = MerkleTree([leaf_hash(b"data")])
    proof = single.inclusion_proof(0)
    verify_inclusion(leaf_hash(b"data"), proof, single.digest())
    with pytest.raises(ProofError):
        verify_inclusion(b"", proof, single.digest())
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(b"data"), proof, Digest(1, b""))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 70), st.data())
def test_generated_proofs_verify_for_any_sizes(size: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tree = MerkleTree(leaves)
    assert tree.root() == root_hash(leaves)
    index = data.draw(st.integers(0, size - 1))
    verify_inclusion(leaves[index], tree.inclusion_proof(index), tree.digest())
    old = data.draw(st.integers(0, size))
    verify_consistency(tree.consistency_proof(old), tree.digest(old), tree.digest())
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    with pytest.raises(ProofError):
        verify_inclusion(leaves[other], tree.inclusion_proof(index), tree.digest())


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 200), st.integers(0, 6), st.data())
def test_a_root_computed_in_parts_is_the_roots_root(
    size: int, block_power: int, data: st.DataObject
) -> None:
    """Cut at multiples of a power of two, each part's subtree roots give the whole root."""
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    block = 1 << block_power
    cuts = sorted(set(data.draw(st.lists(st.integers(0, size // block))))) if size else []
    bounds = [0, *(cut * block for cut in cuts if 0 < cut * block < size), size]
    roots = [
        root
        for start, end in itertools.pairwise(bounds)
        for root in subtree_roots(leaves[start:end], block)
    ]
    assert root_hash(roots) == root_hash(leaves)


@pytest.mark.parametrize("block", [0, 3, 6])
def test_subtrees_must_hold_a_power_of_two_leaves(block: int) -> None:
    with pytest.raises(ValueError, match="not a power of two"):
        subtree_roots([leaf_hash(b"")], block)
