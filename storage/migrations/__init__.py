"""Alembic migration environment for the tianjin-updates schema."""
