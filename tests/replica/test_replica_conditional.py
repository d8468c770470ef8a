"""Conditional requests: ETag and Last-Modified on every HTML page, 304 Not Modified, and how
edits and publishing change them (also while a crawl pages through the listing)."""

from __future__ import annotations

import datetime
import email.utils
import re
from urllib.parse import urljoin

import lxml.html
import pytest

from crawler.replica import ReplicaServer, ReplicaSite
from crawler.urls import parse_article_url

from .conftest import HOST, decode, get, plain_article, request


def validators(
    site: ReplicaSite, path: str, headers: dict[str, str] | None = None
) -> tuple[str, str]:
    response = site.respond(HOST, path, headers or {})
    assert response.status == 200, path
    return response.headers["ETag"], response.headers["Last-Modified"]


def status(site: ReplicaSite, path: str, headers: dict[str, str]) -> int:
    return site.respond(HOST, path, headers).status


def http_date(value: str) -> datetime.datetime:
    return email.utils.parsedate_to_datetime(value)


def test_html_pages_carry_validators_and_answer_304(
    served: tuple[ReplicaSite, ReplicaServer],
) -> None:
    site, server = served
    article = plain_article(site)
    pages = ["/", site.section_path, site.listing_path(2), article.path(), site.sections[-1][1]]
    for path in pages:
        code, headers, body = request(server, path)
        assert code == 200 and body
        etag, modified = headers["ETag"], headers["Last-Modified"]
        assert re.fullmatch(r'"[0-9a-f]{32}"', etag), etag  # strong: no W/
        assert modified.endswith(" GMT") and http_date(modified).tzinfo is not None
        code, headers304, body304 = request(server, path, {"If-None-Match": etag})
        assert (code, body304) == (304, b"")
        assert headers304["ETag"] == etag and headers304["Last-Modified"] == modified
        assert "Content-Length" not in headers304 and "Content-Type" not in headers304
        assert request(server, path, {"If-Modified-Since": modified})[0] == 304
        # HEAD answers alike.
        assert request(server, path, {"If-None-Match": etag}, method="HEAD")[0] == 304
    # Robots.txt, images, redirects and errors carry no validators.
    image = next(im.src_path for a in site for im in a.images)
    for path in ("/robots.txt", image, "/nothing.htm", f"/n_{site.node}_1.htm"):
        response = get(site, path)
        assert "ETag" not in response.headers and "Last-Modified" not in response.headers, path
    # 304s are counted like any other answer.
    assert server.statuses()[304] == 3 * len(pages)


def test_if_none_match_decides_when_both_are_sent() -> None:
    site = ReplicaSite(articles=45)
    path = plain_article(site).path()
    etag, modified = validators(site, path)
    before = email.utils.format_datetime(
        http_date(modified) - datetime.timedelta(days=1), usegmt=True
    )
    after = email.utils.format_datetime(
        http_date(modified) + datetime.timedelta(days=1), usegmt=True
    )
    other = '"0123456789abcdef0123456789abcdef"'
    # RFC 9110 13.2.2: If-Modified-Since is ignored when If-None-Match is sent.
    assert status(site, path, {"If-None-Match": other, "If-Modified-Since": after}) == 200
    assert status(site, path, {"If-None-Match": etag, "If-Modified-Since": before}) == 304
    # If-Modified-Since alone: modified after the date -> 200, at or before -> 304.
    assert status(site, path, {"If-Modified-Since": before}) == 200
    assert status(site, path, {"If-Modified-Since": modified}) == 304
    assert status(site, path, {"If-Modified-Since": after}) == 304
    assert status(site, path, {"If-Modified-Since": "not a date"}) == 200
    # If-None-Match: a list, weak comparison, "*".
    assert status(site, path, {"If-None-Match": f"{other}, {etag}"}) == 304
    assert status(site, path, {"If-None-Match": f"W/{etag}"}) == 304
    assert status(site, path, {"If-None-Match": "*"}) == 304
    assert status(site, path, {"If-None-Match": other}) == 200
    # Header names in any case.
    assert status(site, path, {"if-none-match": etag}) == 304
    # An unknown page stays a 404 whatever is asked.
    assert status(site, "/nothing.htm", {"If-None-Match": "*"}) == 404


