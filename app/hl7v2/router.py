from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.auth.deps import NotificationsWriter
from app.auth.routing import AuthFirstRoute
from app.db import DatabaseDep
from app.errors import (
    Forbidden,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    problem_responses,
)
from app.hl7v2 import service

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/hl7v2", tags=["HL7 v2"])
HL7 = "application/hl7-v2"
HL7_TYPES = frozenset({HL7, "text/plain"})
STATUS = {"AA": 200, "AE": 422, "AR": 400}
# A discharge on death (PV1-36 discharge method 4) of a synthetic patient, as a PAS sends it.
EXAMPLE = (
    "MSH|^~\\&|PAS|RX1|LFD|RX1|20261120032500+0000||ADT^A03^ADT_A03|MSG000123456|P|2.5.1|||"
    "AL|NE|GBR|UNICODE UTF-8\r"
    "EVN|A03|20261120031000+0000\r"
    "PID|1||9434765919^^^NHS^NH~RX1204518^^^RX1^MR||Patient^Test^^^Mrs||19480601|F|||"
    "1 Test Street^^Leeds^^LS1 4AP^GBR||||||||||||A||||||20261120031000+0000|Y\r"
    "PV1|1|I|WARD7^BED3^^RX1SJ||||C1234567^Consultant^Test|||300|||||||||V2026112001|||||||||"
    "||||||||4||||||||20261116224000+0000|20261120031000+0000\r"
)
ACK_EXAMPLE = (
    "MSH|^~\\&|LFD|RX1|PAS|RX1|20261120032501+0000||ACK^A03^ACK|7f3a9c2e01b44d6e8a15|P|2.5.1\r"
    "MSA|AA|MSG000123456|\r"
)
PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}


@router.post(
    "/adt",
    responses={
        200: {
            "description": "AA: accepted.",
            "content": {HL7: {"schema": {"type": "string"}, "example": ACK_EXAMPLE}},
        },
        400: {
            "description": "AR (an HL7 ACK): the message cannot be read; or a problem: a query "
            "parameter the operation does not take.",
            "content": {HL7: {"schema": {"type": "string"}}, "application/problem+json": PROBLEM},
        },
        422: {"description": "AE: refused.", "content": {HL7: {"schema": {"type": "string"}}}},
        **problem_responses(Unauthorized, Forbidden, PayloadTooLarge, UnsupportedMediaType),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                HL7: {"schema": {"type": "string"}, "example": EXAMPLE},
                "text/plain": {"schema": {"type": "string"}, "example": EXAMPLE},
            },
        }
    },
)
async def post_adt(
    request: Request, principal: NotificationsWriter, database: DatabaseDep
) -> Response:
    """A death notification as an HL7 v2 message: `ADT^A03` (discharge whose PV1-36 discharge
    disposition is a death: NHS discharge method 4, or HL7 0112 code 20) or `ADT^A08` (an
    update carrying PID-29 date and time of death, PID-30 `Y`), sent as `application/hl7-v2`
    or `text/plain` (ER7, segments separated by carriage returns; line feeds are accepted).

    The message is mapped onto a death notification (docs/notifications.md has the field
    table) and recorded exactly as `POST /v1/death-notifications` records one: the same
    validation, matching, events and audit. The sender's key is MSH-3 (`application@facility`)
    with PV1-19, the visit number; a message sent again is accepted again and changes nothing.
    The same visit number for another patient is refused (`AE`, ERR-2 `PV1^1^19`, ERR-3 205
    duplicate key); the same patient with other details (an A08 after the A03) is a correction,
    applied to a death awaiting screening (`AA`, MSA-3 says so) or recorded only once the death
    is screened (`AA`, MSA-3 says it was not applied).

    The answer is an HL7 `ACK`: `AA` (HTTP 200) when accepted; `AE` (422) when the content is
    refused (no date of death, a death in the future, an invalid NHS number), `AR` (400) when
    the message cannot be read (no MSH, other separators, not ADT^A03/A08); MSA-3 and ERR-2
    name the segment and field at fault. Nothing is stored unless accepted.

    Scope: `notifications:write`.
    """
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in HL7_TYPES:
        raise UnsupportedMediaType("Send HL7 v2 as application/hl7-v2 or text/plain.")
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # HL7 v2's default character set (MSH-18 empty)
    answer = await service.receive(database, principal, text)
    return Response(answer.ack, status_code=STATUS[answer.code], media_type=HL7)
