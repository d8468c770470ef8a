"""Every page of many replica articles, in every template, read back exactly by ``extract_article``.

The replica (``crawler.replica``) renders each article with one of its templates and knows the
truth (title, source, date, clean paragraphs per page, images with captions, page count). The
pages go through Scrapy's ``HtmlResponse`` with the served headers, as in a crawl, so GBK pages and
the malformed-markup fault are part of the run.

``html5`` and ``table`` are HOLDOUT templates: the extractor was not developed against them.
"""

from __future__ import annotations

import pytest
from scrapy.http import HtmlResponse

from crawler.extract import PageImage, extract_article
from crawler.replica import DEFAULT_TEMPLATES, HOLDOUT_TEMPLATES, ReplicaSite

HOST = "127.0.0.1:8000"
ORIGIN = f"http://{HOST}"
ARTICLES = 60


def fetch(site: ReplicaSite, path: str) -> HtmlResponse | None:
    """The page as a crawl would get it (flaky paths retried), or None if it cannot be had."""
    for _ in range(6):
        resp = site.respond(HOST, path, {"Accept-Encoding": "identity"})
        if resp.status == 200:
            return HtmlResponse(url=ORIGIN + path, body=resp.body, headers=dict(resp.headers))
        if resp.status == 404:
            return None
    return None


def check_template(template: str, articles: int = ARTICLES) -> int:
    """Assert every fetchable page of ``articles`` articles; return how many pages were checked."""
    site = ReplicaSite(articles=articles, templates=(template,))
    checked = 0
    failures: list[str] = []
    for index in range(articles):
        art = site.article(index)
        assert art.template == template
        for page in range(1, art.page_count + 1):
            resp = fetch(site, art.path(page))
            if resp is None:
                continue
            got = extract_article(resp.text, resp.url)
            want_images = tuple(
                PageImage(ORIGIN + im.src_path, im.caption) for im in art.images if im.page == page
            )
            want = {
                "title": art.title,
                "source": art.source,
                "published_on": art.published_on,
                "paragraphs": art.pages[page - 1],
                "images": want_images,
                "page_count": art.page_count if art.page_count > 1 else None,
            }
            for name, value in want.items():
                if getattr(got, name) != value:
                    failures.append(
                        f"{template} {art.path(page)} {name}: got {getattr(got, name)!r}, want {value!r}"
                    )
            checked += 1
    assert not failures, f"{len(failures)} field(s) wrong:\n" + "\n".join(failures[:20])
    return checked


@pytest.mark.parametrize("template", DEFAULT_TEMPLATES)
def test_development_templates(template: str) -> None:
    assert check_template(template) >= ARTICLES


@pytest.mark.parametrize("template", HOLDOUT_TEMPLATES)
def test_holdout_templates(template: str) -> None:
    assert check_template(template) >= ARTICLES
