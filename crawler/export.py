"""Writers of the ``export`` and ``runs`` commands: articles as JSON lines or CSV, runs as a table."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any, TextIO

#: Fields of an exported article, in output order (also the CSV header).
EXPORT_FIELDS = (
    "article_key",
    "url",
    "title",
    "source",
    "published_on",
    "body",
    "page_count",
    "complete",
    "version",
    "change_seq",
    "duplicate_of",
    "near_duplicate_of",
    "near_duplicate_similarity",
    "first_seen_at",
    "last_seen_at",
    "images",
)


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def article_document(article: Any) -> dict[str, Any]:
    """One stored article as a JSON-ready dict: dates and times as ISO 8601, images as a list."""
    return {
        "article_key": article.article_key,
        "url": article.url,
        "title": article.title,
        "source": article.source,
        "published_on": _iso(article.published_on),
        "body": article.body,
        "page_count": article.page_count,
        "complete": bool(article.complete),
        "version": article.version,
        "change_seq": article.change_seq,
        "duplicate_of": article.duplicate_of,
        "near_duplicate_of": article.near_duplicate_of,
        "near_duplicate_similarity": article.near_duplicate_similarity,
        "first_seen_at": _iso(article.first_seen_at),
        "last_seen_at": _iso(article.last_seen_at),
        "images": [
            {"position": image.position, "url": image.url, "caption": image.caption}
            for image in article.images
        ],
    }


def write_jsonl(documents: Iterable[Mapping[str, Any]], stream: TextIO) -> int:
    """One JSON object per line, UTF-8 text kept as is; returns how many were written."""
    count = 0
    for doc in documents:
        stream.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
        stream.write("\n")
        count += 1
    return count


def write_csv(documents: Iterable[Mapping[str, Any]], stream: TextIO) -> int:
    """RFC 4180 CSV with a header; ``images`` is a JSON array in its cell, NULL an empty cell."""
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(EXPORT_FIELDS)
    count = 0
    for doc in documents:
        row = []
        for name in EXPORT_FIELDS:
            value = doc[name]
            if name == "images":
                value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            elif isinstance(value, bool):
                value = "true" if value else "false"
            row.append("" if value is None else value)
        writer.writerow(row)
        count += 1
    return count


WRITERS = {"jsonl": write_jsonl, "csv": write_csv}


def counted(documents: Iterable[dict[str, Any]], last: list[int]) -> Iterator[dict[str, Any]]:
    """Pass documents through, remembering the last change_seq in ``last[0]``."""
    for doc in documents:
        last[0] = max(last[0], int(doc["change_seq"]))
        yield doc


# --- runs -------------------------------------------------------------------------------------------

RUN_COLUMNS = (
    "run",
    "started (UTC)",
    "took",
    "status",
    "trigger",
    "new",
    "updated",
    "unchanged",
    "dup",
    "incomplete",
    "pages",
    "errors",
    "unreadable",
)


def _duration(started: datetime | None, finished: datetime | None) -> str:
    if started is None or finished is None:
        return "-"
    seconds = max(0.0, (finished - started).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def run_row(run: Any) -> tuple[str, ...]:
    """One crawl run as table cells, read from its stats' summary (or the raw counters)."""
    stats: Mapping[str, Any] = run.stats or {}
    summary: Mapping[str, Any] = stats.get("summary") or {}
    articles: Mapping[str, Any] = summary.get("articles") or {}

    def count(name: str) -> int:
        if name in articles and not isinstance(articles[name], Mapping):
            return int(articles[name])
        return int(stats.get(f"store/articles_{name}", 0))

    errors = summary.get("errors")
    error_total = (
        sum(int(v) for v in errors.values())
        if isinstance(errors, Mapping)
        else sum(int(v) for k, v in stats.items() if k.startswith("spider/errors/"))
    )
    pages = summary.get("pages_fetched", stats.get("response_received_count", 0))
    started = run.started_at.strftime("%Y-%m-%d %H:%M:%S") if run.started_at else "-"
    degraded = int(getattr(run, "degraded_pages", 0) or 0)
    # A degraded run says so in its status column too: it is the first thing an operator reads.
    status = f"{run.status} DEGRADED" if degraded else run.status
    return (
        str(run.id),
        started,
        _duration(run.started_at, run.finished_at),
        status,
        run.trigger,
        str(count("new")),
        str(count("updated")),
        str(count("unchanged")),
        str(count("duplicate")),
        str(count("incomplete")),
        str(int(pages)),
        str(error_total),
        str(degraded),
    )


def format_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Left-aligned text columns, numbers right-aligned, two spaces apart."""
    widths = [
        max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i])
        for i in range(len(header))
    ]
    numeric = [
        bool(rows) and all(r[i].isdigit() or r[i] == "-" for r in rows) for i in range(len(header))
    ]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)
        ).rstrip()

    return [line(header), *(line(r) for r in rows)]
