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

Class and id names only tip the balance (a navigation-like name marks a box as boilerplate, a
content-like name favours a container); every decision also works on markup without them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urljoin, urlsplit, urlunsplit

from lxml import etree

from crawler.text import clean_text
from crawler.urls import parse_article_url, parse_listing_url


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

# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")


def _parse(html: str | bytes) -> etree._Element | None:
    """Parse ``html`` once; plain lxml elements (no lxml.html classes: faster to walk)."""
    parser = etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True)
    if isinstance(html, str):
        if not html.strip():
            return None
        try:
            return etree.fromstring(html, parser)
        except ValueError:
            # lxml refuses str input that carries an XML encoding declaration (XHTML pages).
            return etree.fromstring(_XML_DECL.sub("", html, count=1), parser)
    if not html.strip():
        return None
    return etree.fromstring(html, parser)


def _base_url(root: etree._Element, url: str) -> str:
    """The page URL, or the document's ``<base href>`` resolved against it."""
    head = root.find("head")
    if head is not None:
        base = head.find("base")
        if base is not None and base.get("href"):
            return urljoin(url, base.get("href").strip())
    return url


def _title_text(root: etree._Element) -> str:
    head = root.find("head")
    el = head.find("title") if head is not None else None
    if el is None:
        el = root.find(".//title")
    return clean_text(el.text) if el is not None and el.text else ""


def _strip_fragment(url: str) -> str:
    if "#" not in url:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


# --------------------------------------------------------------------------------------------
# Linearisation: DOM -> stream of text blocks and images
# --------------------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    "address article aside blockquote body caption center dd details dialog dir div dl dt "
    "fieldset figcaption figure footer form frameset h1 h2 h3 h4 h5 h6 header hgroup hr html "
    "legend li main menu nav noframes ol p pre section summary table tbody td tfoot th thead tr "
    "ul".split()
)
_SKIP_TAGS = frozenset(
    "script style noscript template select option optgroup textarea button iframe object embed "
    "svg canvas audio video map head title meta link input".split()
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
    re.I,
)
_CAPTION_HINT = re.compile(r"caption|pic_?t(?:e)?xt|img_?t(?:e)?xt|photo_?t(?:e)?xt", re.I)
_CONTENT_HINT = re.compile(
    r"(?:^|[\s_\-])(?:content|art_cont|article\w*|arti\w*|text|body|main|trs_editor|story|"
    r"entry|post|detail\w*|news_?con\w*)(?:$|[\s_\-\d])",
    re.I,
)


class _Block:
    """A run of text between block boundaries."""

    __slots__ = ("text", "elem", "flags", "level", "figure", "link_len", "links", "pager", "n")

    def __init__(self, text: str, elem, flags: int, level: int, figure, link_len: int,
                 links: int, pager: bool) -> None:
        self.text = text
        self.elem = elem
        self.flags = flags
        self.level = level
        self.figure = figure
        self.link_len = link_len
        self.links = links
        self.pager = pager
        self.n = len(text)

    @property
    def link_ratio(self) -> float:
        return self.link_len / self.n if self.n else 0.0

    def linky(self) -> bool:
        """Mostly link text: a menu item, a related link, a pager."""
        return self.links > 0 and self.link_len * 2 >= self.n

    def listy(self) -> bool:
        """A link list item (related stories, a sidebar, a menu) rather than a linked sentence."""
        return self.linky() and (
            self.links >= 2 or bool(self.flags & _LIST) or self.link_len * 10 >= self.n * 9
        )

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Block {self.text[:40]!r} f={self.flags} h={self.level} l={self.links}>"


class _Image:
    __slots__ = ("src", "alt", "elem", "flags", "figure", "href")

    def __init__(self, src: str, alt: str, elem, flags: int, figure, href: str | None) -> None:
        self.src = src
        self.alt = alt
        self.elem = elem
        self.flags = flags
        self.figure = figure
        self.href = href


# Lines that must stand on their own even when only a single <br> separates them from the rest.
_SPECIAL_LINE = re.compile(
    r"^\s*(?:[(\uff08].*[)\uff09]|\[.*\]|\u3010.*\u3011|[\w\-.()%]+\.(?:jpe?g|png|gif|bmp|webp)"
    r"|.*\bupdated\s*[:\uff1a].*)\s*$",
    re.I | re.S,
)


