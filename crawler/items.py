"""Items the spider yields: one ``ArticleItem`` per article, every page merged in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass
class ImageItem:
    """An image of an article, in the order it appears across the article's pages."""

    position: int
    """1-based position of the image within the whole article."""
    url: str
    """Absolute URL of the image file."""
    caption: str | None = None
    """The caption shown under the image (brackets kept, e.g. ``[Photo/Xinhua]``), or None."""
    page: int = 1
    """The article page the image appears on."""


@dataclass
class ArticleItem:
    """One article of the Tianjin Updates section."""

    article_key: str
    """The CMS id from ``c_<id>.htm``: the same through every host of the site."""
    url: str
    """URL of the article's first page, as fetched."""
    title: str | None = None
    """The headline."""
    source: str | None = None
    """Text inside the source parentheses, trimmed (``( chinadaily.com.cn)`` -> ``chinadaily.com.cn``); None when absent."""
    published_on: date | None = None
    """The ``Updated:`` date (a time, where shown, is ignored)."""
    body: str = ""
    """The paragraphs of every fetched page, in order, joined by ``"\\n\\n"``."""
    page_count: int = 1
    """How many pages the article has, as its pager tells."""
    pages_fetched: int = 1
    """How many of those pages were fetched and extracted."""
    complete: bool = True
    """False when a page of the article could not be fetched."""
    images: list[ImageItem] = field(default_factory=list)
    """The article's images with their captions."""
    fetched_at: datetime | None = None
    """UTC time the last page of the article was fetched."""
    etag: str | None = None
    """The ``ETag`` the server sent with the first page (for conditional re-visits)."""
    last_modified: str | None = None
    """The ``Last-Modified`` the server sent with the first page."""


@dataclass
class ArticleSeen:
    """A stored article the server says is unchanged (``304 Not Modified``): only its
    ``last_seen_at`` moves."""

    article_key: str
    """The CMS id."""
    seen_at: datetime
    """UTC time of the answer."""
