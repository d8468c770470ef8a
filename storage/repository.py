"""Reads and writes of the tianjin-updates database: the only code here that writes SQL.

Rules:

* ``save_articles`` writes a batch in ONE transaction: a crash or error leaves every article of
  the batch as it was, never an article row without its images;
* identity across runs lives in the database: articles are upserted by ``article_key`` behind
  its UNIQUE constraint (``INSERT … ON CONFLICT DO NOTHING``), so two crawls writing the same
  article at once still leave one row;
* an article whose ``content_hash`` is unchanged only has ``last_seen_at`` moved forward; a
  changed one is rewritten and its images replaced;
* every database failure is raised as a one-line ``StorageError``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Table,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import WRITE_OPTION, storage_errors
from storage.models import RUN_STATUSES, RUN_TRIGGERS, Article, ArticleImage, CrawlRun

articles = cast(Table, Article.__table__)
article_images = cast(Table, ArticleImage.__table__)
crawl_runs = cast(Table, CrawlRun.__table__)

# Bound parameters per statement stay far below SQLite's limit (32766) and PostgreSQL's (65535).
_KEYS_PER_SELECT = 500


@dataclass(frozen=True)
class ImageRecord:
    """An image of an article as stored."""

    position: int
    """1-based position within the whole article."""
    url: str
    caption: str | None = None


@dataclass
class ArticleRecord:
    """An article as stored: what the crawl knows of it, free of any Scrapy type."""

    article_key: str
    """The CMS id, unique across the site's hosts."""
    url: str
    """Canonical URL of the first page."""
    title: str
    source: str | None
    published_on: date
    body: str
    page_count: int = 1
    complete: bool = True
    images: list[ImageRecord] = field(default_factory=list)


@dataclass(kw_only=True)
class StoredArticle(ArticleRecord):
    """An article read back from the database, with its bookkeeping columns."""

    id: int
    first_seen_at: datetime
    last_seen_at: datetime
    content_hash: str


