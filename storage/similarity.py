"""Content fingerprints of articles: exact text hashes, MinHash signatures and their LSH bands.

Rules:

* everything here is pure (no database, no clock); the repository stores what it computes;
* a signature is the ``hashvalues`` of a datasketch ``MinHash`` over the 3-word shingles of the
  lower-cased title and body, permutation scheme ``affine32`` and seed 1 named explicitly (so a
  later datasketch default cannot change stored signatures), kept as little-endian uint32 bytes;
* the LSH index is a set of ``(band, bucket)`` rows per article: the signature cut into ``bands``
  bands of ``rows`` values, each band hashed with its number to a signed 64-bit ``bucket``.
  Articles sharing a bucket are candidates; their similarity is then estimated from the
  signatures. ``bands`` and ``rows`` follow from the threshold and the number of permutations
  (``lsh_layout``); an index built with another layout must be rebuilt (the repository does).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Words per shingle.
SHINGLE_WORDS = 3
#: Seed of the MinHash permutations: part of the stored format, never change it.
MINHASH_SEED = 1
#: datasketch's permutation scheme, named so that its default cannot change under us.
MINHASH_SCHEME = "affine32"
#: Default number of permutations (``TIANJIN_MINHASH_PERMUTATIONS``).
DEFAULT_PERMUTATIONS = 128
#: Default near-duplicate threshold on the estimated Jaccard similarity.
DEFAULT_THRESHOLD = 0.8

#: Names how signatures are made; stored with the index, a change rebuilds it.
SIGNATURE_FORMAT = "datasketch-affine32-seed1-word3"

_WORD = re.compile(r"\w+")


def text_hash(title: str, body: str) -> str:
    """sha256 (hex) of the title and body: equal for the same text under any article id."""
    encoded = json.dumps([title, body], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def shingles(title: str, body: str) -> set[bytes]:
    """The 3-word shingles of the lower-cased title and body (one shingle if fewer words)."""
    words = _WORD.findall(f"{title}\n{body}".lower())
    if len(words) <= SHINGLE_WORDS:
        return {" ".join(words).encode("utf-8")}
    return {
        " ".join(words[i : i + SHINGLE_WORDS]).encode("utf-8")
        for i in range(len(words) - SHINGLE_WORDS + 1)
    }


class MinHasher:
    """Signs texts with ``permutations`` MinHash permutations (reuse one: setting up costs)."""

    def __init__(self, permutations: int = DEFAULT_PERMUTATIONS) -> None:
        if permutations < 16:
            raise ValueError(f"MinHash permutations must be at least 16, got {permutations}")
        # Imported here: datasketch brings scipy along (a third of a second), which readers of
        # the database (export, runs) never need.
        from datasketch import MinHash

        self._minhash = MinHash
        self.permutations = permutations
        template = MinHash(num_perm=permutations, seed=MINHASH_SEED, scheme=MINHASH_SCHEME)
        self._permutation_params = template.permutations

    def sign(self, title: str, body: str) -> bytes:
        """The signature of an article's text (``4 * permutations`` bytes)."""
        minhash = self._minhash(
            num_perm=self.permutations,
            seed=MINHASH_SEED,
            permutations=self._permutation_params,
            scheme=MINHASH_SCHEME,
        )
        minhash.update_batch(shingles(title, body))
        return minhash.hashvalues.astype("<u4").tobytes()


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures: the share of equal hash values."""
    if len(a) != len(b):
        raise ValueError(f"signatures of different lengths ({len(a)} and {len(b)} bytes)")
    left = np.frombuffer(a, dtype="<u4")
    right = np.frombuffer(b, dtype="<u4")
    return float(np.count_nonzero(left == right)) / len(left)


@dataclass(frozen=True)
class LshLayout:
    """How signatures are cut into bands: ``bands`` bands of ``rows`` hash values each."""

    permutations: int
    bands: int
    rows: int

    def buckets(self, signature: bytes) -> list[int]:
        """The bucket of each band of ``signature``, in band order (signed 64-bit integers)."""
        width = 4 * self.rows
        if len(signature) != 4 * self.permutations:
            raise ValueError(
                f"a signature of {len(signature)} bytes does not fit {self.permutations} "
                "permutations"
            )
        return [
            int.from_bytes(
                hashlib.blake2b(
                    band.to_bytes(2, "little") + signature[band * width : (band + 1) * width],
                    digest_size=8,
                ).digest(),
                "little",
                signed=True,
            )
            for band in range(self.bands)
        ]


#: Chance of a pair exactly at the threshold sharing at least one bucket (more above it).
LSH_RECALL = 0.95


def candidate_probability(similarity_: float, bands: int, rows: int) -> float:
    """Chance that two signatures of Jaccard similarity ``similarity_`` share a bucket."""
    return 1.0 - (1.0 - similarity_**rows) ** bands


@lru_cache(maxsize=32)
def lsh_layout(threshold: float, permutations: int) -> LshLayout:
    """The band layout for ``threshold``: the most rows per band (fewest false candidates) that
    still makes a pair at the threshold a candidate with ``LSH_RECALL`` probability.

    datasketch's ``MinHashLSH`` weighs misses and false candidates alike (9 bands of 13 rows for
    0.8, finding a pair at 0.8 only 40% of the time); here a false candidate only costs one
    signature comparison, a miss is a re-post nobody is told about.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
    for rows in range(permutations // 2, 0, -1):
        bands = permutations // rows
        if candidate_probability(threshold, bands, rows) >= LSH_RECALL:
            return LshLayout(permutations=permutations, bands=bands, rows=rows)
    return LshLayout(permutations=permutations, bands=permutations, rows=1)
