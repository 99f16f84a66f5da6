"""Real headless Chromium (Debian's package) driven by Playwright; never a downloaded browser."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("TRIBUNAL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
# still plain synchronous code, so tell Django not to refuse them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


_RUNNING: dict[str, Any] = {}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    if "chromium" in _RUNNING:  # tests/security uses this fixture too: one Playwright per run
        yield _RUNNING["chromium"]
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        _RUNNING["chromium"] = chromium
        try:
            yield chromium
        finally:
            _RUNNING.clear()
            chromium.close()


@pytest.fixture
def page(browser: Any, settings: Any) -> Iterator[Any]:
    # The live server speaks plain http; secure-only cookies would never come back.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # Generous: this runs on small shared CI machines; a passing step never waits this long.
    context.set_default_timeout(20_000)
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))

    def console(message: Any) -> None:
        url = (message.location or {}).get("url", "")
        if message.type == "error" and not url.endswith("/favicon.ico"):
            errors.append(f"{message.text} ({url})")

    tab.on("console", console)
    tab.on(
        "response",
        lambda response: (
            errors.append(f"HTTP {response.status} {response.url}")
            if response.status >= 400 and not response.url.endswith("/favicon.ico")
            else None
        ),
    )
    yield tab
    context.close()
    assert errors == [], f"browser errors: {errors}"
