"""The supervisor's deadline: a crawl that ignores its timeout and SIGTERM is killed and recorded."""

from __future__ import annotations

import logging
import sys
import textwrap
import time
from pathlib import Path

import pytest

from crawler import schedule
from crawler.schedule import CrawlSpec, Supervisor
from storage.db import upgrade

from .conftest import read_runs

STUBBORN = textwrap.dedent(
    """
    import signal, sys, time
    from datetime import UTC, datetime
    from storage.db import make_engine
    from storage.repository import Repository
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a crawl stuck where no signal helps
    Repository(make_engine(sys.argv[1])).start_run("schedule", datetime.now(UTC))
    print("started", flush=True)
    time.sleep(60)
    """
)


def test_a_crawl_past_its_deadline_gets_sigterm_then_sigkill_and_is_recorded(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    upgrade(sqlite_url)
    monkeypatch.setattr(
        schedule, "child_command", lambda spec: [sys.executable, "-c", STUBBORN, sqlite_url]
    )
    supervisor = Supervisor(sqlite_url, grace=0.5)
    began = time.monotonic()
    with caplog.at_level(logging.INFO, logger="tianjin_updates.schedule"):
        supervisor.run(CrawlSpec(timeout=1.0))
    took = time.monotonic() - began
    assert 2.0 <= took < 10  # timeout + grace -> SIGTERM, + grace -> SIGKILL
    [run] = read_runs(sqlite_url)
    assert (run["status"], run["stats"]["finish_reason"]) == ("failed", "timeout")
    text = caplog.text
    assert "past its timeout: stopping it" in text
    assert "did not stop within 0.5s of SIGTERM: killing it" in text
    assert f"Run {run['id']} failed (timeout)" in text


def test_a_stopping_supervisor_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(spec: CrawlSpec) -> list[str]:
        raise AssertionError("no child may start")

    monkeypatch.setattr(schedule, "child_command", refuse)
    supervisor = Supervisor(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    supervisor.stop()
    supervisor.run(CrawlSpec())
