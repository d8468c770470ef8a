"""The crawl lock (storage.locks) on SQLite and PostgreSQL, with real processes as holders."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from storage.db import make_engine, upgrade
from storage.locks import CrawlLock, LockBusy, crawl_lock, crawl_lock_table


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_a_second_acquirer_is_refused_and_told_who_holds_it(engine: sa.Engine) -> None:
    with crawl_lock(engine) as held:
        other = CrawlLock(engine)
        with pytest.raises(LockBusy) as refused:
            other.acquire()
        assert not other.held
        holder = refused.value.holder
        assert holder is not None
        assert (holder.holder, holder.pid, holder.host) == (
            held.holder_id,
            os.getpid(),
            socket.gethostname(),
        )
        assert f"pid {os.getpid()} on {socket.gethostname()}" in str(refused.value)
    # Released at the end of the block: the next one gets it, and its row is gone again after.
    with crawl_lock(engine):
        pass
    with engine.connect() as connection:
        assert connection.execute(sa.select(crawl_lock_table)).all() == []


def test_release_is_idempotent_and_a_lock_object_can_be_taken_again(engine: sa.Engine) -> None:
    lock = CrawlLock(engine)
    lock.acquire()
    lock.release()
    lock.release()
    lock.acquire()
    with pytest.raises(RuntimeError):
        lock.acquire()
    lock.release()


def _put_lease(engine: sa.Engine, *, host: str, pid: int, expires_in: float) -> None:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            crawl_lock_table.insert().values(
                name="crawl",
                holder="someone-else",
                host=host,
                pid=pid,
                acquired_at=now - timedelta(minutes=5),
                expires_at=now + timedelta(seconds=expires_in),
            )
        )


def test_sqlite_an_expired_lease_is_taken_over(sqlite_engine: sa.Engine) -> None:
    _put_lease(sqlite_engine, host="another-machine", pid=12345, expires_in=-1)
    with crawl_lock(sqlite_engine) as lock:
        assert lock.current_holder().holder == lock.holder_id  # type: ignore[union-attr]


def test_sqlite_a_live_lease_of_another_machine_is_respected(sqlite_engine: sa.Engine) -> None:
    _put_lease(sqlite_engine, host="another-machine", pid=os.getpid(), expires_in=30)
    with pytest.raises(LockBusy, match="another-machine"):
        CrawlLock(sqlite_engine).acquire()


def test_sqlite_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(
    sqlite_engine: sa.Engine,
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _put_lease(sqlite_engine, host=socket.gethostname(), pid=dead.pid, expires_in=60)
    with crawl_lock(sqlite_engine) as lock:
        assert lock.current_holder().pid == os.getpid()  # type: ignore[union-attr]


def test_sqlite_a_live_process_on_this_host_keeps_its_lease(sqlite_engine: sa.Engine) -> None:
    _put_lease(sqlite_engine, host=socket.gethostname(), pid=os.getppid(), expires_in=60)
    with pytest.raises(LockBusy):
        CrawlLock(sqlite_engine).acquire()


def test_sqlite_the_heartbeat_keeps_a_short_lease_alive(sqlite_engine: sa.Engine) -> None:
    with crawl_lock(sqlite_engine, ttl=1.0, heartbeat=0.2):
        time.sleep(2.0)  # twice the lease: only renewals keep it
        # Another machine (not judged by pid) would see a lease that has not expired.
        holder = CrawlLock(sqlite_engine).current_holder()
        assert holder is not None and holder.expires_at is not None
        assert holder.expires_at > datetime.now(UTC)


def test_sqlite_a_lost_lease_is_reported(sqlite_engine: sa.Engine) -> None:
    lost: list[bool] = []
    lock = CrawlLock(sqlite_engine, ttl=1.0, heartbeat=0.1, on_lost=lambda: lost.append(True))
    lock.acquire()
    try:
        with sqlite_engine.begin() as connection:  # another process took it over
            connection.execute(sa.update(crawl_lock_table).values(holder="thief"))
        deadline = time.monotonic() + 5
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lost == [True]
        assert not lock.held
    finally:
        lock.release()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from storage.db import make_engine
    from storage.locks import CrawlLock
    lock = CrawlLock(make_engine(sys.argv[1]))
    lock.acquire()
    print("held", flush=True)
    time.sleep(120)
    """
)


def test_a_holder_that_dies_releases_the_lock(engine: sa.Engine) -> None:
    """PostgreSQL: the server drops the advisory lock with the session; SQLite: the lease of a
    dead process on this host is taken over."""
    url = engine.url.render_as_string(hide_password=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy) as refused:
            CrawlLock(engine).acquire()
        assert refused.value.holder is not None and refused.value.holder.pid == holder.pid
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        deadline = time.monotonic() + 10
        while True:
            try:
                with crawl_lock(engine) as lock:
                    assert lock.held
                break
            except LockBusy:
                assert time.monotonic() < deadline, "the dead holder's lock was never released"
                time.sleep(0.1)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.postgres
def test_postgres_lock_is_per_schema_and_freed_when_the_session_ends(pg_url: str) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    try:
        lock = CrawlLock(engine)
        lock.acquire()
        assert lock._pg_connection is not None
        # The session ends (network cut, server restart, process killed): the lock goes with it.
        with make_engine(pg_url).connect() as admin:
            backend = lock._pg_connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": backend})
        with crawl_lock(engine):
            pass
        lock.release()  # a warning at most: the session is gone
    finally:
        engine.dispose()
