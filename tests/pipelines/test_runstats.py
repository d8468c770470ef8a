"""run_summary: the structured summary of a crawl's flat stats."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pipelines.runstats import duration_seconds, run_summary
from pipelines.store import json_safe

STATS = {
    "start_time": datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
    "finish_time": datetime(2024, 5, 1, 8, 1, 3, 200000, tzinfo=UTC),
    "response_received_count": 120,
    "downloader/response_count": 121,
    "downloader/response_status_count/200": 117,
    "downloader/response_status_count/404": 2,
    "downloader/response_status_count/500": 1,
    "downloader/response_status_count/1000": 1,  # not a real status: still numeric order
    "store/articles_new": 3,
    "store/articles_updated": 1,
    "store/articles_unchanged": 90,
    "store/articles_duplicate": 1,
    "store/articles_near_duplicate": 2,
    "store/articles_incomplete": 1,
    "store/versions": 4,
    "store/errors": 0,
    "spider/articles_skipped/http_500": 1,
    "spider/errors/http_500": 1,
    "spider/errors/listing_http_404": 2,
    "validate/dropped/no_title": 1,
    "deduplicate/dropped/same_key": 4,
    "item_dropped_reasons_count/DropItem": 5,
    "finish_reason": "finished",
    "downloader/request_count": 130,
    "spider/layout_drift": 2,
    "spider/listing_pages": 3,
    "incremental/mode": "incremental",
    "incremental/stopped_at_page": 3,
    "incremental/stop_reason": "1 listing page(s) already stored",
    "incremental/caught_up": True,
    "incremental/revisited": 6,
    "incremental/not_modified": 5,
    "incremental/skipped_known": 40,
}


def test_summary_layout() -> None:
    assert run_summary(STATS) == {
        "requests": 130,
        "pages_fetched": 120,
        "responses_by_status": {"200": 117, "404": 2, "500": 1, "1000": 1},
        "articles": {
            "new": 3,
            "updated": 1,
            "unchanged": 90,
            "duplicate": 1,
            "near_duplicate": 2,
            "incomplete": 1,
            "failed": 0,
            "versions": 4,
            "skipped": {"http_500": 1},
            "dropped": {"no_title": 1, "same_key": 4},
        },
        "errors": {"http_500": 1, "listing_http_404": 2, "store": 0},
        "degraded_pages": 3,  # two unreadable pages, one article without a title
        "listing": {
            "mode": "incremental",
            "pages_read": 3,
            "stopped_at_page": 3,
            "stop_reason": "1 listing page(s) already stored",
            "caught_up": True,
        },
        "revisits": {"asked": 6, "not_modified": 5, "skipped_known": 40},
        "duration_seconds": 63.2,
    }


def test_json_safe_stats_give_the_same_summary_and_it_is_json() -> None:
    safe = json_safe(STATS)
    assert run_summary(safe) == run_summary(STATS)
    assert json.loads(json.dumps(run_summary(safe))) == run_summary(STATS)


def test_an_empty_crawl() -> None:
    summary = run_summary({})
    assert summary["pages_fetched"] == 0 and summary["responses_by_status"] == {}
    assert summary["articles"]["skipped"] == {} and summary["articles"]["dropped"] == {}
    assert summary["errors"] == {"store": 0} and summary["duration_seconds"] is None


def test_duration() -> None:
    assert duration_seconds({"elapsed_time_seconds": 12.3456}) == 12.346
    start = {"start_time": "2024-05-01T08:00:00+00:00"}
    assert duration_seconds(start) is None
    assert duration_seconds(start, datetime(2024, 5, 1, 8, 0, 30, tzinfo=UTC)) == 30.0
    assert duration_seconds({"start_time": "not a time"}, datetime.now(UTC)) is None
    assert duration_seconds({"start_time": datetime(2024, 5, 1)}, datetime.now(UTC)) is None
