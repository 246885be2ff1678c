"""ASGI middleware: request id, access log, body size limit and read timeout, media type
check, and the rate-limit headers (app.ratelimit).

Its own refusals (a NUL in the query: 422; a body too large: 413; not JSON: 415) come before
routing and before authentication, so an unauthenticated request with a NUL in its query is a
422, not a 401: nothing is read or written for it either way. They are rendered by the same
per-prefix renderer as every other error (app.errors.install_error_handlers), so under /fhir/
they are OperationOutcome resources."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import (
    PayloadTooLarge,
    ProblemError,
    ProblemRenderer,
    RequestTimeout,
    UnsupportedMediaType,
    ValidationFailed,
    problem_renderer,
    route_template,
)
from app.kit.query import NAME_SHAPE
from app.logging import request_id_var
from app.scoping import NOTHING, reset_scope, use_scope

logger = logging.getLogger("app.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}
# Bodies the route reads as a stream (a history bundle may be gigabytes): not buffered here;
# the route checks their media type and size as they arrive (app.history.router).
STREAMED_PATHS = frozenset({"/v1/history/imports"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _nul_parameters(scope: Scope) -> list[str]:
    """The names of the query parameters whose name or value holds a NUL character."""
    query: bytes = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:
        return []
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    return sorted({name for name, value in pairs if "\x00" in name or "\x00" in value})


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


SPREADSHEET_TYPES = frozenset(
    {
        "text/csv",
        "application/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
)


HL7_PATHS = frozenset({"/v1/hl7v2/adt"})
HL7_TYPES = frozenset({"application/hl7-v2", "text/plain"})


def _is_hl7(content_type: str | None) -> bool:
    if content_type is None:
        return False
    return content_type.split(";", 1)[0].strip().lower() in HL7_TYPES


def _is_spreadsheet(content_type: str | None) -> bool:
    if content_type is None:
        return False
    return content_type.split(";", 1)[0].strip().lower() in SPREADSHEET_TYPES


def _is_form(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/x-www-form-urlencoded"


def _nul_pointer(name: str) -> str:
    # Only a name that looks like a parameter is repeated (app.kit.query's rule): a name that
    # holds the NUL, or anything else a client pasted into it, is not.
    return f"query:/{name}" if NAME_SHAPE.fullmatch(name) else "query:"


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        upload_max_bytes: int,
        render_problem: ProblemRenderer | None = None,
        body_read_timeout_seconds: float = 30.0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.upload_max_bytes = upload_max_bytes
        self.body_read_timeout_seconds = body_read_timeout_seconds
        self.render_problem = render_problem or problem_renderer()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        # A request sees no patient data until the guard sets its client's scope (app.scoping).
        scope_token = use_scope(NOTHING)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status_holder: dict[str, int] = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                quota = state.get("rate_limit")
                if quota is not None and not any(k == b"ratelimit-limit" for k, _ in headers):
                    headers.extend(
                        (name.lower().encode(), value.encode())
                        for name, value in quota.headers().items()
                    )
                message = {**message, "headers": headers}
            await send(message)

        try:
            nul = _nul_parameters(scope)
            if nul:
                # PostgreSQL text cannot hold NUL: a 422 here, not a 500 from the query later.
                error = ValidationFailed(
                    "A query parameter contains the NUL character.",
                    errors=[
                        {"pointer": _nul_pointer(name), "code": "nul", "detail": "contains NUL"}
                        for name in nul
                    ],
                )
                await self._reject(error, scope["path"], send_wrapper)
                return
            replay = await self._checked_body(scope, receive, send_wrapper)
            if replay is not None:
                await self.app(scope, replay, send_wrapper)
        finally:
            logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    # The route's template, never the path: a path segment may hold anything
                    # a client typed (an NHS number where an id belongs). None: no route.
                    "route": route_template(scope),
                    "status": status_holder["status"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client_id": scope["state"].get("client_id"),
                },
            )
            request_id_var.reset(token)
            reset_scope(scope_token)

    async def _checked_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Read the body up front (bounded), answer 413/415 here, and hand the app a receive
        that replays it. None when this middleware has already answered. Spreadsheet uploads
        (paths ending in /import) may be CSV or XLSX and larger; everything else is JSON."""
        if scope["method"] not in _BODY_METHODS or scope["path"] in STREAMED_PATHS:
            return receive
        path = scope["path"]
        upload = path.endswith("/import")
        limit = self.upload_max_bytes if upload else self.max_body_bytes
        too_large = PayloadTooLarge(f"The body is larger than {limit} bytes.")
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(too_large, path, send)
            return None
        chunks: list[bytes] = []
        size = 0
        more = True
        # The whole body within body_read_timeout_seconds: a client trickling it is cut off
        # with a 408 instead of holding the request open.
        try:
            async with asyncio.timeout(self.body_read_timeout_seconds):
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        break
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            timeout = RequestTimeout(
                f"The body did not arrive within {self.body_read_timeout_seconds:g} s.",
                headers={"Connection": "close"},
            )
            await self._reject(timeout, path, send)
            return None
        if size > limit:
            await self._reject(too_large, path, send)
            return None
        body = b"".join(chunks)
        content_type = _header(scope, b"content-type")
        # The OAuth token endpoint takes a form (RFC 6749); app.auth.oauth.router parses it.
        form = path == "/oauth2/token" and _is_form(content_type)
        hl7 = path in HL7_PATHS
        # The HL7 route takes JSON this far too, so that its credentials are checked first;
        # it refuses anything but HL7 itself (415) once they are.
        if body and not (
            _is_json(content_type)
            or (upload and _is_spreadsheet(content_type))
            or form
            or (hl7 and _is_hl7(content_type))
        ):
            expected = "JSON, CSV (text/csv) or XLSX" if upload else "JSON"
            expected = "HL7 v2 (application/hl7-v2 or text/plain)" if hl7 else expected
            await self._reject(
                UnsupportedMediaType(f"Send {expected} with the matching Content-Type."), path, send
            )
            return None
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    async def _reject(self, error: ProblemError, path: str, send: Send) -> None:
        # Before routing: no route, so no `instance` (app.errors.shown_path); the path picks the
        # renderer (FHIR or problem+json).
        response = self.render_problem(path, error.body(), error.headers)
        await response({"type": "http"}, _never_receive, send)


async def _never_receive() -> Message:
    return {"type": "http.disconnect"}
