"""Fixtures for scheduler tests: small replicas, the real ``tianjin-updates schedule`` daemon."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from crawler.replica import ReplicaServer, ReplicaSite

T = TypeVar("T")


def cli_path() -> str:
    """The installed ``tianjin-updates`` console script, next to this interpreter."""
    here = Path(sys.executable).with_name("tianjin-updates")
    assert here.exists(), "the tianjin-updates console script is not installed: pip install -e ."
    return str(here)


def crawl_settings(server: ReplicaServer, delay: float = 0.0) -> list[str]:
    """-s options for a crawl of a loopback replica: full speed, or one request per ``delay``."""
    values = {
        "DOWNLOAD_DELAY": str(delay),
        "AUTOTHROTTLE_ENABLED": "False",
        "CONCURRENT_REQUESTS_PER_DOMAIN": "1" if delay else "16",
        "RANDOMIZE_DOWNLOAD_DELAY": "False",
        "TIANJIN_RETRY_BACKOFF": "0",
        "TIANJIN_FLUSH_SECONDS": "0.5",
        "TIANJIN_BATCH_SIZE": "5",
        "TIANJIN_HOSTS": ",".join(server.hosts),
    }
    return [arg for name, value in values.items() for arg in ("-s", f"{name}={value}")]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TIANJIN_UPDATES_DB", None)  # the database must come from --db
    return env


def query(db: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of a plain SQL query."""
    engine = sa.create_engine(db)
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def _aware(value: Any) -> Any:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value


def read_runs(db: str) -> list[dict[str, Any]]:
    """``crawl_runs`` in id order, stats as a dict, times timezone-aware."""
    runs = query(db, "SELECT * FROM crawl_runs ORDER BY id")
    for run in runs:
        if isinstance(run["stats"], str):
            run["stats"] = json.loads(run["stats"])
        run["started_at"] = _aware(run["started_at"])
        run["finished_at"] = _aware(run["finished_at"])
    return runs


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def assert_no_overlap(runs: list[dict[str, Any]]) -> None:
    """Finished runs' [started_at, finished_at] intervals are disjoint."""
    spans = sorted((r["started_at"], r["finished_at"], r["id"]) for r in runs)
    for (_s1, end1, id1), (start2, _e2, id2) in itertools.pairwise(spans):
        assert end1 is not None, f"run {id1} never finished"
        assert end1 <= start2, f"runs {id1} and {id2} overlap"


def assert_articles_match(db: str, server: ReplicaServer, *, every: bool = True) -> int:
    """Each stored article is whole: body and images as the replica generated them.

    With ``every``, each reachable article of the replica is stored. Returns how many are.
    """
    expected = server.site.expected()
    stored = {r["article_key"]: r for r in query(db, "SELECT * FROM articles")}
    images: dict[int, list[tuple[int, str, str | None]]] = {}
    for r in query(db, "SELECT * FROM article_images ORDER BY article_id, position"):
        images.setdefault(r["article_id"], []).append((r["position"], r["url"], r["caption"]))
    base = server.base_url.rstrip("/")
    if every:
        assert sorted(stored) == sorted(expected)
    for key, row in stored.items():
        want = expected[key]
        assert row["body"] == want.body, key
        assert row["title"] == want.title, key
        assert bool(row["complete"]) == want.complete, key
        assert images.get(row["id"], []) == [(p, base + path, c) for p, path, c in want.images], key
    return len(stored)


@dataclass
class Daemon:
    """A running ``tianjin-updates schedule`` process with its log in a file."""

    args: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] = field(init=False)

    def start(self) -> Daemon:
        stream = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [cli_path(), "schedule", *self.args],
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            env=child_env(),
        )
        stream.close()
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, timeout: float = 30) -> None:
        wait_for(lambda: text in self.log, timeout, f"{text!r} in the log:\n{self.log}")

    def stop(self, timeout: float = 40) -> tuple[int, float]:
        """SIGTERM, then wait: (exit status, seconds it took)."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - began

    def children(self) -> list[int]:
        """Pids of processes whose parent is this daemon."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("PPid:") and int(line.split()[1]) == self.process.pid:
                    found.append(int(entry.name))
        return found

    def cleanup(self) -> None:
        if self.process.poll() is not None:
            return
        children = self.children()
        self.process.kill()
        self.process.wait(timeout=10)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start ``tianjin-updates schedule ARGS...``; every daemon is gone after the test."""
    started: list[Daemon] = []

    def start(*args: str, name: str = "daemon") -> Daemon:
        daemon = Daemon(list(args), tmp_path / f"{name}.log").start()
        started.append(daemon)
        daemon.wait_log("Scheduler started")  # the database is at the newest schema by then
        return daemon

    yield start
    for daemon in started:
        daemon.cleanup()


@pytest.fixture
def small_replica() -> Iterator[ReplicaServer]:
    """40 articles without faults: every crawl can store every article whole."""
    with ReplicaServer(ReplicaSite(articles=40, seed=11, faults=False)) as server:
        yield server


@pytest.fixture
def slow_replica() -> Iterator[ReplicaServer]:
    """60 articles without faults, for crawls slowed by a download delay."""
    with ReplicaServer(ReplicaSite(articles=60, seed=12, faults=False)) as server:
        yield server
