"""Text normalisation."""

from __future__ import annotations

from crawler.text import clean_text, join_paragraphs, normalise_body


def test_clean_text_decodes_entities_spaces_and_composes() -> None:
    assert clean_text("  A&nbsp;&amp;\u00a0B\n\t C&#8217;s ") == "A & B C\u2019s"
    assert clean_text("Caf" + "e\u0301") == "Caf\u00e9"
    assert clean_text("\u3000天津\u200b港 ") == "天津 港"
    assert clean_text(None) == ""
    # Text that still holds an entity after parsing was escaped twice: decoded one level.
    assert clean_text(" x&amp;amp;y ") == "x&amp;y"


def test_join_paragraphs_drops_empty_ones() -> None:
    assert join_paragraphs([" one ", "", "\u00a0", "two\nlines"]) == "one\n\ntwo lines"


def _slow_clean(value: str) -> str:
    """clean_text's rule spelled out without its shortcut for text that is already clean."""
    import html
    import re
    import unicodedata

    text = html.unescape(value) if "&" in value else value
    text = re.sub(r"[\s\u200b\u200c\u200d\u2060\ufeff]+", " ", text).strip()
    return unicodedata.normalize("NFC", text)


def test_shortcut_for_clean_ascii_changes_nothing() -> None:
    import random

    pieces = [
        "a",
        "Tianjin",
        " ",
        "  ",
        "\t",
        "\n",
        "\r",
        "\x0b",
        "\x1c",
        "\u00a0",
        "\u3000",
        "\u200b",
        "\ufeff",
        "&amp;",
        "&nbsp;",
        "e\u0301",
        "\u5929\u6d25",
        "\u00e9",
        "\u0301",
        "\u2028",
        "\x85",
        "\u201cquoted\u201d",
        ".",
        "&",
        "R&D",
        "&copy",
        "&#39",
        "&x",
        ";",
    ]
    rng = random.Random(7)
    for _ in range(20000):
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 10)))
        assert clean_text(value) == _slow_clean(value), repr(value)


def test_a_body_already_normal_is_returned_as_it_is_and_any_other_is_cleaned() -> None:
    import random

    pieces = [
        "word",
        "Tianjin",
        "\u5929\u6d25",
        "\u00e9",
        "e\u0301",
        " ",
        "  ",
        "\n",
        "\n\n",
        "\n\n\n",
        "\u00a0",
        "\u200b",
        "&amp;",
        "\t",
        "\u201c",
        ".",
        "R&D",
        "&copy",
        "&#39",
        "&",
        ";",
    ]
    rng = random.Random(11)
    unchanged = 0
    for _ in range(30000):
        body = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        want = join_paragraphs(body.split("\n\n"))
        got = normalise_body(body)
        assert got == want, repr(body)
        unchanged += got is body
    assert unchanged > 1000  # the shortcut was taken, not only the long road
    assert normalise_body("One.\n\nTwo \u5929\u6d25.") == "One.\n\nTwo \u5929\u6d25."
    # A literal ampersand, as in most bodies of the site ("R&D"), keeps the shortcut; one that
    # starts an entity does not.
    body = "Spending on R&D grew.\n\nR&D & more."
    assert normalise_body(body) is body
    assert normalise_body("Fish &amp; chips.\n\nR&D.") == "Fish & chips.\n\nR&D."
    assert clean_text("R&D &copy 2024") == "R&D \u00a9 2024"
