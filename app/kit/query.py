"""Query parameters a route does not take are refused, not ignored.

A sync script that misspells a filter (`?stauts=ready`, `?specialty_at_death=`) would otherwise
get every row back as if it had asked for them, and act on the wrong list. The accepted names
are the ones the OpenAPI document lists for the route and method: the published contract is the
check. The FHIR view under /fhir/ validates its own search parameters (FHIR's names, `_format`,
`_count`), so it is left to that.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request

from app.errors import BadRequest

Accepted = dict[tuple[str, str], frozenset[str]]

SELF_VALIDATING_PREFIXES = ("/fhir/",)

# Only a name that looks like a parameter is repeated in the error: whatever else was sent
# (a pasted NHS number, a patient's name) is not echoed.
NAME_SHAPE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")


def accepted_parameters(openapi: dict[str, Any]) -> Accepted:
    """(METHOD, path template) → the query parameter names the document lists for it."""
    accepted: Accepted = {}
    for path, operations in openapi.get("paths", {}).items():
        shared = operations.get("parameters", [])
        for method, operation in operations.items():
            if method == "parameters" or not isinstance(operation, dict):
                continue
            parameters = [*shared, *operation.get("parameters", [])]
            accepted[(method.upper(), path)] = frozenset(
                parameter["name"] for parameter in parameters if parameter.get("in") == "query"
            )
    return accepted


_accepted_cache: list[Accepted] = []


def _accepted(app: FastAPI) -> Accepted:
    """Read from the OpenAPI document once per process: every app create_app() builds has the
    same routes, whatever its settings (and generating the document costs half a second)."""
    if not _accepted_cache:
        _accepted_cache.append(accepted_parameters(app.openapi()))
    return _accepted_cache[0]


def refuse_unknown_query_parameters(request: Request) -> None:
    """400 naming every query parameter the route does not take (and what it does take)."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    path: str | None = getattr(route, "path_format", None)
    if path is None or path.startswith(SELF_VALIDATING_PREFIXES):
        return
    method = "GET" if request.method == "HEAD" else request.method
    allowed = _accepted(request.app).get((method, path))
    if allowed is None:
        return
    unknown = sorted({name for name in request.query_params if name not in allowed})
    if not unknown:
        return
    named = [name for name in unknown if NAME_SHAPE.fullmatch(name)]
    unnamed = len(unknown) - len(named)
    listed = named + ([f"{unnamed} more not repeated"] if unnamed else [])
    takes = ", ".join(sorted(allowed)) if allowed else "no query parameters"
    raise BadRequest(
        f"Unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(listed)}. "
        f"{method} {path} takes {takes}.",
        errors=[
            {
                "pointer": f"query:/{name}",
                "code": "unknown_parameter",
                "detail": "this endpoint takes no such parameter",
            }
            for name in named
        ]
        + [
            {
                "pointer": "query:",
                "code": "unknown_parameter",
                "detail": "a parameter this endpoint does not take (its name is not repeated)",
            }
        ]
        * unnamed,
        extra={"accepted_parameters": sorted(allowed)},
    )
