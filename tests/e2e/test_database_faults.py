"""The database goes away, or is locked, while a crawl writes: nothing is lost, nothing doubled."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from crawler.replica import ReplicaServer, ReplicaSite

from .conftest import cli_path, fast_settings, query, read_articles, read_runs, run_cli
from .tcp_proxy import TcpProxy


def start_crawl(server: ReplicaServer, db: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            cli_path(), "crawl", "--start-url", server.base_url, "--db", db, "--progress", "0",
            *fast_settings(server),
            # Slow enough that the database can be taken away while articles are still coming.
            "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=2", "-s", "TIANJIN_BATCH_SIZE=5",
            "-s", "TIANJIN_FLUSH_SECONDS=0.2", *extra,
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_articles(db: str, at_least: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the crawl ended before the fault was injected"
        if query(db, "SELECT COUNT(*) AS n FROM articles")[0]["n"] >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError("the crawl stored too little in time")


@pytest.fixture
def proxied_pg(pg_url: str) -> tuple[str, str, TcpProxy]:
    """(URL through a cuttable proxy, direct URL, the proxy) of a fresh PostgreSQL schema."""
    url = make_url(pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    yield through, pg_url, proxy
    proxy.stop()


def test_postgresql_away_for_a_while_loses_nothing(proxied_pg: tuple[str, str, TcpProxy]) -> None:
    through, direct, proxy = proxied_pg
    site = ReplicaSite(articles=160, seed=21)
    assert run_cli("db", "upgrade", "--db", direct).code == 0
    with ReplicaServer(site) as server:
        proc = start_crawl(server, through, "-s", "TIANJIN_DB_RETRIES=8", "-s", "TIANJIN_DB_RETRY_BACKOFF=0.5")
        wait_for_articles(direct, 20, proc)
        proxy.cut()
        time.sleep(3)
        proxy.restore()
        _out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-2000:]
    stored = read_articles(direct)
    assert sorted(stored) == sorted(site.expected())
    for key, want in site.expected().items():
        assert stored[key]["body"] == want.body
    assert "trying again" in err  # the outage was met, and waited out
    run = read_runs(direct)[-1]
    assert run["status"] == "succeeded"
    assert run["stats"]["store/errors"] == 0


def test_postgresql_gone_for_good_fails_clearly_and_the_next_crawl_completes(
    proxied_pg: tuple[str, str, TcpProxy],
) -> None:
    through, direct, proxy = proxied_pg
    site = ReplicaSite(articles=160, seed=22)
    assert run_cli("db", "upgrade", "--db", direct).code == 0
    with ReplicaServer(site) as server:
        proc = start_crawl(server, through, "-s", "TIANJIN_DB_RETRIES=2", "-s", "TIANJIN_DB_RETRY_BACKOFF=0.2")
        wait_for_articles(direct, 20, proc)
        proxy.cut()
        _out, err = proc.communicate(timeout=240)
        assert proc.returncode == 1
        error_lines = [line for line in err.splitlines() if line.startswith("tianjin-updates: error:")]
        assert len(error_lines) == 1, err[-2000:]
        partial = read_articles(direct)
        assert 0 < len(partial) < len(site.expected())

        proxy.restore()
        second = run_cli("crawl", "--start-url", server.base_url, "--db", through, *fast_settings(server))
        assert second.code == 0, second.stderr
    stored = read_articles(direct)
    assert sorted(stored) == sorted(site.expected())
    # What the first crawl wrote was kept, not written again (re-posts whose original came only
    # with the second crawl are marked then, which is a change).
    marked = {k for k, a in stored.items() if a["duplicate_of"] or a["near_duplicate_of"]}
    for key, row in partial.items():
        if key not in marked:
            assert stored[key]["change_seq"] == row["change_seq"], key
            assert stored[key]["version"] == 1


def test_sqlite_long_reader_and_a_locked_moment_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    db = f"sqlite:///{path}"
    site = ReplicaSite(articles=120, seed=23)
    assert run_cli("db", "upgrade", "--db", db).code == 0
    reader = sqlite3.connect(path, check_same_thread=False)
    with ReplicaServer(site) as server:
        proc = start_crawl(server, db)
        # A consumer holds a read transaction open for the whole crawl (WAL: it blocks nobody)...
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM articles").fetchone()
        wait_for_articles(db, 10, proc)
        # ...and another takes the write lock for two seconds: the crawl waits, then goes on.
        locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        locker.execute("BEGIN IMMEDIATE")
        threading.Timer(2.0, lambda: locker.execute("COMMIT")).start()
        _out, err = proc.communicate(timeout=240)
        reader.execute("COMMIT")
    reader.close()
    assert proc.returncode == 0, err[-2000:]
    stored = read_articles(db)
    assert sorted(stored) == sorted(site.expected())
    assert read_runs(db)[-1]["status"] == "succeeded"
