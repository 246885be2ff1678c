"""Death request and response bodies. Cross-field rules (dates in a possible order) live in
``app.deaths.validation`` so that POST and PATCH share them."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool, StringConstraints

from app.kit.enums import AdmissionMethod, DeathStatus, NhsNumberStatus, PlaceOfDeath, Sex
from app.kit.nhs_number import normalise_nhs_number
from app.kit.schemas import RequestModel, ResponseModel, Timestamp
from app.organisations.lookup import (
    GP_PRACTICE_CODE,
    GP_PRACTICE_FORMS,
    SITE_CODE,
    SITE_CODE_FORMS,
    OrganisationRef,
)

_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})$")
_ETHNICITY = frozenset("ABCDEFGHJKLMNPRSZ")


def _postcode(value: str | None) -> str | None:
    if value is None:
        return None
    match = _POSTCODE.match(value.upper().replace("  ", " ").strip())
    if match is None:
        raise ValueError("not a UK postcode (for example LS1 4AP)")
    return f"{match.group(1)} {match.group(2)}"


def _ethnicity(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.upper()
    if len(code) != 1 or code not in _ETHNICITY:
        raise ValueError("an NHS ethnic category code: one letter of A-H, J-N, P, R, S, Z")
    return code


def _nhs_number(value: str | None) -> str | None:
    return None if value is None else normalise_nhs_number(value)


def _site_code(value: str) -> str:
    code = value.upper()
    if not SITE_CODE.match(code):
        raise ValueError(f"not {SITE_CODE_FORMS}")
    return code


def _practice_code(value: str) -> str:
    code = value.upper()
    if not GP_PRACTICE_CODE.match(code):
        raise ValueError(f"not {GP_PRACTICE_FORMS}")
    return code


Text100 = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Text50 = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Reference = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+( [\x21-\x7e]+)*$")
]
NhsNumber = Annotated[str, StringConstraints(max_length=20), AfterValidator(_nhs_number)]
Postcode = Annotated[str, StringConstraints(max_length=10), AfterValidator(_postcode)]
Ethnicity = Annotated[str, StringConstraints(max_length=2), AfterValidator(_ethnicity)]
SiteOdsCode = Annotated[str, StringConstraints(max_length=10), AfterValidator(_site_code)]
PracticeOdsCode = Annotated[str, StringConstraints(max_length=10), AfterValidator(_practice_code)]

# The organisation codes a death may carry (app.deaths.organisations resolves them); they are
# the registry's, not the death's own columns, so death_values leaves them out.
ORGANISATION_CODES = frozenset({"site_ods_code", "registered_gp_practice_ods_code"})
SITE_ODS_CODE = (
    "The site of death by its ODS code: a site (R + 4, e.g. RR801) or a trust (R + 2), which "
    "must be in the organisation registry (`lfd organisations load`). Sets `site_organisation`; "
    "a death posted by an ICB's (or a shared service's) client for a site of a trust below it "
    "belongs to that trust. `site` stays free text."
)
GP_PRACTICE_ODS_CODE = (
    "The registered GP practice by its ODS code (a letter and 5 digits, e.g. B86001), which must "
    "be in the organisation registry; for a death in the community above all. Sets `gp_practice`."
)


class DeathFields(RequestModel):
    """The patient and the episode around the death, as the sender knows them."""

    nhs_number: NhsNumber | None = Field(
        default=None, description="Ten digits, Modulus 11; spaces or dashes are accepted."
    )
    nhs_number_status: NhsNumberStatus | None = Field(
        default=None,
        description="NHS number status indicator 01-08. Defaults to 02 with a number, 03 without.",
    )
    local_patient_id: Text50 | None = None
    given_name: Text100 | None = None
    family_name: Text100 | None = None
    date_of_birth: date
    sex: Sex
    postcode: Postcode | None = None
    ethnicity: Ethnicity | None = Field(default=None, description="NHS ethnic category code.")
    died_at: Timestamp = Field(description="Date and time of death, with its UTC offset.")
    place_of_death: PlaceOfDeath
    site: Text100 | None = None
    ward: Text100 | None = None
    admitting_specialty: Text100 | None = None
    specialty_at_death: Text100 | None = None
    diagnosis_group: Text100 | None = Field(
        default=None, description="Primary diagnosis group (e.g. SHMI group), for mortality alerts."
    )
    consultant: Text100 | None = None
    admission_method: AdmissionMethod
    admitted_at: Timestamp | None = None
    discharged_at: Timestamp | None = None
    learning_disability: StrictBool = False
    autism: StrictBool = False
    serious_mental_illness: StrictBool = False
    pregnant_or_recently_pregnant: StrictBool = Field(
        default=False, description="Pregnant, or within 42 days of the end of a pregnancy."
    )


class DeathCreate(DeathFields):
    source_system: Reference = Field(
        description="The sending system, e.g. the ME office's software."
    )
    source_reference: Reference = Field(description="The sender's own id for this death.")
    site_ods_code: SiteOdsCode | None = Field(default=None, description=SITE_ODS_CODE)
    registered_gp_practice_ods_code: PracticeOdsCode | None = Field(
        default=None, description=GP_PRACTICE_ODS_CODE
    )


class DeathPatch(RequestModel):
    """Corrections to a death's details. Only the fields present change; ``null`` clears an
    optional field. The sender's keys (source system and reference) never change."""

    nhs_number: NhsNumber | None = None
    nhs_number_status: NhsNumberStatus | None = None
    local_patient_id: Text50 | None = None
    given_name: Text100 | None = None
    family_name: Text100 | None = None
    date_of_birth: date | None = None
    sex: Sex | None = None
    postcode: Postcode | None = None
    ethnicity: Ethnicity | None = None
    died_at: Timestamp | None = None
    place_of_death: PlaceOfDeath | None = None
    site: Text100 | None = None
    ward: Text100 | None = None
    admitting_specialty: Text100 | None = None
    specialty_at_death: Text100 | None = None
    diagnosis_group: Text100 | None = None
    consultant: Text100 | None = None
    admission_method: AdmissionMethod | None = None
    admitted_at: Timestamp | None = None
    discharged_at: Timestamp | None = None
    learning_disability: StrictBool | None = None
    autism: StrictBool | None = None
    serious_mental_illness: StrictBool | None = None
    pregnant_or_recently_pregnant: StrictBool | None = None
    site_ods_code: SiteOdsCode | None = Field(
        default=None, description=f"{SITE_ODS_CODE} `null` clears it; the owner never changes."
    )
    registered_gp_practice_ods_code: PracticeOdsCode | None = Field(
        default=None, description=f"{GP_PRACTICE_ODS_CODE} `null` clears it."
    )


