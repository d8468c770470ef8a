"""Fixtures for end-to-end crawls: a replica served on loopback and the real console script."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 240, env: dict[str, str] | None = None) -> CliResult:
    full_env = dict(os.environ)
    full_env.pop("TIANJIN_UPDATES_DB", None)  # the default database must not come from the caller's shell
    full_env.update(env or {})
    proc = subprocess.run(
        [cli_path(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(cwd) if cwd else None,
        env=full_env,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def read_articles(db_file: Path) -> dict[str, dict[str, Any]]:
    """Every stored article with its images, read as a consumer would: plain SQL, no project code."""
    con = sqlite3.connect(db_file)
    con.row_factory = sqlite3.Row
    try:
        articles = {r["article_key"]: dict(r) for r in con.execute("SELECT * FROM articles")}
        by_id = {a["id"]: a for a in articles.values()}
        for a in articles.values():
            a["images"] = []
        for r in con.execute("SELECT article_id, position, url, caption FROM article_images ORDER BY article_id, position"):
            by_id[r["article_id"]]["images"].append((r["position"], r["url"], r["caption"]))
        return articles
    finally:
        con.close()


def read_runs(db_file: Path) -> list[dict[str, Any]]:
    con = sqlite3.connect(db_file)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM crawl_runs ORDER BY id")]
    finally:
        con.close()


@pytest.fixture
def replica() -> Iterator[ReplicaServer]:
    """A 120-article replica with every default fault, served on a free loopback port."""
    with ReplicaServer(ReplicaSite(articles=120, seed=7)) as server:
        yield server
