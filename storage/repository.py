"""Reads and writes of the tianjin-updates database: the only code here that writes SQL.

Rules:

* ``save_articles`` writes a batch in ONE transaction with a fixed number of statements (not
  one per article): a crash or error leaves every article of the batch as it was. A batch of
  new articles is one look-up of their keys, one executemany INSERT per table, two look-ups
  for duplicates, the counter; every list is bound as one parameter (an array on PostgreSQL,
  JSON read by ``json_each`` on SQLite) and every statement is built once (``_Sql``): its SQL
  never changes, so SQLAlchemy's compiled cache and the drivers' prepared statements serve it
  again. The content fingerprints (hashes, signature, LSH buckets) are computed by ``sign``,
  which callers run before the write;
* every writing transaction first locks the one row of ``change_counter`` and hands out
  ``change_seq`` numbers from it, bumping it last. Writers are thereby serialised (SQLite's
  ``BEGIN IMMEDIATE`` does the same there) and commit in change_seq order, so a reader paging
  with ``change_seq > :last`` never skips a row that commits later with a smaller number;
  version numbers, duplicate marks and LSH look-ups are decided inside that lock, race-free;
* identity across runs lives in the database: articles are upserted by ``article_key`` behind
  its UNIQUE constraint (``INSERT … ON CONFLICT DO NOTHING``), so two crawls writing the same
  article at once still leave one row;
* an unchanged article (same ``content_hash``) only has ``last_seen_at`` moved forward: no
  version, no change_seq. A changed one gets a new ``article_versions`` row and the article
  row and images rewritten. An incomplete fetch of a complete article is not a change (it would
  replace the stored text with a truncated one);
* content duplicates are marked in the same transaction: ``duplicate_of`` for the same title
  and body (the earliest article by published_on, then numeric key, is the original, whatever
  the order articles arrive in) and ``near_duplicate_of`` for an estimated Jaccard similarity
  of at least the threshold with an earlier article, found through the LSH bands in
  ``article_lsh_bands`` (``storage.similarity``): a handful of indexed look-ups per batch,
  never a comparison with every stored article;
* every database failure is raised as a one-line ``StorageError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from itertools import repeat
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Dialect,
    Engine,
    Integer,
    String,
    Table,
    Text,
    all_,
    any_,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeDecorator, TypeEngine

from storage.db import WRITE_OPTION, storage_errors
from storage.models import (
    RUN_STATUSES,
    RUN_TRIGGERS,
    Article,
    ArticleImage,
    ArticleLshBand,
    ArticleVersion,
    ChangeCounter,
    CrawlRun,
    SimilarityIndex,
)
from storage.similarity import (
    DEFAULT_PERMUTATIONS,
    DEFAULT_THRESHOLD,
    SIGNATURE_FORMAT,
    LshLayout,
    MinHasher,
    lsh_layout,
    similarity,
    text_hash,
)

articles = cast(Table, Article.__table__)
article_images = cast(Table, ArticleImage.__table__)
article_versions = cast(Table, ArticleVersion.__table__)
article_lsh_bands = cast(Table, ArticleLshBand.__table__)
change_counter = cast(Table, ChangeCounter.__table__)
similarity_index = cast(Table, SimilarityIndex.__table__)
crawl_runs = cast(Table, CrawlRun.__table__)

# Bound parameters per statement stay below SQLite's limit (32766) and PostgreSQL's (65535):
# items per IN list of the reads (the write path binds a whole list as one parameter).
_KEYS_PER_SELECT = 1000
# Articles signed / indexed per round while rebuilding the similarity index.
_REBUILD_CHUNK = 500

_T = TypeVar("_T")


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
    etag: str | None = None
    """HTTP validators of the first page (not content: no version when only they change)."""
    last_modified: str | None = None
    signature: bytes | None = field(default=None, repr=False, compare=False)
    """MinHash signature of title and body (``Repository.sign``); computed by ``save_articles``
    when None. Not read back."""
    _prints: _Prints | None = field(default=None, init=False, repr=False, compare=False)
    """The other content fingerprints ``Repository.sign`` computed, and what from: used only
    while the record still holds those very values (a copy or an edit starts afresh)."""


@dataclass(kw_only=True)
class StoredArticle(ArticleRecord):
    """An article read back from the database, with its bookkeeping columns."""

    id: int
    first_seen_at: datetime
    last_seen_at: datetime
    content_hash: str
    version: int
    """Number of the current version (see ``Repository.versions``)."""
    change_seq: int
    """Position in the change order (see ``Repository.changes_since``)."""
    duplicate_of: str | None = None
    """Key of the earliest article with the same title and body, if this is a re-post."""
    near_duplicate_of: str | None = None
    """Key of the earlier article this one most resembles, if similar enough."""
    near_duplicate_similarity: float | None = None
    """Estimated Jaccard similarity to ``near_duplicate_of``."""


@dataclass(frozen=True)
class VersionRecord:
    """A row of ``article_versions``: an article's content as one crawl found it."""

    version: int
    content_hash: str
    url: str
    title: str
    source: str | None
    published_on: date
    body: str
    page_count: int
    complete: bool
    images: list[ImageRecord]
    fetched_at: datetime
    crawl_run_id: int | None


@dataclass(frozen=True)
class RunRecord:
    """A row of ``crawl_runs``."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    trigger: str
    stats: dict[str, Any]
    host: str | None = None
    """Host name of the machine that ran the crawl (NULL before schema 0003)."""
    pid: int | None = None
    """Process id of the crawl on that host."""
    degraded_pages: int = 0
    """Pages fetched but not readable (layout drift)."""


@dataclass(frozen=True)
class KnownArticle:
    """What an incremental crawl needs to know of a stored article."""

    complete: bool
    published_on: date
    page_count: int
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class SaveResult:
    """What ``save_articles`` did, by article key.

    ``new``, ``updated`` and ``unchanged`` split the batch; ``duplicates`` and
    ``near_duplicates`` are the keys of the batch marked so after the save (whatever else they
    are); ``remarked`` the keys of other articles whose marks this batch changed.
    """

    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    near_duplicates: list[str] = field(default_factory=list)
    remarked: list[str] = field(default_factory=list)

    @property
    def versions(self) -> int:
        """How many version rows were written (one per new or updated article)."""
        return len(self.new) + len(self.updated)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "new": len(self.new),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "duplicate": len(self.duplicates),
            "near_duplicate": len(self.near_duplicates),
        }


@dataclass(frozen=True, slots=True)
class _Prints:
    """Fingerprints of an article's content (``Repository.sign``)."""

    basis: tuple[Any, ...]
    """What they were computed from (``_basis``)."""
    content_hash: str
    text_hash: str
    layout: LshLayout
    buckets: list[int]
    """The LSH buckets of the signature in ``layout``."""

    def fits(self, basis: tuple[Any, ...], layout: LshLayout) -> bool:
        """True when computed from ``basis`` (the same title, body and signature objects:
        they are immutable, so the same object is the same value) for ``layout``."""
        old = self.basis
        return (
            old[0] is basis[0]
            and old[1] is basis[1]
            and old[2] is basis[2]
            and old[3:] == basis[3:]
            and self.layout == layout
        )


