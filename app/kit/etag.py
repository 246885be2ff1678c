"""ETags from resource versions, and the conditional-request rules.

A tag is `"<core>"`, or `"<core>.<state>"` for a representation that also shows things with
versions of their own (a death shows its screening, referrals and reviews). `<core>` is an
HMAC-SHA256 (32 hex digits) of the resource's id and version under the deployment's ETag key,
and `<state>` one (16 hex digits) of the id, version and state: a tag cannot be made from an id
alone (a write-only client could otherwise guess `"<id>.1"` and send it in If-Match), and
reveals nothing of the version or state it stands for (docs/security.md). The key is derived,
under its own label, from the deployment's cursor key (app.kit.cursor, migration 0010) and set
for each request when the caller is authenticated (app.auth.deps), so every worker and replica
makes the same tags.
`If-Match` guards the resource's own version, so it compares `<core>` only: a claim on one of
a death's referrals does not make a correction to the death stale. `If-None-Match` compares
the whole tag, so a reader re-downloads whenever anything it would see has changed.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Response

from app.errors import PreconditionFailed, PreconditionRequired

T = TypeVar("T")


_etag_key: ContextVar[bytes | None] = ContextVar("etag_key", default=None)
_LABEL = b"lfd etag key v1"


def derive_etag_key(secret: bytes) -> bytes:
    """The ETag key, derived from a deployment secret under its own label (so that it is
    independent of any other key derived from the same secret)."""
    return hmac.new(secret, _LABEL, hashlib.sha256).digest()


def use_etag_key(key: bytes) -> None:
    """Make tags with this key for the rest of the current request (its context)."""
    _etag_key.set(key)


def _mac(subject: str, length: int) -> str:
    key = _etag_key.get()
    if key is None:
        raise RuntimeError("no ETag key in this context: tags are made for authenticated calls")
    return hmac.new(key, subject.encode(), hashlib.sha256).hexdigest()[:length]


def etag(resource_id: uuid.UUID, version: int, state: str | None = None) -> str:
    subject = f"{resource_id.hex}.{version}"
    core = _mac(subject, 32)
    return f'"{core}.{_mac(f"{subject}.{state}", 16)}"' if state else f'"{core}"'


def _tags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",")}


def _core(tag: str) -> str:
    return tag.strip('"').split(".")[0]


@dataclass(frozen=True)
class Precondition:
    """A write's `If-Match`, parsed at the edge (``if_match_header``): the tags it names (`*`
    for any current version), or None when the header was not sent. The service that loads
    the resource calls ``check`` with its id and version."""

    tags: frozenset[str] | None

    def check(self, resource_id: uuid.UUID, version: int, shown: str | None = None) -> None:
        """428 without If-Match; 412 unless it names the resource's current version. The 412's
        `current_etag` is `shown` (the tag a read answers now, for a resource whose tag carries
        more than its version), else the tag of `<id>.<version>`."""
        if self.tags is None:
            raise PreconditionRequired(
                "Send the resource's ETag in If-Match, so that a stale update cannot overwrite "
                "another change."
            )
        current = etag(resource_id, version)
        if "*" in self.tags or _core(current) in {_core(tag) for tag in self.tags}:
            return
        raise PreconditionFailed(
            "The resource has changed since that ETag; read it again and reapply the change.",
            extra={"current_etag": shown or current},
        )

    @property
    def sent(self) -> bool:
        return self.tags is not None


def parse_if_match(header: str | None) -> Precondition:
    """The header's tags (weak or strong, comma-separated); an absent or blank header is
    None (a write that needs one answers 428 when it checks)."""
    if header is None or not header.strip():
        return Precondition(None)
    return Precondition(frozenset(_tags(header)))


def if_match_header(description: str) -> Callable[..., Awaitable[Precondition]]:
    """The `If-Match` header as a route dependency, parsed into a Precondition, with its
    description (whose ETag the route wants) for the OpenAPI document:
    ``IfMatch = Annotated[Precondition, Depends(if_match_header("The death's ETag."))]``."""

    async def precondition(if_match: str | None = None) -> Precondition:
        return parse_if_match(if_match)

    # The header's description is this route's, so the parameter is declared here rather than
    # in the annotation (which this module's postponed annotations would leave unresolved).
    header = Header(alias="If-Match", description=description)
    parameter = inspect.Parameter(
        "if_match",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=None,
        annotation=Annotated[str | None, header],
    )
    setattr(  # noqa: B010 (the signature FastAPI reads)
        precondition,
        "__signature__",
        inspect.Signature([parameter], return_annotation=Precondition),
    )
    return precondition


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
    compares the core only, so either tag still guards an update."""
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


async def conditional_read(  # async: a plain function would run in a worker thread
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
