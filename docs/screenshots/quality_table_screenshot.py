"""Take docs/screenshots/quality-table.png: the demo audit's annotators and quality table, 1400x900.

    python manage.py migrate && python manage.py seed_demo      # or `make seed`
    python manage.py runserver 127.0.0.1:8000 &
    python docs/screenshots/quality_table_screenshot.py --password PASSWORD_PRINTED_FOR_lead

Logs in as the lead with Debian's chromium (/usr/bin/chromium) through Playwright, opens the
demo audit's page, scrolls to "Annotators and quality" (gold accuracy, agreement with the
others, median seconds per item, left-side preference, flags, set aside) and saves the window.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

OUT = Path(__file__).resolve().parent / "quality-table.png"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="lead")
    parser.add_argument("--password", required=True)
    parser.add_argument("--audit", default="PandaLM demo audit")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(f"{args.url}/accounts/login/")
        page.fill("input[name=username]", args.username)
        page.fill("input[name=password]", args.password)
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_load_state()
        page.goto(f"{args.url}/audits/")
        page.get_by_role("link", name=args.audit).first.click()
        page.wait_for_load_state("networkidle")
        table = page.get_by_test_id("quality")
        expect(table).to_be_visible()
        if table.locator("tbody tr").count() == 0:
            raise SystemExit("no annotator in the quality table: seed the demo first")
        page.locator("#quality").scroll_into_view_if_needed()
        page.evaluate("document.getElementById('quality').scrollIntoView({block: 'start'})")
        page.screenshot(path=str(args.out))
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
