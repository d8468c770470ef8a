"""Deterministic generation of the replica's articles: ids, dates and page counts by arithmetic, text by Random.

Rules that keep the site cheap at any size:

* everything about article ``i`` comes from ``Random(f"{seed}:{i}")`` (head: id, date, title,
  source, template, page count) and ``Random(f"{seed}:{i}:body")`` (pages), so any article is
  made without making the others;
* ``id(i) = base - i * gap - jitter(i)`` with ``0 <= jitter < gap``: ids fall strictly with ``i``
  and ``i = (base - id) // gap`` inverts it exactly;
* ``day(i) = floor((i + u(i)) / per_day)`` with ``0 <= u < 1``: dates never rise with ``i``.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass

from crawler.text import clean_text

from .markup import escape, noisy_html
from .model import ReplicaArticle, ReplicaImage
from .words import Writer

TEMPLATES = ("cms", "chinadaily", "plain", "html5", "table")
DEFAULT_TEMPLATES = ("cms", "chinadaily", "plain")
HOLDOUT_TEMPLATES = ("html5", "table")
# Templates that show images as <figure><img><figcaption>; the others use paragraphs.
FIGURE_TEMPLATES = frozenset({"chinadaily", "html5"})

# Inner text of the source parentheses as shown (odd spacing included); the truth is its clean text.
SOURCES = (
    "China Daily",
    " chinadaily.com.cn",
    "exploringtianjin.com",
    "Xinhua",
    "Xinhua ",
    "chinadaily.com.cn",
    "\u00a0China Daily",
    "Tianjin Daily",
    "China Daily ",
)
BYLINE_TAIL = (" in Tianjin", " in Tianjin", "", " and {other}")


@dataclass(frozen=True)
class Head:
    """The cheap part of an article: enough for listings, links and lookups."""

    index: int
    key: str
    published_on: datetime.date
    time: str
    """``HH:MM`` shown by templates that print a time."""
    template: str
    page_count: int
    title: str
    """Expected (clean) title."""
    title_html: str
    source: str | None
    source_html: str | None
    """Inner HTML of the source, without parentheses."""
    byline: str | None
    """``By NAME in Tianjin`` (chinadaily template only)."""
    chinese: bool
    footer_stop: bool
    """Whether the copyright line ends with a full stop."""
    style: int
    """Per-article choice among a template's variants."""

    def path(self, page: int = 1) -> str:
        suffix = "" if page == 1 else f"_{page}"
        d = self.published_on
        return f"/{d.year:04d}-{d.month:02d}/{d.day:02d}/c_{self.key}{suffix}.htm"


@dataclass(frozen=True)
class Para:
    """A body paragraph: its inner HTML and its expected clean text ("" for an empty paragraph)."""

    html: str
    text: str
    style: int


@dataclass(frozen=True)
class Picture:
    """An image block: the image, how its src is written, its caption HTML and a file-name line."""

    image: ReplicaImage
    href: int
    """0 root-relative, 1 relative (``../../att/...``), 2 absolute URL."""
    caption_html: str | None
    name_line: bool
    style: int


Block = Para | Picture


@dataclass(frozen=True)
class Draft:
    """A fully generated article: the truth plus what the templates need to render it."""

    head: Head
    article: ReplicaArticle
    pages: tuple[tuple[Block, ...], ...]


