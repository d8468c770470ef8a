"""The replica site without a server: determinism, URLs, listings, robots.txt, faults and the truth."""

from __future__ import annotations

import datetime
import re
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import lxml.html
import pytest

from crawler.replica import (
    DEFAULT_TEMPLATES,
    HOLDOUT_TEMPLATES,
    ExpectedArticle,
    Fault,
    FaultKind,
    ReplicaSite,
)
from crawler.replica.markup import pager_numbers
from crawler.text import clean_text
from crawler.urls import parse_article_url, parse_listing_url

from .conftest import HOST, decode, get, page_text

ALL_ROLES = {
    "not_found",
    "flaky",
    "broken_page",
    "gbk",
    "meta_charset",
    "malformed",
    "sixteen_pages",
    "listed_twice",
    "alias_host",
    "robots_disallowed",
}
REPOST_ROLES = {"repost", "repost_of", "near_repost", "near_repost_of"}


def _paths(site: ReplicaSite) -> list[str]:
    paths = ["/", "/robots.txt", site.section_path, "/nothing.htm"]
    paths += [site.listing_path(p) for p in range(1, site.listing_pages + 1)]
    for i in range(len(site)):
        article = site.article(i)
        paths += [article.path(n) for n in range(1, article.page_count + 1)]
        paths += [im.src_path for im in article.images]
    return paths


def test_same_arguments_give_byte_identical_sites() -> None:
    one, two = ReplicaSite(articles=50, seed=7), ReplicaSite(articles=50, seed=7)
    assert one.node == two.node and one.fault_keys == two.fault_keys
    for path in _paths(one):
        a, b = get(one, path), get(two, path)
        if a.status >= 500:  # FLAKY paths fail the first times on both sites alike
            assert (a.status, a.body) == (b.status, b.body)
            continue
        assert (a.status, a.headers, a.body) == (b.status, b.headers, b.body), path
    assert one.expected() == two.expected()


def test_another_seed_gives_another_site() -> None:
    one, two = ReplicaSite(articles=50, seed=1), ReplicaSite(articles=50, seed=2)
    assert one.article(0) != two.article(0)
    assert get(one, "/").body != get(two, "/").body


def test_articles_have_the_real_url_shape_and_ids_grow_with_dates(site: ReplicaSite) -> None:
    previous_key: str | None = None
    previous_date: datetime.date | None = None
    for i in range(len(site)):
        article = site.article(i)
        assert article.key.isdigit()
        ref = parse_article_url("http://h" + article.path())
        assert ref is not None and ref.article_key == article.key and ref.page == 1
        assert (ref.year, ref.month, ref.day) == (
            article.published_on.year,
            article.published_on.month,
            article.published_on.day,
        )
        if article.page_count > 1:
            last = parse_article_url("http://h" + article.path(article.page_count))
            assert last is not None and last.page == article.page_count
        if previous_key is not None and previous_date is not None:
            assert int(article.key) < int(previous_key)
            assert article.published_on <= previous_date
        previous_key, previous_date = article.key, article.published_on
        assert site.index_of(article.key) == i
    assert 1_000_000 < int(site.article(0).key) <= 1117647
    assert site.article(0).published_on.strftime("%Y-%m") == "2025-08"


def test_article_fields_are_clean_and_shaped(site: ReplicaSite) -> None:
    for article in site:
        assert article.template in DEFAULT_TEMPLATES
        assert article.title == clean_text(article.title) and article.title
        assert article.source is None or (
            article.source == clean_text(article.source) and article.source
        )
        assert 1 <= article.page_count
        for page in article.pages:
            assert 3 <= len(page) <= 12
            for paragraph in page:
                assert paragraph == clean_text(paragraph) and paragraph
                assert not paragraph.startswith(("[", "("))
                assert not re.fullmatch(r"[0-9a-f]{24}\.jpg", paragraph)
        assert article.body == "\n\n".join(p for page in article.pages for p in page)
        for image in article.images:
            assert re.fullmatch(r"/att/\d{8}/\d{19}\.jpeg", image.src_path)
            assert image.src_path[5:13] == article.published_on.strftime("%Y%m%d")
            assert re.fullmatch(r"[0-9a-f]{24}\.jpg", image.alt)
            assert image.caption is None or (
                image.caption == clean_text(image.caption) and image.caption.endswith("]")
            )
            assert 1 <= image.page <= article.page_count


