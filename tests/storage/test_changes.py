"""change_seq on SQLite and PostgreSQL: what changed since a consumer's last read, race-free."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from storage.db import make_engine, upgrade
from storage.repository import ArticleRecord, Repository

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def record(key: str, title: str | None = None) -> ArticleRecord:
    # Every key its own words: no two articles are (near) duplicates of each other here.
    words = " ".join(f"w{key}x{n}" for n in range(12))
    return ArticleRecord(
        article_key=key,
        url=f"http://www.exploringtianjin.com/2024-05/01/c_{key}.htm",
        title=title or f"Title {key}",
        source=None,
        published_on=date(2024, 5, 1),
        body=f"{words}.\n\n{words[::-1]}.",
    )


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def repo(engine: Engine) -> Repository:
    return Repository(engine)


def test_changes_since_in_change_order(repo: Repository) -> None:
    assert repo.max_change_seq() == 0 and repo.changes_since(0) == []
    repo.save_articles([record("3"), record("1"), record("2")], T0)
    first = repo.changes_since(0)
    assert [(a.article_key, a.change_seq, a.version) for a in first] == [
        ("1", 1, 1),
        ("2", 2, 1),
        ("3", 3, 1),
    ]
    assert repo.max_change_seq() == 3
    assert [a.article_key for a in repo.changes_since(1, limit=1)] == ["2"]
    assert first[0].images == [] and first[0].title == "Title 1"

    repo.save_articles([record("1"), record("2")], T0 + timedelta(1))  # unchanged: no change
    assert repo.changes_since(3) == [] and repo.max_change_seq() == 3
    repo.save_articles([record("1", title="Edited"), record("4")], T0 + timedelta(2))
    later = repo.changes_since(3)
    assert {(a.article_key, a.version, a.title) for a in later} == {
        ("1", 2, "Edited"),
        ("4", 1, "Title 4"),
    }
    assert [a.change_seq for a in later] == [4, 5]
    # The edited article is no longer at its old number.
    assert [a.article_key for a in repo.changes_since(0)][:2] == ["2", "3"]
    with pytest.raises(ValueError, match="limit"):
        repo.changes_since(0, limit=0)


def test_iter_changes_pages_through_everything(repo: Repository) -> None:
    repo.save_articles([record(str(n)) for n in range(1, 24)], T0)
    assert [a.change_seq for a in repo.iter_changes(batch=5)] == list(range(1, 24))
    assert [a.change_seq for a in repo.iter_changes(since=20, batch=3)] == [21, 22, 23]
    assert list(repo.iter_changes(since=23)) == []


def test_a_failed_batch_hands_out_no_numbers(repo: Repository) -> None:
    repo.save_articles([record("1")], T0)
    broken = record("2")
    broken.body = None  # type: ignore[assignment]
    with pytest.raises(Exception):  # noqa: B017 - StorageError; only the aftermath matters
        repo.save_articles([record("3"), broken], T0)
    repo.save_articles([record("4")], T0)
    assert [(a.article_key, a.change_seq) for a in repo.changes_since(0)] == [("1", 1), ("4", 2)]


class PausingRepository(Repository):
    """Stops inside its write transaction (after its rows are written) until told to go on."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.inside = threading.Event()
        self.go_on = threading.Event()

    def _write_bands(
        self, connection: Connection, replaced: Sequence[int], signed: Sequence[tuple[int, bytes]]
    ) -> None:
        super()._write_bands(connection, replaced, signed)
        self.inside.set()
        assert self.go_on.wait(30)


def test_a_later_writer_waits_so_no_reader_skips_a_number(db_url: str, engine: Engine) -> None:
    """Writer A holds its numbers uncommitted; writer B, started later, cannot commit bigger
    numbers before A: a reader never sees B's rows while A's smaller numbers are missing."""
    repo = Repository(engine)
    repo.save_articles([record("1")], T0)
    engines = [make_engine(db_url) for _ in range(2)]
    slow = PausingRepository(engines[0])
    fast = Repository(engines[1])
    done: list[str] = []
    errors: list[BaseException] = []

    def save(name: str, repository: Repository, keys: list[str]) -> None:
        try:
            repository.save_articles([record(k) for k in keys], T0)
            done.append(name)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    a = threading.Thread(target=save, args=("A", slow, ["10", "11"]))
    b = threading.Thread(target=save, args=("B", fast, ["20", "21"]))
    try:
        a.start()
        assert slow.inside.wait(30)
        b.start()
        time.sleep(0.5)
        assert done == [] and errors == []  # B waits for A's lock
        assert [x.article_key for x in repo.changes_since(0)] == ["1"]
        slow.go_on.set()
        a.join(30)
        b.join(30)
    finally:
        slow.go_on.set()
        for e in engines:
            e.dispose()
    assert errors == [] and done == ["A", "B"]
    assert [(x.article_key, x.change_seq) for x in repo.changes_since(0)] == [
        ("1", 1),
        ("10", 2),
        ("11", 3),
        ("20", 4),
        ("21", 5),
    ]


def test_a_polling_reader_sees_every_change_once_while_two_crawls_write(
    db_url: str, engine: Engine
) -> None:
    rounds, per_batch = 25, 4
    shared = [f"9{n}" for n in range(3)]  # both writers edit these again and again
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[tuple[str, int, str]] = []

    def writer(name: str) -> None:
        own = make_engine(db_url)
        try:
            repository = Repository(own)
            for round_ in range(rounds):
                batch = [record(f"{name}{round_:02d}{n}") for n in range(per_batch)]
                batch += [record(key, title=f"{name} {round_}") for key in shared]
                repository.save_articles(batch, T0 + timedelta(seconds=round_))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            own.dispose()

    def reader() -> None:
        own = make_engine(db_url)
        try:
            repository = Repository(own)
            last = 0
            while True:
                finished = stop.is_set()  # read once more after the writers are done
                page = repository.changes_since(last, limit=7)
                seen.extend((a.article_key, a.change_seq, a.title) for a in page)
                if page:
                    last = page[-1].change_seq
                elif finished:
                    return
                # A consumer polls; spinning would starve the writers of the GIL (a reader in
                # another process would not), slowing their transactions for no test value.
                time.sleep(0.002)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("1", "2")]
    polling = threading.Thread(target=reader)
    polling.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    stop.set()
    polling.join(120)
    assert errors == []

    numbers = [seq for _, seq, _ in seen]
    assert numbers == sorted(set(numbers))  # never one twice, never going back
    new_keys = [
        f"{name}{r:02d}{n}" for name in "12" for r in range(rounds) for n in range(per_batch)
    ]
    seen_keys = [key for key, _, _ in seen]
    # Each new article was written once: seen exactly once, none missed.
    assert sorted(k for k in seen_keys if k not in shared) == sorted(new_keys)
    # Every article's latest change was seen, with its latest content.
    with engine.connect() as connection:
        final = connection.execute(
            sa.text("SELECT article_key, change_seq, title FROM articles")
        ).all()
    assert {tuple(row) for row in final} <= set(seen)
    # One number per change, without gaps (every batch edits each shared article); those not
    # seen belong to edits overwritten before the reader came by, never to a new article.
    with engine.connect() as connection:
        counter = connection.execute(sa.text("SELECT value FROM change_counter")).scalar_one()
    assert max(numbers) == counter == len(new_keys) + 2 * rounds * len(shared)
