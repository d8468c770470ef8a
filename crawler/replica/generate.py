"""Deterministic generation of the replica's articles: ids, dates and page counts by arithmetic, text by Random.

Rules that keep the site cheap at any size:

* everything about article ``i`` comes from ``Random(f"{seed}:{i}")`` (head: id, date, title,
  source, template, page count) and ``Random(f"{seed}:{i}:body")`` (pages), so any article is
  made without making the others;
* ``id(i) = base - i * gap - jitter(i)`` with ``0 <= jitter < gap``: ids fall strictly with ``i``
  and ``i = (base - id) // gap`` inverts it exactly;
* ``day(i) = floor((i + u(i)) / per_day)`` with ``0 <= u < 1``: dates never rise with ``i``;
* published articles (``ReplicaSite.publish``) take negative indices ("slots"): slot ``-1 - j``
  is the ``j``-th one published, ``id = base + 1 + j * gap + jitter``, its date given by the site;
* a re-post (``copies``) has its own id, date and template but the title, source and body of an
  older article; a "near" re-post changes one sentence and adds one short closing paragraph.
"""

from __future__ import annotations

import datetime
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

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
    """The generation slot: the site index before any ``publish()``; negative for published articles."""
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
    copies: Mapping[int, tuple[int, str]] = field(default_factory=dict)
    """Re-posts: index -> (index of the older original, ``"exact"`` or ``"near"``)."""

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

    def fresh_key(self, j: int) -> str:
        """Id of the ``j``-th published article: above every generated id, growing with ``j``."""
        jitter = random.Random(f"{self.seed}:new:{j}").randrange(self.gap)
        return str(self.base_id + 1 + j * self.gap + jitter)

    def fresh_number(self, key: str) -> int | None:
        """``j`` of the published article whose id is ``key`` (not checked against a count)."""
        if not key.isdigit():
            return None
        j = (int(key) - self.base_id - 1) // self.gap
        if j >= 0 and self.fresh_key(j) == str(int(key)):
            return j
        return None

    def published_on(self, index: int) -> datetime.date:
        """``head(index).published_on`` of a generated article, without the rest of the head."""
        rng = random.Random(f"{self.seed}:{index}")
        rng.randrange(self.gap)
        return self.newest - datetime.timedelta(days=int((index + rng.random()) / self.per_day))

    def head(self, index: int, published_on: datetime.date | None = None) -> Head:
        """Article ``index``; a negative index is a published article, dated ``published_on``."""
        if index >= 0:
            if index >= self.size:
                raise IndexError(index)
            rng = random.Random(f"{self.seed}:{index}")
            key = str(self.base_id - index * self.gap - rng.randrange(self.gap))
            day = int((index + rng.random()) / self.per_day)
            published = self.newest - datetime.timedelta(days=day)
        else:
            if published_on is None:
                raise ValueError("a published article needs its date")
            rng = random.Random(f"{self.seed}:new:{-1 - index}")
            key = str(self.base_id + 1 + (-1 - index) * self.gap + rng.randrange(self.gap))
            published = published_on
        time = f"{rng.randrange(24):02d}:{rng.randrange(60):02d}"
        template = self.template_of(index)
        forced = self.forced_pages.get(index)
        copy = self.copies.get(index)
        original = self.head(copy[0]) if copy is not None else None
        if original is not None:
            forced = original.page_count
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
        head = Head(
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
        if original is not None:
            # A re-post shows the original's title and source, written the same way.
            head = replace(
                head,
                title=original.title,
                title_html=original.title_html,
                source=original.source,
                source_html=original.source_html,
            )
        return head

    def draft(self, index: int, links: tuple[str, ...] = (), head: Head | None = None) -> Draft:
        """Article ``index`` in full; ``links`` are paths inline ``<a>`` tags may point to.

        ``head`` is ``head(index)`` when the caller has it (a published article needs it).
        """
        if head is None:
            head = self.head(index)
        copy = self.copies.get(index)
        if copy is not None:
            return self._copy(head, copy[0], copy[1] == "near", links)
        rng = random.Random(f"{self.seed}:{index}:body")
        writer = Writer(rng)
        figure = head.template in FIGURE_TEMPLATES
        pages: list[list[Block]] = []
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
        return assemble(head, pages)

    def _copy(self, head: Head, original: int, near: bool, links: tuple[str, ...]) -> Draft:
        """A re-post of ``original``: its paragraphs as they were written, its images uploaded again."""
        source = self.draft(original, links)
        rng = random.Random(f"{self.seed}:{head.index}:copy")
        d = head.published_on
        pages: list[list[Block]] = []
        for blocks in source.pages:
            page: list[Block] = []
            for block in blocks:
                if isinstance(block, Picture):
                    # The CMS copies attachments under the new article's date.
                    src = f"/att/{d.year:04d}{d.month:02d}{d.day:02d}/{rng.randrange(10**18, 10**19)}.jpeg"
                    block = replace(block, image=replace(block.image, src_path=src))
                page.append(block)
            pages.append(page)
        if near:
            pages = near_edit(pages, random.Random(f"{self.seed}:{head.index}:near"), links)
        return assemble(head, pages)


# Where a sentence ends and the next begins, in the generated English text.
_SENTENCE_END = re.compile(r"[.!?][\"\u201d]?\s+(?=[\"\u201c]?[A-Z])")


def near_edit(
    pages: list[list[Block]], rng: random.Random, links: tuple[str, ...] = ()
) -> list[list[Block]]:
    """The small edits of a near re-post: the last sentence of the first paragraph is rewritten
    and a one-sentence paragraph closes the last page."""
    writer = Writer(rng)
    out = [list(blocks) for blocks in pages]
    first = out[0]
    at = next(i for i, b in enumerate(first) if isinstance(b, Para) and b.text)
    para = first[at]
    assert isinstance(para, Para)
    ends = list(_SENTENCE_END.finditer(para.text))
    kept = para.text[: ends[-1].end()] if ends else para.text + " "
    text = kept + writer.sentence()
    first[at] = Para(html=noisy_html(text, rng, links), text=clean_text(text), style=para.style)
    closing = writer.sentence()
    out[-1].append(
        Para(
            html=noisy_html(closing, rng, links), text=clean_text(closing), style=rng.randrange(10)
        )
    )
    return out


def assemble(head: Head, pages: list[list[Block]] | tuple[tuple[Block, ...], ...]) -> Draft:
    """The draft of ``head`` with these page blocks; the truth is read off the blocks."""
    texts = tuple(
        tuple(b.text for b in blocks if isinstance(b, Para) and b.text) for blocks in pages
    )
    images = tuple(b.image for blocks in pages for b in blocks if isinstance(b, Picture))
    article = ReplicaArticle(
        key=head.key,
        published_on=head.published_on,
        title=head.title,
        source=head.source,
        pages=texts,
        images=images,
        template=head.template,
    )
    return Draft(head=head, article=article, pages=tuple(tuple(b) for b in pages))
