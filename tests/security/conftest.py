"""Real headless Chromium for the security walks: the browser fixture of tests/browser."""

from __future__ import annotations

from tests.browser.conftest import browser

__all__ = ["browser"]
