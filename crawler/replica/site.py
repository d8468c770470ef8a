"""The replica of the Tianjin Updates site: routing, listings, faults, robots.txt and the expected crawl.

Rules:

* listing page k shows entries ``(k-1)*per_page .. k*per_page-1`` of the listing sequence, which
  is the articles newest first with one article repeated: the last item of listing page
  ``dup_page`` is shown again as the first item of page ``dup_page + 1`` (a pagination shift);
* exactly one listing entry links through the second host (``alias_host``), absolute;
* special articles ("roles": faults, the 16-page article, the duplicate, the alias link, the
  robots.txt exclusion) are distinct articles among the 40 newest, chosen from the seed;
* ``expected()`` follows the current ``faults``, ``disallowed_paths`` and edits, so a test that
  switches a fault or edits an article gets a truth that matches;
* with ``reposts`` (default, 40 articles or more) one article among the 40 newest re-posts an
  older one exactly (``repost``/``repost_of``) and one with small edits (``near_repost``/
  ``near_repost_of``);
* ``publish(n)`` puts n new articles on top of the listing. Articles keep their key, content and
  page bytes; only their index (0 = newest) moves. Internally every article has a fixed "slot":
  its index before any publish, negative for published ones (index = slot + published count);
* every HTML page (home, listings, articles and their ``/tianjin`` mirrors) carries
  ``Last-Modified`` and a strong ``ETag`` and answers conditional requests with 304. Time is a
  logical clock: it starts at the midnight after the newest article and every ``edit()`` or
  ``publish()`` moves it on (at least one minute), so the same history gives the same headers;
* faults (``site.faults[path]``) are answered before any conditional: a counted fault (FLAKY,
  RATE_LIMITED, RESET, TRUNCATED, SLOW with ``times``) spends one of its ``times`` per request.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime
import email.utils
import functools
import gzip
import hashlib
import json
import random
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from crawler.text import clean_text

from .generate import (
    DEFAULT_TEMPLATES,
    TEMPLATES,
    Block,
    Draft,
    Head,
    Layout,
    Para,
    Picture,
    assemble,
    near_edit,
)
from .markup import attr, escape, malform, noisy_html, pager_numbers
from .model import (
    COUNTED_KINDS,
    DOWNLOAD_MAXSIZE,
    DOWNLOAD_TIMEOUT,
    RETRY_TIMES,
    ExpectedArticle,
    Fault,
    FaultKind,
    ReplicaArticle,
    ReplicaResponse,
)
from .similarity import shingle_jaccard
from .templates import TEMPLATE_CLASSES, Ctx, Link, Template
from .words import Writer

# The newest article id seen on the real site (2025-08).
NEWEST_ID = 1117647
MAX_ARTICLES = 1_000_000
ROLE_POOL = 40
# Role names, in the order they are given an article when a small site has too few.
ROLES = (
    "sixteen_pages",
    "not_found",
    "flaky",
    "broken_page",
    "gbk",
    "malformed",
    "alias_host",
    "robots_disallowed",
    "meta_charset",
)
FAULT_ROLES = frozenset({"not_found", "flaky", "broken_page", "gbk", "malformed", "meta_charset"})
REPOST_ROLES = ("repost", "repost_of", "near_repost", "near_repost_of")
# The near re-post's original is chosen so that the bodies' word-3-shingle Jaccard falls here.
NEAR_SIMILARITY = (0.88, 0.97)
# expected() marks a re-post whose body is not identical but at least this similar as near.
NEAR_THRESHOLD = 0.8

_ARTICLE_PATH = re.compile(r"^/(\d{4})-(\d{2})/(\d{2})/c_(\d+)(?:_(\d+))?\.htm$")
_LISTING_PATH = re.compile(r"^/n_(\d+)(?:_(\d+))?\.htm$")
_IMAGE_PATH = re.compile(r"^/(?:att/\d{8}/\d{19}\.jpeg|images/[\w.-]+\.(?:jpg|png))$")
# Every article page is also served under this prefix (as regional.chinadaily.com.cn/tianjin/...
# serves the real ones): the target of a meta refresh that a crawler should follow.
MIRROR_PREFIX = "/tianjin"
# Article times are shown in Beijing time; Last-Modified is in GMT.
_BEIJING = datetime.timezone(datetime.timedelta(hours=8))
# The logical clock moves at least this much per edit or publish.
_TICK = datetime.timedelta(minutes=1)
# Filler of Fault.huge, inside an HTML comment: no "--", no ">".
_PAD_CHUNK = b"padding " * 8192


def _published_at(head: Head) -> datetime.datetime:
    """When an article went online: its date and time (Beijing), in UTC."""
    hours, minutes = head.time.split(":")
    moment = datetime.time(int(hours), int(minutes), tzinfo=_BEIJING)
    return datetime.datetime.combine(head.published_on, moment).astimezone(datetime.UTC)


def _http_date(moment: datetime.datetime) -> str:
    """``Wed, 20 Aug 2025 02:13:00 GMT``."""
    return email.utils.format_datetime(moment.astimezone(datetime.UTC), usegmt=True)


def _canonical_article_path(path: str) -> str | None:
    """``path`` without MIRROR_PREFIX when it is an article page path (either form), else None."""
    if path.startswith(MIRROR_PREFIX + "/"):
        path = path[len(MIRROR_PREFIX) :]
    return path if _ARTICLE_PATH.match(path) else None


def _etag(response: ReplicaResponse) -> str:
    """A strong validator: a hash of the served bytes and of the page's Last-Modified, so an
    edit gives every page of the article a new one even where its bytes stay the same."""
    digest = hashlib.sha256(response.headers["Last-Modified"].encode() + b"\n" + response.body)
    return f'"{digest.hexdigest()[:32]}"'


def _not_modified(response: ReplicaResponse, headers: Mapping[str, str]) -> bool:
    """RFC 9110 13.2.2 for GET/HEAD: If-None-Match (weak comparison, ``*``) decides when sent;
    else If-Modified-Since (an unparsable date is ignored)."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = [tag.strip() for tag in if_none_match.split(",")]
        mine = response.headers["ETag"]
        return any(tag == "*" or tag.removeprefix("W/") == mine for tag in tags)
    since = headers.get("if-modified-since")
    if since is None:
        return False
    try:
        moment = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    modified = email.utils.parsedate_to_datetime(response.headers["Last-Modified"])
    return modified <= moment


