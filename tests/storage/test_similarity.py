"""Text hashes, MinHash signatures and LSH bands (pure functions)."""

from __future__ import annotations

import random

import pytest

from storage.similarity import (
    LSH_RECALL,
    MinHasher,
    candidate_probability,
    lsh_layout,
    shingles,
    similarity,
    text_hash,
)


def words(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [f"w{rng.randrange(5000)}" for _ in range(n)]


def test_text_hash_is_title_and_body_only() -> None:
    assert text_hash("T", "B") == text_hash("T", "B") and len(text_hash("T", "B")) == 64
    assert (
        len({text_hash("T", "B"), text_hash("T ", "B"), text_hash("T", "B."), text_hash("", "TB")})
        == 4
    )


def test_shingles() -> None:
    assert shingles("Port grows", "Fast, and far.") == {
        b"port grows fast",
        b"grows fast and",
        b"fast and far",
    }
    assert shingles("One", "two") == {b"one two"}
    assert shingles("", "") == {b""}
    assert shingles("天津 港口", "发展") == {"天津 港口 发展".encode()}


def test_signatures_are_stable_across_runs_and_library_defaults() -> None:
    """Stored signatures must not change under us: a fixed text has a fixed signature."""
    hasher = MinHasher(128)
    signature = hasher.sign("Tianjin port grows", "Container volume rose by a tenth in May.")
    assert len(signature) == 512
    assert signature == MinHasher(128).sign(
        "Tianjin port grows", "Container volume rose by a tenth in May."
    )
    assert signature[:16].hex() == GOLDEN_PREFIX


# Computed once with datasketch 2.0 (scheme affine32, seed 1); a change means a new
# SIGNATURE_FORMAT, so that stored indexes are rebuilt.
GOLDEN_PREFIX = "02c8ce11f9b7b606d45b860295d6bb0f"


def test_similarity_estimates_jaccard() -> None:
    hasher = MinHasher(128)
    base = words(1, 600)
    edited = base[:300] + words(2, 30) + base[330:]
    a, b = shingles("", " ".join(base)), shingles("", " ".join(edited))
    true = len(a & b) / len(a | b)
    estimate = similarity(hasher.sign("", " ".join(base)), hasher.sign("", " ".join(edited)))
    assert abs(estimate - true) < 0.08 and 0.8 < estimate < 1
    assert similarity(hasher.sign("x", "y z"), hasher.sign("x", "y z")) == 1.0
    unrelated = similarity(
        hasher.sign("", " ".join(base)), hasher.sign("", " ".join(words(3, 600)))
    )
    assert unrelated < 0.1
    with pytest.raises(ValueError, match="lengths"):
        similarity(b"\0" * 8, b"\0" * 4)
    with pytest.raises(ValueError, match="at least 16"):
        MinHasher(8)


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.9, 0.95])
@pytest.mark.parametrize("permutations", [64, 128, 256])
def test_layout_finds_pairs_at_the_threshold(threshold: float, permutations: int) -> None:
    layout = lsh_layout(threshold, permutations)
    assert layout.bands * layout.rows <= permutations and layout.bands >= 2
    assert candidate_probability(threshold, layout.bands, layout.rows) >= LSH_RECALL
    # ...with as many rows per band as that allows: one more and pairs at the threshold slip
    rows = layout.rows + 1
    assert candidate_probability(threshold, permutations // rows, rows) < LSH_RECALL
    # unrelated texts (similarity 0.05) almost never share a bucket at the usual thresholds
    # (a low one with few permutations needs short bands: more false candidates to check)
    if threshold >= 0.7:
        assert candidate_probability(0.05, layout.bands, layout.rows) < 0.001


def test_layout_of_the_defaults() -> None:
    layout = lsh_layout(0.8, 128)
    assert (layout.bands, layout.rows) == (18, 7)
    with pytest.raises(ValueError, match="threshold"):
        lsh_layout(0.0, 128)


def test_buckets() -> None:
    layout = lsh_layout(0.8, 128)
    hasher = MinHasher(128)
    one = layout.buckets(hasher.sign("a b c", "d e f g"))
    assert len(one) == layout.bands and all(-(2**63) <= b < 2**63 for b in one)
    assert one == layout.buckets(hasher.sign("a b c", "d e f g"))
    # the band number is hashed in: equal values in two bands are two buckets
    assert len(set(layout.buckets(b"\0" * 512))) == layout.bands
    # a small edit keeps most buckets
    base = " ".join(words(1, 600))
    edited = base.replace(base.split()[100], "changed", 1)
    shared = set(one) & set(layout.buckets(hasher.sign("", base)))
    assert not shared
    assert set(layout.buckets(hasher.sign("", base))) & set(layout.buckets(hasher.sign("", edited)))
    with pytest.raises(ValueError, match="does not fit"):
        layout.buckets(b"\0" * 256)
