"""The board page's screenshot in the docs (docs/img/lfd-dashboard.png), from synthetic
history that anyone can rebuild:

    python bench/board_screenshot.py [--out docs/img/lfd-dashboard.png] [--deaths 3000]
        [--seed 2026] [--database-url sqlite+aiosqlite:////tmp/board.db] [--html page.html]

1. Migrates the database (a fresh SQLite file in a temporary directory unless given) and runs
   `lfd demo` as if it were 20 April 2026, so financial year 2025/26 is complete: three
   financial years of deaths with their screenings, referrals, reviews (SJRs, M&M, LeDeR,
   PSIIs), findings and an action plan, through the history importer (app/demo/).
2. Fetches GET /v1/reports/lfd-dashboard?period=2025-26&format=html with a reports:read key
   and has the system Chromium (Playwright, executable /usr/bin/chromium or $LFD_CHROMIUM)
   take a full-page screenshot.

The same seed gives the same history, so the picture only changes when the page does. Nothing
here is a real person (see app/demo/).
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

# bench/queue.py would shadow the standard library's queue module: take this directory off
# the path and put the checkout's root on it (as bench/import_export.py does).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import asyncio
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.demo import run_demo
from app.kit.time import LONDON
from app.main import create_app
from app.migrate import upgrade

AS_OF = datetime(2026, 4, 20, 12, 0, tzinfo=LONDON)
PERIOD = "2025-26"


async def screenshot(html: str, out: Path, chromium: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=chromium)
        page = await browser.new_page(viewport={"width": 900, "height": 1200})
        await page.set_content(html, wait_until="load")
        out.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(out), full_page=True)
        await browser.close()


async def main(args: argparse.Namespace) -> str:
    """Builds the data and the page and takes the screenshot; returns the page."""
    url = args.database_url
    started = time.monotonic()
    settings = Settings(database_url=url, run_worker_in_serve=False)
    if await run_demo(settings, deaths=args.deaths, seed=args.seed, at=AS_OF) != 0:
        raise RuntimeError("lfd demo failed")
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://board", timeout=120
    ) as http:
        database: Database = app.state.database
        async with database.transaction() as session:
            reader = await create_client(session, "board reader", [Scope.reports_read])
        response = await http.get(
            "/v1/reports/lfd-dashboard",
            params={"period": PERIOD, "format": "html"},
            headers={"Authorization": f"Bearer {reader.key}"},
        )
        response.raise_for_status()
        await database.dispose()
    if args.html:
        await asyncio.to_thread(Path(args.html).write_text, response.text, encoding="utf-8")
    await screenshot(response.text, Path(args.out), args.chromium)
    print(f"Screenshot {args.out} in {time.monotonic() - started:.0f}s.")
    return response.text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/img/lfd-dashboard.png")
    parser.add_argument("--deaths", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database-url", default=os.environ.get("LFD_BOARD_DATABASE_URL"))
    parser.add_argument("--html", help="also keep the page's HTML here")
    parser.add_argument("--chromium", default=os.environ.get("LFD_CHROMIUM", "/usr/bin/chromium"))
    arguments = parser.parse_args()
    if not arguments.database_url:
        folder = Path(tempfile.mkdtemp(prefix="lfd-board-"))
        arguments.database_url = f"sqlite+aiosqlite:///{folder / 'board.db'}"
    upgrade(arguments.database_url)  # Alembic runs its own event loop: before ours
    asyncio.run(main(arguments))
