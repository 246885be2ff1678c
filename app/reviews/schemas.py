"""The review instruments (DESIGN.md section 5), as sent and as returned."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StrictBool, StringConstraints, field_validator

from app.kit.enums import (
    ExternalStatus,
    Harm,
    LederStatus,
    MmOutcome,
    ProblemType,
    ReviewStatus,
    Route,
    SjrPhase,
)
from app.kit.schemas import RequestModel, ResponseModel, Timestamp
from app.organisations.lookup import as_uuid, is_reference

Narrative = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=100)]
CareRating = Annotated[int, Field(ge=1, le=5, strict=True)]
Avoidability = Annotated[int, Field(ge=1, le=6, strict=True)]


def _organisation(value: str) -> str:
    if not is_reference(value):
        raise ValueError("not an ODS code (e.g. RR8, B86001) or an organisation id")
    found = as_uuid(value)
    return str(found) if found is not None else value.upper()


CareOrganisation = Annotated[
    str, StringConstraints(min_length=1, max_length=36), AfterValidator(_organisation)
]
CARE_ORGANISATION = (
    "The organisation that gave this care (cross-system review): its ODS code or registry id, "
    "e.g. the acute trust for the admission, the GP practice before it, the community "
    "provider after discharge. It must be in the organisation registry. Shown on reading as "
    "the organisation (`id`, `ods_code`, `name`, `kind`)."
)


class ReviewerIn(RequestModel):
    name: Short
    role: Short | None = None


class PhaseRating(RequestModel):
    phase: SjrPhase
    rating: CareRating = Field(description="1 very poor, 2 poor, 3 adequate, 4 good, 5 excellent.")
    narrative: Narrative | None = None
    # Left out of the stored instrument when not given, so that reviews without one (every
    # review before issue 16) keep the detail they had.
    care_organisation: CareOrganisation | None = Field(
        default=None, description=CARE_ORGANISATION, exclude_if=lambda value: value is None
    )


class ProblemInCare(RequestModel):
    type: ProblemType
    phase: SjrPhase = Field(description="The phase of care it arose in (not `overall`).")
    harm: Harm = Field(description="Did it lead to harm: no, probably, yes.")
    description: Narrative | None = None
    # Left out of the stored instrument when not given, so that reviews without one (every
    # review before issue 16) keep the detail they had.
    care_organisation: CareOrganisation | None = Field(
        default=None, description=CARE_ORGANISATION, exclude_if=lambda value: value is None
    )

    @field_validator("phase")
    @classmethod
    def _a_real_phase(cls, phase: SjrPhase) -> SjrPhase:
        if phase is SjrPhase.overall:
            raise ValueError("a problem in care belongs to a phase of care, not to `overall`")
        return phase


class SjrReview(RequestModel):
    """Structured Judgement Review (RCP). A draft may be partial; a submitted SJR needs the
    reviewer, the overall phase rating, the quality of records and the avoidability, and each
    phase that applies (each phase given) both its rating and its narrative."""

    instrument: Literal["sjr"]
    reviewer: ReviewerIn | None = None
    phases: list[PhaseRating] = Field(default_factory=list, max_length=len(SjrPhase))
    quality_of_records: CareRating | None = None
    avoidability: Avoidability | None = Field(
        default=None,
        description="1 definitely avoidable ... 6 definitely not avoidable; 1-3 is 'more likely "
        "than not due to problems in care'.",
    )
    problems_in_care: list[ProblemInCare] = Field(default_factory=list, max_length=50)
    patient_safety_incident_suspected: StrictBool = False
    summary: Narrative | None = None

    @field_validator("phases")
    @classmethod
    def _phases_once(cls, ratings: list[PhaseRating]) -> list[PhaseRating]:
        phases = [rating.phase for rating in ratings]
        if len(phases) != len(set(phases)):
            raise ValueError("each phase is rated at most once")
        return ratings

    def rating(self, phase: SjrPhase) -> int | None:
        return next((r.rating for r in self.phases if r.phase is phase), None)

    def missing_for_submission(self, narratives: bool = True) -> list[tuple[str, str]]:
        """What a submitted SJR lacks. ``narratives``: each rated phase needs its narrative
        (live submissions; a historical SJR recorded before that rule is taken as it was)."""
        missing = []
        if self.reviewer is None:
            missing.append(("/review/reviewer", "a submitted SJR names its reviewer"))
        if self.rating(SjrPhase.overall) is None:
            missing.append(("/review/phases", "a submitted SJR rates the `overall` phase"))
        # A phase that applies (one the review gives) is judged in words as well as scored.
        for index, phase in enumerate(self.phases):
            if narratives and phase.narrative is None:
                missing.append(
                    (
                        f"/review/phases/{index}/narrative",
                        "a submitted SJR gives each phase it rates its narrative",
                    )
                )
        if self.quality_of_records is None:
            missing.append(("/review/quality_of_records", "a submitted SJR rates the records"))
        if self.avoidability is None:
            missing.append(("/review/avoidability", "a submitted SJR judges avoidability"))
        return missing


class MmReview(RequestModel):
    """A specialty Morbidity & Mortality meeting's discussion of the death."""

    instrument: Literal["mm"]
    meeting_date: date
    specialty: Short
    presenter: Short
    outcome: MmOutcome
    learning_points: list[Narrative] = Field(default_factory=list, max_length=50)
    avoidability: Avoidability | None = None


