"""The referral queues: listing in queue order, one referral, what is late."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, and_, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record_access
from app.auth.principal import Principal
from app.kit.cursor import encode_row_cursor, row_sort_key
from app.kit.enums import OPEN_REFERRAL_STATUSES, ReferralStatus, Route
from app.kit.time import LONDON, now
from app.models import Referral
from app.referrals.rows import COLUMNS, referrals_json
from app.referrals.schemas import OverdueGroup, OverdueSummary
from app.referrals.workflow import effective_status_filter, load_referral


@dataclass(frozen=True)
class ReferralFilters:
    route: Route | None = None
    status: ReferralStatus | None = None
    specialty: str | None = None
    site: str | None = None
    death_id: uuid.UUID | None = None
    overdue: bool | None = None
    due_before: date | None = None
    stage: int | None = None
    assigned_to: str | None = None
    programme_id: uuid.UUID | None = None


# The open statuses as literals, not bound parameters: planned without their values (a generic
# plan for a prepared statement), `status IN ($1..$4)` can turn into a sequential scan.
OPEN_PREDICATE = text(
    "referrals.status IN ("
    + ", ".join(f"'{status.value}'" for status in sorted(OPEN_REFERRAL_STATUSES))
    + ")"
)

_QUEUE_ORDER = (Referral.priority, Referral.due_at, Referral.created_at, Referral.id)
_PAGE = select(*COLUMNS)


def _filtered(filters: ReferralFilters, at: datetime) -> Select[Any]:
    # The columns, not the mapped objects: a page is read straight into JSON (app.referrals.
    # rows), with no identity map or instance state per row; still an ORM select of Referral,
    # so the organisation scope's criteria apply (app.scoping). Built once: a statement is
    # immutable (each filter makes a new one), and coercing its 26 columns cost a quarter of
    # a millisecond a page.
    query = _PAGE
    if filters.route is not None:
        query = query.where(Referral.route == filters.route.value)
    if filters.status is not None:
        query = query.where(effective_status_filter(filters.status, at))
    if filters.stage is not None:
        query = query.where(Referral.stage == filters.stage)
    if filters.assigned_to is not None:
        # Without letter case, as a claim compares its reviewer (ix_referrals_assigned_to_folded).
        query = query.where(func.lower(Referral.assigned_to) == filters.assigned_to.lower())
    if filters.specialty is not None:
        query = query.where(Referral.specialty == filters.specialty)
    if filters.site is not None:
        query = query.where(Referral.site == filters.site)
    if filters.death_id is not None:
        query = query.where(Referral.death_id == filters.death_id)
    if filters.programme_id is not None:
        query = query.where(Referral.programme_id == filters.programme_id)
    if filters.due_before is not None:
        midnight = datetime.combine(filters.due_before, datetime.min.time(), LONDON)
        query = query.where(Referral.due_at < midnight)
    if filters.overdue is not None:
        late = and_(OPEN_PREDICATE, Referral.due_at < at)
        query = query.where(late if filters.overdue else ~late)
    return query


async def queue_key(session: AsyncSession, cursor: str) -> tuple[Any, ...]:
    """The queue position (priority, due date, creation, id) of the referral a page's cursor
    names. The cursor names the row only (signed, app.kit.cursor): its dates are read back from
    the row, so a cursor tells a client (a commissioner's included) no date."""
    return await row_sort_key(
        session, cursor, Referral.id, Referral.priority, Referral.due_at, Referral.created_at
    )


async def list_referrals(
    session: AsyncSession,
    principal: Principal,
    filters: ReferralFilters,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """A queue page in (priority, due date, creation) order, by keyset: each referral as
    ``principal`` is shown it (app.referrals.rows: ReferralOut's document)."""
    moment = now()
    query = _filtered(filters, moment)
    if cursor is not None:
        key = await queue_key(session, cursor)
        query = query.where(_after(key))
    result = await session.execute(query.order_by(*_QUEUE_ORDER).limit(limit + 1))
    rows = result.mappings().all()
    page, more = rows[:limit], len(rows) > limit
    next_cursor = None
    if more:
        next_cursor = await encode_row_cursor(session, page[-1]["id"])
    await record_access(
        session, principal, "referral.list", "referral", [(r["id"], r["death_id"]) for r in page]
    )
    return referrals_json(page, principal.client_id, moment), next_cursor


def _after(key: tuple[int, datetime, datetime, uuid.UUID]) -> Any:
    """Rows strictly after ``key`` in queue order, as one row-value comparison: PostgreSQL
    starts the queue index's range there (an expanded OR of the columns is only a filter over
    every earlier row, or a bitmap that must be sorted); SQLite has row values since 3.15."""
    return tuple_(*_QUEUE_ORDER) > key


async def read_referral(
    session: AsyncSession, principal: Principal, referral_id: uuid.UUID
) -> Referral:
    referral = await load_referral(session, referral_id)
    await record_access(
        session, principal, "referral.read", "referral", [(referral.id, referral.death_id)]
    )
    return referral


async def overdue_summary(session: AsyncSession) -> OverdueSummary:
    """Open referrals past their due date, counted by route and specialty, in the database."""
    moment = now()
    open_statuses = [s.value for s in OPEN_REFERRAL_STATUSES]
    rows = (
        await session.execute(
            select(
                Referral.route,
                Referral.specialty,
                func.count().label("overdue"),
                func.min(Referral.due_at).label("oldest_due_at"),
            )
            .where(Referral.status.in_(open_statuses), Referral.due_at < moment)
            .group_by(Referral.route, Referral.specialty)
            .order_by(func.count().desc(), Referral.route, Referral.specialty)
        )
    ).all()
    groups = [
        OverdueGroup(
            route=Route(row.route),
            specialty=row.specialty,
            overdue=row.overdue,
            oldest_due_at=_aware(row.oldest_due_at),
        )
        for row in rows
    ]
    return OverdueSummary(as_of=moment, total=sum(g.overdue for g in groups), groups=groups)


def _aware(moment: datetime | str) -> datetime:
    # An aggregate (min) comes back without the column type's processing on SQLite.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
