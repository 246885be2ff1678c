from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import Principal
from app.models import AuditEvent
from app.models.base import utcnow


async def record_access(
    session: AsyncSession,
    principal: Principal,
    action: str,
    resource_type: str,
    entries: Iterable[tuple[uuid.UUID | None, uuid.UUID | None]],
) -> None:
    """Audit ``action`` on each (resource id, patient/death id) pair, in the caller's
    transaction, so that a read or write and its audit rows land together."""
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "occurred_at": now,
            "client_id": principal.client_id,
            "client_name": principal.client_name,
            "on_behalf_of": principal.on_behalf_of,
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "death_id": death_id,
            "request_id": principal.request_id,
            "outcome": "success",
        }
        for resource_id, death_id in entries
    ]
    if rows:
        await session.execute(insert(AuditEvent), rows)
