"""Take docs/img/refusal-gap-gemma.png: the hh-rlhf report's refusal-gap section, seeded demo.

    python manage.py seed_demo --only hh-rlhf          # or the full `make demo` seeding
    python manage.py runserver 127.0.0.1:8000 &
    python docs/screenshots/refusal_gap_screenshot.py --password PASSWORD_PRINTED_FOR_lead

Logs in as the lead with Debian's chromium (/usr/bin/chromium) through Playwright, opens
``/reports/dataset/hh-rlhf/`` and saves the ``#refusal-gap`` section, from its heading to the
end of the Gemma judge's gap table.
"""

from __future__ import annotations

from pathlib import Path

from demo_browser import arguments, logged_in

OUT = Path(__file__).resolve().parent.parent / "img" / "refusal-gap-gemma.png"


def main() -> None:
    parser = arguments(__doc__, OUT)
    args = parser.parse_args()
    with logged_in(args, width=1280) as page:
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
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
