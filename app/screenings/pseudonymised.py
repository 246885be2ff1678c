"""What a pseudonymised client is shown of a screening and its earlier versions."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.kit.enums import CoronerReason, ReasonCode, Route
from app.privacy.pseudonym import month, month_of_death, raised
from app.privacy.schemas import MONTH, PseudonymisedModel
from app.screenings.schemas import ExaminerOut, ScreeningOut, ScreeningVersionOut


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


def screening(key: bytes, full: ScreeningOut) -> ScreeningPseudonymised:
    return ScreeningPseudonymised(
        id=full.id,
        death_id=full.death_id,
        examiner=full.examiner,
        screened_month=month(full.screened_at),
        records_reviewed=full.records_reviewed,
        qap_discussed=full.qap_discussed,
        bereaved_contacted=full.bereaved_contacted,
        bereaved_concern_raised=raised(full.bereaved_concerns),
        staff_concern_raised=raised(full.staff_concerns),
        mccd_issued_month=month_of_death(full.mccd_issued_at),
        coroner_notified=full.coroner_notified,
        coroner_reason=full.coroner_reason,
        clinical_governance_concern_raised=raised(full.clinical_governance_concern),
        death_expected=full.death_expected,
        patient_safety_concern_raised=raised(full.patient_safety_concern),
        routes_requested=full.routes_requested,
        overrides=[
            RouteOverridePseudonymised(
                route=item.route, reason_codes=item.reason_codes, recorded_at=item.recorded_at
            )
            for item in full.overrides
        ],
        version=full.version,
        created_at=full.created_at,
        updated_at=full.updated_at,
    )


def screening_version(key: bytes, full: ScreeningVersionOut) -> ScreeningVersionOut:
    """An earlier version, its snapshot shown as the screening itself would be."""
    snapshot = screening(key, ScreeningOut.model_validate(full.snapshot))
    return ScreeningVersionOut(
        version=full.version,
        superseded_at=full.superseded_at,
        snapshot=snapshot.model_dump(mode="json"),
    )
