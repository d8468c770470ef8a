"""URL shapes: article and listing pages, hosts, canonical forms."""

from __future__ import annotations

import pytest

from crawler.urls import (
    article_page_url,
    canonical_article_url,
    is_site_url,
    listing_page_url,
    parse_article_url,
    parse_hosts,
    parse_listing_url,
    rehost,
)


@pytest.mark.parametrize(
    ("url", "key", "page", "prefix"),
    [
        ("http://www.exploringtianjin.com/2020-05/25/c_493222.htm", "493222", 1, ""),
        ("http://www.exploringtianjin.com/2020-05/25/c_493222_2.htm", "493222", 2, ""),
        (
            "https://tianjin.chinadaily.com.cn/2025-08/01/c_1117647_16.htm?x=1#top",
            "1117647",
            16,
            "",
        ),
        (
            "http://regional.chinadaily.com.cn/tianjin/2021-01/04/c_585933.htm",
            "585933",
            1,
            "/tianjin",
        ),
    ],
)
def test_article_urls_are_recognised(url: str, key: str, page: int, prefix: str) -> None:
    ref = parse_article_url(url)
    assert ref is not None
    assert (ref.article_key, ref.page, ref.prefix) == (key, page, prefix)


@pytest.mark.parametrize(
    "url",
    [
        "http://www.exploringtianjin.com/n_17796.htm",
        "http://www.exploringtianjin.com/2020-05/25/c_493222.html",
        "http://www.exploringtianjin.com/2020-5/25/c_493222.htm",
        "http://www.exploringtianjin.com/2020-05/25/content_493222.htm",
        "http://www.exploringtianjin.com/2020-05/25/c_abc.htm",
    ],
)
def test_other_urls_are_not_articles(url: str) -> None:
    assert parse_article_url(url) is None


def test_listing_urls() -> None:
    assert parse_listing_url("http://x.cn/n_17796.htm") is not None
    ref = parse_listing_url("http://subsites.chinadaily.com.cn/tianjin/Tianjinstory/n_17796_12.htm")
    assert ref is not None and (ref.node, ref.page, ref.prefix) == (
        "17796",
        12,
        "/tianjin/Tianjinstory",
    )
    assert parse_listing_url("http://x.cn/2020-05/25/c_1.htm") is None
    assert listing_page_url("http://x.cn/a/n_5_3.htm", 1) == "http://x.cn/a/n_5.htm"
    assert listing_page_url("http://x.cn/a/n_5.htm", 4) == "http://x.cn/a/n_5_4.htm"


def test_page_urls_and_canonical_form() -> None:
    url = "http://www.exploringtianjin.com/2020-05/25/c_493222_2.htm?utm=1#p"
    assert article_page_url(url, 1) == "http://www.exploringtianjin.com/2020-05/25/c_493222.htm"
    assert article_page_url(url, 3) == "http://www.exploringtianjin.com/2020-05/25/c_493222_3.htm"
    assert canonical_article_url(url, "tianjin.chinadaily.com.cn") == (
        "http://tianjin.chinadaily.com.cn/2020-05/25/c_493222.htm"
    )
    with pytest.raises(ValueError):
        article_page_url("http://x.cn/n_1.htm", 2)


def test_hosts_setting_and_membership() -> None:
    hosts = parse_hosts(
        " WWW.ExploringTianjin.com, localhost:8080 ,http://127.0.0.1:99/x,, localhost"
    )
    assert hosts == ("www.exploringtianjin.com", "localhost", "127.0.0.1")
    assert is_site_url("http://localhost:5555/2020-05/25/c_1.htm", hosts)
    assert not is_site_url("http://example.org/2020-05/25/c_1.htm", hosts)
    assert not is_site_url("ftp://localhost/2020-05/25/c_1.htm", hosts)
    assert rehost(
        "http://localhost:5555/2020-05/25/c_1.htm?a#b", "http://127.0.0.1:5555/n_3.htm"
    ) == ("http://127.0.0.1:5555/2020-05/25/c_1.htm")
