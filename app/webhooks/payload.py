"""What a webhook carries: the thin event, in the Standard Webhooks shape
`{"id", "type", "timestamp", "data"}`. Ids, the event type and the names of changed fields;
never a value, so never patient data. The receiver reads the resource with its own scopes."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from app.events.feed import FeedEvent
from app.webhooks.schemas import TEST_EVENT_TYPE


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def event_body(event: FeedEvent) -> str:
    return _dumps(
        {
            "id": str(event.id),
            "type": event.type,
            "timestamp": event.occurred_at.isoformat(),
            "data": {
                "resource_type": event.resource_type,
                "resource_id": str(event.resource_id),
                "death_id": str(event.death_id) if event.death_id else None,
                "changed": list(event.changed),
            },
        }
    )


def test_event_body(message_id: uuid.UUID, endpoint_id: uuid.UUID, at: datetime) -> str:
    return _dumps(
        {
            "id": str(message_id),
            "type": TEST_EVENT_TYPE,
            "timestamp": at.isoformat(),
            "data": {"endpoint_id": str(endpoint_id)},
        }
    )
