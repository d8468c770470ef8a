"""Migration 0004 (HTTP validators of each article's first page) on a database with rows."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import command

from storage.db import alembic_config, make_engine
from storage.repository import ArticleRecord, Repository

SEEN = datetime(2025, 1, 2, 3, 4, tzinfo=UTC)


def migrate(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_rows_survive_and_validators_start_empty_then_follow_the_server(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate(engine, "0003")
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO articles (article_key, url, title, published_on, body, page_count, "
                    "complete, first_seen_at, last_seen_at, content_hash, version, change_seq, "
                    "text_hash) VALUES ('7', 'http://x/c_7.htm', 'T', :d, 'Body.', 1, :c, :t, :t, "
                    "'h', 1, 1, 'x')"
                ),
                {"d": date(2024, 5, 1), "t": SEEN, "c": True},
            )
            # As a writer of 0003 leaves it: the counter at the last change_seq handed out.
            if connection.execute(sa.text("UPDATE change_counter SET value = 1 WHERE id = 1")).rowcount == 0:
                connection.execute(sa.text("INSERT INTO change_counter (id, value) VALUES (1, 1)"))
        migrate(engine, "head")
        with engine.connect() as connection:
            row = connection.execute(sa.text("SELECT article_key, title, etag, last_modified FROM articles")).one()
        assert tuple(row) == ("7", "T", None, None)

        # A re-crawl that finds the article unchanged keeps the server's new validators only.
        repo = Repository(engine)
        record = ArticleRecord(
            article_key="8", url="http://x/c_8.htm", title="A", source=None,
            published_on=date(2024, 5, 2), body="Text.", etag='"v1"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT",
        )  # fmt: skip
        repo.save_articles([record], SEEN)
        before = repo.get_article("8")
        record.etag = '"v2"'
        result = repo.save_articles([record], datetime(2025, 1, 3, tzinfo=UTC))
        assert result.unchanged == ["8"]
        known = repo.known_articles(["8", "missing"])
        assert list(known) == ["8"]
        assert (known["8"].etag, known["8"].last_modified) == ('"v2"', "Mon, 01 Jan 2024 00:00:00 GMT")
        after = repo.get_article("8")
        assert after is not None and before is not None
        assert (after.version, after.change_seq) == (before.version, before.change_seq)

        migrate(engine, "0003", down=True)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM articles")).scalar() == 2
    finally:
        engine.dispose()
