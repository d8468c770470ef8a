"""The replica's home page and listing pages, in every template, read by the listing extractors."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from scrapy.http import HtmlResponse

from crawler.extract import extract_listing, find_section_url
from crawler.replica import TEMPLATES, ReplicaSite

HOST = "127.0.0.1:8000"
ORIGIN = f"http://{HOST}"


def fetch(site: ReplicaSite, path: str) -> HtmlResponse | None:
    for _ in range(6):
        resp = site.respond(HOST, path, {})
        if resp.status == 200:
            return HtmlResponse(url=ORIGIN + path, body=resp.body, headers=dict(resp.headers))
        if resp.status == 404:
            return None
    return None


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("seed", [1, 20200525])
def test_home_page_names_the_section(template: str, seed: int) -> None:
    site = ReplicaSite(articles=60, templates=(template,), seed=seed)
    home = fetch(site, "/")
    assert home is not None
    assert find_section_url(home.text, home.url) == ORIGIN + site.section_path


@pytest.mark.parametrize("template", TEMPLATES)
def test_listing_pages_list_their_articles_and_pages(template: str) -> None:
    site = ReplicaSite(articles=70, templates=(template,), per_page=20)
    pages = site.listing_pages
    assert pages >= 3
    for page in range(1, pages + 1):
        resp = fetch(site, site.listing_path(page))
        if resp is None:
            continue
        got = extract_listing(resp.text, resp.url)
        entries = [site.article(i).path(1) for i in site.listing_entries(page)]
        # The page's own entries, in order (other article links, e.g. "most read", may surround
        # them); compared by path: one entry may link the article through an alias host.
        paths = [urlsplit(u).path for u in got.article_urls]
        positions = [paths.index(p) for p in entries]
        assert positions == sorted(positions)
        assert len(set(got.article_urls)) == len(got.article_urls)
        others = {ORIGIN + site.listing_path(k) for k in range(1, pages + 1) if k != page}
        assert set(got.listing_urls) <= others
        # Neighbours are always reachable from the pager.
        for k in (page - 1, page + 1):
            if 1 <= k <= pages:
                assert ORIGIN + site.listing_path(k) in got.listing_urls
