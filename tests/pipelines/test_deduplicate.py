"""DeduplicatePipeline lets one article per key through in a crawl."""

from __future__ import annotations

import pytest
from scrapy import Spider
from scrapy.exceptions import DropItem
from scrapy.utils.test import get_crawler

from crawler.items import ArticleItem
from pipelines.deduplicate import DeduplicatePipeline


def test_second_item_with_the_same_key_is_dropped() -> None:
    pipeline = DeduplicatePipeline.from_crawler(get_crawler(Spider))
    first = ArticleItem(article_key="7", url="http://a.example/2024-01/01/c_7.htm")
    other = ArticleItem(article_key="8", url="http://a.example/2024-01/01/c_8.htm")
    again = ArticleItem(article_key="7", url="http://b.example/2024-01/01/c_7.htm")
    assert pipeline.process_item(first) is first
    assert pipeline.process_item(other) is other
    with pytest.raises(DropItem, match="same_key") as info:
        pipeline.process_item(again)
    assert info.value.log_level == "DEBUG"
    with pytest.raises(DropItem):
        pipeline.process_item({"article_key": "8", "url": "x"})
    assert pipeline.stats.get_stats() == {"deduplicate/dropped/same_key": 2}


def test_each_crawl_starts_afresh() -> None:
    item = ArticleItem(article_key="7", url="u")
    assert DeduplicatePipeline.from_crawler(get_crawler(Spider)).process_item(item) is item
    assert DeduplicatePipeline.from_crawler(get_crawler(Spider)).process_item(item) is item
