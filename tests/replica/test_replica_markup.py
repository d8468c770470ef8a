"""The rendered pages keep the known text order in every template, and their text is the truth."""

from __future__ import annotations

import re

import pytest

from crawler.replica import HOLDOUT_TEMPLATES, FaultKind, ReplicaArticle, ReplicaSite
from crawler.replica.markup import malform

from .conftest import decode, get, leaf_blocks, page_text

COPYRIGHT = (
    "Copyright © Tianjin Municipal Government. All rights reserved. Presented by China Daily"
)
ICP = "京ICP备13028878号-35"


def _check_page(site: ReplicaSite, article: ReplicaArticle, page: int) -> None:
    response = get(site, article.path(page))
    assert response.status == 200
    html = decode(response)
    blocks = leaf_blocks(html)
    where = f"{article.template} {article.path(page)} {site.faults.get(article.path(page))}"

    # Column header, then title, then source and date.
    title_at = blocks.index(article.title)
    assert blocks[title_at - 1].endswith("Tianjin Updates"), where
    date_at = next(
        i for i, b in enumerate(blocks) if f"Updated: {article.published_on.isoformat()}" in b
    )
    assert date_at > title_at, where
    between = " ".join(blocks[title_at + 1 : date_at + 1])
    between = between[: between.index("Updated:")]
    if article.template == "chinadaily":
        segments = [s.strip() for s in between.split("|") if s.strip()]
        shown = segments[-1] if segments and not segments[-1].startswith("By ") else None
        assert shown == article.source, where
    elif article.source is None:
        assert "(" not in between, where
    else:
        assert re.search(r"\(\s*" + re.escape(article.source) + r"\s*\)", between), where

    # After the date line: exactly the expected paragraphs, with only images' lines between.
    images = [im for im in article.images if im.page == page]
    extras = {im.alt for im in images} | {im.caption for im in images if im.caption}
    todo = list(article.pages[page - 1])
    captions = []
    for block in blocks[date_at + 1 :]:
        if todo and block == todo[0]:
            todo.pop(0)
        elif block in extras:
            captions.append(block)
        else:
            break
    assert todo == [], f"{where}: body text interrupted before {todo[0][:60]!r}"
    assert [im.caption for im in images if im.caption] == [
        c for c in captions if c.startswith(("[",)) or c.endswith("]")
    ]

    text = page_text(html)
    end_of_body = text.rindex(article.pages[page - 1][-1])
    assert end_of_body < text.index(COPYRIGHT, end_of_body) < text.index(ICP, end_of_body), where


@pytest.mark.parametrize("templates", [None, HOLDOUT_TEMPLATES], ids=["default", "holdout"])
def test_every_page_shows_the_truth_in_the_known_order(templates: tuple[str, ...] | None) -> None:
    site = ReplicaSite(articles=70, templates=templates)
    checked = set()
    for article in site:
        for page in range(1, article.page_count + 1):
            fault = site.faults.get(article.path(page))
            if fault is not None and fault.kind in (
                FaultKind.NOT_FOUND,
                FaultKind.BROKEN,
                FaultKind.FLAKY,
            ):
                continue
            _check_page(site, article, page)
            checked.add((article.template, fault.kind if fault else None))
    names = set(templates or ("cms", "chinadaily", "plain"))
    assert {t for t, _ in checked} == names
    assert {k for _, k in checked} >= {
        None,
        FaultKind.GBK,
        FaultKind.META_CHARSET_ONLY,
        FaultKind.MALFORMED,
    }


def test_image_markup_per_template() -> None:
    site = ReplicaSite(
        articles=120, templates=("cms", "chinadaily", "plain", "html5", "table"), faults=False
    )
    seen = set()
    for article in site:
        for image in article.images:
            html = decode(get(site, article.path(image.page)))
            assert f'alt="{image.alt}"' in html
            src = re.search(r'<img src="([^"]+)" alt="' + image.alt, html)
            assert src is not None and src[1].endswith(image.src_path)
            seen.add((article.template, src[1].startswith("../../"), image.caption is None))
            if article.template in ("chinadaily", "html5") and image.caption:
                assert re.search(r"<figure[^>]*><img[^>]*><figcaption[^>]*>", html)
    assert {t for t, _, _ in seen} == {"cms", "chinadaily", "plain", "html5", "table"}
    assert any(rel for _, rel, _ in seen) and any(not rel for _, rel, _ in seen)
    assert any(none for _, _, none in seen) and any(not none for _, _, none in seen)


def test_text_carries_entities_odd_spaces_and_decomposed_accents() -> None:
    site = ReplicaSite(articles=80, faults=False)
    html = "".join(decode(get(site, a.path(n))) for a in site for n in range(1, a.page_count + 1))
    for needle in (
        "&amp;",
        "&quot;",
        "&#8217;",
        "&rsquo;",
        "&mdash;",
        "&nbsp;",
        "\u00a0",
        "e\u0301",
        "<br",
        "<strong>",
        "<em>",
    ):
        assert needle in html, needle
    assert re.search(r"<p>(?:&nbsp;|\s|<br>)*</p>", html)  # empty paragraphs, never in the truth
    bodies = " ".join(a.body for a in site)
    assert "\u00e9" in bodies and "e\u0301" not in bodies and "\u00a0" not in bodies


def test_malformed_pages_are_sloppy_but_keep_their_text() -> None:
    site = ReplicaSite(articles=45)
    article = site.article_by_key(site.fault_keys["malformed"])
    html = decode(get(site, article.path()))
    assert "</body>" not in html and "</html>" not in html
    assert html.count("<p") > html.count("</p>")
    assert "</span></em>" in html and re.search(r"\s(?:class|align)=[a-z_]", html)
    clean = ReplicaSite(articles=45, faults=False)
    assert leaf_blocks(html) == leaf_blocks(decode(get(clean, article.path())))


def test_malform_transform() -> None:
    html = '<html><body><div class="a"><p>one</p>\n<p>two</p><p>three</p></div></body></html>'
    out = malform(html)
    assert out == "<html><body><div class=a><p>one\n<p>two</span></em><p>three</p>\n"
