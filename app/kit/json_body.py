"""A JSON body whose object names a member twice is refused, not read as its last value.

RFC 8259 leaves duplicate names to the parser; Python's keeps the last. A body that says
`"nhs_number"` twice means one thing to a proxy, a log or a validator in front of the service
that keeps the first, and another to the service: it is a 400 naming the member (by its JSON
Pointer, when the names on the way look like field names), before anything is read or written.

The check runs once the caller is authenticated (app.auth.deps), on the body FastAPI has
already read (Starlette caches it), so an anonymous caller learns nothing of a route's body.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from app.errors import BadRequest
from app.kit.query import NAME_SHAPE


class DuplicateKey(BadRequest):
    slug, title = "duplicate-key", "A JSON member is named twice"


class _Object(dict[str, Any]):
    """A parsed JSON object that remembers the first name it met twice."""

    duplicate: str | None = None


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    made = _Object()
    for name, value in pairs:
        if name in made and made.duplicate is None:
            made.duplicate = name
        made[name] = value
    return made


def _escaped(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


Step = str | int  # a member's name, or an index in an array


def _first_duplicate(document: Any) -> list[Step] | None:
    """The path to the first member named twice (depth first, in document order)."""
    stack: list[tuple[Any, list[Step]]] = [(document, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _Object):
            if node.duplicate is not None:
                return [*path, node.duplicate]
            stack.extend((value, [*path, name]) for name, value in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((value, [*path, i]) for i, value in reversed(list(enumerate(node))))
    return None


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def refuse_duplicate_keys(request: Request) -> None:
    """400 when the JSON body names a member twice in one object. A body that is not JSON,
    or not valid JSON, is left to the route's own parsing."""
    if request.method not in {"POST", "PUT", "PATCH"}:
        return
    if not _is_json(request.headers.get("content-type")):
        return
    body = await request.body()
    if not body:
        return
    try:
        document = json.loads(body, object_pairs_hook=_object)
    except ValueError:
        return
    path = _first_duplicate(document)
    if path is None:
        return
    # Only names that look like field names are repeated (app.kit.query's rule): a name that
    # is a pasted NHS number, say, is not.
    shown = all(isinstance(step, int) or NAME_SHAPE.fullmatch(step) for step in path)
    pointer = "/" + "/".join(_escaped(str(step)) for step in path) if shown else ""
    named = f" '{path[-1]}'" if shown else ""
    raise DuplicateKey(
        f"The JSON body names the member{named} twice in one object; send each member once.",
        errors=[{"pointer": pointer, "code": "duplicate_key", "detail": "named twice"}],
    )
