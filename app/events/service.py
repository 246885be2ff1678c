from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import Principal
from app.models import OutboxEvent
from app.models.base import utcnow


@dataclass(frozen=True)
class Change:
    """One state change to publish: its event type, the resource, and the names (never the
    values) of the fields that changed."""

    type: str
    resource_type: str
    resource_id: uuid.UUID
    death_id: uuid.UUID | None
    changed: list[str] = field(default_factory=list)


async def emit(session: AsyncSession, principal: Principal, changes: Iterable[Change]) -> None:
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "type": change.type,
            "resource_type": change.resource_type,
            "resource_id": change.resource_id,
            "death_id": change.death_id,
            "changed": sorted(change.changed),
            "occurred_at": now,
            "client_id": principal.client_id,
            "request_id": principal.request_id,
        }
        for change in changes
    ]
    if rows:
        await session.execute(insert(OutboxEvent), rows)
