"""The replica's page templates: the same text order in five unrelated markups.

Every article page shows, in text order: the column header "Tianjin Updates", the title, an
optional source, ``Updated: <date>``, the body (paragraphs, images, captions, file-name lines),
the pager (multi-page articles only) and the footer. Navigation and link lists sit before the
column header or after the body, never between the date line and the end of the body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .generate import Draft, Head, Para, Picture
from .markup import attr, escape, pager_numbers, relative

COLUMN = "Tianjin Updates"
ICP = "京ICP备13028878号-35"
BORDER = ' border="0"'
LAZY = ' loading="lazy"'
SOFT_404_TEXT = "Sorry, the page you requested was not found."


@dataclass(frozen=True)
class Link:
    """A link the site decided on: its inner HTML, its href as written, a date to show."""

    html: str
    href: str
    date: str = ""
    thumb: bool = True
    """Whether a look that shows thumbnails may add one (a second link to the same article)."""


@dataclass(frozen=True)
class Ctx:
    """Request-level facts a template needs: who asked (for absolute URLs) and the site's menu."""

    host: str
    """The Host header (``127.0.0.1:8080``)."""
    path: str
    """Path of the page being rendered."""
    charset: str
    """Charset label to declare in the page."""
    section_path: str
    sections: tuple[tuple[str, str], ...]
    """Navigation entries: (label HTML, path)."""
    most_read: tuple[Link, ...] = ()
    self_link: bool = False
    """Whether an article pager links the current page to itself too (Fault.SELF_PAGER)."""

    def absolute(self, path: str) -> str:
        return f"http://{self.host}{path}"


def _copyright(head_stop: bool, style: int) -> str:
    # Two spaces after the sign, as on the real pages; written three ways.
    sign = ("©  ", "&copy;&nbsp; ", "&#169;&nbsp;&nbsp;")[style % 3]
    stop = "." if head_stop else ""
    return f"Copyright {sign}Tianjin Municipal Government. All rights reserved. Presented by China Daily{stop}"


def _icp(style: int) -> str:
    if style % 2:
        return f'<a href="https://beian.miit.gov.cn/" target="_blank">{ICP}</a>'
    return ICP


def _page_href(ctx: Ctx, head: Head, page: int, style: str) -> str:
    path = head.path(page)
    if style == "relative":
        return relative(ctx.path, path)
    if style == "absolute":
        return ctx.absolute(path)
    return path


def _src(ctx: Ctx, picture: Picture) -> str:
    path = picture.image.src_path
    if picture.href == 1:
        return relative(ctx.path, path)
    if picture.href == 2:
        return ctx.absolute(path)
    return path


def _date_line(head: Head, with_time: bool) -> str:
    return f"Updated: {head.published_on.isoformat()}" + (f" {head.time}" if with_time else "")


def _img(ctx: Ctx, picture: Picture, extra: str = "") -> str:
    return f'<img src="{attr(_src(ctx, picture))}" alt="{picture.image.alt}"{extra} />'


class Template:
    """Base of the templates: subclasses render a home page, a listing page and an article page."""

    name = ""

    def article(self, ctx: Ctx, draft: Draft, page: int) -> str:
        raise NotImplementedError

    def listing(self, ctx: Ctx, title: str, page: int, total: int, items: Sequence[Link]) -> str:
        raise NotImplementedError

    def home(self, ctx: Ctx, featured: Sequence[Link]) -> str:
        raise NotImplementedError

    def not_found(self, ctx: Ctx) -> str:
        return (
            f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={ctx.charset}">'
            "<title>404 Not Found</title></head><body><h1>Not Found</h1>"
            "<p>The requested page could not be found.</p></body></html>\n"
        )

    def soft_not_found(self, ctx: Ctx) -> str:
        """A 200 page in the site's chrome (menu, sidebar, footer) that only says the page was
        not found: no article, no date line (Fault.SOFT_404)."""
        return self.listing(ctx, SOFT_404_TEXT, 1, 1, [])

    # Listing URLs keep the CMS shape whatever the look: n_<node>.htm, n_<node>_<k>.htm.
    @staticmethod
    def listing_path(ctx: Ctx, page: int) -> str:
        base = ctx.section_path[: -len(".htm")]
        return ctx.section_path if page == 1 else f"{base}_{page}.htm"


