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
  ``meta``, so it survives a distributed scheduler; one item is yielded when the last page is done;
* incremental crawls (the default) read the listing one page after the other and skip what the
  database already holds; see ``crawler.incremental`` for the rules. ``-a full=1`` or
  ``TIANJIN_INCREMENTAL=False`` reads every listing page (in parallel) and fetches every article;
* a page that answers 200 but shows no article (empty, "not found", or a layout extraction cannot
  read) is never stored as an empty article: it is skipped and counted, and a layout that cannot be
  read marks the run degraded;
* in a distributed crawl (``crawler.frontier``) the seeder queues the start request and decides
  once, for every worker, how the listing is read (``TIANJIN_CRAWL_DEEP``,
  ``TIANJIN_REVISIT_SINCE``): a worker's ``start()`` yields nothing. Every callback and errback is
  a spider method and everything in ``meta`` can be pickled, so any request can be handled by any
  worker.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import scrapy
from scrapy import signals
from scrapy.exceptions import CloseSpider, IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.extract import ArticlePage, extract_listing, find_section_url, read_article_page
from crawler.incremental import StoredArticles
from crawler.items import ArticleItem, ArticleSeen, ImageItem
from crawler.offload import Helper, HelperGone, helper_of
from crawler.text import join_bodies, page_body
from crawler.urls import (
    DEFAULT_START_URL,
    article_page_url,
    hostname,
    is_site_url,
    listing_page_url,
    parse_article_url,
    parse_hosts,
    parse_listing_url,
    rehost,
)
from storage.db import StorageError

SECTION_NAME = "Tianjin Updates"
# Text of the CMS's "page not found" page served with status 200.
_NOT_FOUND_TEXT = re.compile(
    r"\b(page (you requested )?(was |is )?not (be )?found|404)\b", re.IGNORECASE
)


@dataclass
class ArticleAssembly:
    """The pages of one article collected so far (travels in ``Request.meta``)."""

    key: str
    url: str
    page_count: int = 1
    pages: dict[int, ArticlePage] = field(default_factory=dict)
    #: Each page's normalised body text (``crawler.extract.read_article_page``).
    bodies: dict[int, str] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None

    def next_page(self, after: int) -> int | None:
        nxt = after + 1
        return nxt if nxt <= self.page_count else None


