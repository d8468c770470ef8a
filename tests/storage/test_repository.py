"""The repository on SQLite and PostgreSQL: upserts, versions, atomic batches, runs, errors."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from storage.db import StorageError, make_engine, upgrade
from storage.repository import (
    ArticleRecord,
    ImageRecord,
    Repository,
    _fingerprints,
    content_hash,
)
from storage.similarity import text_hash

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def record(key: str, **changes: Any) -> ArticleRecord:
    base = ArticleRecord(
        article_key=key,
        url=f"http://www.exploringtianjin.com/2024-05/01/c_{key}.htm",
        title=f"Title {key}",
        source="chinadaily.com.cn",
        published_on=date(2024, 5, 1),
        body=f"First paragraph of {key}.\n\nSecond paragraph.",
        page_count=1,
        complete=True,
        images=[
            ImageRecord(1, f"http://img.example/{key}-1.jpg", "[Photo/Xinhua]"),
            ImageRecord(2, f"http://img.example/{key}-2.jpg", None),
        ],
    )
    return replace(base, **changes)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def repo(engine: Engine) -> Repository:
    return Repository(engine)


def image_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                sa.text(
                    "SELECT a.article_key, i.position, i.url, i.caption FROM article_images i "
                    "JOIN articles a ON a.id = i.article_id ORDER BY a.article_key, i.position"
                )
            )
        ]


# --- save_articles ------------------------------------------------------------------------------


def test_new_articles_are_inserted_with_images(repo: Repository) -> None:
    result = repo.save_articles([record("2"), record("1")], T0)
    assert (result.new, result.updated, result.unchanged) == (["1", "2"], [], [])
    assert result.counts == {
        "new": 2,
        "updated": 0,
        "unchanged": 0,
        "duplicate": 0,
        "near_duplicate": 0,
    }
    assert result.versions == 2
    assert repo.count_articles() == 2

    stored = repo.get_article("1")
    assert stored is not None
    assert stored.title == "Title 1" and stored.source == "chinadaily.com.cn"
    assert stored.published_on == date(2024, 5, 1)
    assert stored.body == "First paragraph of 1.\n\nSecond paragraph."
    assert stored.images == record("1").images
    assert stored.first_seen_at == stored.last_seen_at == T0
    assert (
        stored.first_seen_at.tzinfo is not None and stored.first_seen_at.utcoffset() == timedelta(0)
    )
    assert stored.content_hash == content_hash(record("1"))
    assert stored.version == 1 and stored.change_seq in (1, 2)
    assert (stored.duplicate_of, stored.near_duplicate_of, stored.near_duplicate_similarity) == (
        None,
        None,
        None,
    )
    assert repo.get_article("404") is None
    assert repo.versions("404") == []


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (but Alembic's), in a fixed order."""
    tables = sorted(set(sa.inspect(engine).get_table_names()) - {"alembic_version"})
    with engine.connect() as connection:
        return {
            table: sorted(
                (tuple(row) for row in connection.execute(sa.text(f"SELECT * FROM {table}"))),
                key=repr,
            )
            for table in tables
        }


