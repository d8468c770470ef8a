"""Field extraction: pure functions from a page's HTML (and its URL) to data. No Spider, DB or clock.

How an article page is read (the real markup is unknown, so nothing rests on one class name):

1. The page is parsed once with lxml and *linearised*: a single walk turns the DOM into a stream
   of text blocks (one per block-level element's run of text; ``<br><br>`` splits a block, a single
   ``<br>`` is a space) and images, in document order. Each block keeps its element, its link
   density, whether it sits in a heading, a ``<figcaption>``, a list or a navigation-like box.
2. The ``Updated: YYYY-MM-DD`` block is the anchor. The title is the best candidate just before it
   (a block matching the ``<title>``, else the nearest heading, else the nearest plain block);
   the source is the segment before ``Updated:`` on the date line or a parenthesised line between
   title and date.
3. The body region runs from the date line to the pager, the footer or the end. Inside it the body
   container is the element that holds the most paragraph text for the least link text; the body
   is the paragraph blocks inside that container, up to a link list (related stories, sidebars).
   Images in the body take the ``<figcaption>`` or the bracketed line right after them as caption.
4. The pager is recognised by URL shape: links to other pages of the same article id.

The walk reads any layout but costs Python time on every element of the page. Most pages have the
usual layout (title, source and date lines, one element holding the body, then a pager, link lists
or the footer), which a fast path reads with a few targeted lxml calls, block by block as the walk
would, leaving to the walk every page it cannot account for (see "Fast path" below).

Class and id names only tip the balance (a navigation-like name marks a box as boilerplate, a
content-like name favours a container); every decision also works on markup without them.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from html import unescape as html_unescape
from unicodedata import normalize
from urllib.parse import urljoin, urlsplit, urlunsplit

from lxml import etree
from w3lib.encoding import html_to_unicode

from crawler.text import NormalBody, clean_text, page_body
from crawler.urls import (
    ARTICLE_PATH_RE,
    LISTING_PATH_RE,
    parse_article_url,
    parse_listing_url,
)


@dataclass(frozen=True)
class PageImage:
    """An image found on an article page."""

    url: str
    """Absolute URL of the image file."""
    caption: str | None
    """Its caption (cleaned text, brackets kept), or None."""


@dataclass(frozen=True)
class ArticlePage:
    """What one page of an article shows."""

    title: str | None
    source: str | None
    published_on: date | None
    paragraphs: tuple[str, ...]
    """Body paragraphs of this page, cleaned (see ``crawler.text.clean_text``), in order."""
    images: tuple[PageImage, ...] = ()
    page_links: tuple[str, ...] = field(default=())
    """Absolute URLs of the article's other pages linked from this page's pager."""
    page_count: int | None = None
    """The highest page number this page's pager shows (None when there is no pager)."""


@dataclass(frozen=True)
class ListingPage:
    """What one page of the section listing links to."""

    article_urls: tuple[str, ...]
    """Absolute URLs of article pages linked, in page order, duplicates removed."""
    listing_urls: tuple[str, ...]
    """Absolute URLs of other pages of the same listing (its pager)."""


SECTION_NAME = "Tianjin Updates"
_SECTION_LOW = SECTION_NAME.lower()

# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")


_PARSERS = threading.local()


def _parser() -> etree.HTMLParser:
    """This thread's HTML parser, made once (a parser must not serve two threads at a time).

    ``collect_ids=False``: nothing here looks elements up by id, and the parse is some 2 %
    faster without the table of ids."""
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = etree.HTMLParser(
            remove_comments=True, remove_pis=True, no_network=True, collect_ids=False
        )
    return parser


def _parse(html: str | bytes) -> etree._Element | None:
    """Parse ``html`` once; plain lxml elements (no lxml.html classes: faster to walk)."""
    if not html or html.isspace():
        return None
    parser = _parser()
    try:
        return etree.fromstring(html, parser)
    except ValueError:
        # lxml refuses str input that carries an XML encoding declaration (XHTML pages).
        if isinstance(html, str):
            return etree.fromstring(_XML_DECL.sub("", html, count=1), parser)
        raise


def _head_info(root: etree._Element, url: str) -> tuple[str, str]:
    """The base URL (``<base href>`` resolved against ``url``) and the ``<title>`` text."""
    base, title = url, ""
    base_el = title_el = None
    for part in root:  # root.find("head") and head.find(...), without ElementPath
        if part.tag == "head":
            for el in part:
                tag = el.tag
                if tag == "title":
                    if title_el is None:
                        title_el = el
                elif tag == "base" and base_el is None:
                    base_el = el
            break
    if base_el is not None and base_el.get("href"):
        base = urljoin(url, base_el.get("href").strip())
    if title_el is None:
        title_el = root.find(".//title")
    if title_el is not None and title_el.text:
        title = _clean(title_el.text)
    return base, title


def _body_of(root: etree._Element) -> etree._Element | None:
    """``root.find("body")``, without ElementPath."""
    for part in root:
        if part.tag == "body":
            return part
    return None


_ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
# What ``str.split()`` splits on (but U+0020), and the zero-width characters: the usual ones
# first. A test holds this list to the running Python's ``str.isspace``.
_SPACE_LIKE = (
    "\n",
    "\xa0",
    "\t",
    "\r",
    "\u3000",
    *_ZERO_WIDTH,
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x1f",
    "\x85",
    "\u1680",
    *(chr(c) for c in range(0x2000, 0x200B)),
    "\u2028",
    "\u2029",
    "\u202f",
    "\u205f",
)


def _clean(value: str) -> str:
    """``crawler.text.clean_text``, the same result by a faster road (no regex).

    Every space-like character but U+0020 is "Separator" or "Other" in Unicode, so a printable
    string holds no other. The usual ones (line breaks, tabs, no-break spaces) are replaced in
    place, cheaper than splitting the text into words; a string still not printable takes the
    long road: ``str.split()`` splits on exactly the characters ``\\s`` matches, and
    the zero-width ones that ``clean_text`` also treats as space are turned into spaces first.
    """
    if "&" in value:
        value = html_unescape(value)
    if "\n" in value:
        value = value.replace("\n", " ")
    if "\xa0" in value:
        value = value.replace("\xa0", " ")
    if "\t" in value:
        value = value.replace("\t", " ")
    if "\r" in value:
        value = value.replace("\r", " ")
    if not value.isprintable():
        for zw in _ZERO_WIDTH:
            if zw in value:
                value = value.replace(zw, " ")
        value = " ".join(value.split())
        return value if value.isascii() else normalize("NFC", value)
    value = value.strip(" ")
    if "  " in value:
        value = _squeeze(value)
    return value if value.isascii() else normalize("NFC", value)


def _squeeze(value: str) -> str:
    """``value`` (holding a double space) with every run of U+0020 made one: split at double
    spaces (runs are few), the pieces' leading spaces dropped (a run of three or more leaves
    some), empty pieces dropped."""
    return " ".join([q for q in (p.lstrip(" ") for p in value.split("  ")) if q])


def _clean_all(values: list[str]) -> list[str]:
    """``[_clean(v) for v in values]``, in a few calls over the texts joined by a seam.

    Each step of ``_clean`` gives the same result on the joined texts as on each alone: the seam
    is printable, not space and composes with nothing, and an entity cannot run across it (the
    longest name that ``html.unescape`` finds before it is the one it finds in the text alone).
    Every character that ``str.split()`` splits on, and the zero-width ones, becomes a space,
    then runs of spaces become one; the spaces left at the ends of the pieces are dropped. This
    does what ``_clean`` does without ``isprintable`` and ``split``, which look up or copy every
    character: a look for each space-like character is a fast scan. A text holding the seam
    itself makes the pieces miscount: each is then cleaned alone.
    """
    if len(values) < 2:
        return [_clean(v) for v in values]
    # The edges first (the indentation of the markup): fewer runs of spaces left to squeeze.
    value = _JOIN.join([v.strip() for v in values])
    if "&" in value:
        value = html_unescape(value)
    for space in _SPACE_LIKE:
        if space in value:
            value = value.replace(space, " ")
    if "  " in value:
        value = _squeeze(value)
    if not value.isascii():
        value = normalize("NFC", value)
    pieces = value.split(_JOIN)
    if len(pieces) != len(values):
        return [_clean(v) for v in values]
    return [p.strip(" ") for p in pieces]


