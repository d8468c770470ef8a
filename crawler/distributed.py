"""Distributed crawls: the seeder (``tianjin-updates crawl --redis URL``) and the workers
(``tianjin-updates worker``). The shared frontier itself is ``crawler.frontier``.

The seeder, one per crawl:

* refuses a SQLite database (every worker must reach the same database), takes the database's
  crawl lock for the crawl's whole life (a plain ``crawl`` meanwhile is refused, exit 75) and
  marks runs left ``running`` by dead processes as failed;
* refuses to start while another distributed crawl with a live seeder runs under the same
  ``TIANJIN_REDIS_PREFIX``, and deletes what a dead seeder's crawl left in Redis;
* starts the crawl's one ``crawl_runs`` row, decides once how the listing is read (incremental,
  deep after a crawl that fell short, or full; the re-visit window), writes that plan, queues
  the start request and then points ``<prefix>:current`` at the crawl (``SET NX``: seeded
  exactly once);
* waits, printing progress, until the frontier is drained (``crawler.frontier``) and the
  workers have left; re-queues the work of workers that died; on SIGTERM, Ctrl-C or
  ``--timeout`` asks the workers to stop;
* finishes the run with the workers' statistics added up, prints the same summary as a
  one-process crawl (with a line per worker) and deletes the crawl's keys, so the next crawl
  starts with an empty duplicate filter.

A worker waits for a crawl to be announced (or joins the current one), checks that its database
holds that crawl's running run, crawls with the frontier's scheduler until the crawl is done and
exits; its statistics go to the shared hashes as it works.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from crawler.frontier import (
    DEFAULT_PREFIX,
    PLAN_SETTINGS,
    CrawlKeys,
    CrawlPlan,
    FrontierStore,
    current_key,
    frontier_settings,
    read_plan,
    redis_client,
)

if TYPE_CHECKING:
    from redis import Redis
    from scrapy.settings import Settings

    from crawler.runner import CrawlOutcome

#: Stats of one worker's process that say nothing about the crawl as a whole.
_WORKER_ONLY = frozenset(
    {
        "start_time",
        "finish_time",
        "finish_reason",
        "elapsed_time_seconds",
        "incremental/caught_up",
        "memusage/startup",
        "memusage/max",
    }
)


class DistributedError(Exception):
    """A problem the user can fix (Redis unreachable, wrong database); one line."""


class NotPostgreSQL(DistributedError):
    """Distributed crawling was asked for with a database other than PostgreSQL."""


def require_postgresql(db: str) -> None:
    """Refuse any database but PostgreSQL: every worker writes to the same one."""
    from storage.db import parse_database_url

    try:
        backend = parse_database_url(db).get_backend_name()
    except Exception:  # noqa: BLE001 - an unparsable URL is not PostgreSQL either
        backend = ""
    if backend != "postgresql":
        raise NotPostgreSQL(
            "distributed crawling (--redis / TIANJIN_REDIS_URL) needs a PostgreSQL database that "
            "the seeder and every worker reach: pass --db postgresql+psycopg://user@host/dbname "
            "(or leave Redis out for a crawl in this process)"
        )


def redis_label(url: str) -> str:
    """``url`` without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def connect(url: str) -> Redis:
    """A client of the Redis server at ``url``, checked with PING; ``DistributedError`` if not."""
    from redis.exceptions import RedisError

    try:
        server = redis_client(url)
        server.ping()
    except (RedisError, ValueError) as exc:
        raise DistributedError(f"cannot reach Redis at {redis_label(url)}: {exc}") from None
    return server


def _now() -> datetime:
    return datetime.now(UTC)


# --- the seeder ---------------------------------------------------------------------------------