def error_kind(failure: Failure) -> str:
    """A short, stable name for why a request failed: ``http_404``, ``dns``, ``timeout``, ..."""
    exc = failure.value
    if isinstance(exc, HttpError):
        return f"http_{exc.response.status}"
    if isinstance(exc, IgnoreRequest):
        text = str(exc).lower()
        if "robots" in text:
            return "robots"
        if "redirect" in text:
            return "redirect_loop"
        return "ignored"
    text = str(exc).lower()
    if "maxsize" in text or "max size" in text or "larger than download" in text:
        return "too_large"
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
        self,
        start_url: str | None = None,
        max_pages: int | str | None = None,
        full: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.start_url = start_url or DEFAULT_START_URL
        self._max_pages_arg = int(max_pages) if max_pages not in (None, "") else None
        self._full_arg = str(full).strip().lower() in ("1", "true", "yes", "on")
        self.hosts: tuple[str, ...] = ()
        self.max_pages = 0
        self.stored: StoredArticles | None = None
        self.stop_after_known = 1
        self.revisit_days = 2
        self.revisit_since: date | None = None
        self.deep = True
        # Article keys this crawl has queued, so a key linked from many listing pages counts once.
        # In a distributed crawl this is per worker; the shared duplicate filter covers the rest.
        self.queued: set[str] = set()
        # The crawl's id when this spider is one worker of a distributed crawl (crawler.frontier).
        self.frontier_crawl: str | None = None
        # The process that reads pages beside the reactor (crawler.offload); None: read here.
        self.helper: Helper | None = None

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
        spider.frontier_crawl = settings.get("TIANJIN_FRONTIER_CRAWL") or None
        spider.helper = helper_of(crawler)
        crawler.signals.connect(spider._record_progress, signal=signals.spider_closed)
        if settings.getbool("TIANJIN_INCREMENTAL", True) and not spider._full_arg:
            spider.stored = StoredArticles(
                settings.get("TIANJIN_UPDATES_DB"),
                retries=settings.getint("TIANJIN_DB_RETRIES", 5),
                backoff=settings.getfloat("TIANJIN_DB_RETRY_BACKOFF", 1.0),
            )
            spider.stop_after_known = max(1, settings.getint("TIANJIN_STOP_AFTER_KNOWN_PAGES", 1))
            spider.revisit_days = max(0, settings.getint("TIANJIN_REVISIT_DAYS", 2))
            crawler.signals.connect(spider._close_stored, signal=signals.spider_closed)
        return spider

    def _record_progress(self) -> None:
        """Say whether this crawl leaves the database caught up with the listing (read by the next
        incremental crawl, see ``Repository.caught_up``)."""
        stats = self.crawler.stats
        caught_up = crawl_caught_up(
            stats.get_stats(), max_pages=self.max_pages, incremental=self.stored is not None
        )
        stats.set_value("incremental/caught_up", caught_up)

    def _close_stored(self) -> None:
        if self.stored is not None:
            self.stored.close()

    # --- start -------------------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Any]:
        stats = self.crawler.stats
        if self.frontier_crawl is not None:
            # A worker of a distributed crawl: the seeder queued the start request and decided
            # for every worker how the listing is read.
            settings = self.crawler.settings
            if self.stored is not None:
                self.stored.open()
                since = settings.get("TIANJIN_REVISIT_SINCE") or None
                self.revisit_since = date.fromisoformat(since) if since else None
                self.deep = settings.getbool("TIANJIN_CRAWL_DEEP", True)
                stats.set_value("incremental/mode", "deep" if self.deep else "incremental")
            else:
                stats.set_value("incremental/mode", "full")
            return
        if self.stored is not None:
            self.stored.open()
            self.revisit_since = await self.stored.revisit_since(self.revisit_days)
            # Stopping at known pages is safe only when the last crawl got to the end of what was
            # new; after a crawl that died half-way, read the whole listing (fetch only what's new).
            self.deep = not await self.stored.caught_up(stats.get_value("store/run_id"))
            stats.set_value("incremental/mode", "deep" if self.deep else "incremental")
        else:
            stats.set_value("incremental/mode", "full")
        yield self.start_request()

    def start_request(self) -> scrapy.Request:
        """The crawl's first request (the seeder of a distributed crawl queues it)."""
        return scrapy.Request(self.start_url, callback=self.parse_start, errback=self.start_failed)

    def start_failed(self, failure: Failure) -> None:
        url = failure.request.url  # type: ignore[attr-defined]
        kind = error_kind(failure)
        self._fail_start(
            kind,
            f"cannot fetch {url} ({kind}: {_one_line(failure)}); check the start URL and the network",
        )

    async def parse_start(self, response: Response) -> AsyncIterator[Any]:
        if not isinstance(response, TextResponse):
            self._fail_start("not_html", f"{response.url} is not an HTML page")
            return
        if parse_listing_url(response.url):
            async for request in self.parse_listing(response):
                yield request
            return
        if parse_article_url(response.url):
            for request in self._article_request(response.url, response):
                yield request
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
    async def parse_listing(self, response: Response) -> AsyncIterator[Any]:
        if not isinstance(response, TextResponse):
            return
        stats = self.crawler.stats
        stats.inc_value("spider/listing_pages")
        # Read here, not in the helper process: a listing page is what the crawl's supply of
        # work waits for (the next listing page and twenty articles), one page in twenty.
        listing = extract_listing(response.text, response.url)
        articles = [
            url
            for url in listing.article_urls
            if is_site_url(url, self.hosts) and parse_article_url(url)
        ]
        all_known = bool(articles)
        # A deep crawl reads the whole listing whatever is stored (the stop rule is off): the
        # next listing page is asked for now, while this page's articles are looked up. The
        # listing pages are the chain every article waits on.
        ahead = self.stored is not None and self.deep
        if ahead:
            for request in self._next_listing_pages(response, listing.listing_urls, False):
                yield request
        if self.stored is None:
            for url in articles:
                for request in self._article_request(url, response):
                    yield request
        else:
            keys = [ref.article_key for ref in map(parse_article_url, articles) if ref]
            try:
                known = await self.stored.lookup(keys)
            except StorageError as exc:
                # Without knowing what is stored the crawl cannot go on correctly: end it failed.
                stats.set_value("store/error", str(exc))
                stats.inc_value("spider/errors/database")
                raise CloseSpider("db_error") from exc
            for url in articles:
                ref = parse_article_url(url)
                assert ref is not None
                if ref.article_key in self.queued:
                    # Linked again (a "most read" box, a shifted listing): handled once per crawl.
                    continue
                fact = known.get(ref.article_key)
                self.queued.add(ref.article_key)
                if fact is None or not fact.complete:
                    all_known = False
                    for request in self._article_request(url, response):
                        yield request
                elif self.revisit_since is not None and fact.published_on >= self.revisit_since:
                    stats.inc_value("incremental/revisited")
                    validators = {
                        "If-None-Match": fact.etag,
                        "If-Modified-Since": fact.last_modified,
                    }
                    for request in self._article_request(url, response, validators):
                        yield request
                else:
                    stats.inc_value("incremental/skipped_known")
        if not ahead:
            for request in self._next_listing_pages(response, listing.listing_urls, all_known):
                yield request

    def _next_listing_pages(
        self, response: Response, pager: tuple[str, ...], all_known: bool
    ) -> Iterator[scrapy.Request]:
        linked = [
            (url, ref)
            for url in pager
            if (ref := parse_listing_url(url)) is not None and is_site_url(url, self.hosts)
        ]
        if self.stored is None:
            # A full crawl reads every listing page it can see, in parallel.
            for url, ref in linked:
                if not self.max_pages or ref.page <= self.max_pages:
                    yield scrapy.Request(
                        url, callback=self.parse_listing, errback=self.listing_failed
                    )
            return
        # Incremental: one page after the other, newest first, so the stop rule can hold and a
        # listing that shifts while we read it repeats articles instead of skipping them.
        here = parse_listing_url(response.url)
        current = here.page if here else 1
        last = max([response.meta.get("listing_last", 1), current, *(r.page for _, r in linked)])
        streak = response.meta.get("known_streak", 0) + 1 if all_known else 0
        stats = self.crawler.stats
        if streak >= self.stop_after_known and not self.deep:
            stats.set_value("incremental/stopped_at_page", current)
            stats.set_value("incremental/stop_reason", f"{streak} listing page(s) already stored")
            return
        yield from self._listing_request(response.url, current + 1, last, streak)

    def _listing_request(
        self, url: str, page: int, last: int, streak: int
    ) -> Iterator[scrapy.Request]:
        stats = self.crawler.stats
        if page > last:
            stats.set_value("incremental/stop_reason", "end of the listing")
            stats.set_value("incremental/reached_end", True)
            return
        if self.max_pages and page > self.max_pages:
            stats.set_value("incremental/stop_reason", f"--max-pages {self.max_pages}")
            return
        yield scrapy.Request(
            listing_page_url(url, page),
            callback=self.parse_listing,
            errback=self.listing_failed,
            # Listing pages before articles: the crawl learns what to fetch early.
            priority=10,
            meta={"listing_last": last, "known_streak": streak},
        )

    def listing_failed(self, failure: Failure) -> Iterator[scrapy.Request]:
        self.crawler.stats.inc_value(f"spider/errors/listing_{error_kind(failure)}")
        self.logger.warning("Listing page failed: %s", _one_line(failure))
        request = failure.request  # type: ignore[attr-defined]
        ref = parse_listing_url(request.url)
        if self.stored is not None and ref is not None:
            # A dead listing page must not end an incremental crawl: go on with the next one.
            yield from self._listing_request(
                request.url, ref.page + 1, request.meta.get("listing_last", 1), 0
            )

    # --- articles ------------------------------------------------------------------------------
    def _article_request(
        self, url: str, response: Response, validators: dict[str, str | None] | None = None
    ) -> Iterator[scrapy.Request]:
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
        meta: dict[str, Any] = {"article": assembly, "article_page": 1}
        headers = {k: v for k, v in (validators or {}).items() if v}
        if headers:
            meta["handle_httpstatus_list"] = [304]
        yield scrapy.Request(
            first,
            callback=self.parse_article,
            errback=self.article_failed,
            headers=headers or None,
            meta=meta,
        )

    async def _extract(self, read: Any, *args: Any) -> Any:
        """``read(*args)`` in the helper process while the reactor goes on downloading; here
        when there is no helper (or it went away: the page is read here, nothing is lost)."""
        helper = self.helper
        if helper is not None:
            try:
                return await helper.call_async(read, *args)
            except HelperGone as exc:
                if self.helper is not None:
                    self.helper = None
                    self.crawler.stats.inc_value("helper/lost")
                    self.logger.warning(
                        "%s: pages are read in the crawl's process from now on", exc
                    )
        return read(*args)

    async def parse_article(self, response: Response) -> list[Any]:
        # A coroutine returning a list, not an async generator: Scrapy then starts handling the
        # output only once the page is read, instead of its output workers waiting meanwhile.
        assembly: ArticleAssembly = response.meta["article"]
        page = response.meta.get("article_page", 1)
        if response.status == 304:
            self.crawler.stats.inc_value("incremental/not_modified")
            return [ArticleSeen(article_key=assembly.key, seen_at=datetime.now(UTC))]
        if not isinstance(response, TextResponse):
            return list(self._page_failed(assembly, page, "not_html"))
        if not response.body.strip():
            return list(self._page_failed(assembly, page, "empty_page"))
        extracted, body, has_paragraphs = await self._extract(
            read_article_page, response.body, response.encoding, response.url
        )
        readable = has_paragraphs or bool(extracted.images)
        if not readable or (page == 1 and not (extracted.title and extracted.published_on)):
            return list(self._page_failed(assembly, page, self._unreadable_kind(response)))
        if page == 1:
            assembly.etag = _header(response, b"ETag")
            assembly.last_modified = _header(response, b"Last-Modified")
        assembly.pages[page] = extracted
        assembly.bodies[page] = body
        known = [extracted.page_count or 1, page]
        known += [
            r.page
            for r in map(parse_article_url, extracted.page_links)
            if r and r.article_key == assembly.key
        ]
        assembly.page_count = max(assembly.page_count, *known)
        return list(self._continue(assembly, page))

    def _unreadable_kind(self, response: TextResponse) -> str:
        """Why a 200 page gave no article: the site's "not found" page, or a layout we cannot read."""
        text = " ".join(response.xpath("//body//text()").getall())
        if _NOT_FOUND_TEXT.search(text) and "Updated:" not in text:
            return "soft_404"
        self.crawler.stats.inc_value("spider/layout_drift")
        self.logger.error(
            "Cannot read the layout of %s: no title, date or body found", response.url
        )
        return "layout_drift"

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