def test_every_template_is_used_and_holdouts_only_on_request() -> None:
    default = ReplicaSite(articles=30)
    assert default.templates == DEFAULT_TEMPLATES == ("cms", "chinadaily", "plain")
    assert {a.template for a in default} == set(DEFAULT_TEMPLATES)
    holdout = ReplicaSite(articles=30, templates=HOLDOUT_TEMPLATES)
    assert {a.template for a in holdout} == {"html5", "table"}
    # The site's home and listing pages take the look of the first template.
    assert (
        b"<article" not in get(default, "/").body and b'class="masthead"' in get(holdout, "/").body
    )
    with pytest.raises(ValueError):
        ReplicaSite(templates=("cms", "nope"))


def test_page_counts_include_a_sixteen_page_article_and_short_ones() -> None:
    site = ReplicaSite(articles=300)
    counts = [site.head(i).page_count for i in range(len(site))]
    assert counts.count(1) > len(counts) / 2
    assert any(2 <= c <= 4 for c in counts)
    assert site.article_by_key(site.fault_keys["sixteen_pages"]).page_count == 16
    for seed in (1, 2, 3):
        small = ReplicaSite(articles=40, seed=seed)
        assert 16 in [small.head(i).page_count for i in range(40)]


@pytest.mark.parametrize(
    ("current", "total", "shown"),
    [
        (1, 16, "1 2 3 ... 16"),
        (2, 3, "1 2 3"),
        (4, 4, "1 2 3 4"),
        (8, 16, "1 ... 6 7 8 9 10 ... 16"),
        (16, 16, "1 ... 14 15 16"),
        (1, 2, "1 2"),
    ],
)
def test_pager_window(current: int, total: int, shown: str) -> None:
    assert " ".join("..." if n is None else str(n) for n in pager_numbers(current, total)) == shown


def _pager_text(site: ReplicaSite, key: str, page: int) -> tuple[str, list[tuple[str, int]]]:
    """The text after the body's last paragraph up to the sidebar/footer, and the pager's links."""
    article = site.article_by_key(key)
    response = get(site, article.path(page))
    html = decode(response)
    text = page_text(html)
    tail = text[
        text.rindex(article.pages[page - 1][-1]) + len(article.pages[page - 1][-1]) :
    ].strip()
    # An image may close the page: skip its file-name line and caption.
    extras = [x for im in article.images if im.page == page for x in (im.alt, im.caption) if x]
    while any(tail.startswith(x) for x in extras):
        tail = tail[len(next(x for x in extras if tail.startswith(x))) :].strip()
    doc = lxml.html.document_fromstring(html)
    links = []
    for a in doc.iter("a"):
        ref = parse_article_url(urljoin(f"http://{HOST}{article.path(page)}", a.get("href", "")))
        if ref is not None and ref.article_key == key and a.getparent() is not None:
            links.append((clean_text(a.text_content()), ref.page))
    return tail.strip(), links


