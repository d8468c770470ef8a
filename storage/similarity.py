"""Content fingerprints of articles: exact text hashes, MinHash signatures and their LSH bands.

Rules:

* everything here is pure (no database, no clock); the repository stores what it computes;
* a word is a maximal run of word characters of the Basic Multilingual Plane (what ``str.isalnum``
  accepts, and ``_``), each character lower-cased on its own (``shingles`` spells it out); a
  shingle is 3 consecutive words of the title followed by the body, a text of fewer words is one
  shingle of all of them (an empty text: one empty shingle);
* a signature is a one-permutation MinHash of the shingle set, computed with numpy in a fixed
  number of array operations per text (no Python loop per word or shingle):

  - every word is hashed to 64 bits as a polynomial of its code points modulo 2**64 (prefix sums
    weighted by powers of the inverse of an odd multiplier, so that each word's hash is one
    difference and one product whatever its position), three consecutive word hashes are
    combined into the shingle's and passed through a 64-bit finaliser (murmur3's ``fmix64``);
  - one-permutation hashing: the high 32 bits of a shingle hash pick its bin
    (``high * permutations >> 32``), and each bin keeps the smallest low 32 bits that fell in it;
  - an empty bin (short texts) takes the value of the next non-empty bin to its right (circular)
    plus the distance times an odd constant, so two texts agree on it as often, on average, as
    their shingle sets' Jaccard similarity (as on a filled bin);

  the result is ``permutations`` little-endian uint32 values, like any MinHash: the share of equal
  values estimates the Jaccard similarity of the shingle sets. It depends on nothing but the text
  and ``permutations`` (no ``hash()``, no random state, not on other texts signed with it);
* the LSH index is a set of ``(band, bucket)`` rows per article: the signature cut into ``bands``
  bands of ``rows`` values, each band hashed with its number to a signed 64-bit ``bucket`` (a
  weighted sum of its values modulo 2**64, then ``fmix64``). Articles sharing a bucket are
  candidates; their similarity is then estimated from the signatures. ``bands`` and ``rows``
  follow from the threshold and the number of permutations (``lsh_layout``); an index built with
  another layout must be rebuilt (the repository does);
* ``SIGNATURE_FORMAT`` names all of the above: any change to words, shingles, hashing, bins or
  buckets must come with a new name, which makes every stored index rebuild itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any

import numpy as np

#: Words per shingle.
SHINGLE_WORDS = 3
#: Default number of permutations (``TIANJIN_MINHASH_PERMUTATIONS``).
DEFAULT_PERMUTATIONS = 128
#: Default near-duplicate threshold on the estimated Jaccard similarity.
DEFAULT_THRESHOLD = 0.8

#: Names how signatures and buckets are made; stored with the index, a change rebuilds it.
SIGNATURE_FORMAT = "oph-rotation-poly64-fmix64-bmpword3-v1"

# Word characters of the Basic Multilingual Plane (the signature's tokeniser reads the text as
# UTF-32 and looks code points up in a table of 2**16 entries; anything above is a separator).
_WORD = re.compile(r"[^\W\U00010000-\U0010ffff]+")

_U64 = np.uint64
_MOD = 1 << 64
# Polynomial word hash: multiplier (odd, so invertible modulo 2**64) and its inverse.
_POLY = 0x9E3779B97F4A7C15
_POLY_INVERSE = pow(_POLY, -1, _MOD)
# Shingle hash = fmix64(w0 * _FIRST + w1 * _SECOND + w2), a missing word counting 0.
_FIRST = _U64(0xC2B2AE3D27D4EB4F)
_SECOND = _U64(0x165667B19E3779F9)
# murmur3's 64-bit finaliser.
_FMIX_SHIFT = _U64(33)
_FMIX_1 = _U64(0xFF51AFD7ED558CCD)
_FMIX_2 = _U64(0xC4CEB9FE1A85EC53)
# Added per bin of distance to a value borrowed by an empty bin.
_ROTATION_STEP = np.uint32(0x9E3779B1)
# Band hash = fmix64(sum of value * row weight + band * _BAND_WEIGHT); row weights are odd,
# drawn from splitmix64 seeded with _ROW_SEED.
_BAND_WEIGHT = _U64(0xD6E8FEB86659FD93)
_ROW_SEED = 0x5851F42D4C957F2D
# One-permutation hashing: halves of a 64-bit hash, and the minimum of a bin nothing fell in.
_HALF = _U64(32)
_LOW = _U64(0xFFFFFFFF)
_EMPTY = _U64(1 << 32)
# More would only cost memory (a signature of 2**16 values is 256 KB).
_MAX_PERMUTATIONS = 1 << 16
# Characters signed in one batch of array operations at most (a longer text alone); the power
# tables kept are this long (1 MB together).
_BATCH_CHARACTERS = 1 << 16


def text_hash(title: str, body: str) -> str:
    """sha256 (hex) of the title and body: equal for the same text under any article id."""
    encoded = json.dumps([title, body], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


class _LowerChar(dict[int, int]):
    """``str.translate`` table lower-casing one character at a time: no final-sigma rule, and a
    character whose lower case is longer (U+0130) keeps only the first character of it."""

    def __missing__(self, code: int) -> int:
        found = self[code] = ord(chr(code).lower()[0])
        return found


_LOWER_CHAR = _LowerChar()


def _words(title: str, body: str) -> list[str]:
    """The lower-cased words of the title followed by the body, as signatures see them."""
    return [word.translate(_LOWER_CHAR) for word in _WORD.findall(f"{title}\n{body}")]


def shingles(title: str, body: str) -> set[bytes]:
    """The set of 3-word shingles a signature summarises (one shingle if fewer words).

    The reference the vectorised signature is tested against; signing never builds this set.
    """
    found = _words(title, body)
    if len(found) <= SHINGLE_WORDS:
        return {" ".join(found).encode("utf-8")}
    return {
        " ".join(found[i : i + SHINGLE_WORDS]).encode("utf-8")
        for i in range(len(found) - SHINGLE_WORDS + 1)
    }


@lru_cache(maxsize=1)
def _fold_table() -> np.ndarray:
    """Code point -> its lower-case code point if it is a word character, else 0 (BMP only)."""
    codes = np.arange(0x10000, dtype="<u4").tobytes()
    characters = codes.decode("utf-32-le", "surrogatepass")
    is_word = np.fromiter(map(str.isalnum, characters), dtype=bool, count=0x10000)
    is_word[ord("_")] = True
    # 64-bit: the codes are multiplied by 64-bit powers next.
    folded = np.fromiter(
        (ord(character.lower()[0]) for character in characters), dtype=np.uint64, count=0x10000
    )
    folded[~is_word] = 0
    folded.flags.writeable = False
    return folded


def _power_table(base: int, size: int) -> np.ndarray:
    """``base ** i`` modulo 2**64 for ``i`` in ``range(size)``."""
    table = np.full(size, base, dtype=np.uint64)
    table[0] = 1
    np.multiply.accumulate(table, out=table)
    table.flags.writeable = False
    return table


# (powers of _POLY, powers of _POLY_INVERSE), made when first needed.
_powers: tuple[np.ndarray, np.ndarray] = (np.ones(0, np.uint64), np.ones(0, np.uint64))


def _powers_for(length: int) -> tuple[np.ndarray, np.ndarray]:
    """Powers of the word hash's multiplier and of its inverse, at least ``length`` of each."""
    global _powers
    powers = _powers
    if len(powers[0]) >= length:
        return powers
    size = max(_BATCH_CHARACTERS, length)
    powers = (_power_table(_POLY, size), _power_table(_POLY_INVERSE, size))
    if size == _BATCH_CHARACTERS:
        _powers = powers  # a longer text gets its own, dropped after use
    return powers


