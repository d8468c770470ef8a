"""The replica served over loopback: both host names, faults through real HTTP, the command line."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from crawler.replica import Fault, ReplicaServer, ReplicaSite

ROOT = Path(__file__).resolve().parents[2]


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def test_server_answers_on_both_hosts_and_records_requests(
    served: tuple[ReplicaSite, ReplicaServer],
) -> None:
    site, server = served
    port = server.port
    assert port > 0
    assert server.base_url == f"http://127.0.0.1:{port}/"
    assert server.alias_url == f"http://localhost:{port}/"
    assert server.hosts == ("127.0.0.1", "localhost")
    status, headers, body = fetch(server.base_url)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert site.section_path.encode() in body
    assert fetch(server.alias_url)[2] == body
    path = site.article(0).path()
    status, _, alias_body = fetch(server.url(path, alias=True))
    assert status == 200 and alias_body == fetch(server.url(path))[2]
    assert fetch(server.url("/robots.txt", alias=True))[2] == fetch(server.url("/robots.txt"))[2]
    assert fetch(server.url("/no-such-page"))[0] == 404
    assert server.requests == [
        ("127.0.0.1", "/", 200),
        ("localhost", "/", 200),
        ("localhost", path, 200),
        ("127.0.0.1", path, 200),
        ("localhost", "/robots.txt", 200),
        ("127.0.0.1", "/robots.txt", 200),
        ("127.0.0.1", "/no-such-page", 404),
    ]


def test_listing_links_one_article_through_the_alias_host_on_the_servers_port(
    served: tuple[ReplicaSite, ReplicaServer],
) -> None:
    site, server = served
    alias_path = site.article_by_key(site.fault_keys["alias_host"]).path()
    found = []
    for page in range(1, site.listing_pages + 1):
        body = fetch(server.url(site.listing_path(page)))[2].decode()
        found += re.findall(r'href="(http://localhost:\d+/[^"]*)"', body)
    assert found == [f"http://localhost:{server.port}{alias_path}"]
    assert fetch(found[0])[0] == 200


def test_not_found_flaky_and_broken_over_http(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    keys = site.fault_keys
    not_found = site.article_by_key(keys["not_found"]).path()
    assert [fetch(server.url(not_found))[0] for _ in range(3)] == [404, 404, 404]
    flaky = site.article_by_key(keys["flaky"]).path()
    assert [fetch(server.url(flaky))[0] for _ in range(4)] == [502, 502, 200, 200]
    broken_article = site.article_by_key(keys["broken_page"])
    assert [fetch(server.url(broken_article.path(2)))[0] for _ in range(4)] == [503] * 4
    assert fetch(server.url(broken_article.path(1)))[0] == 200
    assert fetch(server.url(broken_article.path(3)))[0] == 200


def test_faults_switched_while_serving(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    path = site.article(1).path()
    site.faults[path] = Fault.flaky(times=3, status=503)
    assert [fetch(server.url(path))[0] for _ in range(4)] == [503, 503, 503, 200]
    # Setting a fault again restarts its count.
    site.faults[path] = Fault.flaky(times=1)
    assert [fetch(server.url(path))[0] for _ in range(2)] == [502, 200]
    site.faults[path] = Fault.NOT_FOUND
    assert fetch(server.url(path))[0] == 404
    del site.faults[path]
    assert fetch(server.url(path))[0] == 200
    site.faults[site.section_path] = Fault.BROKEN
    assert fetch(server.url(site.section_path))[0] == 503


def test_gbk_pages_declare_gbk_in_header_and_meta(
    served: tuple[ReplicaSite, ReplicaServer],
) -> None:
    site, server = served
    article = site.article_by_key(site.fault_keys["gbk"])
    status, headers, body = fetch(server.url(article.path()))
    assert status == 200 and headers["Content-Type"] == "text/html; charset=gbk"
    assert re.search(rb"<meta[^>]+charset=\"?gbk", body[:1024])
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    text = body.decode("gbk")
    chinese = next(p for p in article.pages[0] if re.search("[\u4e00-\u9fff]", p))
    assert chinese[:10] in text
    assert "京ICP备13028878号-35" in text


def test_meta_charset_only_pages(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    article = site.article_by_key(site.fault_keys["meta_charset"])
    status, headers, body = fetch(server.url(article.path()))
    assert status == 200 and headers["Content-Type"] == "text/html"
    assert re.search(rb"<meta[^>]+charset=\"?gbk", body[:1024])
    assert article.title.split()[-1] in body.decode("gbk")


def test_images_and_gzip_over_http(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    article = next(a for a in site if a.images)
    status, headers, body = fetch(server.url(article.images[0].src_path))
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    status, headers, body = fetch(server.url(site.section_path), {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == fetch(server.url(site.section_path))[2]


def test_server_lifecycle() -> None:
    site = ReplicaSite(articles=3)
    server = ReplicaServer(site)
    with pytest.raises(RuntimeError):
        _ = server.base_url
    server.start()
    try:
        assert fetch(server.base_url)[0] == 200
    finally:
        server.stop()
    server.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = server.base_url


def test_command_line_serves_until_stopped() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "crawler.replica", "--articles", "40", "--port", "0", "--seed", "5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        home = re.search(r"http://127\.0\.0\.1:\d+/", lines[1])
        assert home, lines
        status, _, body = fetch(home[0])
        assert status == 200
        assert f"/n_{ReplicaSite(articles=40, seed=5).node}.htm".encode() in body
    finally:
        process.terminate()
        process.wait(timeout=10)
