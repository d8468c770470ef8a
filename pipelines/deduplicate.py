"""Drop a second article with the same key within one crawl.

Content duplicates (a re-post: the same or nearly the same title and body under another key)
are not dropped here but stored and marked by the repository (``duplicate_of``,
``near_duplicate_of``), in the transaction that writes them: only the database knows the
earlier articles of other crawls, and only a write under its lock decides race-free which
article is the original when two crawls store re-posts at once. The MinHash signature that
finds near-duplicates is computed in the store pipeline's worker thread, off the reactor, just
before the write (``Repository.sign``): an item carries no field for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector


class DeduplicatePipeline:
    """Let the first article of each ``article_key`` through in a crawl and drop the others.

    Only this crawl's keys are remembered (and forgotten with it): across crawls an article is
    identified by the database's UNIQUE key, so an edited article is still fetched and updated.
    """

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats
        self.seen: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.stats)

    def process_item(self, item: Any) -> Any:
        key = str(ItemAdapter(item).get("article_key"))
        if key in self.seen:
            self.stats.inc_value("deduplicate/dropped/same_key")
            # A duplicate is expected (an article linked from two listings): not worth a warning.
            raise DropItem(
                f"same_key: article {key!r} already scraped in this crawl", log_level="DEBUG"
            )
        self.seen.add(key)
        return item
