"""Take docs/screenshots/report-summary.png: the seeded demo audit's report at 1400x900.

    python docs/screenshots/report_summary_screenshot.py            # from the project root
    python docs/screenshots/report_summary_screenshot.py --keep var/shot   # keep the database
    python docs/screenshots/report_summary_screenshot.py --data /work/shared/data  # from a worktree

Seeds the demo (``manage.py migrate`` and ``manage.py seed_demo``, the full one: it classifies
PandaLM's and hh-rlhf's responses, a few minutes on a laptop) into a fresh SQLite database in a
temporary folder, never your own; serves it with ``runserver`` on a free local port; logs in
as the lead with Debian's chromium (/usr/bin/chromium) through Playwright; opens the "PandaLM
demo audit" report and saves the first screen: the summary, which must end within it.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "report-summary.png"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
WIDTH, HEIGHT = 1400, 900


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return done.stdout


def _wait_for(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url}: the server did not answer in {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="seed into this folder and keep it")
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared/data folder"
    )
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="tribunal-shot-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'demo.sqlite3'}",
        "TRIBUNAL_VAR_DIR": str(folder),
        # Plain HTTP on 127.0.0.1: the login cookie must come back without TLS.
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
    }
    env.pop("CELERY_BROKER_URL", None)
    env.pop("REDIS_URL", None)
    _manage(env, "migrate", "--no-input")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    seeded = _manage(env, "seed_demo", "--data", str(args.data), "--url", f"{url}/")
    found = re.search(r"^\s*lead\s+password\s+(\S+)\s*$", seeded, re.MULTILINE)
    if found is None:
        raise SystemExit(f"seed_demo printed no password for the lead:\n{seeded}")
    password = found.group(1)
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"{url}/accounts/login/")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.set_default_timeout(60_000)
            page.goto(f"{url}/accounts/login/")
            page.fill("input[name=username]", "lead")
            page.fill("input[name=password]", password)
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_load_state()
            page.goto(f"{url}/reports/")
            page.get_by_role("link", name="PandaLM demo audit").first.click()
            summary = page.get_by_test_id("report-summary")
            summary.wait_for()
            box = summary.bounding_box()
            if box is None or box["y"] + box["height"] > HEIGHT:
                raise SystemExit(f"the summary does not end within the first screen: {box}")
            page.screenshot(path=str(args.out))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
