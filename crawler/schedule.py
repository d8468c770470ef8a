"""``tianjin-updates schedule``: crawls on a schedule (APScheduler 3.x), each in a child process.

Rules:

* the schedule lives in the crawl's own database (APScheduler's ``SQLAlchemyJobStore``, table
  ``apscheduler_jobs``), under an explicit job id, so a restart keeps it: an unchanged schedule
  keeps its stored next run time, a changed one replaces the stored job (``replace_existing``);
* each crawl is a child process running ``python -m crawler.cli crawl`` (Twisted's reactor runs
  once per process; a child also contains memory growth and crashes). The child takes the
  database's crawl lock itself (``storage.locks``), so scheduled and manual crawls never overlap,
  whichever scheduler or shell started them;
* missed slots: ``coalesce=True`` and ``misfire_grace_time=None`` make a scheduler that was down
  for any length of time run exactly one catch-up crawl when it is back; ``max_instances=1`` (and
  the lock) keep a slot that comes while a crawl still runs from starting a second one;
* a crawl's ``--timeout`` is enforced by the child itself (Scrapy's ``CLOSESPIDER_TIMEOUT``: it
  closes gracefully; the run is ``failed`` with finish reason ``closespider_timeout``); a child
  still running ``grace`` seconds later gets SIGTERM, then SIGKILL after another ``grace``, and
  its run is recorded here as ``failed`` with finish reason ``timeout``;
* SIGTERM or SIGINT: no new crawl starts, the running child gets one SIGTERM (Scrapy's graceful
  shutdown; its run is recorded ``interrupted``) and SIGKILL if it is not gone after ``grace``;
  the scheduler then exits 0. A second signal kills the child at once.

``BackgroundScheduler`` with the main thread waiting for a signal, not ``BlockingScheduler``:
shutting a blocking scheduler down from a signal handler would block inside the handler while
the crawl finishes.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.schedulers.base import BaseScheduler
    from apscheduler.triggers.base import BaseTrigger

logger = logging.getLogger("tianjin_updates.schedule")

#: The job id used when none is given: one schedule per database unless told otherwise.
DEFAULT_JOB_ID = "tianjin-updates-crawl"
#: Seconds a child gets to stop by itself (after SIGTERM, or after its --timeout) before a signal.
DEFAULT_GRACE = 60.0
#: Exit status of ``crawl`` refused because another crawl holds the lock (EX_TEMPFAIL).
EXIT_LOCKED = 75
#: APScheduler's table in the crawl database (created by our migrations, not by APScheduler).
JOBS_TABLE = "apscheduler_jobs"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)


class ConfigError(ValueError):
    """A schedule option or config file that cannot be used; one line for the user."""


# --- durations, triggers --------------------------------------------------------------------


def parse_duration(value: str | float, what: str = "duration") -> float:
    """Seconds in ``"90"``, ``"10s"``, ``"30m"``, ``"2h"``, ``"1d"``, ``"1h30m"`` (or a number)."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a duration like 30m, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or _DURATION.sub("", text).strip():
                raise ConfigError(
                    f"{what}: expected a duration like 10s, 30m, 2h or 1d, got {value!r}"
                ) from None
            seconds = sum(float(n) * _UNITS[u.lower()] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"{what}: must be longer than 0 seconds, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """``5400`` -> ``"1h30m"``; ``2.5`` -> ``"2.5s"``."""
    if seconds < 60:
        return f"{round(seconds, 1):g}s"
    total = round(seconds)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, total = divmod(total, size)
        if n:
            out += f"{n}{unit}"
    return out


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _crontab_weekdays(field_: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) in APScheduler 3's terms (names).

    APScheduler 3 counts 0 as Monday, unlike cron; numbers are turned into day names here so
    ``0 3 * * 1`` means Monday as everywhere else.
    """
    if field_ == "*" or not re.search(r"\d", field_):
        return field_
    days: set[int] = set()
    for part in field_.lower().split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            first, last = 0, 6
        elif "-" in body:
            a, b = body.split("-", 1)
            first, last = _cron_day(a), _cron_day(b)
            if last == 0 and first > 0:  # "5-7" / "fri-sun"
                last = 7
        else:
            first = _cron_day(body)
            last = first if not step_text else 6
        if step < 1 or first > last:
            raise ConfigError(f"cron: bad day-of-week field {field_!r}")
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_CRON_DAYS[d] for d in sorted(days))


