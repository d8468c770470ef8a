"""The ``tianjin_updates`` spider: home page -> section listing -> every page of every article.

Navigation only. What a page says is read by ``crawler.extract``; what is kept is decided by the
item pipelines. Rules:

* the start URL may be the home page (the "Tianjin Updates" navigation link is followed), a listing
  page (``n_<node>.htm``) or a single article;
* listing pages are followed through their pager, up to ``TIANJIN_MAX_PAGES`` (0: all);
* article links are recognised by URL shape on every host of the site; an article found through
  another host is fetched through the start URL's host, so one id is one request and one item;
* the pages of an article are fetched one after the other (page k's pager tells whether page k+1
  exists, even when it shows only a window); the state of the article travels in the request's
  ``meta``, so it survives a distributed scheduler; one item is yielded when the last page is done.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.exceptions import CloseSpider, IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.extract import ArticlePage, extract_article, extract_listing, find_section_url
from crawler.items import ArticleItem, ImageItem
from crawler.text import join_paragraphs
from crawler.urls import (
    DEFAULT_START_URL,
    article_page_url,
    hostname,
    is_site_url,
    parse_article_url,
    parse_hosts,
    parse_listing_url,
    rehost,
)

SECTION_NAME = "Tianjin Updates"


@dataclass
class ArticleAssembly:
    """The pages of one article collected so far (travels in ``Request.meta``)."""

    key: str
    url: str
    page_count: int = 1
    pages: dict[int, ArticlePage] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)

    def next_page(self, after: int) -> int | None:
        nxt = after + 1
        return nxt if nxt <= self.page_count else None


def error_kind(failure: Failure) -> str:
    """A short, stable name for why a request failed: ``http_404``, ``dns``, ``timeout``, ..."""
    exc = failure.value
    if isinstance(exc, HttpError):
        return f"http_{exc.response.status}"
    if isinstance(exc, IgnoreRequest):
        return (
            "robots"
            if "robots" in str(exc).lower() or "forbidden by robots" in str(exc)
            else "ignored"
        )
    name = type(exc).__name__
    if "DNS" in name:
        return "dns"
    if "Timeout" in name:
        return "timeout"
    if "ConnectionRefused" in name:
        return "connection_refused"
    if "Connection" in name or "ResponseNeverReceived" in name or "ResponseFailed" in name:
        return "connection"
    return name


class TianjinUpdatesSpider(scrapy.Spider):
    """Crawls the "Tianjin Updates" section; one ``ArticleItem`` per article."""

    name = "tianjin_updates"

    def __init__(
        self, start_url: str | None = None, max_pages: int | str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.start_url = start_url or DEFAULT_START_URL
        self._max_pages_arg = int(max_pages) if max_pages not in (None, "") else None
        self.hosts: tuple[str, ...] = ()
        self.max_pages = 0

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> TianjinUpdatesSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        hosts = parse_hosts(settings.get("TIANJIN_HOSTS", ""))
        start_host = hostname(spider.start_url)
        spider.hosts = (start_host, *[h for h in hosts if h != start_host]) if start_host else hosts
        spider.max_pages = (
            spider._max_pages_arg
            if spider._max_pages_arg is not None
            else settings.getint("TIANJIN_MAX_PAGES", 0)
        )
        return spider

    # --- start -------------------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Any]:
        yield scrapy.Request(self.start_url, callback=self.parse_start, errback=self.start_failed)

    def start_failed(self, failure: Failure) -> None:
        url = failure.request.url  # type: ignore[attr-defined]
        kind = error_kind(failure)
        self._fail_start(
            kind,
            f"cannot fetch {url} ({kind}: {_one_line(failure)}); check the start URL and the network",
        )

    def parse_start(self, response: Response) -> Iterator[Any]:
        if not isinstance(response, TextResponse):
            self._fail_start("not_html", f"{response.url} is not an HTML page")
            return
        if parse_listing_url(response.url):
            yield from self.parse_listing(response)
            return
        if parse_article_url(response.url):
            yield from self._article_request(response.url, response)
            return
        section = find_section_url(response.text, response.url, SECTION_NAME)
        if section is None:
            self._fail_start("no_section_link", f'no "{SECTION_NAME}" link on {response.url}')
            return
        yield response.follow(section, callback=self.parse_listing, errback=self.start_failed)

    def _fail_start(self, kind: str, message: str) -> None:
        # Nothing else is queued yet: closing with our own reason marks the run failed.
        stats = self.crawler.stats
        stats.set_value("spider/start_failed", kind)
        stats.set_value("spider/start_error", message)
        stats.inc_value(f"spider/errors/{kind}")
        self.logger.error("%s", message)
        raise CloseSpider("start_failed")

    # --- listing -------------------------------------------------------------------------------
    def parse_listing(self, response: Response) -> Iterator[Any]:
        if not isinstance(response, TextResponse):
            return
        self.crawler.stats.inc_value("spider/listing_pages")
        listing = extract_listing(response.text, response.url)
        for url in listing.article_urls:
            yield from self._article_request(url, response)
        for url in listing.listing_urls:
            ref = parse_listing_url(url)
            if ref is None or not is_site_url(url, self.hosts):
                continue
            if self.max_pages and ref.page > self.max_pages:
                continue
            yield scrapy.Request(url, callback=self.parse_listing, errback=self.listing_failed)

    def listing_failed(self, failure: Failure) -> None:
        self.crawler.stats.inc_value(f"spider/errors/listing_{error_kind(failure)}")
        self.logger.warning("Listing page failed: %s", _one_line(failure))

    # --- articles ------------------------------------------------------------------------------
    def _article_request(self, url: str, response: Response) -> Iterator[scrapy.Request]:
        if not is_site_url(url, self.hosts):
            return
        ref = parse_article_url(url)
        if ref is None:
            return
        first = article_page_url(url, 1)
        if hostname(first) != hostname(response.url) and is_site_url(response.url, self.hosts):
            # Same id on another host is the same article: fetch it where we crawl.
            first = rehost(first, response.url)
        assembly = ArticleAssembly(key=ref.article_key, url=first)
        yield scrapy.Request(
            first,
            callback=self.parse_article,
            errback=self.article_failed,
            meta={"article": assembly, "article_page": 1},
        )

    def parse_article(self, response: Response) -> Iterator[Any]:
        assembly: ArticleAssembly = response.meta["article"]
        page = response.meta.get("article_page", 1)
        if not isinstance(response, TextResponse):
            yield from self._page_failed(assembly, page, "not_html")
            return
        extracted = extract_article(response.text, response.url)
        assembly.pages[page] = extracted
        known = [extracted.page_count or 1, page]
        known += [
            r.page
            for r in map(parse_article_url, extracted.page_links)
            if r and r.article_key == assembly.key
        ]
        assembly.page_count = max(assembly.page_count, *known)
        yield from self._continue(assembly, page)

    def article_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        assembly: ArticleAssembly = request.meta["article"]
        page = request.meta.get("article_page", 1)
        yield from self._page_failed(assembly, page, error_kind(failure), _one_line(failure))

    def _page_failed(
        self, assembly: ArticleAssembly, page: int, kind: str, detail: str = ""
    ) -> Iterator[Any]:
        stats = self.crawler.stats
        # robots.txt saying no is the site's wish, not an error.
        stats.inc_value("spider/robots_disallowed" if kind == "robots" else f"spider/errors/{kind}")
        if page == 1:
            # Without page 1 there is no title or date: the article is skipped and counted.
            stats.inc_value(f"spider/articles_skipped/{kind}")
            self.logger.warning("Article %s skipped (%s) %s", assembly.url, kind, detail)
            return
        assembly.failed[page] = kind
        self.logger.warning("Article %s: page %d failed (%s) %s", assembly.url, page, kind, detail)
        yield from self._continue(assembly, page)

    def _continue(self, assembly: ArticleAssembly, page: int) -> Iterator[Any]:
        nxt = assembly.next_page(page)
        if nxt is not None:
            yield scrapy.Request(
                article_page_url(assembly.url, nxt),
                callback=self.parse_article,
                errback=self.article_failed,
                meta={"article": assembly, "article_page": nxt},
            )
            return
        yield build_item(assembly)


def build_item(assembly: ArticleAssembly) -> ArticleItem:
    """Merge the fetched pages of an article, in page order, into one item."""
    ordered = [assembly.pages[k] for k in sorted(assembly.pages)]
    first = assembly.pages.get(1) or ordered[0]
    images: list[ImageItem] = []
    for number in sorted(assembly.pages):
        for image in assembly.pages[number].images:
            images.append(
                ImageItem(
                    position=len(images) + 1, url=image.url, caption=image.caption, page=number
                )
            )
    return ArticleItem(
        article_key=assembly.key,
        url=assembly.url,
        title=first.title,
        source=first.source,
        published_on=first.published_on,
        body=join_paragraphs([p for page in ordered for p in page.paragraphs]),
        page_count=assembly.page_count,
        pages_fetched=len(assembly.pages),
        complete=not assembly.failed and len(assembly.pages) == assembly.page_count,
        images=images,
        fetched_at=datetime.now(UTC),
    )


def _one_line(failure: Failure) -> str:
    """The first line of the failure's message (its class name when it has none)."""
    lines = str(failure.value).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(failure.value).__name__
