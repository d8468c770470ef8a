"""The raw stage of ``extract_article`` reads what the parser-based readings read, or leaves the page.

Before any parse, ``extract_article`` tries to read the usual article layout from the page's string
itself (``extract._raw_article``): it takes the fast path's decisions, and only on markup whose
tree is certain without a parser; on anything else it returns None and the page is parsed. These
tests hold every page the raw stage reads to the walk's reading of it (the reference) and to the
fast path's: every page of every replica template (the holdouts too), faults on and off, two
seeds; the golden cases; pages changed here in the ways real markup differs (comments, entities,
nested inline markup, attribute values holding ">", unclosed paragraphs, upper case, CRLF,
scripts...), which must be read the same or left; random changes of replica pages; and they check
that the raw stage is what reads the benchmark's pages, so that it is really the stage under test.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse

from crawler import extract
from crawler.extract import ArticlePage, extract_article
from crawler.replica import DEFAULT_TEMPLATES, HOLDOUT_TEMPLATES, ReplicaSite
from crawler.urls import parse_article_url

sys.path.insert(0, str(Path(__file__).resolve().parent))  # --import-mode=importlib: our helper
from extract_golden import case_names, meta, response

HOST = "127.0.0.1:8000"
ORIGIN = f"http://{HOST}"


def walk(html: str, url: str) -> ArticlePage:
    return extract._extract_article(html, url, fast=False)


def parsed(html: str, url: str) -> ArticlePage:
    """The page as read with a parse: the fast path, else the walk."""
    return extract._extract_article(html, url, raw=False)


def read_same(html: str, url: str) -> bool:
    """Assert that the raw stage, when it reads the page, reads what the walk and the fast path
    read; whether it read it."""
    page = extract._raw_article(html, url)
    want = walk(html, url)
    assert extract_article(html, url) == want, url
    if page is None:
        return False
    assert page == want, url
    assert page == parsed(html, url), url
    return True


def site_pages(site: ReplicaSite):
    """``(url, text)`` of every article page of ``site`` it serves (as a crawl decodes it)."""
    for index in range(len(site)):
        art = site.article(index)
        for page in range(1, art.page_count + 1):
            resp = site.respond(HOST, art.path(page), {"Accept-Encoding": "identity"})
            if resp.status != 200 or not resp.body:
                continue
            got = HtmlResponse(
                url=ORIGIN + art.path(page), body=resp.body, headers=dict(resp.headers)
            )
            yield got.url, got.text


@pytest.mark.parametrize("seed", [7, 20200525])
@pytest.mark.parametrize("faults", [False, True], ids=["clean", "faults"])
@pytest.mark.parametrize("template", DEFAULT_TEMPLATES + HOLDOUT_TEMPLATES)
def test_raw_stage_reads_replica_pages_as_the_walk_does(
    template: str, faults: bool, seed: int
) -> None:
    site = ReplicaSite(articles=40, seed=seed, templates=(template,), faults=faults)
    pages = taken = 0
    for url, text in site_pages(site):
        pages += 1
        taken += read_same(text, url)
    assert pages >= 40
    # The usual layouts (and both holdouts): the raw stage reads (nearly) all of them.
    assert taken >= 0.85 * pages, (taken, pages)


@pytest.mark.parametrize("name", [n for n in case_names() if meta(n)["kind"] == "article"])
def test_raw_stage_reads_golden_pages_as_the_walk_does(name: str) -> None:
    resp = response(name)
    read_same(resp.text, resp.url)


def benchmark_pages() -> list[tuple[str, str]]:
    """``(url, html)`` of the article pages the extraction benchmark reads: an evenly spaced
    sample of 2000 of the pages a crawl of ``ReplicaSite(1000, seed=20200525)`` fetches."""
    site = ReplicaSite(articles=1000, seed=20200525, faults=False)
    paths = [site.listing_path(p) for p in range(1, site.listing_pages + 1)]
    for i in range(len(site)):
        head = site.head(i)
        paths += [head.path(p) for p in range(1, head.page_count + 1)]
    step = len(paths) / 2000
    sample = [paths[int(i * step)] for i in range(2000)] if len(paths) > 2000 else paths
    pages = []
    for path in sample:
        url = ORIGIN + path
        if parse_article_url(url) is None:
            continue
        pages.append((url, site.respond(HOST, path, {}).body.decode("utf-8")))
    return pages


def test_raw_stage_reads_the_benchmark_pages() -> None:
    pages = benchmark_pages()
    assert len(pages) >= 1500
    taken = sum(read_same(html, url) for url, html in pages)
    assert taken >= 0.9 * len(pages), (taken, len(pages))


# -- pages changed in the ways real markup differs ----------------------------------------------


def base_pages() -> dict[str, tuple[str, str]]:
    """A page of each default template the raw stage reads, with images, and one with a pager."""
    found: dict[str, tuple[str, str]] = {}
    for template in DEFAULT_TEMPLATES:
        site = ReplicaSite(articles=30, seed=11, templates=(template,), faults=False)
        for url, text in site_pages(site):
            kind = f"{template}-pager" if "_2.htm" in url else template
            if kind in found or extract._raw_article(text, url) is None:
                continue
            if kind == template and "<img" not in text.split("<body", 1)[1]:
                continue
            found[kind] = (url, text)
    assert len(found) == 2 * len(DEFAULT_TEMPLATES), sorted(found)
    return found


BASES = base_pages()


def first_paragraph(html: str) -> int:
    """Where the text of the first long paragraph starts."""
    at = 0
    while True:
        at = html.index("<p", at + 1)
        start = html.index(">", at) + 1
        if len(html[start : html.index("</p>", start)]) > 120:
            return start


def in_paragraph(html: str, insert: str) -> str:
    """``html`` with ``insert`` between two words of its first long paragraph."""
    start = first_paragraph(html)
    at = html.index(" ", start + 20)
    return html[:at] + insert + html[at:]


def word_wrapped(html: str, before: str, after: str) -> str:
    start = first_paragraph(html)
    a = html.index(" ", start + 20) + 1
    b = html.index(" ", a)
    return html[:a] + before + html[a:b] + after + html[b:]


def before_first_paragraph(html: str, insert: str) -> str:
    at = html.rindex("<p", 0, first_paragraph(html))
    return html[:at] + insert + html[at:]


def before_the_sidebar(html: str, insert: str) -> str:
    """``html`` with ``insert`` at the start of the box after the article's column (or before
    the end of the body)."""
    for mark in ('<div class="main_r">', '<div class="rt_art">'):
        if mark in html:
            return html.replace(mark, mark + insert, 1)
    return html.replace("</body>", insert + "</body>", 1)


STRICT = '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN">\n'

# (name, change, whether the raw stage must still read the page: True / False / None: either)
CHANGES = [
    ("comment-in-paragraph", lambda h: in_paragraph(h, " <!-- an editor's note --> "), False),
    ("comment-in-head", lambda h: h.replace("</head>", "<!-- x --></head>", 1), False),
    (
        "named-entities",
        lambda h: in_paragraph(h, " caf&eacute; &ldquo;quoted&rdquo; &amp; &lt;b&gt;"),
        True,
    ),
    ("numeric-entities", lambda h: in_paragraph(h, " &#8217;&#x2019;&#169;&#xA9;&#38;"), True),
    ("c1-reference", lambda h: in_paragraph(h, " &#150; "), False),
    ("reference-without-semicolon", lambda h: in_paragraph(h, " &copy 2020 "), False),
    ("unknown-reference", lambda h: in_paragraph(h, " &bogus; "), False),
    ("bare-ampersand", lambda h: in_paragraph(h, " R & D "), False),
    # A tag cutting a reference: the parser decodes each string between tags on its own.
    ("tag-inside-reference", lambda h: in_paragraph(h, " &#8<b>2</b>220; &am<i></i>p; "), False),
    ("reference-around-tag", lambda h: in_paragraph(h, " &#8220;<b>x</b>&#8221; "), True),
    ("escaped-twice", lambda h: in_paragraph(h, " &amp;nbsp;&amp;amp; "), True),
    (
        "nested-inline",
        lambda h: word_wrapped(h, "<strong><em><span>", "</span></em></strong>"),
        True,
    ),
    (
        "inline-attributes",
        lambda h: word_wrapped(h, '<span class="x" style="color: red">', "</span>"),
        True,
    ),
    ("gt-in-attribute", lambda h: word_wrapped(h, '<a title="a > b" href="/x.htm">', "</a>"), True),
    ("lt-in-attribute", lambda h: word_wrapped(h, '<a title="a < b" href="/x.htm">', "</a>"), None),
    ("single-quotes", lambda h: word_wrapped(h, "<a href='/x.htm'>", "</a>"), False),
    ("unquoted-attribute", lambda h: word_wrapped(h, "<a href=/x.htm>", "</a>"), None),
    ("open-quote", lambda h: word_wrapped(h, '<a href="/x.htm>', "</a>"), False),
    ("unclosed-p", lambda h: h.replace("</p>", "", 2), False),
    ("stray-end-tag", lambda h: in_paragraph(h, "</span>"), False),
    ("upper-case-tags", lambda h: word_wrapped(h, "<B>", "</B>"), False),
    ("upper-case-p", lambda h: h.replace("<p>", "<P>", 1).replace("</p>", "</P>", 1), False),
    ("crlf", lambda h: h.replace("\n", "\r\n"), False),
    ("control-character", lambda h: in_paragraph(h, "\x0b"), False),
    ("nul", lambda h: in_paragraph(h, "\x00"), False),
    (
        "script-in-body",
        lambda h: h.replace("<body", "<body", 1).replace(
            "</body>", "<script>var a = 1;</script></body>"
        ),
        None,
    ),
    (
        "script-in-paragraph",
        lambda h: in_paragraph(h, "<script>document.write('<p>x</p>')</script>"),
        False,
    ),
    ("style-in-body", lambda h: in_paragraph(h, "<style>p { color: red }</style>"), False),
    ("self-closed-div", lambda h: in_paragraph(h, "</p><div/><p>"), False),
    (
        "block-in-inline",
        lambda h: in_paragraph(h, "</p><span><div>Boxed text.</div></span><p>"),
        False,
    ),
    ("item-in-item", lambda h: in_paragraph(h, "</p><ul><li>one<li>two</li></li></ul><p>"), False),
    (
        "link-in-link",
        lambda h: word_wrapped(h, '<a href="/a.htm"><b><a href="/b.htm">', "</a></b></a>"),
        False,
    ),
    ("double-break", lambda h: in_paragraph(h, "<br><br>"), False),
    ("single-break", lambda h: in_paragraph(h, "<br>"), True),
    ("self-closed-break", lambda h: in_paragraph(h, "<br/>"), True),
    ("superscript", lambda h: in_paragraph(h, " 10<sup>2</sup>m"), True),
    ("space-after-superscript", lambda h: in_paragraph(h, " 10<sup>2</sup> <b>m</b>"), False),
    ("space-in-time", lambda h: in_paragraph(h, " on <time> <b>Monday</b></time>"), False),
    ("zero-width-spaces", lambda h: in_paragraph(h, " \u200b\ufeff\u2060 "), True),
    ("odd-spaces", lambda h: in_paragraph(h, " \u3000\u2028\u00a0 "), True),
    ("noncharacter", lambda h: in_paragraph(h, "\ufffe"), False),
    ("navigation-body", lambda h: h.replace("<body", '<body class="nav-page"', 1), False),
    ("strict-doctype", lambda h: STRICT + (h.split(">", 1)[1] if h.startswith("<!") else h), False),
    ("bom", lambda h: "\ufeff" + h, False),
    (
        "text-after-body",
        lambda h: h.replace("</html>", "</html>\n<p>trailing words after the page</p>"),
        None,
    ),
    ("image-in-paragraph", lambda h: in_paragraph(h, '<img src="/att/x.jpg" alt="">'), False),
    (
        "spacer-image",
        lambda h: in_paragraph(h, '</p><p><img src="/att/x.gif" width="1" height="1"></p><p>'),
        None,
    ),
    ("title-with-markup", lambda h: h.replace("<title>", "<title><b>x</b>", 1), False),
    ("second-updated", lambda h: in_paragraph(h, " Updated: 2020-01-01 "), False),
    ("cdata", lambda h: in_paragraph(h, "<![CDATA[x]]>"), False),
    ("processing-instruction", lambda h: in_paragraph(h, "<?php echo 1; ?>"), False),
    ("lt-in-text", lambda h: in_paragraph(h, " a < b "), False),
    ("gt-in-text", lambda h: in_paragraph(h, " a > b "), True),
    ("spaces-around-equals", lambda h: word_wrapped(h, '<a href = "/x.htm">', "</a>"), False),
    ("duplicate-attribute", lambda h: h.replace("<p>", '<p class="a" class="b">', 1), None),
    ("uppercase-attribute", lambda h: h.replace("<p>", '<p CLASS="lead">', 1), None),
    (
        "space-after-image-in-sidebar",
        lambda h: before_the_sidebar(h, '<div><img src="/att/i.png"> <b>Hot</b></div>'),
        None,
    ),
    (
        "short-paragraph-with-break",
        lambda h: before_first_paragraph(h, f"<p>{'x' * 30}<br> <b>{'y' * 29}</b></p>"),
        False,
    ),
    ("newline-in-href", lambda h: word_wrapped(h, '<a href="/x\n.htm">', "</a>"), None),
]


@pytest.mark.parametrize(("name", "change", "read"), CHANGES, ids=[c[0] for c in CHANGES])
@pytest.mark.parametrize("base", sorted(BASES))
def test_changed_pages_are_read_the_same_or_left(name: str, change, read, base: str) -> None:
    url, html = BASES[base]
    changed = change(html)
    assert changed != html
    taken = read_same(changed, url)
    if read is not None:
        assert taken == read


def test_a_page_link_spelled_with_references_is_read_as_the_walk_does() -> None:
    url, html = BASES["cms-pager"]
    key = parse_article_url(url).article_key
    # "c_<key>" in an href with its "c" written as a reference, and nowhere else as written.
    changed = html.replace(f'href="c_{key}', f'href="&#99;_{key}', 1)
    assert changed != html
    read_same(changed, url)


def mutate(rnd: random.Random, html: str) -> str:
    pieces = [
        "<!-- c -->",
        "&amp;",
        "&nbsp;",
        "&#150;",
        "&copy",
        "&#x2019;",
        "&bogus;",
        "<b>",
        "</b>",
        "<em>x</em>",
        "<span>",
        "</span>",
        "<br>",
        "<br><br>",
        "<p>",
        "</p>",
        "<div>",
        "</div>",
        "<P>",
        "\r\n",
        "\x0b",
        "<script>x</script>",
        '<img src="a.jpg">',
        "<div/>",
        "<li>",
        "<ul><li>a</li></ul>",
        '<a title="x>y" href="h">z</a>',
        "<a href='x'>y</a>",
        "<a href=x>y</a>",
        ' class="nav"',
        "<h2>Related</h2>",
        "<sup>2</sup> ",
        "Updated: 2020-01-01",
        "(Xinhua)",
        "[Photo]",
        "Copyright 2020",
        "<hr>",
        '<figure><img src="b.jpg"><figcaption>c</figcaption></figure>',
        "\u200b",
        "\ufffe",
        "<center>",
        "</center>",
        '<font size="3">x</font>',
        "&lt;",
        ">",
        "<",
        "'",
        '"',
        "<nav>x</nav>",
        "<td>",
        "</tr>",
        '<a href="c_1_2.htm">2</a>',
        "&#8",
        "&am",
        "p;",
        "20;",
        "<time>t</time> ",
    ]
    for _ in range(rnd.randrange(1, 4)):
        if rnd.random() < 0.75:
            at = rnd.randrange(len(html))
            if rnd.random() < 0.4:
                at = max(html.find("<", at), 0)
            html = html[:at] + rnd.choice(pieces) + html[at:]
        else:
            at = rnd.randrange(len(html))
            html = html[:at] + html[at + rnd.randrange(1, 30) :]
    return html


def test_randomly_changed_pages_are_read_the_same_or_left() -> None:
    rnd = random.Random(2025)
    sites = [
        ReplicaSite(articles=20, seed=3, templates=(template,), faults=False)
        for template in DEFAULT_TEMPLATES
    ]
    pages = [page for site in sites for page in site_pages(site)]
    taken = 0
    for _ in range(600):
        url, html = rnd.choice(pages)
        taken += read_same(mutate(rnd, html), url)
    assert taken >= 60  # the raw stage is really tried on many of them
