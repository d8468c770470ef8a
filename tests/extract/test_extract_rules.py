"""The extraction contract, rule by rule, on small pages written for each rule."""

from __future__ import annotations

from datetime import date

import pytest

from crawler.extract import (
    PageImage,
    extract_article,
    extract_listing,
    find_section_url,
)

URL = "http://www.exploringtianjin.com/2020-05/25/c_493222.htm"
FOOTER = (
    "<div><p>Copyright ©  Tianjin Municipal Government. All rights reserved. Presented by China Daily.</p>"
    "<p>京ICP备13028878号-35</p></div>"
)


def page(article: str, *, title: str = "A kite festival fills the beach", sidebar: str = "") -> str:
    return (
        f"<html><head><title>{title} - Tianjin Updates</title></head><body>"
        '<div class="nav"><a href="/">Home</a> <a href="/n_7001.htm">Tianjin Updates</a></div>'
        f"<div class='wrap'><div class='main'>{article}</div>{sidebar}</div>{FOOTER}</body></html>"
    )


HEAD = "<p>Tianjin Updates</p><h1>A kite festival fills the beach</h1>"
BODY = "<div class='body'><p>Hundreds of kites rose over the beach on Saturday.</p><p>The largest was shaped like a carp.</p></div>"
PARAS = ("Hundreds of kites rose over the beach on Saturday.", "The largest was shaped like a carp.")


# -- source and date ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "source", "published"),
    [
        ("<p>( chinadaily.com.cn)</p><p>Updated: 2020-05-25</p>", "chinadaily.com.cn", date(2020, 5, 25)),
        ("<p>(Xinhua )</p><p>Updated: 2020-05-25</p>", "Xinhua", date(2020, 5, 25)),
        ("<p>(China Daily)</p><p>Updated: 2020-05-25 18:03</p>", "China Daily", date(2020, 5, 25)),
        ("<p>Updated: 2020-05-25</p>", None, date(2020, 5, 25)),
        (
            '<div class="info"><span class="info_l">chinadaily.com.cn | Updated: 2021-05-07 08:41</span></div>',
            "chinadaily.com.cn",
            date(2021, 5, 7),
        ),
        (
            '<div class="info"><span class="info_l">By YANG MEI in Tianjin | CHINA DAILY | Updated: 2021-05-07 08:41</span></div>',
            "CHINA DAILY",
            date(2021, 5, 7),
        ),
        ('<div class="info"><span class="info_l">Updated: 2021-05-07 08:41</span></div>', None, date(2021, 5, 7)),
        ("<p>(exploringtianjin.com) Updated: 2019-12-31</p>", "exploringtianjin.com", date(2019, 12, 31)),
        ("<p>(Xinhua)</p>", "Xinhua", None),
        ("", None, None),
    ],
)
def test_source_and_date(lines: str, source: str | None, published: date | None) -> None:
    got = extract_article(page(HEAD + lines + BODY), URL)
    assert (got.title, got.source, got.published_on) == ("A kite festival fills the beach", source, published)
    assert got.paragraphs == PARAS


def test_an_impossible_date_is_not_a_date() -> None:
    got = extract_article(page(HEAD + "<p>Updated: 2020-13-45</p>" + BODY), URL)
    assert got.published_on is None


# -- title -------------------------------------------------------------------------------------


def test_title_without_heading_is_the_block_before_source_and_date() -> None:
    html = page("<div>Tianjin Updates</div><div><b>A kite festival fills the beach</b></div>"
                "<div>(Xinhua)</div><div>Updated: 2020-05-25</div>" + BODY, title="Kites")
    got = extract_article(html, URL)
    assert got.title == "A kite festival fills the beach"
    assert got.source == "Xinhua"


def test_title_cross_checked_with_the_title_element() -> None:
    html = page("<h2>Tianjin Updates</h2><h1>A kite festival fills the beach</h1>"
                "<h3>Organisers expect more visitors next year</h3><p>Updated: 2020-05-25</p>" + BODY)
    assert extract_article(html, URL).title == "A kite festival fills the beach"


