"""What the browser tests share: people who log in, screenshots, and the workspace's keyboard
and form."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User

from config.roles import ensure_groups
from tests.factories import UserFactory

# The README's and docs' screenshots are refreshed with
#   TRIBUNAL_SCREENSHOTS=docs/screenshots make test PYTEST_ARGS=tests/browser
# otherwise they go to the test's temporary directory, leaving the checkout as it was.
SCREENSHOTS_ENV = "TRIBUNAL_SCREENSHOTS"


def screenshot_dir(tmp_path: Path) -> Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen).resolve() if chosen else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


PASSWORD = "correct-horse-battery"


def member(username: str, *, lead: bool = False) -> User:
    lead_group, annotator_group = ensure_groups()
    user: Any = UserFactory(username=username, password=PASSWORD)
    user.groups.add(lead_group if lead else annotator_group)
    return user


def log_in(page: Any, live_server: Any, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/(audits/)?$"))


def press_key(page: Any, key: str) -> None:
    """Press a key once the item has settled (the page ignores keys for its first 250 ms)."""
    from playwright.sync_api import expect

    expect(page.locator("#workspace")).to_have_attribute("data-ready", "1")
    page.keyboard.press(key)


def current_assignment(page: Any) -> int:
    action = page.locator("#label-form").get_attribute("action")
    match = re.search(r"/label/(\d+)/$", action or "")
    assert match, action
    return int(match.group(1))