class _Linearizer:
    """One walk over the tree; produces ``items`` (blocks and images) and element spans."""

    def __init__(self, article_key: str | None, base_url: str) -> None:
        self.items: list[_Block | _Image] = []
        self.spans: dict = {}
        self.parts: list[str] = []
        self.lines: list[str] = []
        self.started = False
        self.ctx: tuple = (None, 0, 0, None)
        self.stack: list[tuple] = []
        self.link_len = 0
        self.links = 0
        self.pager = False
        self.in_link = 0
        self.href: str | None = None
        self.last_br = False
        self.key = article_key
        self.key_marker = f"c_{article_key}" if article_key else None
        self.base_url = base_url
        self.page_links: list[tuple[int, str]] = []

    # -- text accumulation -----------------------------------------------------------------
    def add(self, text: str) -> None:
        stripped = text.strip()
        if not stripped:
            if self.started:
                self.parts.append(" ")
            return
        if not self.started:
            self.started = True
            self.ctx = self.stack[-1]
        self.parts.append(text)
        self.last_br = False
        if self.in_link:
            self.link_len += len(stripped)

    def br(self) -> None:
        if self.last_br:
            self.flush()
            return
        self.last_br = True
        if self.started:
            self.lines.append("".join(self.parts))
            self.parts = []

    def flush(self) -> None:
        self.last_br = False
        if not self.started:
            self.parts = []
            self.lines = []
            return
        self.lines.append("".join(self.parts))
        elem, flags, level, figure = self.ctx
        lines = self.lines
        link_len, links, pager = self.link_len, self.links, self.pager
        self.parts = []
        self.lines = []
        self.started = False
        self.link_len = 0
        self.links = 0
        self.pager = False
        if len(lines) > 1:
            lines = [t for t in (clean_text(x) for x in lines) if t]
            if any(_SPECIAL_LINE.match(t) for t in lines):
                for t in lines:
                    self.items.append(
                        _Block(t, elem, flags, level, figure, link_len if links else 0, links, pager)
                    )
                return
            text = " ".join(lines)
        else:
            text = clean_text(lines[0])
        if text:
            self.items.append(_Block(text, elem, flags, level, figure, link_len, links, pager))

    # -- the walk ----------------------------------------------------------------------------
    def walk(self, el, flags: int, level: int, figure) -> None:
        tag = el.tag
        if tag in _BLOCK_TAGS:
            self.flush()
            start = len(self.items)
            cls = el.get("class")
            ident = el.get("id")
            if tag == "nav" or tag == "aside":
                flags |= _NAV
            elif cls or ident:
                hint = f"{cls or ''} {ident or ''}"
                if _NAV_HINT.search(hint):
                    flags |= _NAV
                if _CAPTION_HINT.search(hint):
                    flags |= _CAPHINT
            if tag in _HEADING_LEVEL:
                level = _HEADING_LEVEL[tag]
            elif tag in _LIST_TAGS:
                flags |= _LIST
            elif tag == "figure":
                figure = el
            elif tag == "figcaption":
                flags |= _FIGCAP
            self.stack.append((el, flags, level, figure))
            if el.text:
                self.add(el.text)
            for child in el:
                ctag = child.tag
                if ctag in _SKIP_TAGS or ctag.__class__ is not str:
                    if child.tail:
                        self.add(child.tail)
                else:
                    self.walk(child, flags, level, figure)
            self.flush()
            self.stack.pop()
            self.spans[el] = (start, len(self.items))
        elif tag == "br":
            self.br()
        elif tag == "img":
            self.image(el, flags, figure)
        else:
            is_link = tag == "a"
            if is_link:
                self.open_link(el)
            if el.text:
                self.add(el.text)
            for child in el:
                ctag = child.tag
                if ctag in _SKIP_TAGS or ctag.__class__ is not str:
                    if child.tail:
                        self.add(child.tail)
                else:
                    self.walk(child, flags, level, figure)
            if is_link:
                self.in_link -= 1
                if not self.in_link:
                    self.href = None
        if el.tail:
            self.add(el.tail)

    def open_link(self, el) -> None:
        self.in_link += 1
        href = el.get("href")
        self.links += 1
        if href is None:
            return
        self.href = href
        if self.key_marker and self.key_marker in href:
            absolute = urljoin(self.base_url, href.strip())
            ref = parse_article_url(absolute)
            if ref is not None and ref.article_key == self.key:
                self.page_links.append((ref.page, _strip_fragment(absolute)))
                self.pager = True

    def image(self, el, flags: int, figure) -> None:
        self.flush()
        src = el.get("src") or el.get("data-src") or el.get("data-original") or ""
        src = src.strip()
        if not src or src.startswith("data:"):
            return
        for attr in ("width", "height"):
            value = el.get(attr)
            if value and value.strip().isdigit() and int(value) < 30:
                return  # spacers, icons
        self.items.append(
            _Image(src, el.get("alt") or "", el, flags | (_CAPHINT & 0), figure, self.href)
        )


