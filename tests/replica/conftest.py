"""Fixtures and HTML helpers for the replica tests: a small site, a live server, an lxml text oracle."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator

import lxml.html
import pytest

from crawler.replica import ReplicaArticle, ReplicaResponse, ReplicaServer, ReplicaSite
from crawler.text import clean_text

HOST = "127.0.0.1:8080"

# Elements that start a new line of text; a "leaf block" has none of them inside.
BLOCK_TAGS = frozenset(
    {
        "html",
        "body",
        "div",
        "p",
        "figure",
        "figcaption",
        "td",
        "tr",
        "table",
        "li",
        "ol",
        "ul",
        "nav",
        "header",
        "footer",
        "main",
        "section",
        "article",
        "aside",
        "center",
        "h1",
        "h2",
        "h3",
        "h4",
    }
)


def decode(response: ReplicaResponse) -> str:
    """The page text, decoded with the charset the page declares (header first, then <meta>)."""
    found = re.search(r"charset=([\w-]+)", response.headers.get("Content-Type", ""))
    if not found:
        found = re.search(rb"""charset=["']?([\w-]+)""", response.body[:1024])  # type: ignore[assignment]
        label = found[1].decode() if found else "utf-8"  # type: ignore[index, union-attr]
    else:
        label = found[1]
    return response.body.decode(label)


def _document(html: str) -> lxml.html.HtmlElement:
    doc = lxml.html.document_fromstring(html)
    # The replica's contract: a <br> inside a paragraph reads as a space.
    for br in doc.iter("br"):
        br.tail = " " + (br.tail or "")
    return doc


def leaf_blocks(html: str) -> list[str]:
    """Clean, non-empty texts of the block elements with no block inside, in document order."""
    out = []
    for el in _document(html).iter():
        if not isinstance(el.tag, str) or el.tag not in BLOCK_TAGS:
            continue
        if any(isinstance(d.tag, str) and d.tag in BLOCK_TAGS for d in el.iterdescendants()):
            continue
        text = clean_text(el.text_content())
        if text:
            out.append(text)
    return out


def page_text(html: str) -> str:
    """The whole document's text, normalised (head excluded)."""
    body = _document(html).find("body")
    assert body is not None
    return clean_text(body.text_content())


def get(site: ReplicaSite, path: str, host: str = HOST) -> ReplicaResponse:
    return site.respond(host, path, {})


def plain_article(site: ReplicaSite, min_pages: int = 1, skip: int = 0) -> ReplicaArticle:
    """The ``skip``-th article without a role or fault with at least ``min_pages`` pages."""
    roles = set(site.fault_keys.values())
    found = [
        site.article(i)
        for i in range(len(site))
        if site.head(i).key not in roles
        and site.head(i).page_count >= min_pages
        and not any(
            site.head(i).path(n) in site.faults for n in range(1, site.head(i).page_count + 1)
        )
    ]
    return found[skip]


def request(
    server: ReplicaServer, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def site() -> ReplicaSite:
    return ReplicaSite(articles=60)


@pytest.fixture()
def served() -> Iterator[tuple[ReplicaSite, ReplicaServer]]:
    """A fresh site (faults mutable per test) behind a live loopback server."""
    replica = ReplicaSite(articles=45)
    with ReplicaServer(replica) as server:
        yield replica, server
    assert not server.errors
