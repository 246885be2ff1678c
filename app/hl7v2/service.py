"""An HL7 v2 ADT message in, its ACK out: parsed (app.hl7v2.adt), checked as a notification
body, recorded through the same service as POST /v1/death-notifications. Used by the HTTP
route and the MLLP listener alike."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError as PydanticValidationError

from app.auth.principal import Principal
from app.db import Database
from app.errors import Conflict, ValidationFailed, validation_errors
from app.hl7v2.ack import ERROR_CODES, Sender, ack
from app.hl7v2.adt import Adt, Hl7Problem, location_of, parse_adt
from app.notifications.schemas import Channel, NotificationCreate
from app.notifications.submit import CORRECTION_HEADER, notify_once
from app.organisations.ownership import NotRecordOwner

logger = logging.getLogger("lfd.hl7v2")
PATH = "/v1/hl7v2/adt"
# MSA-3 of an AA that corrected the notification first sent under the same key (an A08 with
# other details of the same patient).
CORRECTION_NOTES = {
    "applied": "correction applied to the death awaiting screening",
    "not_applied": "correction recorded, not applied: the death is already screened",
}


@dataclass(frozen=True)
class Answer:
    code: str  # AA, AE, AR
    ack: str
    created: bool = False


def _sender(adt: Adt | None, raw: str) -> Sender:
    if adt is None:
        # What can be read of an MSH the parser refused, for MSA-2 (never patient data).
        fields = raw.replace("\n", "\r").split("\r", 1)[0].split("|")
        return Sender(control_id=fields[9] if len(fields) > 9 and raw.startswith("MSH|") else "")
    msh = adt.message.segment("MSH")

    def part(number: int) -> str:
        try:
            return str(msh[number]).split("^")[0]
        except IndexError:
            return ""

    return Sender(part(3), part(4), part(6), adt.control_id, adt.trigger)


async def receive(database: Database, principal: Principal, raw: str) -> Answer:
    """Accept (AA), refuse the content (AE) or reject the message (AR); nothing is stored
    unless it is accepted. Errors of the service itself (the database down) propagate, so
    that the sender retries."""
    adt: Adt | None = None
    try:
        adt = parse_adt(raw)
        try:
            body = NotificationCreate.model_validate(adt.body)
        except PydanticValidationError as error:
            first = validation_errors(list(error.errors()))[0]
            raise Hl7Problem("AE", location_of(first["pointer"]), first["detail"]) from None
        try:
            stored = await notify_once(database, principal, None, body, Channel.hl7v2, PATH)
        except ValidationFailed as refused:
            first = (refused.errors or [{"pointer": "/", "detail": refused.detail}])[0]
            raise Hl7Problem("AE", location_of(first["pointer"]), first["detail"]) from None
        except NotRecordOwner as refused:
            # The visit names a death shared with the client's organisation, which reads it
            # but does not notify or correct it (app.organisations.ownership).
            raise Hl7Problem(
                "AE", location_of("/source_reference"), refused.detail or refused.title
            ) from None
        except Conflict as conflict:
            # The field the conflict is about (the visit number reused for another patient),
            # else the patient's identifiers (an ambiguous match).
            first = (conflict.errors or [{}])[0]
            location = location_of(first["pointer"]) if first.get("pointer") else "PID-3"
            reason = first.get("detail") or conflict.detail or "conflict"
            duplicate = first.get("code") in {"key_names_another_patient", "source_key_taken"}
            raise Hl7Problem(
                "AE", location, reason, ERROR_CODES["duplicate"] if duplicate else None
            ) from None
    except Hl7Problem as problem:
        logger.info("hl7v2 refused", extra={"ack": problem.code, "location": problem.location})
        return Answer(problem.code, ack(_sender(adt, raw), problem))
    note = CORRECTION_NOTES.get(stored.headers.get(CORRECTION_HEADER, ""))
    return Answer("AA", ack(_sender(adt, raw), None, note), created=stored.status == 201)
