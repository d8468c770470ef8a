"""Migration 0003 (run owners, crawl lock, APScheduler's job table) on databases with rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine

from storage.db import alembic_config, make_engine
from storage.repository import ArticleRecord, Repository

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
    # An article version written by run 1, as a crawl would.
    repo = Repository(engine)
    record = ArticleRecord(
        article_key="1", url="http://x/c_1.htm", title="T", source=None,
        published_on=date(2024, 5, 1), body="Body.",
    )  # fmt: skip
    repo.save_articles([record], STARTED, run_id=1)
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
    # The repository reads old runs (no owner) and writes new ones with one.
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
