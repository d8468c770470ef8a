"""Shared service fixtures: a SQLite file per test, a fresh PostgreSQL schema per test, and a
key prefix of its own per test in Redis.

PostgreSQL tests use the server named by ``$TIANJIN_TEST_PG_URL``, Redis tests the one named by
``$TIANJIN_TEST_REDIS_URL``. Without it they are skipped, unless ``TIANJIN_REQUIRE_SERVICES=1``:
then a missing or unreachable server fails them, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

PG_ENV = "TIANJIN_TEST_PG_URL"
REDIS_ENV = "TIANJIN_TEST_REDIS_URL"
REQUIRE_ENV = "TIANJIN_REQUIRE_SERVICES"


def _services_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if _services_required():
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def _pg_base_url() -> str:
    """The test server's URL, checked once: skip or fail (see module docstring) if unusable."""
    raw = os.environ.get(PG_ENV, "").strip()
    if not raw:
        _unavailable(f"PostgreSQL tests need ${PG_ENV}")
    url = make_url(raw.replace("postgres://", "postgresql://", 1))
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        _unavailable(f"PostgreSQL at ${PG_ENV} is unreachable: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()
    return url.render_as_string(hide_password=False)


@contextmanager
def _fresh_pg_schema(base_url: str) -> Iterator[str]:
    """A URL whose connections use a new, empty schema of the test database, dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            # Idle connections a test forgot would block the DROP; ours never hold locks here.
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_url(_pg_base_url: str) -> Iterator[str]:
    """A URL whose connections use a new, empty schema of the test database, dropped afterwards."""
    with _fresh_pg_schema(_pg_base_url) as url:
        yield url


@pytest.fixture
def other_pg_url(_pg_base_url: str) -> Iterator[str]:
    """A second empty schema of the test database (``pg_url`` is the first)."""
    with _fresh_pg_schema(_pg_base_url) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL of a SQLite file (not yet created) in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'test.sqlite3'}"


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database, once SQLite and once PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="session")
def _redis_base_url() -> str:
    """The test Redis server's URL, checked once: skip or fail (see module docstring) if unusable."""
    raw = os.environ.get(REDIS_ENV, "").strip()
    if not raw:
        _unavailable(f"Redis tests need ${REDIS_ENV}")
    import redis

    try:
        client = redis.Redis.from_url(raw, socket_connect_timeout=5, socket_timeout=5)
        client.ping()
        client.close()
    except (redis.RedisError, ValueError) as exc:
        _unavailable(f"Redis at ${REDIS_ENV} is unreachable: {str(exc).splitlines()[0]}")
    return raw


@pytest.fixture
def redis_url(_redis_base_url: str) -> str:
    """The URL of the test Redis server."""
    return _redis_base_url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own (``TIANJIN_REDIS_PREFIX``); its keys are deleted afterwards."""
    import redis

    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
