"""Bare Scrapy: request a fixed list of URLs with the project's settings, and do nothing else.

The framework's floor for ``tianjin-updates crawl``: the same pages, the same downloader
middlewares (robots.txt, retries, redirects, compression), the same concurrency; callbacks that
return nothing, no item pipelines, no extraction, no database. Prints one JSON line of stats.

``python -m bench.bare --urls FILE -s NAME=VALUE ...`` (one URL a line).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response

from crawler.runner import build_settings, parse_setting_options


class BareSpider(scrapy.Spider):
    """Requests every URL of ``urls``; the callback ignores the response."""

    name = "bench_bare"

    def __init__(self, urls: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = urls

    async def start(self) -> AsyncIterator[Any]:
        for url in self.urls:
            yield scrapy.Request(url, callback=self.parse, errback=self.failed)

    def parse(self, response: Response) -> None:
        return None

    def failed(self, failure: Any) -> None:
        self.crawler.stats.inc_value("bench/failed")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", required=True, help="file with one URL a line")
    parser.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    with open(args.urls, encoding="utf-8") as f:
        urls = [line.strip() for line in f if line.strip()]
    overrides: dict[str, Any] = dict(parse_setting_options(args.set))
    # Nothing but the download: no pipelines (no storage), no extensions of ours.
    overrides.update({"ITEM_PIPELINES": {}, "EXTENSIONS": {}, "LOG_LEVEL": "WARNING"})
    process = CrawlerProcess(build_settings(overrides))
    crawler = process.create_crawler(BareSpider)
    started = time.monotonic()
    process.crawl(crawler, urls=urls)
    process.start()
    wall = time.monotonic() - started
    stats = crawler.stats.get_stats() if crawler.stats else {}
    print(
        json.dumps(
            {
                "elapsed_s": float(stats.get("elapsed_time_seconds", wall)),
                "wall_s": wall,
                "requests": int(stats.get("downloader/request_count", 0)),
                "responses": int(stats.get("response_received_count", 0)),
                "failed": int(stats.get("bench/failed", 0)),
                "robots_forbidden": int(stats.get("robotstxt/forbidden", 0)),
                "finish_reason": str(stats.get("finish_reason")),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
