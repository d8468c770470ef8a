"""URL shapes of the site: article pages, listing pages, hosts and canonical forms.

Rules (from what is known of the real site):

* an article page is ``[/<prefix>]/YYYY-MM/DD/c_<id>.htm`` and its page k >= 2 is
  ``.../c_<id>_<k>.htm``; the folder is the publication date, the id is shared by every host;
* a listing page is ``[/<prefix>]/n_<node>.htm`` and its page k >= 2 ``.../n_<node>_<k>.htm``;
* a host of the site is compared without its port and case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

#: The real hosts of the site (also the default of the ``TIANJIN_HOSTS`` setting).
DEFAULT_HOSTS: tuple[str, ...] = (
    "www.exploringtianjin.com",
    "tianjin.chinadaily.com.cn",
    "regional.chinadaily.com.cn",
    "xiqing.exploringtianjin.com",
    "exploringtianjin.com",
)

#: The real home page, the default start URL.
DEFAULT_START_URL = "http://www.exploringtianjin.com/"

ARTICLE_PATH_RE = re.compile(
    r"^(?P<prefix>(?:/[A-Za-z][\w-]*)*)/(?P<year>\d{4})-(?P<month>\d{2})/(?P<day>\d{2})/"
    r"c_(?P<id>\d+)(?:_(?P<page>\d+))?\.htm$"
)
LISTING_PATH_RE = re.compile(
    r"^(?P<prefix>(?:/[A-Za-z][\w-]*)*)/n_(?P<node>\d+)(?:_(?P<page>\d+))?\.htm$"
)


@dataclass(frozen=True)
class ArticleRef:
    """What an article page URL says about itself."""

    article_key: str
    """The CMS id (digits), the same through every host."""
    page: int
    """1 for ``c_<id>.htm``, k for ``c_<id>_<k>.htm``."""
    year: int
    month: int
    day: int
    prefix: str
    """A path prefix before the date folder (``/tianjin`` on regional.chinadaily.com.cn), or ``""``."""


@dataclass(frozen=True)
class ListingRef:
    """What a listing page URL says about itself."""

    node: str
    page: int
    prefix: str


@lru_cache(maxsize=4096)
def parse_article_url(url: str) -> ArticleRef | None:
    """Return the article id and page number of an article page URL, or None for other URLs.

    Cached (the result is immutable): a crawl asks about the same URL from the listing, the
    spider's request and the pager of every page of the article.
    """
    m = ARTICLE_PATH_RE.match(urlsplit(url).path)
    if not m:
        return None
    page = int(m["page"]) if m["page"] else 1
    if page < 1:
        return None
    return ArticleRef(
        article_key=str(int(m["id"])),
        page=page,
        year=int(m["year"]),
        month=int(m["month"]),
        day=int(m["day"]),
        prefix=m["prefix"],
    )


def parse_listing_url(url: str) -> ListingRef | None:
    """Return the node and page number of a listing page URL, or None for other URLs."""
    m = LISTING_PATH_RE.match(urlsplit(url).path)
    if not m:
        return None
    return ListingRef(node=m["node"], page=int(m["page"]) if m["page"] else 1, prefix=m["prefix"])


def article_page_url(url: str, page: int) -> str:
    """The URL of page ``page`` of the article that ``url`` (any of its pages) belongs to."""
    parts = urlsplit(url)
    ref = parse_article_url(url)
    if ref is None:
        raise ValueError(f"not an article URL: {url}")
    suffix = "" if page == 1 else f"_{page}"
    path = (
        f"{ref.prefix}/{ref.year:04d}-{ref.month:02d}/{ref.day:02d}/c_{ref.article_key}{suffix}.htm"
    )
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def listing_page_url(url: str, page: int) -> str:
    """The URL of page ``page`` of the listing that ``url`` (any of its pages) belongs to."""
    parts = urlsplit(url)
    ref = parse_listing_url(url)
    if ref is None:
        raise ValueError(f"not a listing URL: {url}")
    suffix = "" if page == 1 else f"_{page}"
    return urlunsplit(
        (parts.scheme, parts.netloc, f"{ref.prefix}/n_{ref.node}{suffix}.htm", "", "")
    )


def hostname(url: str) -> str:
    """The lower-case host name of ``url`` without port ("" when it has none)."""
    return (urlsplit(url).hostname or "").lower()


def parse_hosts(value: str | Iterable[str]) -> tuple[str, ...]:
    """Parse the ``TIANJIN_HOSTS`` setting (a comma-separated string or a list) into host names."""
    items = value.split(",") if isinstance(value, str) else list(value)
    hosts: list[str] = []
    for item in items:
        host = item.strip().lower()
        if not host:
            continue
        if "://" in host:
            host = hostname(host)
        host = host.split("/", 1)[0].rsplit(":", 1)[0] if host.count(":") == 1 else host
        if host and host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def is_site_url(url: str, hosts: Iterable[str]) -> bool:
    """True when ``url`` is an http(s) URL on one of the site's ``hosts``."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and (parts.hostname or "").lower() in set(hosts)


def rehost(url: str, base_url: str) -> str:
    """``url`` moved to the scheme and host (with port) of ``base_url``; path kept, no query or fragment.

    Used to fetch an article found through a second host of the site through the crawl's own
    host, so the same article id is requested (and deduplicated) once.
    """
    parts = urlsplit(url)
    base = urlsplit(base_url)
    return urlunsplit((base.scheme, base.netloc, parts.path, "", ""))


def canonical_article_url(url: str, canonical_host: str | None = None) -> str:
    """Page 1 of the article at ``url``: no query, fragment or page suffix; host optionally replaced."""
    parts = urlsplit(article_page_url(url, 1))
    netloc = canonical_host or parts.netloc
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
