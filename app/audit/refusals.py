"""Auditing what a client was refused (403) or asked for in vain (404).

The request's own transaction has rolled back by the time its error reaches the handler, and
its audit rows with it: so the row of a refusal is written here, after the rollback, in a
transaction of its own. A client that is known (its key was good) and gets a 403 or a 404
leaves one row naming the route it called: the action is `<resource>.<verb>` as for its
successful twin (GET /v1/deaths/{id} is `death.read`, GET /v1/referrals/{id}/history is
`referral.history`), the resource id is the id in the path when it is one (a segment that is
not an id, which could be an NHS number typed into the URL, is never kept), and the outcome
is `refused` or `not_found`. A request without a valid key (401) names nobody and leaves no row.

If the row cannot be written the client gets a 503 instead of the 403 or 404: nothing is
answered about a record that is not audited.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from app.audit.service import NOT_FOUND, REFUSED, AuditEntry, write_audit
from app.auth.principal import Principal
from app.db import Database
from app.errors import Forbidden, NotFound, ProblemError, ServiceUnavailable

logger = logging.getLogger("app.audit")

PREFIXES = ("/v1/", "/fhir/r4/")
# Resource names that are not their path segment made singular.
RESOURCES = {"Patient": "death", "Task": "referral", "metadata": "capability_statement"}
VERBS = {"GET": "read", "HEAD": "read", "PATCH": "update", "PUT": "update", "DELETE": "delete"}


def _singular(segment: str) -> str:
    if segment in RESOURCES:
        return RESOURCES[segment]
    name = segment.replace("-", "_").lower()
    return name[:-1] if name.endswith("s") else name


def describe(method: str, template: str) -> tuple[str, str]:
    """(action, resource type) of a route, from its path template and method."""
    rest = next((template[len(p) :] for p in PREFIXES if template.startswith(p)), template)
    segments = [segment for segment in rest.strip("/").split("/") if segment]
    if not segments:
        return "service.read", "service"
    resource = _singular(segments[0])
    last = segments[-1]
    if last.startswith("{"):
        verb = VERBS.get(method, method.lower())
    elif len(segments) > 1:
        verb = last.replace("-", "_").lower()
    else:
        verb = "list" if method in {"GET", "HEAD"} else "create"
    return f"{resource}.{verb}"[:60], resource[:40]


def _resource_id(request: Request) -> uuid.UUID | None:
    for value in request.path_params.values():
        try:
            return uuid.UUID(str(value))
        except ValueError:
            return None
    return None


def refusal_entry(request: Request, outcome: str) -> AuditEntry:
    route = request.scope.get("route")
    template = route.path_format if isinstance(route, APIRoute) else request.url.path
    action, resource_type = describe(request.method, template)
    resource_id = _resource_id(request)
    death_id = resource_id if resource_type == "death" else None
    return AuditEntry(action, resource_type, resource_id, death_id, outcome)


async def audit_refusal(database: Database, principal: Principal, entry: AuditEntry) -> None:
    async with database.transaction() as session:
        await write_audit(session, principal, [entry])


def install_refusal_audit(app: FastAPI) -> None:
    """Audit every 403 and 404 answered to a known client, then answer as the application's
    own ProblemError handler does (looked up at each call, so this holds whatever that
    handler becomes)."""

    async def handle(request: Request, exc: Exception) -> Response:
        problem_handler: Any = app.exception_handlers[ProblemError]
        principal = getattr(request.state, "principal", None)
        if isinstance(principal, Principal) and isinstance(exc, Forbidden | NotFound):
            outcome = REFUSED if isinstance(exc, Forbidden) else NOT_FOUND
            try:
                await audit_refusal(
                    request.app.state.database, principal, refusal_entry(request, outcome)
                )
            except Exception as error:
                logger.error("refusal not audited", extra={"error_type": type(error).__name__})
                unavailable = ServiceUnavailable(
                    "The request could not be recorded; retry shortly.",
                    headers={"Retry-After": "5"},
                )
                response: Response = await problem_handler(request, unavailable)
                return response
        answered: Response = await problem_handler(request, exc)
        return answered

    app.add_exception_handler(Forbidden, handle)
    app.add_exception_handler(NotFound, handle)
