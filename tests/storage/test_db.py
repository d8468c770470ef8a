"""Engines, URLs, schema upgrades and one-line errors of storage.db."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage.db import (
    DEFAULT_DATABASE_URL,
    HEAD_REVISION,
    StorageError,
    check_database,
    default_database_url,
    head_revision,
    make_engine,
    parse_database_url,
    stored_revision,
    upgrade,
)
from storage.models import Base

REPO_ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/test"
TABLES = {
    "articles",
    "article_images",
    "article_versions",
    "article_lsh_bands",
    "change_counter",
    "similarity_index",
    "crawl_runs",
    "crawl_lock",
    "apscheduler_jobs",
    "alembic_version",
}
HEAD = "0004"


def assert_one_line(error: BaseException) -> str:
    message = str(error)
    assert message and "\n" not in message and "Traceback" not in message
    return message


# --- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:pw@db.example:5433/news",
        "postgresql://u:pw@db.example:5433/news",
        "postgresql+psycopg://u:pw@db.example:5433/news",
    ],
)
def test_postgres_urls_use_psycopg3(url: str) -> None:
    engine = make_engine(url)  # no connection is made
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert (engine.url.host, engine.url.port, engine.url.database) == (
            "db.example",
            5433,
            "news",
        )
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "invalid database URL"),
        ("", "invalid database URL"),
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("oracle://u@h/db", "unsupported database 'oracle'"),
        ("postgresql+psycopg2://u:secret@h/db", "unsupported PostgreSQL driver"),
    ],
)
def test_bad_url_is_one_line_storage_error(url: str, expected: str) -> None:
    for call in (make_engine, check_database, upgrade):
        with pytest.raises(StorageError) as info:
            call(url)
        message = assert_one_line(info.value)
        assert expected in message
        assert "secret" not in message


def test_default_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIANJIN_UPDATES_DB", raising=False)
    assert default_database_url() == DEFAULT_DATABASE_URL == "sqlite:///tianjin_updates.sqlite3"
    monkeypatch.setenv("TIANJIN_UPDATES_DB", "postgresql://u@h/db")
    assert default_database_url() == "postgresql://u@h/db"
    monkeypatch.setenv("TIANJIN_UPDATES_DB", "  ")
    assert default_database_url() == DEFAULT_DATABASE_URL


def test_parse_keeps_query_options() -> None:
    url = parse_database_url("postgresql://u@h/db?options=-csearch_path%3Dx")
    assert url.query["options"] == "-csearch_path=x"


# --- SQLite connections --------------------------------------------------------------------


def test_sqlite_connection_pragmas(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url, busy_timeout=12.5)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 12500
    finally:
        engine.dispose()


def test_sqlite_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'db.sqlite3'}"
    for call in (check_database, upgrade):
        with pytest.raises(StorageError) as info:
            call(url)
        message = assert_one_line(info.value)
        assert f"directory {tmp_path / 'missing'} does not exist" in message
    assert not (tmp_path / "missing").exists()  # never created behind the user's back


def test_sqlite_parent_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("x")
    with pytest.raises(StorageError) as info:
        upgrade(f"sqlite:///{tmp_path / 'plain-file' / 'db.sqlite3'}")
    assert "is not a directory" in assert_one_line(info.value)


def test_sqlite_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Root writes through any mode bits (CI runs as root); nobody can create files in /proc.
        with pytest.raises(StorageError) as info:
            upgrade("sqlite:////proc/tianjin-test.sqlite3")
        assert "cannot open SQLite database /proc/tianjin-test.sqlite3" in assert_one_line(
            info.value
        )
        return
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StorageError) as info:
            upgrade(f"sqlite:///{locked / 'db.sqlite3'}")
        assert "not writable" in assert_one_line(info.value)
    finally:
        locked.chmod(0o700)


def test_not_a_database_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not SQLite\n" * 100)
    with pytest.raises(StorageError) as info:
        upgrade(f"sqlite:///{path}")
    assert "not a SQLite database" in assert_one_line(info.value)


# --- PostgreSQL down -----------------------------------------------------------------------


def test_unreachable_postgres_is_one_line_storage_error() -> None:
    for call in (check_database, upgrade):
        with pytest.raises(StorageError) as info:
            call(UNREACHABLE_PG)
        message = assert_one_line(info.value)
        assert "cannot connect to PostgreSQL database test at 127.0.0.1:1" in message
        assert "server is running" in message


# --- schema --------------------------------------------------------------------------------


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_on_empty_database_creates_tables(db_url: str) -> None:
    assert table_names(db_url) == set()
    before = check_database(db_url)
    assert before.current_revision is None and not before.up_to_date
    assert upgrade(db_url) == head_revision() == HEAD
    assert table_names(db_url) == TABLES
    after = check_database(db_url)
    assert after.current_revision == after.head_revision == HEAD and after.up_to_date


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO crawl_runs (started_at, status, trigger, stats) "
                    "VALUES (CURRENT_TIMESTAMP, 'running', 'manual', '{}')"
                )
            )
        upgrade(engine)  # an engine works as well as a URL, and is left open for its owner
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM crawl_runs")).scalar() == 1
            assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
                (HEAD,)
            ]
    finally:
        engine.dispose()
    assert table_names(db_url) == TABLES


def test_concurrent_upgrades_of_an_empty_database(db_url: str) -> None:
    errors: list[Exception] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        try:
            upgrade(db_url)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert check_database(db_url).up_to_date


def schema_diff(url: str, metadata: sa.MetaData) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_migrations_match_models(db_url: str) -> None:
    upgrade(db_url)
    assert schema_diff(db_url, Base.metadata) == []


def test_schema_comparison_would_see_a_difference(db_url: str) -> None:
    """The check above can fail: a model with one more column differs from the migrated schema."""
    upgrade(db_url)
    metadata = sa.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    metadata.tables["articles"].append_column(sa.Column("summary", sa.Text()))
    diff = schema_diff(db_url, metadata)
    assert [d[0] for d in diff if isinstance(d, tuple)] == ["add_column"]


def test_downgrade_and_upgrade_again(db_url: str) -> None:
    from alembic import command

    from storage.db import alembic_config

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
    finally:
        engine.dispose()
    assert table_names(db_url) == {"alembic_version"}
    upgrade(db_url)
    assert table_names(db_url) == TABLES


def test_developer_alembic_ini_and_alembic_check(db_url: str, tmp_path: Path) -> None:
    """``alembic -c storage/alembic.ini`` works for developers, the URL from the environment,
    and ``alembic check`` finds nothing to generate after the migrations ran."""
    env = {**os.environ, "TIANJIN_UPDATES_DB": db_url}
    alembic = Path(sys.executable).with_name("alembic")
    command = [str(alembic)] if alembic.exists() else [sys.executable, "-m", "alembic"]
    outputs = {}
    for args in (("upgrade", "head"), ("current",), ("check",)):
        proc = subprocess.run(  # noqa: PLW1510 - the return code is asserted
            [*command, "-c", str(REPO_ROOT / "storage" / "alembic.ini"), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        outputs[args[0]] = proc.stdout
    assert outputs["current"].strip() == f"{HEAD} (head)"
    assert "No new upgrade operations detected" in outputs["check"]


# --- layering --------------------------------------------------------------------------------


def test_storage_imports_nothing_from_scrapy_crawler_or_pipelines() -> None:
    code = (
        "import sys, storage.db, storage.models, storage.repository, storage.migrations;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('scrapy', 'twisted', 'crawler', 'pipelines', 'itemadapter'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_engine_at_import() -> None:
    import storage.db
    import storage.models
    import storage.repository

    for module in (storage.db, storage.models, storage.repository):
        assert not [v for v in vars(module).values() if isinstance(v, sa.Engine)]


def test_head_revision_constant_is_alembics_head() -> None:
    assert HEAD_REVISION == head_revision()


def test_up_to_date_database_is_upgraded_without_loading_alembic(db_url: str) -> None:
    """A crawl of a migrated database never imports Alembic; an empty one still migrates."""
    upgrade(db_url)
    code = (
        "import sys\n"
        "from storage.db import upgrade\n"
        "import crawler.cli, pipelines.store, crawler.spiders.tianjin_updates\n"
        f"print(upgrade({db_url!r}), 'alembic' in sys.modules)\n"
    )
    proc = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [HEAD, "False"]


def test_stored_revision_reads_what_alembic_wrote(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert stored_revision(engine) is None
        upgrade(engine)
        with engine.connect() as connection:
            assert stored_revision(engine) == MigrationContext.configure(
                connection
            ).get_current_revision()
    finally:
        engine.dispose()
