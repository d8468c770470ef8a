"""Text hashes, MinHash signatures and LSH bands (pure functions)."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from storage import similarity as sim
from storage.similarity import (
    LSH_RECALL,
    MinHasher,
    candidate_probability,
    lsh_layout,
    shingles,
    similarity,
    text_hash,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


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
    assert shingles("", " ,.- \n") == {b""}
    assert shingles("天津 港口", "发展") == {"天津 港口 发展".encode()}
    # Chinese punctuation and curly quotes separate words; letters with accents do not.
    assert shingles("", "“Tianjin’s” café，港口。") == {
        "tianjin s café".encode(),
        "s café 港口".encode(),
    }
    # One character at a time: no final sigma, U+0130 becomes "i"; outside the BMP: a separator.
    assert shingles("ΟΔΟΣ", "İzmir a😀b") == {"οδοσ izmir a".encode(), b"izmir a b"}
    assert shingles("snake_case x", "y") == {b"snake_case x y"}


def reference_signature(title: str, body: str, permutations: int) -> bytes:
    """The signature as the module documents it, one shingle at a time in plain Python."""
    mod = 1 << 64

    def fmix64(value: int) -> int:
        value ^= value >> 33
        value = value * 0xFF51AFD7ED558CCD % mod
        value ^= value >> 33
        value = value * 0xC4CEB9FE1A85EC53 % mod
        return value ^ (value >> 33)

    word_hashes = []
    for word in sim._words(title, body):
        value = 0
        for character in word:
            value = (value * sim._POLY + ord(character)) % mod
        word_hashes.append(value)
    word_hashes += [0] * max(0, 3 - len(word_hashes))
    smallest: list[int | None] = [None] * permutations
    for i in range(len(word_hashes) - 2):
        first, second, third = word_hashes[i : i + 3]
        shingle = fmix64((first * int(sim._FIRST) + second * int(sim._SECOND) + third) % mod)
        cell = (shingle >> 32) * permutations >> 32
        value = shingle & 0xFFFFFFFF
        current = smallest[cell]
        if current is None or value < current:
            smallest[cell] = value
    filled = {cell: value for cell, value in enumerate(smallest) if value is not None}
    values = []
    for cell in range(permutations):
        distance = next(d for d in range(permutations) if (cell + d) % permutations in filled)
        donor = filled[(cell + distance) % permutations]
        values.append((donor + distance * 0x9E3779B1) % (1 << 32))
    return np.array(values, dtype="<u4").tobytes()


# Letters, digits, separators, accents, CJK, curly quote, full-width comma, U+0130, sigma, a
# character beyond the BMP, a no-break space and a lone surrogate.
_ALPHABET = "abcXYZ019_ ,.\n-éÉ天津’，İΣ😀\u00a0\ud800"


def random_text(rng: random.Random, longest: int) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(longest + 1)))


@pytest.mark.parametrize("permutations", [16, 100, 128, 257])
def test_signatures_are_the_documented_minhash(permutations: int) -> None:
    """The array code computes exactly the scheme written out one shingle at a time, alone or
    in batches (short, empty and unicode texts included)."""
    rng = random.Random(permutations)
    hasher = MinHasher(permutations)
    texts = [
        (random_text(rng, 20), random_text(rng, rng.choice([0, 5, 15, 400]))) for _ in range(120)
    ]
    expected = [reference_signature(title, body, permutations) for title, body in texts]
    assert [hasher.sign(title, body) for title, body in texts] == expected
    assert hasher.sign_many(texts) == expected
    # batches mixing texts of no, one, two and many words, in every position
    few = [("", ""), ("a", ""), ("a b", ""), ("", "a b c"), ("x", "a b c d e"), ("😀", "")]
    for _ in range(50):
        batch = [rng.choice(few) for _ in range(rng.randrange(1, 7))]
        assert hasher.sign_many(batch) == [reference_signature(*t, permutations) for t in batch]


def test_batches_split_by_size_sign_as_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim, "_BATCH_CHARACTERS", 64)
    hasher = MinHasher(32)
    texts = [(f"title {n}", " ".join(words(n, n * 3))) for n in range(12)]
    assert hasher.sign_many(texts) == [reference_signature(*t, 32) for t in texts]
    assert hasher.sign_many([]) == []


def test_signatures_are_stable_across_runs() -> None:
    """Stored signatures must not change under us: a fixed text has a fixed signature."""
    hasher = MinHasher(128)
    signature = hasher.sign("Tianjin port grows", "Container volume rose by a tenth in May.")
    assert len(signature) == 512
    assert signature == MinHasher(128).sign(
        "Tianjin port grows", "Container volume rose by a tenth in May."
    )
    assert signature[:16].hex() == GOLDEN_PREFIX


# Computed once with the scheme named by SIGNATURE_FORMAT; a change means a new SIGNATURE_FORMAT,
# so that stored indexes are rebuilt.
GOLDEN_PREFIX = "f9de0bb24865d41397eb9c758c9f0197"


def test_signatures_do_not_depend_on_the_process() -> None:
    """No hash(), no random state: another interpreter (other hash seed) signs the same bytes."""
    texts = [
        ("Tianjin port grows", " ".join(words(1, 300))),
        ("天津", "港口 发展 “quoted”"),
        ("", ""),
    ]
    code = (
        "import sys\n"
        "from storage.similarity import MinHasher, lsh_layout\n"
        f"texts = {texts!r}\n"
        "hasher = MinHasher(100)\n"
        "for title, body in texts:\n"
        "    signature = hasher.sign(title, body)\n"
        "    print(signature.hex(), lsh_layout(0.8, 100).buckets(signature))\n"
    )
    hasher = MinHasher(100)
    expected = "".join(
        f"{s.hex()} {lsh_layout(0.8, 100).buckets(s)}\n"
        for s in (hasher.sign(title, body) for title, body in texts)
    )
    for seed in ("0", "12345"):
        proc = subprocess.run(  # noqa: PLW1510 - the return code is asserted
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == expected


def test_signing_imports_neither_scipy_nor_datasketch() -> None:
    code = (
        "import sys\n"
        "import storage.repository\n"
        "from storage.similarity import MinHasher, lsh_layout\n"
        "signature = MinHasher(128).sign('Tianjin port grows', 'Volume rose by a tenth.')\n"
        "lsh_layout(0.8, 128).buckets(signature)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'datasketch')))\n"
    )
    proc = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def edited_pair(rng: random.Random, count: int) -> tuple[str, str]:
    """A text of ``count`` distinct words and a copy with a random share of them replaced."""
    keep = rng.uniform(0.6, 1.0)
    original = [f"w{rng.randrange(10**9)}" for _ in range(count)]
    edited = [w if rng.random() < keep else f"x{rng.randrange(10**9)}" for w in original]
    return " ".join(original), " ".join(edited)


@pytest.mark.parametrize(
    ("permutations", "count", "worst", "mean_abs"),
    [(128, 600, 0.15, 0.045), (100, 150, 0.15, 0.045), (64, 600, 0.2, 0.06), (128, 12, 0.5, 0.1)],
)
def test_similarity_estimates_jaccard_without_bias(
    permutations: int, count: int, worst: float, mean_abs: float
) -> None:
    """Over many pairs of known shingle-set Jaccard similarity, the estimates are close and
    centred on it (also for texts of a few shingles, where most bins are filled by rotation)."""
    hasher = MinHasher(permutations)
    rng = random.Random(permutations * 1000 + count)
    errors = []
    for _ in range(200):
        a, b = edited_pair(rng, count)
        left, right = shingles("", a), shingles("", b)
        true = len(left & right) / len(left | right)
        errors.append(similarity(*hasher.sign_many([("", a), ("", b)])) - true)
    assert max(map(abs, errors)) < worst
    assert statistics.mean(map(abs, errors)) < mean_abs
    # no bias: errors either way cancel out to a small part of the typical error
    assert abs(statistics.mean(errors)) < mean_abs / 3


def test_similarity_estimates_jaccard() -> None:
    hasher = MinHasher(128)
    base = words(1, 600)
    edited = base[:300] + words(2, 30) + base[330:]
    a, b = shingles("", " ".join(base)), shingles("", " ".join(edited))
    true = len(a & b) / len(a | b)
    estimate = similarity(hasher.sign("", " ".join(base)), hasher.sign("", " ".join(edited)))
    assert abs(estimate - true) < 0.08 and 0.8 < estimate < 1
    assert similarity(hasher.sign("x", "y z"), hasher.sign("x", "y z")) == 1.0
    # case and punctuation do not count
    assert similarity(hasher.sign("X", "y, z!"), hasher.sign("x", "Y z")) == 1.0
    unrelated = similarity(
        hasher.sign("", " ".join(base)), hasher.sign("", " ".join(words(3, 600)))
    )
    assert unrelated < 0.1
    with pytest.raises(ValueError, match="lengths"):
        similarity(b"\0" * 8, b"\0" * 4)
    with pytest.raises(ValueError, match="at least 16"):
        MinHasher(8)


def test_short_empty_and_unicode_texts() -> None:
    hasher = MinHasher(128)
    for title, body in [("", ""), ("", "!"), ("one", ""), ("天津", ""), ("😀", "😀")]:
        signature = hasher.sign(title, body)
        assert len(signature) == 512 and signature == hasher.sign(title, body)
    assert hasher.sign("", "") == hasher.sign("", " ... ") == hasher.sign("😀", "")
    assert similarity(hasher.sign("", ""), hasher.sign("a", "")) < 0.05
    assert similarity(hasher.sign("a", ""), hasher.sign("b", "")) < 0.05
    assert similarity(hasher.sign("a b", ""), hasher.sign("a", "b")) == 1.0
    chinese = "天津港 集装箱 吞吐量 同比 增长 一成 。 " * 3
    assert similarity(hasher.sign("港口", chinese), hasher.sign("港口", chinese + "新")) > 0.8
    assert similarity(hasher.sign("港口", chinese), hasher.sign("", " ".join(words(4, 40)))) < 0.1


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
    assert all(type(b) is int for b in one)
    assert one == layout.buckets(hasher.sign("a b c", "d e f g"))
    # the band number is hashed in: equal values in two bands are two buckets
    assert len(set(layout.buckets(b"\0" * 512))) == layout.bands
    # a band's bucket depends on its values only, and on each of them
    signature = bytearray(hasher.sign("", " ".join(words(5, 600))))
    before = layout.buckets(bytes(signature))
    signature[4 * layout.rows + 1] ^= 1  # band 1
    signature[-1] ^= 1  # beyond the last band (128 = 18 * 7 + 2): no bucket
    after = layout.buckets(bytes(signature))
    assert [n for n in range(layout.bands) if before[n] != after[n]] == [1]
    # a small edit keeps most buckets
    base = " ".join(words(1, 600))
    edited = base.replace(base.split()[100], "changed", 1)
    shared = set(one) & set(layout.buckets(hasher.sign("", base)))
    assert not shared
    assert set(layout.buckets(hasher.sign("", base))) & set(layout.buckets(hasher.sign("", edited)))
    with pytest.raises(ValueError, match="does not fit"):
        layout.buckets(b"\0" * 256)


def test_buckets_spread() -> None:
    """Distinct bands give distinct buckets (no collisions among thousands)."""
    layout = lsh_layout(0.8, 128)
    hasher = MinHasher(128)
    signatures = hasher.sign_many([("", " ".join(words(n, 50))) for n in range(300)])
    buckets = [b for signature in signatures for b in layout.buckets(signature)]
    assert len(set(buckets)) == len(buckets)
