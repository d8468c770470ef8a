"""HTML building blocks of the replica: varied entity encoding, noisy whitespace, pagers, broken markup."""

from __future__ import annotations

import posixpath
import random
import re

# How a character shown on the page may be written in the HTML source; the first form is the
# plain one. Every form decodes to the same text, so the truth never depends on the choice.
_FORMS: dict[str, tuple[str, ...]] = {
    "&": ("&amp;", "&amp;", "&#38;"),
    "<": ("&lt;",),
    ">": ("&gt;",),
    '"': ('"', "&quot;", "&#34;"),
    "\u2019": ("\u2019", "&#8217;", "&rsquo;"),
    "\u2018": ("\u2018", "&lsquo;"),
    "\u201c": ("\u201c", "&ldquo;", "&#8220;"),
    "\u201d": ("\u201d", "&rdquo;", "&#8221;"),
    "\u2014": ("\u2014", "&mdash;", "&#8212;"),
    "\u00a0": ("\u00a0", "&nbsp;", "&#160;"),
    "\u00e9": ("\u00e9", "&eacute;", "&#233;"),
    "\u00a9": ("\u00a9", "&copy;", "&#169;"),
}
_SPECIAL = re.compile("[" + re.escape("".join(_FORMS)) + "]")

# Separators that all read as one space once text is normalised.
_NOISY_SPACES = ("&nbsp;", "\u00a0", "  ", "\n      ", " &nbsp;", "\t", " \u200b", "&#160; ")
_BREAKS = ("<br>", "<br />", " <br/>\n", "<br>\n")


def escape(text: str, rng: random.Random | None = None) -> str:
    """HTML for ``text``; with ``rng``, special characters get a randomly chosen equivalent form."""
    if rng is None:
        return _SPECIAL.sub(lambda m: _FORMS[m[0]][0] if m[0] in "&<>" else m[0], text)
    return _SPECIAL.sub(lambda m: rng.choice(_FORMS[m[0]]), text)


def attr(text: str) -> str:
    """``text`` escaped for a double-quoted attribute value."""
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def noisy_html(
    text: str, rng: random.Random, links: tuple[str, ...] = (), inline: bool = True
) -> str:
    """Inner HTML that shows ``text``: entities, odd spaces, ``<br>`` for a space, inline tags.

    A ``<br>`` always stands where the text has a space, and the contract is that a ``<br>``
    inside a paragraph reads as a space.
    """
    words = text.split(" ")
    html_words = [escape(w, rng) for w in words]
    n = len(html_words)
    if inline and n > 6:
        # Inline markup around whole words (and, rarely, inside a word), never overlapping.
        start = rng.randrange(0, n - 3)
        roll = rng.random()
        if roll < 0.2:
            end = start + rng.randrange(1, 4)
            html_words[start] = "<strong>" + html_words[start]
            html_words[end - 1] += "</strong>"
        elif roll < 0.32 and links:
            end = start + rng.randrange(1, 3)
            html_words[start] = (
                f'<a href="{attr(rng.choice(links))}" target="_blank">' + html_words[start]
            )
            html_words[end - 1] += "</a>"
        elif roll < 0.42:
            end = start + rng.randrange(1, 3)
            html_words[start] = "<em>" + html_words[start]
            html_words[end - 1] += "</em>"
        elif roll < 0.47:
            w = html_words[start]
            if len(w) > 5 and w.isalpha():
                cut = rng.randrange(2, len(w) - 2)
                html_words[start] = f'{w[:cut]}<span style="color:#333">{w[cut:]}</span>'
    seps = [" "] * (n - 1)
    for _ in range(rng.randrange(0, 4)):
        if seps:
            seps[rng.randrange(len(seps))] = rng.choice(_NOISY_SPACES)
    if seps and rng.random() < 0.08:
        seps[rng.randrange(len(seps))] = rng.choice(_BREAKS)
    parts = [html_words[0]]
    for sep, word in zip(seps, html_words[1:]):
        parts.append(sep)
        parts.append(word)
    html = "".join(parts)
    roll = rng.random()
    if roll < 0.1:
        html = "\n\t" + html + "\n"
    elif roll < 0.16:
        html = "&nbsp;&nbsp;" + html
    elif roll < 0.2:
        html = html + " <br>"
    return html


def pager_numbers(current: int, total: int, window: int = 2) -> list[int | None]:
    """Page numbers a pager shows: 1, ``total`` and ``current`` +- ``window``; None marks a gap."""
    shown = sorted(
        {1, total} | {p for p in range(current - window, current + window + 1) if 1 <= p <= total}
    )
    out: list[int | None] = []
    previous = 0
    for p in shown:
        if p - previous > 1:
            out.append(None)
        out.append(p)
        previous = p
    return out


def relative(from_path: str, to_path: str) -> str:
    """A relative href from the page at ``from_path`` to ``to_path`` (both absolute paths)."""
    start = posixpath.dirname(from_path) or "/"
    return posixpath.relpath(to_path, start)


_UNCLOSED_P = re.compile(r"</p>(\s*<p[\s>])")
_QUOTED_ATTR = re.compile(
    r'(\s(?:class|id|align|width|size|border|valign|color|target|face|height|lang))="([\w#.%-]+)"'
)
_P_OPEN = re.compile(r"<p[\s>]")


def malform(html: str) -> str:
    """The same page with the sloppy markup real CMS output has: the text content is unchanged.

    Only faults a parser recovers from without moving text are introduced: a ``</p>`` dropped
    where another ``<p>`` follows, unquoted attribute values, end tags that close nothing, a
    missing final ``</div>`` and no ``</body></html>``.
    """
    html = _UNCLOSED_P.sub(r"\1", html)
    html = _QUOTED_ATTR.sub(r"\1=\2", html)
    # Stray end tags before the third paragraph: no span/em/font is ever open there.
    opens = list(_P_OPEN.finditer(html))
    if len(opens) >= 3:
        at = opens[2].start()
        html = html[:at] + "</span></em>" + html[at:]
    html = html.replace("</body>", "").replace("</html>", "")
    cut = html.rfind("</div>")
    if cut != -1:
        html = html[:cut] + html[cut + len("</div>") :]
    return html.rstrip() + "\n"
