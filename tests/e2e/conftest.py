"""Fixtures for end-to-end crawls: a replica served on loopback and the real console script."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crawler.replica import ReplicaServer, ReplicaSite

REPO_ROOT = Path(__file__).resolve().parents[2]


def cli_path() -> str:
    """The installed ``tianjin-updates`` console script (next to this interpreter, else on PATH)."""
    here = Path(sys.executable).with_name("tianjin-updates")
    found = str(here) if here.exists() else shutil.which("tianjin-updates")
    assert found, "the tianjin-updates console script is not installed: pip install -e ."
    return found


def fast_settings(server: ReplicaServer) -> list[str]:
    """-s options for a full-speed crawl of a loopback replica."""
    values = {
        "DOWNLOAD_DELAY": "0",
        "AUTOTHROTTLE_ENABLED": "False",
        "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
        "TIANJIN_RETRY_BACKOFF": "0",
        "TIANJIN_HOSTS": ",".join(server.hosts),
    }
    return [arg for name, value in values.items() for arg in ("-s", f"{name}={value}")]


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 240, env: dict[str, str] | None = None
) -> CliResult:
    full_env = dict(os.environ)
    full_env.pop(
        "TIANJIN_UPDATES_DB", None
    )  # the default database must not come from the caller's shell
    full_env.update(env or {})
    proc = subprocess.run(
        [cli_path(), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(cwd) if cwd else None,
        env=full_env,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _url(db: Path | str) -> str:
    return f"sqlite:///{db}" if isinstance(db, Path) else db


def _value(value: Any) -> Any:
    """Column values as plain JSON-like Python: dates as ISO text (SQLite gives text already)."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def query(db: Path | str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of a plain SQL query, as a consumer of the database would read them."""
    engine = sa.create_engine(_url(db))
    try:
        with engine.connect() as connection:
            return [
                {k: _value(v) for k, v in row._mapping.items()}
                for row in connection.execute(sa.text(sql), params)
            ]
    finally:
        engine.dispose()


def read_articles(db: Path | str) -> dict[str, dict[str, Any]]:
    """Every stored article with its images, read with plain SQL, no project code."""
    articles = {r["article_key"]: r for r in query(db, "SELECT * FROM articles")}
    by_id = {a["id"]: a for a in articles.values()}
    for a in articles.values():
        a["complete"] = bool(a["complete"])
        a["images"] = []
    for r in query(
        db,
        "SELECT article_id, position, url, caption FROM article_images ORDER BY article_id, position",
    ):
        by_id[r["article_id"]]["images"].append((r["position"], r["url"], r["caption"]))
    return articles


def read_runs(db: Path | str) -> list[dict[str, Any]]:
    runs = query(db, "SELECT * FROM crawl_runs ORDER BY id")
    for run in runs:
        if isinstance(run["stats"], str):
            run["stats"] = json.loads(run["stats"])
    return runs


@pytest.fixture
def replica() -> Iterator[ReplicaServer]:
    """A 120-article replica with every default fault, served on a free loopback port."""
    with ReplicaServer(ReplicaSite(articles=120, seed=7)) as server:
        yield server
