"""The real ``tianjin-updates schedule`` daemon, its child crawls and the replica over loopback."""

from __future__ import annotations

import os
import pickle
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from crawler.replica import ReplicaServer

from .conftest import (
    assert_articles_match,
    assert_no_overlap,
    crawl_settings,
    query,
    read_runs,
    wait_for,
)


def finished(db: str, status: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in read_runs(db)
        if r["status"] != "running" and (status is None or r["status"] == status)
    ]


def running(db: str) -> dict[str, Any] | None:
    return next((r for r in read_runs(db) if r["status"] == "running"), None)


def stored_articles(db: str) -> int:
    return int(query(db, "SELECT count(*) AS n FROM articles")[0]["n"])


def test_short_interval_crawls_again_and_again_never_overlapping(
    small_replica: ReplicaServer, db_url: str, start_daemon: Any
) -> None:
    daemon = start_daemon(
        "--every", "1s", "--db", db_url, "--start-url", small_replica.base_url,
        *crawl_settings(small_replica),
    )  # fmt: skip
    wait_for(lambda: len(finished(db_url, "succeeded")) >= 3, 60, "three finished crawls")
    code, took = daemon.stop()
    assert code == 0, daemon.log
    assert took < 20
    runs = read_runs(db_url)
    assert all(r["trigger"] == "schedule" for r in runs)
    # Stopping may interrupt a crawl under way; every other one succeeded.
    assert [r["status"] for r in runs[:3]] == ["succeeded"] * 3, daemon.log
    assert {r["status"] for r in runs[3:]} <= {"succeeded", "interrupted"}
    assert_no_overlap(runs)
    assert runs[0]["stats"]["store/articles_new"] == assert_articles_match(db_url, small_replica)
    assert runs[1]["stats"]["store/articles_new"] == 0  # the site did not change
    # One line per run start and end, with the counts; when the next crawl is due.
    log = daemon.log
    assert log.count("Crawl started (pid ") >= 3
    first = runs[0]
    assert f"Run {first['id']} succeeded in " in log
    assert (
        f"{first['stats']['store/articles_new']} new, 0 updated, 0 unchanged, 0 incomplete" in log
    )
    assert "next crawl due at " in log
    assert "Scheduler stopped" in log


def test_a_killed_crawl_is_recorded_failed_and_the_next_one_completes_the_data(
    slow_replica: ReplicaServer, sqlite_url: str, start_daemon: Any
) -> None:
    db = sqlite_url
    daemon = start_daemon(
        "--every", "1s", "--db", db, "--start-url", slow_replica.base_url,
        *crawl_settings(slow_replica, delay=0.02),
    )  # fmt: skip

    # Kill the first crawl once it has stored a part of the articles.
    def under_way() -> dict[str, Any] | None:
        run = running(db)
        return run if run is not None and stored_articles(db) >= 5 else None

    victim = wait_for(under_way, 60, "a crawl under way")
    assert victim["pid"] and victim["host"]
    os.kill(victim["pid"], signal.SIGKILL)

    def recorded() -> dict[str, Any] | None:
        run = next(r for r in read_runs(db) if r["id"] == victim["id"])
        return run if run["status"] != "running" else None

    dead = wait_for(recorded, 30, "the killed run recorded")
    assert dead["status"] == "failed"
    assert dead["stats"]["finish_reason"] == "killed by SIGKILL"
    assert dead["finished_at"] is not None
    assert stored_articles(db) < len(slow_replica.site.expected())
    # The daemon went on: a later crawl succeeded and completed the data.
    wait_for(lambda: finished(db, "succeeded"), 90, "a successful crawl after the kill")
    code, _ = daemon.stop()
    assert code == 0, daemon.log
    assert_articles_match(db, slow_replica)
    assert_no_overlap(read_runs(db))
    assert f"Run {victim['id']} failed (killed by SIGKILL)" in daemon.log


def test_two_schedulers_on_one_database_never_overlap(
    small_replica: ReplicaServer, db_url: str, start_daemon: Any
) -> None:
    common = ["--every", "1s", "--db", db_url, "--start-url", small_replica.base_url]
    common += crawl_settings(small_replica)
    # Different job ids: each scheduler fires every second on its own; only the lock keeps
    # their crawls apart.
    first = start_daemon(*common, "--job-id", "one", name="one")
    second = start_daemon(*common, "--job-id", "two", name="two")
    wait_for(lambda: len(finished(db_url, "succeeded")) >= 4, 90, "four finished crawls")
    for daemon in (first, second):
        code, _ = daemon.stop()
        assert code == 0, daemon.log
    runs = read_runs(db_url)
    assert_no_overlap(runs)
    assert all(r["status"] in ("succeeded", "interrupted") for r in runs), runs
    assert_articles_match(db_url, small_replica)
    pids = {r["pid"] for r in runs}
    assert len(pids) == len(runs)  # each crawl in a process of its own
    refused = first.log.count("Crawl skipped: ") + second.log.count("Crawl skipped: ")
    assert refused >= 1, "the schedulers never competed for the lock"


