"""The crawl lock: one crawl at a time per database, across processes and machines.

Rules:

* the process that runs the crawl holds the lock for the crawl's whole life (``crawl_lock``);
  a second would-be holder is refused at once with ``LockBusy``, naming the holder;
* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a connection of
  its own, so the server releases it the moment the holder's connection or process dies; the
  ``crawl_lock`` row only says who holds it;
* SQLite: a lease, the ``crawl_lock`` row itself, taken with one conditional upsert (free,
  expired, or ours) inside a write transaction, and renewed by a heartbeat thread. A holder that
  died stops renewing and its lease expires after ``ttl`` seconds; one on this host whose process
  is gone is taken over at once;
* a heartbeat that finds the lease gone calls ``on_lost`` (the crawl should stop: another
  process may now be crawling).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine, Table, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import WRITE_OPTION, StorageError, storage_errors
from storage.models import CrawlLockRecord

if TYPE_CHECKING:
    from typing import Self

logger = logging.getLogger(__name__)

crawl_lock_table = cast(Table, CrawlLockRecord.__table__)

#: The name of the lock every crawl takes (one row of ``crawl_lock``).
CRAWL_LOCK = "crawl"
#: Seconds a SQLite lease lasts without a heartbeat (a holder that died blocks at most this long).
DEFAULT_TTL = 60.0
#: First key of PostgreSQL's two-key advisory locks for ours; the second is the schema's hash,
#: so databases sharing a server, or schemas sharing a database, each have their own lock.
_PG_LOCK_CLASS = 7_357_002


def _now() -> datetime:
    return datetime.now(UTC)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a lock, as its ``crawl_lock`` row says."""

    holder: str
    """A random id per acquisition."""
    host: str
    pid: int
    acquired_at: datetime
    expires_at: datetime | None
    """End of a SQLite lease unless renewed; None on PostgreSQL (held until the session ends)."""

    def describe(self) -> str:
        return (
            f"pid {self.pid} on {self.host}, since "
            f"{self.acquired_at.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC"
        )


class LockBusy(StorageError):
    """The lock is held by another process; ``holder`` says which, when known."""

    def __init__(self, name: str, holder: LockHolder | None) -> None:
        self.name = name
        self.holder = holder
        who = f" ({holder.describe()})" if holder else ""
        super().__init__(f"the {name} lock is held by another process{who}")


class LockLost(StorageError):
    """A heartbeat found that this process no longer holds its lease."""


