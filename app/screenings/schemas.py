"""The medical examiner's scrutiny, as sent and as returned (without the death around it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import (
    BeforeValidator,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.kit.enums import CoronerReason, ReasonCode, Route
from app.kit.schemas import RequestModel, ResponseModel, Timestamp
from app.screenings.scrutiny import ScrutinyFields, ScrutinyOut


def _blank_to_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return value


ConcernText = Annotated[
    Annotated[str, StringConstraints(max_length=5000)] | None, BeforeValidator(_blank_to_none)
]
CauseText = Annotated[
    Annotated[str, StringConstraints(max_length=500)] | None, BeforeValidator(_blank_to_none)
]


class Examiner(RequestModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    gmc_number: Annotated[str, StringConstraints(pattern=r"^[0-9]{7}$")] = Field(
        description="The medical examiner's seven-digit GMC reference number."
    )


class CauseOfDeath(RequestModel):
    """MCCD parts 1a, 1b, 1c and 2."""

    part_1a: CauseText = None
    part_1b: CauseText = None
    part_1c: CauseText = None
    part_2: CauseText = None


class RouteOverrideIn(RequestModel):
    route: Route
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        description="Why the medical examiner declines a route the rules require."
    )


class ScreeningFields(ScrutinyFields):
    examiner: Examiner
    screened_at: Timestamp
    records_reviewed: StrictBool
    qap_discussed: StrictBool = Field(
        description="The ME discussed the death with the attending practitioner."
    )
    bereaved_contacted: StrictBool
    bereaved_concerns: ConcernText = Field(
        default=None, description="A significant concern the bereaved raised; null when none."
    )
    staff_concerns: ConcernText = Field(
        default=None, description="A significant concern staff raised; null when none."
    )
    cause_of_death: CauseOfDeath = Field(default_factory=CauseOfDeath)
    mccd_issued_at: Timestamp | None = None
    coroner_notified: StrictBool
    coroner_reason: CoronerReason | None = Field(
        default=None, description="Required when the coroner was notified (2019 Regulations)."
    )
    clinical_governance_concern: ConcernText = None
    death_expected: StrictBool
    patient_safety_concern: ConcernText = None
    routes_requested: list[Route] = Field(
        default_factory=list,
        max_length=len(Route),
        description="Routes the ME asks for beyond those the rules require.",
    )
    overrides: list[RouteOverrideIn] = Field(
        default_factory=list,
        max_length=len(Route),
        description="Required routes the ME declines, each with a written reason.",
    )

    @field_validator("routes_requested")
    @classmethod
    def _not_a_programme(cls, routes: list[Route]) -> list[Route]:
        if Route.programme in routes:
            # A programme's queue is filled by its cohort (app.programmes), never by a screening.
            raise ValueError(
                "`programme` is a review programme's queue, filled by the programme's cohort; "
                "it cannot be requested"
            )
        return routes

    @model_validator(mode="after")
    def _no_repeats(self) -> ScreeningFields:
        if len(set(self.routes_requested)) != len(self.routes_requested):
            raise ValueError("routes_requested names a route twice")
        routes = [override.route for override in self.overrides]
        if len(set(routes)) != len(routes):
            raise ValueError("overrides names a route twice")
        if set(routes) & set(self.routes_requested):
            raise ValueError("a route cannot be both requested and overridden")
        return self


class ScreeningAmend(ScreeningFields):
    """The whole screening as it should now stand (PUT replaces it)."""


class RouteOverrideOut(ResponseModel):
    route: Route
    reason_codes: list[ReasonCode] = Field(description="Why the rules required the route.")
    override_reason: str
    recorded_at: datetime


class RequiredRouteOut(ResponseModel):
    route: Route
    reasons: list[ReasonCode]
    outcome: str = Field(description="`referred` or `overridden`.")


class ExaminerOut(ResponseModel):
    name: str
    gmc_number: str


class CauseOfDeathOut(ResponseModel):
    part_1a: str | None
    part_1b: str | None
    part_1c: str | None
    part_2: str | None


class ScreeningOut(ScrutinyOut):
    id: uuid.UUID
    death_id: uuid.UUID
    examiner: ExaminerOut
    screened_at: datetime
    records_reviewed: bool
    qap_discussed: bool
    bereaved_contacted: bool
    bereaved_concerns: str | None
    staff_concerns: str | None
    cause_of_death: CauseOfDeathOut
    mccd_issued_at: datetime | None
    coroner_notified: bool
    coroner_reason: CoronerReason | None
    clinical_governance_concern: str | None
    death_expected: bool
    patient_safety_concern: str | None
    routes_requested: list[Route]
    overrides: list[RouteOverrideOut]
    version: int
    created_at: datetime
    updated_at: datetime


class ScreeningVersionOut(ResponseModel):
    version: int
    superseded_at: datetime
    snapshot: dict[str, object]
