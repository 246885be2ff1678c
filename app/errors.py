"""The error types and the one set of handlers that render every error as problem+json
(RFC 9457). No stack trace and no submitted value ever reaches a response."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("app.errors")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://lfd.example.nhs.uk/problems/"
_problem_base = [PROBLEM_BASE]


def set_problem_base(uri: str) -> None:
    """The base of the problem `type` URIs (LFD_PROBLEM_BASE_URI), set by create_app."""
    _problem_base[0] = uri if uri.endswith("/") else uri + "/"


# --- what a problem repeats of the request's path -----------------------------------------------
#
# A path segment is whatever the client typed: `GET /v1/deaths/9434765919` puts an NHS number
# where an id belongs. The access log names the route (`/v1/deaths/{death_id}`), never the path
# (app.middleware), and a problem's `instance` shows a path parameter only in the canonical form
# of the id it parsed as (every path parameter of the API is a UUID); a segment that is not one
# stays `{name}`, and a path that matched no route has no `instance` at all (issue 11).

_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")


def route_template(scope: Mapping[str, Any]) -> str | None:
    """The template of the route that took the request (`/v1/deaths/{death_id}`), None when
    no route did (a 404 of an unknown path, or an answer from before routing)."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) and template.startswith("/") else None


def _shown(name: str, params: Mapping[str, Any]) -> str:
    raw = params.get(name)
    if isinstance(raw, str):
        try:
            return str(uuid.UUID(raw))
        except ValueError:
            pass
    return "{" + name + "}"


def shown_path(scope: Mapping[str, Any]) -> str | None:
    """The path as a problem's `instance` may show it: the route's template with each
    parameter that is an id filled in (canonically), the others left as `{name}`."""
    template = route_template(scope)
    if template is None:
        return None
    params: Mapping[str, Any] = scope.get("path_params") or {}
    return _PARAMETER.sub(lambda match: _shown(match.group(1), params), template)


class ProblemError(Exception):
    """Base error: carries its HTTP status, a problem type slug and a title."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        return problem_body(
            self.status, self.slug, self.title, self.detail, self.errors, self.extra, instance
        )


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Missing or invalid credential"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Missing scope"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class IdempotencyInFlight(ProblemError):
    status, slug, title = 409, "idempotency-in-flight", "A request with this key is still running"


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "The resource has changed"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(ProblemError):
    status, slug, title = 422, "validation-error", "The request is not valid"


class IdempotencyMismatch(ProblemError):
    status, slug, title = 422, "idempotency-key-reused", "Idempotency-Key reused with another body"


class PreconditionRequired(ProblemError):
    status, slug, title = 428, "precondition-required", "If-Match is required"


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


class RecordBusy(ProblemError):
    status, slug, title = 409, "record-busy", "The record is being changed by another request"


class RequestTimeout(ProblemError):
    status, slug, title = 408, "request-timeout", "The request was not received in time"


class TooManyRequests(ProblemError):
    status, slug, title = 429, "too-many-requests", "Too many requests"


# PostgreSQL SQLSTATEs (app.db sets the timeouts, docs/security.md): a lock wait that ran out
# is about one record (409, retry); a statement that ran out, or a server that is shutting
# down, starting or out of connections, is the service being unavailable (503, retry later).
_LOCK_NOT_AVAILABLE = "55P03"
_UNAVAILABLE_STATES = frozenset({"57014", "57P01", "57P02", "57P03", "53300", "53400"})
_UNAVAILABLE_CLASSES = ("08",)  # connection exceptions


def database_problem(exc: DBAPIError) -> ProblemError | None:
    """The problem a database error means for the client, or None when it is a fault."""
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if state == _LOCK_NOT_AVAILABLE:
        return RecordBusy(
            "Another request holds this record; retry shortly.", headers={"Retry-After": "1"}
        )
    if state == "57014":
        return ServiceUnavailable(
            "The database took too long to answer; retry shortly.", headers={"Retry-After": "5"}
        )
    if (
        exc.connection_invalidated
        or isinstance(exc, OperationalError | InterfaceError)
        or state in _UNAVAILABLE_STATES
        or (isinstance(state, str) and state.startswith(_UNAVAILABLE_CLASSES))
    ):
        return ServiceUnavailable(
            "The database is not reachable; retry shortly.", headers={"Retry-After": "5"}
        )
    return None


def problem_body(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": _problem_base[0] + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    body.update(extra or {})
    return body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


def pointer(loc: tuple[Any, ...] | list[Any], document: Any = None) -> str:
    """A JSON Pointer (RFC 6901) to the field, from a Pydantic error location."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        source, parts = parts[0], parts[1:]
    else:
        source = "body"
    if source == "body" and document is not None:
        parts = _without_union_tags(parts, document)
    if source == "body" and not parts:
        return ""  # the whole document (RFC 6901); "/" would name a member called ""
    escaped = "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)
    return f"/{escaped}" if source == "body" else f"{source}:/{escaped}"


def _without_union_tags(parts: list[str], document: Any) -> list[str]:
    """Pydantic names a tagged union's member in the location (`review/sjr/avoidability`) but
    the document has no such member: walk the document and drop a step that is not one of the
    object's keys but the value of one of its fields (the tag, e.g. `"instrument": "sjr"`)."""
    kept: list[str] = []
    node = document
    for part in parts:
        if isinstance(node, dict):
            if part not in node and part in {v for v in node.values() if isinstance(v, str)}:
                continue
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            node = None
        kept.append(part)
    return kept