def _strip_fragment(url: str) -> str:
    if "#" not in url:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


# URLs of the usual shapes (``http://host/a/b.htm``, ``/a/b.htm``, ``b.htm``, ``../../b.jpeg``) are
# joined by string operations: ``urljoin`` and ``urlsplit`` cost more than a page link is worth.
# Anything else (a query, a fragment, ``./`` segments, odd characters) goes through urllib.
_PATH_CHARS = r"A-Za-z0-9\-._~%!$&'()*+,=@"
_PLAIN_URL = re.compile(rf"(https?)://([A-Za-z0-9.\-]+(?::[0-9]*)?)((?:/[{_PATH_CHARS}:]*)*)\Z")
_PLAIN_PATH = re.compile(rf"[{_PATH_CHARS}:/]*\Z")
_PLAIN_RELATIVE = re.compile(rf"[{_PATH_CHARS}/]+\Z")


class _Base:
    """A base URL, split once per page for ``_join``."""

    __slots__ = ("dir", "origin", "scheme", "url")

    def __init__(self, url: str) -> None:
        self.url = url
        self.scheme = self.origin = self.dir = ""
        m = _PLAIN_URL.match(url)
        if m is not None and "//" not in m[3] and "/." not in m[3]:
            path = m[3]
            self.scheme = m[1]
            self.origin = url[: m.end(2)]
            self.dir = path[: path.rfind("/") + 1] or "/"


def _join(base: _Base, href: str) -> tuple[str, str | None]:
    """``(urljoin(base.url, href), path)``: ``path`` is the result's path when the string road
    was taken (None: urllib joined it). ``href`` is stripped and not empty."""
    if base.origin:
        first = href[0]
        if first == "/":
            if href[:2] == "//":
                url = base.scheme + ":" + href
                m = _PLAIN_URL.match(url)
                if m is not None:
                    return url, m[3]
            elif "/." not in href and _PLAIN_PATH.match(href):
                return base.origin + href, href
        elif first == "h" and href.startswith(("http://", "https://")):
            m = _PLAIN_URL.match(href)
            if m is not None:
                return href, m[3]
        else:
            rest = href
            up = 0
            while rest.startswith("../"):
                rest = rest[3:]
                up += 1
            if rest and "//" not in href and "/." not in "/" + rest and _PLAIN_RELATIVE.match(rest):
                folder = base.dir
                while up and folder != "/":
                    folder = folder[: folder.rfind("/", 0, -1) + 1]
                    up -= 1
                if not up:
                    return base.origin + folder + rest, folder + rest
    return urljoin(base.url, href), None


def _article_of(url: str, path: str | None) -> tuple[str, int] | None:
    """``(article_key, page)`` of an article page URL (``parse_article_url``), or None."""
    if path is None:
        ref = parse_article_url(url)
        return (ref.article_key, ref.page) if ref is not None else None
    m = ARTICLE_PATH_RE.match(path)
    if m is None:
        return None
    page = int(m["page"]) if m["page"] else 1
    return (str(int(m["id"])), page) if page >= 1 else None


def _listing_of(url: str, path: str | None) -> tuple[str, str, int] | None:
    """``(prefix, node, page)`` of a listing page URL (``parse_listing_url``), or None."""
    if path is None:
        ref = parse_listing_url(url)
        return (ref.prefix, ref.node, ref.page) if ref is not None else None
    m = LISTING_PATH_RE.match(path)
    if m is None:
        return None
    return m["prefix"], m["node"], int(m["page"]) if m["page"] else 1


def _split_url(url: str) -> str | None:
    """The path of a plain absolute URL (None when ``urlsplit`` must say)."""
    m = _PLAIN_URL.match(url)
    return m[3] if m is not None else None


# --------------------------------------------------------------------------------------------
# Text rules
# --------------------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"updated\s*[:\uff1a]\s*(\d{4})\s*[-/.\u5e74]\s*(\d{1,2})\s*[-/.\u6708]\s*(\d{1,2})",
    re.IGNORECASE,
)
_TRAILING_PAREN_RE = re.compile(r"[(\uff08]\s*([^()\uff08\uff09]*?)\s*[)\uff09]$")
_PAREN_RE = re.compile(r"^[(\uff08]\s*(.*?)\s*[)\uff09]$", re.DOTALL)
_FILENAME_RE = re.compile(r"^[\w\-.()%]+\.(?:jpe?g|png|gif|bmp|webp|tiff?)$", re.IGNORECASE)
# A footer line starts with the copyright notice, reserves the rights or gives the ICP licence
# number; a sentence that merely mentions copyright is not one.
_FOOTER_RE = re.compile(
    r"^\s*(?:copyright|\u00a9)|all rights reserved|icp\s*[\u5907\u8bc1]?\s*\d{6,}", re.IGNORECASE
)
_PAGER_TOKENS = frozenset(
    [
        "<",
        ">",
        "<<",
        ">>",
        "\u00ab",
        "\u00bb",
        "\u2039",
        "\u203a",
        "...",
        "\u2026",
        "|",
        "prev",
        "previous",
        "next",
        "first",
        "last",
        "page",
        "of",
        "\u4e0a\u4e00\u9875",
        "\u4e0b\u4e00\u9875",
        "\u9996\u9875",
        "\u5c3e\u9875",
        "\u672b\u9875",
    ]
)
_PAGER_START = frozenset(
    "<>\u00ab\u00bb\u2039\u203a.\u2026|0123456789pPnNfFlL\u4e0a\u4e0b\u9996\u5c3e\u672b"
)
_SOURCE_PREFIX = re.compile(r"^(?:source|from)\s*[:\uff1a]\s*", re.IGNORECASE)
_TITLE_SPLIT = re.compile(r"\s+[-\u2013\u2014|]\s+|\s*[_|]\s*")
_BREADCRUMB = re.compile(r"^(?:home|\u9996\u9875)\s*(?:>|\u00bb|/|\u203a)", re.IGNORECASE)
_TITLE_HINT = re.compile(r"title|headline|tit\b|hd\b", re.IGNORECASE)
_TERMINAL = frozenset('.!?"\u201d\u3002;)\u2019')

# What a block's text is, decided once when the block is made.
K_TEXT = 0
K_PAREN = 1  # "(Xinhua)": a source line
K_BRACKET = 2  # "[Photo/Xinhua]": a caption line
K_FILENAME = 3  # "5fc73c03a31024adbda5d268.jpg": an image's file name repeated as text
K_PAGER = 4  # "< 1 2 3 >": pager tokens only
K_FOOTER = 5  # "Copyright ...", "京ICP备..."
K_DATE = 6  # holds "Updated: YYYY-MM-DD"
K_COLLAPSED = 7  # a link list taken whole (its text is not read)


def _pager_numbers(text: str) -> list[int] | None:
    """Page numbers of a text-only pager block (``< 1 2 3 >``), or None if it is not one."""
    tokens = text.lower().split()
    if not tokens or len(tokens) > 40:
        return None
    numbers = []
    for tok in tokens:
        if tok.isdigit() and len(tok) <= 3:
            numbers.append(int(tok))
        elif tok not in _PAGER_TOKENS:
            return None
    return numbers or None


def _kind(text: str) -> int:
    n = len(text)
    first = text[0]
    if ("pdated" in text or "PDATED" in text) and _DATE_RE.search(text):
        return K_DATE
    last = text[-1]
    if first in "(\uff08" and last in ")\uff09":
        return K_PAREN
    if (first == "[" and last == "]") or (first == "\u3010" and last == "\u3011"):
        return K_BRACKET
    if n <= 80 and "." in text and " " not in text and _FILENAME_RE.match(text):
        return K_FILENAME
    if n <= 60 and first in _PAGER_START and _pager_numbers(text) is not None:
        return K_PAGER
    if (
        n < 300
        and ("\u00a9" in text or "opyright" in text or "ICP" in text or "eserved" in text)
        and _FOOTER_RE.search(text)
    ):
        return K_FOOTER
    return K_TEXT


def _parse_date(text: str) -> tuple[date, int] | None:
    """The ``Updated:`` date in ``text`` and where its match starts, or None."""
    for m in _DATE_RE.finditer(text):
        try:
            return date(int(m[1]), int(m[2]), int(m[3])), m.start()
        except ValueError:
            continue
    return None


