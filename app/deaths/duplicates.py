"""One person, two deaths: the same NHS number under two source references.

The sender's key for a death is its source system and reference, so a death reported twice
(by two systems, or under a corrected reference) is recorded twice. Nothing is merged by the
service: the later death is flagged (`possible_duplicate_of` on its detail, for clients that
may read identifiable deaths) and a person decides, with `POST /v1/deaths/{id}/duplicate-review`,
whether the two are the same person (`same_person`: the deaths are linked, `same_person_as` on
both) or not (`different_people`: the flag is cleared). Each decision is audited on both deaths
and published as `death.duplicate_reviewed`; a decision may be changed by another review.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.audit.journal import Journal
from app.auth.principal import Principal
from app.errors import NotFound, ValidationFailed
from app.events.service import Change
from app.kit.etag import Precondition
from app.kit.time import now
from app.models import Death, PossibleDuplicate
from app.organisations.ownership import check_owner, owned_deaths


class DuplicateStatus(StrEnum):
    possible = "possible"
    same_person = "same_person"
    different_people = "different_people"


async def flag_possible_duplicates(session: AsyncSession, death: Death) -> list[uuid.UUID]:
    """Pair the death with every other death of its NHS number that it is not paired with
    yet (either way round); the ids of the deaths newly paired."""
    if death.nhs_number is None:
        return []
    query = select(Death.id).where(Death.nhs_number == death.nhs_number, Death.id != death.id)
    owned = owned_deaths()
    if owned is not None:
        # Never against a death shared with the client: a flag it could not then decide.
        query = query.where(owned)
    others = set((await session.scalars(query)).all())
    if not others:
        return []
    paired = (
        await session.execute(
            select(PossibleDuplicate.death_id, PossibleDuplicate.other_death_id).where(
                or_(
                    PossibleDuplicate.death_id == death.id,
                    PossibleDuplicate.other_death_id == death.id,
                )
            )
        )
    ).all()
    known = {one for pair in paired for one in pair}
    new = sorted(others - known)
    moment = now()
    for other in new:
        session.add(
            PossibleDuplicate(
                death_id=death.id,
                other_death_id=other,
                status=DuplicateStatus.possible.value,
                detected_at=moment,
            )
        )
    await session.flush()
    return new


def pending_duplicates(death_id: InstrumentedAttribute[uuid.UUID]) -> ColumnElement[bool]:
    """Whether the death has a flag not yet reviewed (for the list's filter)."""
    return (
        select(PossibleDuplicate.id)
        .where(
            PossibleDuplicate.death_id == death_id,
            PossibleDuplicate.status == DuplicateStatus.possible.value,
        )
        .exists()
    )


@dataclass(frozen=True)
class Links:
    possible_duplicate_of: list[uuid.UUID]
    same_person_as: list[uuid.UUID]


async def links_of(session: AsyncSession, death_id: uuid.UUID) -> Links:
    """What a death's detail shows: the deaths it is flagged against and not yet decided (the
    flag is on the later death only), and those decided to be the same person (either way)."""
    rows = (
        await session.scalars(
            select(PossibleDuplicate).where(
                or_(
                    PossibleDuplicate.death_id == death_id,
                    PossibleDuplicate.other_death_id == death_id,
                )
            )
        )
    ).all()
    possible = sorted(
        row.other_death_id
        for row in rows
        if row.death_id == death_id and row.status == DuplicateStatus.possible
    )
    same = sorted(
        row.other_death_id if row.death_id == death_id else row.death_id
        for row in rows
        if row.status == DuplicateStatus.same_person
    )
    return Links(possible, same)


async def _locked(session: AsyncSession, death_id: uuid.UUID) -> Death | None:
    return await session.scalar(select(Death).where(Death.id == death_id).with_for_update())


async def review_duplicate(
    session: AsyncSession,
    principal: Principal,
    death_id: uuid.UUID,
    other_death_id: uuid.UUID,
    decision: DuplicateStatus,
    if_match: Precondition,
) -> Death:
    """Record a person's decision on a pair of deaths flagged as one person (either death may
    be the one named in the path). Both deaths get a new version (what their detail shows
    changed), an audit row and the event."""
    if other_death_id == death_id:
        raise ValidationFailed(
            "A death is not a duplicate of itself.",
            errors=[
                {"pointer": "/other_death_id", "code": "same_death", "detail": "the same death"}
            ],
        )
    # Both rows locked in one order (by id), so two reviews of a pair from either side queue.
    locked = {one: await _locked(session, one) for one in sorted((death_id, other_death_id))}
    death, other = locked[death_id], locked[other_death_id]
    if death is None:
        raise NotFound("No death with that id.")
    # The decision changes both deaths: each must be the client's own, not shared with it.
    for one in (death, other):
        if one is not None:
            check_owner(one.organisation_id, one.id, "possible duplicates")
    if_match.check(death.id, death.version)
    pair = await session.scalar(
        select(PossibleDuplicate)
        .where(
            or_(
                (PossibleDuplicate.death_id == death_id)
                & (PossibleDuplicate.other_death_id == other_death_id),
                (PossibleDuplicate.death_id == other_death_id)
                & (PossibleDuplicate.other_death_id == death_id),
            )
        )
        .with_for_update()
    )
    if pair is None or other is None:
        raise ValidationFailed(
            "These two deaths are not flagged as a possible duplicate person.",
            errors=[
                {
                    "pointer": "/other_death_id",
                    "code": "not_flagged",
                    "detail": "no flag pairs this death with the death in the path",
                }
            ],
        )
    journal = Journal(principal)
    if pair.status != decision.value:
        pair.status = decision.value
        pair.decided_at = now()
        pair.decided_by_client_id = principal.client_id
        pair.decided_on_behalf_of = principal.on_behalf_of
        changed = ["possible_duplicate_of", "same_person_as"]
        for one in (death, other):
            one.version += 1
            journal.event(Change("death.duplicate_reviewed", "death", one.id, one.id, changed))
    for one in (death, other):
        journal.audit("death.duplicate_review", "death", one.id, one.id)
    await journal.write(session)
    return death
