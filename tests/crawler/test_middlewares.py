"""Backoff of retried requests; robots.txt obeyed by every request that waited for it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import TextResponse
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawler.middlewares import RobotsTxtMiddleware, backoff_delay, retry_after_seconds


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(n, 2.0, 60.0) for n in (1, 2, 3, 6)] == [2.0, 4.0, 8.0, 60.0]
    assert backoff_delay(3, 0, 60.0) == 0.0


def test_retry_after_wins_when_longer_but_stays_capped() -> None:
    assert backoff_delay(1, 1.0, 60.0, retry_after=7.0) == 7.0
    assert backoff_delay(1, 1.0, 60.0, retry_after=3600.0) == 60.0
    assert backoff_delay(1, 0, 60.0, retry_after=5.0) == 5.0


def test_retry_after_header_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(b"120") == 120.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


class _RobotsEngine:
    """Serves robots.txt to the middleware after a pause, as a download in flight would."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.downloads = 0

    async def download_async(self, request: Request) -> TextResponse:
        self.downloads += 1
        await asyncio.sleep(0.05)
        return TextResponse(request.url, body=self.body, encoding="utf-8", request=request)


@pytest.mark.parametrize("waiting", [1, 2, 5])
def test_every_request_waiting_for_robots_txt_obeys_it(waiting: int) -> None:
    crawler = get_crawler(settings_dict={"ROBOTSTXT_OBEY": True, "USER_AGENT": "tianjin-updates"})
    crawler.stats = MemoryStatsCollector(crawler)
    engine = _RobotsEngine(b"User-agent: *\nDisallow: /private/\n")
    crawler.engine = engine  # type: ignore[assignment]
    middleware = RobotsTxtMiddleware.from_crawler(crawler)

    async def check(url: str) -> str:
        try:
            await middleware.process_request(Request(url))
        except IgnoreRequest:
            return "refused"
        return "allowed"

    async def main() -> list[str]:
        # All arrive before robots.txt is in: they wait for the same download.
        urls = [f"http://site.example/private/{i}.htm" for i in range(waiting)]
        return list(await asyncio.gather(check("http://site.example/ok"), *map(check, urls)))

    assert asyncio.run(main()) == ["allowed"] + ["refused"] * waiting
    assert engine.downloads == 1