def _source_from_prefix(prefix: str) -> str | None:
    """The source in the part of a dateline before ``Updated:`` (``A | B | Updated:`` -> B)."""
    prefix = prefix.strip().rstrip("|\u00a6/\uff5c").strip()
    if not prefix:
        return None
    m = _TRAILING_PAREN_RE.search(prefix)
    if m:
        return m[1].strip() or None
    segments = [s.strip() for s in re.split(r"[|\uff5c\u00a6]", prefix) if s.strip()]
    for seg in reversed(segments):
        if seg.lower().startswith("by "):
            continue  # a byline, not a source
        m = _PAREN_RE.match(seg)
        if m:
            return m[1].strip() or None
        return _SOURCE_PREFIX.sub("", seg).strip() or None
    return None


def _source_line(text: str) -> str | None:
    """The source of a line that is only a source: ``( chinadaily.com.cn)``, ``Source: Xinhua``."""
    if len(text) > 80:
        return None
    m = _PAREN_RE.match(text)
    if m:
        return m[1].strip() or None
    m = _SOURCE_PREFIX.match(text)
    if m:
        return text[m.end() :].strip() or None
    return None


def _title_quality(low: str, page_title: str, segments: list[str]) -> int:
    """How ``low`` (lower-cased) matches the ``<title>``: 3 its first part, 2 a prefix, 1 a later part."""
    if not page_title:
        return 0
    if low == segments[0]:
        return 3
    if len(low) >= 8 and (
        page_title.startswith(low) or (low.startswith(segments[0]) and len(segments[0]) >= 8)
    ):
        return 2
    if low in segments[1:]:
        return 1
    return 0


# --------------------------------------------------------------------------------------------
# Linearisation: DOM -> stream of text blocks and images
# --------------------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "center",
        "dd",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "frameset",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "html",
        "legend",
        "li",
        "main",
        "menu",
        "nav",
        "noframes",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
_SKIP_TAGS = frozenset(
    [
        "script",
        "style",
        "noscript",
        "template",
        "select",
        "option",
        "optgroup",
        "textarea",
        "button",
        "iframe",
        "object",
        "embed",
        "svg",
        "canvas",
        "audio",
        "video",
        "map",
        "head",
        "title",
        "meta",
        "link",
        "input",
    ]
)
_HEADING_LEVEL = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_LIST_TAGS = frozenset(("ul", "ol", "li", "dl", "dt", "dd", "menu", "dir"))

# Flags of a block or image, inherited down the tree.
_NAV = 1  # in <nav>/<aside> or a box whose class/id says navigation, sidebar, footer, share...
_FIGCAP = 2  # in a <figcaption>
_CAPHINT = 4  # in an element whose class/id says caption
_LIST = 8  # in a list (ul/ol/li/dl)

_NAV_HINT = re.compile(
    r"(?:^|[\s_\-])(?:nav\w*|menu\w*|sidebar|side|aside|related|relate|footer|foot|copyright|"
    r"share|sharing|breadcrumbs?|crumbs?|comments?|ads?|advert\w*|banner|logo|rank\w*|hot|"
    r"most\w*|recommend\w*|topbar|toolbar)(?:$|[\s_\-\d])",
    re.IGNORECASE,
)
_CAPTION_HINT = re.compile(r"caption|pic_?t(?:e)?xt|img_?t(?:e)?xt|photo_?t(?:e)?xt", re.IGNORECASE)
_CONTENT_HINT = re.compile(
    r"(?:^|[\s_\-])(?:content|art_cont|article\w*|arti\w*|text|body|main|trs_editor|story|"
    r"entry|post|detail\w*|news_?con\w*)(?:$|[\s_\-\d])",
    re.IGNORECASE,
)


@lru_cache(maxsize=2048)
def _hint_flags(cls: str | None, ident: str | None) -> int:
    """Flags that an element's ``class``/``id`` suggest (pages of a site repeat a few names)."""
    hint = f"{cls} {ident}"
    flags = 0
    if _NAV_HINT.search(hint):
        flags |= _NAV
    if _CAPTION_HINT.search(hint):
        flags |= _CAPHINT
    return flags


_HREF_ARTICLE = re.compile(r"(?:^|/)c_(\d+)(?:_(\d+))?\.htm(?:[?#]|$)")
_LIST_MEASURE = etree.XPath(
    "concat(string-length(normalize-space(.)), ',', count(.//a), ',', count(.//li))"
)
_HREFS = etree.XPath(".//a/@href", smart_strings=False)


class _Block:
    """A run of text between block boundaries."""

    __slots__ = (
        "elem",
        "figure",
        "flags",
        "kind",
        "level",
        "link_len",
        "links",
        "n",
        "pager",
        "text",
    )

    def __init__(
        self,
        text: str,
        elem,
        flags: int,
        level: int,
        figure,
        link_len: int,
        links: int,
        pager: bool,
        kind: int,
        n: int,
    ) -> None:
        self.text = text
        self.elem = elem
        self.flags = flags
        self.level = level
        self.figure = figure
        self.link_len = link_len
        self.links = links
        self.pager = pager
        self.kind = kind
        self.n = n

    def linky(self) -> bool:
        """Mostly link text: a menu item, a related link, a pager."""
        return self.links > 0 and self.link_len * 2 >= self.n

    def listy(self) -> bool:
        """A link list item (related stories, a sidebar, a menu) rather than a linked sentence."""
        return (
            self.links > 0
            and self.link_len * 2 >= self.n
            and (self.links >= 2 or bool(self.flags & _LIST) or self.link_len * 10 >= self.n * 9)
        )

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return (
            f"<Block {self.text[:40]!r} k={self.kind} f={self.flags} h={self.level} l={self.links}>"
        )


class _Image:
    __slots__ = ("elem", "figure", "flags", "href", "src")

    def __init__(self, src: str, elem, flags: int, figure, href: str | None) -> None:
        self.src = src
        self.elem = elem
        self.flags = flags
        self.figure = figure
        self.href = href


