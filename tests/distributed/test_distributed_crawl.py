"""Distributed crawls end to end: real Redis, real PostgreSQL, the replica on loopback, and the
real seeder and worker processes."""

from __future__ import annotations

import re
import signal
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import redis

from crawler.frontier import CrawlKeys, current_key
from crawler.replica import ReplicaSite

from .conftest import (
    assert_matches_replica,
    finish,
    frontier_keys,
    query,
    read_articles,
    read_runs,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

_ARTICLE_PAGE = re.compile(r"/c_\d+(?:_\d+)?\.htm$")
_ARTICLE_KEY = re.compile(r"/c_(\d+)(?:_\d+)?\.htm$")


def article_page_hits(requests: list[Any], status: int) -> Counter[str]:
    return Counter(
        path for _host, path, code in requests if code == status and _ARTICLE_PAGE.search(path)
    )


def versions_per_article(db: str) -> dict[str, list[int]]:
    rows = query(
        db,
        "SELECT a.article_key, v.version FROM article_versions v "
        "JOIN articles a ON a.id = v.article_id ORDER BY a.article_key, v.version",
    )
    found: dict[str, list[int]] = {}
    for row in rows:
        found.setdefault(row["article_key"], []).append(row["version"])
    return found


@pytest.mark.slow
def test_three_workers_crawl_two_thousand_articles_each_once(cluster_for: Any) -> None:
    site = ReplicaSite(articles=2000, seed=41)
    cluster = cluster_for(site)
    mark = cluster.server.mark()
    seeder, workers = cluster.crawl(workers=3)
    assert seeder.code == 0, seeder
    for worker in workers:
        assert worker.code == 0, worker
    served = cluster.server.requests_since(mark)

    # Every article stored exactly once, complete, as the replica has it; one version each.
    stored = read_articles(cluster.db)
    assert_matches_replica(stored, site, cluster.server.base_url)
    assert versions_per_article(cluster.db) == {key: [1] for key in stored}
    # Each article page was fetched once: no worker fetched what another one had.
    fetched = article_page_hits(served, 200)
    assert fetched and set(fetched.values()) == {1}, fetched.most_common(3)

    # One run, recording the whole crawl: the workers' counts add up.
    runs = read_runs(cluster.db)
    assert [r["status"] for r in runs] == ["succeeded"]
    stats = runs[0]["stats"]
    summary = stats["summary"]
    assert summary["articles"]["new"] == len(stored)
    assert summary["articles"]["versions"] == len(stored)
    assert summary["requests"] == len(served)
    # Every answer reached a spider callback, except those that were retried.
    assert summary["pages_fetched"] + stats.get("retry/count", 0) == len(served)
    assert summary["listing"]["pages_read"] == site.listing_pages
    assert summary["listing"]["stop_reason"] == "end of the listing"
    assert stats["incremental/caught_up"] is True

    shares = stats["distributed"]["workers"]
    assert len(shares) == 3
    assert sum(s["requests"] for s in shares.values()) == summary["requests"]
    assert sum(s["pages_fetched"] for s in shares.values()) == summary["pages_fetched"]
    assert sum(s["articles_stored"] for s in shares.values()) == len(stored)
    for name, share in shares.items():
        # Every worker did a real part of the work.
        assert share["pages_fetched"] >= 0.1 * summary["pages_fetched"], (name, shares)
        assert share["finish_reason"] == "finished"
    assert summary["workers"] == {
        name: {k: s[k] for k in ("requests", "pages_fetched", "articles_stored")}
        for name, s in shares.items()
    }
    assert f"{len(stored)} new" in seeder.stdout and "workers: 3" in seeder.stdout

    # The crawl's keys are gone: the next crawl starts with an empty duplicate filter.
    assert frontier_keys(cluster.redis_url, cluster.prefix) == []


def _worker_name(client: redis.Redis, keys: CrawlKeys, pid: int) -> str | None:
    for raw in client.smembers(keys.workers):
        name = raw.decode()
        if name.split(":")[-2] == str(pid):
            return name
    return None


def test_a_worker_killed_mid_crawl_loses_nothing_and_stores_nothing_twice(
    cluster_for: Any,
) -> None:
    site = ReplicaSite(articles=600, seed=42)
    # A short heartbeat: the survivors notice the dead worker within seconds.
    cluster = cluster_for(site, TIANJIN_WORKER_TTL=4, TIANJIN_BATCH_SIZE=10)
    client = redis.Redis.from_url(cluster.redis_url)
    try:
        workers = [cluster.worker() for _ in range(3)]
        seeder = cluster.seeder()
        crawl_id = wait_until(lambda: client.get(current_key(cluster.prefix)), 60, "the crawl")
        keys = CrawlKeys(cluster.prefix, crawl_id.decode())
        victim = workers[0]
        name = wait_until(lambda: _worker_name(client, keys, victim.pid), 60, "the worker")

        def holding_work() -> int:
            count = query(cluster.db, "SELECT COUNT(*) AS n FROM articles")[0]["n"]
            return count >= 100 and int(client.hlen(keys.inflight(name)))

        held = wait_until(holding_work, 120, "the worker to hold work with 100 articles stored")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        # The others are still writing: one statement, one snapshot.
        partial = query(cluster.db, "SELECT COUNT(*) AS n FROM articles")[0]["n"]
        assert partial < len(site.expected())

        result = finish(seeder, 600)
        assert result.code == 0, result
        survivors = [finish(w, 120) for w in workers[1:]]
    finally:
        client.close()
    for survivor in survivors:
        assert survivor.code == 0, survivor
    assert victim.returncode == -signal.SIGKILL

    # Complete, and nothing stored twice: one row and one version per article.
    stored = read_articles(cluster.db)
    assert_matches_replica(stored, site, cluster.server.base_url)
    assert versions_per_article(cluster.db) == {key: [1] for key in stored}

    runs = read_runs(cluster.db)
    assert [r["status"] for r in runs] == ["succeeded"]
    stats = runs[0]["stats"]
    # The dead worker's in-flight requests went back to the frontier and were done by others.
    assert held > 0
    assert stats["frontier/workers_lost"] >= 1
    assert stats["frontier/requeued"] >= 1
    assert name in stats["distributed"]["workers"]
    assert stats["distributed"]["workers"][name]["finish_reason"] is None  # it never said bye
    assert "lost" in result.stdout
    assert frontier_keys(cluster.redis_url, cluster.prefix) == []


def test_second_crawl_refetches_and_versions_only_the_edits(cluster_for: Any) -> None:
    site = ReplicaSite(articles=300, seed=49)
    cluster = cluster_for(site)
    first, workers = cluster.crawl(workers=2)
    assert first.code == 0, first
    assert all(w.code == 0 for w in workers), workers
    assert frontier_keys(cluster.redis_url, cluster.prefix) == []
    before = read_articles(cluster.db)

    # Edit three of the newest articles (inside the re-visit window), one of several pages.
    expected = site.expected()
    specials = set(site.fault_keys.values())
    window = max(a.published_on for a in expected.values()) - timedelta(days=2)
    newest = [
        a
        for a in (site.article(i) for i in range(20))
        if a.key in expected and a.key not in specials and a.published_on >= window
    ]
    multi = next(a for a in newest if a.page_count >= 2)
    chosen = [multi, *[a for a in newest if a is not multi][:2]]
    edited = {a.key: site.edit_article(a.key) for a in chosen}

    mark = cluster.server.mark()
    second, workers = cluster.crawl(workers=2)
    assert second.code == 0, second
    assert all(w.code == 0 for w in workers), workers
    served = cluster.server.requests_since(mark)

    # Every page of the edited articles was fetched again, once; apart from them only articles
    # stored incomplete (fetched whole by every incremental crawl) were; the other re-visited
    # articles answered 304.
    fetched = article_page_hits(served, 200)
    assert set(fetched.values()) == {1}, fetched
    for key in edited:
        for page in range(1, site.article_by_key(key).page_count + 1):
            assert fetched[site.article_by_key(key).path(page)] == 1, (key, page)
    incomplete = {key for key, row in before.items() if not row["complete"]}
    refetched = {_ARTICLE_KEY.search(path)[1] for path in fetched}
    assert refetched - set(edited) <= incomplete, refetched - set(edited)
    assert sum(article_page_hits(served, 304).values()) >= 1

    stored = read_articles(cluster.db)
    assert_matches_replica(stored, site, cluster.server.base_url)
    versions = versions_per_article(cluster.db)
    for key in stored:
        assert versions[key] == ([1, 2] if key in edited else [1]), key
        if key in edited:
            assert stored[key]["body"] == edited[key].body
        else:
            assert stored[key]["change_seq"] == before[key]["change_seq"], key

    runs = read_runs(cluster.db)
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    summary = runs[1]["stats"]["summary"]
    assert summary["articles"]["updated"] == len(edited)
    assert summary["articles"]["new"] == 0
    # The listing was read incrementally and stopped at the first page of known articles.
    assert summary["listing"]["mode"] == "incremental"
    assert summary["listing"]["stop_reason"] == "1 listing page(s) already stored"
    assert summary["listing"]["pages_read"] <= 2
    assert frontier_keys(cluster.redis_url, cluster.prefix) == []
