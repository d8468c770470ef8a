"""End-to-end: the real ``tianjin-updates crawl`` over a loopback replica into a SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from crawler.replica import ReplicaServer, ReplicaSite

from .conftest import cli_path, fast_settings, read_articles, read_runs, run_cli


def assert_matches_replica(stored: dict, site: ReplicaSite, base_url: str) -> None:
    """Every reachable article stored once, field by field as the replica generated it."""
    expected = site.expected()
    assert sorted(stored) == sorted(expected)
    base = base_url.rstrip("/")
    templates = {site.article(i).key: site.article(i).template for i in range(len(site))}
    for key, want in expected.items():
        got = stored[key]
        where = f"article {key} ({templates.get(key, '?')})"
        assert got["title"] == want.title, where
        assert got["source"] == want.source, where
        assert got["published_on"] == want.published_on.isoformat(), where
        assert got["body"] == want.body, where
        assert got["page_count"] == want.page_count, where
        assert got["complete"] == want.complete, where
        assert urlsplit(got["url"]).path == want.path, where
        assert got["images"] == [
            (pos, base + path, caption) for pos, path, caption in want.images
        ], where


def test_crawl_stores_every_reachable_article_exactly_once(
    replica: ReplicaServer, db_url: str
) -> None:
    db = db_url
    result = run_cli("crawl", "--start-url", replica.base_url, "--db", db, *fast_settings(replica))
    assert result.code == 0, result.stderr
    site = replica.site
    stored = read_articles(db)
    assert_matches_replica(stored, site, replica.base_url)

    # The faults behaved as the site says they should.
    keys = site.fault_keys
    assert keys["not_found"] not in stored
    assert keys["robots_disallowed"] not in stored
    assert stored[keys["broken_page"]]["complete"] is False
    assert stored[keys["flaky"]]["complete"] is True
    assert stored[keys["sixteen_pages"]]["page_count"] == 16
    assert any("\u4e00" <= ch <= "\u9fff" for ch in stored[keys["gbk"]]["body"])
    assert keys["listed_twice"] in stored and keys["alias_host"] in stored

    # robots.txt was obeyed: the disallowed article page was never requested.
    requested = {path for _host, path, _status in replica.requests}
    for path in site.disallowed_paths:
        assert not any(p.startswith(path) for p in requested), path

    # One run recorded, succeeded, with its counters; the summary says what happened.
    runs = read_runs(db)
    assert [r["status"] for r in runs] == ["succeeded"]
    stats = runs[0]["stats"]
    assert stats["store/articles_new"] == len(stored)
    assert stats["store/articles_incomplete"] == 1
    assert f"{len(stored)} new" in result.stdout and "1 incomplete" in result.stdout
    assert "http_404" in result.stdout


def test_second_crawl_finds_nothing_new(replica: ReplicaServer, tmp_path: Path) -> None:
    db = tmp_path / "twice.sqlite3"
    args = (
        "crawl",
        "--start-url",
        replica.base_url,
        "--db",
        f"sqlite:///{db}",
        *fast_settings(replica),
    )
    assert run_cli(*args).code == 0
    first = read_articles(db)
    second_run = run_cli(*args, "--full")
    assert second_run.code == 0, second_run.stderr
    second = read_articles(db)
    assert sorted(second) == sorted(first)
    for key in first:
        assert {k: v for k, v in second[key].items() if k != "last_seen_at"} == {
            k: v for k, v in first[key].items() if k != "last_seen_at"
        }
    assert f"0 new, 0 updated, {len(first)} unchanged" in second_run.stdout
    assert [r["status"] for r in read_runs(db)] == ["succeeded", "succeeded"]


def test_templates_never_seen_by_extraction(tmp_path: Path) -> None:
    """A replica variant in the holdout templates only: same exact fields."""
    site = ReplicaSite(articles=60, seed=99, templates=("html5", "table"))
    db = tmp_path / "holdout.sqlite3"
    with ReplicaServer(site) as server:
        result = run_cli(
            "crawl",
            "--start-url",
            server.base_url,
            "--db",
            f"sqlite:///{db}",
            *fast_settings(server),
        )
        assert result.code == 0, result.stderr
        assert_matches_replica(read_articles(db), site, server.base_url)


def test_max_pages_limits_the_listing(replica: ReplicaServer, tmp_path: Path) -> None:
    db = tmp_path / "two-pages.sqlite3"
    listing = replica.base_url.rstrip("/") + replica.site.section_path
    result = run_cli(
        "crawl",
        "--start-url",
        listing,
        "--max-pages",
        "2",
        "--db",
        f"sqlite:///{db}",
        *fast_settings(replica),
    )
    assert result.code == 0, result.stderr
    stored = read_articles(db)
    listing_paths = {path for _h, path, _s in replica.requests if "/n_" in path}
    assert listing_paths <= {
        replica.site.section_path,
        replica.site.section_path.replace(".htm", "_2.htm"),
    }
    per_page = replica.site.per_page
    assert 2 * per_page - 4 <= len(stored) <= 2 * per_page
    newest = {replica.site.article(i).key for i in range(per_page)}
    assert newest - set(stored) <= set(replica.site.fault_keys.values())


def test_unreachable_start_url_is_one_line_error(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite3"
    result = run_cli(
        "crawl",
        "--start-url",
        "http://127.0.0.1:9/",
        "--db",
        f"sqlite:///{db}",
        "-s",
        "TIANJIN_RETRY_BACKOFF=0",
        "-s",
        "RETRY_TIMES=1",
        "--progress",
        "0",
    )
    assert result.code == 1
    errors = [
        line for line in result.stderr.splitlines() if line.startswith("tianjin-updates: error:")
    ]
    assert len(errors) == 1 and "127.0.0.1:9" in errors[0]
    assert "Traceback" not in result.stderr
    assert [r["status"] for r in read_runs(db)] == ["failed"]


def test_bad_database_urls_are_one_line_errors(tmp_path: Path) -> None:
    for url in ("nosuchdb://x/y", f"sqlite:///{tmp_path}/missing-dir/x.sqlite3", "not a url"):
        result = run_cli("crawl", "--start-url", "http://127.0.0.1:9/", "--db", url)
        assert result.code == 1, url
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("tianjin-updates: error:"), (url, result.stderr)
        assert "Traceback" not in result.stderr


def test_unwritable_database_file_is_one_line_error(tmp_path: Path) -> None:
    # A path below a regular file can be created by nobody, root included (CI runs as root).
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli(
        "crawl", "--start-url", "http://127.0.0.1:9/", "--db", f"sqlite:///{blocker}/x.sqlite3"
    )
    assert result.code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("tianjin-updates: error:")


def test_bad_setting_option_is_one_line_error() -> None:
    result = run_cli("crawl", "-s", "NOEQUALS")
    assert result.code == 1
    assert result.stderr.strip() == "tianjin-updates: error: -s expects NAME=VALUE, got 'NOEQUALS'"


def test_demo_quick_start_in_an_empty_directory(tmp_path: Path) -> None:
    """`tianjin-updates demo` as the README's quick start runs it: default database file in the cwd."""
    result = run_cli("demo", "--articles", "50", cwd=tmp_path)
    assert result.code == 0, result.stderr
    db = tmp_path / "tianjin_updates.sqlite3"
    assert db.exists()
    stored = read_articles(db)
    expected = ReplicaSite(articles=50).expected()
    assert sorted(stored) == sorted(expected)
    # What it reports is the crawl's own findings, not Scrapy's remarks on the project's set-up
    # (a middleware that is off on an ordinary crawl, the Referer middleware turned off).
    assert "[scrapy.middleware]" not in result.stderr
    assert "RefererMiddleware" not in result.stderr
    assert "Look at the data" in result.stdout
    assert "sqlite3 tianjin_updates.sqlite3" in result.stdout
    assert "tianjin-updates runs\n" in result.stdout
    # The commands it suggests work as printed.
    assert run_cli("runs", cwd=tmp_path).stdout.splitlines()[1].split()[4] == "succeeded"
    assert run_cli("export", "-o", "articles.jsonl", cwd=tmp_path).code == 0
    assert len((tmp_path / "articles.jsonl").read_text(encoding="utf-8").splitlines()) == len(
        stored
    )