def _linearise(top, article_key: str | None, base_url: str, scan_pager: bool):
    """One walk over the tree: ``(items, spans, page_links)``.

    ``items`` are the text blocks and images in document order; ``spans[element] = (first, end)``
    are the items made inside each block-level element, so "is this block inside that container"
    is a comparison of indexes; ``page_links`` are ``(page, url)`` of links to pages of the same
    article. Written as one closure with local state: it runs once per element of the page, and
    its cost is what the extraction costs beyond the parse.
    """
    items: list = []
    spans: dict = {}
    page_links: list[tuple[int, str]] = []
    marker = f"c_{article_key}" if article_key else ""
    append_item = items.append
    parts: list[str] = []
    lines: list[str] = []
    started = False
    ctx: tuple = (None, 0, 0, None)
    link_len = 0
    links = 0
    pager = False
    in_link = 0
    href: str | None = None
    last_br = False

    def flush() -> None:
        nonlocal parts, lines, started, link_len, links, pager, last_br
        last_br = False
        elem, flags, level, figure = ctx
        if lines:
            lines.append("".join(parts))
            texts = [t for t in map(_clean, lines) if t]
            kinds = [_kind(t) for t in texts]
            if any(kinds):
                # Lines that are a source, a date, a caption or a file name stand alone.
                for t, k in zip(texts, kinds):
                    append_item(
                        _Block(
                            t,
                            elem,
                            flags,
                            level,
                            figure,
                            link_len if links else 0,
                            links,
                            pager,
                            k,
                            len(t),
                        )
                    )
                text = ""
            else:
                text = " ".join(texts)
            lines = []
        else:
            text = _clean("".join(parts))
        if text:
            append_item(
                _Block(
                    text, elem, flags, level, figure, link_len, links, pager, _kind(text), len(text)
                )
            )
        parts = []
        started = False
        link_len = 0
        links = 0
        pager = False

    def collapse(el, bctx: tuple) -> bool:
        # Walking every item of a large menu in Python costs more than parsing it: a list with
        # two links or more, a link per item and short items is taken whole, unread.
        text_len, n_links, n_items = (int(float(x)) for x in _LIST_MEASURE(el).split(","))
        if n_links < 2 or n_links < n_items or text_len > 80 * n_links:
            return False
        if scan_pager and any(marker in h for h in _HREFS(el)):
            return False  # it may be the pager: walk it to read its links
        _e, flags, level, figure = bctx
        append_item(
            _Block(
                "",
                el,
                flags | _LIST,
                level,
                figure,
                text_len,
                n_links,
                False,
                K_COLLAPSED,
                text_len,
            )
        )
        return True

    def walk(el, bctx: tuple) -> None:
        nonlocal parts, lines, started, ctx, link_len, links, pager, in_link, href, last_br
        tag = el.tag
        is_block = tag in _BLOCK_TAGS
        is_link = False
        outer = bctx  # a tail belongs to the block around the element
        if is_block:
            if started:
                flush()
            last_br = False
            start = len(items)
            _e, flags, level, figure = bctx
            if tag == "nav" or tag == "aside":
                flags |= _NAV
            else:
                cls = el.get("class")
                ident = el.get("id")
                if cls or ident:
                    flags |= _hint_flags(cls, ident)
            if tag in _HEADING_LEVEL:
                level = _HEADING_LEVEL[tag]
            elif tag in _LIST_TAGS:
                flags |= _LIST
            elif tag == "figure":
                figure = el
            elif tag == "figcaption":
                flags |= _FIGCAP
            bctx = (el, flags, level, figure)
            if flags & (_NAV | _LIST) and len(el) >= 3 and collapse(el, bctx):
                spans[el] = (start, len(items))
                tail = el.tail
                if tail and not tail.isspace():
                    started = True
                    ctx = outer
                    parts.append(tail)
                return
        elif tag == "br":
            if last_br:
                if started:
                    flush()
            else:
                last_br = True
                if started:
                    lines.append("".join(parts))
                    parts = []
            tail = el.tail
            if tail and not tail.isspace():
                if not started:
                    started = True
                    ctx = bctx
                parts.append(tail)
                last_br = False
                if in_link:
                    link_len += len(tail.strip())
            return
        elif tag == "img":
            if started:
                flush()
            src = (el.get("src") or el.get("data-src") or el.get("data-original") or "").strip()
            if src and not src.startswith("data:") and not _tiny(el):
                append_item(_Image(src, el, bctx[1], bctx[3], href))
            last_br = False
            tail = el.tail
            if tail and not tail.isspace():
                started = True
                ctx = bctx
                parts.append(tail)
                if in_link:
                    link_len += len(tail.strip())
            return
        elif tag == "a":
            is_link = True
            in_link += 1
            links += 1
            link_href = el.get("href")
            if link_href is not None:
                href = link_href
                if marker and marker in link_href:
                    # A cheap look at the href here; the full URL check once per page number
                    # after the walk (a pager links the same page several times).
                    m = _HREF_ARTICLE.search(link_href)
                    if m and m[1].lstrip("0") == article_key:
                        page_links.append((int(m[2] or 1), link_href))
                        pager = True
        text = el.text
        if text:
            if text.isspace():
                if started:
                    parts.append(" ")
            else:
                if not started:
                    started = True
                    ctx = bctx
                parts.append(text)
                last_br = False
                if in_link:
                    link_len += len(text.strip())
        for child in el:
            ctag = child.tag
            if ctag in _SKIP_TAGS or ctag.__class__ is not str:
                text = child.tail
            else:
                walk(child, bctx)
                continue
            if text:
                if text.isspace():
                    if started:
                        parts.append(" ")
                else:
                    if not started:
                        started = True
                        ctx = bctx
                    parts.append(text)
                    last_br = False
                    if in_link:
                        link_len += len(text.strip())
        if is_block:
            if started:
                flush()
            last_br = False
            spans[el] = (start, len(items))
        elif is_link:
            in_link -= 1
            if not in_link:
                href = None
        text = el.tail
        if text:
            if text.isspace():
                if started:
                    parts.append(" ")
            else:
                if not started:
                    started = True
                    ctx = outer
                parts.append(text)
                last_br = False
                if in_link:
                    link_len += len(text.strip())

    walk(top, (top.getparent(), 0, 0, None))
    if started:
        flush()
    checked: dict[int, str | None] = {}
    for page, link_href in page_links:
        if page not in checked:
            absolute = urljoin(base_url, link_href.strip())
            ref = parse_article_url(absolute)
            ok = ref is not None and ref.article_key == article_key and ref.page == page
            checked[page] = _strip_fragment(absolute) if ok else None
    return items, spans, [(p, u) for p, u in checked.items() if u is not None]


def _tiny(img) -> bool:
    """A spacer or an icon: a declared width or height under 30 pixels."""
    for attr in ("width", "height"):
        value = img.get(attr)
        if value and value.strip().isdigit() and int(value) < 30:
            return True
    return False


# --------------------------------------------------------------------------------------------
# Fast path: the usual article layout, read without walking every element
# --------------------------------------------------------------------------------------------
#
# The walk reads any layout but spends Python time on every element of the page, several times
# what the parse costs. Most article pages have one shape: the title, a source line, the date
# line, then an element whose children are the body paragraphs (and images), then a pager, link
# lists or the footer. The fast path takes that element to be the parent of the first paragraph
# of some length, reads the blocks before it backwards (the date line must come right before it,
# then the title), reads its children, and looks at what follows it. Each block gets the text the walk would give it and each decision is
# the walk's rule; anything the fast path does not account for (a second "Updated", a title that
# does not match the ``<title>``, a list, a link list or nested blocks inside the body, a block
# that ``<br><br>`` would split, text after the body that is neither a pager, nor a footer, nor a
# link list...) sends the page to the walk.

_BODY_BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "center",
        "blockquote",
        "pre",
        "section",
        "article",
        "address",
        "header",
        "footer",
        "main",
        "hr",
    ]
)
# What a leaf block (one block of text) may not hold: another block, a skipped element, an image.
_NOT_IN_LEAF = _BLOCK_TAGS | _SKIP_TAGS | {"img"}
_ARROWS = "<>\u00ab\u00bb\u2039\u203a"


class _Unusual(Exception):
    """The page has something the fast path does not read the way the walk would."""


@lru_cache(maxsize=2048)
def _content_hint(cls: str | None, ident: str | None) -> bool:
    return _CONTENT_HINT.search(f"{cls} {ident}") is not None


def _own_flags(el, tag: str) -> int:
    """The flags a block element sets for itself (its tag, its class and id)."""
    if tag == "nav" or tag == "aside":
        flags = _NAV
    else:
        cls = el.get("class")
        ident = el.get("id")
        flags = _hint_flags(cls, ident) if cls or ident else 0
    if tag in _LIST_TAGS:
        flags |= _LIST
    elif tag == "figcaption":
        flags |= _FIGCAP
    return flags


def _read_leaf(el, marker: str, images_ok: bool = False) -> tuple[list[str], int] | None:
    """The raw text of a block element that holds one block of text, and its number of links:
    ``(lines, links)`` (one line unless ``<br>`` breaks it). None when the element holds other
    blocks; _Unusual when it holds what the walk reads otherwise (a skipped element, an image
    unless ``images_ok``, a link to a page of this article when ``marker`` is given)."""
    links = 0
    breaks = False
    odd = False
    for d in el.iterdescendants():
        tag = d.tag
        if tag == "a":
            links += 1
            if marker:
                href = d.get("href")
                if href and marker in href:
                    odd = True
        elif tag == "br":
            breaks = True
        elif tag.__class__ is not str:
            odd = True
        elif tag in _NOT_IN_LEAF:
            if tag in _BLOCK_TAGS:
                return None
            if not (images_ok and tag == "img"):
                odd = True
    if odd:
        raise _Unusual
    if breaks:
        return _line_pieces(el), links
    return [etree.tostring(el, method="text", encoding=str, with_tail=False)], links


def _leaf(el, marker: str, images_ok: bool = False) -> tuple[str, int] | None:
    """``_read_leaf`` with the text cleaned: ``(text, links)``."""
    if not len(el):
        text = el.text
        return (_clean(text) if text else ""), 0
    found = _read_leaf(el, marker, images_ok)
    if found is None:
        return None
    lines, links = found
    if len(lines) == 1:
        return _clean(lines[0]), links
    return _lines_text(_clean_all(lines)), links


