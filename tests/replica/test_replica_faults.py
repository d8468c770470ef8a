"""The fault kinds of an incremental, fault-tolerant crawl, each through a real ReplicaServer,
and what expected() says a correct crawler stores when they are switched on."""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urljoin

import lxml.html
import pytest

from crawler.replica import (
    DOWNLOAD_MAXSIZE,
    MIRROR_PREFIX,
    Fault,
    FaultKind,
    ReplicaServer,
    ReplicaSite,
    ServedRequest,
)
from crawler.replica.templates import SOFT_404_TEXT
from crawler.urls import parse_article_url

from .conftest import HOST, decode, get, leaf_blocks, page_text, plain_article, request

MiB = 1024 * 1024


def raw(server: ReplicaServer, path: str) -> bytes:
    """Every byte the server sends for one GET (the server closes: ``Connection: close``);
    b"" when the connection is reset."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        return data


def split(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


# -- the Fault type ------------------------------------------------------------------------------


def test_fault_builders_and_constants() -> None:
    assert Fault.slow(2.5) == Fault(FaultKind.SLOW, times=None, delay=2.5)
    assert Fault.slow(1, times=2).times == 2
    assert Fault.rate_limited() == Fault(FaultKind.RATE_LIMITED, times=2, status=429, retry_after=1)
    assert Fault.storm() == Fault.flaky(times=5, status=503)
    assert Fault.storm().kind is FaultKind.FLAKY
    assert Fault.reset() == Fault(FaultKind.RESET, times=1)
    assert Fault.truncated() == Fault(FaultKind.TRUNCATED, times=1)
    assert Fault.truncated(times=None).times is None
    assert Fault.redirect_loop() == Fault(FaultKind.REDIRECT_LOOP, status=302)
    assert Fault.meta_refresh("/x").target == "/x"
    assert Fault.huge().size == 40 * MiB
    for constant, kind in (
        (Fault.EMPTY, FaultKind.EMPTY),
        (Fault.SOFT_404, FaultKind.SOFT_404),
        (Fault.SELF_PAGER, FaultKind.SELF_PAGER),
        (Fault.DRIFT, FaultKind.DRIFT),
    ):
        assert constant == Fault(kind)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Fault.EMPTY.times = 3  # type: ignore[misc]
    assert len({Fault.EMPTY, Fault(FaultKind.EMPTY), Fault.DRIFT}) == 2  # hashable
    with pytest.raises(ValueError):
        Fault.slow(-1)
    with pytest.raises(ValueError):
        Fault.meta_refresh("")
    with pytest.raises(ValueError):
        Fault.huge(-1)


LOST = [
    Fault.NOT_FOUND,
    Fault.BROKEN,
    Fault.EMPTY,
    Fault.SOFT_404,
    Fault.DRIFT,
    Fault.redirect_loop(),
    Fault.huge(40 * MiB),
    Fault.huge(DOWNLOAD_MAXSIZE + 1),
    Fault.truncated(times=None),
    Fault.reset(times=None),
    Fault.storm(),
    Fault.flaky(times=4),
    Fault.flaky(times=None),
    Fault.rate_limited(times=4),
    Fault.slow(30),
    Fault.slow(60, times=4),
]
KEPT = [
    Fault.flaky(times=3),
    Fault.storm(times=3),
    Fault.rate_limited(),
    Fault.reset(),
    Fault.reset(times=3),
    Fault.truncated(),
    Fault.slow(0.5),
    Fault.slow(60, times=3),
    Fault.huge(DOWNLOAD_MAXSIZE),
    Fault.huge(1 * MiB),
    Fault.SELF_PAGER,
    Fault.MALFORMED,
    Fault.GBK,
]


@pytest.mark.parametrize("fault", LOST, ids=repr)
def test_expected_loses_a_page_whose_fault_outlasts_a_crawl(fault: Fault) -> None:
    site = ReplicaSite(articles=45)
    assert fault.permanent and fault.lost()
    first = plain_article(site)
    several = plain_article(site, min_pages=3)
    site.faults[first.path()] = fault
    site.faults[several.path(2)] = fault
    expected = site.expected()
    # On page 1: the article is not stored at all.
    assert first.key not in expected
    # On page 2 of a longer article: stored without that page, incomplete, like BROKEN.
    item = expected[several.key]
    assert not item.complete and item.page_count == several.page_count
    assert item.body == "\n\n".join(
        p for n, page in enumerate(several.pages, 1) if n != 2 for p in page
    )


@pytest.mark.parametrize("fault", KEPT, ids=repr)
def test_expected_keeps_a_page_whose_fault_a_crawl_survives(fault: Fault) -> None:
    site = ReplicaSite(articles=45)
    assert not fault.permanent
    before = site.expected()
    first = plain_article(site, min_pages=2)
    several = plain_article(site, min_pages=3, skip=1)
    site.faults[first.path()] = fault
    site.faults[several.path(2)] = fault
    assert site.expected() == before


def test_the_crawler_limits_of_expected_can_be_changed() -> None:
    site = ReplicaSite(articles=45)
    article = plain_article(site)
    site.faults[article.path()] = Fault.storm()
    assert article.key not in site.expected()
    site.retry_times = 5  # a crawl with RETRY_TIMES=5 outlasts a five-failure storm
    assert article.key in site.expected()
    site.faults[article.path()] = Fault.slow(3)
    assert article.key in site.expected()
    site.download_timeout = 2  # -s DOWNLOAD_TIMEOUT=2
    assert article.key not in site.expected()
    site.faults[article.path()] = Fault.huge(2 * MiB)
    site.max_size = MiB
    assert article.key not in site.expected()
    assert not Fault.huge(2 * MiB).lost() and Fault.huge(2 * MiB).lost(max_size=MiB)


# -- through a real server -----------------------------------------------------------------------


def test_slow(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    path = plain_article(site).path()
    normal = request(server, path)[2]
    site.faults[path] = Fault.slow(0.3)
    for _ in range(2):
        started = time.monotonic()
        code, _, body = request(server, path)
        assert time.monotonic() - started >= 0.3
        assert (code, body) == (200, normal)
    # Slow only the first time: the retry is fast.
    site.faults[path] = Fault.slow(0.3, times=1)
    started = time.monotonic()
    assert request(server, path)[0] == 200 and time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert request(server, path)[0] == 200 and time.monotonic() - started < 0.25
    # Other pages are served meanwhile (one thread per connection).
    site.faults[path] = Fault.slow(0.5)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        slow.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        started = time.monotonic()
        assert request(server, "/")[0] == 200
        assert time.monotonic() - started < 0.4
        assert slow.recv(12) == b"HTTP/1.1 200"  # the slow one answers in its time


def test_rate_limited(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    path = plain_article(site).path()
    site.faults[path] = Fault.rate_limited(times=2, retry_after=7)
    answers = [request(server, path) for _ in range(3)]
    assert [code for code, _, _ in answers] == [429, 429, 200]
    assert answers[0][1]["Retry-After"] == "7" and "Retry-After" not in answers[2][1]
    assert b"429 Too Many Requests" in answers[0][2]
    assert parse_key(path) in site.expected()  # two 429s: the retries get the page


def parse_key(path: str) -> str:
    ref = parse_article_url("http://h" + path)
    assert ref is not None
    return ref.article_key


def test_storm(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    path = site.listing_path(2)
    site.faults[path] = Fault.storm()
    assert [request(server, path)[0] for _ in range(6)] == [503] * 5 + [200]
    site.faults[path] = Fault.storm(times=2, status=500)
    assert [request(server, path)[0] for _ in range(3)] == [500, 500, 200]


def test_reset(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    path = plain_article(site).path()
    mark = server.mark()
    site.faults[path] = Fault.reset(times=2)
    assert raw(server, path) == b""  # not a byte of an answer
    with pytest.raises(OSError):  # urllib sees the connection reset (or closed) by the peer
        urllib.request.urlopen(server.url(path), timeout=10)
    assert split(raw(server, path))[0] == 200
    assert [r.status for r in server.requests_since(mark)] == [0, 0, 200]
    site.faults[path] = Fault.reset(times=None)
    assert [raw(server, path) for _ in range(3)] == [b""] * 3


def test_truncated(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    path = plain_article(site).path()
    normal = get(site, path).body
    site.faults[path] = Fault.truncated()
    code, headers, body = split(raw(server, path))
    assert code == 200 and int(headers["Content-Length"]) == len(normal)
    assert 0 < len(body) < len(normal) and normal.startswith(body)
    assert request(server, path)[2] == normal  # healed after one
    site.faults[path] = Fault.truncated(times=2)
    with pytest.raises(http.client.IncompleteRead):
        request(server, path)
    with pytest.raises(http.client.IncompleteRead):
        request(server, path)
    assert request(server, path)[2] == normal
    site.faults[path] = Fault.truncated(times=None)
    for _ in range(3):
        with pytest.raises(http.client.IncompleteRead):
            request(server, path)


def test_empty(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    path = plain_article(site).path()
    site.faults[path] = Fault.EMPTY
    for _ in range(2):
        code, headers, body = split(raw(server, path))
        assert (code, headers["Content-Length"], body) == (200, "0", b"")
        assert headers["Content-Type"].startswith("text/html")


def test_soft_404(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    # Not one of the six newest, which the "most read" box shows.
    article = next(
        a for a in (plain_article(site, skip=k) for k in range(10)) if site.index_of(a.key) >= 6
    )
    site.faults[article.path()] = Fault.SOFT_404
    code, headers, body = request(server, article.path())
    assert code == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    text = page_text(body.decode("utf-8"))
    assert SOFT_404_TEXT == "Sorry, the page you requested was not found."
    assert SOFT_404_TEXT in text
    # The usual chrome: the menu, the "most read" box and the footer; no article, no date line.
    assert "Tianjin Updates" in text and "All rights reserved" in text
    assert site.article(0).title[:30] in text
    assert article.title not in text and "Updated:" not in text
    assert not any(p in text for p in article.pages[0])
    assert article.key not in site.expected()


def test_redirect_loop(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    path = plain_article(site).path()
    site.faults[path] = Fault.redirect_loop()
    code, headers, _ = request(server, path)
    assert code == 302 and headers["Location"] == server.url(path + "?loop=1")
    code, headers, _ = request(server, path + "?loop=1")
    assert code == 302 and headers["Location"] == server.url(path)
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(server.url(path), timeout=10)
    assert error.value.code == 302  # urllib gives up on the loop
    assert server.count(path=path, status=302) >= 6
    assert server.count(path=path + "?loop=1") >= 3


def test_meta_refresh_to_the_mirror(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    article = plain_article(site, min_pages=2)
    before = site.expected()[article.key]
    mirror = site.mirror_path(article.path())
    assert mirror == MIRROR_PREFIX + article.path()
    site.faults[article.path()] = Fault.meta_refresh(mirror)
    code, headers, body = request(server, article.path())
    assert code == 200 and "Last-Modified" in headers
    doc = lxml.html.document_fromstring(body)
    refresh = doc.xpath('//meta[@http-equiv="refresh"]/@content')
    assert refresh == [f"0; url={mirror}"]
    assert article.title not in page_text(body.decode("utf-8"))
    # The mirror shows the same article: same text blocks, links resolving to the same pages.
    code, _, mirrored = request(server, mirror)
    del site.faults[article.path()]
    canonical = request(server, article.path())[2]
    assert code == 200 and leaf_blocks(mirrored.decode()) == leaf_blocks(canonical.decode())

    def targets(html: bytes, url: str) -> list[str]:
        return [
            urljoin(url, h)
            for h in lxml.html.document_fromstring(html).xpath("//a/@href|//img/@src")
        ]

    assert targets(mirrored, server.url(mirror)) == targets(canonical, server.url(article.path()))
    # A crawler that follows the refresh once stores the article as if nothing happened.
    site.faults[article.path()] = Fault.meta_refresh(mirror)
    assert site.expected()[article.key] == before
    # Pages after the first have mirrors too.
    assert request(server, site.mirror_path(article.path(2)))[0] == 200
    # A refresh to another page, or to a mirror that fails, loses the page.
    site.faults[article.path()] = Fault.meta_refresh(site.article(0).path())
    assert article.key not in site.expected()
    site.faults[article.path()] = Fault.meta_refresh(article.path())  # to itself: a loop
    assert article.key not in site.expected()
    site.faults[article.path()] = Fault.meta_refresh(mirror)
    site.faults[mirror] = Fault.BROKEN
    assert article.key not in site.expected()
    with pytest.raises(ValueError):
        site.mirror_path(site.section_path)
    assert request(server, MIRROR_PREFIX + site.section_path)[0] == 404


def _pager_links(site: ReplicaSite, path: str) -> set[int]:
    """Page numbers of the article's pages that the page at ``path`` links to."""
    key = parse_key(path)
    html = decode(get(site, path))
    pages = set()
    for href in lxml.html.document_fromstring(html).xpath("//a/@href"):
        ref = parse_article_url(urljoin(f"http://{HOST}{path}", href))
        if ref is not None and ref.article_key == key:
            pages.add(ref.page)
    return pages


