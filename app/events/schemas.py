from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import Field

from app.events.feed import FeedEvent, encode_place
from app.kit.schemas import ResponseModel

# Where a consumer reads the resource an event names, with its own scopes (the read is audited).
RESOURCE_PATHS: dict[str, str] = {
    "death": "/v1/deaths/{id}",
    "death_notification": "/v1/death-notifications/{id}",
    "screening": "/v1/screenings/{id}",
    "referral": "/v1/referrals/{id}",
    "review": "/v1/reviews/{id}",
    "finding": "/v1/findings/{id}",
    "theme": "/v1/themes/{id}",
    "action_plan": "/v1/action-plans/{id}",
    "action": "/v1/actions/{id}",
    "history_import": "/v1/history/imports/{id}",
}


class EventResource(ResponseModel):
    type: str = Field(description="`death`, `screening`, `referral`, `review`, ...")
    id: uuid.UUID
    path: str | None = Field(description="Where to read it (with the scope that route needs).")


class EventOut(ResponseModel):
    """A thin event: what changed, never the values. Read the resource for details."""

    id: uuid.UUID = Field(description="Unique; also the `webhook-id` of its deliveries.")
    type: str
    resource: EventResource
    death_id: uuid.UUID | None
    changed: list[str] = Field(description="Names of the fields that changed, if any.")
    occurred_at: datetime
    position: str = Field(description="A cursor that resumes the feed just after this event.")


def event_document(event: FeedEvent) -> dict[str, Any]:
    """An event as the feed shows it: EventOut's shape, built as plain values for page_json (a
    page of a thousand is serialised without a model per event). `occurred_at` stays a
    datetime: page_json writes it, in UTC with a `Z`."""
    path = RESOURCE_PATHS.get(event.resource_type)
    resource_id = str(event.resource_id)
    return {
        "id": str(event.id),
        "type": event.type,
        "resource": {
            "type": event.resource_type,
            "id": resource_id,
            "path": path.format(id=resource_id) if path else None,
        },
        "death_id": str(event.death_id) if event.death_id else None,
        "changed": event.changed,
        "occurred_at": event.occurred_at,
        "position": encode_place(event.txid, event.seq),
    }


def page_json(events: Sequence[FeedEvent], next_cursor: str) -> bytes:
    """A feed page as EventPage's JSON, compact. orjson writes the timestamps
    (`2026-11-23T19:02:11.412345Z`, as datetime.isoformat() with `Z` for `+00:00`); the ids
    are strings already (the driver's UUID subclass is not one orjson takes)."""
    body = {"items": [event_document(event) for event in events], "next_cursor": next_cursor}
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


class EventPage(ResponseModel):
    items: list[EventOut]
    next_cursor: str = Field(
        description="Always present: store it and pass it as `cursor` next time. An empty "
        "page with a cursor means nothing new yet; poll again later."
    )


class EventType(ResponseModel):
    type: str
    description: str
