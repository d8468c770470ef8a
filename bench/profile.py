"""Profile one ``tianjin-updates crawl`` (and the bare spider) of the bench server with py-spy.

``python -m bench.profile --articles 1000 [--pg URL] [--out bench/results]`` writes py-spy's
collapsed stacks of every thread (``*.folded``, open them in speedscope or inferno) and prints
the functions holding the most samples (busy threads), inclusive and own share. Needs
``py-spy`` (``pip install py-spy``) and permission to ptrace a child (the default on Linux).
``--parts``: cProfile extraction and the storage save path alone, in this process, instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

from bench.run import (
    REPO_ROOT,
    Server,
    cli_path,
    pg_base_url,
    pg_schema,
    speed_settings,
)
from bench.server import build_site, crawl_paths

#: Frames that say where the time goes; the rest of a stack is framework plumbing.
INTERESTING = ("crawler/", "pipelines/", "storage/", "scrapy/", "sqlalchemy/", "lxml", "twisted/")


def summarise(folded: Path, top: int) -> list[str]:
    """Functions by inclusive samples (each counted once per stack) from collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in folded.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    lines = [f"{total} samples; inclusive share, then own share, of the {top} biggest functions:"]
    for frame, n in inclusive.most_common(top * 4):
        if not any(part in frame for part in INTERESTING):
            continue
        lines.append(f"  {100 * n / total:5.1f} %  {100 * own[frame] / total:5.1f} %  {frame}")
        if len(lines) > top:
            break
    return lines


def record(cmd: list[str], folded: Path, rate: int) -> None:
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    env = dict(os.environ)
    env.pop("TIANJIN_UPDATES_DB", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    subprocess.run(
        [
            pyspy,
            "record",
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--function",
            "--output",
            str(folded),
            "--",
            *cmd,
        ],
        check=True,
        cwd=str(folded.parent),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def profile_parts(articles: int, top: int) -> None:
    """cProfile of extraction and of the storage save path, in this process (no server)."""
    import cProfile
    import io
    import pstats
    import shutil as _shutil

    from bench.run import BATCH, article_records, saved_pages
    from crawler.extract import extract_article, extract_listing
    from storage.db import make_engine, upgrade
    from storage.repository import Repository

    site = build_site(articles, 20200525)
    base = "http://127.0.0.1:8000/"
    pages = saved_pages(site, crawl_paths(site), base, 2000)

    def show(profiler: cProfile.Profile, title: str) -> None:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(top)
        print(f"## {title}")
        print(stream.getvalue())

    profiler = cProfile.Profile()
    profiler.enable()
    for kind, url, html in pages:
        (extract_article if kind == "article" else extract_listing)(html, url)
    profiler.disable()
    show(profiler, f"extraction of {len(pages)} pages")

    records = article_records(site, base)
    work = Path(tempfile.mkdtemp(prefix="tianjin-profile-"))
    try:
        engine = make_engine(f"sqlite:///{work / 'storage.sqlite3'}")
        upgrade(engine)
        repository = Repository(engine)
        repository.ensure_similarity_index()
        import datetime as dt

        now = dt.datetime.now(dt.UTC)
        run_id = repository.start_run("manual", now)
        repository.hasher  # noqa: B018 - set up outside the profile (a one-time cost)
        batches = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]
        profiler = cProfile.Profile()
        profiler.enable()
        for batch in batches:
            repository.sign(batch)
        profiler.disable()
        show(profiler, f"signing of {len(records)} articles (batches of {BATCH})")
        profiler = cProfile.Profile()
        profiler.enable()
        for batch in batches:
            repository.save_articles(batch, now, run_id)
        profiler.disable()
        engine.dispose()
        show(
            profiler,
            f"save_articles of {len(records)} signed articles (SQLite, batches of {BATCH})",
        )
    finally:
        _shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--pg", default=None, help="also profile a crawl into this PostgreSQL")
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "results"))
    parser.add_argument("--rate", type=int, default=250, help="samples a second")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--parts", action="store_true", help="cProfile extraction and storage alone instead"
    )
    args = parser.parse_args(argv)
    if args.parts:
        profile_parts(args.articles, args.top)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pg = pg_base_url(args.pg)
    server = Server(args.articles, 20200525)
    try:
        site = build_site(args.articles, 20200525)
        with tempfile.TemporaryDirectory(prefix="tianjin-profile-") as tmp:
            work = Path(tmp)
            jobs: list[tuple[str, list[str]]] = []
            db = work / "profile.sqlite3"
            crawl = [
                cli_path(),
                "crawl",
                "--start-url",
                server.base_url,
                "--progress",
                "0",
                *speed_settings(server),
            ]
            jobs.append(("crawl-sqlite", [*crawl, "--db", f"sqlite:///{db}"]))
            urls = work / "urls.txt"
            urls.write_text(
                "\n".join(
                    server.base_url.rstrip("/") + p
                    for p in crawl_paths(site)
                    if p != "/robots.txt" and site.allowed(p)
                )
                + "\n",
                encoding="utf-8",
            )
            jobs.append(
                (
                    "bare",
                    [
                        sys.executable,
                        "-m",
                        "bench.bare",
                        "--urls",
                        str(urls),
                        *speed_settings(server),
                    ],
                )
            )
            for name, cmd in jobs:
                folded = out / f"profile-{name}-{args.articles}.folded"
                record(cmd, folded, args.rate)
                print(f"## {name} (N={args.articles}): {folded}")
                print("\n".join(summarise(folded, args.top)))
            if pg:
                with pg_schema(pg) as url:
                    folded = (
                        out
                        / f"profile-crawl-postgresql-{args.articles}-{uuid.uuid4().hex[:4]}.folded"
                    )
                    record([*crawl, "--db", url], folded, args.rate)
                    print(f"## crawl-postgresql (N={args.articles}): {folded}")
                    print("\n".join(summarise(folded, args.top)))
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
