"""Engines, schema upgrades and one-line database errors.

Rules:

* no engine exists at import time: callers make one with ``make_engine(url)`` and dispose of it;
* the schema is created and changed only by Alembic (``upgrade``), never by ``create_all()``;
* every database failure a user can meet leaves this package as a ``StorageError`` whose message
  is one line saying what failed and what to do, with the driver's exception as ``__cause__``.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

#: Environment variable naming the database (also read by the CLI and the store pipeline).
DATABASE_ENV = "TIANJIN_UPDATES_DB"
#: Used when neither a setting nor the environment names a database.
DEFAULT_DATABASE_URL = "sqlite:///tianjin_updates.sqlite3"
#: How long a SQLite writer waits for another writer's lock before giving up.
DEFAULT_BUSY_TIMEOUT = 30.0
#: Seconds to wait for a PostgreSQL server to answer a connection attempt.
DEFAULT_CONNECT_TIMEOUT = 10

#: Connection execution option asking for a write transaction (``BEGIN IMMEDIATE`` on SQLite).
WRITE_OPTION = "tianjin_write"

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any constant will do; it only has to be the same in every process migrating this database.
_MIGRATION_LOCK_KEY = 7_357_001


class StorageError(Exception):
    """A database failure, described in one line fit for a user (``str(error)``).

    ``transient``, when set, says whether waiting may heal it (``is_transient``): an error sent
    from another process has lost the driver's exception behind it, so it carries the verdict.
    """

    transient: bool | None = None


def is_transient(exc: BaseException) -> bool:
    """True for a failure that may heal by waiting: the server unreachable or restarting, a
    connection lost, SQLite's "database is locked"; False for bad data or a broken schema."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, StorageError) and exc.transient is not None:
        return exc.transient
    cause = exc.__cause__ if isinstance(exc, StorageError) else exc
    if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
        return True
    return isinstance(
        cause, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError)
    )


def default_database_url() -> str:
    """The database named by ``$TIANJIN_UPDATES_DB``, else a SQLite file in the working directory."""
    return os.environ.get(DATABASE_ENV, "").strip() or DEFAULT_DATABASE_URL


def parse_database_url(url: str | URL) -> URL:
    """Parse ``url`` into a SQLAlchemy URL for a supported database, or raise ``StorageError``.

    ``postgres://`` and ``postgresql://`` are rewritten to the psycopg 3 driver
    (``postgresql+psycopg://``), the only PostgreSQL driver installed with this project.
    """
    if isinstance(url, URL):
        parsed = url
    else:
        raw = url.strip()
        raw = re.sub(r"^(postgres|postgresql)://", "postgresql+psycopg://", raw)
        try:
            parsed = make_url(raw)
        except (ArgumentError, ValueError) as exc:
            raise StorageError(
                f"invalid database URL {_mask(raw)!r}: expected sqlite:///path/to/file.sqlite3 "
                "or postgresql://user:password@host:5432/dbname"
            ) from exc
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StorageError(
            f"unsupported database {backend!r} in URL {_describe_url(parsed)!r}: "
            "use sqlite:///path/to/file.sqlite3 or postgresql://user@host/dbname"
        )
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise StorageError(
            f"unsupported PostgreSQL driver {parsed.get_driver_name()!r} in "
            f"{_describe_url(parsed)!r}: use postgresql:// or postgresql+psycopg://"
        )
    return parsed


