"""Word-shingle Jaccard similarity: how the replica sizes its near-duplicate re-post, and what tests use."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")


def shingles(text: str, k: int = 3) -> frozenset[tuple[str, ...]]:
    """The set of ``k`` consecutive lower-cased words (``\\w+`` runs) of ``text``.

    A text of fewer than ``k`` words (but at least one) is one shingle of all its words.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    words = _WORD.findall(text.lower())
    if not words:
        return frozenset()
    if len(words) < k:
        return frozenset({tuple(words)})
    return frozenset(tuple(words[i : i + k]) for i in range(len(words) - k + 1))


def shingle_jaccard(a: str, b: str, k: int = 3) -> float:
    """Jaccard similarity of the word ``k``-shingle sets of ``a`` and ``b``: 1.0 for two empty texts."""
    sa, sb = shingles(a, k), shingles(b, k)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)
