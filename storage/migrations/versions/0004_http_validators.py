"""HTTP validators of each article's first page, for conditional re-visits; degraded runs.

Adds ``articles.etag`` and ``articles.last_modified`` (NULL until the article is fetched again).
They are not content: changing them makes no version and no new ``change_seq``. Adds
``crawl_runs.degraded_pages``: pages a crawl fetched but could not read (layout drift), 0 for
older runs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("articles", sa.Column("etag", sa.Text(), nullable=True))
    op.add_column("articles", sa.Column("last_modified", sa.Text(), nullable=True))
    op.add_column(
        "crawl_runs",
        sa.Column("degraded_pages", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35): a batch rebuild of ``articles`` on SQLite would drop the
    # table and, foreign keys being on, its images with it.
    op.execute("ALTER TABLE crawl_runs DROP COLUMN degraded_pages")
    op.execute("ALTER TABLE articles DROP COLUMN last_modified")
    op.execute("ALTER TABLE articles DROP COLUMN etag")
