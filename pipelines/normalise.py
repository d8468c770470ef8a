"""Normalise an article's text and URLs before it is validated and stored."""

from __future__ import annotations

from typing import Any
from urllib.parse import urldefrag, urlsplit, urlunsplit

from itemadapter import ItemAdapter

from crawler.text import clean_text, normalise_body
from crawler.urls import canonical_article_url, parse_article_url


def canonical_url(url: str) -> str:
    """Page 1 of the article at ``url`` on the crawl's own host, without query or fragment.

    A URL that is not of the article shape only loses its query and fragment.
    """
    if parse_article_url(url) is not None:
        return canonical_article_url(url)
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class NormalisePipeline:
    """Clean title, source, body and captions; canonical article URL; image URLs without fragment."""

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        if adapter.get("title") is not None:
            adapter["title"] = clean_text(adapter["title"])
        if "source" in adapter:
            adapter["source"] = clean_text(adapter.get("source")) or None
        if adapter.get("body") is not None:
            adapter["body"] = normalise_body(adapter["body"])
        if adapter.get("url"):
            adapter["url"] = canonical_url(adapter["url"])
        for image in adapter.get("images") or []:
            image_adapter = ItemAdapter(image)
            if image_adapter.get("url"):
                image_adapter["url"] = urldefrag(image_adapter["url"]).url
            image_adapter["caption"] = clean_text(image_adapter.get("caption")) or None
        return item
