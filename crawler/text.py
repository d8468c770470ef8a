"""Text normalisation shared by extraction and the pipelines: pure functions, no I/O."""

from __future__ import annotations

import html
import unicodedata

# Space-like characters that are not white space to Python (``str.split`` keeps them): the
# zero-width ones CMS editors paste in. Every other Unicode white space (no-break, ideographic,
# line separators...) is what ``str.split()`` splits on.
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
_ZERO_WIDTH_TO_SPACE = str.maketrans(dict.fromkeys(_ZERO_WIDTH, " "))


def clean_text(value: str | None) -> str:
    """Decode left-over entities, turn every run of space-like characters into one space, trim,
    NFC.

    ``"A&nbsp;&amp;\\u00a0B "`` -> ``"A & B"``. Entities still present in text that an HTML parser
    already decoded were escaped twice by the CMS (a page showing a literal ``&nbsp;``): decoded once
    more, on purpose. Everything here runs in C (split, join, a few scans): it is called for every
    paragraph of every page.
    """
    if not value:
        return ""
    if (
        value.isprintable()
        and ("&" not in value or _no_entity(value))
        and "  " not in value
        and (value.isascii() or unicodedata.is_normalized("NFC", value))
    ):
        # Single spaces, no entity, NFC: the usual case, clean but for its ends. Every space-like
        # character but U+0020 (and every zero-width one) is a "separator" or "other" character
        # to Unicode, so ``isprintable`` rules them all out in one scan in C.
        return value.strip()
    text = html.unescape(value) if "&" in value else value
    if any(mark in text for mark in _ZERO_WIDTH):
        text = text.translate(_ZERO_WIDTH_TO_SPACE)
    text = " ".join(text.split())
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def _no_entity(text: str) -> bool:
    """Whether ``html.unescape`` leaves ``text`` as it is: its "&" are literal ("R&D"), as in
    most articles here, not the start of an entity. (An entity never spans a line break, so
    this holds for a whole body exactly when it holds for each paragraph.)"""
    return html.unescape(text) == text


class NormalBody(str):
    """A body already in the form ``normalise_body`` returns (cleaned, non-empty paragraphs
    joined by one blank line): ``normalise_body`` gives it back as a plain ``str`` without
    scanning it again. Made only by ``page_body`` and ``join_bodies``."""

    __slots__ = ()


def page_body(paragraphs: list[str]) -> NormalBody:
    """The body text of one page's paragraphs as extraction hands them over: each already cleaned
    (``ArticlePage.paragraphs``: ``clean_text`` of its text, so one line with no space at either
    end), so joining the non-empty ones is all ``normalise_body`` would do. Tests hold every page
    extraction reads to this (tests/crawler/test_read_page.py)."""
    return NormalBody("\n\n".join([p for p in paragraphs if p]))


def join_bodies(bodies: list[str]) -> str:
    """The pages' bodies, in order, as one body (empty ones left out). When every part is a
    ``NormalBody`` so is the whole: cleaned, non-empty paragraphs joined by one blank line
    stay so when joined the same way, and a line break composes with nothing under NFC."""
    body = "\n\n".join([b for b in bodies if b])
    return NormalBody(body) if all(type(b) is NormalBody for b in bodies) else body


def normalise_body(body: str | None) -> str:
    """An article body (paragraphs separated by ``"\\n\\n"``) with each paragraph cleaned and
    empty ones dropped; a body that is already so comes back as it is, checked in a few scans
    of the whole text instead of paragraph by paragraph (or not at all: a ``NormalBody``)."""
    if not body:
        return ""
    if type(body) is NormalBody:
        return str(body)
    if (
        ("&" not in body or _no_entity(body))
        and "  " not in body
        and "\n\n\n" not in body
        and "\n " not in body
        and " \n" not in body
        and body[0] not in " \n"
        and body[-1] not in " \n"
        # A "\n" left after this is inside a paragraph; every other space-like character is
        # not printable either (see clean_text).
        and body.replace("\n\n", " ").isprintable()
        # NFC as a whole means NFC paragraph by paragraph: a line break composes with nothing.
        and (body.isascii() or unicodedata.is_normalized("NFC", body))
    ):
        return body
    return join_paragraphs(body.split("\n\n"))


def join_paragraphs(paragraphs: list[str]) -> str:
    """The article body: cleaned, non-empty paragraphs joined by one blank line."""
    return "\n\n".join(p for p in (clean_text(p) for p in paragraphs) if p)
