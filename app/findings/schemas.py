"""Theme and finding request and response bodies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StrictBool, StringConstraints

from app.kit.enums import Route, SjrPhase
from app.kit.schemas import RequestModel, ResponseModel


class FindingKind(StrEnum):
    problem_in_care = "problem_in_care"
    good_practice = "good_practice"
    learning_point = "learning_point"
    concern = "concern"


ThemeCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=60, pattern=r"^[a-z0-9]+(_[a-z0-9]+)*$"),
]
# A name must hold a letter or a digit, so that a code can be made from it.
ThemeName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"[A-Za-z0-9]")]
Narrative = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
Person = Annotated[str, StringConstraints(min_length=1, max_length=200)]

CODE_DESCRIPTION = "Lower-case letters and digits joined by `_`, e.g. `sepsis`; never changes."


class ThemeCreate(RequestModel):
    code: ThemeCode | None = Field(
        default=None, description=f"{CODE_DESCRIPTION} Made from the name when omitted."
    )
    name: ThemeName = Field(description="Unique, compared without regard to case.")
    description: Narrative | None = None


class ThemePatch(RequestModel):
    """Only the fields sent change. A rename keeps the theme's id and code, so its findings
    follow it; `retired: true` closes it to new findings, `false` reopens it."""

    name: ThemeName | None = None
    description: Narrative | None = Field(default=None, description="`null` clears it.")
    retired: StrictBool | None = None


class ThemeOut(ResponseModel):
    id: uuid.UUID
    code: str = Field(description=CODE_DESCRIPTION)
    name: str
    description: str | None
    retired: bool = Field(description="A retired theme takes no new findings.")
    retired_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class ThemeRef(ResponseModel):
    """The finding's theme as it stands now (a renamed theme shows its new name)."""

    id: uuid.UUID
    code: str
    name: str
    retired: bool


class FindingCreate(RequestModel):
    death_id: uuid.UUID
    review_id: uuid.UUID | None = Field(
        default=None, description="The review it came from; it must be a review of this death."
    )
    kind: FindingKind
    theme_id: uuid.UUID | None = Field(
        default=None, description="The theme's id; give this or `theme_code`, not both."
    )
    theme_code: ThemeCode | None = Field(
        default=None, description="The theme's code; give this or `theme_id`, not both."
    )
    phase: SjrPhase | None = Field(default=None, description="The phase of care, if one applies.")
    description: Narrative
    recorded_by: Person | None = Field(
        default=None, description="Who recorded it; defaults to X-On-Behalf-Of."
    )


class FindingPatch(RequestModel):
    """Only the fields sent change; `null` clears an optional field. The death never changes;
    a new theme must not be retired."""

    review_id: uuid.UUID | None = Field(
        default=None, description="A review of the same death; `null` detaches it."
    )
    kind: FindingKind | None = None
    theme_id: uuid.UUID | None = None
    theme_code: ThemeCode | None = None
    phase: SjrPhase | None = None
    description: Narrative | None = None
    recorded_by: Person | None = None


class FindingOut(ResponseModel):
    id: uuid.UUID
    death_id: uuid.UUID
    review_id: uuid.UUID | None
    kind: FindingKind
    theme: ThemeRef
    phase: SjrPhase | None
    description: str
    died_on: date = Field(description="The date of death in UK local time (Europe/London).")
    specialty: str | None = Field(
        description="The death's specialty at death (else its admitting specialty)."
    )
    route: Route | None = Field(description="The route of the review it came from.")
    recorded_by: str | None
    version: int
    created_at: datetime
    updated_at: datetime
