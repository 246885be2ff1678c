"""Reading the change feed in tests: a page, everything available now, or until what a test
expects has arrived (on PostgreSQL a transaction running anywhere on the server, another
test's included, holds the feed's horizon back for a moment; it delays, never loses)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from app.events.schemas import EventPage
from tests.conftest import Api


async def read(api: Api, cursor: str, **params: Any) -> tuple[list[dict[str, Any]], str]:
    response = await api.get("/v1/events", params={"cursor": cursor, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    EventPage.model_validate(body)  # the documented shape is the real one
    return body["items"], body["next_cursor"]


async def drain(api: Api, cursor: str, **params: Any) -> tuple[list[dict[str, Any]], str]:
    """Every event after ``cursor`` the feed can hand out now, page by page."""
    seen: list[dict[str, Any]] = []
    while True:
        items, cursor = await read(api, cursor, **params)
        seen.extend(items)
        if not items:
            return seen, cursor


async def drain_until(
    api: Api, cursor: str, done: Any, deadline: float = 30.0, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Drain from ``cursor`` until ``done(events so far)``: on PostgreSQL a transaction
    running anywhere on the server (another database's included) holds the horizon back, so
    committed events may take a moment to be handed out."""
    seen: list[dict[str, Any]] = []
    stop = time.monotonic() + deadline
    while True:
        items, cursor = await drain(api, cursor, **params)
        seen.extend(items)
        if done(seen):
            return seen, cursor
        assert time.monotonic() < stop, "the feed did not hand out the committed events"
        await asyncio.sleep(0.05)


async def head(api: Api) -> str:
    """A cursor at the feed's head: what is committed after it is what a test reads."""
    response = await api.get("/v1/events", params={"start": "now"})
    assert response.status_code == 200, response.text
    cursor: str = response.json()["next_cursor"]
    return cursor