def _link_len(el) -> int:
    """The length of the link text in ``el``, counted as the walk counts it."""
    n = 0
    for a in el.iter("a"):
        for piece in a.itertext():
            n += len(piece.strip())
    return n


def _linky(el, links: int, n: int) -> bool:
    """The walk's ``_Block.linky``: links, and at least half of the text in them."""
    if not links:
        return False
    bound = 0  # the link text with its white space: checked first, it is cheaper
    for a in el.iter("a"):
        bound += len(etree.tostring(a, method="text", encoding=str, with_tail=False))
    return bound * 2 >= n and _link_len(el) * 2 >= n


def _line_pieces(el) -> list[str]:
    """The raw text of a leaf block holding ``<br>``, one piece per line; _Unusual when the walk
    would end the block at a break (two breaks in a row after some text).

    The pieces are read in one ``tostring``: each ``<br>`` gets a seam at the head of its tail for
    that call (the tails are put back at once)."""
    breaks = list(el.iter("br"))
    tails = [br.tail for br in breaks]
    try:
        for br, tail in zip(breaks, tails):
            br.tail = _JOIN + tail if tail else _JOIN
        text = etree.tostring(el, method="text", encoding=str, with_tail=False)
    finally:
        for br, tail in zip(breaks, tails):
            br.tail = tail
    pieces = text.split(_JOIN)
    if len(pieces) != len(breaks) + 1:
        raise _Unusual  # the text held the seam itself
    started = False
    for k, piece in enumerate(pieces[:-1]):
        if not piece or piece.isspace():
            if k and started:
                raise _Unusual  # a second break right after one: the walk ends the block there
        else:
            started = True
    return pieces


def _lines_text(texts: list[str]) -> str:
    """The text of a block from its lines, cleaned: a single break is a space; _Unusual when the
    walk would make separate blocks of the lines (two or more, one a date, a source, a
    caption...)."""
    texts = [t for t in texts if t]
    if len(texts) > 1 and any(_kind(t) for t in texts):
        raise _Unusual
    return " ".join(texts)


def _blank(text: str | None) -> bool:
    return not text or text.isspace()


class _Before:
    """The blocks before the body container, read nearest first: the date line must come first,
    then the title is looked for as the walk does (its rules, its limits)."""

    __slots__ = (
        "between",
        "candidates",
        "date",
        "page_title",
        "seen",
        "segments",
        "source",
        "title",
    )

    def __init__(self, raw_title: str) -> None:
        self.page_title = raw_title.lower()
        self.segments = [s.strip() for s in _TITLE_SPLIT.split(self.page_title) if s.strip()] or [
            ""
        ]
        self.date: date | None = None
        self.source: str | None = None
        self.title: str | None = None
        self.between: str | None = None
        self.seen = self.candidates = 0

    def add(self, text: str, flags: int, level: int, linky: bool) -> bool:
        """Take the next block back; True once the title is found."""
        if self.date is None:
            if flags & _NAV or linky or _kind(text) != K_DATE:
                raise _Unusual  # the body does not start right after the date line
            found = _parse_date(text)
            if found is None:
                raise _Unusual
            self.date = found[0]
            self.source = _source_from_prefix(text[: found[1]])
            return False
        self.seen += 1
        if self.seen > 40:
            raise _Unusual
        if (
            (level or not (flags & _NAV or linky))
            and not flags & _FIGCAP
            and len(text) <= 300
            and _kind(text) == K_TEXT
        ):
            low = text.lower()
            if low != _SECTION_LOW and not _BREADCRUMB.match(text):
                self.candidates += 1
                if _title_quality(low, self.page_title, self.segments) == 3:
                    self.title = text
                    return True
                if self.candidates >= 8:
                    raise _Unusual
        if self.between is None and self.source is None:
            self.between = _source_line(text)
        return False


def _read_before(start, body, reader: _Before) -> None:
    """Feed ``reader`` the text blocks before ``start`` (under ``body``), nearest first, until it
    has the title."""
    node = start
    while node is not body:
        sib = node.getprevious()
        while sib is not None:
            tail = sib.tail
            if tail and not tail.isspace():
                raise _Unusual
            if _back_blocks(sib, 0, 0, reader):
                return
            sib = sib.getprevious()
        node = node.getparent()
        text = node.text
        if text and not text.isspace():
            raise _Unusual
    raise _Unusual  # no title


def _back_blocks(el, flags: int, level: int, reader: _Before) -> bool:
    tag = el.tag
    if tag.__class__ is not str or tag in _SKIP_TAGS:
        return False
    if tag not in _BLOCK_TAGS:
        # Inline markup between blocks is part of a run of text the fast path does not read.
        if (
            tag == "img"
            or el.find(".//img") is not None
            or not _blank(etree.tostring(el, method="text", encoding=str, with_tail=False))
        ):
            raise _Unusual
        return False
    if tag == "figure":
        raise _Unusual
    flags |= _own_flags(el, tag)
    level = _HEADING_LEVEL.get(tag, level)
    if flags & (_NAV | _LIST) and len(el) >= 3:
        raise _Unusual  # the walk may take a menu or a list whole
    found = _leaf(el, "")
    if found is not None:
        text = found[0]
        return bool(text) and reader.add(text, flags, level, _linky(el, found[1], len(text)))
    if flags & (_NAV | _LIST) or not _blank(el.text):
        raise _Unusual  # menus are taken whole by the walk; a run of text before inner blocks
    for child in reversed(el):
        if not _blank(child.tail):
            raise _Unusual
        if _back_blocks(child, flags, level, reader):
            return True
    return False


class _After:
    """What follows the body container, read in order until something ends the body: a pager
    (an element holding links to this article's pages: its page numbers are kept), the footer,
    a link list, or the end of the page. Navigation boxes are passed over; outside the
    container's parent a short heading may come first ("Most read" before its list). Anything
    else could be more body: _Unusual."""

    __slots__ = ("label", "numbers", "pager_anc")

    def __init__(self, pager_anc: set) -> None:
        self.pager_anc = pager_anc
        self.numbers: list[int] = []
        self.label = False

    def block(self, el, text: str, flags: int, links: int, outside: bool) -> bool:
        n = len(text)
        kind = _kind(text)
        if kind == K_FOOTER:
            return True
        if kind == K_PAGER:
            raise _Unusual
        if links:
            link_len = _link_len(el)
            if link_len * 2 >= n:
                if links >= 2 or flags & _LIST or link_len * 10 >= n * 9 or n < 25:
                    return True  # a link list ends the body
                raise _Unusual
        if outside and not self.label and n <= 40 and text[-1] not in _TERMINAL:
            self.label = True
            return False
        raise _Unusual


def _read_after(start, body, reader: _After) -> None:
    parent = start.getparent()
    outside = False
    node = start
    while node is not body:
        tail = node.tail
        if tail and not tail.isspace():
            raise _Unusual
        sib = node.getnext()
        while sib is not None:
            if _forward_blocks(sib, 0, outside, reader):
                return
            tail = sib.tail
            if tail and not tail.isspace():
                raise _Unusual
            sib = sib.getnext()
        node = node.getparent()
        if node is parent:
            outside = True


def _forward_blocks(el, flags: int, outside: bool, reader: _After) -> bool:
    tag = el.tag
    if tag.__class__ is not str or tag in _SKIP_TAGS:
        return False
    if tag not in _BLOCK_TAGS:
        if tag == "img" and outside:
            return False
        if (
            tag == "img"
            or (not outside and el.find(".//img") is not None)
            or not _blank(etree.tostring(el, method="text", encoding=str, with_tail=False))
        ):
            raise _Unusual
        return False
    flags |= _own_flags(el, tag)
    if flags & _NAV:
        if el in reader.pager_anc:
            reader.numbers += _pager_text_numbers(el, reader.pager_anc, strict=False)
        else:
            whole = etree.tostring(el, method="text", encoding=str, with_tail=False)
            if len(whole) <= 400 and _pager_numbers(whole) is not None:
                raise _Unusual  # a pager without links to this article's pages
        return False
    if el in reader.pager_anc:
        reader.numbers += _pager_text_numbers(el, reader.pager_anc, strict=True)
        return True
    found = _leaf(el, "", outside)
    if found is not None:
        return bool(found[0]) and reader.block(el, found[0], flags, found[1], outside)
    text = el.text
    if text and not text.isspace():
        raise _Unusual
    for child in el:
        if _forward_blocks(child, flags, outside, reader):
            return True
        tail = child.tail
        if tail and not tail.isspace():
            raise _Unusual
    return False


