"""The board page's screenshot in the docs (docs/img/lfd-dashboard.png), from a year of
synthetic data that anyone can rebuild:

    python bench/board_screenshot.py [--out docs/img/lfd-dashboard.png] [--deaths 1500]
        [--seed 2026] [--database-url sqlite+aiosqlite:////tmp/board.db] [--html page.html]

1. Migrates the database (a fresh SQLite file in a temporary directory unless given) and loads
   `lfd demo`'s synthetic deaths as if it were 20 April 2026, so financial year 2025/26 is
   complete (app/demo/: screenings, the referrals the rules raise, overrides).
2. Reviews them as a trust would, through the API: most stage 1 SJRs done, fewer for the
   latest months (reviews take time); scores drawn from a realistic spread (most deaths
   definitely not avoidable, a few more likely than not due to problems in care); LeDeR
   notified for people with a learning disability or autism, older ones completed.
3. Fetches GET /v1/reports/lfd-dashboard?period=2025-26&format=html with a reports:read key
   and has the system Chromium (Playwright, executable /usr/bin/chromium or $LFD_CHROMIUM)
   take a full-page screenshot.

The same seed gives the same deaths and the same reviews, so the picture only changes when the
page does. Nothing here is a real person (see app/demo/).
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
import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.demo import run_demo
from app.kit.time import LONDON
from app.main import create_app
from app.migrate import upgrade
from app.models import Death, Referral

AS_OF = datetime(2026, 4, 20, 12, 0, tzinfo=LONDON)
PERIOD = "2025-26"
PHASES = ("admission_initial", "ongoing", "end_of_life")
# Avoidability 1 (definitely avoidable) to 6 (definitely not): national SJR returns put
# about 3% at 1-3.
AVOIDABILITY = ((1, 0.3), (2, 0.7), (3, 2.5), (4, 6.5), (5, 22.0), (6, 68.0))
RATING = ((1, 1.5), (2, 6.0), (3, 22.0), (4, 45.0), (5, 25.5))


def pick(rng: random.Random, weighted: tuple[tuple[int, float], ...]) -> int:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def sjr_body(rng: random.Random) -> dict[str, Any]:
    avoidability = pick(rng, AVOIDABILITY)
    # Poorer care goes with avoidable deaths.
    overall = min(pick(rng, RATING), 3) if avoidability <= 3 else pick(rng, RATING)
    return {
        "instrument": "sjr",
        "reviewer": {"name": f"Dr Reviewer {rng.randrange(1, 25)}", "role": "Consultant"},
        "phases": [
            *(
                {"phase": phase, "rating": pick(rng, RATING), "narrative": f"The {phase} phase."}
                for phase in PHASES
                if rng.random() < 0.9
            ),
            {"phase": "overall", "rating": overall, "narrative": "Overall."},
        ],
        "quality_of_records": pick(rng, RATING),
        "avoidability": avoidability,
        "problems_in_care": [],
        "patient_safety_incident_suspected": False,
    }


def leder_body(rng: random.Random, died_at: datetime, months_ago: int) -> dict[str, Any]:
    status = "completed" if months_ago > 6 and rng.random() < 0.7 else "initial_review"
    return {
        "instrument": "leder",
        "notified_at": (died_at + timedelta(days=rng.randint(1, 4))).isoformat(),
        "leder_reference": f"LDR-{rng.randrange(10**6):06d}",
        "status": status,
    }


async def review(http: httpx.AsyncClient, database: Database, seed: int) -> tuple[int, int]:
    """Post SJR and LeDeR reviews for the stage 1 referrals; returns (sjr, leder) posted."""
    async with database.transaction() as session:
        rows = (
            await session.execute(
                select(Referral.id, Referral.route, Death.died_at, Death.source_reference)
                .join(Death, Death.id == Referral.death_id)
                .where(Referral.route.in_(("sjr", "leder")))
                .where(Referral.stage.is_(None) | (Referral.stage == 1))
                .order_by(Death.source_reference, Referral.route)
            )
        ).all()
    counts = {"sjr": 0, "leder": 0}
    for referral_id, route, died_at, reference in rows:
        # Each death's reviews from its own generator: the same whatever else is there.
        rng = random.Random(f"board:{seed}:{reference}:{route}")
        months_ago = (AS_OF - died_at).days // 30
        if route == "sjr":
            # Reviews take a few months: the latest deaths are reviewed least.
            if rng.random() > min(0.9, 0.25 + 0.13 * months_ago):
                continue
            body = sjr_body(rng)
        else:
            body = leder_body(rng, died_at, months_ago)
        response = await http.post(f"/v1/referrals/{referral_id}/review", json={"review": body})
        if response.status_code == 201:
            counts[route] += 1
        elif response.status_code != 409:  # a referral already reviewed on a re-run
            raise RuntimeError(f"{response.status_code}: {response.text}")
    return counts["sjr"], counts["leder"]


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
    await run_demo(settings, deaths=args.deaths, seed=args.seed, at=AS_OF)
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://board", timeout=120
    ) as http:
        database: Database = app.state.database
        async with database.transaction() as session:
            admin = await create_client(session, "board screenshot", [Scope.admin])
            reader = await create_client(session, "board reader", [Scope.reports_read])
        http.headers["Authorization"] = f"Bearer {admin.key}"
        sjrs, leders = await review(http, database, args.seed)
        print(f"Reviews posted: {sjrs} SJR, {leders} LeDeR.")
        response = await http.get(
            "/v1/reports/lfd-dashboard",
            params={"period": PERIOD, "format": "html"},
            headers={"Authorization": f"Bearer {reader.key}"},
        )
        response.raise_for_status()
        await database.dispose()
    await screenshot(response.text, Path(args.out), args.chromium)
    print(f"Screenshot {args.out} in {time.monotonic() - started:.0f}s.")
    return response.text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/img/lfd-dashboard.png")
    parser.add_argument("--deaths", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database-url", default=os.environ.get("LFD_BOARD_DATABASE_URL"))
    parser.add_argument("--html", help="also keep the page's HTML here")
    parser.add_argument("--chromium", default=os.environ.get("LFD_CHROMIUM", "/usr/bin/chromium"))
    arguments = parser.parse_args()
    if not arguments.database_url:
        folder = Path(tempfile.mkdtemp(prefix="lfd-board-"))
        arguments.database_url = f"sqlite+aiosqlite:///{folder / 'board.db'}"
    upgrade(arguments.database_url)  # Alembic runs its own event loop: before ours
    page = asyncio.run(main(arguments))
    if arguments.html:
        Path(arguments.html).write_text(page, encoding="utf-8")