@pytest.mark.parametrize("template", ["cms", "chinadaily", "plain", "html5", "table"])
def test_self_pager(template: str) -> None:
    site = ReplicaSite(articles=45, templates=(template,))
    article = plain_article(site, min_pages=3)
    # Always: every page links back to page 1 and to the page before it, never to itself.
    for page in range(2, article.page_count + 1):
        links = _pager_links(site, article.path(page))
        assert {1, page - 1} <= links and page not in links
    before = site.expected()
    single = plain_article(site)
    if single.page_count == 1:
        untouched = get(site, single.path()).body
        site.faults[single.path()] = Fault.SELF_PAGER
        assert get(site, single.path()).body == untouched  # no pager, nothing to link
    for page in (1, 2):
        site.faults[article.path(page)] = Fault.SELF_PAGER
        links = _pager_links(site, article.path(page))
        assert page in links and 1 in links
    assert site.expected() == before


def test_huge(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    article = plain_article(site)
    normal = get(site, article.path()).body
    size = 40 * MiB
    site.faults[article.path()] = Fault.huge(size)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", article.path(), headers={"Accept-Encoding": "gzip"})
    response = connection.getresponse()
    assert response.status == 200 and int(response.headers["Content-Length"]) == size
    assert "ETag" not in response.headers and "Content-Encoding" not in response.headers
    first = response.read(len(normal) // 2)
    assert normal.startswith(first)
    total = len(first)
    tail = b""
    while chunk := response.read(4 * MiB):
        total += len(chunk)
        tail = (tail + chunk)[-4096:]
    connection.close()
    assert total == size
    assert tail.endswith(b" -->\n</body>\n</html>\n") and b"padding padding" in tail
    # A client that gives up early (over its size limit) leaves the server unharmed.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", article.path())
    assert connection.getresponse().read(1000)
    connection.close()
    code, headers, body = request(server, article.path(), method="HEAD")
    assert (code, int(headers["Content-Length"]), body) == (200, size, b"")
    # Under the size limit the page is stored normally; over it, not at all.
    streamed = site.respond(HOST, article.path(), {})
    assert streamed.content_length == size and streamed.stream is not None
    assert article.key not in site.expected()
    site.faults[article.path()] = Fault.huge(2 * MiB)
    padded = site.respond(HOST, article.path(), {})
    whole = padded.body + b"".join(padded.stream() if padded.stream else [])
    assert len(whole) == 2 * MiB and page_text(whole.decode()) == page_text(normal.decode())
    assert article.key in site.expected()


def test_drift(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    article = plain_article(site, min_pages=2)
    site.faults[article.path(2)] = Fault.DRIFT
    code, headers, body = request(server, article.path(2))
    assert code == 200 and "ETag" in headers
    html = body.decode("utf-8")
    doc = lxml.html.document_fromstring(html)
    scripts = [s.text for s in doc.iter("script") if s.text]
    for script in doc.iter("script"):
        script.drop_tree()
    # Nothing to read without running the script: no title, no body, no date line.
    assert doc.find("body").text_content().strip() == ""
    assert doc.findtext(".//title") == "Exploring Tianjin"
    assert "Updated:" not in page_text(html) and doc.get_element_by_id("app") is not None
    # The content is there, as JSON.
    data = json.loads(re.fullmatch(r"window\.__DATA__ = (.*);", scripts[0])[1])  # type: ignore[index]
    assert data["title"] == article.title and data["paragraphs"] == list(article.pages[1])
    assert "</" not in scripts[0]
    item = site.expected()[article.key]
    assert not item.complete
    site.faults[article.path()] = Fault.DRIFT
    assert article.key not in site.expected()


def test_default_site_is_unchanged_by_the_new_faults(
    served: tuple[ReplicaSite, ReplicaServer],
) -> None:
    site, server = served
    twin = ReplicaSite(articles=45)
    article = plain_article(site, min_pages=2)
    for fault in (Fault.slow(0.01), Fault.truncated(), Fault.reset(), Fault.EMPTY, Fault.DRIFT):
        site.faults[article.path()] = fault
        request_path = article.path()
        try:
            request(server, request_path)
        except (OSError, http.client.HTTPException):
            pass
    del site.faults[article.path()]
    host = f"127.0.0.1:{server.port}"
    assert request(server, article.path())[2] == twin.respond(host, article.path()).body
    assert site.expected() == twin.expected()


# -- request accounting ----------------------------------------------------------------------


def test_request_accounting(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    request(server, "/")
    mark = server.mark()
    assert mark == 1 and server.requests_since(mark) == []
    article = plain_article(site)
    etag = request(server, article.path())[1]["ETag"]
    request(server, article.path(), {"If-None-Match": etag})
    request(server, "/nothing.htm")
    site.faults[article.path(1)] = Fault.reset()
    raw(server, article.path())
    since = server.requests_since(mark)
    assert since == [
        ("127.0.0.1", article.path(), 200),
        ("127.0.0.1", article.path(), 304),
        ("127.0.0.1", "/nothing.htm", 404),
        ("127.0.0.1", article.path(), 0),
    ]
    assert all(isinstance(r, ServedRequest) for r in since) and since[0].status == 200
    assert server.count() == 5 and server.count(since=mark) == 4
    assert server.count(since=mark, status=304) == 1
    assert server.count(since=mark, path=article.path()) == 3
    assert server.count(lambda r: r.path.startswith("/2"), since=mark, status=200) == 1
    assert server.statuses(mark) == {200: 1, 304: 1, 404: 1, 0: 1}
    assert server.statuses()[200] == 2
    assert not server.errors