@pytest.mark.parametrize(
    "templates", [("cms",), ("chinadaily",), ("plain",), ("html5",), ("table",)]
)
def test_article_pagers_follow_the_real_rules(templates: tuple[str, ...]) -> None:
    site = ReplicaSite(articles=60, templates=templates, faults=False)
    sixteen = site.fault_keys["sixteen_pages"]
    tail, links = _pager_text(site, sixteen, 1)
    assert tail.startswith("1 2 3 ... 16 >")
    assert sorted(links) == sorted([("2", 2), ("3", 3), ("16", 16), (">", 2)])
    tail, links = _pager_text(site, sixteen, 16)
    assert tail.startswith("< 1 ... 14 15 16")
    assert ("16", 16) not in links and (">", 17) not in links
    shapes = set()
    for i in range(len(site)):
        head = site.head(i)
        shapes.add(min(head.page_count, 5))
        if head.page_count == 3:
            tail, links = _pager_text(site, head.key, 2)
            assert tail.startswith("< 1 2 3 >")
            assert sorted(links) == sorted([("<", 1), ("1", 1), ("3", 3), (">", 3)])
        if head.page_count == 4:
            tail, links = _pager_text(site, head.key, 4)
            assert tail.startswith("< 1 2 3 4") and not tail.startswith("< 1 2 3 4 >")
            assert ("4", 4) not in links
        if head.page_count == 1:
            tail, links = _pager_text(site, head.key, 1)
            assert links == [] and not tail.startswith(("1", "<"))
    assert shapes >= {1, 3, 4}


def _listing_items(site: ReplicaSite, page: int, host: str = HOST) -> list[str]:
    """Absolute URLs of the items of a listing page in the cms look (``div.lis_box h3 a``)."""
    path = site.listing_path(page)
    doc = lxml.html.document_fromstring(decode(get(site, path, host)))
    return [
        urljoin(f"http://{host}{path}", a.get("href"))
        for a in doc.xpath('//div[@class="lis_box"]/h3/a')
    ]


def test_listing_lists_every_article_once_but_one_twice_and_one_through_the_alias_host() -> None:
    site = ReplicaSite(articles=75, per_page=10)
    assert site.listing_pages == 8  # 75 articles + 1 repeated entry
    seen: dict[str, list[int]] = {}
    alias = []
    last_of_previous: str | None = None
    for page in range(1, site.listing_pages + 1):
        urls = _listing_items(site, page)
        assert len(urls) == (10 if page < 8 else 6)
        keys = []
        for url in urls:
            ref = parse_article_url(url)
            assert ref is not None and ref.page == 1
            keys.append(ref.article_key)
            seen.setdefault(ref.article_key, []).append(page)
            if urlsplit(url).hostname != "127.0.0.1":
                alias.append((url, ref.article_key))
        if keys[0] == last_of_previous:
            assert keys[0] == site.fault_keys["listed_twice"]
        last_of_previous = keys[-1]
        assert [site.head(i).key for i in site.listing_entries(page)] == keys
    assert set(seen) == {a.key for a in site}
    twice = [key for key, pages in seen.items() if len(pages) > 1]
    assert twice == [site.fault_keys["listed_twice"]]
    assert site.dup_page is not None and seen[twice[0]] == [site.dup_page, site.dup_page + 1]
    assert alias == [
        (
            f"http://localhost:8080{site.article_by_key(site.fault_keys['alias_host']).path()}",
            site.fault_keys["alias_host"],
        )
    ]
    # Dates on the listing run newest first.
    dates = [site.head(i).published_on for p in range(1, 9) for i in site.listing_entries(p)]
    assert dates == sorted(dates, reverse=True)


def test_listing_pages_are_reached_from_the_home_page_and_end_in_404(site: ReplicaSite) -> None:
    home = lxml.html.document_fromstring(decode(get(site, "/")))
    section = [
        a.get("href") for a in home.iter("a") if clean_text(a.text_content()) == "Tianjin Updates"
    ]
    assert section and all(h == site.section_path for h in section)
    ref = parse_listing_url("http://h" + site.section_path)
    assert ref is not None and ref.node == site.node and ref.page == 1
    others = {parse_listing_url("http://h" + a.get("href", "")) for a in home.iter("a")} - {None}
    assert len({o.node for o in others if o}) > 3  # other sections share the listing URL shape
    last = site.listing_pages
    assert get(site, site.listing_path(last)).status == 200
    assert get(site, f"/n_{site.node}_{last + 1}.htm").status == 404
    assert get(site, f"/n_{site.node}_0.htm").status == 404
    pager = lxml.html.document_fromstring(decode(get(site, site.section_path))).xpath(
        '//div[@class="page"]//a/@href'
    )
    assert f"n_{site.node}_2.htm" in pager


