"""Article versions, content duplicates, LSH index, change_seq for consumers.

Adds to ``articles``: version, change_seq (unique), text_hash, duplicate_of, near_duplicate_of,
near_duplicate_similarity, minhash; new tables article_versions, article_lsh_bands,
change_counter and similarity_index.

Existing articles become version 1 (with their version row), get change numbers in id order,
their ``content_hash`` recomputed without the URL (a host alias is not an edit), a
``text_hash``, and ``duplicate_of`` marks for identical texts. Signatures, LSH bands and
near-duplicate marks are left to the repository: ``similarity_index`` stays empty, so the first
write re-indexes every article (``Repository.ensure_similarity_index``).

SQLite alters ``articles`` by rebuilding it (batch mode). Foreign keys stay on inside the
migration's transaction, so dropping the old table acts like deleting its rows: its images are
kept aside and put back, and the duplicate marks and versions are written after the rebuilds.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-15
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_CHUNK = 1000

_articles = sa.table(
    "articles",
    sa.column("id", sa.Integer),
    sa.column("article_key", sa.String),
    sa.column("url", sa.Text),
    sa.column("title", sa.Text),
    sa.column("source", sa.Text),
    sa.column("published_on", sa.Date),
    sa.column("body", sa.Text),
    sa.column("page_count", sa.Integer),
    sa.column("complete", sa.Boolean),
    sa.column("last_seen_at", sa.DateTime(timezone=True)),
    sa.column("content_hash", sa.String),
    sa.column("version", sa.Integer),
    sa.column("change_seq", sa.BigInteger),
    sa.column("text_hash", sa.String),
    sa.column("duplicate_of", sa.String),
)
_images = sa.table(
    "article_images",
    sa.column("article_id", sa.Integer),
    sa.column("position", sa.Integer),
    sa.column("url", sa.Text),
    sa.column("caption", sa.Text),
)
_versions = sa.table(
    "article_versions",
    sa.column("article_id", sa.Integer),
    sa.column("version", sa.Integer),
    sa.column("content_hash", sa.String),
    sa.column("url", sa.Text),
    sa.column("title", sa.Text),
    sa.column("source", sa.Text),
    sa.column("published_on", sa.Date),
    sa.column("body", sa.Text),
    sa.column("page_count", sa.Integer),
    sa.column("complete", sa.Boolean),
    sa.column("images", _JSON),
    sa.column("fetched_at", sa.DateTime(timezone=True)),
    sa.column("crawl_run_id", sa.Integer),
)


# Frozen copies of storage.repository.content_hash and storage.similarity.text_hash as of this
# revision (a migration must not change when the application does); a test keeps them equal.
def _content_hash(row: Any, images: list[dict[str, Any]]) -> str:
    payload = [
        row.title,
        row.source,
        row.published_on.isoformat(),
        row.body,
        row.page_count,
        bool(row.complete),
        [[image["position"], image["url"], image["caption"]] for image in images],
    ]
    encoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _text_hash(title: str, body: str) -> str:
    encoded = json.dumps([title, body], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _order_key(published_on: date, key: str) -> tuple[Any, ...]:
    return (published_on, 0, int(key), "") if key.isdigit() else (published_on, 1, 0, key)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # Read before SQLite's rebuild (below) takes the images away for a while.
    filled, texts = _existing_article_values()
    if sqlite:
        _stash_images()
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("change_seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("text_hash", sa.String(length=64), nullable=True))
        for name in ("duplicate_of", "near_duplicate_of"):
            batch.add_column(sa.Column(name, sa.String(length=32), nullable=True))
            batch.create_foreign_key(
                op.f(f"fk_articles_{name}_articles"),
                "articles",
                [name],
                ["article_key"],
                ondelete="SET NULL",
            )
        batch.add_column(sa.Column("near_duplicate_similarity", sa.Double(), nullable=True))
        batch.add_column(sa.Column("minhash", sa.LargeBinary(), nullable=True))
    _fill_existing_articles(filled)
    with op.batch_alter_table("articles") as batch:
        for name in ("version", "change_seq", "text_hash"):
            batch.alter_column(name, nullable=False)
    if sqlite:
        _restore_images()
    # Only now: SQLite's rebuild of articles would have reset the marks (ON DELETE SET NULL of
    # the new table's rows, as they referred to the dropped table by name) and deleted versions.
    _mark_exact_duplicates(texts)
    _create_tables()
    _insert_versions()
    op.create_index(op.f("ix_articles_change_seq"), "articles", ["change_seq"], unique=True)
    op.create_index(op.f("ix_articles_text_hash"), "articles", ["text_hash"], unique=False)
    op.create_index(op.f("ix_articles_duplicate_of"), "articles", ["duplicate_of"], unique=False)
    op.create_index(
        op.f("ix_articles_near_duplicate_of"), "articles", ["near_duplicate_of"], unique=False
    )
    op.execute(
        sa.text("INSERT INTO change_counter (id, value) VALUES (1, :n)").bindparams(n=len(filled))
    )


def _stash_images() -> None:
    # SQLite alters a table by rebuilding it, and dropping the old one cascade-deletes its
    # images (foreign keys stay on inside the migration's transaction): keep them aside.
    op.execute("CREATE TEMPORARY TABLE _images_0002 AS SELECT * FROM article_images")


def _restore_images() -> None:
    op.execute("DELETE FROM article_images")
    op.execute(
        "INSERT INTO article_images (id, article_id, position, url, caption) "
        "SELECT id, article_id, position, url, caption FROM _images_0002"
    )
    op.execute("DROP TABLE _images_0002")


def _create_tables() -> None:
    op.create_table(
        "article_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("published_on", sa.Date(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("images", _JSON, nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("crawl_run_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("version >= 1", name=op.f("ck_article_versions_version_positive")),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_article_versions_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["crawl_run_id"],
            ["crawl_runs.id"],
            name=op.f("fk_article_versions_crawl_run_id_crawl_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_versions")),
        sa.UniqueConstraint(
            "article_id", "version", name=op.f("uq_article_versions_article_id_version")
        ),
    )
    op.create_index(
        op.f("ix_article_versions_crawl_run_id"),
        "article_versions",
        ["crawl_run_id"],
        unique=False,
    )
    op.create_table(
        "article_lsh_bands",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("band", sa.SmallInteger(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_article_lsh_bands_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_id", "band", name=op.f("pk_article_lsh_bands")),
    )
    op.create_index(
        op.f("ix_article_lsh_bands_bucket_article_id"),
        "article_lsh_bands",
        ["bucket", "article_id"],
        unique=False,
    )
    op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_change_counter_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_counter")),
    )
    op.create_table(
        "similarity_index",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("signature_format", sa.String(length=64), nullable=False),
        sa.Column("permutations", sa.Integer(), nullable=False),
        sa.Column("bands", sa.Integer(), nullable=False),
        sa.Column("rows_per_band", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_similarity_index_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_similarity_index")),
    )


def _images_of(bind: sa.Connection, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    images: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for image in bind.execute(
        sa.select(_images)
        .where(_images.c.article_id.in_(ids))
        .order_by(_images.c.article_id, _images.c.position)
    ):
        images[image.article_id].append(
            {"position": image.position, "url": image.url, "caption": image.caption}
        )
    return images


def _article_chunks(bind: sa.Connection, columns: Sequence[Any] | None = None) -> Any:
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(*(columns or _articles.c))
            .where(_articles.c.id > last_id)
            .order_by(_articles.c.id)
            .limit(_CHUNK)
        ).all()
        if not rows:
            return
        last_id = rows[-1].id
        yield rows


def _existing_article_values() -> tuple[
    list[dict[str, Any]], dict[str, list[tuple[tuple[Any, ...], int, str]]]
]:
    """The new values of every existing article (version 1, change_seq in id order, both
    hashes) as UPDATE parameters, and the articles by text hash."""
    bind = op.get_bind()
    _0001_columns = [
        c
        for c in _articles.c
        if c.name not in ("version", "change_seq", "text_hash", "duplicate_of")
    ]
    values: list[dict[str, Any]] = []
    groups: dict[str, list[tuple[tuple[Any, ...], int, str]]] = defaultdict(list)
    for rows in _article_chunks(bind, _0001_columns):
        images = _images_of(bind, [row.id for row in rows])
        for row in rows:
            text = _text_hash(row.title, row.body)
            groups[text].append(
                (_order_key(row.published_on, row.article_key), row.id, row.article_key)
            )
            values.append(
                {
                    "b_id": row.id,
                    "b_hash": _content_hash(row, images[row.id]),
                    "b_text": text,
                    "b_seq": len(values) + 1,
                }
            )
    return values, groups


def _fill_existing_articles(values: list[dict[str, Any]]) -> None:
    bind = op.get_bind()
    for start in range(0, len(values), _CHUNK):
        bind.execute(
            sa.update(_articles)
            .where(_articles.c.id == sa.bindparam("b_id"))
            .values(
                content_hash=sa.bindparam("b_hash"),
                text_hash=sa.bindparam("b_text"),
                change_seq=sa.bindparam("b_seq"),
                version=1,
            ),
            values[start : start + _CHUNK],
        )


def _mark_exact_duplicates(groups: dict[str, list[tuple[tuple[Any, ...], int, str]]]) -> None:
    """Every article of a text but the earliest becomes ``duplicate_of`` the earliest."""
    marks: list[dict[str, Any]] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort()
        original = members[0][2]
        marks.extend({"b_id": id_, "b_dup": original} for _, id_, _ in members[1:])
    if marks:
        op.get_bind().execute(
            sa.update(_articles)
            .where(_articles.c.id == sa.bindparam("b_id"))
            .values(duplicate_of=sa.bindparam("b_dup")),
            marks,
        )


def _insert_versions() -> None:
    """Each existing article's content as its version 1."""
    bind = op.get_bind()
    for rows in _article_chunks(bind):
        images = _images_of(bind, [row.id for row in rows])
        bind.execute(
            sa.insert(_versions),
            [
                {
                    "article_id": row.id,
                    "version": 1,
                    "content_hash": row.content_hash,
                    "url": row.url,
                    "title": row.title,
                    "source": row.source,
                    "published_on": row.published_on,
                    "body": row.body,
                    "page_count": row.page_count,
                    "complete": row.complete,
                    "images": images[row.id],
                    # The content was certainly fetched then; when it was first is not known.
                    "fetched_at": row.last_seen_at,
                    "crawl_run_id": None,
                }
                for row in rows
            ],
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_table("similarity_index")
    op.drop_table("change_counter")
    op.drop_index(op.f("ix_article_lsh_bands_bucket_article_id"), table_name="article_lsh_bands")
    op.drop_table("article_lsh_bands")
    op.drop_index(op.f("ix_article_versions_crawl_run_id"), table_name="article_versions")
    op.drop_table("article_versions")
    for name in ("near_duplicate_of", "duplicate_of", "text_hash", "change_seq"):
        op.drop_index(op.f(f"ix_articles_{name}"), table_name="articles")
    if sqlite:
        _stash_images()
    with op.batch_alter_table("articles") as batch:
        for name in ("near_duplicate_of", "duplicate_of"):
            batch.drop_constraint(op.f(f"fk_articles_{name}_articles"), type_="foreignkey")
        for name in (
            "minhash",
            "near_duplicate_similarity",
            "near_duplicate_of",
            "duplicate_of",
            "text_hash",
            "change_seq",
            "version",
        ):
            batch.drop_column(name)
    if sqlite:
        _restore_images()
    # content_hash keeps its 0002 meaning (no URL): 0001's code then takes every article for
    # changed once and rewrites it in place, which loses nothing.
