"""A programme's cases as the team sees them, and what reviewers send: the programme review
(the SJR with the programme's answers and the relatives' view), answers on their own, a
second opinion asked for, a case excluded."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictInt, StringConstraints, model_validator

from app.kit.schemas import RequestModel, ResponseModel, Timestamp
from app.reviews.schemas import SjrReview

Person = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]


class Choice(StrEnum):
    yes = "yes"
    no = "no"
    not_applicable = "not_applicable"


class CaseReviewStatus(StrEnum):
    not_selected = "not_selected"  # in the cohort, not chosen for review
    awaiting_review = "awaiting_review"  # chosen; its review (own or routine) not submitted
    reviewed = "reviewed"  # its first review is submitted
    not_reviewed = "not_reviewed"  # its programme referral was declined or cancelled
    excluded = "excluded"  # taken out of the cohort by hand


class AnswerIn(RequestModel):
    question: Annotated[str, StringConstraints(min_length=1, max_length=60)] = Field(
        description="The question's code."
    )
    answer: Choice | StrictInt | LongText = Field(
        description="`yes`, `no` or `not_applicable` for a yes/no question; 1 to 5 for a "
        "scale; text for a text question."
    )


class RelativesIn(RequestModel):
    sought: Choice = Field(
        description="Whether the relatives' view was sought (`not_applicable`: no relatives)."
    )
    view: LongText | None = Field(
        default=None, description="The relatives' view as the reviewer records it."
    )


class ProgrammeReviewSubmission(RequestModel):
    """A programme review: the SJR of the case's referral (its first, or a second opinion's),
    with the programme's answers and the relatives' view, in one request."""

    lease_id: uuid.UUID | None = Field(
        default=None, description="Required when the referral is held under a live lease."
    )
    submit: StrictBool = Field(
        default=True,
        description="false saves a draft; true submits (the programme's required questions "
        "must then be answered, for the first opinion).",
    )
    opinion: Annotated[int, Field(ge=1, le=20, strict=True)] = Field(
        default=1, description="1 for the case's first review; 2, 3 ... for a second opinion."
    )
    review: SjrReview = Field(description="The SJR, as POST /v1/referrals/{id}/review takes it.")
    answers: list[AnswerIn] = Field(
        default_factory=list, max_length=50, description="Answers to the programme's questions."
    )
    relatives: RelativesIn | None = Field(default=None, description="The relatives' view.")


class AnswersIn(RequestModel):
    """Answers to the programme's questions for one opinion of a case (those sent replace the
    earlier answers to the same questions), and the relatives' view. For a case that counts
    its routine SJR, or a past audit entered after the fact (`answered_at` in the past)."""

    opinion: Annotated[int, Field(ge=1, le=20, strict=True)] = Field(
        default=1, description="1 for the case's first review; 2, 3 ... for a second opinion."
    )
    answers: list[AnswerIn] = Field(
        default_factory=list, max_length=50, description="Answers to the programme's questions."
    )
    relatives: RelativesIn | None = Field(default=None, description="The relatives' view.")
    answered_by: Person | None = Field(
        default=None, description="Who answered; `X-On-Behalf-Of` when omitted."
    )
    answered_at: Timestamp | None = Field(
        default=None, description="When they were answered (not in the future); now if omitted."
    )


class SecondOpinionRequest(RequestModel):
    """Ask a named colleague, or any reviewer of a specialty, for a second opinion."""

    requested_from: Person | None = Field(
        default=None, description="The colleague: the second opinion is assigned to them."
    )
    specialty: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        default=None,
        description="Or a specialty: the referral waits in the programme's queue under it, "
        "for a claim that names it.",
    )
    reason: Reason = Field(description="Why a second opinion is wanted.")
    requested_by: Person | None = Field(
        default=None, description="Who asks; `X-On-Behalf-Of` when omitted."
    )

    @model_validator(mode="after")
    def _one_of(self) -> SecondOpinionRequest:
        if (self.requested_from is None) == (self.specialty is None):
            raise ValueError("give either requested_from or specialty")
        return self


class ExcludeRequest(RequestModel):
    reason: Reason = Field(description="Why the case leaves the cohort.")


class ReviewSummary(ResponseModel):
    review_id: uuid.UUID
    status: str = Field(description="`draft` or `submitted`.")
    reviewer: str | None
    overall_rating: int | None = Field(description="Overall care, 1 very poor to 5 excellent.")
    quality_of_records: int | None
    avoidability: int | None
    submitted_at: datetime | None


class OpinionOut(ResponseModel):
    number: int = Field(description="1 the case's first review; 2, 3 ... second opinions.")
    source: str = Field(
        description="`programme` (a programme referral) or `routine` (the death's routine SJR, "
        "which a linked case counts)."
    )
    referral_id: uuid.UUID | None
    referral_status: str | None = Field(description="Its referral's status, as readers see it.")
    requested_by: str | None = Field(default=None, description="Who asked for it.")
    requested_from: str | None = Field(default=None, description="The colleague asked.")
    requested_specialty: str | None = Field(default=None, description="Or the specialty asked.")
    reason: str | None = Field(default=None, description="Why it was asked for.")
    requested_at: datetime | None = Field(default=None, description="When it was asked for.")
    review: ReviewSummary | None = Field(description="Its review, once one is saved.")


class AnswerOut(ResponseModel):
    opinion: int = Field(description="1 the case's first review; 2, 3 ... second opinions.")
    question_id: uuid.UUID = Field(description="The question answered.")
    question: str = Field(description="The question's code.")
    answer: Any = Field(description="As given: a choice, a scale value or text.")
    answered_by: str | None = Field(description="Who answered.")
    answered_at: datetime = Field(description="When.")


class LoggedContact(ResponseModel):
    """A contact with the bereaved, from the medical examiner's log."""

    contacted_at: datetime | None = Field(default=None, description="When.")
    method: str | None = Field(default=None, description="How: phone, in person, letter ...")
    contact: str | None = Field(default=None, description="Who was spoken to.")
    concerns: str | None = Field(default=None, description="Concerns they raised.")
    compliments: str | None = Field(default=None, description="Compliments about the care.")
    wants_involvement: bool | None = Field(
        default=None, description="Whether they want to be involved in the review."
    )


