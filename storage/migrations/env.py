"""Alembic environment: migrates the connection handed over by ``storage.db.upgrade``.

Run programmatically (``config.attributes["connection"]``), or by a developer with
``alembic -c storage/alembic.ini ...`` and the URL in ``$TIANJIN_UPDATES_DB``.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from storage.db import WRITE_OPTION, default_database_url, make_engine
from storage.models import Base

config = context.config
if config.config_file_name is not None and "connection" not in config.attributes:
    # Only the developer's `alembic -c storage/alembic.ini` run; the program keeps its logging.
    fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later revisions rebuild tables in batch mode there.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``)."""
    url = config.get_main_option("sqlalchemy.url") or default_database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate the given connection, or one to ``sqlalchemy.url`` / ``$TIANJIN_UPDATES_DB``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or default_database_url())
    try:
        with engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
