"""Reading a programme's cases: the list (in sample order, with where each stands) and one
case whole (its opinions, answers, and the relatives' view beside the ME's contact log). Every
case shown is audited: a case names a patient's death."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, case, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.audit.service import record_access
from app.auth.principal import Principal
from app.errors import BadRequest
from app.kit.cursor import open_cursor, sign_cursor
from app.kit.enums import ReferralStatus
from app.kit.sql import load_one
from app.models import (
    Death,
    ProgrammeAnswer,
    ProgrammeCase,
    ProgrammeOpinion,
    ProgrammeQuestion,
    Referral,
    Review,
    Screening,
)
from app.programmes.case_reviews import first_reviews, routine_order
from app.programmes.case_schemas import (
    AnswerOut,
    CaseDetail,
    CaseOut,
    CaseReviewStatus,
    LoggedContact,
    OpinionOut,
    RelativesOut,
    ReviewSummary,
)
from app.programmes.service import load_programme

WITHDRAWN = (ReferralStatus.declined.value, ReferralStatus.cancelled.value)


def _status(reviews: Any) -> ColumnElement[str]:
    """Where a case stands (CaseReviewStatus), as SQL over the case, its referral and its
    first review."""
    return case(
        (ProgrammeCase.excluded_at.is_not(None), CaseReviewStatus.excluded.value),
        (ProgrammeCase.selected.is_(False), CaseReviewStatus.not_selected.value),
        (reviews.c.review_id.is_not(None), CaseReviewStatus.reviewed.value),
        (
            and_(ProgrammeCase.linked.is_(False), Referral.status.in_(WITHDRAWN)),
            CaseReviewStatus.not_reviewed.value,
        ),
        else_=CaseReviewStatus.awaiting_review.value,
    )


def _cases(programme_id: uuid.UUID) -> tuple[Any, ColumnElement[str]]:
    reviews = first_reviews(ProgrammeCase.programme_id == programme_id).subquery("first_reviews")
    status = _status(reviews)
    query = (
        select(ProgrammeCase, Death, status.label("status"))
        .join(Death, Death.id == ProgrammeCase.death_id)
        .outerjoin(Referral, Referral.id == ProgrammeCase.referral_id)
        .outerjoin(reviews, reviews.c.case_id == ProgrammeCase.id)
        .where(ProgrammeCase.programme_id == programme_id)
    )
    return query, status


def _out(row: Any) -> dict[str, Any]:
    found: ProgrammeCase = row[0]
    death: Death = row[1]
    return {
        "id": found.id,
        "programme_id": found.programme_id,
        "death_id": found.death_id,
        "case_reference": death.case_reference,
        "died_on": death.died_on,
        "age_at_death": death.age_at_death,
        "place_of_death": death.place_of_death,
        "site": death.site,
        "ward": death.ward,
        "specialty": death.specialty_at_death or death.admitting_specialty,
        "selected": found.selected,
        "sample_key": found.sample_key,
        "joined": found.joined,
        "added_at": found.added_at,
        "linked": found.linked,
        "referral_id": found.referral_id,
        "status": row[2],
        "excluded_reason": found.excluded_reason,
        "version": found.version,
    }


async def list_cases(
    session: AsyncSession,
    principal: Principal,
    programme_id: uuid.UUID,
    status: CaseReviewStatus | None,
    selected: bool | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[CaseOut], str | None]:
    """The cohort in sample order (lowest key first: the order deaths are chosen in)."""
    await load_programme(session, programme_id)
    query, shown_status = _cases(programme_id)
    if status is not None:
        query = query.where(shown_status == status.value)
    if selected is not None:
        query = query.where(ProgrammeCase.selected.is_(selected))
    if cursor is not None:
        key_raw, id_raw = await open_cursor(session, cursor, 2)
        try:
            key = (int(key_raw), uuid.UUID(str(id_raw)))
        except (TypeError, ValueError) as error:
            raise BadRequest("The cursor is not one this service issued.") from error
        query = query.where(tuple_(ProgrammeCase.sample_key, ProgrammeCase.id) > key)
    rows = (
        await session.execute(
            query.order_by(ProgrammeCase.sample_key, ProgrammeCase.id).limit(limit + 1)
        )
    ).all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last: ProgrammeCase = page[-1][0]
        next_cursor = await sign_cursor(session, [last.sample_key, str(last.id)])
    await record_access(
        session,
        principal,
        "programme_case.list",
        "programme_case",
        [(row[0].id, row[0].death_id) for row in page],
    )
    return [CaseOut.model_validate(_out(row)) for row in page], next_cursor


async def load_case(
    session: AsyncSession,
    programme_id: uuid.UUID,
    case_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> ProgrammeCase:
    return await load_one(
        session,
        ProgrammeCase,
        case_id,
        "case of this programme",
        for_update=for_update,
        where=(ProgrammeCase.programme_id == programme_id,),
    )


def _summary(review: Review | None) -> ReviewSummary | None:
    if review is None:
        return None
    return ReviewSummary(
        review_id=review.id,
        status=review.status,
        reviewer=review.reviewer,
        overall_rating=review.overall_rating,
        quality_of_records=review.quality_of_records,
        avoidability=review.avoidability,
        submitted_at=review.submitted_at,
    )


async def _routine_review(session: AsyncSession, death_id: uuid.UUID) -> Review | None:
    """The death's final routine SJR (a linked case's first review)."""
    return await session.scalar(
        select(Review)
        .where(Review.death_id == death_id, Review.route == "sjr", Review.status == "submitted")
        .order_by(*routine_order())
        .limit(1)
    )


async def _opinions(session: AsyncSession, found: ProgrammeCase) -> list[OpinionOut]:
    others = (
        await session.scalars(
            select(ProgrammeOpinion)
            .where(ProgrammeOpinion.case_id == found.id)
            .order_by(ProgrammeOpinion.number)
        )
    ).all()
    referral_ids = [r for r in [found.referral_id, *(o.referral_id for o in others)] if r]
    statuses: dict[uuid.UUID, str] = {}
    reviews: dict[uuid.UUID, Review] = {}
    if referral_ids:
        for referral in (
            await session.scalars(select(Referral).where(Referral.id.in_(referral_ids)))
        ).all():
            statuses[referral.id] = referral.effective_status
        for review in (
            await session.scalars(select(Review).where(Review.referral_id.in_(referral_ids)))
        ).all():
            reviews[review.referral_id] = review
    opinions: list[OpinionOut] = []
    if found.selected:
        if found.linked:
            first = OpinionOut(
                number=1,
                source="routine",
                referral_id=None,
                referral_status=None,
                review=_summary(await _routine_review(session, found.death_id)),
            )
        else:
            first = OpinionOut(
                number=1,
                source="programme",
                referral_id=found.referral_id,
                referral_status=statuses.get(found.referral_id) if found.referral_id else None,
                review=_summary(reviews.get(found.referral_id)) if found.referral_id else None,
            )
        opinions.append(first)
    opinions.extend(
        OpinionOut(
            number=other.number,
            source="programme",
            referral_id=other.referral_id,
            referral_status=statuses.get(other.referral_id),
            requested_by=other.requested_by,
            requested_from=other.requested_from,
            requested_specialty=other.requested_specialty,
            reason=other.reason,
            requested_at=other.requested_at,
            review=_summary(reviews.get(other.referral_id)),
        )
        for other in others
    )
    return opinions


async def _answers(session: AsyncSession, case_id: uuid.UUID) -> list[AnswerOut]:
    rows = (
        await session.execute(
            select(ProgrammeAnswer, ProgrammeQuestion.code)
            .join(ProgrammeQuestion, ProgrammeQuestion.id == ProgrammeAnswer.question_id)
            .where(ProgrammeAnswer.case_id == case_id)
            .order_by(ProgrammeAnswer.opinion, ProgrammeQuestion.position)
        )
    ).all()
    return [
        AnswerOut(
            opinion=answer.opinion,
            question_id=answer.question_id,
            question=code,
            answer=answer.choice
            if answer.choice is not None
            else (answer.scale if answer.scale is not None else answer.text),
            answered_by=answer.answered_by,
            answered_at=answer.answered_at,
        )
        for answer, code in rows
    ]


async def _relatives(session: AsyncSession, found: ProgrammeCase) -> RelativesOut:
    screening = await session.scalar(select(Screening).where(Screening.death_id == found.death_id))
    contacts = []
    if screening is not None:
        for contact in (screening.scrutiny or {}).get("bereaved_contacts", []):
            contacts.append(
                LoggedContact.model_validate(
                    {key: contact.get(key) for key in LoggedContact.model_fields}
                )
            )
    return RelativesOut(
        bereaved_contacted=screening.bereaved_contacted if screening is not None else None,
        bereaved_concerns=screening.bereaved_concerns if screening is not None else None,
        contacts=contacts,
        sought=found.relatives_sought,
        view=found.relatives_view,
        recorded_by=found.relatives_recorded_by,
        recorded_at=found.relatives_recorded_at,
    )


async def case_detail(session: AsyncSession, found: ProgrammeCase) -> CaseDetail:
    query, _ = _cases(found.programme_id)
    row = (await session.execute(query.where(ProgrammeCase.id == found.id))).one()
    return CaseDetail.model_validate(
        {
            **_out(row),
            "opinions": await _opinions(session, found),
            "answers": await _answers(session, found.id),
            "relatives": await _relatives(session, found),
        }
    )


async def read_case(
    session: AsyncSession, principal: Principal, programme_id: uuid.UUID, case_id: uuid.UUID
) -> CaseDetail:
    found = await load_case(session, programme_id, case_id)
    await record_access(
        session, principal, "programme_case.read", "programme_case", [(found.id, found.death_id)]
    )
    return await case_detail(session, found)
