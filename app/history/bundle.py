"""The history bundle (docs/history.md): one JSON object per line, one line per death, holding
the death, its screening, its referrals (each with its review) and its findings, every one with
its own original times. The death and the screening are the live intake's own bodies
(``DeathCreate``, ``ScreeningFields``) and each review's form is the live review instrument,
so that a bundle is held to the same field rules as ``POST /v1/screenings`` and
``POST /v1/referrals/{id}/review``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from app.deaths.schemas import DeathCreate
from app.findings.schemas import FindingKind, Narrative, Person, ThemeCode, ThemeName
from app.kit.enums import ReasonCode, ReviewStatus, Route, SjrPhase
from app.kit.schemas import RequestModel, Timestamp
from app.reviews.schemas import InstrumentIn
from app.screenings.schemas import RouteOverrideIn, ScreeningFields

FORMAT = "lfd-history/1"

LocalReference = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+( [\x21-\x7e]+)*$")
]
Who = Annotated[str, Field(min_length=1, max_length=200)]


class HistoricStatus(StrEnum):
    """A referral's status as the source system left it (no lease: `claimed` is not one)."""

    ready = "ready"
    in_progress = "in_progress"
    on_hold = "on_hold"
    completed = "completed"
    declined = "declined"
    cancelled = "cancelled"


OPEN_HISTORIC = frozenset(
    {HistoricStatus.ready, HistoricStatus.in_progress, HistoricStatus.on_hold}
)


class HistoricOverride(RouteOverrideIn):
    """A required route the medical examiner declined, with when that was recorded."""

    recorded_at: Timestamp


class HistoricScreening(ScreeningFields):
    """The live screening body; its overrides carry the time they were recorded."""

    overrides: list[HistoricOverride] = Field(  # type: ignore[assignment]
        default_factory=list,
        max_length=len(Route),
        description="Required routes the ME declined, each with a written reason and its time.",
    )


class HistoricReview(RequestModel):
    """The review of one referral: the live instrument as ``form``, with its status and times."""

    status: ReviewStatus = ReviewStatus.submitted
    started_at: Timestamp | None = Field(
        default=None, description="When the review was begun; defaults to the referral's time."
    )
    submitted_at: Timestamp | None = Field(
        default=None, description="When it was submitted; required for a submitted review."
    )
    form: InstrumentIn


class HistoricReferral(RequestModel):
    reference: LocalReference = Field(
        description="The source's id for this referral, unique within the record; a corrected "
        "bundle is matched to what was imported by it."
    )
    route: Route
    stage: Annotated[int, Field(ge=1, le=2, strict=True)] | None = None
    reasons: list[ReasonCode] = Field(min_length=1, max_length=len(ReasonCode))
    status: HistoricStatus
    status_reason: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    created_at: Timestamp
    claimed_at: Timestamp | None = None
    closed_at: Timestamp | None = Field(
        default=None,
        description="When it was completed, declined or cancelled; required for those.",
    )
    due_at: Timestamp | None = Field(
        default=None, description="The due date the source recorded; required for an open one."
    )
    reviewer: Who | None = None
    external_reference: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    review: HistoricReview | None = None

    @field_validator("route")
    @classmethod
    def _not_a_programme(cls, route: Route) -> Route:
        if route is Route.programme:
            # A past audit comes in as its deaths and their SJRs; the programme is defined over
            # them and links those SJRs (docs/programmes.md, "On imported history").
            raise ValueError(
                "a review programme's referrals are not history: import the SJRs (route `sjr`) "
                "and define the programme over them"
            )
        return route

    @field_validator("reasons")
    @classmethod
    def _reasons_once(cls, reasons: list[ReasonCode]) -> list[ReasonCode]:
        if len(set(reasons)) != len(reasons):
            raise ValueError("a reason is given twice")
        return reasons


class ThemeIn(RequestModel):
    code: ThemeCode
    name: ThemeName | None = Field(
        default=None, description="Needed only when the service has no theme with this code."
    )


class HistoricFinding(RequestModel):
    reference: LocalReference
    referral: LocalReference | None = Field(
        default=None, description="The reference of the referral whose review it came from."
    )
    kind: FindingKind
    theme: ThemeIn
    phase: SjrPhase | None = None
    description: Narrative
    recorded_by: Person | None = None
    recorded_at: Timestamp


class HistoryRecordIn(RequestModel):
    """One line of a bundle: one death and everything that happened to it."""

    format: Literal["lfd-history/1"] = "lfd-history/1"
    death: DeathCreate
    screening: HistoricScreening
    referrals: list[HistoricReferral] = Field(default_factory=list, max_length=50)
    findings: list[HistoricFinding] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _references_once(self) -> HistoryRecordIn:
        for name, items in (("referrals", self.referrals), ("findings", self.findings)):
            references = [item.reference for item in items]
            if len(set(references)) != len(references):
                raise ValueError(f"two {name} share a reference")
        return self
