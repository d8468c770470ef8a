"""ValidatePipeline drops unstorable articles and counts why."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from scrapy import Spider
from scrapy.exceptions import DropItem
from scrapy.utils.test import get_crawler

from crawler.items import ArticleItem
from pipelines.validate import ValidatePipeline


def article(**changes: Any) -> ArticleItem:
    fields: dict[str, Any] = {
        "article_key": "101",
        "url": "http://www.exploringtianjin.com/2024-05/01/c_101.htm",
        "title": "A headline",
        "published_on": date(2024, 5, 1),
        "body": "A paragraph.",
    }
    fields.update(changes)
    return ArticleItem(**fields)


@pytest.fixture
def pipeline() -> ValidatePipeline:
    return ValidatePipeline.from_crawler(get_crawler(Spider))


def test_a_complete_article_passes_unchanged(pipeline: ValidatePipeline) -> None:
    item = article()
    assert pipeline.process_item(item) is item
    assert pipeline.stats.get_stats() == {}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"title": None}, "no_title"),
        ({"title": "  \u00a0 "}, "no_title"),
        ({"published_on": None}, "no_date"),
        ({"body": ""}, "no_body"),
        ({"body": " \n\n "}, "no_body"),
        ({"article_key": ""}, "no_key"),
    ],
)
def test_drops_with_reason_and_counts(
    pipeline: ValidatePipeline, changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(DropItem, match=f"^{reason}: article"):
        pipeline.process_item(article(**changes))
    with pytest.raises(DropItem):
        pipeline.process_item(article(**changes))
    assert pipeline.stats.get_stats() == {f"validate/dropped/{reason}": 2}


def test_first_problem_wins(pipeline: ValidatePipeline) -> None:
    with pytest.raises(DropItem, match="^no_title"):
        pipeline.process_item(article(title="", body=""))
    assert pipeline.stats.get_stats() == {"validate/dropped/no_title": 1}


def test_dict_items(pipeline: ValidatePipeline) -> None:
    item = {"article_key": "1", "url": "u", "title": "t", "published_on": "2024-05-01", "body": "b"}
    assert pipeline.process_item(item) is item
    with pytest.raises(DropItem, match="^no_date"):
        pipeline.process_item({"article_key": "1", "url": "u", "title": "t", "body": "b"})