@dataclass(frozen=True)
class Layout:
    """Site-wide generation parameters; ``head(i)`` and ``draft(i)`` are pure functions of them."""

    seed: int
    size: int
    templates: tuple[str, ...]
    base_id: int
    gap: int
    per_day: float
    newest: datetime.date
    forced_pages: dict[int, int]
    chinese: frozenset[int]

    def template_of(self, index: int) -> str:
        # Each block of len(templates) consecutive articles uses every template once, so even a
        # small site shows them all.
        n = len(self.templates)
        if n == 1:
            return self.templates[0]
        order = random.Random(f"{self.seed}:tpl:{index // n}").sample(range(n), n)
        return self.templates[order[index % n]]

    def index_of(self, key: str) -> int | None:
        """The index of the article with id ``key``, or None."""
        if not key.isdigit():
            return None
        index = (self.base_id - int(key)) // self.gap
        if 0 <= index < self.size and self.head(index).key == str(int(key)):
            return index
        return None

    def head(self, index: int) -> Head:
        if not 0 <= index < self.size:
            raise IndexError(index)
        rng = random.Random(f"{self.seed}:{index}")
        key = str(self.base_id - index * self.gap - rng.randrange(self.gap))
        day = int((index + rng.random()) / self.per_day)
        published = self.newest - datetime.timedelta(days=day)
        time = f"{rng.randrange(24):02d}:{rng.randrange(60):02d}"
        template = self.template_of(index)
        forced = self.forced_pages.get(index)
        roll = rng.random()
        if forced is not None:
            page_count = forced
        elif roll < 0.74:
            page_count = 1
        elif roll < 0.93:
            page_count = rng.randrange(2, 5)
        elif roll < 0.995:
            page_count = rng.randrange(5, 10)
        else:
            page_count = 16
        writer = Writer(rng)
        title = writer.title()
        chinese = index in self.chinese
        if chinese:
            title = f"{title} {writer.chinese_title()}"
        title_html = escape(title, rng)
        if rng.random() < 0.2:
            # Odd spacing the CMS keeps in titles: a no-break space or a doubled one.
            title_html = title_html.replace(" ", rng.choice(("&nbsp;", "  ", " \n ")), 1)
        source_raw = rng.choice(SOURCES) if rng.random() >= 0.4 else None
        byline = None
        if template == "chinadaily" and rng.random() < 0.35:
            tail = rng.choice(BYLINE_TAIL).replace("{other}", writer.person().upper())
            byline = f"By {writer.person().upper()}{tail}"
        return Head(
            index=index,
            key=key,
            published_on=published,
            time=time,
            template=template,
            page_count=page_count,
            title=clean_text(title),
            title_html=title_html,
            source=clean_text(source_raw) if source_raw is not None else None,
            source_html=escape(source_raw, rng) if source_raw is not None else None,
            byline=byline,
            chinese=chinese,
            footer_stop=rng.random() < 0.7,
            style=rng.randrange(1000),
        )

    def draft(self, index: int, links: tuple[str, ...] = ()) -> Draft:
        """Article ``index`` in full; ``links`` are paths inline ``<a>`` tags may point to."""
        head = self.head(index)
        rng = random.Random(f"{self.seed}:{index}:body")
        writer = Writer(rng)
        figure = head.template in FIGURE_TEMPLATES
        pages: list[list[Block]] = []
        texts: list[tuple[str, ...]] = []
        for _ in range(head.page_count):
            blocks: list[Block] = []
            for _ in range(rng.randrange(3, 13)):
                if head.chinese and rng.random() < 0.7:
                    text = writer.chinese_paragraph()
                    # Chinese editors indent with ideographic spaces; normalisation drops them.
                    shown = ("\u3000\u3000" + text) if rng.random() < 0.5 else text
                    html = escape(shown, rng)
                else:
                    text = writer.paragraph()
                    html = noisy_html(text, rng, links)
                blocks.append(Para(html=html, text=clean_text(text), style=rng.randrange(10)))
            if rng.random() < 0.12:
                empty = rng.choice(("&nbsp;", "", " \u00a0 ", "<br>", "&nbsp;&nbsp;"))
                blocks.insert(rng.randrange(len(blocks) + 1), Para(html=empty, text="", style=0))
            pages.append(blocks)
            texts.append(tuple(b.text for b in blocks if isinstance(b, Para) and b.text))
        if rng.random() < 0.35 or head.page_count >= 9:
            d = head.published_on
            for _ in range(rng.randrange(1, 4)):
                page = 1 if rng.random() < 0.5 else rng.randrange(1, head.page_count + 1)
                has_caption = rng.random() < 0.8
                caption = (
                    writer.caption(descriptive=figure and rng.random() < 0.4)
                    if has_caption
                    else None
                )
                image = ReplicaImage(
                    src_path=f"/att/{d.year:04d}{d.month:02d}{d.day:02d}/{rng.randrange(10**18, 10**19)}.jpeg",
                    alt=f"{rng.getrandbits(96):024x}.jpg",
                    caption=clean_text(caption) if caption is not None else None,
                    page=page,
                )
                caption_html = None
                if caption is not None:
                    caption_html = escape(caption, rng)
                    if rng.random() < 0.2:
                        caption_html = rng.choice(("&nbsp;", " ", "\n")) + caption_html
                picture = Picture(
                    image=image,
                    href=rng.randrange(3),
                    caption_html=caption_html,
                    name_line=rng.random() < 0.3,
                    style=rng.randrange(10),
                )
                blocks = pages[page - 1]
                blocks.insert(rng.randrange(len(blocks) + 1), picture)
        images = tuple(b.image for blocks in pages for b in blocks if isinstance(b, Picture))
        article = ReplicaArticle(
            key=head.key,
            published_on=head.published_on,
            title=head.title,
            source=head.source,
            pages=tuple(texts),
            images=images,
            template=head.template,
        )
        return Draft(head=head, article=article, pages=tuple(tuple(b) for b in pages))
