"""A Scrapy extension that prints one progress line every few seconds while a crawl runs."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from scrapy import signals
from scrapy.exceptions import NotConfigured

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler


def progress_line(stats: dict[str, Any], elapsed: float) -> str:
    """One line on how far the crawl is: pages, articles stored, errors, speed."""
    pages = int(stats.get("response_received_count", 0))
    new = int(stats.get("store/articles_new", 0))
    updated = int(stats.get("store/articles_updated", 0))
    unchanged = int(stats.get("store/articles_unchanged", 0))
    errors = sum(int(v) for k, v in stats.items() if k.startswith("spider/errors/"))
    rate = pages / elapsed if elapsed > 0 else 0.0
    return (
        f"[{elapsed:6.0f}s] {pages} pages ({rate:.1f}/s), listing pages {int(stats.get('spider/listing_pages', 0))}, "
        f"articles stored {new + updated + unchanged} (new {new}, updated {updated}, unchanged {unchanged}), "
        f"errors {errors}"
    )


class ProgressReporter:
    """Writes ``progress_line`` to stderr every ``TIANJIN_PROGRESS_INTERVAL`` seconds (0: off)."""

    def __init__(self, crawler: Crawler, interval: float, stream: TextIO | None = None) -> None:
        self.crawler = crawler
        self.interval = interval
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self._task: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        interval = crawler.settings.getfloat("TIANJIN_PROGRESS_INTERVAL", 0)
        if interval <= 0:
            raise NotConfigured
        ext = cls(crawler, interval)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self) -> None:
        from twisted.internet import task

        self.started = time.monotonic()
        self._task = task.LoopingCall(self.report)
        self._task.start(self.interval, now=False)

    def report(self) -> None:
        assert self.crawler.stats is not None
        print(
            progress_line(self.crawler.stats.get_stats(), time.monotonic() - self.started),
            file=self.stream,
            flush=True,
        )

    def spider_closed(self) -> None:
        if self._task is not None and self._task.running:
            self._task.stop()