def _basis(record: ArticleRecord) -> tuple[Any, ...]:
    return (
        record.title,
        record.body,
        record.signature,
        record.source,
        record.published_on,
        record.page_count,
        record.complete,
        tuple(record.images),
    )


def content_hash(record: ArticleRecord) -> str:
    """sha256 (hex) of the versioned content of ``record``: every stored field and image but
    the key and the URL (the same article reached through another host is not an edit).

    The hashed bytes are the compact JSON (``ensure_ascii=False``) of ``[title, source,
    published_on, body, page_count, complete, [[position, url, caption], ...]]``.
    """
    return _fingerprints(record)[0]


# What json.dumps(..., ensure_ascii=False) writes with a backslash and a letter (the backslash
# itself first); in UTF-8 none of these bytes occurs inside a multi-byte character.
_JSON_ESCAPES = (
    (b"\\", b"\\\\"),
    (b'"', b'\\"'),
    (b"\n", b"\\n"),
    (b"\r", b"\\r"),
    (b"\t", b"\\t"),
    (b"\b", b"\\b"),
    (b"\f", b"\\f"),
)
_CONTROL_BYTES = bytes(range(0x20))


def _json_string(value: str) -> bytes:
    """UTF-8 of ``json.dumps(value, ensure_ascii=False)`` without its quotes: the same bytes,
    made by bulk ``bytes.replace`` calls (json's encoder copies a non-ASCII text one character
    at a time, several times slower on an article body)."""
    encoded = value.encode()
    for char, escaped in _JSON_ESCAPES:
        if char in encoded:
            encoded = encoded.replace(char, escaped)
    if len(encoded.translate(None, _CONTROL_BYTES)) != len(encoded):
        # Another control character, which json writes as \u00XX: rare enough for json.
        return json.dumps(value, ensure_ascii=False).encode()[1:-1]
    return encoded


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _fingerprints(record: ArticleRecord) -> tuple[str, str]:
    """``content_hash(record)`` and ``text_hash(record.title, record.body)``, with the title and
    body (most of the bytes) JSON-encoded once for both."""
    published = record.published_on.isoformat() if record.published_on is not None else None
    if not (isinstance(record.title, str) and isinstance(record.body, str)):
        payload = [record.title, record.source, published, record.body]
        payload += [record.page_count, record.complete, _image_lists(record)]
        return (
            hashlib.sha256(_json(payload)).hexdigest(),
            text_hash(record.title, record.body),
        )
    title = _json_string(record.title)
    body = _json_string(record.body)
    # [title, body]
    texts = hashlib.sha256(b'["')
    texts.update(title)
    texts.update(b'","')
    texts.update(body)
    texts.update(b'"]')
    # [title, source, published, body, page_count, complete, images]
    content = hashlib.sha256(b'["')
    content.update(title)
    content.update(b'",')
    content.update(_json_value(record.source))
    content.update(b",")
    content.update(_json_value(published))
    content.update(b',"')
    content.update(body)
    content.update(b'",')
    content.update(_json([record.page_count, record.complete, _image_lists(record)])[1:])
    return content.hexdigest(), texts.hexdigest()


def _json_value(value: str | None) -> bytes:
    if value is None:
        return b"null"
    if isinstance(value, str):
        return b'"' + _json_string(value) + b'"'
    return _json(value)


def _image_lists(record: ArticleRecord) -> list[list[Any]]:
    return [[image.position, image.url, image.caption] for image in record.images]


def order_key(published_on: date, article_key: str) -> tuple[Any, ...]:
    """Sort key of "earlier": published_on, then the numeric article key (non-numeric keys,
    which the site does not have, after the numeric ones of the same day, by text)."""
    if article_key.isdigit():
        return (published_on, 0, int(article_key), "")
    return (published_on, 1, 0, article_key)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got {value!r}")


def _chunks(items: Sequence[_T], size: int = _KEYS_PER_SELECT) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _images_json(images: Iterable[ImageRecord]) -> list[dict[str, Any]]:
    return [{"position": i.position, "url": i.url, "caption": i.caption} for i in images]


class _Seqs:
    """change_seq numbers of one writing transaction, handed out after ``start``; on SQLite
    also the ids of new articles, after ``last_id`` (its write lock keeps other writers out)."""

    def __init__(self, start: int, last_id: int | None = None) -> None:
        self.start = start
        self.last = start
        self.last_id = last_id

    def next_id(self) -> int:
        assert self.last_id is not None
        self.last_id += 1
        return self.last_id

    def next(self) -> int:
        self.last += 1
        return self.last

    def renew(self, current: int) -> int:
        """The number for a row changed again: its own if this transaction gave it one."""
        return current if current > self.start else self.next()


@dataclass
class _Existing:
    """What ``save_articles`` needs of a stored article."""

    id: int
    content_hash: str
    text_hash: str
    version: int
    complete: bool
    published_on: date
    last_seen_at: datetime
    duplicate_of: str | None
    near_duplicate_of: str | None
    near_duplicate_similarity: float | None = None


@dataclass
class _Node:
    """An article as the duplicate marking sees it: its place in time, text and marks."""

    id: int
    key: str
    published_on: date
    text_hash: str
    signature: bytes | None
    duplicate_of: str | None
    near_of: str | None
    near_sim: float | None
    change_seq: int
    # The marks decided in this transaction (start as the stored ones).
    want_dup: str | None = None
    want_near: str | None = None
    want_sim: float | None = None

    def __post_init__(self) -> None:
        self.want_dup, self.want_near, self.want_sim = (
            self.duplicate_of,
            self.near_of,
            self.near_sim,
        )

    @property
    def order(self) -> tuple[Any, ...]:
        return order_key(self.published_on, self.key)

    @property
    def changed(self) -> bool:
        return (self.want_dup, self.want_near, self.want_sim) != (
            self.duplicate_of,
            self.near_of,
            self.near_sim,
        )


# The columns of ``articles`` that hold an article's content (its version), and those an edit
# rewrites.
_CONTENT = (
    "url",
    "title",
    "source",
    "published_on",
    "body",
    "page_count",
    "complete",
    "content_hash",
    "etag",
    "last_modified",
)
_REWRITTEN = (*_CONTENT, "last_seen_at", "text_hash", "minhash", "version", "change_seq")

_NODE_COLUMNS = (
    articles.c.id,
    articles.c.article_key,
    articles.c.published_on,
    articles.c.text_hash,
    articles.c.minhash,
    articles.c.duplicate_of,
    articles.c.near_duplicate_of,
    articles.c.near_duplicate_similarity,
    articles.c.change_seq,
)

# Every column but the signature, for reading articles back.
_READ_COLUMNS = tuple(c for c in articles.c if c.name != "minhash")


def _node(row: Any) -> _Node:
    return _Node(
        id=row.id,
        key=row.article_key,
        published_on=row.published_on,
        text_hash=row.text_hash,
        signature=row.minhash,
        duplicate_of=row.duplicate_of,
        near_of=row.near_duplicate_of,
        near_sim=row.near_duplicate_similarity,
        change_seq=row.change_seq,
    )


