"""Take docs/img/refusal-gap-gemma.png: the hh-rlhf report's refusal-gap section, seeded demo.

    python manage.py seed_demo --only hh-rlhf          # or the full `make demo` seeding
    python manage.py runserver 127.0.0.1:8000 &
    python docs/img/refusal_gap_screenshot.py --password PASSWORD_PRINTED_FOR_lead

Logs in as the lead with Debian's chromium (/usr/bin/chromium) through Playwright, opens
``/reports/dataset/hh-rlhf/`` and saves the ``#refusal-gap`` section, from its heading to the
end of the Gemma judge's gap table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent / "refusal-gap-gemma.png"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


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
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(f"{args.url}/accounts/login/")
        page.fill("input[name=username]", args.username)
        page.fill("input[name=password]", args.password)
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_load_state()
        page.goto(f"{args.url}/reports/dataset/hh-rlhf/")
        section = page.locator("#refusal-gap")
        section.wait_for()
        box = section.bounding_box()
        table = page.locator("#refusal-gap .grid2").first.bounding_box()
        if box is None or table is None:
            raise SystemExit("the report has no refusal-gap table: seed the demo first")
        page.screenshot(
            path=str(args.out),
            full_page=True,
            clip={
                "x": box["x"],
                "y": box["y"],
                "width": box["width"],
                "height": table["y"] + table["height"] - box["y"] + 48,
            },
        )
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