def test_column_header_heading_is_never_the_title() -> None:
    html = page("<h1>Tianjin Updates</h1><h2>A kite festival fills the beach</h2>"
                "<p>Updated: 2020-05-25</p>" + BODY, title="Untitled")
    assert extract_article(html, URL).title == "A kite festival fills the beach"


def test_page_without_date_uses_heading_and_body_after_source() -> None:
    html = page(HEAD + "<p>(Xinhua)</p>" + BODY)
    got = extract_article(html, URL)
    assert (got.title, got.source, got.published_on, got.paragraphs) == (
        "A kite festival fills the beach", "Xinhua", None, PARAS)


# -- body ----------------------------------------------------------------------------------------


def test_body_excludes_header_lines_pager_footer_and_sidebar() -> None:
    pager = '<div><a href="c_493222.htm">&lt;</a> <a href="c_493222.htm">1</a> 2 <a href="c_493222_3.htm">3</a> <a href="c_493222_3.htm">&gt;</a></div>'
    sidebar = ('<div class="side"><h3>Related</h3><ul><li><a href="/2020-05/20/c_1.htm">Sea wall repaired</a></li>'
               '<li><a href="/2020-05/19/c_2.htm">Beach reopens</a></li></ul></div>')
    html = page(HEAD + "<p>(Xinhua)</p><p>Updated: 2020-05-25</p>" + BODY + pager, sidebar=sidebar)
    got = extract_article(html, "http://www.exploringtianjin.com/2020-05/25/c_493222_2.htm")
    assert got.paragraphs == PARAS
    assert got.page_count == 3


def test_inline_markup_and_br_inside_a_paragraph() -> None:
    body = ("<div><p>The <a href='http://example.org'>city</a> <strong>museum</strong> <em>opened</em>"
            " <span>a wing</span>.<br/>It holds<br>maps.</p></div>")
    got = extract_article(page(HEAD + "<p>Updated: 2020-05-25</p>" + body), URL)
    assert got.paragraphs == ("The city museum opened a wing. It holds maps.",)


def test_double_br_splits_paragraphs() -> None:
    body = "<div>First line of the story.<br><br>Second line of the story.<br> <br>Third.</div>"
    got = extract_article(page(HEAD + "<p>Updated: 2020-05-25</p>" + body), URL)
    assert got.paragraphs == ("First line of the story.", "Second line of the story.", "Third.")


def test_empty_and_space_only_paragraphs_are_dropped() -> None:
    body = "<div><p>&nbsp;</p><p>\u3000</p><p>One.</p><p> </p><p>Two.</p></div>"
    got = extract_article(page(HEAD + "<p>Updated: 2020-05-25</p>" + body), URL)
    assert got.paragraphs == ("One.", "Two.")


def test_a_sentence_about_copyright_is_body_not_footer() -> None:
    body = ("<div><p>Copyright protection for designers was the theme of a forum on Monday.</p>"
            "<p>Judges said most copyright cases now involve online shops. All rights were kept.</p>"
            "<p>Photo © Li Na</p></div>")
    got = extract_article(page(HEAD + "<p>Updated: 2020-05-25</p>" + body), URL)
    assert got.paragraphs == (
        "Copyright protection for designers was the theme of a forum on Monday.",
        "Judges said most copyright cases now involve online shops. All rights were kept.",
        "Photo © Li Na",
    )


def test_source_at_the_end_of_a_run_in_dateline() -> None:
    html = page("<p>Tianjin Updates</p><div><b>A kite festival fills the beach</b> (Xinhua) "
                "Updated: 2020-05-25</div>" + BODY)
    got = extract_article(html, URL)
    assert (got.source, got.published_on, got.paragraphs) == ("Xinhua", date(2020, 5, 25), PARAS)


