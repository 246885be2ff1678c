"""What a pseudonymised client is shown of a screening and its earlier versions."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pydantic import Field

from app.kit.enums import CoronerReason, ReasonCode, Route
from app.privacy.pseudonym import month, month_of_death, raised
from app.privacy.schemas import MONTH, PseudonymisedModel
from app.screenings.schemas import ExaminerOut, ScreeningOut, ScreeningVersionOut
from app.screenings.scrutiny import CauseCodes, ContactMethod, UrgentReleaseReason


class RouteOverridePseudonymised(PseudonymisedModel):
    route: Route
    reason_codes: list[ReasonCode]
    recorded_at: datetime


class BereavedContactPseudonymised(PseudonymisedModel):
    """A contact with the bereaved without who was spoken to or what was said."""

    contacted_month: str = Field(description=MONTH)
    method: ContactMethod = Field(description="How the bereaved were contacted.")
    concerns_raised: bool = Field(description="Whether they raised concerns (never shown).")
    compliments_given: bool = Field(description="Whether they gave compliments (never shown).")
    wants_involvement: bool | None = Field(
        description="Whether they want to be involved in a review; null if not asked."
    )


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
    notes_received_month: str | None = Field(default=None, description=MONTH)
    scrutiny_completed_month: str | None = Field(default=None, description=MONTH)
    scrutiny_within_24_hours: bool | None = Field(
        default=None, description="Scrutiny completed within 24 hours of the notes' arrival."
    )
    qap_recorded: bool = Field(default=False, description="The QAP is named (never shown).")
    cause_of_death_codes: CauseCodes | None = Field(
        default=None, description="The agreed cause's codes (shared; its text never is)."
    )
    proposed_cause_of_death_codes: CauseCodes | None = Field(
        default=None, description="The codes of the cause of death the QAP proposed."
    )
    registrar_rejections: int = Field(default=0, description="How many times rejected.")
    mccd_reissued: bool = Field(
        default=False, description="Whether the MCCD was reissued after a rejection."
    )
    urgent_release_reason: UrgentReleaseReason | None = Field(
        default=None, description="Why urgent release of the body was asked for, if it was."
    )
    bereaved_contacts: list[BereavedContactPseudonymised] = Field(
        default_factory=list, description="The contacts with the bereaved, oldest first."
    )
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
        notes_received_month=month_of_death(full.notes_received_at),
        scrutiny_completed_month=month_of_death(full.scrutiny_completed_at),
        scrutiny_within_24_hours=within_24_hours(full),
        qap_recorded=full.qap is not None,
        cause_of_death_codes=full.cause_of_death_codes,
        proposed_cause_of_death_codes=full.proposed_cause_of_death.codes
        if full.proposed_cause_of_death is not None
        else None,
        registrar_rejections=len(full.registrar_rejections),
        mccd_reissued=any(r.reissued_at is not None for r in full.registrar_rejections),
        urgent_release_reason=full.urgent_release.reason if full.urgent_release else None,
        bereaved_contacts=[
            BereavedContactPseudonymised(
                contacted_month=month(contact.contacted_at),
                method=contact.method,
                concerns_raised=contact.concerns is not None,
                compliments_given=contact.compliments is not None,
                wants_involvement=contact.wants_involvement,
            )
            for contact in full.bereaved_contacts
        ],
        version=full.version,
        created_at=full.created_at,
        updated_at=full.updated_at,
    )


def within_24_hours(full: ScreeningOut) -> bool | None:
    if full.notes_received_at is None or full.scrutiny_completed_at is None:
        return None
    return full.scrutiny_completed_at - full.notes_received_at <= timedelta(hours=24)


def screening_version(key: bytes, full: ScreeningVersionOut) -> ScreeningVersionOut:
    """An earlier version, its snapshot shown as the screening itself would be."""
    snapshot = screening(key, ScreeningOut.model_validate(full.snapshot))
    return ScreeningVersionOut(
        version=full.version,
        superseded_at=full.superseded_at,
        snapshot=snapshot.model_dump(mode="json"),
    )