class _StopRequest:
    """SIGTERM / SIGINT while the seeder waits: ask the workers to stop (a second one: now)."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.reason is not None:
            raise KeyboardInterrupt
        self.reason = "shutdown"
        print(
            "tianjin-updates: stopping the crawl: the workers finish what they hold and leave "
            "(again to stop waiting for them)",
            file=sys.stderr,
            flush=True,
        )


@contextlib.contextmanager
def _signals_caught(handler: _StopRequest) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def seed_and_wait(
    settings: Settings,
    *,
    db: str,
    db_label: str,
    redis_url: str,
    start_url: str | None,
    max_pages: int | None,
    progress: float,
    timeout: float | None,
) -> CrawlOutcome:
    """Run one distributed crawl as its seeder (see the module docstring); the crawl lock is
    taken here (``CrawlBusy`` when another crawl runs)."""
    from redis.exceptions import RedisError

    from crawler.runner import CrawlBusy, crawl_lock_held
    from crawler.urls import DEFAULT_START_URL
    from storage.db import make_engine
    from storage.repository import Repository

    server = connect(redis_url)
    prefix = settings.get("TIANJIN_REDIS_PREFIX") or DEFAULT_PREFIX
    with crawl_lock_held(db, db_label):
        engine = make_engine(db)
        try:
            _clear_stale_crawl(server, prefix, db_label, redis_url)
            repo = Repository(engine)
            started_at = _now()
            run_id = repo.start_run(settings.get("TIANJIN_TRIGGER") or "manual", started_at)
            plan = _make_plan(
                repo, settings, run_id, start_url or DEFAULT_START_URL, max_pages, started_at
            )
            plan.database = db_label
            keys = CrawlKeys(prefix, plan.crawl_id)
            store = FrontierStore(server, keys)
            seeder = Seeder(store, plan, settings, redis_url)
            try:
                if not seeder.seed():
                    raise CrawlBusy(
                        f"another distributed crawl started on {redis_label(redis_url)} under "
                        f"the prefix {prefix!r} just now; not starting a second one"
                    )
                return seeder.wait_and_finish(repo, progress=progress, timeout=timeout)
            except BaseException as exc:
                seeder.abort(repo, exc)
                raise
            finally:
                with contextlib.suppress(RedisError):
                    store.delete()
        except RedisError as exc:
            raise DistributedError(
                f"lost Redis at {redis_label(redis_url)}: {exc}; the run was recorded failed"
            ) from None
        finally:
            engine.dispose()


def _clear_stale_crawl(server: Redis, prefix: str, db_label: str, redis_url: str) -> None:
    """Refuse while another crawl's seeder is alive; delete what a dead seeder's crawl left."""
    from crawler.runner import CrawlBusy

    plan = read_plan(server, prefix)
    raw = server.get(current_key(prefix))
    if raw is None:
        return
    keys = CrawlKeys(prefix, raw.decode())
    if server.exists(keys.seeder):
        where = f"run {plan.run_id} of {plan.database}" if plan else f"crawl {keys.crawl_id}"
        raise CrawlBusy(
            f"another distributed crawl ({where}) is running on {redis_label(redis_url)} under "
            f"the prefix {prefix!r}; not starting a second one (a crawl of another database "
            "needs its own TIANJIN_REDIS_PREFIX)"
        )
    deleted = FrontierStore(server, keys).delete()
    what = f"run {plan.run_id}" if plan else f"crawl {keys.crawl_id}"
    print(
        f"Removed what the distributed crawl {what}, whose seeder is gone, left in Redis "
        f"({deleted} keys)",
        file=sys.stderr,
    )


def _make_plan(
    repo: Any,
    settings: Settings,
    run_id: int,
    start_url: str,
    max_pages: int | None,
    started_at: datetime,
) -> CrawlPlan:
    import os
    import secrets
    import socket

    values: dict[str, Any] = {}
    for name in PLAN_SETTINGS:
        value = settings.get(name)
        if value is not None:
            values[name] = value if isinstance(value, (bool, int, float, str)) else str(value)
    if settings.getbool("TIANJIN_INCREMENTAL", True):
        # Decided once for every worker, as a one-process crawl's start() decides them.
        values["TIANJIN_CRAWL_DEEP"] = not repo.caught_up(run_id)
        newest = repo.newest_published_on()
        days = max(0, settings.getint("TIANJIN_REVISIT_DAYS", 2))
        values["TIANJIN_REVISIT_SINCE"] = (
            (newest - timedelta(days=days)).isoformat() if newest else ""
        )
    return CrawlPlan(
        crawl_id=f"r{run_id}-{secrets.token_hex(3)}",
        run_id=run_id,
        start_url=start_url,
        max_pages=max_pages,
        settings=values,
        seeder_host=socket.gethostname(),
        seeder_pid=os.getpid(),
        started_at=started_at.isoformat(),
    )


def plan_mode(plan: CrawlPlan) -> str:
    """How the crawl reads the listing: ``incremental``, ``deep`` or ``full``."""
    if not plan.settings.get("TIANJIN_INCREMENTAL", True):
        return "full"
    return "deep" if plan.settings.get("TIANJIN_CRAWL_DEEP") else "incremental"


class Seeder:
    """The seeder's side of one crawl: seed, watch, stop, add up, record."""

    def __init__(self, store: FrontierStore, plan: CrawlPlan, settings: Settings, redis_url: str):
        self.store = store
        self.keys = store.keys
        self.server = store.server
        self.plan = plan
        self.redis_url = redis_url
        self.ttl = max(1.0, settings.getfloat("TIANJIN_WORKER_TTL", 15.0))
        self.poll = max(0.05, settings.getfloat("TIANJIN_FRONTIER_POLL_INTERVAL", 0.5))
        self.idle_timeout = max(0.0, settings.getfloat("TIANJIN_FRONTIER_IDLE_TIMEOUT", 5.0))
        self.key_ttl = max(60, settings.getint("TIANJIN_REDIS_KEY_TTL", 86400))
        self.started = time.monotonic()
        self.started_at = datetime.fromisoformat(plan.started_at)

    def seed(self) -> bool:
        """Write the plan, queue the start request, then announce the crawl (once)."""
        from scrapy_redis.dupefilter import RFPDupeFilter

        from crawler.frontier import SharedQueue
        from crawler.spiders.tianjin_updates import TianjinUpdatesSpider

        spider = TianjinUpdatesSpider(start_url=self.plan.start_url)
        request = spider.start_request()
        entry = SharedQueue(self.server, spider, self.keys.queue).entry(request)
        fingerprint = RFPDupeFilter(self.server, self.keys.dupefilter).request_fingerprint(request)
        k = self.keys
        pipe = self.server.pipeline(transaction=True)
        pipe.set(k.plan, self.plan.to_json(), ex=self.key_ttl)
        pipe.zadd(k.queue, {entry: -request.priority})
        pipe.sadd(k.dupefilter, fingerprint)
        pipe.set(k.seeder, self.plan.seeder_pid, px=int(self.ttl * 1000))
        pipe.execute()
        return bool(self.server.set(k.current, k.crawl_id, nx=True, ex=self.key_ttl))

    def _beat(self) -> None:
        self.server.set(self.keys.seeder, self.plan.seeder_pid, px=int(self.ttl * 1000))

    def _keep_keys(self) -> None:
        """Renew the expiry of the crawl's keys (they outlive a seeder that dies by this long)."""
        pipe = self.server.pipeline(transaction=False)
        pipe.expire(self.keys.current, self.key_ttl)
        for key in self.server.scan_iter(match=self.keys.pattern, count=500):
            name = key.decode()
            if ":alive:" not in name and name != self.keys.seeder:
                pipe.expire(key, self.key_ttl)
        pipe.execute()

    def wait_and_finish(self, repo: Any, *, progress: float, timeout: float | None) -> CrawlOutcome:
        stop = _StopRequest()
        print(
            f"Crawl {self.keys.crawl_id} (run {self.plan.run_id}) is waiting for workers on "
            f"{redis_label(self.redis_url)}: start them with `tianjin-updates worker --redis URL "
            "--db URL`",
            file=sys.stderr,
            flush=True,
        )
        with _signals_caught(stop):
            reason = self._wait(stop, progress, timeout)
        return self.finish(repo, reason)

    def _wait(self, stop: _StopRequest, progress: float, timeout: float | None) -> str:
        deadline = None if not timeout else self.started + timeout
        last_progress = last_reap = last_keep = time.monotonic()
        asked: str | None = None
        stopping_since = 0.0
        warned_idle = False
        while True:
            now = time.monotonic()
            self._beat()
            if now - last_keep >= 60:
                last_keep = now
                self._keep_keys()
            if now - last_reap >= self.ttl / 3:
                last_reap = now
                for worker, moved in self.store.reap().items():
                    print(
                        f"Worker {worker} stopped answering: {moved} of its requests went back "
                        "to the frontier",
                        file=sys.stderr,
                        flush=True,
                    )
            look = self.store.look(self.idle_timeout)
            if look.done and asked is None:
                return "finished"
            if asked is None:
                if stop.reason is not None:
                    asked = stop.reason
                elif deadline is not None and now >= deadline:
                    asked = "closespider_timeout"
                if asked is not None:
                    self.server.set(self.keys.stop, asked, ex=self.key_ttl)
                    stopping_since = now
            if asked is not None and (
                not self.store.workers() or now - stopping_since >= 2 * self.ttl + 30
            ):
                return asked
            if progress > 0 and now - last_progress >= progress:
                last_progress = now
                workers = self.store.workers()
                print(self.progress_line(look, workers), file=sys.stderr, flush=True)
                if not workers and not warned_idle and now - self.started >= max(progress, 10):
                    warned_idle = True
                    print(
                        "  no worker has joined yet: start `tianjin-updates worker --redis URL "
                        "--db URL` on the crawling machines",
                        file=sys.stderr,
                        flush=True,
                    )
            time.sleep(self.poll)

    def progress_line(self, look: Any, workers: list[str]) -> str:
        from crawler.progress import progress_line

        stats = self.store.read_counts(self.keys.counts)
        line = progress_line(stats, time.monotonic() - self.started)
        return (
            f"{line}; frontier: {look.queued} queued, {look.inflight} in flight, "
            f"{len(workers)} worker{'s' if len(workers) != 1 else ''}"
        )

    def _wait_for_workers_to_leave(self) -> None:
        """After the end, give the workers time to push their last statistics and leave."""
        deadline = time.monotonic() + max(10.0, 2 * self.ttl)
        while self.store.workers() and time.monotonic() < deadline:
            self._beat()
            self.store.reap()
            time.sleep(min(self.poll, 0.2))

    def collect(self, reason: str, finished_at: datetime) -> dict[str, Any]:
        """The crawl's statistics: the workers' added up, and the seeder's own."""
        from crawler.spiders.tianjin_updates import crawl_caught_up

        counts = self.store.read_counts(self.keys.counts)
        values = self.store.read_values(self.keys.values)
        stats: dict[str, Any] = {k: v for k, v in values.items() if k not in _WORKER_ONLY}
        stats.update(counts)
        if stats.get("spider/start_failed") and reason == "finished":
            reason = "start_failed"
        settings = self.plan.settings
        max_pages = self.plan.max_pages or int(settings.get("TIANJIN_MAX_PAGES") or 0)
        stats.update(
            {
                "start_time": self.started_at,
                "finish_time": finished_at,
                "elapsed_time_seconds": round((finished_at - self.started_at).total_seconds(), 3),
                "finish_reason": reason,
                "store/run_id": self.plan.run_id,
                "incremental/mode": plan_mode(self.plan),
            }
        )
        stats["incremental/caught_up"] = reason == "finished" and crawl_caught_up(
            stats,
            max_pages=max_pages,
            incremental=bool(settings.get("TIANJIN_INCREMENTAL", True)),
        )
        stats["distributed"] = {
            "crawl_id": self.keys.crawl_id,
            "redis": redis_label(self.redis_url),
            "workers": self._per_worker(),
        }
        return stats

    def _per_worker(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        prefix = f"{self.keys.base}:worker:"
        for key in self.server.scan_iter(match=f"{prefix}*:count", count=500):
            name = key.decode()[len(prefix) : -len(":count")]
            counts = self.store.read_counts(self.keys.worker_counts(name))
            values = self.store.read_values(self.keys.worker_values(name))
            found[name] = worker_share(counts, values)
        return dict(sorted(found.items()))

    def finish(self, repo: Any, reason: str) -> CrawlOutcome:
        from crawler.runner import CrawlOutcome
        from pipelines.runstats import run_summary
        from pipelines.store import json_safe, run_status

        self._wait_for_workers_to_leave()
        finished_at = _now()
        stats = self.collect(reason, finished_at)
        final = json_safe(stats)
        final["summary"] = run_summary(final, finished_at)
        final["summary"]["workers"] = {
            name: {k: share[k] for k in ("requests", "pages_fetched", "articles_stored")}
            for name, share in final["distributed"]["workers"].items()
        }
        status = run_status(str(final["finish_reason"]), int(final.get("store/errors") or 0))
        repo.finish_run(self.plan.run_id, status, final, finished_at)
        return CrawlOutcome(stats=final, seconds=time.monotonic() - self.started)

    def abort(self, repo: Any, exc: BaseException) -> None:
        """The seeder itself failed: record the run as ended, with what the workers reported."""
        from pipelines.store import json_safe

        reason = "shutdown" if isinstance(exc, KeyboardInterrupt) else "seeder_error"
        with contextlib.suppress(Exception):
            self.server.set(self.keys.stop, reason, ex=self.key_ttl)
        finished_at = _now()
        try:
            stats: dict[str, Any] = self.collect(reason, finished_at)
        except Exception:  # noqa: BLE001 - Redis may be what failed
            stats = {"finish_reason": reason, "store/run_id": self.plan.run_id}
        stats["seeder_error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        status = "interrupted" if reason == "shutdown" else "failed"
        with contextlib.suppress(Exception):
            repo.finish_run(self.plan.run_id, status, json_safe(stats), finished_at)


def worker_share(counts: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """What one worker did, from its own counters and values."""

    def count(name: str) -> int:
        return int(counts.get(name) or 0)

    stored = sum(count(f"store/articles_{n}") for n in ("new", "updated", "unchanged"))
    return {
        "requests": count("downloader/request_count"),
        "pages_fetched": count("response_received_count"),
        "articles_new": count("store/articles_new"),
        "articles_updated": count("store/articles_updated"),
        "articles_unchanged": count("store/articles_unchanged"),
        "articles_stored": stored,
        "requeued": count("frontier/requeued"),
        "finish_reason": values.get("finish_reason"),
    }


# --- the worker -----------------------------------------------------------------------------------


def wait_for_crawl(
    server: Redis,
    prefix: str,
    *,
    timeout: float | None,
    poll: float,
    announce: Callable[[], None] | None = None,
) -> CrawlPlan | None:
    """The plan of a crawl a worker can join: the current one unless it is ending; waits for
    one up to ``timeout`` seconds (None: for ever). None when none came."""
    deadline = None if timeout is None else time.monotonic() + timeout
    announced = False
    while True:
        plan = read_plan(server, prefix)
        if plan is not None:
            keys = CrawlKeys(prefix, plan.crawl_id)
            if not server.exists(keys.done) and not server.exists(keys.stop):
                return plan
        if deadline is not None and time.monotonic() >= deadline:
            return None
        if not announced and announce is not None:
            announced = True
            announce()
        time.sleep(poll)


def check_worker_database(db: str, plan: CrawlPlan) -> None:
    """The worker's database must hold the crawl's run, still running: same database as the
    seeder's (a worker writing elsewhere would split the crawl)."""
    from storage.db import StorageError, make_engine
    from storage.repository import Repository

    try:
        engine = make_engine(db)
        try:
            run = Repository(engine).find_run(
                host=plan.seeder_host,
                pid=plan.seeder_pid,
                started_after=datetime.fromisoformat(plan.started_at) - timedelta(seconds=1),
            )
        finally:
            engine.dispose()
    except StorageError as exc:
        raise DistributedError(str(exc)) from None
    if run is None or run.id != plan.run_id or run.status != "running":
        raise DistributedError(
            f"the database given to this worker has no running run {plan.run_id} of crawl "
            f"{plan.crawl_id} (its seeder uses {plan.database}): the seeder and every worker "
            "must use the same database"
        )


def worker_settings(
    overrides: Mapping[str, Any], plan: CrawlPlan, *, redis_url: str, db: str, name: str
) -> dict[str, Any]:
    """The Scrapy settings of a worker of ``plan``'s crawl: the user's, then the crawl's."""
    keys = CrawlKeys(overrides.get("TIANJIN_REDIS_PREFIX") or DEFAULT_PREFIX, plan.crawl_id)
    return {
        **overrides,
        **plan.settings,
        **frontier_settings(redis_url, keys),
        "TIANJIN_UPDATES_DB": db,
        "TIANJIN_RUN_ID": plan.run_id,
        "TIANJIN_WORKER_NAME": name,
    }


def worker_summary_lines(name: str, plan: CrawlPlan, outcome: CrawlOutcome) -> list[str]:
    """What this worker did in the crawl, for its standard output."""
    share = worker_share(outcome.stats, outcome.stats)
    reason = outcome.finish_reason
    how = "done" if reason == "finished" else f"stopped ({reason})"
    lines = [
        (
            f"Worker {name} {how} after {outcome.seconds:.1f} s in crawl {plan.crawl_id} "
            f"(run {plan.run_id})"
        ),
        f"  requests: {share['requests']}, pages fetched: {share['pages_fetched']}",
        (
            f"  articles stored: {share['articles_stored']} ({share['articles_new']} new, "
            f"{share['articles_updated']} updated, {share['articles_unchanged']} unchanged)"
        ),
    ]
    if outcome.error and reason not in ("finished", "shutdown"):
        lines.append(f"  error: {outcome.error}")
    return lines
