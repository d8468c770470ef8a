"""The shared frontier's mechanics against a real Redis: taking a request records it in flight,
settling clears it only with its continuation, dead workers' work goes back, the crawl ends when
nothing is left, statistics add up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import redis
from scrapy import Request
from scrapy.utils.test import get_crawler
from scrapy_redis.dupefilter import RFPDupeFilter

from crawler.extract import ArticlePage
from crawler.frontier import (
    TOKEN,
    CrawlKeys,
    Frontier,
    SharedQueue,
    SharedStatsCollector,
    frontier_settings,
)
from crawler.items import ArticleItem, ArticleSeen
from crawler.spiders.tianjin_updates import ArticleAssembly, TianjinUpdatesSpider

pytestmark = pytest.mark.redis


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    server = redis.Redis.from_url(redis_url)
    yield server
    server.close()


@pytest.fixture
def spider() -> TianjinUpdatesSpider:
    return TianjinUpdatesSpider(start_url="http://127.0.0.1:9/")


def make_frontier(redis_url: str, prefix: str, spider: Any, **settings: Any) -> Frontier:
    keys = CrawlKeys(prefix, "c1")
    crawler = get_crawler(
        settings_dict={**frontier_settings(redis_url, keys), "TIANJIN_WORKER_TTL": 2, **settings}
    )
    crawler.stats = SharedStatsCollector(crawler)
    frontier = Frontier.of(crawler)
    frontier.queue = SharedQueue(frontier.server, spider, keys.queue)
    frontier.dupefilter = RFPDupeFilter(frontier.server, keys.dupefilter)
    frontier.spider = spider
    frontier.server.set(keys.plan, "{}")  # the crawl exists (the seeder wrote its plan)
    return frontier


def article_request(spider: TianjinUpdatesSpider, key: str, page: int = 1) -> Request:
    assembly = ArticleAssembly(key=key, url=f"http://127.0.0.1:9/c_{key}.htm", page_count=2)
    if page > 1:
        assembly.pages[1] = ArticlePage(
            title="T", source=None, published_on=date(2025, 8, 1), paragraphs=("p1",)
        )
    return Request(
        f"http://127.0.0.1:9/c_{key}{'' if page == 1 else f'_{page}'}.htm",
        callback=spider.parse_article,
        errback=spider.article_failed,
        meta={"article": assembly, "article_page": page},
    )


def test_a_request_crosses_redis_with_its_article_state(
    redis_url: str, redis_prefix: str, spider: TianjinUpdatesSpider
) -> None:
    frontier = make_frontier(redis_url, redis_prefix, spider)
    sent = article_request(spider, "42", page=2)
    sent.priority = 3
    assert frontier.push([sent], None) == [True]
    got = frontier.take()
    assert got is not None
    assert got.url == sent.url and got.priority == 3
    assert got.callback == spider.parse_article
    assert got.errback.frontier_original == spider.article_failed  # type: ignore[union-attr]
    assert got.meta["article"] == sent.meta["article"]
    assert got.meta["article"].pages[1].paragraphs == ("p1",)
    assert got.meta[TOKEN]


def test_taking_records_the_request_in_flight_and_settling_clears_it_with_its_children(
    redis_url: str, redis_prefix: str, spider: TianjinUpdatesSpider, client: redis.Redis
) -> None:
    frontier = make_frontier(redis_url, redis_prefix, spider)
    keys = frontier.keys
    frontier.push([article_request(spider, "1")], None)
    taken = frontier.take()
    assert taken is not None
    token = taken.meta[TOKEN]
    assert client.zcard(keys.queue) == 0
    assert client.hkeys(keys.inflight(frontier.worker)) == [token.encode()]
    assert frontier.take() is None

    # The callback yields the next page: queued and the first cleared in one step.
    children = [article_request(spider, "1", page=2)]
    list(frontier.settle_output(token, iter(children)))
    assert client.zcard(keys.queue) == 1
    assert client.hlen(keys.inflight(frontier.worker)) == 0
    # The same page again (another listing linked it) is filtered; a retry is not.
    assert frontier.push([article_request(spider, "1", page=2)], None) == [False]
    retry = article_request(spider, "1", page=2)
    retry.dont_filter = True
    assert frontier.push([retry], None) == [True]


def test_an_article_clears_its_request_only_once_stored(
    redis_url: str, redis_prefix: str, spider: TianjinUpdatesSpider, client: redis.Redis
) -> None:
    frontier = make_frontier(redis_url, redis_prefix, spider)
    inflight = frontier.keys.inflight(frontier.worker)
    frontier.push([article_request(spider, "7"), article_request(spider, "8")], None)
    first, second = frontier.take(), frontier.take()
    assert first is not None and second is not None
    item = ArticleItem(article_key="7", url=first.url)
    seen = ArticleSeen(article_key="8", seen_at=datetime.now(UTC))
    assert list(frontier.settle_output(first.meta[TOKEN], iter([item]))) == [item]
    assert list(frontier.settle_output(second.meta[TOKEN], iter([seen]))) == [seen]
    # Both articles are in the store's batch: their requests are still in flight.
    assert client.hlen(inflight) == 2
    frontier.articles_stored(["7"])
    assert client.hkeys(inflight) == [second.meta[TOKEN].encode()]
    frontier.articles_stored(["8"])
    assert client.hlen(inflight) == 0

    # A dropped article clears its request too.
    frontier.push([article_request(spider, "9")], None)
    third = frontier.take()
    assert third is not None
    dropped = ArticleItem(article_key="9", url=third.url)
    list(frontier.settle_output(third.meta[TOKEN], iter([dropped])))
    assert client.hlen(inflight) == 1
    frontier.item_done(dropped)
    assert client.hlen(inflight) == 0


def test_a_retry_replaces_the_request_it_repeats(
    redis_url: str, redis_prefix: str, spider: TianjinUpdatesSpider, client: redis.Redis
) -> None:
    frontier = make_frontier(redis_url, redis_prefix, spider)
    frontier.push([article_request(spider, "3")], None)
    taken = frontier.take()
    assert taken is not None
    retry = taken.replace(dont_filter=True)  # as Scrapy's retry middleware makes it
    assert frontier.enqueue(retry) is True
    assert client.hlen(frontier.keys.inflight(frontier.worker)) == 0
    again = frontier.take()
    assert again is not None and again.url == taken.url
    assert again.meta[TOKEN] != taken.meta[TOKEN]
    # The copy carried the settling errback; the queue got the spider's own.
    assert again.errback.frontier_original == spider.article_failed  # type: ignore[union-attr]


def test_an_errback_settles_what_it_yields(
    redis_url: str, redis_prefix: str, spider: TianjinUpdatesSpider, client: redis.Redis
) -> None:
    frontier = make_frontier(redis_url, redis_prefix, spider)
    frontier.push([article_request(spider, "5")], None)
    taken = frontier.take()
    assert taken is not None
    next_page = article_request(spider, "5", page=2)

    def errback(failure: Any) -> Iterator[Request]:
        yield next_page

    wrapped = frontier._settling_errback(taken.meta[TOKEN], errback)
    assert list(wrapped(object())) == []  # the request went to the queue, not to Scrapy
    assert client.hlen(frontier.keys.inflight(frontier.worker)) == 0
    assert client.zcard(frontier.keys.queue) == 1


def test_a_dead_workers_requests_go_back_past_the_duplicate_filter(
    redis_url: str, redis_prefix: str, spider: TianjinUpdatesSpider, client: redis.Redis
) -> None:
    dead = make_frontier(redis_url, redis_prefix, spider)
    alive = make_frontier(redis_url, redis_prefix, spider)
    keys = dead.keys
    dead.join()
    alive.join()
    try:
        dead.push([article_request(spider, str(n)) for n in range(3)], None)
        assert all(dead.take() for _ in range(2))
        # The worker dies: no more heartbeats, its key expires.
        dead._beat_stop.set()
        dead._beat_thread.join()  # type: ignore[union-attr]
        assert alive.store.reap() == {}
        time.sleep(2.2)
        assert alive.store.reap() == {dead.worker: 2}
        assert client.zcard(keys.queue) == 3
        assert not client.exists(keys.inflight(dead.worker))
        assert client.smembers(keys.workers) == {alive.worker.encode()}
        assert int(client.hget(keys.counts, "frontier/requeued")) == 2
        assert int(client.hget(keys.counts, "frontier/workers_lost")) == 1
        taken = [alive.take() for _ in range(3)]
        assert sorted(r.url for r in taken if r) == [
            f"http://127.0.0.1:9/c_{n}.htm" for n in range(3)
        ]
    finally:
        alive.leave("finished")


def test_the_crawl_is_done_when_nothing_is_queued_or_in_flight_for_the_idle_timeout(
    redis_url: str, redis_prefix: str, spider: TianjinUpdatesSpider, client: redis.Redis
) -> None:
    frontier = make_frontier(redis_url, redis_prefix, spider)
    frontier.join()
    try:
        store = frontier.store
        frontier.push([article_request(spider, "1")], None)
        assert store.look(0.3).state == 0
        taken = frontier.take()
        assert taken is not None
        busy = store.look(0.3)
        assert (busy.state, busy.queued, busy.inflight) == (0, 0, 1)
        list(frontier.settle_output(taken.meta[TOKEN], iter([])))
        assert store.look(0.3).state == 1  # drained: waiting out the idle timeout
        time.sleep(0.35)
        assert store.look(0.3).done
        assert client.exists(frontier.keys.done)
        assert store.look(0.3).done  # for good
    finally:
        frontier.leave("finished")


def test_counters_add_up_across_workers_and_values_are_kept(
    redis_url: str, redis_prefix: str, spider: TianjinUpdatesSpider
) -> None:
    one = make_frontier(redis_url, redis_prefix, spider)
    two = make_frontier(redis_url, redis_prefix, spider)
    for frontier, pages in ((one, 5), (two, 7)):
        stats = frontier.crawler.stats
        stats.set_value("store/articles_new", 0)
        stats.inc_value("response_received_count", pages)
        stats.set_value("incremental/stopped_at_page", 3)
        frontier.push_stats()
    one.crawler.stats.inc_value("response_received_count", 2)
    one.push_stats()
    one.push_stats()  # nothing new: nothing added twice
    store = one.store
    assert store.read_counts(one.keys.counts)["response_received_count"] == 14
    assert store.read_values(one.keys.values)["incremental/stopped_at_page"] == 3
    assert store.read_counts(one.keys.worker_counts(one.worker))["response_received_count"] == 7
    assert store.read_counts(two.keys.worker_counts(two.worker))["response_received_count"] == 7
