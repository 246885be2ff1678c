"""An ADT^A03 or ADT^A08 message, parsed with python-hl7, as a death notification body.

Every refusal names the segment and field at fault (``Hl7Problem.location``, e.g. ``PID-29``):
structure that cannot be read (no MSH, other separators, a message that is not ADT^A03/A08)
is rejected (AR); content the service cannot accept (no date of death, a date that is not a
date, a death in the future) is an application error (AE).

Field use (HL7 v2.5.1, as NHS PAS interfaces send it):
MSH-3/MSH-4 sending application/facility (the notification's ``source_system``), MSH-7 message
time, MSH-9 type, MSH-10 control id; PID-3 identifiers (the NHS number is the repetition of
type ``NH`` or authority ``NHS``; the local id the first other), PID-5 name, PID-7 birth,
PID-8 sex, PID-11 address (postcode, component 5), PID-22 ethnic group, PID-29 date and time
of death, PID-30 death indicator; PD1-3 the registered GP practice (its ODS code in component
10, the organisation identifier, or 3, the ID number); PV1-2 patient class, PV1-3 location
(ward, facility: free text, as before), PV1-4 admission type, PV1-10 hospital service, PV1-19
visit number (with MSH-3 the sender's key), PV1-36 discharge disposition, PV1-39 servicing
facility (the site of death's ODS code), PV1-44/45 admitted and discharged. Times without an
offset are UK local time. A PD1-3 or PV1-39 value that is not of an ODS code's form is a local
code and is left alone; one of that form names an organisation the registry must hold.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import hl7
import hl7.util

from app.kit.time import LONDON
from app.organisations.lookup import GP_PRACTICE_CODE, SITE_CODE

STANDARD_SEPARATORS = "MSH|^~\\&|"
# Discharge dispositions that mean the patient died: NHS discharge method 4 ("patient died"),
# HL7 table 0112 20 ("expired"), and 5 (stillbirth).
DIED = frozenset({"4", "5", "20"})
SEX = {"M": "male", "F": "female", "U": "not_known", "O": "indeterminate", "A": "indeterminate"}
ADMISSION = {
    "E": "emergency",
    "A": "emergency",
    "U": "emergency",
    "R": "elective",
    "C": "elective",
    "L": "maternity",
    "N": "maternity",
}
# The separators are always the standard ones (parse_adt refuses others): a parsed MSH of
# them unescapes any field's text. Highlighting (\H\, \N\) is dropped, not turned into "_".
_UNESCAPER = hl7.parse("MSH|^~\\&|LFD")
_NO_HIGHLIGHT = {"H": "", "N": ""}
# python-hl7 logs the whole field it could not unescape (a name, an address: patient data) at
# ERROR, under a logger named after its file: silenced, the sequence is dropped all the same.
hl7.util.logger.setLevel(logging.CRITICAL + 1)
_TS = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(?:(\d{2})(?:\.\d{1,4})?)?)?([+-]\d{4})?$"
)


@dataclass
class Hl7Problem(Exception):
    code: str  # AR or AE
    location: str  # e.g. "PID-29", "MSH"
    reason: str
    condition: str | None = None  # an HL7 table 0357 code for ERR-3, when not the usual one

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


@dataclass(frozen=True)
class Adt:
    message: Any  # hl7.Message
    control_id: str
    trigger: str
    body: dict[str, Any]  # a NotificationCreate body


def _field(segment: Any, number: int) -> Any:
    try:
        return segment[number]
    except IndexError:
        return ""


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def _component(field: Any, component: int) -> str:
    """Component ``component`` (1-based) of the first repetition of a field: its first
    subcomponent (a facility's namespace id, a family name's surname), with the HL7 escape
    sequences (``\\T\\`` for ``&`` in "A&E", ``\\S\\`` ...) turned back into their characters."""
    text = _text(field)
    if not text:
        return ""
    first = text.split("~", 1)[0]
    parts = first.split("^")
    if len(parts) < component:
        return ""
    return str(_UNESCAPER.unescape(parts[component - 1].split("&", 1)[0], _NO_HIGHLIGHT)).strip()


def timestamp(value: str, location: str, *, day_only: bool = False) -> datetime | date | None:
    text = value.strip()
    if not text:
        return None
    match = _TS.match(text)
    if match is None:
        raise Hl7Problem("AE", location, "not an HL7 date/time (YYYYMMDD[HHMM[SS]][+ZZZZ])")
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        if day_only:
            return date(int(year), int(month), int(day))
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        raise Hl7Problem("AE", location, "not a real date/time") from None
    if offset is None:
        return moment.replace(tzinfo=LONDON)
    hours, minutes = int(offset[1:3]), int(offset[3:5])
    if hours > 23 or minutes > 59:
        raise Hl7Problem("AE", location, "the time zone offset is not a real offset")
    sign = 1 if offset[0] == "+" else -1
    return moment.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))


def _has_time(value: str) -> bool:
    """Whether an HL7 date/time gives the time of day (HHMM at least), not only the date."""
    match = _TS.match(value.strip())
    return match is not None and match.group(4) is not None


def _segments(text: str) -> str:
    return text.replace("\r\n", "\r").replace("\n", "\r").strip("\r \t\x0b\x1c")


def parse_adt(raw: str) -> Adt:
    text = _segments(raw)
    if not text.startswith("MSH"):
        raise Hl7Problem("AR", "MSH", "the message does not start with an MSH segment")
    if not text.startswith(STANDARD_SEPARATORS):
        raise Hl7Problem("AR", "MSH-2", "the separators are not the standard |^~\\&")
    try:
        message = hl7.parse(text)
        msh = message.segment("MSH")
    except Exception:  # python-hl7 raises several types for a message it cannot read
        raise Hl7Problem("AR", "MSH", "the message cannot be parsed") from None
    kind = _text(_field(msh, 9)).split("^")
    if len(kind) < 2 or kind[0] != "ADT" or kind[1] not in ("A03", "A08"):
        raise Hl7Problem("AR", "MSH-9", "only ADT^A03 and ADT^A08 are accepted")
    control_id = _text(_field(msh, 10))
    if not control_id:
        raise Hl7Problem("AR", "MSH-10", "the message control id is missing")
    application = _component(_field(msh, 3), 1)
    if not application:
        raise Hl7Problem("AR", "MSH-3", "the sending application is missing")
    facility = _component(_field(msh, 4), 1)
    try:
        pid = message.segment("PID")
    except KeyError:
        raise Hl7Problem("AR", "PID", "the PID segment is missing") from None
    try:
        pv1 = message.segment("PV1")
    except KeyError:
        pv1 = None
    body = _body(kind[1], msh, pid, pv1, application, facility, control_id)
    body.update(_organisation_codes(message, pv1))
    return Adt(message=message, control_id=control_id, trigger=kind[1], body=body)


def _organisation_codes(message: Any, pv1: Any) -> dict[str, str]:
    """The site of death (PV1-39) and the registered GP practice (PD1-3), where each is of an
    ODS code's form."""
    codes: dict[str, str] = {}
    site = _component(_field(pv1, 39), 1).upper() if pv1 is not None else ""
    if SITE_CODE.match(site):
        codes["site_ods_code"] = site
    try:
        pd1 = message.segment("PD1")
    except KeyError:
        return codes
    practice = _field(pd1, 3)
    for component in (10, 3):
        code = _component(practice, component).upper()
        if GP_PRACTICE_CODE.match(code):
            codes["registered_gp_practice_ods_code"] = code
            break
    return codes