def _meta_refresh_page(target: str) -> str:
    href = attr(target)
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
        f'<meta http-equiv="refresh" content="0; url={href}">\n<title>Exploring Tianjin</title>\n'
        "</head>\n<body>\n"
        f'<p>This page has moved. If your browser does not go on by itself, <a href="{href}">follow this link</a>.</p>\n'
        "</body>\n</html>\n"
    )


def _drift_page(data: Mapping[str, Any]) -> str:
    """A JavaScript shell: the content only as JSON in a script, nothing a crawler can read."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # Inside <script>: no "<" (no "</script>", no "<!--"), written as JSON escapes.
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>Exploring Tianjin</title>\n"
        '<link rel="stylesheet" href="/static/css/app.3f9c2e.css">\n</head>\n<body>\n'
        '<div id="app"></div>\n'
        f"<script>window.__DATA__ = {payload};</script>\n"
        '<script src="/static/js/app.3f9c2e.js" defer></script>\n</body>\n</html>\n'
    )


def _tiny_jpeg() -> bytes:
    """A valid 1x1 grey baseline JPEG: one 8x8 block whose coefficients are all zero.

    Built by hand (no imaging library): one quantisation table, one-code Huffman tables whose
    only code "0" means "DC difference 0" and "end of block", and one scan byte.
    """
    soi, eoi = b"\xff\xd8", b"\xff\xd9"
    dqt = b"\xff\xdb\x00\x43\x00" + b"\x01" * 64
    sof = b"\xff\xc0\x00\x0b\x08\x00\x01\x00\x01\x01\x01\x11\x00"
    counts = b"\x01" + b"\x00" * 15
    dht = b"\xff\xc4\x00\x14\x00" + counts + b"\x00" + b"\xff\xc4\x00\x14\x10" + counts + b"\x00"
    sos = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    # Bits "0" (DC) "0" (EOB), padded with ones.
    return soi + dqt + sof + dht + sos + b"\x3f" + eoi


_JPEG = _tiny_jpeg()

_SECTION_NAMES = (
    "Business",
    "Culture &amp; Heritage",
    "Travel",
    "Living Here",
    "Districts",
    "Photos",
)
_UPDATES_LABELS = (
    "Tianjin Updates",
    "Tianjin&nbsp;Updates",
    "<span>Tianjin</span> Updates",
    " Tianjin Updates ",
)


class _FaultMap(dict[str, Fault]):
    """``path -> Fault``; setting or removing a path's fault resets its FLAKY counter."""

    def __init__(self, on_change: Callable[[str], None]) -> None:
        super().__init__()
        self._on_change = on_change

    def __setitem__(self, path: str, fault: Fault) -> None:
        super().__setitem__(path, fault)
        self._on_change(path)

    def __delitem__(self, path: str) -> None:
        super().__delitem__(path)
        self._on_change(path)

    def pop(self, path: str, *default: Any) -> Any:  # type: ignore[override]
        self._on_change(path)
        return super().pop(path, *default)

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for path, fault in dict(*args, **kwargs).items():
            self[path] = fault

    def setdefault(self, path: str, fault: Fault) -> Fault:  # type: ignore[override]
        if path not in self:
            self[path] = fault
        return self[path]

    def clear(self) -> None:
        for path in list(self):
            self._on_change(path)
        super().clear()


@dataclass(frozen=True)
class _Edit:
    """The edits made to one article so far."""

    title: str | None = None
    paragraphs: tuple[tuple[tuple[int, int], str], ...] = ()
    """``((page, paragraph index), display text)``."""
    captions: tuple[tuple[int, str | None], ...] = ()
    """``(image position, display text or None for no caption)``."""
    revision: int = 0
    at: datetime.datetime | None = None
    """Logical time of the last edit (UTC): the article's pages are modified then."""
    title_at: datetime.datetime | None = None
    """Logical time of the last title edit: pages that show the title are modified then."""


def _choose_reposts(layout: Layout, taken: set[int]) -> dict[str, int]:
    """Indices of the re-posts and their originals: distinct, unused by other roles, the re-posts
    among the 40 newest, each original older (a strictly earlier date), in the same template and
    plain; the near re-post's original is one whose edited body falls in NEAR_SIMILARITY (the
    closest below its top when none does). {} when the site is too small."""
    size = layout.size
    if size < ROLE_POOL:
        return {}
    rng = random.Random(f"{layout.seed}:reposts")
    newer = [i for i in range(ROLE_POOL) if i not in taken][:20]
    rng.shuffle(newer)
    links = ("", "")  # only the count of links changes the generated text
    low, high = NEAR_SIMILARITY

    def older(index: int, used: set[int]) -> list[int]:
        # Unused articles of the weeks before, dated strictly before ``index``, in the same
        # template (what a template shows, e.g. descriptive captions, depends on it).
        date = layout.published_on(index)
        template = layout.template_of(index)
        return [
            i
            for i in range(index + 1, min(size, index + 60))
            if i not in used and layout.template_of(i) == template and layout.published_on(i) < date
        ]

    def similarity(new: int, original: int) -> float:
        draft = layout.draft(original, links)
        edited = near_edit(
            [list(page) for page in draft.pages], random.Random(f"{layout.seed}:{new}:near"), links
        )
        body = "\n\n".join(
            b.text for page in edited for b in page if isinstance(b, Para) and b.text
        )
        return shingle_jaccard(draft.article.body, body)

    for exact_new in newer:
        options = older(exact_new, taken | {exact_new})
        if options:
            exact_old = rng.choice(options)
            break
    else:
        return {}
    used = taken | {exact_new, exact_old}
    best: tuple[float, int, int] | None = None
    for near_new in newer:
        if near_new in used:
            continue
        options = older(near_new, used | {near_new})
        rng.shuffle(options)
        # Short articles first: the fixed-size edit lands in the window for most of them, and a
        # short draft is cheap to make.
        options.sort(key=lambda i: layout.head(i).page_count > 2)
        for original in options[:8]:
            value = similarity(near_new, original)
            if low <= value <= high:
                best = (value, near_new, original)
                break
            if NEAR_THRESHOLD < value < 1.0 and (best is None or value > best[0]):
                best = (value, near_new, original)
        if best is not None and low <= best[0] <= high:
            break
    if best is None:
        return {}
    return {
        "repost": exact_new,
        "repost_of": exact_old,
        "near_repost": best[1],
        "near_repost_of": best[2],
    }


