"""What a pseudonymised client (a commissioner) is shown of a death, and how it is made from
the full one. An allow-list, as every pseudonymised model is (app.privacy.schemas).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from app.deaths.schemas import DeathOut
from app.kit.enums import AdmissionMethod, DeathStatus, PlaceOfDeath, Sex
from app.organisations.lookup import OrganisationRef
from app.privacy.pseudonym import (
    age_band,
    month,
    month_of_death,
    postcode_district,
    pseudonym,
)
from app.privacy.schemas import MONTH, PseudonymisedModel


class DeathPseudonymised(PseudonymisedModel):
    """A death as a commissioner sees it: no name, NHS number, local patient id, date of birth,
    full postcode, sender's reference, ward, consultant, GP practice or exact date and time."""

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
    organisation: OrganisationRef | None = Field(
        default=None, description="The organisation that records the death."
    )
    site_organisation: OrganisationRef | None = Field(
        default=None,
        description="The site of death by ODS code, where given (as `site`, an organisation's "
        "place, not the patient's). The GP practice is left out: a practice's list is small "
        "enough to narrow a month's deaths to a person.",
    )
    status: DeathStatus
    version: int
    created_at: datetime
    updated_at: datetime


def death(key: bytes, full: DeathOut) -> DeathPseudonymised:
    return DeathPseudonymised(**death_fields(key, full))


def death_fields(key: bytes, full: DeathOut) -> dict[str, Any]:
    return {
        "id": full.id,
        "case_reference": full.case_reference,
        "source_system": full.source_system,
        "pseudonym": pseudonym(key, full.nhs_number, full.id),
        "age_band": age_band(full.age_at_death),
        "sex": full.sex,
        "ethnicity": full.ethnicity,
        "postcode_district": postcode_district(full.postcode),
        "month_of_death": month(full.died_at),
        "place_of_death": full.place_of_death,
        "site": full.site,
        "admitting_specialty": full.admitting_specialty,
        "specialty_at_death": full.specialty_at_death,
        "diagnosis_group": full.diagnosis_group,
        "admission_method": full.admission_method,
        "admitted_month": month_of_death(full.admitted_at),
        "discharged_month": month_of_death(full.discharged_at),
        "learning_disability": full.learning_disability,
        "autism": full.autism,
        "serious_mental_illness": full.serious_mental_illness,
        "pregnant_or_recently_pregnant": full.pregnant_or_recently_pregnant,
        "within_30_days_of_discharge": full.within_30_days_of_discharge,
        "organisation": full.organisation,
        "site_organisation": full.site_organisation,
        "status": full.status,
        "version": full.version,
        "created_at": full.created_at,
        "updated_at": full.updated_at,
    }
