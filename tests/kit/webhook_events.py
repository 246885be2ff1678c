"""Helpers for tests that drive the webhook worker: emit events of a type no endpoint outside
the test subscribes to, and wait until the change feed has turned them into deliveries."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from app.db import Database
from app.events.feed import Position
from app.events.service import Change, emit
from app.models import OutboxEvent, WebhookDispatcher
from app.webhooks.fanout import DISPATCHER, fan_out

THEME_UPDATED = "theme.updated"  # emitted directly, with made-up resource ids


@dataclass(frozen=True)
class System:
    """Who emits the tests' own events (no client, no request)."""

    client_id: uuid.UUID | None = None
    request_id: str | None = None


class _RolledBack(Exception):
    pass


async def emit_events(database: Database, count: int, *, rollback: bool = False) -> list[uuid.UUID]:
    """Emit ``count`` events in one transaction; with ``rollback``, a transaction that rolls
    back (nothing may come of its events)."""
    ids = [uuid.uuid4() for _ in range(count)]
    try:
        async with database.transaction() as session:
            await emit(
                session, System(), [Change(THEME_UPDATED, "theme", i, None, ["name"]) for i in ids]
            )
            if rollback:
                raise _RolledBack
    except _RolledBack:
        pass
    return ids


async def drain(database: Database) -> None:
    """Fan out every event committed so far. On PostgreSQL the feed hands out an event only
    once every older transaction on the server has finished (app.events.feed): poll for it."""
    async with database.transaction() as session:
        latest = (
            await session.execute(
                select(OutboxEvent.txid, OutboxEvent.seq)
                .order_by(OutboxEvent.txid.desc(), OutboxEvent.seq.desc())
                .limit(1)
            )
        ).first()
    target = Position(latest.txid, latest.seq) if latest else Position(0, 0)
    for _ in range(6000):
        await fan_out(database, max_pages=100_000)
        async with database.transaction() as session:
            reached = await session.get(WebhookDispatcher, DISPATCHER)
        if reached is not None and reached.txid is not None and reached.seq is not None:
            done = Position(reached.txid, reached.seq) >= target
            if done:
                return
        await asyncio.sleep(0.02)
    raise AssertionError("the change feed did not reach the test's events")
