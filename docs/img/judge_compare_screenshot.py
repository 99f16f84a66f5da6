"""Take docs/screenshots/judge-compare-demo.png: the comparison of the Gemma judge's two prompt
versions (v1 against v2) on the demo's "Gemma prompt v2 check" audit, with its drift gate in
force (pinned to v2, `flip_rate <= 0.35` against v1).

    python manage.py seed_demo                         # the full demo (`make demo` seeding)
    python manage.py runserver 127.0.0.1:8000 &
    python docs/img/judge_compare_screenshot.py --password PASSWORD_PRINTED_FOR_lead

Logs in as the lead with Debian's chromium (/usr/bin/chromium) through Playwright, opens
``/reports/audit/<id>/compare/`` of the audit named "Gemma prompt v2 check" (the page opens on
the newest two versions of one judge) and saves a 1400x900 viewport from the page's top.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent.parent / "screenshots" / "judge-compare-demo.png"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
AUDIT_NAME = "Gemma prompt v2 check"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="lead")
    parser.add_argument("--password", required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(f"{args.url}/accounts/login/")
        page.fill("input[name=username]", args.username)
        page.fill("input[name=password]", args.password)
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_load_state()
        page.goto(f"{args.url}/audits/")
        link = page.get_by_role("link", name=AUDIT_NAME).first
        href = link.get_attribute("href") or ""
        found = re.search(r"/audits/(\d+)/", href)
        if found is None:
            raise SystemExit(f"no audit named {AUDIT_NAME!r}: seed the demo first")
        page.goto(f"{args.url}/reports/audit/{found.group(1)}/compare/")
        page.locator("#summary").wait_for()
        page.get_by_test_id("gate-in-force").wait_for()
        page.screenshot(path=str(args.out))
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
