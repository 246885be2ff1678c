"""Which client a bearer credential stands for: an API key (`lfd_...`) or an access token the
service issued (a JWT), each accepted only if the deployment accepts that kind."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import Request

from app.auth.oauth.assertions import client_is_active
from app.auth.oauth.state import oauth_state
from app.auth.oauth.tokens import looks_like_jwt, verify_access_token
from app.auth.service import find_active_client
from app.db import Database
from app.errors import Unauthorized
from app.models import ApiClient
from app.models.base import utcnow

CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Resolved:
    client: ApiClient
    scopes: frozenset[str]
    method: str  # "api_key" or "access_token"


async def resolve_credential(request: Request, database: Database, credential: str) -> Resolved:
    """The client and the scopes the credential carries; 401 when it carries none."""
    state = oauth_state(request)
    settings = state.settings
    if looks_like_jwt(credential):
        if not settings.auth_access_tokens_enabled:
            raise Unauthorized("This deployment does not accept access tokens.", headers=CHALLENGE)
        claims = await verify_access_token(state, credential)
        client = None
        if claims is not None:
            try:
                client_id = uuid.UUID(claims["sub"])
            except ValueError:
                client_id = None
            if client_id is not None:
                async with database.autocommit() as session:
                    client = await session.get(ApiClient, client_id)
        if claims is None or client is None or not client_is_active(client, utcnow()):
            raise Unauthorized(
                "The access token is not valid, has expired, or its client was revoked.",
                headers=CHALLENGE,
            )
        # Never more than the client holds now.
        granted = frozenset(str(claims["scope"]).split()) & frozenset(client.scopes)
        return Resolved(client, granted, "access_token")
    if not settings.auth_api_keys_enabled:
        raise Unauthorized(
            "This deployment does not accept API keys: get an access token at /oauth2/token.",
            headers=CHALLENGE,
        )
    async with database.autocommit() as session:
        client = await find_active_client(session, credential)
    if client is None:
        raise Unauthorized("The API key is not valid or has been revoked.", headers=CHALLENGE)
    return Resolved(client, frozenset(client.scopes), "api_key")