def crawl_caught_up(values: Mapping[str, Any], *, max_pages: int, incremental: bool) -> bool:
    """Whether a crawl with these (final) stats leaves the database caught up with the listing:
    it read the listing down to known pages or to its end, and nothing cut it short."""
    cut_short = (
        bool(max_pages)
        or bool(values.get("spider_exceptions/count"))
        or bool(values.get("spider/start_failed"))
        or any(k.startswith("spider/errors/listing_") for k in values)
    )
    if not incremental:
        return not cut_short
    read_enough = values.get("incremental/reached_end") or values.get("incremental/stopped_at_page")
    return bool(read_enough) and not cut_short


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
        # Each page's body is normalised where it was read; joined, so is the article's (the
        # normalise pipeline then need not scan it again: crawler.text.NormalBody).
        body=join_bodies(
            [
                assembly.bodies[k] if k in assembly.bodies else page_body(list(page.paragraphs))
                for k, page in sorted(assembly.pages.items())
            ]
        ),
        page_count=assembly.page_count,
        pages_fetched=len(assembly.pages),
        complete=not assembly.failed and len(assembly.pages) == assembly.page_count,
        images=images,
        fetched_at=datetime.now(UTC),
        etag=assembly.etag,
        last_modified=assembly.last_modified,
    )


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1").strip() or None if value else None


def _one_line(failure: Failure) -> str:
    """The first line of the failure's message (its class name when it has none)."""
    lines = str(failure.value).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(failure.value).__name__
