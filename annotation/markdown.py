"""Model output is untrusted: render it as Markdown with raw HTML off, then sanitise.

markdown-it's CommonMark preset with `html=False` turns any HTML in the text into escaped
text, and its link validator drops `javascript:`-style URLs; nh3 then keeps only a short list
of tags and attributes, as a second line of defence should the renderer ever emit something
unexpected. Images are kept as tags, but the Content-Security-Policy (img-src 'self' data:)
stops them loading from elsewhere, so a response cannot phone home when shown to an annotator.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_TAGS = {
    "p",
    "br",
    "hr",
    "em",
    "strong",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "img",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "del",
    "s",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    # breaks=True: a single newline is a line break, as in chat interfaces (poems, addresses
    # and step lists from models rely on it).
    options = {"html": False, "breaks": True, "linkify": False, "typographer": False}
    return MarkdownIt("commonmark", options).enable(["table", "strikethrough"])


def render_markdown(text: str) -> SafeString:
    """Safe HTML for untrusted Markdown: code blocks kept, anything executable removed."""
    return mark_safe(_render(text or ""))  # sanitised by _render


@lru_cache(maxsize=2048)
def _render(text: str) -> str:
    # Cached: the guidelines render on every answer, and each response once per annotator.
    return nh3.clean(
        _renderer().render(text),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