def test_unknown_paths_are_404(site: ReplicaSite) -> None:
    article = site.article(3)
    for path in (
        "/nothing",
        "/2025-08/01/c_1.htm",
        article.path().replace(".htm", "_1.htm"),
        article.path().replace(".htm", f"_{article.page_count + 1}.htm"),
        "/1999-01/01/c_" + article.key + ".htm",
        "/att/x.jpeg",
    ):
        assert get(site, path).status == 404, path


def test_images_are_served_as_jpeg(site: ReplicaSite) -> None:
    article = next(a for a in site if a.images)
    response = get(site, article.images[0].src_path)
    assert response.status == 200 and response.headers["Content-Type"] == "image/jpeg"
    assert response.body.startswith(b"\xff\xd8") and response.body.endswith(b"\xff\xd9")


def test_robots_txt_disallows_one_listed_article_and_a_search_path(site: ReplicaSite) -> None:
    response = get(site, "/robots.txt")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert get(site, "/robots.txt", "localhost:8080").body == response.body
    assert site.disallowed_paths[0] == "/search/"
    blocked = site.article_by_key(site.fault_keys["robots_disallowed"])
    assert site.disallowed_paths == ("/search/", blocked.path())
    assert blocked.page_count == 1
    parser = RobotFileParser()
    parser.parse(response.body.decode().splitlines())
    assert not parser.can_fetch("tianjin-updates", f"http://{HOST}{blocked.path()}")
    assert not parser.can_fetch("tianjin-updates", f"http://{HOST}/search/?q=port")
    assert parser.can_fetch("tianjin-updates", f"http://{HOST}{site.article(0).path()}")
    assert parser.can_fetch("tianjin-updates", f"http://{HOST}{site.section_path}")
    assert not parser.can_fetch("BadBot", f"http://{HOST}/")


def test_default_faults_sit_on_distinct_articles(site: ReplicaSite) -> None:
    assert set(site.fault_keys) == ALL_ROLES | REPOST_ROLES
    assert len(set(site.fault_keys.values())) == len(ALL_ROLES | REPOST_ROLES)
    keys = site.fault_keys
    not_found = site.article_by_key(keys["not_found"])
    assert site.faults[not_found.path()] == Fault.NOT_FOUND
    flaky = site.article_by_key(keys["flaky"])
    assert flaky.page_count >= 2 and site.faults[flaky.path()].kind is FaultKind.FLAKY
    assert site.faults[flaky.path()].times == 2
    broken = site.article_by_key(keys["broken_page"])
    assert broken.page_count >= 3 and site.faults[broken.path(2)] == Fault.BROKEN
    for role, fault in (
        ("gbk", Fault.GBK),
        ("meta_charset", Fault.META_CHARSET_ONLY),
        ("malformed", Fault.MALFORMED),
    ):
        article = site.article_by_key(keys[role])
        assert all(site.faults[article.path(n)] == fault for n in range(1, article.page_count + 1))
    for role in ("gbk", "meta_charset"):
        assert re.search("[\u4e00-\u9fff]", site.article_by_key(keys[role]).body)
    assert site.article_by_key(keys["sixteen_pages"]).page_count == 16
    assert ReplicaSite(articles=60, faults=False).faults == {}
    assert (
        set(ReplicaSite(articles=60, faults=False).fault_keys)
        == {
            "sixteen_pages",
            "listed_twice",
            "alias_host",
            "robots_disallowed",
        }
        | REPOST_ROLES
    )
    assert set(ReplicaSite(articles=60, reposts=False).fault_keys) == ALL_ROLES
    assert not REPOST_ROLES & set(ReplicaSite(articles=39).fault_keys)