class CmsTemplate(Template):
    """The guessed regional-CMS markup: ``div.lis_box h3 a``, ``h1``, ``div.art_cont``."""

    name = "cms"

    def _top(self, ctx: Ctx, title: str) -> str:
        nav = "".join(f'<li><a href="{p}">{label}</a></li>' for label, p in ctx.sections)
        return (
            '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
            '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
            '<html xmlns="http://www.w3.org/1999/xhtml">\n<head>\n'
            f'<meta http-equiv="Content-Type" content="text/html; charset={ctx.charset}" />\n'
            f"<title>{title}</title>\n"
            '<link href="/css/style.css" rel="stylesheet" type="text/css" />\n</head>\n<body>\n'
            '<div class="top"><div class="logo"><a href="/"><img src="/images/logo.png" alt="Exploring Tianjin" /></a></div>\n'
            f'<div class="nav"><ul>{nav}</ul></div></div>\n'
        )

    def _side(self, ctx: Ctx) -> str:
        items = "".join(
            f'<li><a href="{attr(link.href)}">{link.html}</a></li>' for link in ctx.most_read
        )
        return (
            f'<div class="main_r"><div class="hot"><h3>Most Read</h3><ul>{items}</ul></div></div>\n'
        )

    def _foot(self, stop: bool, style: int) -> str:
        return f'<div class="footer"><p>{_copyright(stop, style)}</p><p>{_icp(style)}</p></div>\n</body>\n</html>\n'

    def article(self, ctx: Ctx, draft: Draft, page: int) -> str:
        head = draft.head
        out = [self._top(ctx, f"{escape(head.title)} - {COLUMN}")]
        out.append('<div class="main">\n<div class="main_l">\n')
        out.append(f'<div class="lm_name"><a href="{ctx.section_path}">{COLUMN}</a></div>\n')
        out.append(f'<div class="art_tit"><h1>{head.title_html}</h1></div>\n<div class="art_info">')
        if head.source_html is not None:
            out.append(f'<span class="art_source">({head.source_html})</span>&nbsp;&nbsp;')
        out.append(
            f'<span class="art_time">{_date_line(head, False)}</span></div>\n<div class="art_cont">\n'
        )
        for block in draft.pages[page - 1]:
            if isinstance(block, Para):
                indent = ' style="text-indent: 2em;"' if block.style < 3 else ""
                out.append(f"<p{indent}>{block.html}</p>\n")
            else:
                out.append(f'<p style="text-align: center;">{_img(ctx, block, BORDER)}</p>\n')
                if block.name_line:
                    out.append(f'<p style="text-align: center;">{block.image.alt}</p>\n')
                if block.caption_html is not None:
                    out.append(
                        f'<p style="text-align: center;"><span style="color: #666;">{block.caption_html}</span></p>\n'
                    )
        out.append("</div>\n")
        if head.page_count > 1:
            out.append('<div class="page" id="autopage"><center>')
            if page > 1:
                out.append(
                    f'<a class="prev" href="{_page_href(ctx, head, page - 1, "relative")}">&lt;</a> '
                )
            for n in pager_numbers(page, head.page_count):
                if n is None:
                    out.append("<span>...</span> ")
                elif n == page and not ctx.self_link:
                    out.append(f'<span class="cur">{n}</span> ')
                else:
                    out.append(f'<a href="{_page_href(ctx, head, n, "relative")}">{n}</a> ')
            if page < head.page_count:
                out.append(
                    f'<a class="next" href="{_page_href(ctx, head, page + 1, "relative")}">&gt;</a>'
                )
            out.append("</center></div>\n")
        out.append("</div>\n")
        out.append(self._side(ctx))
        out.append("</div>\n")
        out.append(self._foot(head.footer_stop, head.style))
        return "".join(out)

    def listing(self, ctx: Ctx, title: str, page: int, total: int, items: Sequence[Link]) -> str:
        out = [self._top(ctx, f"{title} - Exploring Tianjin")]
        out.append(
            f'<div class="main">\n<div class="main_l">\n<div class="lm_name">{title}</div>\n<div class="lis">\n'
        )
        for link in items:
            out.append(
                f'<div class="lis_box"><h3><a href="{attr(link.href)}" target="_blank">{link.html}</a></h3>'
                f'<p class="date">{link.date}</p></div>\n'
            )
        out.append("</div>\n")
        if total > 1:
            out.append('<div class="page">')
            if page > 1:
                out.append(f'<a href="{self.listing_path(ctx, 1)}">First</a> ')
                out.append(
                    f'<a href="{relative(ctx.path, self.listing_path(ctx, page - 1))}">Prev</a> '
                )
            for n in pager_numbers(page, total, window=3):
                if n is None:
                    out.append("... ")
                elif n == page:
                    out.append(f'<span class="cur">{n}</span> ')
                else:
                    out.append(
                        f'<a href="{relative(ctx.path, self.listing_path(ctx, n))}">{n}</a> '
                    )
            if page < total:
                out.append(
                    f'<a href="{relative(ctx.path, self.listing_path(ctx, page + 1))}">Next</a> '
                )
                out.append(f'<a href="{self.listing_path(ctx, total)}">Last</a>')
            out.append("</div>\n")
        out.append("</div>\n")
        out.append(self._side(ctx))
        out.append("</div>\n")
        out.append(self._foot(True, 0))
        return "".join(out)

    def home(self, ctx: Ctx, featured: Sequence[Link]) -> str:
        out = [self._top(ctx, "Exploring Tianjin")]
        out.append('<div class="main">\n<div class="focus"><ul>')
        for link in featured:
            out.append(f'<li><a href="{attr(link.href)}">{link.html}</a></li>')
        out.append(
            f'</ul><a class="more" href="{ctx.section_path}">More &gt;&gt;</a></div>\n</div>\n'
        )
        out.append(self._foot(True, 1))
        return "".join(out)


