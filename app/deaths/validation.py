"""Rules across a death's fields that a single field cannot check: dates in a possible order
(birth <= admission <= discharge <= death <= now), identity consistent with its status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from app.kit.enums import NHS_NUMBER_REQUIRED_STATUSES, AdmissionMethod, NhsNumberStatus
from app.kit.time import local_date

# Clocks drift: a death timestamped a little in the future is a skewed clock, not a prophecy.
CLOCK_SKEW = timedelta(minutes=5)
OLDEST_AGE_YEARS = 130
# The service records deaths of the Learning from Deaths era; an earlier date is a typing slip
# (a year of 0202 for 2022), not history to import.
EARLIEST_DEATH = date(2000, 1, 1)


@dataclass(frozen=True)
class FieldError:
    pointer: str
    detail: str
    code: str = "value_error"

    def as_dict(self) -> dict[str, Any]:
        return {"pointer": self.pointer, "code": self.code, "detail": self.detail}


def default_nhs_number_status(nhs_number: str | None) -> NhsNumberStatus:
    return NhsNumberStatus.present_not_traced if nhs_number else NhsNumberStatus.trace_required


def check_death(death: dict[str, Any], now: datetime, prefix: str = "") -> list[FieldError]:
    """Check a death's merged field values; pointers are ``prefix`` + ``/field``."""
    errors: list[FieldError] = []

    def fail(field: str, detail: str) -> None:
        errors.append(FieldError(f"{prefix}/{field}", detail))

    born: date = death["date_of_birth"]
    died_at: datetime = death["died_at"]
    admitted_at: datetime | None = death.get("admitted_at")
    discharged_at: datetime | None = death.get("discharged_at")
    died_on = local_date(died_at)

    if died_at > now + CLOCK_SKEW:
        fail("died_at", "the time of death is in the future")
    elif died_on < EARLIEST_DEATH:
        fail("died_at", f"deaths before {EARLIEST_DEATH.isoformat()} are not recorded here")
    if born > died_on:
        fail("date_of_birth", "the date of birth is after the date of death")
    elif died_on.year - born.year > OLDEST_AGE_YEARS:
        fail("date_of_birth", f"the age at death would be over {OLDEST_AGE_YEARS} years")
    if admitted_at is not None:
        if death["admission_method"] == AdmissionMethod.not_admitted:
            fail("admitted_at", "an admission time was given for a patient who was not admitted")
        if local_date(admitted_at) < born:
            fail("admitted_at", "the admission is before the date of birth")
        if admitted_at > died_at:
            fail("admitted_at", "the admission is after the death")
    if discharged_at is not None:
        if admitted_at is None:
            fail("discharged_at", "a discharge needs the admission it ends (admitted_at)")
        elif discharged_at < admitted_at:
            fail("discharged_at", "the discharge is before the admission")
        if discharged_at > died_at:
            fail("discharged_at", "the discharge is after the death")

    status = death.get("nhs_number_status")
    number = death.get("nhs_number")
    if status in NHS_NUMBER_REQUIRED_STATUSES and not number:
        fail("nhs_number", f"NHS number status {status} needs an NHS number")
    if status == NhsNumberStatus.not_present_trace_not_required and number:
        fail("nhs_number_status", "status 07 (number not present) was given with an NHS number")
    return errors
