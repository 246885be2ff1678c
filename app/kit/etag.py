"""ETags from resource versions, and the If-Match rules (428 without, 412 when stale)."""

from __future__ import annotations

import uuid

from app.errors import PreconditionFailed, PreconditionRequired


def etag(resource_id: uuid.UUID, version: int) -> str:
    return f'"{resource_id.hex}.{version}"'


def check_if_match(if_match: str | None, resource_id: uuid.UUID, version: int) -> None:
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(
            "Send the resource's ETag in If-Match, so that a stale update cannot overwrite "
            "another change."
        )
    current = etag(resource_id, version)
    candidates = {part.strip().removeprefix("W/") for part in if_match.split(",")}
    if "*" in candidates or current in candidates:
        return
    raise PreconditionFailed(
        "The resource has changed since that ETag; read it again and reapply the change.",
        extra={"current_etag": current},
    )
