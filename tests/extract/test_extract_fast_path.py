"""The fast path of ``extract_article`` reads what the walk reads, or leaves the page to the walk.

``extract_article`` first tries a short reading of the usual article layout (the title, source
and date lines, then one element whose children are the body, then a pager, link lists or the
footer) and falls back to the walk over the whole page as soon as something does not fit. These
tests hold the two readings to the same result on every replica template (the holdouts too, faults
on), on the golden cases and on layouts written here that neither of those has; and they check
that the fast path is taken where it should be, so that it is really the fast path under test.
"""

from __future__ import annotations

import random
import sys
from datetime import date
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from lxml import etree
from scrapy.http import HtmlResponse

from crawler import extract
from crawler.extract import ArticlePage, PageImage, extract_article
from crawler.replica import DEFAULT_TEMPLATES, HOLDOUT_TEMPLATES, ReplicaSite

sys.path.insert(0, str(Path(__file__).resolve().parent))  # --import-mode=importlib: our helper
from extract_golden import case_names, meta, response

HOST = "127.0.0.1:8000"
ORIGIN = f"http://{HOST}"


class FastPathSpy:
    """Counts the pages the fast path read and the pages it left to the walk."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.taken = 0
        self.declined = 0
        real = extract._usual_article

        def spy(*args: object) -> ArticlePage:
            try:
                page = real(*args)
            except extract._Unusual:
                self.declined += 1
                raise
            self.taken += 1
            return page

        monkeypatch.setattr(extract, "_usual_article", spy)

    def read(self, html: str, url: str) -> tuple[ArticlePage, bool]:
        """The page as ``extract_article`` reads it, and whether the fast path read it."""
        before = self.taken
        page = extract_article(html, url)
        return page, self.taken > before


def walk(html: str, url: str) -> ArticlePage:
    return extract._extract_article(html, url, fast=False)


@pytest.mark.parametrize("template", DEFAULT_TEMPLATES + HOLDOUT_TEMPLATES)
def test_fast_path_reads_replica_pages_as_the_walk_does(
    template: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = FastPathSpy(monkeypatch)
    site = ReplicaSite(articles=40, seed=7, templates=(template,), faults=True)
    pages = 0
    for index in range(len(site)):
        art = site.article(index)
        for page in range(1, art.page_count + 1):
            resp = site.respond(HOST, art.path(page), {"Accept-Encoding": "identity"})
            if resp.status != 200:
                continue
            got = HtmlResponse(
                url=ORIGIN + art.path(page), body=resp.body, headers=dict(resp.headers)
            )
            read, _fast = spy.read(got.text, got.url)
            assert read == walk(got.text, got.url), got.url
            pages += 1
    assert pages >= 40
    # The layouts are the usual one: the fast path reads (nearly) all of them.
    assert spy.taken >= 0.9 * pages, (spy.taken, spy.declined)


@pytest.mark.parametrize("name", [n for n in case_names() if meta(n)["kind"] == "article"])
def test_fast_path_reads_golden_pages_as_the_walk_does(name: str) -> None:
    resp = response(name)
    assert extract_article(resp.text, resp.url) == walk(resp.text, resp.url)


# -- layouts of our own --------------------------------------------------------------------------

URL = "http://www.example-port.cn/2022-03/04/c_8800_2.htm"
TEXT_1 = "The ferry to Dalian sailed again on Friday after a winter pause of three months."
TEXT_2 = "Operators said tickets for the first week sold out within two days of going on sale."
TEXT_3 = "Two more sailings a week are planned for the summer, when demand from tourists peaks."

MAGAZINE = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Ferry service to Dalian resumes | Port News</title>
<style>.copy p {{ margin: 0 }}</style></head>
<body>
<div id="masthead"><a href="/">Port News</a> <a href="/n_5.htm">Tianjin Updates</a></div>
<div class="wrapper">
 <div class="col">
  <div class="kicker">Tianjin Updates</div>
  <h2 class="t">Ferry service to Dalian resumes</h2>
  <div class="meta"><em>Source: Tianjin Daily</em> | Updated: 2022-03-04 09:15</div>
  <div class="copy">
   <p>
     {TEXT_1}</p>
   <p>Operators said tickets for the first week sold out<br>within two days of going on sale.</p>
   <div><img src="../../att/20220304/1646000000000000001.jpeg" alt=""></div>
   <div><small>[Photo/Tianjin Daily]</small></div>
   <p>Two more sailings a week are planned for the&nbsp;summer, when demand from
      <a href="/2022-03/01/c_8700.htm">tourists</a> peaks.</p>
  </div>
  <p class="pages"><a href="c_8800.htm">1</a> <b>2</b> <a href="c_8800_3.htm">3</a>
   <a href="c_8800_3.htm">Next</a></p>
 </div>
 <div class="col2"><h4>Latest</h4><ul><li><a href="/2022-03/03/c_8790.htm">Port adds a berth</a></li>
  <li><a href="/2022-03/02/c_8780.htm">Rail link opens</a></li></ul></div>
</div>
<div class="bottom">Copyright &copy; Port News. All rights reserved.</div>
</body></html>"""


