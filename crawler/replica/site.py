"""The replica of the Tianjin Updates site: routing, listings, faults, robots.txt and the expected crawl.

Rules:

* listing page k shows entries ``(k-1)*per_page .. k*per_page-1`` of the listing sequence, which
  is the articles newest first with one article repeated: the last item of listing page
  ``dup_page`` is shown again as the first item of page ``dup_page + 1`` (a pagination shift);
* exactly one listing entry links through the second host (``alias_host``), absolute;
* special articles ("roles": faults, the 16-page article, the duplicate, the alias link, the
  robots.txt exclusion) are distinct articles among the 40 newest, chosen from the seed;
* ``expected()`` follows the current ``faults`` and ``disallowed_paths``, so a test that switches
  a fault gets a truth that matches.
"""

from __future__ import annotations

import datetime
import functools
import gzip
import random
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from .generate import DEFAULT_TEMPLATES, TEMPLATES, Draft, Head, Layout
from .markup import escape, malform, pager_numbers
from .model import ExpectedArticle, Fault, FaultKind, ReplicaArticle, ReplicaResponse
from .templates import TEMPLATE_CLASSES, Ctx, Link, Template

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

_ARTICLE_PATH = re.compile(r"^/(\d{4})-(\d{2})/(\d{2})/c_(\d+)(?:_(\d+))?\.htm$")
_LISTING_PATH = re.compile(r"^/n_(\d+)(?:_(\d+))?\.htm$")
_IMAGE_PATH = re.compile(r"^/(?:att/\d{8}/\d{19}\.jpeg|images/[\w.-]+\.(?:jpg|png))$")


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
        self.dup_page: int | None = None
        dup_index: int | None = None
        if articles // per_page >= 1:
            self.dup_page = 1 + rng.randrange(min(2, articles // per_page))
            dup_index = self.dup_page * per_page - 1

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
        self._layout = Layout(
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
        self._head = functools.lru_cache(maxsize=8192)(self._layout.head)
        self._draft = functools.lru_cache(maxsize=256)(self._make_draft)
        self._alias_index = roles.get("alias_host")

        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self.faults: dict[str, Fault] = _FaultMap(self._reset_hits)
        kept = {name: i for name, i in roles.items() if faults or name not in FAULT_ROLES}
        self.fault_keys: dict[str, str] = {
            name: self._head(i).key for name, i in sorted(kept.items())
        }
        """Role name -> article key: "not_found", "flaky", "broken_page", "gbk", "meta_charset",
        "malformed" (faults only), "sixteen_pages", "listed_twice", "alias_host", "robots_disallowed"."""
        if faults:
            self._install_faults(roles)

        disallowed = ["/search/"]
        if "robots_disallowed" in roles:
            disallowed.append(self._head(roles["robots_disallowed"]).path(1))
        self.disallowed_paths: tuple[str, ...] = tuple(disallowed)

    # -- articles --------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[ReplicaArticle]:
        return (self.article(i) for i in range(self._size))

    def article(self, index: int) -> ReplicaArticle:
        """Article ``index`` (0 = newest; negative counts from the oldest)."""
        return self._draft(self._index(index)).article

    def article_by_key(self, key: str) -> ReplicaArticle:
        return self.article(self.index_of(key))

    def index_of(self, key: str) -> int:
        """The index of the article with id ``key``; KeyError when there is none."""
        index = self._layout.index_of(str(key))
        if index is None:
            raise KeyError(key)
        return index

    def head(self, index: int) -> Head:
        """The cheap facts of article ``index`` (key, date, title, page count, template)."""
        return self._head(self._index(index))

    def _index(self, index: int) -> int:
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError(f"article index {index} out of range (site has {self._size})")
        return index

    def _make_draft(self, index: int) -> Draft:
        links = (self._head((index + 7) % self._size).path(), self.section_path)
        return self._layout.draft(index, links)

    # -- listing ---------------------------------------------------------------------------

    @property
    def listing_pages(self) -> int:
        """Number of listing pages."""
        entries = self._size + (1 if self.dup_page else 0)
        return -(-entries // self.per_page)

    def listing_path(self, page: int) -> str:
        return self.section_path if page == 1 else f"/n_{self.node}_{page}.htm"

    def listing_entries(self, page: int) -> list[int]:
        """Indices of the articles listing page ``page`` shows, in order."""
        if not 1 <= page <= self.listing_pages:
            raise IndexError(page)
        entries = self._size + (1 if self.dup_page else 0)
        dup_at = self.dup_page * self.per_page if self.dup_page else entries
        start = (page - 1) * self.per_page
        return [
            j if j < dup_at else j - 1 for j in range(start, min(start + self.per_page, entries))
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
        """True when a polite crawl with retries can get ``path``'s content."""
        fault = self.faults.get(path)
        return self.allowed(path) and not (fault is not None and fault.permanent)

    # -- the truth ---------------------------------------------------------------------------

    def expected(self) -> dict[str, ExpectedArticle]:
        """Every article a correct crawl of the whole listing stores, keyed by article key."""
        out: dict[str, ExpectedArticle] = {}
        skipped: set[str] = set()
        for page in range(1, self.listing_pages + 1):
            if not self.fetchable(self.listing_path(page)):
                continue
            for index in self.listing_entries(page):
                key = self._head(index).key
                if key in out or key in skipped:
                    continue
                expected = self.expected_article(index)
                if expected is None:
                    skipped.add(key)
                else:
                    out[key] = expected
        return out

    def expected_article(self, index: int) -> ExpectedArticle | None:
        """What a correct crawl stores for article ``index``; None when its page 1 cannot be fetched."""
        draft = self._draft(self._index(index))
        art = draft.article
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
        """Render the response to ``GET path`` sent with ``Host: host`` (pure, except FLAKY counters)."""
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        return self._compress(
            self._respond(host or "127.0.0.1", urlsplit(path).path or "/"), lowered
        )

    def _respond(self, host: str, path: str) -> ReplicaResponse:
        fault = self.faults.get(path)
        if fault is not None:
            if fault.kind is FaultKind.NOT_FOUND:
                return self._html(404, self._look().not_found(self._ctx(host, path)))
            if fault.kind is FaultKind.BROKEN:
                return self._error(fault.status or 503)
            if fault.kind is FaultKind.FLAKY:
                with self._lock:
                    hits = self._hits.get(path, 0)
                    if hits < fault.times:
                        self._hits[path] = hits + 1
                        return self._error(fault.status or 502)
        gbk = fault is not None and fault.kind in (FaultKind.GBK, FaultKind.META_CHARSET_ONLY)
        response = self._route(host, path, "gbk" if gbk else "utf-8")
        if (
            fault is None
            or response.status != 200
            or not response.headers["Content-Type"].startswith("text/html")
        ):
            return response
        text = response.body.decode("utf-8")
        if fault.kind is FaultKind.MALFORMED:
            return self._html(200, malform(text))
        if gbk:
            declared = "text/html; charset=gbk" if fault.kind is FaultKind.GBK else "text/html"
            # Characters GBK lacks (©, no-break space, combining accents) become character references.
            return self._html(200, text, encoding="gbk", content_type=declared)
        return response

    def _look(self) -> Template:
        """The template whose look the home and listing pages take: the first one."""
        return TEMPLATE_CLASSES[self.templates[0]]

    def _ctx(
        self, host: str, path: str, charset: str = "utf-8", most_read: Iterable[Link] = ()
    ) -> Ctx:
        return Ctx(
            host=host,
            path=path,
            charset=charset,
            section_path=self.section_path,
            sections=self.sections,
            most_read=tuple(most_read),
        )

    def _route(self, host: str, path: str, charset: str) -> ReplicaResponse:
        if path in ("/", "/index.htm", "/index.html"):
            featured = [self._link(host, i, "/", 2 * (i % 2)) for i in range(min(5, self._size))]
            return self._html(200, self._look().home(self._ctx(host, path, charset), featured))
        if path == "/robots.txt":
            return ReplicaResponse(
                200, {"Content-Type": "text/plain; charset=utf-8"}, self.robots_txt().encode()
            )
        if _IMAGE_PATH.match(path):
            return ReplicaResponse(200, {"Content-Type": "image/jpeg"}, _JPEG)
        m = _ARTICLE_PATH.match(path)
        if m:
            index = self._layout.index_of(m[4])
            if index is not None:
                head = self._head(index)
                page = int(m[5]) if m[5] else 1
                if 1 <= page <= head.page_count and head.path(page) == path:
                    most_read = [
                        self._link(host, (index + k) % self._size, path, k % 2 * 2)
                        for k in range(1, 7)
                    ]
                    most_read = [link for link in most_read if link.href != path]
                    ctx = self._ctx(host, path, charset, most_read)
                    html = TEMPLATE_CLASSES[head.template].article(ctx, self._draft(index), page)
                    return self._html(200, html)
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
                return self._html(200, html)
        return self._html(404, self._look().not_found(self._ctx(host, path, charset)))

    def _listing(self, host: str, path: str, page: int, charset: str) -> ReplicaResponse:
        items = []
        for j, index in enumerate(self.listing_entries(page)):
            position = (page - 1) * self.per_page + j
            if index == self._alias_index:
                port = host.rsplit(":", 1)[1] if ":" in host else ""
                netloc = f"{self.alias_host}:{port}" if port else self.alias_host
                head = self._head(index)
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
                items.append(self._link(host, index, path, (position * 7 + self.seed) % 10))
        most_read = [self._link(host, i, path, 0) for i in range(min(6, self._size))]
        ctx = self._ctx(host, path, charset, most_read)
        html = self._look().listing(ctx, "Tianjin Updates", page, self.listing_pages, items)
        return self._html(200, html)

    def _title_html(self, head: Head) -> str:
        if len(head.title) > 72:
            # Listings cut long titles; the article page has the whole one.
            return escape(head.title[:68].rstrip()) + "..."
        return head.title_html

    def _link(self, host: str, index: int, from_path: str, style: int) -> Link:
        head = self._head(index)
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
