"""The command line of distributed crawls: what it refuses, the crawl lock, stopping a crawl."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from crawler.frontier import current_key
from crawler.replica import ReplicaSite

from .conftest import child_env, cli_path, finish, frontier_keys, read_runs, wait_until


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cli_path(), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
    )


def test_distributed_crawls_refuse_sqlite_with_a_usage_error(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'local.sqlite3'}"
    seeded = run("crawl", "--redis", "redis://127.0.0.1:1/0", "--db", db)
    assert seeded.returncode == 2
    assert seeded.stderr.count("\n") == 1 and "PostgreSQL" in seeded.stderr
    joined = run("worker", "--redis", "redis://127.0.0.1:1/0", "--db", db)
    assert joined.returncode == 2 and "PostgreSQL" in joined.stderr
    # Nothing was created: the refusal comes before the database is touched.
    assert not (tmp_path / "local.sqlite3").exists()


def test_a_worker_needs_redis() -> None:
    result = run("worker", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert result.returncode == 2
    assert "--redis" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_gives_up_when_no_crawl_starts(
    pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    result = run(
        "worker", "--redis", redis_url, "--db", pg_url, "--wait", "1s",
        "-s", f"TIANJIN_REDIS_PREFIX={redis_prefix}",
    )  # fmt: skip
    assert result.returncode == 1
    assert "no crawl started" in result.stderr


@pytest.mark.postgres
@pytest.mark.redis
def test_the_seeder_holds_the_crawl_lock_and_stops_cleanly_on_sigterm(
    cluster_for: Any, pg_url: str
) -> None:
    cluster = cluster_for(ReplicaSite(articles=40, seed=44))
    client = redis.Redis.from_url(cluster.redis_url)
    try:
        seeder = cluster.seeder()  # no worker: it waits
        wait_until(lambda: client.get(current_key(cluster.prefix)), 60, "the crawl")

        # A crawl in one process on the same database is refused, as during any crawl.
        local = run(
            "crawl", "--start-url", cluster.server.base_url, "--db", pg_url, "--progress", "0"
        )
        assert local.returncode == 75, local.stderr
        assert "another crawl is running" in local.stderr and "run 1" in local.stderr
        # So is a second distributed one.
        second = run(
            "crawl", "--start-url", cluster.server.base_url, "--redis", cluster.redis_url,
            "--db", pg_url, "--progress", "0", "-s", f"TIANJIN_REDIS_PREFIX={cluster.prefix}",
        )  # fmt: skip
        assert second.returncode == 75, second.stderr

        seeder.send_signal(signal.SIGTERM)
        result = finish(seeder, 60)
    finally:
        client.close()
    assert result.code == 1, result
    assert "interrupted" in result.stdout
    runs = read_runs(pg_url)
    assert [r["status"] for r in runs] == ["interrupted"]
    assert runs[0]["stats"]["finish_reason"] == "shutdown"
    assert frontier_keys(cluster.redis_url, cluster.prefix) == []
    # With the lock free again, a crawl in one process runs.
    local = run(
        "crawl", "--start-url", cluster.server.base_url, "--db", pg_url, "--progress", "0",
        "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False",
        "-s", f"TIANJIN_HOSTS={','.join(cluster.server.hosts)}",
    )  # fmt: skip
    assert local.returncode == 0, local.stderr


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_on_another_database_is_refused(cluster_for: Any, other_pg_url: str) -> None:
    cluster = cluster_for(ReplicaSite(articles=40, seed=45))
    client = redis.Redis.from_url(cluster.redis_url)
    try:
        seeder = cluster.seeder()
        wait_until(lambda: client.get(current_key(cluster.prefix)), 60, "the crawl")
        # Another schema: migrated, but without the seeder's run.
        assert run("db", "upgrade", "--db", other_pg_url).returncode == 0
        wrong = run(
            "worker", "--redis", cluster.redis_url, "--db", other_pg_url, "--wait", "10s",
            "-s", f"TIANJIN_REDIS_PREFIX={cluster.prefix}",
        )  # fmt: skip
        seeder.send_signal(signal.SIGTERM)
        finish(seeder, 60)
    finally:
        client.close()
    assert wrong.returncode == 1
    assert "same database" in wrong.stderr and wrong.stderr.count("\n") == 1


@pytest.mark.postgres
@pytest.mark.redis
def test_a_start_url_that_cannot_be_fetched_fails_the_crawl(cluster_for: Any) -> None:
    cluster = cluster_for(ReplicaSite(articles=20, seed=46))
    worker = cluster.worker()
    seeder = cluster.seeder("--start-url", "http://127.0.0.1:9/")  # nothing listens there
    result = finish(seeder, 120)
    joined = finish(worker, 60)
    assert result.code == 1, result
    assert "cannot fetch http://127.0.0.1:9/" in result.stderr
    assert joined.code == 1, joined
    runs = read_runs(cluster.db)
    assert [r["status"] for r in runs] == ["failed"]
    assert runs[0]["stats"]["finish_reason"] == "start_failed"
    assert frontier_keys(cluster.redis_url, cluster.prefix) == []


@pytest.mark.postgres
@pytest.mark.redis
def test_a_forever_worker_serves_crawl_after_crawl_until_sigterm(cluster_for: Any) -> None:
    cluster = cluster_for(ReplicaSite(articles=60, seed=47))
    forever = cluster._spawn(
        "forever",
        ["worker", "--forever", "--redis", cluster.redis_url, "--db", cluster.db,
         "--progress", "0", *cluster.options()],
    )  # fmt: skip
    first = finish(cluster.seeder(), 300)
    assert first.code == 0, first
    site = cluster.server.site
    expected, specials = site.expected(), set(site.fault_keys.values())
    newest = next(
        a for a in map(site.article, range(10)) if a.key in expected and a.key not in specials
    )
    site.edit_article(newest.key)
    second = finish(cluster.seeder(), 300)
    assert second.code == 0, second
    assert forever.poll() is None  # waiting for the next crawl
    forever.send_signal(signal.SIGTERM)
    stopped = finish(forever, 60)
    assert stopped.code == 0, stopped
    runs = read_runs(cluster.db)
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    workers = [set(r["stats"]["distributed"]["workers"]) for r in runs]
    # One worker process per crawl, each a child of the one `worker --forever`.
    assert all(len(w) == 1 for w in workers) and workers[0] != workers[1]
    assert runs[1]["stats"]["summary"]["articles"]["updated"] == 1
