"""The board page in a real browser: the app served by uvicorn on a free port, the dashboard
fetched as HTML with an API key, drawn by headless Chromium.

Checks what a board member would see: the charts are drawn (SVG with real size, one bar per
non-zero figure), the page makes no request of its own (no fonts, scripts or images from
anywhere: any request beyond the page itself fails the test), nothing is logged to the console,
it prints to PDF, and a screenshot is saved.

Chromium is the system's (Debian's `chromium`, found at /usr/bin/chromium or $LFD_CHROMIUM),
driven by Playwright; `playwright install` is never needed. Without a browser the test skips
with the reason, unless LFD_REQUIRE_BROWSER=1 (CI, see .ci/run), where it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app.auth.scopes import Scope
from app.config import Settings
from app.kit.time import LONDON
from app.main import create_app
from tests.kit.cohorts import Cohort, sjr

REQUIRED = os.environ.get("LFD_REQUIRE_BROWSER") == "1"


def chromium_path() -> str | None:
    """$LFD_CHROMIUM when set (and only it), else the usual places."""
    if "LFD_CHROMIUM" in os.environ:
        chosen = os.environ["LFD_CHROMIUM"]
        return chosen if chosen and os.access(chosen, os.X_OK) else None
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def browser_or_skip() -> str:
    """The browser to drive, or a skip (a failure where CI requires the browser)."""
    reason = ""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        reason = "Playwright is not installed (pip install -e '.[dev]')"
    path = chromium_path()
    if path is None and not reason:
        reason = "no Chromium found (apt-get install chromium, or set LFD_CHROMIUM)"
    if reason:
        if REQUIRED:
            pytest.fail(f"LFD_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(f"board page browser test: {reason}; CI sets LFD_REQUIRE_BROWSER=1")
    assert path is not None
    return path


@pytest.fixture
def server(base_settings: Settings) -> Iterator[str]:
    """The app under uvicorn on a free port of 127.0.0.1, in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(base_settings), log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    # Poll for readiness (not a timed assertion: the deadline only stops a hung start).
    deadline = time.monotonic() + 60
    while thread.is_alive() and not running.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    path = browser_or_skip()
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=path)
        try:
            yield launched
        finally:
            await launched.close()


def local(day: str, hour: int = 11) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00").replace(tzinfo=LONDON)


async def test_dashboard_page_draws_in_chromium(
    browser, server, api, make_api, tmp_path: Path
) -> None:
    # Financial year 2025/26 at a site of its own. By hand, deaths without LD or autism:
    # April 2 (one unexpected, SJR avoidability 3), June 1, September 1 (unexpected, SJR 5);
    # one death of a person with a learning disability in June.
    cohort = Cohort(api)
    april = await cohort.death(local("2025-04-10"), unexpected=True)
    await cohort.review(april["death"]["id"], "sjr", sjr(avoidability=3, overall=2))
    await cohort.death(local("2025-04-22"))
    await cohort.death(local("2025-06-05"))
    await cohort.death(local("2025-06-18"), learning_disability=True)
    september = await cohort.death(local("2025-09-30", 22), unexpected=True)
    await cohort.review(september["death"]["id"], "sjr", sjr(avoidability=5, overall=4))

    reader = await make_api(Scope.reports_read)
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        response = await client.get(
            "/v1/reports/lfd-dashboard",
            params={"period": "2025-26", "site": cohort.site, "format": "html"},
            headers=reader.headers,
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page_url = str(response.url)

    context = await browser.new_context(
        viewport={"width": 1000, "height": 1400},
        extra_http_headers=reader.headers,
        device_scale_factor=1,
    )
    page = await context.new_page()
    console: list[str] = []
    requests: list[str] = []
    failed: list[str] = []
    page.on(
        "console",
        lambda m: (
            console.append(f"{m.type}: {m.text}")
            if m.type
            in (
                "error",
                "warning",
            )
            else None
        ),
    )
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    page.on("request", lambda request: requests.append(request.url))
    page.on("requestfailed", lambda request: failed.append(request.url))
    # The page itself is fetched from the running server with the API key as a header.
    loaded = await page.goto(page_url, wait_until="load")
    assert loaded is not None and loaded.status == 200
    await page.wait_for_load_state("networkidle")

    assert requests == [page_url], "the page must fetch nothing of its own"
    assert failed == []
    assert console == []
    assert await page.title() == "Learning from Deaths dashboard \u2013 2025/26"

    charts = page.locator("figure svg.chart")
    labels = await charts.evaluate_all("(svgs) => svgs.map((s) => s.getAttribute('aria-label'))")
    assert labels == [
        "Deaths in scope and deaths reviewed, by month of death",
        "Deaths by avoidability score of the final SJR, year to date",
        "Deaths of people with a learning disability or autism: LeDeR",
    ]
    for index in range(await charts.count()):
        box = await charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100

    async def drawn_bars(figure: str) -> list[dict[str, Any]]:
        bars = page.locator(f"#figure-{figure} rect.bar")
        found = []
        for index in range(await bars.count()):
            bar = bars.nth(index)
            box = await bar.bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0
            found.append(
                {
                    "value": float(await bar.get_attribute("data-value") or 0),
                    "series": await bar.get_attribute("data-series"),
                    "category": await bar.get_attribute("data-category"),
                    "height": box["height"],
                    "width": box["width"],
                }
            )
        return found

    # Deaths by month: deaths 2 (Apr), 1 (Jun), 1 (Sep); reviewed 1 (Apr), 1 (Sep);
    # more likely than not due to problems in care 1 (Apr): six bars.
    by_month = await drawn_bars("deaths-by-month")
    assert sorted((b["series"], b["category"], b["value"]) for b in by_month) == [
        ("0", "0", 2.0),
        ("0", "2", 1.0),
        ("0", "5", 1.0),
        ("1", "0", 1.0),
        ("1", "5", 1.0),
        ("2", "0", 1.0),
    ]
    two = next(b for b in by_month if b["value"] == 2)
    one = next(b for b in by_month if b["value"] == 1)
    assert two["height"] == pytest.approx(2 * one["height"], abs=1)
    # Avoidability year to date: one death scored 3, one scored 5.
    scores = await drawn_bars("avoidability")
    assert sorted((b["category"], b["value"]) for b in scores) == [("2", 1.0), ("4", 1.0)]
    assert scores[0]["width"] == pytest.approx(scores[1]["width"], abs=1)
    # LeDeR: one death in June, not (yet) notified.
    leder = await drawn_bars("leder-by-month")
    assert [(b["series"], b["category"], b["value"]) for b in leder] == [("0", "2", 1.0)]

    # Headline tiles and the year-to-date row as the page prints them.
    # Deaths in scope counts everyone (the June LeDeR death too); the reviewed share is of
    # the four deaths the dashboard's rows count.
    tiles = await page.locator(".tile-value").all_inner_texts()
    assert tiles == ["5", "2", "0", "1"]
    headlines = await page.locator(".headlines").inner_text()
    assert "1 with a learning disability or autism" in headlines
    assert "50.0% of the 4 without a learning disability or autism" in headlines

    # It prints: A4 pages from the print stylesheet.
    await page.emulate_media(media="print")
    pdf = await page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 2

    await page.emulate_media(media="screen")
    shot = tmp_path / "lfd-dashboard.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if target := os.environ.get("LFD_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(target) / shot.name)
    await context.close()
