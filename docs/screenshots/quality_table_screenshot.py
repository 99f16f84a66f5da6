"""Take docs/screenshots/quality-table.png: the demo audit's annotators and quality table, 1400x900.

    python manage.py migrate && python manage.py seed_demo      # or `make seed`
    python manage.py runserver 127.0.0.1:8000 &
    python docs/screenshots/quality_table_screenshot.py --password PASSWORD_PRINTED_FOR_lead

Logs in as the lead with Debian's chromium (/usr/bin/chromium) through Playwright, opens the
demo audit's page, scrolls to "Annotators and quality" (gold accuracy, agreement with the
others, median seconds per item, left-side preference, flags, set aside) and saves the window.
"""

from __future__ import annotations

from pathlib import Path

from demo_browser import arguments, logged_in
from playwright.sync_api import expect

OUT = Path(__file__).resolve().parent / "quality-table.png"


def main() -> None:
    parser = arguments(__doc__, OUT)
    parser.add_argument("--audit", default="PandaLM demo audit")
    args = parser.parse_args()
    with logged_in(args) as page:
        page.goto(f"{args.url}/audits/")
        page.get_by_role("link", name=args.audit).first.click()
        page.wait_for_load_state("networkidle")
        table = page.get_by_test_id("quality")
        expect(table).to_be_visible()
        if table.locator("tbody tr").count() == 0:
            raise SystemExit("no annotator in the quality table: seed the demo first")
        page.evaluate("document.getElementById('quality').scrollIntoView({block: 'start'})")
        page.screenshot(path=str(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
