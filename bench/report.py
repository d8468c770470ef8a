"""Targets, the Markdown table and the plot of a benchmark's results (a JSON-like dict)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

START = "<!-- bench:figures:start -->"
END = "<!-- bench:figures:end -->"


def _sizes(results: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return sorted(((int(n), r) for n, r in results["sizes"].items()), key=lambda x: x[0])


def _target(name: str, n: int | str, value: float, op: str, bound: float) -> dict[str, Any]:
    holds = value >= bound if op == ">=" else value <= bound
    return {"target": name, "n": n, "value": value, "op": op, "bound": bound, "holds": holds}


#: How the targets name each crawl contender.
_NAMES = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "sqlite_nohelper": "sqlite without the helper process",
}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue that this run can judge, with its measured value."""
    out: list[dict[str, Any]] = []
    sizes = _sizes(results)
    for n, r in sizes:
        bare = r.get("crawl_bare")
        for backend, bound in (("sqlite", 0.85), ("postgresql", 0.8), ("sqlite_nohelper", 0.85)):
            crawl = r.get(f"crawl_{backend}")
            if bare and crawl:
                out.append(
                    _target(
                        f"end-to-end {_NAMES[backend]} / bare Scrapy pages/s",
                        n,
                        crawl["pages_per_s"] / bare["pages_per_s"],
                        ">=",
                        bound,
                    )
                )
        ex = r.get("extraction")
        if ex:
            out.append(
                _target(
                    "extraction / plain lxml parse, time per page",
                    n,
                    ex["extract"]["ms_per_page"] / ex["lxml_html_fromstring"]["ms_per_page"],
                    "<=",
                    2.0,
                )
            )
        st = r.get("storage") or {}
        for backend in ("sqlite", "postgresql"):
            if backend in st:
                out.append(
                    _target(
                        f"batched upsert / raw executemany of the same rows, articles/s ({backend})",
                        n,
                        st[backend]["ratio"],
                        ">=",
                        0.7,
                    )
                )
        re_ = r.get("recrawl")
        if re_:
            out.append(
                _target(
                    "re-crawl requests / first crawl requests", n, re_["request_ratio"], "<=", 0.02
                )
            )
    if sizes:
        n, r = sizes[-1]
        bare = r.get("crawl_bare")
        for backend in ("sqlite", "postgresql", "sqlite_nohelper"):
            crawl = r.get(f"crawl_{backend}")
            if bare and crawl:
                out.append(
                    _target(
                        f"peak memory {_NAMES[backend]} / bare Scrapy (PSS of the process tree)",
                        n,
                        crawl["peak_pss_mb"] / bare["peak_pss_mb"],
                        "<=",
                        1.3,
                    )
                )
    if len(sizes) >= 2:
        (n0, r0), (n1, r1) = sizes[0], sizes[-1]
        bare0, bare1 = r0.get("crawl_bare"), r1.get("crawl_bare")
        for backend in ("sqlite", "postgresql", "sqlite_nohelper"):
            c0, c1 = r0.get(f"crawl_{backend}"), r1.get(f"crawl_{backend}")
            if bare0 and bare1 and c0 and c1:
                grow = c1["peak_pss_mb"] - c0["peak_pss_mb"]
                grow_bare = bare1["peak_pss_mb"] - bare0["peak_pss_mb"]
                item = _target(
                    f"peak memory growth {_NAMES[backend]} / bare Scrapy growth "
                    f"(MB of PSS of the process tree, N {n0:,} to {n1:,})",
                    f"{n0}-{n1}",
                    grow / grow_bare if grow_bare > 0 else float("inf"),
                    "<=",
                    1.0,
                )
                item["growth_mb"] = grow
                item["bare_growth_mb"] = grow_bare
                out.append(item)
    return out