def _leaf_blocks(el):
    """The leaf blocks under ``el`` in order, as ``(element, text)`` (non-empty texts)."""
    tag = el.tag
    if tag.__class__ is not str or tag in _SKIP_TAGS:
        return
    if tag not in _BLOCK_TAGS:
        if tag == "img" or not _blank(
            etree.tostring(el, method="text", encoding=str, with_tail=False)
        ):
            raise _Unusual
        return
    found = _leaf(el, "")
    if found is not None:
        if found[0]:
            yield el, found[0]
        return
    if not _blank(el.text):
        raise _Unusual
    for child in el:
        yield from _leaf_blocks(child)
        if not _blank(child.tail):
            raise _Unusual


def _pager_text_numbers(el, pager_anc: set, strict: bool) -> list[int]:
    """Page numbers that the pager blocks under ``el`` show, by the walk's rule. ``strict``: every
    block must be a pager block (one that ends the body), else _Unusual."""
    numbers: list[int] = []
    for block, text in _leaf_blocks(el):
        pager = block in pager_anc
        if not pager and _kind(text) != K_PAGER:
            if strict:
                raise _Unusual
            continue
        if len(text) <= 80:
            nums = _pager_numbers(text)
            if nums and (pager or len(nums) >= 2 or text[0] in _ARROWS):
                numbers.extend(nums)
    return numbers


_JOIN = "\u2318"  # printable, no space, composes with nothing: a safe seam between texts


def _body_kind(text: str) -> int:
    """``_kind`` for a body text, shorter for long ones: a long text can only be a bracketed or
    parenthesised line, or plain text (a date line in the body reads as plain text anyway)."""
    first = text[0]
    last = text[-1]
    if first in "(\uff08" and last in ")\uff09":
        return K_PAREN
    if (first == "[" and last == "]") or (first == "\u3010" and last == "\u3011"):
        return K_BRACKET
    n = len(text)
    if n >= 300:
        return K_TEXT
    return _kind(text)


def _following(el, body):
    """The first element after ``el`` (and not inside it) in document order, under ``body``."""
    while el is not body:
        nxt = el.getnext()
        if nxt is not None:
            return nxt
        el = el.getparent()
    return None


def _usual_article(
    html: str, body, base: _Base, raw_title: str, key: str | None, current_page: int
) -> ArticlePage:
    """The article page read by the fast path; _Unusual when the walk must read it."""
    if not raw_title or html.count("pdated") + html.count("PDATED") != 1:
        raise _Unusual  # no title to match, or more than one "Updated" (the walk takes the first)
    if _own_flags(body, "body"):
        raise _Unusual  # a class or id over the whole page that the walk would read as a flag
    marker = f"c_{key}" if key else ""

    # -- the body container: the parent of the first paragraph of some length ----------------
    # (what comes before and after it is checked below: the date line right before it, nothing
    # like body text after it)
    container = None
    for p in body.iter("p"):
        if len(p):
            n = len(etree.tostring(p, method="text", encoding=str, with_tail=False))
        else:
            text = p.text
            n = len(text) if text else 0
        if n >= 60:
            container = p.getparent()
            break
    if container is None or container is body or container.tag not in _BLOCK_TAGS:
        raise _Unusual
    el = container
    while el is not body:
        tag = el.tag
        if tag in _SKIP_TAGS or tag == "a":
            raise _Unusual
        if tag in _BLOCK_TAGS and (tag in _HEADING_LEVEL or tag == "figure" or _own_flags(el, tag)):
            raise _Unusual  # inside a menu, a list, a figure or a heading
        el = el.getparent()
        if el is None:
            raise _Unusual

    # -- the date line right before the container, then back to the title -------------------
    before = _Before(raw_title)
    _read_before(container, body, before)
    published_on = before.date
    title = before.title
    source = before.source if before.source is not None else before.between
    section = _SECTION_LOW

    # -- the body: the container's children ----------------------------------------------------
    if not _blank(container.text):
        raise _Unusual
    # Pass 1: what each child shows, texts raw (cleaned together below).
    blocks: list[
        tuple
    ] = []  # (first raw line, lines, element, flags, links, figure) / (img, figure)
    raw: list[str] = []
    for child in container:
        tail = child.tail
        if tail and not tail.isspace():
            raise _Unusual
        tag = child.tag
        if tag == "p" or tag in _BODY_BLOCK_TAGS:
            cls = child.get("class")
            ident = child.get("id")
            flags = 0
            if cls or ident:
                if _content_hint(cls, ident):
                    raise _Unusual  # it could outscore the container
                flags = _hint_flags(cls, ident)
                if flags & _NAV:
                    raise _Unusual
            if not len(child):
                text = child.text
                if text:
                    blocks.append((len(raw), 1, child, flags, 0, None))
                    raw.append(text)
                continue
            if len(child) == 1:
                img = child[0]
                if img.tag == "img":
                    text = child.text
                    tail = img.tail
                    if (not text or text.isspace()) and (not tail or tail.isspace()):
                        blocks.append((img, None))
                        continue
            found_text = _read_leaf(child, marker)
            if found_text is None:
                raise _Unusual
            lines, links = found_text
            blocks.append((len(raw), len(lines), child, flags, links, None))
            raw += lines
        elif tag == "img":
            blocks.append((child, None))
        elif tag == "figure":
            cls = child.get("class")
            ident = child.get("id")
            flags = 0
            if cls or ident:
                if _content_hint(cls, ident):
                    raise _Unusual
                flags = _hint_flags(cls, ident)
                if flags & _NAV:
                    raise _Unusual
            if not _blank(child.text):
                raise _Unusual
            for part in child:
                if not _blank(part.tail):
                    raise _Unusual
                ptag = part.tag
                if ptag == "img":
                    blocks.append((part, child))
                elif ptag == "figcaption":
                    pflags = flags | _own_flags(part, ptag)
                    if pflags & _NAV:
                        raise _Unusual
                    found_text = _read_leaf(part, marker)
                    if found_text is None:
                        raise _Unusual
                    lines, links = found_text
                    blocks.append((len(raw), len(lines), part, pflags, links, child))
                    raw += lines
                elif ptag.__class__ is not str or ptag in _SKIP_TAGS:
                    continue
                else:
                    raise _Unusual
        elif tag.__class__ is not str or tag in _SKIP_TAGS or tag == "br":
            continue
        else:
            raise _Unusual
    texts = _clean_all(raw)

    # Pass 2: paragraphs, images and captions by the walk's rules.
    paragraphs: list[str] = []
    images: list[list] = []  # [src, caption, figure]
    fig_captions: dict = {}
    pending: list[int] = []
    source_open = source is None
    seen_text = False
    for block in blocks:
        if len(block) == 2:
            img = block[0]
            src = (img.get("src") or img.get("data-src") or img.get("data-original") or "").strip()
            if src and not src.startswith("data:") and not _tiny(img):
                images.append([src, None, block[1]])
                pending.append(len(images) - 1)
            continue
        first, count, el, flags, links, figure = block
        if count == 1:
            text = texts[first]
        else:
            text = _lines_text(texts[first : first + count])
        if not text:
            continue
        if links and _linky(el, links, len(text)):
            raise _Unusual  # a link list, or a linked line the walk weighs against the body
        kind = _body_kind(text)
        if kind == K_FILENAME:
            continue
        if kind == K_PAGER or kind == K_FOOTER:
            raise _Unusual
        if flags & _FIGCAP:
            prev = fig_captions.get(figure)
            fig_captions[figure] = f"{prev} {text}" if prev else text
            pending = []
            continue
        if pending and (kind == K_BRACKET or flags & _CAPHINT):
            k = pending[-1]
            if images[k][1] is None:
                images[k][1] = text
            pending = []
            continue
        pending = []
        if len(text) == len(section) and text.lower() == section:
            continue
        if not seen_text:
            seen_text = True
            if source_open and kind == K_PAREN and not paragraphs:
                late = _source_line(text)
                if late:
                    source = late
                    continue
        paragraphs.append(text)

    # -- links to the article's pages, anywhere in the page -----------------------------------
    page_links: list[tuple[int, str]] = []
    pager_anc: set = set()
    if marker and marker in html:
        # Usually the element right after the body holds every one: when it holds as many as
        # the page's source shows, the rest of the page need not be searched.
        marked = None
        nxt = _following(container, body)
        if nxt is not None:
            marked = [(a, h) for a in nxt.iter("a") if (h := a.get("href")) and marker in h]
            if not marked or len(marked) != html.count(marker):
                marked = None
        if marked is None:
            marked = [(a, h) for a in body.iter("a") if (h := a.get("href")) and marker in h]
        for a, href in marked:
            m = _HREF_ARTICLE.search(href)
            if m and m[1].lstrip("0") == key:
                page_links.append((int(m[2] or 1), href))
                el = a.getparent()
                while el is not None and el not in pager_anc:
                    if el.tag in _SKIP_TAGS:
                        raise _Unusual
                    pager_anc.add(el)
                    if el is body:
                        break
                    el = el.getparent()

    # -- what follows the body: a pager, link lists, navigation, the footer --------------------
    after = _After(pager_anc)
    _read_after(container, body, after)
    numbers = after.numbers

    checked: dict[int, str | None] = {}
    for page, href in page_links:
        if page not in checked:
            absolute, path = _join(base, href.strip())
            found_ref = _article_of(absolute, path)
            ok = found_ref is not None and found_ref[0] == key and found_ref[1] == page
            checked[page] = _strip_fragment(absolute) if ok else None
    others: dict[int, str] = {}
    text_pager = bool(numbers)
    for page, link in checked.items():
        if link is not None:
            numbers.append(page)
            if page != current_page:
                others[page] = link
    page_count = max(numbers + [current_page]) if others or text_pager else None
    for img in images:
        if img[1] is None and img[2] is not None:
            img[1] = fig_captions.get(img[2])
    return ArticlePage(
        title=title,
        source=source,
        published_on=published_on,
        paragraphs=tuple(paragraphs),
        images=tuple(PageImage(url=_join(base, src)[0], caption=c) for src, c, _f in images),
        page_links=tuple(others[p] for p in sorted(others)),
        page_count=page_count,
    )