def _cron_day(text: str) -> int:
    text = text.strip()
    if text.isdigit():
        day = int(text)
        if day > 7:
            raise ConfigError(f"cron: day of week {day} is out of range 0-7")
        return day % 7 if day != 7 else 7
    if text[:3] in _CRON_DAYS:
        return _CRON_DAYS.index(text[:3])
    raise ConfigError(f"cron: unknown day of week {text!r}")


def make_trigger(schedule: ScheduleConfig) -> BaseTrigger:
    """The APScheduler trigger of ``schedule`` (an interval, or a crontab in its time zone)."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    zone = ZoneInfo(schedule.timezone)
    if schedule.every is not None:
        return IntervalTrigger(seconds=schedule.every, timezone=zone)
    assert schedule.cron is not None
    fields = schedule.cron.split()
    if len(fields) != 5:
        raise ConfigError(
            f"cron: expected 5 fields (minute hour day month weekday), got {schedule.cron!r}"
        )
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_crontab_weekdays(weekday),
            timezone=zone,
        )
    except ValueError as exc:
        raise ConfigError(f"cron: {schedule.cron!r}: {exc}") from None


def trigger_key(trigger: BaseTrigger) -> tuple[str, str, str]:
    """What makes two triggers the same schedule (not when they were created)."""
    kind = type(trigger).__name__
    interval = getattr(trigger, "interval_length", None)
    what = str(interval) if interval is not None else str(trigger)
    return kind, what, str(getattr(trigger, "timezone", ""))


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CrawlSpec:
    """What each scheduled crawl does: the ``crawl`` options. Stored with the job (no secrets)."""

    start_url: str | None = None
    max_pages: int | None = None
    settings: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None


@dataclass(frozen=True)
class ScheduleConfig:
    """Everything ``schedule`` needs, from the command line over the config file."""

    db: str
    every: float | None
    cron: str | None
    timezone: str
    crawl: CrawlSpec
    grace: float = DEFAULT_GRACE
    job_id: str = DEFAULT_JOB_ID
    log_file: str | None = None

    def describe(self) -> str:
        if self.every is not None:
            return f"every {format_duration(self.every)}"
        return f"cron '{self.cron}' ({self.timezone})"


#: Keys of the config file and the TOML type each takes (None: a duration, "30m" or seconds).
CONFIG_KEYS: dict[str, type | None] = {
    "db": str,
    "start_url": str,
    "every": None,
    "cron": str,
    "timezone": str,
    "timeout": None,
    "grace": None,
    "max_pages": int,
    "job_id": str,
    "log_file": str,
    "settings": dict,
}
_TYPE_NAMES = {str: "string", int: "whole number", dict: "table"}


def read_config_file(path: str) -> dict[str, Any]:
    """The checked contents of a TOML config file (see docs/operations.md for its keys)."""
    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for key, value in data.items():
        if key not in CONFIG_KEYS:
            raise ConfigError(
                f"config file {path}: unknown key {key!r} (known: {', '.join(CONFIG_KEYS)})"
            )
        kind = CONFIG_KEYS[key]
        if kind is None:
            data[key] = parse_duration(value, f"{path}: {key}")
        elif not isinstance(value, kind) or isinstance(value, bool):
            raise ConfigError(
                f"config file {path}: {key} must be a {_TYPE_NAMES[kind]}, got {value!r}"
            )
    if "max_pages" in data and data["max_pages"] < 1:
        raise ConfigError(f"config file {path}: max_pages must be at least 1")
    return data


def setting_text(value: Any) -> str:
    """A TOML value as the text of ``-s NAME=VALUE`` (how Scrapy parses settings)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return ",".join(setting_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def build_config(
    *,
    db: str,
    file: Mapping[str, Any] | None = None,
    every: str | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    start_url: str | None = None,
    max_pages: int | None = None,
    settings: Mapping[str, str] | None = None,
    timeout: str | None = None,
    grace: str | None = None,
    job_id: str | None = None,
    log_file: str | None = None,
) -> ScheduleConfig:
    """Command-line values over the config file's; ``ConfigError`` for what cannot work."""
    conf = dict(file or {})
    if every is not None or cron is not None:  # the command line names the schedule
        conf.pop("every", None)
        conf.pop("cron", None)
    every_s = parse_duration(every, "--every") if every is not None else conf.get("every")
    cron_text = cron if cron is not None else conf.get("cron")
    if every_s is not None and cron_text is not None:
        raise ConfigError("give either every or cron, not both")
    if every_s is None and cron_text is None:
        raise ConfigError(
            "no schedule: give --every DURATION or --cron EXPR (or set it in --config)"
        )
    zone = timezone or conf.get("timezone") or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {zone!r}: use a name like UTC or Asia/Shanghai"
        ) from None
    merged_settings = {k: setting_text(v) for k, v in (conf.get("settings") or {}).items()}
    merged_settings.update(settings or {})
    crawl_timeout = (
        parse_duration(timeout, "--timeout") if timeout is not None else conf.get("timeout")
    )
    config = ScheduleConfig(
        db=db,
        every=every_s,
        cron=cron_text.strip() if cron_text else None,
        timezone=zone,
        crawl=CrawlSpec(
            start_url=start_url or conf.get("start_url"),
            max_pages=max_pages if max_pages is not None else conf.get("max_pages"),
            settings=merged_settings,
            timeout=crawl_timeout,
        ),
        grace=parse_duration(grace, "--grace")
        if grace is not None
        else conf.get("grace", DEFAULT_GRACE),
        job_id=job_id or conf.get("job_id") or DEFAULT_JOB_ID,
        log_file=log_file or conf.get("log_file"),
    )
    make_trigger(config)  # a bad cron expression is an error now, not when it is due
    return config


