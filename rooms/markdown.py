"""Markdown to safe HTML.

Raw HTML tags in the source are stripped (their text stays; inside code they
are shown as written), then the output is
cleaned by nh3 with a small allow-list: only http(s)/mailto links, which get
rel="nofollow noopener"; images only from http(s) or this site.
"""
from __future__ import annotations

import html
import re

import markdown as md
import nh3
from markdown.inlinepatterns import (HTML_RE, IMAGE_LINK_RE, LINK_RE, ImageInlineProcessor, InlineProcessor,
                                     LinkInlineProcessor)

_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "img", "table", "thead", "tbody", "tr", "th", "td", "span",
}
_ATTRS = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"align"},
    "td": {"align"},
    "code": {"class"},
    "span": {"class"},
    "ol": {"start"},
}
_SCHEMES = {"http", "https", "mailto"}
MENTION_RE = re.compile(r"(?<![\w@/])@([A-Za-z0-9][\w.-]{0,62}[A-Za-z0-9]|[A-Za-z0-9])")


class _StripTag(InlineProcessor):
    """Drop a raw HTML tag or comment; the text between tags is kept as text."""

    def handleMatch(self, m, data):  # noqa: N802 (Markdown's API)
        return "", m.start(0), m.end(0)


def _bare_destination(data: str, index: int) -> tuple[str, int] | None:
    """The link address starting at `index` if it runs, with no white space and balanced brackets, to the
    closing ")" (white space only between): (address, index after the ")"), else None."""
    depth = 0
    for pos in range(index, len(data)):
        c = data[pos]
        if c.isspace():
            rest = pos
            while rest < len(data) and data[rest].isspace():
                rest += 1
            ok = depth == 0 and rest < len(data) and data[rest] == ")" and pos > index
            return (data[index:pos], rest + 1) if ok else None
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return (data[index:pos], pos + 1) if pos > index else None
            depth -= 1
    return None


class _AddressFirst:
    """Python-Markdown starts a link's title at any quote, even inside the address, so
    `[x](javascript:alert("x"))` became a link to `javascript:alert(` titled "x" followed by a stray ")"
    (and nh3 then dropped the address). As in CommonMark, a title needs white space before it: an address
    with no white space and balanced brackets is the whole address."""

    def getLink(self, data, index):  # noqa: N802 (Markdown's API)
        href, title, end, handled = super().getLink(data, index)  # `index` is at the "("
        start = index + 1
        while start < len(data) and data[start] in " \t":
            start += 1
        if title is not None and data[start:start + 1] != "<":
            bare = _bare_destination(data, start)
            if bare is not None:
                return self.unescape(bare[0]).strip(), None, bare[1], True
        return href, title, end, handled


class _Link(_AddressFirst, LinkInlineProcessor):
    pass


class _Image(_AddressFirst, ImageInlineProcessor):
    pass


def _converter() -> md.Markdown:
    conv = md.Markdown(extensions=["tables", "fenced_code", "sane_lists", "nl2br"], output_format="html")
    # Raw HTML in posts is never interpreted: block HTML is read as ordinary text
    # and every tag in it is removed (code spans and fences are matched first).
    conv.preprocessors.deregister("html_block")
    conv.inlinePatterns.deregister("html")
    conv.inlinePatterns.register(_StripTag(HTML_RE, conv), "html", 90)
    conv.inlinePatterns.register(_Link(LINK_RE, conv), "link", 160)
    conv.inlinePatterns.register(_Image(IMAGE_LINK_RE, conv), "image_link", 150)
    return conv


_idle: list[md.Markdown] = []  # converters not in use: building one costs more than a short post's conversion


def render(source: str) -> str:
    conv = _idle.pop() if _idle else _converter()
    try:
        raw = conv.reset().convert(source)
    finally:
        _idle.append(conv)
    return sanitize(raw)


def sanitize(fragment: str) -> str:
    return nh3.clean(
        fragment,
        tags=_TAGS,
        attributes=_ATTRS,
        url_schemes=_SCHEMES,
        link_rel="nofollow noopener",
        strip_comments=True,
    )


def plain_text(source_html: str) -> str:
    """Text of rendered HTML (for search, previews and e-mail)."""
    text = nh3.clean(source_html, tags=set())
    return re.sub(r"\s+", " ", html.unescape(text)).strip()