# --------------------------------------------------------------------------------------------
# Article pages
# --------------------------------------------------------------------------------------------


def extract_article(html: str, url: str) -> ArticlePage:
    """Title, source, date, body paragraphs, images and pager of one article page."""
    return _extract_article(html, url)


def read_article_page(body: bytes, encoding: str, url: str) -> tuple[ArticlePage, NormalBody, bool]:
    """An article page as the spider needs it, from the response's bytes and encoding (what
    travels to the helper process, instead of a decoded copy): decoded exactly as Scrapy's
    ``TextResponse.text`` decodes it and read by ``extract_article``. Returned: the page
    without its paragraphs, their normalised body text (``crawler.text.page_body``), and
    whether there were any (the paragraphs do not travel back a second time)."""
    page = extract_article(html_to_unicode(f"charset={encoding}", body)[1], url)
    text = page_body(list(page.paragraphs))
    return replace(page, paragraphs=()), text, bool(page.paragraphs)


def _extract_article(html: str, url: str, fast: bool = True) -> ArticlePage:
    """``extract_article``; ``fast=False`` reads the page by the walk alone (tests compare)."""
    root = _parse(html)
    if root is None:
        return ArticlePage(None, None, None, ())
    base, raw_title = _head_info(root, url)
    found_ref = _article_of(url, _split_url(url))
    current_page = found_ref[1] if found_ref else 1
    key = found_ref[0] if found_ref else None
    body_el = _body_of(root)
    if fast and body_el is not None and isinstance(html, str):
        try:
            return _usual_article(html, body_el, _Base(base), raw_title, key, current_page)
        except _Unusual:
            pass
    scan_pager = bool(key) and isinstance(html, str) and f"c_{key}" in html
    items, spans, page_links = _linearise(
        body_el if body_el is not None else root, key, base, scan_pager
    )

    page_title = raw_title.lower()
    segments = [s.strip() for s in _TITLE_SPLIT.split(page_title) if s.strip()] or [""]
    section = SECTION_NAME.lower()

    # -- the date line: the first "Updated:" outside menus ----------------------------------
    date_idx = None
    published_on = None
    source = None
    fallback = None
    for i, b in enumerate(items):
        if b.__class__ is not _Block or b.kind != K_DATE:
            continue
        found = _parse_date(b.text)
        if found is None:
            continue
        if b.flags & _NAV or b.linky():
            if fallback is None:
                fallback = (i, found)
            continue
        date_idx, (published_on, pos) = i, found
        break
    if date_idx is None and fallback is not None:
        date_idx, (published_on, pos) = fallback
    if date_idx is not None:
        source = _source_from_prefix(items[date_idx].text[:pos])

    # -- the title ---------------------------------------------------------------------------
    def eligible(b: _Block) -> bool:
        if b.kind != K_TEXT or b.flags & _FIGCAP or b.n > 300 or b.text.lower() == section:
            return False
        if _BREADCRUMB.match(b.text):
            return False
        if b.level:
            return True
        return not (b.flags & _NAV) and not b.linky()

    def pick_title(cands: list[tuple[int, _Block]]) -> tuple[int, _Block] | None:
        if not cands:
            return None
        scored = [(_title_quality(b.text.lower(), page_title, segments), i, b) for i, b in cands]
        best = [c for c in scored if c[0] >= 2]
        if best:
            best.sort(key=lambda c: -c[0])
            return best[0][1], best[0][2]
        pool = [c for c in scored if c[0] != 1] or scored
        for _q, i, b in pool:
            if b.level:
                return i, b
        for _q, i, b in pool:
            elem = b.elem
            hint = f"{elem.get('class') or ''} {elem.get('id') or ''}" if elem is not None else ""
            if _TITLE_HINT.search(hint):
                return i, b
        return pool[0][1], pool[0][2]

    cands: list[tuple[int, _Block]] = []
    if date_idx is not None:
        # Nearest first: the title sits just above the source and date lines.
        i = date_idx - 1
        while i >= 0 and len(cands) < 8 and date_idx - i <= 40:
            b = items[i]
            if b.__class__ is _Block and eligible(b):
                cands.append((i, b))
            i -= 1
        picked = pick_title(cands)
    else:
        for i, b in enumerate(items):
            if (
                b.__class__ is _Block
                and eligible(b)
                and (b.level or _title_quality(b.text.lower(), page_title, segments) >= 2)
            ):
                cands.append((i, b))
                if len(cands) >= 10:
                    break
        picked = pick_title(cands)
    title_idx = None
    title = None
    if picked is not None:
        title_idx, title = picked[0], picked[1].text
    elif raw_title:
        title = _clean(_TITLE_SPLIT.split(raw_title)[0]) or None

    # -- the source line between title and date ---------------------------------------------
    if source is None and title_idx is not None:
        end = date_idx if date_idx is not None else min(title_idx + 4, len(items))
        for i in range(title_idx + 1, end):
            b = items[i]
            if b.__class__ is _Block:
                found_source = _source_line(b.text)
                if found_source:
                    source = found_source
                    if date_idx is None:
                        title_idx = i  # the body starts after the source line
                        break

    # -- the body ----------------------------------------------------------------------------
    anchor = date_idx if date_idx is not None else title_idx
    start = anchor + 1 if anchor is not None else 0
    paragraphs, images, late_source = _body(
        items, spans, start, source is None and date_idx is not None, base
    )
    if late_source:
        source = late_source

    # -- the pager ---------------------------------------------------------------------------
    others: dict[int, str] = {}
    for page, link in page_links:
        if page != current_page and page not in others:
            others[page] = link
    numbers = [page for page, _ in page_links]
    text_pager = False
    for i in range(start, len(items)):
        b = items[i]
        if b.__class__ is _Block and (b.kind == K_PAGER or b.pager) and b.n <= 80:
            nums = _pager_numbers(b.text)
            if nums and (b.pager or len(nums) >= 2 or b.text[0] in "<>\u00ab\u00bb\u2039\u203a"):
                numbers.extend(nums)
                text_pager = True
    page_count = max(numbers + [current_page]) if others or text_pager else None
    return ArticlePage(
        title=title,
        source=source,
        published_on=published_on,
        paragraphs=tuple(paragraphs),
        images=tuple(images),
        page_links=tuple(others[p] for p in sorted(others)),
        page_count=page_count,
    )


