"""The benchmark: crawls, bare Scrapy, extraction, storage and re-crawls of an N-article replica.

Rules:

* one fast server per N (``bench.server``, its own process) serves the same pre-rendered pages
  to every contender; its throughput alone is measured and reported, and so is its CPU share
  during each crawl (well under one core means it was not what the crawl waited for);
* every measured crawl is a child process (Twisted's reactor cannot restart); its CPU seconds
  and peak RSS are the child's own ``rusage`` from ``os.wait4``, taken by a small launcher
  (``bench/spawn.py``) so that the benchmark's own RSS is not inherited as a floor;
* contenders of one section alternate within each repeat (the order rotates from one repeat to
  the next) and every figure is the median over the repeats; ratios are ratios of medians;
* crawl throughput is pages served (the server's log, robots.txt included) over Scrapy's
  ``elapsed_time_seconds`` (engine start to close, the same clock for every contender), so
  interpreter start-up and migrations are left out of pages/s but not out of CPU or RSS.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
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
    cpu_s: float
    maxrss_mb: float
    stdout: str
    stderr: str


def run_child(cmd: Sequence[str], cwd: Path, timeout: float = CRAWL_TIMEOUT) -> ChildRun:
    """Run ``cmd`` to the end; its own CPU seconds and peak RSS from ``os.wait4``.

    Through ``bench/spawn.py``: Linux carries a process's peak RSS over ``exec``, so a command
    forked from this (large) process directly would report this process's RSS as its floor.
    """
    env = dict(os.environ)
    env.pop("TIANJIN_UPDATES_DB", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        usage_file = Path(tmp) / "usage.json"
        launcher = [sys.executable, "-S", str(REPO_ROOT / "bench" / "spawn.py"), str(usage_file)]
        started = time.monotonic()
        proc = subprocess.Popen([*launcher, *cmd], cwd=str(cwd), env=env, stdout=out, stderr=err)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        wall = time.monotonic() - started
        usage = json.loads(usage_file.read_text()) if usage_file.exists() else {}
        out.seek(0)
        err.seek(0)
        return ChildRun(
            code=code,
            wall_s=wall,
            cpu_s=float(usage.get("cpu_s", 0.0)),
            maxrss_mb=float(usage.get("maxrss_kb", 0)) / 1024,  # KiB on Linux
            stdout=out.read(),
            stderr=err.read(),
        )


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
    from crawler.runner import FULL_SPEED

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
        "peak_rss_mb": run.maxrss_mb,
        "pages_per_s": pages / elapsed,
        "articles_per_s": articles / elapsed,
        "cpu_ms_per_page": 1000 * run.cpu_s / pages,
        "server_cpu_share": server_cpu / elapsed,
        "statuses": served["statuses"],
        "server_misses": served["misses"],
    }


def crawl_e2e(server: Server, db_url: str, work: Path) -> tuple[dict[str, Any], list[str]]:
    """``tianjin-updates crawl`` of the bench server into ``db_url``: figures, paths served."""
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
) -> dict[str, Any]:
    result: dict[str, Any] = {"articles": n, "repeat": repeat}
    log(f"N={n}: rendering the site and starting the server")
    server = Server(n, seed)
    try:
        site = build_site(n, seed)
        paths = crawl_paths(site)
        result["server"] = measure_server(server, paths, work, server_seconds)
        log(f"N={n}: server alone {result['server']['pages_per_s']:.0f} pages/s")

        contenders = [c for c in ("sqlite", "postgresql", "bare") if c not in skip]
        if not pg and "postgresql" in contenders:
            contenders.remove("postgresql")
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
        recrawls: list[dict[str, Any]] = []
        crawled: list[str] | None = None
        # The bare spider fetches what the real crawl fetched: computed from the site (robots.txt
        # is fetched by Scrapy's middleware, the disallowed page is not fetched), checked below
        # against the server's log of a real crawl.
        computed = [p for p in paths if p != "/robots.txt" and site.allowed(p)]
        bare_urls = [server.base_url.rstrip("/") + p for p in computed]
        for rep in range(repeat if contenders else 0):
            k = rep % len(contenders)
            for name in contenders[k:] + contenders[:k]:
                log(f"N={n} repeat {rep + 1}/{repeat}: {name}")
                if name == "bare":
                    runs[name].append(crawl_bare(server, bare_urls, work))
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
            result[f"crawl_{name}"] = _median_figures(values)
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
        "--out", default=str(REPO_ROOT / "bench" / "results"), help="results directory"
    )
    parser.add_argument(
        "--docs", action="store_true", help="rewrite the figures of docs/benchmarks.md"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--skip",
        default="",
        help="sections to leave out: sqlite,postgresql,bare,recrawl,extraction,storage",
    )
    parser.add_argument(
        "--server-seconds", type=float, default=3.0, help="length of the server-alone run"
    )
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    pg = pg_base_url(args.pg)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    notes = []
    if pg is None:
        notes.append("PostgreSQL skipped: no --pg URL and TIANJIN_TEST_PG_URL unset")
        log(notes[-1])
    started = time.monotonic()
    results: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "machine": machine(),
        "seed": args.seed,
        "postgresql": pg is not None,
        "notes": notes,
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="tianjin-bench-") as tmp:
        for n in sizes:
            repeat = args.repeat or (2 if n >= 10_000 else 3)
            results["sizes"][str(n)] = bench_size(
                n, repeat, args.seed, pg, Path(tmp), skip, args.server_seconds
            )
    results["seconds"] = time.monotonic() - started
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
