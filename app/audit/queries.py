"""Reading the audit log: newest first, by death, client, resource, action and time, with
keyset paging. Each page read is itself audited (`audit.read`, with the death when the search
named one, and the NHS number's keyed hash when it named one), so a patient's trail shows who
looked at it.

A row names every patient of the page it records (``death_ids``). A reader confined to some
organisations sees a row when it was written by one of their clients or names one of their
patients (app.scoping), and of another organisation's row only the patients it may see itself:
the other patients on that organisation's page are that organisation's business."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Boolean,
    ColumnElement,
    DateTime,
    String,
    Uuid,
    and_,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.integrity import audit_keys, search_hash
from app.audit.schemas import AuditEventOut
from app.audit.service import AuditEntry, write_audit
from app.auth.principal import Principal
from app.errors import BadRequest
from app.kit.cursor import open_cursor, sign_cursor
from app.kit.id_lists import names
from app.models import AuditEvent, Death
from app.scoping import current_scope


@dataclass(frozen=True)
class AuditFilters:
    death_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    action: str | None = None
    occurred_from: datetime | None = None
    occurred_before: datetime | None = None
    outcome: str | None = None
    nhs_number: str | None = None  # normalised; searched for by its keyed hash


async def list_audit_events(
    session: AsyncSession,
    principal: Principal,
    filters: AuditFilters,
    cursor: str | None,
    limit: int,
) -> tuple[list[AuditEventOut], str | None]:
    after: tuple[datetime, uuid.UUID] | None = None
    if cursor is not None:
        occurred_raw, id_raw = await open_cursor(session, cursor, 2)
        try:
            after = datetime.fromisoformat(occurred_raw), uuid.UUID(id_raw)
        except (TypeError, ValueError) as error:
            raise BadRequest("The cursor is not one this service issued.") from error
    query = select(AuditEvent)
    searched = None
    if filters.nhs_number is not None:
        searched = search_hash(await audit_keys(session), filters.nhs_number)
        query = query.where(AuditEvent.query_hash == searched)
    if filters.outcome is not None:
        query = query.where(AuditEvent.outcome == filters.outcome)
    if filters.death_id is not None:
        # A patient the reader may not see is searched for only in its own organisations'
        # rows: another organisation's row never says who else was on its page.
        own_only = not await _visible(session, filters.death_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.where(_naming(filters, after, searched, limit + 1, own_only))
        else:
            query = query.where(names(AuditEvent.death_ids, filters.death_id))
        if own_only:
            query = query.where(AuditEvent.organisation_id.in_(current_scope().organisations))
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
    if after is not None:
        occurred_at, last_id = after
        query = query.where(
            # The plain bound first: PostgreSQL prunes the later months' partitions by it.
            AuditEvent.occurred_at <= occurred_at,
            or_(
                AuditEvent.occurred_at < occurred_at,
                and_(AuditEvent.occurred_at == occurred_at, AuditEvent.id < last_id),
            ),
        )
    ordered = query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    rows = list((await session.scalars(ordered.limit(limit + 1))).all())
    page = rows[:limit]
    next_cursor = (
        await sign_cursor(session, [page[-1].occurred_at.isoformat(), str(page[-1].id)])
        if len(rows) > limit
        else None
    )
    shown = await _patients_shown(session, page)
    # Written after the page is read, so the reader never sees its own row on that page.
    await write_audit(
        session,
        principal,
        [AuditEntry("audit.read", "audit_event", None, filters.death_id, query_hash=searched)],
    )
    return [_out(row, patients) for row, patients in zip(page, shown, strict=True)], next_cursor


async def _visible(session: AsyncSession, death_id: uuid.UUID) -> bool:
    """Whether the reader may see this death (always, for the whole deployment's scope)."""
    if current_scope().everything:
        return True
    found = await session.scalar(select(Death.id).where(Death.id == death_id))
    return found is not None


def _naming(
    filters: AuditFilters,
    after: tuple[datetime, uuid.UUID] | None,
    searched: str | None,
    limit: int,
    own_only: bool,
) -> ColumnElement[bool]:
    """PostgreSQL: the keys of the page's rows naming the death, found by the database function
    lfd_audit_naming (migration 0025), which reads each month's GIN index of ``death_ids``: the
    table's row-level security would not let a query of the service's role use it (no array
    operator is leakproof). It applies the table's policy rule, every filter and the cursor
    itself; the rows are then read through the table, its policies and the query criteria."""
    keys = func.lfd_audit_naming(
        literal(filters.death_id, Uuid()),
        limit,
        literal(filters.occurred_from, DateTime(timezone=True)),
        literal(filters.occurred_before, DateTime(timezone=True)),
        literal(after[0] if after else None, DateTime(timezone=True)),
        literal(after[1] if after else None, Uuid()),
        literal(filters.client_id, Uuid()),
        literal(filters.resource_type, String()),
        literal(filters.resource_id, Uuid()),
        literal(filters.action, String()),
        literal(filters.outcome, String()),
        literal(searched, String()),
        literal(own_only, Boolean()),
    ).table_valued("id", "occurred_at")
    return tuple_(AuditEvent.id, AuditEvent.occurred_at).in_(select(keys.c.id, keys.c.occurred_at))


async def _patients_shown(session: AsyncSession, page: list[AuditEvent]) -> list[list[uuid.UUID]]:
    """Each row's patients as this reader may see them: all of them on a row of the reader's
    own organisations (what their own clients read), and on another organisation's row only
    the deaths in the reader's scope (one query for the page)."""
    scope = current_scope()
    if scope.everything:
        return [list(row.death_ids) for row in page]
    foreign = {
        death
        for row in page
        if row.organisation_id not in scope.organisations
        for death in row.death_ids
    }
    visible: set[uuid.UUID] = set()
    if foreign:
        # Scoped like every ORM statement: only the deaths this reader may see come back.
        visible = set((await session.scalars(select(Death.id).where(Death.id.in_(foreign)))).all())
    return [
        list(row.death_ids)
        if row.organisation_id in scope.organisations
        else [death for death in row.death_ids if death in visible]
        for row in page
    ]


def _out(row: AuditEvent, patients: list[uuid.UUID]) -> AuditEventOut:
    return AuditEventOut(
        id=row.id,
        occurred_at=row.occurred_at,
        client_id=row.client_id,
        client_name=row.client_name,
        on_behalf_of=row.on_behalf_of,
        on_behalf_of_verified=row.on_behalf_of_verified,
        on_behalf_of_role=row.on_behalf_of_role,
        action=row.action,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        death_id=patients[0] if len(patients) == 1 else None,
        death_ids=patients,
        request_id=row.request_id,
        outcome=row.outcome,
        query_hash=row.query_hash,
    )
