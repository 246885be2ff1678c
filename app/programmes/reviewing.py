"""What the programme's team does to a case: post its review with the programme's answers and
the relatives' view, record answers on their own, ask for a second opinion, take a case out
of the cohort. The SJR itself goes through the reviews service (its lease, its instrument's
rules, what it raises), so a programme review is a review like any other."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.auth.principal import Principal
from app.config import Settings
from app.deaths.status import referrals_opened
from app.errors import Conflict, ValidationFailed, field_error
from app.events.service import Change
from app.kit.enums import OPEN_REFERRAL_STATUSES, ReasonCode, Route
from app.kit.etag import Precondition
from app.kit.sql import insert_rows
from app.kit.time import now
from app.models import (
    Death,
    Programme,
    ProgrammeAnswer,
    ProgrammeCase,
    ProgrammeOpinion,
    ProgrammeQuestion,
    Referral,
    Review,
)
from app.organisations.settings import settings_for
from app.programmes.case_schemas import (
    AnswerIn,
    AnswersIn,
    CaseDetail,
    Choice,
    ExcludeRequest,
    OpinionOut,
    ProgrammeReviewSubmission,
    RelativesIn,
    SecondOpinionRequest,
)
from app.programmes.cases import case_detail, load_case
from app.programmes.cohort import due_at
from app.programmes.schemas import ProgrammeStatus, QuestionKind
from app.programmes.service import load_programme
from app.referrals.service import new_referral_row
from app.referrals.workflow import change_status
from app.reviews.schemas import ReviewOut, ReviewSubmission
from app.reviews.service import submit_review


class ProgrammeReviewOut(BaseModel):
    """A programme review's answer: the review (as `POST /v1/referrals/{id}/review` answers
    it) and the case as it now stands."""

    review: ReviewOut = Field(description="The review, as the referral's review endpoint answers.")
    case: CaseDetail = Field(description="The case as it now stands.")


def _refuse(detail: str, current: str | None = None) -> Conflict:
    return Conflict(detail, extra={"current_status": current} if current else None)


async def _live_case(
    session: AsyncSession, programme_id: uuid.UUID, case_id: uuid.UUID
) -> tuple[Programme, ProgrammeCase]:
    programme = await load_programme(session, programme_id)
    found = await load_case(session, programme_id, case_id, for_update=True)
    if found.excluded_at is not None:
        raise _refuse("The case was excluded from the cohort.", "excluded")
    if not found.selected:
        raise _refuse("The case was not chosen for review.", "not_selected")
    return programme, found


async def _opinion_referral(session: AsyncSession, found: ProgrammeCase, opinion: int) -> uuid.UUID:
    if opinion == 1:
        if found.referral_id is None:
            raise _refuse(
                "This case counts the death's routine SJR as its first review: record the "
                "programme's answers with PUT .../answers.",
                "linked",
            )
        return found.referral_id
    referral_id = await session.scalar(
        select(ProgrammeOpinion.referral_id).where(
            ProgrammeOpinion.case_id == found.id, ProgrammeOpinion.number == opinion
        )
    )
    if referral_id is None:
        raise ValidationFailed(
            "The case has no such opinion.",
            errors=[field_error("/opinion", "no second opinion with this number", "unknown")],
        )
    return referral_id


def _value(answer: AnswerIn) -> Any:
    return answer.answer.value if isinstance(answer.answer, Choice) else answer.answer


async def _checked_answers(
    session: AsyncSession, programme: Programme, answers: list[AnswerIn], prefix: str = ""
) -> list[tuple[ProgrammeQuestion, Any]]:
    """Each answer with its question, or a 422 naming every answer that does not fit."""
    questions = {
        question.code: question
        for question in (
            await session.scalars(
                select(ProgrammeQuestion).where(ProgrammeQuestion.programme_id == programme.id)
            )
        ).all()
    }
    checked: list[tuple[ProgrammeQuestion, Any]] = []
    errors = []
    seen: set[str] = set()
    for index, answer in enumerate(answers):
        pointer = f"{prefix}/answers/{index}"
        question = questions.get(answer.question)
        if question is None:
            errors.append(field_error(f"{pointer}/question", "no such question", "unknown"))
            continue
        if answer.question in seen:
            errors.append(field_error(f"{pointer}/question", "answered twice", "duplicate"))
        seen.add(answer.question)
        value = _value(answer)
        kind = QuestionKind(question.kind)
        fits = (
            (kind is QuestionKind.yes_no and value in {c.value for c in Choice})
            or (kind is QuestionKind.scale and isinstance(value, int) and 1 <= value <= 5)
            or (kind is QuestionKind.text and isinstance(value, str))
        )
        if not fits:
            expected = {
                QuestionKind.yes_no: "yes, no or not_applicable",
                QuestionKind.scale: "a whole number 1 to 5",
                QuestionKind.text: "text",
            }[kind]
            errors.append(field_error(f"{pointer}/answer", f"takes {expected}", "wrong_kind"))
            continue
        checked.append((question, value))
    if errors:
        raise ValidationFailed("The answers do not fit the questions; see errors.", errors=errors)
    return checked


async def _unanswered_required(
    session: AsyncSession, programme: Programme, found: ProgrammeCase, given: set[uuid.UUID]
) -> list[str]:
    answered = set(
        (
            await session.scalars(
                select(ProgrammeAnswer.question_id).where(
                    ProgrammeAnswer.case_id == found.id, ProgrammeAnswer.opinion == 1
                )
            )
        ).all()
    )
    required = (
        await session.execute(
            select(ProgrammeQuestion.id, ProgrammeQuestion.code).where(
                ProgrammeQuestion.programme_id == programme.id,
                ProgrammeQuestion.required.is_(True),
            )
        )
    ).all()
    return [code for question_id, code in required if question_id not in answered | given]


async def _record(
    session: AsyncSession,
    found: ProgrammeCase,
    opinion: int,
    checked: list[tuple[ProgrammeQuestion, Any]],
    relatives: RelativesIn | None,
    who: str | None,
    moment: datetime,
) -> list[str]:
    """Store the answers (replacing earlier ones to the same questions) and the relatives'
    view; the names of what changed."""
    changed: list[str] = []
    if checked:
        await session.execute(
            delete(ProgrammeAnswer).where(
                ProgrammeAnswer.case_id == found.id,
                ProgrammeAnswer.opinion == opinion,
                ProgrammeAnswer.question_id.in_([question.id for question, _ in checked]),
            )
        )
        await insert_rows(
            session,
            ProgrammeAnswer,
            [
                {
                    "id": uuid.uuid4(),
                    "case_id": found.id,
                    "programme_id": found.programme_id,
                    "death_id": found.death_id,
                    "opinion": opinion,
                    "question_id": question.id,
                    "choice": value if question.kind == QuestionKind.yes_no else None,
                    "scale": value if question.kind == QuestionKind.scale else None,
                    "text": value if question.kind == QuestionKind.text else None,
                    "answered_by": who,
                    "answered_at": moment,
                }
                for question, value in checked
            ],
        )
        changed.append("answers")
    if relatives is not None:
        found.relatives_sought = relatives.sought.value
        found.relatives_view = relatives.view
        found.relatives_recorded_by = who
        found.relatives_recorded_at = moment
        changed.append("relatives")
    if changed:
        found.version += 1
    return changed


async def submit_programme_review(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    programme_id: uuid.UUID,
    case_id: uuid.UUID,
    body: ProgrammeReviewSubmission,
) -> tuple[ProgrammeReviewOut, bool]:
    """The SJR of one of the case's referrals, with the answers and the relatives' view, in
    one transaction: all of it or none."""
    programme, found = await _live_case(session, programme_id, case_id)
    referral_id = await _opinion_referral(session, found, body.opinion)
    checked = await _checked_answers(session, programme, body.answers)
    if body.submit and body.opinion == 1:
        missing = await _unanswered_required(
            session, programme, found, {question.id for question, _ in checked}
        )
        if missing:
            raise ValidationFailed(
                "A submitted programme review answers the programme's required questions.",
                errors=[
                    field_error("/answers", f"question `{code}` is required", "required")
                    for code in missing
                ],
            )
    review, created = await submit_review(
        session,
        principal,
        settings,
        referral_id,
        ReviewSubmission(lease_id=body.lease_id, submit=body.submit, review=body.review),
    )
    who = body.review.reviewer.name if body.review.reviewer else principal.on_behalf_of
    changed = await _record(session, found, body.opinion, checked, body.relatives, who, now())
    journal = Journal(principal)
    if changed:
        journal.event(
            Change("programme_case.answered", "programme_case", found.id, found.death_id, changed)
        )
        journal.audit("programme_case.answer", "programme_case", found.id, found.death_id)
    await session.flush()
    await journal.write(session)
    return ProgrammeReviewOut(review=review, case=await case_detail(session, found)), created


async def put_answers(
    session: AsyncSession,
    principal: Principal,
    programme_id: uuid.UUID,
    case_id: uuid.UUID,
    body: AnswersIn,
    if_match: Precondition,
) -> CaseDetail:
    programme, found = await _live_case(session, programme_id, case_id)
    if_match.check(found.id, found.version)
    if body.opinion != 1:
        await _opinion_referral(session, found, body.opinion)
    moment = now()
    if body.answered_at is not None and body.answered_at > moment:
        raise ValidationFailed(
            "The answers cannot be given in the future.",
            errors=[field_error("/answered_at", "in the future", "in_the_future")],
        )
    death = await session.get_one(Death, found.death_id)
    if body.answered_at is not None and body.answered_at < death.died_at:
        raise ValidationFailed(
            "The answers cannot be given before the death.",
            errors=[field_error("/answered_at", "before the death", "before_death")],
        )
    checked = await _checked_answers(session, programme, body.answers)
    who = body.answered_by or principal.on_behalf_of
    changed = await _record(
        session, found, body.opinion, checked, body.relatives, who, body.answered_at or moment
    )
    journal = Journal(principal)
    if changed:
        journal.event(
            Change("programme_case.answered", "programme_case", found.id, found.death_id, changed)
        )
        journal.audit("programme_case.answer", "programme_case", found.id, found.death_id)
    else:
        journal.audit("programme_case.read", "programme_case", found.id, found.death_id)
    await session.flush()
    await journal.write(session)
    return await case_detail(session, found)


async def _first_reviewer(session: AsyncSession, found: ProgrammeCase) -> str | None:
    if found.referral_id is not None:
        return await session.scalar(
            select(Review.reviewer).where(Review.referral_id == found.referral_id)
        )
    return await session.scalar(
        select(Review.reviewer)
        .where(Review.death_id == found.death_id, Review.route == Route.sjr.value)
        .order_by(Review.submitted_at.desc())
        .limit(1)
    )


async def request_second_opinion(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    programme_id: uuid.UUID,
    case_id: uuid.UUID,
    body: SecondOpinionRequest,
) -> OpinionOut:
    """A second opinion: a programme referral of its own, assigned to the named colleague (or
    waiting under the specialty for a claim that names it), never handed to the first
    reviewer. Both reviews are kept; the case's first stays the one its figures count."""
    programme, found = await _live_case(session, programme_id, case_id)
    if programme.status == ProgrammeStatus.draft:
        raise _refuse("The programme's cohort is not built.", programme.status)
    death = await session.get_one(Death, found.death_id)
    first = await _first_reviewer(session, found)
    requester = body.requested_by or principal.on_behalf_of
    if (
        body.requested_from is not None
        and first is not None
        and (body.requested_from.lower() == first.lower())
    ):
        raise ValidationFailed(
            "A second opinion comes from someone other than the first reviewer.",
            errors=[field_error("/requested_from", "the case's first reviewer", "first_reviewer")],
        )
    number = (
        int(
            await session.scalar(
                select(func.coalesce(func.max(ProgrammeOpinion.number), 1)).where(
                    ProgrammeOpinion.case_id == found.id
                )
            )
            or 1
        )
        + 1
    )
    moment = now()
    organisation_settings = await settings_for(session, settings, death.organisation_id)
    row = new_referral_row(
        organisation_settings,
        death,
        Route.programme,
        None,
        [ReasonCode.second_opinion],
        moment,
        excluded_reviewer=first or requester,
    )
    row.update(
        programme_id=programme.id,
        due_at=due_at(programme, organisation_settings, moment),
        assigned_to=body.requested_from,
    )
    if body.specialty is not None:
        row["specialty"] = body.specialty
    await insert_rows(session, Referral, [row])
    opinion = ProgrammeOpinion(
        id=uuid.uuid4(),
        case_id=found.id,
        programme_id=programme.id,
        death_id=found.death_id,
        number=number,
        referral_id=row["id"],
        requested_by=requester,
        requested_from=body.requested_from,
        requested_specialty=body.specialty,
        reason=body.reason,
        requested_at=moment,
    )
    session.add(opinion)
    found.version += 1
    await session.flush()
    journal = Journal(principal)
    journal.event(Change("referral.created", "referral", row["id"], death.id))
    journal.audit("referral.create", "referral", row["id"], death.id)
    journal.event(
        Change(
            "programme_case.second_opinion_requested",
            "programme_case",
            found.id,
            death.id,
            ["opinions"],
        )
    )
    journal.audit("programme_case.second_opinion", "programme_case", found.id, death.id)
    await referrals_opened(
        session, journal, select(Referral.death_id).where(Referral.id == row["id"])
    )
    await journal.write(session)
    return OpinionOut(
        number=number,
        source="programme",
        referral_id=row["id"],
        referral_status=row["status"],
        requested_by=requester,
        requested_from=body.requested_from,
        requested_specialty=body.specialty,
        reason=body.reason,
        requested_at=moment,
        review=None,
    )