class _JsonList(TypeDecorator[Sequence[Any]]):
    """A list of numbers or strings bound as one JSON array (SQLite reads it with json_each)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Sequence[Any] | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(list(value))


def _is_one_of(dialect: str, column: Any, name: str, item: TypeEngine[Any]) -> ColumnElement[bool]:
    """``column`` equal to an item of the list bound as ``name``: one parameter however long the
    list, so the statement's text (and the server's prepared plan) never changes with it."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(item)))
    values = func.json_each(bindparam(name, type_=_JsonList())).table_valued("value")
    return column.in_(select(values.c.value))


def _is_none_of(dialect: str, column: Any, name: str, item: TypeEngine[Any]) -> ColumnElement[bool]:
    """``column`` equal to no item of the list bound as ``name`` (see ``_is_one_of``)."""
    if dialect == "postgresql":
        return column != all_(bindparam(name, type_=postgresql.ARRAY(item)))
    values = func.json_each(bindparam(name, type_=_JsonList())).table_valued("value")
    return column.not_in(select(values.c.value))


# PostgreSQL: every look-up of a write reads a few rows through an index. Before the first
# ANALYZE of a growing table the planner's estimates are far off and it may prefer a scan of a
# whole table (sequential, or a full index scan feeding a hash or merge join), and a plan that
# PostgreSQL keeps (psycopg's prepared statements, the foreign-key checks of every inserted row)
# would keep it: a write would then cost more the bigger the database. With those plans off for
# the write transaction, every plan made in it, kept ones included, is index look-ups and nested
# loops. (Forcing custom plans instead would plan each foreign-key check of each inserted row
# anew: twice the cost of a batch.)
_PG_WRITE_SETTINGS = (
    literal_column("set_config('enable_seqscan', 'off', true)"),
    literal_column("set_config('enable_hashjoin', 'off', true)"),
    literal_column("set_config('enable_mergejoin', 'off', true)"),
)

_LSH_INSERT = {
    # Three arrays in one statement: many times faster than a row-by-row executemany.
    "postgresql": "INSERT INTO article_lsh_bands (article_id, band, bucket) SELECT * FROM "
    "unnest(%(ids)s::integer[], %(bands)s::smallint[], %(buckets)s::bigint[])",
    # Plain tuples to the driver's executemany: no per-row parameter dictionaries.
    "sqlite": "INSERT INTO article_lsh_bands (article_id, band, bucket) VALUES (?, ?, ?)",
}


class _Sql:
    """The statements of the write path for one dialect, built once: executing a ready
    statement skips building it and, through SQLAlchemy's compiled cache, compiling it."""

    def __init__(self, dialect: str) -> None:
        index_columns = (
            similarity_index.c.id.label("index_id"),
            similarity_index.c.signature_format,
            similarity_index.c.permutations,
            similarity_index.c.bands,
            similarity_index.c.rows_per_band,
            similarity_index.c.threshold,
        )
        # The counter's row, locked, and the similarity index's row (see ``_writing``).
        self.index: Any = None
        if dialect == "postgresql":
            # Read after the lock is granted, by a statement of its own: the statement that
            # waited for the lock sees other tables as they were when it started.
            self.lock = (
                select(*_PG_WRITE_SETTINGS, change_counter.c.value)
                .where(change_counter.c.id == 1)
                .with_for_update()
            )
            self.index = select(*index_columns).where(similarity_index.c.id == 1)
        else:
            # BEGIN IMMEDIATE took the write lock before this first read: it sees the latest.
            self.lock = (
                select(
                    change_counter.c.value,
                    *index_columns,
                    select(func.coalesce(func.max(articles.c.id), 0))
                    .scalar_subquery()
                    .label("last_id"),
                )
                .select_from(change_counter.outerjoin(similarity_index, similarity_index.c.id == 1))
                .where(change_counter.c.id == 1)
            )
        self.bump = (
            update(change_counter)
            .where(change_counter.c.id == 1)
            .values(value=bindparam("b_value", type_=BigInteger))
        )
        self.existing = select(
            articles.c.article_key,
            articles.c.id,
            articles.c.content_hash,
            articles.c.text_hash,
            articles.c.version,
            articles.c.complete,
            articles.c.published_on,
            articles.c.last_seen_at,
            articles.c.duplicate_of,
            articles.c.near_duplicate_of,
            articles.c.near_duplicate_similarity,
        ).where(_is_one_of(dialect, articles.c.article_key, "keys", String()))
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.insert_new = insert(articles).on_conflict_do_nothing(
            index_elements=[articles.c.article_key]
        )
        if dialect == "postgresql":
            self.insert_new = self.insert_new.returning(articles.c.article_key, articles.c.id)
        # Which of the rows given their ids (from ``first_id`` on) were inserted.
        self.inserted = select(articles.c.article_key, articles.c.id).where(
            articles.c.id >= bindparam("first_id", type_=Integer)
        )
        self.rewrite = (
            update(articles)
            .where(articles.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in _REWRITTEN})
        )
        self.validators = (
            update(articles)
            .where(articles.c.id == bindparam("row_id"))
            .values(etag=bindparam("new_etag"), last_modified=bindparam("new_last_modified"))
        )
        seen_at = bindparam("seen_at", type_=articles.c.last_seen_at.type)
        self.touch = (
            update(articles)
            .where(
                _is_one_of(dialect, articles.c.id, "ids", Integer()),
                articles.c.last_seen_at < seen_at,
            )
            .values(last_seen_at=seen_at)
        )
        self.delete_images = delete(article_images).where(
            _is_one_of(dialect, article_images.c.article_id, "ids", Integer())
        )
        self.insert_images = article_images.insert()
        self.insert_versions = article_versions.insert()
        self.delete_bands = delete(article_lsh_bands).where(
            _is_one_of(dialect, article_lsh_bands.c.article_id, "ids", Integer())
        )
        self.insert_bands = _LSH_INSERT[dialect]
        self.nodes_by_id = select(*_NODE_COLUMNS).where(
            _is_one_of(dialect, articles.c.id, "ids", Integer())
        )
        # The other articles of some texts (those in hand left out).
        self.nodes_by_text = select(*_NODE_COLUMNS).where(
            _is_one_of(dialect, articles.c.text_hash, "texts", String()),
            _is_none_of(dialect, articles.c.id, "known", Integer()),
        )
        self.nodes_by_near = select(*_NODE_COLUMNS).where(
            _is_one_of(dialect, articles.c.near_duplicate_of, "keys", String())
        )
        # The articles sharing a bucket with the subjects, with what the marking needs of them.
        bands = article_lsh_bands.join(articles, articles.c.id == article_lsh_bands.c.article_id)
        if dialect == "postgresql":
            wanted = bands
            bucket_condition = _is_one_of(
                dialect, article_lsh_bands.c.bucket, "buckets", BigInteger()
            )
        else:
            # Bucket by bucket from the list into the index: faster than IN (list) on SQLite.
            buckets = func.json_each(bindparam("buckets", type_=_JsonList())).table_valued("value")
            wanted = buckets.join(bands, article_lsh_bands.c.bucket == buckets.c.value)
            bucket_condition = true()
        self.candidates = (
            select(article_lsh_bands.c.bucket, *_NODE_COLUMNS)
            .select_from(wanted)
            .where(
                bucket_condition,
                _is_none_of(dialect, article_lsh_bands.c.article_id, "subjects", Integer()),
            )
        )
        self.write_marks = (
            update(articles)
            .where(articles.c.id == bindparam("b_id"))
            .values(
                duplicate_of=bindparam("b_dup"),
                near_duplicate_of=bindparam("b_near"),
                near_duplicate_similarity=bindparam("b_sim"),
                change_seq=bindparam("b_seq"),
            )
        )