# --- the child crawl -------------------------------------------------------------------------


def child_command(spec: CrawlSpec) -> list[str]:
    """The command line of one crawl (the database comes through the environment, not argv,
    so that its password never shows in ``ps``)."""
    argv = [sys.executable, "-P", "-m", "crawler.cli", "crawl", "--progress", "0"]
    if spec.start_url:
        argv += ["--start-url", spec.start_url]
    if spec.max_pages is not None:
        argv += ["--max-pages", str(spec.max_pages)]
    if spec.timeout is not None:
        argv += ["--timeout", f"{spec.timeout:g}"]
    for name, value in spec.settings.items():
        argv += ["-s", f"{name}={value}"]
    argv += ["-s", "TIANJIN_TRIGGER=schedule"]
    return argv


def run_summary(run: Any) -> str:
    """One line on a finished run: status, duration and its counts."""
    from crawler.export import RUN_COLUMNS, run_row

    cells = dict(zip(RUN_COLUMNS, run_row(run), strict=True))
    reason = (run.stats or {}).get("finish_reason")
    why = f" ({reason})" if reason and run.status != "succeeded" else ""
    return (
        f"Run {run.id} {run.status}{why} in {cells['took']}: {cells['new']} new, "
        f"{cells['updated']} updated, {cells['unchanged']} unchanged, "
        f"{cells['incomplete']} incomplete; {cells['pages']} pages, {cells['errors']} errors"
    )