class ChinadailyTemplate(Template):
    """After chinadaily.com.cn: ``#lft-art > h1``, ``span.info_l``, ``#Content > p``, ``#div_currpage``."""

    name = "chinadaily"

    def _top(self, ctx: Ctx, title: str) -> str:
        nav = " ".join(f'<a href="{p}" target="_top">{label}</a>' for label, p in ctx.sections)
        return (
            '<!doctype html>\n<html lang="en">\n<head>\n'
            f'<meta charset="{ctx.charset}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{title}</title>\n"
            '<script src="/js/share.js"></script>\n</head>\n<body>\n'
            f'<div class="topBar"><div class="topNav">{nav}</div></div>\n'
        )

    def _side(self, ctx: Ctx) -> str:
        items = "".join(
            f'<li><a href="{attr(link.href)}" target="_blank">{link.html}</a></li>'
            for link in ctx.most_read
        )
        return (
            '<div class="rt_art"><div class="mb10"><div class="tt2"><span>Most Popular</span></div>'
            f'<ul class="lisBox">{items}</ul></div></div>\n'
        )

    def _foot(self, stop: bool, style: int) -> str:
        return (
            f'<div class="dibu"><div class="dibu-box"><p>{_copyright(stop, style)}</p>'
            f"<p>{_icp(style)}</p></div></div>\n</body>\n</html>\n"
        )

    def _crumb(self, ctx: Ctx) -> str:
        return f'<div class="da-bre"><a href="/">Home</a>&nbsp;/&nbsp;<a href="{ctx.section_path}">{COLUMN}</a></div>\n'

    def article(self, ctx: Ctx, draft: Draft, page: int) -> str:
        head = draft.head
        out = [
            self._top(ctx, f"{escape(head.title)} - Chinadaily.com.cn"),
            '<div class="main_art">\n',
            self._crumb(ctx),
        ]
        out.append(f'<div id="lft-art" class="lft_art">\n<h1>{head.title_html}</h1>\n')
        parts = []
        if head.byline:
            parts.append(head.byline)
        if head.source_html is not None:
            parts.append(head.source_html)
        parts.append(_date_line(head, True))
        sep = (" | ", "&nbsp;|&nbsp;", " |  ")[head.style % 3]
        out.append(
            f'<div class="info"><span class="info_l">{sep.join(parts)}</span>'
            '<span class="info_r"><a class="wx" title="WeChat" href="javascript:void(0)"></a>'
            '<a class="wb" title="Weibo" href="javascript:void(0)"></a></span></div>\n<div id="Content">\n'
        )
        for block in draft.pages[page - 1]:
            if isinstance(block, Para):
                out.append(f"<p>{block.html}</p>\n")
            elif block.caption_html is not None:
                out.append(
                    f'<figure class="image" style="display: table;">{_img(ctx, block)}'
                    f'<figcaption style="display: table-caption; caption-side: bottom;">{block.caption_html}</figcaption></figure>\n'
                )
            else:
                out.append(f'<p style="text-align:center">{_img(ctx, block)}</p>\n')
                if block.name_line:
                    out.append(f"<p>{block.image.alt}</p>\n")
        out.append("</div>\n")
        if head.page_count > 1:
            out.append('<div id="div_currpage">')
            if page > 1:
                out.append(
                    f'<a href="{_page_href(ctx, head, page - 1, "absolute")}" class="pagestyle">&lt;</a>&nbsp;'
                )
            for n in pager_numbers(page, head.page_count):
                if n is None:
                    out.append("<span>...</span>&nbsp;")
                elif n == page and not ctx.self_link:
                    out.append(f"<span>{n}</span>&nbsp;")
                else:
                    out.append(f'<a href="{_page_href(ctx, head, n, "absolute")}">{n}</a>&nbsp;')
            if page < head.page_count:
                out.append(
                    f'<a href="{_page_href(ctx, head, page + 1, "absolute")}" class="pagestyle">&gt;</a>'
                )
            out.append("</div>\n")
        out.append("</div>\n")
        out.append(self._side(ctx))
        out.append("</div>\n")
        out.append(self._foot(head.footer_stop, head.style))
        return "".join(out)

    def listing(self, ctx: Ctx, title: str, page: int, total: int, items: Sequence[Link]) -> str:
        out = [self._top(ctx, f"{title} - Chinadaily.com.cn"), '<div class="main_art">\n']
        out.append(f'<div class="lft_art"><div class="tw3_01_title">{title}</div>\n')
        for i, link in enumerate(items):
            thumb = ""
            if i % 3 == 0 and link.thumb:
                # A thumbnail linking to the same article: one item, two links.
                thumb = f'<span class="tw3_01_2_p"><a href="{attr(link.href)}" target="_blank"><img src="/images/thumb.jpg" alt="" /></a></span>'
            out.append(
                f'<div class="tw3_01_2">{thumb}<span class="tw3_01_2_t"><h4><a href="{attr(link.href)}" '
                f'target="_blank">{link.html}</a></h4><b>{link.date}</b></span></div>\n'
            )
        if total > 1:
            out.append('<div id="div_currpage">')
            if page > 1:
                out.append(
                    f'<a href="{self.listing_path(ctx, page - 1)}" class="pagestyle">Previous</a> '
                )
            for n in pager_numbers(page, total, window=3):
                if n is None:
                    out.append("<span>...</span> ")
                elif n == page:
                    out.append(f"<span>{n}</span> ")
                else:
                    out.append(f'<a href="{self.listing_path(ctx, n)}">{n}</a> ')
            if page < total:
                out.append(
                    f'<a href="{self.listing_path(ctx, page + 1)}" class="pagestyle">Next</a>'
                )
            out.append("</div>\n")
        out.append("</div>\n")
        out.append(self._side(ctx))
        out.append("</div>\n")
        out.append(self._foot(True, 0))
        return "".join(out)

    def home(self, ctx: Ctx, featured: Sequence[Link]) -> str:
        out = [
            self._top(ctx, "Tianjin - Chinadaily.com.cn"),
            '<div class="main_art"><div class="tw3_01">',
        ]
        for link in featured:
            out.append(f'<h4><a href="{attr(link.href)}">{link.html}</a></h4>')
        out.append(f'<a href="{ctx.section_path}" class="more">More</a></div></div>\n')
        out.append(self._foot(True, 1))
        return "".join(out)