# --------------------------------------------------------------------------------------------
# Text rules
# --------------------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"updated\s*[:\uff1a]\s*(\d{4})\s*[-/.\u5e74]\s*(\d{1,2})\s*[-/.\u6708]\s*(\d{1,2})", re.I
)
_PAREN_RE = re.compile(r"^[(\uff08]\s*(.*?)\s*[)\uff09]$", re.S)
_BRACKET_RE = re.compile(r"^(?:\[.*\]|\u3010.*\u3011)$", re.S)
_FILENAME_RE = re.compile(r"^[\w\-.()%]+\.(?:jpe?g|png|gif|bmp|webp|tiff?)$", re.I)
_FOOTER_RE = re.compile(r"copyright|\u00a9|icp\s*\u5907|icp\s*\d|all rights reserved", re.I)
_PAGER_TOKENS = frozenset(
    ["<", ">", "<<", ">>", "\u00ab", "\u00bb", "\u2039", "\u203a", "...", "\u2026", "|",
     "prev", "previous", "next", "first", "last", "page", "of", "\u4e0a\u4e00\u9875",
     "\u4e0b\u4e00\u9875", "\u9996\u9875", "\u5c3e\u9875", "\u672b\u9875"]
)
_SOURCE_PREFIX = re.compile(r"^(?:source|from)\s*[:\uff1a]\s*", re.I)
_TITLE_SPLIT = re.compile(r"\s+[-\u2013\u2014|]\s+|\s*[_|]\s*")
_BREADCRUMB = re.compile(r"^(?:home|\u9996\u9875)\s*(?:>|\u00bb|/|\u203a)", re.I)
_TITLE_HINT = re.compile(r"title|headline|tit\b|hd\b", re.I)


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


def _is_footer(text: str) -> bool:
    return len(text) < 300 and _FOOTER_RE.search(text) is not None


def _parse_date(text: str) -> tuple[date, int, int] | None:
    """The ``Updated:`` date in ``text`` with the match's start and end, or None."""
    for m in _DATE_RE.finditer(text):
        try:
            return date(int(m[1]), int(m[2]), int(m[3])), m.start(), m.end()
        except ValueError:
            continue
    return None


def _source_from_prefix(prefix: str) -> str | None:
    """The source in the part of a dateline before ``Updated:``."""
    prefix = prefix.strip().rstrip("|\u00a6/\uff5c").strip()
    if not prefix:
        return None
    m = _PAREN_RE.match(prefix)
    if m:
        return m[1].strip() or None
    segments = [s.strip() for s in re.split(r"[|\uff5c\u00a6]", prefix) if s.strip()]
    for seg in reversed(segments):
        if seg.lower().startswith("by "):
            continue
        m = _PAREN_RE.match(seg)
        if m:
            return m[1].strip() or None
        seg = _SOURCE_PREFIX.sub("", seg).strip()
        return seg or None
    return None


def _source_line(text: str) -> str | None:
    """The source of a line that is a parenthesised source, e.g. ``( chinadaily.com.cn)``."""
    if len(text) > 80:
        return None
    m = _PAREN_RE.match(text)
    if m:
        inner = m[1].strip()
        return inner or None
    m = _SOURCE_PREFIX.match(text)
    if m:
        return text[m.end():].strip() or None
    return None