def _identifiers(pid: Any) -> tuple[str | None, str | None]:
    nhs_number = local = None
    for repetition in _text(_field(pid, 3)).split("~"):
        parts = repetition.split("^")
        value = parts[0].strip()
        if not value:
            continue
        authority = parts[3].split("&")[0].strip().upper() if len(parts) > 3 else ""
        kind = parts[4].strip().upper() if len(parts) > 4 else ""
        if kind == "NH" or authority == "NHS":
            nhs_number = nhs_number or value
        else:
            local = local or value
    return nhs_number, local


def _body(
    trigger: str,
    msh: Any,
    pid: Any,
    pv1: Any,
    application: str,
    facility: str,
    control_id: str,
) -> dict[str, Any]:
    pv1_field = (lambda n: _field(pv1, n)) if pv1 is not None else (lambda n: "")
    indicator = _text(_field(pid, 30)).upper()
    disposition = _component(pv1_field(36), 1)
    died_text, died_location = _text(_field(pid, 29)), "PID-29"
    died_at = timestamp(died_text, died_location)
    discharged_text = _component(pv1_field(45), 1)
    discharged_at = timestamp(discharged_text, "PV1-45")
    if indicator == "N":
        raise Hl7Problem("AE", "PID-30", "the death indicator says the patient is alive")
    if trigger == "A03" and disposition not in DIED and indicator != "Y":
        raise Hl7Problem("AE", "PV1-36", "the discharge disposition is not a death")
    if died_at is None and trigger == "A03" and disposition in DIED:
        died_at, died_text, died_location = discharged_at, discharged_text, "PV1-45"
    if died_at is None:
        raise Hl7Problem("AE", "PID-29", "the date and time of death is missing")
    # A date alone would read as midnight: hours since death and the MCCD's due time wrong.
    if not isinstance(died_at, datetime) or not _has_time(died_text):
        raise Hl7Problem("AE", died_location, "the date of death needs a time")
    born = timestamp(_text(_field(pid, 7))[:8], "PID-7", day_only=True)
    if born is None:
        raise Hl7Problem("AE", "PID-7", "the date of birth is missing")
    sex = SEX.get(_text(_field(pid, 8)).upper())
    if sex is None:
        raise Hl7Problem("AE", "PID-8", "the administrative sex is missing or not M, F, O, U, A")
    nhs_number, local = _identifiers(pid)
    admitted_at = timestamp(_component(pv1_field(44), 1), "PV1-44")
    patient_class = _component(pv1_field(2), 1).upper()
    died_in_hospital = disposition in DIED or (
        discharged_at is None or (isinstance(discharged_at, datetime) and discharged_at >= died_at)
    )
    if patient_class == "E":
        place = "emergency_department"
    elif patient_class == "I" and died_in_hospital:
        place = "inpatient"
    else:
        place = "other"
    visit = _component(pv1_field(19), 1)
    reference = f"{visit}" if visit else f"{local or nhs_number or control_id}:{died_at:%Y%m%d}"
    specialty = _component(pv1_field(10), 1) or None
    body: dict[str, Any] = {
        "source_system": f"{application}@{facility}" if facility else application,
        "source_reference": reference,
        "message_id": control_id,
        "sent_at": timestamp(_text(_field(msh, 7)), "MSH-7"),
        "nhs_number": nhs_number,
        "local_patient_id": local,
        "family_name": _component(_field(pid, 5), 1) or None,
        "given_name": _component(_field(pid, 5), 2) or None,
        "date_of_birth": born,
        "sex": sex,
        "postcode": _component(_field(pid, 11), 5) or None,
        "ethnicity": _component(_field(pid, 22), 1) or None,
        "died_at": died_at,
        "place_of_death": place,
        "site": _component(pv1_field(3), 4) or None,
        "ward": _component(pv1_field(3), 1) or None,
        "admitting_specialty": specialty,
        "specialty_at_death": specialty,
        "admission_method": "not_admitted"
        if admitted_at is None
        else ADMISSION.get(_component(pv1_field(4), 1).upper(), "elective"),
        "admitted_at": admitted_at,
        "discharged_at": None if disposition in DIED or died_in_hospital else discharged_at,
    }
    return body


# Where each notification field comes from, to name it in an AE when it is refused.
FIELDS = {
    "source_system": "MSH-3",
    "source_reference": "PV1-19",
    "message_id": "MSH-10",
    "sent_at": "MSH-7",
    "nhs_number": "PID-3",
    "nhs_number_status": "PID-3",
    "local_patient_id": "PID-3",
    "family_name": "PID-5",
    "given_name": "PID-5",
    "date_of_birth": "PID-7",
    "sex": "PID-8",
    "postcode": "PID-11",
    "ethnicity": "PID-22",
    "died_at": "PID-29",
    "place_of_death": "PV1-2",
    "site": "PV1-3",
    "ward": "PV1-3",
    "admitting_specialty": "PV1-10",
    "specialty_at_death": "PV1-10",
    "admission_method": "PV1-4",
    "admitted_at": "PV1-44",
    "discharged_at": "PV1-45",
    "site_ods_code": "PV1-39",
    "registered_gp_practice_ods_code": "PD1-3",
}


def location_of(pointer: str) -> str:
    """The HL7 field a notification's JSON pointer (``/died_at``) came from."""
    name = pointer.strip("/").split("/", 1)[0]
    return FIELDS.get(name, "PID")
