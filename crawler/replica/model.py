"""Data types of the replica site: generated articles, the expected crawl result, faults, responses."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Callable, Iterator
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
    """A 5xx status ``times`` times, then the normal page (``Fault.flaky``, ``Fault.storm``)."""
    BROKEN = "broken"
    """A 5xx status, forever."""
    GBK = "gbk"
    """The page encoded in GBK and declared so in both the Content-Type header and a ``<meta>``."""
    META_CHARSET_ONLY = "meta_charset_only"
    """The page encoded in GBK, declared only by a ``<meta>`` (the header names no charset)."""
    MALFORMED = "malformed"
    """Broken markup (unclosed tags, stray end tags, unquoted attributes) with the same text."""
    SLOW = "slow"
    """The answer waits ``delay`` seconds (the first ``times`` requests; every one when None)."""
    RATE_LIMITED = "rate_limited"
    """429 with ``Retry-After: <retry_after>`` ``times`` times, then the normal page."""
    RESET = "reset"
    """The connection is reset (RST) without any answer ``times`` times (None: always)."""
    TRUNCATED = "truncated"
    """200 whose Content-Length promises the whole page; half of it is sent, then the connection
    closes. ``times`` times (None: always), then the normal page."""
    EMPTY = "empty"
    """200 with an empty body (Content-Length: 0), always."""
    SOFT_404 = "soft_404"
    """200 page in the site's look saying the page was not found: no article, always."""
    REDIRECT_LOOP = "redirect_loop"
    """302 to the same path with ``?loop=1``, which 302s back: a loop, always."""
    META_REFRESH = "meta_refresh"
    """200 page whose ``<meta http-equiv="refresh">`` sends the browser to ``target``, always."""
    SELF_PAGER = "self_pager"
    """The article page's pager also links the current page to itself (multi-page articles)."""
    HUGE = "huge"
    """The page padded to ``size`` bytes inside an HTML comment, streamed, always."""
    DRIFT = "drift"
    """Layout drift: a JavaScript shell (``<div id="app">`` and the content as JSON in a
    ``<script>``) from which no title and no body can be extracted, always."""


# What expected() assumes of a correct crawler: the project's settings (crawler/settings.py).
RETRY_TIMES = 3
"""Retries after a failed try (Scrapy ``RETRY_TIMES``): a page gets ``RETRY_TIMES + 1`` tries."""
DOWNLOAD_TIMEOUT = 30.0
"""Seconds before a download is given up (Scrapy ``DOWNLOAD_TIMEOUT``)."""
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
"""Largest response a crawl accepts (Scrapy ``DOWNLOAD_MAXSIZE``); a larger one is cancelled."""

# Kinds that fail the first ``times`` requests of a path and then serve it normally.
COUNTED_KINDS = frozenset(
    {FaultKind.FLAKY, FaultKind.RATE_LIMITED, FaultKind.RESET, FaultKind.TRUNCATED}
)
# Kinds whose page never carries the content, however often it is asked for.
CONTENTLESS_KINDS = frozenset(
    {
        FaultKind.NOT_FOUND,
        FaultKind.BROKEN,
        FaultKind.EMPTY,
        FaultKind.SOFT_404,
        FaultKind.REDIRECT_LOOP,
        FaultKind.DRIFT,
    }
)


