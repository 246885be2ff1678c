"""The medical examiner office's worklist: deaths awaiting scrutiny, oldest death first, with
how long each has waited against the targets, and a lease for the ME who takes one.

A claim is a row beside the death (``worklist_claims``): a lease id, the client that holds it
and the person it was claimed for, and its expiry. As for referral queues, the lease is bound
to the client that claimed it (a lease id learnt elsewhere is worth nothing), and to the
person it was claimed for when it names one; an expired lease needs no clean-up: the death is
simply claimable again.

The claim binds: while it is live, a screening of the death (and a notes-received time) is
accepted only from the holder presenting the lease (``check_claim``); anyone else gets a 409
naming when the lease expires. Refusals are recorded in the audit log on their own
(``audited_claim_refusals``), as referral lease refusals are."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.audit.service import AuditEntry, record_access, write_audit
from app.auth.principal import Principal
from app.config import Settings
from app.db import Database
from app.deaths.schemas import DeathOut
from app.deaths.service import load_death
from app.deaths.validation import CLOCK_SKEW
from app.deaths.views import named, refs_of
from app.errors import Conflict, ValidationFailed
from app.events.service import Change
from app.kit.cursor import encode_row_cursor, row_sort_key
from app.kit.enums import DeathStatus
from app.kit.time import now
from app.models import Death, WorklistClaim
from app.notifications.schemas import ClaimOut, WorklistItem
from app.organisations.lookup import OrganisationRef
from app.organisations.ownership import check_owner
from app.referrals.workflow import lease_length

HOUR = timedelta(hours=1)
# The national target: scrutiny within 24 hours of the notes reaching the ME office.
SCRUTINY_TARGET = timedelta(hours=24)


class WorklistConflict(Conflict):
    slug, title = "worklist-conflict", "The death cannot be claimed, or the lease is wrong"


class ClaimRefused(WorklistConflict):
    """A lease refused: the death is claimed by someone else, or the lease presented is not
    the caller's live one. Names the live lease's expiry when there is one (never who holds it
    beyond what the worklist shows, nor anything of the patient)."""

    def __init__(self, detail: str, death_id: uuid.UUID, expires: datetime | None = None) -> None:
        # As the claim's own lease_expires_at is shown (ISO 8601 in UTC, "Z").
        extra = (
            {"lease_expires_at": expires.astimezone(UTC).isoformat().replace("+00:00", "Z")}
            if expires is not None
            else {}
        )
        super().__init__(detail, extra=extra)
        self.death_id = death_id


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
    notes = death.notes_received_at
    scrutiny_due = notes + SCRUTINY_TARGET if notes is not None else None
    return WorklistItem(
        death=DeathOut.model_validate(death).model_copy(update=named(death, refs)),
        notified_at=since,
        waiting_hours=round((at - since) / HOUR, 2),
        hours_since_death=round((at - death.died_at) / HOUR, 2),
        mccd_due_at=due,
        mccd_overdue=at > due,
        notes_received_at=notes,
        scrutiny_due_at=scrutiny_due,
        scrutiny_overdue=scrutiny_due is not None and at > scrutiny_due,
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


def _holds(held: WorklistClaim, principal: Principal) -> bool:
    """The caller holds the lease: the client that claimed it, and, when the claim named a
    person (X-On-Behalf-Of), a request for that same person."""
    if held.leased_by != principal.client_id:
        return False
    if held.leased_to is None:
        return True
    person = principal.on_behalf_of
    return person is not None and person.lower() == held.leased_to.lower()


async def check_claim(
    session: AsyncSession, principal: Principal, death: Death, lease_id: uuid.UUID | None
) -> None:
    """A death that a live lease holds may be screened only by the lease's holder presenting
    it; a death without a live lease (never claimed, released, expired) by anyone. The death
    is locked by the caller, so a claim cannot slip in between."""
    held = await session.get(WorklistClaim, death.id)
    if held is None or held.lease_expires_at <= now():
        return
    if lease_id is None:
        raise ClaimRefused(
            "The death is claimed on the ME worklist: present its lease (worklist_lease_id), "
            "or wait until the lease expires or is released.",
            death.id,
            held.lease_expires_at,
        )
    if held.lease_id != lease_id or not _holds(held, principal):
        raise ClaimRefused(
            "That is not the death's live worklist lease, or not one this client (and person) "
            "holds.",
            death.id,
            held.lease_expires_at,
        )


@asynccontextmanager
async def audited_claim_refusals(database: Database, principal: Principal) -> AsyncIterator[None]:
    """Around a request's transaction: a refused lease (above, or a claim, renewal or release)
    rolls the transaction back, and is then recorded in the audit log on its own (outcome
    `refused`), as app.referrals.workflow records referral lease refusals."""
    try:
        yield
    except ClaimRefused as refusal:
        async with database.transaction() as session:
            await write_audit(
                session,
                principal,
                [
                    AuditEntry(
                        "worklist.lease_refused",
                        "death",
                        refusal.death_id,
                        refusal.death_id,
                        outcome="refused",
                    )
                ],
            )
        raise


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
    check_owner(death.organisation_id, death.id, "medical examiner worklist")
    if death.status != DeathStatus.awaiting_screening:
        raise WorklistConflict("The death is not awaiting screening.")
    moment = now()
    held = await session.get(WorklistClaim, death.id)
    if held is not None and held.lease_expires_at > moment:
        raise ClaimRefused(
            "The death is claimed; wait for the lease to expire or be released.",
            death.id,
            held.lease_expires_at,
        )
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
    """The caller's live lease on the death. Another client's lease, a lease claimed for
    another person (or for a person, by a request that names none), an expired or unknown
    one: all refused alike, so a guess confirms nothing."""
    death = await load_death(session, death_id, for_update=True)
    check_owner(death.organisation_id, death.id, "medical examiner worklist")
    held = await session.get(WorklistClaim, death_id)
    if (
        held is None
        or held.lease_id != lease_id
        or not _holds(held, principal)
        or held.lease_expires_at <= now()
    ):
        raise ClaimRefused(
            "That is not the death's live lease, or not one this client (and person) holds; "
            "claim it again.",
            death_id,
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


async def record_notes(
    session: AsyncSession,
    principal: Principal,
    death_id: uuid.UUID,
    received_at: datetime,
    lease_id: uuid.UUID | None,
) -> None:
    """When the notes of a death awaiting scrutiny reached the ME office: the 24-hour
    scrutiny target runs from it on the worklist, and the screening takes it when it gives
    none of its own (app.screenings.attach). Bound by a live claim as a screening is."""
    death = await load_death(session, death_id, for_update=True)
    check_owner(death.organisation_id, death.id, "medical examiner worklist")
    if death.status != DeathStatus.awaiting_screening:
        raise WorklistConflict(
            "The death is not awaiting screening: the notes' arrival is part of its screening."
        )
    await check_claim(session, principal, death, lease_id)
    if received_at < death.died_at:
        raise _invalid_notes_time("the notes' arrival is before the death")
    if received_at > now() + CLOCK_SKEW:
        raise _invalid_notes_time("the notes' arrival is in the future")
    death.notes_received_at = received_at
    await session.flush()
    journal = Journal(principal)
    journal.audit("worklist.notes_received", "death", death.id, death.id)
    await journal.write(session)


def _invalid_notes_time(detail: str) -> ValidationFailed:
    return ValidationFailed(
        "The time is not possible for this death; see errors.",
        errors=[{"pointer": "/notes_received_at", "code": "value_error", "detail": detail}],
    )
