"""The medical examiner office's worklist: deaths awaiting scrutiny, oldest death first, with
how long each has waited against the targets, and a lease for the ME who takes one.

A claim is a row beside the death (``worklist_claims``): a lease id, the client that holds it
and the person it was claimed for, and its expiry. As for referral queues, the lease is bound
to the client that claimed it (a lease id learnt elsewhere is worth nothing), and an expired
lease needs no clean-up: the death is simply claimable again."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.audit.service import record_access
from app.auth.principal import Principal
from app.config import Settings
from app.deaths.schemas import DeathOut
from app.deaths.service import load_death
from app.deaths.views import named, refs_of
from app.errors import Conflict
from app.events.service import Change
from app.kit.cursor import encode_row_cursor, row_sort_key
from app.kit.enums import DeathStatus
from app.kit.time import now
from app.models import Death, WorklistClaim
from app.notifications.schemas import ClaimOut, WorklistItem
from app.organisations.lookup import OrganisationRef
from app.referrals.workflow import lease_length

HOUR = timedelta(hours=1)


class WorklistConflict(Conflict):
    slug, title = "worklist-conflict", "The death cannot be claimed, or the lease is wrong"


def claim_out(claim: WorklistClaim, principal: Principal) -> ClaimOut:
    mine = claim.leased_by == principal.client_id
    return ClaimOut(
        death_id=claim.death_id,
        lease_id=claim.lease_id if mine else None,
        leased_to=claim.leased_to,
        claimed_at=claim.claimed_at,
        lease_expires_at=claim.lease_expires_at,
        held_by_you=mine,
    )


def _item(
    settings: Settings,
    death: Death,
    claim: WorklistClaim | None,
    principal: Principal,
    at: datetime,
    refs: dict[Any, OrganisationRef],
) -> WorklistItem:
    since = death.notified_at or death.created_at
    due = death.died_at + timedelta(days=settings.me_mccd_target_days)
    return WorklistItem(
        death=DeathOut.model_validate(death).model_copy(update=named(death, refs)),
        notified_at=since,
        waiting_hours=round((at - since) / HOUR, 2),
        hours_since_death=round((at - death.died_at) / HOUR, 2),
        mccd_due_at=due,
        mccd_overdue=at > due,
        claim=claim_out(claim, principal) if claim is not None else None,
    )


async def worklist(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    site: str | None,
    unclaimed: bool | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[WorklistItem], str | None]:
    """Deaths awaiting screening, the oldest death first (by keyset on time of death and id),
    each with its live claim. Every death listed is recorded in the audit log."""
    moment = now()
    live = and_(WorklistClaim.death_id == Death.id, WorklistClaim.lease_expires_at > moment)
    query = (
        select(Death, WorklistClaim)
        .outerjoin(WorklistClaim, live)
        .where(Death.status == DeathStatus.awaiting_screening.value)
    )
    if site is not None:
        query = query.where(Death.site == site)
    if unclaimed is not None:
        query = query.where(
            WorklistClaim.death_id.is_(None) if unclaimed else WorklistClaim.death_id.is_not(None)
        )
    if cursor is not None:
        died_at, last_id = await row_sort_key(session, cursor, Death.id, Death.died_at)
        query = query.where(
            or_(Death.died_at > died_at, and_(Death.died_at == died_at, Death.id > last_id))
        )
    rows = (await session.execute(query.order_by(Death.died_at, Death.id).limit(limit + 1))).all()
    page = rows[:limit]
    next_cursor = await encode_row_cursor(session, page[-1][0].id) if len(rows) > limit else None
    await record_access(
        session, principal, "worklist.list", "death", [(row[0].id, row[0].id) for row in page]
    )
    refs = await refs_of(session, [death for death, _ in page])
    items = [_item(settings, death, claim, principal, moment, refs) for death, claim in page]
    return items, next_cursor


def _same_person(one: str | None, other: str | None) -> bool:
    return one is None or other is None or one.lower() == other.lower()


async def claim(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    death_id: uuid.UUID,
    lease_seconds: int | None,
) -> ClaimOut:
    """Lease a death awaiting screening to the caller (and the person it names in
    X-On-Behalf-Of). Refused while another live lease holds it, or once it is screened."""
    length = lease_length(settings, lease_seconds)
    death = await load_death(session, death_id, for_update=True)  # serialises claimers
    if death.status != DeathStatus.awaiting_screening:
        raise WorklistConflict("The death is not awaiting screening.")
    moment = now()
    held = await session.get(WorklistClaim, death.id)
    if held is not None and held.lease_expires_at > moment:
        raise WorklistConflict("The death is claimed; wait for the lease to be released.")
    if held is None:
        held = WorklistClaim(death_id=death.id)
        session.add(held)
    held.lease_id = uuid.uuid4()
    held.leased_by = principal.client_id
    held.leased_to = principal.on_behalf_of
    held.claimed_at = moment
    held.lease_expires_at = moment + length
    await session.flush()
    journal = Journal(principal)
    journal.event(Change("death.claimed", "death", death.id, death.id, ["lease"]))
    journal.audit("worklist.claim", "death", death.id, death.id)
    await journal.write(session)
    return claim_out(held, principal)


async def _held(
    session: AsyncSession, principal: Principal, death_id: uuid.UUID, lease_id: uuid.UUID
) -> WorklistClaim:
    """The caller's live lease on the death. Another client's lease, a lease for another
    person, an expired or unknown one: all refused alike, so a guess confirms nothing."""
    await load_death(session, death_id, for_update=True)
    held = await session.get(WorklistClaim, death_id)
    if (
        held is None
        or held.lease_id != lease_id
        or held.leased_by != principal.client_id
        or not _same_person(held.leased_to, principal.on_behalf_of)
        or held.lease_expires_at <= now()
    ):
        raise WorklistConflict(
            "That is not the death's live lease, or not one this client holds; claim it again."
        )
    return held


async def renew(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    death_id: uuid.UUID,
    lease_id: uuid.UUID,
    lease_seconds: int | None,
) -> ClaimOut:
    length = lease_length(settings, lease_seconds)
    held = await _held(session, principal, death_id, lease_id)
    held.lease_expires_at = now() + length
    await session.flush()
    journal = Journal(principal)
    journal.audit("worklist.renew", "death", death_id, death_id)
    await journal.write(session)
    return claim_out(held, principal)


async def release(
    session: AsyncSession, principal: Principal, death_id: uuid.UUID, lease_id: uuid.UUID
) -> None:
    await _held(session, principal, death_id, lease_id)
    await session.execute(delete(WorklistClaim).where(WorklistClaim.death_id == death_id))
    journal = Journal(principal)
    journal.event(Change("death.released", "death", death_id, death_id, ["lease"]))
    journal.audit("worklist.release", "death", death_id, death_id)
    await journal.write(session)


async def end_claim(session: AsyncSession, death_id: uuid.UUID) -> None:
    """The death was screened: its claim, if any, has done its work."""
    await session.execute(delete(WorklistClaim).where(WorklistClaim.death_id == death_id))
