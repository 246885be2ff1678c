"""Errors of the token endpoint, in the form RFC 6749 section 5.2 gives them:
``{"error": "invalid_client", "error_description": "..."}``, never problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

OAUTH_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "description": "The RFC 6749 error code.",
            "enum": [
                "invalid_request",
                "invalid_client",
                "invalid_grant",
                "unsupported_grant_type",
                "invalid_scope",
            ],
        },
        "error_description": {
            "type": "string",
            "description": "What was wrong, for the integrator (never a key or a claim value).",
        },
    },
}


class OAuthError(Exception):
    """A refusal at the token endpoint: 401 for a client that could not be authenticated,
    400 for everything else (RFC 6749 section 5.2)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    @property
    def status(self) -> int:
        return 401 if self.error == "invalid_client" else 400


def oauth_error_response(error: OAuthError) -> JSONResponse:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_client"'
    return JSONResponse(
        {"error": error.error, "error_description": error.description},
        status_code=error.status,
        headers=headers,
    )


def install_oauth_error_handler(app: FastAPI) -> None:
    @app.exception_handler(OAuthError)
    async def _oauth(request: Request, exc: OAuthError) -> Response:
        return oauth_error_response(exc)


def oauth_responses() -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` of the token endpoint's refusals."""
    content = {"application/json": {"schema": OAUTH_ERROR_SCHEMA}}
    return {
        400: {
            "description": "invalid_request, unsupported_grant_type or invalid_scope",
            "content": content,
        },
        401: {"description": "invalid_client: the assertion was not accepted", "content": content},
    }