_sql = cache(_Sql)


class Repository:
    """Article and crawl-run storage on one engine (SQLite or PostgreSQL).

    ``near_duplicate_threshold`` and ``minhash_permutations`` decide how near-duplicates are
    found; every writer of one database should use the same values (a writer with others
    rebuilds the similarity index and the marks to its own, see ``ensure_similarity_index``).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        near_duplicate_threshold: float = DEFAULT_THRESHOLD,
        minhash_permutations: int = DEFAULT_PERMUTATIONS,
    ) -> None:
        if minhash_permutations < 16:
            raise ValueError(
                f"MinHash permutations must be at least 16, got {minhash_permutations}"
            )
        self._engine = engine
        self._threshold = float(near_duplicate_threshold)
        self._layout: LshLayout = lsh_layout(self._threshold, minhash_permutations)
        self._permutations = minhash_permutations
        self._hasher: MinHasher | None = None  # made when first needed (see MinHasher)
        self._bucket_cache: dict[bytes, list[int]] = {}

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def near_duplicate_threshold(self) -> float:
        return self._threshold

    @property
    def layout(self) -> LshLayout:
        """How this repository cuts signatures into LSH bands."""
        return self._layout

    @contextmanager
    def _transaction(self, action: str, *, write: bool) -> Iterator[Connection]:
        with storage_errors(self._engine, action), self._engine.connect() as connection:
            if write:
                connection.execution_options(**{WRITE_OPTION: True})
            elif connection.dialect.name == "postgresql":
                # One snapshot for every statement of a read (an article and its images agree).
                connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                yield connection

    @contextmanager
    def _writing(self, action: str) -> Iterator[tuple[Connection, _Seqs, Any]]:
        """A write transaction holding the change counter's lock, its change numbers, and the
        row of ``similarity_index`` (None when there is none yet), read with the lock."""
        with self._transaction(action, write=True) as connection:
            sql = _sql(connection.dialect.name)
            row = connection.execute(sql.lock).one()
            seqs = _Seqs(int(row.value), getattr(row, "last_id", None))
            if sql.index is not None:
                index = connection.execute(sql.index).one_or_none()
            else:
                index = row if row.index_id is not None else None
            yield connection, seqs, index
            if seqs.last != seqs.start:
                connection.execute(sql.bump, {"b_value": seqs.last})

    # --- articles ---------------------------------------------------------------------------

    @property
    def hasher(self) -> MinHasher:
        if self._hasher is None:
            self._hasher = MinHasher(self._permutations)
        return self._hasher

    def sign(self, records: Iterable[ArticleRecord]) -> None:
        """Compute the content fingerprints of every record that lacks fitting ones: its
        MinHash signature and LSH buckets, its content and text hashes (pure CPU work: callers
        may do it before ``save_articles``, away from the write transaction; ``save_articles``
        does it for the records that need it)."""
        records = list(records)
        size = 4 * self._layout.permutations
        unsigned = [r for r in records if r.signature is None or len(r.signature) != size]
        if unsigned:
            signatures = self.hasher.sign_many((r.title, r.body) for r in unsigned)
            for record, signature in zip(unsigned, signatures, strict=True):
                record.signature = signature
        for record in records:
            basis = _basis(record)
            if record._prints is None or not record._prints.fits(basis, self._layout):
                content, text_ = _fingerprints(record)
                buckets = self._layout.buckets(cast(bytes, record.signature))
                record._prints = _Prints(basis, content, text_, self._layout, buckets)

    def save_articles(
        self, records: Sequence[ArticleRecord], seen_at: datetime, run_id: int | None = None
    ) -> SaveResult:
        """Upsert ``records`` in one transaction, seen at ``seen_at`` (aware) by crawl run
        ``run_id``; say what changed. When a key occurs twice in ``records`` the last one wins.
        """
        _require_aware(seen_at, "seen_at")
        by_key = {record.article_key: record for record in records}
        result = SaveResult()
        if not by_key:
            return result
        # Writers are serialised by the change counter's lock; a fixed key order still keeps the
        # statements (and any other writer's row locks) in one order.
        keys = sorted(by_key)
        self.sign(by_key.values())
        hashes: dict[str, str] = {}
        texts: dict[str, str] = {}
        # The cache serves one batch: kept across batches it would grow with the crawl.
        self._bucket_cache.clear()
        for key in keys:
            prints = cast(_Prints, by_key[key]._prints)
            hashes[key], texts[key] = prints.content_hash, prints.text_hash
            self._remember_buckets(cast(bytes, by_key[key].signature), prints.buckets)
        noun = "article" if len(keys) == 1 else "articles"
        with self._writing(f"saving {len(keys)} {noun}") as (connection, seqs, index):
            self._ensure_index(connection, seqs, index)
            existing = self._existing(connection, keys)
            inserted = self._insert_new(
                connection,
                [by_key[k] for k in keys if k not in existing],
                hashes,
                texts,
                seen_at,
                seqs,
            )
            missed = [k for k in keys if k not in existing and k not in inserted]
            if missed:
                # Written by a concurrent crawl between our SELECT and INSERT: now an existing row.
                existing.update(self._existing(connection, missed))

            changed: list[str] = []
            unchanged: list[str] = []
            for key in keys:
                if key in inserted:
                    continue
                stored = existing[key]
                truncated = stored.complete and not by_key[key].complete
                if stored.content_hash == hashes[key] or truncated:
                    unchanged.append(key)
                else:
                    changed.append(key)
            if unchanged:
                self._touch(connection, [existing[k].id for k in unchanged], seen_at)
                self._set_validators(connection, [(existing[k].id, by_key[k]) for k in unchanged])
            rewritten: dict[str, int] = {}
            if changed:
                rewritten = self._rewrite(
                    connection,
                    [(existing[k], by_key[k]) for k in changed],
                    hashes,
                    texts,
                    seen_at,
                    seqs,
                )

            ids = {**{k: existing[k].id for k in changed}, **{k: v[0] for k, v in inserted.items()}}
            written = [k for k in keys if k in ids]
            self._write_images(
                connection, [ids[k] for k in changed], [(ids[k], by_key[k]) for k in written]
            )
            self._write_versions(
                connection,
                [
                    (ids[k], existing[k].version + 1 if k in existing else 1, by_key[k])
                    for k in written
                ],
                hashes,
                seen_at,
                run_id,
            )
            retexted = [k for k in changed if existing[k].text_hash != texts[k]]
            self._write_bands(
                connection,
                [existing[k].id for k in retexted],
                [(ids[k], cast(bytes, by_key[k].signature)) for k in list(inserted) + retexted],
            )
            # Articles whose place among duplicates may have changed: new ones, new texts, new
            # dates (the old text and date of a changed article matter too: it left a group).
            # Their rows are as this transaction wrote them: known without reading them back.
            moved: list[_Node] = []
            for key in written:
                record = by_key[key]
                if key in inserted:
                    id_, seq = inserted[key]
                    moved.append(
                        _Node(
                            id_,
                            key,
                            record.published_on,
                            texts[key],
                            record.signature,
                            None,
                            None,
                            None,
                            seq,
                        )
                    )
                    continue
                stored = existing[key]
                if stored.text_hash != texts[key] or stored.published_on != record.published_on:
                    moved.append(
                        _Node(
                            stored.id,
                            key,
                            record.published_on,
                            texts[key],
                            record.signature,
                            stored.duplicate_of,
                            stored.near_duplicate_of,
                            stored.near_duplicate_similarity,
                            rewritten[key],
                        )
                    )
            nodes = self._mark_duplicates(
                connection,
                seqs,
                moved,
                {existing[node.key].text_hash for node in moved if node.key in existing},
                {node.id for node in moved if node.key in existing},
            )

        marks = {node.key: (node.want_dup, node.want_near) for node in nodes.values()}
        for key in keys:
            if key not in marks and key in existing:
                marks[key] = (existing[key].duplicate_of, existing[key].near_duplicate_of)
        result.new = [k for k in keys if k in inserted]
        result.updated = changed
        result.unchanged = unchanged
        result.duplicates = [k for k in keys if marks[k][0] is not None]
        result.near_duplicates = [k for k in keys if marks[k][1] is not None]
        result.remarked = sorted(
            node.key for node in nodes.values() if node.changed and node.key not in by_key
        )
        return result

    def _existing(self, connection: Connection, keys: Sequence[str]) -> dict[str, _Existing]:
        """The stored articles among ``keys``, by key (one statement)."""
        rows = connection.execute(_sql(connection.dialect.name).existing, {"keys": list(keys)})
        return {
            row.article_key: _Existing(
                id=row.id,
                content_hash=row.content_hash,
                text_hash=row.text_hash,
                version=row.version,
                complete=row.complete,
                published_on=row.published_on,
                last_seen_at=row.last_seen_at,
                duplicate_of=row.duplicate_of,
                near_duplicate_of=row.near_duplicate_of,
                near_duplicate_similarity=row.near_duplicate_similarity,
            )
            for row in rows
        }

    def _insert_new(
        self,
        connection: Connection,
        records: Sequence[ArticleRecord],
        hashes: Mapping[str, str],
        texts: Mapping[str, str],
        seen_at: datetime,
        seqs: _Seqs,
    ) -> dict[str, tuple[int, int]]:
        """Insert the rows of ``records``; ``{article_key: (id, change_seq)}`` of those this
        call inserted (the others were there already: a concurrent writer's)."""
        if not records:
            return {}
        rows = []
        for record in records:
            row = self._content_values(record, hashes[record.article_key])
            row["article_key"] = record.article_key
            row["first_seen_at"] = row["last_seen_at"] = seen_at
            row["text_hash"] = texts[record.article_key]
            row["minhash"] = record.signature
            row["version"] = 1
            row["change_seq"] = seqs.next()
            rows.append(row)
        seq_of = {row["article_key"]: row["change_seq"] for row in rows}
        sql = _sql(connection.dialect.name)
        if seqs.last_id is None:
            # executemany with RETURNING: SQLAlchemy sends it as multi-row INSERTs.
            found = connection.execute(sql.insert_new, rows)
            return {key: (id_, seq_of[key]) for key, id_ in found}
        # SQLite: the ids are ours to give (no other writer until we commit); a plain
        # executemany costs less than RETURNING. A row whose key was there after all
        # (``_existing`` missed it) is skipped: only then are the ids read back.
        first_id = seqs.last_id + 1
        for row in rows:
            row["id"] = seqs.next_id()
        if connection.execute(sql.insert_new, rows).rowcount == len(rows):
            return {row["article_key"]: (row["id"], row["change_seq"]) for row in rows}
        found = connection.execute(sql.inserted, {"first_id": first_id})
        return {key: (id_, seq_of[key]) for key, id_ in found}

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
            "etag": record.etag,
            "last_modified": record.last_modified,
        }

    @staticmethod
    def _set_validators(connection: Connection, rows: Sequence[tuple[int, ArticleRecord]]) -> None:
        """Keep the newest HTTP validators of unchanged articles (one executemany)."""
        params = [
            {"row_id": row_id, "new_etag": r.etag, "new_last_modified": r.last_modified}
            for row_id, r in rows
            if r.etag or r.last_modified
        ]
        if params:
            connection.execute(_sql(connection.dialect.name).validators, params)

    @staticmethod
    def _touch(connection: Connection, ids: Sequence[int], seen_at: datetime) -> None:
        """Move ``last_seen_at`` of unchanged articles forward (never back); nothing else."""
        if ids:
            connection.execute(
                _sql(connection.dialect.name).touch, {"ids": list(ids), "seen_at": seen_at}
            )

    def _rewrite(
        self,
        connection: Connection,
        changes: Sequence[tuple[_Existing, ArticleRecord]],
        hashes: Mapping[str, str],
        texts: Mapping[str, str],
        seen_at: datetime,
        seqs: _Seqs,
    ) -> dict[str, int]:
        """Overwrite the content of changed articles: next version, new change_seq (returned,
        by key)."""
        rows = []
        for stored, record in changes:
            row = {
                f"b_{name}": value
                for name, value in self._content_values(record, hashes[record.article_key]).items()
            }
            row["b_id"] = stored.id
            row["b_last_seen_at"] = max(stored.last_seen_at, seen_at)
            row["b_text_hash"] = texts[record.article_key]
            row["b_minhash"] = record.signature
            row["b_version"] = stored.version + 1
            row["b_change_seq"] = seqs.next()
            rows.append(row)
        connection.execute(_sql(connection.dialect.name).rewrite, rows)
        return {
            record.article_key: row["b_change_seq"]
            for (_, record), row in zip(changes, rows, strict=True)
        }

    @staticmethod
    def _write_images(
        connection: Connection,
        replaced: Sequence[int],
        written: Sequence[tuple[int, ArticleRecord]],
    ) -> None:
        """Delete the images of the ``replaced`` articles, insert those of the ``written``."""
        sql = _sql(connection.dialect.name)
        if replaced:
            connection.execute(sql.delete_images, {"ids": list(replaced)})
        rows = [
            {"article_id": id_, "position": i.position, "url": i.url, "caption": i.caption}
            for id_, record in written
            for i in record.images
        ]
        if rows:
            connection.execute(sql.insert_images, rows)

    @staticmethod
    def _write_versions(
        connection: Connection,
        versions: Sequence[tuple[int, int, ArticleRecord]],
        hashes: Mapping[str, str],
        seen_at: datetime,
        run_id: int | None,
    ) -> None:
        if not versions:
            return
        connection.execute(
            _sql(connection.dialect.name).insert_versions,
            [
                {
                    "article_id": id_,
                    "version": number,
                    "content_hash": hashes[record.article_key],
                    "url": record.url,
                    "title": record.title,
                    "source": record.source,
                    "published_on": record.published_on,
                    "body": record.body,
                    "page_count": record.page_count,
                    "complete": record.complete,
                    "images": _images_json(record.images),
                    "fetched_at": seen_at,
                    "crawl_run_id": run_id,
                }
                for id_, number, record in versions
            ],
        )

    def _write_bands(
        self,
        connection: Connection,
        replaced: Sequence[int],
        signed: Sequence[tuple[int, bytes]],
    ) -> None:
        """Replace the LSH bands of the ``replaced`` articles, add those of the ``signed``."""
        sql = _sql(connection.dialect.name)
        if replaced:
            connection.execute(sql.delete_bands, {"ids": list(replaced)})
        if not signed:
            return
        if connection.dialect.name == "postgresql":
            ids: list[int] = []
            bands: list[int] = []
            buckets: list[int] = []
            for id_, signature in signed:
                found = self._buckets(signature)
                ids += [id_] * len(found)
                bands += range(len(found))
                buckets += found
            connection.exec_driver_sql(
                sql.insert_bands, {"ids": ids, "bands": bands, "buckets": buckets}
            )
        else:
            rows: list[tuple[int, int, int]] = []
            for id_, signature in signed:
                found = self._buckets(signature)
                rows += zip(repeat(id_), range(len(found)), found)
            connection.exec_driver_sql(sql.insert_bands, rows)

    def _buckets(self, signature: bytes) -> list[int]:
        """The LSH buckets of ``signature`` (remembered: a batch asks for them twice)."""
        found = self._bucket_cache.get(signature)
        if found is None:
            found = self._layout.buckets(signature)
            self._remember_buckets(signature, found)
        return found

    def _remember_buckets(self, signature: bytes, buckets: list[int]) -> None:
        if len(self._bucket_cache) >= 4096:
            self._bucket_cache.clear()
        self._bucket_cache[signature] = buckets

    # --- duplicate marks --------------------------------------------------------------------

    @staticmethod
    def _nodes(connection: Connection, statement: Any, params: dict[str, Any]) -> list[_Node]:
        return [_node(row) for row in connection.execute(statement, params)]

    def _mark_duplicates(
        self,
        connection: Connection,
        seqs: _Seqs,
        moved: Sequence[_Node],
        old_texts: set[str],
        rewritten_ids: set[int],
    ) -> dict[int, _Node]:
        """Bring the duplicate marks up to date after the ``moved`` articles (their rows as
        just written) were written with a new text or date (``rewritten_ids``: those that
        existed, ``old_texts``: the texts they had); return the articles looked at, by id,
        with their decided marks (changed ones are written).

        The marks are those a fresh computation over the whole database would give, so the
        order in which articles arrive does not matter.
        """
        nodes: dict[int, _Node] = {node.id: node for node in moved}
        if not moved:
            return nodes
        sql = _sql(connection.dialect.name)

        # Exact duplicates: every article of every text involved, the earliest the original.
        texts = {node.text_hash for node in moved} | old_texts
        known = {"texts": sorted(texts), "known": sorted(nodes)}
        for node in self._nodes(connection, sql.nodes_by_text, known):
            nodes.setdefault(node.id, node)
        groups: dict[str, list[_Node]] = defaultdict(list)
        for node in nodes.values():
            if node.text_hash in texts:
                groups[node.text_hash].append(node)
        recompute: set[int] = set()
        left_alone: list[_Node] = []  # articles that stop being a possible near target
        for group in groups.values():
            original = min(group, key=lambda n: n.order)
            for node in group:
                node.want_dup = None if node is original else original.key
                if node.want_dup is not None:
                    node.want_near = node.want_sim = None
                    if node.duplicate_of is None:
                        left_alone.append(node)
                elif node.duplicate_of is not None:
                    recompute.add(node.id)  # no longer a re-post: may be a near-duplicate

        # Articles whose near target changed its text or date, or became a re-post. An article
        # this transaction inserted is nobody's target yet (the mark is a foreign key).
        new_ids = {node.id for node in moved} - rewritten_ids
        targets = sorted(
            {nodes[id_].key for id_ in rewritten_ids}
            | {n.key for n in left_alone if n.id not in new_ids}
        )
        if targets:
            for node in self._nodes(connection, sql.nodes_by_near, {"keys": targets}):
                node = nodes.setdefault(node.id, node)
                if node.want_dup is None:
                    recompute.add(node.id)

        # The moved originals, and the later articles that may now resemble them best.
        subjects = [node for node in moved if node.want_dup is None]
        candidates = self._candidates(connection, subjects, nodes)
        for subject in subjects:
            for other in candidates[subject.id]:
                if (
                    other.want_dup is None
                    and other.order > subject.order
                    and similarity(cast(bytes, subject.signature), cast(bytes, other.signature))
                    >= self._threshold
                ):
                    recompute.add(other.id)
        recompute.difference_update(node.id for node in subjects)
        if recompute:
            candidates.update(
                self._candidates(connection, [nodes[id_] for id_ in recompute], nodes)
            )
        for id_ in [node.id for node in subjects] + sorted(recompute):
            self._choose_near(nodes[id_], candidates[id_])

        self._write_marks(connection, seqs, [node for node in nodes.values() if node.changed])
        return nodes

    def _candidates(
        self, connection: Connection, subjects: Sequence[_Node], known: dict[int, _Node]
    ) -> dict[int, list[_Node]]:
        """The articles sharing an LSH bucket with each subject (not itself), by subject id;
        the ones not yet in ``known`` are added to it. One statement."""
        found: dict[int, list[_Node]] = {subject.id: [] for subject in subjects}
        by_bucket: dict[int, list[int]] = defaultdict(list)
        for subject in subjects:
            if subject.signature is None:
                continue
            for bucket in self._buckets(subject.signature):
                by_bucket[bucket].append(subject.id)
        if not by_bucket:
            return found
        pairs: dict[int, set[int]] = defaultdict(set)
        # Subjects sharing a bucket are found from the buckets in hand (their rows in the index
        # are the same), so the look-up below leaves every subject's own rows out.
        for ids in by_bucket.values():
            if len(ids) > 1:
                for subject_id in ids:
                    pairs[subject_id].update(id_ for id_ in ids if id_ != subject_id)
        subject_ids = sorted({id_ for ids in by_bucket.values() for id_ in ids})
        rows = connection.execute(
            _sql(connection.dialect.name).candidates,
            {"buckets": sorted(by_bucket), "subjects": subject_ids},
        )
        for row in rows:
            node = known.get(row.id)
            if node is None:
                node = known[row.id] = _node(row)
            for subject_id in by_bucket[row.bucket]:
                pairs[subject_id].add(node.id)
        for subject_id, matched in pairs.items():
            found[subject_id] = [known[id_] for id_ in sorted(matched) if id_ in known]
        return found

    def _choose_near(self, node: _Node, candidates: Iterable[_Node]) -> None:
        """Mark ``node`` a near-duplicate of the most similar earlier candidate (the earliest
        of equals), if any reaches the threshold; an exact duplicate is never one."""
        node.want_near = node.want_sim = None
        if node.want_dup is not None or node.signature is None:
            return
        best: tuple[float, tuple[Any, ...], _Node] | None = None
        for other in candidates:
            if other.signature is None or len(other.signature) != len(node.signature):
                continue
            if other.order >= node.order:
                continue
            score = similarity(node.signature, other.signature)
            if score < self._threshold:
                continue
            if best is None or score > best[0] or (score == best[0] and other.order < best[1]):
                best = (score, other.order, other)
        if best is not None:
            node.want_near, node.want_sim = best[2].key, best[0]

    @staticmethod
    def _write_marks(connection: Connection, seqs: _Seqs, nodes: Sequence[_Node]) -> None:
        if not nodes:
            return
        connection.execute(
            _sql(connection.dialect.name).write_marks,
            [
                {
                    "b_id": node.id,
                    "b_dup": node.want_dup,
                    "b_near": node.want_near,
                    "b_sim": node.want_sim,
                    "b_seq": seqs.renew(node.change_seq),
                }
                for node in sorted(nodes, key=lambda n: n.id)
            ],
        )

    # --- the similarity index -----------------------------------------------------------------

    def ensure_similarity_index(self) -> int:
        """Make the stored signatures, LSH bands and near-duplicate marks fit this repository's
        settings (after a migration from 0001 or a settings change); return how many articles
        were re-indexed (0: nothing to do). ``save_articles`` does it too when needed."""
        with self._writing("indexing articles for near-duplicates") as (connection, seqs, index):
            return self._ensure_index(connection, seqs, index)

    def _index_row(self) -> dict[str, Any]:
        return {
            "signature_format": SIGNATURE_FORMAT,
            "permutations": self._layout.permutations,
            "bands": self._layout.bands,
            "rows_per_band": self._layout.rows,
            "threshold": self._threshold,
        }

    def _ensure_index(self, connection: Connection, seqs: _Seqs, row: Any) -> int:
        """Rebuild the index unless ``row`` (of ``similarity_index``, read with the counter's
        lock in this transaction; None: there is none) says it fits this repository."""
        wanted = self._index_row()
        if row is not None and all(getattr(row, k) == v for k, v in wanted.items()):
            return 0
        same_signatures = row is not None and (row.signature_format, row.permutations) == (
            SIGNATURE_FORMAT,
            self._layout.permutations,
        )
        count = self._rebuild_index(connection, seqs, resign_all=not same_signatures)
        values = {**wanted, "built_at": datetime.now(UTC)}
        if row is None:
            connection.execute(similarity_index.insert().values(id=1, **values))
        else:
            connection.execute(
                update(similarity_index).where(similarity_index.c.id == 1).values(**values)
            )
        return count

    def _rebuild_index(self, connection: Connection, seqs: _Seqs, *, resign_all: bool) -> int:
        """Sign the articles that need it, rebuild every LSH band, recompute every near mark."""
        size = 4 * self._layout.permutations
        ids = [id_ for (id_,) in connection.execute(select(articles.c.id).order_by(articles.c.id))]
        if not ids:
            return 0
        connection.execute(delete(article_lsh_bands))
        for chunk in _chunks(ids, _REBUILD_CHUNK):
            rows = connection.execute(
                select(articles.c.id, articles.c.title, articles.c.body, articles.c.minhash).where(
                    articles.c.id.in_(chunk)
                )
            ).all()
            stale = [
                row for row in rows if resign_all or row.minhash is None or len(row.minhash) != size
            ]
            fresh = dict(
                zip(
                    (row.id for row in stale),
                    self.hasher.sign_many((row.title, row.body) for row in stale),
                    strict=True,
                )
            )
            signed = [(row.id, fresh.get(row.id, row.minhash)) for row in rows]
            if fresh:
                connection.execute(
                    update(articles)
                    .where(articles.c.id == bindparam("b_id"))
                    .values(minhash=bindparam("b_minhash")),
                    [{"b_id": id_, "b_minhash": signature} for id_, signature in fresh.items()],
                )
            self._write_bands(connection, [], signed)
        for chunk in _chunks(ids, _REBUILD_CHUNK):
            nodes = {
                node.id: node
                for node in self._nodes(
                    connection, _sql(connection.dialect.name).nodes_by_id, {"ids": list(chunk)}
                )
            }
            subjects = [node for node in nodes.values() if node.want_dup is None]
            candidates = self._candidates(connection, subjects, nodes)
            for subject in subjects:
                self._choose_near(subject, candidates[subject.id])
            self._write_marks(connection, seqs, [node for node in subjects if node.changed])
        return len(ids)

    # --- reading ------------------------------------------------------------------------------

    def _read(self, connection: Connection, statement: Any) -> list[StoredArticle]:
        rows = connection.execute(statement).all()
        images: dict[int, list[ImageRecord]] = defaultdict(list)
        for chunk in _chunks([row.id for row in rows]):
            for image in connection.execute(
                select(article_images)
                .where(article_images.c.article_id.in_(chunk))
                .order_by(article_images.c.article_id, article_images.c.position)
            ):
                images[image.article_id].append(
                    ImageRecord(position=image.position, url=image.url, caption=image.caption)
                )
        return [
            StoredArticle(
                id=row.id,
                article_key=row.article_key,
                url=row.url,
                title=row.title,
                source=row.source,
                published_on=row.published_on,
                body=row.body,
                page_count=row.page_count,
                complete=row.complete,
                images=images[row.id],
                first_seen_at=row.first_seen_at,
                last_seen_at=row.last_seen_at,
                content_hash=row.content_hash,
                version=row.version,
                change_seq=row.change_seq,
                duplicate_of=row.duplicate_of,
                near_duplicate_of=row.near_duplicate_of,
                near_duplicate_similarity=row.near_duplicate_similarity,
            )
            for row in rows
        ]

    def count_articles(self) -> int:
        """How many articles are stored."""
        with self._transaction("counting articles", write=False) as connection:
            return int(connection.execute(select(func.count()).select_from(articles)).scalar_one())

    def get_article(self, article_key: str) -> StoredArticle | None:
        """The stored article with key ``article_key`` and its images in order, or None."""
        with self._transaction(f"reading article {article_key}", write=False) as connection:
            found = self._read(
                connection, select(*_READ_COLUMNS).where(articles.c.article_key == article_key)
            )
        return found[0] if found else None

    def changes_since(self, change_seq: int, limit: int = 500) -> list[StoredArticle]:
        """Up to ``limit`` articles changed after ``change_seq``, in change_seq order.

        Pass the last ``change_seq`` read to get the next ones: no change committed later is
        skipped and none is given twice (an article changed again comes again, with its new
        number and content).
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        with self._transaction("reading changed articles", write=False) as connection:
            return self._read(
                connection,
                select(*_READ_COLUMNS)
                .where(articles.c.change_seq > change_seq)
                .order_by(articles.c.change_seq)
                .limit(limit),
            )

    def iter_changes(self, since: int = 0, batch: int = 500) -> Iterator[StoredArticle]:
        """Every article changed after ``since``, in change_seq order, read ``batch`` at a time
        (each batch its own short transaction)."""
        while True:
            page = self.changes_since(since, batch)
            yield from page
            if len(page) < batch:
                return
            since = page[-1].change_seq

    def max_change_seq(self) -> int:
        """The highest change_seq of any article (0 when there are none): where a new consumer
        that wants only future changes starts."""
        with self._transaction("reading the last change", write=False) as connection:
            return int(
                connection.execute(
                    select(func.coalesce(func.max(articles.c.change_seq), 0))
                ).scalar_one()
            )

    def versions(self, article_key: str) -> list[VersionRecord]:
        """Every stored version of the article ``article_key``, oldest first ([] if unknown)."""
        with self._transaction(f"reading versions of {article_key}", write=False) as connection:
            rows = connection.execute(
                select(article_versions)
                .join(articles, articles.c.id == article_versions.c.article_id)
                .where(articles.c.article_key == article_key)
                .order_by(article_versions.c.version)
            ).all()
        return [
            VersionRecord(
                version=row.version,
                content_hash=row.content_hash,
                url=row.url,
                title=row.title,
                source=row.source,
                published_on=row.published_on,
                body=row.body,
                page_count=row.page_count,
                complete=row.complete,
                images=[
                    ImageRecord(position=i["position"], url=i["url"], caption=i["caption"])
                    for i in row.images
                ],
                fetched_at=row.fetched_at,
                crawl_run_id=row.crawl_run_id,
            )
            for row in rows
        ]

    # --- crawl runs -------------------------------------------------------------------------

    def start_run(
        self,
        trigger: str,
        started_at: datetime,
        *,
        host: str | None = None,
        pid: int | None = None,
    ) -> int:
        """Record a crawl that starts now (status ``running``) in process ``pid`` on ``host``
        (default: this process); return its id."""
        if trigger not in RUN_TRIGGERS:
            raise ValueError(
                f"unknown trigger {trigger!r}: expected one of {', '.join(RUN_TRIGGERS)}"
            )
        _require_aware(started_at, "started_at")
        with self._transaction("recording the start of the crawl", write=True) as connection:
            return int(
                connection.execute(
                    crawl_runs.insert()
                    .values(
                        started_at=started_at,
                        status="running",
                        trigger=trigger,
                        stats={},
                        host=host if host is not None else socket.gethostname(),
                        pid=pid if pid is not None else os.getpid(),
                    )
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
                .values(
                    status=status,
                    stats=dict(stats),
                    finished_at=finished_at,
                    degraded_pages=int((stats.get("summary") or {}).get("degraded_pages") or 0),
                )
            )

    def known_articles(self, keys: Sequence[str]) -> dict[str, KnownArticle]:
        """The stored facts of those of ``keys`` the database holds (one query per 500 keys)."""
        found: dict[str, KnownArticle] = {}
        with self._transaction("looking up stored articles", write=False) as connection:
            for chunk in _chunks(sorted(set(keys)), _KEYS_PER_SELECT):
                rows = connection.execute(
                    select(
                        articles.c.article_key,
                        articles.c.complete,
                        articles.c.published_on,
                        articles.c.page_count,
                        articles.c.etag,
                        articles.c.last_modified,
                    ).where(articles.c.article_key.in_(chunk))
                )
                for row in rows:
                    found[row.article_key] = KnownArticle(
                        complete=bool(row.complete),
                        published_on=row.published_on,
                        page_count=row.page_count,
                        etag=row.etag,
                        last_modified=row.last_modified,
                    )
        return found

    def mark_seen(self, keys: Sequence[str], seen_at: datetime) -> int:
        """Move ``last_seen_at`` of the stored articles ``keys`` forward (a server said they are
        unchanged); nothing else, no new ``change_seq``. Returns how many rows exist."""
        _require_aware(seen_at, "seen_at")
        with self._transaction("recording unchanged articles", write=True) as connection:
            ids = [
                row.id
                for chunk in _chunks(sorted(set(keys)), _KEYS_PER_SELECT)
                for row in connection.execute(
                    select(articles.c.id).where(articles.c.article_key.in_(chunk))
                )
            ]
            self._touch(connection, ids, seen_at)
        return len(ids)

    def newest_published_on(self) -> date | None:
        """The publication date of the newest stored article, or None for an empty database."""
        with self._transaction("reading the newest article date", write=False) as connection:
            return connection.execute(select(func.max(articles.c.published_on))).scalar()

    def caught_up(self, current_run_id: int | None = None) -> bool:
        """True unless the crawl run before ``current_run_id`` failed, was cut short or left
        the listing unread (its stats lack ``incremental/caught_up``): then the next crawl must
        read the whole listing again. True for a database without runs."""
        with self._transaction("reading crawl runs", write=False) as connection:
            query = select(crawl_runs.c.status, crawl_runs.c.stats).order_by(crawl_runs.c.id.desc())
            if current_run_id is not None:
                query = query.where(crawl_runs.c.id < current_run_id)
            row = connection.execute(query.limit(1)).first()
        if row is None:
            return True
        return row.status == "succeeded" and bool((row.stats or {}).get("incremental/caught_up"))

    def recent_runs(self, limit: int = 10) -> list[RunRecord]:
        """The ``limit`` latest crawl runs, newest first."""
        with self._transaction("reading crawl runs", write=False) as connection:
            rows = connection.execute(
                select(crawl_runs).order_by(crawl_runs.c.id.desc()).limit(limit)
            ).all()
        return [_run_record(row) for row in rows]

    def find_run(self, *, host: str, pid: int, started_after: datetime) -> RunRecord | None:
        """The latest run that process ``pid`` on ``host`` started at or after ``started_after``."""
        _require_aware(started_after, "started_after")
        with self._transaction("reading crawl runs", write=False) as connection:
            row = connection.execute(
                select(crawl_runs)
                .where(
                    crawl_runs.c.host == host,
                    crawl_runs.c.pid == pid,
                    crawl_runs.c.started_at >= started_after,
                )
                .order_by(crawl_runs.c.id.desc())
                .limit(1)
            ).one_or_none()
        return None if row is None else _run_record(row)

    def end_orphaned_run(self, run_id: int, reason: str, finished_at: datetime) -> bool:
        """Record run ``run_id``, still ``running`` though its process is gone, as failed with
        ``reason`` as its finish reason; False when it was not running."""
        return bool(self._end_running_runs(finished_at, reason, crawl_runs.c.id == run_id))

    def end_abandoned_runs(self, finished_at: datetime, reason: str = "abandoned") -> list[int]:
        """Record every run still ``running`` as failed with ``reason``; the ids, oldest first.

        Only the holder of the crawl lock may call this (before its own run starts): every
        other crawl's process is then gone, whatever its rows say.
        """
        return self._end_running_runs(finished_at, reason)

    def _end_running_runs(self, finished_at: datetime, reason: str, *where: Any) -> list[int]:
        _require_aware(finished_at, "finished_at")
        with self._transaction("recording abandoned crawl runs", write=True) as connection:
            rows = connection.execute(
                select(crawl_runs.c.id, crawl_runs.c.stats)
                .where(crawl_runs.c.status == "running", *where)
                .order_by(crawl_runs.c.id)
            ).all()
            for row in rows:
                connection.execute(
                    update(crawl_runs)
                    .where(crawl_runs.c.id == row.id, crawl_runs.c.status == "running")
                    .values(
                        status="failed",
                        finished_at=finished_at,
                        stats={**dict(row.stats or {}), "finish_reason": reason},
                    )
                )
        return [row.id for row in rows]


def _run_record(row: Any) -> RunRecord:
    return RunRecord(
        id=row.id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=row.status,
        trigger=row.trigger,
        stats=dict(row.stats or {}),
        host=row.host,
        pid=row.pid,
        degraded_pages=row.degraded_pages or 0,
    )
