"""Sharing one death with another organisation (issue 16, item 4): for a stated purpose and
period its clients see that death identifiably (a pseudonymised client of it still sees
pseudonyms), may post their review or findings on it, and every access is audited under their
organisation. Nothing else of the sharing organisation becomes visible to them.

Only a client whose own reach holds the death's organisation shares or revokes: a recipient
cannot pass a death on. The share takes effect from the recipient's next request (its scope is
computed when each request authenticates: app.reach.reach_of)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.errors import ValidationFailed, field_error
from app.events.service import Change
from app.kit.sql import load_one
from app.kit.time import now
from app.models import CaseShare, Death, Organisation, Referral
from app.organisations.ownership import check_owner
from app.scoping import UNSCOPED, current_scope

# A share without an end runs this long; at most this long either way (docs/organisations.md).
DEFAULT_SHARE_DAYS = 90
MAX_SHARE_DAYS = 730


class SharePurpose(StrEnum):
    system_review = "system_review"  # a cross-system review of the death (the route)
    review = "review"  # share for review: the organisation reviews the care it gave
    second_opinion = "second_opinion"
    leder = "leder"  # the ICB's LeDeR reviewer
    learning = "learning"  # a joint learning or M&M meeting


async def find_organisation(session: AsyncSession, code_or_id: str) -> Organisation | None:
    """An organisation by id or by ODS code (any case)."""
    text = code_or_id.strip()
    try:
        wanted = uuid.UUID(text)
    except ValueError:
        return await session.scalar(
            select(Organisation).where(Organisation.ods_code == text.upper()),
            execution_options={UNSCOPED: True},
        )
    return await session.get(Organisation, wanted)


async def _owned_death(session: AsyncSession, death_id: uuid.UUID, for_update: bool) -> Death:
    death = await load_one(session, Death, death_id, "death", for_update=for_update)
    # A recipient cannot pass the death on, nor end the share (app.organisations.ownership).
    check_owner(death.organisation_id, death.id, "shares")
    return death


async def share_death(
    session: AsyncSession,
    journal: Journal,
    death_id: uuid.UUID,
    organisation: str,
    purpose: SharePurpose,
    ends_at: datetime | None,
    note: str | None,
    referral_id: uuid.UUID | None,
) -> CaseShare:
    death = await _owned_death(session, death_id, for_update=True)
    moment = now()
    errors = []
    target = await find_organisation(session, organisation)
    if target is None:
        errors.append(
            field_error(
                "/organisation",
                "No organisation with that ODS code or id in the registry; add it first "
                "(POST /v1/organisations or `lfd organisations load`).",
            )
        )
    elif target.id == death.organisation_id:
        errors.append(field_error("/organisation", "The death already belongs to it."))
    elif target.closed_at is not None:
        errors.append(field_error("/organisation", "The organisation is closed."))
    if ends_at is None:
        ends_at = moment + timedelta(days=DEFAULT_SHARE_DAYS)
    elif ends_at <= moment:
        errors.append(field_error("/ends_at", "A share must end in the future."))
    elif ends_at > moment + timedelta(days=MAX_SHARE_DAYS):
        errors.append(
            field_error("/ends_at", f"A share runs at most {MAX_SHARE_DAYS} days; renew it after.")
        )
    if referral_id is not None:
        referral_death = await session.scalar(
            select(Referral.death_id).where(Referral.id == referral_id)
        )
        if referral_death != death.id:
            errors.append(field_error("/referral_id", "No referral of this death with that id."))
    if errors:
        raise ValidationFailed("The share cannot be made as given; see errors.", errors=errors)
    assert target is not None
    share = CaseShare(
        id=uuid.uuid4(),
        death_id=death.id,
        organisation_id=target.id,
        purpose=purpose.value,
        note=note,
        referral_id=referral_id,
        starts_at=moment,
        ends_at=ends_at,
        created_at=moment,
        created_by_client_id=journal.principal.client_id,
    )
    session.add(share)
    await session.flush()
    journal.event(Change("death.shared", "case_share", share.id, death.id, ["organisation_id"]))
    journal.audit("death.share", "case_share", share.id, death.id)
    return share


async def revoke_share(
    session: AsyncSession, journal: Journal, death_id: uuid.UUID, share_id: uuid.UUID
) -> CaseShare:
    await _owned_death(session, death_id, for_update=True)
    share = await load_one(
        session, CaseShare, share_id, "share", where=(CaseShare.death_id == death_id,)
    )
    if share.revoked_at is None:
        share.revoked_at = now()
        share.revoked_by_client_id = journal.principal.client_id
        await session.flush()
        journal.event(
            Change("death.share_revoked", "case_share", share.id, death_id, ["revoked_at"])
        )
        journal.audit("death.share_revoke", "case_share", share.id, death_id)
    return share


async def list_shares(
    session: AsyncSession, death_id: uuid.UUID, active_only: bool = False
) -> list[tuple[CaseShare, Organisation]]:
    """The death's shares, newest first (what the caller may see of them: the death's own
    organisation sees all; a recipient sees its own)."""
    await load_one(session, Death, death_id, "death")
    query = (
        select(CaseShare, Organisation)
        .join(Organisation, Organisation.id == CaseShare.organisation_id)
        .where(CaseShare.death_id == death_id)
        .order_by(CaseShare.created_at.desc(), CaseShare.id)
    )
    scope = current_scope()
    if not scope.everything:
        owner = await session.scalar(select(Death.organisation_id).where(Death.id == death_id))
        if not scope.sees_organisation(owner):
            query = query.where(CaseShare.organisation_id.in_(sorted(scope.organisations)))
    if active_only:
        moment = now()
        query = query.where(
            CaseShare.revoked_at.is_(None),
            or_(CaseShare.ends_at.is_(None), CaseShare.ends_at > moment),
        )
    return [(share, organisation) for share, organisation in (await session.execute(query)).all()]


def is_active(share: CaseShare, moment: datetime | None = None) -> bool:
    at = moment or now()
    return (
        share.revoked_at is None
        and share.starts_at <= at
        and (share.ends_at is None or share.ends_at > at)
    )