async def exclude_case(
    session: AsyncSession,
    principal: Principal,
    programme_id: uuid.UUID,
    case_id: uuid.UUID,
    body: ExcludeRequest,
) -> CaseDetail:
    """Take a case out of the cohort (a death recorded in error, one that no longer meets the
    rules after a correction): kept, with the reason, out of every figure; its open programme
    referrals are cancelled with the same reason. The sample is topped up on the next pass."""
    await load_programme(session, programme_id)
    found = await load_case(session, programme_id, case_id, for_update=True)
    if found.excluded_at is not None:
        raise _refuse("The case is excluded already.", "excluded")
    referral_ids = [found.referral_id] if found.referral_id else []
    referral_ids += list(
        (
            await session.scalars(
                select(ProgrammeOpinion.referral_id).where(ProgrammeOpinion.case_id == found.id)
            )
        ).all()
    )
    open_ones = (
        await session.scalars(
            select(Referral.id).where(
                Referral.id.in_(referral_ids),
                Referral.status.in_([status.value for status in OPEN_REFERRAL_STATUSES]),
            )
        )
    ).all()
    for referral_id in open_ones:
        await change_status(
            session, principal, referral_id, "cancel", reason=body.reason, lease_id=None
        )
    found.excluded_at = now()
    found.excluded_reason = body.reason
    found.version += 1
    await session.flush()
    journal = Journal(principal)
    journal.event(
        Change("programme_case.excluded", "programme_case", found.id, found.death_id, ["excluded"])
    )
    journal.audit("programme_case.exclude", "programme_case", found.id, found.death_id)
    await journal.write(session)
    return await case_detail(session, found)