def _body(
    items: list, spans: dict, start: int, source_open: bool, base: str
) -> tuple[list[str], list[PageImage], str | None]:
    """Paragraphs, images and a late source line of the body region from ``items[start]``."""
    n = len(items)
    # Pass 1: where the region ends (footer, or a pager once text was seen) and how much
    # paragraph text (good) and link/boilerplate text (bad) each block holds.
    end = n
    good: list[int] = []
    bad: list[int] = []
    body_seen = False
    after_image = False
    for i in range(start, n):
        b = items[i]
        g = d = 0
        if b.__class__ is _Image:
            after_image = True
        else:
            kind = b.kind
            if kind == K_FOOTER or kind == K_PAGER or b.pager:
                if body_seen:
                    end = i
                    break
            elif b.flags & _NAV or b.linky():
                d = b.n
                after_image = False
            elif kind == K_FILENAME:
                pass
            elif b.flags & _FIGCAP or (after_image and (kind == K_BRACKET or b.flags & _CAPHINT)):
                after_image = False
            else:
                after_image = False
                g = b.n
                body_seen = True
        good.append(g)
        bad.append(d)

    # Pass 2: the body container — the element with the most paragraph text for the least
    # link text; on a tie the larger one (it may hold images beside the text).
    c_start, c_end = start, end
    candidates: dict = {}
    for j, g in enumerate(good):
        if g:
            el = items[start + j].elem
            while el is not None and el not in candidates:
                span = spans.get(el)
                if span is not None:
                    candidates[el] = span
                el = el.getparent()
    if candidates:
        size = len(good)
        pg = [0] * (size + 1)
        pb = [0] * (size + 1)
        for j in range(size):
            pg[j + 1] = pg[j] + good[j]
            pb[j + 1] = pb[j] + bad[j]
        total = pg[size]
        best_key = None
        for el, (s, e) in candidates.items():
            s2 = min(max(s - start, 0), size)
            e2 = min(max(e - start, 0), size)
            score = (pg[e2] - pg[s2]) - (pb[e2] - pb[s2])
            cls, ident = el.get("class"), el.get("id")
            if (cls or ident) and _CONTENT_HINT.search(f"{cls} {ident}"):
                score += 0.1 * total
            key = (score, e - s)
            if best_key is None or key > best_key:
                best_key, c_start, c_end = key, s, e

    # Pass 3: paragraphs and images in order.
    paragraphs: list[str] = []
    heads: list[bool] = []  # whether each paragraph looks like a heading
    images: list[list] = []  # [url, caption, figure]
    fig_captions: dict = {}
    pending: list[int] = []  # images waiting for a caption line (-1: an image not kept)
    late_source = None
    seen_text = False
    for i in range(start, end):
        b = items[i]
        inside = c_start <= i < c_end
        if b.__class__ is _Image:
            keep = (inside or not seen_text) and not b.flags & _NAV
            if keep and b.href is not None:
                href = b.href.strip().lower().split("?")[0]
                if href not in ("", "#") and not href.endswith(
                    (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp")
                ):
                    keep = False  # a thumbnail linking to another page
            if keep:
                images.append([urljoin(base, b.src), None, b.figure])
                pending.append(len(images) - 1)
            else:
                pending.append(-1)
            continue
        kind = b.kind
        if kind == K_FILENAME:
            continue
        text = b.text
        is_caption = False
        if b.flags & _FIGCAP:
            if b.figure is not None:
                prev = fig_captions.get(b.figure)
                fig_captions[b.figure] = f"{prev} {text}" if prev else text
                pending = []
                continue
            is_caption = True
        if pending and (is_caption or kind == K_BRACKET or b.flags & _CAPHINT):
            # The caption line belongs to the image right above it, not to earlier ones.
            k = pending[-1]
            if k >= 0 and images[k][1] is None:
                images[k][1] = text
            pending = []
            continue
        pending = []
        if not inside or kind == K_PAGER or kind == K_COLLAPSED or b.pager or b.flags & _NAV:
            if kind == K_COLLAPSED and inside and paragraphs:
                _drop_trailing_headings(paragraphs, heads)
                break
            continue
        if b.linky() and (b.listy() or b.n < 25):
            if paragraphs:
                # A link list after the text: related stories, a sidebar. The body ends here.
                _drop_trailing_headings(paragraphs, heads)
                break
            continue
        if text.lower() == SECTION_NAME.lower():
            continue
        if not seen_text:
            seen_text = True
            if source_open and kind == K_PAREN and not paragraphs:
                late_source = _source_line(text)
                if late_source:
                    continue
        paragraphs.append(text)
        heads.append(bool(b.level) or _is_title_like(b))
    for img in images:
        if img[1] is None and img[2] is not None:
            img[1] = fig_captions.get(img[2])
    return paragraphs, [PageImage(url=u, caption=c) for u, c, _f in images], late_source


def _is_title_like(b: _Block) -> bool:
    """A short line without a full stop set as a heading (bold, or a title-like class)."""
    if b.n > 60 or b.text[-1] in _TERMINAL:
        return False
    elem = b.elem
    if elem is None:
        return False
    cls, ident = elem.get("class"), elem.get("id")
    if (cls or ident) and _TITLE_HINT.search(f"{cls} {ident}"):
        return True
    return len(elem) == 1 and elem[0].tag in ("strong", "b") and not (elem.text or "").strip()


def _drop_trailing_headings(paragraphs: list[str], heads: list[bool]) -> None:
    """Drop the heading of a link list ("Related stories") left at the end of the body."""
    while paragraphs and heads[-1]:
        paragraphs.pop()
        heads.pop()


# --------------------------------------------------------------------------------------------
# Listing pages and the home page
# --------------------------------------------------------------------------------------------


def _links(root: etree._Element):
    for a in root.iter("a"):
        href = a.get("href")
        if href is None:
            continue
        href = href.strip()
        if not href or href.startswith(("javascript:", "mailto:", "#")):
            continue
        yield a, href


def extract_listing(html: str, url: str) -> ListingPage:
    """Article links and the other pages of the same listing, in document order."""
    root = _parse(html)
    if root is None:
        return ListingPage((), ())
    base, _title = _head_info(root, url)
    joiner = _Base(base)
    here = _listing_of(url, _split_url(url))
    articles: list[str] = []
    seen_articles: set[str] = set()
    listings: list[str] = []
    seen_pages: set[int] = {here[2]} if here else set()
    for a in root.iter("a"):
        href = a.get("href")
        if href is None or ".htm" not in href:
            continue
        href = href.strip()
        if href.startswith(("javascript:", "mailto:", "#")):
            continue
        absolute, path = _join(joiner, href)
        if path is None:
            absolute = _strip_fragment(absolute)
        if _article_of(absolute, path) is not None:
            if absolute not in seen_articles:
                seen_articles.add(absolute)
                articles.append(absolute)
            continue
        if here is None:
            continue
        lref = _listing_of(absolute, path)
        if (
            lref is not None
            and lref[1] == here[1]
            and lref[0] == here[0]
            and lref[2] not in seen_pages
        ):
            seen_pages.add(lref[2])
            listings.append(absolute)
    return ListingPage(tuple(articles), tuple(listings))


_EDGE_PUNCT = " \t\u00bb\u00ab>\u203a\u2039<|\u00b7:-"


def find_section_url(html: str, url: str, name: str = SECTION_NAME) -> str | None:
    """The URL of the navigation link named ``name`` (a listing URL preferred), or None."""
    root = _parse(html)
    if root is None:
        return None
    base, _title = _head_info(root, url)
    wanted = clean_text(name).lower()
    by_text: list[str] = []
    by_title: list[str] = []
    for a, href in _links(root):
        text = clean_text("".join(a.itertext())).strip(_EDGE_PUNCT).lower()
        if text == wanted:
            by_text.append(urljoin(base, href))
        elif clean_text(a.get("title")).lower() == wanted:
            by_title.append(urljoin(base, href))
    for group in (by_text, by_title):
        for link in group:
            if parse_listing_url(link) is not None:
                return link
    for group in (by_text, by_title):
        if group:
            return group[0]
    return None
