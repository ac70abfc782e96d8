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
from markdown.inlinepatterns import HTML_RE, InlineProcessor

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


def _converter() -> md.Markdown:
    conv = md.Markdown(extensions=["tables", "fenced_code", "sane_lists", "nl2br"], output_format="html")
    # Raw HTML in posts is never interpreted: block HTML is read as ordinary text
    # and every tag in it is removed (code spans and fences are matched first).
    conv.preprocessors.deregister("html_block")
    conv.inlinePatterns.deregister("html")
    conv.inlinePatterns.register(_StripTag(HTML_RE, conv), "html", 90)
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
