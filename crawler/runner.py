"""Runs one crawl in this process and turns its statistics into a summary; used by the CLI."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scrapy.settings import Settings

from crawler.profiles import FULL_SPEED, SettingError, parse_setting_options

#: The garbage collector's thresholds during a crawl (Python's: 700, 10, 10). Scrapy makes and
#: drops objects by the hundred per page (requests, responses, deferreds, tasks): at the default
#: the collector ran about every page and a tenth of a full-speed crawl's time went to it. A
#: young generation of 10,000 objects and rarer older collections cost a few MB at most.
GC_THRESHOLDS = (10_000, 50, 100)

__all__ = [
    "FULL_SPEED",
    "GC_THRESHOLDS",
    "CrawlBusy",
    "CrawlOutcome",
    "SettingError",
    "build_settings",
    "crawl_lock_held",
    "parse_setting_options",
    "run_crawl",
    "summary_lines",
]


class CrawlBusy(Exception):
    """Another crawl holds the database's crawl lock; ``str()`` is one line naming it."""


@contextmanager
def crawl_lock_held(db_url: str, db_label: str) -> Iterator[None]:
    """Hold the database's crawl lock around a crawl in this process (``storage.locks``).

    Refuses at once with ``CrawlBusy`` when another crawl holds it. Once held, runs left
    ``running`` by processes that are gone are marked failed ("abandoned"): only the holder can
    have a live run. Losing the lock (a SQLite lease taken over after missed heartbeats) stops
    the crawl gracefully, as SIGTERM would.
    """
    from storage.db import make_engine
    from storage.locks import CrawlLock, LockBusy
    from storage.repository import Repository

    engine = make_engine(db_url)
    try:
        lock = CrawlLock(engine, on_lost=lambda: os.kill(os.getpid(), signal.SIGTERM))
        try:
            lock.acquire()
        except LockBusy as exc:
            raise CrawlBusy(_busy_message(Repository(engine), exc, db_label)) from None
        try:
            for run_id in Repository(engine).end_abandoned_runs(datetime.now(UTC)):
                print(
                    f"Run {run_id} was left running by a process that is gone: marked failed",
                    file=sys.stderr,
                )
            yield
        finally:
            lock.release()
    finally:
        engine.dispose()


def _busy_message(repo: Any, exc: Any, db_label: str) -> str:
    from storage.db import StorageError

    try:
        running = [r.id for r in repo.recent_runs(5) if r.status == "running"]
    except StorageError:
        running = []
    parts = ([f"run {running[0]}"] if running else []) + (
        [exc.holder.describe()] if exc.holder else []
    )
    who = f" ({', '.join(parts)})" if parts else ""
    return (
        f"another crawl is running on {db_label}{who}; not starting a second one, "
        "try again when it has finished"
    )


def build_settings(overrides: Mapping[str, Any]) -> Settings:
    """The project's settings with ``overrides`` on top (at command-line priority)."""
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    for name, value in overrides.items():
        settings.set(name, value, priority="cmdline")
    return settings


@dataclass
class CrawlOutcome:
    """What one crawl did, read from its statistics."""

    stats: dict[str, Any]
    seconds: float

    @property
    def finish_reason(self) -> str:
        return str(self.stats.get("finish_reason", "unknown"))

    @property
    def error(self) -> str | None:
        """One line on why the crawl failed, or None when it succeeded."""
        if self.stats.get("spider/start_failed"):
            return str(self.stats.get("spider/start_error") or "the start URL could not be crawled")
        if self.stats.get("store/error"):
            return str(self.stats["store/error"])
        if self.finish_reason == "closespider_timeout":
            return "the crawl timed out (--timeout) and stopped early"
        if self.finish_reason == "shutdown":
            return "the crawl was interrupted (SIGTERM or Ctrl-C) and stopped early"
        if self.finish_reason not in ("finished", "closespider_pagecount", "closespider_itemcount"):
            return f"the crawl stopped early ({self.finish_reason})"
        return None

    @property
    def status(self) -> str:
        """The run's status as ``crawl_runs`` records it (see ``pipelines.store.run_status``)."""
        if self.ok:
            return "succeeded"
        if self.stats.get("store/errors") or self.stats.get("spider/start_failed"):
            return "failed"
        return "interrupted" if self.finish_reason == "shutdown" else "failed"

    @property
    def ok(self) -> bool:
        return self.error is None


