"""ETags from resource versions, and the conditional-request rules.

A tag is `"<id>.<version>"`, or `"<id>.<version>.<state>"` for a representation that also
shows things with versions of their own (a death shows its screening, referrals and reviews).
`If-Match` guards the resource's own version, so it compares `<id>.<version>` only: a claim on
one of a death's referrals does not make a correction to the death stale. `If-None-Match`
compares the whole tag, so a reader re-downloads whenever anything it would see has changed.
"""

from __future__ import annotations

import uuid

from app.errors import PreconditionFailed, PreconditionRequired


def etag(resource_id: uuid.UUID, version: int, state: str | None = None) -> str:
    core = f"{resource_id.hex}.{version}"
    return f'"{core}.{state}"' if state else f'"{core}"'


def _tags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",")}


def _core(tag: str) -> str:
    return ".".join(tag.strip('"').split(".")[:2])


def check_if_match(if_match: str | None, resource_id: uuid.UUID, version: int) -> None:
    """428 without If-Match; 412 unless it names the resource's current version."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(
            "Send the resource's ETag in If-Match, so that a stale update cannot overwrite "
            "another change."
        )
    current = etag(resource_id, version)
    tags = _tags(if_match)
    if "*" in tags or _core(current) in {_core(tag) for tag in tags}:
        return
    raise PreconditionFailed(
        "The resource has changed since that ETag; read it again and reapply the change.",
        extra={"current_etag": current},
    )


def not_modified(if_none_match: str | None, tag: str) -> bool:
    """If-None-Match (weak comparison, RFC 9110): True when the client's copy is current."""
    if if_none_match is None:
        return False
    tags = _tags(if_none_match)
    return "*" in tags or tag in tags
