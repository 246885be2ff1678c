"""The retrospective judgement of a medical examiner's referral decision (issue 15): for any
screened death, a governance reviewer records whether the decision was appropriate, possibly
a missed opportunity, or should have been referred, with the criterion and a reason. One per
screening; recording again replaces it (the earlier one stays in the audit log and the event
feed). The ME office can be sent the feedback: the event `screening.referral_judged`."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.audit.service import record_access
from app.auth.principal import Principal
from app.errors import NotFound, PreconditionFailed
from app.events.service import Change
from app.kit.enums import ReasonCode
from app.kit.etag import Precondition, etag
from app.kit.schemas import RequestModel, ResponseModel
from app.kit.sql import load_one
from app.kit.time import now
from app.models import ReferralJudgement, ReferralJudgementVersion, Screening
from app.privacy.schemas import PseudonymisedModel


class Judgement(StrEnum):
    appropriate = "appropriate"
    possibly_missed = "possibly_missed"
    should_have_been_referred = "should_have_been_referred"


JUDGEMENT = (
    "`appropriate`, `possibly_missed` (a possible missed opportunity) or "
    "`should_have_been_referred`."
)
CRITERION = "The referral criterion the judgement is about, if one."


class JudgementIn(RequestModel):
    judgement: Judgement = Field(description=JUDGEMENT)
    criterion: ReasonCode | None = Field(default=None, description=CRITERION)
    reason: Annotated[str, StringConstraints(min_length=1, max_length=5000)] = Field(
        description="Why, in the reviewer's words (sent to the ME office as feedback)."
    )


class JudgementOut(ResponseModel):
    id: uuid.UUID
    screening_id: uuid.UUID
    death_id: uuid.UUID
    judgement: Judgement = Field(description=JUDGEMENT)
    criterion: ReasonCode | None = Field(description=CRITERION)
    reason: str = Field(description="Why, in the reviewer's words.")
    judged_at: datetime = Field(description="When the referral decision was judged.")
    judged_by: str | None = Field(
        description="Who judged it (the person the client acted for), if named."
    )
    version: int


class JudgementVersionOut(ResponseModel):
    """A judgement as it stood before a later one replaced it."""

    version: int
    judgement: Judgement = Field(description=JUDGEMENT)
    criterion: ReasonCode | None = Field(description=CRITERION)
    reason: str = Field(description="Why, in the reviewer's words.")
    judged_at: datetime = Field(description="When this version was judged.")
    judged_by: str | None = Field(description="Who judged it, if named.")
    superseded_at: datetime = Field(description="When a later judgement replaced it.")


class JudgementVersionPseudonymised(PseudonymisedModel):
    """An earlier judgement without its reason, who judged or when."""

    version: int
    judgement: Judgement = Field(description=JUDGEMENT)
    criterion: ReasonCode | None = Field(description=CRITERION)


class JudgementPseudonymised(PseudonymisedModel):
    """Without the written reason (free text about one death) or who judged."""

    id: uuid.UUID
    screening_id: uuid.UUID
    death_id: uuid.UUID
    judgement: Judgement = Field(description=JUDGEMENT)
    criterion: ReasonCode | None = Field(description=CRITERION)
    version: int


def pseudonymised(key: bytes, full: JudgementOut) -> JudgementPseudonymised:
    return JudgementPseudonymised(
        id=full.id,
        screening_id=full.screening_id,
        death_id=full.death_id,
        judgement=full.judgement,
        criterion=full.criterion,
        version=full.version,
    )


def version_pseudonymised(key: bytes, full: JudgementVersionOut) -> JudgementVersionPseudonymised:
    return JudgementVersionPseudonymised(
        version=full.version, judgement=full.judgement, criterion=full.criterion
    )


def judgement_etag(judged: JudgementOut) -> str:
    return etag(judged.id, judged.version)


def _unchanged(found: ReferralJudgement, body: JudgementIn, principal: Principal) -> bool:
    """The same judgement sent again by the same person (a retried PUT): nothing to replace."""
    return (
        found.judgement == body.judgement.value
        and found.criterion == (body.criterion.value if body.criterion else None)
        and found.reason == body.reason
        and found.judged_by == principal.on_behalf_of
        and found.judged_by_client_id == principal.client_id
    )


async def judge(
    session: AsyncSession,
    principal: Principal,
    screening_id: uuid.UUID,
    body: JudgementIn,
    if_match: Precondition,
) -> tuple[JudgementOut, bool]:
    """Record the first judgement, or replace the current one (If-Match required), keeping
    the one replaced as a version; True when it is the screening's first."""
    screening = await load_one(session, Screening, screening_id, "screening", for_update=True)
    found = await session.scalar(
        select(ReferralJudgement).where(ReferralJudgement.screening_id == screening.id)
    )
    created = found is None
    if found is None:
        if if_match.sent:
            # If-Match names a version, and there is none (RFC 9110 13.1.1).
            raise PreconditionFailed(
                "This screening's referral decision has not been judged yet: record the first "
                "judgement without If-Match."
            )
        found = ReferralJudgement(
            id=uuid.uuid4(),
            screening_id=screening.id,
            death_id=screening.death_id,
            organisation_id=screening.organisation_id,
            died_on=screening.died_on,
            version=0,
        )
        session.add(found)
    else:
        if_match.check(found.id, found.version)
        if _unchanged(found, body, principal):
            await record_access(
                session,
                principal,
                "referral_judgement.read",
                "screening",
                [(screening.id, screening.death_id)],
            )
            return JudgementOut.model_validate(found), False
        session.add(
            ReferralJudgementVersion(
                id=uuid.uuid4(),
                judgement_id=found.id,
                version=found.version,
                snapshot=JudgementOut.model_validate(found).model_dump(mode="json"),
                superseded_at=now(),
                superseded_by_client_id=principal.client_id,
            )
        )
    found.judgement = body.judgement.value
    found.criterion = body.criterion.value if body.criterion else None
    found.reason = body.reason
    found.judged_at = now()
    found.judged_by_client_id = principal.client_id
    found.judged_by = principal.on_behalf_of
    found.version += 1
    await session.flush()
    journal = Journal(principal)
    journal.event(
        Change(
            "screening.referral_judged",
            "screening",
            screening.id,
            screening.death_id,
            ["judgement", "criterion", "reason"],
        )
    )
    journal.audit("referral_judgement.write", "screening", screening.id, screening.death_id)
    await journal.write(session)
    return JudgementOut.model_validate(found), created


