"""Issue 15 item 10: HSTS behind TLS, images to other origins, and API pages the CSP allows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from annotation.markdown import render_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_it_sends_hsts_over_https_when_debug_is_off(client: Client, db: None) -> None:
    secure = client.get("/accounts/login/", secure=True)
    plain = client.get("/accounts/login/")

    assert secure["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in plain  # never on plain HTTP


def test_it_trusts_a_proxys_https_header_only_when_configured(
    client: Client, db: None, settings: Any
) -> None:
    via_proxy = {"HTTP_X_FORWARDED_PROTO": "https"}
    assert "Strict-Transport-Security" not in client.get("/accounts/login/", **via_proxy)

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    assert "Strict-Transport-Security" in client.get("/accounts/login/", **via_proxy)


def settings_from(env: dict[str, str]) -> list[str]:
    code = (
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
        "settings.SECURE_HSTS_PRELOAD, settings.SECURE_SSL_REDIRECT, "
        "settings.SECURE_PROXY_SSL_HEADER)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DEBUG"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
    )
    return [
        result.stdout.strip(),
        result.stderr.strip().splitlines()[-1:][0] if result.stderr.strip() else "",
    ]


def test_it_reads_the_tls_settings_from_the_environment() -> None:
    assert settings_from({}) == ["31536000 False False False None", ""]
    assert settings_from({"DEBUG": "true"})[0].startswith("0 ")
    configured = settings_from(
        {
            "SECURE_HSTS_SECONDS": "600",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "yes",
            "SECURE_HSTS_PRELOAD": "1",
            "SECURE_SSL_REDIRECT": "true",
            "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        }
    )
    assert configured == ["600 True True True ('HTTP_X_FORWARDED_PROTO', 'https')", ""]
    bad = settings_from({"SECURE_PROXY_SSL_HEADER": "X-Forwarded Proto"})
    assert bad[0] == "" and "SECURE_PROXY_SSL_HEADER='X-Forwarded Proto'" in bad[1]


@pytest.mark.parametrize(
    ("markdown", "shown"),
    [
        (
            "![cat](https://evil.example/c.png?u=1)",
            "[image: cat &lt;https://evil.example/c.png?u=1&gt;]",
        ),
        ("![](//evil.example/p.gif)", "[image &lt;//evil.example/p.gif&gt;]"),
        ("![x](http://203.0.113.9/t.png)", "[image: x &lt;http://203.0.113.9/t.png&gt;]"),
        (
            "![x](data:image/png;base64,iVBORw0K)",
            "[image: x &lt;data:image/png;base64,iVBORw0K&gt;]",
        ),
    ],
)
def test_it_shows_images_on_other_origins_as_text(markdown: str, shown: str) -> None:
    html = render_markdown(markdown)

    assert "<img" not in html
    assert html == f"<p>{shown}</p>\n"


def test_it_keeps_an_image_on_this_site() -> None:
    assert render_markdown("![logo](/static/logo.png)") == (
        '<p><img src="/static/logo.png" alt="logo"></p>\n'
    )


def inline_styles_and_scripts(html: str) -> list[str]:
    found = re.findall(r"<style[^>]*>|\sstyle\s*=", html)
    found += [
        tag
        for tag in re.findall(r"<script[^>]*>", html)
        if 'src="/static/' not in tag and 'type="application/json"' not in tag
    ]
    return found


def test_the_api_answers_json_even_to_a_browser(lead_client: Client) -> None:
    response = lead_client.get("/api/datasets/", HTTP_ACCEPT="text/html,*/*;q=0.8")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


def test_the_api_docs_page_has_no_inline_style_or_script(client: Client, db: None) -> None:
    response = client.get("/api/docs/", HTTP_ACCEPT="text/html")

    html = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert "style-src 'self'" in response["Content-Security-Policy"]
    assert inline_styles_and_scripts(html) == []
    assert "/api/datasets/{name}/pairs/" in html
