"""The benchmark: crawls, bare Scrapy, extraction, storage and re-crawls of an N-article replica.

Rules:

* one fast server per N (``bench.server``, its own process) serves the same pre-rendered pages
  to every contender; its throughput alone is measured and reported, and so is its CPU share
  during each crawl (well under one core means it was not what the crawl waited for);
* every measured crawl is a child process (Twisted's reactor cannot restart), started by a
  small launcher (``bench/spawn.py``) so that the benchmark's own RSS is not inherited as a
  floor; its peak memory is the peak of the PSS summed over its process tree (the command and
  every helper process it forks), sampled every 0.1 s by the launcher, with the largest single
  process's peak RSS (``ru_maxrss``) beside it; its CPU seconds are the whole tree's, from
  ``os.wait4``;
* contenders of one section alternate within each repeat (the order rotates from one repeat to
  the next) and every figure is the median over the repeats; ratios are ratios of medians;
* crawl throughput is pages served (the server's log, robots.txt included) over Scrapy's
  ``elapsed_time_seconds`` (engine start to close, the same clock for every contender), so
  interpreter start-up and migrations are left out of pages/s but not out of CPU or RSS;
* a distributed crawl (K ``tianjin-updates worker`` processes and the seeding ``crawl
  --redis``, started together, each through the launcher) is timed by its run's own
  ``elapsed_time_seconds`` (the seeder's clock: run started to run finished, the end-of-crawl
  wait and the workers' leaving included); its CPU is every process's, its peak memory the
  largest worker's (each worker's process tree on its own).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import gc
import json
import os
import platform
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import report
from bench.server import build_site, crawl_paths

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SEED = 20200525
#: The pipeline's batch (TIANJIN_BATCH_SIZE) and the sample size of the extraction benchmark.
BATCH = 50
EXTRACT_SAMPLE = 2000
CRAWL_TIMEOUT = 1800.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- child processes --------------------------------------------------------------------------


@dataclasses.dataclass
class ChildRun:
    code: int
    wall_s: float
    #: CPU seconds of the whole process tree (``os.wait4``, orphans included).
    cpu_s: float
    #: The largest single process's peak RSS (``ru_maxrss``).
    maxrss_mb: float
    stdout: str
    stderr: str
    #: Peaks, over the launcher's samples, of the PSS and of the RSS summed over the tree.
    peak_pss_mb: float = 0.0
    peak_rss_sum_mb: float = 0.0
    #: The peak of the anonymous part of the PSS summed over the tree (the heaps).
    peak_pss_anon_mb: float = 0.0
    #: The most processes in the tree at one sample.
    processes: int = 0
    #: Processes of the tree whose PSS could not be read (their RSS stood in).
    pss_unreadable: int = 0
    #: Descendants that outlived the command, and of those, the ones the launcher had to kill.
    orphans: int = 0
    orphans_killed: int = 0


#: What the launchers reported that the results must say (PSS unreadable, orphans killed).
MEMORY_NOTES: set[str] = set()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The database and Redis of every child come from its command line: a TIANJIN_REDIS_URL in
    # the caller's shell would otherwise turn each `crawl` into a distributed one.
    env.pop("TIANJIN_UPDATES_DB", None)
    env.pop("TIANJIN_REDIS_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


class Child:
    """One command started through ``bench/spawn.py`` (its own process group, so that stopping
    it stops the command too); ``result()`` once it has ended."""

    def __init__(self, cmd: Sequence[str], cwd: Path) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self._files = Path(self._tmp.name)
        launcher = [
            sys.executable,
            "-S",
            str(REPO_ROOT / "bench" / "spawn.py"),
            str(self._files / "usage.json"),
        ]
        self.ended: float | None = None
        with (
            open(self._files / "stdout", "w", encoding="utf-8") as out,
            open(self._files / "stderr", "w", encoding="utf-8") as err,
        ):
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                [*launcher, *cmd],
                cwd=str(cwd),
                env=_child_env(),
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status; ``subprocess.TimeoutExpired`` when it runs past ``timeout``."""
        code = self.proc.wait(timeout=timeout)
        if self.ended is None:
            self.ended = time.monotonic()
        return code

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to its process group; SIGKILL to whatever of it is left after ``grace``
        seconds (the launcher dies at once, the command it started may take a while)."""
        if self.proc.poll() is not None:
            return
        group = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + grace
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace)
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self.proc.wait()

    def result(self) -> ChildRun:
        code = self.wait()
        usage_file = self._files / "usage.json"
        usage = json.loads(usage_file.read_text()) if usage_file.exists() else {}
        run = ChildRun(
            code=code,
            wall_s=(self.ended or time.monotonic()) - self.started,
            cpu_s=float(usage.get("cpu_s", 0.0)),
            maxrss_mb=float(usage.get("maxrss_kb", 0)) / 1024,  # KiB on Linux
            stdout=(self._files / "stdout").read_text(encoding="utf-8", errors="replace"),
            stderr=(self._files / "stderr").read_text(encoding="utf-8", errors="replace"),
            peak_pss_mb=float(usage.get("peak_pss_kb", 0)) / 1024,
            peak_rss_sum_mb=float(usage.get("peak_rss_sum_kb", 0)) / 1024,
            peak_pss_anon_mb=float(usage.get("peak_pss_anon_kb", 0)) / 1024,
            processes=int(usage.get("peak_processes", 0)),
            pss_unreadable=int(usage.get("pss_unreadable", 0)),
            orphans=int(usage.get("orphans", 0)),
            orphans_killed=int(usage.get("orphans_killed", 0)),
        )
        self._tmp.cleanup()
        if run.pss_unreadable:
            MEMORY_NOTES.add(
                "smaps_rollup was unreadable for some processes: their RSS stands in for their "
                "PSS in the peak memory figures"
            )
        if run.orphans_killed:
            MEMORY_NOTES.add(
                "some helper processes outlived their crawl by 10 s and were killed by the "
                "launcher (their CPU and memory up to then are counted)"
            )
            log(f"{run.orphans_killed} process(es) outlived their command and were killed")
        return run


def run_child(cmd: Sequence[str], cwd: Path, timeout: float = CRAWL_TIMEOUT) -> ChildRun:
    """Run ``cmd`` to the end; the CPU seconds and peak memory of its process tree.

    Through ``bench/spawn.py``: Linux carries a process's peak RSS over ``exec``, so a command
    forked from this (large) process directly would report this process's RSS as its floor;
    and the launcher, not the measured command, samples the tree's memory.
    """
    child = Child(cmd, cwd)
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.stop(grace=0)
    return child.result()


def run_children(
    cmds: Sequence[Sequence[str]], cwd: Path, timeout: float = CRAWL_TIMEOUT
) -> list[ChildRun]:
    """Run several commands at once (started in the order given), each through
    ``bench/spawn.py`` as ``run_child`` does: every one's own CPU seconds and peak memory, and its
    wall seconds from its own start to its own exit (a thread per child waits for it, so the
    end is not rounded to a polling interval). When one exits with a non-zero status, or the
    timeout passes, the others are stopped: nothing is left waiting for a crawl that failed."""
    children: list[Child] = []
    threads: list[threading.Thread] = []
    ended: queue.SimpleQueue[int] = queue.SimpleQueue()

    def watch(index: int, child: Child) -> None:
        child.wait()
        ended.put(index)

    try:
        for cmd in cmds:
            children.append(Child(cmd, cwd))
        for i, child in enumerate(children):
            threads.append(threading.Thread(target=watch, args=(i, child), daemon=True))
            threads[-1].start()
        deadline = time.monotonic() + timeout
        for _ in children:
            try:
                index = ended.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if children[index].proc.returncode != 0:
                break
    finally:
        for child in children:
            child.stop()
    for thread in threads:
        thread.join()
    return [child.result() for child in children]


def cli_path() -> str:
    here = Path(sys.executable).with_name("tianjin-updates")
    found = str(here) if here.exists() else shutil.which("tianjin-updates")
    if not found:
        raise SystemExit(
            "bench: the tianjin-updates console script is not installed: pip install -e ."
        )
    return found


# --- the server -------------------------------------------------------------------------------


class Server:
    """``bench.server`` in a child process, with its request log and CPU clock."""

    def __init__(self, articles: int, seed: int) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.server",
                "--articles",
                str(articles),
                "--seed",
                str(seed),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(REPO_ROOT),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise SystemExit("bench: the benchmark server did not start")
        self.info: dict[str, Any] = json.loads(line)
        self.port = int(self.info["port"])
        self.base_url = f"http://127.0.0.1:{self.port}/"
        self.hosts = "127.0.0.1,localhost"
        self._tick = os.sysconf("SC_CLK_TCK")

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as r:
            return json.loads(r.read())

    def mark(self) -> int:
        return int(self._get("/__bench__/log?since=0&paths=0")["total"])

    def requests_since(self, mark: int) -> dict[str, Any]:
        return self._get(f"/__bench__/log?since={mark}")  # type: ignore[no-any-return]

    def cpu(self) -> float:
        """CPU seconds the server process has used (read from /proc: no request, no noise)."""
        with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def speed_settings(server: Server) -> list[str]:
    """-s options of a full-speed crawl of the bench server, the same for every crawler."""
    from crawler.profiles import FULL_SPEED

    values = {**FULL_SPEED, "TIANJIN_HOSTS": server.hosts}
    return [arg for name, value in values.items() for arg in ("-s", f"{name}={value}")]


def measure_server(server: Server, paths: list[str], work: Path, seconds: float) -> dict[str, Any]:
    """The server alone under a 32-connection keep-alive client (a separate process)."""
    listed = work / "server-paths.txt"
    listed.write_text("\n".join(p for p in paths if p != "/robots.txt") + "\n", encoding="utf-8")
    mark = server.mark()
    cpu0 = server.cpu()
    run = run_child(
        [
            sys.executable,
            "-m",
            "bench.load",
            "--port",
            str(server.port),
            "--paths",
            str(listed),
            "--connections",
            "32",
            "--seconds",
            str(seconds),
        ],
        cwd=work,
    )
    cpu = server.cpu() - cpu0
    if run.code != 0:
        raise SystemExit(f"bench: the load client failed:\n{run.stderr}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    served = server.requests_since(mark)
    return {
        "pages_per_s": result["pages_per_s"],
        "requests": result["requests"],
        "seconds": result["seconds"],
        "server_cpu_share": cpu / result["seconds"],
        "misses": served["misses"],
        "render_s": server.info["render_s"],
        "pages_rendered": server.info["pages"],
    }


# --- crawls -----------------------------------------------------------------------------------


def _run_stats(db_url: str) -> dict[str, Any]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sa.text(
                    "SELECT stats, started_at, finished_at FROM crawl_runs ORDER BY id DESC LIMIT 1"
                )
            ).one()
    finally:
        engine.dispose()
    stats = row.stats if isinstance(row.stats, dict) else json.loads(row.stats)
    return dict(stats)


def _crawl_figures(
    run: ChildRun, served: dict[str, Any], elapsed: float, articles: int, server_cpu: float
) -> dict[str, Any]:
    pages = int(served["count"])
    return {
        "pages": pages,
        "articles": articles,
        "elapsed_s": elapsed,
        "wall_s": run.wall_s,
        "cpu_s": run.cpu_s,
        "peak_pss_mb": run.peak_pss_mb,
        "peak_rss_sum_mb": run.peak_rss_sum_mb,
        "peak_pss_anon_mb": run.peak_pss_anon_mb,
        "max_rss_mb": run.maxrss_mb,
        "processes": run.processes,
        "pages_per_s": pages / elapsed,
        "articles_per_s": articles / elapsed,
        "cpu_ms_per_page": 1000 * run.cpu_s / pages,
        "server_cpu_share": server_cpu / elapsed,
        "statuses": served["statuses"],
        "server_misses": served["misses"],
    }


def crawl_e2e(
    server: Server, db_url: str, work: Path, extra: Sequence[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """``tianjin-updates crawl`` of the bench server into ``db_url`` (``extra``: more options):
    figures, paths served."""
    mark = server.mark()
    cpu0 = server.cpu()
    run = run_child(
        [
            cli_path(),
            "crawl",
            "--start-url",
            server.base_url,
            "--db",
            db_url,
            "--progress",
            "0",
            *speed_settings(server),
            *extra,
        ],
        cwd=work,
    )
    server_cpu = server.cpu() - cpu0
    if run.code != 0:
        raise SystemExit(
            f"bench: the crawl into {db_url} failed ({run.code}):\n{run.stdout}\n{run.stderr}"
        )
    served = server.requests_since(mark)
    stats = _run_stats(db_url)
    elapsed = float(stats.get("elapsed_time_seconds") or run.wall_s)
    articles = sum(
        int(stats.get(f"store/articles_{k}", 0)) for k in ("new", "updated", "unchanged")
    )
    figures = _crawl_figures(run, served, elapsed, articles, server_cpu)
    figures["listing_mode"] = stats.get("incremental/mode")
    return figures, [path for _, path, _ in served["requests"]]


def crawl_bare(server: Server, urls: list[str], work: Path) -> dict[str, Any]:
    listed = work / "bare-urls.txt"
    listed.write_text("\n".join(urls) + "\n", encoding="utf-8")
    mark = server.mark()
    cpu0 = server.cpu()
    run = run_child(
        [sys.executable, "-m", "bench.bare", "--urls", str(listed), *speed_settings(server)],
        cwd=work,
    )
    server_cpu = server.cpu() - cpu0
    if run.code != 0:
        raise SystemExit(f"bench: the bare Scrapy crawl failed ({run.code}):\n{run.stderr}")
    stats = json.loads(run.stdout.strip().splitlines()[-1])
    served = server.requests_since(mark)
    articles = sum(1 for u in urls if _is_first_article_page(u))
    return _crawl_figures(run, served, float(stats["elapsed_s"]), articles, server_cpu)


def _is_first_article_page(url: str) -> bool:
    from crawler.urls import parse_article_url

    ref = parse_article_url(url)
    return ref is not None and ref.page == 1


@contextmanager
def pg_schema(base_url: str) -> Iterator[str]:
    """A URL whose connections use a new, empty schema, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = sa.engine.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def pg_base_url(url: str | None) -> str | None:
    if not url:
        return None
    parsed = sa.engine.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    rendered = parsed.render_as_string(hide_password=False)
    engine = sa.create_engine(rendered, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        raise SystemExit(
            f"bench: PostgreSQL at {url} is unreachable: {str(exc).splitlines()[0]}"
        ) from None
    finally:
        engine.dispose()
    return rendered


# --- distributed workers ----------------------------------------------------------------------

#: Settings of a distributed crawl beyond ``speed_settings``: the end of the crawl is found by
#: waiting (the queue empty with nothing in flight for the idle timeout, a worker's last partial
#: batch written after the flush interval), and the defaults (5 s, 0.5 s polls, 5 s) would add
#: up to ten seconds to every crawl. These are the project's tests' values.
FRONTIER_SETTINGS: dict[str, Any] = {
    "TIANJIN_FRONTIER_IDLE_TIMEOUT": 1,
    "TIANJIN_FRONTIER_POLL_INTERVAL": 0.2,
    "TIANJIN_FLUSH_SECONDS": 1,
}
#: How long a worker waits for its crawl to be seeded before giving up (exit 1).
WORKER_WAIT = "120s"


def redis_base_url(url: str | None) -> str | None:
    """``url`` when that Redis answers; None when no URL was given; exits when it is down."""
    if not url:
        return None
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise SystemExit(f"bench: Redis at {url} is unreachable: {exc}") from None
    finally:
        client.close()
    return url


def delete_redis_keys(url: str, prefix: str) -> int:
    """Delete every key under ``prefix``; how many there were."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.unlink(*keys[i : i + 500])
        return len(keys)
    finally:
        client.close()


def _distributed_record(db_url: str) -> tuple[str, dict[str, Any], int]:
    """The status and statistics of the database's last run, and its number of articles."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sa.text("SELECT status, stats FROM crawl_runs ORDER BY id DESC LIMIT 1")
            ).one()
            stored = connection.execute(sa.text("SELECT count(*) FROM articles")).scalar_one()
    finally:
        engine.dispose()
    stats = row.stats if isinstance(row.stats, dict) else json.loads(row.stats)
    return str(row.status), dict(stats), int(stored)


