"""Scheduled crawls: who ran each crawl, the crawl lock, APScheduler's job table.

Adds ``crawl_runs.host`` and ``crawl_runs.pid`` (NULL for older runs), the ``crawl_lock`` table
(``storage.locks``) and ``apscheduler_jobs`` exactly as APScheduler 3's ``SQLAlchemyJobStore``
defines it, so that the job store finds it made and ``alembic check`` knows it.

SQLite: the columns are added with ``ALTER TABLE ADD COLUMN``; ``crawl_runs`` is never rebuilt
(dropping it would set ``article_versions.crawl_run_id`` to NULL: foreign keys are on).

Revision ID: 0003
Revises: 0002
Create Date: 2025-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("crawl_runs", sa.Column("host", sa.String(length=255), nullable=True))
    op.add_column("crawl_runs", sa.Column("pid", sa.Integer(), nullable=True))
    op.create_table(
        "crawl_lock",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_crawl_lock")),
    )
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apscheduler_jobs")),
    )
    op.create_index(
        op.f("ix_apscheduler_jobs_next_run_time"),
        "apscheduler_jobs",
        ["next_run_time"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_apscheduler_jobs_next_run_time"), table_name="apscheduler_jobs")
    op.drop_table("apscheduler_jobs")
    op.drop_table("crawl_lock")
    # Plain ALTER TABLE DROP COLUMN (SQLite 3.35+): no rebuild of crawl_runs (see above).
    op.drop_column("crawl_runs", "pid")
    op.drop_column("crawl_runs", "host")