class ReplicaSite:
    """A generated, deterministic copy of the Tianjin Updates section, rendered on demand."""

    def __init__(
        self,
        articles: int = 300,
        seed: int = 20200525,
        templates: Sequence[str] | None = None,
        faults: bool = True,
        per_page: int = 20,
        alias_host: str = "localhost",
        reposts: bool = True,
    ) -> None:
        if not 1 <= articles <= MAX_ARTICLES:
            raise ValueError(f"articles must be between 1 and {MAX_ARTICLES}, not {articles}")
        if per_page < 1:
            raise ValueError(f"per_page must be at least 1, not {per_page}")
        chosen = tuple(templates) if templates is not None else DEFAULT_TEMPLATES
        unknown = [t for t in chosen if t not in TEMPLATES]
        if not chosen or unknown:
            raise ValueError(f"unknown templates {unknown}; choose among {', '.join(TEMPLATES)}")
        self.seed = seed
        self.per_page = per_page
        self.alias_host = alias_host
        self.templates: tuple[str, ...] = chosen
        self._size = articles

        rng = random.Random(f"{seed}:site")
        nodes = rng.sample(range(17700, 18000), 1 + len(_SECTION_NAMES))
        self.node = str(nodes[0])
        self.section_path = f"/n_{self.node}.htm"
        # The menu: the section's link among others whose node ids sit close to it.
        sections = [("Home", "/")]
        sections += [(name, f"/n_{n}.htm") for name, n in zip(_SECTION_NAMES, nodes[1:])]
        sections.insert(1 + rng.randrange(3), (rng.choice(_UPDATES_LABELS), self.section_path))
        self.sections: tuple[tuple[str, str], ...] = tuple(sections)
        self._other_sections = {p: name for name, p in sections[1:] if p != self.section_path}

        base_id = NEWEST_ID - rng.randrange(0, 30)
        gap = max(1, min(7, (base_id - 1000) // articles))
        per_day = max(2.0 + rng.random() * 2.0, articles / 2900)
        newest = datetime.date(2025, 8, rng.randrange(14, 29))

        # The pagination shift: listing page dup_page's last item repeats on the next page.
        dup_index: int | None = None
        if articles // per_page >= 1:
            dup_page = 1 + rng.randrange(min(2, articles // per_page))
            dup_index = dup_page * per_page - 1

        candidates = [i for i in range(min(articles, ROLE_POOL)) if i != dup_index]
        rng.shuffle(candidates)
        roles: dict[str, int] = dict(zip(ROLES, candidates))
        if dup_index is not None:
            roles["listed_twice"] = dup_index
        forced: dict[int, int] = {}
        if "sixteen_pages" in roles:
            forced[roles["sixteen_pages"]] = 16
        if "broken_page" in roles:
            forced[roles["broken_page"]] = rng.randrange(3, 5)
        if "flaky" in roles:
            forced[roles["flaky"]] = rng.randrange(2, 5)
        for role in ("not_found", "robots_disallowed"):
            if role in roles:
                forced[roles[role]] = 1
        chinese = frozenset(roles[r] for r in ("gbk", "meta_charset") if r in roles)
        layout = Layout(
            seed=seed,
            size=articles,
            templates=chosen,
            base_id=base_id,
            gap=gap,
            per_day=per_day,
            newest=newest,
            forced_pages=forced,
            chinese=chinese,
        )
        copies: dict[str, int] = _choose_reposts(layout, set(roles.values())) if reposts else {}
        if copies:
            layout = dataclasses.replace(
                layout,
                copies={
                    copies["repost"]: (copies["repost_of"], "exact"),
                    copies["near_repost"]: (copies["near_repost_of"], "near"),
                },
            )
        self._layout = layout
        # Pairs (re-post slot, original slot) whose ExpectedArticle carries a duplicate mark.
        self._pairs: tuple[tuple[int, int], ...] = (
            (
                (copies["repost"], copies["repost_of"]),
                (copies["near_repost"], copies["near_repost_of"]),
            )
            if copies
            else ()
        )

        # What expected() assumes of a correct crawler (crawler/settings.py); a test that crawls
        # with other settings sets these to match.
        self.retry_times = RETRY_TIMES
        self.download_timeout = DOWNLOAD_TIMEOUT
        self.max_size = DOWNLOAD_MAXSIZE

        # State that changes while serving (edits, published articles), guarded by one lock.
        self._state = threading.RLock()
        # The logical clock of Last-Modified: the midnight (Beijing) after the newest article.
        midnight = datetime.time(0, 0, tzinfo=_BEIJING)
        self._epoch = datetime.datetime.combine(
            newest + datetime.timedelta(days=1), midnight
        ).astimezone(datetime.UTC)
        self._now = self._epoch
        self._published_at: datetime.datetime | None = None
        self._edits: dict[str, _Edit] = {}
        self._published = 0
        self._batch_starts: list[int] = []
        self._batch_dates: list[datetime.date] = []

        self._head = functools.lru_cache(maxsize=8192)(self._make_head)
        self._draft = functools.lru_cache(maxsize=256)(self._make_draft)
        self._edited = functools.lru_cache(maxsize=256)(self._apply_edit)
        self._retitled = functools.lru_cache(maxsize=1024)(self._retitle)
        self._alias_slot = roles.get("alias_host")
        self._dup_slot = dup_index

        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self.faults: dict[str, Fault] = _FaultMap(self._reset_hits)
        kept = {name: i for name, i in roles.items() if faults or name not in FAULT_ROLES}
        kept.update(copies)
        self.fault_keys: dict[str, str] = {
            name: self._head(i).key for name, i in sorted(kept.items())
        }
        """Role name -> article key: "not_found", "flaky", "broken_page", "gbk", "meta_charset",
        "malformed" (faults only), "sixteen_pages", "listed_twice", "alias_host", "robots_disallowed",
        and (reposts, 40 articles or more) "repost", "repost_of", "near_repost", "near_repost_of"."""
        if faults:
            self._install_faults(roles)

        disallowed = ["/search/"]
        if "robots_disallowed" in roles:
            disallowed.append(self._head(roles["robots_disallowed"]).path(1))
        self.disallowed_paths: tuple[str, ...] = tuple(disallowed)

    # -- articles --------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._size + self._published

    def __iter__(self) -> Iterator[ReplicaArticle]:
        return (self.article(i) for i in range(len(self)))

    def article(self, index: int) -> ReplicaArticle:
        """Article ``index`` (0 = newest; negative counts from the oldest), edits applied."""
        with self._state:
            return self._draft_of(self._slot(index)).article

    def article_by_key(self, key: str) -> ReplicaArticle:
        return self.article(self.index_of(key))

    def index_of(self, key: str) -> int:
        """The index of the article with id ``key``; KeyError when there is none."""
        with self._state:
            slot = self._slot_of_key(str(key))
            if slot is None:
                raise KeyError(key)
            return slot + self._published

    def head(self, index: int) -> Head:
        """The cheap facts of article ``index`` (key, date, title, page count, template).

        ``Head.index`` is the article's fixed slot, which is ``index`` until ``publish()`` is used.
        """
        with self._state:
            return self._head_of(self._slot(index))

    def _slot(self, index: int) -> int:
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(f"article index {index} out of range (site has {size})")
        return index - self._published

    def _slot_of_key(self, key: str) -> int | None:
        slot = self._layout.index_of(key)
        if slot is not None:
            return slot
        j = self._layout.fresh_number(key)
        if j is not None and j < self._published:
            return -1 - j
        return None

    def _wrap(self, slot: int) -> int:
        """A neighbour slot, wrapping past the oldest article to the newest generated one."""
        return slot % self._size if slot >= self._size else slot

    def _make_head(self, slot: int) -> Head:
        if slot >= 0:
            return self._layout.head(slot)
        return self._layout.head(slot, self._fresh_date(-1 - slot))

    def _fresh_date(self, j: int) -> datetime.date:
        """Date of the ``j``-th published article: each publish() starts the day after the newest."""
        batch = bisect.bisect_right(self._batch_starts, j) - 1
        offset = int((j - self._batch_starts[batch]) / self._layout.per_day)
        return self._batch_dates[batch] + datetime.timedelta(days=offset)

    def _links(self, slot: int) -> tuple[str, ...]:
        return (self._head(self._wrap(slot + 7)).path(), self.section_path)

    def _make_draft(self, slot: int) -> Draft:
        return self._layout.draft(slot, self._links(slot), head=self._head(slot))

    def _head_of(self, slot: int) -> Head:
        """The head with the current title edit."""
        head = self._head(slot)
        edit = self._edits.get(head.key)
        if edit is None or edit.title is None:
            return head
        return self._retitled(head, edit.title)

    def _retitle(self, head: Head, title: str) -> Head:
        rng = random.Random(f"{self.seed}:{head.key}:title:{title}")
        return dataclasses.replace(head, title=clean_text(title), title_html=escape(title, rng))

    def _draft_of(self, slot: int) -> Draft:
        """The draft with the current edits."""
        draft = self._draft(slot)
        edit = self._edits.get(draft.head.key)
        return draft if edit is None else self._edited(slot, edit)

    def _apply_edit(self, slot: int, edit: _Edit) -> Draft:
        base = self._draft(slot)
        key = base.head.key
        links = self._links(slot)
        pages: list[list[Block]] = [list(blocks) for blocks in base.pages]
        for (page, number), text in edit.paragraphs:
            blocks = pages[page - 1]
            at = [i for i, b in enumerate(blocks) if isinstance(b, Para) and b.text][number]
            old = blocks[at]
            assert isinstance(old, Para)
            rng = random.Random(f"{self.seed}:{key}:edit:{page}:{number}:{text}")
            blocks[at] = Para(
                html=noisy_html(text, rng, links), text=clean_text(text), style=old.style
            )
        captions = dict(edit.captions)
        position = 0
        for blocks in pages:
            for i, block in enumerate(blocks):
                if not isinstance(block, Picture):
                    continue
                position += 1
                if position not in captions:
                    continue
                shown = captions[position]
                rng = random.Random(f"{self.seed}:{key}:caption:{position}:{shown}")
                blocks[i] = dataclasses.replace(
                    block,
                    image=dataclasses.replace(
                        block.image, caption=clean_text(shown) if shown is not None else None
                    ),
                    caption_html=escape(shown, rng) if shown is not None else None,
                )
        return assemble(self._head_of(slot), pages)

    # -- changes while serving ---------------------------------------------------------------

    def edit(
        self,
        key: str,
        *,
        title: str | None = None,
        paragraph: tuple[int, int, str] | None = None,
        caption: tuple[int, str | None] | None = None,
    ) -> None:
        """Change a live article; the next request serves the edited page(s).

        ``title``: the new title as displayed (entities allowed; the truth is its clean text).
        ``paragraph=(page, index, text)``: replace ``article.pages[page - 1][index]`` (page 1-based
        as in ``path(page)``, index 0-based, negative from the end) with ``text``.
        ``caption=(position, text)``: the caption of image ``position`` (1-based, article order, as
        in ``ExpectedArticle.images``); None removes it. Edits accumulate and are rendered with the
        same noisy markup as generated text. Thread-safe.
        """
        if title is None and paragraph is None and caption is None:
            raise ValueError("nothing to edit: give title, paragraph or caption")
        with self._state:
            slot = self._slot_of_key(str(key))
            if slot is None:
                raise KeyError(key)
            base = self._draft(slot).article
            old = self._edits.get(base.key, _Edit())
            new_title = old.title
            if title is not None:
                if not clean_text(title):
                    raise ValueError("an edited title needs text")
                new_title = title
            paragraphs = dict(old.paragraphs)
            if paragraph is not None:
                page, number, text = paragraph
                if not 1 <= page <= base.page_count:
                    raise ValueError(f"article {base.key} has no page {page}")
                count = len(base.pages[page - 1])
                if not -count <= number < count:
                    raise IndexError(f"page {page} of article {base.key} has {count} paragraphs")
                if not clean_text(text):
                    raise ValueError("an edited paragraph needs text")
                paragraphs[(page, number % count)] = text
            captions = dict(old.captions)
            if caption is not None:
                position, shown = caption
                if not 1 <= position <= len(base.images):
                    raise IndexError(f"article {base.key} has {len(base.images)} images")
                captions[position] = shown if shown is not None and clean_text(shown) else None
            at = self._tick()
            self._edits[base.key] = _Edit(
                title=new_title,
                paragraphs=tuple(sorted(paragraphs.items())),
                captions=tuple(sorted(captions.items())),
                revision=old.revision + 1,
                at=at,
                title_at=at if title is not None else old.title_at,
            )

    def edit_article(self, index_or_key: int | str) -> ExpectedArticle:
        """A small deterministic edit: one sentence appended to the first paragraph of page 1.

        ``index_or_key``: an ``int`` is an index (0 = newest), a ``str`` an article key. Returns the
        article's new ExpectedArticle; ValueError (nothing edited) when page 1 cannot be fetched.
        """
        with self._state:
            if isinstance(index_or_key, str):
                index = self.index_of(index_or_key)
            else:
                index = self._slot(index_or_key) + self._published
            slot = index - self._published
            key = self._head(slot).key
            if self.expected_article(index) is None:
                raise ValueError(f"article {key} is not expected: its page 1 cannot be fetched")
            first = self._draft_of(slot).article.pages[0][0]
            old = self._edits.get(key)
            revision = old.revision if old is not None else 0
            sentence = Writer(random.Random(f"{self.seed}:{key}:revision:{revision}")).sentence()
            self.edit(key, paragraph=(1, 0, f"{first} {sentence}"))
            item = self.expected_article(index)
            assert item is not None
            return item

    def edits(self) -> dict[str, tuple[str | None, int]]:
        """Edited article keys -> (edited title or None, number of edits)."""
        with self._state:
            return {key: (e.title, e.revision) for key, e in self._edits.items()}

    def publish(self, n: int = 1) -> list[str]:
        """Publish ``n`` new articles: they take the top of the listing, newest first.

        Their ids are larger and their dates later (from the day after the newest article on) than
        every article's so far; every other article keeps its key and content and moves ``n`` places
        down the listing (its index grows by ``n``). Returns the new keys, newest first, so
        ``keys[i] == site.article(i).key``. Thread-safe.
        """
        if n < 0:
            raise ValueError(f"n must not be negative, not {n}")
        with self._state:
            if len(self) + n > MAX_ARTICLES:
                raise ValueError(f"a site holds at most {MAX_ARTICLES} articles")
            if n == 0:
                return []
            first = self._published
            if first:
                newest = self._fresh_date(first - 1)
            else:
                newest = self._head(0).published_on
            self._batch_starts.append(first)
            self._batch_dates.append(newest + datetime.timedelta(days=1))
            self._published = first + n
            # Every listing page changes (the items shift): they are modified after the newest.
            self._published_at = self._tick(_published_at(self._head(-first - n)))
            return [self._head(-1 - j).key for j in range(first + n - 1, first - 1, -1)]

    def _tick(self, after: datetime.datetime | None = None) -> datetime.datetime:
        """Move the logical clock on, past ``after`` too; returns the new time."""
        base = self._now if after is None else max(self._now, after)
        self._now = base + _TICK
        return self._now

    @property
    def published(self) -> int:
        """How many articles ``publish()`` has added."""
        return self._published

    # -- listing ---------------------------------------------------------------------------

    @property
    def dup_page(self) -> int | None:
        """The listing page holding ``listed_twice``; the article shows again on top of the next.

        Until ``publish()`` is used it is that page's last item (a pagination shift).
        """
        with self._state:
            if self._dup_slot is None:
                return None
            return (self._dup_slot + self._published) // self.per_page + 1

    @property
    def listing_pages(self) -> int:
        """Number of listing pages."""
        entries = len(self) + (1 if self._dup_slot is not None else 0)
        return -(-entries // self.per_page)

    def listing_path(self, page: int) -> str:
        return self.section_path if page == 1 else f"/n_{self.node}_{page}.htm"

    def listing_entries(self, page: int) -> list[int]:
        """Indices of the articles listing page ``page`` shows, in order."""
        with self._state:
            if not 1 <= page <= self.listing_pages:
                raise IndexError(page)
            entries = len(self) + (1 if self._dup_slot is not None else 0)
            dup = dup_at = entries
            if self._dup_slot is not None:
                dup = self._dup_slot + self._published
                dup_at = min((dup // self.per_page + 1) * self.per_page, entries - 1)
            start = (page - 1) * self.per_page
            return [
                j if j < dup_at else dup if j == dup_at else j - 1
                for j in range(start, min(start + self.per_page, entries))
            ]

    # -- faults and robots -----------------------------------------------------------------

    def _install_faults(self, roles: Mapping[str, int]) -> None:
        def paths(role: str) -> list[str]:
            head = self._head(roles[role])
            return [head.path(p) for p in range(1, head.page_count + 1)]

        if "not_found" in roles:
            self.faults[paths("not_found")[0]] = Fault.NOT_FOUND
        if "flaky" in roles:
            self.faults[paths("flaky")[0]] = Fault.FLAKY
        if "broken_page" in roles:
            self.faults[paths("broken_page")[1]] = Fault.BROKEN
        for role, fault in (
            ("gbk", Fault.GBK),
            ("meta_charset", Fault.META_CHARSET_ONLY),
            ("malformed", Fault.MALFORMED),
        ):
            if role in roles:
                for path in paths(role):
                    self.faults[path] = fault

    def _reset_hits(self, path: str) -> None:
        with self._lock:
            self._hits.pop(path, None)

    def robots_txt(self) -> str:
        lines = [
            "# Replica of the Tianjin Updates site",
            "User-agent: BadBot",
            "Disallow: /",
            "",
            "User-agent: *",
        ]
        lines += [f"Disallow: {p}" for p in self.disallowed_paths]
        return "\n".join(lines) + "\n"

    def allowed(self, path: str) -> bool:
        """False when robots.txt disallows ``path`` for every crawler."""
        return not any(path.startswith(p) for p in self.disallowed_paths)

    def fetchable(self, path: str) -> bool:
        """True when a polite crawl with retries can get ``path``'s content.

        A fault loses the page when ``fault.lost(retry_times, download_timeout, max_size)`` (the
        site's attributes); a meta refresh keeps it when its target is the same article page
        (``mirror_path``) and that one is fetchable.
        """
        return self._fetchable(path, 0)

    def _fetchable(self, path: str, depth: int) -> bool:
        if not self.allowed(path):
            return False
        fault = self.faults.get(path)
        if fault is None:
            return True
        if fault.kind is FaultKind.META_REFRESH:
            target = urlsplit(fault.target).path
            here = _canonical_article_path(path)
            return (
                depth < 4
                and here is not None
                and here == _canonical_article_path(target)
                and self._fetchable(target, depth + 1)
            )
        return not fault.lost(self.retry_times, self.download_timeout, self.max_size)

    @staticmethod
    def mirror_path(path: str) -> str:
        """The same article page under MIRROR_PREFIX (``/tianjin/2025-08/20/c_1117600.htm``).

        Served for every article page, with the same text (relative links are written from the
        mirror's folder and still lead to the canonical pages): the target of
        ``Fault.meta_refresh(site.mirror_path(path))``.
        """
        if _canonical_article_path(path) != path:
            raise ValueError(f"not an article page path: {path}")
        return MIRROR_PREFIX + path

    # -- the truth ---------------------------------------------------------------------------

    def expected(self) -> dict[str, ExpectedArticle]:
        """Every article a correct crawl of the whole listing stores, keyed by article key."""
        with self._state:
            out: dict[str, ExpectedArticle] = {}
            skipped: set[str] = set()
            for page in range(1, self.listing_pages + 1):
                if not self.fetchable(self.listing_path(page)):
                    continue
                for index in self.listing_entries(page):
                    slot = index - self._published
                    key = self._head(slot).key
                    if key in out or key in skipped:
                        continue
                    expected = self._expected_slot(slot)
                    if expected is None:
                        skipped.add(key)
                    else:
                        out[key] = expected
            for new, old in self._pairs:
                new_key, old_key = self._head(new).key, self._head(old).key
                if new_key in out and old_key in out:
                    out[new_key] = self._marked(out[new_key], out[old_key])
            return out

    def expected_article(self, index: int) -> ExpectedArticle | None:
        """What a correct crawl stores for article ``index``; None when its page 1 cannot be fetched."""
        with self._state:
            slot = self._slot(index)
            item = self._expected_slot(slot)
            for new, old in self._pairs:
                if item is not None and slot == new:
                    original = self._expected_slot(old)
                    if original is not None:
                        item = self._marked(item, original)
            return item

    @staticmethod
    def _marked(item: ExpectedArticle, original: ExpectedArticle) -> ExpectedArticle:
        """A re-post's truth with its mark: duplicate when title and body are the original's,
        near duplicate when the bodies' word-3-shingle Jaccard is at least NEAR_THRESHOLD."""
        if (item.title, item.body) == (original.title, original.body):
            return dataclasses.replace(item, duplicate_of=original.key)
        if shingle_jaccard(item.body, original.body) >= NEAR_THRESHOLD:
            return dataclasses.replace(item, near_duplicate_of=original.key)
        return item

    def _expected_slot(self, slot: int) -> ExpectedArticle | None:
        art = self._draft_of(slot).article
        total = art.page_count
        if not self.fetchable(art.path(1)):
            return None
        # Pages reachable from page 1 through pagers, skipping pages that can never be fetched.
        reached = {1}
        todo = [1]
        while todo:
            current = todo.pop()
            for n in pager_numbers(current, total):
                if n is not None and n not in reached and self.fetchable(art.path(n)):
                    reached.add(n)
                    todo.append(n)
        paragraphs = [p for n in sorted(reached) for p in art.pages[n - 1]]
        fetched_images = [im for im in art.images if im.page in reached]
        return ExpectedArticle(
            key=art.key,
            path=art.path(1),
            title=art.title,
            source=art.source,
            published_on=art.published_on,
            body="\n\n".join(paragraphs),
            page_count=total,
            complete=len(reached) == total,
            images=tuple(
                (pos, im.src_path, im.caption) for pos, im in enumerate(fetched_images, 1)
            ),
        )

    # -- HTTP ------------------------------------------------------------------------------

    def respond(
        self, host: str, path: str, headers: Mapping[str, str] | None = None
    ) -> ReplicaResponse:
        """Render the response to ``GET path`` sent with ``Host: host`` (pure, except the
        counters of counted faults).

        HTML pages carry ``Last-Modified`` and ``ETag`` and answer ``If-None-Match`` /
        ``If-Modified-Since`` with 304 when unchanged. ``delay``, ``reset``, ``truncated`` and
        ``stream`` of the response tell the server how to misbehave.
        """
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        parts = urlsplit(path)
        with self._state:
            response = self._respond(host or "127.0.0.1", parts.path or "/", parts.query)
        if response.stream is not None or response.reset:
            return response
        response = self._compress(response, lowered)
        if response.status == 200 and "Last-Modified" in response.headers:
            response.headers["ETag"] = _etag(response)
            # A truncating server has already failed: no conditional saves the page.
            if not response.truncated and _not_modified(response, lowered):
                kept = {
                    k: v
                    for k, v in response.headers.items()
                    if k in ("ETag", "Last-Modified", "Vary")
                }
                return ReplicaResponse(304, kept, b"", delay=response.delay)
        return response

    def _fire(self, path: str, fault: Fault) -> bool:
        """Whether a counted fault misbehaves on this request (spending one of its ``times``)."""
        with self._lock:
            hits = self._hits.get(path, 0)
            if fault.times is not None and hits >= fault.times:
                return False
            self._hits[path] = hits + 1
            return True

    def _respond(self, host: str, path: str, query: str = "") -> ReplicaResponse:
        fault = self.faults.get(path)
        kind = fault.kind if fault is not None else None
        if fault is not None:
            if kind is FaultKind.NOT_FOUND:
                return self._html(404, self._look().not_found(self._ctx(host, path)))
            if kind is FaultKind.BROKEN:
                return self._error(fault.status or 503)
            if kind is FaultKind.REDIRECT_LOOP:
                target = path if "loop=1" in query.split("&") else f"{path}?loop=1"
                return ReplicaResponse(
                    fault.status or 302,
                    {
                        "Location": f"http://{host}{target}",
                        "Content-Type": "text/html; charset=utf-8",
                    },
                    b"",
                )
        fired = (
            fault is not None
            and (kind in COUNTED_KINDS or kind is FaultKind.SLOW)
            and self._fire(path, fault)
        )
        if fired and fault is not None:
            if kind is FaultKind.FLAKY:
                return self._error(fault.status or 502)
            if kind is FaultKind.RATE_LIMITED:
                response = self._error(429)
                response.headers["Retry-After"] = str(fault.retry_after)
                return response
            if kind is FaultKind.RESET:
                return ReplicaResponse(0, reset=True)
        gbk = kind in (FaultKind.GBK, FaultKind.META_CHARSET_ONLY)
        response = self._route(
            host, path, "gbk" if gbk else "utf-8", self_link=kind is FaultKind.SELF_PAGER
        )
        if fault is None:
            return response
        if fired:
            if kind is FaultKind.TRUNCATED:
                response.truncated = True
            elif kind is FaultKind.SLOW:
                response.delay = fault.delay
            return response
        modified = response.headers.get("Last-Modified")
        html = response.status == 200 and response.headers["Content-Type"].startswith("text/html")
        if kind is FaultKind.EMPTY:
            out = ReplicaResponse(200, {"Content-Type": "text/html; charset=utf-8"}, b"")
        elif kind is FaultKind.SOFT_404:
            ctx = self._ctx(host, path, most_read=self._newest_links(host, path))
            out = self._html(200, self._look().soft_not_found(ctx))
        elif kind is FaultKind.META_REFRESH:
            out = self._html(200, _meta_refresh_page(fault.target))
        elif not html:
            return response
        elif kind is FaultKind.DRIFT:
            out = self._html(200, _drift_page(self._drift_data(path, response)))
        elif kind is FaultKind.HUGE:
            return self._huge(response, fault.size)
        elif kind is FaultKind.MALFORMED:
            out = self._html(200, malform(response.body.decode("utf-8")))
        elif gbk:
            declared = "text/html; charset=gbk" if kind is FaultKind.GBK else "text/html"
            # Characters GBK lacks (©, no-break space, combining accents) become character references.
            text = response.body.decode("utf-8")
            out = self._html(200, text, encoding="gbk", content_type=declared)
        else:
            return response
        if modified is not None:
            out.headers["Last-Modified"] = modified
        return out

    def _drift_data(self, path: str, response: ReplicaResponse) -> dict[str, Any]:
        """What the JavaScript shell of Fault.DRIFT carries: the article page's content, or the
        page's HTML for other pages."""
        canonical = _canonical_article_path(path)
        m = _ARTICLE_PATH.match(canonical) if canonical is not None else None
        slot = self._slot_of_key(m[4]) if m else None
        if m is None or slot is None:
            return {"type": "page", "path": path, "html": response.body.decode("utf-8")}
        page = int(m[5]) if m[5] else 1
        article = self._draft_of(slot).article
        return {
            "type": "article",
            "id": article.key,
            "title": article.title,
            "source": article.source,
            "published": article.published_on.isoformat(),
            "page": page,
            "pages": article.page_count,
            "paragraphs": list(article.pages[page - 1]),
            "images": [
                {"src": im.src_path, "alt": im.alt, "caption": im.caption}
                for im in article.images
                if im.page == page
            ],
        }

    @staticmethod
    def _huge(response: ReplicaResponse, size: int) -> ReplicaResponse:
        """The page with a comment before ``</body>`` that pads it to ``size`` bytes, streamed in
        64 KiB chunks (never built whole); no validators, never compressed."""
        page = response.body
        at = page.rfind(b"</body>")
        at = len(page) if at < 0 else at
        head, tail = page[:at], page[at:]
        opening, closing = b"<!-- ", b" -->\n"
        pad = max(0, size - len(page) - len(opening) - len(closing))

        def chunks() -> Iterator[bytes]:
            yield opening
            full, rest = divmod(pad, len(_PAD_CHUNK))
            for _ in range(full):
                yield _PAD_CHUNK
            if rest:
                yield _PAD_CHUNK[:rest]
            yield closing + tail

        return ReplicaResponse(
            200,
            {"Content-Type": response.headers["Content-Type"]},
            head,
            stream=chunks,
            stream_length=len(opening) + pad + len(closing) + len(tail),
        )

    def _look(self) -> Template:
        """The template whose look the home and listing pages take: the first one."""
        return TEMPLATE_CLASSES[self.templates[0]]

    def _ctx(
        self,
        host: str,
        path: str,
        charset: str = "utf-8",
        most_read: Iterable[Link] = (),
        self_link: bool = False,
    ) -> Ctx:
        return Ctx(
            host=host,
            path=path,
            charset=charset,
            section_path=self.section_path,
            sections=self.sections,
            most_read=tuple(most_read),
            self_link=self_link,
        )

    def _newest_links(self, host: str, path: str) -> list[Link]:
        """The "most read" box of listing pages: the six newest articles."""
        return [self._link(host, i - self._published, path, 0) for i in range(min(6, len(self)))]

    # -- Last-Modified -----------------------------------------------------------------------

    def _article_modified(self, slot: int) -> datetime.datetime:
        """An article page's Last-Modified: its publication, its last edit (every page of it),
        or a title edit of an article its "most read" box shows, whichever came last."""
        head = self._head(slot)
        stamps = [_published_at(head)]
        edit = self._edits.get(head.key)
        if edit is not None and edit.at is not None:
            stamps.append(edit.at)
        for k in range(1, 7):
            other = self._edits.get(self._head(self._wrap(slot + k)).key)
            if other is not None and other.title_at is not None:
                stamps.append(other.title_at)
        return max(stamps)

    def _listing_modified(self, indices: Iterable[int]) -> datetime.datetime:
        """Last-Modified of a page listing the articles ``indices``: the last publish (which
        shifts every listing page) or the publication or title edit of an article it shows."""
        stamps = [self._published_at] if self._published_at is not None else []
        for index in indices:
            head = self._head(index - self._published)
            stamps.append(_published_at(head))
            edit = self._edits.get(head.key)
            if edit is not None and edit.title_at is not None:
                stamps.append(edit.title_at)
        return max(stamps, default=self._epoch)

    @staticmethod
    def _dated(response: ReplicaResponse, moment: datetime.datetime) -> ReplicaResponse:
        response.headers["Last-Modified"] = _http_date(moment)
        return response

    def _route(
        self, host: str, path: str, charset: str, self_link: bool = False
    ) -> ReplicaResponse:
        if path in ("/", "/index.htm", "/index.html"):
            shown = range(min(5, len(self)))
            featured = [self._link(host, i - self._published, "/", 2 * (i % 2)) for i in shown]
            html = self._look().home(self._ctx(host, path, charset), featured)
            return self._dated(self._html(200, html), self._listing_modified(shown))
        if path == "/robots.txt":
            return ReplicaResponse(
                200, {"Content-Type": "text/plain; charset=utf-8"}, self.robots_txt().encode()
            )
        if _IMAGE_PATH.match(path):
            return ReplicaResponse(200, {"Content-Type": "image/jpeg"}, _JPEG)
        canonical = _canonical_article_path(path)
        m = _ARTICLE_PATH.match(canonical) if canonical is not None else None
        if m:
            slot = self._slot_of_key(m[4])
            if slot is not None:
                head = self._head(slot)
                page = int(m[5]) if m[5] else 1
                if 1 <= page <= head.page_count and head.path(page) == canonical:
                    most_read = [
                        self._link(host, self._wrap(slot + k), path, k % 2 * 2) for k in range(1, 7)
                    ]
                    most_read = [link for link in most_read if link.href != canonical]
                    ctx = self._ctx(host, path, charset, most_read, self_link)
                    html = TEMPLATE_CLASSES[head.template].article(ctx, self._draft_of(slot), page)
                    return self._dated(self._html(200, html), self._article_modified(slot))
        m = _LISTING_PATH.match(path)
        if m:
            page = int(m[2]) if m[2] else 1
            if m[1] == self.node and (m[2] is None or 2 <= page <= self.listing_pages):
                return self._listing(host, path, page, charset)
            if m[1] == self.node and page == 1:
                return ReplicaResponse(
                    301,
                    {
                        "Location": f"http://{host}{self.section_path}",
                        "Content-Type": "text/html; charset=utf-8",
                    },
                    b"",
                )
            if path in self._other_sections:
                ctx = self._ctx(host, path, charset)
                html = self._look().listing(ctx, self._other_sections[path], 1, 1, [])
                return self._dated(self._html(200, html), self._epoch)
        return self._html(404, self._look().not_found(self._ctx(host, path, charset)))

    def _listing(self, host: str, path: str, page: int, charset: str) -> ReplicaResponse:
        items = []
        entries = self.listing_entries(page)
        for j, index in enumerate(entries):
            position = (page - 1) * self.per_page + j
            slot = index - self._published
            if slot == self._alias_slot:
                port = host.rsplit(":", 1)[1] if ":" in host else ""
                netloc = f"{self.alias_host}:{port}" if port else self.alias_host
                head = self._head_of(slot)
                items.append(
                    Link(
                        self._title_html(head),
                        f"http://{netloc}{head.path()}",
                        head.published_on.isoformat(),
                        thumb=False,
                    )
                )
            else:
                # Hrefs of every form a browser resolves: root-relative, relative, absolute, scheme-relative.
                items.append(self._link(host, slot, path, (position * 7 + self.seed) % 10))
        ctx = self._ctx(host, path, charset, self._newest_links(host, path))
        html = self._look().listing(ctx, "Tianjin Updates", page, self.listing_pages, items)
        shown = [*entries, *range(min(6, len(self)))]
        return self._dated(self._html(200, html), self._listing_modified(shown))

    def _title_html(self, head: Head) -> str:
        if len(head.title) > 72:
            # Listings cut long titles; the article page has the whole one.
            return escape(head.title[:68].rstrip()) + "..."
        return head.title_html

    def _link(self, host: str, slot: int, from_path: str, style: int) -> Link:
        head = self._head_of(slot)
        path = head.path()
        if style <= 4:
            href = path
        elif style <= 6:
            href = path.lstrip("/") if from_path.count("/") == 1 else path
        elif style <= 8:
            href = f"http://{host}{path}"
        else:
            href = f"//{host}{path}"
        return Link(self._title_html(head), href, head.published_on.isoformat())

    @staticmethod
    def _error(status: int) -> ReplicaResponse:
        reason = {
            429: "Too Many Requests",
            500: "Internal Server Error",
            502: "Bad Gateway",
            503: "Service Unavailable",
            504: "Gateway Timeout",
        }
        body = (
            f"<html><body><h1>{status} {reason.get(status, 'Error')}</h1></body></html>\n".encode()
        )
        return ReplicaResponse(status, {"Content-Type": "text/html; charset=utf-8"}, body)

    @staticmethod
    def _html(
        status: int,
        text: str,
        encoding: str = "utf-8",
        content_type: str | None = None,
    ) -> ReplicaResponse:
        body = text.encode(encoding, "xmlcharrefreplace")
        out = {"Content-Type": content_type or f"text/html; charset={encoding}"}
        return ReplicaResponse(status, out, body)

    @staticmethod
    def _compress(response: ReplicaResponse, headers: Mapping[str, str]) -> ReplicaResponse:
        # gzip like the real servers when asked; mtime=0 keeps the bytes deterministic.
        kind = response.headers.get("Content-Type", "")
        if (
            "gzip" in headers.get("accept-encoding", "")
            and kind.startswith("text/")
            and len(response.body) > 1024
        ):
            response.body = gzip.compress(response.body, mtime=0)
            response.headers["Content-Encoding"] = "gzip"
            response.headers["Vary"] = "Accept-Encoding"
        return response