def test_the_spider_middlewares_left_out_would_find_nothing(tmp_path: Path) -> None:
    """crawler/settings.py turns Scrapy's URL-length and meta-copy spider middlewares off (each
    wraps every callback's output); with them on, over a site with redirects and retries, the
    first drops no request and the second sees no response's meta carried into a request."""
    site = ReplicaSite(articles=60, seed=41)
    db = f"sqlite:///{tmp_path / 'middlewares.sqlite3'}"
    both = {
        "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": 800,
        "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": 1000,
    }
    with ReplicaServer(site) as server:
        result = run_cli(
            "crawl", "--start-url", server.base_url, "--db", db, "--progress", "0",
            *fast_settings(server), "-s", f"SPIDER_MIDDLEWARES={json.dumps(both)}",
            "-s", "LOG_LEVEL=INFO",
        )  # fmt: skip
    assert result.code == 0, result.stderr[-2000:]
    assert "MetaCopyDetectionMiddleware" in result.stderr  # on, as Scrapy's list of them shows
    assert "internal meta keys" not in result.stderr
    assert "url length" not in result.stderr
    assert sorted(read_articles(db)) == sorted(site.expected())


def _listening_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:[") : -1])
    return found


def test_a_crawl_listens_on_no_port(tmp_path: Path) -> None:
    """Scrapy's telnet console and remote control (each runs code sent to a local port) are off."""
    site = ReplicaSite(articles=150, seed=44, faults=False)
    db = f"sqlite:///{tmp_path / 'ports.sqlite3'}"
    with ReplicaServer(site) as server:
        proc = subprocess.Popen(
            [
                cli_path(), "crawl", "--start-url", server.base_url, "--db", db, "--progress", "0",
                *fast_settings(server), "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=1",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while len(server.requests) < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None, "the crawl ended before it could be looked at"
            pids = [proc.pid, *map(int, Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
                                   .read_text().split())]  # fmt: skip
            listening = _listening_inodes()
            open_sockets = set().union(*map(_socket_inodes, pids))
        finally:
            proc.terminate()
            proc.communicate(timeout=60)
    assert open_sockets, "the crawl's sockets were seen"
    assert not open_sockets & listening


def test_scrapy_crawl_from_the_repository_root(replica: ReplicaServer, tmp_path: Path) -> None:
    import subprocess
    import sys

    from .conftest import REPO_ROOT

    db = tmp_path / "scrapy.sqlite3"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scrapy",
            "crawl",
            "tianjin_updates",
            "-a",
            f"start_url={replica.base_url}",
            "-s",
            f"TIANJIN_UPDATES_DB=sqlite:///{db}",
            "-s",
            "LOG_LEVEL=WARNING",
            *fast_settings(replica),
        ],
        check=False,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(read_articles(db)) == sorted(replica.site.expected())


def test_faults_switched_per_page(tmp_path: Path) -> None:
    """Faults on pages the default site keeps healthy: a dead page 1, a dead listing page, a dead
    middle page of the 16-page article, a flaky listing page. Nothing reachable is lost."""
    from crawler.replica import Fault

    site = ReplicaSite(articles=80, seed=3)
    keys = site.fault_keys
    sixteen = site.article_by_key(keys["sixteen_pages"])
    healthy = [
        site.article(i)
        for i in range(len(site))
        if site.article(i).key not in keys.values() and site.article(i).path() not in site.faults
    ]
    dead_first = healthy[0]
    site.faults[dead_first.path()] = Fault.broken(500)
    site.faults[sixteen.path(9)] = Fault.NOT_FOUND
    # A dead listing page hides what only it lists: pick one away from the articles checked below.
    spared = {site.index_of(sixteen.key), site.index_of(dead_first.key)}
    pages = [
        k for k in range(2, site.listing_pages + 1) if not spared & set(site.listing_entries(k))
    ]
    site.faults[site.listing_path(pages[-1])] = Fault.NOT_FOUND
    site.faults[site.listing_path(pages[0])] = Fault.flaky(times=1, status=503)

    db = tmp_path / "faults.sqlite3"
    with ReplicaServer(site) as server:
        result = run_cli(
            "crawl",
            "--start-url",
            server.base_url,
            "--db",
            f"sqlite:///{db}",
            *fast_settings(server),
        )
        assert result.code == 0, result.stderr
        stored = read_articles(db)
        assert_matches_replica(stored, site, server.base_url)

    assert dead_first.key not in stored
    row = stored[sixteen.key]
    assert (row["page_count"], row["complete"]) == (16, False)
    stats = read_runs(db)[0]["stats"]
    assert stats["spider/articles_skipped/http_500"] == 1
    assert stats["store/articles_incomplete"] == 2  # the default broken page and page 9 of 16
    assert stats["spider/errors/listing_http_404"] == 1
