from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import Principal
from app.models import AuditEvent
from app.models.base import utcnow


class AuditEntry(NamedTuple):
    action: str
    resource_type: str
    resource_id: uuid.UUID | None
    death_id: uuid.UUID | None


async def write_audit(
    session: AsyncSession, principal: Principal, entries: Iterable[AuditEntry]
) -> None:
    """Write audit rows in the caller's transaction, so that a read or write and its audit
    rows land together (or not at all)."""
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "occurred_at": now,
            "client_id": principal.client_id,
            "client_name": principal.client_name,
            "on_behalf_of": principal.on_behalf_of,
            "on_behalf_of_verified": principal.on_behalf_of_verified,
            "on_behalf_of_role": principal.on_behalf_of_role,
            "action": entry.action,
            "resource_type": entry.resource_type,
            "resource_id": entry.resource_id,
            "death_id": entry.death_id,
            "request_id": principal.request_id,
            "outcome": "success",
        }
        for entry in entries
    ]
    if rows:
        await session.execute(insert(AuditEvent), rows)


async def record_access(
    session: AsyncSession,
    principal: Principal,
    action: str,
    resource_type: str,
    entries: Iterable[tuple[uuid.UUID | None, uuid.UUID | None]],
) -> None:
    """Audit ``action`` on each (resource id, patient/death id) pair."""
    await write_audit(
        session,
        principal,
        (
            AuditEntry(action, resource_type, resource_id, death_id)
            for resource_id, death_id in entries
        ),
    )
