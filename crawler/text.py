"""Text normalisation shared by extraction and the pipelines: pure functions, no I/O."""

from __future__ import annotations

import html
import re
import unicodedata

# Every Unicode white space, including no-break and ideographic spaces and zero-width ones that
# CMS editors paste in; \s already covers most but not U+200B..U+200D or U+FEFF.
_SPACE_RUN = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
# The ASCII characters ``\s`` matches besides the plain space.
_ASCII_SPACES = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


def clean_text(value: str | None) -> str:
    """Decode left-over entities, turn every space-like character into one space, trim, NFC.

    ``"A&nbsp;&amp;\\u00a0B "`` -> ``"A & B"``. Entities still present in text that an HTML parser
    already decoded were escaped twice by the CMS (a page showing a literal ``&nbsp;``): decoded once
    more, on purpose.
    """
    if not value:
        return ""
    # Most text is plain ASCII with single spaces: already clean but for its ends (and NFC of
    # ASCII is itself). A few scans in C instead of a regex rewrite and a normalisation.
    if (
        value.isascii()
        and "&" not in value
        and "  " not in value
        and not any(space in value for space in _ASCII_SPACES)
    ):
        return value.strip()
    text = html.unescape(value) if "&" in value else value
    text = _SPACE_RUN.sub(" ", text).strip()
    return unicodedata.normalize("NFC", text)


def join_paragraphs(paragraphs: list[str]) -> str:
    """The article body: cleaned, non-empty paragraphs joined by one blank line."""
    return "\n\n".join(p for p in (clean_text(p) for p in paragraphs) if p)
