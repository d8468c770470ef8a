"""The ``tianjin-updates`` command: crawl, worker, demo and database upkeep. Thin: the work is
elsewhere."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from crawler.urls import DEFAULT_START_URL

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: ``crawl`` refused because another crawl holds the database's crawl lock (EX_TEMPFAIL).
EXIT_LOCKED = 75


class CommandError(Exception):
    """An error the user can fix; printed as one line, exit status 1."""


def _db_label(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # an unparsable URL is reported by prepare_database
        return url


def resolve_db(url: str | None) -> str:
    """The database URL to use: ``--db``, else ``TIANJIN_UPDATES_DB``, else the local SQLite file."""
    from storage.db import default_database_url

    return url or default_database_url()


def prepare_database(url: str) -> None:
    """Bring the database to the newest schema; a one-line CommandError when it cannot be used."""
    from storage.db import StorageError, make_engine, upgrade

    try:
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
    except StorageError as exc:
        raise CommandError(str(exc)) from None


def _crawl(args: argparse.Namespace, overrides: dict[str, Any], start_url: str | None) -> int:
    from crawler import settings as project
    from crawler.offload import discard_prestarted, prestart

    db = resolve_db(args.db)
    redis_url = overrides.get("TIANJIN_REDIS_URL", project.TIANJIN_REDIS_URL)
    if not (getattr(args, "redis", None) or redis_url):
        # A crawl in this process at full speed: its helper process is forked now, before Scrapy
        # is loaded, sharing the modules it needs with the crawl and ready when the crawl starts.
        prestart(overrides, db)
    try:
        return _crawl_here(args, overrides, start_url, db)
    finally:
        discard_prestarted()


def _crawl_here(
    args: argparse.Namespace, overrides: dict[str, Any], start_url: str | None, db: str
) -> int:
    from crawler.distributed import DistributedError, NotPostgreSQL, require_postgresql
    from crawler.runner import CrawlBusy, build_settings, crawl_lock_held, run_crawl, summary_lines
    from storage.db import StorageError

    redis_url = getattr(args, "redis", None) or build_settings(overrides).get("TIANJIN_REDIS_URL")
    if redis_url:
        try:
            require_postgresql(db)
        except NotPostgreSQL as exc:
            print(f"tianjin-updates: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    prepare_database(db)
    overrides = {**overrides, "TIANJIN_UPDATES_DB": db}
    overrides.setdefault("TIANJIN_PROGRESS_INTERVAL", args.progress)
    overrides.setdefault("LOG_LEVEL", "WARNING")
    if getattr(args, "timeout", None):
        overrides.setdefault("CLOSESPIDER_TIMEOUT", args.timeout)
    settings = build_settings(overrides)
    try:
        if redis_url:
            outcome = _seed_crawl(args, settings, db, redis_url, start_url)
        else:
            with crawl_lock_held(db, _db_label(db)):
                print(
                    f"Crawling {start_url or DEFAULT_START_URL} into {_db_label(db)} ...",
                    file=sys.stderr,
                    flush=True,
                )
                outcome = run_crawl(settings, start_url, getattr(args, "max_pages", None))
    except CrawlBusy as exc:
        print(f"tianjin-updates: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except (StorageError, DistributedError) as exc:
        raise CommandError(str(exc)) from None
    for line in summary_lines(outcome, _db_label(db)):
        print(line)
    if outcome.error:
        print(f"tianjin-updates: error: {outcome.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _seed_crawl(
    args: argparse.Namespace, settings: Any, db: str, redis_url: str, start_url: str | None
) -> Any:
    """Seed a distributed crawl and wait for its workers to finish it (``crawler.distributed``)."""
    from crawler.distributed import redis_label, seed_and_wait

    print(
        f"Crawling {start_url or DEFAULT_START_URL} into {_db_label(db)} with the workers of "
        f"{redis_label(redis_url)} ...",
        file=sys.stderr,
        flush=True,
    )
    return seed_and_wait(
        settings,
        db=db,
        db_label=_db_label(db),
        redis_url=redis_url,
        start_url=start_url,
        max_pages=getattr(args, "max_pages", None),
        progress=args.progress,
        timeout=getattr(args, "timeout", None),
    )


def cmd_worker(args: argparse.Namespace) -> int:
    from crawler.offload import discard_prestarted, prestart
    from crawler.profiles import SettingError, parse_setting_options

    try:
        overrides: dict[str, Any] = dict(parse_setting_options(args.set))
    except SettingError as exc:
        raise CommandError(str(exc)) from None
    db = resolve_db(args.db)
    if not args.forever:  # --forever runs each crawl in a child process, which forks its own
        prestart(overrides, db)  # as in _crawl: before Scrapy is loaded
    try:
        return _worker(args, overrides, db)
    finally:
        discard_prestarted()


def _worker(args: argparse.Namespace, overrides: dict[str, Any], db: str) -> int:
    from crawler.distributed import (
        DistributedError,
        NotPostgreSQL,
        check_worker_database,
        connect,
        redis_label,
        require_postgresql,
        wait_for_crawl,
        worker_settings,
        worker_summary_lines,
    )
    from crawler.frontier import DEFAULT_PREFIX, worker_name
    from crawler.runner import build_settings, run_crawl

    settings = build_settings(overrides)
    redis_url = args.redis or settings.get("TIANJIN_REDIS_URL")
    if not redis_url:
        print(
            "tianjin-updates: error: a worker needs the crawl's Redis: pass --redis URL "
            "(or set TIANJIN_REDIS_URL)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        require_postgresql(db)
    except NotPostgreSQL as exc:
        print(f"tianjin-updates: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.forever:
        return _worker_forever(args, redis_url, db)
    prepare_database(db)
    prefix = settings.get("TIANJIN_REDIS_PREFIX") or DEFAULT_PREFIX
    try:
        server = connect(redis_url)
        plan = wait_for_crawl(
            server,
            prefix,
            timeout=args.wait,
            poll=max(0.05, settings.getfloat("TIANJIN_FRONTIER_POLL_INTERVAL", 0.5)),
            announce=lambda: print(
                f"Waiting for a crawl on {redis_label(redis_url)} (prefix {prefix!r}) ...",
                file=sys.stderr,
                flush=True,
            ),
        )
        if plan is None:
            raise CommandError(
                f"no crawl started on {redis_label(redis_url)} within {args.wait:g} s; "
                "start one with: tianjin-updates crawl --redis URL --db URL"
            )
        check_worker_database(db, plan)
    except DistributedError as exc:
        raise CommandError(str(exc)) from None
    name = worker_name()
    overrides.setdefault("TIANJIN_PROGRESS_INTERVAL", args.progress)
    overrides.setdefault("LOG_LEVEL", "WARNING")
    # A worker takes from the shared queue only what it can fetch at once: a request waiting in
    # its own downloader would wait there while another worker has nothing to do.
    overrides.setdefault(
        "CONCURRENT_REQUESTS", settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN", 1)
    )
    crawl_settings = build_settings(
        worker_settings(overrides, plan, redis_url=redis_url, db=db, name=name)
    )
    print(
        f"Worker {name} joined crawl {plan.crawl_id} (run {plan.run_id}): {plan.start_url} "
        f"into {_db_label(db)}",
        file=sys.stderr,
        flush=True,
    )
    outcome = run_crawl(crawl_settings, plan.start_url, plan.max_pages)
    for line in worker_summary_lines(name, plan, outcome):
        print(line)
    if outcome.finish_reason in ("finished", "shutdown") and not outcome.stats.get("store/errors"):
        return EXIT_OK
    print(f"tianjin-updates: error: {outcome.error or 'the worker failed'}", file=sys.stderr)
    return EXIT_FAILED


def _worker_forever(args: argparse.Namespace, redis_url: str, db: str) -> int:
    """Join one crawl after the other, each in a child process (a Twisted reactor runs once per
    process), until SIGTERM or Ctrl-C."""
    import signal
    import subprocess
    import time

    command = [
        sys.executable, "-P", "-m", "crawler.cli", "worker", "--progress", str(args.progress)
    ]  # fmt: skip
    for option in args.set or []:
        command += ["-s", option]
    # Secrets stay off the command line (ps shows it): the URLs go through the environment.
    env = {**os.environ, "TIANJIN_REDIS_URL": redis_url, "TIANJIN_UPDATES_DB": db}
    stopping: list[int] = []
    child: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: Any) -> None:
        stopping.append(signum)
        if child and child[0].poll() is None:
            child[0].send_signal(signal.SIGTERM if len(stopping) == 1 else signal.SIGKILL)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping:
            child[:] = [subprocess.Popen(command, env=env)]
            code = child[0].wait()
            if code != EXIT_OK and not stopping:
                print(
                    f"tianjin-updates: the worker exited with status {code}; joining the next "
                    "crawl in 5 s",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(5)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return EXIT_OK


def cmd_crawl(args: argparse.Namespace) -> int:
    from crawler.profiles import SettingError, parse_setting_options

    try:
        overrides: dict[str, Any] = dict(parse_setting_options(args.set))
    except SettingError as exc:
        raise CommandError(str(exc)) from None
    if args.full:
        overrides["TIANJIN_INCREMENTAL"] = False
    return _crawl(args, overrides, args.start_url)


def cmd_demo(args: argparse.Namespace) -> int:
    from crawler.offload import discard_prestarted, prestart
    from crawler.profiles import FULL_SPEED
    from crawler.replica import ReplicaServer, ReplicaSite

    # The helper process is forked before the server's threads start (see _crawl).
    prestart({**FULL_SPEED, "TIANJIN_REDIS_URL": ""}, resolve_db(args.db))
    try:
        return _demo(args, ReplicaServer(ReplicaSite(articles=args.articles)))
    finally:
        discard_prestarted()


def _demo(args: argparse.Namespace, replica: Any) -> int:
    from crawler.profiles import FULL_SPEED

    with replica as server:
        print(
            f"Serving a replica of the site ({args.articles} articles) at {server.base_url}",
            file=sys.stderr,
            flush=True,
        )
        # Politeness is for the real site; our own loopback server is crawled at full speed,
        # in this process (the demo is never distributed).
        overrides: dict[str, Any] = {
            **FULL_SPEED,
            "TIANJIN_HOSTS": ",".join(server.hosts),
            "TIANJIN_REDIS_URL": "",
        }
        code = _crawl(args, overrides, server.base_url)
    if code == EXIT_OK:
        db = resolve_db(args.db)
        print()
        print("Look at the data:")
        if db.startswith("sqlite:///"):
            path = db[len("sqlite:///") :]
            print(
                f'  sqlite3 {path} "SELECT article_key, published_on, page_count, title FROM articles ORDER BY published_on DESC LIMIT 10"'
            )
        db_option = "" if args.db is None else f" --db {args.db}"
        print(f"  tianjin-updates runs{db_option}")
        print(f"  tianjin-updates export{db_option} -o articles.jsonl")
        print("  the tables and columns are described in docs/schema.md.")
    return code


def open_existing_database(url: str) -> Any:
    """A Repository on an existing database at the newest schema, or a one-line CommandError."""
    from storage.db import StorageError, check_database, make_engine, parse_database_url
    from storage.repository import Repository

    try:
        parsed = parse_database_url(url)
        path = parsed.database if parsed.get_backend_name() == "sqlite" else None
        if path and path != ":memory:" and not os.path.exists(path):
            raise CommandError(f"no database at {path}; run a crawl first or pass --db")
        status = check_database(url)
        if not status.up_to_date:
            raise CommandError(
                f"the database {_db_label(url)} is at schema {status.current_revision or 'none'}, not "
                f"{status.head_revision}; run: tianjin-updates db upgrade --db URL"
            )
        return Repository(make_engine(url))
    except StorageError as exc:
        raise CommandError(str(exc)) from None


def cmd_export(args: argparse.Namespace) -> int:
    from crawler.export import WRITERS, article_document, counted
    from storage.db import StorageError

    db = resolve_db(args.db)
    repo = open_existing_database(db)
    writer = WRITERS[args.format]
    last = [args.since]
    try:
        documents = counted(
            (article_document(a) for a in repo.iter_changes(since=args.since)), last
        )
        if args.output in (None, "-"):
            count = writer(documents, sys.stdout)
            sys.stdout.flush()
        else:
            # Written beside the target and renamed at the end: a failed export leaves no half file.
            tmp = f"{args.output}.part"
            try:
                with open(tmp, "w", encoding="utf-8", newline="") as stream:
                    count = writer(documents, stream)
                os.replace(tmp, args.output)
            except OSError as exc:
                raise CommandError(f"cannot write {args.output}: {exc.strerror or exc}") from None
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
    except StorageError as exc:
        raise CommandError(str(exc)) from None
    finally:
        repo.engine.dispose()
    print(
        f"Exported {count} articles changed after change_seq {args.since}; "
        f"next time pass --since {last[0]}",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    from crawler.export import RUN_COLUMNS, format_table, run_row
    from storage.db import StorageError

    repo = open_existing_database(resolve_db(args.db))
    try:
        runs = repo.recent_runs(args.limit)
    except StorageError as exc:
        raise CommandError(str(exc)) from None
    finally:
        repo.engine.dispose()
    if not runs:
        print("No crawl runs recorded yet.")
        return EXIT_OK
    for line in format_table(RUN_COLUMNS, [run_row(r) for r in runs]):
        print(line)
    return EXIT_OK


def cmd_schedule(args: argparse.Namespace) -> int:
    from crawler.profiles import SettingError, parse_setting_options
    from crawler.schedule import (
        ConfigError,
        build_config,
        read_config_file,
        run_daemon,
        setup_logging,
    )

    try:
        config = build_config(
            db=resolve_db(args.db or _config_db(args.config)),
            file=read_config_file(args.config) if args.config else None,
            every=args.every,
            cron=args.cron,
            timezone=args.timezone,
            start_url=args.start_url,
            max_pages=args.max_pages,
            settings=parse_setting_options(args.set),
            timeout=args.timeout,
            grace=args.grace,
            job_id=args.job_id,
            log_file=args.log_file,
        )
        prepare_database(config.db)
        setup_logging(config.log_file)
    except (ConfigError, SettingError) as exc:
        raise CommandError(str(exc)) from None
    return run_daemon(config)


def _config_db(path: str | None) -> str | None:
    from crawler.schedule import ConfigError, read_config_file

    if not path:
        return None
    try:
        return read_config_file(path).get("db")
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    db = resolve_db(args.db)
    prepare_database(db)
    print(f"Database {_db_label(db)} is at the newest schema.")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tianjin-updates",
        description="Crawl the 'Tianjin Updates' news section into SQLite or PostgreSQL.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add_db(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--db",
            metavar="URL",
            help="SQLAlchemy database URL (default: $TIANJIN_UPDATES_DB, else sqlite:///tianjin_updates.sqlite3)",
        )

    def add_progress(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--progress",
            type=float,
            default=5.0,
            metavar="SECONDS",
            help="seconds between progress lines on stderr; 0 for none (default: 5)",
        )

    crawl = sub.add_parser(
        "crawl", help="crawl the site once", description="Crawl the site once into the database."
    )
    crawl.add_argument(
        "--start-url",
        metavar="URL",
        help=f"home page, listing page (n_<node>.htm) or article to start from (default: {DEFAULT_START_URL})",
    )
    add_db(crawl)
    crawl.add_argument(
        "--max-pages", type=_positive_int, metavar="N", help="read at most N listing pages"
    )
    crawl.add_argument(
        "--full",
        action="store_true",
        help="read every listing page and fetch every article, not only what is new or changed",
    )
    crawl.add_argument(
        "-s",
        dest="set",
        action="append",
        metavar="NAME=VALUE",
        help="override a Scrapy or TIANJIN_* setting (repeatable), e.g. -s DOWNLOAD_DELAY=0",
    )
    crawl.add_argument(
        "--timeout",
        type=_duration,
        metavar="DURATION",
        help="stop the crawl gracefully after this long, e.g. 90m (the run is then failed: timeout)",
    )
    crawl.add_argument(
        "--redis",
        metavar="URL",
        help=(
            "seed a distributed crawl in this Redis (redis://host:6379/0) and wait while "
            "`tianjin-updates worker` processes crawl it (default: $TIANJIN_REDIS_URL; "
            "needs PostgreSQL; see docs/distributed.md)"
        ),
    )
    add_progress(crawl)
    crawl.set_defaults(func=cmd_crawl)

    worker = sub.add_parser(
        "worker",
        help="crawl as one worker of a distributed crawl",
        description=(
            "Join the distributed crawl seeded by `tianjin-updates crawl --redis URL` (waiting "
            "for one to start), crawl from its shared frontier until it is drained, and exit. "
            "See docs/distributed.md."
        ),
    )
    worker.add_argument(
        "--redis", metavar="URL", help="the crawl's Redis (default: $TIANJIN_REDIS_URL)"
    )
    add_db(worker)
    worker.add_argument(
        "-s",
        dest="set",
        action="append",
        metavar="NAME=VALUE",
        help="override a Scrapy or TIANJIN_* setting for this worker (repeatable)",
    )
    worker.add_argument(
        "--wait",
        type=_duration,
        metavar="DURATION",
        help="give up (exit 1) when no crawl starts within this long (default: wait for ever)",
    )
    worker.add_argument(
        "--forever",
        action="store_true",
        help="after a crawl, wait for the next one, until SIGTERM or Ctrl-C",
    )
    add_progress(worker)
    worker.set_defaults(func=cmd_worker)

    schedule = sub.add_parser(
        "schedule",
        help="crawl on a schedule, in the foreground (systemd, a container, a terminal)",
        description=(
            "Crawl on a schedule until SIGTERM or Ctrl-C. The schedule is kept in the database, "
            "each crawl runs in a child process, and crawls never overlap (see docs/operations.md)."
        ),
    )
    when = schedule.add_mutually_exclusive_group()
    when.add_argument("--every", metavar="DURATION", help="crawl this often, e.g. 30m, 2h, 1d, 10s")
    when.add_argument(
        "--cron", metavar="EXPR", help='crawl at these times, a crontab line, e.g. "0 */2 * * *"'
    )
    schedule.add_argument(
        "--timezone", metavar="TZ", help="time zone of --cron, e.g. Asia/Shanghai (default: UTC)"
    )
    schedule.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file with the schedule's options (options given here win)",
    )
    add_db(schedule)
    schedule.add_argument(
        "--start-url", metavar="URL", help=f"where each crawl starts (default: {DEFAULT_START_URL})"
    )
    schedule.add_argument(
        "--max-pages",
        type=_positive_int,
        metavar="N",
        help="each crawl reads at most N listing pages",
    )
    schedule.add_argument(
        "-s",
        dest="set",
        action="append",
        metavar="NAME=VALUE",
        help="a Scrapy or TIANJIN_* setting for each crawl (repeatable)",
    )
    schedule.add_argument(
        "--timeout",
        metavar="DURATION",
        help="a crawl stops itself after this long (failed: timeout); killed if still running --grace later",
    )
    schedule.add_argument(
        "--grace",
        metavar="DURATION",
        help="how long a crawl may take to stop before SIGTERM, then SIGKILL (default: 60s)",
    )
    schedule.add_argument(
        "--job-id", metavar="ID", help="id of the stored schedule (default: tianjin-updates-crawl)"
    )
    schedule.add_argument("--log-file", metavar="FILE", help="also append the log to FILE")
    schedule.set_defaults(func=cmd_schedule)

    demo = sub.add_parser(
        "demo",
        help="crawl a local replica of the site at full speed",
        description="Serve a replica of the site on a free loopback port and crawl it into the database.",
    )
    add_db(demo)
    demo.add_argument(
        "--articles",
        type=_positive_int,
        default=300,
        metavar="N",
        help="articles in the replica (default: 300)",
    )
    add_progress(demo)
    demo.set_defaults(func=cmd_demo)

    export = sub.add_parser(
        "export",
        help="write stored articles as JSON lines or CSV",
        description=(
            "Write the stored articles (with their images) in change order. With --since, only those "
            "changed after that change_seq: pass the number the previous export printed."
        ),
    )
    export.add_argument(
        "--format", choices=("jsonl", "csv"), default="jsonl", help="output format (default: jsonl)"
    )
    export.add_argument(
        "--since",
        type=_non_negative_int,
        default=0,
        metavar="CHANGE_SEQ",
        help="only articles changed after this change_seq (default: 0, all)",
    )
    add_db(export)
    export.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE instead of standard output"
    )
    export.set_defaults(func=cmd_export)

    runs = sub.add_parser(
        "runs",
        help="show recent crawl runs",
        description="Show the most recent crawl runs as a table.",
    )
    add_db(runs)
    runs.add_argument(
        "--limit", type=_positive_int, default=20, metavar="N", help="how many runs (default: 20)"
    )
    runs.set_defaults(func=cmd_runs)

    db = sub.add_parser("db", help="database upkeep", description="Database upkeep.")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_sub.add_parser("upgrade", help="bring the database to the newest schema (Alembic)")
    add_db(upgrade)
    upgrade.set_defaults(func=cmd_db_upgrade)
    return parser


def _int_at_least(lowest: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``lowest``, else a one-line usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"expected a number of at least {lowest}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _duration(text: str) -> float:
    from crawler.schedule import ConfigError, parse_duration

    try:
        return parse_duration(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CommandError as exc:
        print(f"tianjin-updates: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("tianjin-updates: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
