"""Migration 0002 on databases that have rows: upgraded from 0001 and downgraded back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine

from storage.db import alembic_config, make_engine, upgrade
from storage.repository import ArticleRecord, ImageRecord, Repository, content_hash
from storage.similarity import text_hash

SEEN = datetime(2024, 5, 4, 10, 0, tzinfo=UTC)

# article_key, title, published_on, body, page_count, complete, source
ROWS_0001 = [
    ("300", "Port grows", "2024-05-02", "Same text.\n\nTwo paragraphs.", 1, True, None),
    ("200", "Port grows", "2024-05-01", "Same text.\n\nTwo paragraphs.", 1, True, "Xinhua"),
    ("100", "Other news", "2024-05-03", "Another story.", 2, False, "chinadaily.com.cn"),
    ("250", "Port grows", "2024-05-01", "Same text.\n\nTwo paragraphs.", 1, True, None),
]


def migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def fill_0001(engine: Engine) -> None:
    """Rows as 0001's code wrote them (its content_hash included the URL; any value will do)."""
    with engine.begin() as connection:
        for key, title, published, body, pages, complete, source in ROWS_0001:
            connection.execute(
                sa.text(
                    "INSERT INTO articles (article_key, url, title, source, published_on, body, "
                    "page_count, complete, first_seen_at, last_seen_at, content_hash) VALUES "
                    "(:key, :url, :title, :source, :published, :body, :pages, :complete, "
                    ":first, :last, :hash)"
                ),
                {
                    "key": key,
                    "url": f"http://www.exploringtianjin.com/2024-05/01/c_{key}.htm",
                    "title": title,
                    "source": source,
                    "published": date.fromisoformat(published),
                    "body": body,
                    "pages": pages,
                    "complete": complete,
                    # SQLite stores naive UTC text, as UTCDateTime does.
                    "first": SEEN.replace(hour=8, tzinfo=None)
                    if engine.dialect.name == "sqlite"
                    else SEEN.replace(hour=8),
                    "last": SEEN.replace(tzinfo=None) if engine.dialect.name == "sqlite" else SEEN,
                    "hash": "0" * 64,
                },
            )
        connection.execute(
            sa.text(
                "INSERT INTO article_images (article_id, position, url, caption) "
                "SELECT id, 1, 'http://img.example/' || article_key || '.jpg', '[Photo]' "
                "FROM articles WHERE article_key <> '100'"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO article_images (article_id, position, url, caption) "
                "SELECT id, 2, 'http://img.example/' || article_key || '-2.jpg', NULL "
                "FROM articles WHERE article_key = '200'"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO crawl_runs (started_at, status, trigger, stats) "
                "VALUES (CURRENT_TIMESTAMP, 'succeeded', 'manual', '{}')"
            )
        )


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(sql))]


def as_record(stored: Any) -> ArticleRecord:
    return ArticleRecord(
        article_key=stored.article_key,
        url=stored.url,
        title=stored.title,
        source=stored.source,
        published_on=stored.published_on,
        body=stored.body,
        page_count=stored.page_count,
        complete=stored.complete,
        images=list(stored.images),
    )


