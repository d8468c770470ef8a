"""Database layer (SQLAlchemy + Alembic); imports nothing from scrapy, crawler or pipelines."""
