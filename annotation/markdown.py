"""Model output is untrusted: render it as Markdown with raw HTML off, then sanitise.

markdown-it's CommonMark preset with `html=False` turns any HTML in the text into escaped
text, and its link validator drops `javascript:`-style URLs; nh3 then keeps only a short list
of tags and attributes, as a second line of defence should the renderer ever emit something
unexpected. An image is kept only when it points into this site (a relative URL); one on
another origin is shown as text (`[image: alt <url>]`), so a response cannot phone home when
shown to an annotator even where the Content-Security-Policy (img-src 'self' data:) is not
sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token

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
    md = MarkdownIt("commonmark", options).enable(["table", "strikethrough"])
    md.add_render_rule("image", _image)
    return md


def _image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """An image on this site as a tag; anywhere else (any scheme, `//host`) as its text."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = self.renderInlineAsText(token.children or [], options, env)
    if src.startswith(("/", "./", "../")) and not src.startswith(("//", "/\\")):
        return str(self.image(tokens, idx, options, env))
    return escapeHtml(f"[image: {alt} <{src}>]" if alt else f"[image <{src}>]")


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
