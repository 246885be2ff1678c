"""Screening rows to response bodies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.models import RouteOverride, Screening
from app.screenings.schemas import ScreeningOut


def screening_snapshot(screening: Screening, overrides: Sequence[RouteOverride]) -> dict[str, Any]:
    return screening_out(screening, overrides).model_dump(mode="json")


def screening_out(screening: Screening, overrides: Sequence[RouteOverride]) -> ScreeningOut:
    return ScreeningOut.model_validate(
        {
            "id": screening.id,
            "death_id": screening.death_id,
            "examiner": {
                "name": screening.examiner_name,
                "gmc_number": screening.examiner_gmc_number,
            },
            "screened_at": screening.screened_at,
            "records_reviewed": screening.records_reviewed,
            "qap_discussed": screening.qap_discussed,
            "bereaved_contacted": screening.bereaved_contacted,
            "bereaved_concerns": screening.bereaved_concerns,
            "staff_concerns": screening.staff_concerns,
            "cause_of_death": {
                "part_1a": screening.cause_part_1a,
                "part_1b": screening.cause_part_1b,
                "part_1c": screening.cause_part_1c,
                "part_2": screening.cause_part_2,
            },
            "mccd_issued_at": screening.mccd_issued_at,
            "coroner_notified": screening.coroner_notified,
            "coroner_reason": screening.coroner_reason,
            "clinical_governance_concern": screening.clinical_governance_concern,
            "death_expected": screening.death_expected,
            "patient_safety_concern": screening.patient_safety_concern,
            "routes_requested": screening.routes_requested,
            "notes_received_at": screening.notes_received_at,
            "scrutiny_completed_at": screening.scrutiny_completed_at,
            **(screening.scrutiny or {}),
            "overrides": list(overrides),
            "version": screening.version,
            "created_at": screening.created_at,
            "updated_at": screening.updated_at,
        }
    )
