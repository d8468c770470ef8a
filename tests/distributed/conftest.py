"""Fixtures for distributed crawls: real Redis, real PostgreSQL, a replica on loopback, and the
real ``tianjin-updates crawl --redis`` seeder and ``tianjin-updates worker`` processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from crawler.replica import ReplicaServer, ReplicaSite


def cli_path() -> str:
    """The installed ``tianjin-updates`` console script, next to this interpreter."""
    here = Path(sys.executable).with_name("tianjin-updates")
    assert here.exists(), "the tianjin-updates console script is not installed: pip install -e ."
    return str(here)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The database and Redis must come from the command line, not from the caller's shell.
    env.pop("TIANJIN_UPDATES_DB", None)
    env.pop("TIANJIN_REDIS_URL", None)
    return env


def fast_settings(server: ReplicaServer, prefix: str, **extra: Any) -> list[str]:
    """-s options for a full-speed distributed crawl of a loopback replica, under ``prefix``."""
    values: dict[str, Any] = {
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        "TIANJIN_RETRY_BACKOFF": 0,
        "TIANJIN_FLUSH_SECONDS": 1,
        "TIANJIN_HOSTS": ",".join(server.hosts),
        "TIANJIN_REDIS_PREFIX": prefix,
        "TIANJIN_FRONTIER_IDLE_TIMEOUT": 1,
        "TIANJIN_FRONTIER_POLL_INTERVAL": 0.2,
        **extra,
    }
    return [arg for name, value in values.items() for arg in ("-s", f"{name}={value}")]


@dataclass
class Cluster:
    """Worker and seeder processes of one test; every one still running is killed at the end."""

    redis_url: str
    db: str
    prefix: str
    server: ReplicaServer
    logs: Path
    settings: dict[str, Any] = field(default_factory=dict)
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    _count: int = 0

    def options(self) -> list[str]:
        return fast_settings(self.server, self.prefix, **self.settings)

    def _spawn(self, kind: str, args: list[str]) -> subprocess.Popen[str]:
        self._count += 1
        out = self.logs / f"{self._count:02d}-{kind}.out"
        err = self.logs / f"{self._count:02d}-{kind}.err"
        proc = subprocess.Popen(
            [cli_path(), *args],
            stdout=out.open("w"),
            stderr=err.open("w"),
            text=True,
            env=child_env(),
        )
        proc.out_path = out  # type: ignore[attr-defined]
        proc.err_path = err  # type: ignore[attr-defined]
        self.processes.append(proc)
        return proc

    def worker(self) -> subprocess.Popen[str]:
        """Start a worker (it waits for the crawl, joins, and exits when the crawl is done)."""
        return self._spawn(
            "worker",
            ["worker", "--redis", self.redis_url, "--db", self.db, "--wait", "120s",
             "--progress", "0", *self.options()],
        )  # fmt: skip

    def seeder(self, *extra: str) -> subprocess.Popen[str]:
        """Start ``crawl --redis`` (it seeds the crawl and waits until the workers are done)."""
        return self._spawn(
            "seeder",
            ["crawl", "--start-url", self.server.base_url, "--redis", self.redis_url,
             "--db", self.db, "--progress", "2", *self.options(), *extra],
        )  # fmt: skip

    def crawl(self, workers: int, timeout: float = 600) -> tuple[Result, list[Result]]:
        """One whole distributed crawl: ``workers`` workers, then the seeder; everyone's result."""
        started = [self.worker() for _ in range(workers)]
        seeder = self.seeder()
        seeded = finish(seeder, timeout)
        return seeded, [finish(w, 120) for w in started]

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr[-4000:]}"


def finish(proc: subprocess.Popen[str], timeout: float) -> Result:
    """Wait for ``proc`` (killed, and the test failed, if it takes longer); its output."""
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{proc.args[1]} did not finish within {timeout} s:\n{read_result(proc)}")
    return read_result(proc, code)


def read_result(proc: subprocess.Popen[str], code: int | None = None) -> Result:
    return Result(
        proc.returncode if code is None else code,
        Path(proc.out_path).read_text(),  # type: ignore[attr-defined]
        Path(proc.err_path).read_text(),  # type: ignore[attr-defined]
    )


@pytest.fixture
def cluster_for(
    pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[Callable[[ReplicaSite], Cluster]]:
    """Serve a replica and make a ``Cluster`` crawling it into a fresh PostgreSQL schema."""
    made: list[tuple[ReplicaServer, Cluster]] = []

    def make(site: ReplicaSite, **settings: Any) -> Cluster:
        server = ReplicaServer(site).start()
        logs = tmp_path / f"logs{len(made)}"
        logs.mkdir()
        cluster = Cluster(redis_url, pg_url, redis_prefix, server, logs, settings)
        made.append((server, cluster))
        code = subprocess.run(
            [cli_path(), "db", "upgrade", "--db", pg_url],
            check=False,
            env=child_env(),
            capture_output=True,
        ).returncode
        assert code == 0
        return cluster

    yield make
    for server, cluster in made:
        cluster.close()
        server.stop()


def query(db: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = sa.create_engine(db)
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def read_articles(db: str) -> dict[str, dict[str, Any]]:
    """Every stored article with its images, read with plain SQL."""
    articles = {r["article_key"]: r for r in query(db, "SELECT * FROM articles")}
    by_id = {a["id"]: a for a in articles.values()}
    for a in articles.values():
        a["images"] = []
        if isinstance(a["published_on"], dt.date):
            a["published_on"] = a["published_on"].isoformat()
    for r in query(
        db, "SELECT article_id, position, url, caption FROM article_images ORDER BY 1, 2"
    ):
        by_id[r["article_id"]]["images"].append((r["position"], r["url"], r["caption"]))
    return articles


def read_runs(db: str) -> list[dict[str, Any]]:
    runs = query(db, "SELECT * FROM crawl_runs ORDER BY id")
    for run in runs:
        if isinstance(run["stats"], str):
            run["stats"] = json.loads(run["stats"])
    return runs


def assert_matches_replica(stored: dict[str, dict[str, Any]], site: ReplicaSite, base: str) -> None:
    """Every reachable article stored once, field by field as the replica generated it."""
    expected = site.expected()
    missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    assert not missing and not extra, f"missing {missing}, not expected {extra}"
    base = base.rstrip("/")
    for key, want in expected.items():
        got = stored[key]
        assert got["title"] == want.title, key
        assert got["source"] == want.source, key
        assert got["published_on"] == want.published_on.isoformat(), key
        assert got["body"] == want.body, key
        assert got["page_count"] == want.page_count, key
        assert got["complete"] == want.complete, key
        assert got["images"] == [(pos, base + path, cap) for pos, path, cap in want.images], key


def frontier_keys(redis_url: str, prefix: str) -> list[str]:
    client = redis.Redis.from_url(redis_url)
    try:
        return sorted(k.decode() for k in client.scan_iter(match=f"{prefix}:*", count=1000))
    finally:
        client.close()


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")
