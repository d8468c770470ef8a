"""Run one real Scrapy crawl whose spider yields given items, then print its stats as JSON.

Used by the pipeline tests in a subprocess (a Twisted reactor runs once per process):
``python tests/pipelines/crawl_items.py SPEC.json`` with ``{"settings": {...}, "items": [...]}``;
an item is a dict of ``ArticleItem`` fields (``published_on`` ISO, images as dicts).
"""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import CrawlerProcess

from crawler.items import ArticleItem, ImageItem

PIPELINES = {
    "pipelines.normalise.NormalisePipeline": 100,
    "pipelines.validate.ValidatePipeline": 200,
    "pipelines.deduplicate.DeduplicatePipeline": 300,
    "pipelines.store.StorePipeline": 900,
}


def to_item(data: dict[str, Any]) -> ArticleItem:
    fields = dict(data)
    if fields.get("published_on"):
        fields["published_on"] = date.fromisoformat(fields["published_on"])
    fields["images"] = [ImageItem(**image) for image in fields.get("images", [])]
    return ArticleItem(**fields)


class ItemsSpider(Spider):
    """Yields the given items from the callback of one ``data:`` request: no network at all.

    (Not from ``start()``: Scrapy 2.19 hangs when a crawl is closed early, e.g. by
    CLOSESPIDER_ITEMCOUNT, while items from ``start()`` are being processed.)
    """

    name = "items"

    def __init__(self, items: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.items = items

    async def start(self):  # type: ignore[override]
        yield Request("data:,", callback=self.parse_items, dont_filter=True)

    def parse_items(self, response: Any):  # type: ignore[no-untyped-def]
        for data in self.items:
            yield to_item(data)


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        spec = json.load(file)
    settings = {
        "ITEM_PIPELINES": PIPELINES,
        "LOG_LEVEL": "INFO",
        "TELNETCONSOLE_ENABLED": False,
        **spec.get("settings", {}),
    }
    process = CrawlerProcess(settings, install_root_handler=True)
    crawler = process.create_crawler(ItemsSpider)
    process.crawl(crawler, items=spec["items"])
    process.start()
    stats = {
        k: (v.isoformat() if hasattr(v, "isoformat") else v)
        for k, v in crawler.stats.get_stats().items()
    }
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
