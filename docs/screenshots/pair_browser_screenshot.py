"""Take docs/screenshots/pair-browser.png: the pair browser on the seeded demo, 1400x900.

    python manage.py migrate && python manage.py seed_demo      # or `make seed`
    python manage.py runserver 127.0.0.1:8000 &
    python docs/screenshots/pair_browser_screenshot.py --password PASSWORD_PRINTED_FOR_lead

Logs in as the lead with Debian's chromium (/usr/bin/chromium) through Playwright, opens
PandaLM's pairs searched for a word and filtered to the pairs where a judge's verdict is not
the people's majority, and saves the window (not the whole page).
"""

from __future__ import annotations

import re
from pathlib import Path

from demo_browser import arguments, logged_in
from playwright.sync_api import expect

OUT = Path(__file__).resolve().parent / "pair-browser.png"


def main() -> None:
    parser = arguments(__doc__, OUT)
    parser.add_argument("--dataset", default="pandalm")
    parser.add_argument("--search", default="list")
    args = parser.parse_args()
    with logged_in(args) as page:
        page.goto(f"{args.url}/datasets/{args.dataset}/pairs/")
        # Typed, as a lead would: the rows update in place (htmx) and the URL follows.
        page.get_by_label("Text").fill(args.search)
        expect(page.get_by_test_id("match-count")).to_contain_text(args.search)
        page.get_by_label("Disagreement").select_option("judge_people")
        expect(page).to_have_url(re.compile(r"disagreement=judge_people"))
        page.wait_for_load_state("networkidle")
        if page.locator("[data-testid=pairs] tbody tr[data-pair]").count() == 0:
            raise SystemExit("no pair matches: seed the demo first (see the docstring)")
        page.screenshot(path=str(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
