"""What a pseudonymised client (a commissioner) is shown, resource by resource.

Each model here stands in for a full response model when the caller's client is marked
pseudonymised (``app.privacy.views`` makes the swap). They are allow-lists: a field exists here
only if it was judged safe to show, so a field added to a full model later stays hidden from
commissioners until someone adds it here on purpose. docs/pseudonymisation.md says why each
field is kept, coarsened or dropped.

Unknown fields are forbidden, so that a full body can never validate as one of these (the
routes declare ``Full | Pseudonymised`` and must not confuse the two).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from app.findings.schemas import FindingKind, ThemeRef
from app.kit.enums import (
    AdmissionMethod,
    CoronerReason,
    DeathStatus,
    PlaceOfDeath,
    ReasonCode,
    ReferralStatus,
    ReviewStatus,
    Route,
    Sex,
    SjrPhase,
)
from app.kit.schemas import ResponseModel
from app.screenings.schemas import ExaminerOut

MONTH = "A month in UK local time, `YYYY-MM`."


class PseudonymisedModel(ResponseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")


class DeathPseudonymised(PseudonymisedModel):
    """A death as a commissioner sees it: no name, NHS number, local patient id, date of birth,
    full postcode, sender's reference, ward, consultant or exact date and time."""

    id: uuid.UUID
    case_reference: str
    source_system: str
    pseudonym: str = Field(
        description="`P-` and 26 characters: a keyed hash (HMAC-SHA256) of the NHS number, "
        "the same for the same patient on every route and call of this deployment."
    )
    age_band: str = Field(description="Ten-year age band at death: `0-9` ... `80-89`, `90+`.")
    sex: Sex
    ethnicity: str | None
    postcode_district: str | None = Field(description="The outward code, e.g. `LS1`.")
    month_of_death: str = Field(description=MONTH)
    place_of_death: PlaceOfDeath
    site: str | None
    admitting_specialty: str | None
    specialty_at_death: str | None
    diagnosis_group: str | None
    admission_method: AdmissionMethod
    admitted_month: str | None = Field(description=MONTH)
    discharged_month: str | None = Field(description=MONTH)
    learning_disability: bool
    autism: bool
    serious_mental_illness: bool
    pregnant_or_recently_pregnant: bool
    within_30_days_of_discharge: bool
    status: DeathStatus
    version: int
    created_at: datetime
    updated_at: datetime


class RouteOverridePseudonymised(PseudonymisedModel):
    route: Route
    reason_codes: list[ReasonCode]
    recorded_at: datetime


class ScreeningPseudonymised(PseudonymisedModel):
    """A screening without its free text (concerns, cause of death, override reasons: text
    about one patient may name them or their family); whether each concern was raised stays."""

    id: uuid.UUID
    death_id: uuid.UUID
    examiner: ExaminerOut
    screened_month: str = Field(description=MONTH)
    records_reviewed: bool
    qap_discussed: bool
    bereaved_contacted: bool
    bereaved_concern_raised: bool
    staff_concern_raised: bool
    mccd_issued_month: str | None = Field(description=MONTH)
    coroner_notified: bool
    coroner_reason: CoronerReason | None
    clinical_governance_concern_raised: bool
    death_expected: bool
    patient_safety_concern_raised: bool
    routes_requested: list[Route]
    overrides: list[RouteOverridePseudonymised]
    version: int
    created_at: datetime
    updated_at: datetime


class ReferralPseudonymised(PseudonymisedModel):
    """A referral without its free-text status reason, another organisation's reference or
    a lease id (a pseudonymised client cannot claim, and a lease id is its holder's alone)."""

    id: uuid.UUID
    death_id: uuid.UUID
    route: Route
    stage: int | None
    reasons: list[ReasonCode]
    status: ReferralStatus
    specialty: str | None
    site: str | None
    priority: int
    due_at: datetime
    overdue: bool
    assigned_to: str | None
    leased_to: str | None
    claimed_at: datetime | None
    lease_expires_at: datetime | None
    excluded_reviewer: str | None
    completed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class TransitionPseudonymised(PseudonymisedModel):
    """A referral transition without its free-text reason."""

    action: str
    from_status: str | None
    to_status: str
    reviewer: str | None
    client_id: uuid.UUID | None
    on_behalf_of: str | None
    occurred_at: datetime


class ReviewPseudonymised(PseudonymisedModel):
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
        description="The instrument's structured parts only: scores with their labels, phases, "
        "problem types and harm, outcomes and statuses; narratives, summaries, learning points "
        "and other organisations' references are left out."
    )
    external_due_at: datetime | None
    created_at: datetime
    updated_at: datetime


class FindingPseudonymised(PseudonymisedModel):
    """A finding without its description (free text about one patient's care)."""

    id: uuid.UUID
    death_id: uuid.UUID
    review_id: uuid.UUID | None
    kind: FindingKind
    theme: ThemeRef
    phase: SjrPhase | None
    month_of_death: str = Field(description=MONTH)
    specialty: str | None
    route: Route | None
    recorded_by: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class DeathDetailPseudonymised(DeathPseudonymised):
    screening: ScreeningPseudonymised | None
    referrals: list[ReferralPseudonymised]
    reviews: list[ReviewPseudonymised]