def _outputs(runs: Sequence[ChildRun], names: Sequence[str]) -> str:
    return "\n".join(
        f"--- {name}: exit {run.code}\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
        for name, run in zip(names, runs, strict=True)
    )


def crawl_workers(
    server: Server, pg: str, redis_url: str, workers: int, expected: int, work: Path
) -> dict[str, Any]:
    """One distributed crawl of the bench server: ``workers`` `tianjin-updates worker`
    processes and one seeding ``tianjin-updates crawl --redis``, started together, into a fresh
    PostgreSQL schema under a key prefix of its own in Redis (its keys deleted after). Fails
    unless every process exits 0, the run succeeded with ``workers`` workers, and it stored
    ``expected`` articles."""
    prefix = f"bench-{uuid.uuid4().hex[:12]}"
    options = [
        *speed_settings(server),
        *(arg for name, value in FRONTIER_SETTINGS.items() for arg in ("-s", f"{name}={value}")),
        "-s",
        f"TIANJIN_REDIS_PREFIX={prefix}",
    ]
    with pg_schema(pg) as db:
        worker = [cli_path(), "worker", "--redis", redis_url, "--db", db]
        worker += ["--wait", WORKER_WAIT, "--progress", "0", *options]
        seeder = [cli_path(), "crawl", "--redis", redis_url, "--db", db]
        seeder += ["--start-url", server.base_url, "--progress", "0", *options]
        mark = server.mark()
        cpu0 = server.cpu()
        try:
            # The workers first: they wait for the crawl the seeder announces.
            runs = run_children([worker] * workers + [seeder], cwd=work)
        finally:
            left = delete_redis_keys(redis_url, prefix)
        server_cpu = server.cpu() - cpu0
        names = [f"worker {i + 1}" for i in range(workers)] + ["seeder"]
        if any(run.code != 0 for run in runs):
            raise SystemExit(
                f"bench: the distributed crawl with {workers} workers failed:\n"
                + _outputs(runs, names)
            )
        served = server.requests_since(mark)
        status, stats, in_table = _distributed_record(db)
    stored = sum(int(stats.get(f"store/articles_{k}", 0)) for k in ("new", "updated", "unchanged"))
    shares = {
        name: int(share.get("pages_fetched") or 0)
        for name, share in (stats.get("distributed") or {}).get("workers", {}).items()
    }
    # A worker exits 0 only after it joined the crawl and saw it done; one that joined when
    # nothing was left to take has no counts in the run record (its share is 0).
    if (
        status != "succeeded"
        or stored != expected
        or in_table != expected
        or not 0 < len(shares) <= workers
    ):
        raise SystemExit(
            f"bench: the distributed crawl with {workers} workers went wrong: run {status}, "
            f"{stored} articles stored and {in_table} in the table (expected {expected}), "
            f"{len(shares)} workers in the run record:\n" + _outputs(runs, names)
        )
    pages = int(served["count"])
    elapsed = float(stats["elapsed_time_seconds"])
    fetched = [p for _, p, _ in served["requests"] if p != "/robots.txt"]
    seeder_run, worker_runs = runs[-1], runs[:-1]
    cpu = sum(run.cpu_s for run in runs)
    fetched_total = sum(shares.values()) or 1
    page_shares = sorted((n / fetched_total for n in shares.values()), reverse=True)
    page_shares += [0.0] * (workers - len(page_shares))
    return {
        "workers": workers,
        "pages": pages,
        "articles": stored,
        "elapsed_s": elapsed,
        "wall_s": seeder_run.wall_s,
        "pages_per_s": pages / elapsed,
        "articles_per_s": stored / elapsed,
        "wall_pages_per_s": pages / seeder_run.wall_s,
        "cpu_s": cpu,
        "worker_cpu_s": sum(run.cpu_s for run in worker_runs),
        "seeder_cpu_s": seeder_run.cpu_s,
        "cpu_ms_per_page": 1000 * cpu / pages,
        "peak_pss_mb": max(run.peak_pss_mb for run in worker_runs),
        "peak_rss_sum_mb": max(run.peak_rss_sum_mb for run in worker_runs),
        "peak_pss_anon_mb": max(run.peak_pss_anon_mb for run in worker_runs),
        "max_rss_mb": max(run.maxrss_mb for run in worker_runs),
        "processes": max(run.processes for run in worker_runs),
        "seeder_peak_pss_mb": seeder_run.peak_pss_mb,
        "seeder_max_rss_mb": seeder_run.maxrss_mb,
        "server_cpu_share": server_cpu / elapsed,
        "max_page_share": page_shares[0],
        "min_page_share": page_shares[-1],
        "page_shares": page_shares,
        "idle_workers": sum(1 for share in page_shares if share == 0),
        "refetched": len(fetched) - len(set(fetched)),
        "redis_keys_left": left,
        "statuses": served["statuses"],
        "server_misses": served["misses"],
    }