def run_crawl(
    settings: Settings, start_url: str | None, max_pages: int | None = None
) -> CrawlOutcome:
    """Run the tianjin_updates spider to the end in this process (once per process: Twisted's rule)."""
    from scrapy.crawler import CrawlerProcess

    from crawler.spiders.tianjin_updates import TianjinUpdatesSpider

    process = CrawlerProcess(settings)
    crawler = process.create_crawler(TianjinUpdatesSpider)
    kwargs: dict[str, Any] = {}
    if start_url:
        kwargs["start_url"] = start_url
    if max_pages is not None:
        kwargs["max_pages"] = max_pages
    started = time.monotonic()
    process.crawl(crawler, **kwargs)
    if not settings.getbool("TIANJIN_LOG_TRACEBACKS"):
        # Scrapy installs its root log handler when the crawl starts, so filter it only now.
        for handler in logging.getLogger().handlers:
            handler.addFilter(_one_line_records)
    # Scrapy filters its records at its root handler, after building them: a "Crawled" and a
    # "Scraped" debug record per page and item. Its loggers' own level skips building them.
    logging.getLogger("scrapy").setLevel(settings.get("LOG_LEVEL") or "DEBUG")
    gc.set_threshold(*GC_THRESHOLDS)
    process.start()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    return CrawlOutcome(stats=dict(stats), seconds=time.monotonic() - started)


def _one_line_records(record: logging.LogRecord) -> bool:
    """Logging filter: keep the message, drop the traceback (the summary reports every error)."""
    record.exc_info = None
    record.exc_text = None
    return True


def _counts(stats: Mapping[str, Any], prefix: str) -> dict[str, int]:
    return {k[len(prefix) :]: int(v) for k, v in sorted(stats.items()) if k.startswith(prefix)}


def summary_lines(outcome: CrawlOutcome, db_label: str) -> list[str]:
    """The end-of-crawl report: articles, pages, errors, where the data went."""
    s = outcome.stats
    new = int(s.get("store/articles_new", 0))
    updated = int(s.get("store/articles_updated", 0))
    unchanged = int(s.get("store/articles_unchanged", 0))
    incomplete = int(s.get("store/articles_incomplete", 0))
    skipped = _counts(s, "spider/articles_skipped/")
    dropped = {**_counts(s, "validate/dropped/"), **_counts(s, "deduplicate/dropped/")}
    statuses = _counts(s, "downloader/response_status_count/")
    errors = _counts(s, "spider/errors/")
    run = s.get("store/run_id")
    status = outcome.status
    lines = [
        f"Crawl {status} in {outcome.seconds:.1f} s"
        + (f" (run {run})" if run is not None else "")
        + f" into {db_label}",
        f"  articles: {new} new, {updated} updated, {unchanged} unchanged, {incomplete} incomplete",
    ]
    if skipped:
        lines.append("  articles skipped: " + ", ".join(f"{n} {k}" for k, n in skipped.items()))
    if dropped:
        lines.append("  items dropped: " + ", ".join(f"{n} {k}" for k, n in dropped.items()))
    lines.append(
        f"  requests: {int(s.get('downloader/request_count', 0))}, pages fetched: "
        f"{int(s.get('response_received_count', 0))}"
        + (
            " (" + ", ".join(f"HTTP {k}: {n}" for k, n in statuses.items()) + ")"
            if statuses
            else ""
        )
    )
    distributed = s.get("distributed")
    if isinstance(distributed, Mapping) and isinstance(distributed.get("workers"), Mapping):
        workers = distributed["workers"]
        lost = int(s.get("frontier/workers_lost", 0))
        requeued = int(s.get("frontier/requeued", 0))
        lines.append(
            f"  workers: {len(workers)} (crawl {distributed.get('crawl_id')})"
            + (f", {lost} lost" if lost else "")
            + (f", {requeued} requests handed back to the frontier" if requeued else "")
        )
        for name, share in workers.items():
            lines.append(
                f"    {name}: {int(share.get('requests', 0))} requests, "
                f"{int(share.get('pages_fetched', 0))} pages, "
                f"{int(share.get('articles_stored', 0))} articles stored"
                + (f" ({share['finish_reason']})" if share.get("finish_reason") else "")
            )
    mode = s.get("incremental/mode", "full")
    listing = f"  listing: {mode}, {int(s.get('spider/listing_pages', 0))} pages read"
    if s.get("incremental/stop_reason"):
        where = s.get("incremental/stopped_at_page")
        listing += (
            f", stopped{f' after page {where}' if where else ''}: {s['incremental/stop_reason']}"
        )
    lines.append(listing)
    if s.get("incremental/revisited"):
        lines.append(
            f"  re-visits: {int(s['incremental/revisited'])} asked, "
            f"{int(s.get('incremental/not_modified', 0))} not modified (304)"
        )
    retries = int(s.get("retry/count", 0))
    if retries:
        lines.append(f"  retries: {retries}, gave up: {int(s.get('retry/max_reached', 0))}")
    lines.append(
        "  errors: " + (", ".join(f"{k}: {n}" for k, n in errors.items()) if errors else "none")
    )
    degraded = int(s.get("spider/layout_drift", 0)) + sum(
        int(s.get(f"validate/dropped/{r}", 0)) for r in ("no_title", "no_date", "no_body")
    )
    if degraded:
        lines.append(
            f"  DEGRADED: {degraded} page(s) were fetched but could not be read (no title, date or "
            "body): the site's layout may have changed; see the warnings above"
        )
    if outcome.error:
        lines.append(f"  error: {outcome.error}")
    return lines