@dataclass(frozen=True)
class RunRecord:
    """A row of ``crawl_runs``."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    trigger: str
    stats: dict[str, Any]


@dataclass
class SaveResult:
    """What ``save_articles`` did, by article key."""

    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "new": len(self.new),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
        }


def content_hash(record: ArticleRecord) -> str:
    """sha256 (hex) of every stored content field and image of ``record``; the key is not part."""
    published = record.published_on.isoformat() if record.published_on is not None else None
    payload = [
        record.url,
        record.title,
        record.source,
        published,
        record.body,
        record.page_count,
        record.complete,
        [[image.position, image.url, image.caption] for image in record.images],
    ]
    encoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got {value!r}")


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Repository:
    """Article and crawl-run storage on one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def _transaction(self, action: str, *, write: bool) -> Iterator[Connection]:
        with storage_errors(self._engine, action), self._engine.connect() as connection:
            if write:
                connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                yield connection

    def _insert(self) -> Any:
        """The dialect's INSERT construct, which knows ON CONFLICT."""
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert
        return sqlite.insert

    # --- articles ---------------------------------------------------------------------------

    def save_articles(self, records: Sequence[ArticleRecord], seen_at: datetime) -> SaveResult:
        """Upsert ``records`` in one transaction, seen at ``seen_at`` (aware); say what changed.

        When a key occurs twice in ``records`` the last one wins.
        """
        _require_aware(seen_at, "seen_at")
        by_key = {record.article_key: record for record in records}
        result = SaveResult()
        if not by_key:
            return result
        # One order for every writer: concurrent transactions touching the same keys then lock
        # rows in the same order and cannot deadlock each other.
        keys = sorted(by_key)
        hashes = {key: content_hash(by_key[key]) for key in keys}
        noun = "article" if len(keys) == 1 else "articles"
        with self._transaction(f"saving {len(keys)} {noun}", write=True) as connection:
            existing = self._existing(connection, keys)
            inserted = self._insert_new(
                connection, [by_key[k] for k in keys if k not in existing], hashes, seen_at
            )
            missed = [k for k in keys if k not in existing and k not in inserted]
            if missed:
                # Written by a concurrent crawl between our SELECT and INSERT: now an existing row.
                existing.update(self._existing(connection, missed))

            unchanged = [k for k in keys if k in existing and existing[k][1] == hashes[k]]
            changed = [k for k in keys if k in existing and existing[k][1] != hashes[k]]
            if unchanged:
                self._touch(connection, [existing[k][0] for k in unchanged], seen_at)
            if changed:
                self._rewrite(
                    connection, [(existing[k][0], by_key[k]) for k in changed], hashes, seen_at
                )

            # The images of new and of changed articles (whose old images _rewrite deleted).
            image_rows = [
                {
                    "article_id": article_id,
                    "position": i.position,
                    "url": i.url,
                    "caption": i.caption,
                }
                for k in keys
                if (article_id := inserted.get(k) or (existing[k][0] if k in changed else None))
                for i in by_key[k].images
            ]
            if image_rows:
                connection.execute(article_images.insert(), image_rows)

        result.new = [k for k in keys if k in inserted]
        result.updated = changed
        result.unchanged = unchanged
        return result

    def _existing(self, connection: Connection, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        """``{article_key: (id, content_hash)}`` of the stored articles among ``keys``."""
        found: dict[str, tuple[int, str]] = {}
        for chunk in _chunks(keys, _KEYS_PER_SELECT):
            rows = connection.execute(
                select(articles.c.article_key, articles.c.id, articles.c.content_hash).where(
                    articles.c.article_key.in_(chunk)
                )
            )
            for key, id_, hash_ in rows:
                found[key] = (id_, hash_)
        return found

    def _insert_new(
        self,
        connection: Connection,
        records: Sequence[ArticleRecord],
        hashes: Mapping[str, str],
        seen_at: datetime,
    ) -> dict[str, int]:
        """Insert the rows of ``records``; ``{article_key: id}`` of those this call inserted."""
        if not records:
            return {}
        rows = [
            {
                **self._content_values(record, hashes[record.article_key]),
                "article_key": record.article_key,
                "first_seen_at": seen_at,
                "last_seen_at": seen_at,
            }
            for record in records
        ]
        statement: Insert = (
            self._insert()(articles)
            .on_conflict_do_nothing(index_elements=[articles.c.article_key])
            .returning(articles.c.article_key, articles.c.id)
        )
        # executemany with RETURNING: SQLAlchemy batches it as multi-row INSERTs on both dialects.
        return {key: id_ for key, id_ in connection.execute(statement, rows)}

    @staticmethod
    def _content_values(record: ArticleRecord, hash_: str) -> dict[str, Any]:
        return {
            "url": record.url,
            "title": record.title,
            "source": record.source,
            "published_on": record.published_on,
            "body": record.body,
            "page_count": record.page_count,
            "complete": record.complete,
            "content_hash": hash_,
        }

    @staticmethod
    def _touch(connection: Connection, ids: Sequence[int], seen_at: datetime) -> None:
        """Move ``last_seen_at`` of unchanged articles forward (never back)."""
        for chunk in _chunks(list(ids), _KEYS_PER_SELECT):  # type: ignore[arg-type]
            connection.execute(
                update(articles)
                .where(articles.c.id.in_(chunk), articles.c.last_seen_at < seen_at)
                .values(last_seen_at=seen_at)
            )

    def _rewrite(
        self,
        connection: Connection,
        changes: Sequence[tuple[int, ArticleRecord]],
        hashes: Mapping[str, str],
        seen_at: datetime,
    ) -> None:
        """Overwrite the content of changed articles and delete their images (the caller inserts
        the new ones with those of new articles)."""
        statement = (
            update(articles)
            .where(articles.c.id == bindparam("b_id"))
            .values(
                {
                    name: bindparam(f"b_{name}")
                    for name in (*self._content_values(changes[0][1], "").keys(), "last_seen_at")
                }
            )
        )
        connection.execute(
            statement,
            [
                {
                    "b_id": id_,
                    "b_last_seen_at": seen_at,
                    **{
                        f"b_{name}": value
                        for name, value in self._content_values(
                            record, hashes[record.article_key]
                        ).items()
                    },
                }
                for id_, record in changes
            ],
        )
        ids = [id_ for id_, _ in changes]
        for chunk in _chunks(ids, _KEYS_PER_SELECT):  # type: ignore[arg-type]
            connection.execute(delete(article_images).where(article_images.c.article_id.in_(chunk)))

    def count_articles(self) -> int:
        """How many articles are stored."""
        with self._transaction("counting articles", write=False) as connection:
            return int(connection.execute(select(func.count()).select_from(articles)).scalar_one())

    def get_article(self, article_key: str) -> StoredArticle | None:
        """The stored article with key ``article_key`` and its images in order, or None."""
        with self._transaction(f"reading article {article_key}", write=False) as connection:
            row = connection.execute(
                select(articles).where(articles.c.article_key == article_key)
            ).one_or_none()
            if row is None:
                return None
            images = [
                ImageRecord(position=i.position, url=i.url, caption=i.caption)
                for i in connection.execute(
                    select(article_images)
                    .where(article_images.c.article_id == row.id)
                    .order_by(article_images.c.position)
                )
            ]
        return StoredArticle(
            id=row.id,
            article_key=row.article_key,
            url=row.url,
            title=row.title,
            source=row.source,
            published_on=row.published_on,
            body=row.body,
            page_count=row.page_count,
            complete=row.complete,
            images=images,
            first_seen_at=row.first_seen_at,
            last_seen_at=row.last_seen_at,
            content_hash=row.content_hash,
        )

    # --- crawl runs -------------------------------------------------------------------------

    def start_run(self, trigger: str, started_at: datetime) -> int:
        """Record a crawl that starts now (status ``running``); return its id."""
        if trigger not in RUN_TRIGGERS:
            raise ValueError(
                f"unknown trigger {trigger!r}: expected one of {', '.join(RUN_TRIGGERS)}"
            )
        _require_aware(started_at, "started_at")
        with self._transaction("recording the start of the crawl", write=True) as connection:
            return int(
                connection.execute(
                    crawl_runs.insert()
                    .values(started_at=started_at, status="running", trigger=trigger, stats={})
                    .returning(crawl_runs.c.id)
                ).scalar_one()
            )

    def finish_run(
        self, run_id: int, status: str, stats: Mapping[str, Any], finished_at: datetime
    ) -> None:
        """Record how crawl ``run_id`` ended and its final counters (JSON-safe values only)."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(
                f"unknown final status {status!r}: expected succeeded, failed or interrupted"
            )
        _require_aware(finished_at, "finished_at")
        with self._transaction("recording the end of the crawl", write=True) as connection:
            connection.execute(
                update(crawl_runs)
                .where(crawl_runs.c.id == run_id)
                .values(status=status, stats=dict(stats), finished_at=finished_at)
            )

    def recent_runs(self, limit: int = 10) -> list[RunRecord]:
        """The ``limit`` latest crawl runs, newest first."""
        with self._transaction("reading crawl runs", write=False) as connection:
            rows = connection.execute(
                select(crawl_runs).order_by(crawl_runs.c.id.desc()).limit(limit)
            ).all()
        return [
            RunRecord(
                id=row.id,
                started_at=row.started_at,
                finished_at=row.finished_at,
                status=row.status,
                trigger=row.trigger,
                stats=dict(row.stats or {}),
            )
            for row in rows
        ]