# -- images --------------------------------------------------------------------------------------


def test_images_captions_and_file_name_lines() -> None:
    body = (
        "<div class='text'>"
        "<p>Kites of every colour.</p>"
        "<p><img src='../../att/20200525/1590000000000000001.jpeg' alt='5fc73c03a31024adbda5d268.jpg'></p>"
        "<p>5fc73c03a31024adbda5d268.jpg</p><p>[Photo/Xinhua]</p>"
        "<p>A second picture follows.</p>"
        "<p><img src='/att/20200525/1590000000000000002.jpeg'></p>"
        "<p>No caption for that one.</p>"
        "<figure><img src='http://img.example.com/a.jpg'><figcaption> A carp kite. </figcaption></figure>"
        "<p><img src='/att/20200525/3.jpeg'><br>[Photo by Li Na/chinadaily.com.cn]</p>"
        "</div>"
    )
    got = extract_article(page(HEAD + "<p>Updated: 2020-05-25</p>" + body), URL)
    assert got.paragraphs == ("Kites of every colour.", "A second picture follows.", "No caption for that one.")
    assert got.images == (
        PageImage("http://www.exploringtianjin.com/att/20200525/1590000000000000001.jpeg", "[Photo/Xinhua]"),
        PageImage("http://www.exploringtianjin.com/att/20200525/1590000000000000002.jpeg", None),
        PageImage("http://img.example.com/a.jpg", "A carp kite."),
        PageImage("http://www.exploringtianjin.com/att/20200525/3.jpeg", "[Photo by Li Na/chinadaily.com.cn]"),
    )


def test_logo_and_sidebar_thumbnails_are_not_body_images() -> None:
    html = page(HEAD + "<p>Updated: 2020-05-25</p>" + BODY,
                sidebar="<div><ul><li><a href='/2020-05/01/c_9.htm'><img src='/t.jpg'>Older story</a></li>"
                        "<li><a href='/2020-05/02/c_10.htm'>Another</a></li></ul></div>")
    html = html.replace("<body>", "<body><div><a href='/'><img src='/logo.png'></a></div>")
    assert extract_article(html, URL).images == ()


# -- pager ---------------------------------------------------------------------------------------


def pager(key: str, current: int, total: int) -> str:
    """The site's pager: '<' when current > 1, '>' when current < total, a window with '...'."""
    def href(k: int) -> str:
        return f"c_{key}.htm" if k == 1 else f"c_{key}_{k}.htm"

    if total <= 5:
        shown = list(range(1, total + 1))
    else:
        shown = sorted({1, 2, 3, total} if current <= 2 else {1, current - 1, current, current + 1, total})
        shown = [k for k in shown if 1 <= k <= total]
    parts = [f'<a href="{href(current - 1)}">&lt;</a>'] if current > 1 else []
    prev = 0
    for k in shown:
        if k - prev > 1:
            parts.append("...")
        parts.append(str(k) if k == current else f'<a href="{href(k)}">{k}</a>')
        prev = k
    if current < total:
        parts.append(f'<a href="{href(current + 1)}">&gt;</a>')
    return "<div id='div_currpage'>" + " ".join(parts) + "</div>"


@pytest.mark.parametrize(
    ("current", "total", "linked"),
    [(1, 16, [2, 3, 16]), (2, 3, [1, 3]), (4, 4, [1, 2, 3]), (8, 16, [1, 7, 9, 16]),
     (16, 16, [1, 15]), (1, 2, [2]), (2, 2, [1]), (3, 16, [1, 2, 4, 16])],
)
def test_pager_windows(current: int, total: int, linked: list[int]) -> None:
    base = "http://www.exploringtianjin.com/2020-05/25/"
    url = base + ("c_493222.htm" if current == 1 else f"c_493222_{current}.htm")
    html = page(HEAD + "<p>Updated: 2020-05-25</p>" + BODY + pager("493222", current, total))
    got = extract_article(html, url)
    expected_total = max(linked + [current])
    assert got.page_count == expected_total
    assert got.page_links == tuple(base + ("c_493222.htm" if k == 1 else f"c_493222_{k}.htm") for k in linked)
    assert got.paragraphs == PARAS