def workers_section(
    by_workers: dict[str, dict[str, Any]], single: dict[str, Any] | None
) -> dict[str, Any]:
    """The medians of each worker count, with their ratios: pages/s against one worker's, and
    against the one-process crawl into PostgreSQL of the same size (when it ran)."""
    one = by_workers.get("1")
    for figures in by_workers.values():
        figures["vs_one_worker"] = figures["pages_per_s"] / one["pages_per_s"] if one else None
        figures["vs_single_process"] = (
            figures["pages_per_s"] / single["pages_per_s"] if single else None
        )
    return {
        "settings": dict(FRONTIER_SETTINGS),
        "by_workers": dict(sorted(by_workers.items(), key=lambda item: int(item[0]))),
    }


def _median_workers(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = _median_figures(runs)
    out["page_shares"] = [
        statistics.median(shares) for shares in zip(*(r["page_shares"] for r in runs), strict=True)
    ]
    return out


# --- extraction -------------------------------------------------------------------------------


def saved_pages(site: Any, paths: list[str], base: str, limit: int) -> list[tuple[str, str, str]]:
    """``(kind, url, html)`` of the crawl's HTML pages (an evenly spaced sample of ``limit``)."""
    from crawler.urls import parse_article_url, parse_listing_url

    html_paths = [p for p in paths if p not in ("/robots.txt", "/")]
    if len(html_paths) > limit:
        step = len(html_paths) / limit
        html_paths = [html_paths[int(i * step)] for i in range(limit)]
    pages = []
    for path in html_paths:
        url = base.rstrip("/") + path
        kind = (
            "article" if parse_article_url(url) else "listing" if parse_listing_url(url) else None
        )
        if kind is None:
            continue
        response = site.respond(base.split("/")[2], path, {})
        pages.append((kind, url, response.body.decode("utf-8")))
    return pages


def _timed(fn: Callable[[], None]) -> float:
    gc.collect()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_extraction(pages: list[tuple[str, str, str]], repeat: int) -> dict[str, Any]:
    """``extract_article``/``extract_listing`` (as the spider calls them) against plain lxml
    parses of the same ``str`` pages, alternating; seconds per page, medians."""
    import lxml.html
    from lxml import etree

    from crawler.extract import extract_article, extract_listing

    def project() -> None:
        for kind, url, html in pages:
            (extract_article if kind == "article" else extract_listing)(html, url)

    def plain() -> None:
        for _, _, html in pages:
            lxml.html.fromstring(html)

    def project_parser() -> None:
        # The parse extract.py does before its walk (comments and PIs dropped, plain elements).
        for _, _, html in pages:
            etree.fromstring(
                html, etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True)
            )

    contenders = {
        "extract": project,
        "lxml_html_fromstring": plain,
        "etree_html_parser": project_parser,
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for rep in range(repeat):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(_timed(contenders[name]))
    n = len(pages)
    result: dict[str, Any] = {
        "pages": n,
        "article_pages": sum(1 for kind, _, _ in pages if kind == "article"),
        "mean_page_bytes": statistics.mean(len(h.encode()) for _, _, h in pages),
    }
    for name, values in times.items():
        result[name] = {
            "ms_per_page": 1000 * statistics.median(values) / n,
            "pages_per_s": n / statistics.median(values),
            "runs_s": values,
        }
    return result


# --- storage ----------------------------------------------------------------------------------


def article_records(site: Any, base: str) -> list[Any]:
    """What the pipeline would store for every article of ``site`` (from the replica's truth)."""
    from storage.repository import ArticleRecord, ImageRecord

    records = []
    for expected in site.expected().values():
        records.append(
            ArticleRecord(
                article_key=expected.key,
                url=base.rstrip("/") + expected.path,
                title=expected.title,
                source=expected.source,
                published_on=expected.published_on,
                body=expected.body,
                page_count=expected.page_count,
                complete=expected.complete,
                images=[
                    ImageRecord(position=pos, url=base.rstrip("/") + src, caption=caption)
                    for pos, src, caption in expected.images
                ],
                etag=f'"{expected.key:0>32}"',
                last_modified="Wed, 27 Aug 2025 09:31:00 GMT",
            )
        )
    return records


def _batches(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _plain_table(metadata: sa.MetaData) -> sa.Table:
    """The content columns of ``articles``, with its unique key, and nothing else."""
    return sa.Table(
        "bench_articles",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("article_key", sa.String(32), unique=True, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("published_on", sa.Date, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("page_count", sa.Integer, nullable=False),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
    )


def _fresh_repository(url: str) -> tuple[Any, Any, int]:
    """An engine on a freshly migrated database, its repository (similarity index built) and
    the id of a crawl run, as a crawl has them before its first batch."""
    from storage.db import make_engine, upgrade
    from storage.repository import Repository

    engine = make_engine(url)
    upgrade(engine)
    repository = Repository(engine)
    repository.ensure_similarity_index()
    run_id = repository.start_run("manual", dt.datetime.now(dt.UTC))
    return engine, repository, run_id


def _upsert(url: str, records: list[Any]) -> dict[str, float]:
    """The pipeline's save path, per batch of 50: ``sign`` (timed on its own) then
    ``save_articles`` of the signed records (the upsert figure)."""
    engine, repository, run_id = _fresh_repository(url)
    try:
        fresh = [dataclasses.replace(r, signature=None) for r in records]
        repository.hasher  # noqa: B018 - set up once per process, outside the timing
        now = dt.datetime.now(dt.UTC)

        def sign() -> None:
            for batch in _batches(fresh):
                repository.sign(batch)

        def save() -> None:
            for batch in _batches(fresh):
                repository.save_articles(batch, now, run_id)

        sign_s = _timed(sign)
        return {"seconds": _timed(save), "sign_s": sign_s}
    finally:
        engine.dispose()


@dataclasses.dataclass
class WrittenBatch:
    """Every row one ``save_articles`` call wrote, as it left them at its commit."""

    articles: list[dict[str, Any]]
    images: list[dict[str, Any]]
    versions: list[dict[str, Any]]
    bands: list[dict[str, Any]]
    remarks: list[dict[str, Any]]
    """Duplicate marks of articles of earlier batches that this batch changed."""
    counter: int
    """The change counter after the batch."""


def _referenced_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` of ``articles`` ordered so that a row marked a (near-)duplicate of another row
    of the list comes after it (the foreign keys are checked row by row)."""
    keys = {row["article_key"] for row in rows}
    placed: set[str] = set()
    ordered: list[dict[str, Any]] = []
    pending = list(rows)
    while pending:
        left = []
        for row in pending:
            refs = {row["duplicate_of"], row["near_duplicate_of"]} & keys
            if refs <= placed:
                ordered.append(row)
                placed.add(row["article_key"])
            else:
                left.append(row)
        if len(left) == len(pending):  # a cycle, which the marks never make: keep the order
            ordered += left
            break
        pending = left
    return ordered


def written_rows(records: list[Any], work: Path) -> list[WrittenBatch]:
    """The rows ``save_articles`` writes for ``records`` in batches of 50 into a fresh
    database, read back after each batch (for the raw baseline; nothing here is timed)."""
    from storage.repository import (
        article_images,
        article_lsh_bands,
        article_versions,
        articles,
        change_counter,
    )

    path = work / f"written-{uuid.uuid4().hex[:8]}.sqlite3"
    engine, repository, run_id = _fresh_repository(f"sqlite:///{path}")
    out: list[WrittenBatch] = []
    try:
        now = dt.datetime.now(dt.UTC)
        last_image = last_version = 0
        for batch in _batches([dataclasses.replace(r, signature=None) for r in records]):
            result = repository.save_articles(batch, now, run_id)
            keys = [r.article_key for r in batch]
            with engine.connect() as connection:

                def read(statement: Any) -> list[dict[str, Any]]:
                    return [dict(row._mapping) for row in connection.execute(statement)]

                rows = read(sa.select(articles).where(articles.c.article_key.in_(keys)))
                ids = [row["id"] for row in rows]
                images = read(
                    sa.select(article_images)
                    .where(article_images.c.id > last_image)
                    .order_by(article_images.c.id)
                )
                versions = read(
                    sa.select(article_versions)
                    .where(article_versions.c.id > last_version)
                    .order_by(article_versions.c.id)
                )
                bands = read(
                    sa.select(article_lsh_bands)
                    .where(article_lsh_bands.c.article_id.in_(ids))
                    .order_by(article_lsh_bands.c.article_id, article_lsh_bands.c.band)
                )
                remarks = read(
                    sa.select(
                        articles.c.id.label("b_id"),
                        articles.c.duplicate_of.label("b_dup"),
                        articles.c.near_duplicate_of.label("b_near"),
                        articles.c.near_duplicate_similarity.label("b_sim"),
                        articles.c.change_seq.label("b_seq"),
                    ).where(articles.c.article_key.in_(result.remarked))
                )
                counter = connection.execute(sa.select(change_counter.c.value)).scalar_one()
            last_image = max([last_image, *(row["id"] for row in images)])
            last_version = max([last_version, *(row["id"] for row in versions)])
            written = WrittenBatch(
                _referenced_first(sorted(rows, key=lambda row: row["id"])),
                images,
                versions,
                bands,
                remarks,
                counter,
            )
            out.append(written)
    finally:
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return out


def _raw(url: str, written: list[WrittenBatch]) -> dict[str, float]:
    """The same rows as the upsert, written by plain Core: per batch one transaction and one
    ``connection.execute(table.insert(), rows)`` per table (and the counter's UPDATE)."""
    from storage.repository import (
        article_images,
        article_lsh_bands,
        article_versions,
        articles,
        change_counter,
    )

    engine, _, _ = _fresh_repository(url)
    try:
        remark = (
            sa.update(articles)
            .where(articles.c.id == sa.bindparam("b_id"))
            .values(
                duplicate_of=sa.bindparam("b_dup"),
                near_duplicate_of=sa.bindparam("b_near"),
                near_duplicate_similarity=sa.bindparam("b_sim"),
                change_seq=sa.bindparam("b_seq"),
            )
        )
        bump = (
            sa.update(change_counter)
            .where(change_counter.c.id == 1)
            .values(value=sa.bindparam("b_value"))
        )

        def insert() -> None:
            for batch in written:
                with engine.begin() as connection:
                    connection.execute(articles.insert(), batch.articles)
                    if batch.images:
                        connection.execute(article_images.insert(), batch.images)
                    connection.execute(article_versions.insert(), batch.versions)
                    connection.execute(article_lsh_bands.insert(), batch.bands)
                    if batch.remarks:
                        connection.execute(remark, batch.remarks)
                    connection.execute(bump, {"b_value": batch.counter})

        return {"seconds": _timed(insert)}
    finally:
        engine.dispose()


def _raw_articles(url: str, records: list[Any]) -> dict[str, float]:
    """A Core executemany INSERT of the articles' content rows only, into a plain table with
    the unique key, one transaction per 50 (the earlier, narrower baseline)."""
    from storage.db import make_engine

    engine = make_engine(url)
    try:
        metadata = sa.MetaData()
        table = _plain_table(metadata)
        metadata.create_all(engine)
        now = dt.datetime.now(dt.UTC)
        rows = [
            {
                "article_key": r.article_key,
                "url": r.url,
                "title": r.title,
                "source": r.source,
                "published_on": r.published_on,
                "body": r.body,
                "page_count": r.page_count,
                "complete": r.complete,
                "first_seen_at": now,
                "last_seen_at": now,
                "etag": r.etag,
                "last_modified": r.last_modified,
            }
            for r in records
        ]

        def insert() -> None:
            for batch in _batches(rows):
                with engine.begin() as connection:
                    connection.execute(table.insert(), list(batch))

        return {"seconds": _timed(insert)}
    finally:
        engine.dispose()


def bench_storage(records: list[Any], repeat: int, work: Path, pg: str | None) -> dict[str, Any]:
    """Batched upsert against raw Core executemany of the same rows (and of the article rows
    alone), on SQLite and (when given) PostgreSQL; a fresh database (SQLite file, PostgreSQL
    schema) for every run."""
    result: dict[str, Any] = {"articles": len(records), "batch": BATCH}
    written = written_rows(records, work)
    result["rows_per_batch"] = {
        "articles": statistics.mean(len(b.articles) for b in written),
        "images": statistics.mean(len(b.images) for b in written),
        "versions": statistics.mean(len(b.versions) for b in written),
        "lsh_bands": statistics.mean(len(b.bands) for b in written),
        "remarks": statistics.mean(len(b.remarks) for b in written),
    }
    contenders: dict[str, Callable[[str], dict[str, float]]] = {
        "upsert": lambda url: _upsert(url, records),
        "raw_same_rows": lambda url: _raw(url, written),
        "raw_article_rows": lambda url: _raw_articles(url, records),
    }
    backends = ["sqlite"] + (["postgresql"] if pg else [])
    for backend in backends:
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
        names = list(runs)
        for rep in range(repeat):
            k = rep % len(names)
            for name in names[k:] + names[:k]:
                if backend == "sqlite":
                    path = work / f"storage-{uuid.uuid4().hex[:8]}.sqlite3"
                    try:
                        runs[name].append(contenders[name](f"sqlite:///{path}"))
                    finally:
                        for suffix in ("", "-wal", "-shm"):
                            Path(f"{path}{suffix}").unlink(missing_ok=True)
                else:
                    assert pg is not None
                    with pg_schema(pg) as url:
                        runs[name].append(contenders[name](url))
        figures: dict[str, Any] = {}
        for name, values in runs.items():
            seconds = statistics.median(v["seconds"] for v in values)
            figures[name] = {
                "seconds": seconds,
                "articles_per_s": len(records) / seconds,
                "runs_s": [v["seconds"] for v in values],
            }
        figures["upsert"]["sign_s"] = statistics.median(v["sign_s"] for v in runs["upsert"])
        upsert = figures["upsert"]["articles_per_s"]
        figures["ratio"] = upsert / figures["raw_same_rows"]["articles_per_s"]
        figures["ratio_article_rows"] = upsert / figures["raw_article_rows"]["articles_per_s"]
        result[backend] = figures
    return result


# --- one size ---------------------------------------------------------------------------------


def _median_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [
        k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    out: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["runs"] = runs
    return out


def bench_size(
    n: int,
    repeat: int,
    seed: int,
    pg: str | None,
    work: Path,
    skip: set[str],
    server_seconds: float,
    redis_url: str | None = None,
    worker_counts: Sequence[int] = (),
) -> dict[str, Any]:
    result: dict[str, Any] = {"articles": n, "repeat": repeat}
    log(f"N={n}: rendering the site and starting the server")
    server = Server(n, seed)
    try:
        site = build_site(n, seed)
        paths = crawl_paths(site)
        result["server"] = measure_server(server, paths, work, server_seconds)
        log(f"N={n}: server alone {result['server']['pages_per_s']:.0f} pages/s")

        # sqlite_nohelper: the same crawl with TIANJIN_HELPER_PROCESS=False (one process), to
        # show what the helper process buys and costs.
        contenders = [
            c for c in ("sqlite", "postgresql", "bare", "sqlite_nohelper") if c not in skip
        ]
        if not pg and "postgresql" in contenders:
            contenders.remove("postgresql")
        # Distributed crawls (K workers and a seeder) alternate with the one-process crawls.
        if pg and redis_url:
            contenders += [f"workers:{k}" for k in worker_counts]
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
        recrawls: list[dict[str, Any]] = []
        crawled: list[str] | None = None
        # The bare spider fetches what the real crawl fetched: computed from the site (robots.txt
        # is fetched by Scrapy's middleware, the disallowed page is not fetched), checked below
        # against the server's log of a real crawl.
        computed = [p for p in paths if p != "/robots.txt" and site.allowed(p)]
        bare_urls = [server.base_url.rstrip("/") + p for p in computed]
        articles = sum(1 for u in bare_urls if _is_first_article_page(u))
        for rep in range(repeat if contenders else 0):
            k = rep % len(contenders)
            for name in contenders[k:] + contenders[:k]:
                log(f"N={n} repeat {rep + 1}/{repeat}: {name}")
                if name == "bare":
                    runs[name].append(crawl_bare(server, bare_urls, work))
                elif name.startswith("workers:"):
                    assert pg is not None and redis_url is not None
                    count = int(name.split(":")[1])
                    runs[name].append(crawl_workers(server, pg, redis_url, count, articles, work))
                elif name == "sqlite_nohelper":
                    db = work / f"crawl-{uuid.uuid4().hex[:8]}.sqlite3"
                    figures, _ = crawl_e2e(
                        server, f"sqlite:///{db}", work, ("-s", "TIANJIN_HELPER_PROCESS=False")
                    )
                    runs[name].append(figures)
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{db}{suffix}").unlink(missing_ok=True)
                elif name == "sqlite":
                    db = work / f"crawl-{uuid.uuid4().hex[:8]}.sqlite3"
                    url = f"sqlite:///{db}"
                    figures, served = crawl_e2e(server, url, work)
                    runs[name].append(figures)
                    crawled = crawled or served
                    if "recrawl" not in skip:
                        log(f"N={n} repeat {rep + 1}/{repeat}: re-crawl (sqlite)")
                        again, _ = crawl_e2e(server, url, work)
                        again["first_pages"] = figures["pages"]
                        again["first_elapsed_s"] = figures["elapsed_s"]
                        again["request_ratio"] = again["pages"] / figures["pages"]
                        again["seconds_ratio"] = again["elapsed_s"] / figures["elapsed_s"]
                        recrawls.append(again)
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{db}{suffix}").unlink(missing_ok=True)
                else:
                    assert pg is not None
                    with pg_schema(pg) as url:
                        figures, served = crawl_e2e(server, url, work)
                    runs[name].append(figures)
                    crawled = crawled or served
        for name, values in runs.items():
            if not name.startswith("workers:"):
                result[f"crawl_{name}"] = _median_figures(values)
        distributed = {
            name.split(":")[1]: _median_workers(values)
            for name, values in runs.items()
            if name.startswith("workers:")
        }
        if distributed:
            result["workers"] = workers_section(distributed, result.get("crawl_postgresql"))
        if recrawls:
            result["recrawl"] = _median_figures(recrawls)
        if crawled is not None:
            real = set(crawled) - {"/robots.txt"}
            result["same_pages"] = {
                "crawled": len(real),
                "bare_list": len(computed),
                "only_crawled": sorted(real - set(computed))[:10],
                "only_bare": sorted(set(computed) - real)[:10],
            }

        if "extraction" not in skip:
            log(f"N={n}: extraction")
            pages = saved_pages(site, paths, server.base_url, EXTRACT_SAMPLE)
            result["extraction"] = bench_extraction(pages, repeat=max(repeat, 3))
        if "storage" not in skip:
            log(f"N={n}: storage")
            records = article_records(site, server.base_url)
            result["storage"] = bench_storage(records, repeat, work, pg)
    finally:
        server.close()
    return result


def machine() -> dict[str, Any]:
    import scrapy

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "scrapy": scrapy.__version__,
        "sqlalchemy": sa.__version__,
    }


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark tianjin-updates against bare Scrapy, plain lxml and raw SQLAlchemy.",
    )
    parser.add_argument("--sizes", default="1000,10000", help="article counts, comma-separated")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs of each contender per size (default 3, and 2 for N >= 10,000)",
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("TIANJIN_TEST_PG_URL"),
        help="PostgreSQL URL (default $TIANJIN_TEST_PG_URL; none: PostgreSQL is skipped)",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("TIANJIN_TEST_REDIS_URL"),
        help="Redis URL for distributed crawls (default $TIANJIN_TEST_REDIS_URL; none: skipped)",
    )
    parser.add_argument(
        "--workers",
        default="1,2,3",
        help="worker counts of the distributed crawls, comma-separated (default 1,2,3)",
    )
    parser.add_argument(
        "--out", default=str(REPO_ROOT / "bench" / "results"), help="results directory"
    )
    parser.add_argument(
        "--docs", action="store_true", help="rewrite the figures of docs/benchmarks.md"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--skip",
        default="",
        help="sections to leave out: sqlite,postgresql,bare,recrawl,extraction,storage,workers",
    )
    parser.add_argument(
        "--server-seconds", type=float, default=3.0, help="length of the server-alone run"
    )
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    try:
        worker_counts = sorted({int(k) for k in args.workers.split(",") if k.strip()})
    except ValueError:
        parser.error(f"--workers: worker counts, comma-separated, not {args.workers!r}")
    if not worker_counts or worker_counts[0] < 1:
        parser.error("--workers: at least one worker count, each 1 or more")
    pg = pg_base_url(args.pg)
    redis_url = redis_base_url(args.redis) if "workers" not in skip else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    notes = []
    if pg is None:
        notes.append("PostgreSQL skipped: no --pg URL and TIANJIN_TEST_PG_URL unset")
        log(notes[-1])
    if "workers" not in skip:
        if redis_url is None:
            notes.append(
                "Distributed workers skipped: no --redis URL and TIANJIN_TEST_REDIS_URL unset"
            )
            log(notes[-1])
        elif pg is None:
            notes.append("Distributed workers skipped: they need PostgreSQL")
            log(notes[-1])
    started = time.monotonic()
    results: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "machine": machine(),
        "seed": args.seed,
        "postgresql": pg is not None,
        "redis": redis_url is not None,
        "workers": worker_counts if redis_url and pg and "workers" not in skip else [],
        "notes": notes,
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="tianjin-bench-") as tmp:
        for n in sizes:
            repeat = args.repeat or (2 if n >= 10_000 else 3)
            results["sizes"][str(n)] = bench_size(
                n,
                repeat,
                args.seed,
                pg,
                Path(tmp),
                skip,
                args.server_seconds,
                redis_url=redis_url,
                worker_counts=results["workers"],
            )
    results["seconds"] = time.monotonic() - started
    notes.extend(sorted(MEMORY_NOTES))
    results["targets"] = report.targets(results)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for name in (f"bench-{stamp}.json", "latest.json"):
        (out / name).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    markdown = report.markdown(results)
    (out / "latest.md").write_text(markdown, encoding="utf-8")
    plot = report.plot(results, out / "benchmarks.png")
    log(plot)
    if args.docs:
        report.update_docs(REPO_ROOT / "docs" / "benchmarks.md", markdown)
        if (out / "benchmarks.png").exists():
            shutil.copyfile(out / "benchmarks.png", REPO_ROOT / "docs" / "benchmarks.png")
        log("docs/benchmarks.md (and docs/benchmarks.png) rewritten")
    print(markdown)
    log(f"done in {results['seconds']:.0f} s; results in {out}")
    return 0
