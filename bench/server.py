"""A fast loopback server of pre-rendered replica pages, run in its own process.

Every page a crawl of the replica asks for is rendered once by ``ReplicaSite.respond`` (gzip, as a
crawler that accepts it gets it, with the site's ``ETag``/``Last-Modified``) before the server starts, then
served from memory by a small asyncio protocol: the crawlers measured against it pay for HTTP,
not for the replica's generator or ``http.server``'s thread per connection. A path that was not
rendered up front is rendered on first request and counted as a miss.

``python -m bench.server --articles N`` prints one JSON line (port, pages, render seconds) when
ready. ``GET /__bench__/log?since=K`` answers the request log after entry ``K`` as JSON
(``?paths=0``: counts only), ``GET /__bench__/cpu`` the server's own CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import sys
import time
from collections import Counter
from email.utils import parsedate_to_datetime
from typing import Any

from crawler.replica import ReplicaSite

CONTROL = "/__bench__/"
REASONS = {200: "OK", 304: "Not Modified", 404: "Not Found", 500: "Internal Server Error"}
#: What Scrapy sends (brotli and zstandard installed or not, gzip is in it).
GZIP_HEADERS = {"Accept-Encoding": "gzip, deflate"}


def crawl_paths(site: ReplicaSite) -> list[str]:
    """Every path a full crawl of ``site`` fetches: robots.txt, home, listing, article pages.

    Includes robots.txt-disallowed pages (a polite crawl skips them; serving them is harmless).
    """
    paths = ["/robots.txt", "/"]
    paths += [site.listing_path(p) for p in range(1, site.listing_pages + 1)]
    for i in range(len(site)):
        head = site.head(i)
        paths += [head.path(p) for p in range(1, head.page_count + 1)]
    return paths


def build_site(articles: int, seed: int) -> ReplicaSite:
    """The benchmark's site: no HTTP or encoding faults (robots.txt kept)."""
    return ReplicaSite(articles=articles, seed=seed, faults=False)


class _Page:
    """One page as the complete HTTP/1.1 answer to a client that accepts gzip (as Scrapy does)."""

    __slots__ = ("etag", "gz", "gz_304", "modified", "size", "status")

    def __init__(self, site: ReplicaSite, host: str, path: str) -> None:
        gz = site.respond(host, path, GZIP_HEADERS)
        self.status = gz.status
        self.gz, self.gz_304 = _answer(gz), _not_modified(gz)
        self.etag = gz.headers.get("ETag")
        self.modified = gz.headers.get("Last-Modified")
        self.size = len(gz.body)


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _answer(response: Any) -> bytes:
    headers = dict(response.headers)
    headers["Content-Length"] = str(len(response.body))
    return _head(response.status, headers) + response.body


def _not_modified(response: Any) -> bytes | None:
    if response.status != 200 or "ETag" not in response.headers:
        return None
    kept = {k: v for k, v in response.headers.items() if k in ("ETag", "Last-Modified", "Vary")}
    return _head(304, kept)


class PageStore:
    """Pre-rendered pages by path, for the host the crawl uses; misses rendered on demand."""

    def __init__(self, site: ReplicaSite, host: str) -> None:
        self.site = site
        self.host = host
        self.pages: dict[str, _Page] = {}
        self.misses = 0
        started = time.perf_counter()
        for path in crawl_paths(site):
            self.pages[path] = _Page(site, host, path)
        self.render_seconds = time.perf_counter() - started

    def answer(self, host: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        page = self.pages.get(path) if host == self.host else None
        if page is None or "gzip" not in headers.get("accept-encoding", ""):
            self.misses += 1
            response = self.site.respond(host, path, headers)
            if response.status == 304:
                return 304, _head(304, dict(response.headers))
            return response.status, _answer(response)
        if page.gz_304 is not None and _unchanged(headers, page.etag, page.modified):
            return 304, page.gz_304
        return page.status, page.gz


def _unchanged(headers: dict[str, str], etag: str | None, modified: str | None) -> bool:
    match = headers.get("if-none-match")
    if match is not None:
        tags = [t.strip().removeprefix("W/") for t in match.split(",")]
        return "*" in tags or (etag is not None and etag in tags)
    since = headers.get("if-modified-since")
    if since is None or modified is None:
        return False
    try:
        return parsedate_to_datetime(modified) <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False


class _Protocol(asyncio.Protocol):
    """Minimal HTTP/1.1 keep-alive: GET/HEAD without bodies, pipelining tolerated."""

    def __init__(self, server: FastServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            raw, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            lines = raw.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) < 2:
                assert self.transport is not None
                self.transport.close()
                return
            method, target = parts[0], parts[1]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            out = self.server.handle(method, target, headers)
            assert self.transport is not None
            self.transport.write(out)
            if headers.get("connection", "").lower() == "close":
                self.transport.close()
                return


class FastServer:
    def __init__(self, store: PageStore) -> None:
        self.store = store
        self.log: list[tuple[str, str, int]] = []

    def handle(self, method: str, target: str, headers: dict[str, str]) -> bytes:
        host_header = headers.get("host", "")
        host = host_header.rsplit(":", 1)[0].lower()
        if target.startswith(CONTROL):
            return self.control(target)
        status, data = self.store.answer(host_header, target, headers)
        self.log.append((host, target, status))
        if method == "HEAD":
            return data[: data.find(b"\r\n\r\n") + 4]
        return data

    def control(self, target: str) -> bytes:
        name, _, query = target[len(CONTROL) :].partition("?")
        args = dict(p.partition("=")[::2] for p in query.split("&") if p)
        if name == "log":
            since = int(args.get("since", 0))
            entries = self.log[since:]
            body: dict[str, Any] = {
                "total": len(self.log),
                "count": len(entries),
                "statuses": dict(Counter(str(s) for _, _, s in entries)),
                "misses": self.store.misses,
            }
            if args.get("paths", "1") != "0":
                body["requests"] = entries
        elif name == "cpu":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            body = {"cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}
        else:
            body = {"error": f"unknown control {name}"}
        data = json.dumps(body).encode()
        return (
            _head(200, {"Content-Type": "application/json", "Content-Length": str(len(data))})
            + data
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, required=True)
    parser.add_argument("--seed", type=int, default=20200525)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    site = build_site(args.articles, args.seed)
    store = PageStore(site, f"{args.host}:{port}")
    server = FastServer(store)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(lambda: _Protocol(server), sock=sock)
        print(
            json.dumps(
                {
                    "port": port,
                    "pid": os.getpid(),
                    "pages": len(store.pages),
                    "render_s": round(store.render_seconds, 3),
                    "body_bytes": sum(p.size for p in store.pages.values()),
                }
            ),
            flush=True,
        )
        async with srv:
            await srv.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
