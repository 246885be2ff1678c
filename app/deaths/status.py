"""A death's status, which follows its referrals and reviews.

Low in the domains on purpose: the referral workflow and the reviews set a death's status
through here, so they need nothing of the case view or of each other for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.deaths.service import load_death
from app.events.service import Change
from app.kit.enums import (
    FINAL_EXTERNAL_STATUSES,
    OPEN_REFERRAL_STATUSES,
    DeathStatus,
    Instrument,
    ReferralStatus,
    ReviewStatus,
)
from app.models import Death, Referral, Review


def death_status(
    screened: bool, referrals: Sequence[Referral], external_pending: bool = False
) -> DeathStatus:
    """A death's status follows its referrals: under review while any is open; once none is
    open and one was completed, reviewed while an outside process (the ICB's LeDeR review, an
    external investigation) is still running, closed when everything is final."""
    if not screened:
        return DeathStatus.awaiting_screening
    if any(r.status in OPEN_REFERRAL_STATUSES for r in referrals):
        return DeathStatus.under_review
    if any(r.status == ReferralStatus.completed for r in referrals):
        return DeathStatus.reviewed if external_pending else DeathStatus.closed
    return DeathStatus.screened


async def follow_referrals(
    session: AsyncSession, death: Death, referrals: Sequence[Referral]
) -> bool:
    """Set a screened death's status from its referrals (and, once none is open, from whether
    an outside review is still running); True when it changed."""
    pending = False
    if not any(r.status in OPEN_REFERRAL_STATUSES for r in referrals):
        pending = await external_review_pending(session, death.id)
    status = death_status(True, referrals, pending).value
    if death.status != status:
        death.status = status
        return True
    return False


async def refresh_death_status(
    session: AsyncSession, journal: Journal, death_id: uuid.UUID
) -> None:
    """After a referral or review changed: the death's status follows, under a row lock so
    that two referrals of one death changing at once cannot lose an update."""
    death = await load_death(session, death_id, for_update=True)
    referrals = (await session.scalars(select(Referral).where(Referral.death_id == death_id))).all()
    if await follow_referrals(session, death, referrals):
        death.version += 1
        journal.event(Change("death.updated", "death", death.id, death.id, ["status"]))


async def external_review_pending(session: AsyncSession, death_id: uuid.UUID) -> bool:
    """A submitted LeDeR or external review whose outside process has not finished."""
    found = await session.scalar(
        select(Review.id)
        .where(
            Review.death_id == death_id,
            Review.status == ReviewStatus.submitted.value,
            Review.instrument.in_([Instrument.leder.value, Instrument.external.value]),
            or_(
                Review.external_status.is_(None),
                Review.external_status.not_in(list(FINAL_EXTERNAL_STATUSES)),
            ),
        )
        .limit(1)
    )
    return found is not None


async def referrals_opened(
    session: AsyncSession, journal: Journal, death_ids: Select[Any], *, announce: bool = True
) -> int:
    """After open referrals were created in bulk for the deaths ``death_ids`` selects (a
    review programme's cohort): each screened death is now under review, as
    ``refresh_death_status`` would say of it one at a time (an open referral puts any screened
    death under review; one awaiting screening stays so). One UPDATE; how many changed. With
    ``announce`` each changed death gets its `death.updated` event; a bulk caller that
    announces its work with one event of its own (a cohort build) passes False."""
    changed = (
        await session.execute(
            update(Death)
            .where(
                Death.id.in_(death_ids.scalar_subquery()),
                Death.status.in_(
                    [
                        DeathStatus.screened.value,
                        DeathStatus.reviewed.value,
                        DeathStatus.closed.value,
                    ]
                ),
            )
            .values(status=DeathStatus.under_review.value, version=Death.version + 1)
            .returning(Death.id)
            .execution_options(synchronize_session=False)
        )
    ).scalars()
    count = 0
    for death_id in changed:
        if announce:
            journal.event(Change("death.updated", "death", death_id, death_id, ["status"]))
        count += 1
    return count