class PlainTemplate(Template):
    """No telling names: anonymous nested divs and tables, no ``h1``, link lists outside the story."""

    name = "plain"

    def _top(self, ctx: Ctx, title: str) -> str:
        nav = " | ".join(f'<a href="{p}">{label}</a>' for label, p in ctx.sections)
        return (
            "<html>\n<head>\n"
            f'<meta http-equiv="content-type" content="text/html;charset={ctx.charset}">\n'
            f'<title>{title}</title>\n</head>\n<body bgcolor="#ffffff">\n'
            f'<table width="100%" cellpadding="0" cellspacing="0"><tr><td>{nav}</td></tr></table>\n'
        )

    def _most_read(self, ctx: Ctx) -> str:
        items = "<br>\n".join(
            f'<a href="{attr(link.href)}">{link.html}</a>' for link in ctx.most_read
        )
        return f"<div><div><b>Most read</b></div><div>{items}</div></div>\n"

    def _foot(self, stop: bool, style: int) -> str:
        return f"<div><p>{_copyright(stop, style)}</p><p>{_icp(style)}</p></div>\n"

    def article(self, ctx: Ctx, draft: Draft, page: int) -> str:
        head = draft.head
        before = head.style % 2 == 0
        out = [self._top(ctx, escape(head.title))]
        if before:
            out.append(self._most_read(ctx))
        out.append(f'<div>\n<div><div><font color="#aa0000">{COLUMN}</font></div></div>\n')
        if head.style % 4 < 2:
            out.append(f"<div><b>{head.title_html}</b></div>\n")
        else:
            out.append(f'<div><font size="5">{head.title_html}</font></div>\n')
        if head.source_html is not None:
            out.append(f"<div>({head.source_html})</div>\n")
        out.append(f"<div>{_date_line(head, head.style % 3 == 0)}</div>\n<div>\n")
        for block in draft.pages[page - 1]:
            if isinstance(block, Para):
                tag = "div" if block.style < 3 else "p"
                out.append(f"<{tag}>{block.html}</{tag}>\n")
            else:
                out.append(f'<p align="center">{_img(ctx, block)}</p>\n')
                if block.name_line:
                    out.append(f"<p>{block.image.alt}</p>\n")
                if block.caption_html is not None:
                    out.append(
                        f'<p align="center"><font size="2">{block.caption_html}</font></p>\n'
                    )
        out.append("</div>\n")
        if head.page_count > 1:
            items = []
            if page > 1:
                items.append(f'<a href="{_page_href(ctx, head, page - 1, "relative")}">&lt;</a>')
            for n in pager_numbers(page, head.page_count):
                if n is None:
                    items.append("...")
                elif n == page and not ctx.self_link:
                    items.append(str(n))
                else:
                    items.append(f'<a href="{_page_href(ctx, head, n, "relative")}">{n}</a>')
            if page < head.page_count:
                items.append(f'<a href="{_page_href(ctx, head, page + 1, "relative")}">&gt;</a>')
            out.append(f'<div align="center">{"&nbsp;".join(items)}</div>\n')
        out.append(self._foot(head.footer_stop, head.style))
        out.append("</div>\n")
        if not before:
            out.append(self._most_read(ctx))
        out.append("</body>\n</html>\n")
        return "".join(out)

    def listing(self, ctx: Ctx, title: str, page: int, total: int, items: Sequence[Link]) -> str:
        out = [
            self._top(ctx, title),
            f'<div><div><font color="#aa0000">{title}</font></div>\n<table>\n',
        ]
        for link in items:
            out.append(
                f'<tr><td><a href="{attr(link.href)}">{link.html}</a></td><td>[{link.date}]</td></tr>\n'
            )
        out.append("</table>\n")
        if total > 1:
            parts = []
            if page > 1:
                parts.append(
                    f'<a href="{relative(ctx.path, self.listing_path(ctx, page - 1))}">&lt;&lt;</a>'
                )
            for n in pager_numbers(page, total, window=3):
                if n is None:
                    parts.append("...")
                elif n == page:
                    parts.append(str(n))
                else:
                    parts.append(
                        f'<a href="{relative(ctx.path, self.listing_path(ctx, n))}">{n}</a>'
                    )
            if page < total:
                parts.append(
                    f'<a href="{relative(ctx.path, self.listing_path(ctx, page + 1))}">&gt;&gt;</a>'
                )
            out.append(f"<div>{' '.join(parts)}</div>\n")
        out.append(self._foot(True, 0))
        out.append("</div>\n")
        out.append(self._most_read(ctx))
        out.append("</body>\n</html>\n")
        return "".join(out)

    def home(self, ctx: Ctx, featured: Sequence[Link]) -> str:
        out = [self._top(ctx, "Exploring Tianjin"), "<div><table>"]
        for link in featured:
            out.append(f'<tr><td><a href="{attr(link.href)}">{link.html}</a></td></tr>')
        out.append(f'</table><a href="{ctx.section_path}">more</a></div>\n')
        out.append(self._foot(True, 1))
        out.append("</body>\n</html>\n")
        return "".join(out)