class RelativesOut(ResponseModel):
    """What the medical examiner's contact log says, and the reviewer's record."""

    bereaved_contacted: bool | None = Field(description="From the ME's screening.")
    bereaved_concerns: str | None = Field(description="The concern the ME recorded, if any.")
    contacts: list[LoggedContact] = Field(description="The ME's contact log with the bereaved.")
    sought: str | None = Field(description="The reviewer's record: was their view sought.")
    view: str | None = Field(description="The relatives' view as the reviewer recorded it.")
    recorded_by: str | None
    recorded_at: datetime | None


class CaseOut(ResponseModel):
    id: uuid.UUID
    programme_id: uuid.UUID = Field(description="The programme.")
    death_id: uuid.UUID
    case_reference: str
    died_on: date
    age_at_death: int = Field(description="Age at death, in years.")
    place_of_death: str
    site: str | None
    ward: str | None
    specialty: str | None = Field(description="At death, else on admission.")
    selected: bool = Field(description="Chosen for review.")
    sample_key: int = Field(description="Its place in the sample order (lowest first).")
    joined: str = Field(description="`build` (when the cohort was built) or `late`.")
    added_at: datetime = Field(description="When it joined the cohort.")
    linked: bool = Field(description="Counts the death's routine SJR as its first review.")
    referral_id: uuid.UUID | None = Field(description="Its own programme referral.")
    status: CaseReviewStatus = Field(
        description="`not_selected`, `awaiting_review`, `reviewed`, `not_reviewed` (its "
        "programme referral declined or cancelled) or `excluded`."
    )
    excluded_reason: str | None = Field(description="Why it was taken out of the cohort.")
    version: int


class CaseDetail(CaseOut):
    opinions: list[OpinionOut] = Field(
        description="Its first review (own or routine), then its second opinions: all kept."
    )
    answers: list[AnswerOut] = Field(description="Answers to the programme's questions.")
    relatives: RelativesOut = Field(description="The relatives' view.")
