"""Reading the audit log: newest first, by death, client, resource, action and time, with
keyset paging. Each page read is itself audited (`audit.read`, with the death when the search
named one), so a patient's trail shows who looked at it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import AuditEntry, write_audit
from app.auth.principal import Principal
from app.errors import BadRequest
from app.kit.cursor import open_cursor, sign_cursor
from app.models import AuditEvent


@dataclass(frozen=True)
class AuditFilters:
    death_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    action: str | None = None
    occurred_from: datetime | None = None
    occurred_before: datetime | None = None


async def list_audit_events(
    session: AsyncSession,
    principal: Principal,
    filters: AuditFilters,
    cursor: str | None,
    limit: int,
) -> tuple[list[AuditEvent], str | None]:
    query = select(AuditEvent)
    if filters.death_id is not None:
        query = query.where(AuditEvent.death_id == filters.death_id)
    if filters.client_id is not None:
        query = query.where(AuditEvent.client_id == filters.client_id)
    if filters.resource_type is not None:
        query = query.where(AuditEvent.resource_type == filters.resource_type)
    if filters.resource_id is not None:
        query = query.where(AuditEvent.resource_id == filters.resource_id)
    if filters.action is not None:
        query = query.where(AuditEvent.action == filters.action)
    if filters.occurred_from is not None:
        query = query.where(AuditEvent.occurred_at >= filters.occurred_from)
    if filters.occurred_before is not None:
        query = query.where(AuditEvent.occurred_at < filters.occurred_before)
    if cursor is not None:
        occurred_raw, id_raw = await open_cursor(session, cursor, 2)
        try:
            occurred_at, last_id = datetime.fromisoformat(occurred_raw), uuid.UUID(id_raw)
        except (TypeError, ValueError) as error:
            raise BadRequest("The cursor is not one this service issued.") from error
        query = query.where(
            or_(
                AuditEvent.occurred_at < occurred_at,
                and_(AuditEvent.occurred_at == occurred_at, AuditEvent.id < last_id),
            )
        )
    ordered = query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    rows = list((await session.scalars(ordered.limit(limit + 1))).all())
    page = rows[:limit]
    next_cursor = (
        await sign_cursor(session, [page[-1].occurred_at.isoformat(), str(page[-1].id)])
        if len(rows) > limit
        else None
    )
    # Written after the page is read, so the reader never sees its own row on that page.
    await write_audit(
        session, principal, [AuditEntry("audit.read", "audit_event", None, filters.death_id)]
    )
    return page, next_cursor
