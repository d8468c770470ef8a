"""Data types of the replica site: generated articles, the expected crawl result, faults, responses."""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class ReplicaImage:
    """An image of a generated article, as a correct extraction reports it."""

    src_path: str
    """Path the image is served at (``/att/YYYYMMDD/<19 digits>.jpeg``); the page may link it relatively."""
    alt: str
    """The alt text: a bare file name such as ``5fc73c03a31024adbda5d268.jpg``."""
    caption: str | None
    """The caption after ``clean_text``, brackets kept (``[Photo/Xinhua]``); None when it has none."""
    page: int
    """The article page (1-based) the image is on."""


@dataclass(frozen=True)
class ReplicaArticle:
    """The truth about one generated article: what a correct extraction of its pages yields."""

    key: str
    """The CMS id (digits); ids grow with the publication date."""
    published_on: datetime.date
    title: str
    """The title after ``clean_text``."""
    source: str | None
    """Text inside the source parentheses, trimmed; None when the page shows no source."""
    pages: tuple[tuple[str, ...], ...]
    """Clean body paragraphs of each page: no captions, no file-name lines, no empty paragraphs."""
    images: tuple[ReplicaImage, ...]
    """Every image of the article, in article order."""
    template: str
    """Name of the template the article's pages are rendered with."""

    def path(self, page: int = 1) -> str:
        """``/YYYY-MM/DD/c_<key>.htm`` for page 1, ``.../c_<key>_<page>.htm`` after."""
        if not 1 <= page <= len(self.pages):
            raise ValueError(f"article {self.key} has no page {page}")
        suffix = "" if page == 1 else f"_{page}"
        d = self.published_on
        return f"/{d.year:04d}-{d.month:02d}/{d.day:02d}/c_{self.key}{suffix}.htm"

    @property
    def page_count(self) -> int:
        return len(self.pages)

    @property
    def body(self) -> str:
        """Every paragraph of every page, joined by a blank line."""
        return "\n\n".join(p for page in self.pages for p in page)


@dataclass(frozen=True)
class ExpectedArticle:
    """What a correct crawl of the whole listing stores for one article."""

    key: str
    path: str
    """Path of page 1."""
    title: str
    source: str | None
    published_on: datetime.date
    body: str
    """Paragraphs of the pages a crawl can fetch, joined by a blank line."""
    page_count: int
    """Total pages, as the pager tells, even when one of them cannot be fetched."""
    complete: bool
    """False when some page can never be fetched."""
    images: tuple[tuple[int, str, str | None], ...]
    """``(position, src_path, caption)``; position is 1-based among the images of fetchable pages."""
    duplicate_of: str | None = None
    """A re-post: the key of the older article whose title and body (as crawled) it repeats exactly."""
    near_duplicate_of: str | None = None
    """A near re-post: the key of the older article whose body it repeats with small edits (word
    3-shingle Jaccard of the bodies >= 0.8, below 1.0)."""


class FaultKind(enum.Enum):
    """What goes wrong when a path is served."""

    NOT_FOUND = "not_found"
    """404, always."""
    FLAKY = "flaky"
    """A 5xx status ``times`` times, then the normal page."""
    BROKEN = "broken"
    """A 5xx status, forever."""
    GBK = "gbk"
    """The page encoded in GBK and declared so in both the Content-Type header and a ``<meta>``."""
    META_CHARSET_ONLY = "meta_charset_only"
    """The page encoded in GBK, declared only by a ``<meta>`` (the header names no charset)."""
    MALFORMED = "malformed"
    """Broken markup (unclosed tags, stray end tags, unquoted attributes) with the same text."""


@dataclass(frozen=True)
class Fault:
    """A fault served for one path. Use the constants (``Fault.BROKEN``) or ``Fault.flaky(times=3)``."""

    kind: FaultKind
    times: int = 0
    """FLAKY only: how many requests fail before the page heals."""
    status: int = 0
    """The error status of FLAKY and BROKEN (and 404 for NOT_FOUND)."""

    NOT_FOUND: ClassVar[Fault]
    FLAKY: ClassVar[Fault]
    BROKEN: ClassVar[Fault]
    GBK: ClassVar[Fault]
    META_CHARSET_ONLY: ClassVar[Fault]
    MALFORMED: ClassVar[Fault]

    @classmethod
    def flaky(cls, times: int = 2, status: int = 502) -> Fault:
        """Fail ``times`` requests with ``status`` (502, as China Daily hosts answered fast crawls)."""
        return cls(FaultKind.FLAKY, times=times, status=status)

    @classmethod
    def broken(cls, status: int = 503) -> Fault:
        return cls(FaultKind.BROKEN, status=status)

    @property
    def permanent(self) -> bool:
        """True when a crawl can never get the page's content."""
        return self.kind in (FaultKind.NOT_FOUND, FaultKind.BROKEN)


Fault.NOT_FOUND = Fault(FaultKind.NOT_FOUND, status=404)
Fault.FLAKY = Fault.flaky()
Fault.BROKEN = Fault.broken()
Fault.GBK = Fault(FaultKind.GBK)
Fault.META_CHARSET_ONLY = Fault(FaultKind.META_CHARSET_ONLY)
Fault.MALFORMED = Fault(FaultKind.MALFORMED)


@dataclass
class ReplicaResponse:
    """One rendered HTTP response."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
