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


@router.post(
    "/adt",
    responses={
        200: {"description": "AA: accepted.", "content": {HL7: {"schema": {"type": "string"}}}},
        400: {"description": "AR: rejected.", "content": {HL7: {"schema": {"type": "string"}}}},
        422: {"description": "AE: refused.", "content": {HL7: {"schema": {"type": "string"}}}},
        **problem_responses(Unauthorized, Forbidden, PayloadTooLarge, UnsupportedMediaType),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {HL7: {"schema": {"type": "string"}}, "text/plain": {}},
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