def test_unchanged_article_only_moves_last_seen(repo: Repository, engine: Engine) -> None:
    run = repo.start_run("manual", T0)
    repo.save_articles([record("1"), record("2", title="Title 1", body=record("1").body)], T0, run)
    before = dump(engine)
    later = T0 + timedelta(hours=3)
    run = repo.start_run("manual", later)
    result = repo.save_articles(
        [record("2", title="Title 1", body=record("1").body), record("1")], later, run
    )
    assert (result.new, result.updated, result.unchanged) == ([], [], ["1", "2"])
    assert result.duplicates == ["2"] and result.versions == 0
    after = dump(engine)
    # Nothing but last_seen_at (and the new run's row) differs: no version, no change_seq.
    assert set(after) == set(before)
    for table in before:
        if table == "crawl_runs":
            assert after[table][: len(before[table])] == before[table]
        elif table != "articles":
            assert after[table] == before[table], table
    last_seen = [c["name"] for c in sa.inspect(engine).get_columns("articles")].index(
        "last_seen_at"
    )

    def without_last_seen(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [row[:last_seen] + row[last_seen + 1 :] for row in rows]

    assert without_last_seen(after["articles"]) == without_last_seen(before["articles"])
    for key in ("1", "2"):
        stored = repo.get_article(key)
        assert stored is not None
        assert (stored.first_seen_at, stored.last_seen_at, stored.version) == (T0, later, 1)
    # An older sighting (a slow concurrent crawl) never moves last_seen_at back.
    repo.save_articles([record("1")], T0 + timedelta(hours=1))
    assert repo.get_article("1").last_seen_at == later  # type: ignore[union-attr]


def test_changed_article_is_updated_and_images_replaced(repo: Repository, engine: Engine) -> None:
    repo.save_articles([record("1"), record("2")], T0)
    edited = record(
        "1",
        title="Edited title",
        source=None,
        page_count=2,
        images=[ImageRecord(1, "http://img.example/new.jpg", "new caption")],
    )
    later = T0 + timedelta(days=1)
    result = repo.save_articles([edited, record("2")], later)
    assert (result.new, result.updated, result.unchanged) == ([], ["1"], ["2"])

    stored = repo.get_article("1")
    assert stored is not None
    assert (stored.title, stored.source, stored.page_count, stored.complete, stored.version) == (
        "Edited title",
        None,
        2,
        True,
        2,
    )
    assert stored.first_seen_at == T0 and stored.last_seen_at == later
    assert stored.content_hash == content_hash(edited)
    assert image_rows(engine) == [
        ("1", 1, "http://img.example/new.jpg", "new caption"),
        ("2", 1, "http://img.example/2-1.jpg", "[Photo/Xinhua]"),
        ("2", 2, "http://img.example/2-2.jpg", None),
    ]


def test_only_a_caption_change_is_an_update(repo: Repository, engine: Engine) -> None:
    repo.save_articles([record("1")], T0)
    images = [ImageRecord(1, "http://img.example/1-1.jpg", "[Photo/China Daily]")]
    result = repo.save_articles([record("1", images=images)], T0)
    assert result.updated == ["1"]
    assert image_rows(engine) == [("1", 1, "http://img.example/1-1.jpg", "[Photo/China Daily]")]


def test_edit_is_a_new_version_and_the_old_text_is_kept(repo: Repository) -> None:
    first_run = repo.start_run("manual", T0)
    repo.save_articles([record("1"), record("2")], T0, first_run)
    before = repo.get_article("1")
    assert before is not None
    later = T0 + timedelta(days=1)
    second_run = repo.start_run("schedule", later)
    edited = record("1", body="First paragraph of 1, corrected.\n\nSecond paragraph.")
    result = repo.save_articles([edited], later, second_run)
    assert result.updated == ["1"] and result.versions == 1

    after = repo.get_article("1")
    assert after is not None
    assert after.body == edited.body and after.version == 2
    assert after.change_seq > before.change_seq
    assert after.change_seq == repo.max_change_seq()
    v1, v2 = repo.versions("1")
    assert (v1.version, v1.body, v1.title, v1.fetched_at, v1.crawl_run_id) == (
        1,
        record("1").body,
        "Title 1",
        T0,
        first_run,
    )
    assert (v2.version, v2.body, v2.fetched_at, v2.crawl_run_id) == (
        2,
        edited.body,
        later,
        second_run,
    )
    assert v1.content_hash == before.content_hash and v2.content_hash == after.content_hash
    assert v1.images == record("1").images == v2.images
    assert [v.version for v in repo.versions("2")] == [1]

    # The same edit seen again is no new version; editing back to the old text is one.
    assert repo.save_articles([edited], later + timedelta(1)).unchanged == ["1"]
    assert repo.save_articles([record("1")], later + timedelta(2)).updated == ["1"]
    assert [(v.version, v.body) for v in repo.versions("1")] == [
        (1, record("1").body),
        (2, edited.body),
        (3, record("1").body),
    ]


def test_an_image_change_is_a_new_version(repo: Repository) -> None:
    repo.save_articles([record("1")], T0)
    seq = repo.get_article("1").change_seq  # type: ignore[union-attr]
    images = [*record("1").images, ImageRecord(3, "http://img.example/1-3.jpg", "added")]
    assert repo.save_articles([record("1", images=images)], T0 + timedelta(1)).updated == ["1"]
    stored = repo.get_article("1")
    assert stored is not None and stored.version == 2 and stored.change_seq > seq
    assert stored.images == images
    assert [v.images for v in repo.versions("1")] == [record("1").images, images]


@pytest.mark.parametrize(
    "change",
    [
        {"source": "Xinhua"},
        {"published_on": date(2024, 5, 2)},
        {"page_count": 2},
    ],
)
def test_other_content_fields_make_versions_too(repo: Repository, change: dict[str, Any]) -> None:
    repo.save_articles([record("1")], T0)
    assert repo.save_articles([record("1", **change)], T0 + timedelta(1)).updated == ["1"]
    assert [v.version for v in repo.versions("1")] == [1, 2]


def test_another_host_is_not_an_edit(repo: Repository) -> None:
    repo.save_articles([record("1")], T0)
    moved = record("1", url="https://regional.chinadaily.com.cn/tianjin/2024-05/01/c_1.htm")
    assert repo.save_articles([moved], T0 + timedelta(1)).unchanged == ["1"]
    assert repo.get_article("1").url == record("1").url  # type: ignore[union-attr]


def test_an_incomplete_fetch_never_replaces_a_complete_article(repo: Repository) -> None:
    repo.save_articles([record("1", page_count=2)], T0)
    truncated = record("1", page_count=2, complete=False, body="First paragraph of 1.")
    result = repo.save_articles([truncated], T0 + timedelta(1))
    assert result.unchanged == ["1"] and result.versions == 0
    stored = repo.get_article("1")
    assert stored is not None and stored.complete and stored.body == record("1").body
    assert stored.last_seen_at == T0 + timedelta(1)
    # ...but an incomplete article is completed, and an incomplete one may change.
    repo.save_articles([record("2", complete=False)], T0)
    assert repo.save_articles([record("2")], T0 + timedelta(1)).updated == ["2"]
    repo.save_articles([record("3", complete=False)], T0)
    assert repo.save_articles([record("3", complete=False, title="x")], T0).updated == ["3"]


def test_same_key_twice_in_a_batch_last_wins(repo: Repository) -> None:
    result = repo.save_articles([record("1", title="first"), record("1", title="second")], T0)
    assert result.new == ["1"]
    assert repo.get_article("1").title == "second"  # type: ignore[union-attr]
    assert repo.count_articles() == 1


def test_empty_batch(repo: Repository) -> None:
    assert set(repo.save_articles([], T0).counts.values()) == {0}


def test_large_batch_crosses_the_select_chunks(repo: Repository) -> None:
    records = [record(str(n), images=[]) for n in range(1, 1203)]
    assert len(repo.save_articles(records, T0).new) == 1202
    again = repo.save_articles(records, T0 + timedelta(1))
    assert len(again.unchanged) == 1202 and repo.count_articles() == 1202


def test_a_failing_record_rolls_back_the_whole_batch(repo: Repository, engine: Engine) -> None:
    repo.save_articles([record("1")], T0)
    before_images = image_rows(engine)
    batch = [
        record("1", title="would be an update"),
        record("2"),
        record("3", body=None),  # type: ignore[arg-type]  # NOT NULL violated mid-batch
        record("4"),
    ]
    with pytest.raises(StorageError) as info:
        repo.save_articles(batch, T0 + timedelta(1))
    message = str(info.value)
    assert "\n" not in message and "saving 4 articles failed" in message and "body" in message
    assert repo.count_articles() == 1
    stored = repo.get_article("1")
    assert stored is not None and stored.title == "Title 1" and stored.last_seen_at == T0
    assert image_rows(engine) == before_images


def test_bad_image_rolls_back_its_article(repo: Repository, engine: Engine) -> None:
    """An article row is never left without its images: both or neither."""
    broken = record("1", images=[ImageRecord(1, "a"), ImageRecord(1, "b")])  # duplicate position
    with pytest.raises(StorageError):
        repo.save_articles([broken], T0)
    assert repo.count_articles() == 0 and image_rows(engine) == []


def test_deleting_an_article_deletes_its_images(repo: Repository, engine: Engine) -> None:
    repo.save_articles([record("1"), record("2")], T0)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM articles WHERE article_key = '1'"))
    assert [row[0] for row in image_rows(engine)] == ["2", "2"]


def test_datetimes_are_stored_as_utc(repo: Repository) -> None:
    beijing = timezone(timedelta(hours=8))
    seen = datetime(2024, 5, 1, 16, 0, tzinfo=beijing)
    repo.save_articles([record("1")], seen)
    stored = repo.get_article("1")
    assert stored is not None
    assert stored.first_seen_at == T0
    assert stored.first_seen_at.tzinfo == UTC


def test_naive_datetimes_are_refused(repo: Repository) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        repo.save_articles([record("1")], datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        repo.start_run("manual", datetime(2024, 5, 1))


def test_content_hash() -> None:
    assert content_hash(record("1")) == content_hash(record("1"))
    assert len(content_hash(record("1"))) == 64
    variants = [
        record("1", title="x"),
        record("1", source=None),
        record("1", published_on=date(2024, 5, 2)),
        record("1", body="x"),
        record("1", page_count=2),
        record("1", complete=False),
        record("1", images=[]),
        record("1", images=list(reversed(record("1").images))),
    ]
    hashes = {content_hash(v) for v in variants}
    assert len(hashes) == len(variants) and content_hash(record("1")) not in hashes
    # The key identifies the row, the URL names the host it came through: neither is content.
    assert content_hash(record("1")) == content_hash(replace(record("1"), article_key="9"))
    assert content_hash(record("1")) == content_hash(record("1", url="http://other/c_1.htm"))


def _json_hash(*values: Any) -> str:
    encoded = json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def test_hashes_are_the_sha256_of_the_json_of_the_content() -> None:
    """The hashes are stored: whatever makes them faster, they stay these exact values."""
    rnd = random.Random(7)
    alphabet = [chr(n) for n in range(0x20)] + list('ab "\\/\x7f') + ["é", "中", "\u2028", "😀"]
    for _ in range(2000):
        title, body = ("".join(rnd.choices(alphabet, k=rnd.randint(0, 30))) for _ in range(2))
        caption = rnd.choice([None, "[Photo/Xinhua]", 'a\tb "c"'])
        source = rnd.choice([None, "chinadaily.com.cn", 'a "quoted"\nsource'])
        item = record("1", title=title, body=body, source=source, complete=rnd.random() < 0.5)
        item.images = [ImageRecord(1, "http://img.example/1.jpg", caption)]
        images = [[1, "http://img.example/1.jpg", caption]]
        expected = _json_hash(title, source, "2024-05-01", body, 1, item.complete, images)
        assert content_hash(item) == expected
        assert _fingerprints(item) == (expected, _json_hash(title, body))
        assert _json_hash(title, body) == text_hash(title, body)


def test_a_record_changed_after_signing_is_saved_as_it_is(repo: Repository, engine: Engine) -> None:
    """``sign`` computes the fingerprints before the write; a record edited or copied with
    changes afterwards is not saved with the fingerprints of what it was."""
    first = record("1")
    repo.sign([first])
    repo.save_articles([first], T0)
    edited = record("1")
    repo.sign([edited])
    edited.body = "An edited body."
    moved = replace(edited, images=[])  # a copy: fingerprints are not copied
    for item, version in ((edited, 2), (moved, 3)):
        result = repo.save_articles([item], T0 + timedelta(hours=version))
        assert result.updated == ["1"]
        stored = repo.get_article("1")
        assert stored is not None and stored.version == version
        assert stored.content_hash == content_hash(item)
    with engine.connect() as connection:
        stored_text = connection.execute(sa.text("SELECT text_hash FROM articles")).scalar_one()
    assert stored_text == text_hash(edited.title, "An edited body.")


# --- concurrency --------------------------------------------------------------------------------


def test_two_concurrent_writers_leave_one_row_per_key(db_url: str, engine: Engine) -> None:
    keys = [str(n) for n in range(1, 21)]
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def writer(title: str) -> None:
        own_engine = make_engine(db_url)
        try:
            repository = Repository(own_engine)
            barrier.wait()
            for round_ in range(5):
                repository.save_articles(
                    [record(k, title=f"{title} {round_}") for k in keys],
                    T0 + timedelta(minutes=round_),
                )
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            own_engine.dispose()

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT article_key, count(*) FROM articles GROUP BY article_key")
        ).all()
    assert sorted(rows) == sorted((k, 1) for k in keys)
    assert len(image_rows(engine)) == 2 * len(keys)
    # Versions numbered 1..n without gaps or collisions, the article at its last one.
    repo = Repository(engine)
    for key in keys:
        numbers = [v.version for v in repo.versions(key)]
        assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 5
        stored = repo.get_article(key)
        assert stored is not None and stored.version == numbers[-1]
        assert stored.title == repo.versions(key)[-1].title


class RacingRepository(Repository):
    """A repository whose first look-up misses rows, as if another crawl inserted them just after."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.lookups = 0

    def _existing(self, connection: Connection, keys: Any) -> dict[str, Any]:
        self.lookups += 1
        if self.lookups == 1:
            return {}
        return super()._existing(connection, keys)


def test_insert_conflict_with_a_concurrent_writer(repo: Repository, engine: Engine) -> None:
    repo.save_articles([record("1"), record("2")], T0)
    racing = RacingRepository(engine)
    later = T0 + timedelta(hours=1)
    result = racing.save_articles([record("1"), record("2", title="edited"), record("3")], later)
    assert (result.new, result.updated, result.unchanged) == (["3"], ["2"], ["1"])
    assert repo.count_articles() == 3
    assert repo.get_article("2").title == "edited"  # type: ignore[union-attr]
    assert repo.get_article("1").last_seen_at == later  # type: ignore[union-attr]
    assert len(image_rows(engine)) == 6


# --- crawl runs ---------------------------------------------------------------------------------


def test_crawl_runs(repo: Repository) -> None:
    first = repo.start_run("manual", T0)
    second = repo.start_run("schedule", T0 + timedelta(hours=1))
    assert second > first
    runs = repo.recent_runs(10)
    assert [(r.id, r.status, r.trigger, r.finished_at, r.stats) for r in runs] == [
        (second, "running", "schedule", None, {}),
        (first, "running", "manual", None, {}),
    ]
    stats = {
        "store/articles_new": 3,
        "finish_reason": "finished",
        "start_time": "2024-05-01T08:00:00+00:00",
    }
    repo.finish_run(first, "succeeded", stats, T0 + timedelta(minutes=5))
    repo.finish_run(second, "interrupted", {}, T0 + timedelta(hours=2))
    runs = repo.recent_runs(1)
    assert len(runs) == 1 and runs[0].id == second and runs[0].status == "interrupted"
    done = repo.recent_runs(2)[1]
    assert done.status == "succeeded" and done.stats == stats
    assert done.started_at == T0 and done.finished_at == T0 + timedelta(minutes=5)


def test_crawl_run_values_are_checked(repo: Repository) -> None:
    with pytest.raises(ValueError, match="trigger"):
        repo.start_run("cron", T0)
    run = repo.start_run("manual", T0)
    with pytest.raises(ValueError, match="status"):
        repo.finish_run(run, "running", {}, T0)
    with pytest.raises(ValueError, match="status"):
        repo.finish_run(run, "ok", {}, T0)


def test_database_checks_run_values_too(engine: Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO crawl_runs (started_at, status, trigger, stats) "
                "VALUES (CURRENT_TIMESTAMP, 'done', 'manual', '{}')"
            )
        )


# --- errors -------------------------------------------------------------------------------------


def test_locked_sqlite_is_a_one_line_storage_error(sqlite_url: str, tmp_path: Any) -> None:
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url, busy_timeout=0.2)
    repo = Repository(engine)
    other = sqlite3.connect(tmp_path / "test.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    try:
        with pytest.raises(StorageError) as info:
            repo.save_articles([record("1")], T0)
        message = str(info.value)
        assert "\n" not in message
        assert "is locked by another writer" in message and "saving 1 article failed" in message
        with pytest.raises(StorageError, match="locked"):
            repo.start_run("manual", T0)
        assert repo.count_articles() == 0  # WAL: readers are not blocked by the writer
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert repo.save_articles([record("1")], T0).new == ["1"]
    engine.dispose()


def test_postgres_down_is_a_one_line_storage_error() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:1/test")
    repo = Repository(engine)
    try:
        for call in (
            lambda: repo.save_articles([record("1")], T0),
            lambda: repo.start_run("manual", T0),
            repo.count_articles,
        ):
            with pytest.raises(StorageError) as info:
                call()
            message = str(info.value)
            assert "\n" not in message and "cannot connect to PostgreSQL" in message
    finally:
        engine.dispose()


def statements_of(engine: Engine, call: Any) -> list[str]:
    """The first word of every SQL statement ``call()`` sends."""
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        call()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return [s for s in statements if s not in ("BEGIN", "COMMIT")]


@pytest.mark.parametrize("size", [5, 50])
def test_a_batch_is_a_few_statements_not_one_per_article(
    repo: Repository, engine: Engine, size: int
) -> None:
    repo.save_articles([record(str(n)) for n in range(1, 2 * size + 1)], T0)
    batch = (
        [record(str(n)) for n in range(1, size + 1)]  # unchanged
        + [record(str(n), title=f"edited {n}") for n in range(size + 1, 2 * size + 1)]  # updated
        + [record(str(n)) for n in range(2 * size + 1, 3 * size + 1)]  # new
    )
    repo.sign(batch)
    results = []
    statements = statements_of(
        engine, lambda: results.append(repo.save_articles(batch, T0 + timedelta(1)))
    )
    assert results[0].counts["new"] == results[0].counts["updated"] == size
    # The counter's lock and the index check (one statement on SQLite, whose BEGIN IMMEDIATE
    # locks first), the look-up; insert, update, touch; images (delete, insert), versions,
    # bands (delete, insert); duplicate look-up, candidates; marks; counter.
    lock = ["SELECT"] if engine.dialect.name == "sqlite" else ["SELECT", "SELECT"]
    assert len(statements) <= len(lock) + 14, statements
    assert statements[: len(lock) + 2] == [*lock, "SELECT", "INSERT"]
    assert statements[-1] == "UPDATE"  # the change counter, last

    # An unchanged batch: lock and index check, look-up, last_seen_at. No counter bump.
    unchanged = statements_of(engine, lambda: repo.save_articles(batch, T0 + timedelta(2)))
    assert unchanged == [*lock, "SELECT", "UPDATE"]

    # A batch of new articles: look-up, one INSERT per table, the duplicate and near-duplicate
    # look-ups, the counter.
    fresh = [record(str(n)) for n in range(3 * size + 1, 4 * size + 1)]
    repo.sign(fresh)
    new = statements_of(engine, lambda: repo.save_articles(fresh, T0 + timedelta(3)))
    assert new == [*lock, "SELECT", *["INSERT"] * 4, "SELECT", "SELECT", "UPDATE"]