def _f(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    """The figures section of docs/benchmarks.md."""
    m = results["machine"]
    lines = [
        (
            f"Run of {results['started_at']} (commit `{results.get('commit') or '?'}`), "
            f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, Scrapy {m['scrapy']}, "
            f"SQLAlchemy {m['sqlalchemy']}; took {results['seconds'] / 60:.1f} min."
        ),
        "",
    ]
    for note in results.get("notes", []):
        lines += [f"*Note: {note}.*", ""]
    sizes = _sizes(results)
    lines += [
        (
            "### Crawls (medians; pages/s over Scrapy's elapsed time; CPU of the whole process "
            "tree; peak memory: the peak of the PSS summed over the process tree, sampled every "
            "0.1 s)"
        ),
        "",
        (
            "| N | contender | runs | pages | pages/s | articles/s | CPU ms/page | "
            "peak memory MB (PSS, process tree) | largest process's peak RSS MB | processes | "
            "server CPU share | vs bare pages/s |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "crawl_bare": "bare Scrapy",
        "crawl_sqlite": "`crawl` → SQLite",
        "crawl_postgresql": "`crawl` → PostgreSQL",
        "crawl_sqlite_nohelper": "`crawl` → SQLite, no helper process",
        "recrawl": "re-crawl (unchanged) → SQLite",
    }
    for n, r in sizes:
        bare = r.get("crawl_bare")
        for key, label in labels.items():
            c = r.get(key)
            if not c:
                continue
            ratio = (
                _f(c["pages_per_s"] / bare["pages_per_s"], 2)
                if bare and key in ("crawl_sqlite", "crawl_postgresql", "crawl_sqlite_nohelper")
                else "–"
            )
            lines.append(
                f"| {n:,} | {label} | {len(c['runs'])} | {_f(c['pages'])} | {_f(c['pages_per_s'])} | "
                f"{_f(c['articles_per_s'])} | {_f(c['cpu_ms_per_page'], 2)} | "
                f"{_f(c['peak_pss_mb'])} | {_f(c['max_rss_mb'])} | {_f(c['processes'])} | "
                f"{_f(100 * c['server_cpu_share'])} % | {ratio} |"
            )
    lines += workers_table(sizes)
    lines += [
        "",
        "### The server alone (32 keep-alive connections, a Python asyncio client)",
        "",
        "| N | pages rendered | render s | pages/s served | server CPU share |",
        "|---:|---:|---:|---:|---:|",
    ]
    for n, r in sizes:
        s = r.get("server")
        if s:
            lines.append(
                f"| {n:,} | {_f(s['pages_rendered'])} | {_f(s['render_s'], 1)} | {_f(s['pages_per_s'])} | "
                f"{_f(100 * s['server_cpu_share'])} % |"
            )
    lines += [
        "",
        "### Re-crawl of the unchanged site",
        "",
        "| N | first crawl requests | re-crawl requests | ratio | first crawl s | re-crawl s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n, r in sizes:
        c = r.get("recrawl")
        if c:
            lines.append(
                f"| {n:,} | {_f(c['first_pages'])} | {_f(c['pages'])} | {_f(100 * c['request_ratio'], 2)} % | "
                f"{_f(c['first_elapsed_s'], 2)} | {_f(c['elapsed_s'], 2)} |"
            )
    lines += [
        "",
        "### Extraction (same `str` pages, medians)",
        "",
        (
            "| N | pages timed | mean page bytes | `extract_*` ms/page | `lxml.html.fromstring` ms/page | "
            "extract.py's own parse ms/page | extraction / lxml |"
        ),
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, r in sizes:
        e = r.get("extraction")
        if e:
            lines.append(
                f"| {n:,} | {_f(e['pages'])} | {_f(e['mean_page_bytes'])} | {_f(e['extract']['ms_per_page'], 3)} | "
                f"{_f(e['lxml_html_fromstring']['ms_per_page'], 3)} | {_f(e['etree_html_parser']['ms_per_page'], 3)} | "
                f"{_f(e['extract']['ms_per_page'] / e['lxml_html_fromstring']['ms_per_page'], 2)} |"
            )
    lines += [
        "",
        "### Storage (batches of 50, fresh database each run, medians)",
        "",
        (
            "| N | database | signing s | upsert s | upsert articles/s | raw, same rows s | "
            "raw articles/s | upsert / raw | raw, article rows only s | upsert / raw, article rows |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, r in sizes:
        st = r.get("storage") or {}
        for backend in ("sqlite", "postgresql"):
            b = st.get(backend)
            if b:
                lines.append(
                    f"| {n:,} | {backend} | {_f(b['upsert']['sign_s'], 2)} | "
                    f"{_f(b['upsert']['seconds'], 2)} | {_f(b['upsert']['articles_per_s'])} | "
                    f"{_f(b['raw_same_rows']['seconds'], 2)} | "
                    f"{_f(b['raw_same_rows']['articles_per_s'])} | {_f(b['ratio'], 2)} | "
                    f"{_f(b['raw_article_rows']['seconds'], 2)} | "
                    f"{_f(b['ratio_article_rows'], 2)} |"
                )
    lines += [
        "",
        "### Targets",
        "",
        "| target | N | measured | target | holds |",
        "|---|---:|---:|---:|---|",
    ]
    for t in results.get("targets", []):
        size = f"{t['n']:,}" if isinstance(t["n"], int) else str(t["n"]).replace("-", " → ")
        extra = (
            f" ({t['growth_mb']:+.0f} MB vs {t['bare_growth_mb']:+.0f} MB)"
            if "growth_mb" in t
            else ""
        )
        lines.append(
            f"| {t['target']} | {size} | {t['value']:.3f}{extra} | {t['op']} {t['bound']} | "
            f"{'yes' if t['holds'] else '**no**'} |"
        )
    if results.get("sizes"):
        lines += ["", "![throughput and memory against N](benchmarks.png)"]
    return "\n".join(lines) + "\n"


def workers_table(sizes: list[tuple[int, dict[str, Any]]]) -> list[str]:
    """The "Distributed workers" table (no lines when no size has the section)."""
    found = [(n, r["workers"]) for n, r in sizes if r.get("workers")]
    if not found:
        return []
    settings = found[0][1].get("settings", {})
    idle = settings.get("TIANJIN_FRONTIER_IDLE_TIMEOUT")
    flush = settings.get("TIANJIN_FLUSH_SECONDS")
    lines = [
        "",
        (
            "### Distributed workers (medians; K `worker` processes and one seeding `crawl "
            "--redis` into PostgreSQL; pages/s over the run's own elapsed time, the end-of-crawl "
            f"wait included: idle timeout {idle} s, flush {flush} s)"
        ),
        "",
        (
            "| N | workers | runs | pages | run s | seeder process s | pages/s | articles/s | "
            "CPU ms/page (all processes) | peak memory MB (PSS, largest worker's process tree) | "
            "largest process's peak RSS MB | pages per worker | "
            "vs 1 worker pages/s | vs one-process `crawl` → PostgreSQL pages/s |"
        ),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for n, section in found:
        for k, c in section["by_workers"].items():
            shares = " / ".join(f"{100 * share:.0f}" for share in c["page_shares"]) + " %"
            lines.append(
                f"| {n:,} | {k} | {len(c['runs'])} | {_f(c['pages'])} | {_f(c['elapsed_s'], 2)} | "
                f"{_f(c['wall_s'], 2)} | {_f(c['pages_per_s'])} | {_f(c['articles_per_s'])} | "
                f"{_f(c['cpu_ms_per_page'], 2)} | {_f(c['peak_pss_mb'])} | {_f(c['max_rss_mb'])} | "
                f"{shares} | "
                f"{_f(c['vs_one_worker'], 2)} | {_f(c['vs_single_process'], 2)} |"
            )
    return lines


def plot(results: dict[str, Any], path: Path) -> str:
    """Throughput and peak memory (PSS of the process tree) against N; a sentence saying what
    was done."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot written (pip install matplotlib)"
    sizes = _sizes(results)
    if not sizes:
        return "no sizes measured: no plot written"
    distributed = [(n, r["workers"]["by_workers"]) for n, r in sizes if r.get("workers")]
    if distributed:
        fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4))
        for n, by_workers in distributed:
            ks = [int(k) for k in by_workers]
            line = ax3.plot(
                ks,
                [c["pages_per_s"] for c in by_workers.values()],
                marker="o",
                label=f"N = {n:,}",
            )[0]
            single = dict(sizes)[n].get("crawl_postgresql")
            if single:
                ax3.axhline(
                    single["pages_per_s"],
                    color=line.get_color(),
                    linestyle="--",
                    linewidth=1,
                    label=f"one process, N = {n:,}",
                )
        ax3.set_xticks(sorted({int(k) for _, b in distributed for k in b}))
        ax3.set_xlabel("workers")
        ax3.set_ylabel("pages/s")
        ax3.set_title("Distributed crawl → PostgreSQL")
        # axhline does not widen the axis: leave room above the highest figure and line.
        singles = [dict(sizes)[n].get("crawl_postgresql") for n, _ in distributed]
        highest = max(
            [c["pages_per_s"] for _, b in distributed for c in b.values()]
            + [single["pages_per_s"] for single in singles if single]
        )
        ax3.set_ylim(0, 1.3 * highest)
        ax3.grid(True, alpha=0.3)
        ax3.legend(loc="lower right", fontsize="small")
    else:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (
        ("crawl_bare", "bare Scrapy"),
        ("crawl_sqlite", "crawl → SQLite"),
        ("crawl_postgresql", "crawl → PostgreSQL"),
        ("crawl_sqlite_nohelper", "crawl → SQLite, no helper process"),
    ):
        points = [(n, r[key]) for n, r in sizes if r.get(key)]
        if not points:
            continue
        xs = [n for n, _ in points]
        ax1.plot(xs, [c["pages_per_s"] for _, c in points], marker="o", label=label)
        ax2.plot(xs, [c["peak_pss_mb"] for _, c in points], marker="o", label=label)
    for ax, title, unit in (
        (ax1, "Throughput", "pages/s"),
        (ax2, "Peak memory (PSS, process tree)", "MB"),
    ):
        ax.set_xscale("log")
        ax.set_xlabel("articles (N)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"tianjin-updates benchmark, {results['machine']['cores']} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"plot written to {path}"


def update_docs(path: Path, figures: str) -> None:
    """Replace what lies between the figure markers of ``path`` (appended when missing)."""
    block = f"{START}\n{figures}{END}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    if START in text and END in text:
        text = re.sub(
            re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.DOTALL
        )
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
