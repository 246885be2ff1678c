"""The FHIR view's reads: Task searches in queue order by keyset, one Task, one Patient,
Patients by NHS number. Every read is audited as its /v1 twin is (same actions)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.searches import audit_searches
from app.audit.service import record_access
from app.auth.principal import Principal
from app.config import Settings
from app.fhir import resources
from app.fhir.search import PatientSearch, PeriodBound, TaskSearch
from app.kit.cursor import encode_row_cursor, row_sort_key
from app.kit.sql import load_one
from app.kit.time import now
from app.models import ApiClient, Death, Referral
from app.privacy.pseudonym import pseudonym_key
from app.referrals.queue import queue_key
from app.referrals.workflow import effective_status_filter

_QUEUE_ORDER = (Referral.priority, Referral.due_at, Referral.created_at, Referral.id)
_DEATH_ORDER = (Death.died_at, Death.id)


@dataclass(frozen=True)
class Page:
    resources: list[dict[str, Any]]
    next_cursor: str | None


def _any(conditions: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    return or_(*conditions) if conditions else false()


def _period(bound: PeriodBound) -> ColumnElement[bool]:
    """FHIR date comparison of the due instant against the interval the value covers."""
    start, end = bound.interval.start, bound.interval.end
    due = Referral.due_at
    return {
        "eq": and_(due >= start, due < end),
        "gt": due >= end,
        "lt": due < start,
        "ge": due >= start,
        "le": due < end,
    }[bound.prefix]


def _task_conditions(search: TaskSearch, at: datetime) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for statuses in search.statuses:
        conditions.append(_any([effective_status_filter(status, at) for status in statuses]))
    for routes in search.routes:
        conditions.append(
            Referral.route.in_(sorted(r.value for r in routes)) if routes else false()
        )
    lease_live = and_(Referral.lease_expires_at.is_not(None), Referral.lease_expires_at > at)
    for owners in search.owners:
        folded = sorted({owner.lower() for owner in owners})
        conditions.append(
            or_(
                func.lower(Referral.assigned_to).in_(folded),
                and_(
                    Referral.assigned_to.is_(None),
                    lease_live,
                    func.lower(Referral.leased_to).in_(folded),
                ),
            )
        )
    for patients in search.patients:
        conditions.append(Referral.death_id.in_(sorted(patients)) if patients else false())
    conditions.extend(_period(bound) for bound in search.periods)
    return conditions


async def _lease_holders(
    session: AsyncSession, referrals: Sequence[Referral], at: datetime
) -> dict[uuid.UUID, str]:
    wanted = {
        holder
        for referral in referrals
        if (holder := resources.lease_holder_needed(referral, at)) is not None
    }
    if not wanted:
        return {}
    rows = await session.execute(
        select(ApiClient.id, ApiClient.name).where(ApiClient.id.in_(wanted))
    )
    return {row.id: row.name for row in rows}


async def search_tasks(session: AsyncSession, principal: Principal, search: TaskSearch) -> Page:
    """Tasks in queue order (priority, due date, creation), one keyset page."""
    at = now()
    query = select(Referral).where(*_task_conditions(search, at))
    if search.cursor is not None:
        query = query.where(tuple_(*_QUEUE_ORDER) > await queue_key(session, search.cursor))
    rows = list(
        (await session.scalars(query.order_by(*_QUEUE_ORDER).limit(search.count + 1))).all()
    )
    page, more = rows[: search.count], len(rows) > search.count
    next_cursor = None
    if more:
        next_cursor = await encode_row_cursor(session, page[-1].id)
    await record_access(
        session, principal, "referral.list", "referral", [(r.id, r.death_id) for r in page]
    )
    holders = await _lease_holders(session, page, at)
    tasks = [
        resources.task(r, at=at, pseudonymised=principal.pseudonymised, lease_holders=holders)
        for r in page
    ]
    return Page(tasks, next_cursor)


async def read_task(
    session: AsyncSession, principal: Principal, referral_id: uuid.UUID
) -> dict[str, Any]:
    referral = await load_one(session, Referral, referral_id, "Task")
    await record_access(
        session, principal, "referral.read", "referral", [(referral.id, referral.death_id)]
    )
    at = now()
    holders = await _lease_holders(session, [referral], at)
    return resources.task(
        referral, at=at, pseudonymised=principal.pseudonymised, lease_holders=holders
    )


async def _key(session: AsyncSession, principal: Principal, settings: Settings) -> bytes | None:
    if not principal.pseudonymised:
        return None
    return await pseudonym_key(session, settings.pseudonym_key)


async def read_patient(
    session: AsyncSession, principal: Principal, settings: Settings, death_id: uuid.UUID
) -> dict[str, Any]:
    death = await load_one(session, Death, death_id, "Patient")
    await record_access(session, principal, "death.read", "death", [(death.id, death.id)])
    key = await _key(session, principal, settings)
    return resources.patient(death, pseudonymised=principal.pseudonymised, key=key)


async def search_patients(
    session: AsyncSession, principal: Principal, settings: Settings, search: PatientSearch
) -> Page:
    """Deaths with the NHS number(s), newest death first."""
    query = select(Death).where(
        *[Death.nhs_number.in_(sorted(numbers)) for numbers in search.nhs_numbers]
    )
    if search.cursor is not None:
        key = await row_sort_key(session, search.cursor, Death.id, Death.died_at)
        query = query.where(tuple_(*_DEATH_ORDER) < key)
    ordered = query.order_by(Death.died_at.desc(), Death.id.desc()).limit(search.count + 1)
    rows = list((await session.scalars(ordered)).all())
    page, more = rows[: search.count], len(rows) > search.count
    next_cursor = await encode_row_cursor(session, page[-1].id) if more else None
    await record_access(session, principal, "death.list", "death", [(d.id, d.id) for d in page])
    await audit_searches(
        session, principal, {n for numbers in search.nhs_numbers for n in numbers}, page
    )
    key_ = await _key(session, principal, settings)
    patients = [
        resources.patient(death, pseudonymised=principal.pseudonymised, key=key_) for death in page
    ]
    return Page(patients, next_cursor)