class Supervisor:
    """Runs crawls as child processes, one at a time, and stops them when told to."""

    def __init__(self, db: str, *, grace: float = DEFAULT_GRACE) -> None:
        self.db = db
        self.grace = grace
        self.host = socket.gethostname()
        self._lock = threading.Lock()
        self._child: subprocess.Popen[str] | None = None
        self._stopping = False
        self._stop_sent: float | None = None

    # --- called from the main thread (signals) ---------------------------------------------

    def stop(self) -> None:
        """Start no more crawls; ask the running one to stop gracefully (one SIGTERM)."""
        with self._lock:
            self._stopping = True
            child = self._child
            if child is None or self._stop_sent is not None:
                return
            self._stop_sent = time.monotonic()
        logger.info("Stopping the running crawl (pid %d) gracefully", child.pid)
        _signal(child, signal.SIGTERM)

    def kill(self) -> None:
        """Kill the running crawl now (a second stop signal)."""
        with self._lock:
            self._stopping = True
            child = self._child
        if child is not None:
            logger.warning("Killing the running crawl (pid %d)", child.pid)
            _signal(child, signal.SIGKILL)

    # --- called from the scheduler's worker thread -----------------------------------------

    def run(self, spec: CrawlSpec) -> None:
        """One crawl in a child process, from start to a recorded end."""
        env = {**os.environ, "TIANJIN_UPDATES_DB": self.db, "PYTHONUNBUFFERED": "1"}
        started = datetime.now(UTC)
        with self._lock:
            if self._stopping:
                logger.info("Not starting a crawl: the scheduler is stopping")
                return
            # A session of its own: Ctrl-C in a terminal reaches only us, and we forward one
            # SIGTERM (a second one would make Scrapy stop uncleanly).
            child = subprocess.Popen(
                child_command(spec),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                start_new_session=True,
            )
            self._child, self._stop_sent = child, None
        logger.info(
            "Crawl started (pid %d): %s%s",
            child.pid,
            spec.start_url or "the default start URL",
            f", timeout {format_duration(spec.timeout)}" if spec.timeout else "",
        )
        output: list[str] = []
        relays = [
            threading.Thread(target=_collect, args=(child.stdout, output), daemon=True),
            threading.Thread(target=_relay, args=(child.stderr, child.pid), daemon=True),
        ]
        for relay in relays:
            relay.start()
        try:
            timed_out = self._wait(child, spec.timeout)
        finally:
            for relay in relays:
                relay.join(timeout=5)
            with self._lock:
                self._child = None
        self._report(child, started, timed_out, output)

    def _wait(self, child: subprocess.Popen[str], timeout: float | None) -> bool:
        """Wait for the child, signalling it past its deadline; True when it was timed out."""
        begun = time.monotonic()
        term_at = begun + timeout + self.grace if timeout else None
        timed_out = False
        while True:
            try:
                child.wait(timeout=0.2)
                return timed_out
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            with self._lock:
                stop_sent = self._stop_sent
            if term_at is not None and now >= term_at and stop_sent is None:
                timed_out = True
                logger.warning(
                    "Crawl (pid %d) still running %s past its timeout: stopping it",
                    child.pid,
                    format_duration(self.grace),
                )
                with self._lock:
                    self._stop_sent = now
                _signal(child, signal.SIGTERM)
            elif stop_sent is not None and now >= stop_sent + self.grace:
                logger.warning(
                    "Crawl (pid %d) did not stop within %s of SIGTERM: killing it",
                    child.pid,
                    format_duration(self.grace),
                )
                _signal(child, signal.SIGKILL)
                child.wait()
                return timed_out

    def _report(
        self, child: subprocess.Popen[str], started: datetime, timed_out: bool, output: list[str]
    ) -> None:
        from storage.db import StorageError, make_engine
        from storage.repository import Repository

        code = child.returncode
        if code == EXIT_LOCKED:
            logger.warning(
                "Crawl skipped: %s", _last_error(output) or "another crawl holds the crawl lock"
            )
            return
        engine = make_engine(self.db)
        try:
            repo = Repository(engine)
            run = repo.find_run(host=self.host, pid=child.pid, started_after=started)
            if run is not None and run.status == "running":
                # The child died without recording its end: say how, since we know.
                reason = "timeout" if timed_out else f"killed by {_exit_text(code)}"
                repo.end_orphaned_run(run.id, reason, datetime.now(UTC))
                run = repo.find_run(host=self.host, pid=child.pid, started_after=started)
        except StorageError as exc:
            logger.error(
                "Crawl (pid %d) ended (%s); cannot read its run: %s",
                child.pid,
                _exit_text(code),
                exc,
            )
            return
        finally:
            engine.dispose()
        if run is None:
            logger.error(
                "Crawl (pid %d) ended (%s) before recording a run: %s",
                child.pid,
                _exit_text(code),
                _last_error(output) or "no output",
            )
            return
        level = logging.INFO if run.status == "succeeded" else logging.WARNING
        logger.log(level, "%s", run_summary(run))