def _title_quality(text: str, page_title: str, segments: list[str]) -> int:
    """How well ``text`` matches the ``<title>``: 3 exact first part, 2 prefix, 1 a later part."""
    if not page_title:
        return 0
    low = text.lower()
    if segments and low == segments[0]:
        return 3
    if len(low) >= 8 and (page_title.startswith(low) or low.startswith(segments[0]) and len(segments[0]) >= 8):
        return 2
    if low in segments[1:]:
        return 1
    return 0


# --------------------------------------------------------------------------------------------
# Article pages
# --------------------------------------------------------------------------------------------


def extract_article(html: str, url: str) -> ArticlePage:
    """Title, source, date, body paragraphs, images and pager of one article page."""
    root = _parse(html)
    if root is None:
        return ArticlePage(None, None, None, ())
    base = _base_url(root, url)
    ref = parse_article_url(url)
    current_page = ref.page if ref else 1
    lin = _Linearizer(ref.article_key if ref else None, base)
    body_el = root.find("body")
    lin.stack.append((root, 0, 0, None))
    lin.walk(body_el if body_el is not None else root, 0, 0, None)
    items = lin.items
    blocks = [(i, it) for i, it in enumerate(items) if it.__class__ is _Block]

    page_title = _title_text(root).lower()
    segments = [s.strip() for s in _TITLE_SPLIT.split(page_title) if s.strip()] if page_title else []
    section = SECTION_NAME.lower()

    # -- the date line -------------------------------------------------------------------------
    date_idx = None
    published_on = None
    source = None
    fallback = None
    for i, b in blocks:
        if "pdated" not in b.text and "PDATED" not in b.text:
            continue
        found = _parse_date(b.text)
        if found is None:
            continue
        if b.flags & _NAV or b.linky():
            if fallback is None:
                fallback = (i, found)
            continue
        date_idx, (published_on, start, _end) = i, found
        source = _source_from_prefix(b.text[:start])
        break
    if date_idx is None and fallback is not None:
        date_idx, (published_on, start, _end) = fallback
        source = _source_from_prefix(items[date_idx].text[:start])

    # -- the title -----------------------------------------------------------------------------
    def eligible(b: _Block) -> bool:
        low = b.text.lower()
        if low == section or b.flags & _FIGCAP or b.n > 300:
            return False
        if _PAREN_RE.match(b.text) or _BRACKET_RE.match(b.text) or _FILENAME_RE.match(b.text):
            return False
        if _is_footer(b.text) or _pager_numbers(b.text) is not None or _BREADCRUMB.match(b.text):
            return False
        if _DATE_RE.search(b.text):
            return False
        if b.level:
            return True
        return not (b.flags & _NAV) and not b.linky()

    def pick_title(cands: list[tuple[int, _Block]]) -> tuple[int, _Block] | None:
        if not cands:
            return None
        scored = [(_title_quality(b.text, page_title, segments), i, b) for i, b in cands]
        best = [c for c in scored if c[0] >= 2]
        if best:
            best.sort(key=lambda c: -c[0])
            return best[0][1], best[0][2]
        pool = [c for c in scored if c[0] != 1] or scored
        for _q, i, b in pool:
            if b.level:
                return i, b
        for _q, i, b in pool:
            cls = f"{b.elem.get('class') or ''} {b.elem.get('id') or ''}" if b.elem is not None else ""
            if _TITLE_HINT.search(cls):
                return i, b
        return pool[0][1], pool[0][2]

    title_idx = None
    title = None
    if date_idx is not None:
        cands = []
        for i, b in reversed(blocks):
            if i >= date_idx:
                continue
            if len(cands) >= 8 or date_idx - i > 40:
                break
            if eligible(b):
                cands.append((i, b))
        picked = pick_title(cands)  # nearest first
    else:
        cands = [(i, b) for i, b in blocks if eligible(b)]
        headed = [c for c in cands if c[1].level or _title_quality(c[1].text, page_title, segments) >= 2]
        picked = pick_title(headed[:10])
    if picked is not None:
        title_idx, title = picked[0], picked[1].text
    elif segments:
        title = clean_text(_TITLE_SPLIT.split(_title_text(root))[0]) or None

    # -- the source ----------------------------------------------------------------------------
    if source is None and title_idx is not None:
        end = date_idx if date_idx is not None else min(title_idx + 4, len(items))
        for i, b in blocks:
            if title_idx < i < end:
                found_source = _source_line(b.text)
                if found_source:
                    source = found_source
                    if date_idx is None:
                        title_idx = i  # the body starts after the source line
                        break

    # -- the body ------------------------------------------------------------------------------
    anchor = date_idx if date_idx is not None else title_idx
    start = anchor + 1 if anchor is not None else 0
    paragraphs, images = _body(items, lin.spans, start, source is None and date_idx is not None,
                               base, page_title)
    if paragraphs and paragraphs[0][1] == "source":
        source = paragraphs.pop(0)[0]
    texts = tuple(p for p, _kind in paragraphs)

    # -- the pager -----------------------------------------------------------------------------
    others: dict[int, str] = {}
    for page, link in lin.page_links:
        if page != current_page and page not in others:
            others[page] = link
    numbers = [page for page, _ in lin.page_links]
    text_pager = False
    for _i, b in blocks:
        if b.pager or (b.n <= 40 and b.text[:1] in "<>«»‹›.…0123456789|pPnN上下首"):
            nums = _pager_numbers(b.text)
            if nums:
                if b.pager or len(nums) >= 2 or b.text[:1] in "<>«»‹›":
                    numbers.extend(nums)
                    text_pager = True
    page_count = None
    if others or text_pager:
        page_count = max(numbers + [current_page])
    page_links = tuple(others[p] for p in sorted(others))
    return ArticlePage(
        title=title,
        source=source,
        published_on=published_on,
        paragraphs=texts,
        images=tuple(images),
        page_links=page_links,
        page_count=page_count,
    )


