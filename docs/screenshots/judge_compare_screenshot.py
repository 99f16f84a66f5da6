"""Take docs/screenshots/judge-compare-demo.png: the comparison of the Gemma judge's two prompt
versions (v1 against v2) on the demo's "Gemma prompt v2 check" audit, with its drift gate in
force (pinned to v2, `flip_rate <= 0.35` against v1).

    python manage.py seed_demo                         # the full demo (`make demo` seeding)
    python manage.py runserver 127.0.0.1:8000 &
    python docs/screenshots/judge_compare_screenshot.py --password PASSWORD_PRINTED_FOR_lead

Logs in as the lead with Debian's chromium (/usr/bin/chromium) through Playwright, opens
``/reports/audit/<id>/compare/`` of the audit named "Gemma prompt v2 check" (the page opens on
the newest two versions of one judge) and saves a 1400x900 viewport from the page's top.
"""

from __future__ import annotations

import re
from pathlib import Path

from demo_browser import arguments, logged_in

OUT = Path(__file__).resolve().parent / "judge-compare-demo.png"
AUDIT_NAME = "Gemma prompt v2 check"


def main() -> None:
    parser = arguments(__doc__, OUT)
    args = parser.parse_args()
    with logged_in(args) as page:
        page.goto(f"{args.url}/audits/")
        link = page.get_by_role("link", name=AUDIT_NAME).first
        found = re.search(r"/audits/(\d+)/", link.get_attribute("href") or "")
        if found is None:
            raise SystemExit(f"no audit named {AUDIT_NAME!r}: seed the demo first")
        page.goto(f"{args.url}/reports/audit/{found.group(1)}/compare/")
        page.locator("#summary").wait_for()
        page.get_by_test_id("gate-in-force").wait_for()
        page.screenshot(path=str(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
