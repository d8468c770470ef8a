"""The shared frontier of a distributed crawl: one request queue, duplicate filter, record of
in-flight work and statistics in Redis for every worker of the crawl.

Built on scrapy-redis (its scheduler, priority queue and request duplicate filter, with keys of
their own per crawl), plus what it takes to lose nothing when a worker dies:

* every key of a crawl is namespaced by the crawl's id (``<prefix>:{<crawl id>}:<name>``; the
  braces keep them in one Redis Cluster slot), and the seeder deletes them when the crawl ends:
  the next crawl starts with an empty duplicate filter, so an edited article is fetched again;
* a worker takes a request from the shared queue and records it under its own name in the same
  Lua script (``inflight:<worker>``: token -> the queue entry and its priority);
* the record is cleared only once the request's continuation is durable: the requests its
  callback or errback yielded are in the queue (pushed by the script that clears it), and the
  articles it yielded are committed by the store pipeline (``pipelines.store.articles_stored``)
  or were dropped. A retry or redirect goes back to the queue in the script that clears the
  request it replaces;
* a worker renews a heartbeat key with a TTL of ``TIANJIN_WORKER_TTL`` seconds from a thread of
  its own; whoever finds a registered worker's heartbeat gone (another worker, the seeder) moves
  that worker's in-flight requests back to the queue, past the duplicate filter;
* the crawl is done when the queue is empty and no worker holds in-flight work, continuously for
  ``TIANJIN_FRONTIER_IDLE_TIMEOUT`` seconds; one script decides it and sets the ``done`` key
  that every worker and the seeder read;
* each worker adds its statistics to shared hashes every second and when it leaves (counters
  with HINCRBY, other values as JSON), in total and per worker; the seeder turns them into the
  crawl's one run record.

Requests cross Redis pickled (scrapy-redis's serializer): an article's pages travel in
``meta`` (``ArticleAssembly``). Redis must therefore be reachable only by the crawl's machines.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import secrets
import socket
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError
from scrapy import Request, signals
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.misc import load_object
from scrapy_redis.connection import get_redis, get_redis_from_settings
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler

if TYPE_CHECKING:
    from typing import Self

    from redis import Redis
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

#: ``Request.meta`` key of the in-flight token a worker gave a request it took from the queue.
TOKEN = "frontier_token"
#: Default namespace of the keys in Redis (``TIANJIN_REDIS_PREFIX``).
DEFAULT_PREFIX = "tianjin-updates"

# --- keys -------------------------------------------------------------------------------------


def current_key(prefix: str) -> str:
    """The key naming the crawl now running under ``prefix``."""
    return f"{prefix}:current"


@dataclass(frozen=True)
class CrawlKeys:
    """The Redis keys of one distributed crawl."""

    prefix: str
    crawl_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}:{{{self.crawl_id}}}"

    @property
    def current(self) -> str:
        return current_key(self.prefix)

    @property
    def plan(self) -> str:
        """JSON of the ``CrawlPlan``."""
        return f"{self.base}:plan"

    @property
    def queue(self) -> str:
        """Sorted set of pickled requests, score minus priority (scrapy-redis's PriorityQueue)."""
        return f"{self.base}:queue"

    @property
    def dupefilter(self) -> str:
        """Set of request fingerprints (scrapy-redis's RFPDupeFilter)."""
        return f"{self.base}:dupefilter"

    @property
    def workers(self) -> str:
        """Set of the names of the workers that joined and have not left."""
        return f"{self.base}:workers"

    @property
    def inflight_prefix(self) -> str:
        return f"{self.base}:inflight:"

    def inflight(self, worker: str) -> str:
        """Hash of a worker's in-flight requests: token -> ``<score>|<queue entry>``."""
        return self.inflight_prefix + worker

    def alive(self, worker: str) -> str:
        """A worker's heartbeat, expiring after ``TIANJIN_WORKER_TTL`` seconds."""
        return f"{self.base}:alive:{worker}"

    @property
    def seeder(self) -> str:
        """The seeder's heartbeat."""
        return f"{self.base}:seeder"

    @property
    def counts(self) -> str:
        """Hash of the crawl's counters, summed over the workers."""
        return f"{self.base}:stats:count"

    @property
    def values(self) -> str:
        """Hash of the crawl's other statistics, JSON, last writer wins."""
        return f"{self.base}:stats:value"

    def worker_counts(self, worker: str) -> str:
        return f"{self.base}:worker:{worker}:count"

    def worker_values(self, worker: str) -> str:
        return f"{self.base}:worker:{worker}:value"

    @property
    def drained_since(self) -> str:
        return f"{self.base}:drained-since"

    @property
    def done(self) -> str:
        """Set (to the Redis time in ms) when the frontier was found drained for good."""
        return f"{self.base}:done"

    @property
    def stop(self) -> str:
        """Set by the seeder to the reason every worker should stop with (``shutdown``, ...)."""
        return f"{self.base}:stop"

    @property
    def pattern(self) -> str:
        """A SCAN pattern matching every key of the crawl."""
        return f"{self.base}:*"


@dataclass
class CrawlPlan:
    """What every worker of a crawl must agree on, decided once by the seeder."""

    crawl_id: str
    run_id: int
    start_url: str
    max_pages: int | None
    #: Settings every worker takes from the seeder, whatever its own (``PLAN_SETTINGS``).
    settings: dict[str, Any] = field(default_factory=dict)
    seeder_host: str = ""
    seeder_pid: int = 0
    started_at: str = ""
    database: str = ""
    """The seeder's database URL without its password (for messages)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> CrawlPlan:
        return cls(**json.loads(text))


#: Settings that define what a crawl reads: the seeder's values go to every worker.
PLAN_SETTINGS = (
    "TIANJIN_HOSTS",
    "TIANJIN_INCREMENTAL",
    "TIANJIN_STOP_AFTER_KNOWN_PAGES",
    "TIANJIN_REVISIT_DAYS",
    "TIANJIN_MAX_PAGES",
    "TIANJIN_CRAWL_DEEP",
    "TIANJIN_REVISIT_SINCE",
    "TIANJIN_NEAR_DUPLICATE_THRESHOLD",
    "TIANJIN_MINHASH_PERMUTATIONS",
)


def frontier_settings(redis_url: str, keys: CrawlKeys) -> dict[str, Any]:
    """Scrapy settings that make a crawl one worker of the distributed crawl ``keys``."""
    return {
        "REDIS_URL": redis_url,
        "SCHEDULER": "crawler.frontier.FrontierScheduler",
        "SCHEDULER_QUEUE_CLASS": "crawler.frontier.SharedQueue",
        "SCHEDULER_QUEUE_KEY": keys.queue,
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_DUPEFILTER_KEY": keys.dupefilter,
        # The queue and the filter belong to the crawl, not to one worker: never flushed by a
        # worker that leaves (the seeder deletes them when the crawl is over).
        "SCHEDULER_PERSIST": True,
        "SCHEDULER_FLUSH_ON_START": False,
        "SCHEDULER_IDLE_BEFORE_CLOSE": 0,
        "STATS_CLASS": "crawler.frontier.SharedStatsCollector",
        "TIANJIN_FRONTIER_CRAWL": keys.crawl_id,
        "TIANJIN_REDIS_PREFIX": keys.prefix,
    }


def redis_client(url: str) -> Redis:
    """A client of the Redis server at ``url`` (bytes in, bytes out), as scrapy-redis makes them."""
    return get_redis(
        url=url,
        socket_timeout=30,
        socket_connect_timeout=10,
        retry_on_timeout=True,
        health_check_interval=30,
    )


def worker_name() -> str:
    """A name for this worker process, unique in the crawl: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


# --- scripts ----------------------------------------------------------------------------------

# Take the first request of the queue and record it under the worker, atomically.
# KEYS: queue, the worker's in-flight hash, workers set. ARGV: token, worker.
_TAKE = """
local got = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #got == 0 then return false end
redis.call('ZREM', KEYS[1], got[1])
redis.call('HSET', KEYS[2], ARGV[1], got[2] .. '|' .. got[1])
redis.call('SADD', KEYS[3], ARGV[2])
return got[1]
"""

# Push requests (through the duplicate filter unless told not to) and, in the same step, clear
# the in-flight record they continue.
# KEYS: queue, dupefilter, the worker's in-flight hash.
# ARGV: token ('' for none), then per request: fingerprint, score, entry, filter (1/0).
_SETTLE = """
local added = {}
for i = 2, #ARGV, 4 do
  local new = 1
  if ARGV[i + 3] == '1' then new = redis.call('SADD', KEYS[2], ARGV[i]) end
  if new == 1 then redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i + 2]) end
  added[#added + 1] = new
end
if ARGV[1] ~= '' then redis.call('HDEL', KEYS[3], ARGV[1]) end
return added
"""

# Move a worker's in-flight requests back to the queue (past the duplicate filter) and forget
# the worker: when its heartbeat is gone (ARGV[2] = '0'), or because it is leaving ('1').
# KEYS: its heartbeat, its in-flight hash, queue, workers set, crawl counters, its counters.
# ARGV: worker, force. Returns the number of requests moved, -1 when the worker is alive.
_REQUEUE = """
if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local entries = redis.call('HGETALL', KEYS[2])
local moved = 0
for i = 2, #entries, 2 do
  local entry = entries[i]
  local sep = string.find(entry, '|', 1, true)
  redis.call('ZADD', KEYS[3], string.sub(entry, 1, sep - 1), string.sub(entry, sep + 1))
  moved = moved + 1
end
redis.call('DEL', KEYS[2], KEYS[1])
local was = redis.call('SREM', KEYS[4], ARGV[1])
if moved > 0 then
  redis.call('HINCRBY', KEYS[5], 'frontier/requeued', moved)
  redis.call('HINCRBY', KEYS[6], 'frontier/requeued', moved)
end
if ARGV[2] ~= '1' and was == 1 then
  redis.call('HINCRBY', KEYS[5], 'frontier/workers_lost', 1)
end
return moved
"""

# Whether the crawl is done: the queue empty and nothing in flight, continuously for the idle
# timeout (then the done key is set). KEYS: queue, workers, drained-since, done.
# ARGV: in-flight key prefix, idle timeout in ms.
# Returns {state, queued, in flight}: state 0 busy, 1 drained (waiting), 2 done.
_DRAINED = """
local queued = redis.call('ZCARD', KEYS[1])
local inflight = 0
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  inflight = inflight + redis.call('HLEN', ARGV[1] .. worker)
end
if redis.call('EXISTS', KEYS[4]) == 1 then return {2, queued, inflight} end
if queued + inflight > 0 then
  redis.call('DEL', KEYS[3])
  return {0, queued, inflight}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local since = tonumber(redis.call('GET', KEYS[3]))
if not since then
  redis.call('SET', KEYS[3], now)
  since = now
end
if now - since >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[4], now)
  return {2, 0, 0}
end
return {1, 0, 0}
"""

# Delete the current-crawl pointer only if it still names this crawl.
_RELEASE_CURRENT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class FrontierState:
    """One look at a crawl's frontier."""

    state: int
    """0: work left; 1: drained, waiting for the idle timeout; 2: done."""
    queued: int
    inflight: int

    @property
    def done(self) -> bool:
        return self.state == 2


class FrontierStore:
    """The Redis side of one distributed crawl, for its workers and its seeder."""

    def __init__(self, server: Redis, keys: CrawlKeys) -> None:
        self.server = server
        self.keys = keys
        self._take = server.register_script(_TAKE)
        self._settle = server.register_script(_SETTLE)
        self._requeue = server.register_script(_REQUEUE)
        self._drained = server.register_script(_DRAINED)
        self._release = server.register_script(_RELEASE_CURRENT)

    # -- the queue -----------------------------------------------------------------------------

    def take(self, worker: str, token: str) -> bytes | None:
        """Pop the first queue entry and record it as ``worker``'s in-flight ``token``."""
        k = self.keys
        return self._take(keys=[k.queue, k.inflight(worker), k.workers], args=[token, worker])

    def settle(
        self, worker: str, token: str | None, entries: Iterable[tuple[str, float, bytes, bool]]
    ) -> list[bool]:
        """Push ``(fingerprint, score, entry, filter)`` entries and clear ``token``, atomically;
        say which entries were new (not filtered as duplicates)."""
        args: list[Any] = [token or ""]
        for fingerprint, score, entry, use_filter in entries:
            args += [fingerprint, repr(float(score)), entry, "1" if use_filter else "0"]
        k = self.keys
        added = self._settle(keys=[k.queue, k.dupefilter, k.inflight(worker)], args=args)
        return [bool(a) for a in added]

    def clear(self, worker: str, tokens: Iterable[str]) -> None:
        tokens = list(tokens)
        if tokens:
            self.server.hdel(self.keys.inflight(worker), *tokens)

    def requeue(self, worker: str, *, force: bool) -> int:
        """Move ``worker``'s in-flight requests back to the queue and forget it (unless it is
        still alive and not ``force``d); the number moved, -1 if it is alive."""
        k = self.keys
        return int(
            self._requeue(
                keys=[
                    k.alive(worker),
                    k.inflight(worker),
                    k.queue,
                    k.workers,
                    k.counts,
                    k.worker_counts(worker),
                ],
                args=[worker, "1" if force else "0"],
            )
        )

    def reap(self) -> dict[str, int]:
        """Requeue the in-flight work of every registered worker whose heartbeat is gone."""
        found: dict[str, int] = {}
        for raw in self.server.smembers(self.keys.workers):
            worker = raw.decode()
            if self.server.exists(self.keys.alive(worker)):
                continue
            moved = self.requeue(worker, force=False)
            if moved >= 0:
                found[worker] = moved
        return found

    def look(self, idle_timeout: float) -> FrontierState:
        """Whether the crawl is done (and, if it has just become so, record it)."""
        k = self.keys
        state, queued, inflight = self._drained(
            keys=[k.queue, k.workers, k.drained_since, k.done],
            args=[k.inflight_prefix, int(idle_timeout * 1000)],
        )
        return FrontierState(int(state), int(queued), int(inflight))

    def workers(self) -> list[str]:
        return sorted(raw.decode() for raw in self.server.smembers(self.keys.workers))

    def stop_reason(self) -> str | None:
        raw = self.server.get(self.keys.stop)
        return raw.decode() if raw else None

    # -- statistics ----------------------------------------------------------------------------

    def read_counts(self, key: str) -> dict[str, int | float]:
        counts: dict[str, int | float] = {}
        for name, raw in self.server.hgetall(key).items():
            text = raw.decode()
            try:
                counts[name.decode()] = int(text)
            except ValueError:
                counts[name.decode()] = float(text)
        return counts

    def read_values(self, key: str) -> dict[str, Any]:
        return {name.decode(): json.loads(raw) for name, raw in self.server.hgetall(key).items()}

    # -- the whole crawl -----------------------------------------------------------------------

    def release_current(self) -> None:
        self._release(keys=[self.keys.current], args=[self.keys.crawl_id])

    def delete(self) -> int:
        """Delete every key of the crawl (and the current-crawl pointer if it names it)."""
        deleted = 0
        batch: list[bytes] = []
        for key in self.server.scan_iter(match=self.keys.pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(self.server.unlink(*batch))
                batch = []
        if batch:
            deleted += int(self.server.unlink(*batch))
        self.release_current()
        return deleted


def read_plan(server: Redis, prefix: str) -> CrawlPlan | None:
    """The plan of the crawl now running under ``prefix``, or None."""
    crawl_id = server.get(current_key(prefix))
    if not crawl_id:
        return None
    raw = server.get(CrawlKeys(prefix, crawl_id.decode()).plan)
    return CrawlPlan.from_json(raw) if raw else None


# --- Scrapy components (in each worker) ---------------------------------------------------------


class SharedQueue(PriorityQueue):
    """scrapy-redis's priority queue; the frontier takes from it with ``FrontierStore.take``."""

    def entry(self, request: Request) -> bytes:
        return self._encode_request(request)

    def decode(self, entry: bytes) -> Request:
        return self._decode_request(entry)


class SharedStatsCollector(MemoryStatsCollector):
    """Scrapy's stats collector that remembers which stats are counters (``inc_value``), so that
    the frontier adds those up across workers and keeps the others as values."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.counters: set[str] = set()

    def inc_value(
        self, key: str, count: int = 1, start: int = 0, spider: Spider | None = None
    ) -> None:
        self.counters.add(key)
        super().inc_value(key, count, start)


class Frontier:
    """A worker's end of the shared frontier: takes requests, settles them, keeps the heartbeat
    and the statistics (one per crawler, shared by the scheduler, the middleware and the
    extension)."""

    @classmethod
    def of(cls, crawler: Crawler) -> Frontier:
        found = _FRONTIERS.get(crawler)
        if found is None:
            found = _FRONTIERS[crawler] = cls(crawler)
        return found

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        crawl_id = settings.get("TIANJIN_FRONTIER_CRAWL")
        if not crawl_id:
            raise NotConfigured("not a worker of a distributed crawl")
        self.crawler = crawler
        self.keys = CrawlKeys(settings.get("TIANJIN_REDIS_PREFIX") or DEFAULT_PREFIX, crawl_id)
        self.worker = settings.get("TIANJIN_WORKER_NAME") or worker_name()
        self.ttl = max(1.0, settings.getfloat("TIANJIN_WORKER_TTL", 15.0))
        self.poll = max(0.05, settings.getfloat("TIANJIN_FRONTIER_POLL_INTERVAL", 0.5))
        self.idle_timeout = max(0.0, settings.getfloat("TIANJIN_FRONTIER_IDLE_TIMEOUT", 5.0))
        self.store_enabled = settings.getbool("TIANJIN_STORE_ENABLED", True)
        self.server: Redis = get_redis_from_settings(settings)
        self.store = FrontierStore(self.server, self.keys)
        self.queue: SharedQueue | None = None
        self.dupefilter: RFPDupeFilter | None = None
        self.spider: Spider | None = None
        self._tokens = itertools.count(1)
        # token -> holds: 1 while its callback runs, +1 per article it yielded not yet durable.
        self._holds: dict[str, int] = {}
        # id(item) -> (item, token) of articles not yet durable; article key -> their ids.
        self._items: dict[int, tuple[Any, str]] = {}
        self._by_key: dict[str, set[int]] = {}
        self._pushed_counts: dict[str, int | float] = {}
        self._pushed_values: dict[str, str] = {}
        self._beat_stop = threading.Event()
        self._beat_thread: threading.Thread | None = None
        self.joined = False

    # -- membership ----------------------------------------------------------------------------

    def crawl_exists(self) -> bool:
        """False once the seeder has deleted the crawl (it is over, or was cancelled)."""
        return bool(self.server.exists(self.keys.plan))

    def join(self) -> bool:
        """Register as a worker of the crawl and start the heartbeat; False (and nothing
        written) when the crawl is already over."""
        if not self.crawl_exists():
            return False
        self._beat()
        self.joined = True
        self._beat_thread = threading.Thread(
            target=self._beat_loop, name="frontier-heartbeat", daemon=True
        )
        self._beat_thread.start()
        logger.info("Worker %s joined crawl %s", self.worker, self.keys.crawl_id)
        return True

    def _beat(self) -> None:
        pipe = self.server.pipeline(transaction=True)
        pipe.set(self.keys.alive(self.worker), os.getpid(), px=int(self.ttl * 1000))
        pipe.sadd(self.keys.workers, self.worker)
        pipe.execute()

    def _beat_loop(self) -> None:
        # A thread of its own: a busy reactor must not make a live worker look dead.
        interval = self.ttl / 4
        while not self._beat_stop.wait(interval):
            try:
                self._beat()
            except Exception as exc:  # noqa: BLE001 - Redis down: the next beat tries again
                logger.warning("Heartbeat to Redis failed: %s", exc)

    def leave(self, reason: str) -> int:
        """Push the last statistics, hand in-flight work back to the queue, unregister."""
        self._beat_stop.set()
        if self._beat_thread is not None:
            self._beat_thread.join(timeout=5)
        if not self.joined or not self.crawl_exists():
            # Never joined, or the seeder has already deleted the crawl: write nothing back.
            self.joined = False
            return 0
        self.push_stats(final_reason=reason)
        moved = self.store.requeue(self.worker, force=True)
        self.joined = False
        if moved:
            logger.warning("Worker %s handed %d requests back to the frontier", self.worker, moved)
        return moved

    # -- taking and settling requests ------------------------------------------------------------

    def take(self) -> Request | None:
        assert self.queue is not None, "the scheduler did not open the frontier"
        token = f"t{next(self._tokens)}"
        try:
            entry = self.store.take(self.worker, token)
        except RedisError as exc:
            # Nothing was taken: the engine asks again at its next heartbeat.
            logger.warning("Cannot take a request from the frontier in Redis: %s", exc)
            return None
        if entry is None:
            return None
        request = self.queue.decode(entry)
        request.meta[TOKEN] = token
        # Errbacks bypass the spider middlewares: settle their output here.
        request.errback = self._settling_errback(token, request.errback)
        self.crawler.stats.inc_value("frontier/taken")
        return request

    def _entry(self, request: Request) -> tuple[str, float, bytes, bool]:
        assert self.queue is not None and self.dupefilter is not None
        request.meta.pop(TOKEN, None)
        if getattr(request.errback, "frontier_wrapped", False):
            # A retry or redirect copied the settling errback: the queue gets the spider's own.
            request.errback = request.errback.frontier_original  # type: ignore[union-attr]
        return (
            self.dupefilter.request_fingerprint(request),
            -request.priority,
            self.queue.entry(request),
            not request.dont_filter,
        )

    def push(self, requests: list[Request], token: str | None) -> list[bool]:
        """Queue ``requests`` and clear ``token`` (when given) in one step."""
        entries = [self._entry(r) for r in requests]
        added = self.store.settle(self.worker, token, entries)
        stats = self.crawler.stats
        for new in added:
            stats.inc_value("frontier/enqueued" if new else "frontier/filtered")
        return added

    def enqueue(self, request: Request) -> bool:
        """A request the engine schedules: a retry or redirect of one we hold (it carries that
        one's token and replaces it), or a new one."""
        token = request.meta.get(TOKEN)
        if token is not None and token in self._holds:
            token = None  # its callback is running: the step settles it
        return self.push([request], token)[0]

    def begin(self, token: str) -> None:
        self._holds[token] = self._holds.get(token, 0) + 1

    def expect(self, token: str, item: Any) -> None:
        """``item`` (an article, or a 304 notice) was yielded for ``token``: not durable yet."""
        key = _article_key(item)
        self._holds[token] = self._holds.get(token, 0) + 1
        self._items[id(item)] = (item, token)
        if key is not None:
            self._by_key.setdefault(key, set()).add(id(item))

    def finish(self, token: str, children: list[Request]) -> None:
        """The callback of ``token`` is over: queue its requests, and clear it unless articles it
        yielded are still on their way to the database."""
        holds = self._holds.get(token, 1) - 1
        if holds <= 0:
            self._holds.pop(token, None)
            self.push(children, token)
        else:
            self._holds[token] = holds
            if children:
                self.push(children, None)

    def _release(self, token: str) -> None:
        holds = self._holds.get(token, 0) - 1
        if holds <= 0:
            self._holds.pop(token, None)
            self.store.clear(self.worker, [token])
        else:
            self._holds[token] = holds

    def item_done(self, item: Any) -> None:
        """An article dropped, failed in a pipeline, or (without a store) scraped."""
        found = self._items.pop(id(item), None)
        if found is None:
            return
        key = _article_key(item)
        if key is not None and key in self._by_key:
            self._by_key[key].discard(id(item))
            if not self._by_key[key]:
                del self._by_key[key]
        self._release(found[1])

    def articles_stored(self, keys: Iterable[str]) -> None:
        """The store committed these articles: the requests behind them are done."""
        for key in keys:
            for item_id in list(self._by_key.pop(key, ())):
                found = self._items.pop(item_id, None)
                if found is not None:
                    self._release(found[1])

    def settle_output(self, token: str, result: Iterable[Any]) -> Iterator[Any]:
        """Pass the articles of a callback's output on; queue its requests when it is over."""
        children: list[Request] = []
        self.begin(token)
        try:
            for output in result:
                if isinstance(output, Request):
                    children.append(output)
                else:
                    self.expect(token, output)
                    yield output
        finally:
            self.finish(token, children)

    async def settle_output_async(
        self, token: str, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        children: list[Request] = []
        self.begin(token)
        try:
            async for output in result:
                if isinstance(output, Request):
                    children.append(output)
                else:
                    self.expect(token, output)
                    yield output
        finally:
            self.finish(token, children)

    def _settling_errback(
        self, token: str, errback: Callable[..., Any] | None
    ) -> Callable[..., Any]:
        frontier = self

        def settling_errback(failure: Any) -> Any:
            try:
                # Without an errback of its own the failure goes on as Scrapy would treat it.
                output = errback(failure) if errback is not None else failure
            except BaseException:
                frontier.begin(token)
                frontier.finish(token, [])
                raise
            if isinstance(output, AsyncIterator):
                return frontier.settle_output_async(token, output)
            if isinstance(output, Iterable) and not isinstance(output, (str, bytes, dict)):
                return frontier.settle_output(token, output)
            frontier.begin(token)
            frontier.finish(token, [])
            return output

        settling_errback.frontier_original = errback  # type: ignore[attr-defined]
        settling_errback.frontier_wrapped = True  # type: ignore[attr-defined]
        return settling_errback

    # -- statistics ----------------------------------------------------------------------------

    def push_stats(self, final_reason: str | None = None) -> None:
        """Add what changed in this worker's stats since the last push to the shared hashes."""
        stats = self.crawler.stats
        values = dict(stats.get_stats())
        if final_reason is not None:
            values["finish_reason"] = final_reason
        counters: set[str] = getattr(stats, "counters", set())
        k = self.keys
        pipe = self.server.pipeline(transaction=True)
        counts: dict[str, int | float] = {}
        changed_values: dict[str, str] = {}
        for name, value in values.items():
            if name in counters and isinstance(value, (int, float)) and not isinstance(value, bool):
                delta = value - self._pushed_counts.get(name, 0)
                if delta:
                    counts[name] = value
                    if isinstance(delta, int):
                        pipe.hincrby(k.counts, name, delta)
                        pipe.hincrby(k.worker_counts(self.worker), name, delta)
                    else:
                        pipe.hincrbyfloat(k.counts, name, delta)
                        pipe.hincrbyfloat(k.worker_counts(self.worker), name, delta)
            else:
                text = json.dumps(_json_safe(value), sort_keys=True)
                if self._pushed_values.get(name) != text:
                    changed_values[name] = text
        if changed_values:
            pipe.hset(k.values, mapping=changed_values)
            pipe.hset(k.worker_values(self.worker), mapping=changed_values)
        if counts or changed_values:
            pipe.execute()
            self._pushed_counts.update(counts)
            self._pushed_values.update(changed_values)


_FRONTIERS: weakref.WeakKeyDictionary[Any, Frontier] = weakref.WeakKeyDictionary()


def _article_key(item: Any) -> str | None:
    key = getattr(item, "article_key", None)
    if key is None and isinstance(item, dict):
        key = item.get("article_key")
    return None if key is None else str(key)


def _json_safe(value: Any) -> Any:
    from pipelines.store import json_safe

    return json_safe(value)


class FrontierScheduler(Scheduler):
    """scrapy-redis's scheduler, taking requests through the worker's ``Frontier``: each one is
    recorded in flight as it leaves the queue, and a retry or redirect replaces it atomically."""

    frontier: Frontier

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        instance = super().from_crawler(crawler)
        instance.frontier = Frontier.of(crawler)
        return instance

    def open(self, spider: Spider) -> None:
        # As scrapy-redis opens its scheduler, less its log line through the deprecated
        # Spider.log(); the queue is never flushed here (it is the crawl's, not this worker's).
        self.spider = spider
        self.queue = load_object(self.queue_cls)(
            server=self.server,
            spider=spider,
            key=self.queue_key % {"spider": spider.name},
            serializer=self.serializer,
        )
        if not self.df:
            self.df = load_object(self.dupefilter_cls).from_spider(spider)
        assert isinstance(self.queue, SharedQueue), "SCHEDULER_QUEUE_CLASS must be SharedQueue"
        self.frontier.queue = self.queue
        self.frontier.dupefilter = self.df
        self.frontier.spider = spider

    def enqueue_request(self, request: Request) -> bool:
        added = self.frontier.enqueue(request)
        if not added:
            self.df.log(request, self.spider)
        return added

    def next_request(self) -> Request | None:
        return self.frontier.take()


class FrontierMiddleware:
    """Spider middleware, nearest the engine: the requests a callback yields go to the shared
    queue in the step that clears the callback's own request; its articles go on to the
    pipelines and clear it once stored."""

    def __init__(self, frontier: Frontier) -> None:
        self.frontier = frontier

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.get("TIANJIN_FRONTIER_CRAWL"):
            # Not a worker of a distributed crawl. Without a message: Scrapy logs a warning
            # for every NotConfigured that carries one, on every ordinary crawl.
            raise NotConfigured
        return cls(Frontier.of(crawler))

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterable[Any]:
        token = response.meta.get(TOKEN)
        if token is None:
            return result
        return self.frontier.settle_output(token, result)

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        token = response.meta.get(TOKEN)
        if token is None:
            async for output in result:
                yield output
            return
        async for output in self.frontier.settle_output_async(token, result):
            yield output


class FrontierExtension:
    """Joins the crawl when the spider opens; while idle, keeps the worker open until the crawl
    is done (or stopped); renews the statistics; leaves when the spider closes."""

    def __init__(self, crawler: Crawler, frontier: Frontier) -> None:
        self.crawler = crawler
        self.frontier = frontier
        self._loop: Any = None
        self._last_look = 0.0
        self._last_reap = 0.0
        self._closing = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.get("TIANJIN_FRONTIER_CRAWL"):
            # Not a worker of a distributed crawl. Without a message: Scrapy logs a warning
            # for every NotConfigured that carries one, on every ordinary crawl.
            raise NotConfigured
        ext = cls(crawler, Frontier.of(crawler))
        s = crawler.signals
        s.connect(ext.spider_opened, signal=signals.spider_opened)
        s.connect(ext.spider_idle, signal=signals.spider_idle)
        s.connect(ext.spider_closed, signal=signals.spider_closed)
        s.connect(ext.item_dropped, signal=signals.item_dropped)
        s.connect(ext.item_error, signal=signals.item_error)
        if ext.frontier.store_enabled:
            from pipelines.store import articles_stored

            s.connect(ext.articles_stored, signal=articles_stored)
        else:
            s.connect(ext.item_dropped, signal=signals.item_scraped)
        return ext

    def spider_opened(self) -> None:
        from twisted.internet import task

        if not self.frontier.join():
            logger.warning("Crawl %s is already over", self.frontier.keys.crawl_id)
            self._closing = True
            _close_spider(self.crawler, "finished")
            return
        engine = self.crawler.engine
        # Scrapy asks an idle scheduler for requests every 5 s (its slot heartbeat); a worker
        # waiting for the others' requests asks more often.
        if hasattr(engine, "_SLOT_HEARTBEAT_INTERVAL"):
            engine._SLOT_HEARTBEAT_INTERVAL = self.frontier.poll
        self._loop = task.LoopingCall(self.tick)
        self._loop.start(1.0, now=False)

    def tick(self) -> None:
        """Every second: statistics out, dead workers' work back, and an eye on the seeder."""
        frontier = self.frontier
        try:
            frontier.push_stats()
            now = _monotonic()
            if now - self._last_reap >= frontier.ttl / 3:
                self._last_reap = now
                self._log_reaped(frontier.store.reap())
            reason = frontier.store.stop_reason()
            if reason is None and not frontier.crawl_exists():
                reason = "cancelled"  # the seeder deleted the crawl
        except Exception as exc:  # noqa: BLE001 - Redis unreachable: try again next tick
            logger.warning("Cannot reach the frontier in Redis: %s", exc)
            return
        if reason is not None and not self._closing:
            self._closing = True
            logger.warning("The crawl's seeder asked the workers to stop (%s)", reason)
            _close_spider(self.crawler, reason)

    def _log_reaped(self, reaped: dict[str, int]) -> None:
        for worker, moved in reaped.items():
            logger.warning(
                "Worker %s stopped answering: %d of its requests went back to the frontier",
                worker,
                moved,
            )

    def spider_idle(self) -> None:
        frontier = self.frontier
        now = _monotonic()
        if now - self._last_look < frontier.poll:
            raise DontCloseSpider
        self._last_look = now
        try:
            reason = frontier.store.stop_reason()
            if reason is None and not frontier.crawl_exists():
                reason = "cancelled"  # the seeder deleted the crawl
            if reason is not None:
                raise CloseSpider(reason)
            if now - self._last_reap >= frontier.ttl / 3:
                self._last_reap = now
                self._log_reaped(frontier.store.reap())
            if frontier.store.look(frontier.idle_timeout).done:
                return  # the crawl is over: let the spider close ("finished")
        except (CloseSpider, DontCloseSpider):
            raise
        except Exception as exc:  # noqa: BLE001 - Redis unreachable: keep waiting
            logger.warning("Cannot reach the frontier in Redis: %s", exc)
        raise DontCloseSpider

    def item_dropped(self, item: Any) -> None:
        self.frontier.item_done(item)

    def item_error(self, item: Any) -> None:
        self.frontier.item_done(item)

    def articles_stored(self, keys: list[str]) -> None:
        self.frontier.articles_stored(keys)

    def spider_closed(self, reason: str) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self.frontier.joined:
            self.frontier.leave(reason)


def _close_spider(crawler: Crawler, reason: str) -> None:
    import asyncio

    engine = crawler.engine
    if engine is None or engine.spider is None:
        return
    asyncio.ensure_future(engine.close_spider_async(reason=reason))


def _monotonic() -> float:
    import time

    return time.monotonic()