def make_engine(
    url: str | URL,
    *,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
) -> Engine:
    """A new engine for ``url`` (SQLite or PostgreSQL); nothing is connected until first use.

    SQLite connections get WAL journaling (readers never block the writer), a ``busy_timeout``
    of ``busy_timeout`` seconds, enforced foreign keys, and transactions that SQLAlchemy begins
    itself so that write transactions can take the write lock up front (see ``WRITE_OPTION``).
    """
    parsed = parse_database_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed)
            _configure_sqlite(engine, busy_timeout)
        else:
            connect_args: dict[str, Any] = {}
            if "connect_timeout" not in parsed.query:
                connect_args["connect_timeout"] = connect_timeout
            # A long crawl leaves pooled connections idle; a server restart must not fail a flush.
            engine = create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StorageError(
            f"cannot use database URL {_describe_url(parsed)!r}: {_first_line(exc)}"
        ) from exc
    return engine


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    timeout_ms = max(0, int(busy_timeout * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # sqlite3's own transaction handling would BEGIN lazily (DEFERRED) and never for DDL;
        # SQLAlchemy's "begin" hook below takes over.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            _use_wal(cursor, busy_timeout)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A deferred transaction that reads and then writes can fail at once with SQLITE_BUSY
        # when another writer got in between (the busy timeout does not apply); IMMEDIATE takes
        # the write lock first, waiting up to busy_timeout for it.
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _use_wal(cursor: sqlite3.Cursor, busy_timeout: float) -> None:
    """Switch the database file to WAL journaling (a lasting property of the file).

    The switch needs an exclusive lock and SQLite does not wait for it (no busy handler), so
    two processes opening a new file at once retry here for up to ``busy_timeout`` seconds.
    """
    deadline = monotonic() + busy_timeout
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or monotonic() >= deadline:
                raise
            sleep(0.02)


# --- errors -------------------------------------------------------------------------------


def _mask(raw: str) -> str:
    """``raw`` with any password replaced by ``***`` (for URLs that did not even parse)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", raw)


def _describe_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _sqlite_path(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


def _target(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        return f"SQLite database {path}" if path else "SQLite database in memory"
    host = url.host or "localhost"
    port = url.port or 5432
    return f"PostgreSQL database {url.database or ''!s} at {host}:{port}".replace("  ", " ")


def describe_error(exc: BaseException, url: URL, action: str) -> str:
    """One line telling what went wrong while ``action`` (e.g. "saving articles") and what to do."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    detail = _first_line(orig)
    lowered = detail.lower()
    target = _target(url)
    if url.get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if "locked" in lowered or "busy" in lowered:
            return (
                f"{action} failed: {target} is locked by another writer; "
                "try again when the other crawl has finished"
            )
        if "unable to open database file" in lowered and path is not None:
            parent = path.parent
            if not parent.exists():
                problem = f"directory {parent} does not exist"
            elif not parent.is_dir():
                problem = f"{parent} is not a directory"
            elif not os.access(parent, os.W_OK | os.X_OK):
                problem = f"directory {parent} is not writable"
            else:
                problem = detail
            return f"{action} failed: cannot open {target}: {problem}; create it or choose another path"
        if "readonly" in lowered or "read-only" in lowered:
            return f"{action} failed: {target} is read-only; check the permissions of the file and its directory"
        if "not a database" in lowered:
            return f"{action} failed: {target} is not a SQLite database file; choose another path"
        return f"{action} failed on {target}: {detail}"
    if isinstance(exc, DBAPIError) and _is_connection_failure(orig):
        return (
            f"{action} failed: cannot connect to {target}: {detail}; "
            "check that the server is running and the URL is right"
        )
    return f"{action} failed on {target}: {detail}"


def _is_connection_failure(orig: BaseException) -> bool:
    text_ = str(orig).lower()
    return (
        "connection failed" in text_
        or "connection to server" in text_
        or "could not connect" in text_
        or "server closed the connection" in text_
        or "connection refused" in text_
        or "consuming input failed" in text_
        or "the connection is closed" in text_
        or "timeout expired" in text_
    )


@contextmanager
def storage_errors(target: Engine | URL, action: str) -> Iterator[None]:
    """Turn database errors raised inside the block into one-line ``StorageError``s."""
    url = target.url if isinstance(target, Engine) else target
    try:
        yield
    except StorageError:
        raise
    except SQLAlchemyError as exc:
        raise StorageError(describe_error(exc, url, action)) from exc


# --- schema -------------------------------------------------------------------------------


if TYPE_CHECKING:
    from alembic.config import Config

#: The newest schema revision (a test keeps it equal to Alembic's head). With it a crawl sees
#: that its database is up to date from one query, without loading Alembic (about 11 MB of
#: memory a long crawl would otherwise carry); Alembic is imported only to migrate.
HEAD_REVISION = "0004"


def alembic_config() -> Config:
    """An Alembic configuration for our migrations, needing no ``alembic.ini``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    """The newest revision this version of the program knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@dataclass(frozen=True)
class DatabaseStatus:
    """What ``check_database`` found."""

    url: str
    """The URL, password hidden."""
    dialect: str
    """``sqlite`` or ``postgresql``."""
    current_revision: str | None
    """The schema revision the database is at (None: no schema yet)."""
    head_revision: str | None
    """The schema revision this program expects."""

    @property
    def up_to_date(self) -> bool:
        return self.current_revision == self.head_revision


def check_database(url: str | URL) -> DatabaseStatus:
    """Connect to ``url`` and read its schema revision; raise ``StorageError`` if that fails.

    A SQLite file that does not exist yet is created (empty) in an existing directory.
    """
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with storage_errors(engine, "connecting to the database"), engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        return DatabaseStatus(
            url=_describe_url(engine.url),
            dialect=engine.dialect.name,
            current_revision=current,
            head_revision=head_revision(),
        )
    finally:
        engine.dispose()


def stored_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database (None: no schema yet), without Alembic."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    # More than one row would be a branched history, which this project never has.
    return rows[0] if len(rows) == 1 else None


def upgrade(target: str | URL | Engine) -> str | None:
    """Bring the database to the newest schema revision and return it; a no-op when it is there.

    Safe to call at the start of every crawl, also by two processes at once: on PostgreSQL an
    advisory lock and on SQLite the write lock let one migrate while the other waits.
    """
    owned = not isinstance(target, Engine)
    engine = make_engine(target) if not isinstance(target, Engine) else target
    try:
        with storage_errors(engine, "reading the database schema revision"):
            if stored_revision(engine) == HEAD_REVISION:
                return HEAD_REVISION
        from alembic import command
        from alembic.util.exc import CommandError

        with (
            storage_errors(engine, "upgrading the database schema"),
            engine.connect() as connection,
        ):
            connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                config = alembic_config()
                config.attributes["connection"] = connection
                try:
                    command.upgrade(config, "head")
                except CommandError as exc:
                    raise StorageError(
                        f"cannot upgrade {_target(engine.url)}: {_first_line(exc)}; "
                        "is it from a newer version of tianjin-updates?"
                    ) from exc
        return head_revision()
    finally:
        if owned:
            engine.dispose()
