"""What a write answers: no more than the caller may read.

A write scope does not carry the matching read scope (`deaths:write` is not `deaths:read`). A
write that answered with the whole resource would let a write-only client read it: a `PATCH`
with an empty body, or an unchanged `PUT`, is a write that changes nothing and returns
everything. So a route that writes a resource answers in full only a caller that holds the
scope that reads it; any other caller gets a `Written` body (the id, the new version and the
links to the resource), with the same status and `ETag`, which is all it needs to write again.
"""

from __future__ import annotations

import uuid
from typing import TypeVar

from pydantic import Field

from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.kit.schemas import ResponseModel

Full = TypeVar("Full")


class Written(ResponseModel):
    """The answer to a write for a caller without the scope that reads what it wrote: what
    was written, not what it holds. The `ETag` header is as for a full answer."""

    id: uuid.UUID
    version: int
    death_id: uuid.UUID | None = Field(
        default=None, description="The death the resource belongs to (when it belongs to one)."
    )
    links: dict[str, str] = Field(
        description="Where the resource (and the records it belongs to) can be read, by a "
        "client with the scope to read them."
    )


def written(
    principal: Principal,
    read_scope: Scope,
    full: Full,
    resource_id: uuid.UUID,
    version: int,
    links: dict[str, str],
    death_id: uuid.UUID | None = None,
) -> Full | Written:
    """`full` for a caller that may read it, else the `Written` body."""
    if principal.has(read_scope):
        return full
    return Written(id=resource_id, version=version, death_id=death_id, links=links)
