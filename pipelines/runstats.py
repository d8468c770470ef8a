"""The structured summary of a crawl's flat Scrapy stats, kept as ``crawl_runs.stats["summary"]``.

Layout (every count an int, every mapping sorted by key, absent counters 0 or ``{}``)::

    {
      "pages_fetched": 120,                       # response_received_count
      "responses_by_status": {"200": 118, "404": 2},   # downloader/response_status_count/<code>
      "articles": {
        "new": 3, "updated": 1, "unchanged": 90,  # store/articles_<name>
        "duplicate": 1, "near_duplicate": 2,      # marked so after their save
        "incomplete": 1, "failed": 0,             # failed: lost to a database error
        "versions": 4,                            # store/versions
        "skipped": {"http_500": 1},               # spider/articles_skipped/<kind>
        "dropped": {"no_title": 1, "same_key": 4} # <component>/dropped/<reason>
      },
      "errors": {"http_500": 1, "listing_http_404": 1, "store": 0},  # spider/errors/<kind>, store/errors
      "duration_seconds": 63.2                    # elapsed_time_seconds, else finish - start
    }
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

#: ``store/articles_<name>`` counters copied into ``summary["articles"]``.
ARTICLE_COUNTERS = (
    "new",
    "updated",
    "unchanged",
    "duplicate",
    "near_duplicate",
    "incomplete",
    "failed",
)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _by_suffix(stats: Mapping[str, Any], prefix: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for key, value in stats.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            name = key[len(prefix) :]
            found[name] = found.get(name, 0) + _int(value)
    return found


def _sorted(counts: Mapping[str, int], *, numeric: bool = False) -> dict[str, int]:
    def order(key: str) -> tuple[int, int | str]:
        return (0, int(key)) if numeric and key.isdigit() else (1, key)

    return {key: counts[key] for key in sorted(counts, key=order)}


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def duration_seconds(stats: Mapping[str, Any], finished_at: datetime | None = None) -> float | None:
    """How long the crawl took: Scrapy's ``elapsed_time_seconds`` when set, else from its
    ``start_time`` to ``finish_time`` (or ``finished_at``); None if unknown."""
    elapsed = stats.get("elapsed_time_seconds")
    if isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool):
        return round(float(elapsed), 3)
    start = _time(stats.get("start_time"))
    finish = _time(stats.get("finish_time")) or finished_at
    if start is None or finish is None or (start.tzinfo is None) != (finish.tzinfo is None):
        return None
    return round(max(0.0, (finish - start).total_seconds()), 3)


def run_summary(stats: Mapping[str, Any], finished_at: datetime | None = None) -> dict[str, Any]:
    """The summary (see the module docstring) of a crawl's flat stats, raw or JSON-safe."""
    dropped: dict[str, int] = {}
    for key, value in stats.items():
        component, sep, reason = key.partition("/dropped/")
        if sep and reason and "/" not in component:
            dropped[reason] = dropped.get(reason, 0) + _int(value)
    errors = _by_suffix(stats, "spider/errors/")
    errors["store"] = _int(stats.get("store/errors"))
    articles: dict[str, Any] = {
        name: _int(stats.get(f"store/articles_{name}")) for name in ARTICLE_COUNTERS
    }
    articles["versions"] = _int(stats.get("store/versions"))
    articles["skipped"] = _sorted(_by_suffix(stats, "spider/articles_skipped/"))
    articles["dropped"] = _sorted(dropped)
    unreadable = _int(stats.get("spider/layout_drift")) + sum(
        _int(stats.get(f"validate/dropped/{reason}"))
        for reason in ("no_title", "no_date", "no_body")
    )
    return {
        "requests": _int(stats.get("downloader/request_count")),
        "pages_fetched": _int(stats.get("response_received_count")),
        "responses_by_status": _sorted(
            _by_suffix(stats, "downloader/response_status_count/"), numeric=True
        ),
        "articles": articles,
        "errors": _sorted(errors),
        "degraded_pages": unreadable,
        "listing": {
            "mode": stats.get("incremental/mode", "full"),
            "pages_read": _int(stats.get("spider/listing_pages")),
            "stopped_at_page": stats.get("incremental/stopped_at_page"),
            "stop_reason": stats.get("incremental/stop_reason"),
            "caught_up": bool(stats.get("incremental/caught_up")),
        },
        "revisits": {
            "asked": _int(stats.get("incremental/revisited")),
            "not_modified": _int(stats.get("incremental/not_modified")),
            "skipped_known": _int(stats.get("incremental/skipped_known")),
        },
        "duration_seconds": duration_seconds(stats, finished_at),
    }