def _signal(child: subprocess.Popen[str], signum: int) -> None:
    try:
        child.send_signal(signum)
    except ProcessLookupError:  # already gone
        pass


def _exit_text(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _last_error(lines: list[str]) -> str | None:
    for line in reversed(lines):
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    return None


def _collect(stream: IO[str] | None, into: list[str]) -> None:
    if stream is None:
        return
    for line in stream:
        into.append(line.rstrip("\n"))


def _relay(stream: IO[str] | None, pid: int) -> None:
    """The child's stderr (warnings, errors) into our log, one record per line."""
    if stream is None:
        return
    for line in stream:
        line = line.rstrip()
        if line:
            logger.info("  crawl %d: %s", pid, line)


def scheduled_crawl(supervisor: Supervisor | None = None, **spec: Any) -> None:
    """The job APScheduler runs (stored by reference); ``CrawlExecutor`` hands it the supervisor."""
    if supervisor is None:
        raise RuntimeError("scheduled_crawl runs only through crawler.schedule's CrawlExecutor")
    supervisor.run(CrawlSpec(**spec))


def _executor_class() -> type:
    from apscheduler.executors.pool import ThreadPoolExecutor

    class CrawlExecutor(ThreadPoolExecutor):  # type: ignore[misc]
        """Runs due crawl jobs in a worker thread, giving each this process's Supervisor — a
        live object that the job store cannot hold."""

        def __init__(self, supervisor: Supervisor) -> None:
            super().__init__(max_workers=1)
            self.supervisor = supervisor

        def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
            # A copy: the stored job (pickled again after this call) must not hold the supervisor.
            live = copy.copy(job)
            live._jobstore_alias = job._jobstore_alias
            live._scheduler = job._scheduler
            live.args = (self.supervisor, *job.args)
            super()._do_submit_job(live, run_times)

    return CrawlExecutor


# --- the daemon ------------------------------------------------------------------------------


def setup_logging(log_file: str | None) -> None:
    """Log lines with UTC times to stderr and, with ``--log-file``, to that file too."""
    formatter = logging.Formatter("%(asctime)sZ %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        try:
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot write log file {log_file}: {exc.strerror or exc}") from None
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logger.setLevel(logging.INFO)
    # APScheduler's warnings (a slot skipped because a crawl still runs) are worth seeing.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _next_run_text(job: Job | None) -> str:
    if job is None or job.next_run_time is None:
        return "no further crawl is scheduled"
    due = job.next_run_time.astimezone(UTC)
    wait = max(0.0, (due - datetime.now(UTC)).total_seconds())
    return f"next crawl due at {due:%Y-%m-%d %H:%M:%S} UTC (in {format_duration(wait) if wait >= 1 else 'under 1s'})"


def build_scheduler(config: ScheduleConfig, supervisor: Supervisor) -> BaseScheduler:
    """A background scheduler on the database's job store holding our one job."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from storage.db import make_engine

    store = SQLAlchemyJobStore(engine=make_engine(config.db), tablename=JOBS_TABLE)
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        executors={"default": _executor_class()(supervisor)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=ZoneInfo(config.timezone),
    )
    trigger = make_trigger(config)
    stored = store.lookup_job(config.job_id)
    options: dict[str, Any] = {}
    if stored is not None and trigger_key(stored.trigger) == trigger_key(trigger):
        # The same schedule: keep its timing, so a slot missed while we were down is made up.
        trigger = stored.trigger
        options["next_run_time"] = stored.next_run_time
        logger.info("Resuming the stored schedule %r: %s", config.job_id, config.describe())
    else:
        if stored is not None:
            logger.info("Replacing the stored schedule %r (%s)", config.job_id, stored.trigger)
        if config.every is not None:
            options["next_run_time"] = datetime.now(UTC)  # a new interval schedule crawls now
        logger.info("New schedule %r: %s", config.job_id, config.describe())
    scheduler.add_job(
        "crawler.schedule:scheduled_crawl",
        trigger=trigger,
        id=config.job_id,
        name=f"crawl {config.crawl.start_url or 'default start URL'}",
        kwargs=asdict(config.crawl),
        replace_existing=True,
        **options,
    )
    return scheduler


def sweep_abandoned_runs(db: str) -> None:
    """Mark runs left ``running`` by a dead process, if no crawl is running now."""
    from storage.db import StorageError, make_engine
    from storage.locks import CrawlLock, LockBusy
    from storage.repository import Repository

    engine = make_engine(db)
    try:
        lock = CrawlLock(engine)
        try:
            lock.acquire()
        except LockBusy as exc:
            logger.info("A crawl is running now (%s)", exc.holder.describe() if exc.holder else "?")
            return
        try:
            for run in Repository(engine).end_abandoned_runs(datetime.now(UTC)):
                logger.warning(
                    "Run %d was left running by a process that is gone: marked failed", run
                )
        finally:
            lock.release()
    except StorageError as exc:
        logger.warning("Could not check for abandoned runs: %s", exc)
    finally:
        engine.dispose()


@dataclass
class _Signals:
    """SIGTERM/SIGINT handling of the main thread: the first stops, a second kills."""

    supervisor: Supervisor
    stop: threading.Event = field(default_factory=threading.Event)
    previous: dict[int, Any] = field(default_factory=dict)

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.stop.is_set():
            self.supervisor.kill()
        self.stop.set()


def run_daemon(config: ScheduleConfig) -> int:
    """Run the schedule in the foreground until SIGTERM or SIGINT; 0 after a graceful stop."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES

    from crawler.cli import _db_label

    supervisor = Supervisor(config.db, grace=config.grace)
    signals = _Signals(supervisor)
    signals.install()
    try:
        logger.info(
            "Scheduler started (pid %d) for %s: %s",
            os.getpid(),
            _db_label(config.db),
            config.describe(),
        )
        sweep_abandoned_runs(config.db)
        scheduler = build_scheduler(config, supervisor)

        def after_run(_event: Any) -> None:
            if not signals.stop.is_set():
                logger.info(
                    "Schedule %r: %s",
                    config.job_id,
                    _next_run_text(scheduler.get_job(config.job_id)),
                )

        scheduler.add_listener(
            after_run, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES
        )
        scheduler.start()
        logger.info(
            "Schedule %r: %s", config.job_id, _next_run_text(scheduler.get_job(config.job_id))
        )
        while not signals.stop.wait(1.0):
            pass
        logger.info("Stop requested: finishing")
        supervisor.stop()
        scheduler.shutdown(wait=True)
        logger.info("Scheduler stopped")
        return 0
    finally:
        signals.restore()


__all__ = [
    "ConfigError",
    "CrawlSpec",
    "ScheduleConfig",
    "build_config",
    "parse_duration",
    "read_config_file",
    "run_daemon",
]
