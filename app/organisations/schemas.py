"""Request and response bodies of the organisation registry (docs/organisations.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StrictBool, StringConstraints

from app.kit.enums import Route
from app.kit.schemas import RequestModel, ResponseModel
from app.organisations.rules import OrganisationKind

OdsCode = Annotated[str, StringConstraints(min_length=1, max_length=10)]
OrganisationName = Annotated[
    str, StringConstraints(min_length=1, max_length=300, pattern=r"[A-Za-z0-9]")
]
Alias = Annotated[str, StringConstraints(min_length=1, max_length=200)]
RuleName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
DueDays = Annotated[int, Field(ge=0, le=3650)]

ODS_CODE = (
    "The organisation's ODS code, checked against its kind's format: a trust R + 2 (RWE), a "
    "site its trust's code + 2 (RWE01), an ICB Q + 2 (QK1), a sub-ICB location 2 digits + a "
    "letter (04V), a GP practice a letter + 5 digits (C82001), an independent provider N + 2; "
    "local authorities, hospices and others any ODS code, or none. Stored in upper case."
)
KIND = "What the organisation is; it decides the parents it may have and its code's format."
PARENT = (
    "The organisation it belongs to: a site's trust (found from the site's code when omitted), "
    "a practice's ICB or sub-ICB location, a provider's ICB. Who sees its records follows it."
)
ALIASES = (
    'Other names it is written as ("UHL"), unique across the registry, compared without '
    "regard to case, spacing or punctuation."
)
SETTINGS = (
    "The organisation's own referral rules and due days, over the deployment's (the rest "
    "apply as configured). Unknown keys are refused."
)


class OrganisationSettings(RequestModel):
    """What an organisation may set over the deployment's settings, each optional (absent or
    null: the deployment's applies). Its deaths' referrals follow them."""

    mortality_alert_specialties: list[RuleName] | None = Field(
        default=None,
        max_length=200,
        description="Specialties whose deaths go to SJR as a mortality alert.",
    )
    mortality_alert_diagnosis_groups: list[RuleName] | None = Field(
        default=None,
        max_length=200,
        description="Diagnosis groups whose deaths go to SJR as a mortality alert.",
    )
    mm_specialties: list[RuleName] | None = Field(
        default=None,
        max_length=200,
        description="Specialties whose deaths go to their morbidity and mortality meeting.",
    )
    learning_sample_percent: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="The percentage of other deaths sampled for SJR for learning.",
    )
    due_days: dict[Route, DueDays] | None = Field(
        default=None,
        description="Days from referral to due, by route; the routes not named keep the "
        "deployment's.",
    )


class OrganisationCreate(RequestModel):
    ods_code: OdsCode | None = Field(default=None, description=ODS_CODE)
    name: OrganisationName = Field(description="The organisation's name.")
    kind: OrganisationKind = Field(description=KIND)
    parent_id: uuid.UUID | None = Field(default=None, description=PARENT)
    parent_ods_code: OdsCode | None = Field(
        default=None, description="The parent by its ODS code instead of its id (not both)."
    )
    aliases: list[Alias] = Field(default_factory=list, max_length=50, description=ALIASES)
    settings: OrganisationSettings | None = Field(default=None, description=SETTINGS)

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "ods_code": "RWE",
                    "name": "University Hospitals of Leicester NHS Trust",
                    "kind": "trust",
                    "parent_ods_code": "QK1",
                    "aliases": ["UHL"],
                }
            ]
        }
    }


class OrganisationPatch(RequestModel):
    """Only the fields sent change; `null` clears the code, the parent or the settings.
    `settings` replaces the organisation's settings as a whole."""

    ods_code: OdsCode | None = Field(default=None, description=ODS_CODE)
    name: OrganisationName | None = Field(default=None, description="The organisation's name.")
    kind: OrganisationKind | None = Field(default=None, description=KIND)
    parent_id: uuid.UUID | None = Field(default=None, description=PARENT)
    aliases: list[Alias] | None = Field(
        default=None, max_length=50, description=f"{ALIASES} Replaces the list."
    )
    settings: OrganisationSettings | None = Field(default=None, description=SETTINGS)
    closed: StrictBool | None = Field(
        default=None,
        description="`true` records that the organisation has closed (its records stay); "
        "`false` reopens it.",
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "aliases": ["UHL", "Leicester Hospitals"],
                    "settings": {"mm_specialties": ["General Surgery"], "due_days": {"sjr": 42}},
                }
            ]
        }
    }


class OrganisationSettingsOut(ResponseModel):
    mortality_alert_specialties: list[str] | None = Field(
        default=None, description="Its mortality-alert specialties; null: the deployment's."
    )
    mortality_alert_diagnosis_groups: list[str] | None = Field(
        default=None, description="Its mortality-alert diagnosis groups; null: the deployment's."
    )
    mm_specialties: list[str] | None = Field(
        default=None, description="Its M&M specialties; null: the deployment's."
    )
    learning_sample_percent: float | None = Field(
        default=None, description="Its learning sample; null: the deployment's."
    )
    due_days: dict[str, int] | None = Field(
        default=None, description="Its due days by route; routes not named: the deployment's."
    )


class OrganisationOut(ResponseModel):
    id: uuid.UUID = Field(description="The organisation's id.")
    ods_code: str | None = Field(description="Its ODS code, if it has one.")
    name: str = Field(description="Its name.")
    kind: OrganisationKind = Field(description=KIND)
    parent_id: uuid.UUID | None = Field(description="The organisation it belongs to.")
    aliases: list[str] = Field(description=ALIASES)
    is_default: bool = Field(
        description="The deployment's default organisation: it owns what was recorded before "
        "organisations, and the clients made without one (`lfd organisations adopt`)."
    )
    settings: OrganisationSettingsOut = Field(description=SETTINGS)
    closed_at: datetime | None = Field(description="When it was recorded as closed.")
    version: int = Field(description="Raised by every change; its ETag carries it.")
    created_at: datetime = Field(description="When it was registered.")
    updated_at: datetime = Field(description="When it last changed.")
