"""Golden cases of the extractor: ``cases/<name>/{body.html,meta.json,expected.json}``.

``meta.json`` holds the page ``url``, its ``kind`` (``article``, ``listing`` or ``home``) and
optionally the HTTP ``headers`` it was served with; the body is decoded the way the crawl decodes
it (Scrapy's ``HtmlResponse``: the declared charset, HTTP header first, then ``<meta>``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from scrapy.http import HtmlResponse

from crawler.extract import extract_article, extract_listing, find_section_url

CASES_DIR = Path(__file__).resolve().parent / "cases"

ARTICLE_FIELDS = ("title", "source", "published_on", "paragraphs", "images", "page_links", "page_count")
LISTING_FIELDS = ("article_urls", "listing_urls")
HOME_FIELDS = ("section_url",)
FIELDS = {"article": ARTICLE_FIELDS, "listing": LISTING_FIELDS, "home": HOME_FIELDS}


def case_names() -> list[str]:
    return sorted(p.name for p in CASES_DIR.iterdir() if (p / "meta.json").exists())


def meta(name: str) -> dict[str, Any]:
    return json.loads((CASES_DIR / name / "meta.json").read_text(encoding="utf-8"))


def response(name: str) -> HtmlResponse:
    m = meta(name)
    body = (CASES_DIR / name / "body.html").read_bytes()
    return HtmlResponse(url=m["url"], body=body, headers=m.get("headers") or {})


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def extract(name: str) -> dict[str, Any]:
    """What the current extractor reads from a case, as JSON-ready values."""
    m = meta(name)
    resp = response(name)
    kind = m["kind"]
    if kind == "article":
        return _jsonable(extract_article(resp.text, resp.url))
    if kind == "listing":
        return _jsonable(extract_listing(resp.text, resp.url))
    if kind == "home":
        return {"section_url": find_section_url(resp.text, resp.url)}
    raise ValueError(f"{name}: unknown kind {kind!r}")


def expected(name: str) -> dict[str, Any]:
    return json.loads((CASES_DIR / name / "expected.json").read_text(encoding="utf-8"))
