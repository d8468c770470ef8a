"""Field extraction: pure functions from a page's HTML (and its URL) to data. No Spider, DB or clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class PageImage:
    """An image found on an article page."""

    url: str
    """Absolute URL of the image file."""
    caption: str | None
    """Its caption (cleaned text, brackets kept), or None."""


@dataclass(frozen=True)
class ArticlePage:
    """What one page of an article shows."""

    title: str | None
    source: str | None
    published_on: date | None
    paragraphs: tuple[str, ...]
    """Body paragraphs of this page, cleaned (see ``crawler.text.clean_text``), in order."""
    images: tuple[PageImage, ...] = ()
    page_links: tuple[str, ...] = field(default=())
    """Absolute URLs of the article's other pages linked from this page's pager."""
    page_count: int | None = None
    """The highest page number this page's pager shows (None when there is no pager)."""


@dataclass(frozen=True)
class ListingPage:
    """What one page of the section listing links to."""

    article_urls: tuple[str, ...]
    """Absolute URLs of article pages linked, in page order, duplicates removed."""
    listing_urls: tuple[str, ...]
    """Absolute URLs of other pages of the same listing (its pager)."""


def extract_article(html: str, url: str) -> ArticlePage:  # pragma: no cover - being written
    raise NotImplementedError


def extract_listing(html: str, url: str) -> ListingPage:  # pragma: no cover - being written
    raise NotImplementedError


def find_section_url(html: str, url: str, name: str = "Tianjin Updates") -> str | None:  # pragma: no cover
    raise NotImplementedError