def _body(items: list, spans: dict, start: int, source_open: bool, base: str,
          page_title: str) -> tuple[list[tuple[str, str]], list[PageImage]]:
    """Paragraphs (text, kind) and images of the body region that starts at ``items[start]``."""
    n = len(items)
    # Pass 1: where the region ends, and which blocks look like body text.
    good = [0] * n  # text length of paragraph-like blocks
    bad = [0] * n  # text length of link lists / boilerplate
    end = n
    body_seen = False
    after_image = False
    for i in range(start, n):
        it = items[i]
        if it.__class__ is _Image:
            after_image = True
            continue
        b = it
        text = b.text
        if _is_footer(text):
            end = i
            break
        if b.pager or (_pager_numbers(text) is not None and b.n <= 40):
            if body_seen:
                end = i
                break
            continue
        if b.flags & _NAV or b.linky():
            bad[i] = b.n
            after_image = False
            continue
        if _FILENAME_RE.match(text):
            continue
        if b.flags & _FIGCAP or (after_image and (_BRACKET_RE.match(text) or b.flags & _CAPHINT)):
            after_image = False
            continue
        after_image = False
        good[i] = b.n
        body_seen = True

    # Pass 2: the body container — the element with the most body text for the least link text.
    container_span = (start, end)
    candidates: dict = {}
    for i in range(start, end):
        if good[i]:
            el = items[i].elem
            while el is not None and el not in candidates:
                span = spans.get(el)
                if span is not None:
                    candidates[el] = span
                el = el.getparent()
    if candidates:
        prefix_good = [0] * (n + 1)
        prefix_bad = [0] * (n + 1)
        for i in range(n):
            prefix_good[i + 1] = prefix_good[i] + (good[i] if start <= i < end else 0)
            prefix_bad[i + 1] = prefix_bad[i] + (bad[i] if start <= i < end else 0)
        total = prefix_good[n]
        best_key = None
        best_span = None
        for el, (s, e) in candidates.items():
            score = (prefix_good[e] - prefix_good[s]) - (prefix_bad[e] - prefix_bad[s])
            hint = f"{el.get('class') or ''} {el.get('id') or ''}"
            if hint.strip() and _CONTENT_HINT.search(hint):
                score += 0.1 * total
            key = (score, e - s)
            if best_key is None or key > best_key:
                best_key, best_span = key, (s, e)
        container_span = best_span

    # Pass 3: collect paragraphs and images in order.
    c_start, c_end = container_span
    paragraphs: list[tuple[str, str]] = []
    images: list[list] = []  # [url, caption, figure]
    pending: list[int] = []  # images waiting for a caption line
    first_text = None
    fig_captions: dict = {}
    for i in range(start, end):
        it = items[i]
        inside = c_start <= i < c_end
        if it.__class__ is _Image:
            keep = inside or first_text is None
            if keep and it.flags & _NAV:
                keep = False
            if keep and it.href is not None:
                href = it.href.strip().lower().split("?")[0]
                if not href.endswith((".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp")) and href not in ("", "#"):
                    keep = False
            if keep:
                images.append([urljoin(base, it.src), None, it.figure])
                pending.append(len(images) - 1)
            else:
                pending.append(-1)
            continue
        b = it
        text = b.text
        if _FILENAME_RE.match(text):
            continue
        if b.flags & _FIGCAP:
            if b.figure is not None:
                prev = fig_captions.get(b.figure)
                fig_captions[b.figure] = f"{prev} {text}" if prev else text
                pending = []
                continue
            b_is_caption = True
        else:
            b_is_caption = False
        if pending and (b_is_caption or _BRACKET_RE.match(text) or b.flags & _CAPHINT):
            for k in pending:
                if k >= 0 and images[k][1] is None:
                    images[k][1] = text
            pending = []
            continue
        pending = []
        if not inside:
            continue
        if b.pager or (b.n <= 40 and _pager_numbers(text) is not None):
            continue
        if b.flags & _NAV:
            continue
        if b.linky():
            if b.listy() or b.n < 25:
                if paragraphs:
                    _drop_trailing_headings(paragraphs)
                    break
                continue
        low = text.lower()
        if low == SECTION_NAME.lower():
            continue
        if first_text is None:
            first_text = i
            if source_open and _source_line(text) and not paragraphs:
                paragraphs.append((_source_line(text) or "", "source"))
                continue
        paragraphs.append((text, "h" if b.level or _is_title_like(b) else "p"))
    for img in images:
        if img[1] is None and img[2] is not None:
            img[1] = fig_captions.get(img[2])
    return paragraphs, [PageImage(url=u, caption=c) for u, c, _f in images]