def test_no_pager_means_no_page_count() -> None:
    html = page(HEAD + "<h1><a href='c_493222.htm'>x</a></h1><p>Updated: 2020-05-25</p>" + BODY)
    got = extract_article(html, URL)
    assert (got.page_count, got.page_links) == (None, ())


def test_pager_above_and_below_the_body() -> None:
    p = pager("493222", 1, 3)
    got = extract_article(page(HEAD + "<p>Updated: 2020-05-25</p>" + p + BODY + p), URL)
    assert got.paragraphs == PARAS
    assert got.page_count == 3


def test_links_to_other_articles_are_not_page_links() -> None:
    html = page(HEAD + "<p>Updated: 2020-05-25</p>" + BODY + "<p><a href='c_493223_2.htm'>2</a></p>")
    assert extract_article(html, URL).page_links == ()


# -- odd inputs ----------------------------------------------------------------------------------


def test_empty_document() -> None:
    assert extract_article("", URL).paragraphs == ()
    assert extract_article("   ", URL).title is None


def test_xhtml_with_xml_declaration_as_str() -> None:
    html = '<?xml version="1.0" encoding="utf-8"?>\n' + page(HEAD + "<p>Updated: 2020-05-25</p>" + BODY)
    got = extract_article(html, URL)
    assert (got.title, got.paragraphs) == ("A kite festival fills the beach", PARAS)


def test_base_href_is_honoured_for_images() -> None:
    html = page(HEAD + "<p>Updated: 2020-05-25</p><div><p>Text.</p><p><img src='pic/1.jpg'></p></div>")
    html = html.replace("<head>", "<head><base href='http://static.example.com/tj/'>")
    assert extract_article(html, URL).images == (PageImage("http://static.example.com/tj/pic/1.jpg", None),)


# -- listings and the home page ------------------------------------------------------------------


def test_listing_of_a_non_listing_url_still_lists_articles() -> None:
    html = "<a href='/2020-05/25/c_1.htm'>a</a><a href='n_5_2.htm'>2</a>"
    got = extract_listing(html, "http://www.exploringtianjin.com/")
    assert got.article_urls == ("http://www.exploringtianjin.com/2020-05/25/c_1.htm",)
    assert got.listing_urls == ()


def test_find_section_url_prefers_a_listing_link() -> None:
    html = ("<a href='/special/updates.html'>Tianjin Updates</a>"
            "<a href='/n_42.htm'> tianjin  updates </a>")
    assert find_section_url(html, "http://www.exploringtianjin.com/") == "http://www.exploringtianjin.com/n_42.htm"
    assert find_section_url(html, "http://www.exploringtianjin.com/", name="Business") is None


# -- text cleaning -------------------------------------------------------------------------------


def test_fast_cleaning_equals_clean_text() -> None:
    """The extractor's own cleaning is a faster road to exactly ``clean_text``'s result."""
    import random

    from crawler.extract import _clean
    from crawler.text import clean_text

    pieces = ["a", "Z", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x1c", "\x85", "\xa0", "\u1680",
              "\u2009", "\u2028", "\u202f", "\u3000", "\u200b", "\u200c", "\u200d", "\u2060",
              "\ufeff", "&", "&amp;", "&nbsp;", "&#8203;", "&lt", "&copy", ";", "e\u0301", "\u212b",
              "A\u030a", "天津", "\u0301", "R&D"]
    rnd = random.Random(7)
    for _ in range(20000):
        value = "".join(rnd.choice(pieces) for _ in range(rnd.randrange(0, 10)))
        assert _clean(value) == clean_text(value), repr(value)
