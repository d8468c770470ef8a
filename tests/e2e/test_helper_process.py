"""The helper process of a full-speed crawl (crawler.offload): the same database as a crawl
without it, and nothing lost when it is killed half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from crawler.replica import ReplicaServer, ReplicaSite

from .conftest import cli_path, fast_settings, query, read_articles, read_runs, run_cli

COLUMNS = "article_key, url, title, source, published_on, body, page_count, complete, duplicate_of"


def helpers_of(pid: int) -> list[int]:
    """Process ids of the crawl's helper processes: its children named "tianjin-helper",
    whether forked by the command before it loaded Scrapy or started as ``python -m
    crawler.offload``."""
    found = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    for child in children:
        try:
            name = Path(f"/proc/{child}/comm").read_text().strip()
        except OSError:
            continue
        if name == "tianjin-helper":
            found.append(int(child))
    return found


def start_slow_crawl(server: ReplicaServer, db: str) -> subprocess.Popen[str]:
    """A crawl with a helper process, slow enough that pages and batches still come when a
    process is killed."""
    return subprocess.Popen(
        [
            cli_path(), "crawl", "--start-url", server.base_url, "--db", db, "--progress", "0",
            *fast_settings(server), "-s", "TIANJIN_HELPER_PROCESS=True",
            "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=2", "-s", "TIANJIN_BATCH_SIZE=5",
            "-s", "TIANJIN_FLUSH_SECONDS=0.2",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for_helpers(proc: subprocess.Popen[str], db: str, stored: int = 0) -> list[int]:
    """The running crawl's helper processes, once it has them and ``stored`` articles."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the crawl ended before the test could act on it"
        helpers = helpers_of(proc.pid)
        if helpers and stored:
            try:
                count = query(db, "SELECT COUNT(*) AS n FROM articles")[0]["n"]
            except Exception:  # noqa: BLE001 - the database or its schema may not be there yet
                count = 0
            if count >= stored:
                return helpers
        elif helpers:
            return helpers
        time.sleep(0.05)
    raise AssertionError("the crawl started no helper process, or stored too little in time")


def test_with_and_without_the_helper_the_database_is_the_same(tmp_path: Path) -> None:
    site = ReplicaSite(articles=60, seed=31)
    rows = {}
    with ReplicaServer(site) as server:
        for helper in ("True", "False"):
            db = f"sqlite:///{tmp_path / f'helper-{helper}.sqlite3'}"
            result = run_cli(
                "crawl", "--start-url", server.base_url, "--db", db, "--progress", "0",
                *fast_settings(server), "-s", f"TIANJIN_HELPER_PROCESS={helper}",
            )  # fmt: skip
            assert result.code == 0, result.stderr[-2000:]
            rows[helper] = query(db, f"SELECT {COLUMNS} FROM articles ORDER BY article_key")
            run = read_runs(db)[-1]
            assert run["status"] == "succeeded"
            assert "helper/lost" not in run["stats"]
    assert rows["True"] == rows["False"]
    assert len(rows["True"]) == len(site.expected())


def test_killing_the_helper_half_way_loses_nothing(tmp_path: Path) -> None:
    site = ReplicaSite(articles=200, seed=32)
    db = f"sqlite:///{tmp_path / 'killed.sqlite3'}"
    with ReplicaServer(site) as server:
        proc = start_slow_crawl(server, db)
        helpers = wait_for_helpers(proc, db, stored=10)
        for pid in helpers:
            os.kill(pid, signal.SIGKILL)
        _out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-2000:]
    stored = read_articles(db)
    assert sorted(stored) == sorted(site.expected())
    for key, want in site.expected().items():
        assert stored[key]["body"] == want.body
    run = read_runs(db)[-1]
    assert run["status"] == "succeeded"
    assert run["stats"]["helper/lost"] == 1
    assert "helper process went away" in err


def test_a_killed_crawl_leaves_no_helper_running(tmp_path: Path) -> None:
    site = ReplicaSite(articles=200, seed=33)
    db = f"sqlite:///{tmp_path / 'orphan.sqlite3'}"
    with ReplicaServer(site) as server:
        proc = start_slow_crawl(server, db)
        helpers = wait_for_helpers(proc, db)
        time.sleep(1)  # pages and batches under way
        proc.kill()
        proc.communicate()

        def running(pid: int) -> bool:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                return False
            return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended

        deadline = time.monotonic() + 15
        while any(map(running, helpers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(running, helpers)), "the helper outlived the crawl"