def test_etag_follows_the_served_bytes_and_last_modified_the_article_date() -> None:
    site, twin = ReplicaSite(articles=45), ReplicaSite(articles=45)
    article = plain_article(site, min_pages=2)
    plain = site.respond(HOST, article.path(), {})
    zipped = site.respond(HOST, article.path(), {"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    # Two representations, two strong validators; the same Last-Modified.
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    assert zipped.headers["Last-Modified"] == plain.headers["Last-Modified"]
    assert status(site, article.path(), {"If-None-Match": plain.headers["ETag"]}) == 304
    assert (
        site.respond(
            HOST,
            article.path(),
            {"Accept-Encoding": "gzip", "If-None-Match": plain.headers["ETag"]},
        ).status
        == 200
    )
    # Different bytes (another host in absolute links) give another ETag.
    assert (
        validators(site, article.path())[0]
        != site.respond("localhost:1", article.path(), {}).headers["ETag"]
    )
    # Deterministic: the same site gives the same headers.
    for path in ("/", site.section_path, article.path(), article.path(2)):
        assert validators(site, path) == validators(twin, path)
    # Last-Modified: the article's date and time (Beijing time), the same on every page.
    for i in range(len(site)):
        head = site.head(i)
        if any(head.path(n) in site.faults for n in range(1, head.page_count + 1)):
            continue
        shown = http_date(validators(site, head.path())[1]).astimezone(
            datetime.timezone(datetime.timedelta(hours=8))
        )
        assert shown.date() == head.published_on and shown.strftime("%H:%M") == head.time
        if head.page_count > 1:
            assert validators(site, head.path(2))[1] == validators(site, head.path())[1]


def test_an_edit_gives_every_page_of_the_article_new_validators() -> None:
    site = ReplicaSite(articles=45)
    article = site.article_by_key(site.fault_keys["sixteen_pages"])
    other = plain_article(site)
    paths = [article.path(n) for n in (1, 2, 16)]
    old = {path: validators(site, path) for path in paths}
    old_bytes = {path: get(site, path).body for path in paths}
    old_other = validators(site, other.path())

    # Only page 2's text changes; every page is rewritten (the CMS regenerates them all).
    site.edit(article.key, paragraph=(2, 0, "A rewritten first paragraph of the second page."))
    assert get(site, article.path(1)).body == old_bytes[article.path(1)]
    for path in paths:
        etag, modified = validators(site, path)
        assert etag != old[path][0] and http_date(modified) > http_date(old[path][1])
        assert status(site, path, {"If-None-Match": old[path][0]}) == 200
        assert status(site, path, {"If-Modified-Since": old[path][1]}) == 200
        assert status(site, path, {"If-None-Match": etag}) == 304
    assert validators(site, other.path()) == old_other
    # Each edit moves the clock on: a second edit is later still.
    first = validators(site, article.path())[1]
    site.edit_article(article.key)
    assert http_date(validators(site, article.path())[1]) > http_date(first)
    # A title edit also changes the pages whose "most read" box shows the title (the six
    # articles before it).
    index = next(i for i in range(1, len(site)) if site.article(i - 1).path() not in site.faults)
    neighbour = site.article(index - 1)
    before = validators(site, neighbour.path())
    site.edit(site.article(index).key, title="Haihe ferry service resumes")
    assert "Haihe ferry service resumes" in decode(get(site, neighbour.path()))
    after = validators(site, neighbour.path())
    assert after[0] != before[0] and http_date(after[1]) > http_date(before[1])


def test_listing_validators_change_with_publishing_and_titles_only() -> None:
    site = ReplicaSite(articles=45, per_page=10)
    listing = [site.listing_path(p) for p in range(1, site.listing_pages + 1)]
    old = {path: validators(site, path) for path in [*listing, "/"]}
    # A body edit changes no listing page.
    on_page_3 = site.article(site.listing_entries(3)[4])
    site.edit(on_page_3.key, paragraph=(1, 0, "A new first paragraph."))
    assert {path: validators(site, path) for path in old} == old
    # A title edit changes the page that lists it, not the others.
    site.edit(on_page_3.key, title="A new headline for page three")
    assert validators(site, listing[2]) != old[listing[2]]
    assert validators(site, listing[0]) == old[listing[0]]
    old[listing[2]] = validators(site, listing[2])
    articles = {a.path(): validators(site, a.path()) for a in site if a.path() not in site.faults}
    # Publishing shifts every listing page: new validators, later dates, old ones answer 200.
    site.publish(2)
    for path, (etag, modified) in old.items():
        new_etag, new_modified = validators(site, path)
        assert new_etag != etag and http_date(new_modified) > http_date(modified), path
        assert status(site, path, {"If-None-Match": etag}) == 200
        assert status(site, path, {"If-Modified-Since": modified}) == 200
    # ...and leaves every existing article page as it was.
    for path, (etag, modified) in articles.items():
        assert validators(site, path) == (etag, modified)
        assert status(site, path, {"If-None-Match": etag}) == 304


def test_last_modified_never_goes_back() -> None:
    site = ReplicaSite(articles=45, per_page=10)
    twin = ReplicaSite(articles=45, per_page=10)
    tracked: dict[str, datetime.datetime] = {}

    def check() -> None:
        paths = ["/", *(site.listing_path(p) for p in range(1, site.listing_pages + 1))]
        paths += [site.article(i).path() for i in range(0, len(site), 3)]
        for path in paths:
            if path in site.faults:
                continue
            modified = http_date(validators(site, path)[1])
            assert modified >= tracked.get(path, modified), path
            tracked[path] = modified

    check()
    for step in range(6):
        for one in (site, twin):
            one.edit(one.article(step * 5 + 2).key, title=f"Headline number {step}")
            one.edit_article(step + 10)
            one.publish(1 + step % 2)
        check()
    # The same history gives the same headers.
    for path in tracked:
        assert validators(site, path) == validators(twin, path)


def _listed_keys(body: bytes, url: str) -> list[str]:
    doc = lxml.html.document_fromstring(body.decode("utf-8"))
    keys = []
    for href in doc.xpath('//div[@class="lis_box"]/h3/a/@href'):
        ref = parse_article_url(urljoin(url, href))
        assert ref is not None
        keys.append(ref.article_key)
    return keys


def test_publishing_while_a_crawl_pages_through_the_listing_shifts_articles() -> None:
    site = ReplicaSite(articles=45, per_page=10)
    with ReplicaServer(site) as server:
        _crawl_while_publishing(site, server)
    assert not server.errors


def _crawl_while_publishing(site: ReplicaSite, server: ReplicaServer) -> None:
    old_keys = {a.key for a in site}
    start = server.mark()
    seen: list[list[str]] = []
    etags: dict[int, str] = {}
    published: list[str] = []
    for page in range(1, site.listing_pages + 1):
        path = site.listing_path(page)
        code, headers, body = request(server, path)
        assert code == 200
        etags[page] = headers["ETag"]
        seen.append(_listed_keys(body, server.url(path)))
        if page == 1:
            published = site.publish(3)  # while the crawl is between page 1 and page 2
    flat = [key for keys in seen for key in keys]
    # Page 2 starts with the last three items of page 1 again: a shift, no gap.
    assert seen[1][:3] == seen[0][-3:]
    assert set(flat) == old_keys and not set(published) & set(flat)
    # The loop read the page count as it grew: every page, the new last one included.
    assert len(seen) == site.listing_pages
    # The truth has the new articles: a crawl that reads page 1 again finds them.
    assert set(published) <= set(site.expected())
    code, headers, body = request(server, site.section_path, {"If-None-Match": etags[1]})
    assert code == 200 and headers["ETag"] != etags[1]
    assert _listed_keys(body, server.url(site.section_path))[:3] == published
    assert request(server, site.section_path, {"If-None-Match": headers["ETag"]})[0] == 304
    assert server.count(since=start, status=200) == len(seen) + 1
    assert server.count(since=start, status=304) == 1


@pytest.mark.parametrize("templates", [("cms",), ("html5",)])
def test_every_template_serves_validators(templates: tuple[str, ...]) -> None:
    site = ReplicaSite(articles=30, templates=templates, faults=False)
    for path in ("/", site.section_path, site.article(3).path()):
        etag, _ = validators(site, path)
        assert status(site, path, {"If-None-Match": etag}) == 304
