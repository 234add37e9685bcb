"""Level keys in sorted chunks behave as one sorted list, across chunk splits and removals."""

from __future__ import annotations

import random

from matching.levelkeys import CHUNK_MAX_KEYS, LevelKeys


def test_level_keys_match_a_sorted_list_through_splits_and_removals() -> None:
    rng = random.Random(3)
    keys = LevelKeys()
    reference: set[int] = set()
    for step in range(12 * CHUNK_MAX_KEYS):
        # Grow past several chunks first, then mostly remove, best and deep keys alike.
        removing = reference and rng.random() < (0.3 if step < 6 * CHUNK_MAX_KEYS else 0.8)
        if removing:
            key = max(reference) if rng.random() < 0.3 else rng.choice(sorted(reference))
            keys.remove(key)
            reference.discard(key)
        else:
            key = rng.randrange(-(10**6), 10**6)
            if key in reference:
                continue
            keys.add(key)
            reference.add(key)
        if step % 97 == 0:
            keys.check_invariants()
            assert keys.ascending() == sorted(reference)
    keys.check_invariants()
    assert list(keys.descending()) == sorted(reference, reverse=True)
    assert keys.size == len(reference)
    assert not reference or keys.best() == max(reference)


def test_a_deep_level_key_leaves_only_its_chunk() -> None:
    keys = LevelKeys()
    for key in range(3 * CHUNK_MAX_KEYS):
        keys.add(key)
    assert len(keys.chunks) > 2
    keys.remove(5)
    keys.check_invariants()
    assert keys.ascending() == [k for k in range(3 * CHUNK_MAX_KEYS) if k != 5]
