"""The referral lifecycle: claims and leases, assignment, decline, hold, resume, cancel.

Stored status is one of ready, in_progress, on_hold, completed, declined, cancelled. A lease
lives beside it (lease id, holder, expiry): a ready referral under a live lease reads as
`claimed`; an expired lease needs no clean-up, the referral is simply claimable again. Each
transition is allowed only from the states where it makes sense, is recorded in
`referral_transitions` (who, when, why), and writes its event and audit row in the same
transaction."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.audit.service import AuditEntry, record_access, write_audit
from app.auth.principal import Principal
from app.config import Settings
from app.db import Database
from app.deaths.status import refresh_death_status
from app.errors import Conflict, ValidationFailed
from app.events.service import Change
from app.kit.enums import ReferralStatus, Route
from app.kit.sql import insert_rows, load_one
from app.kit.time import now
from app.models import Referral, ReferralTransition, Review
from app.organisations.ownership import (
    require_owner,
    require_referral_work,
    workable_referrals,
)

CLAIMABLE = (ReferralStatus.ready.value, ReferralStatus.in_progress.value)
CLAIMABLE_PREDICATE = text("referrals.status IN ('ready', 'in_progress')")
OPEN = (*CLAIMABLE, ReferralStatus.on_hold.value)


class TransitionRefused(Conflict):
    slug, title = "transition-not-allowed", "Not allowed in the referral's current state"


class LeaseConflict(Conflict):
    slug, title = "lease-conflict", "The lease is wrong or has expired"

    def __init__(self, detail: str, referral: Referral) -> None:
        super().__init__(detail, extra={"current_status": referral.effective_status})
        self.referral_id, self.death_id = referral.id, referral.death_id


def refuse(referral: Referral, action: str) -> TransitionRefused:
    status = referral.effective_status
    return TransitionRefused(
        f"A referral that is {status} cannot be {action}.", extra={"current_status": status}
    )


def _same_person(one: str | None, other: str | None) -> bool:
    return one is not None and other is not None and one.lower() == other.lower()


async def _claimed_for(session: AsyncSession, referral: Referral) -> str | None:
    """The person (X-On-Behalf-Of) the live lease's claim was sent for."""
    person: str | None = await session.scalar(
        select(ReferralTransition.on_behalf_of)
        .where(ReferralTransition.referral_id == referral.id, ReferralTransition.action == "claim")
        .order_by(ReferralTransition.occurred_at.desc(), ReferralTransition.id.desc())
        .limit(1)
    )
    return person


async def holds_lease(session: AsyncSession, referral: Referral, principal: Principal) -> bool:
    """Whether the caller holds the referral's lease (live or not): the client that claimed
    it, and, when the request names a person (X-On-Behalf-Of) and the lease names a reviewer,
    that reviewer or the person the claim was sent for. A request that names no person is the
    client's own system acting for whoever it claimed for."""
    if referral.leased_by is None or referral.leased_by != principal.client_id:
        return False
    person = principal.on_behalf_of
    if person is None or referral.leased_to is None or _same_person(person, referral.leased_to):
        return True
    return _same_person(person, await _claimed_for(session, referral))


async def check_lease(
    session: AsyncSession,
    principal: Principal,
    referral: Referral,
    lease_id: uuid.UUID | None,
    at: datetime,
) -> None:
    """A live lease must be presented, by its holder; a presented lease must be the live one.
    Another client's lease (or another person's, above) is refused exactly as a wrong lease
    id is, so a lease id learnt elsewhere is worth nothing and a guess confirms nothing."""
    live = referral.lease_live(at)
    if lease_id is None and not live:
        return
    if lease_id is None:
        raise LeaseConflict("The referral is claimed: present its lease_id.", referral)
    ours = referral.lease_id == lease_id and await holds_lease(session, referral, principal)
    if ours and live:
        return
    if ours:
        raise LeaseConflict("That lease has expired; claim the referral again.", referral)
    raise LeaseConflict(
        "That is not the referral's current lease, or not one this client holds.", referral
    )


