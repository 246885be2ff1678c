"""ETags from resource versions, and the conditional-request rules.

A tag is `"<id>.<version>"`, or `"<id>.<version>.<state>"` for a representation that also
shows things with versions of their own (a death shows its screening, referrals and reviews).
`If-Match` guards the resource's own version, so it compares `<id>.<version>` only: a claim on
one of a death's referrals does not make a correction to the death stale. `If-None-Match`
compares the whole tag, so a reader re-downloads whenever anything it would see has changed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Response

from app.errors import PreconditionFailed, PreconditionRequired

T = TypeVar("T")


def etag(resource_id: uuid.UUID, version: int, state: str | None = None) -> str:
    core = f"{resource_id.hex}.{version}"
    return f'"{core}.{state}"' if state else f'"{core}"'


def _tags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",")}


def _core(tag: str) -> str:
    return ".".join(tag.strip('"').split(".")[:2])


def check_if_match(
    if_match: str | None, resource_id: uuid.UUID, version: int, shown: str | None = None
) -> None:
    """428 without If-Match; 412 unless it names the resource's current version. The 412's
    `current_etag` is `shown` (the tag a read answers now, for a resource whose tag carries
    more than its version), else `"<id>.<version>"`."""
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
        extra={"current_etag": shown or current},
    )


def not_modified(if_none_match: str | None, tag: str) -> bool:
    """If-None-Match (weak comparison, RFC 9110): True when the client's copy is current."""
    if if_none_match is None:
        return False
    tags = _tags(if_none_match)
    return "*" in tags or tag in tags


NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the `If-None-Match` tag is current (no body)."}
}
"""OpenAPI `responses=` entry for a route that answers conditional reads."""


def view_tag(tag: str, pseudonymised: bool) -> str:
    """The tag of the pseudonymised representation: the same resource state under another
    name, so that a cache never serves one view to a client entitled to the other. If-Match
    compares `<id>.<version>` only, so either tag still guards an update."""
    return f'{tag[:-1]}.pseudonymised"' if pseudonymised else tag


@dataclass(frozen=True)
class ConditionalRead:
    """A single-resource GET's answer: the body with its `ETag`, or a bodiless 304 repeating
    the tag when the client's `If-None-Match` names it (RFC 9110 13.1.2, weak comparison: a
    proxy may have weakened the tag to W/"...")."""

    if_none_match: str | None
    response: Response

    def reply(self, tag: str, body: T, *, pseudonymised: bool = False) -> T | Response:
        tag = view_tag(tag, pseudonymised)
        if not_modified(self.if_none_match, tag):
            return Response(status_code=304, headers={"ETag": tag})
        self.response.headers["ETag"] = tag
        return body


def conditional_read(
    response: Response,
    if_none_match: Annotated[
        str | None,
        Header(
            alias="If-None-Match",
            description="An ETag from an earlier read: 304 without a body if it is current.",
        ),
    ] = None,
) -> ConditionalRead:
    return ConditionalRead(if_none_match, response)


Conditional = Annotated[ConditionalRead, Depends(conditional_read)]
