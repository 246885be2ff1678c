from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response

from app.auth.deps import DeathsReader, NotificationsWriter
from app.auth.routing import AuthFirstRoute
from app.db import DatabaseDep
from app.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    IdempotencyInFlight,
    IdempotencyMismatch,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from app.idempotency.responses import as_response
from app.kit.etag import NOT_MODIFIED, Conditional, etag
from app.notifications import pseudonymised, service, submit
from app.notifications.pseudonymised import NotificationPseudonymised
from app.notifications.schemas import Channel, NotificationCreate, NotificationRecorded
from app.privacy import views
from app.privacy.writes import Written

router = APIRouter(
    route_class=AuthFirstRoute, prefix="/v1/death-notifications", tags=["death notifications"]
)
AUTH = (Unauthorized, Forbidden)
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Optional: the notification is idempotent by its source_system + "
        "source_reference already; a key also makes a retry replay the first answer exactly.",
    ),
]


@router.post(
    "",
    status_code=201,
    response_model=NotificationRecorded | Written,
    responses=problem_responses(
        *AUTH,
        BadRequest,
        Conflict,
        IdempotencyInFlight,
        IdempotencyMismatch,
        PayloadTooLarge,
        UnsupportedMediaType,
        ValidationFailed,
    ),
)
async def post_death_notification(
    body: NotificationCreate,
    principal: NotificationsWriter,
    database: DatabaseDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Notify the service that a patient died, before the medical examiner's screening.

    The death is checked as a screening's death is (dates in a possible order, not in the
    future, NHS number valid) and created with status `awaiting_screening`, on the medical
    examiner office's worklist (`GET /v1/me/worklist`). `source_system` + `source_reference`
    are the sender's key: the same notification sent again answers 200 with what the first
    made, and changes nothing. The key sent for another patient is a 409
    (`notification-key-conflict`, nothing stored); for the same patient with other details
    it is a correction (200, `correction` and the `Notification-Correction` header): applied
    to the death while it awaits screening, recorded only once it is screened.

    A notification of a patient already held for the same date of death (same NHS number;
    from another system, or already screened) is recorded against that death
    (`death_created: false`); if two or more deaths match, it is a 409 whose `candidates`
    list them. A later `POST /v1/screenings` attaches to the notified death by
    the notification's key, or by NHS number and date of death.

    The answer is the notification with its death for a client that also holds `deaths:read`;
    any other client gets its id and links.

    Scope: `notifications:write`.
    """
    stored = await submit.notify_once(
        database, principal, idempotency_key, body, Channel.json, "/v1/death-notifications"
    )
    return as_response(stored)


@router.get(
    "/{notification_id}",
    response_model=NotificationRecorded | NotificationPseudonymised,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound, ValidationFailed)},
)
async def get_death_notification(
    notification_id: uuid.UUID,
    principal: DeathsReader,
    database: DatabaseDep,
    conditional: Conditional,
) -> NotificationRecorded | NotificationPseudonymised | Response:
    """A death notification with the death it names. A pseudonymised client gets the channel,
    sending system and month, with the death pseudonymised; never the sender's reference.

    Scope: `deaths:read`.
    """
    async with database.transaction() as session:
        recorded = await service.read_notification(session, principal, notification_id)
    view = await views.view_for(database, principal)
    return conditional.reply(
        etag(recorded.id, 1),
        view.show(recorded, pseudonymised.notification),
        pseudonymised=view.pseudonymised,
    )
