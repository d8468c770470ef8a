"""Text normalisation."""

from __future__ import annotations

from crawler.text import clean_text, join_paragraphs


def test_clean_text_decodes_entities_spaces_and_composes() -> None:
    assert clean_text("  A&nbsp;&amp;\u00a0B\n\t C&#8217;s ") == "A & B C\u2019s"
    assert clean_text("Caf" + "e\u0301") == "Caf\u00e9"
    assert clean_text("\u3000天津\u200b港 ") == "天津 港"
    assert clean_text(None) == ""
    # Text that still holds an entity after parsing was escaped twice: decoded one level.
    assert clean_text(" x&amp;amp;y ") == "x&amp;y"


def test_join_paragraphs_drops_empty_ones() -> None:
    assert join_paragraphs([" one ", "", "\u00a0", "two\nlines"]) == "one\n\ntwo lines"