class DeathOut(ResponseModel):
    id: uuid.UUID
    case_reference: str
    source_system: str
    source_reference: str
    nhs_number: str | None
    nhs_number_status: str
    local_patient_id: str | None
    given_name: str | None
    family_name: str | None
    date_of_birth: date
    sex: Sex
    postcode: str | None
    ethnicity: str | None
    died_at: datetime
    died_on: date = Field(description="The date of death in UK local time (Europe/London).")
    place_of_death: PlaceOfDeath
    site: str | None
    ward: str | None
    admitting_specialty: str | None
    specialty_at_death: str | None
    diagnosis_group: str | None
    consultant: str | None
    admission_method: AdmissionMethod
    admitted_at: datetime | None
    discharged_at: datetime | None
    learning_disability: bool
    autism: bool
    serious_mental_illness: bool
    pregnant_or_recently_pregnant: bool
    age_at_death: int = Field(description="Completed years at the date of death.")
    within_30_days_of_discharge: bool
    status: DeathStatus
    notified_at: datetime | None = Field(
        default=None,
        description="When a trust system first notified the death (POST "
        "/v1/death-notifications, HL7 v2, FHIR); null for a death first recorded by its "
        "screening.",
    )
    organisation: OrganisationRef | None = Field(
        default=None,
        description="The organisation that records the death (its client's, or the trust of "
        "the site for a death an ICB's client posts); its clients see the death.",
    )
    site_organisation: OrganisationRef | None = Field(
        default=None, description="The site of death by its ODS code, where the sender gave one."
    )
    gp_practice: OrganisationRef | None = Field(
        default=None,
        description="The registered GP practice, where the sender gave one. Not shown to "
        "pseudonymised clients.",
    )
    version: int
    created_at: datetime
    updated_at: datetime


class DuplicateReview(RequestModel):
    """A person's decision on a death flagged as a possible duplicate of another."""

    other_death_id: uuid.UUID = Field(description="The other death of the flagged pair.")
    decision: Literal["same_person", "different_people"] = Field(
        description="`same_person` links the two deaths (`same_person_as` on both); "
        "`different_people` clears the flag."
    )