def _is_title_like(b: _Block) -> bool:
    if b.n > 60 or b.text[-1:] in '.!?"\u201d\u3002;)':
        return False
    elem = b.elem
    if elem is None:
        return False
    hint = f"{elem.get('class') or ''} {elem.get('id') or ''}"
    return bool(hint.strip() and _TITLE_HINT.search(hint)) or (
        elem.tag in ("strong", "b") or (len(elem) == 1 and elem[0].tag in ("strong", "b")
                                          and not (elem.text or "").strip())
    )


def _drop_trailing_headings(paragraphs: list[tuple[str, str]]) -> None:
    """Drop the heading of a link list ("Related stories") left at the end of the body."""
    while paragraphs and paragraphs[-1][1] == "h":
        paragraphs.pop()


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
    base = _base_url(root, url)
    here = parse_listing_url(url)
    articles: list[str] = []
    seen_articles: set[str] = set()
    listings: list[str] = []
    seen_pages: set[int] = {here.page} if here else set()
    for _a, href in _links(root):
        if ".htm" not in href:
            continue
        absolute = _strip_fragment(urljoin(base, href))
        if parse_article_url(absolute) is not None:
            if absolute not in seen_articles:
                seen_articles.add(absolute)
                articles.append(absolute)
            continue
        if here is None:
            continue
        lref = parse_listing_url(absolute)
        if lref is not None and lref.node == here.node and lref.prefix == here.prefix:
            if lref.page not in seen_pages:
                seen_pages.add(lref.page)
                listings.append(absolute)
    return ListingPage(tuple(articles), tuple(listings))


_EDGE_PUNCT = " \t\u00bb\u00ab>\u203a\u2039<|\u00b7:-"


def find_section_url(html: str, url: str, name: str = SECTION_NAME) -> str | None:
    """The URL of the navigation link named ``name`` (a listing URL preferred), or None."""
    root = _parse(html)
    if root is None:
        return None
    base = _base_url(root, url)
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
