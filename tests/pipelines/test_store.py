"""StorePipeline: settings, batches, crawl runs, failures; driven by hand and by real crawls."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from crawler.items import ArticleItem, ArticleSeen, ImageItem
from pipelines.store import (
    StorePipeline,
    article_record,
    articles_stored,
    json_safe,
    run_status,
)
from storage.db import StorageError, make_engine
from storage.repository import ArticleRecord, ImageRecord, Repository

REPO_ROOT = Path(__file__).resolve().parents[2]


def article(key: str, **changes: Any) -> ArticleItem:
    fields: dict[str, Any] = {
        "article_key": key,
        "url": f"http://www.exploringtianjin.com/2024-05/01/c_{key}.htm",
        "title": f"Title {key}",
        "source": "chinadaily.com.cn",
        "published_on": date(2024, 5, 1),
        "body": f"Body of {key}.",
        "images": [ImageItem(position=1, url=f"http://img.example/{key}.jpg", caption="[Photo]")],
    }
    fields.update(changes)
    return ArticleItem(**fields)


def make_crawler(db_url: str, **settings: Any) -> Crawler:
    return get_crawler(Spider, {"TIANJIN_UPDATES_DB": db_url, **settings})


def read_repo(db_url: str, read: Callable[[Repository], Any]) -> Any:
    engine = make_engine(db_url)
    try:
        return read(Repository(engine))
    finally:
        engine.dispose()


async def close(crawler: Crawler, pipeline: StorePipeline, reason: str = "finished") -> None:
    """What the engine does at the end of a crawl: close the pipelines, then spider_closed."""
    await pipeline.close_spider()
    await crawler.signals.send_catch_log_async(
        signal=signals.spider_closed, spider=Spider(name="test"), reason=reason
    )


def run(coroutine: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coroutine())  # type: ignore[arg-type]


# --- settings -----------------------------------------------------------------------------------


def test_settings_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIANJIN_UPDATES_DB", raising=False)
    pipeline = StorePipeline.from_crawler(get_crawler(Spider))
    assert pipeline.database_url == "sqlite:///tianjin_updates.sqlite3"
    assert (pipeline.batch_size, pipeline.flush_seconds, pipeline.trigger) == (50, 5.0, "manual")
    assert (pipeline.near_duplicate_threshold, pipeline.minhash_permutations) == (0.8, 128)

    monkeypatch.setenv("TIANJIN_UPDATES_DB", "sqlite:///from-env.sqlite3")
    assert (
        StorePipeline.from_crawler(get_crawler(Spider)).database_url == "sqlite:///from-env.sqlite3"
    )
    pipeline = StorePipeline.from_crawler(
        get_crawler(
            Spider,
            {
                "TIANJIN_UPDATES_DB": "sqlite:///from-setting.sqlite3",
                "TIANJIN_BATCH_SIZE": "7",
                "TIANJIN_FLUSH_SECONDS": "0.5",
                "TIANJIN_TRIGGER": "schedule",
                "TIANJIN_NEAR_DUPLICATE_THRESHOLD": "0.9",
                "TIANJIN_MINHASH_PERMUTATIONS": "64",
            },
        )
    )
    assert pipeline.database_url == "sqlite:///from-setting.sqlite3"  # the setting wins
    assert (pipeline.batch_size, pipeline.flush_seconds, pipeline.trigger) == (7, 0.5, "schedule")
    assert (pipeline.near_duplicate_threshold, pipeline.minhash_permutations) == (0.9, 64)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"TIANJIN_BATCH_SIZE": 0}, "TIANJIN_BATCH_SIZE"),
        ({"TIANJIN_FLUSH_SECONDS": -1}, "TIANJIN_FLUSH_SECONDS"),
        ({"TIANJIN_TRIGGER": "cron"}, "TIANJIN_TRIGGER"),
        ({"TIANJIN_NEAR_DUPLICATE_THRESHOLD": 0}, "TIANJIN_NEAR_DUPLICATE_THRESHOLD"),
        ({"TIANJIN_NEAR_DUPLICATE_THRESHOLD": 1.5}, "TIANJIN_NEAR_DUPLICATE_THRESHOLD"),
        ({"TIANJIN_MINHASH_PERMUTATIONS": 8}, "TIANJIN_MINHASH_PERMUTATIONS"),
    ],
)
def test_bad_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StorePipeline.from_crawler(get_crawler(Spider, settings))


def test_switched_off() -> None:
    with pytest.raises(NotConfigured):
        StorePipeline.from_crawler(get_crawler(Spider, {"TIANJIN_STORE_ENABLED": False}))


# --- conversions ----------------------------------------------------------------------------------


def test_article_record_from_item_and_dict() -> None:
    item = article("5", complete=False, page_count=3, source=None)
    expected = ArticleRecord(
        article_key="5",
        url="http://www.exploringtianjin.com/2024-05/01/c_5.htm",
        title="Title 5",
        source=None,
        published_on=date(2024, 5, 1),
        body="Body of 5.",
        page_count=3,
        complete=False,
        images=[ImageRecord(1, "http://img.example/5.jpg", "[Photo]")],
    )
    assert article_record(item) == expected
    as_dict = {
        "article_key": 5,
        "url": expected.url,
        "title": "Title 5",
        "published_on": "2024-05-01",
        "body": "Body of 5.",
        "page_count": 3,
        "complete": False,
        "images": [{"position": "1", "url": "http://img.example/5.jpg", "caption": "[Photo]"}],
        "fetched_at": datetime.now(UTC),  # not stored
    }
    assert article_record(as_dict) == expected


def test_json_safe() -> None:
    when = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert json_safe(
        {
            "start_time": when,
            "day": date(2024, 5, 1),
            "elapsed": timedelta(seconds=1.5),
            "n": 3,
            "ratio": 0.5,
            "inf": float("inf"),
            "nested": {"set": {"b", "a"}, "tuple": (1, None, True)},
            "other": Path("/x"),
        }
    ) == {
        "start_time": "2024-05-01T08:00:00+00:00",
        "day": "2024-05-01",
        "elapsed": 1.5,
        "n": 3,
        "ratio": 0.5,
        "inf": "inf",
        "nested": {"set": ["a", "b"], "tuple": [1, None, True]},
        "other": "/x",
    }


@pytest.mark.parametrize(
    ("reason", "errors", "status"),
    [
        ("finished", 0, "succeeded"),
        ("closespider_itemcount", 0, "succeeded"),
        ("shutdown", 0, "interrupted"),
        ("db_error", 0, "failed"),
        ("cancelled", 0, "failed"),
        ("finished", 1, "failed"),
        ("shutdown", 2, "failed"),
    ],
)
def test_run_status(reason: str, errors: int, status: str) -> None:
    assert run_status(reason, errors) == status


# --- a crawl driven by hand -------------------------------------------------------------------------


def test_batches_runs_and_stats(db_url: str) -> None:
    crawler = make_crawler(db_url, TIANJIN_BATCH_SIZE=2, TIANJIN_FLUSH_SECONDS=0)
    pipeline = StorePipeline.from_crawler(crawler)
    stats = crawler.stats

    async def crawl() -> None:
        await pipeline.open_spider()
        run_id = stats.get_value("store/run_id")
        assert isinstance(run_id, int)
        runs = read_repo(db_url, lambda r: r.recent_runs(5))
        assert [(r.id, r.status, r.trigger) for r in runs] == [(run_id, "running", "manual")]
        stats.set_value("start_time", datetime(2024, 5, 1, 8, 0, tzinfo=UTC))

        items = [article(str(n)) for n in range(1, 6)]
        items[2].complete = False
        for n, item in enumerate(items, 1):
            assert await pipeline.process_item(item) is item
            # full batches are written at once
            assert read_repo(db_url, Repository.count_articles) == n - n % 2
        await close(crawler, pipeline)

    run(crawl)
    assert read_repo(db_url, Repository.count_articles) == 5
    assert stats.get_value("store/batches") == 3
    assert stats.get_value("store/articles_new") == 5
    assert stats.get_value("store/articles_updated") == 0
    assert stats.get_value("store/articles_unchanged") == 0
    assert stats.get_value("store/articles_incomplete") == 1
    assert stats.get_value("store/versions") == 5
    assert stats.get_value("store/articles_duplicate") == 0
    assert stats.get_value("store/articles_near_duplicate") == 0
    assert stats.get_value("store/errors") == 0
    [last] = read_repo(db_url, lambda r: r.recent_runs(1))
    assert last.status == "succeeded" and last.finished_at is not None
    assert last.stats["store/articles_new"] == 5
    summary = last.stats["summary"]
    assert summary["articles"]["new"] == 5 and summary["articles"]["incomplete"] == 1
    assert summary["articles"]["versions"] == 5 and summary["errors"] == {"store": 0}
    assert summary["duration_seconds"] is not None and summary["duration_seconds"] >= 0
    # every version records the run that wrote it
    versions = read_repo(db_url, lambda r: r.versions("1"))
    assert [(v.version, v.crawl_run_id) for v in versions] == [(1, last.id)]
    assert last.stats["store/run_id"] == last.id
    assert last.stats["finish_reason"] == "finished"
    assert last.stats["start_time"] == "2024-05-01T08:00:00+00:00"
    assert pipeline._engine is None  # disposed
    stored = read_repo(db_url, lambda r: r.get_article("3"))
    assert stored.complete is False and stored.images == [
        ImageRecord(1, "http://img.example/3.jpg", "[Photo]")
    ]


def test_second_crawl_counts_unchanged_and_updated(db_url: str) -> None:
    async def crawl(items: list[ArticleItem], crawler: Crawler) -> None:
        pipeline = StorePipeline.from_crawler(crawler)
        await pipeline.open_spider()
        for item in items:
            await pipeline.process_item(item)
        await close(crawler, pipeline)

    first = make_crawler(db_url)
    asyncio.run(crawl([article("1"), article("2")], first))
    second = make_crawler(db_url, TIANJIN_TRIGGER="schedule")
    asyncio.run(crawl([article("1"), article("2", title="Edited"), article("3")], second))
    counts = {k: v for k, v in second.stats.get_stats().items() if k.startswith("store/articles_")}
    assert counts == {
        "store/articles_new": 1,
        "store/articles_updated": 1,
        "store/articles_unchanged": 1,
        "store/articles_duplicate": 0,
        "store/articles_near_duplicate": 0,
        "store/articles_remarked": 0,
        "store/articles_incomplete": 0,
    }
    assert second.stats.get_value("store/versions") == 2
    runs = read_repo(db_url, lambda r: r.recent_runs(5))
    assert [(v.version, v.crawl_run_id) for v in read_repo(db_url, lambda r: r.versions("2"))] == [
        (1, runs[1].id),
        (2, runs[0].id),
    ]
    runs = read_repo(db_url, lambda r: r.recent_runs(5))
    assert [(r.trigger, r.status) for r in runs] == [
        ("schedule", "succeeded"),
        ("manual", "succeeded"),
    ]


def long_body(seed: int, changed: bool = False) -> str:
    words = [f"w{(seed * 7919 + n * 104729) % 100003}" for n in range(400)]
    if changed:
        words[200:212] = [f"new{n}" for n in range(12)]
    return "\n\n".join(" ".join(words[i : i + 40]) + "." for i in range(0, 400, 40))


def test_reposts_are_stored_marked_and_counted(db_url: str) -> None:
    crawler = make_crawler(db_url, TIANJIN_BATCH_SIZE=2, TIANJIN_FLUSH_SECONDS=0)
    pipeline = StorePipeline.from_crawler(crawler)

    async def crawl() -> None:
        await pipeline.open_spider()
        for item in (
            article("30", body=long_body(1), published_on=date(2024, 5, 2)),
            article("40", title="Title 30", body=long_body(1), published_on=date(2024, 5, 3)),
            article(
                "20", title="Other", body=long_body(1, changed=True), published_on=date(2024, 5, 4)
            ),
            article("10", title="Title 30", body=long_body(1)),  # the earliest: 2024-05-01
            article("50", body=long_body(2)),
        ):
            await pipeline.process_item(item)
        await close(crawler, pipeline)

    run(crawl)
    stats = crawler.stats
    assert stats.get_value("store/articles_new") == 5
    # Counted as marked when saved: "40" a re-post of "30"; then "10", the earliest, came and
    # "30" and "40" were re-marked (re-posts of "10") in its batch.
    assert stats.get_value("store/articles_duplicate") == 1
    assert stats.get_value("store/articles_near_duplicate") == 1
    assert stats.get_value("store/articles_remarked") == 2
    stored = {a.article_key: a for a in read_repo(db_url, lambda r: list(r.iter_changes()))}
    marks = {key: (a.duplicate_of, a.near_duplicate_of) for key, a in stored.items()}
    assert marks == {
        "10": (None, None),
        "20": (None, "10"),
        "30": ("10", None),
        "40": ("10", None),
        "50": (None, None),
    }
    [last] = read_repo(db_url, lambda r: r.recent_runs(1))
    assert last.stats["summary"]["articles"]["duplicate"] == 1


def test_an_old_batch_is_flushed_without_more_items(sqlite_url: str) -> None:
    crawler = make_crawler(sqlite_url, TIANJIN_FLUSH_SECONDS=0.1)
    pipeline = StorePipeline.from_crawler(crawler)

    async def crawl() -> None:
        await pipeline.open_spider()
        await pipeline.process_item(article("1"))
        assert read_repo(sqlite_url, Repository.count_articles) == 0
        for _ in range(100):
            await asyncio.sleep(0.02)
            if crawler.stats.get_value("store/batches"):
                break
        assert read_repo(sqlite_url, Repository.count_articles) == 1
        await pipeline.process_item(article("2"))
        await close(crawler, pipeline)

    run(crawl)
    assert read_repo(sqlite_url, Repository.count_articles) == 2
    assert crawler.stats.get_value("store/batches") == 2


def test_a_lone_not_modified_answer_is_recorded_without_more_items(sqlite_url: str) -> None:
    # A 304 that arrives after the last article of a crawl must not wait for the crawl's end: a
    # distributed crawl cannot end while the request behind it is not recorded.
    crawler = make_crawler(sqlite_url, TIANJIN_FLUSH_SECONDS=0.1)
    pipeline = StorePipeline.from_crawler(crawler)
    stored: list[list[str]] = []
    crawler.signals.connect(
        lambda keys: stored.append(list(keys)), signal=articles_stored, weak=False
    )

    async def crawl() -> None:
        await pipeline.open_spider()
        await pipeline.process_item(article("1"))
        await pipeline._flush()
        await pipeline.process_item(ArticleSeen(article_key="1", seen_at=datetime.now(UTC)))
        for _ in range(100):
            await asyncio.sleep(0.02)
            if len(stored) == 2:
                break
        assert stored == [["1"], ["1"]]
        assert crawler.stats.get_value("store/articles_unchanged") == 1
        await close(crawler, pipeline)

    run(crawl)


@pytest.mark.parametrize(
    ("reason", "status"), [("shutdown", "interrupted"), ("cancelled", "failed")]
)
def test_run_status_follows_the_finish_reason(sqlite_url: str, reason: str, status: str) -> None:
    crawler = make_crawler(sqlite_url)
    pipeline = StorePipeline.from_crawler(crawler)

    async def crawl() -> None:
        await pipeline.open_spider()
        await pipeline.process_item(article("1"))
        await close(crawler, pipeline, reason)

    run(crawl)
    [last] = read_repo(sqlite_url, lambda r: r.recent_runs(1))
    assert (last.status, last.stats["finish_reason"]) == (status, reason)
    assert read_repo(sqlite_url, Repository.count_articles) == 1  # the batch was still saved


def test_a_failed_save_is_counted_logged_and_fails_the_run(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    crawler = make_crawler(db_url)
    pipeline = StorePipeline.from_crawler(crawler)

    async def crawl() -> None:
        await pipeline.open_spider()
        await pipeline.process_item(article("1"))
        await pipeline.process_item(article("2", body=None))  # NOT NULL: the batch fails
        with caplog.at_level(logging.ERROR, logger="pipelines.store"):
            await close(crawler, pipeline, "finished")

    run(crawl)
    stats = crawler.stats
    assert stats.get_value("store/errors") == 1
    assert stats.get_value("store/articles_failed") == 2
    assert stats.get_value("store/articles_new") == 0
    message = stats.get_value("store/error")
    assert "\n" not in message and "saving 2 articles failed" in message
    assert "2 articles were not stored: 1, 2" in caplog.text
    [last] = read_repo(db_url, lambda r: r.recent_runs(1))
    assert last.status == "failed" and last.stats["store/errors"] == 1
    assert read_repo(db_url, Repository.count_articles) == 0


def test_unreachable_database_fails_at_open(caplog: pytest.LogCaptureFixture) -> None:
    crawler = make_crawler("postgresql://postgres@127.0.0.1:1/test")
    pipeline = StorePipeline.from_crawler(crawler)
    with pytest.raises(StorageError, match="cannot connect to PostgreSQL"):
        run(pipeline.open_spider)
    assert crawler.stats.get_value("store/errors") == 1
    assert "cannot connect" in crawler.stats.get_value("store/error")
    assert pipeline._engine is None


# --- real crawls (one per subprocess: a Twisted reactor runs once per process) -----------------


def crawl_items(
    items: list[dict[str, Any]], settings: dict[str, Any], tmp_path: Path
) -> dict[str, Any]:
    """Crawl ``items`` through the pipelines in a new process; its final stats."""
    spec = tmp_path / f"crawl-{len(list(tmp_path.glob('crawl-*.json')))}.json"
    spec.write_text(json.dumps({"items": items, "settings": settings}), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("TIANJIN_UPDATES_DB", None)
    proc = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [sys.executable, str(Path(__file__).with_name("crawl_items.py")), str(spec)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def item_data(key: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "article_key": key,
        "url": f"http://www.exploringtianjin.com/2024-05/01/c_{key}_2.htm?page=2",
        "title": f" Title&nbsp;{key} ",
        "source": " ",
        "published_on": "2024-05-01",
        "body": f"Body  of {key}.\n\nMore.",
        "images": [
            {"position": 1, "url": f"http://img.example/{key}.jpg#x", "caption": " [Photo] "}
        ],
    }
    data.update(changes)
    return data


def test_real_crawl_through_every_pipeline(db_url: str, tmp_path: Path) -> None:
    items = [
        item_data("1"),
        item_data("7", title="Title 1", body="Body of 1.\n\n More."),  # a re-post of "1"
        item_data("2", complete=False),
        item_data("1", title="a duplicate"),
        item_data("3", title=""),
        item_data("4", published_on=None),
        item_data("5", body=" \n\n "),
        item_data("6"),
    ]
    stats = crawl_items(items, {"TIANJIN_UPDATES_DB": db_url, "TIANJIN_BATCH_SIZE": 2}, tmp_path)
    assert stats["finish_reason"] == "finished"
    assert stats["item_scraped_count"] == 4
    assert stats["deduplicate/dropped/same_key"] == 1
    assert stats["validate/dropped/no_title"] == 1
    assert stats["validate/dropped/no_date"] == 1
    assert stats["validate/dropped/no_body"] == 1
    assert stats["store/articles_new"] == 4 and stats["store/articles_incomplete"] == 1
    assert stats["store/articles_duplicate"] == 1 and stats["store/versions"] == 4
    assert stats["store/batches"] == 2 and stats["store/errors"] == 0
    assert read_repo(db_url, lambda r: r.get_article("7")).duplicate_of == "1"

    stored = read_repo(db_url, lambda r: r.get_article("1"))
    assert (stored.url, stored.title, stored.source, stored.body) == (
        "http://www.exploringtianjin.com/2024-05/01/c_1.htm",
        "Title 1",
        None,
        "Body of 1.\n\nMore.",
    )
    assert stored.images == [ImageRecord(1, "http://img.example/1.jpg", "[Photo]")]
    [last] = read_repo(db_url, lambda r: r.recent_runs(1))
    assert last.id == stats["store/run_id"] and last.status == "succeeded"
    assert last.stats["validate/dropped/no_title"] == 1
    assert last.stats["finish_reason"] == "finished"
    summary = last.stats["summary"]
    assert summary["articles"]["dropped"] == {
        "no_body": 1,
        "no_date": 1,
        "no_title": 1,
        "same_key": 1,
    }
    assert summary["articles"]["new"] == 4 and summary["articles"]["duplicate"] == 1
    assert summary["pages_fetched"] == stats["response_received_count"] == 1
    assert summary["responses_by_status"] == {"200": 1}
    assert summary["errors"] == {"store": 0}
    assert 0 <= summary["duration_seconds"] < 60

    again = crawl_items(
        [item_data("1"), item_data("6", title="Edited")], {"TIANJIN_UPDATES_DB": db_url}, tmp_path
    )
    assert (again["store/articles_unchanged"], again["store/articles_updated"]) == (1, 1)
    assert read_repo(db_url, Repository.count_articles) == 4
    assert [r.status for r in read_repo(db_url, lambda r: r.recent_runs(5))] == ["succeeded"] * 2


def test_real_crawl_closes_with_db_error(sqlite_url: str, tmp_path: Path) -> None:
    items = [item_data("1", body=None)] + [item_data(str(n)) for n in range(2, 40)]
    stats = crawl_items(
        items,
        {
            "TIANJIN_UPDATES_DB": sqlite_url,
            "TIANJIN_BATCH_SIZE": 1,
            # Without validation a body-less article reaches the database and violates NOT NULL.
            "ITEM_PIPELINES": {"pipelines.store.StorePipeline": 900},
        },
        tmp_path,
    )
    assert stats["finish_reason"] == "db_error"
    assert stats["store/errors"] == 1 and stats["store/articles_failed"] == 1
    assert "NOT NULL" in stats["store/error"]
    [last] = read_repo(sqlite_url, lambda r: r.recent_runs(1))
    assert last.status == "failed" and last.stats["finish_reason"] == "db_error"
    # every article that reached the pipeline after the failure was still stored, none lost silently
    assert read_repo(sqlite_url, Repository.count_articles) == stats["store/articles_new"]


def test_spider_closed_alone_still_saves_the_batch(sqlite_url: str) -> None:
    """Should close_spider not run, the spider_closed handler flushes before finishing the run."""
    crawler = make_crawler(sqlite_url)
    pipeline = StorePipeline.from_crawler(crawler)

    async def crawl() -> None:
        await pipeline.open_spider()
        await pipeline.process_item(article("1"))
        await crawler.signals.send_catch_log_async(
            signal=signals.spider_closed, spider=Spider(name="test"), reason="finished"
        )

    run(crawl)
    assert read_repo(sqlite_url, Repository.count_articles) == 1
    [last] = read_repo(sqlite_url, lambda r: r.recent_runs(1))
    assert last.status == "succeeded" and last.stats["store/articles_new"] == 1
