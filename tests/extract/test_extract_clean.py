"""The bulk text cleaning of ``crawler.extract`` gives what cleaning each text alone gives."""

from __future__ import annotations

import random
import sys

from crawler import extract


def test_the_space_like_characters_are_what_str_split_splits_on() -> None:
    spaces = {c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace() and c != " "}
    assert set(extract._SPACE_LIKE) == spaces | set(extract._ZERO_WIDTH)


def test_cleaning_texts_together_is_cleaning_each() -> None:
    spaces = [c for c in map(chr, range(0x3001)) if c.isspace()]
    pieces = [
        *"ab c.&;#x",
        *spaces,
        *extract._ZERO_WIDTH,
        "  ",
        "\r\n",
        "&amp;",
        "&amp",
        "&#32;",
        "&#x20;",
        "&#13;",
        "&nbsp;",
        "&lt",
        "&lt\r",
        "&#8984;",  # the seam, once unescaped
        extract._JOIN,
        "e\u0301",
        "\u0301",
        "\u00e9",
        "\u212b",  # NFC changes it
        "\u5929",
    ]
    rnd = random.Random(3)
    for _ in range(30000):
        values = [
            "".join(rnd.choice(pieces) for _ in range(rnd.randrange(8)))
            for _ in range(rnd.randrange(1, 5))
        ]
        assert extract._clean_all(values) == [extract._clean(v) for v in values], values
