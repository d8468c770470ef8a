"""Store articles in the database in batches and record each crawl in ``crawl_runs``.

Rules:

* a batch is saved in one transaction when it holds ``TIANJIN_BATCH_SIZE`` articles or its
  oldest article waited ``TIANJIN_FLUSH_SECONDS``, and at the end of the crawl;
* every database call runs in a worker thread (``asyncio.to_thread``), never on the reactor, and
  so does the signing of a batch (its content fingerprints: MinHash signature, LSH buckets,
  hashes; pure CPU, done before the write transaction);
* each article version is recorded with the run that wrote it (``store/run_id``); the run's
  stats get a structured ``summary`` (``pipelines.runstats.run_summary``) when it finishes;
* a save that fails for a reason that may heal (server unreachable, connection lost, SQLite
  locked) is tried again ``TIANJIN_DB_RETRIES`` times, waiting ``TIANJIN_DB_RETRY_BACKOFF``
  seconds doubled each time (at most 30 s a wait);
* a save that still fails is logged with the keys it lost, counted (``store/errors``,
  ``store/articles_failed``, the message in ``store/error``) and closes the crawl with reason
  ``db_error``; the run is then recorded as failed. Nothing is dropped silently;
* after each batch is committed, the ``articles_stored`` signal names its article keys (304
  answers included): a distributed crawl's frontier lets go of the requests behind them only
  then (``crawler.frontier``);
* with ``TIANJIN_RUN_ID`` set (a worker of a distributed crawl) the pipeline writes under that
  run, which the crawl's seeder started and finishes: it neither starts nor finishes a run.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import TYPE_CHECKING, Any, cast

from itemadapter import ItemAdapter
from scrapy import Spider, signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import is_asyncio_available

from crawler.items import ArticleSeen
from crawler.offload import Helper, HelperGone, helper_of, sign_and_save
from pipelines.runstats import run_summary
from storage.db import StorageError, default_database_url, is_transient, make_engine, upgrade
from storage.models import RUN_TRIGGERS
from storage.repository import ArticleRecord, ImageRecord, Repository, SaveResult
from storage.similarity import DEFAULT_PERMUTATIONS, DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector
    from sqlalchemy import Engine

logger = logging.getLogger(__name__)

#: Finish reasons of a crawl that did what it was asked to (the CLI's runner agrees).
SUCCESS_REASONS = frozenset({"finished", "closespider_pagecount", "closespider_itemcount"})
#: The finish reason of a crawl stopped from outside (Ctrl-C, SIGTERM).
INTERRUPT_REASONS = frozenset({"shutdown"})

#: Longest wait (s) of the writing thread for the GIL (``sys.setswitchinterval``).
WRITER_SWITCH_INTERVAL = 0.0001

#: Sent after a batch is committed: ``keys`` are the article keys it wrote or marked seen.
articles_stored = object()

#: Stats set to 0 when the crawl opens, so every run's stats show them.
COUNTERS = (
    "store/articles_new",
    "store/articles_updated",
    "store/articles_unchanged",
    "store/articles_duplicate",
    "store/articles_near_duplicate",
    "store/articles_remarked",
    "store/articles_incomplete",
    "store/versions",
    "store/batches",
    "store/errors",
)


def _now() -> datetime:
    return datetime.now(UTC)


def _as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def image_record(image: Any) -> ImageRecord:
    """The storage record of an ``ImageItem`` (or a dict with its fields)."""
    adapter = ItemAdapter(image)
    return ImageRecord(
        position=int(adapter["position"]),
        url=str(adapter["url"]),
        caption=adapter.get("caption") or None,
    )


def article_record(item: Any) -> ArticleRecord:
    """The storage record of an ``ArticleItem`` (or a dict with its fields), field by field."""
    adapter = ItemAdapter(item)
    # Missing values are passed on as None, not made up: the database's NOT NULL constraints
    # then fail the batch loudly (ValidatePipeline normally drops such items first).
    return ArticleRecord(
        article_key=str(adapter["article_key"]),
        url=str(adapter["url"]),
        title=cast(str, adapter.get("title")),
        source=adapter.get("source") or None,
        published_on=cast(date, _as_date(adapter.get("published_on"))),
        body=cast(str, adapter.get("body")),
        page_count=int(adapter.get("page_count") or 1),
        complete=bool(adapter.get("complete", True)),
        images=[image_record(image) for image in adapter.get("images") or []],
        etag=adapter.get("etag") or None,
        last_modified=adapter.get("last_modified") or None,
    )


def json_safe(value: Any) -> Any:
    """``value`` with only JSON types left: datetimes as ISO strings, durations as seconds."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(v) for v in value), key=str)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def run_status(finish_reason: str, errors: int) -> str:
    """The ``crawl_runs.status`` of a crawl that closed for ``finish_reason`` with ``errors``."""
    if errors:
        return "failed"
    if finish_reason in SUCCESS_REASONS:
        return "succeeded"
    if finish_reason in INTERRUPT_REASONS:
        return "interrupted"
    return "failed"


