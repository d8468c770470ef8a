"""Migration 0003 (run owners, crawl lock, APScheduler's job table) on databases with rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine

from storage.db import alembic_config, make_engine
from storage.repository import Repository

STARTED = datetime(2024, 5, 4, 10, 0, tzinfo=UTC)


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


def rows(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(sa.text(sql))]


def fill_0002(engine: Engine) -> None:
    """A finished run that wrote an article version, and a run still running, as 0002 had them."""
    with engine.begin() as connection:
        for status in ("succeeded", "running"):
            connection.execute(
                sa.text(
                    "INSERT INTO crawl_runs (started_at, status, trigger, stats) "
                    "VALUES (:t, :s, 'manual', :j)"
                ),
                {"t": STARTED, "s": status, "j": '{"finish_reason": "finished"}'},
            )


def test_upgrade_keeps_runs_and_their_article_versions(engine: Engine) -> None:
    migrate(engine, "0002")
    fill_0002(engine)
    # An article and its version written by run 1, as 0002's code wrote them (plain SQL: the
    # repository of today writes columns that later revisions add).
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO articles (article_key, url, title, published_on, body, page_count, "
                "complete, first_seen_at, last_seen_at, content_hash, version, change_seq, text_hash) "
                "VALUES ('1', 'http://x/c_1.htm', 'T', :d, 'Body.', 1, :c, :t, :t, 'h', 1, 1, 'x')"
            ),
            {"d": date(2024, 5, 1), "t": STARTED, "c": True},
        )
        connection.execute(
            sa.text(
                "INSERT INTO article_versions (article_id, version, content_hash, url, title, "
                "published_on, body, page_count, complete, images, fetched_at, crawl_run_id) "
                "VALUES (1, 1, 'h', 'http://x/c_1.htm', 'T', :d, 'Body.', 1, :c, '[]', :t, 1)"
            ),
            {"d": date(2024, 5, 1), "t": STARTED, "c": True},
        )
    versions_before = rows(engine, "SELECT article_id, version, crawl_run_id FROM article_versions")
    assert versions_before == [(1, 1, 1)]

    migrate(engine, "0003")
    assert rows(engine, "SELECT id, status, host, pid FROM crawl_runs ORDER BY id") == [
        (1, "succeeded", None, None),
        (2, "running", None, None),
    ]
    assert rows(engine, "SELECT article_id, version, crawl_run_id FROM article_versions") == (
        versions_before
    )
    assert rows(engine, "SELECT count(*) FROM crawl_lock") == [(0,)]
    assert rows(engine, "SELECT count(*) FROM apscheduler_jobs") == [(0,)]
    # The repository (of today: at head) reads old runs (no owner) and writes new ones with one.
    migrate(engine, "head")
    assert Repository(engine).end_abandoned_runs(datetime.now(UTC)) == [2]
    new = Repository(engine).start_run("schedule", datetime.now(UTC))
    [latest] = Repository(engine).recent_runs(1)
    assert latest.id == new and latest.host and latest.pid

    # And back: 0002's columns and tables only, the runs and versions untouched.
    migrate(engine, "0002", down=True)
    inspector = sa.inspect(engine)
    assert "crawl_lock" not in inspector.get_table_names()
    assert "apscheduler_jobs" not in inspector.get_table_names()
    assert {c["name"] for c in inspector.get_columns("crawl_runs")} == {
        "id", "started_at", "finished_at", "status", "trigger", "stats",
    }  # fmt: skip
    assert rows(engine, "SELECT id, status FROM crawl_runs ORDER BY id") == [
        (1, "succeeded"),
        (2, "failed"),
        (3, "running"),
    ]
    assert rows(engine, "SELECT article_id, version, crawl_run_id FROM article_versions") == (
        versions_before
    )
    migrate(engine, "head")
