"""Incremental crawls, counted in requests, and the faults a real site throws at a crawl."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

from crawler.replica import Fault, ReplicaServer, ReplicaSite

from .conftest import cli_path, fast_settings, query, read_articles, read_runs, run_cli
from .test_crawl_cli import assert_matches_replica


def crawl(server: ReplicaServer, db: str, *extra: str) -> int:
    """Run one crawl; return how many requests the replica answered for it."""
    mark = server.mark()
    result = run_cli("crawl", "--start-url", server.base_url, "--db", db, *fast_settings(server), *extra)
    assert result.code == 0, result.stderr
    return len(server.requests_since(mark))


def test_unchanged_site_costs_at_most_two_percent_of_the_first_crawl(tmp_path: Path) -> None:
    site = ReplicaSite(articles=1000, seed=31)
    db = f"sqlite:///{tmp_path / 'inc.sqlite3'}"
    with ReplicaServer(site) as server:
        first = crawl(server, db)
        mark = server.mark()
        second = crawl(server, db)
        not_modified = server.count(since=mark, status=304)
        base_url = server.base_url
    assert second <= 0.02 * first, (second, first)
    assert not_modified >= 1  # the re-visit window was asked with validators, and answered 304
    runs = read_runs(db)
    summary = runs[1]["stats"]["summary"]
    assert summary["listing"]["mode"] == "incremental"
    assert summary["listing"]["stop_reason"] == "1 listing page(s) already stored"
    assert summary["revisits"]["not_modified"] == not_modified
    assert summary["articles"]["new"] == 0 and summary["articles"]["updated"] == 0
    assert_matches_replica(read_articles(db), site, base_url)


def test_new_articles_are_fetched_once_each_and_edits_in_the_window_are_seen(tmp_path: Path) -> None:
    site = ReplicaSite(articles=200, seed=32)
    db = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    with ReplicaServer(site) as server:
        crawl(server, db)
        new_keys = site.publish(5)
        edited = site.edit_article(site.article(6).key)  # newest before publishing: in the window
        mark = server.mark()
        crawl(server, db)
        requested = [r.path for r in server.requests_since(mark)]
        for key in new_keys:
            article = site.article_by_key(key)
            for page in range(1, article.page_count + 1):
                assert requested.count(article.path(page)) == 1, (key, page)
        stored = read_articles(db)
        assert_matches_replica(stored, site, server.base_url)
    assert stored[edited.key]["body"] == edited.body and stored[edited.key]["version"] == 2


def test_listing_shifting_while_the_crawl_pages_through_it_misses_nothing(tmp_path: Path) -> None:
    site = ReplicaSite(articles=200, seed=33)
    before = set(site.expected())
    # Page 3 of the listing answers slowly; new articles are published while the crawl waits for it.
    site.faults[site.listing_path(3)] = Fault.slow(1.5, times=1)
    db = f"sqlite:///{tmp_path / 'shift.sqlite3'}"
    with ReplicaServer(site) as server:
        timer = threading.Timer(0.8, site.publish, args=(7,))
        timer.start()
        crawl(server, db, "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=4")
        timer.join()
        stored = set(read_articles(db))
        assert before <= stored
        # The next crawl picks up what was published behind its back, and nothing is doubled.
        crawl(server, db)
        assert_matches_replica(read_articles(db), site, server.base_url)


def test_faults_of_a_real_site_lose_nothing_that_can_be_had(tmp_path: Path) -> None:
    site = ReplicaSite(articles=140, seed=34)
    specials = set(site.fault_keys.values())
    healthy = [a for a in (site.article(i) for i in range(len(site))) if a.key not in specials]
    single = [a for a in healthy if a.page_count == 1]
    multi = [a for a in healthy if a.page_count >= 2]
    faults = {
        single[0].path(): Fault.rate_limited(times=2, retry_after=1),
        single[1].path(): Fault.storm(times=3),
        single[2].path(): Fault.reset(times=1),
        single[3].path(): Fault.truncated(times=1),
        single[4].path(): Fault.EMPTY,
        single[5].path(): Fault.SOFT_404,
        single[6].path(): Fault.DRIFT,
        single[7].path(): Fault.redirect_loop(),
        single[8].path(): Fault.meta_refresh(site.mirror_path(single[8].path())),
        single[9].path(): Fault.huge(20 * 1024 * 1024),
        single[10].path(): Fault.slow(3.0, times=1),
        multi[0].path(2): Fault.huge(20 * 1024 * 1024),
        multi[1].path(2): Fault.DRIFT,
        multi[2].path(): Fault.SELF_PAGER,
        multi[2].path(2): Fault.SELF_PAGER,
    }
    site.faults.update(faults)
    site.download_timeout = 2.0
    db = f"sqlite:///{tmp_path / 'faults.sqlite3'}"
    with ReplicaServer(site) as server:
        result = run_cli(
            "crawl", "--start-url", server.base_url, "--db", db, *fast_settings(server),
            "-s", "DOWNLOAD_TIMEOUT=2",
        )
        assert result.code == 0, result.stderr
        stored = read_articles(db)
        assert_matches_replica(stored, site, server.base_url)
    for lost in (single[4], single[5], single[6], single[7], single[9]):
        assert lost.key not in stored
    for kept in (single[0], single[1], single[2], single[3], single[8], single[10], multi[2]):
        assert stored[kept.key]["complete"] is True
    assert stored[multi[0].key]["complete"] is False and stored[multi[1].key]["complete"] is False

    run = read_runs(db)[0]
    summary = run["stats"]["summary"]
    # Layout drift never becomes an empty article; the run says so loudly.
    assert run["degraded_pages"] == 2 and summary["degraded_pages"] == 2
    assert "DEGRADED" in result.stdout
    table = run_cli("runs", "--db", db)
    assert table.code == 0
    header, row = table.stdout.splitlines()
    assert header.split()[-1] == "unreadable" and row.split()[-1] == "2"
    assert "succeeded DEGRADED" in row
    assert summary["articles"]["skipped"] == {
        "empty_page": 1, "http_404": 1, "layout_drift": 1, "redirect_loop": 1, "robots": 1,
        "soft_404": 1, "too_large": 1,
    }  # fmt: skip


def test_a_crawl_killed_half_way_is_completed_by_the_next_one(tmp_path: Path) -> None:
    site = ReplicaSite(articles=300, seed=35)
    path = tmp_path / "killed.sqlite3"
    db = f"sqlite:///{path}"
    assert run_cli("db", "upgrade", "--db", db).code == 0
    with ReplicaServer(site) as server:
        proc = subprocess.Popen(
            [cli_path(), "crawl", "--start-url", server.base_url, "--db", db, "--progress", "0",
             *fast_settings(server), "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=2", "-s", "TIANJIN_BATCH_SIZE=3"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if query(db, "SELECT COUNT(*) AS n FROM articles")[0]["n"] >= 40:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = read_articles(db)
        assert 40 <= len(partial) < len(site.expected())
        # No half-written article: every stored article has all its images.
        for key, row in partial.items():
            assert len(row["images"]) == len(site.expected()[key].images), key

        crawl(server, db)
        stored = read_articles(db)
        assert_matches_replica(stored, site, server.base_url)
    runs = read_runs(db)
    assert runs[-1]["status"] == "succeeded"
    assert runs[-1]["stats"]["summary"]["listing"]["mode"] == "deep"  # the killed run fell short