class LederReview(RequestModel):
    """The trust's notification to LeDeR, then the ICB's review as it progresses."""

    instrument: Literal["leder"]
    notified_at: Timestamp
    leder_reference: Reference
    status: LederStatus = LederStatus.notified
    outcome_summary: Narrative | None = None


class ExternalReview(RequestModel):
    """A case sent to another process or organisation (CDR, PMRT, MNSI, PSII, coroner,
    complaint, system review)."""

    instrument: Literal["external"]
    reference: Reference
    organisation: Short
    referred_at: Timestamp
    status: ExternalStatus
    outcome: Narrative | None = None
    completed_at: Timestamp | None = None


InstrumentIn = Annotated[
    SjrReview | MmReview | LederReview | ExternalReview, Field(discriminator="instrument")
]


class ReviewSubmission(RequestModel):
    lease_id: uuid.UUID | None = Field(
        default=None, description="Required when the referral is held under a live lease."
    )
    submit: StrictBool = Field(
        default=True, description="false saves a draft; true submits and completes the referral."
    )
    review: InstrumentIn


class ReviewAmendment(RequestModel):
    review: InstrumentIn


class FollowOnReferral(ResponseModel):
    """A referral a submitted review raised."""

    id: uuid.UUID = Field(description="The new referral's id.")
    route: Route = Field(description="Its route: `sjr` (stage 2) or `psii`.")
    stage: int | None = Field(description="2 for a second-stage SJR; null otherwise.")
    status: str = Field(description="Its status (`ready`).")
    reasons: list[str] = Field(description="Why it was raised (reason codes).")
    due_at: datetime = Field(description="When it is due.")


class ReviewOut(ResponseModel):
    id: uuid.UUID
    referral_id: uuid.UUID
    death_id: uuid.UUID
    route: Route
    stage: int | None
    status: ReviewStatus
    version: int
    reviewer: str | None
    submitted_at: datetime | None
    review: dict[str, Any] = Field(
        description="The instrument as stored, with a `..._label` beside every score."
    )
    external_due_at: datetime | None = Field(
        description="LeDeR: when the ICB's review is due (six months after notification)."
    )
    created_at: datetime
    updated_at: datetime
    follow_on_referrals: list[FollowOnReferral] = Field(
        default_factory=list,
        description="The referrals this request raised (a second-stage SJR, a PSII): in the "
        "answer to a submission or amendment that raised them; empty otherwise.",
    )


class ReviewVersionOut(ResponseModel):
    version: int
    superseded_at: datetime
    snapshot: dict[str, Any]


class ScaleValue(ResponseModel):
    value: int
    label: str
    description: str | None


class Scales(ResponseModel):
    care_rating: list[ScaleValue]
    records_quality: list[ScaleValue]
    avoidability: list[ScaleValue]