def test_sigterm_stops_the_crawl_gracefully_and_exits_0(
    slow_replica: ReplicaServer, db_url: str, start_daemon: Any
) -> None:
    daemon = start_daemon(
        "--every", "1h", "--db", db_url, "--start-url", slow_replica.base_url,
        "--grace", "20s", *crawl_settings(slow_replica, delay=0.02),
    )  # fmt: skip
    wait_for(lambda: running(db_url) and stored_articles(db_url) >= 5, 60, "a crawl under way")
    code, took = daemon.stop(timeout=40)
    assert code == 0, daemon.log
    assert took < 25, daemon.log
    [run] = read_runs(db_url)
    assert run["status"] == "interrupted"
    assert run["stats"]["finish_reason"] == "shutdown"
    assert run["finished_at"] is not None
    # What was stored is whole: every article with its full body and every image.
    stored = assert_articles_match(db_url, slow_replica, every=False)
    assert 5 <= stored < len(slow_replica.site.expected())
    assert run["stats"]["store/articles_new"] == stored
    assert not daemon.children()


def _jobs(db: str) -> list[dict[str, Any]]:
    return query(db, "SELECT id, next_run_time, job_state FROM apscheduler_jobs")


def _set_next_run_time(db: str, job_id: str, when: datetime) -> None:
    """Rewrite the stored job as if the scheduler had been down since ``when``."""
    [row] = [j for j in _jobs(db) if j["id"] == job_id]
    state = pickle.loads(row["job_state"])
    state["next_run_time"] = when
    engine = sa.create_engine(db)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "UPDATE apscheduler_jobs SET next_run_time = :t, job_state = :s WHERE id = :i"
                ),
                {"t": when.timestamp(), "s": pickle.dumps(state), "i": job_id},
            )
    finally:
        engine.dispose()


def test_a_restart_after_a_long_pause_makes_up_with_exactly_one_crawl(
    small_replica: ReplicaServer, db_url: str, start_daemon: Any, tmp_path: Path
) -> None:
    args = ["--every", "1h", "--db", db_url, "--start-url", small_replica.base_url]
    args += crawl_settings(small_replica)
    # A new schedule crawls at once, then every hour.
    daemon = start_daemon(*args, name="first")
    wait_for(lambda: finished(db_url), 60, "the first crawl")
    daemon.wait_log("next crawl due at")
    assert daemon.stop()[0] == 0
    [job] = _jobs(db_url)
    assert job["id"] == "tianjin-updates-crawl"
    due = datetime.fromtimestamp(job["next_run_time"], UTC)
    assert timedelta(minutes=55) < due - datetime.now(UTC) <= timedelta(hours=1)

    # Restarted soon: the stored schedule is resumed, no extra crawl.
    daemon = start_daemon(*args, name="second")
    daemon.wait_log("Resuming the stored schedule")
    daemon.wait_log("next crawl due at")
    assert not wait_for_runs(db_url, more_than=1, seconds=3)
    assert daemon.stop()[0] == 0
    assert datetime.fromtimestamp(_jobs(db_url)[0]["next_run_time"], UTC) == due

    # Down for five hours (five slots missed): exactly one catch-up crawl.
    _set_next_run_time(db_url, "tianjin-updates-crawl", datetime.now(UTC) - timedelta(hours=5))
    daemon = start_daemon(*args, name="third")
    wait_for(lambda: len(finished(db_url)) >= 2, 60, "the catch-up crawl")
    assert not wait_for_runs(db_url, more_than=2, seconds=4)
    assert daemon.stop()[0] == 0
    runs = read_runs(db_url)
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    after = datetime.fromtimestamp(_jobs(db_url)[0]["next_run_time"], UTC)
    assert datetime.now(UTC) < after <= datetime.now(UTC) + timedelta(hours=1)


def wait_for_runs(db: str, more_than: int, seconds: float) -> bool:
    """Whether more than ``more_than`` runs appear within ``seconds``."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if len(read_runs(db)) > more_than:
            return True
        time.sleep(0.2)
    return False


def test_a_changed_schedule_replaces_the_stored_one(
    small_replica: ReplicaServer, sqlite_url: str, start_daemon: Any
) -> None:
    args = ["--db", sqlite_url, "--start-url", small_replica.base_url]
    args += crawl_settings(small_replica)
    daemon = start_daemon("--every", "1h", *args, name="hourly")
    wait_for(lambda: finished(sqlite_url), 60, "the first crawl")
    assert daemon.stop()[0] == 0
    daemon = start_daemon("--cron", "0 3 * * 1", "--timezone", "Asia/Shanghai", *args, name="cron")
    daemon.wait_log("next crawl due at")
    assert daemon.stop()[0] == 0
    assert "Replacing the stored schedule 'tianjin-updates-crawl'" in daemon.log
    [job] = _jobs(sqlite_url)
    due = datetime.fromtimestamp(job["next_run_time"], UTC)
    local = due.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    # Monday 03:00 in Shanghai (crontab counts Sunday as 0, Monday as 1).
    assert (local.weekday(), local.hour, local.minute) == (0, 3, 0)
    assert len(read_runs(sqlite_url)) == 1