@dataclass(frozen=True)
class Fault:
    """A fault served for one path. Use the constants (``Fault.BROKEN``) or the builders
    (``Fault.flaky(times=3)``, ``Fault.slow(2.0)``...)."""

    kind: FaultKind
    times: int | None = 0
    """FLAKY, RATE_LIMITED, RESET, TRUNCATED, SLOW: how many requests misbehave before the page
    heals; None: it never heals (SLOW: every request is slow)."""
    status: int = 0
    """The status of FLAKY and BROKEN (and 404 for NOT_FOUND, 429 for RATE_LIMITED, 302 for
    REDIRECT_LOOP)."""
    delay: float = 0.0
    """SLOW: seconds the server waits before it answers."""
    retry_after: int = 0
    """RATE_LIMITED: the ``Retry-After`` header, in seconds."""
    size: int = 0
    """HUGE: length of the response in bytes."""
    target: str = ""
    """META_REFRESH: where the refresh sends the browser (a path or an absolute URL)."""

    NOT_FOUND: ClassVar[Fault]
    FLAKY: ClassVar[Fault]
    BROKEN: ClassVar[Fault]
    GBK: ClassVar[Fault]
    META_CHARSET_ONLY: ClassVar[Fault]
    MALFORMED: ClassVar[Fault]
    EMPTY: ClassVar[Fault]
    SOFT_404: ClassVar[Fault]
    SELF_PAGER: ClassVar[Fault]
    DRIFT: ClassVar[Fault]

    @classmethod
    def flaky(cls, times: int | None = 2, status: int = 502) -> Fault:
        """Fail ``times`` requests with ``status`` (502, as China Daily hosts answered fast crawls)."""
        return cls(FaultKind.FLAKY, times=times, status=status)

    @classmethod
    def storm(cls, times: int | None = 5, status: int = 503) -> Fault:
        """A 5xx storm: ``flaky`` with another default. Five failures outlast the four tries of
        one crawl (RETRY_TIMES=3), so that crawl loses the page; the next one gets it."""
        return cls.flaky(times=times, status=status)

    @classmethod
    def broken(cls, status: int = 503) -> Fault:
        return cls(FaultKind.BROKEN, status=status)

    @classmethod
    def slow(cls, seconds: float, times: int | None = None) -> Fault:
        """Answer after ``seconds``; only the first ``times`` requests when ``times`` is given."""
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, not {seconds}")
        return cls(FaultKind.SLOW, times=times, delay=float(seconds))

    @classmethod
    def rate_limited(cls, times: int | None = 2, retry_after: int = 1) -> Fault:
        """429 Too Many Requests with ``Retry-After: retry_after`` for the first ``times`` requests."""
        return cls(FaultKind.RATE_LIMITED, times=times, status=429, retry_after=retry_after)

    @classmethod
    def reset(cls, times: int | None = 1) -> Fault:
        """Reset the connection without answering the first ``times`` requests (None: all)."""
        return cls(FaultKind.RESET, times=times)

    @classmethod
    def truncated(cls, times: int | None = 1) -> Fault:
        """Send half the page under a Content-Length for all of it, then close; ``times`` times
        (None: every time, the page never heals)."""
        return cls(FaultKind.TRUNCATED, times=times)

    @classmethod
    def redirect_loop(cls, status: int = 302) -> Fault:
        """``path`` redirects to ``path?loop=1``, which redirects back to ``path``."""
        return cls(FaultKind.REDIRECT_LOOP, status=status)

    @classmethod
    def meta_refresh(cls, target: str) -> Fault:
        """A 200 page that refreshes at once to ``target``; ``ReplicaSite.mirror_path(path)`` is
        the same article page under another path, which a crawler should follow and store."""
        if not target:
            raise ValueError("a meta refresh needs a target")
        return cls(FaultKind.META_REFRESH, target=target)

    @classmethod
    def huge(cls, size: int = 40 * 1024 * 1024) -> Fault:
        """The page padded (inside an HTML comment) to ``size`` bytes, streamed."""
        if size < 0:
            raise ValueError(f"size must not be negative, not {size}")
        return cls(FaultKind.HUGE, size=size)

    def lost(
        self,
        retry_times: int = RETRY_TIMES,
        download_timeout: float = DOWNLOAD_TIMEOUT,
        max_size: int = DOWNLOAD_MAXSIZE,
    ) -> bool:
        """True when one crawl with these limits, started after the fault was set, cannot get the
        page's content: a content-less answer, a count of failures that outlasts the crawl's
        ``retry_times + 1`` tries (or never ends), an answer slower than ``download_timeout`` on
        every try, a response larger than ``max_size``."""
        if self.kind in CONTENTLESS_KINDS:
            return True
        if self.kind in COUNTED_KINDS:
            return self.times is None or self.times > retry_times
        if self.kind is FaultKind.SLOW:
            outlasts = self.times is None or self.times > retry_times
            return self.delay >= download_timeout and outlasts
        if self.kind is FaultKind.HUGE:
            return self.size > max_size
        return False

    @property
    def permanent(self) -> bool:
        """True when a crawl with the project's limits (3 retries, 30 s, 16 MiB) cannot get the
        page's content (``lost()`` with its defaults)."""
        return self.lost()


Fault.NOT_FOUND = Fault(FaultKind.NOT_FOUND, status=404)
Fault.FLAKY = Fault.flaky()
Fault.BROKEN = Fault.broken()
Fault.GBK = Fault(FaultKind.GBK)
Fault.META_CHARSET_ONLY = Fault(FaultKind.META_CHARSET_ONLY)
Fault.MALFORMED = Fault(FaultKind.MALFORMED)
Fault.EMPTY = Fault(FaultKind.EMPTY)
Fault.SOFT_404 = Fault(FaultKind.SOFT_404)
Fault.SELF_PAGER = Fault(FaultKind.SELF_PAGER)
Fault.DRIFT = Fault(FaultKind.DRIFT)


@dataclass
class ReplicaResponse:
    """One rendered HTTP response, and how the server is to misbehave while sending it."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    """Seconds the server waits before it answers (Fault.slow)."""
    reset: bool = False
    """The server resets the connection instead of answering (Fault.reset); ``status`` is 0."""
    truncated: bool = False
    """The server declares ``len(body)`` but sends only its first half, then closes (Fault.truncated)."""
    stream: Callable[[], Iterator[bytes]] | None = None
    """More body, too big to build at once: the server writes ``body`` then these chunks (Fault.huge)."""
    stream_length: int = 0
    """Total length of the chunks ``stream()`` yields."""

    @property
    def content_length(self) -> int:
        """The Content-Length the server declares."""
        return len(self.body) + self.stream_length