async def read_judgement(
    session: AsyncSession, principal: Principal, screening_id: uuid.UUID
) -> JudgementOut:
    screening = await load_one(session, Screening, screening_id, "screening")
    found = await session.scalar(
        select(ReferralJudgement).where(ReferralJudgement.screening_id == screening.id)
    )
    if found is None:
        raise NotFound("This screening's referral decision has not been judged.")
    await record_access(
        session,
        principal,
        "referral_judgement.read",
        "screening",
        [(screening.id, screening.death_id)],
    )
    return JudgementOut.model_validate(found)


async def judgement_versions(
    session: AsyncSession, principal: Principal, screening_id: uuid.UUID
) -> list[JudgementVersionOut]:
    """The judgements replaced so far, oldest first (none for a judgement never replaced;
    404 when the decision was never judged)."""
    screening = await load_one(session, Screening, screening_id, "screening")
    found = await session.scalar(
        select(ReferralJudgement).where(ReferralJudgement.screening_id == screening.id)
    )
    if found is None:
        raise NotFound("This screening's referral decision has not been judged.")
    rows = (
        await session.scalars(
            select(ReferralJudgementVersion)
            .where(ReferralJudgementVersion.judgement_id == found.id)
            .order_by(ReferralJudgementVersion.version)
        )
    ).all()
    await record_access(
        session,
        principal,
        "referral_judgement.history",
        "screening",
        [(screening.id, screening.death_id)],
    )
    return [
        JudgementVersionOut.model_validate(
            {**row.snapshot, "version": row.version, "superseded_at": row.superseded_at}
        )
        for row in rows
    ]