class Html5Template(Template):
    """Holdout: semantic HTML5 (``article``, ``header``, ``time``, ``section``) with unrelated class names."""

    name = "html5"

    def _top(self, ctx: Ctx, title: str, og: str = "") -> str:
        nav = "".join(
            f'<li><a class="menu-link" href="{p}">{label}</a></li>' for label, p in ctx.sections
        )
        og_tag = f'<meta property="og:title" content="{attr(og)}">\n' if og else ""
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n'
            f'<meta charset="{ctx.charset}">\n{og_tag}<title>{title}</title>\n</head>\n<body>\n'
            f'<header class="masthead"><a class="brand" href="/">Tianjin</a><nav class="menu"><ul>{nav}</ul></nav></header>\n'
        )

    def _aside(self, ctx: Ctx) -> str:
        items = "".join(
            f'<li><a href="{attr(link.href)}">{link.html}</a></li>' for link in ctx.most_read
        )
        return f'<aside class="rail"><h2 class="rail-title">Trending</h2><ul>{items}</ul></aside>\n'

    def _foot(self, stop: bool, style: int) -> str:
        return f'<footer class="site-foot"><p>{_copyright(stop, style)}</p><p>{_icp(style)}</p></footer>\n</body>\n</html>\n'

    def article(self, ctx: Ctx, draft: Draft, page: int) -> str:
        head = draft.head
        out = [
            self._top(ctx, f"{escape(head.title)} | Tianjin", og=head.title),
            '<main class="wrap">\n<article class="story">\n',
        ]
        out.append(
            f'<header class="story-head"><p class="kicker">{COLUMN}</p>\n<h1 class="headline">{head.title_html}</h1>\n'
        )
        if head.source_html is not None:
            out.append(f'<p class="provenance">({head.source_html})</p>\n')
        out.append(
            f'<p class="stamp"><time datetime="{head.published_on.isoformat()}T{head.time}:00+08:00">'
            f'{_date_line(head, True)}</time></p>\n</header>\n<section class="story-text">\n'
        )
        for block in draft.pages[page - 1]:
            if isinstance(block, Para):
                out.append(f"<p>{block.html}</p>\n")
            elif block.caption_html is not None:
                out.append(
                    f'<figure class="media">{_img(ctx, block, LAZY)}'
                    f'<figcaption class="credit">{block.caption_html}</figcaption></figure>\n'
                )
            else:
                out.append(f'<figure class="media">{_img(ctx, block, LAZY)}</figure>\n')
                if block.name_line:
                    out.append(f"<p>{block.image.alt}</p>\n")
        out.append("</section>\n")
        if head.page_count > 1:
            out.append('<nav class="paging" aria-label="pages"><ol>')
            if page > 1:
                out.append(
                    f'<li><a rel="prev" href="{_page_href(ctx, head, page - 1, "root")}">&lt;</a></li>\n'
                )
            for n in pager_numbers(page, head.page_count):
                if n is None:
                    out.append('<li class="gap">...</li>\n')
                elif n == page and not ctx.self_link:
                    out.append(f'<li aria-current="page">{n}</li>\n')
                else:
                    out.append(f'<li><a href="{_page_href(ctx, head, n, "root")}">{n}</a></li>\n')
            if page < head.page_count:
                out.append(
                    f'<li><a rel="next" href="{_page_href(ctx, head, page + 1, "root")}">&gt;</a></li>'
                )
            out.append("</ol></nav>\n")
        out.append("</article>\n")
        out.append(self._aside(ctx))
        out.append("</main>\n")
        out.append(self._foot(head.footer_stop, head.style))
        return "".join(out)

    def listing(self, ctx: Ctx, title: str, page: int, total: int, items: Sequence[Link]) -> str:
        out = [
            self._top(ctx, f"{title} | Tianjin"),
            f'<main class="wrap">\n<section class="feed"><h1 class="feed-title">{title}</h1>\n<ol class="stories">\n',
        ]
        for link in items:
            out.append(
                f'<li class="story-card"><a class="card-link" href="{attr(link.href)}">{link.html}</a> '
                f'<time datetime="{link.date}">{link.date}</time></li>\n'
            )
        out.append("</ol>\n")
        if total > 1:
            out.append('<nav class="paging"><ol>')
            if page > 1:
                out.append(
                    f'<li><a rel="prev" href="{self.listing_path(ctx, page - 1)}">Newer</a></li>\n'
                )
            for n in pager_numbers(page, total, window=3):
                if n is None:
                    out.append('<li class="gap">...</li>\n')
                elif n == page:
                    out.append(f'<li aria-current="page">{n}</li>\n')
                else:
                    out.append(
                        f'<li><a href="{ctx.absolute(self.listing_path(ctx, n))}">{n}</a></li>\n'
                    )
            if page < total:
                out.append(
                    f'<li><a rel="next" href="{self.listing_path(ctx, page + 1)}">Older</a></li>'
                )
            out.append("</ol></nav>\n")
        out.append("</section>\n")
        out.append(self._aside(ctx))
        out.append("</main>\n")
        out.append(self._foot(True, 0))
        return "".join(out)

    def home(self, ctx: Ctx, featured: Sequence[Link]) -> str:
        out = [self._top(ctx, "Tianjin"), '<main class="wrap"><section class="lead"><ul>']
        for link in featured:
            out.append(f'<li><a href="{attr(link.href)}">{link.html}</a></li>')
        out.append(
            f'</ul><a class="see-all" href="{ctx.section_path}">See all</a></section></main>\n'
        )
        out.append(self._foot(True, 1))
        return "".join(out)


