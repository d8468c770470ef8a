"""NormalisePipeline cleans text and URLs."""

from __future__ import annotations

from datetime import date

from crawler.items import ArticleItem, ImageItem
from pipelines.normalise import NormalisePipeline, canonical_url, normalise_body


def test_article_item_is_normalised() -> None:
    item = ArticleItem(
        article_key="101",
        url="http://www.exploringtianjin.com/2024-05/01/c_101_3.htm?from=list#top",
        title="  Tianjin&nbsp;port \u00a0 grows ",
        source="  chinadaily.com.cn\u200b ",
        published_on=date(2024, 5, 1),
        body=" First\u00a0 paragraph. \n\n\n\n  \n\nSecond &amp; last.\n",
        images=[
            ImageItem(
                position=1, url="http://img.example/a.jpg#zoom", caption=" [Photo/Xinhua]\u3000"
            ),
            ImageItem(position=2, url="http://img.example/b.jpg?size=2", caption="   "),
        ],
    )
    assert NormalisePipeline().process_item(item) is item
    assert item.title == "Tianjin port grows"
    assert item.source == "chinadaily.com.cn"
    assert item.body == "First paragraph.\n\nSecond & last."
    assert item.url == "http://www.exploringtianjin.com/2024-05/01/c_101.htm"
    assert [(i.url, i.caption) for i in item.images] == [
        ("http://img.example/a.jpg", "[Photo/Xinhua]"),
        ("http://img.example/b.jpg?size=2", None),
    ]


def test_empty_source_becomes_none_and_is_idempotent() -> None:
    item = ArticleItem(
        article_key="1",
        url="http://h.example/2024-05/01/c_1.htm",
        title="T",
        source=" \u00a0",
        body="b",
    )
    pipeline = NormalisePipeline()
    pipeline.process_item(item)
    assert item.source is None
    snapshot = ArticleItem(**vars(item))
    pipeline.process_item(item)
    assert item == snapshot


def test_dict_items() -> None:
    item = {
        "article_key": "5",
        "url": "https://regional.chinadaily.com.cn/tianjin/2024-05/01/c_5_2.htm",
        "title": "A\tB",
        "body": "x",
        "images": [{"position": 1, "url": "http://i.example/x.png#f", "caption": ""}],
    }
    NormalisePipeline().process_item(item)
    assert item["url"] == "https://regional.chinadaily.com.cn/tianjin/2024-05/01/c_5.htm"
    assert item["title"] == "A B"
    assert "source" not in item
    assert item["images"] == [{"position": 1, "url": "http://i.example/x.png", "caption": None}]


def test_canonical_url_of_other_shapes() -> None:
    assert canonical_url("http://h.example/page.htm?x=1#y") == "http://h.example/page.htm"
    assert (
        canonical_url("http://h.example/2024-05/01/c_9_2.htm")
        == "http://h.example/2024-05/01/c_9.htm"
    )


def test_normalise_body() -> None:
    assert normalise_body(None) == ""
    assert normalise_body("  \n\n ") == ""
    assert normalise_body("a\nb\n\nc") == "a b\n\nc"