class StorePipeline:
    """Save articles to the database in batches and record the crawl as a ``crawl_runs`` row."""

    def __init__(
        self,
        database_url: str,
        *,
        batch_size: int = 50,
        flush_seconds: float = 5.0,
        trigger: str = "manual",
        near_duplicate_threshold: float = DEFAULT_THRESHOLD,
        minhash_permutations: int = DEFAULT_PERMUTATIONS,
        db_retries: int = 5,
        db_retry_backoff: float = 1.0,
        joined_run_id: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"TIANJIN_BATCH_SIZE must be at least 1, got {batch_size}")
        if flush_seconds < 0:
            raise ValueError(f"TIANJIN_FLUSH_SECONDS must not be negative, got {flush_seconds}")
        if trigger not in RUN_TRIGGERS:
            raise ValueError(
                f"TIANJIN_TRIGGER must be one of {', '.join(RUN_TRIGGERS)}, got {trigger!r}"
            )
        if not 0.0 < near_duplicate_threshold <= 1.0:
            raise ValueError(
                "TIANJIN_NEAR_DUPLICATE_THRESHOLD must be above 0 and at most 1, "
                f"got {near_duplicate_threshold}"
            )
        if not 16 <= minhash_permutations <= 1024:
            raise ValueError(
                "TIANJIN_MINHASH_PERMUTATIONS must be between 16 and 1024, "
                f"got {minhash_permutations}"
            )
        self.database_url = database_url
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.trigger = trigger
        self.near_duplicate_threshold = near_duplicate_threshold
        self.minhash_permutations = minhash_permutations
        self.crawler: Crawler | None = None
        self.run_id: int | None = None
        self._engine: Engine | None = None
        self._repository: Repository | None = None
        self._batch: list[ArticleRecord] = []
        self._seen: list[str] = []
        self._batch_started: float | None = None
        self._lock: asyncio.Lock | None = None
        self._stop: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._close_task: asyncio.Future[Any] | None = None
        self._closing = False
        self._errors = 0
        self.db_retries = db_retries
        self.db_retry_backoff = db_retry_backoff
        #: The run this pipeline writes under without owning it (a distributed crawl's worker).
        self.joined_run_id = joined_run_id
        #: The process that signs and writes batches beside the reactor (``crawler.offload``);
        #: None: the writing thread does it here.
        self.helper: Helper | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not settings.getbool("TIANJIN_STORE_ENABLED", True):
            raise NotConfigured("TIANJIN_STORE_ENABLED is off: articles are not stored")
        pipeline = cls(
            settings.get("TIANJIN_UPDATES_DB") or default_database_url(),
            batch_size=settings.getint("TIANJIN_BATCH_SIZE", 50),
            flush_seconds=settings.getfloat("TIANJIN_FLUSH_SECONDS", 5.0),
            trigger=settings.get("TIANJIN_TRIGGER") or "manual",
            near_duplicate_threshold=settings.getfloat(
                "TIANJIN_NEAR_DUPLICATE_THRESHOLD", DEFAULT_THRESHOLD
            ),
            minhash_permutations=settings.getint(
                "TIANJIN_MINHASH_PERMUTATIONS", DEFAULT_PERMUTATIONS
            ),
            db_retries=settings.getint("TIANJIN_DB_RETRIES", 5),
            db_retry_backoff=settings.getfloat("TIANJIN_DB_RETRY_BACKOFF", 1.0),
            joined_run_id=settings.getint("TIANJIN_RUN_ID") or None,
        )
        pipeline.crawler = crawler
        pipeline.helper = helper_of(crawler)
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    @property
    def stats(self) -> StatsCollector:
        assert self.crawler is not None, "StorePipeline is made by from_crawler()"
        return self.crawler.stats

    # --- crawl lifecycle ----------------------------------------------------------------------

    async def open_spider(self) -> None:
        if not is_asyncio_available():
            raise RuntimeError(
                "StorePipeline needs Scrapy's asyncio reactor (TWISTED_REACTOR = "
                "'twisted.internet.asyncioreactor.AsyncioSelectorReactor', Scrapy's default)"
            )
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        # The writes run in a thread beside a reactor thread that is busy all the time. Each
        # time the writing thread comes back from SQLite or the network (per statement, per row
        # of an executemany) it waits for the reactor to hand over the GIL, by default up to
        # 5 ms: a batch of 50 took 150 ms instead of 15, batches queued up behind it and held
        # about 2,000 responses (+70 MB at 10,000 articles). At 0.1 ms no batch queues up and the
        # crawl is as fast as before. With a helper process the writing thread only waits for
        # it, but the spider's lookups of stored articles (crawler.incremental) still run in a
        # thread, one per listing page, and every listing page waits for its lookup: at 5 ms a
        # hand-over, a lookup took up to a second and the downloader ran dry meanwhile.
        if sys.getswitchinterval() > WRITER_SWITCH_INTERVAL:
            sys.setswitchinterval(WRITER_SWITCH_INTERVAL)
        for name in COUNTERS:
            self.stats.set_value(name, 0)
        try:
            self._engine = await asyncio.to_thread(make_engine, self.database_url)
            await asyncio.to_thread(upgrade, self._engine)
            self._repository = Repository(
                self._engine,
                near_duplicate_threshold=self.near_duplicate_threshold,
                minhash_permutations=self.minhash_permutations,
            )
            reindexed = await asyncio.to_thread(self._repository.ensure_similarity_index)
            if self.joined_run_id is not None:
                self.run_id = self.joined_run_id
            else:
                self.run_id = await asyncio.to_thread(
                    self._repository.start_run, self.trigger, _now()
                )
        except StorageError as exc:
            self._record_error(exc)
            logger.error("Cannot store articles: %s", exc)
            await self._dispose()
            raise
        self.stats.set_value("store/run_id", self.run_id)
        if reindexed:
            self.stats.set_value("store/articles_reindexed", reindexed)
            logger.info("Indexed %d stored articles for near-duplicate detection", reindexed)
        if self.flush_seconds > 0:
            self._flusher = asyncio.create_task(self._flush_when_old())

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, ArticleSeen):
            self._seen.append(item.article_key)
            # A 304 waits for its flush like an article: a distributed crawl holds the request
            # behind it until it is recorded, and cannot end before.
            if self._batch_started is None:
                self._batch_started = monotonic()
            return item
        record = article_record(item)
        self._batch.append(record)
        if self._batch_started is None:
            self._batch_started = monotonic()
        if len(self._batch) >= self.batch_size or (
            self.flush_seconds > 0 and self._batch_age() >= self.flush_seconds
        ):
            await self._flush()
        return item

    async def close_spider(self) -> None:
        await self._stop_flusher()
        await self._flush()

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        """Record how the run ended (the finish reason is only known here) and let go of the DB."""
        try:
            if self._repository is None or self.run_id is None:
                return
            if self._flusher is not None or self._batch:  # close_spider did not run
                await self.close_spider()
            if self.joined_run_id is not None:
                return  # the seeder of the distributed crawl records how the run ended
            status = run_status(reason, self._errors)
            finished_at = _now()
            final_stats = json_safe({**self.stats.get_stats(), "finish_reason": reason})
            final_stats["summary"] = run_summary(final_stats, finished_at)
            try:
                await asyncio.to_thread(
                    self._repository.finish_run, self.run_id, status, final_stats, finished_at
                )
            except StorageError as exc:
                self._record_error(exc)
                logger.error("Cannot record the end of crawl run %s: %s", self.run_id, exc)
            else:
                logger.info("Crawl run %s %s (%s)", self.run_id, status, reason)
        finally:
            await self._dispose()

    # --- batches ------------------------------------------------------------------------------

    async def _stop_flusher(self) -> None:
        self._closing = True
        if self._stop is not None:
            self._stop.set()
        if self._flusher is not None:
            # Not cancelled: a flush under way must finish and be counted.
            await self._flusher
            self._flusher = None

    def _batch_age(self) -> float:
        return 0.0 if self._batch_started is None else monotonic() - self._batch_started

    async def _flush_when_old(self) -> None:
        """Flush a batch whose oldest article waited ``flush_seconds``, even if few arrive."""
        assert self._stop is not None
        while not self._closing:
            if self._batch_started is None:
                delay = self.flush_seconds
            else:
                delay = max(0.0, self._batch_started + self.flush_seconds - monotonic())
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
                return
            except TimeoutError:
                pass
            if (self._batch or self._seen) and self._batch_age() >= self.flush_seconds:
                await self._flush()

    async def _flush(self) -> None:
        if self._lock is None or self._repository is None:
            return
        async with self._lock:
            if self._seen:
                seen, self._seen = self._seen, []
                if not self._batch:
                    self._batch_started = None
                try:
                    await asyncio.to_thread(self._repository.mark_seen, seen, _now())
                except StorageError as exc:
                    self._record_error(exc)
                else:
                    # A 304 Not Modified is an unchanged article.
                    self.stats.inc_value("store/articles_unchanged", len(seen))
                    self._stored(seen)
            if not self._batch:
                return
            batch, self._batch, self._batch_started = self._batch, [], None
            attempt = 0
            while True:
                try:
                    result = await asyncio.to_thread(self._save, self._repository, batch)
                    break
                except StorageError as exc:
                    # The batch's transaction was rolled back whole: trying it again is safe.
                    if attempt >= self.db_retries or not is_transient(exc):
                        self._fail(exc, batch)
                        return
                    attempt += 1
                    delay = min(self.db_retry_backoff * 2 ** (attempt - 1), 30.0)
                    self.stats.inc_value("store/retries")
                    logger.warning(
                        "%s; trying again in %.1f s (%d/%d)", exc, delay, attempt, self.db_retries
                    )
                    await asyncio.sleep(delay)
        self.stats.inc_value("store/batches")
        self.stats.inc_value("store/articles_new", len(result.new))
        self.stats.inc_value("store/articles_updated", len(result.updated))
        self.stats.inc_value("store/articles_unchanged", len(result.unchanged))
        self.stats.inc_value("store/articles_duplicate", len(result.duplicates))
        self.stats.inc_value("store/articles_near_duplicate", len(result.near_duplicates))
        self.stats.inc_value("store/articles_remarked", len(result.remarked))
        self.stats.inc_value("store/versions", result.versions)
        self.stats.inc_value(
            "store/articles_incomplete", sum(1 for record in batch if not record.complete)
        )
        self._stored([record.article_key for record in batch])
        logger.debug(
            "Stored %d articles: %d new, %d updated, %d unchanged, %d duplicate, %d near-duplicate",
            len(batch),
            len(result.new),
            len(result.updated),
            len(result.unchanged),
            len(result.duplicates),
            len(result.near_duplicates),
        )

    def _stored(self, keys: list[str]) -> None:
        """Tell whoever listens that these articles are now in the database."""
        if self.crawler is not None and keys:
            self.crawler.signals.send_catch_log(signal=articles_stored, keys=keys)

    def _save(self, repository: Repository, batch: list[ArticleRecord]) -> SaveResult:
        """Sign and save ``batch`` (in a worker thread): in the helper process when there is one.

        A helper that goes away mid-batch either committed it or not; the batch is then saved
        here, which is safe either way (an article saved twice is "unchanged" the second time).
        """
        helper = self.helper
        if helper is not None:
            config = (self.database_url, self.near_duplicate_threshold, self.minhash_permutations)
            try:
                return cast(
                    SaveResult, helper.call(sign_and_save, config, batch, _now(), self.run_id)
                )
            except HelperGone as exc:
                self.helper = None
                self.stats.inc_value("helper/lost_by_store")
                logger.warning("%s: batches are written by the crawl's process from now on", exc)
        repository.sign(batch)
        return repository.save_articles(batch, _now(), self.run_id)

    # --- failures -----------------------------------------------------------------------------

    def _record_error(self, exc: StorageError) -> None:
        self._errors += 1
        self.stats.inc_value("store/errors")
        if self.stats.get_value("store/error") is None:
            self.stats.set_value("store/error", str(exc))

    def _fail(self, exc: StorageError, batch: list[ArticleRecord]) -> None:
        self._record_error(exc)
        self.stats.inc_value("store/articles_failed", len(batch))
        keys = ", ".join(record.article_key for record in batch)
        logger.error("%s; %d articles were not stored: %s", exc, len(batch), keys)
        self._request_close("db_error")

    def _request_close(self, reason: str) -> None:
        """Close the crawl: pages fetched now could not be stored."""
        if self._closing or self._close_task is not None or self.crawler is None:
            return
        try:
            engine = self.crawler.engine
        except RuntimeError:  # no crawl running (the pipeline driven by hand)
            return
        self._close_task = asyncio.ensure_future(engine.close_spider_async(reason=reason))

    async def _dispose(self) -> None:
        engine, self._engine, self._repository = self._engine, None, None
        if engine is not None:
            await asyncio.to_thread(engine.dispose)
