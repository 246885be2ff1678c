"""Fan-out: new committed events become deliveries, one per enabled endpoint whose types match.

One row (webhook_dispatcher) holds the change-feed position up to which events have become
deliveries. A pass locks it (FOR UPDATE SKIP LOCKED on PostgreSQL: one worker fans out, the
others skip; SQLite's writers take turns), reads the next page of the feed, inserts one delivery
per enabled endpoint whose types match (ON CONFLICT DO NOTHING on (endpoint, event)) and moves
the position, all in one transaction. The feed only hands out committed events, so a change
that rolled back never becomes a delivery; an endpoint only gets events that occurred after it
was registered.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.events.feed import Position, head_position, read_feed
from app.kit.sql import insert_for, insert_unless_exists
from app.kit.time import now
from app.models import ApiClient, WebhookDelivery, WebhookDispatcher, WebhookEndpoint
from app.reach import reach_of
from app.scoping import DataScope
from app.webhooks.payload import event_body
from app.webhooks.schemas import DeliveryStatus, subscribed

DISPATCHER = "default"
FANOUT_PAGE = 500
FANOUT_PAGES_PER_PASS = 20


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _fan_out_page(session: AsyncSession, page_size: int) -> tuple[int, bool] | None:
    """One page of the feed into deliveries. None when another worker holds the dispatcher;
    otherwise (deliveries created, whether there may be more)."""
    query = select(WebhookDispatcher).where(WebhookDispatcher.name == DISPATCHER)
    if _postgres(session):
        query = query.with_for_update(skip_locked=True)
    dispatcher = await session.scalar(query)
    if dispatcher is None:
        # Locked by another worker, or (a damaged database) missing: put it back, from "now".
        head = await head_position(session)
        await insert_unless_exists(
            session,
            WebhookDispatcher,
            ("name",),
            {"name": DISPATCHER, "txid": head.txid, "seq": head.seq, "updated_at": now()},
            returning=("name",),
        )
        return None
    after = (
        Position(dispatcher.txid, dispatcher.seq)
        if dispatcher.txid is not None and dispatcher.seq is not None
        else None
    )
    listening = (
        await session.execute(
            select(
                WebhookEndpoint.id,
                WebhookEndpoint.event_types,
                WebhookEndpoint.created_at,
                ApiClient.organisation_id,
                ApiClient.pseudonymised,
            )
            .join(ApiClient, ApiClient.id == WebhookEndpoint.created_by_client_id)
            .where(WebhookEndpoint.enabled.is_(True))
            .order_by(WebhookEndpoint.id)
        )
    ).all()
    # Each endpoint gets only the events its owner may see (app.scoping): its organisation's,
    # its members' for a pseudonymised owner, and the deaths shared with it.
    scopes: dict[tuple[uuid.UUID | None, bool], DataScope] = {}
    endpoints = []
    for endpoint_id, types, created_at, organisation_id, pseudonymised in listening:
        key = (organisation_id, pseudonymised)
        if key not in scopes:
            scopes[key] = await reach_of(session, organisation_id, members=pseudonymised)
        endpoints.append((endpoint_id, types, created_at, scopes[key]))
    if not endpoints:
        # Nobody listens: skip to the head rather than walk the history later.
        head = await head_position(session)
        _move(dispatcher, head if after is None else max(head, after))
        return 0, False
    page = await read_feed(session, after, page_size)
    moment = now()
    rows: list[dict[str, Any]] = []
    for event in page.events:
        body: str | None = None
        for endpoint_id, types, created_at, scope in endpoints:
            if not subscribed(event.type, types) or event.occurred_at < created_at:
                continue
            if not scope.sees_event(event.organisation_id, event.death_id):
                continue
            body = body or event_body(event)
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "endpoint_id": endpoint_id,
                    "event_id": event.id,
                    "event_type": event.type,
                    "body": body,
                    "status": DeliveryStatus.pending.value,
                    "attempts": 0,
                    "next_attempt_at": moment,
                    "created_at": moment,
                    "updated_at": moment,
                }
            )
    if rows:
        statement = insert_for(session, WebhookDelivery).on_conflict_do_nothing(
            index_elements=["endpoint_id", "event_id"]
        )
        await session.execute(statement, rows)
    if page.next is not None:
        _move(dispatcher, page.next)
    return len(rows), len(page.events) == page_size


def _move(dispatcher: WebhookDispatcher, position: Position) -> None:
    dispatcher.txid, dispatcher.seq = position.txid, position.seq
    dispatcher.updated_at = now()


async def fan_out(
    database: Database, *, page_size: int = FANOUT_PAGE, max_pages: int = FANOUT_PAGES_PER_PASS
) -> int:
    """Turn new committed events into deliveries, a page per transaction. Returns how many
    deliveries were created (0 when another worker is fanning out)."""
    created = 0
    for _ in range(max_pages):
        async with database.transaction() as session:
            result = await _fan_out_page(session, page_size)
        if result is None:
            break
        count, more = result
        created += count
        if not more:
            break
    return created