@asynccontextmanager
async def audited_lease_refusals(database: Database, principal: Principal) -> AsyncIterator[None]:
    """Around a request's transaction: a lease refused (above) rolls the transaction back, and
    is then recorded in the audit log on its own (outcome `refused`), whose lease it was not
    being the point of the record."""
    try:
        yield
    except LeaseConflict as refusal:
        async with database.transaction() as session:
            await write_audit(
                session,
                principal,
                [
                    AuditEntry(
                        "referral.lease_refused",
                        "referral",
                        refusal.referral_id,
                        refusal.death_id,
                        outcome="refused",
                    )
                ],
            )
        raise


def reviewer_of(principal: Principal, named: str | None) -> str | None:
    return named or principal.on_behalf_of


def clear_lease(referral: Referral) -> None:
    referral.lease_id = None
    referral.leased_by = None
    referral.leased_to = None
    referral.claimed_at = None
    referral.lease_expires_at = None


class Transitions:
    """Collects a request's transitions, events and audit rows."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.rows: list[dict[str, object]] = []

    def record(
        self,
        referral: Referral,
        action: str,
        from_status: str | None,
        *,
        event: str,
        changed: Iterable[str],
        reason: str | None = None,
        reviewer: str | None = None,
    ) -> None:
        principal = self.journal.principal
        referral.version += 1
        referral.updated_at = now()
        self.rows.append(
            {
                "id": uuid.uuid4(),
                "referral_id": referral.id,
                "death_id": referral.death_id,
                "action": action,
                "from_status": from_status,
                "to_status": referral.effective_status,
                "reason": reason,
                "reviewer": reviewer,
                "client_id": principal.client_id,
                "on_behalf_of": principal.on_behalf_of,
                "occurred_at": now(),
            }
        )
        self.journal.event(Change(event, "referral", referral.id, referral.death_id, list(changed)))
        self.journal.audit(f"referral.{action}", "referral", referral.id, referral.death_id)

    async def write(self, session: AsyncSession) -> None:
        await session.flush()
        await insert_rows(session, ReferralTransition, self.rows)
        self.rows = []
        await self.journal.write(session)


async def load_referral(
    session: AsyncSession, referral_id: uuid.UUID, *, for_update: bool = False
) -> Referral:
    return await load_one(session, Referral, referral_id, "referral", for_update=for_update)


def lease_length(settings: Settings, requested: int | None) -> timedelta:
    seconds = requested or settings.lease_default_seconds
    if seconds > settings.lease_max_seconds:
        raise ValidationFailed(
            f"A lease lasts at most {settings.lease_max_seconds} seconds.",
            errors=[
                {
                    "pointer": "/lease_seconds",
                    "code": "too_long",
                    "detail": f"at most {settings.lease_max_seconds}",
                }
            ],
        )
    return timedelta(seconds=seconds)


async def claim(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    route: Route,
    *,
    count: int,
    lease_seconds: int | None,
    specialty: str | None,
    stage: int | None,
    reviewer: str | None,
    programme_id: uuid.UUID | None = None,
) -> list[Referral]:
    """Lease the next claimable referrals of a route, in queue order, to the caller.

    Claimable: stored ready or in progress, with no live lease, not assigned to another
    reviewer, and (stage-2 SJR) not excluded for this reviewer. On PostgreSQL the rows are
    locked FOR UPDATE SKIP LOCKED, so concurrent claimers never take the same referral and
    never wait for each other; SQLite serialises writers, which gives the same contract."""
    if count > settings.claim_max_count:
        raise ValidationFailed(
            f"A claim takes at most {settings.claim_max_count} referrals.",
            errors=[
                {
                    "pointer": "/count",
                    "code": "too_many",
                    "detail": f"at most {settings.claim_max_count}",
                }
            ],
        )
    length = lease_length(settings, lease_seconds)
    moment = now()
    query = (
        select(Referral)
        .where(
            Referral.route == route.value,
            # Written as the partial index's own predicate, with literals: a bound parameter
            # would stop PostgreSQL proving that ix_referrals_claimable covers the query once
            # the prepared statement switches to a generic plan.
            CLAIMABLE_PREDICATE,
            or_(Referral.lease_expires_at.is_(None), Referral.lease_expires_at <= moment),
        )
        .order_by(Referral.priority, Referral.due_at, Referral.created_at, Referral.id)
        .limit(count)
        .with_for_update(skip_locked=True)
    )
    if reviewer is None:
        query = query.where(Referral.assigned_to.is_(None), Referral.excluded_reviewer.is_(None))
    else:
        folded = reviewer.lower()  # as SQL's lower() folds it
        query = query.where(
            or_(Referral.assigned_to.is_(None), func.lower(Referral.assigned_to) == folded),
            or_(
                Referral.excluded_reviewer.is_(None),
                func.lower(Referral.excluded_reviewer) != folded,
            ),
        )
    if specialty is not None:
        query = query.where(Referral.specialty == specialty)
    workable = workable_referrals()
    if workable is not None:
        # Of a death shared with the client, only the referral its share names for review.
        query = query.where(workable)
    if stage is not None:
        query = query.where(Referral.stage == stage)
    if programme_id is not None:
        # One review programme's queue (ix_referrals_programme_claimable).
        query = query.where(Referral.programme_id == programme_id)
    referrals = list((await session.scalars(query)).all())
    transitions = Transitions(Journal(principal))
    for referral in referrals:
        before = referral.effective_status
        referral.lease_id = uuid.uuid4()
        referral.leased_by = principal.client_id
        referral.leased_to = reviewer
        referral.claimed_at = moment
        referral.lease_expires_at = moment + length
        transitions.record(
            referral,
            "claim",
            before,
            event="referral.claimed",
            changed=["lease_id", "lease_expires_at", "leased_to"],
            reviewer=reviewer,
        )
    await transitions.write(session)
    return referrals


async def renew(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    referral_id: uuid.UUID,
    lease_id: uuid.UUID,
    lease_seconds: int | None,
) -> Referral:
    referral = await load_referral(session, referral_id, for_update=True)
    await require_referral_work(session, referral, "referrals")
    moment = now()
    if referral.status not in CLAIMABLE:
        raise refuse(referral, "renewed")
    await check_lease(session, principal, referral, lease_id, moment)
    referral.lease_expires_at = moment + lease_length(settings, lease_seconds)
    transitions = Transitions(Journal(principal))
    status = referral.effective_status
    transitions.record(
        referral,
        "renew",
        status,
        event="referral.lease_renewed",
        changed=["lease_expires_at"],
        reviewer=referral.leased_to,
    )
    await transitions.write(session)
    return referral


async def release(
    session: AsyncSession, principal: Principal, referral_id: uuid.UUID, lease_id: uuid.UUID
) -> Referral:
    referral = await load_referral(session, referral_id, for_update=True)
    await require_referral_work(session, referral, "referrals")
    moment = now()
    if referral.status not in CLAIMABLE:
        raise refuse(referral, "released")
    await check_lease(session, principal, referral, lease_id, moment)
    before, reviewer = referral.effective_status, referral.leased_to
    clear_lease(referral)
    transitions = Transitions(Journal(principal))
    transitions.record(
        referral,
        "release",
        before,
        event="referral.released",
        changed=["lease_id"],
        reviewer=reviewer,
    )
    await transitions.write(session)
    return referral


async def assign(
    session: AsyncSession, principal: Principal, referral_id: uuid.UUID, assigned_to: str | None
) -> Referral:
    referral = await load_referral(session, referral_id, for_update=True)
    await require_owner(session, referral.death_id, "referrals")
    if referral.status not in OPEN:
        raise refuse(referral, "assigned")
    if (
        assigned_to is not None
        and referral.excluded_reviewer is not None
        and assigned_to.lower() == referral.excluded_reviewer.lower()
    ):
        raise TransitionRefused(
            "The stage-1 reviewer cannot take the stage-2 review.",
            extra={"current_status": referral.effective_status},
        )
    if referral.assigned_to == assigned_to:
        return referral
    before = referral.effective_status
    referral.assigned_to = assigned_to
    transitions = Transitions(Journal(principal))
    transitions.record(
        referral,
        "assign" if assigned_to else "unassign",
        before,
        event="referral.assigned",
        changed=["assigned_to"],
        reviewer=assigned_to,
    )
    await transitions.write(session)
    return referral


@dataclass(frozen=True)
class StatusChange:
    """One of the referral's status changes with a reason (decline, hold, resume, cancel):
    the states it may start from, where it goes, whether the referral's lease must be shown
    (when it is claimed), and how it is named in errors and events."""

    to: ReferralStatus
    allowed: tuple[str, ...]
    needs_lease: bool
    done: str
    event: str


# The referral state machine's status changes (docs/referrals.md has the whole diagram).
STATUS_CHANGES: dict[str, StatusChange] = {
    "decline": StatusChange(ReferralStatus.declined, OPEN, True, "declined", "referral.declined"),
    "hold": StatusChange(ReferralStatus.on_hold, CLAIMABLE, True, "put on hold", "referral.held"),
    "resume": StatusChange(
        ReferralStatus.ready, (ReferralStatus.on_hold.value,), False, "resumed", "referral.resumed"
    ),
    "cancel": StatusChange(
        ReferralStatus.cancelled, OPEN, False, "cancelled", "referral.cancelled"
    ),
}


async def change_status(
    session: AsyncSession,
    principal: Principal,
    referral_id: uuid.UUID,
    action: str,
    *,
    reason: str | None,
    lease_id: uuid.UUID | None,
) -> Referral:
    """Decline, hold, resume or cancel (``STATUS_CHANGES``): a status change with a reason,
    ending any lease."""
    change = STATUS_CHANGES[action]
    referral = await load_referral(session, referral_id, for_update=True)
    await require_owner(session, referral.death_id, "referrals")
    moment = now()
    if referral.status not in change.allowed:
        raise refuse(referral, change.done)
    if change.needs_lease:
        await check_lease(session, principal, referral, lease_id, moment)
    before = referral.effective_status
    clear_lease(referral)
    referral.status = change.to.value
    referral.status_reason = reason
    if change.to is ReferralStatus.ready and await _has_draft(session, referral):
        referral.status = ReferralStatus.in_progress.value
    event = change.event
    transitions = Transitions(Journal(principal))
    await session.flush()
    await refresh_death_status(session, transitions.journal, referral.death_id)
    transitions.record(
        referral,
        action,
        before,
        event=event,
        changed=["status", "status_reason"],
        reason=reason,
        reviewer=principal.on_behalf_of,
    )
    await transitions.write(session)
    return referral


async def _has_draft(session: AsyncSession, referral: Referral) -> bool:
    found = await session.scalar(select(Review.id).where(Review.referral_id == referral.id))
    return found is not None


async def history(
    session: AsyncSession, principal: Principal, referral_id: uuid.UUID
) -> list[ReferralTransition]:
    """Every transition, oldest first; audited (`referral.history`): the rows name people and
    give reasons."""
    referral = await load_referral(session, referral_id)
    await record_access(
        session, principal, "referral.history", "referral", [(referral.id, referral.death_id)]
    )
    rows = await session.scalars(
        select(ReferralTransition)
        .where(ReferralTransition.referral_id == referral_id)
        .order_by(ReferralTransition.occurred_at, ReferralTransition.id)
    )
    return list(rows.all())


def effective_status_filter(status: ReferralStatus, at: datetime) -> ColumnElement[bool]:
    """SQL for the status a reader sees (a live lease turns ready into claimed)."""
    leased = and_(Referral.lease_expires_at.is_not(None), Referral.lease_expires_at > at)
    if status is ReferralStatus.claimed:
        return and_(Referral.status == ReferralStatus.ready.value, leased)
    if status is ReferralStatus.ready:
        return and_(Referral.status == ReferralStatus.ready.value, ~leased)
    return Referral.status == status.value