def _fmix64(values: np.ndarray) -> np.ndarray:
    """murmur3's finaliser, in place (a bijection of 64-bit values)."""
    values ^= values >> _FMIX_SHIFT
    values *= _FMIX_1
    values ^= values >> _FMIX_SHIFT
    values *= _FMIX_2
    values ^= values >> _FMIX_SHIFT
    return values


def _shingle_hashes(first: np.ndarray, second: np.ndarray, third: Any) -> np.ndarray:
    """fmix64(first * _FIRST + second * _SECOND + third): the hashes of 3-word shingles."""
    hashes = first * _FIRST
    hashes += second * _SECOND
    hashes += third
    return _fmix64(hashes)


class MinHasher:
    """Signs texts with ``permutations`` MinHash values (reuse one: it keeps a few tables).

    ``sign_many`` signs a batch with one pass of array operations, about half the cost per
    article of ``sign`` on each: prefer it whenever there is more than one text.
    """

    def __init__(self, permutations: int = DEFAULT_PERMUTATIONS) -> None:
        if permutations < 16:
            raise ValueError(f"MinHash permutations must be at least 16, got {permutations}")
        if permutations > _MAX_PERMUTATIONS:
            raise ValueError(
                f"MinHash permutations must be at most {_MAX_PERMUTATIONS}, got {permutations}"
            )
        self.permutations = permutations
        self._fold = _fold_table()

    def sign(self, title: str, body: str) -> bytes:
        """The signature of an article's text (``4 * permutations`` bytes)."""
        return self.sign_many([(title, body)])[0]

    def sign_many(self, texts: Iterable[tuple[str, str]]) -> list[bytes]:
        """The signatures of ``(title, body)`` pairs, in order; each the same as ``sign``'s."""
        signatures: list[bytes] = []
        batch: list[str] = []
        size = 1  # of the batch joined, see _sign_batch
        for title, body in texts:
            text = f"{title}\n{body}"
            if batch and size + len(text) + 1 > _BATCH_CHARACTERS:
                signatures += self._sign_batch(batch)
                batch, size = [], 1
            batch.append(text)
            size += len(text) + 1
        if batch:
            signatures += self._sign_batch(batch)
        return signatures

    def _sign_batch(self, texts: list[str]) -> list[bytes]:
        k = self.permutations
        articles = len(texts)
        # The texts one after another, a separator before, between and after them: every word
        # has a non-word character on each side and lies within one text.
        joined = "\n" + "\n".join(texts) + "\n"
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        folded = self._fold.take(codes, mode="clip")  # above the BMP: U+FFFF's 0, a separator
        is_word = folded != 0
        # Word i is codes[edges[2i] + 1 : edges[2i + 1] + 1].
        edges = np.flatnonzero(is_word[1:] != is_word[:-1])
        firsts = edges[0::2] + 1
        lasts = edges[1::2]
        if len(lasts):
            powers, inverse_powers = _powers_for(len(codes))
            # Separators weigh 0, so a sum from one word's first character to the next word's
            # is the word's sum of c_j / P**j; times P**last, its sum of c_j * P**(last - j):
            # the polynomial hash of the word, whatever its position.
            folded *= inverse_powers[: len(codes)]
            word_hashes = np.add.reduceat(folded, firsts)
            word_hashes *= powers[lasts]
        else:
            word_hashes = np.zeros(0, dtype=np.uint64)
        # Words per text (texts[a] ends before code ends[a]; its words start before that).
        if articles == 1:
            counts = np.array([len(firsts)])
        else:
            ends = np.fromiter(accumulate(len(text) + 1 for text in texts), np.intp, articles)
            counts = np.searchsorted(firsts, ends)
            counts[1:] -= counts[:-1].copy()
        # Shingle i: words i, i + 1, i + 2; one that spans two texts goes to a row of its own.
        hashes = _shingle_hashes(word_hashes[:-2], word_hashes[1:-1], word_hashes[2:])
        shingle_texts = np.repeat(np.arange(articles), counts)[:-2]
        if articles > 1:
            starts = np.cumsum(counts[:-1])  # of the words of texts 1, 2, ...
            spanning = np.concatenate((starts - 1, starts - 2))
            spanning = spanning[(spanning >= 0) & (spanning < len(shingle_texts))]
            shingle_texts[spanning] = articles
        short = np.flatnonzero(counts < SHINGLE_WORDS)
        if len(short):
            # A text of fewer than 3 words: one shingle of its words, the missing ones 0.
            padded = np.concatenate((word_hashes, np.zeros(2, dtype=np.uint64)))
            start = np.cumsum(counts)[short] - counts[short]
            count = counts[short]
            zero = np.uint64(0)
            first = np.where(count > 0, padded[start], zero)
            second = np.where(count > 1, padded[start + 1], zero)
            hashes = np.concatenate((hashes, _shingle_hashes(first, second, zero)))
            shingle_texts = np.concatenate((shingle_texts, short))
        # One-permutation hashing: bin from the high 32 bits, value the low 32 bits, minimum per
        # (text, bin); shingles across two texts go to a row past the last text's.
        cells = (((hashes >> _HALF) * np.uint64(k)) >> _HALF).astype(np.intp)
        cells += shingle_texts * k
        smallest = np.full((articles + 1) * k, _EMPTY, dtype=np.uint64)
        np.minimum.at(smallest, cells, hashes & _LOW)
        smallest = smallest[: articles * k]
        values = smallest.astype(np.uint32)
        empty = np.flatnonzero(smallest == _EMPTY)
        if len(empty):
            self._densify(values, empty)
        signatures = values.astype("<u4").tobytes()
        width = 4 * k
        return [signatures[a * width : (a + 1) * width] for a in range(articles)]

    def _densify(self, values: np.ndarray, empty: np.ndarray) -> None:
        """Fill the ``empty`` bins of ``values`` (rows of ``permutations`` bins, one per text,
        each with a filled bin): from the next filled bin to the right in the same row, circular,
        plus the distance times an odd constant."""
        k = self.permutations
        filled = np.ones(len(values), dtype=bool)
        filled[empty] = False
        full = np.flatnonzero(filled)
        nearest = np.searchsorted(full, empty)
        donors = full.take(nearest, mode="clip")
        row_starts = empty - empty % k
        wrapped = (nearest == len(full)) | (donors >= row_starts + k)
        if wrapped.any():
            donors[wrapped] = full[np.searchsorted(full, row_starts[wrapped])]
        distances = ((donors - empty) % k).astype(np.uint32)
        values[empty] = values[donors] + distances * _ROTATION_STEP


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures: the share of equal hash values."""
    if len(a) != len(b):
        raise ValueError(f"signatures of different lengths ({len(a)} and {len(b)} bytes)")
    left = np.frombuffer(a, dtype="<u4")
    right = np.frombuffer(b, dtype="<u4")
    return float(np.count_nonzero(left == right)) / len(left)


@lru_cache(maxsize=32)
def _band_hash_terms(bands: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The band hash's weight per row (odd, from splitmix64) and its term per band number."""
    weights = []
    state = _ROW_SEED
    for _ in range(rows):
        state = (state + 0x9E3779B97F4A7C15) % _MOD
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % _MOD
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % _MOD
        weights.append((z ^ (z >> 31)) | 1)
    terms = (
        np.array(weights, dtype=np.uint64),
        np.arange(bands, dtype=np.uint64) * _BAND_WEIGHT,
    )
    for array in terms:
        array.flags.writeable = False
    return terms


