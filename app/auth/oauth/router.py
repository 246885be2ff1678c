"""`POST /oauth2/token` (client credentials with a signed JWT) and the service's public keys
at `/.well-known/jwks.json`."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.auth.oauth.assertions import JWT_BEARER, authenticate_client
from app.auth.oauth.errors import OAuthError, oauth_responses
from app.auth.oauth.state import OAuthState, oauth_state
from app.auth.oauth.tokens import issue_access_token
from app.db import DatabaseDep
from app.models import ApiClient
from app.ratelimit import AuthThrottle

logger = logging.getLogger("app.auth.oauth")
router = APIRouter(tags=["authentication"])
State = Annotated[OAuthState, Depends(oauth_state)]
FORM = "application/x-www-form-urlencoded"


class TokenResponse(BaseModel):
    access_token: str = Field(description="The access token: send it as `Authorization: Bearer`.")
    token_type: str = Field(description="Always `Bearer`.", examples=["Bearer"])
    expires_in: int = Field(description="Seconds until the token expires.", examples=[600])
    scope: str = Field(description="The scopes granted, space-separated.")


class Jwk(BaseModel):
    kty: str = Field(description="Key type (RSA).")
    kid: str = Field(description="Key id, as in the access token's header.")
    use: str = Field(description="Always `sig`.")
    alg: str = Field(description="Always RS512.")
    n: str = Field(description="RSA modulus, base64url.")
    e: str = Field(description="RSA exponent, base64url.")


class Jwks(BaseModel):
    keys: list[Jwk] = Field(description="The keys that verify the service's access tokens.")


TOKEN_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["grant_type", "client_assertion_type", "client_assertion"],
    "properties": {
        "grant_type": {
            "type": "string",
            "enum": ["client_credentials"],
            "description": "Always `client_credentials`.",
        },
        "client_assertion_type": {
            "type": "string",
            "enum": [JWT_BEARER],
            "description": "Always the RFC 7523 JWT bearer type.",
        },
        "client_assertion": {
            "type": "string",
            "description": "A JWT signed (RS512 or ES256) with one of the client's private keys: "
            "iss and sub the client id, aud the token URL, exp at most 5 minutes ahead, a "
            "unique jti.",
        },
        "scope": {
            "type": "string",
            "description": "Optional: the scopes wanted, space-separated (a subset of the "
            "client's); all of the client's scopes when absent.",
        },
        "client_id": {
            "type": "string",
            "description": "Optional; when sent it must equal the assertion's iss.",
        },
    },
}


def _token_url(request: Request, configured: str | None) -> str:
    return configured or str(request.url.replace(query="", fragment=""))


async def _form(request: Request) -> dict[str, str]:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != FORM:
        raise OAuthError("invalid_request", f"Send the parameters as {FORM}.")
    try:
        pairs = parse_qsl(
            (await request.body()).decode(), keep_blank_values=True, strict_parsing=False
        )
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "The body is not UTF-8.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"The parameter {name} is repeated.")
        form[name] = value
    return form


@router.post(
    "/oauth2/token",
    response_model=TokenResponse,
    responses=oauth_responses(),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FORM: {
                    "schema": TOKEN_REQUEST_SCHEMA,
                    "example": {
                        "grant_type": "client_credentials",
                        "client_assertion_type": JWT_BEARER,
                        "client_assertion": "eyJhbGciOiJSUzUxMiIsImtpZCI6InRlc3QtMSJ9.eyJpc3Mi...",
                    },
                }
            },
        }
    },
)
async def token(request: Request, database: DatabaseDep, state: State) -> JSONResponse:
    """OAuth 2.0 client credentials with a signed JWT (RFC 7523 `private_key_jwt`), as NHS
    England's API platform does it. The client signs an assertion with one of the private keys
    whose public half it registered (`POST /v1/clients/{id}/public-keys`); the answer is an
    access token for `Authorization: Bearer`, valid for `expires_in` seconds. Refusals are
    RFC 6749 errors (`{"error": ..., "error_description": ...}`): 401 `invalid_client` when the
    assertion is not accepted (signature, expiry, audience, replayed `jti`, unknown client),
    400 otherwise. docs/authentication.md walks through it."""
    settings = state.settings
    if not settings.auth_access_tokens_enabled:
        raise OAuthError("unsupported_grant_type", "This deployment does not issue access tokens.")
    form = await _form(request)
    if form.get("grant_type") != "client_credentials":
        raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials.")
    if form.get("client_assertion_type") != JWT_BEARER:
        raise OAuthError("invalid_request", f"client_assertion_type must be {JWT_BEARER}.")
    assertion = form.get("client_assertion", "")
    if not assertion:
        raise OAuthError("invalid_request", "client_assertion is missing.")
    asked = form.get("scope", "").strip()

    def accept(client: ApiClient) -> None:
        if "client_id" in form and form["client_id"] != str(client.id):
            raise OAuthError("invalid_client", "client_id does not match the assertion's iss.")
        if asked and not set(asked.split()) <= set(client.scopes):
            raise OAuthError("invalid_scope", "The client does not hold every scope asked for.")

    # Failed client authentication is throttled as failed API keys are (app.ratelimit): per
    # source address, and for the token endpoint as a whole only its failures.
    throttle: AuthThrottle = request.app.state.auth_throttle
    address = request.client.host if request.client else "-"
    throttle.refuse_address(address)
    try:
        client = await authenticate_client(
            state, database, assertion, _token_url(request, settings.oauth_token_url), accept
        )
    except OAuthError as refused:
        if refused.error == "invalid_client":
            throttle.failed(address, "oauth2-token", assertion)
        raise
    wanted = set(asked.split()) if asked else set(client.scopes)
    issued = await issue_access_token(state, str(client.id), sorted(wanted))
    logger.info("access token issued", extra={"client_id": str(client.id)})
    return JSONResponse(
        {
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get("/.well-known/jwks.json", response_model=Jwks)
async def jwks(state: State) -> JSONResponse:
    """The public keys that verify the service's access tokens (RS512, by `kid`), including
    a retired key until the tokens it signed have expired."""
    return JSONResponse(await state.signing_keys.jwks(), headers={"Cache-Control": "max-age=300"})
