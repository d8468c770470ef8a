"""What the spider sends to be read: an article page's bytes and encoding come back read exactly
as from Scrapy's decoded text, with the page's body already normalised."""

from __future__ import annotations

import random

import pytest
from scrapy.http import HtmlResponse

from crawler.extract import extract_article, read_article_page
from crawler.replica import DEFAULT_TEMPLATES, HOLDOUT_TEMPLATES, ReplicaSite
from crawler.text import (
    NormalBody,
    clean_text,
    join_bodies,
    join_paragraphs,
    normalise_body,
    page_body,
)

HOST = "www.exploringtianjin.com"


def _page(site: ReplicaSite, index: int, number: int = 1) -> tuple[str, bytes]:
    head = site.head(index)
    path = head.path(number)
    return f"http://{HOST}{path}", site.respond(HOST, path, {}).body


@pytest.mark.parametrize(
    ("content_type", "encode"),
    [
        ("text/html; charset=utf-8", lambda t: t.encode("utf-8")),
        ("text/html", lambda t: t.encode("utf-8")),  # no charset: Scrapy infers one
        ("text/html; charset=utf-8", lambda t: b"\xef\xbb\xbf" + t.encode("utf-8")),  # BOM
        ("text/html; charset=gb2312", lambda t: t.encode("gb18030", "replace")),
        ("text/html; charset=iso-8859-1", lambda t: t.encode("cp1252", "replace")),
        ("text/html; charset=utf-8", lambda t: t.encode("utf-8")[:-7] + b"\xff\xfe<"),  # broken
    ],
)
def test_a_page_is_decoded_as_scrapy_decodes_it(content_type: str, encode) -> None:
    site = ReplicaSite(articles=12, seed=5, faults=False)
    for index in range(6):
        url, raw = _page(site, index)
        body = encode(raw.decode("utf-8"))
        response = HtmlResponse(url, body=body, headers={"Content-Type": content_type})
        page, text, has_paragraphs = read_article_page(response.body, response.encoding, url)
        want = extract_article(response.text, url)
        assert page.title == want.title and page.published_on == want.published_on
        assert page.images == want.images and page.page_links == want.page_links
        assert page.paragraphs == ()  # not sent back twice
        assert has_paragraphs == bool(want.paragraphs)
        assert text == join_paragraphs(list(want.paragraphs))
        assert type(text) is NormalBody


@pytest.mark.parametrize("template", DEFAULT_TEMPLATES + HOLDOUT_TEMPLATES)
def test_every_page_extraction_reads_has_a_normal_body(template: str) -> None:
    # page_body trusts extraction's paragraphs to be clean: held here over every template, with
    # the replica's faults (odd encodings, entities, stray markup) on.
    site = ReplicaSite(articles=60, seed=9, templates=(template,), faults=True)
    pages = 0
    for index in range(len(site)):
        head = site.head(index)
        for number in range(1, head.page_count + 1):
            resp = site.respond(HOST, head.path(number), {"Accept-Encoding": "identity"})
            if resp.status != 200:
                continue
            got = HtmlResponse(f"http://{HOST}{head.path(number)}", body=resp.body,
                               headers=dict(resp.headers))  # fmt: skip
            paragraphs = list(extract_article(got.text, got.url).paragraphs)
            body = page_body(paragraphs)
            assert body == normalise_body("\n\n".join(paragraphs)), got.url
            assert all(p == clean_text(p) for p in paragraphs), got.url
            pages += 1
    assert pages >= 60


def _clean_paragraphs(rng: random.Random, pieces: list[str]) -> list[str]:
    return [
        clean_text("".join(rng.choice(pieces) for _ in range(rng.randint(0, 5))))
        for _ in range(3)
    ]


def test_joined_page_bodies_equal_the_normalised_join_of_all_paragraphs() -> None:
    pieces = ["word", "R&D", "&amp;", " ", "  ", "\n", "\u00a0", "\u5929\u6d25", "e\u0301", ""]
    rng = random.Random(3)
    for _ in range(3000):
        pages = [_clean_paragraphs(rng, pieces) for _ in range(rng.randint(1, 4))]
        everything = "\n\n".join(p for page in pages for p in page if p)
        joined = join_bodies([page_body(page) for page in pages])
        assert joined == normalise_body(everything), pages
        assert type(joined) is NormalBody
        # The pipeline's normalise_body hands it back as a plain str, unchanged.
        again = normalise_body(joined)
        assert again == joined and type(again) is str


def test_a_join_with_any_plain_part_is_plain_and_normalised_by_the_pipeline() -> None:
    joined = join_bodies([page_body(["One."]), "Two  &amp; three."])
    assert type(joined) is str
    assert normalise_body(joined) == "One.\n\nTwo & three."
