"""A 100,000-article replica is built lazily: construction and any listing page stay cheap."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import lxml.html

from crawler.replica import ReplicaSite
from crawler.urls import parse_article_url

from .conftest import HOST, decode, get


def _items(site: ReplicaSite, page: int) -> list[str]:
    path = site.listing_path(page)
    doc = lxml.html.document_fromstring(decode(get(site, path)))
    keys = []
    for a in doc.xpath('//div[@class="lis_box"]/h3/a'):
        ref = parse_article_url(urljoin(f"http://{HOST}{path}", a.get("href")))
        assert ref is not None
        keys.append(ref.article_key)
    return keys


def test_hundred_thousand_articles() -> None:
    site = ReplicaSite(articles=100_000)
    assert len(site) == 100_000
    assert site.listing_pages == 5001  # 100,000 articles + the repeated one, 20 a page
    first = _items(site, 1)
    assert first == [site.head(i).key for i in range(20)]
    last = _items(site, site.listing_pages)
    assert last == [site.head(99_999).key]
    assert site.head(99_999).key == site.article(99_999).key
    oldest = site.article(99_999)
    assert oldest.published_on < site.article(0).published_on
    assert int(oldest.key) > 0 and parse_article_url("http://h" + oldest.path()) is not None
    # The last listing page's pager reaches back to the first page and shows no "next".
    body = decode(get(site, site.listing_path(site.listing_pages)))
    assert f'href="/n_{site.node}.htm">First' in body and "Next" not in body
    assert re.search(rf"n_{site.node}_5000\.htm", body)
    # Articles deep in the site render and are found again from their key.
    for index in (12_345, 54_321, 99_998):
        article = site.article(index)
        assert site.index_of(article.key) == index
        assert get(site, article.path()).status == 200
        assert get(site, article.path(article.page_count)).status == 200
    assert get(site, site.listing_path(2_500)).status == 200
    assert get(site, site.listing_path(5002)).status == 404