def test_expected_follows_faults_and_robots(site: ReplicaSite) -> None:
    expected = site.expected()
    keys = site.fault_keys
    every = {a.key for a in site}
    assert set(expected) == every - {keys["not_found"], keys["robots_disallowed"]}
    for key, item in expected.items():
        article = site.article_by_key(key)
        assert isinstance(item, ExpectedArticle)
        assert (item.key, item.path, item.title, item.source, item.published_on) == (
            article.key,
            article.path(),
            article.title,
            article.source,
            article.published_on,
        )
        assert item.page_count == article.page_count
        if key == keys["broken_page"]:
            continue
        assert item.complete and item.body == article.body
        assert item.images == tuple(
            (n, im.src_path, im.caption) for n, im in enumerate(article.images, 1)
        )
    broken = site.article_by_key(keys["broken_page"])
    item = expected[keys["broken_page"]]
    assert not item.complete and item.page_count == broken.page_count >= 3
    assert item.body == "\n\n".join(
        p for n, page in enumerate(broken.pages, 1) if n != 2 for p in page
    )
    kept = [im for im in broken.images if im.page != 2]
    assert item.images == tuple((n, im.src_path, im.caption) for n, im in enumerate(kept, 1))
    assert expected[keys["flaky"]].complete and expected[keys["sixteen_pages"]].page_count == 16


def test_expected_tracks_faults_switched_by_a_test() -> None:
    site = ReplicaSite(articles=45)
    sixteen = site.article_by_key(site.fault_keys["sixteen_pages"])
    site.faults[sixteen.path(5)] = Fault.NOT_FOUND
    item = site.expected()[sixteen.key]
    assert not item.complete and item.page_count == 16
    assert item.body == "\n\n".join(
        p for n, page in enumerate(sixteen.pages, 1) if n != 5 for p in page
    )
    site.faults[sixteen.path()] = Fault.broken(500)
    assert sixteen.key not in site.expected()
    del site.faults[sixteen.path()]
    site.faults.pop(sixteen.path(5))
    assert site.expected()[sixteen.key].complete
    # A listing page that never answers hides the articles only it lists.
    site.faults[site.listing_path(3)] = Fault.BROKEN
    only_on_3 = {site.head(i).key for i in site.listing_entries(3)} - {
        site.head(i).key for p in (1, 2) for i in site.listing_entries(p)
    }
    assert only_on_3 and not only_on_3 & set(site.expected())


def test_without_faults_every_listed_article_is_expected_but_the_robots_one() -> None:
    site = ReplicaSite(articles=45, faults=False)
    expected = site.expected()
    assert set(expected) == {a.key for a in site} - {site.fault_keys["robots_disallowed"]}
    assert all(item.complete for item in expected.values())


def test_small_sites_still_work() -> None:
    for n in (1, 5, 19, 21):
        site = ReplicaSite(articles=n)
        assert len(site) == n
        listed = [i for p in range(1, site.listing_pages + 1) for i in site.listing_entries(p)]
        assert sorted(set(listed)) == list(range(n))
        assert get(site, site.section_path).status == 200
        assert len(set(site.fault_keys.values())) == len(site.fault_keys)
        site.expected()
    with pytest.raises(ValueError):
        ReplicaSite(articles=0)


def test_article_index_bounds(site: ReplicaSite) -> None:
    assert site.article(-1) == site.article(len(site) - 1)
    with pytest.raises(IndexError):
        site.article(len(site))
    with pytest.raises(KeyError):
        site.index_of("12")
    with pytest.raises(ValueError):
        site.article(0).path(site.article(0).page_count + 1)
    assert site.article(0).published_on <= datetime.date(2025, 8, 31)


def test_gzip_when_asked(site: ReplicaSite) -> None:
    import gzip

    plain = site.respond(HOST, site.section_path, {})
    zipped = site.respond(HOST, site.section_path, {"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain.headers
    assert gzip.decompress(zipped.body) == plain.body
    assert site.respond(HOST, site.section_path, {"accept-encoding": "gzip"}).body == zipped.body