class CrawlLock:
    """A database-wide lock held by this process; use as a context manager or acquire/release."""

    def __init__(
        self,
        engine: Engine,
        *,
        name: str = CRAWL_LOCK,
        ttl: float = DEFAULT_TTL,
        heartbeat: float | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl}")
        self.engine = engine
        self.name = name
        self.ttl = ttl
        #: Seconds between lease renewals: a few chances before the lease runs out.
        self.heartbeat = heartbeat if heartbeat is not None else ttl / 6
        self.on_lost = on_lost
        self.holder_id = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.held = False
        self._pg_connection: Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # --- public API ---------------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the lock or raise ``LockBusy`` at once (never waits for the holder)."""
        if self.held:
            raise RuntimeError(f"the {self.name} lock is already held by this object")
        if self.dialect == "postgresql":
            self._acquire_pg()
        else:
            self._acquire_lease()
        self.held = True
        logger.debug("Acquired the %s lock (%s)", self.name, self.holder_id)

    def release(self) -> None:
        """Let the lock go; safe to call when it is not held."""
        if not self.held:
            return
        self.held = False
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.heartbeat + 5)
        self._thread = None
        try:
            if self.dialect == "postgresql":
                self._release_pg()
            else:
                with self._write("releasing the crawl lock") as connection:
                    connection.execute(self._mine(delete(crawl_lock_table)))
        except StorageError as exc:
            # Nothing is lost: a lease expires and a dead session frees the advisory lock.
            logger.warning("Could not release the %s lock cleanly: %s", self.name, exc)

    def current_holder(self) -> LockHolder | None:
        """The ``crawl_lock`` row of this lock, if any."""
        with (
            storage_errors(self.engine, "reading the crawl lock"),
            self.engine.connect() as connection,
        ):
            return self._read(connection)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # --- SQLite lease -------------------------------------------------------------------------

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        with storage_errors(self.engine, action), self.engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                yield connection

    def _mine(self, statement: Any) -> Any:
        table = crawl_lock_table
        return statement.where(table.c.name == self.name, table.c.holder == self.holder_id)

    def _row(self, now: datetime) -> dict[str, Any]:
        return {
            "name": self.name,
            "holder": self.holder_id,
            "host": self.host,
            "pid": self.pid,
            "acquired_at": now,
            "expires_at": now + timedelta(seconds=self.ttl),
        }

    def _acquire_lease(self) -> None:
        table = crawl_lock_table
        with self._write("taking the crawl lock") as connection:
            # BEGIN IMMEDIATE: no other writer commits between this read and the upsert below.
            current = self._read(connection)
            now = _now()
            dead = (
                current is not None
                and current.host == self.host
                and current.holder != self.holder_id
                and not process_alive(current.pid)
            )
            insert = sqlite.insert(table).values(self._row(now))
            statement = insert.on_conflict_do_update(
                index_elements=[table.c.name],
                set_={
                    c: insert.excluded[c]
                    for c in ("holder", "host", "pid", "acquired_at", "expires_at")
                },
                # The conditional upsert alone is race-safe too: a row is taken over only when
                # its lease expired, it is ours, or it is the dead holder's seen just above.
                where=(table.c.expires_at < now)
                | (table.c.holder == self.holder_id)
                | (table.c.holder == (current.holder if dead and current else self.holder_id)),
            )
            connection.execute(statement)
            taken = self._read(connection)
        if taken is None or taken.holder != self.holder_id:
            raise LockBusy(self.name, taken)
        if current is not None and current.holder != self.holder_id:
            logger.warning(
                "Took over the %s lock from a holder that is gone (%s)",
                self.name,
                current.describe(),
            )
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._renew_until_stopped, name=f"{self.name}-lock-heartbeat", daemon=True
        )
        self._thread.start()

    def _renew_until_stopped(self) -> None:
        deadline = _now() + timedelta(seconds=self.ttl)
        while not self._stop.wait(self.heartbeat):
            now = _now()
            try:
                with self._write("renewing the crawl lock") as connection:
                    renewed = connection.execute(
                        self._mine(update(crawl_lock_table)).values(
                            expires_at=now + timedelta(seconds=self.ttl)
                        )
                    ).rowcount
            except StorageError as exc:
                if _now() < deadline:
                    logger.warning("Could not renew the %s lock (will retry): %s", self.name, exc)
                    continue
                renewed = 0
            if renewed:
                deadline = now + timedelta(seconds=self.ttl)
                continue
            if self._stop.is_set():
                return
            logger.error("Lost the %s lock: another process may be crawling now", self.name)
            self.held = False
            if self.on_lost is not None:
                self.on_lost()
            return

    # --- PostgreSQL advisory lock -------------------------------------------------------------

    def _acquire_pg(self) -> None:
        table = crawl_lock_table
        with storage_errors(self.engine, "taking the crawl lock"):
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                # Out of the pool: closing it must end the session (and so the lock) for real.
                connection.detach()
                got = connection.execute(
                    text("SELECT pg_try_advisory_lock(:cls, hashtext(current_schema()))"),
                    {"cls": _PG_LOCK_CLASS},
                ).scalar_one()
                if not got:
                    holder = self._read(connection)
                    connection.close()
                    raise LockBusy(self.name, holder)
                # The server frees the lock when it notices the session is dead; with these it
                # notices a vanished client (machine off, network cut) within about a minute,
                # not after the system's two-hour TCP keepalive default.
                for name, value in (("idle", 30), ("interval", 10), ("count", 3)):
                    connection.execute(text(f"SET tcp_keepalives_{name} = {value}"))
                row = {**self._row(_now()), "expires_at": None}
                statement = postgresql.insert(table).values(row)
                connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=[table.c.name],
                        set_={k: v for k, v in row.items() if k != "name"},
                    )
                )
            except LockBusy:
                raise
            except BaseException:
                connection.close()
                raise
        self._pg_connection = connection

    def _release_pg(self) -> None:
        connection, self._pg_connection = self._pg_connection, None
        if connection is None:
            return
        try:
            with storage_errors(self.engine, "releasing the crawl lock"):
                connection.execute(self._mine(delete(crawl_lock_table)))
                connection.execute(
                    text("SELECT pg_advisory_unlock(:cls, hashtext(current_schema()))"),
                    {"cls": _PG_LOCK_CLASS},
                )
        finally:
            connection.close()

    # --- reading ------------------------------------------------------------------------------

    def _read(self, connection: Connection) -> LockHolder | None:
        table = crawl_lock_table
        row = connection.execute(select(table).where(table.c.name == self.name)).one_or_none()
        if row is None:
            return None
        return LockHolder(
            holder=row.holder,
            host=row.host,
            pid=row.pid,
            acquired_at=row.acquired_at,
            expires_at=row.expires_at,
        )


@contextmanager
def crawl_lock(engine: Engine, **options: Any) -> Iterator[CrawlLock]:
    """Hold the crawl lock of ``engine``'s database for the block; ``LockBusy`` if taken."""
    lock = CrawlLock(engine, **options)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