def test_upgrade_from_0001_keeps_rows_and_gives_them_sane_values(engine: Engine) -> None:
    migrate(engine, "0001")
    fill_0001(engine)
    images_before = rows(engine, "SELECT * FROM article_images ORDER BY id")
    articles_before = rows(
        engine,
        "SELECT id, article_key, url, title, source, published_on, body, page_count, complete, "
        "first_seen_at, last_seen_at FROM articles ORDER BY id",
    )
    upgrade(engine)

    assert rows(engine, "SELECT * FROM article_images ORDER BY id") == images_before
    assert (
        rows(
            engine,
            "SELECT id, article_key, url, title, source, published_on, body, page_count, "
            "complete, first_seen_at, last_seen_at FROM articles ORDER BY id",
        )
        == articles_before
    )
    assert rows(engine, "SELECT count(*) FROM crawl_runs") == [(1,)]
    # change numbers in id order, the counter at the last one
    assert rows(engine, "SELECT article_key, version, change_seq FROM articles ORDER BY id") == [
        ("300", 1, 1),
        ("200", 1, 2),
        ("100", 1, 3),
        ("250", 1, 4),
    ]
    assert rows(engine, "SELECT id, value FROM change_counter") == [(1, 4)]
    # the same text three times: the earliest (date, then numeric key) is the original
    marks = rows(
        engine,
        "SELECT article_key, duplicate_of, near_duplicate_of, near_duplicate_similarity "
        "FROM articles ORDER BY article_key",
    )
    assert marks == [
        ("100", None, None, None),
        ("200", None, None, None),
        ("250", "200", None, None),
        ("300", "200", None, None),
    ]

    repo = Repository(engine)
    for key, *_ in ROWS_0001:
        stored = repo.get_article(key)
        assert stored is not None
        # The hashes the migration computed are the repository's: the next crawl of the same
        # content finds it unchanged.
        assert stored.content_hash == content_hash(as_record(stored))
        [version] = repo.versions(key)
        assert (version.version, version.content_hash, version.crawl_run_id) == (
            1,
            stored.content_hash,
            None,
        )
        assert (version.title, version.body, version.images, version.url) == (
            stored.title,
            stored.body,
            stored.images,
            stored.url,
        )
        assert (version.published_on, version.page_count, version.complete) == (
            stored.published_on,
            stored.page_count,
            stored.complete,
        )
        assert version.fetched_at == SEEN
    assert rows(engine, "SELECT DISTINCT text_hash FROM articles WHERE article_key = '100'") == [
        (text_hash("Other news", "Another story."),)
    ]

    # Signatures and bands wait for the first write, which indexes every article once.
    assert rows(engine, "SELECT count(*) FROM articles WHERE minhash IS NULL") == [(4,)]
    assert rows(engine, "SELECT count(*) FROM similarity_index") == [(0,)]
    records = [as_record(repo.get_article(key)) for key, *_ in ROWS_0001]
    result = repo.save_articles(records, SEEN.replace(hour=12))
    assert result.unchanged == ["100", "200", "250", "300"] and result.new == []
    assert result.duplicates == ["250", "300"]
    assert rows(engine, "SELECT count(*) FROM articles WHERE minhash IS NULL") == [(0,)]
    assert rows(engine, "SELECT count(*) FROM article_lsh_bands") == [(4 * repo.layout.bands,)]
    assert rows(engine, "SELECT count(*) FROM article_versions") == [(4,)]
    assert repo.ensure_similarity_index() == 0  # done once


def test_upgrade_of_an_empty_0001_database(engine: Engine) -> None:
    migrate(engine, "0001")
    upgrade(engine)
    assert rows(engine, "SELECT id, value FROM change_counter") == [(1, 0)]
    repo = Repository(engine)
    assert repo.max_change_seq() == 0 and repo.changes_since(0) == []


def test_downgrade_to_0001_keeps_articles_and_images(engine: Engine) -> None:
    upgrade(engine)
    repo = Repository(engine)
    images = [ImageRecord(1, "http://img.example/a.jpg", "[Photo]")]
    records = [
        ArticleRecord(
            str(n), f"http://h/c_{n}.htm", "Same", None, date(2024, 5, n), "Body.", 1, True, images
        )
        for n in (1, 2)
    ]
    repo.save_articles(records, SEEN)
    repo.save_articles([ArticleRecord("1", "u", "Edited", None, date(2024, 5, 1), "B.")], SEEN)
    migrate(engine, "0001", down=True)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("articles")}
    assert "change_seq" not in columns and "duplicate_of" not in columns
    assert rows(engine, "SELECT article_key, title FROM articles ORDER BY article_key") == [
        ("1", "Edited"),
        ("2", "Same"),
    ]
    assert rows(
        engine,
        "SELECT a.article_key, i.url FROM article_images i JOIN articles a ON a.id = i.article_id",
    ) == [("2", "http://img.example/a.jpg")]
    assert "article_versions" not in sa.inspect(engine).get_table_names()
    upgrade(engine)  # and up again, filled afresh
    assert rows(
        engine, "SELECT article_key, version, duplicate_of FROM articles ORDER BY article_key"
    ) == [
        ("1", 1, None),
        ("2", 1, None),
    ]
