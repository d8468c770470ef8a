"""Downloader middleware: Scrapy's retries, with exponential backoff and Retry-After; redirect
loops reported as errors; Scrapy's robots.txt middleware with every waiting request obeying."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from scrapy.downloadermiddlewares.redirect import (
    MetaRefreshMiddleware as ScrapyMetaRefreshMiddleware,
)
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware as ScrapyRedirectMiddleware
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.response import response_status_message
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response


def retry_after_seconds(value: str | bytes | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), None if unusable."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_delay(
    retry_number: int, base: float, cap: float, retry_after: float | None = None
) -> float:
    """Wait before retry ``retry_number`` (1-based): ``base * 2**(n-1)``, at least Retry-After, at most ``cap``."""
    if base <= 0 and retry_after is None:
        return 0.0
    delay = base * (2 ** (retry_number - 1)) if base > 0 else 0.0
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, cap)


class BackoffRetryMiddleware(RetryMiddleware):
    """Retry like Scrapy does, but wait longer before each further try (and honour Retry-After).

    The wait happens inside the download chain, so the retried request does not return to the
    scheduler early and the host is not hammered while it is failing.
    """

    def __init__(self, settings: Any, backoff: float = 2.0, backoff_max: float = 60.0) -> None:
        super().__init__(settings)
        self.backoff = backoff
        self.backoff_max = backoff_max

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        s = crawler.settings
        o = cls(
            s,
            backoff=s.getfloat("TIANJIN_RETRY_BACKOFF", 2.0),
            backoff_max=s.getfloat("TIANJIN_RETRY_BACKOFF_MAX", 60.0),
        )
        o.crawler = crawler
        return o

    async def _wait(self, retry: Request, retry_after: float | None) -> None:
        delay = backoff_delay(
            retry.meta.get("retry_times", 1), self.backoff, self.backoff_max, retry_after
        )
        if delay > 0:
            await asyncio.sleep(delay)

    async def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        await self._wait(retry, retry_after_seconds(response.headers.get("Retry-After")))
        return retry

    async def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception
    ) -> Request | Response | None:
        if request.meta.get("dont_retry", False) or not isinstance(
            exception, self.exceptions_to_retry
        ):
            return None
        retry = self._retry(request, exception)
        if retry is not None:
            await self._wait(retry, None)
        return retry


class RedirectLoopMiddleware:
    """Turn a redirect back to a URL already on the request's redirect chain into an error.

    Scrapy would schedule that redirect and its duplicate filter would drop it silently; the
    spider then never hears of the page. Raising ``IgnoreRequest`` reaches its errback instead,
    so the page is counted (``redirect_loop``). Placed after Scrapy's RedirectMiddleware (a
    higher number: responses travel from high to low) so it sees the 3xx first.
    """

    def process_response(self, request: Request, response: Response) -> Response:
        if response.status not in (301, 302, 303, 307, 308) or b"Location" not in response.headers:
            return response
        from scrapy.exceptions import IgnoreRequest
        from w3lib.url import safe_url_string

        location = safe_url_string(response.headers[b"Location"].decode("latin-1"))
        target = urljoin(request.url, location)
        chain = [*request.meta.get("redirect_urls", []), request.url]
        if target in chain:
            raise IgnoreRequest(f"redirect loop: {request.url} -> {target}")
        return response


class _RefererOptional:
    """Scrapy's redirect middlewares warn, on every crawl, that no Referer spider middleware is
    there to set a redirected request's Referer header. This crawl sends none on purpose
    (``REFERER_ENABLED = False``): they then just drop the header, without the warning."""

    crawler: Any

    def _engine_started(self) -> None:
        if self.crawler.settings.getbool("REFERER_ENABLED"):
            super()._engine_started()  # type: ignore[misc]


class RedirectMiddleware(_RefererOptional, ScrapyRedirectMiddleware):
    """Scrapy's, without the warning about a Referer middleware this crawl turns off."""


class MetaRefreshMiddleware(_RefererOptional, ScrapyMetaRefreshMiddleware):
    """Scrapy's, without the warning about a Referer middleware this crawl turns off."""


class RobotsTxtMiddleware(ScrapyRobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, fixed for requests that wait together for one robots.txt.

    Since Scrapy 2.13 each request that arrives while a host's robots.txt is being fetched waits
    on the same Deferred through ``maybe_deferred_to_future``, whose callback passes ``None`` on:
    only the first waiter gets the parser, every other one is let through as if the host had no
    robots.txt. A crawl that starts with many requests at once (a worker of a distributed crawl
    taking requests from the shared queue) would fetch disallowed pages. Once the wait is over
    the parser (or ``None`` after a failed fetch) is in ``_parsers``: read it from there.
    """

    async def robot_parser(self, request: Request) -> Any:
        parser = await super().robot_parser(request)
        stored = self._parsers.get(urlparse_cached(request).netloc, parser)
        return parser if isinstance(stored, Deferred) else stored