def field_error(pointer: str, detail: str, code: str = "value_error") -> dict[str, Any]:
    """One member of a problem's ``errors``: the JSON pointer, a code, and what is wrong."""
    return {"pointer": pointer, "code": code, "detail": detail}


def validation_errors(raw: list[Any], document: Any = None) -> list[dict[str, Any]]:
    """Pydantic errors without the submitted values (they may be patient data)."""
    errors = []
    for item in raw:
        message = str(item.get("msg", "invalid value"))
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        if item.get("type") == "uuid_parsing":
            # Pydantic's message quotes a character of the input and where it is.
            message = "Input should be a valid UUID"
        errors.append(
            {
                "pointer": pointer(item.get("loc", ()), document),
                "code": item.get("type"),
                "detail": message,
            }
        )
    return errors


ErrorRenderer = Callable[[dict[str, Any], dict[str, str] | None], Response]
ProblemRenderer = Callable[[str, dict[str, Any], dict[str, str] | None], Response]
"""(request path, problem body, headers) → the error response for that path."""


def problem_renderer(renderers: Mapping[str, ErrorRenderer] | None = None) -> ProblemRenderer:
    """Renders a problem body for a request path: with the renderer of the first prefix the
    path starts with (the FHIR view answers its errors as OperationOutcome resources), else as
    problem+json."""
    by_prefix = dict(renderers or {})

    def render(path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        for prefix, renderer in by_prefix.items():
            if path.startswith(prefix):
                return renderer(body, headers)
        return problem_response(body, headers)

    return render


def install_error_handlers(
    app: FastAPI, renderers: Mapping[str, ErrorRenderer] | None = None
) -> ProblemRenderer:
    """`renderers` maps a path prefix to another rendering of the problem body. Returns the
    renderer the handlers use, for the middleware's own answers (NUL in the query, 413, 415),
    so that every error under a prefix takes the same shape."""
    render = problem_renderer(renderers)

    def respond(
        request: Request, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Response:
        if "instance" in body:
            # Never the raw path: a segment that did not parse as an id may be anything (an
            # NHS number typed where an id belongs). shown_path decides what is shown.
            shown = shown_path(request.scope)
            body = (
                {**body, "instance": shown}
                if shown
                else {key: value for key, value in body.items() if key != "instance"}
            )
        return render(request.url.path, body, headers)

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        return respond(request, exc.body(request.url.path), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        raw = list(exc.errors())
        errors = validation_errors(raw, exc.body)
        # An empty body is not a JSON document: the same 400 as any other unparseable body.
        no_body = any(
            e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in raw
        )
        if no_body or any(error["code"] == "json_invalid" for error in errors):
            body = problem_body(
                400,
                "malformed-json",
                "Malformed JSON",
                "The body is not valid JSON.",
                [{"pointer": "", "code": "json_invalid", "detail": "the body is not valid JSON"}],
                instance=request.url.path,
            )
        else:
            body = problem_body(
                422,
                ValidationFailed.slug,
                ValidationFailed.title,
                "One or more fields are not valid; see errors.",
                errors,
                instance=request.url.path,
            )
        return respond(request, body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Method not allowed", 400: "Bad request"}
        body = problem_body(
            exc.status_code,
            {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error"),
            titles.get(exc.status_code, "HTTP error"),
            exc.detail if isinstance(exc.detail, str) else None,
            instance=request.url.path,
        )
        return respond(request, body, dict(exc.headers or {}))

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        # A constraint caught a race the service's own checks could not see (two requests
        # changing the same thing at once): nothing was written; the client may retry.
        logger.warning("integrity conflict", extra={"error_type": type(exc.orig).__name__})
        return respond(
            request, Conflict("The change conflicts with another; retry it.").body(request.url.path)
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> Response:
        problem = database_problem(exc)
        if problem is None:
            return await _unexpected(request, exc)
        # The type and SQLSTATE only: the statement and its parameters stay out of the log.
        logger.warning(
            "database refused",
            extra={
                "error_type": type(exc.orig).__name__,
                "sqlstate": getattr(exc.orig, "sqlstate", None),
                "problem": problem.slug,
            },
        )
        return respond(request, problem.body(request.url.path), problem.headers)

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(request: Request, exc: PoolTimeout) -> Response:
        return _unavailable(request, exc)

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> Response:
        # asyncpg raises OSError (connection refused, host unreachable) when it cannot connect.
        return _unavailable(request, exc)

    def _unavailable(request: Request, exc: Exception) -> Response:
        logger.error("database unavailable", extra={"error_type": type(exc).__name__})
        error = ServiceUnavailable(
            "The database is not reachable; retry shortly.", headers={"Retry-After": "5"}
        )
        return respond(request, error.body(request.url.path), error.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # The type only: an exception's text can carry submitted values.
        logger.error("unhandled error", extra={"error_type": type(exc).__name__})
        return respond(
            request,
            problem_body(
                500,
                "internal-error",
                "Internal error",
                "The service could not complete the request.",
                instance=request.url.path,
            ),
        )

    return render


def problem_responses(*errors: type[ProblemError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the problems a route can return."""
    out: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        entry = out.setdefault(
            error.status,
            {
                "description": error.title,
                "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            },
        )
        if error.title not in entry["description"]:
            entry["description"] += f"; {error.title}"
    return out
