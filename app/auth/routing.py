"""Credentials before the body: every route with a request body is an ``AuthFirstRoute``.

FastAPI parses a JSON body before it runs a route's dependencies, so a request with malformed
JSON was a 400 before its credentials were looked at: an anonymous caller learnt which routes
take a body and how they parse it. (A body that parses is judged after the dependencies, and
the guard, ``authenticate``, is one of them: its 401 or 403 comes first already.) Here a body
that cannot be parsed is answered only after the route's guard has run for the request: no or
a bad key is a 401, a missing scope a 403, and only an authorised caller gets the 400. A good
body costs nothing more; a bad one costs the credential check it would have had anyway.

The middleware's own refusals (a body over the size limit, 413; one that is not JSON, 415)
still come first: they are decided from the headers and the byte count before anything is
parsed (app.middleware).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import SecurityScopes
from starlette.exceptions import HTTPException

from app.auth.deps import authenticate, bearer_scheme
from app.db import get_database

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def guard_scopes(dependant: Dependant) -> list[str] | None:
    """The scopes of the route's ``authenticate`` guard; None for a route without one."""
    for dependency in dependant.dependencies:
        if dependency.call is authenticate:
            scopes = list(dependency.parent_oauth_scopes or [])
            scopes += [s for s in dependency.own_oauth_scopes or [] if s not in scopes]
            return scopes
        found = guard_scopes(dependency)
        if found is not None:
            return found
    return None


def _unparsed(error: Exception) -> bool:
    """The body could not be parsed at all (FastAPI's own errors, raised before dependencies)."""
    if isinstance(error, RequestValidationError):
        return any(item.get("type") == "json_invalid" for item in error.errors())
    return isinstance(error, HTTPException) and error.status_code == 400


async def check_caller(request: Request, scopes: list[str]) -> None:
    """What the guard checks, for a request whose body never reached it: 401, 403 (or the
    guard's other refusals) raised here."""
    await authenticate(
        SecurityScopes(scopes),
        request,
        await get_database(request),
        await bearer_scheme(request),
        request.headers.get("x-on-behalf-of"),
    )


class AuthFirstRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        scopes = guard_scopes(self.dependant)
        if self.body_field is None or scopes is None:
            return handler

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (RequestValidationError, HTTPException) as error:
                if _unparsed(error):
                    await check_caller(request, scopes)
                raise

        return guarded
