"""``tianjin-updates crawl`` under the crawl lock: refusal, abandoned runs, --timeout."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from crawler.replica import ReplicaServer
from storage.db import make_engine, upgrade
from storage.locks import crawl_lock
from storage.repository import Repository

from .conftest import child_env, cli_path, crawl_settings, read_runs


def crawl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cli_path(), "crawl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        check=False,
    )


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_crawl_refuses_while_another_crawl_holds_the_lock(
    small_replica: ReplicaServer, db_url: str, engine: sa.Engine
) -> None:
    repo = Repository(engine)
    with crawl_lock(engine):
        run_id = repo.start_run("schedule", datetime.now(UTC))
        result = crawl(
            "--db", db_url, "--start-url", small_replica.base_url, *crawl_settings(small_replica)
        )
    assert result.returncode == 75, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()[-1:]
    assert line.startswith("tianjin-updates: another crawl is running on ")
    assert f"(run {run_id}, pid " in line and socket.gethostname() in line
    assert "try again when it has finished" in line
    assert not small_replica.requests  # nothing was fetched
    assert [r["status"] for r in read_runs(db_url)] == ["running"]  # ours, untouched


def test_crawl_marks_runs_left_by_dead_processes_then_crawls(
    small_replica: ReplicaServer, db_url: str, engine: sa.Engine
) -> None:
    stale = Repository(engine).start_run("manual", datetime.now(UTC), host="gone", pid=1)
    result = crawl(
        "--db", db_url, "--start-url", small_replica.base_url, *crawl_settings(small_replica)
    )
    assert result.returncode == 0, result.stderr
    assert f"Run {stale} was left running by a process that is gone: marked failed" in result.stderr
    old, new = read_runs(db_url)
    assert (old["status"], old["stats"]["finish_reason"]) == ("failed", "abandoned")
    assert old["finished_at"] is not None
    assert new["status"] == "succeeded" and new["trigger"] == "manual"
    assert new["host"] == socket.gethostname() and new["pid"] > 0


def test_crawl_timeout_stops_the_crawl_and_records_it_failed(
    slow_replica: ReplicaServer, sqlite_url: str
) -> None:
    result = crawl(
        "--db", sqlite_url, "--start-url", slow_replica.base_url, "--timeout", "1s",
        *crawl_settings(slow_replica, delay=0.05),
    )  # fmt: skip
    assert result.returncode == 1
    assert "Crawl failed in" in result.stdout
    assert "timed out (--timeout)" in result.stderr
    [run] = read_runs(sqlite_url)
    assert (run["status"], run["stats"]["finish_reason"]) == ("failed", "closespider_timeout")
    assert run["stats"]["store/articles_new"] < len(slow_replica.site.expected())


def test_schedule_start_marks_abandoned_runs(
    db_url: str, engine: sa.Engine, start_daemon: Any
) -> None:
    stale = Repository(engine).start_run("schedule", datetime.now(UTC), host="gone", pid=1)
    daemon = start_daemon("--every", "1d", "--db", db_url, "--start-url", "http://127.0.0.1:9/")
    daemon.wait_log(f"Run {stale} was left running by a process that is gone")
    assert daemon.stop()[0] == 0
    first = read_runs(db_url)[0]
    assert (first["status"], first["stats"]["finish_reason"]) == ("failed", "abandoned")


def test_the_child_is_the_real_command_line(tmp_path: Any) -> None:
    """The scheduler's child is ``python -P -m crawler.cli crawl``: a module, not a path guess."""
    from crawler.schedule import CrawlSpec, child_command

    argv = child_command(
        CrawlSpec(start_url="http://x/", max_pages=2, settings={"A": "1"}, timeout=90)
    )
    assert argv[:5] == [sys.executable, "-P", "-m", "crawler.cli", "crawl"]
    assert argv[5:] == [
        "--progress", "0", "--start-url", "http://x/", "--max-pages", "2", "--timeout", "90",
        "-s", "A=1", "-s", "TIANJIN_TRIGGER=schedule",
    ]  # fmt: skip
