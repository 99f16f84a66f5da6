"""What the screenshot scripts here share: their options, and Debian's chromium (through
Playwright, never a downloaded browser) logged in to a demo server as the lead."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def arguments(doc: str, out: Path) -> argparse.ArgumentParser:
    """--url, --username, --password, --chromium, --out; a script adds its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="lead")
    parser.add_argument("--password", required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=out)
    return parser


@contextmanager
def logged_in(args: argparse.Namespace, *, width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A page of the given viewport, logged in at ``args.url``."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(60_000)
        page.goto(f"{args.url}/accounts/login/")
        page.fill("input[name=username]", args.username)
        page.fill("input[name=password]", args.password)
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_load_state()
        try:
            yield page
        finally:
            browser.close()
