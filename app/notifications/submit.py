"""A notification at the edge, for every channel (JSON, HL7 v2, FHIR): recorded once per
sender's key (and Idempotency-Key, when sent), answered no more than the caller may read."""

from __future__ import annotations

from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.db import Database
from app.idempotency.responses import create_once
from app.idempotency.service import StoredResponse
from app.kit.etag import etag
from app.notifications import service
from app.notifications.schemas import Channel, NotificationCreate, NotificationRecorded
from app.privacy.writes import Written, written

# On the answer to a correction (or the same correction sent again): `applied` or
# `not_applied`, for every caller (a write-only interface engine included: it is about its own
# notification, and says only whether the death was still awaiting screening).
CORRECTION_HEADER = "Notification-Correction"


def shown_to(
    principal: Principal, recorded: NotificationRecorded
) -> NotificationRecorded | Written:
    """In full to a client that may read deaths, else the id and links (app.privacy.writes)."""
    return written(
        principal,
        Scope.deaths_read,
        recorded,
        recorded.id,
        1,
        {
            "self": f"/v1/death-notifications/{recorded.id}",
            "death": f"/v1/deaths/{recorded.death_id}",
        },
        death_id=recorded.death_id,
    )


async def notify_once(
    database: Database,
    principal: Principal,
    key: str | None,
    body: NotificationCreate,
    channel: Channel,
    path: str,
) -> StoredResponse:
    """A notification through any channel: 201 when new, 200 for one already recorded under
    the sender's key. The adapters (HL7 v2, FHIR) call this with their channel."""
    return await create_once(
        database,
        principal,
        key,
        path=path,
        body=body,
        work=lambda session: service.notify(session, principal, body, channel),
        location=lambda recorded: f"/v1/death-notifications/{recorded.id}",
        tag=lambda recorded: etag(recorded.id, 1),
        show=lambda recorded: shown_to(principal, recorded),
        more_headers=lambda recorded: (
            {CORRECTION_HEADER: recorded.answered_correction.value}
            if recorded.answered_correction is not None
            else {}
        ),
    )
