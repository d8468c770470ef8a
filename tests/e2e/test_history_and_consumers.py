"""End-to-end, issue by issue of a consumer's life: re-crawls, edits, re-posts, export, reading changes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from crawler.replica import ReplicaServer, ReplicaSite

from .conftest import cli_path, fast_settings, query, read_articles, read_runs, run_cli

VOLATILE = {"last_seen_at"}


def crawl(server: ReplicaServer, db: str, *extra: str) -> None:
    result = run_cli("crawl", "--start-url", server.base_url, "--db", db, *fast_settings(server), *extra)
    assert result.code == 0, result.stderr


def dump(db: str) -> dict[str, list[dict[str, Any]]]:
    """Every table a consumer reads, in a stable order, minus what a re-crawl may move."""
    tables = {
        "articles": "SELECT * FROM articles ORDER BY article_key",
        "article_images": "SELECT * FROM article_images ORDER BY article_id, position",
        "article_versions": "SELECT * FROM article_versions ORDER BY article_id, version",
        "article_lsh_bands": "SELECT * FROM article_lsh_bands ORDER BY article_id, band",
        "change_counter": "SELECT * FROM change_counter",
    }
    return {
        name: [{k: v for k, v in row.items() if k not in VOLATILE} for row in query(db, sql)]
        for name, sql in tables.items()
    }


def test_recrawl_changes_nothing_but_last_seen_and_the_runs(db_url: str) -> None:
    site = ReplicaSite(articles=60, seed=11)
    with ReplicaServer(site) as server:
        crawl(server, db_url)
        before = dump(db_url)
        seen_before = {r["article_key"]: r["last_seen_at"] for r in query(db_url, "SELECT * FROM articles")}
        crawl(server, db_url, "--full")
    assert dump(db_url) == before
    seen_after = {r["article_key"]: r["last_seen_at"] for r in query(db_url, "SELECT * FROM articles")}
    assert all(str(seen_after[k]) > str(seen_before[k]) for k in seen_before)
    runs = read_runs(db_url)
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    assert runs[1]["stats"]["store/articles_unchanged"] == len(seen_before)
    table = run_cli("runs", "--db", db_url, "--limit", "5").stdout.splitlines()
    assert table[0].split()[:4] == ["run", "started", "(UTC)", "took"]
    newest, oldest = (line.split() for line in table[1:])
    assert (newest[0], newest[4], newest[5], newest[6]) == (str(runs[1]["id"]), "succeeded", "manual", "0")
    assert newest[8] == str(len(seen_before))  # unchanged
    assert oldest[6] == str(len(seen_before))  # new
    assert runs[1]["stats"].get("store/articles_new", 0) == 0


def test_an_edit_gives_one_new_version_and_keeps_the_old_text(db_url: str) -> None:
    site = ReplicaSite(articles=60, seed=12)
    key = site.article(5).key
    with ReplicaServer(site) as server:
        crawl(server, db_url)
        old = read_articles(db_url)[key]
        others_seq = {k: a["change_seq"] for k, a in read_articles(db_url).items() if k != key}
        edited = site.edit_article(key)
        crawl(server, db_url, "--full")
    new = read_articles(db_url)[key]
    assert new["body"] == edited.body != old["body"]
    assert new["version"] == 2
    assert new["change_seq"] > max(others_seq.values())
    versions = query(
        db_url,
        "SELECT v.version, v.body, v.title, v.crawl_run_id FROM article_versions v "
        "JOIN articles a ON a.id = v.article_id WHERE a.article_key = :key ORDER BY v.version",
        key=key,
    )
    runs = read_runs(db_url)
    assert [(v["version"], v["body"], v["crawl_run_id"]) for v in versions] == [
        (1, old["body"], runs[0]["id"]),
        (2, edited.body, runs[1]["id"]),
    ]
    # Nothing else moved.
    assert {k: a["change_seq"] for k, a in read_articles(db_url).items() if k != key} == others_seq
    assert runs[1]["stats"]["store/articles_updated"] == 1


def test_reposts_are_marked_not_merged(db_url: str) -> None:
    site = ReplicaSite(articles=60, seed=13)
    keys = site.fault_keys
    with ReplicaServer(site) as server:
        crawl(server, db_url)
    stored = read_articles(db_url)
    expected = site.expected()
    assert sorted(stored) == sorted(expected)
    for key, want in expected.items():
        assert stored[key]["duplicate_of"] == want.duplicate_of, key
        assert stored[key]["near_duplicate_of"] == want.near_duplicate_of, key
    assert stored[keys["repost"]]["duplicate_of"] == keys["repost_of"]
    near = stored[keys["near_repost"]]
    assert near["near_duplicate_of"] == keys["near_repost_of"]
    assert 0.8 <= near["near_duplicate_similarity"] < 1.0
    assert stored[keys["repost"]]["body"] == stored[keys["repost_of"]]["body"]  # stored, not dropped
    stats = read_runs(db_url)[0]["stats"]
    assert stats["store/articles_duplicate"] == 1
    assert stats["store/articles_near_duplicate"] == 1


def test_export_round_trips_and_resumes(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'export.sqlite3'}"
    site = ReplicaSite(articles=50, seed=14)
    with ReplicaServer(site) as server:
        crawl(server, db)
        out = tmp_path / "all.jsonl"
        result = run_cli("export", "--db", db, "-o", str(out))
        assert result.code == 0, result.stderr
        documents = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        stored = read_articles(db)
        assert [d["change_seq"] for d in documents] == sorted(a["change_seq"] for a in stored.values())
        for doc in documents:
            row = stored[doc["article_key"]]
            for name, value in doc.items():
                if name == "images":
                    assert [(i["position"], i["url"], i["caption"]) for i in value] == row["images"]
                elif name in ("first_seen_at", "last_seen_at"):
                    assert value.replace("T", " ").startswith(str(row[name])[:19])
                else:
                    assert value == row[name], name
        last = documents[-1]["change_seq"]
        assert f"--since {last}" in result.stderr

        # Nothing changed: an export since the last one is empty; after an edit, it holds exactly that.
        assert run_cli("export", "--db", db, "--since", str(last)).stdout == ""
        edited_key = site.article(3).key
        site.edit_article(edited_key)
        crawl(server, db, "--full")
    later = run_cli("export", "--db", db, "--since", str(last))
    assert [json.loads(line)["article_key"] for line in later.stdout.splitlines()] == [edited_key]

    csv_out = run_cli("export", "--format", "csv", "--db", db)
    rows = list(csv.DictReader(io.StringIO(csv_out.stdout)))
    by_key = {r["article_key"]: r for r in rows}
    assert sorted(by_key) == sorted(stored)
    for key, row in by_key.items():
        assert json.loads(row["images"]) == [
            {"position": p, "url": u, "caption": c} for p, u, c in read_articles(db)[key]["images"]
        ]
        assert row["body"] == read_articles(db)[key]["body"]


def test_a_reader_following_change_seq_during_a_crawl_misses_nothing(db_url: str) -> None:
    site = ReplicaSite(articles=400, seed=15)
    assert run_cli("db", "upgrade", "--db", db_url).code == 0  # the reader starts on an empty schema
    with ReplicaServer(site) as server:
        proc = subprocess.Popen(
            [cli_path(), "crawl", "--start-url", server.base_url, "--db", db_url, "--progress", "0",
             *fast_settings(server), "-s", "TIANJIN_BATCH_SIZE=7", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=4"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        seen: list[tuple[str, int]] = []
        last = 0
        reads_during_crawl = 0

        def read_more() -> int:
            nonlocal last
            rows = query(
                db_url,
                "SELECT article_key, change_seq FROM articles WHERE change_seq > :last "
                "ORDER BY change_seq LIMIT 25",
                last=last,
            )
            for row in rows:
                seen.append((row["article_key"], row["change_seq"]))
                last = row["change_seq"]
            return len(rows)

        while proc.poll() is None:
            if read_more():
                reads_during_crawl += 1
            time.sleep(0.01)
        _, err = proc.communicate()
        assert proc.returncode == 0, err
        while read_more():
            pass
    assert reads_during_crawl >= 3  # the reader really ran alongside the writer
    final = {r["article_key"]: r["change_seq"] for r in query(db_url, "SELECT article_key, change_seq FROM articles")}
    assert len(seen) == len(set(seen))  # nothing seen twice
    assert {k for k, _ in seen} == set(final)  # nothing missed
    latest: dict[str, int] = {}
    for key, seq in seen:
        latest[key] = seq
    assert latest == final
