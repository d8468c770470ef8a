"""Drop articles that cannot be stored: no key, no title, no date or no body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

from crawler.items import ArticleSeen

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class ValidatePipeline:
    """Drop an article without a key, title, publication date or body, counting each reason."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.stats)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, ArticleSeen):  # no content to check: the server said "unchanged"
            return item
        adapter = ItemAdapter(item)
        reason = self.problem(adapter)
        if reason is not None:
            self.stats.inc_value(f"validate/dropped/{reason}")
            raise DropItem(
                f"{reason}: article {adapter.get('article_key')!r} at {adapter.get('url')}"
            )
        return item

    @staticmethod
    def problem(adapter: ItemAdapter) -> str | None:
        """The reason an article is unfit to store (``no_key``, ``no_title``, ``no_date``,
        ``no_body``), or None."""
        if _blank(adapter.get("article_key")):
            return "no_key"
        if _blank(adapter.get("title")):
            return "no_title"
        if adapter.get("published_on") in (None, ""):
            return "no_date"
        if _blank(adapter.get("body")):
            return "no_body"
        return None
