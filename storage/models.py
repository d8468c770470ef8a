"""Tables of the tianjin-updates database (the schema consumers read), as typed SQLAlchemy models.

Rules:

* every constraint and index has a name from ``NAMING_CONVENTION`` so migrations can refer to it
  on every dialect (SQLite batch mode needs names to drop or alter constraints);
* every timestamp is stored in UTC and read back timezone-aware (``UTCDateTime``), on SQLite too;
* the schema changes only through an Alembic revision in ``storage/migrations/versions``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    Unicode,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Values of ``crawl_runs.status``.
RUN_STATUSES: tuple[str, ...] = ("running", "succeeded", "failed", "interrupted")
#: Values of ``crawl_runs.trigger``.
RUN_TRIGGERS: tuple[str, ...] = ("manual", "schedule")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect.

    PostgreSQL keeps ``timestamp with time zone``; SQLite has no time zones, so the value is
    stored as naive UTC text and given back its UTC ``tzinfo`` when read. Naive datetimes are
    refused on the way in: their zone is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware (UTC) datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: JSON everywhere, JSONB on PostgreSQL (indexable and comparable there).
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Article(Base):
    """One article of the Tianjin Updates section, identified across hosts by its CMS id."""

    __tablename__ = "articles"
    __table_args__ = (CheckConstraint("page_count >= 1", name="page_count_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_key: Mapped[str] = mapped_column(String(32), unique=True)
    """The CMS id (digits of ``c_<id>.htm``), the same through every host of the site."""
    url: Mapped[str] = mapped_column(Text)
    """Canonical URL of the article's first page."""
    title: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    """The credited source (``chinadaily.com.cn``), or NULL when the page names none."""
    published_on: Mapped[date] = mapped_column(Date, index=True)
    body: Mapped[str] = mapped_column(Text)
    """Paragraphs of every fetched page, joined by a blank line."""
    page_count: Mapped[int] = mapped_column(Integer)
    complete: Mapped[bool] = mapped_column(Boolean)
    """False when a page of the article could not be fetched."""
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content_hash: Mapped[str] = mapped_column(String(64))
    """sha256 (hex) of the versioned content (every field but the URL, images included): tells
    an edit from a re-crawl."""
    version: Mapped[int] = mapped_column(Integer)
    """The number of the current version (its row in ``article_versions``): 1, 2, ..."""
    change_seq: Mapped[int] = mapped_column(BigInteger, unique=True, index=True)
    """Position in the database's change order: a new, higher number on every insert and every
    change of content or duplicate marks (not when only ``last_seen_at`` moves). Rows commit in
    this order, so ``WHERE change_seq > :last ORDER BY change_seq`` never skips one."""
    text_hash: Mapped[str] = mapped_column(String(64), index=True)
    """sha256 (hex) of title and body only: equal for a re-post under another article id."""
    duplicate_of: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("articles.article_key", ondelete="SET NULL"), index=True
    )
    """For a re-post (same title and body), the key of the earliest article with that text
    (smallest published_on, then smallest numeric key); NULL for that earliest one."""
    near_duplicate_of: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("articles.article_key", ondelete="SET NULL"), index=True
    )
    """The key of the earlier article this one most resembles (estimated Jaccard similarity of
    3-word shingles at least the threshold; highest similarity, then earliest), or NULL.
    Always NULL for an exact duplicate."""
    near_duplicate_similarity: Mapped[float | None] = mapped_column(Double)
    """The estimated similarity to ``near_duplicate_of`` (0..1), or NULL."""
    minhash: Mapped[bytes | None] = mapped_column(LargeBinary)
    """MinHash signature of title and body (little-endian uint32 values; see
    ``storage.similarity``); NULL only for rows migrated from 0001 until they are indexed."""
    etag: Mapped[str | None] = mapped_column(Text)
    """The ``ETag`` the server sent with the first page when last fetched (not content)."""
    last_modified: Mapped[str | None] = mapped_column(Text)
    """The ``Last-Modified`` the server sent with the first page when last fetched (not content)."""

    images: Mapped[list[ArticleImage]] = relationship(
        back_populates="article",
        order_by="ArticleImage.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class ArticleImage(Base):
    """An image of an article, in reading order."""

    __tablename__ = "article_images"
    __table_args__ = (
        UniqueConstraint("article_id", "position"),
        CheckConstraint("position >= 1", name="position_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    """1-based position of the image within the whole article."""
    url: Mapped[str] = mapped_column(Text)
    caption: Mapped[str | None] = mapped_column(Text)

    article: Mapped[Article] = relationship(back_populates="images")


class CrawlRun(Base):
    """One crawl: when it ran, how it ended and its final counters."""

    __tablename__ = "crawl_runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'interrupted')", name="status_known"
        ),
        CheckConstraint("trigger IN ('manual', 'schedule')", name="trigger_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    stats: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    """The crawl's counters (Scrapy stats, JSON-safe), filled in when the run finishes."""
    degraded_pages: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    """Pages the crawl fetched but could not read (no title, date or body: layout drift); a run
    with any is degraded, whatever its status."""
    host: Mapped[str | None] = mapped_column(String(255))
    """Host name of the machine whose process ran the crawl."""
    pid: Mapped[int | None] = mapped_column(Integer)
    """Process id of the crawl on that host."""


class ArticleVersion(Base):
    """One version of an article's content, the current one included; never changed later."""

    __tablename__ = "article_versions"
    __table_args__ = (
        UniqueConstraint("article_id", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    """1 for the content first stored, then 2, 3, ... without gaps."""
    content_hash: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    """The URL the version was fetched from."""
    title: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    published_on: Mapped[date] = mapped_column(Date)
    body: Mapped[str] = mapped_column(Text)
    page_count: Mapped[int] = mapped_column(Integer)
    complete: Mapped[bool] = mapped_column(Boolean)
    images: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    """``[{"position": 1, "url": ..., "caption": ...}, ...]`` in reading order."""
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """When the crawl that wrote this version saw it."""
    crawl_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("crawl_runs.id", ondelete="SET NULL"), index=True
    )
    """The crawl run that wrote this version (NULL: written outside a run, or migrated)."""


class ArticleLshBand(Base):
    """The LSH index of article signatures: one row per band, looked up by bucket."""

    __tablename__ = "article_lsh_bands"
    __table_args__ = (Index(None, "bucket", "article_id"),)

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    band: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    """0-based band number."""
    bucket: Mapped[int] = mapped_column(BigInteger)
    """Signed 64-bit hash of the band number and the band's signature values."""


class ChangeCounter(Base):
    """The last ``change_seq`` handed out (one row, id 1).

    Every writing transaction locks this row first and bumps it last, so transactions take
    change numbers in the order they commit.
    """

    __tablename__ = "change_counter"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class SimilarityIndex(Base):
    """How the stored signatures and LSH bands were made (one row, id 1; none before the first
    write): a different setting makes the repository rebuild them."""

    __tablename__ = "similarity_index"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signature_format: Mapped[str] = mapped_column(String(64))
    """Shingling and MinHash scheme of the signatures (``storage.similarity.SIGNATURE_FORMAT``)."""
    permutations: Mapped[int] = mapped_column(Integer)
    bands: Mapped[int] = mapped_column(Integer)
    rows_per_band: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[float] = mapped_column(Double)
    """The near-duplicate threshold the marks were computed with."""
    built_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CrawlLockRecord(Base):
    """Who holds the crawl lock (``storage.locks``): on SQLite the lease itself, on PostgreSQL
    a note beside the advisory lock."""

    __tablename__ = "crawl_lock"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    """The lock's name (``crawl``)."""
    holder: Mapped[str] = mapped_column(String(32))
    """A random id per acquisition."""
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """End of the SQLite lease unless renewed; NULL on PostgreSQL."""


class SchedulerJob(Base):
    """APScheduler 3's job table (``SQLAlchemyJobStore``), here so that migrations create it."""

    __tablename__ = "apscheduler_jobs"

    # Exactly APScheduler's own definition of the table.
    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)
