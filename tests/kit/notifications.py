"""Death notification bodies: the death as a PAS knows it, before the ME's screening."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.factories import screening_body


def notification_body(**death: Any) -> dict[str, Any]:
    """A PAS notification of an inpatient death (the death of screening_body(), under the
    PAS's own key)."""
    body: dict[str, Any] = screening_body()["death"]
    body.update(
        source_system="test-pas",
        source_reference=f"PAS-{uuid.uuid4().hex[:12]}",
        sent_at=datetime.now(UTC).isoformat(),
    )
    body.update(death)
    return body


def screening_of(notification: dict[str, Any], **death: Any) -> dict[str, Any]:
    """A screening of the notified patient under the ME office's own key."""
    body = screening_body()
    body["death"].update(
        {
            name: notification[name]
            for name in ("nhs_number", "date_of_birth", "died_at", "sex", "place_of_death")
        }
    )
    body["death"].update(death)
    return body


def died(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
