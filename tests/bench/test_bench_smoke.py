"""The benchmark still runs end to end at a small N (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# bench/ is a directory of the repository, not an installed package: load its report module by path.
_spec = importlib.util.spec_from_file_location("bench_report", REPO_ROOT / "bench" / "report.py")
assert _spec is not None and _spec.loader is not None
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)


def _positive(section: dict, *keys: str) -> None:
    for key in keys:
        assert section[key] > 0, (key, section[key])


def test_benchmark_runs_at_small_n(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    # PostgreSQL is measured when TIANJIN_TEST_PG_URL is set, and distributed crawls when
    # TIANJIN_TEST_REDIS_URL is set too (one and two workers at this size); skipped with a note
    # otherwise.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--sizes",
            "60",
            "--repeat",
            "1",
            "--out",
            str(tmp_path),
            "--server-seconds",
            "0.5",
            "--workers",
            "1,2",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    results = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    size = results["sizes"]["60"]
    if os.environ.get("TIANJIN_REQUIRE_SERVICES", "").strip().lower() in ("1", "true", "yes"):
        # CI must not pass by skipping the sections that need the services.
        assert results["postgresql"] and results["redis"], results["notes"]
    crawls = ["crawl_sqlite", "crawl_bare", "recrawl"]
    if results["postgresql"]:
        crawls.append("crawl_postgresql")
    else:
        assert any("PostgreSQL skipped" in note for note in results["notes"])
    for name in crawls:
        _positive(
            size[name],
            "pages",
            "elapsed_s",
            "pages_per_s",
            "articles_per_s",
            "cpu_ms_per_page",
            "peak_pss_mb",
            "peak_rss_sum_mb",
            "max_rss_mb",
            "processes",
        )
        # The tree's PSS never exceeds the sum of its RSS.
        assert size[name]["peak_pss_mb"] <= size[name]["peak_rss_sum_mb"] + 1
    if results["postgresql"] and results["redis"]:
        assert results["workers"] == [1, 2]
        workers = size["workers"]["by_workers"]
        assert list(workers) == ["1", "2"]
        for k, figures in workers.items():
            _positive(
                figures,
                "pages",
                "elapsed_s",
                "wall_s",
                "pages_per_s",
                "articles_per_s",
                "cpu_ms_per_page",
                "peak_pss_mb",
                "max_rss_mb",
                "vs_one_worker",
                "vs_single_process",
            )
            # Every article stored, the pages of one crawl (robots.txt once per worker that took
            # work), every worker's share (0 for one that joined with nothing left to take).
            assert figures["articles"] == size["crawl_postgresql"]["articles"]
            single = size["crawl_postgresql"]["pages"]
            assert single <= figures["pages"] <= single + int(k) - 1
            assert len(figures["page_shares"]) == int(k)
            assert abs(sum(figures["page_shares"]) - 1) < 1e-9
        assert workers["1"]["vs_one_worker"] == 1
    else:
        assert "workers" not in size
        assert any("Distributed workers skipped" in note for note in results["notes"])
    # The bare spider fetched exactly what the real crawl fetched.
    assert size["same_pages"]["only_crawled"] == [] and size["same_pages"]["only_bare"] == []
    assert size["crawl_bare"]["pages"] == size["crawl_sqlite"]["pages"]
    _positive(size["server"], "pages_per_s", "requests", "pages_rendered")
    assert size["server"]["misses"] == 0
    _positive(size["recrawl"], "request_ratio")
    for name in ("extract", "lxml_html_fromstring", "etree_html_parser"):
        _positive(size["extraction"][name], "ms_per_page", "pages_per_s")
    backends = ["sqlite"] + (["postgresql"] if results["postgresql"] else [])
    for backend in backends:
        storage = size["storage"][backend]
        _positive(storage["upsert"], "seconds", "articles_per_s")
        _positive(storage["upsert"], "sign_s")
        _positive(storage["raw_same_rows"], "seconds", "articles_per_s")
        _positive(storage["raw_article_rows"], "seconds", "articles_per_s")
        _positive(storage, "ratio", "ratio_article_rows")
    # The raw baseline writes what the upsert writes: every article, version and band row.
    rows = size["storage"]["rows_per_batch"]
    assert rows["articles"] == rows["versions"] > 0 and rows["lsh_bands"] > rows["articles"]
    assert {t["target"].split(" (")[0] for t in results["targets"]} >= {
        "end-to-end sqlite / bare Scrapy pages/s",
        "extraction / plain lxml parse, time per page",
        "batched upsert / raw executemany of the same rows, articles/s",
        "re-crawl requests / first crawl requests",
        "peak memory sqlite / bare Scrapy",
    }

    table = (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert table == report.markdown(results)
    assert "| 60 | bare Scrapy | 1 |" in table
    assert "### Targets" in table and "### Storage" in table
    assert ("### Distributed workers" in table) == bool(results["workers"])

    docs = tmp_path / "benchmarks.md"
    docs.write_text(
        f"# B\n\nbefore\n\n{report.START}\nOLD-FIGURES\n{report.END}\n\nafter\n", encoding="utf-8"
    )
    report.update_docs(docs, table)
    text = docs.read_text(encoding="utf-8")
    assert "OLD-FIGURES" not in text and "before" in text and "after" in text and table in text