class TableTemplate(Template):
    """Holdout: an old table layout with ``<font>`` and ``<td>`` cells; source and date share a cell."""

    name = "table"

    def _top(self, ctx: Ctx, title: str) -> str:
        nav = "&nbsp;&nbsp;".join(
            f'<a href="{p}"><font color="#ffffff">{label}</font></a>' for label, p in ctx.sections
        )
        return (
            '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">\n<html>\n<head>\n'
            f'<meta http-equiv="Content-Type" content="text/html; charset={ctx.charset}">\n'
            f'<title>{title}</title>\n</head>\n<body topmargin="0">\n'
            '<table width="960" align="center" border="0" cellspacing="0" cellpadding="0">\n'
            f'<tr><td colspan="2" bgcolor="#004a80">{nav}</td></tr>\n'
        )

    def _side(self, ctx: Ctx) -> str:
        rows = "".join(
            f'<tr><td>&middot; <a href="{attr(link.href)}">{link.html}</a></td></tr>'
            for link in ctx.most_read
        )
        return f'<td width="260" valign="top"><table width="100%"><tr><td><b>Hot Topics</b></td></tr>{rows}</table></td>\n'

    def _foot(self, stop: bool, style: int) -> str:
        return (
            f'<tr><td colspan="2" align="center"><font size="2">{_copyright(stop, style)}<br>{_icp(style)}</font></td></tr>\n'
            "</table>\n</body>\n</html>\n"
        )

    def article(self, ctx: Ctx, draft: Draft, page: int) -> str:
        head = draft.head
        out = [self._top(ctx, escape(head.title)), '<tr><td width="700" valign="top">\n']
        out.append(
            f'<table width="100%"><tr><td class="t1"><font size="3" color="#004a80"><b>{COLUMN}</b></font></td></tr></table>\n'
        )
        out.append(
            f'<table width="100%" cellpadding="6">\n<tr><td align="center"><font size="4" face="Arial"><b>{head.title_html}</b></font></td></tr>\n'
        )
        info = f"({head.source_html})&nbsp;&nbsp;" if head.source_html is not None else ""
        out.append(
            f'<tr><td align="center"><font size="2" color="#808080">{info}{_date_line(head, True)}</font></td></tr>\n<tr><td>\n'
        )
        for block in draft.pages[page - 1]:
            if isinstance(block, Para):
                if block.style < 5:
                    out.append(f'<p><font face="Arial" size="2">{block.html}</font></p>\n')
                else:
                    out.append(f"<p>{block.html}</p>\n")
            else:
                out.append(f'<p align="center">{_img(ctx, block, BORDER)}</p>\n')
                if block.name_line:
                    out.append(f'<p align="center">{block.image.alt}</p>\n')
                if block.caption_html is not None:
                    out.append(
                        f'<p align="center"><font size="1">{block.caption_html}</font></p>\n'
                    )
        out.append("</td></tr>\n")
        if head.page_count > 1:
            cells = []
            if page > 1:
                cells.append(f'<a href="{_page_href(ctx, head, page - 1, "relative")}">&lt;</a>')
            for n in pager_numbers(page, head.page_count):
                if n is None:
                    cells.append("...")
                elif n == page and not ctx.self_link:
                    cells.append(f'<font color="red">{n}</font>')
                else:
                    cells.append(f'<a href="{_page_href(ctx, head, n, "relative")}">{n}</a>')
            if page < head.page_count:
                cells.append(f'<a href="{_page_href(ctx, head, page + 1, "relative")}">&gt;</a>')
            out.append(f'<tr><td align="center">{" ".join(cells)}</td></tr>\n')
        out.append("</table>\n</td>\n")
        out.append(self._side(ctx))
        out.append("</tr>\n")
        out.append(self._foot(head.footer_stop, head.style))
        return "".join(out)

    def listing(self, ctx: Ctx, title: str, page: int, total: int, items: Sequence[Link]) -> str:
        out = [self._top(ctx, title), '<tr><td width="700" valign="top">\n']
        out.append(
            f'<table width="100%"><tr><td colspan="3"><font size="3" color="#004a80"><b>{title}</b></font></td></tr>\n'
        )
        for link in items:
            out.append(
                f'<tr><td width="12">&middot;</td><td><a href="{attr(link.href)}"><font size="2">{link.html}</font></a></td>'
                f'<td width="90"><font size="1">{link.date}</font></td></tr>\n'
            )
        out.append("</table>\n")
        if total > 1:
            cells = []
            if page > 1:
                cells.append(
                    f'<a href="{relative(ctx.path, self.listing_path(ctx, page - 1))}">Prev</a>'
                )
            for n in pager_numbers(page, total, window=3):
                if n is None:
                    cells.append("...")
                elif n == page:
                    cells.append(f"<b>{n}</b>")
                else:
                    cells.append(
                        f'<a href="{relative(ctx.path, self.listing_path(ctx, n))}">{n}</a>'
                    )
            if page < total:
                cells.append(
                    f'<a href="{relative(ctx.path, self.listing_path(ctx, page + 1))}">Next</a>'
                )
            out.append(f'<p align="center">{" | ".join(cells)}</p>\n')
        out.append("</td>\n")
        out.append(self._side(ctx))
        out.append("</tr>\n")
        out.append(self._foot(True, 0))
        return "".join(out)

    def home(self, ctx: Ctx, featured: Sequence[Link]) -> str:
        out = [self._top(ctx, "Tianjin"), '<tr><td colspan="2"><table>']
        for link in featured:
            out.append(f'<tr><td><a href="{attr(link.href)}">{link.html}</a></td></tr>')
        out.append(f'</table><a href="{ctx.section_path}">More news</a></td></tr>\n')
        out.append(self._foot(True, 1))
        return "".join(out)


TEMPLATE_CLASSES: dict[str, Template] = {
    t.name: t
    for t in (
        CmsTemplate(),
        ChinadailyTemplate(),
        PlainTemplate(),
        Html5Template(),
        TableTemplate(),
    )
}