@dataclass(frozen=True)
class LshLayout:
    """How signatures are cut into bands: ``bands`` bands of ``rows`` hash values each."""

    permutations: int
    bands: int
    rows: int

    def buckets(self, signature: bytes) -> list[int]:
        """The bucket of each band of ``signature``, in band order (signed 64-bit integers)."""
        if len(signature) != 4 * self.permutations:
            raise ValueError(
                f"a signature of {len(signature)} bytes does not fit {self.permutations} "
                "permutations"
            )
        weights, band_terms = _band_hash_terms(self.bands, self.rows)
        values = np.frombuffer(signature, dtype="<u4", count=self.bands * self.rows)
        hashes = values.reshape(self.bands, self.rows) @ weights  # modulo 2**64
        hashes += band_terms
        return _fmix64(hashes).view(np.int64).tolist()


#: Chance of a pair exactly at the threshold sharing at least one bucket (more above it).
LSH_RECALL = 0.95


def candidate_probability(similarity_: float, bands: int, rows: int) -> float:
    """Chance that two signatures of Jaccard similarity ``similarity_`` share a bucket."""
    return 1.0 - (1.0 - similarity_**rows) ** bands


@lru_cache(maxsize=32)
def lsh_layout(threshold: float, permutations: int) -> LshLayout:
    """The band layout for ``threshold``: the most rows per band (fewest false candidates) that
    still makes a pair at the threshold a candidate with ``LSH_RECALL`` probability.

    A layout that weighs misses and false candidates alike would take 9 bands of 13 rows for 0.8
    and find a pair at 0.8 only 40% of the time; here a false candidate only costs one signature
    comparison, a miss is a re-post nobody is told about.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
    for rows in range(permutations // 2, 0, -1):
        bands = permutations // rows
        if candidate_probability(threshold, bands, rows) >= LSH_RECALL:
            return LshLayout(permutations=permutations, bands=bands, rows=rows)
    return LshLayout(permutations=permutations, bands=permutations, rows=1)