LAST = "<p>Two more sailings"


def test_a_layout_of_our_own_is_read_by_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = FastPathSpy(monkeypatch)
    page, fast = spy.read(MAGAZINE, URL)
    assert fast
    assert page == ArticlePage(
        title="Ferry service to Dalian resumes",
        source="Tianjin Daily",
        published_on=date(2022, 3, 4),
        paragraphs=(TEXT_1, TEXT_2, TEXT_3),
        images=(
            PageImage(
                "http://www.example-port.cn/att/20220304/1646000000000000001.jpeg",
                "[Photo/Tianjin Daily]",
            ),
        ),
        page_links=(
            "http://www.example-port.cn/2022-03/04/c_8800.htm",
            "http://www.example-port.cn/2022-03/04/c_8800_3.htm",
        ),
        page_count=3,
    )
    assert page == walk(MAGAZINE, URL)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # A list inside the body: the walk reads its items as paragraphs.
        (LAST, f"<ul><li>Sailings on Mondays</li><li>Sailings on Fridays</li></ul>{LAST}"),
        # More text after the body in the same column: the walk decides whether it is body.
        (
            '<p class="pages">',
            '<p>Reporting by the port desk, with more to come.</p><p class="pages">',
        ),
        # A title that does not match the <title>: the walk's nearest-heading rule.
        ("<title>Ferry service to Dalian resumes", "<title>Port News today"),
        # Another "Updated" before the article: the walk takes the first one.
        (
            '<div class="wrapper">',
            '<div class="ticker">Updated: 2022-03-01</div><div class="wrapper">',
        ),
        # Two breaks in a row split a paragraph into two blocks.
        ("sold out<br>within", "sold out<br><br>within"),
        # A pager link inside the body ends it for the walk.
        ("peaks.</p>", 'peaks. <a href="c_8800_3.htm">Read on</a></p>'),
        # The body is not the parent of its paragraphs' neighbours: a nested box.
        ("<p>\n     ", '<div class="lead"><p>A short lead.</p></div><p>\n     '),
        # A navigation-like class on <body> itself: the walk reads it as a flag over the page.
        ("<body>", '<body class="sidebar">'),
    ],
    ids=[
        "list-in-body",
        "text-after-body",
        "title-not-matching",
        "second-updated",
        "double-break",
        "pager-link-in-body",
        "nested-box",
        "body-class",
    ],
)
def test_pages_the_fast_path_leaves_to_the_walk(
    old: str, new: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    html = MAGAZINE.replace(old, new, 1)
    assert html != MAGAZINE
    spy = FastPathSpy(monkeypatch)
    page, fast = spy.read(html, URL)
    assert not fast
    assert page == walk(html, URL)


def test_the_list_inside_the_body_is_read_by_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    html = MAGAZINE.replace(
        LAST, f"<ul><li>Sailings on Mondays</li><li>Sailings on Fridays</li></ul>{LAST}"
    )
    page = extract_article(html, URL)
    assert page.paragraphs == (TEXT_1, TEXT_2, "Sailings on Mondays", "Sailings on Fridays", TEXT_3)


def test_reading_lines_leaves_the_tree_as_it_was() -> None:
    root = etree.fromstring(
        "<html><body><p>a<br>b <b>c<br></b>d<br></p></body></html>", etree.HTMLParser()
    )
    p = root.find(".//p")
    before = etree.tostring(root)
    assert [t.strip() for t in extract._line_pieces(p)] == ["a", "b c", "d", ""]
    assert etree.tostring(root) == before


# -- URLs joined without urllib ------------------------------------------------------------------


def test_joining_urls_gives_what_urljoin_gives() -> None:
    segments = [
        "a",
        "b.htm",
        "c_123.htm",
        "c_1_2.htm",
        "..",
        ".",
        "",
        "x:y",
        "%20",
        "a;b",
        "?q=1",
        "#f",
        "2025-08",
        "~u",
        "A b",
        "\u00e9",
        ".h",
        "...",
    ]
    bases = [
        "http://h/",
        "http://h",
        "http://h/a/b/c.htm",
        "https://H:80/a/",
        "http://h/a//b/c",
        "http://h/a/./b",
        "http://h/a/b?x",
        "ftp://h/a/",
        "http://127.0.0.1:8765/2025-08/27/c_1.htm",
    ]
    starts = [
        "",
        "/",
        "//h2/",
        "http://h/",
        "https://h/",
        "HTTP://h/",
        "../",
        "../../",
        "../../../",
        "./",
        "//",
        "mailto:",
    ]
    rnd = random.Random(5)
    fast = 0
    for _ in range(20000):
        base = rnd.choice(bases)
        href = (
            rnd.choice(starts) + "/".join(rnd.choice(segments) for _ in range(rnd.randrange(1, 5)))
        ).strip()
        if not href:
            continue
        got, path = extract._join(extract._Base(base), href)
        assert got == urljoin(base, href), (base, href)
        if path is not None:
            fast += 1
            assert path == urlsplit(got).path, (base, href)
    assert fast > 1000  # the usual shapes take the string road
